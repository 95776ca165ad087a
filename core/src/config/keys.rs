//! The one place that knows every nvinfer key: how to read its value ([`InferConfig::apply_key`])
//! and how to write it back ([`InferConfig::entries`]). Both file forms go through here.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use super::error::{ConfigError, ConfigWarning, KeyCtx};
use super::keyfile::{is_blank, join_list, split_list, unescape};
use super::{
    ClassAttrs, ClusterMode, InferConfig, ModelColorFormat, NetworkMode, NetworkType, ProcessMode,
    ScalingFilter, TensorOrder,
};
use crate::decode::Parser;

pub(crate) const PROPERTY: &str = "property";
pub(crate) const CLASS_ATTRS_PREFIX: &str = "class-attrs-";
pub(crate) const CLASS_ATTRS_ALL: &str = "class-attrs-all";

/// nvinfer's `NVDSINFER_MAX_BATCH_SIZE`.
const MAX_BATCH_SIZE: i64 = 1024;
/// nvinfer's `_MAX_CHANNELS`: at most this many `offsets`.
const MAX_OFFSETS: usize = 4;

/// nvinfer keys nvtl does not interpret, kept verbatim in [`InferConfig::extra`] (checked to be
/// of the right type) so that a config round-trips. Mostly DeepStream runtime / TensorRT keys.
const KEPT_KEYS: &[(&str, ValueKind)] = &[
    ("input-tensor-from-meta", ValueKind::Bool),
    ("disable-output-host-copy", ValueKind::Bool),
    ("auto-inc-mem", ValueKind::Bool),
    ("max-gpu-mem-per", ValueKind::Number),
    ("dump-input-tensor", ValueKind::Bool),
    ("dump-output-tensor", ValueKind::Bool),
];

#[derive(Clone, Copy, Debug)]
enum ValueKind {
    Bool,
    Number,
}

/// Legacy keys whose replacement wins when both are given, as in nvinfer. They are applied
/// after every other `[property]` key.
const SUPERSEDED: &[(&str, &str)] = &[
    ("is-classifier", "network-type"),
    ("enable-dbscan", "cluster-mode"),
    ("input-dims", "infer-dims"),
    ("uff-input-dims", "infer-dims"),
];

/// Legacy keys that are dropped when their replacement is present. (`input-dims` is still kept
/// in `uff_input_dims`; it just does not set `infer_dims` then.)
const DROPPED_WHEN_REPLACED: &[&str] = &["is-classifier", "enable-dbscan"];

pub(crate) fn is_superseded_legacy(key: &str) -> bool {
    SUPERSEDED.iter().any(|(legacy, _)| *legacy == key)
}

/// The replacement of a legacy `key` when the group also sets it.
pub(crate) fn replacement_present(key: &str, present: &BTreeSet<&str>) -> Option<&'static str> {
    SUPERSEDED
        .iter()
        .find(|(legacy, replacement)| {
            *legacy == key
                && DROPPED_WHEN_REPLACED.contains(legacy)
                && present.contains(replacement)
        })
        .map(|(_, replacement)| *replacement)
}

pub(crate) enum GroupKind {
    Property,
    ClassAll,
    Class(u32),
    Unknown,
}

/// Classifies a group name; `Err` (with the reason) for a `class-attrs-` group whose suffix is
/// neither `all` nor a class id, which nvinfer rejects.
pub(crate) fn group_kind(name: &str) -> Result<GroupKind, String> {
    if name == PROPERTY {
        return Ok(GroupKind::Property);
    }
    let Some(suffix) = name.strip_prefix(CLASS_ATTRS_PREFIX) else {
        return Ok(GroupKind::Unknown);
    };
    if suffix == "all" {
        return Ok(GroupKind::ClassAll);
    }
    if suffix.is_empty() || !suffix.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "class attributes go in [{CLASS_ATTRS_ALL}] or [{CLASS_ATTRS_PREFIX}<class-id>]"
        ));
    }
    suffix
        .parse::<u32>()
        .map(GroupKind::Class)
        .map_err(|_| format!("class id {suffix} is out of range"))
}

/// What applying one key did.
pub(crate) struct Outcome {
    /// The key's canonical name (aliases mapped), `None` when the key was ignored.
    pub canonical: Option<&'static str>,
    pub warning: Option<ConfigWarning>,
}

impl Outcome {
    fn set(key: &'static str) -> Self {
        Outcome {
            canonical: Some(key),
            warning: None,
        }
    }
    fn set_warn(key: &'static str, warning: ConfigWarning) -> Self {
        Outcome {
            canonical: Some(key),
            warning: Some(warning),
        }
    }
    fn ignored(warning: ConfigWarning) -> Self {
        Outcome {
            canonical: None,
            warning: Some(warning),
        }
    }
}

/// One key's current value, in key-file syntax; `None` for an unset optional key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigEntry {
    pub group: String,
    pub key: String,
    pub value: Option<String>,
}

impl InferConfig {
    /// Interprets one key as nvinfer does and stores it. Relative paths resolve against the
    /// folder of [`InferConfig::source`]. A `[class-attrs-N]` key applies on top of the current
    /// `[class-attrs-all]` (later changes to `all` do not reach classes already set).
    ///
    /// Returns a warning for unknown, legacy or ignored keys and unknown groups; an error naming
    /// group, key and value when the value is invalid.
    pub fn set_key(
        &mut self,
        group: &str,
        key: &str,
        value: &str,
    ) -> Result<Option<ConfigWarning>, ConfigError> {
        let source = self.source.clone();
        let ctx = KeyCtx {
            file: source.as_deref(),
            line: None,
            group,
            key,
            value,
        };
        let outcome = match group_kind(group) {
            Ok(GroupKind::Unknown) => {
                return Ok(Some(ConfigWarning {
                    key: Some(key.to_string()),
                    ..group_warning(&ctx, "unknown group, ignored")
                }))
            }
            Err(reason) => {
                return Err(ConfigError::InvalidGroup {
                    file: source,
                    line: None,
                    group: group.to_string(),
                    reason,
                })
            }
            Ok(_) => self.apply_key(ctx)?,
        };
        Ok(outcome.warning)
    }

    /// [`InferConfig::set_key`] with the location already known; the group must be
    /// `property` or a valid `class-attrs-*` group.
    pub(crate) fn apply_key(&mut self, ctx: KeyCtx<'_>) -> Result<Outcome, ConfigError> {
        match group_kind(ctx.group) {
            Ok(GroupKind::Property) => self.apply_property(ctx),
            Ok(GroupKind::ClassAll) => apply_class_attr(&mut self.class_attrs.all, ctx),
            Ok(GroupKind::Class(id)) => {
                let all = &self.class_attrs.all;
                let attrs = self
                    .class_attrs
                    .per_class
                    .entry(id)
                    .or_insert_with(|| all.clone());
                apply_class_attr(attrs, ctx)
            }
            Ok(GroupKind::Unknown) | Err(_) => Ok(Outcome::ignored(group_warning(
                &ctx,
                "unknown group, ignored",
            ))),
        }
    }

    fn apply_property(&mut self, ctx: KeyCtx<'_>) -> Result<Outcome, ConfigError> {
        let v = Value::new(ctx, self.source.as_deref());
        let key = ctx.key;
        let canonical: &'static str = match key {
            // Model and engine.
            "onnx-file" => set(&mut self.onnx_file, v.path()?, "onnx-file"),
            "model-engine-file" => set(&mut self.model_engine_file, v.path()?, "model-engine-file"),
            "int8-calib-file" => set(&mut self.int8_calib_file, v.path()?, "int8-calib-file"),
            "labelfile-path" => set(&mut self.labelfile_path, v.path()?, "labelfile-path"),
            "model-file" => set(&mut self.model_file, v.path()?, "model-file"),
            "proto-file" => set(&mut self.proto_file, v.path()?, "proto-file"),
            "uff-file" => set(&mut self.uff_file, v.path()?, "uff-file"),
            "tlt-encoded-model" => set(&mut self.tlt_encoded_model, v.path()?, "tlt-encoded-model"),
            "tlt-model-key" => set(&mut self.tlt_model_key, v.text(), "tlt-model-key"),
            "mean-file" => set(&mut self.mean_file, v.path()?, "mean-file"),
            "custom-lib-path" => set(&mut self.custom_lib_path, v.path()?, "custom-lib-path"),
            "parse-bbox-func-name" => set(
                &mut self.parse_bbox_func_name,
                v.text(),
                "parse-bbox-func-name",
            ),
            "parse-bbox-instance-mask-func-name" => set(
                &mut self.parse_bbox_instance_mask_func_name,
                v.text(),
                "parse-bbox-instance-mask-func-name",
            ),
            "parse-classifier-func-name" => set(
                &mut self.parse_classifier_func_name,
                v.text(),
                "parse-classifier-func-name",
            ),
            "engine-create-func-name" => set(
                &mut self.engine_create_func_name,
                v.text(),
                "engine-create-func-name",
            ),
            // nvinfer hands this path to the custom library unresolved.
            "custom-network-config" => set(
                &mut self.custom_network_config,
                v.text().map(PathBuf::from),
                "custom-network-config",
            ),
            "uff-input-blob-name" => set(
                &mut self.uff_input_blob_name,
                v.text(),
                "uff-input-blob-name",
            ),
            "uff-input-dims" | "input-dims" => {
                let dims = v.u32_list()?;
                if dims.len() != 4 {
                    return Err(ctx.invalid(format!(
                        "expected 4 values c;h;w;order, found {}",
                        dims.len()
                    )));
                }
                let order = match dims[3] {
                    0 => Some(TensorOrder::Nchw),
                    1 => Some(TensorOrder::Nhwc),
                    2 => None,
                    other => {
                        return Err(ctx.invalid(format!(
                            "input order {other} is not 0 (NCHW), 1 (NHWC) or 2 (NC)"
                        )))
                    }
                };
                let message = if self.infer_dims.is_none() {
                    self.infer_dims = Some(positive_dims(ctx, &dims[..3])?);
                    self.uff_input_order = order;
                    "deprecated; use infer-dims (and network-input-order)"
                } else {
                    "deprecated, and ignored because infer-dims is set"
                };
                self.uff_input_dims = Some(dims);
                return Ok(Outcome::set_warn("uff-input-dims", ctx.warning(message)));
            }
            "uff-input-order" => {
                self.uff_input_order = match v.int_in(0, 2)? {
                    0 => Some(TensorOrder::Nchw),
                    1 => Some(TensorOrder::Nhwc),
                    _ => None,
                };
                "uff-input-order"
            }
            "output-blob-names" => set(
                &mut self.output_blob_names,
                v.text_list(),
                "output-blob-names",
            ),
            "output-io-formats" => set(
                &mut self.output_io_formats,
                v.text_list(),
                "output-io-formats",
            ),
            "layer-device-precision" => set(
                &mut self.layer_device_precision,
                v.text_list(),
                "layer-device-precision",
            ),
            "network-mode" => {
                self.network_mode = match v.int_in(0, 3)? {
                    0 => NetworkMode::Fp32,
                    1 => NetworkMode::Int8,
                    2 => NetworkMode::Fp16,
                    _ => NetworkMode::Best,
                };
                "network-mode"
            }
            "gpu-id" => set(&mut self.gpu_id, v.u32()?, "gpu-id"),
            "workspace-size" => {
                let size = v.int()?;
                self.workspace_size = u32::try_from(size).ok().filter(|&s| s > 0);
                if self.workspace_size.is_none() {
                    return Ok(Outcome::set_warn(
                        "workspace-size",
                        ctx.warning("not a positive size in MB; TensorRT's default is used"),
                    ));
                }
                "workspace-size"
            }
            "enable-dla" => set(&mut self.enable_dla, v.bool()?, "enable-dla"),
            "use-dla-core" => set(&mut self.use_dla_core, v.u32()?, "use-dla-core"),
            "force-implicit-batch-dim" => set(
                &mut self.force_implicit_batch_dim,
                v.bool()?,
                "force-implicit-batch-dim",
            ),

            // Network.
            "network-type" => {
                self.network_type = match v.int()? {
                    0 => NetworkType::Detector,
                    1 => NetworkType::Classifier,
                    2 => NetworkType::Segmentation,
                    3 => NetworkType::InstanceSegmentation,
                    100 => NetworkType::Other,
                    _ => {
                        return Err(ctx.invalid(
                            "expected 0 (detector), 1 (classifier), 2 (segmentation), 3 (instance segmentation) or 100 (other)",
                        ))
                    }
                };
                "network-type"
            }
            "is-classifier" => {
                self.network_type = if v.bool()? {
                    NetworkType::Classifier
                } else {
                    NetworkType::Detector
                };
                return Ok(Outcome::set_warn(
                    "network-type",
                    ctx.warning("deprecated; use network-type"),
                ));
            }
            "parser" => {
                let name = v.text().unwrap_or_default();
                let parser = Parser::from_str(&name).map_err(|e| ctx.invalid(e.to_string()))?;
                set(&mut self.parser, Some(parser), "parser")
            }
            "num-detected-classes" => set(
                &mut self.num_detected_classes,
                v.u32()?,
                "num-detected-classes",
            ),
            "infer-dims" => {
                let dims = v.u32_list()?;
                if dims.len() != 3 {
                    return Err(
                        ctx.invalid(format!("expected 3 values c;h;w, found {}", dims.len()))
                    );
                }
                set(
                    &mut self.infer_dims,
                    Some(positive_dims(ctx, &dims)?),
                    "infer-dims",
                )
            }
            "network-input-order" => set(
                &mut self.network_input_order,
                v.order()?,
                "network-input-order",
            ),
            "batch-size" => {
                let batch = v.int()?;
                if !(1..=MAX_BATCH_SIZE).contains(&batch) {
                    return Err(ctx.invalid(format!("must be in 1..={MAX_BATCH_SIZE}")));
                }
                set(&mut self.batch_size, batch as u32, "batch-size")
            }

            // Pre-processing.
            "net-scale-factor" => set(&mut self.net_scale_factor, v.f32()?, "net-scale-factor"),
            "offsets" => {
                let offsets = v.f32_list()?;
                if offsets.len() > MAX_OFFSETS {
                    return Err(ctx.invalid(format!(
                        "at most {MAX_OFFSETS} offsets (one per channel), found {}",
                        offsets.len()
                    )));
                }
                set(&mut self.offsets, offsets, "offsets")
            }
            "model-color-format" => {
                self.model_color_format = match v.int_in(0, 2)? {
                    0 => ModelColorFormat::Rgb,
                    1 => ModelColorFormat::Bgr,
                    _ => ModelColorFormat::Gray,
                };
                "model-color-format"
            }
            "maintain-aspect-ratio" => set(
                &mut self.maintain_aspect_ratio,
                v.bool()?,
                "maintain-aspect-ratio",
            ),
            "symmetric-padding" => set(&mut self.symmetric_padding, v.bool()?, "symmetric-padding"),
            "scaling-filter" => {
                // NvBufSurfTransform_Inter: 0 nearest, 1 bilinear, 2..5 GPU/VIC algorithms,
                // 6 the platform default.
                match v.int_in(0, 6)? {
                    0 => self.scaling_filter = ScalingFilter::Nearest,
                    1 => self.scaling_filter = ScalingFilter::Bilinear,
                    _ => {
                        self.scaling_filter = ScalingFilter::Bilinear;
                        return Ok(Outcome::set_warn(
                            "scaling-filter",
                            ctx.warning(
                                "only 0 (nearest) and 1 (bilinear) exist on CPU; using bilinear",
                            ),
                        ));
                    }
                }
                "scaling-filter"
            }
            "scaling-compute-hw" => set(
                &mut self.scaling_compute_hw,
                v.int_in(0, 2)? as u32,
                "scaling-compute-hw",
            ),

            // Element behaviour.
            "process-mode" => {
                self.process_mode = match v.int_in(1, 2)? {
                    1 => ProcessMode::Primary,
                    _ => ProcessMode::Secondary,
                };
                "process-mode"
            }
            "gie-unique-id" | "unique-id" => {
                let id = v.u32()?;
                if id == 0 {
                    return Err(ctx.invalid("must be > 0"));
                }
                self.unique_id = id;
                if key == "unique-id" {
                    return Ok(Outcome::set_warn(
                        "gie-unique-id",
                        ctx.warning("DeepStream's nvinfer reads gie-unique-id from config files and ignores unique-id"),
                    ));
                }
                "gie-unique-id"
            }
            "operate-on-gie-id" | "infer-on-gie-id" => {
                let id = v.int()?;
                let id = i32::try_from(id).map_err(|_| ctx.invalid("out of range"))?;
                if id < -1 {
                    return Err(ctx.invalid("must be -1 (any) or a gie-unique-id"));
                }
                self.operate_on_gie_id = id;
                if key == "infer-on-gie-id" {
                    return Ok(Outcome::set_warn(
                        "operate-on-gie-id",
                        ctx.warning("DeepStream's nvinfer reads operate-on-gie-id from config files and ignores infer-on-gie-id"),
                    ));
                }
                "operate-on-gie-id"
            }
            "operate-on-class-ids" => set(
                &mut self.operate_on_class_ids,
                v.u32_list()?,
                "operate-on-class-ids",
            ),
            "filter-out-class-ids" => set(
                &mut self.filter_out_class_ids,
                v.u32_list()?,
                "filter-out-class-ids",
            ),
            "interval" => set(&mut self.interval, v.u32()?, "interval"),
            "input-object-min-width" => set(
                &mut self.input_object_min_width,
                v.u32()?,
                "input-object-min-width",
            ),
            "input-object-min-height" => set(
                &mut self.input_object_min_height,
                v.u32()?,
                "input-object-min-height",
            ),
            "input-object-max-width" => set(
                &mut self.input_object_max_width,
                v.u32()?,
                "input-object-max-width",
            ),
            "input-object-max-height" => set(
                &mut self.input_object_max_height,
                v.u32()?,
                "input-object-max-height",
            ),
            "secondary-reinfer-interval" => set(
                &mut self.secondary_reinfer_interval,
                v.u32()?,
                "secondary-reinfer-interval",
            ),
            "output-tensor-meta" => set(
                &mut self.output_tensor_meta,
                v.bool()?,
                "output-tensor-meta",
            ),
            "output-instance-mask" => set(
                &mut self.output_instance_mask,
                v.bool()?,
                "output-instance-mask",
            ),
            "crop-objects-to-roi-boundary" => set(
                &mut self.crop_objects_to_roi_boundary,
                v.bool()?,
                "crop-objects-to-roi-boundary",
            ),
            "classifier-async-mode" => {
                set(&mut self.async_mode, v.bool()?, "classifier-async-mode")
            }
            "tensor-meta-pool-size" => set(
                &mut self.tensor_meta_pool_size,
                v.u32()?,
                "tensor-meta-pool-size",
            ),

            // Post-processing.
            "cluster-mode" => {
                self.cluster_mode = match v.int_in(0, 4)? {
                    0 => ClusterMode::GroupRectangles,
                    1 => ClusterMode::Dbscan,
                    2 => ClusterMode::Nms,
                    3 => ClusterMode::Hybrid,
                    _ => ClusterMode::None,
                };
                "cluster-mode"
            }
            "enable-dbscan" => {
                if v.bool()? {
                    self.cluster_mode = ClusterMode::Dbscan;
                }
                return Ok(Outcome::set_warn(
                    "cluster-mode",
                    ctx.warning("deprecated; use cluster-mode=1"),
                ));
            }
            "classifier-threshold" => set(
                &mut self.classifier_threshold,
                v.non_negative_f32()?,
                "classifier-threshold",
            ),
            "classifier-type" => set(&mut self.classifier_type, v.text(), "classifier-type"),
            "segmentation-threshold" => set(
                &mut self.segmentation_threshold,
                v.non_negative_f32()?,
                "segmentation-threshold",
            ),
            "segmentation-output-order" => set(
                &mut self.segmentation_output_order,
                v.order()?,
                "segmentation-output-order",
            ),

            "parse-func" => {
                return Ok(Outcome::ignored(ctx.warning(
                    "legacy key, ignored (use parse-bbox-func-name / parser)",
                )))
            }
            other => {
                if let Some((name, kind)) = KEPT_KEYS.iter().find(|(name, _)| *name == other) {
                    match kind {
                        ValueKind::Bool => {
                            v.bool()?;
                        }
                        ValueKind::Number => {
                            v.f32()?;
                        }
                    }
                    self.extra.insert(name.to_string(), v.raw.to_string());
                    return Ok(Outcome::set_warn(
                        name,
                        ctx.warning("kept, but has no effect in nvtl"),
                    ));
                }
                return Ok(Outcome::ignored(ctx.warning("unknown key, ignored")));
            }
        };
        Ok(Outcome::set(canonical))
    }

    /// Every key of every group with its current value, in the order a config file lists them:
    /// `[property]`, `[class-attrs-all]`, then each `[class-attrs-N]` (for those, only the keys
    /// that differ from `[class-attrs-all]`).
    pub fn entries(&self) -> Vec<ConfigEntry> {
        let mut out = Vec::new();
        let mut push = |group: &str, key: &str, value: Option<String>| {
            out.push(ConfigEntry {
                group: group.to_string(),
                key: key.to_string(),
                value,
            })
        };
        for (key, value) in self.property_entries() {
            push(PROPERTY, key, value);
        }
        for (key, value) in &self.extra {
            push(PROPERTY, key, Some(value.clone()));
        }
        let all = class_attr_entries(&self.class_attrs.all);
        for (key, value) in &all {
            push(CLASS_ATTRS_ALL, key, value.clone());
        }
        for (id, attrs) in &self.class_attrs.per_class {
            let group = format!("{CLASS_ATTRS_PREFIX}{id}");
            for ((key, value), (_, base)) in class_attr_entries(attrs).into_iter().zip(&all) {
                if value != *base {
                    push(&group, key, value);
                }
            }
        }
        out
    }

    fn property_entries(&self) -> Vec<(&'static str, Option<String>)> {
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| escape_text(&p.to_string_lossy()));
        let text = |t: &Option<String>| t.as_ref().map(|t| escape_text(t));
        let order = |o: TensorOrder| Some((o as i32).to_string());
        vec![
            ("gpu-id", Some(self.gpu_id.to_string())),
            ("gie-unique-id", Some(self.unique_id.to_string())),
            ("process-mode", Some((self.process_mode as i32).to_string())),
            ("network-type", Some((self.network_type as i32).to_string())),
            ("parser", self.parser.map(|p| p.name().to_string())),
            ("onnx-file", path(&self.onnx_file)),
            ("model-engine-file", path(&self.model_engine_file)),
            ("int8-calib-file", path(&self.int8_calib_file)),
            ("labelfile-path", path(&self.labelfile_path)),
            ("model-file", path(&self.model_file)),
            ("proto-file", path(&self.proto_file)),
            ("uff-file", path(&self.uff_file)),
            ("tlt-encoded-model", path(&self.tlt_encoded_model)),
            ("tlt-model-key", text(&self.tlt_model_key)),
            ("mean-file", path(&self.mean_file)),
            ("custom-lib-path", path(&self.custom_lib_path)),
            ("parse-bbox-func-name", text(&self.parse_bbox_func_name)),
            (
                "parse-bbox-instance-mask-func-name",
                text(&self.parse_bbox_instance_mask_func_name),
            ),
            (
                "parse-classifier-func-name",
                text(&self.parse_classifier_func_name),
            ),
            (
                "engine-create-func-name",
                text(&self.engine_create_func_name),
            ),
            ("custom-network-config", path(&self.custom_network_config)),
            ("uff-input-blob-name", text(&self.uff_input_blob_name)),
            (
                "uff-input-dims",
                self.uff_input_dims.as_ref().map(|d| num_list(d)),
            ),
            (
                "uff-input-order",
                self.uff_input_order.map(|o| (o as i32).to_string()),
            ),
            (
                "output-blob-names",
                Some(join_list(&self.output_blob_names)),
            ),
            (
                "output-io-formats",
                Some(join_list(&self.output_io_formats)),
            ),
            (
                "layer-device-precision",
                Some(join_list(&self.layer_device_precision)),
            ),
            ("network-mode", Some((self.network_mode as i32).to_string())),
            ("workspace-size", self.workspace_size.map(|s| s.to_string())),
            ("enable-dla", Some(bool_text(self.enable_dla))),
            ("use-dla-core", Some(self.use_dla_core.to_string())),
            (
                "force-implicit-batch-dim",
                Some(bool_text(self.force_implicit_batch_dim)),
            ),
            (
                "num-detected-classes",
                Some(self.num_detected_classes.to_string()),
            ),
            ("infer-dims", self.infer_dims.map(|d| num_list(&d))),
            ("network-input-order", order(self.network_input_order)),
            ("batch-size", Some(self.batch_size.to_string())),
            ("net-scale-factor", Some(self.net_scale_factor.to_string())),
            ("offsets", Some(num_list(&self.offsets))),
            (
                "model-color-format",
                Some((self.model_color_format as i32).to_string()),
            ),
            (
                "maintain-aspect-ratio",
                Some(bool_text(self.maintain_aspect_ratio)),
            ),
            ("symmetric-padding", Some(bool_text(self.symmetric_padding))),
            (
                "scaling-filter",
                Some((self.scaling_filter as i32).to_string()),
            ),
            (
                "scaling-compute-hw",
                Some(self.scaling_compute_hw.to_string()),
            ),
            (
                "operate-on-gie-id",
                Some(self.operate_on_gie_id.to_string()),
            ),
            (
                "operate-on-class-ids",
                Some(num_list(&self.operate_on_class_ids)),
            ),
            (
                "filter-out-class-ids",
                Some(num_list(&self.filter_out_class_ids)),
            ),
            ("interval", Some(self.interval.to_string())),
            (
                "input-object-min-width",
                Some(self.input_object_min_width.to_string()),
            ),
            (
                "input-object-min-height",
                Some(self.input_object_min_height.to_string()),
            ),
            (
                "input-object-max-width",
                Some(self.input_object_max_width.to_string()),
            ),
            (
                "input-object-max-height",
                Some(self.input_object_max_height.to_string()),
            ),
            (
                "secondary-reinfer-interval",
                Some(self.secondary_reinfer_interval.to_string()),
            ),
            (
                "output-tensor-meta",
                Some(bool_text(self.output_tensor_meta)),
            ),
            (
                "output-instance-mask",
                Some(bool_text(self.output_instance_mask)),
            ),
            (
                "crop-objects-to-roi-boundary",
                Some(bool_text(self.crop_objects_to_roi_boundary)),
            ),
            ("classifier-async-mode", Some(bool_text(self.async_mode))),
            (
                "tensor-meta-pool-size",
                Some(self.tensor_meta_pool_size.to_string()),
            ),
            ("cluster-mode", Some((self.cluster_mode as i32).to_string())),
            (
                "classifier-threshold",
                Some(self.classifier_threshold.to_string()),
            ),
            ("classifier-type", text(&self.classifier_type)),
            (
                "segmentation-threshold",
                Some(self.segmentation_threshold.to_string()),
            ),
            (
                "segmentation-output-order",
                order(self.segmentation_output_order),
            ),
        ]
    }
}

fn class_attr_entries(a: &ClassAttrs) -> Vec<(&'static str, Option<String>)> {
    let color = |c: &Option<[f32; 4]>| c.map(|c| num_list(&c));
    vec![
        (
            "pre-cluster-threshold",
            Some(a.pre_cluster_threshold.to_string()),
        ),
        (
            "post-cluster-threshold",
            Some(a.post_cluster_threshold.to_string()),
        ),
        ("nms-iou-threshold", Some(a.nms_iou_threshold.to_string())),
        ("topk", Some(a.topk.to_string())),
        ("eps", Some(a.eps.to_string())),
        ("group-threshold", Some(a.group_threshold.to_string())),
        ("minBoxes", Some(a.min_boxes.to_string())),
        ("dbscan-min-score", Some(a.dbscan_min_score.to_string())),
        ("roi-top-offset", Some(a.roi_top_offset.to_string())),
        ("roi-bottom-offset", Some(a.roi_bottom_offset.to_string())),
        ("detected-min-w", Some(a.detected_min_w.to_string())),
        ("detected-min-h", Some(a.detected_min_h.to_string())),
        ("detected-max-w", Some(a.detected_max_w.to_string())),
        ("detected-max-h", Some(a.detected_max_h.to_string())),
        ("border-color", color(&a.border_color)),
        ("bg-color", color(&a.bg_color)),
    ]
}

fn apply_class_attr(attrs: &mut ClassAttrs, ctx: KeyCtx<'_>) -> Result<Outcome, ConfigError> {
    let v = Value::new(ctx, None);
    let canonical = match ctx.key {
        "pre-cluster-threshold" => set(
            &mut attrs.pre_cluster_threshold,
            v.non_negative_f32()?,
            "pre-cluster-threshold",
        ),
        "threshold" => {
            attrs.pre_cluster_threshold = v.non_negative_f32()?;
            return Ok(Outcome::set_warn(
                "pre-cluster-threshold",
                ctx.warning("deprecated; use pre-cluster-threshold"),
            ));
        }
        "post-cluster-threshold" => set(
            &mut attrs.post_cluster_threshold,
            v.non_negative_f32()?,
            "post-cluster-threshold",
        ),
        "nms-iou-threshold" => {
            let iou = v.f32()?;
            if !(0.0..=1.0).contains(&iou) {
                return Err(ctx.invalid("must be between 0 and 1"));
            }
            set(&mut attrs.nms_iou_threshold, iou, "nms-iou-threshold")
        }
        "topk" => {
            let topk = v.int()?;
            if !(-1..=i64::from(i32::MAX)).contains(&topk) {
                return Err(ctx.invalid("must be >= 0 (or -1 for no limit)"));
            }
            attrs.topk = topk as i32;
            if topk == -1 {
                return Ok(Outcome::set_warn(
                    "topk",
                    ctx.warning("-1 is nvinfer's default but DeepStream's nvinfer rejects it in a config file; leave topk out instead"),
                ));
            }
            "topk"
        }
        "eps" => set(&mut attrs.eps, v.non_negative_f32()?, "eps"),
        "group-threshold" => set(
            &mut attrs.group_threshold,
            v.non_negative_i32()?,
            "group-threshold",
        ),
        "minBoxes" => set(&mut attrs.min_boxes, v.non_negative_i32()?, "minBoxes"),
        "dbscan-min-score" => set(
            &mut attrs.dbscan_min_score,
            v.non_negative_f32()?,
            "dbscan-min-score",
        ),
        "roi-top-offset" => set(&mut attrs.roi_top_offset, v.u32()?, "roi-top-offset"),
        "roi-bottom-offset" => set(&mut attrs.roi_bottom_offset, v.u32()?, "roi-bottom-offset"),
        "detected-min-w" => set(&mut attrs.detected_min_w, v.u32()?, "detected-min-w"),
        "detected-min-h" => set(&mut attrs.detected_min_h, v.u32()?, "detected-min-h"),
        "detected-max-w" => set(&mut attrs.detected_max_w, v.u32()?, "detected-max-w"),
        "detected-max-h" => set(&mut attrs.detected_max_h, v.u32()?, "detected-max-h"),
        "border-color" => set(&mut attrs.border_color, Some(v.color()?), "border-color"),
        "bg-color" => set(&mut attrs.bg_color, Some(v.color()?), "bg-color"),
        _ => return Ok(Outcome::ignored(ctx.warning("unknown key, ignored"))),
    };
    Ok(Outcome::set(canonical))
}

/// Stores `value` and hands back the canonical key name, so each match arm stays one line.
fn set<T>(field: &mut T, value: T, key: &'static str) -> &'static str {
    *field = value;
    key
}

fn group_warning(ctx: &KeyCtx<'_>, message: &str) -> ConfigWarning {
    ConfigWarning {
        key: None,
        ..ctx.warning(message)
    }
}

fn positive_dims(ctx: KeyCtx<'_>, dims: &[u32]) -> Result<[u32; 3], ConfigError> {
    match dims {
        [c, h, w] if *c > 0 && *h > 0 && *w > 0 => Ok([*c, *h, *w]),
        _ => Err(ctx.invalid("dimensions must be > 0")),
    }
}

fn bool_text(b: bool) -> String {
    (if b { "1" } else { "0" }).to_string()
}

fn escape_text(text: &str) -> String {
    super::keyfile::escape(text, false)
}

fn num_list<T: ToString>(items: &[T]) -> String {
    let texts: Vec<String> = items.iter().map(ToString::to_string).collect();
    join_list(&texts)
}

/// One raw value with the typed readers nvinfer's keys need.
struct Value<'a> {
    ctx: KeyCtx<'a>,
    /// Trimmed, still escaped.
    raw: &'a str,
    /// The config file's folder, for relative paths.
    base: Option<&'a Path>,
}

impl<'a> Value<'a> {
    fn new(ctx: KeyCtx<'a>, source: Option<&'a Path>) -> Self {
        Value {
            ctx,
            raw: ctx.value.trim_matches(is_blank),
            base: source.and_then(Path::parent),
        }
    }

    fn invalid_number(&self, expected: &str) -> ConfigError {
        let hint = if self.raw.contains('#') {
            " (key files have no end-of-line comments)"
        } else {
            ""
        };
        self.ctx.invalid(format!("expected {expected}{hint}"))
    }

    fn text(&self) -> Option<String> {
        Some(unescape(self.raw)).filter(|t| !t.is_empty())
    }

    /// Relative paths resolve against the config file's folder, as nvinfer does.
    fn path(&self) -> Result<Option<PathBuf>, ConfigError> {
        let Some(text) = self.text() else {
            return Ok(None);
        };
        if text.contains('\0') {
            return Err(self.ctx.invalid("a path cannot contain NUL"));
        }
        let path = Path::new(&text);
        let joined = match self.base {
            Some(base) if path.is_relative() => base.join(path),
            _ => path.to_path_buf(),
        };
        let cleaned: PathBuf = joined
            .components()
            .filter(|c| *c != Component::CurDir)
            .collect();
        Ok(Some(if cleaned.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            cleaned
        }))
    }

    fn text_list(&self) -> Vec<String> {
        split_list(self.raw)
            .iter()
            .map(|item| unescape(item.trim_matches(is_blank)))
            .collect()
    }

    fn int(&self) -> Result<i64, ConfigError> {
        parse_int(self.raw).ok_or_else(|| self.invalid_number("an integer"))
    }

    fn int_in(&self, low: i64, high: i64) -> Result<i64, ConfigError> {
        let value = self.int()?;
        if (low..=high).contains(&value) {
            Ok(value)
        } else {
            Err(self.ctx.invalid(format!("must be in {low}..={high}")))
        }
    }

    fn u32(&self) -> Result<u32, ConfigError> {
        let value = self.int()?;
        u32::try_from(value).map_err(|_| {
            if value < 0 {
                self.ctx.invalid("must be >= 0")
            } else {
                self.ctx.invalid("too large")
            }
        })
    }

    fn non_negative_i32(&self) -> Result<i32, ConfigError> {
        let value = self.int()?;
        if value < 0 {
            return Err(self.ctx.invalid("must be >= 0"));
        }
        i32::try_from(value).map_err(|_| self.ctx.invalid("too large"))
    }

    fn f32(&self) -> Result<f32, ConfigError> {
        parse_f32(self.raw).ok_or_else(|| self.invalid_number("a finite number"))
    }

    fn non_negative_f32(&self) -> Result<f32, ConfigError> {
        let value = self.f32()?;
        if value < 0.0 {
            return Err(self.ctx.invalid("must be >= 0"));
        }
        Ok(value)
    }

    fn bool(&self) -> Result<bool, ConfigError> {
        match self.raw.to_ascii_lowercase().as_str() {
            "1" | "true" => Ok(true),
            "0" | "false" => Ok(false),
            _ => Err(self.invalid_number("a boolean (0, 1, true or false)")),
        }
    }

    fn order(&self) -> Result<TensorOrder, ConfigError> {
        Ok(match self.int_in(0, 1)? {
            0 => TensorOrder::Nchw,
            _ => TensorOrder::Nhwc,
        })
    }

    fn items(&self) -> Vec<&str> {
        let mut items: Vec<&str> = self
            .raw
            .split(';')
            .map(|s| s.trim_matches(is_blank))
            .collect();
        if items.last() == Some(&"") {
            items.pop();
        }
        items
    }

    fn u32_list(&self) -> Result<Vec<u32>, ConfigError> {
        self.items()
            .into_iter()
            .map(|item| match parse_int(item) {
                Some(n) => u32::try_from(n).map_err(|_| {
                    self.ctx
                        .invalid(format!("'{item}' is not a value >= 0 that fits 32 bits"))
                }),
                None => Err(self.invalid_number(&format!(
                    "a ';'-separated list of integers, '{item}' is not one"
                ))),
            })
            .collect()
    }

    fn f32_list(&self) -> Result<Vec<f32>, ConfigError> {
        self.items()
            .into_iter()
            .map(|item| {
                parse_f32(item).ok_or_else(|| {
                    self.invalid_number(&format!(
                        "a ';'-separated list of numbers, '{item}' is not one"
                    ))
                })
            })
            .collect()
    }

    /// `r;g;b;a`, each 0..1.
    fn color(&self) -> Result<[f32; 4], ConfigError> {
        match self.f32_list()?.as_slice() {
            &[r, g, b, a] if [r, g, b, a].iter().all(|c| (0.0..=1.0).contains(c)) => {
                Ok([r, g, b, a])
            }
            &[_, _, _, _] => Err(self
                .ctx
                .invalid("colour components must be between 0 and 1")),
            other => Err(self.ctx.invalid(format!(
                "expected 4 numbers r;g;b;a between 0 and 1, found {}",
                other.len()
            ))),
        }
    }
}

fn parse_int(text: &str) -> Option<i64> {
    text.parse().ok()
}

fn parse_f32(text: &str) -> Option<f32> {
    let value: f64 = text.parse().ok()?;
    let narrow = value as f32;
    (value.is_finite() && narrow.is_finite()).then_some(narrow)
}
