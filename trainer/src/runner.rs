//! Runs a model bundle on images exactly as nvtlinfer does (nvtl_core's engine: the bundle's
//! nvinfer config, the tract CPU backend, the same pre-processing, decoder and clustering).
//! Evaluation, `trainer infer` and pseudo-labelling all go through here, so the numbers they
//! report are the element's.

use std::path::{Path, PathBuf};

use image::RgbImage;
use nvtl_core::backend::BackendKind;
use nvtl_core::config::{ConfigError, InferConfig};
use nvtl_core::engine::{Engine, EngineError, InferResult};
use nvtl_core::preprocess::{FrameView, PixelFormat, Rect};
use nvtl_core::zoo::BUNDLE_CONFIG;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("loading {config}: {source}")]
    Engine {
        config: PathBuf,
        source: EngineError,
    },
    #[error("running {config} on {input}: {source}")]
    Infer {
        config: PathBuf,
        input: String,
        source: EngineError,
    },
    #[error("reading image {path}: {reason}")]
    Image { path: PathBuf, reason: String },
}

/// A loaded bundle.
pub struct BundleRunner {
    engine: Engine,
    config_path: PathBuf,
}

/// The nvinfer config of a bundle folder, or the config file itself.
pub fn bundle_config_path(bundle: &Path) -> PathBuf {
    if bundle.is_dir() {
        bundle.join(BUNDLE_CONFIG)
    } else {
        bundle.to_path_buf()
    }
}

impl BundleRunner {
    /// Loads the bundle folder (or nvinfer config file) `bundle` on the CPU backend with
    /// `threads` threads (0 = all cores).
    pub fn open(bundle: &Path, threads: usize) -> Result<BundleRunner, RunError> {
        Self::open_with(bundle, threads, |_| {})
    }

    /// [`BundleRunner::open`] with the config changed by `adjust` first (evaluation lowers the
    /// detection threshold, for instance).
    pub fn open_with(
        bundle: &Path,
        threads: usize,
        adjust: impl FnOnce(&mut InferConfig),
    ) -> Result<BundleRunner, RunError> {
        let config_path = bundle_config_path(bundle);
        let mut loaded = InferConfig::from_file(&config_path)?;
        adjust(&mut loaded.config);
        for warning in &loaded.warnings {
            tracing::warn!("{warning}");
        }
        let (engine, warnings) =
            Engine::load(loaded.config, BackendKind::Cpu, threads).map_err(|source| {
                RunError::Engine {
                    config: config_path.clone(),
                    source,
                }
            })?;
        for warning in warnings {
            tracing::warn!("{warning}");
        }
        Ok(BundleRunner {
            engine,
            config_path,
        })
    }

    pub fn config(&self) -> &InferConfig {
        &self.engine.config
    }

    /// Network input (width, height).
    pub fn network_size(&self) -> (usize, usize) {
        self.engine.network_size()
    }

    /// Runs on a whole RGB image (primary mode); `name` labels errors.
    pub fn run_rgb(&mut self, image: &RgbImage, name: &str) -> Result<InferResult, RunError> {
        let (width, height) = (image.width() as usize, image.height() as usize);
        let frame = rgb_frame(image);
        let mut results = self
            .engine
            .infer_regions(&frame, &[Rect::full(width, height)])
            .map_err(|source| RunError::Infer {
                config: self.config_path.clone(),
                input: name.to_string(),
                source,
            })?;
        Ok(results.remove(0))
    }

    /// Reads an image file and runs on it.
    pub fn run_file(&mut self, path: &Path) -> Result<(RgbImage, InferResult), RunError> {
        let image = read_rgb(path)?;
        let result = self.run_rgb(&image, &path.display().to_string())?;
        Ok((image, result))
    }
}

/// A whole RGB image as the pre-processor's frame.
pub fn rgb_frame(image: &RgbImage) -> FrameView<'_> {
    let width = image.width() as usize;
    FrameView {
        format: PixelFormat::Rgb,
        width,
        height: image.height() as usize,
        planes: vec![image.as_raw()],
        strides: vec![width * 3],
    }
}

/// Decodes an image file to RGB.
pub fn read_rgb(path: &Path) -> Result<RgbImage, RunError> {
    image::open(path)
        .map(|i| i.to_rgb8())
        .map_err(|e| RunError::Image {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
}
