//! `nvtlinfer`: runs DeepStream nvinfer configs (same keys, same property names) on
//! system-memory or NVMM (NvBufSurface) video with nvtl's backends, attaching GStreamer metadata.

use gst::glib;
use gst::prelude::*;

mod async_classifier;
mod deepstream;
mod history;
mod imp;
pub mod settings;
mod targets;

glib::wrapper! {
    pub struct NvtlInfer(ObjectSubclass<imp::NvtlInfer>) @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

/// `process-mode`, with nvinfer's values.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstNvtlInferProcessMode")]
pub enum ProcessModeProperty {
    #[enum_value(name = "Primary (full frame)", nick = "primary")]
    Primary = 1,
    #[enum_value(
        name = "Secondary (objects from an upstream element)",
        nick = "secondary"
    )]
    Secondary = 2,
}

/// `backend`.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstNvtlInferBackend")]
pub enum BackendProperty {
    #[enum_value(name = "Best available: tensorrt, then cuda, then cpu", nick = "auto")]
    Auto = 0,
    #[enum_value(name = "CPU (tract)", nick = "cpu")]
    Cpu = 1,
    #[enum_value(
        name = "CUDA (onnxruntime CUDA execution provider; onnxruntime feature)",
        nick = "cuda"
    )]
    Cuda = 2,
    #[enum_value(
        name = "TensorRT (onnxruntime TensorRT execution provider; onnxruntime feature)",
        nick = "tensorrt"
    )]
    TensorRt = 3,
    #[enum_value(
        name = "onnxruntime CPU execution provider (onnxruntime feature)",
        nick = "onnxruntime"
    )]
    OnnxRuntime = 4,
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "nvtlinfer",
        gst::Rank::NONE,
        NvtlInfer::static_type(),
    )
}
