//! nvtl's metadata on GStreamer buffers (GStreamer 1.22 has no analytics meta):
//!
//! - each object is a `GstVideoRegionOfInterestMeta` whose type is the label, carrying an
//!   `nvtl/detection` param: `class-id` (uint), `label` (string), `confidence` (double),
//!   `unique-id` (uint, the element that made it) and, when the config gives the class a
//!   border-color or bg-color, `border-color` / `bg-color` (4 doubles, RGBA 0..1);
//! - an instance-segmentation object (network-type=3 with output-instance-mask) also carries an
//!   `nvtl/instance-mask` param: `width`, `height` (uint), `threshold` (double, the config's
//!   segmentation-threshold) and `data` (bytes, little-endian f32, row-major), the parser's mask
//!   laid over the object's box as DeepStream's `NvOSD_MaskParams`;
//! - classifier results are `nvtl/classification` params on the object they classify (or on a
//!   full-frame ROI of type `frame` in primary mode): `unique-id` (uint), `description` (string,
//!   nvinfer's description of the result: the labels, each followed by a space, or what a custom
//!   parser wrote), and per attribute the arrays `attribute-indexes`, `class-ids` (uint),
//!   `labels` (string), `probabilities` (double);
//! - raw output tensors (output-tensor-meta=true) are one custom meta `NvtlTensorMeta` per frame
//!   or object inferred, with `unique-id`, `object-id` (the ROI id in secondary mode, -1 for a
//!   frame), `batch-index` (batched NVMM buffers only) and `tensors`, a list of `tensor`
//!   structures {name, dims (int array, batch of one), data (bytes, little-endian f32)};
//! - segmentation maps are a custom meta `NvtlSegmentationMeta` {unique-id, width, height,
//!   num-classes, class-map (bytes, little-endian i32 per pixel, -1 = none)}.

use gst::glib;
use gst::prelude::*;
use gst_video::VideoRegionOfInterestMeta;

use nvtl_core::config::ClassAttrs;
use nvtl_core::engine::FrameObject;
use nvtl_core::{
    BBox, ClassifierAttribute, ClassifierOutput, InstanceMask, SegmentationMap, Tensor,
};

pub const DETECTION: &str = "nvtl/detection";
pub const CLASSIFICATION: &str = "nvtl/classification";
pub const INSTANCE_MASK: &str = "nvtl/instance-mask";
pub const TENSOR_META: &str = "NvtlTensorMeta";
pub const SEGMENTATION_META: &str = "NvtlSegmentationMeta";
/// The ROI type of the full-frame object that carries a primary classifier's result.
pub const FRAME_ROI_TYPE: &str = "frame";
/// Param field naming the batch entry of a batched NVMM buffer an object belongs to.
pub const BATCH_INDEX: &str = "batch-index";

/// Registers the custom metas (idempotent). Called from plugin init.
pub fn register() {
    if !gst::meta::CustomMeta::is_registered(TENSOR_META) {
        gst::meta::CustomMeta::register(TENSOR_META, &[]);
    }
    if !gst::meta::CustomMeta::is_registered(SEGMENTATION_META) {
        gst::meta::CustomMeta::register(SEGMENTATION_META, &[]);
    }
}

/// A classifier result as read back from a buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct Classification {
    pub unique_id: u32,
    pub attribute_index: u32,
    pub class_id: u32,
    pub label: String,
    pub probability: f64,
}

/// An object (ROI meta) as read back from a buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectMeta {
    pub id: i32,
    pub parent_id: i32,
    pub roi_type: String,
    pub rect: (u32, u32, u32, u32),
    /// From the `nvtl/detection` param; `None` for ROIs other elements made.
    pub class_id: Option<u32>,
    pub label: Option<String>,
    pub confidence: Option<f64>,
    pub unique_id: Option<u32>,
    /// RGBA 0..1, from the config's border-color for the class.
    pub border_color: Option<[f64; 4]>,
    /// RGBA 0..1, from the config's bg-color for the class: the box is filled with it.
    pub bg_color: Option<[f64; 4]>,
    pub classifications: Vec<Classification>,
    /// Frame of a batched NVMM buffer (`NvBufSurface` entry) the object belongs to; `None` on
    /// single-frame buffers.
    pub batch_index: Option<u32>,
    /// From the `nvtl/instance-mask` param.
    pub mask: Option<InstanceMask>,
}

/// Every ROI meta on the buffer, in attachment order.
pub fn read_objects(buffer: &gst::BufferRef) -> Vec<ObjectMeta> {
    buffer
        .iter_meta::<VideoRegionOfInterestMeta>()
        .map(|meta| {
            let detection = meta.param(DETECTION);
            let mut classifications = Vec::new();
            for param in meta.params().filter(|p| p.name() == CLASSIFICATION) {
                classifications.extend(read_classification(param));
            }
            ObjectMeta {
                id: meta.id(),
                parent_id: meta.parent_id(),
                roi_type: meta.roi_type().to_string(),
                rect: meta.rect(),
                class_id: detection.and_then(|d| d.get::<u32>("class-id").ok()),
                label: detection.and_then(|d| d.get::<String>("label").ok()),
                confidence: detection.and_then(|d| d.get::<f64>("confidence").ok()),
                unique_id: detection.and_then(|d| d.get::<u32>("unique-id").ok()),
                border_color: detection.and_then(|d| read_color(d, "border-color")),
                bg_color: detection.and_then(|d| read_color(d, "bg-color")),
                classifications,
                batch_index: detection
                    .or_else(|| meta.param(CLASSIFICATION))
                    .and_then(|d| d.get::<u32>(BATCH_INDEX).ok()),
                mask: meta.param(INSTANCE_MASK).and_then(read_mask),
            }
        })
        .collect()
}

fn read_mask(param: &gst::StructureRef) -> Option<InstanceMask> {
    let bytes = param.get::<glib::Bytes>("data").ok()?;
    Some(InstanceMask {
        width: param.get("width").ok()?,
        height: param.get("height").ok()?,
        threshold: param.get::<f64>("threshold").ok()? as f32,
        data: bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
    })
}

fn read_color(detection: &gst::StructureRef, field: &str) -> Option<[f64; 4]> {
    let array = detection.get::<gst::Array>(field).ok()?;
    let values: Vec<f64> = array.iter().filter_map(|v| v.get::<f64>().ok()).collect();
    values.try_into().ok()
}

fn read_classification(param: &gst::StructureRef) -> Vec<Classification> {
    let unique_id = param.get::<u32>("unique-id").unwrap_or(0);
    let array = |field: &str| param.get::<gst::Array>(field).ok();
    let (Some(indexes), Some(ids), Some(labels), Some(probabilities)) = (
        array("attribute-indexes"),
        array("class-ids"),
        array("labels"),
        array("probabilities"),
    ) else {
        return Vec::new();
    };
    indexes
        .iter()
        .zip(ids.iter())
        .zip(labels.iter())
        .zip(probabilities.iter())
        .filter_map(|(((index, id), label), probability)| {
            Some(Classification {
                unique_id,
                attribute_index: index.get::<u32>().ok()?,
                class_id: id.get::<u32>().ok()?,
                label: label.get::<String>().ok()?,
                probability: probability.get::<f64>().ok()?,
            })
        })
        .collect()
}

/// The next free ROI id on this buffer.
pub fn next_object_id(buffer: &gst::BufferRef) -> i32 {
    buffer
        .iter_meta::<VideoRegionOfInterestMeta>()
        .map(|m| m.id())
        .max()
        .map_or(0, |m| m + 1)
}

fn rect_of(bbox: &BBox) -> (u32, u32, u32, u32) {
    let left = bbox.left.max(0.0).round() as u32;
    let top = bbox.top.max(0.0).round() as u32;
    let right = bbox.right().max(0.0).round() as u32;
    let bottom = bbox.bottom().max(0.0).round() as u32;
    (
        left,
        top,
        right.saturating_sub(left),
        bottom.saturating_sub(top),
    )
}

/// Attaches one detected object; returns its ROI id.
pub fn attach_object(
    buffer: &mut gst::BufferRef,
    object: &FrameObject,
    unique_id: u32,
    id: i32,
    parent_id: i32,
    class_attrs: &ClassAttrs,
    batch_index: Option<u32>,
) -> i32 {
    let label = object
        .label
        .clone()
        .unwrap_or_else(|| format!("class{}", object.class_id));
    let mut meta = VideoRegionOfInterestMeta::add(buffer, &label, rect_of(&object.bbox));
    meta.set_id(id);
    meta.set_parent_id(parent_id);
    let mut detection = gst::Structure::builder(DETECTION)
        .field("class-id", object.class_id)
        .field("label", label)
        .field("confidence", object.confidence as f64)
        .field("unique-id", unique_id)
        .build();
    for (field, color) in [
        ("border-color", class_attrs.border_color),
        ("bg-color", class_attrs.bg_color),
    ] {
        if let Some(color) = color {
            detection.set(field, gst::Array::new(color.map(f64::from)));
        }
    }
    if let Some(index) = batch_index {
        detection.set(BATCH_INDEX, index);
    }
    meta.add_param(detection);
    if let Some(mask) = &object.mask {
        meta.add_param(
            gst::Structure::builder(INSTANCE_MASK)
                .field("width", mask.width)
                .field("height", mask.height)
                .field("threshold", mask.threshold as f64)
                .field("data", f32_bytes(&mask.data))
                .build(),
        );
    }
    id
}

fn classification_param(unique_id: u32, output: &ClassifierOutput) -> gst::Structure {
    let collect = |f: &dyn Fn(&ClassifierAttribute) -> glib::SendValue| {
        gst::Array::from_values(output.attributes.iter().map(f))
    };
    gst::Structure::builder(CLASSIFICATION)
        .field("unique-id", unique_id)
        .field("description", &output.description)
        .field(
            "attribute-indexes",
            collect(&|a| a.attribute_index.to_send_value()),
        )
        .field("class-ids", collect(&|a| a.class_id.to_send_value()))
        .field(
            "labels",
            collect(&|a| {
                a.label
                    .clone()
                    .unwrap_or_else(|| format!("class{}", a.class_id))
                    .to_send_value()
            }),
        )
        .field(
            "probabilities",
            collect(&|a| (a.probability as f64).to_send_value()),
        )
        .build()
}

/// Adds classifier results to the object with ROI id `object_id`. Returns false when the buffer
/// has no such object.
pub fn attach_classification(
    buffer: &mut gst::BufferRef,
    object_id: i32,
    unique_id: u32,
    output: &ClassifierOutput,
) -> bool {
    for mut meta in buffer.iter_meta_mut::<VideoRegionOfInterestMeta>() {
        if meta.id() == object_id {
            meta.add_param(classification_param(unique_id, output));
            return true;
        }
    }
    false
}

/// Adds a primary classifier's result as a full-frame ROI of type [`FRAME_ROI_TYPE`].
pub fn attach_frame_classification(
    buffer: &mut gst::BufferRef,
    width: u32,
    height: u32,
    unique_id: u32,
    output: &ClassifierOutput,
    batch_index: Option<u32>,
) {
    let id = next_object_id(buffer);
    let mut meta = VideoRegionOfInterestMeta::add(buffer, FRAME_ROI_TYPE, (0, 0, width, height));
    meta.set_id(id);
    meta.set_parent_id(-1);
    let mut param = classification_param(unique_id, output);
    if let Some(index) = batch_index {
        param.set(BATCH_INDEX, index);
    }
    meta.add_param(param);
}

fn f32_bytes(data: &[f32]) -> glib::Bytes {
    glib::Bytes::from_owned(
        data.iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>(),
    )
}

/// Attaches the raw output tensors of one frame or object (output-tensor-meta=true).
pub fn attach_tensors(
    buffer: &mut gst::BufferRef,
    unique_id: u32,
    object_id: i32,
    batch_index: Option<u32>,
    tensors: &[Tensor],
) {
    let list = gst::List::from_values(tensors.iter().map(|t| {
        let dims = gst::Array::from_values(t.shape.iter().map(|&d| (d as i32).to_send_value()));
        gst::Structure::builder("tensor")
            .field("name", &t.name)
            .field("dims", dims)
            .field("data", f32_bytes(&t.data))
            .build()
            .to_send_value()
    }));
    let mut meta =
        gst::meta::CustomMeta::add(buffer, TENSOR_META).expect("registered at plugin init");
    let s = meta.mut_structure();
    s.set("unique-id", unique_id);
    s.set("object-id", object_id);
    if let Some(index) = batch_index {
        s.set("batch-index", index);
    }
    s.set("tensors", list);
}

/// Attaches a segmentation map.
pub fn attach_segmentation(buffer: &mut gst::BufferRef, unique_id: u32, map: &SegmentationMap) {
    let bytes: Vec<u8> = map.class_map.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut meta =
        gst::meta::CustomMeta::add(buffer, SEGMENTATION_META).expect("registered at plugin init");
    let s = meta.mut_structure();
    s.set("unique-id", unique_id);
    s.set("width", map.width as u32);
    s.set("height", map.height as u32);
    s.set("num-classes", map.num_classes as u32);
    s.set("class-map", glib::Bytes::from_owned(bytes));
}
