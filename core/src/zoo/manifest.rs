//! The zoo manifest (`configs/zoo.toml`): where each model comes from and what bundle it becomes.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ZooError;

/// The manifest compiled into the binary.
const BUILTIN_MANIFEST: &str = include_str!("../../../configs/zoo.toml");

/// Environment variable naming a manifest file that replaces the built-in one.
pub const MANIFEST_ENV: &str = "NVTL_ZOO_MANIFEST";

/// All models the zoo knows.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    #[serde(rename = "model", default)]
    models: Vec<ZooModel>,
}

/// One pretrained model: its source package, conversion, input contract, labels and nvinfer keys.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ZooModel {
    /// Unique name; also the bundle's folder name in the cache.
    pub name: String,
    pub description: String,
    pub task: Task,
    /// Licence of the files used (as stated by the package).
    pub licence: String,
    pub source: Source,
    pub converter: Converter,
    pub convert: ConvertSpec,
    pub input: InputSpec,
    pub labels: LabelsSpec,
    pub nvinfer: NvinferSpec,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    Detector,
    Classifier,
    Segmentation,
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Task::Detector => "detector",
            Task::Classifier => "classifier",
            Task::Segmentation => "segmentation",
        })
    }
}

/// A package on a public registry and the files used from it.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub kind: SourceKind,
    pub package: String,
    pub version: String,
    /// Files inside the package (paths as the package lays them out, without npm's `package/` or
    /// an sdist's top folder), each with its sha256 (lower-case hex).
    pub files: Vec<SourceFile>,
}

impl Source {
    /// `npm @scope/pkg@1.2.3`, `pypi pkg==1.0` ...
    pub fn spec(&self) -> String {
        match self.kind {
            SourceKind::Npm => format!("{}@{}", self.package, self.version),
            SourceKind::Pypi | SourceKind::PypiSdist => {
                format!("{}=={}", self.package, self.version)
            }
            SourceKind::Debian => format!("{}={}", self.package, self.version),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SourceFile {
    pub path: String,
    pub sha256: String,
}

/// Which registry client fetches the package.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// `npm pack pkg@version` (a .tgz whose files sit under `package/`).
    Npm,
    /// `pip download --no-deps pkg==version` (a wheel).
    Pypi,
    /// `pip download --no-deps --no-binary :all: pkg==version` (an sdist .tar.gz or .zip).
    PypiSdist,
    /// `apt-get download pkg=version` (a .deb; file paths as in the package, e.g. `usr/share/...`).
    Debian,
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SourceKind::Npm => "npm",
            SourceKind::Pypi => "pypi",
            SourceKind::PypiSdist => "pypi-sdist",
            SourceKind::Debian => "debian",
        })
    }
}

/// How the source files become `model.onnx`.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Converter {
    /// TF.js graph model (model.json + .bin shards) -> ONNX with our own converter.
    TfjsGraph,
    /// The file is ONNX already; copied as is.
    Onnx,
    /// ONNX whose `ConstantOfShape` nodes lack `value`: a float32 zero is added.
    OnnxFixConstantofshape,
    /// A torchvision MobileNetV2 state dict (`.pth`) -> ONNX; the trainer's importer (burn-store's
    /// PyTorch reader) does it, so core pulls it only through [`super::pull_with`].
    TorchvisionMobilenetV2,
}

impl fmt::Display for Converter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Converter::TfjsGraph => "tfjs-graph",
            Converter::Onnx => "onnx",
            Converter::OnnxFixConstantofshape => "onnx-fix-constantofshape",
            Converter::TorchvisionMobilenetV2 => "torchvision-mobilenet-v2",
        })
    }
}

/// Converter inputs.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConvertSpec {
    /// The source file the converter starts from (one of `source.files`).
    pub model_file: String,
    /// TF.js only: the graph nodes to export and their ONNX output names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<OutputSpec>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// Node name in the TF graph.
    pub tf: String,
    /// Output name in the ONNX model.
    pub name: String,
}

/// The network input contract: `y = net_scale_factor * (x - offsets[c])` on `colour` pixels.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    pub layout: Layout,
    pub width: u32,
    pub height: u32,
    pub channels: u32,
    pub colour: Colour,
    pub net_scale_factor: f64,
    pub offsets: Vec<f64>,
}

impl InputSpec {
    /// `NHWC 1x512x512x3 rgb`
    pub fn summary(&self) -> String {
        match self.layout {
            Layout::Nhwc => format!(
                "NHWC 1x{}x{}x{} {}",
                self.height, self.width, self.channels, self.colour
            ),
            Layout::Nchw => format!(
                "NCHW 1x{}x{}x{} {}",
                self.channels, self.height, self.width, self.colour
            ),
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    Nchw,
    Nhwc,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Colour {
    Rgb,
    Bgr,
    Gray,
}

impl fmt::Display for Colour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Colour::Rgb => "rgb",
            Colour::Bgr => "bgr",
            Colour::Gray => "gray",
        })
    }
}

/// Labels: an inline list, or a file inside the source package (one label per line).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LabelsSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// nvinfer `[property]` keys the bundle config gets besides the pre-processing ones.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NvinferSpec {
    /// Our built-in decoder (`parser=`).
    pub parser: String,
    #[serde(default)]
    pub network_type: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_detected_classes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_mode: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintain_aspect_ratio: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symmetric_padding: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling_filter: Option<u32>,
    /// Defaults to the ONNX model's output names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_blob_names: Option<Vec<String>>,
    /// Further `[property]` keys, written verbatim.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, String>,
    /// `[class-attrs-all]` keys (`pre-cluster-threshold`, `nms-iou-threshold`, `topk`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub class_attrs_all: BTreeMap<String, toml::Value>,
}

impl Manifest {
    /// The built-in manifest, or the file named by `NVTL_ZOO_MANIFEST` when set.
    pub fn builtin() -> Result<Manifest, ZooError> {
        match std::env::var_os(MANIFEST_ENV) {
            Some(path) if !path.is_empty() => Manifest::from_path(Path::new(&path)),
            _ => Manifest::parse(BUILTIN_MANIFEST, "configs/zoo.toml (built in)"),
        }
    }

    /// Reads a manifest file.
    pub fn from_path(path: &Path) -> Result<Manifest, ZooError> {
        let text = std::fs::read_to_string(path).map_err(|source| ZooError::Io {
            what: format!("reading manifest {}", path.display()),
            source,
        })?;
        Manifest::parse(&text, &path.display().to_string())
    }

    /// Parses and validates manifest text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Manifest, ZooError> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| ZooError::Manifest {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        manifest.validate(origin)?;
        Ok(manifest)
    }

    fn validate(&self, origin: &str) -> Result<(), ZooError> {
        let bad = |message: String| ZooError::Manifest {
            origin: origin.to_string(),
            message,
        };
        let mut seen = std::collections::HashSet::new();
        for m in &self.models {
            if m.name.is_empty()
                || !m
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
                || m.name.starts_with('.')
            {
                return Err(bad(format!(
                    "model name '{}' must be [A-Za-z0-9_.-]+",
                    m.name
                )));
            }
            if !seen.insert(m.name.as_str()) {
                return Err(bad(format!("model '{}' is listed twice", m.name)));
            }
            if m.source.files.is_empty() {
                return Err(bad(format!("model '{}': source.files is empty", m.name)));
            }
            for f in &m.source.files {
                if f.sha256.len() != 64 || !f.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(bad(format!(
                        "model '{}': sha256 of '{}' is not 64 hex digits",
                        m.name, f.path
                    )));
                }
            }
            if !m
                .source
                .files
                .iter()
                .any(|f| f.path == m.convert.model_file)
            {
                return Err(bad(format!(
                    "model '{}': convert.model_file '{}' is not one of source.files",
                    m.name, m.convert.model_file
                )));
            }
            if m.converter == Converter::TfjsGraph && m.convert.outputs.is_empty() {
                return Err(bad(format!(
                    "model '{}': a tfjs-graph model needs convert.outputs",
                    m.name
                )));
            }
            match (&m.labels.inline, &m.labels.file) {
                (Some(_), None) => {}
                (None, Some(f)) if m.source.files.iter().any(|s| &s.path == f) => {}
                (None, Some(f)) => {
                    return Err(bad(format!(
                        "model '{}': labels.file '{f}' is not one of source.files",
                        m.name
                    )))
                }
                _ => {
                    return Err(bad(format!(
                        "model '{}': give exactly one of labels.inline, labels.file",
                        m.name
                    )))
                }
            }
            if m.input.offsets.len() != m.input.channels as usize {
                return Err(bad(format!(
                    "model '{}': input.offsets has {} values for {} channels",
                    m.name,
                    m.input.offsets.len(),
                    m.input.channels
                )));
            }
        }
        Ok(())
    }

    /// The model called `name`; an unknown name lists the closest known ones.
    pub fn get(&self, name: &str) -> Result<&ZooModel, ZooError> {
        if let Some(m) = self.models.iter().find(|m| m.name == name) {
            return Ok(m);
        }
        let mut scored: Vec<(usize, &str)> = self
            .models
            .iter()
            .map(|m| {
                let d = if m.name.contains(name) || name.contains(&m.name) {
                    0
                } else {
                    levenshtein(name, &m.name)
                };
                (d, m.name.as_str())
            })
            .collect();
        scored.sort();
        let close: Vec<String> = scored
            .iter()
            .filter(|(d, n)| *d <= n.len().max(name.len()) / 2)
            .map(|(_, n)| n.to_string())
            .collect();
        let known = self.models.iter().map(|m| m.name.clone()).collect();
        Err(ZooError::UnknownModel {
            name: name.to_string(),
            close,
            known,
        })
    }

    /// All models, in manifest order.
    pub fn models(&self) -> &[ZooModel] {
        &self.models
    }
}

impl ZooModel {
    /// A digest of everything in the manifest entry: a cached bundle made from another entry is
    /// stale.
    pub fn fingerprint(&self) -> String {
        let text = toml::to_string(self).unwrap_or_else(|_| format!("{self:?}"));
        let mut h = Sha256::new();
        h.update(env!("CARGO_PKG_VERSION").as_bytes());
        h.update(text.as_bytes());
        hex(&h.finalize())
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
