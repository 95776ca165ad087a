//! onnxruntime through the `ort` crate (feature `onnxruntime`), with libonnxruntime loaded at
//! run time from `ORT_DYLIB_PATH` (or the loader's search path). One backend, three execution
//! providers: CPU ([`BackendKind::OnnxRuntime`], what CI runs), CUDA ([`BackendKind::Cuda`]) and
//! TensorRT ([`BackendKind::TensorRt`]: FP16 for network-mode 2, INT8 with int8-calib-file for
//! network-mode 1, an engine cache next to the model, and `model-engine-file` engines built
//! elsewhere loaded through an EPContext wrapper). A provider that the loaded library lacks is
//! an error at load time ([`BackendError::Unavailable`]), which `backend=auto` falls back from.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use ort::ep::{ExecutionProviderDispatch, TensorRT, CPU, CUDA};
use ort::session::Session as OrtSession;

use super::engine_cache::{self, nvinfer_engine_path, CacheDecision, EngineKey, Precision};
use super::{epcontext, Backend, BackendError, BackendKind, ModelSpec, Plan, Session, TensorInfo};
use crate::model::read_onnx;
use crate::tensor::Tensor;
use tract_onnx::pb as ort_pb;

/// Environment variable naming libonnxruntime.so.
pub const DYLIB_ENV: &str = "ORT_DYLIB_PATH";

struct Runtime {
    environment: ort::environment::Environment,
    library: PathBuf,
}

/// Loads libonnxruntime and creates the process's onnxruntime environment, once. Returns the
/// library path, or why it could not be loaded.
pub fn runtime_library() -> Result<PathBuf, String> {
    runtime().map(|r| r.library.clone())
}

fn runtime() -> Result<&'static Runtime, String> {
    static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let library = std::env::var_os(DYLIB_ENV)
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("libonnxruntime.so"));
            let builder = ort::init_from(&library).map_err(|e| {
                format!(
                    "cannot load onnxruntime from {}: {e} (set {DYLIB_ENV} to a libonnxruntime.so, \
                     e.g. the one in the onnxruntime PyPI wheel: site-packages/onnxruntime/capi/)",
                    library.display()
                )
            })?;
            let environment = builder
                .with_name("nvtl")
                .build()
                .map_err(|e| format!("onnxruntime environment: {e}"))?;
            Ok(Runtime {
                environment,
                library,
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Whether the loaded onnxruntime was built with the execution provider of `kind`.
pub fn provider_available(kind: BackendKind) -> Result<(), String> {
    let runtime = runtime()?;
    let _ = &runtime.environment;
    use ort::ep::ExecutionProvider;
    let (name, available) = match kind {
        BackendKind::TensorRt => ("TensorRT", TensorRT::is_available()),
        BackendKind::Cuda => ("CUDA", CUDA::is_available()),
        _ => ("CPU", Ok(true)),
    };
    match available {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!(
            "the onnxruntime at {} has no {name} execution provider (the PyPI 'onnxruntime' wheel is CPU-only; \
             use onnxruntime-gpu)",
            runtime.library.display()
        )),
        Err(e) => Err(format!("onnxruntime: {e}")),
    }
}

/// Loads `model` in onnxruntime with the CPU execution provider (parse, check, place every
/// node on a kernel) and drops it: `Ok`, or onnxruntime's error text.
pub fn check_model(model: &Path) -> Result<(), String> {
    let runtime = runtime()?;
    let mut builder = OrtSession::builder(&runtime.environment).map_err(|e| e.to_string())?;
    builder
        .commit_from_file(model)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// The onnxruntime backend with the execution provider `kind` stands for.
pub struct OnnxRuntime {
    kind: BackendKind,
}

impl OnnxRuntime {
    /// `kind` is OnnxRuntime (CPU EP), Cuda or TensorRt.
    pub fn new(kind: BackendKind) -> OnnxRuntime {
        OnnxRuntime { kind }
    }
}

impl Backend for OnnxRuntime {
    fn kind(&self) -> BackendKind {
        self.kind
    }

    fn load(&self, spec: &ModelSpec) -> Result<Arc<dyn Plan>, BackendError> {
        Ok(Arc::new(OrtPlan::load(self.kind, spec)?))
    }
}

struct OrtPlan {
    kind: BackendKind,
    notes: Vec<String>,
    spec: ModelSpec,
    session: Arc<Mutex<OrtSession>>,
    input: TensorInfo,
    outputs: Vec<TensorInfo>,
}

fn unavailable(kind: BackendKind, reason: impl Into<String>) -> BackendError {
    BackendError::Unavailable {
        backend: kind,
        reason: reason.into(),
    }
}

/// The execution providers for `kind`; registration failures are errors, not silent CPU runs.
/// `dump_context`: for an engine built now, where the TensorRT EP writes its EPContext model
/// (the engine beside it), so that nvtl can file the engine under nvinfer's name.
fn providers(
    kind: BackendKind,
    spec: &ModelSpec,
    dump_context: Option<&Path>,
) -> Result<Vec<ExecutionProviderDispatch>, BackendError> {
    Ok(match kind {
        BackendKind::TensorRt => {
            let mut trt = TensorRT::default()
                .with_device_id(spec.gpu_id as i32)
                .with_fp16(matches!(spec.precision, Precision::Fp16 | Precision::Best))
                .with_int8(matches!(spec.precision, Precision::Int8 | Precision::Best))
                .with_engine_cache(true)
                .with_engine_cache_path(engine_cache_dir(spec).display().to_string())
                .with_engine_cache_prefix(engine_cache_prefix(spec));
            if spec.precision == Precision::Int8 {
                let table = spec.int8_calib_file.as_ref().ok_or_else(|| BackendError::Prepare {
                    path: spec.onnx_path.clone(),
                    reason: "network-mode=1 (INT8) needs int8-calib-file (a TensorRT calibration table)".into(),
                })?;
                trt = trt
                    .with_int8_calibration_table_name(table.display().to_string())
                    .with_int8_use_native_calibration_table(true);
            }
            if let Some(context) = dump_context {
                trt = trt
                    .with_dump_ep_context_model(true)
                    .with_ep_context_file_path(context.display().to_string())
                    .with_ep_context_embed_mode(0);
            }
            vec![
                trt.build().error_on_failure(),
                CUDA::default()
                    .with_device_id(spec.gpu_id as i32)
                    .build()
                    .error_on_failure(),
            ]
        }
        BackendKind::Cuda => vec![CUDA::default()
            .with_device_id(spec.gpu_id as i32)
            .build()
            .error_on_failure()],
        _ => vec![CPU::default().build()],
    })
}

/// Where TensorRT engines for `spec` go: the model's folder, where nvinfer writes its engines.
fn engine_cache_dir(spec: &ModelSpec) -> PathBuf {
    spec.onnx_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// nvinfer's engine name without `.engine`, as the TensorRT EP's cache prefix.
fn engine_cache_prefix(spec: &ModelSpec) -> String {
    let path = super::engine_cache::nvinfer_engine_path(
        &spec.onnx_path,
        spec.batch_size.max(1),
        spec.gpu_id,
        spec.precision,
    );
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The engine cache key of `spec` on this machine (needs libcuda and libnvinfer).
fn engine_key(spec: &ModelSpec, shape: &[usize]) -> Result<EngineKey, String> {
    let gpu = super::gpu::gpu_info(spec.gpu_id)?;
    let tensorrt_version = super::gpu::tensorrt_version()?;
    let sha = |p: &Path| {
        engine_cache::sha256_file(p)
            .map(|(sha, _)| sha)
            .map_err(|e| e.to_string())
    };
    Ok(EngineKey {
        model_sha256: sha(&spec.onnx_path)?,
        tensorrt_version,
        gpu_name: gpu.name,
        gpu_sm: gpu.sm,
        precision: spec.precision,
        batch: shape.first().copied().unwrap_or(1),
        input_dims: shape.iter().skip(1).copied().collect(),
        calibration_sha256: match (&spec.int8_calib_file, spec.precision) {
            (Some(table), Precision::Int8 | Precision::Best) => Some(sha(table)?),
            _ => None,
        },
    })
}

/// After the TensorRT EP built an engine and dumped its EPContext model at `context`: moves the
/// engine the context names to nvinfer's `engine` path, rewrites the wrapper to point there and
/// records the key in the sidecar.
fn file_built_engine(
    context: &Path,
    engine: &Path,
    key: &EngineKey,
    model: &ort_pb::ModelProto,
    model_path: &Path,
) -> Result<(), String> {
    use prost::Message;
    let bytes = std::fs::read(context).map_err(|e| format!("{}: {e}", context.display()))?;
    let dumped = ort_pb::ModelProto::decode(bytes.as_slice())
        .map_err(|e| format!("{}: {e}", context.display()))?;
    let built = dumped
        .graph
        .iter()
        .flat_map(|g| &g.node)
        .filter(|n| n.op_type == "EPContext")
        .flat_map(|n| &n.attribute)
        .find(|a| a.name == "ep_cache_context")
        .map(|a| String::from_utf8_lossy(&a.s).into_owned())
        .ok_or_else(|| format!("{} names no engine", context.display()))?;
    let dir = context.parent().unwrap_or(Path::new("."));
    let built = dir.join(built);
    if built != engine {
        std::fs::rename(&built, engine)
            .map_err(|e| format!("moving {} to {}: {e}", built.display(), engine.display()))?;
    }
    let (inputs, outputs) = epcontext::io_of(model, model_path).map_err(|e| e.to_string())?;
    epcontext::write_wrapper(engine, inputs, outputs).map_err(|e| e.to_string())?;
    engine_cache::write_sidecar(engine, key).map_err(|e| e.to_string())
}

impl OrtPlan {
    fn load(kind: BackendKind, spec: &ModelSpec) -> Result<OrtPlan, BackendError> {
        let runtime = runtime().map_err(|reason| unavailable(kind, reason))?;
        if kind != BackendKind::OnnxRuntime {
            provider_available(kind).map_err(|reason| unavailable(kind, reason))?;
        }
        let path = &spec.onnx_path;
        let prepare = |what: &str, e: &dyn std::fmt::Display| BackendError::Prepare {
            path: path.clone(),
            reason: format!("onnxruntime ({kind}): {what}: {e}"),
        };
        let onnx = read_onnx(path)?;
        let (input_name, shape) = super::tract_cpu::image_input(&onnx, spec)?;
        let wrap = |engine: &Path| -> Result<PathBuf, BackendError> {
            let (inputs, outputs) = epcontext::io_of(&onnx.proto, path)
                .map_err(|e| prepare("reading inputs/outputs", &e))?;
            epcontext::write_wrapper(engine, inputs, outputs)
                .map_err(|e| prepare("EPContext wrapper", &e))
        };

        // TensorRT: an engine built elsewhere (model-engine-file) or a valid cached engine runs
        // through an EPContext wrapper; otherwise the EP builds one from the ONNX model, and it
        // is filed under nvinfer's name with a sidecar afterwards.
        let mut notes = Vec::new();
        let mut build: Option<(PathBuf, EngineKey)> = None;
        let model_file = match (&spec.engine_file, kind) {
            (Some(engine), BackendKind::TensorRt) => wrap(engine)?,
            (None, BackendKind::TensorRt) => match engine_key(spec, &shape) {
                Ok(key) => {
                    let engine = nvinfer_engine_path(
                        path,
                        spec.batch_size.max(1),
                        spec.gpu_id,
                        spec.precision,
                    );
                    match engine_cache::check(&engine, &key) {
                        CacheDecision::Use(engine) => wrap(&engine)?,
                        CacheDecision::Build {
                            path: engine,
                            reason,
                        } => {
                            notes.extend(reason);
                            build = Some((engine, key));
                            path.clone()
                        }
                    }
                }
                Err(why) => {
                    notes.push(format!("TensorRT engine cache off: {why}"));
                    path.clone()
                }
            },
            _ => path.clone(),
        };
        let context_dump = build
            .as_ref()
            .map(|(engine, _)| epcontext::wrapper_path(engine));

        let threads = if spec.threads == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        } else {
            spec.threads
        };
        let providers = providers(kind, spec, context_dump.as_deref())?;
        let mut builder = OrtSession::builder(&runtime.environment)
            .map_err(|e| prepare("session builder", &e))?
            .with_intra_threads(threads)
            .map_err(|e| prepare("threads", &e))?
            .with_execution_providers(providers)
            .map_err(|e| unavailable(kind, format!("execution provider: {e}")))?;
        let mut session = builder
            .commit_from_file(&model_file)
            .map_err(|e| prepare(&format!("loading {}", model_file.display()), &e))?;
        if let (Some((engine, key)), Some(context)) = (&build, &context_dump) {
            if let Err(why) = file_built_engine(context, engine, key, &onnx.proto, path) {
                notes.push(format!(
                    "TensorRT engine built but not cached as {}: {why}",
                    engine.display()
                ));
            }
        }

        // Concrete output shapes come from one run on zeros (models may leave them symbolic).
        let zeros = Tensor::zeros(input_name.clone(), shape.clone());
        let outputs = run(&mut session, &input_name, &zeros)
            .map_err(|e| prepare("first run", &e))?
            .into_iter()
            .map(|t| TensorInfo {
                name: t.name,
                shape: t.shape,
            })
            .collect();
        Ok(OrtPlan {
            kind,
            notes,
            spec: spec.clone(),
            session: Arc::new(Mutex::new(session)),
            input: TensorInfo {
                name: input_name,
                shape,
            },
            outputs,
        })
    }
}

fn run(session: &mut OrtSession, input_name: &str, input: &Tensor) -> Result<Vec<Tensor>, String> {
    let value = ort::value::Tensor::from_array((
        input.shape.clone(),
        input.data.clone().into_boxed_slice(),
    ))
    .map_err(|e| e.to_string())?;
    let names: Vec<String> = session
        .outputs()
        .iter()
        .map(|o| o.name().to_string())
        .collect();
    let outputs = session
        .run(ort::inputs![input_name => value])
        .map_err(|e| e.to_string())?;
    names
        .iter()
        .map(|name| {
            let (shape, data) = outputs[name.as_str()]
                .try_extract_tensor::<f32>()
                .map_err(|e| format!("output '{name}': {e} (nvtl reads float32 outputs)"))?;
            Ok(Tensor::new(
                name.clone(),
                shape.iter().map(|&d| d.max(0) as usize).collect(),
                data.to_vec(),
            ))
        })
        .collect()
}

impl Plan for OrtPlan {
    fn backend(&self) -> BackendKind {
        self.kind
    }

    fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    fn input(&self) -> &TensorInfo {
        &self.input
    }

    fn outputs(&self) -> &[TensorInfo] {
        &self.outputs
    }

    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }

    fn new_session(&self) -> Result<Box<dyn Session>, BackendError> {
        Ok(Box::new(OrtStream {
            session: self.session.clone(),
            input: self.input.clone(),
        }))
    }
}

/// A stream's handle on the plan's onnxruntime session (runs are serialised: one onnxruntime
/// session, and with TensorRT one engine, per model).
struct OrtStream {
    session: Arc<Mutex<OrtSession>>,
    input: TensorInfo,
}

impl Session for OrtStream {
    fn run(&mut self, input: &Tensor) -> Result<Vec<Tensor>, BackendError> {
        if input.shape != self.input.shape {
            return Err(BackendError::InputShape {
                expected: self.input.shape.clone(),
                got: input.shape.clone(),
            });
        }
        let mut session = self
            .session
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        run(&mut session, &self.input.name, input).map_err(BackendError::Run)
    }
}
