//! Inference backends: `Backend` loads a model into a `Plan` (immutable, optimised once per
//! model and shared by every stream), which hands out `Session`s (per stream, mutable state).

pub mod engine_cache;
pub mod epcontext;
pub mod gpu;
#[cfg(feature = "onnxruntime")]
pub mod onnxruntime;
mod tract_cpu;
#[cfg(feature = "cuda")]
pub mod tract_cuda;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex, Weak};

pub use engine_cache::Precision;
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
    /// tract on the CPU.
    Cpu,
    /// onnxruntime's CPU execution provider (feature `onnxruntime`).
    OnnxRuntime,
    /// The GPU through tract-cuda (feature `cuda`); in builds with only the `onnxruntime`
    /// feature, onnxruntime's CUDA execution provider.
    Cuda,
    /// onnxruntime's TensorRT execution provider (feature `onnxruntime`).
    TensorRt,
}

impl BackendKind {
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Auto => "auto",
            BackendKind::Cpu => "cpu",
            BackendKind::OnnxRuntime => "onnxruntime",
            BackendKind::Cuda => "cuda",
            BackendKind::TensorRt => "tensorrt",
        }
    }

    pub const ALL: [BackendKind; 5] = [
        BackendKind::Auto,
        BackendKind::Cpu,
        BackendKind::OnnxRuntime,
        BackendKind::Cuda,
        BackendKind::TensorRt,
    ];

    /// The cargo features that build the backend.
    pub fn build_hint(self) -> &'static str {
        match self {
            BackendKind::Cuda => "--features cuda for tract-cuda, or --features onnxruntime",
            _ => "--features onnxruntime",
        }
    }

    /// Whether this build contains the backend.
    pub fn is_built(self) -> bool {
        match self {
            BackendKind::Auto | BackendKind::Cpu => true,
            BackendKind::Cuda => cfg!(any(feature = "cuda", feature = "onnxruntime")),
            BackendKind::OnnxRuntime | BackendKind::TensorRt => cfg!(feature = "onnxruntime"),
        }
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
            "onnxruntime" | "ort" => Ok(BackendKind::OnnxRuntime),
            "cuda" => Ok(BackendKind::Cuda),
            "tensorrt" | "trt" => Ok(BackendKind::TensorRt),
            other => Err(format!(
                "unknown backend '{other}' (expected auto, cpu, onnxruntime, cuda or tensorrt)"
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
    /// GPU for the cuda and tensorrt backends (`gpu-id`).
    pub gpu_id: u32,
    /// TensorRT precision (`network-mode`).
    pub precision: Precision,
    /// TensorRT INT8 calibration table (`int8-calib-file`).
    pub int8_calib_file: Option<PathBuf>,
    /// A TensorRT engine built elsewhere (`model-engine-file`), run by the tensorrt backend.
    pub engine_file: Option<PathBuf>,
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
    #[error("backend '{0}' is not built into this nvtl (build with {hint})", hint = .0.build_hint())]
    NotBuilt(BackendKind),
    #[error("backend '{backend}' is unavailable: {reason}")]
    Unavailable {
        backend: BackendKind,
        reason: String,
    },
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
    /// Things worth a warning that happened while loading (e.g. a stale engine rebuilt).
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Per-stream inference state.
pub trait Session: Send {
    /// Runs one batch. `input` has exactly the plan's input shape; outputs come in the plan's
    /// output order, batch dimension first.
    fn run(&mut self, input: &Tensor) -> Result<Vec<Tensor>, BackendError>;

    /// The GPU whose memory this session can take its input from, if it can (the cuda backend):
    /// then [`Session::device_input`] and [`Session::run_device_input`] replace [`Session::run`]
    /// and the input never visits the host.
    #[cfg(feature = "cuda")]
    fn device_input_gpu(&self) -> Option<usize> {
        None
    }

    /// A device buffer for the next batch's input (f32, the plan's input shape, dense), and the
    /// stream the model will run on: work queued on it to fill the buffer runs before the model.
    #[cfg(feature = "cuda")]
    fn device_input(&mut self) -> Result<DeviceInput, BackendError> {
        Err(BackendError::Run(
            "this backend reads its input from host memory".into(),
        ))
    }

    /// Runs one batch on the buffer the last [`Session::device_input`] handed out.
    #[cfg(feature = "cuda")]
    fn run_device_input(&mut self) -> Result<Vec<Tensor>, BackendError> {
        Err(BackendError::Run(
            "this backend reads its input from host memory".into(),
        ))
    }
}

/// The address of f32 slot `slot` of `slot_len` in a buffer of `len` f32 at `base`, if it fits.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
fn slot_address(base: u64, len: usize, slot: usize, slot_len: usize) -> Option<u64> {
    let end = slot.checked_add(1)?.checked_mul(slot_len)?;
    let offset = (slot * slot_len).checked_mul(std::mem::size_of::<f32>())?;
    (end <= len).then_some(base + offset as u64)
}

/// A model input in GPU memory (see [`Session::device_input`]).
#[cfg(feature = "cuda")]
#[derive(Clone, Debug)]
pub struct DeviceInput {
    pub stream: Arc<cudarc::driver::CudaStream>,
    /// Device address of the first element.
    pub ptr: u64,
    /// Elements (f32) in the buffer.
    pub len: usize,
}

#[cfg(feature = "cuda")]
impl DeviceInput {
    /// Batch slot `slot` of `slot_len` elements: its device address.
    pub fn slot(&self, slot: usize, slot_len: usize) -> Option<u64> {
        slot_address(self.ptr, self.len, slot, slot_len)
    }

    /// Queues zeros from element `from` to the end (the unused slots of a partial batch).
    pub fn zero_from(&self, from: usize) -> Result<(), BackendError> {
        let Some(tail) = self.len.checked_sub(from).filter(|&n| n > 0) else {
            return Ok(());
        };
        let size = std::mem::size_of::<f32>();
        // SAFETY: the range lies inside the buffer `device_input` allocated; the memset is queued
        // on the stream that allocated it and runs the model.
        unsafe {
            cudarc::driver::result::memset_d8_async(
                self.ptr + (from * size) as u64,
                0,
                tail * size,
                self.stream.cu_stream(),
            )
        }
        .map_err(|e| BackendError::Run(format!("clearing the unused batch slots: {e}")))
    }
}

/// Loads models into plans.
pub trait Backend: Send + Sync {
    fn kind(&self) -> BackendKind;
    fn load(&self, spec: &ModelSpec) -> Result<Arc<dyn Plan>, BackendError>;
}

/// The backend object for `kind` (not `Auto`), if this build has it.
pub fn backend(kind: BackendKind) -> Result<Box<dyn Backend>, BackendError> {
    match kind {
        BackendKind::Cpu => Ok(Box::new(TractCpu)),
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => Ok(Box::new(tract_cuda::TractCuda)),
        #[cfg(all(feature = "onnxruntime", not(feature = "cuda")))]
        BackendKind::Cuda => Ok(Box::new(onnxruntime::OnnxRuntime::new(kind))),
        #[cfg(feature = "onnxruntime")]
        BackendKind::OnnxRuntime | BackendKind::TensorRt => {
            Ok(Box::new(onnxruntime::OnnxRuntime::new(kind)))
        }
        other => Err(BackendError::NotBuilt(other)),
    }
}

/// The order `backend=auto` tries.
pub const AUTO_ORDER: [BackendKind; 3] =
    [BackendKind::TensorRt, BackendKind::Cuda, BackendKind::Cpu];

/// Loads `spec` on `kind`; for `Auto`, tries tensorrt, cuda, then cpu and returns one warning
/// per fallback taken (the element logs them at WARNING). An explicitly chosen backend that
/// fails is an error, never a silent fallback.
pub fn load_with_fallback(
    kind: BackendKind,
    spec: &ModelSpec,
) -> Result<(Arc<dyn Plan>, Vec<String>), BackendError> {
    if kind != BackendKind::Auto {
        return Ok((load_shared(backend(kind)?.as_ref(), spec)?, Vec::new()));
    }
    let mut warnings = Vec::new();
    for (i, candidate) in AUTO_ORDER.iter().copied().enumerate() {
        let next = AUTO_ORDER.get(i + 1);
        let attempt = backend(candidate).and_then(|b| load_shared(b.as_ref(), spec));
        match (attempt, next) {
            (Ok(plan), _) => return Ok((plan, warnings)),
            (Err(err), Some(next)) => warnings.push(format!(
                "backend=auto: {candidate} not used ({err}); falling back to {next}"
            )),
            (Err(err), None) => return Err(err),
        }
    }
    unreachable!("AUTO_ORDER ends in cpu")
}

/// One backend's state in this build and on this machine (for `gst-inspect`, `trainer doctor`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendStatus {
    pub kind: BackendKind,
    pub built: bool,
    /// `Ok(detail)` when it can load models here, else why not.
    pub usable: Result<String, String>,
}

/// The backends compiled into this build, as text for property blurbs:
/// e.g. "cpu (tract), onnxruntime, cuda, tensorrt (onnxruntime execution providers)".
pub fn built_backends_text() -> &'static str {
    match (cfg!(feature = "cuda"), cfg!(feature = "onnxruntime")) {
        (true, true) => "cpu (tract); cuda (tract-cuda); onnxruntime, tensorrt (onnxruntime execution providers, libonnxruntime loaded at run time from ORT_DYLIB_PATH)",
        (true, false) => "cpu (tract); cuda (tract-cuda); onnxruntime and tensorrt need the onnxruntime feature",
        (false, true) => "cpu (tract); onnxruntime, cuda, tensorrt (onnxruntime execution providers, libonnxruntime loaded at run time from ORT_DYLIB_PATH)",
        (false, false) => "cpu (tract) only; cuda needs the cuda feature (tract-cuda) or the onnxruntime feature; onnxruntime and tensorrt need the onnxruntime feature",
    }
}

/// Every backend: whether it is built and whether it can run here (loads libonnxruntime and
/// asks it for its execution providers; no model is loaded).
pub fn backend_report() -> Vec<BackendStatus> {
    [
        BackendKind::Cpu,
        BackendKind::OnnxRuntime,
        BackendKind::Cuda,
        BackendKind::TensorRt,
    ]
    .into_iter()
    .map(|kind| BackendStatus {
        kind,
        built: kind.is_built(),
        usable: usable(kind),
    })
    .collect()
}

fn usable(kind: BackendKind) -> Result<String, String> {
    match kind {
        BackendKind::Cpu => Ok("tract".into()),
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => tract_cuda::available().map(|()| "tract-cuda".into()),
        #[cfg(all(feature = "onnxruntime", not(feature = "cuda")))]
        BackendKind::Cuda => {
            onnxruntime::provider_available(kind)?;
            let library = onnxruntime::runtime_library()?;
            Ok(format!("onnxruntime from {}", library.display()))
        }
        #[cfg(feature = "onnxruntime")]
        BackendKind::OnnxRuntime | BackendKind::TensorRt => {
            onnxruntime::provider_available(kind)?;
            let library = onnxruntime::runtime_library()?;
            Ok(format!("onnxruntime from {}", library.display()))
        }
        other => Err(BackendError::NotBuilt(other).to_string()),
    }
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

#[cfg(test)]
mod tests {
    use super::slot_address;

    #[test]
    fn batch_slots_of_a_device_input_are_byte_addresses_inside_the_buffer() {
        // Two slots of 3x4x4 f32 at 0x1000.
        let (base, slot_len) = (0x1000, 48);
        assert_eq!(slot_address(base, 96, 0, slot_len), Some(0x1000));
        assert_eq!(slot_address(base, 96, 1, slot_len), Some(0x1000 + 48 * 4));
        assert_eq!(slot_address(base, 96, 2, slot_len), None);
        assert_eq!(slot_address(base, 95, 1, slot_len), None);
        assert_eq!(slot_address(base, 96, usize::MAX, slot_len), None);
    }
}
