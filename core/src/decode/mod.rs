//! Network outputs -> detections, classifier attributes or segmentation maps.
//!
//! One decoder per `parser=` value. Decoders take the raw output tensors of one batch and the
//! batch index, and give boxes in network-input pixels; clustering and mapping to frame pixels
//! happen later.

use std::fmt;
use std::str::FromStr;

use crate::config::{ClassAttrsTable, NetworkType};
use crate::objects::{ClassifierAttribute, Detection, SegmentationMap};
use crate::tensor::Tensor;

mod blazeface;
mod centernet;
mod classifier;
pub mod custom_lib;
mod detectnet_v2;
mod error;
mod segmentation;
mod ssd;
mod util;
mod yolov5;
mod yolov8;

pub use error::DecodeError;

/// The built-in decoders, chosen by the `parser=` key of `[property]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parser {
    /// NVIDIA DetectNet_v2 grid: coverage `[C,H,W]` + bbox `[4C,H,W]` (nvinfer's default).
    DetectNetV2,
    /// CenterNet: heat map `[C,H,W]` (after sigmoid) + ltrb distances `[4,H,W]`.
    CenterNet,
    /// YOLOv8 / v11: `[4+nc, N]` (cx, cy, w, h, class scores).
    YoloV8,
    /// YOLOv5 / v7: `[N, 5+nc]` (cx, cy, w, h, objectness, class scores).
    YoloV5,
    /// SSD: boxes `[N,4]` + scores `[N,C]`.
    Ssd,
    /// MediaPipe BlazeFace: regressors `[896,16]` + scores `[896,1]`, fixed anchors.
    BlazeFace,
    /// Softmax / argmax per output layer.
    Classifier,
    /// Semantic segmentation: per-pixel class scores.
    Segmentation,
}

impl Parser {
    pub const ALL: [Parser; 8] = [
        Parser::DetectNetV2,
        Parser::CenterNet,
        Parser::YoloV8,
        Parser::YoloV5,
        Parser::Ssd,
        Parser::BlazeFace,
        Parser::Classifier,
        Parser::Segmentation,
    ];

    /// The name used in config files.
    pub fn name(self) -> &'static str {
        match self {
            Parser::DetectNetV2 => "detectnet_v2",
            Parser::CenterNet => "centernet",
            Parser::YoloV8 => "yolov8",
            Parser::YoloV5 => "yolov5",
            Parser::Ssd => "ssd",
            Parser::BlazeFace => "blazeface",
            Parser::Classifier => "classifier",
            Parser::Segmentation => "segmentation",
        }
    }

    /// The decoder nvinfer uses when the config names none.
    pub fn default_for(network_type: NetworkType) -> Option<Parser> {
        match network_type {
            NetworkType::Detector => Some(Parser::DetectNetV2),
            NetworkType::Classifier => Some(Parser::Classifier),
            NetworkType::Segmentation => Some(Parser::Segmentation),
            NetworkType::InstanceSegmentation | NetworkType::Other => None,
        }
    }
}

impl fmt::Display for Parser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownParser(pub String);

impl fmt::Display for UnknownParser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = Parser::ALL.iter().map(|p| p.name()).collect();
        write!(
            f,
            "unknown parser '{}' (expected one of {})",
            self.0,
            names.join(", ")
        )
    }
}

impl std::error::Error for UnknownParser {}

impl FromStr for Parser {
    type Err = UnknownParser;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace('-', "_");
        Parser::ALL
            .iter()
            .copied()
            .find(|p| p.name() == wanted)
            .ok_or_else(|| UnknownParser(s.to_string()))
    }
}

/// What a decoder needs besides the tensors.
#[derive(Clone, Debug)]
pub struct DecodeContext<'a> {
    /// Network input size in pixels (boxes come out in these coordinates).
    pub network_width: usize,
    pub network_height: usize,
    pub num_classes: usize,
    /// Pre-cluster thresholds per class.
    pub class_attrs: &'a ClassAttrsTable,
    pub classifier_threshold: f32,
    pub segmentation_threshold: f32,
}

/// The result of decoding one batch item.
#[derive(Clone, Debug, PartialEq)]
pub enum Decoded {
    Detections(Vec<Detection>),
    Attributes(Vec<ClassifierAttribute>),
    Segmentation(SegmentationMap),
}

/// Decodes batch item `batch_index` of `outputs` with `parser`.
///
/// Every tensor carries the batch dimension first. Detectors give boxes in network-input pixels
/// (`ctx.network_width` x `ctx.network_height`) with the per-class `pre_cluster_threshold` of
/// `ctx.class_attrs` already applied (a detection is kept when `confidence >= threshold`, as in
/// nvinfer's parsers); classifiers give one attribute per output layer; segmentation gives a class
/// map. Never panics on odd shapes: anything that does not fit is a [`DecodeError`].
pub fn decode(
    parser: Parser,
    outputs: &[Tensor],
    batch_index: usize,
    ctx: &DecodeContext,
) -> Result<Decoded, DecodeError> {
    for t in outputs {
        util::check_tensor(t, batch_index)?;
    }
    match parser {
        Parser::DetectNetV2 => {
            detectnet_v2::decode(outputs, batch_index, ctx).map(Decoded::Detections)
        }
        Parser::CenterNet => centernet::decode(outputs, batch_index, ctx).map(Decoded::Detections),
        Parser::YoloV8 => yolov8::decode(outputs, batch_index, ctx).map(Decoded::Detections),
        Parser::YoloV5 => yolov5::decode(outputs, batch_index, ctx).map(Decoded::Detections),
        Parser::Ssd => ssd::decode(outputs, batch_index, ctx).map(Decoded::Detections),
        Parser::BlazeFace => blazeface::decode(outputs, batch_index, ctx).map(Decoded::Detections),
        Parser::Classifier => {
            classifier::decode(outputs, batch_index, ctx).map(Decoded::Attributes)
        }
        Parser::Segmentation => {
            segmentation::decode(outputs, batch_index, ctx).map(Decoded::Segmentation)
        }
    }
}

/// At model load: do these output names and shapes (batch dimension first) fit the parser?
///
/// `num_classes` is `num-detected-classes` (0 when unknown); where the layout is ambiguous it
/// is used to tell layouts apart. The error names the output and what was expected.
pub fn check_outputs(
    parser: Parser,
    outputs: &[(String, Vec<usize>)],
    num_classes: usize,
) -> Result<(), DecodeError> {
    let outs: Vec<util::OutputDesc> = outputs
        .iter()
        .map(|(n, s)| util::OutputDesc { name: n, shape: s })
        .collect();
    match parser {
        Parser::DetectNetV2 => detectnet_v2::Layout::resolve(&outs, num_classes).map(|_| ()),
        Parser::CenterNet => centernet::Layout::resolve(&outs).map(|_| ()),
        Parser::YoloV8 => yolov8::Layout::resolve(&outs, num_classes).map(|_| ()),
        Parser::YoloV5 => yolov5::Layout::resolve(&outs).map(|_| ()),
        Parser::Ssd => ssd::Layout::resolve(&outs).map(|_| ()),
        Parser::BlazeFace => blazeface::Layout::resolve(&outs).map(|_| ()),
        Parser::Classifier => classifier::Layout::resolve(&outs).map(|_| ()),
        Parser::Segmentation => segmentation::Layout::resolve(&outs, num_classes).map(|_| ()),
    }
}
