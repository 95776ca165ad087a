//! nvtl core: everything the GStreamer element and the trainer share, with no GStreamer and no
//! burn. Data flows config -> preprocess -> backend -> decode -> cluster; `model` holds the
//! bundle format (ONNX + labels + nvinfer config) and `zoo` the pretrained models.

pub mod backend;
pub mod cluster;
pub mod config;
pub mod decode;
pub mod draw;
pub mod engine;
pub mod model;
pub mod nvmm;
pub mod objects;
pub mod preprocess;
pub mod tensor;
pub mod zoo;

pub use objects::{
    BBox, ClassifierAttribute, ClassifierOutput, Detection, InstanceMask, SegmentationMap,
};
pub use tensor::Tensor;
