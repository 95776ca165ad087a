//! Writes model bundles (DESIGN.md §4): `model.onnx` + `labels.txt` + `config_infer.txt`, the
//! format nvtlinfer and DeepStream's nvinfer run. A bundle appears complete or not at all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nvtl_core::config::{ConfigError, InferConfig, NetworkType};
use nvtl_core::zoo::{BUNDLE_CONFIG, BUNDLE_LABELS, BUNDLE_ONNX};
use prost::Message;
use tract_onnx::pb::ModelProto;

use crate::fsutil::{self, StagedDir};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("export.nvinfer key '{key}' = '{value}': {reason}")]
    Override {
        key: String,
        value: String,
        reason: String,
    },
    #[error("label '{label}' contains a line break or ';', which nvinfer label files cannot hold")]
    Label { label: String },
}

/// What goes into a bundle besides the graph.
pub struct BundleContents<'a> {
    /// The nvinfer config of the model this one was trained from: pre-processing, parser and
    /// clustering keys carry over.
    pub base_config: &'a InferConfig,
    /// Output class names, in output-channel order.
    pub labels: &'a [String],
    /// Network input (height, width) of the exported graph.
    pub input_hw: (usize, usize),
    /// Extra or replaced `[property]` keys (`export.nvinfer` of the spec); a key of the form
    /// `class-attrs-all.KEY` goes to that group.
    pub overrides: &'a BTreeMap<String, String>,
    /// A `#` comment block at the top of the config (where the model came from).
    pub header: &'a str,
}

impl From<fsutil::IoError> for ExportError {
    fn from(e: fsutil::IoError) -> Self {
        ExportError::Io {
            what: e.what,
            path: e.path,
            source: e.source,
        }
    }
}

/// Writes the bundle folder `dir` (replacing an older bundle there atomically) and returns the
/// path of its `config_infer.txt`.
pub fn write_bundle(
    dir: &Path,
    onnx: &ModelProto,
    contents: &BundleContents,
) -> Result<PathBuf, ExportError> {
    let config_text = bundle_config(onnx, contents)?;
    let mut labels_text = String::new();
    for label in contents.labels {
        if label.contains(['\n', '\r', ';']) {
            return Err(ExportError::Label {
                label: label.clone(),
            });
        }
    }
    // nvinfer reads a classifier's labels as one line per output layer, separated by ';'.
    if contents.base_config.network_type == NetworkType::Classifier {
        labels_text.push_str(&contents.labels.join(";"));
        labels_text.push('\n');
    } else {
        for label in contents.labels {
            labels_text.push_str(label);
            labels_text.push('\n');
        }
    }

    let staged = StagedDir::new(dir)?;
    staged.write(BUNDLE_ONNX, &onnx.encode_to_vec())?;
    staged.write(BUNDLE_LABELS, labels_text.as_bytes())?;
    staged.write(BUNDLE_CONFIG, config_text.as_bytes())?;
    staged.commit()?;
    Ok(dir.join(BUNDLE_CONFIG))
}

/// The bundle's nvinfer config text: the base config with model, labels, classes and output
/// names of the new graph, then the overrides.
pub fn bundle_config(onnx: &ModelProto, contents: &BundleContents) -> Result<String, ExportError> {
    let mut config = contents.base_config.clone();
    // Paths stay relative to the bundle folder.
    config.source = None;
    let outputs: Vec<String> = onnx
        .graph
        .as_ref()
        .map(|g| g.output.iter().map(|o| o.name.clone()).collect())
        .unwrap_or_default();
    let classes = contents.labels.len().to_string();
    let mut keys: Vec<(String, String, String)> = vec![
        ("property".into(), "onnx-file".into(), BUNDLE_ONNX.into()),
        (
            "property".into(),
            "labelfile-path".into(),
            BUNDLE_LABELS.into(),
        ),
        (
            "property".into(),
            "output-blob-names".into(),
            outputs.join(";"),
        ),
    ];
    // Our graphs have a fixed input size; drop a stale infer-dims and engine file.
    config.infer_dims = None;
    config.model_engine_file = None;
    if config.network_type == NetworkType::Detector {
        keys.push(("property".into(), "num-detected-classes".into(), classes));
    }
    for (key, value) in contents.overrides {
        let (group, key) = match key.split_once('.') {
            Some((group, key)) => (group.to_string(), key.to_string()),
            None => ("property".to_string(), key.clone()),
        };
        keys.push((group, key, value.clone()));
    }
    for (group, key, value) in &keys {
        if let Some(warning) = config.set_key(group, key, value)? {
            return Err(ExportError::Override {
                key: format!("{group}.{key}"),
                value: value.clone(),
                reason: warning.to_string(),
            });
        }
    }
    let (height, width) = contents.input_hw;
    let mut text = String::new();
    for line in contents.header.lines() {
        text.push_str("# ");
        text.push_str(line);
        text.push('\n');
    }
    text.push_str(&format!("# Network input: {width}x{height}.\n"));
    text.push_str(&config.to_key_file_string());
    Ok(text)
}
