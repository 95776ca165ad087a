//! Clustering of raw detections (nvinfer's cluster-mode) and the filters nvinfer applies
//! around it (ROI offsets, size limits, filter-out-class-ids, top-k, post-cluster threshold).
//!
//! nvinfer's order of steps, reproduced here:
//! 1. the parser drops detections below the class's `pre-cluster-threshold` (our decoders do;
//!    [`cluster`] does it again so that detections from elsewhere get the same treatment);
//! 2. per class, in ascending class order, cluster by `cluster-mode`:
//!    - 0 [`ClusterMode::GroupRectangles`]: boxes truncated to integers (nvinfer builds
//!      `cv::Rect`s), then OpenCV `groupRectangles(rects, group-threshold, eps)` when
//!      group-threshold > 0; every output gets confidence [`GROUP_RECTANGLES_CONFIDENCE`] (-0.1,
//!      nvinfer's value); no post-cluster threshold and no top-k in this mode;
//!    - 1 [`ClusterMode::Dbscan`]: NvDsInferDBScan when minBoxes > 0, then drop
//!      `confidence < post-cluster-threshold`, then top-k;
//!    - 2 [`ClusterMode::Nms`]: NMS with `nms-iou-threshold`, keep
//!      `confidence > post-cluster-threshold`, then top-k;
//!    - 3 [`ClusterMode::Hybrid`]: DBSCAN's core boxes (when minBoxes > 0), then as 2;
//!    - 4 [`ClusterMode::None`]: top-k only;
//! 3. filters (gst-nvinfer's `attach_metadata_detector`): filter-out-class-ids, detected-min-w/h,
//!    detected-max-w/h (0 = no limit), roi-top-offset (`top < offset` dropped) and
//!    roi-bottom-offset (`top + height > area_height - offset` dropped).
//!
//! nvinfer checks the step-3 filters after scaling boxes to frame pixels. [`cluster_and_filter`]
//! checks them in the coordinates of the boxes it gets, against the network height given in
//! [`ClusterParams`]; a caller that wants nvinfer's frame-pixel semantics calls [`cluster`],
//! maps the boxes to the frame and then calls [`filter_detections`] (or [`detection_kept`] per
//! box) with the frame height.

mod dbscan;
mod group_rectangles;
mod nms;

pub use dbscan::{dbscan, DbscanParams, ATHR_THRESHOLD};
pub use group_rectangles::{group_rectangles, Rect};
pub use nms::{iou, nms};

use std::collections::BTreeMap;

use crate::config::{ClassAttrsTable, ClusterMode};
use crate::objects::{BBox, Detection};

/// The confidence nvinfer gives every object that comes out of cluster-mode 0
/// (`clusterAndFillDetectionOutputCV` sets -0.1: grouped rectangles carry no score).
pub const GROUP_RECTANGLES_CONFIDENCE: f32 = -0.1;

/// What clustering and filtering need.
#[derive(Clone, Copy, Debug)]
pub struct ClusterParams<'a> {
    pub mode: ClusterMode,
    /// Per-class attributes (`[class-attrs-all]` / `[class-attrs-N]`).
    pub attrs: &'a ClassAttrsTable,
    /// Network input size in pixels: the coordinate space of the boxes given.
    pub network_width: f32,
    pub network_height: f32,
    /// Classes never reported (`filter-out-class-ids`).
    pub filter_out_class_ids: &'a [u32],
}

/// Pre-cluster threshold, clustering, post-cluster threshold, top-k and the size / ROI /
/// class filters, in nvinfer's order (see the module docs). Boxes in network-input pixels;
/// the ROI bottom offset is measured from `network_height`. Output: classes in ascending order,
/// within a class in the order the mode produces (NMS and top-k: descending confidence).
pub fn cluster_and_filter(detections: Vec<Detection>, params: &ClusterParams) -> Vec<Detection> {
    let clustered = cluster(detections, params.mode, params.attrs);
    filter_detections(
        clustered,
        params.attrs,
        params.network_height,
        params.filter_out_class_ids,
    )
}

/// Steps 1 and 2 of the module docs: pre-cluster threshold, then per-class clustering with the
/// post-cluster threshold and top-k where the mode applies them.
pub fn cluster(
    detections: Vec<Detection>,
    mode: ClusterMode,
    attrs: &ClassAttrsTable,
) -> Vec<Detection> {
    let mut per_class: BTreeMap<u32, Vec<Detection>> = BTreeMap::new();
    for d in detections {
        // Also drops NaN confidences.
        let reaches = d.confidence >= attrs.get(d.class_id).pre_cluster_threshold;
        if !reaches {
            continue;
        }
        per_class.entry(d.class_id).or_default().push(d);
    }
    let mut out = Vec::new();
    for (class_id, list) in per_class {
        let a = attrs.get(class_id);
        let dbscan_params = DbscanParams {
            eps: a.eps,
            min_boxes: a.min_boxes,
            min_score: a.dbscan_min_score,
        };
        let mut kept = match mode {
            ClusterMode::GroupRectangles => {
                let mut rects: Vec<Rect> = list.iter().map(|d| Rect::truncated(&d.bbox)).collect();
                if a.group_threshold > 0 {
                    group_rectangles(&mut rects, a.group_threshold, f64::from(a.eps));
                }
                rects
                    .into_iter()
                    .map(|r| Detection {
                        class_id,
                        confidence: GROUP_RECTANGLES_CONFIDENCE,
                        bbox: r.to_bbox(),
                    })
                    .collect()
            }
            ClusterMode::Dbscan => {
                let mut l = if a.min_boxes > 0 {
                    dbscan(&list, &dbscan_params, false)
                } else {
                    list
                };
                l.retain(|d| d.confidence >= a.post_cluster_threshold);
                top_k(&mut l, a.topk);
                l
            }
            ClusterMode::Nms => {
                nms_post(list, a.nms_iou_threshold, a.post_cluster_threshold, a.topk)
            }
            ClusterMode::Hybrid => {
                let l = if a.min_boxes > 0 {
                    dbscan(&list, &dbscan_params, true)
                } else {
                    list
                };
                nms_post(l, a.nms_iou_threshold, a.post_cluster_threshold, a.topk)
            }
            ClusterMode::None => {
                let mut l = list;
                top_k(&mut l, a.topk);
                l
            }
        };
        out.append(&mut kept);
    }
    out
}

fn nms_post(list: Vec<Detection>, iou_threshold: f32, post: f32, topk: i32) -> Vec<Detection> {
    let mut l: Vec<Detection> = nms(&list, iou_threshold)
        .into_iter()
        .filter(|d| d.confidence > post)
        .collect();
    top_k(&mut l, topk);
    l
}

/// nvinfer's `filterTopKOutputs`: nothing when `k < 0`, else a stable sort by descending
/// confidence and the first `k` (so `k == 0` keeps none).
pub fn top_k(list: &mut Vec<Detection>, k: i32) {
    top_k_by(list, k, |d| d.confidence);
}

/// [`top_k`] of items that carry a detection's `confidence`.
pub fn top_k_by<T>(list: &mut Vec<T>, k: i32, confidence: impl Fn(&T) -> f32) {
    if k < 0 {
        return;
    }
    list.sort_by(|a, b| confidence(b).total_cmp(&confidence(a)));
    list.truncate(k as usize);
}

/// Step 3 of the module docs: drops objects of `filter_out_class_ids`, objects outside the
/// class's detected-min/max-w/h (0 = no limit), objects whose top is above `roi-top-offset` and
/// objects whose bottom is below `area_height - roi-bottom-offset`. Boxes and `area_height` in
/// the same pixels (nvinfer: frame pixels).
pub fn filter_detections(
    detections: Vec<Detection>,
    attrs: &ClassAttrsTable,
    area_height: f32,
    filter_out_class_ids: &[u32],
) -> Vec<Detection> {
    detections
        .into_iter()
        .filter(|d| detection_kept(d, attrs, area_height, filter_out_class_ids))
        .collect()
}

/// Whether [`filter_detections`] keeps `d`.
pub fn detection_kept(
    d: &Detection,
    attrs: &ClassAttrsTable,
    area_height: f32,
    filter_out_class_ids: &[u32],
) -> bool {
    if filter_out_class_ids.contains(&d.class_id) {
        return false;
    }
    let a = attrs.get(d.class_id);
    let b: &BBox = &d.bbox;
    let max_w = a.detected_max_w as f32;
    let max_h = a.detected_max_h as f32;
    !(b.width < a.detected_min_w as f32
        || b.height < a.detected_min_h as f32
        || (a.detected_max_w > 0 && b.width > max_w)
        || (a.detected_max_h > 0 && b.height > max_h)
        || b.top < a.roi_top_offset as f32
        || b.top + b.height > area_height - a.roi_bottom_offset as f32)
}
