//! Inference backends: `Backend` loads a model into a `Plan` (immutable, optimised once per
//! model and shared by every stream), which hands out `Session`s (per stream, mutable state).

mod tract_cpu;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex, Weak};

pub use tract_cpu::TractCpu;

use crate::config::TensorOrder;
use crate::model::ModelError;
use crate::tensor::Tensor;

/// Which backend runs a model (the element's `backend` property).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum BackendKind {
    /// The best backend this build and machine have: tensorrt, then cuda, then cpu.
    #[default]
    Auto,
    Cpu,
    Cuda,
    TensorRt,
}

impl BackendKind {
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Auto => "auto",
            BackendKind::Cpu => "cpu",
            BackendKind::Cuda => "cuda",
            BackendKind::TensorRt => "tensorrt",
        }
    }

    /// Whether this build contains the backend.
    pub fn is_built(self) -> bool {
        matches!(self, BackendKind::Auto | BackendKind::Cpu)
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BackendKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(BackendKind::Auto),
            "cpu" => Ok(BackendKind::Cpu),
            "cuda" => Ok(BackendKind::Cuda),
            "tensorrt" | "trt" => Ok(BackendKind::TensorRt),
            other => Err(format!(
                "unknown backend '{other}' (expected auto, cpu, cuda or tensorrt)"
            )),
        }
    }
}

/// What to load and how: the model file plus the config values that fix its input shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ModelSpec {
    pub onnx_path: PathBuf,
    /// Frames (or objects) per inference call; models with a fixed batch dimension keep theirs.
    pub batch_size: usize,
    /// `infer-dims` (c, h, w) for models whose input dimensions are dynamic.
    pub infer_dims: Option<[usize; 3]>,
    /// `network-input-order`: where the channels are in the model's input.
    pub input_order: TensorOrder,
    /// CPU threads for one inference; 0 uses every core.
    pub threads: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("model {path}: {reason}")]
    Unsupported { path: PathBuf, reason: String },
    #[error("model {path} could not be prepared for inference: {reason}")]
    Prepare { path: PathBuf, reason: String },
    #[error("input tensor has shape {got:?}, the model expects {expected:?}")]
    InputShape {
        expected: Vec<usize>,
        got: Vec<usize>,
    },
    #[error("inference failed: {0}")]
    Run(String),
    #[error("backend '{0}' is not built into this nvtl")]
    NotBuilt(BackendKind),
}

/// Name and concrete shape of a model input or output (batch dimension first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    pub shape: Vec<usize>,
}

impl TensorInfo {
    /// `(channels, height, width)` of an image input laid out in `order` (batch first).
    pub fn image_dims(&self, order: TensorOrder) -> Option<(usize, usize, usize)> {
        match (self.shape.as_slice(), order) {
            ([_, c, h, w], TensorOrder::Nchw) => Some((*c, *h, *w)),
            ([_, h, w, c], TensorOrder::Nhwc) => Some((*c, *h, *w)),
            _ => None,
        }
    }
}

/// A model ready to run on one backend. Immutable; shared across streams.
pub trait Plan: Send + Sync {
    fn backend(&self) -> BackendKind;
    fn spec(&self) -> &ModelSpec;
    /// The single image input, with its concrete shape (batch first).
    fn input(&self) -> &TensorInfo;
    fn outputs(&self) -> &[TensorInfo];
    fn new_session(&self) -> Result<Box<dyn Session>, BackendError>;
}

/// Per-stream inference state.
pub trait Session: Send {
    /// Runs one batch. `input` has exactly the plan's input shape; outputs come in the plan's
    /// output order, batch dimension first.
    fn run(&mut self, input: &Tensor) -> Result<Vec<Tensor>, BackendError>;
}

/// Loads models into plans.
pub trait Backend: Send + Sync {
    fn kind(&self) -> BackendKind;
    fn load(&self, spec: &ModelSpec) -> Result<Arc<dyn Plan>, BackendError>;
}

/// The backend for `kind` in this build, with the fallback chain `auto` implies. Returns the
/// backend and one message per fallback taken (for WARNING logs).
pub fn select(kind: BackendKind) -> Result<(Box<dyn Backend>, Vec<String>), BackendError> {
    let mut fallbacks = Vec::new();
    match kind {
        BackendKind::Cpu => {}
        BackendKind::Auto => {
            for skipped in [BackendKind::TensorRt, BackendKind::Cuda] {
                fallbacks.push(format!(
                    "backend=auto: {skipped} is not built into this nvtl, trying the next backend"
                ));
            }
        }
        other => return Err(BackendError::NotBuilt(other)),
    }
    Ok((Box::new(TractCpu), fallbacks))
}

type PlanKey = (BackendKind, ModelSpec, Option<std::time::SystemTime>, u64);

static PLANS: Mutex<Option<HashMap<PlanKey, Weak<dyn Plan>>>> = Mutex::new(None);

/// Loads through `backend`, reusing a live plan for the same file (same size and mtime), backend
/// and spec, so that several elements running one model share one optimised plan.
pub fn load_shared(backend: &dyn Backend, spec: &ModelSpec) -> Result<Arc<dyn Plan>, BackendError> {
    let metadata = std::fs::metadata(&spec.onnx_path).map_err(|source| ModelError::Read {
        path: spec.onnx_path.clone(),
        source,
    })?;
    let key: PlanKey = (
        backend.kind(),
        spec.clone(),
        metadata.modified().ok(),
        metadata.len(),
    );
    if let Some(plan) = lock_plans()
        .as_ref()
        .and_then(|m| m.get(&key))
        .and_then(Weak::upgrade)
    {
        return Ok(plan);
    }
    // Loading can take seconds: never under the lock. Two threads racing on one new model both
    // load it; the second insert wins and the first plan lives on with its sessions.
    let plan = backend.load(spec)?;
    let mut plans = lock_plans();
    let map = plans.get_or_insert_with(HashMap::new);
    map.retain(|_, weak| weak.strong_count() > 0);
    map.insert(key, Arc::downgrade(&plan));
    Ok(plan)
}

fn lock_plans() -> std::sync::MutexGuard<'static, Option<HashMap<PlanKey, Weak<dyn Plan>>>> {
    PLANS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
