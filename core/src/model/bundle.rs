//! The model bundle: a folder with an ONNX model, an nvinfer label file and an nvinfer config
//! whose relative paths point at the files beside it.

use std::path::{Path, PathBuf};

use crate::config::{ConfigError, InferConfig, LoadedConfig};

/// The config file name inside a bundle folder.
pub const BUNDLE_CONFIG_NAME: &str = "config_infer.txt";

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{0} is not a model bundle: it has no {BUNDLE_CONFIG_NAME}")]
    NoConfig(PathBuf),
    #[error(transparent)]
    Config(Box<ConfigError>),
    #[error("bundle config {config} names no onnx-file")]
    NoModel { config: PathBuf },
    #[error("bundle config {config} names {path}, which does not exist")]
    MissingFile { config: PathBuf, path: PathBuf },
}

#[derive(Clone, Debug)]
pub struct Bundle {
    pub dir: PathBuf,
    pub config_path: PathBuf,
    pub onnx: PathBuf,
    pub labels: Option<PathBuf>,
    pub config: LoadedConfig,
}

impl Bundle {
    /// Opens a bundle folder, or a bundle's config file directly.
    pub fn open(path: &Path) -> Result<Bundle, BundleError> {
        let config_path = if path.is_dir() {
            path.join(BUNDLE_CONFIG_NAME)
        } else {
            path.to_owned()
        };
        if !config_path.is_file() {
            return Err(BundleError::NoConfig(path.to_owned()));
        }
        let config =
            InferConfig::from_file(&config_path).map_err(|e| BundleError::Config(Box::new(e)))?;
        let onnx = config
            .config
            .onnx_file
            .clone()
            .ok_or_else(|| BundleError::NoModel {
                config: config_path.clone(),
            })?;
        for file in std::iter::once(&onnx).chain(config.config.labelfile_path.as_ref()) {
            if !file.is_file() {
                return Err(BundleError::MissingFile {
                    config: config_path.clone(),
                    path: file.clone(),
                });
            }
        }
        Ok(Bundle {
            dir: config_path.parent().map(Path::to_owned).unwrap_or_default(),
            labels: config.config.labelfile_path.clone(),
            config_path,
            onnx,
            config,
        })
    }
}
