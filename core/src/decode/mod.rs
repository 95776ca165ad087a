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
        write!(f, "unknown parser '{}' (expected one of {})", self.0, names.join(", "))
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
