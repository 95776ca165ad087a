//! DeepStream metadata glue for NVMM buffers: the buffer's NvDsBatchMeta (when DeepStream's
//! metadata libraries are installed and the buffer carries one), its objects as secondary-mode
//! targets, and nvtlinfer's results added to it the way nvinfer adds them. The structs and calls
//! are in `nvtl_core::nvmm::dsmeta`.

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::LazyLock;

use nvtl_core::engine::{Engine, InferResult};
use nvtl_core::nvmm::dsmeta::{
    nvinfer_attaches, DsMeta, DsObject, DsUserMeta, TensorOutputs, UNTRACKED_OBJECT_ID,
};
use nvtl_core::Tensor;

use super::history::TrackedObject;
use super::imp::TargetResult;
use crate::meta;

/// DeepStream's metadata libraries, opened on first use (or why they could not be).
fn deepstream_meta() -> &'static Result<DsMeta, String> {
    static DS_META: LazyLock<Result<DsMeta, String>> = LazyLock::new(DsMeta::load);
    &DS_META
}

/// Ids given to DeepStream objects used as secondary-mode targets (far above GStreamer ROI ids).
const DS_OBJECT_ID_BASE: i32 = 1 << 30;

/// A buffer's NvDsBatchMeta and the DeepStream objects handed to inference as targets.
pub(super) struct DsBatch {
    ds: &'static DsMeta,
    batch: *mut c_void,
    objects: HashMap<i32, *mut c_void>,
    /// The targets (by id) that are objects a tracker follows.
    tracked: HashMap<i32, TrackedObject>,
}

impl DsBatch {
    /// The buffer's batch meta: `Ok(None)` when it carries none, `Err` when DeepStream's
    /// libraries are not installed (the reason, for a debug log).
    pub(super) fn of(buffer: &mut gst::BufferRef) -> Result<Option<DsBatch>, String> {
        let ds = deepstream_meta().as_ref().map_err(Clone::clone)?;
        // SAFETY: `buffer` is a valid GstBuffer for the duration of this call.
        let batch = unsafe { ds.batch_meta(buffer.as_mut_ptr() as *mut c_void) };
        Ok(batch.map(|batch| DsBatch {
            ds,
            batch,
            objects: HashMap::new(),
            tracked: HashMap::new(),
        }))
    }

    /// Adds the DeepStream objects of frame `batch_id` to `upstream` (the frame's upstream
    /// objects for a secondary stage), remembered under ids of their own. An object that is the
    /// twin of one of the ROIs in `upstream` (an upstream nvtlinfer attaches both; its detector
    /// box stays the ROI's even after nvtracker moved `rect_params`) is not added: it is
    /// remembered under the ROI's id, so it is inferred once and its results go to both, and
    /// the ROI takes its `rect_params`, the box nvinfer would crop.
    pub(super) fn add_objects(
        &mut self,
        batch_id: u32,
        batch_index: Option<u32>,
        upstream: &mut Vec<meta::ObjectMeta>,
    ) {
        // SAFETY: the batch meta belongs to the buffer being processed.
        let objects = unsafe { self.ds.objects(self.batch, batch_id) };
        let source = unsafe { self.ds.frame_source(self.batch, batch_id) };
        let px = |v: f32| v.max(0.0).round() as u32;
        let mut added = Vec::new();
        for (i, o) in objects.into_iter().enumerate() {
            let tracked = match source {
                Some((source_id, frame_num)) if o.object_id != UNTRACKED_OBJECT_ID => {
                    Some(TrackedObject {
                        source_id,
                        object_id: o.object_id,
                        frame_num: i64::from(frame_num),
                        area: f64::from(o.rect[2].max(0.0)) * f64::from(o.rect[3].max(0.0)),
                    })
                }
                _ => None,
            };
            let rect = (px(o.rect[0]), px(o.rect[1]), px(o.rect[2]), px(o.rect[3]));
            let twin = upstream.iter_mut().find(|roi| {
                roi.batch_index == batch_index
                    && roi.unique_id.map(|u| u as i32) == Some(o.unique_component_id)
                    && roi.class_id.map(|c| c as i32) == Some(o.class_id)
                    && (same_box(roi.rect, o.rect) || same_box(roi.rect, o.detector_rect))
                    && !self.objects.contains_key(&roi.id)
            });
            let (id, is_twin) = match twin {
                Some(roi) => {
                    roi.rect = rect;
                    (roi.id, true)
                }
                None => (
                    DS_OBJECT_ID_BASE + (batch_id as i32) * 65_536 + i as i32,
                    false,
                ),
            };
            self.objects.insert(id, o.meta);
            if let Some(tracked) = tracked {
                self.tracked.insert(id, tracked);
            }
            if is_twin {
                continue;
            }
            added.push(meta::ObjectMeta {
                id,
                parent_id: -1,
                roi_type: "deepstream".into(),
                rect,
                class_id: u32::try_from(o.class_id).ok(),
                label: None,
                confidence: None,
                unique_id: u32::try_from(o.unique_component_id).ok(),
                border_color: None,
                bg_color: None,
                classifications: Vec::new(),
                batch_index,
                mask: None,
            });
        }
        upstream.extend(added);
    }

    /// The tracked object behind target `id`, if a tracker follows it.
    pub(super) fn tracked(&self, id: i32) -> Option<&TrackedObject> {
        self.tracked.get(&id)
    }

    /// The source and frame number of frame `batch_id`.
    pub(super) fn frame_source(&self, batch_id: u32) -> Option<(u32, i64)> {
        // SAFETY: the batch meta belongs to the buffer being processed.
        unsafe { self.ds.frame_source(self.batch, batch_id) }
            .map(|(source, frame)| (source, i64::from(frame)))
    }

    /// Adds the results as nvinfer does: detections as NvDsObjectMeta on their frame (those of a
    /// secondary detector under the DeepStream object they were found in), classifier results on
    /// the DeepStream objects they classified, segmentation maps and (with output-tensor-meta)
    /// `raw_outputs`, one per result, as user meta of the frame or DeepStream object. Returns
    /// the number of objects added.
    pub(super) fn attach(
        &self,
        results: &[TargetResult],
        raw_outputs: Vec<Vec<Tensor>>,
        unique_id: u32,
        engine: &Engine,
    ) -> usize {
        let config = &engine.config;
        // The frame (primary mode) or DeepStream object (secondary) a user meta belongs to; none
        // for an object only GStreamer metadata knows.
        let owner = |batch_index: Option<u32>, parent: i32| -> Option<(u32, Option<*mut c_void>)> {
            let batch_id = batch_index.unwrap_or(0);
            if parent < 0 {
                Some((batch_id, None))
            } else {
                self.objects.get(&parent).map(|&o| (batch_id, Some(o)))
            }
        };
        let params = engine.params();
        for ((batch_index, parent, _, _), tensors) in results.iter().zip(raw_outputs) {
            let Some((batch_id, object)) = owner(*batch_index, *parent) else {
                continue;
            };
            let outputs = TensorOutputs {
                unique_id,
                gpu_id: config.gpu_id as i32,
                network: params.network_info(),
                maintain_aspect_ratio: params.maintain_aspect_ratio,
                layers: tensors
                    .into_iter()
                    .map(|t| {
                        let dims = t.item_shape().to_vec();
                        (t.name, dims, t.data)
                    })
                    .collect(),
            };
            // SAFETY: `batch` is this buffer's NvDsBatchMeta; `object` came from it in this call.
            unsafe {
                self.ds
                    .add_user_meta(self.batch, batch_id, object, DsUserMeta::Tensors(outputs))
            };
        }
        // Per frame: whether a detector ran on it, and the objects to add.
        let mut per_frame: std::collections::BTreeMap<u32, (bool, Vec<_>)> = Default::default();
        for (batch_index, parent, (width, height), result) in results {
            match result {
                InferResult::Objects(objects) => {
                    let parent = self
                        .objects
                        .get(parent)
                        .copied()
                        .unwrap_or(std::ptr::null_mut());
                    // A frame the detector ran on is marked inferred even when it found nothing.
                    let (detector, frame_objects) =
                        per_frame.entry(batch_index.unwrap_or(0)).or_default();
                    *detector = true;
                    for object in objects {
                        let attrs = config.class_attrs.get(object.class_id);
                        let color = attrs
                            .border_color
                            .map(|c| c.map(f64::from))
                            .unwrap_or([1.0, 0.0, 0.0, 1.0]);
                        frame_objects.push((
                            DsObject {
                                unique_id: unique_id as i32,
                                class_id: object.class_id as i32,
                                confidence: object.confidence,
                                left: object.bbox.left,
                                top: object.bbox.top,
                                width: object.bbox.width,
                                height: object.bbox.height,
                                label: object.label.clone(),
                                border_color: color,
                                bg_color: attrs.bg_color.map(|c| c.map(f64::from)),
                                border_width: 3,
                                parent,
                                mask: object.mask.clone(),
                            },
                            None,
                        ));
                    }
                }
                InferResult::Segmentation(map) => {
                    if let Some((batch_id, object)) = owner(*batch_index, *parent) {
                        let meta = DsUserMeta::Segmentation {
                            unique_id: unique_id as i32,
                            map,
                        };
                        // SAFETY: as for the tensor meta above.
                        unsafe { self.ds.add_user_meta(self.batch, batch_id, object, meta) };
                    }
                }
                InferResult::Classification(output) if nvinfer_attaches(output) && *parent < 0 => {
                    // A primary classifier: nvinfer adds a full-frame object carrying the result,
                    // its on-screen text the description.
                    let frame = DsObject {
                        unique_id: unique_id as i32,
                        class_id: -1,
                        confidence: 0.0,
                        left: 0.0,
                        top: 0.0,
                        width: *width as f32,
                        height: *height as f32,
                        label: Some(String::new()),
                        border_color: [1.0, 0.0, 0.0, 1.0],
                        bg_color: None,
                        border_width: 6,
                        parent: std::ptr::null_mut(),
                        mask: None,
                    };
                    let (_, frame_objects) = per_frame.entry(batch_index.unwrap_or(0)).or_default();
                    frame_objects.push((frame, Some(output.clone())));
                }
                InferResult::Classification(output) => {
                    let Some(&object) = self.objects.get(parent) else {
                        continue; // an object only GStreamer metadata knows
                    };
                    // SAFETY: `object` came from this buffer's batch meta in this call.
                    unsafe {
                        self.ds.classify(
                            self.batch,
                            object,
                            unique_id as i32,
                            output,
                            config.classifier_type.as_deref(),
                        )
                    };
                }
                _ => {}
            }
        }
        per_frame
            .into_iter()
            // SAFETY: `batch` is this buffer's NvDsBatchMeta, which we may write (in place).
            .map(|(batch_id, (detector, objects))| unsafe {
                self.ds.add_objects(
                    self.batch,
                    batch_id,
                    &objects,
                    detector,
                    config.classifier_type.as_deref(),
                )
            })
            .sum()
    }
}

/// Whether a ROI (integer pixels) and a DeepStream rect (float left, top, width, height) are the
/// same detection: nvtlinfer rounds each edge of the ROI, so edges differ by under a pixel.
fn same_box(roi: (u32, u32, u32, u32), rect: [f32; 4]) -> bool {
    let (x, y, w, h) = roi;
    let [left, top, width, height] = rect;
    let close = |a: u32, b: f32| (a as f32 - b).abs() <= 1.0;
    close(x, left) && close(y, top) && close(x + w, left + width) && close(y + h, top + height)
}
