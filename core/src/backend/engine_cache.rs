//! TensorRT engine cache. An engine is a per-GPU, per-TensorRT build of the portable ONNX model;
//! nvtl stores it where nvinfer would (`<model file>_b<N>_gpu<id>_<precision>.engine` next to
//! the model) and writes a sidecar (`<engine>.nvtl.json`) with the [`EngineKey`] it was built
//! for plus the engine's size and sha256. An engine is used only when its sidecar matches the
//! key of the current model, TensorRT, GPU, precision, batch and input dims, and the file is
//! intact; anything else (no sidecar, a corrupt sidecar, another key, a truncated or edited
//! engine) is rebuilt, with a reason for the warning log.
//!
//! A `model-engine-file` the user names explicitly is not a cache entry: it is loaded as given,
//! through an EPContext wrapper model ([`super::epcontext`]).

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::NetworkMode;

/// Engine precision, named as in nvinfer's engine file names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    Fp32,
    Fp16,
    Int8,
    Best,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Fp16 => "fp16",
            Precision::Int8 => "int8",
            Precision::Best => "best",
        }
    }
}

impl From<NetworkMode> for Precision {
    fn from(mode: NetworkMode) -> Precision {
        match mode {
            NetworkMode::Fp32 => Precision::Fp32,
            NetworkMode::Int8 => Precision::Int8,
            NetworkMode::Fp16 => Precision::Fp16,
            NetworkMode::Best => Precision::Best,
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything an engine depends on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineKey {
    /// sha256 of the ONNX model file, hex.
    pub model_sha256: String,
    /// TensorRT version that built the engine (e.g. "10.3.0").
    pub tensorrt_version: String,
    /// GPU name as the driver reports it.
    pub gpu_name: String,
    /// Compute capability (major, minor).
    pub gpu_sm: (u32, u32),
    pub precision: Precision,
    pub batch: usize,
    /// Input dimensions without the batch (c, h, w or h, w, c).
    pub input_dims: Vec<usize>,
    /// sha256 of the int8 calibration table, for int8 engines.
    #[serde(default)]
    pub calibration_sha256: Option<String>,
}

impl EngineKey {
    /// Names of the fields in which `self` and `other` differ.
    pub fn differences(&self, other: &EngineKey) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut check = |same: bool, name| {
            if !same {
                out.push(name)
            }
        };
        check(self.model_sha256 == other.model_sha256, "model");
        check(
            self.tensorrt_version == other.tensorrt_version,
            "TensorRT version",
        );
        check(
            self.gpu_name == other.gpu_name && self.gpu_sm == other.gpu_sm,
            "GPU",
        );
        check(self.precision == other.precision, "precision");
        check(self.batch == other.batch, "batch");
        check(self.input_dims == other.input_dims, "input dims");
        check(
            self.calibration_sha256 == other.calibration_sha256,
            "int8 calibration table",
        );
        out
    }

    /// A short stable digest of the whole key (hex), for cache file names.
    pub fn digest(&self) -> String {
        let text = serde_json::to_string(self).expect("keys serialise");
        hex(&Sha256::digest(text.as_bytes()))[..16].to_string()
    }
}

/// What the sidecar holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sidecar {
    /// Format marker, so that a foreign JSON file is not mistaken for ours.
    pub nvtl_engine_cache: u32,
    pub key: EngineKey,
    pub engine_size: u64,
    pub engine_sha256: String,
}

const SIDECAR_FORMAT: u32 = 1;

/// What to do with the engine at a cache path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheDecision {
    /// The engine matches the key and is intact.
    Use(PathBuf),
    /// Build a new engine at the path. `reason` is set when an existing engine is being
    /// replaced (log it as a warning).
    Build {
        path: PathBuf,
        reason: Option<String>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("engine cache {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// nvinfer's engine file for `model`: `<dir>/<model file name>_b<batch>_gpu<gpu>_<precision>.engine`.
pub fn nvinfer_engine_path(
    model: &Path,
    batch: usize,
    gpu_id: u32,
    precision: Precision,
) -> PathBuf {
    let name = model
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    model.with_file_name(format!("{name}_b{batch}_gpu{gpu_id}_{precision}.engine"))
}

pub fn sidecar_path(engine: &Path) -> PathBuf {
    let mut name = engine.as_os_str().to_owned();
    name.push(".nvtl.json");
    PathBuf::from(name)
}

pub fn sha256_file(path: &Path) -> Result<(String, u64), CacheError> {
    let io = |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((hex(&hasher.finalize()), size))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Decides whether the engine at `engine` can be used for `key`. Never fails: an unreadable
/// sidecar or engine is a reason to rebuild.
pub fn check(engine: &Path, key: &EngineKey) -> CacheDecision {
    let build = |reason: Option<String>| CacheDecision::Build {
        path: engine.to_path_buf(),
        reason,
    };
    if !engine.is_file() {
        return build(None);
    }
    let shown = engine.display();
    let sidecar_file = sidecar_path(engine);
    let text = match std::fs::read_to_string(&sidecar_file) {
        Ok(text) => text,
        Err(_) => {
            return build(Some(format!(
                "engine {shown} has no nvtl sidecar ({}): it was built elsewhere, so it is rebuilt",
                sidecar_file.display()
            )))
        }
    };
    let sidecar: Sidecar = match serde_json::from_str(&text) {
        Ok(s)
            if matches!(
                s,
                Sidecar {
                    nvtl_engine_cache: SIDECAR_FORMAT,
                    ..
                }
            ) =>
        {
            s
        }
        Ok(_) | Err(_) => {
            return build(Some(format!(
                "engine sidecar {} is corrupt or of another format: rebuilding {shown}",
                sidecar_file.display()
            )))
        }
    };
    let differences = sidecar.key.differences(key);
    if !differences.is_empty() {
        return build(Some(format!(
            "engine {shown} is stale (different {}): rebuilding",
            differences.join(", ")
        )));
    }
    match sha256_file(engine) {
        Ok((sha, size)) if sha == sidecar.engine_sha256 && size == sidecar.engine_size => {
            CacheDecision::Use(engine.to_path_buf())
        }
        Ok((_, size)) => build(Some(format!(
            "engine {shown} is truncated or modified ({size} bytes, sidecar says {}): rebuilding",
            sidecar.engine_size
        ))),
        Err(err) => build(Some(format!("{err}: rebuilding"))),
    }
}

/// Records `key` for the freshly built engine at `engine` (atomically: temp file + rename).
pub fn write_sidecar(engine: &Path, key: &EngineKey) -> Result<(), CacheError> {
    let (engine_sha256, engine_size) = sha256_file(engine)?;
    let sidecar = Sidecar {
        nvtl_engine_cache: SIDECAR_FORMAT,
        key: key.clone(),
        engine_size,
        engine_sha256,
    };
    let path = sidecar_path(engine);
    let tmp = path.with_extension("json.tmp");
    let io = |source| CacheError::Io {
        path: path.clone(),
        source,
    };
    std::fs::write(
        &tmp,
        serde_json::to_string_pretty(&sidecar).expect("sidecars serialise"),
    )
    .map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> EngineKey {
        EngineKey {
            model_sha256: "ab".repeat(32),
            tensorrt_version: "10.3.0".into(),
            gpu_name: "NVIDIA H200".into(),
            gpu_sm: (9, 0),
            precision: Precision::Fp16,
            batch: 1,
            input_dims: vec![3, 512, 512],
            calibration_sha256: None,
        }
    }

    fn dir(test: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("nvtl-engine-cache-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A cached engine for `key()` at nvinfer's path in a fresh folder.
    fn cached(test: &str) -> PathBuf {
        let model = dir(test).join("model.onnx");
        std::fs::write(&model, b"onnx bytes").unwrap();
        let engine = nvinfer_engine_path(&model, 1, 0, Precision::Fp16);
        std::fs::write(&engine, vec![7u8; 4096]).unwrap();
        write_sidecar(&engine, &key()).unwrap();
        engine
    }

    fn reason(decision: CacheDecision) -> String {
        match decision {
            CacheDecision::Build {
                reason: Some(reason),
                ..
            } => reason,
            other => panic!("expected a rebuild with a reason, got {other:?}"),
        }
    }

    #[test]
    fn engine_files_have_nvinfer_names() {
        let path = nvinfer_engine_path(Path::new("/m/resnet.onnx"), 4, 1, Precision::Int8);
        assert_eq!(path, PathBuf::from("/m/resnet.onnx_b4_gpu1_int8.engine"));
        assert_eq!(
            sidecar_path(&path),
            PathBuf::from("/m/resnet.onnx_b4_gpu1_int8.engine.nvtl.json")
        );
        assert_eq!(Precision::from(NetworkMode::Fp16), Precision::Fp16);
    }

    #[test]
    fn a_matching_intact_engine_is_used() {
        let engine = cached("use");
        assert_eq!(check(&engine, &key()), CacheDecision::Use(engine.clone()));
    }

    #[test]
    fn any_changed_input_gives_a_new_key_and_a_rebuild() {
        let engine = cached("changed");
        type Change = (&'static str, Box<dyn Fn(&mut EngineKey)>);
        let changes: Vec<Change> = vec![
            ("model", Box::new(|k| k.model_sha256 = "cd".repeat(32))),
            (
                "TensorRT version",
                Box::new(|k| k.tensorrt_version = "10.7.0".into()),
            ),
            ("GPU", Box::new(|k| k.gpu_name = "NVIDIA A100".into())),
            ("GPU", Box::new(|k| k.gpu_sm = (8, 0))),
            ("precision", Box::new(|k| k.precision = Precision::Int8)),
            ("batch", Box::new(|k| k.batch = 4)),
            ("input dims", Box::new(|k| k.input_dims = vec![3, 320, 320])),
            (
                "int8 calibration table",
                Box::new(|k| k.calibration_sha256 = Some("00".into())),
            ),
        ];
        for (what, change) in changes {
            let mut changed = key();
            change(&mut changed);
            assert_ne!(changed.digest(), key().digest(), "{what} changes the key");
            let why = reason(check(&engine, &changed));
            assert!(why.contains("stale") && why.contains(what), "{what}: {why}");
        }
    }

    #[test]
    fn missing_foreign_corrupt_or_truncated_engines_are_rebuilt() {
        let engine = cached("broken");
        std::fs::write(&engine, vec![7u8; 1000]).unwrap();
        assert!(reason(check(&engine, &key())).contains("truncated"));

        let engine = cached("corrupt");
        std::fs::write(sidecar_path(&engine), b"{ not json").unwrap();
        assert!(reason(check(&engine, &key())).contains("corrupt"));
        std::fs::write(sidecar_path(&engine), b"{\"some\": \"other json\"}").unwrap();
        assert!(reason(check(&engine, &key())).contains("corrupt"));

        let engine = cached("foreign");
        std::fs::remove_file(sidecar_path(&engine)).unwrap();
        assert!(reason(check(&engine, &key())).contains("built elsewhere"));

        let missing = engine.with_file_name("none.engine");
        assert_eq!(
            check(&missing, &key()),
            CacheDecision::Build {
                path: missing.clone(),
                reason: None
            }
        );
    }
}
