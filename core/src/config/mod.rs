//! nvinfer configuration: DeepStream's `[property]` / `[class-attrs-*]` files in GLib key-file
//! (`.txt`) or YAML (`.yml`/`.yaml`) form, read into one typed [`InferConfig`].
//!
//! Field names are the nvinfer key names in snake_case; defaults are nvinfer's.

//!
//! Reading: [`InferConfig::from_file`] (by extension), [`InferConfig::from_key_file_str`],
//! [`InferConfig::from_yaml_str`]. Both forms become one untyped document that
//! [`InferConfig::set_key`]'s code interprets key by key, in nvinfer's order: `[property]`, then
//! `[class-attrs-all]`, then each `[class-attrs-N]` on top of `[class-attrs-all]`. Unknown and
//! legacy keys and unknown groups give a [`ConfigWarning`]; invalid values a [`ConfigError`]
//! naming file, group, key, value (and line, for key files).
//!
//! Writing: [`InferConfig::to_key_file_string`] writes every key that differs from nvinfer's
//! default, so reading it back gives the same config.
//!
//! Besides nvinfer's keys, `[property]` may name one of nvtl's built-in decoders with
//! `parser=` (see [`Parser`]); DeepStream's nvinfer ignores that key.

// ConfigError carries file, line, group, key and value by name so callers can match on them;
// configs are read once per model load, so the size of the error does not matter.
#![allow(clippy::result_large_err)]

mod class_attrs;
mod document;
mod enums;
mod error;
mod keyfile;
mod keys;
mod yaml;

pub use class_attrs::{ClassAttrs, ClassAttrsTable};
pub use enums::{
    ClusterMode, ModelColorFormat, NetworkMode, NetworkType, ProcessMode, ScalingFilter,
    TensorOrder,
};
pub use error::{ConfigError, ConfigWarning};
pub use keys::ConfigEntry;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

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
    pub parse_bbox_instance_mask_func_name: Option<String>,
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

    /// nvinfer keys nvtl accepts but does not act on (DeepStream runtime / TensorRT switches
    /// such as `disable-output-host-copy`), by key, value as written in key-file syntax.
    pub extra: BTreeMap<String, String>,
}

/// nvinfer's default `secondary-reinfer-interval` (`G_MAXINT`: never re-infer a tracked object).
pub const DEFAULT_SECONDARY_REINFER_INTERVAL: u32 = i32::MAX as u32;

/// nvinfer's defaults: `NvDsInferContext_ResetInitParams`, gst-nvinfer's element defaults and
/// `gstnvinfer_property_parser.h`.
///
/// `cluster-mode` defaults to 0 (OpenCV `groupRectangles()`). DeepStream builds without OpenCV
/// (the default since 6.2) turn that into NMS with topk 20 and IoU 0.5 at run time; nvtl
/// implements group-rectangles and keeps 0. `classifier-threshold` and `segmentation-threshold`
/// default to 0.
impl Default for InferConfig {
    fn default() -> Self {
        InferConfig {
            source: None,
            onnx_file: None,
            model_engine_file: None,
            int8_calib_file: None,
            labelfile_path: None,
            model_file: None,
            proto_file: None,
            uff_file: None,
            tlt_encoded_model: None,
            tlt_model_key: None,
            mean_file: None,
            custom_lib_path: None,
            parse_bbox_func_name: None,
            parse_bbox_instance_mask_func_name: None,
            parse_classifier_func_name: None,
            engine_create_func_name: None,
            custom_network_config: None,
            uff_input_blob_name: None,
            uff_input_dims: None,
            uff_input_order: None,
            output_blob_names: Vec::new(),
            output_io_formats: Vec::new(),
            layer_device_precision: Vec::new(),
            network_mode: NetworkMode::Fp32,
            gpu_id: 0,
            workspace_size: None,
            enable_dla: false,
            use_dla_core: 0,
            force_implicit_batch_dim: false,
            network_type: NetworkType::Detector,
            parser: None,
            num_detected_classes: 0,
            infer_dims: None,
            network_input_order: TensorOrder::Nchw,
            batch_size: 1,
            net_scale_factor: 1.0,
            offsets: Vec::new(),
            model_color_format: ModelColorFormat::Rgb,
            maintain_aspect_ratio: false,
            symmetric_padding: false,
            scaling_filter: ScalingFilter::Nearest,
            scaling_compute_hw: 0,
            process_mode: ProcessMode::Primary,
            unique_id: 15,
            operate_on_gie_id: -1,
            operate_on_class_ids: Vec::new(),
            filter_out_class_ids: Vec::new(),
            interval: 0,
            input_object_min_width: 0,
            input_object_min_height: 0,
            input_object_max_width: 0,
            input_object_max_height: 0,
            secondary_reinfer_interval: DEFAULT_SECONDARY_REINFER_INTERVAL,
            output_tensor_meta: false,
            output_instance_mask: false,
            crop_objects_to_roi_boundary: false,
            async_mode: false,
            tensor_meta_pool_size: 2,
            cluster_mode: ClusterMode::GroupRectangles,
            classifier_threshold: 0.0,
            classifier_type: None,
            segmentation_threshold: 0.0,
            segmentation_output_order: TensorOrder::Nchw,
            class_attrs: ClassAttrsTable::default(),
            extra: BTreeMap::new(),
        }
    }
}

/// A config as read, with what the reader had to say about it.
#[derive(Clone, Debug)]
pub struct LoadedConfig {
    pub config: InferConfig,
    pub warnings: Vec<ConfigWarning>,
}

/// A config as read, plus which keys the file set (the rest are defaults). For linters.
#[derive(Clone, Debug)]
pub struct ExplainedConfig {
    pub loaded: LoadedConfig,
    /// `(group, key)` pairs, keys by their canonical name (`gie-unique-id` for `unique-id`,
    /// `pre-cluster-threshold` for `threshold`, ...).
    pub from_file: BTreeSet<(String, String)>,
}

/// The two file forms nvinfer reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigFormat {
    /// GLib key file (`.txt` and anything that is not YAML).
    KeyFile,
    /// `.yml` / `.yaml`.
    Yaml,
}

impl ConfigFormat {
    /// By extension, as nvinfer picks its parser.
    pub fn of_path(path: &Path) -> ConfigFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("yml") || ext.eq_ignore_ascii_case("yaml") => {
                ConfigFormat::Yaml
            }
            _ => ConfigFormat::KeyFile,
        }
    }
}

impl InferConfig {
    /// Reads an nvinfer config file: YAML for `.yml`/`.yaml`, GLib key file otherwise.
    /// Relative paths inside resolve against the file's folder.
    pub fn from_file(path: &Path) -> Result<LoadedConfig, ConfigError> {
        Self::explain_file(path).map(|e| e.loaded)
    }

    /// [`InferConfig::from_file`], also telling which keys the file set.
    pub fn explain_file(path: &Path) -> Result<ExplainedConfig, ConfigError> {
        let bytes = std::fs::read(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ConfigError::NotFound {
                    path: path.to_path_buf(),
                }
            } else {
                ConfigError::Unreadable {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            ConfigError::Syntax {
                file: Some(path.to_path_buf()),
                line: Some(valid.iter().filter(|&&b| b == b'\n').count() + 1),
                message: "not valid UTF-8".into(),
            }
        })?;
        Self::explain_str(&text, ConfigFormat::of_path(path), Some(path))
    }

    /// Reads key-file text. `source` names the file in messages and is the base of relative
    /// paths; with `None`, paths stay as written.
    pub fn from_key_file_str(
        text: &str,
        source: Option<&Path>,
    ) -> Result<LoadedConfig, ConfigError> {
        Self::explain_str(text, ConfigFormat::KeyFile, source).map(|e| e.loaded)
    }

    /// Reads DeepStream YAML config text; `source` as for [`InferConfig::from_key_file_str`].
    pub fn from_yaml_str(text: &str, source: Option<&Path>) -> Result<LoadedConfig, ConfigError> {
        Self::explain_str(text, ConfigFormat::Yaml, source).map(|e| e.loaded)
    }

    /// Reads config text of either form, also telling which keys it set.
    pub fn explain_str(
        text: &str,
        format: ConfigFormat,
        source: Option<&Path>,
    ) -> Result<ExplainedConfig, ConfigError> {
        let doc = match format {
            ConfigFormat::KeyFile => keyfile::parse(text, source)?,
            ConfigFormat::Yaml => yaml::parse(text, source)?,
        };
        let applied = document::apply(doc, source)?;
        Ok(ExplainedConfig {
            loaded: LoadedConfig {
                config: applied.config,
                warnings: applied.warnings,
            },
            from_file: applied.from_file,
        })
    }

    /// A valid nvinfer key file holding every key whose value differs from nvinfer's default
    /// (`[class-attrs-N]` groups hold what differs from `[class-attrs-all]`). Paths are written
    /// as stored. Reading the text back gives an equal config (apart from `source`).
    pub fn to_key_file_string(&self) -> String {
        let defaults = InferConfig::default().entries();
        let mut groups: Vec<(String, Vec<String>)> = vec![(keys::PROPERTY.to_string(), Vec::new())];
        for id in self.class_attrs.per_class.keys() {
            groups.push((format!("{}{id}", keys::CLASS_ATTRS_PREFIX), Vec::new()));
        }
        for entry in self.entries() {
            let Some(value) = &entry.value else { continue };
            // Per-class entries are listed only where they differ from [class-attrs-all].
            let per_class = entry.group.starts_with(keys::CLASS_ATTRS_PREFIX)
                && entry.group != keys::CLASS_ATTRS_ALL;
            let is_default = defaults
                .iter()
                .any(|d| d.group == entry.group && d.key == entry.key && d.value == entry.value);
            if is_default && !per_class {
                continue;
            }
            let line = format!("{}={value}", entry.key);
            match groups.iter_mut().find(|(name, _)| *name == entry.group) {
                Some((_, lines)) => lines.push(line),
                None => groups.push((entry.group.clone(), vec![line])),
            }
        }
        // [class-attrs-all] before the classes, whatever order they were found in.
        groups.sort_by_key(|(name, _)| match keys::group_kind(name) {
            Ok(keys::GroupKind::Property) => 0,
            Ok(keys::GroupKind::ClassAll) => 1,
            _ => 2,
        });
        let mut out = String::new();
        for (i, (name, lines)) in groups.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(&format!("[{name}]\n"));
            for line in lines {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
