//! `[class-attrs-all]` and `[class-attrs-N]`: per-class detection post-processing.

use std::collections::BTreeMap;

/// One class's attributes. A `[class-attrs-N]` group starts from `[class-attrs-all]` and
/// overrides what it names, as nvinfer does.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassAttrs {
    /// `pre-cluster-threshold` (deprecated alias `threshold`): detections below are dropped
    /// before clustering.
    pub pre_cluster_threshold: f32,
    pub post_cluster_threshold: f32,
    pub nms_iou_threshold: f32,
    /// Keep at most this many objects of the class after clustering; -1 keeps all.
    pub topk: i32,
    /// DBSCAN epsilon.
    pub eps: f32,
    /// `groupRectangles()` group threshold.
    pub group_threshold: i32,
    /// DBSCAN `minBoxes`.
    pub min_boxes: i32,
    pub dbscan_min_score: f32,
    /// Pixels at the top / bottom of the frame where objects are ignored.
    pub roi_top_offset: u32,
    pub roi_bottom_offset: u32,
    /// Object size limits in frame pixels; 0 means no limit.
    pub detected_min_w: u32,
    pub detected_min_h: u32,
    pub detected_max_w: u32,
    pub detected_max_h: u32,
    /// RGBA, each 0..1.
    pub border_color: Option<[f32; 4]>,
    pub bg_color: Option<[f32; 4]>,
}

impl Default for ClassAttrs {
    fn default() -> Self {
        ClassAttrs {
            pre_cluster_threshold: 0.2,
            post_cluster_threshold: 0.0,
            nms_iou_threshold: 0.3,
            topk: -1,
            eps: 0.0,
            group_threshold: 0,
            min_boxes: 0,
            dbscan_min_score: 0.0,
            roi_top_offset: 0,
            roi_bottom_offset: 0,
            detected_min_w: 0,
            detected_min_h: 0,
            detected_max_w: 0,
            detected_max_h: 0,
            border_color: None,
            bg_color: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct ClassAttrsTable {
    pub all: ClassAttrs,
    pub per_class: BTreeMap<u32, ClassAttrs>,
}

impl ClassAttrsTable {
    pub fn get(&self, class_id: u32) -> &ClassAttrs {
        self.per_class.get(&class_id).unwrap_or(&self.all)
    }
}
