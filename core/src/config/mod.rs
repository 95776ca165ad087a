//! nvinfer configuration: DeepStream's `[property]` / `[class-attrs-*]` files in GLib key-file
//! (`.txt`) or YAML (`.yml`/`.yaml`) form, read into one typed [`InferConfig`].
//!
//! Field names are the nvinfer key names in snake_case; defaults are nvinfer's.

mod class_attrs;
mod enums;

pub use class_attrs::{ClassAttrs, ClassAttrsTable};
pub use enums::{
    ClusterMode, ModelColorFormat, NetworkMode, NetworkType, ProcessMode, ScalingFilter,
    TensorOrder,
};

use std::path::PathBuf;

use crate::decode::Parser;

/// Every `[property]` key nvinfer documents, typed, with nvinfer's defaults. Paths are resolved
/// against the config file's folder. Keys that only matter to TensorRT are kept so that a
/// config round-trips and the TensorRT backend can use them.
#[derive(Clone, Debug, PartialEq)]
pub struct InferConfig {
    /// The file this config was read from, if any.
    pub source: Option<PathBuf>,

    // Model and engine.
    pub onnx_file: Option<PathBuf>,
    pub model_engine_file: Option<PathBuf>,
    pub int8_calib_file: Option<PathBuf>,
    pub labelfile_path: Option<PathBuf>,
    pub model_file: Option<PathBuf>,
    pub proto_file: Option<PathBuf>,
    pub uff_file: Option<PathBuf>,
    pub tlt_encoded_model: Option<PathBuf>,
    pub tlt_model_key: Option<String>,
    pub mean_file: Option<PathBuf>,
    pub custom_lib_path: Option<PathBuf>,
    pub parse_bbox_func_name: Option<String>,
    pub parse_classifier_func_name: Option<String>,
    pub engine_create_func_name: Option<String>,
    pub custom_network_config: Option<PathBuf>,
    pub uff_input_blob_name: Option<String>,
    /// `uff-input-dims` / `input-dims` (legacy): c;h;w;order.
    pub uff_input_dims: Option<Vec<u32>>,
    pub uff_input_order: Option<TensorOrder>,
    pub output_blob_names: Vec<String>,
    pub output_io_formats: Vec<String>,
    pub layer_device_precision: Vec<String>,
    pub network_mode: NetworkMode,
    pub gpu_id: u32,
    pub workspace_size: Option<u32>,
    pub enable_dla: bool,
    pub use_dla_core: u32,
    pub force_implicit_batch_dim: bool,

    // Network.
    pub network_type: NetworkType,
    /// Our built-in decoder (`parser=`); `None` means nvinfer's default for the network type.
    pub parser: Option<Parser>,
    pub num_detected_classes: u32,
    /// `infer-dims`: c;h;w of the network input, for models with dynamic dimensions.
    pub infer_dims: Option<[u32; 3]>,
    pub network_input_order: TensorOrder,
    pub batch_size: u32,

    // Pre-processing.
    pub net_scale_factor: f32,
    pub offsets: Vec<f32>,
    pub model_color_format: ModelColorFormat,
    pub maintain_aspect_ratio: bool,
    pub symmetric_padding: bool,
    pub scaling_filter: ScalingFilter,
    pub scaling_compute_hw: u32,

    // Element behaviour.
    pub process_mode: ProcessMode,
    pub unique_id: u32,
    /// `operate-on-gie-id` (alias `infer-on-gie-id`): -1 means any.
    pub operate_on_gie_id: i32,
    pub operate_on_class_ids: Vec<u32>,
    pub filter_out_class_ids: Vec<u32>,
    pub interval: u32,
    pub input_object_min_width: u32,
    pub input_object_min_height: u32,
    pub input_object_max_width: u32,
    pub input_object_max_height: u32,
    pub secondary_reinfer_interval: u32,
    pub output_tensor_meta: bool,
    pub output_instance_mask: bool,
    pub crop_objects_to_roi_boundary: bool,
    pub async_mode: bool,
    pub tensor_meta_pool_size: u32,

    // Post-processing.
    pub cluster_mode: ClusterMode,
    pub classifier_threshold: f32,
    pub classifier_type: Option<String>,
    pub segmentation_threshold: f32,
    pub segmentation_output_order: TensorOrder,
    pub class_attrs: ClassAttrsTable,
}
