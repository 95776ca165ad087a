//! Models on disk: ONNX inspection, a small ONNX graph builder, nvinfer label files, and the model bundle
//! (ONNX + labels + nvinfer config) that the zoo ships, the trainer writes and the element runs.

pub mod builder;
mod bundle;
mod labels;
mod onnx;

pub use builder::OnnxBuilder;
pub use bundle::{Bundle, BundleError};
pub use labels::{Labels, LabelsError};
pub use onnx::{read_onnx, Dim, ModelError, OnnxModel, ValueInfo};
