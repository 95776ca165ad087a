//! The trainer spec file (TOML): model, dataset, augmentation, training, head, evaluation, export.
//!
//! [`Spec::load`] reads a spec, applies `--set section.key=value` overrides, checks every key
//! against the schema below (unknown keys at any depth are errors with a "did you mean" hint and
//! the list of valid keys; wrong types name the key and the expected type), fills in every
//! default and resolves relative paths: paths written in the file are relative to the spec
//! file's folder, paths given with `--set` to the current directory. [`Spec::to_toml`] writes
//! the fully resolved spec, which reads back to an equal [`Spec`].

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use nvtl_core::config::InferConfig;
use nvtl_core::decode::Parser;
use serde::{Deserialize, Serialize};
use toml::{Table, Value};

/// Why a spec could not be used. Every message names where the bad value came from (the spec
/// file or the `--set` override), the section and the key.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("spec {}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("spec {}: {message}", path.display())]
    Syntax { path: PathBuf, message: String },
    #[error("--set '{text}': {reason}")]
    Override { text: String, reason: String },
    #[error("{origin}: unknown {}`{key}`{}; valid {}: {}",
        section.as_ref().map(|s| format!("key [{s}] ")).unwrap_or_else(|| "section ".into()),
        suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default(),
        if section.is_some() { "keys" } else { "sections" },
        valid.join(", "))]
    UnknownKey {
        origin: String,
        /// `None` when the unknown key is a section name.
        section: Option<String>,
        key: String,
        suggestion: Option<String>,
        valid: Vec<String>,
    },
    #[error("{origin}: [{section}] {key}: expected {expected}, got {got}")]
    WrongType {
        origin: String,
        section: String,
        key: String,
        expected: String,
        got: String,
    },
    #[error("{origin}: [{section}] {key}: {reason}")]
    Invalid {
        origin: String,
        section: String,
        key: String,
        reason: String,
    },
}

/// The whole spec, every default filled in and every path absolute.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub model: ModelSpec,
    pub dataset: DatasetSpec,
    #[serde(default)]
    pub augment: AugmentSpec,
    #[serde(default)]
    pub train: TrainSpec,
    #[serde(default)]
    pub head: HeadSpec,
    #[serde(default)]
    pub eval: EvalSpec,
    pub export: ExportSpec,
}

/// What the trained network's head is, and so which loss and targets it gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Task {
    #[serde(rename = "classifier")]
    Classifier,
    #[serde(rename = "centernet")]
    CenterNet,
    #[serde(rename = "detectnet_v2")]
    DetectNetV2,
}

impl Task {
    pub const NAMES: &'static [&'static str] = &["classifier", "centernet", "detectnet_v2"];

    pub fn name(self) -> &'static str {
        match self {
            Task::Classifier => "classifier",
            Task::CenterNet => "centernet",
            Task::DetectNetV2 => "detectnet_v2",
        }
    }

    /// The task whose head a bundle's decoder reads, if the trainer has one.
    pub fn from_parser(parser: Parser) -> Option<Task> {
        match parser {
            Parser::Classifier => Some(Task::Classifier),
            Parser::CenterNet => Some(Task::CenterNet),
            Parser::DetectNetV2 => Some(Task::DetectNetV2),
            _ => None,
        }
    }

    /// The `[head]` keys this task uses.
    pub fn head_keys(self) -> &'static [&'static str] {
        match self {
            Task::Classifier => &["label_smoothing"],
            Task::CenterNet => &[
                "heatmap_weight",
                "box_weight",
                "focal_alpha",
                "focal_beta",
                "min_radius",
            ],
            Task::DetectNetV2 => &["coverage_weight", "bbox_weight"],
        }
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `[model]`: the pretrained model to start from. Exactly one of `zoo` and `bundle` is set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// A zoo model name (`trainer zoo list`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zoo: Option<String>,
    /// A bundle folder (or its config file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<PathBuf>,
    /// Network input `[height, width]` in pixels; `None` keeps the model's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<[u32; 2]>,
    /// Glob patterns (`*`, `?`) of ONNX node / initializer names whose weights stay fixed.
    #[serde(default)]
    pub freeze: Vec<String>,
    /// Freeze the first `freeze_depth` parameterised nodes in graph order (0 = none).
    #[serde(default)]
    pub freeze_depth: u32,
    /// From the file, else from the zoo manifest's or the bundle's parser.
    pub task: Task,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetFormat {
    /// `image_2/` + `label_2/` folders of KITTI text labels.
    Kitti,
    /// A COCO instances json.
    Coco,
    /// One sub-folder of images per class.
    Folders,
}

/// `[dataset]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    pub format: DatasetFormat,
    /// KITTI / folders: a folder; COCO: the json file.
    pub train: PathBuf,
    /// Held-out set in the same format; without it `val_split` of `train` is held out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val: Option<PathBuf>,
    /// COCO image folder; `None` = the json's folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<PathBuf>,
    /// Fraction of `train` held out for validation when `val` is not given, in `[0, 1)`.
    #[serde(default = "default_val_split")]
    pub val_split: f64,
    /// Target classes in output order; `None` = the dataset's own classes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<String>>,
    /// Dataset class name -> target class name.
    #[serde(default)]
    pub class_map: BTreeMap<String, String>,
    /// Drop objects (classifier: samples) of classes outside `classes` instead of failing.
    #[serde(default)]
    pub ignore_unknown: bool,
}

fn default_val_split() -> f64 {
    0.2
}

/// `[augment]`: every amplitude / probability 0 turns that augmentation off.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AugmentSpec {
    /// Probability of a horizontal flip.
    pub flip: f64,
    /// `[min, max]` uniform scale factor.
    pub scale: [f64; 2],
    /// Probability of a random crop keeping at least 60 % of the image's width and height.
    pub crop: f64,
    /// Brightness / contrast / saturation jitter amplitude (0.2 = factors in `[0.8, 1.2]`).
    pub color: f64,
}

impl Default for AugmentSpec {
    fn default() -> Self {
        AugmentSpec {
            flip: 0.5,
            scale: [0.8, 1.2],
            crop: 0.0,
            color: 0.2,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    Adam,
    AdamW,
    Sgd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    Cosine,
    Step,
    Constant,
}

/// `[train]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainSpec {
    /// 0 exports the edited start model (input size, classes) without training.
    pub epochs: u32,
    /// Images per step (over all devices).
    pub batch: u32,
    pub optimizer: Optimizer,
    /// Peak learning rate.
    pub lr: f64,
    /// SGD momentum.
    pub momentum: f64,
    pub weight_decay: f64,
    pub schedule: Schedule,
    /// Linear warm-up from 0 over this many epochs.
    pub warmup_epochs: u32,
    /// `step` schedule: multiply the rate by `gamma` every `step_epochs`.
    pub step_epochs: u32,
    pub gamma: f64,
    /// Write a checkpoint every this many optimiser steps.
    pub checkpoint_steps: u32,
    /// Stop after this many epochs without a better validation metric (0 = never).
    pub early_stopping: u32,
    pub seed: u64,
    /// CPU threads (0 = all).
    pub threads: u32,
    /// `cpu`, `cuda` or `cuda:0,1,...` (data parallel over the listed GPUs).
    pub devices: String,
}

impl Default for TrainSpec {
    fn default() -> Self {
        TrainSpec {
            epochs: 10,
            batch: 16,
            optimizer: Optimizer::Adam,
            lr: 1e-3,
            momentum: 0.9,
            weight_decay: 0.0,
            schedule: Schedule::Cosine,
            warmup_epochs: 0,
            step_epochs: 10,
            gamma: 0.1,
            checkpoint_steps: 100,
            early_stopping: 0,
            seed: 42,
            threads: 0,
            devices: "cpu".into(),
        }
    }
}

/// `[head]`: loss parameters. Only the keys of the model's task may be written (see
/// [`Task::head_keys`]); the others keep their defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeadSpec {
    /// Classifier: cross-entropy label smoothing in `[0, 1)`.
    pub label_smoothing: f64,
    /// CenterNet: weight of the focal loss on the heat map.
    pub heatmap_weight: f64,
    /// CenterNet: weight of the L1 loss on ltrb distances.
    pub box_weight: f64,
    /// CenterNet focal loss exponent on `(1 - p)` at peaks.
    pub focal_alpha: f64,
    /// CenterNet focal loss exponent on `(1 - y)` around peaks.
    pub focal_beta: f64,
    /// CenterNet: smallest Gaussian radius in heat-map cells.
    pub min_radius: u32,
    /// DetectNet_v2: weight of the coverage loss.
    pub coverage_weight: f64,
    /// DetectNet_v2: weight of the bbox L1 loss.
    pub bbox_weight: f64,
}

impl Default for HeadSpec {
    fn default() -> Self {
        HeadSpec {
            label_smoothing: 0.0,
            heatmap_weight: 1.0,
            box_weight: 0.1,
            focal_alpha: 2.0,
            focal_beta: 4.0,
            min_radius: 1,
            coverage_weight: 1.0,
            bbox_weight: 10.0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MapMode {
    /// PASCAL VOC all-point interpolated AP at `iou`.
    Voc,
    /// COCO: 101-point AP averaged over IoU 0.5:0.05:0.95.
    Coco,
}

/// `[eval]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalSpec {
    /// IoU a detection needs to match a ground-truth box (VOC mode).
    pub iou: f64,
    pub map: MapMode,
    /// Detections below this score are not evaluated.
    pub score_threshold: f64,
    /// At most this many detections per image.
    pub max_detections: u32,
}

impl Default for EvalSpec {
    fn default() -> Self {
        EvalSpec {
            iou: 0.5,
            map: MapMode::Voc,
            score_threshold: 0.05,
            max_detections: 100,
        }
    }
}

/// `[export]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportSpec {
    /// Output folder (results, checkpoints, the exported bundle).
    pub dir: PathBuf,
    /// Bundle name; defaults to the zoo name or the bundle's folder name.
    pub name: String,
    /// Extra / overriding nvinfer config keys, values in key-file syntax. `[property]` keys by
    /// their name; keys of other groups as `"<group>.<key>"` (e.g.
    /// `"class-attrs-all.pre-cluster-threshold"`), written in TOML either quoted or as a
    /// sub-table `[export.nvinfer.class-attrs-all]`.
    #[serde(default)]
    pub nvinfer: BTreeMap<String, String>,
}

impl ExportSpec {
    /// Applies [`ExportSpec::nvinfer`] on top of `config`; returns nvinfer's warnings
    /// (legacy keys and the like).
    pub fn apply_nvinfer(
        &self,
        config: &mut InferConfig,
    ) -> Result<Vec<nvtl_core::config::ConfigWarning>, Box<nvtl_core::config::ConfigError>> {
        let mut warnings = Vec::new();
        for (name, value) in &self.nvinfer {
            let (group, key) = split_nvinfer_key(name);
            if let Some(warning) = config.set_key(group, key, value).map_err(Box::new)? {
                warnings.push(warning);
            }
        }
        Ok(warnings)
    }
}

fn split_nvinfer_key(name: &str) -> (&str, &str) {
    match name.split_once('.') {
        Some((group, key)) => (group, key),
        None => ("property", name),
    }
}

// ---------------------------------------------------------------------------------------------
// Schema: the one list of sections and keys that validation, suggestions and messages use.

#[derive(Clone, Copy, Debug)]
enum Kind {
    Bool,
    /// Non-negative integer.
    UInt,
    /// Any number (integers are accepted and stored as floats).
    Float,
    Text,
    Choice(&'static [&'static str]),
    /// A path, relative to the spec file (or the current directory for `--set`).
    Path,
    /// Two positive integers.
    Size2,
    /// Two numbers.
    Float2,
    TextList,
    /// A table of strings (any keys).
    TextMap,
    /// nvinfer keys (validated with nvtl_core's config reader).
    Nvinfer,
}

impl Kind {
    fn expected(self) -> String {
        match self {
            Kind::Bool => "a boolean (true / false)".into(),
            Kind::UInt => "a non-negative integer".into(),
            Kind::Float => "a number".into(),
            Kind::Text => "a string".into(),
            Kind::Choice(options) => format!("one of {}", quoted_list(options)),
            Kind::Path => "a path (string)".into(),
            Kind::Size2 => "[height, width] (two positive integers)".into(),
            Kind::Float2 => "[min, max] (two numbers)".into(),
            Kind::TextList => "an array of strings".into(),
            Kind::TextMap => "a table of strings (name = \"name\")".into(),
            Kind::Nvinfer => "a table of nvinfer keys (key = value)".into(),
        }
    }
}

struct Section {
    name: &'static str,
    fields: &'static [(&'static str, Kind)],
}

const SCHEMA: &[Section] = &[
    Section {
        name: "model",
        fields: &[
            ("zoo", Kind::Text),
            ("bundle", Kind::Path),
            ("input", Kind::Size2),
            ("freeze", Kind::TextList),
            ("freeze_depth", Kind::UInt),
            ("task", Kind::Choice(Task::NAMES)),
        ],
    },
    Section {
        name: "dataset",
        fields: &[
            ("format", Kind::Choice(&["kitti", "coco", "folders"])),
            ("train", Kind::Path),
            ("val", Kind::Path),
            ("images", Kind::Path),
            ("val_split", Kind::Float),
            ("classes", Kind::TextList),
            ("class_map", Kind::TextMap),
            ("ignore_unknown", Kind::Bool),
        ],
    },
    Section {
        name: "augment",
        fields: &[
            ("flip", Kind::Float),
            ("scale", Kind::Float2),
            ("crop", Kind::Float),
            ("color", Kind::Float),
        ],
    },
    Section {
        name: "train",
        fields: &[
            ("epochs", Kind::UInt),
            ("batch", Kind::UInt),
            ("optimizer", Kind::Choice(&["adam", "adamw", "sgd"])),
            ("lr", Kind::Float),
            ("momentum", Kind::Float),
            ("weight_decay", Kind::Float),
            ("schedule", Kind::Choice(&["cosine", "step", "constant"])),
            ("warmup_epochs", Kind::UInt),
            ("step_epochs", Kind::UInt),
            ("gamma", Kind::Float),
            ("checkpoint_steps", Kind::UInt),
            ("early_stopping", Kind::UInt),
            ("seed", Kind::UInt),
            ("threads", Kind::UInt),
            ("devices", Kind::Text),
        ],
    },
    Section {
        name: "head",
        fields: &[
            ("label_smoothing", Kind::Float),
            ("heatmap_weight", Kind::Float),
            ("box_weight", Kind::Float),
            ("focal_alpha", Kind::Float),
            ("focal_beta", Kind::Float),
            ("min_radius", Kind::UInt),
            ("coverage_weight", Kind::Float),
            ("bbox_weight", Kind::Float),
        ],
    },
    Section {
        name: "eval",
        fields: &[
            ("iou", Kind::Float),
            ("map", Kind::Choice(&["voc", "coco"])),
            ("score_threshold", Kind::Float),
            ("max_detections", Kind::UInt),
        ],
    },
    Section {
        name: "export",
        fields: &[
            ("dir", Kind::Path),
            ("name", Kind::Text),
            ("nvinfer", Kind::Nvinfer),
        ],
    },
];

fn quoted_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("\"{i}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The closest of `candidates` to `word`, if it is close enough to be a likely typo.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::normalized_damerau_levenshtein(word, c), c))
        .filter(|(score, c)| *score >= 0.5 || strsim::damerau_levenshtein(word, c) <= 2)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

fn type_name(value: &Value) -> String {
    match value {
        Value::String(s) => format!("string \"{s}\""),
        Value::Integer(i) => format!("integer {i}"),
        Value::Float(f) => format!("float {f}"),
        Value::Boolean(b) => format!("boolean {b}"),
        Value::Datetime(d) => format!("datetime {d}"),
        Value::Array(_) => "an array".into(),
        Value::Table(_) => "a table".into(),
    }
}

/// Where values come from: the spec file, or one `--set`.
#[derive(Clone, Debug)]
struct Origin {
    text: String,
    /// Base folder of relative paths.
    base: PathBuf,
}

impl Spec {
    /// Reads the spec at `path` and applies `overrides` (`"section.key=value"`, the value parsed
    /// as a TOML value, else taken as a string; deeper keys such as
    /// `dataset.class_map.pedestrian=person` set one entry of a table). Setting `model.zoo`
    /// with `--set` drops the file's `model.bundle` and vice versa.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Spec, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Spec::from_toml_str(&text, path, overrides)
    }

    /// [`Spec::load`] on text already read; `path` names the file in messages and its folder is
    /// the base of relative paths.
    pub fn from_toml_str(text: &str, path: &Path, overrides: &[String]) -> Result<Spec, SpecError> {
        let table: Table = text
            .parse()
            .map_err(|e: toml::de::Error| SpecError::Syntax {
                path: path.to_path_buf(),
                message: e.to_string().trim_end().to_string(),
            })?;
        let file_base = path
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .unwrap_or(Path::new("."));
        let file_base = std::path::absolute(file_base).unwrap_or_else(|_| file_base.to_path_buf());
        let file_origin = Origin {
            text: format!("spec {}", path.display()),
            base: file_base,
        };
        let mut origins: HashMap<(String, String), Origin> = HashMap::new();
        let mut resolved = Table::new();
        for (section_name, value) in table {
            let section = find_section(&section_name, &file_origin)?;
            let Value::Table(fields) = value else {
                return Err(SpecError::WrongType {
                    origin: file_origin.text.clone(),
                    section: section_name,
                    key: "(section)".into(),
                    expected: "a table ([section])".into(),
                    got: type_name(&value),
                });
            };
            let mut out = Table::new();
            for (key, value) in fields {
                let kind = find_key(section, &key, &file_origin)?;
                let value = check_value(section.name, &key, kind, value, &file_origin)?;
                origins.insert((section.name.into(), key.clone()), file_origin.clone());
                out.insert(key, value);
            }
            resolved.insert(section_name, Value::Table(out));
        }
        for text in overrides {
            apply_override(&mut resolved, &mut origins, text)?;
        }
        let origin_of = |section: &str, key: &str| {
            origins
                .get(&(section.to_string(), key.to_string()))
                .map(|o| o.text.clone())
                .unwrap_or_else(|| file_origin.text.clone())
        };
        resolve_model(&mut resolved, &origin_of, &file_origin.base)?;
        let spec_value = Value::Table(resolved);
        let spec: Spec =
            spec_value
                .try_into()
                .map_err(|e: toml::de::Error| SpecError::Invalid {
                    origin: file_origin.text.clone(),
                    section: "(spec)".into(),
                    key: "(spec)".into(),
                    reason: e.to_string().trim_end().to_string(),
                })?;
        spec.check(&origins, &origin_of)?;
        Ok(spec)
    }

    /// The fully resolved spec as TOML: every default filled in, every path absolute.
    /// `[head]` holds only the task's keys (the others are not used and may not be written).
    pub fn to_toml(&self) -> String {
        // Serialising plain data (strings, numbers, tables) cannot fail.
        let Ok(mut table) = Table::try_from(self) else {
            return String::new();
        };
        if let Some(Value::Table(head)) = table.get_mut("head") {
            head.retain(|key, _| self.model.task.head_keys().contains(&key));
        }
        toml::to_string_pretty(&table).unwrap_or_default()
    }

    /// Range and consistency checks that need the whole spec.
    fn check(
        &self,
        origins: &HashMap<(String, String), Origin>,
        origin_of: &dyn Fn(&str, &str) -> String,
    ) -> Result<(), SpecError> {
        let invalid = |section: &str, key: &str, reason: String| SpecError::Invalid {
            origin: origin_of(section, key),
            section: section.into(),
            key: key.into(),
            reason,
        };
        let in_range = |section: &str, key: &str, value: f64, lo: f64, hi: f64, hi_open: bool| {
            let ok = value >= lo && if hi_open { value < hi } else { value <= hi };
            if ok {
                Ok(())
            } else {
                let close = if hi_open { ")" } else { "]" };
                Err(invalid(
                    section,
                    key,
                    format!("{value} is outside [{lo}, {hi}{close}"),
                ))
            }
        };
        if let Some([h, w]) = self.model.input {
            if h == 0 || w == 0 {
                return Err(invalid("model", "input", format!("[{h}, {w}] is empty")));
            }
        }
        in_range(
            "dataset",
            "val_split",
            self.dataset.val_split,
            0.0,
            1.0,
            true,
        )?;
        if let Some(classes) = &self.dataset.classes {
            if classes.is_empty() {
                return Err(invalid(
                    "dataset",
                    "classes",
                    "is empty; leave it out to use the dataset's own classes".into(),
                ));
            }
            for (i, class) in classes.iter().enumerate() {
                if classes[..i].contains(class) {
                    return Err(invalid(
                        "dataset",
                        "classes",
                        format!("\"{class}\" is listed twice"),
                    ));
                }
            }
        }
        let augment = &self.augment;
        in_range("augment", "flip", augment.flip, 0.0, 1.0, false)?;
        in_range("augment", "crop", augment.crop, 0.0, 1.0, false)?;
        in_range("augment", "color", augment.color, 0.0, 1.0, false)?;
        let [lo, hi] = augment.scale;
        if !(lo > 0.0 && lo <= hi) {
            return Err(invalid(
                "augment",
                "scale",
                format!("[{lo}, {hi}] must satisfy 0 < min <= max (use [1.0, 1.0] for off)"),
            ));
        }
        let train = &self.train;
        if train.batch == 0 {
            return Err(invalid("train", "batch", "must be at least 1".into()));
        }
        if train.schedule == Schedule::Step && train.step_epochs == 0 {
            return Err(invalid(
                "train",
                "step_epochs",
                "must be at least 1 for schedule \"step\"".into(),
            ));
        }
        if !(train.lr > 0.0 && train.lr.is_finite()) {
            return Err(invalid(
                "train",
                "lr",
                format!("{} must be a positive number", train.lr),
            ));
        }
        in_range("train", "momentum", train.momentum, 0.0, 1.0, true)?;
        in_range("train", "weight_decay", train.weight_decay, 0.0, 1.0, true)?;
        in_range("train", "gamma", train.gamma, 0.0, 1.0, false)?;
        check_devices(&train.devices).map_err(|reason| invalid("train", "devices", reason))?;
        let task = self.model.task;
        for &(key, _) in head_section().fields {
            if origins.contains_key(&("head".to_string(), key.to_string()))
                && !task.head_keys().contains(&key)
            {
                return Err(invalid(
                    "head",
                    key,
                    format!(
                        "is not a {task} parameter; [head] keys for task \"{task}\": {}",
                        task.head_keys().join(", ")
                    ),
                ));
            }
        }
        let head = &self.head;
        in_range(
            "head",
            "label_smoothing",
            head.label_smoothing,
            0.0,
            1.0,
            true,
        )?;
        for (key, value) in [
            ("heatmap_weight", head.heatmap_weight),
            ("box_weight", head.box_weight),
            ("focal_alpha", head.focal_alpha),
            ("focal_beta", head.focal_beta),
            ("coverage_weight", head.coverage_weight),
            ("bbox_weight", head.bbox_weight),
        ] {
            if !(value >= 0.0 && value.is_finite()) {
                return Err(invalid("head", key, format!("{value} must be >= 0")));
            }
        }
        in_range("eval", "iou", self.eval.iou, f64::MIN_POSITIVE, 1.0, false)?;
        in_range(
            "eval",
            "score_threshold",
            self.eval.score_threshold,
            0.0,
            1.0,
            false,
        )?;
        if self.eval.max_detections == 0 {
            return Err(invalid(
                "eval",
                "max_detections",
                "must be at least 1".into(),
            ));
        }
        if self.export.name.is_empty() || self.export.name.contains(['/', '\\']) {
            return Err(invalid(
                "export",
                "name",
                format!("\"{}\" is not a file name", self.export.name),
            ));
        }
        Ok(())
    }
}

fn head_section() -> &'static Section {
    SCHEMA
        .iter()
        .find(|s| s.name == "head")
        .unwrap_or(&SCHEMA[0])
}

fn check_devices(devices: &str) -> Result<(), String> {
    crate::devices::DeviceList::parse(devices)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn find_section(name: &str, origin: &Origin) -> Result<&'static Section, SpecError> {
    SCHEMA.iter().find(|s| s.name == name).ok_or_else(|| {
        let names: Vec<&str> = SCHEMA.iter().map(|s| s.name).collect();
        SpecError::UnknownKey {
            origin: origin.text.clone(),
            section: None,
            key: name.into(),
            suggestion: closest(name, names.iter().copied()).map(str::to_string),
            valid: names.iter().map(|s| s.to_string()).collect(),
        }
    })
}

fn find_key(section: &Section, key: &str, origin: &Origin) -> Result<Kind, SpecError> {
    section
        .fields
        .iter()
        .find(|(name, _)| *name == key)
        .map(|(_, kind)| *kind)
        .ok_or_else(|| {
            let names = section.fields.iter().map(|(name, _)| *name);
            SpecError::UnknownKey {
                origin: origin.text.clone(),
                section: Some(section.name.into()),
                key: key.into(),
                suggestion: closest(key, names.clone()).map(str::to_string),
                valid: names.map(str::to_string).collect(),
            }
        })
}

/// Checks one value against its kind; returns it normalised (integers as floats for numbers,
/// paths absolute, nvinfer values as key-file strings).
fn check_value(
    section: &str,
    key: &str,
    kind: Kind,
    value: Value,
    origin: &Origin,
) -> Result<Value, SpecError> {
    let wrong = |value: &Value| SpecError::WrongType {
        origin: origin.text.clone(),
        section: section.into(),
        key: key.into(),
        expected: kind.expected(),
        got: type_name(value),
    };
    Ok(match (kind, value) {
        (Kind::Bool, v @ Value::Boolean(_)) => v,
        (Kind::UInt, Value::Integer(i)) if i >= 0 => Value::Integer(i),
        (Kind::Float, Value::Integer(i)) => Value::Float(i as f64),
        (Kind::Float, Value::Float(f)) if f.is_finite() => Value::Float(f),
        (Kind::Text, v @ Value::String(_)) => v,
        (Kind::Choice(options), Value::String(s)) => {
            if options.contains(&s.as_str()) {
                Value::String(s)
            } else {
                let hint = closest(&s, options.iter().copied())
                    .map(|c| format!(" (did you mean \"{c}\"?)"))
                    .unwrap_or_default();
                return Err(SpecError::Invalid {
                    origin: origin.text.clone(),
                    section: section.into(),
                    key: key.into(),
                    reason: format!("\"{s}\" is not {}{hint}", kind.expected()),
                });
            }
        }
        (Kind::Path, Value::String(s)) => {
            if s.is_empty() {
                return Err(wrong(&Value::String(s)));
            }
            Value::String(origin.base.join(&s).to_string_lossy().into_owned())
        }
        (Kind::Size2, Value::Array(items))
            if items.len() == 2
                && items
                    .iter()
                    .all(|v| matches!(v, Value::Integer(i) if *i > 0 && *i <= u32::MAX as i64)) =>
        {
            Value::Array(items)
        }
        (Kind::Float2, Value::Array(items))
            if items.len() == 2
                && items
                    .iter()
                    .all(|v| matches!(v, Value::Integer(_) | Value::Float(_))) =>
        {
            Value::Array(
                items
                    .into_iter()
                    .map(|v| match v {
                        Value::Integer(i) => Value::Float(i as f64),
                        other => other,
                    })
                    .collect(),
            )
        }
        (Kind::TextList, Value::Array(items)) if items.iter().all(Value::is_str) => {
            Value::Array(items)
        }
        (Kind::TextMap, Value::Table(entries)) => {
            for (name, target) in &entries {
                if !target.is_str() {
                    return Err(SpecError::WrongType {
                        origin: origin.text.clone(),
                        section: section.into(),
                        key: format!("{key}.{name}"),
                        expected: "a string".into(),
                        got: type_name(target),
                    });
                }
            }
            Value::Table(entries)
        }
        (Kind::Nvinfer, Value::Table(entries)) => {
            Value::Table(check_nvinfer(section, key, entries, origin)?)
        }
        (_, v) => return Err(wrong(&v)),
    })
}

/// Flattens `[export.nvinfer]` (sub-tables are groups) into `"key"` / `"group.key"` -> value in
/// key-file syntax, and checks each key and value with nvtl_core's nvinfer config reader.
fn check_nvinfer(
    section: &str,
    key: &str,
    entries: Table,
    origin: &Origin,
) -> Result<Table, SpecError> {
    let mut flat = Table::new();
    for (name, value) in entries {
        match value {
            Value::Table(group) => {
                for (inner, value) in group {
                    flat.insert(format!("{name}.{inner}"), value);
                }
            }
            other => {
                flat.insert(name, other);
            }
        }
    }
    let property_keys: Vec<String> = InferConfig::default()
        .entries()
        .into_iter()
        .filter(|e| e.group == "property")
        .map(|e| e.key)
        .collect();
    let mut out = Table::new();
    for (name, value) in flat {
        let full_key = format!("{key}.{name}");
        let text = match &value {
            Value::String(s) => s.clone(),
            Value::Integer(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Boolean(b) => if *b { "1" } else { "0" }.to_string(),
            Value::Array(items) => {
                let mut parts = Vec::new();
                for item in items {
                    parts.push(match item {
                        Value::String(s) => s.clone(),
                        Value::Integer(i) => i.to_string(),
                        Value::Float(f) => f.to_string(),
                        other => {
                            return Err(SpecError::WrongType {
                                origin: origin.text.clone(),
                                section: section.into(),
                                key: full_key,
                                expected: "a list of numbers or strings".into(),
                                got: format!("a list holding {}", type_name(other)),
                            })
                        }
                    });
                }
                parts.join(";")
            }
            other => {
                return Err(SpecError::WrongType {
                    origin: origin.text.clone(),
                    section: section.into(),
                    key: full_key,
                    expected: "a string, number, boolean or list".into(),
                    got: type_name(other),
                })
            }
        };
        let (group, nv_key) = split_nvinfer_key(&name);
        let invalid = |reason: String| SpecError::Invalid {
            origin: origin.text.clone(),
            section: section.into(),
            key: full_key.clone(),
            reason,
        };
        let mut probe = InferConfig::default();
        match probe.set_key(group, nv_key, &text) {
            Err(e) => return Err(invalid(e.to_string())),
            Ok(Some(warning)) if warning.message.starts_with("unknown") => {
                let hint = if group == "property" {
                    closest(nv_key, property_keys.iter().map(String::as_str))
                        .map(|c| format!(" (did you mean `{c}`?)"))
                        .unwrap_or_default()
                } else {
                    String::new()
                };
                return Err(invalid(format!(
                    "nvinfer does not know [{group}] {nv_key}{hint}"
                )));
            }
            Ok(_) => {}
        }
        out.insert(name, Value::String(text));
    }
    Ok(out)
}

/// Applies one `--set section.key[.entry]=value`.
fn apply_override(
    spec: &mut Table,
    origins: &mut HashMap<(String, String), Origin>,
    text: &str,
) -> Result<(), SpecError> {
    let bad = |reason: String| SpecError::Override {
        text: text.into(),
        reason,
    };
    let (path, raw) = text
        .split_once('=')
        .ok_or_else(|| bad("expected section.key=value".into()))?;
    let parts: Vec<&str> = path.trim().split('.').map(str::trim).collect();
    if parts.len() < 2 || parts.iter().any(|p| p.is_empty()) {
        return Err(bad("expected section.key=value".into()));
    }
    let raw = raw.trim();
    let value = format!("v = {raw}")
        .parse::<Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(raw.to_string()));
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let origin = Origin {
        text: format!("--set {}", text.trim()),
        base: cwd,
    };
    let section = find_section(parts[0], &origin)?;
    let key = parts[1];
    let kind = find_key(section, key, &origin)?;
    let fields = spec
        .entry(section.name)
        .or_insert_with(|| Value::Table(Table::new()));
    let Value::Table(fields) = fields else {
        return Err(bad(format!("[{}] is not a table", section.name)));
    };
    let new_value = if parts.len() == 2 {
        check_value(section.name, key, kind, value, &origin)?
    } else {
        if !matches!(kind, Kind::TextMap | Kind::Nvinfer) {
            return Err(bad(format!(
                "[{}] {key} is {}, it has no entries",
                section.name,
                kind.expected()
            )));
        }
        // Set one entry: the entry's own path below the key, as a (nested) table.
        let mut entry = value;
        for part in parts[2..].iter().rev() {
            let mut table = Table::new();
            table.insert(part.to_string(), entry);
            entry = Value::Table(table);
        }
        let Value::Table(new_entries) = check_value(section.name, key, kind, entry, &origin)?
        else {
            return Err(bad("entry is not a table".into()));
        };
        let mut merged = match fields.remove(key) {
            Some(Value::Table(existing)) => existing,
            _ => Table::new(),
        };
        merged.extend(new_entries);
        Value::Table(merged)
    };
    if section.name == "model" && (key == "zoo" || key == "bundle") {
        fields.remove(if key == "zoo" { "bundle" } else { "zoo" });
    }
    fields.insert(key.to_string(), new_value);
    origins.insert((section.name.into(), key.into()), origin);
    Ok(())
}

/// Checks the model source, fills in `model.task` (from the zoo manifest or the bundle config)
/// and `export.dir` / `export.name` defaults.
fn resolve_model(
    spec: &mut Table,
    origin_of: &dyn Fn(&str, &str) -> String,
    file_base: &Path,
) -> Result<(), SpecError> {
    for required in ["model", "dataset"] {
        if !spec.contains_key(required) {
            return Err(SpecError::Invalid {
                origin: origin_of(required, ""),
                section: required.into(),
                key: "(section)".into(),
                reason: format!("the [{required}] section is required"),
            });
        }
    }
    let missing = |section: &str, key: &str, what: &str| SpecError::Invalid {
        origin: origin_of(section, key),
        section: section.into(),
        key: key.into(),
        reason: format!("is required ({what})"),
    };
    let Some(Value::Table(dataset)) = spec.get("dataset") else {
        return Err(missing("dataset", "format", "[dataset] is not a table"));
    };
    if !dataset.contains_key("format") {
        return Err(missing(
            "dataset",
            "format",
            "\"kitti\", \"coco\" or \"folders\"",
        ));
    }
    if !dataset.contains_key("train") {
        return Err(missing(
            "dataset",
            "train",
            "the training data's folder or json",
        ));
    }
    let Some(Value::Table(model)) = spec.get_mut("model") else {
        return Err(missing("model", "zoo", "[model] is not a table"));
    };
    let zoo = model.get("zoo").and_then(Value::as_str).map(str::to_string);
    let bundle = model
        .get("bundle")
        .and_then(Value::as_str)
        .map(PathBuf::from);
    let model_name = match (&zoo, &bundle) {
        (Some(_), Some(_)) => {
            return Err(SpecError::Invalid {
                origin: origin_of("model", "bundle"),
                section: "model".into(),
                key: "zoo".into(),
                reason: "set exactly one of `zoo` and `bundle`, not both".into(),
            })
        }
        (None, None) => {
            return Err(missing(
                "model",
                "zoo",
                "set `zoo = \"name\"` or `bundle = \"path\"`",
            ))
        }
        (Some(name), None) => name.clone(),
        (None, Some(path)) => {
            let folder = if path.is_file() {
                path.parent().unwrap_or(path)
            } else {
                path.as_path()
            };
            folder
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "model".into())
        }
    };
    if !model.contains_key("task") {
        let task = match (&zoo, &bundle) {
            (Some(name), _) => task_of_zoo_model(name),
            (_, Some(path)) => task_of_bundle(path),
            (None, None) => Err("no model".into()),
        }
        .map_err(|reason| SpecError::Invalid {
            origin: origin_of("model", if zoo.is_some() { "zoo" } else { "bundle" }),
            section: "model".into(),
            key: "task".into(),
            reason: format!("is not set and cannot be inferred: {reason}"),
        })?;
        model.insert("task".into(), Value::String(task.name().into()));
    }
    let export = spec
        .entry("export")
        .or_insert_with(|| Value::Table(Table::new()));
    if let Value::Table(export) = export {
        if !export.contains_key("dir") {
            export.insert(
                "dir".into(),
                Value::String(file_base.join("out").to_string_lossy().into_owned()),
            );
        }
        export
            .entry("name")
            .or_insert_with(|| Value::String(model_name));
    }
    Ok(())
}

fn task_of_zoo_model(name: &str) -> Result<Task, String> {
    let manifest = nvtl_core::zoo::Manifest::builtin().map_err(|e| e.to_string())?;
    let model = manifest.get(name).map_err(|e| e.to_string())?;
    let parser: Parser = model
        .nvinfer
        .parser
        .parse()
        .map_err(|e: nvtl_core::decode::UnknownParser| e.to_string())?;
    Task::from_parser(parser).ok_or_else(|| {
        format!("zoo model '{name}' uses parser '{parser}', which the trainer has no head for")
    })
}

fn task_of_bundle(path: &Path) -> Result<Task, String> {
    let bundle = nvtl_core::model::Bundle::open(path).map_err(|e| e.to_string())?;
    let config = &bundle.config.config;
    let parser = config
        .parser
        .or_else(|| Parser::default_for(config.network_type))
        .ok_or_else(|| format!("bundle {} names no parser", path.display()))?;
    Task::from_parser(parser).ok_or_else(|| {
        format!(
            "bundle {} uses parser '{parser}', which the trainer has no head for",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field the structs serialise is in the schema, so validation and serde agree.
    #[test]
    fn schema_lists_every_serialised_field() {
        let spec = Spec::from_toml_str(
            "[model]\nzoo = \"centernet_mobilenetv3_coco\"\ninput = [256, 320]\nbundle_unused = 1\n",
            Path::new("/tmp/x.toml"),
            &[],
        );
        assert!(spec.is_err());
        let spec = Spec::from_toml_str(
            "[model]\nzoo = \"centernet_mobilenetv3_coco\"\ninput = [256, 320]\n\
             [dataset]\nformat = \"kitti\"\ntrain = \"d\"\nval = \"v\"\nimages = \"i\"\nclasses = [\"person\"]\n",
            Path::new("/tmp/x.toml"),
            &[],
        )
        .unwrap();
        let value: Table = spec.to_toml().parse().unwrap();
        for (section, fields) in value {
            let schema = SCHEMA.iter().find(|s| s.name == section).unwrap();
            for (key, _) in fields.as_table().unwrap() {
                assert!(
                    schema.fields.iter().any(|(name, _)| name == key),
                    "[{section}] {key} missing from the schema"
                );
            }
        }
    }

    #[test]
    fn closest_finds_typos_only() {
        assert_eq!(closest("epoch", ["epochs", "batch"]), Some("epochs"));
        assert_eq!(closest("lr_rate", ["lr", "gamma"]), None);
    }
}
