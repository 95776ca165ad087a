//! Models on disk: ONNX inspection, nvinfer label files, and the model bundle
//! (ONNX + labels + nvinfer config) that the zoo ships, the trainer writes and the element runs.

mod bundle;
mod labels;
mod onnx;

pub use bundle::{Bundle, BundleError};
pub use labels::{Labels, LabelsError};
pub use onnx::{read_onnx, Dim, ModelError, OnnxModel, ValueInfo};
