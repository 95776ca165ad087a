use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::prelude::*;
use gst_video::VideoFormat;

use nvtl_core::backend::BackendKind;
use nvtl_core::config::{
    ConfigError, InferConfig, NetworkType, ProcessMode, DEFAULT_SECONDARY_REINFER_INTERVAL,
};
use nvtl_core::nvmm;
use nvtl_core::preprocess::{FrameView, PixelFormat, Rect};

use super::async_classifier::AsyncClassifier;
use super::deepstream::DsBatch;
use super::history::{Decision, ObjectHistory};
use super::settings::{format_class_ids, parse_class_ids, Settings};
use super::targets::inference_targets;
use super::{BackendProperty, ProcessModeProperty};
use crate::meta;
use nvtl_core::engine::{Engine, EngineError, FillInput, InferResult, StageTimes, Target};
use nvtl_core::ClassifierOutput;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "nvtlinfer",
        gst::DebugColorFlags::empty(),
        Some("nvtl inference element"),
    )
});

/// Caps feature of DeepStream's NvBufSurface buffers.
pub(crate) const NVMM_FEATURE: &str = "memory:NVMM";

/// Formats accepted as `video/x-raw(memory:NVMM)`: the NvBufSurface colour formats nvtl reads.
const NVMM_FORMATS: [VideoFormat; 5] = [
    VideoFormat::Nv12,
    VideoFormat::Rgba,
    VideoFormat::Bgrx,
    VideoFormat::I420,
    VideoFormat::Gray8,
];

pub(crate) const FORMATS: [VideoFormat; 9] = [
    VideoFormat::Rgb,
    VideoFormat::Rgbx,
    VideoFormat::Rgba,
    VideoFormat::Bgr,
    VideoFormat::Bgrx,
    VideoFormat::Bgra,
    VideoFormat::Nv12,
    VideoFormat::I420,
    VideoFormat::Gray8,
];

#[derive(Debug, thiserror::Error)]
enum LoadError {
    #[error(transparent)]
    Config(Box<ConfigError>),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl From<ConfigError> for LoadError {
    fn from(err: ConfigError) -> Self {
        LoadError::Config(Box::new(err))
    }
}

impl LoadError {
    fn to_error_message(&self) -> gst::ErrorMessage {
        let text = self.to_string();
        match self {
            LoadError::Config(err)
                if matches!(
                    **err,
                    ConfigError::NotFound { .. } | ConfigError::Unreadable { .. }
                ) =>
            {
                gst::error_msg!(gst::ResourceError::OpenRead, ("{}", text))
            }
            LoadError::Engine(EngineError::Backend(nvtl_core::backend::BackendError::Model(
                nvtl_core::model::ModelError::Read { .. },
            ))) => gst::error_msg!(gst::ResourceError::OpenRead, ("{}", text)),
            _ => gst::error_msg!(gst::LibraryError::Settings, ("{}", text)),
        }
    }
}

/// Reads the config file (if any), applies the user's properties and loads the model.
fn load_engine(settings: &Settings) -> Result<(Engine, Vec<String>), LoadError> {
    let mut warnings = Vec::new();
    let config = match &settings.config_file_path {
        Some(path) => {
            let loaded = InferConfig::from_file(path)?;
            warnings.extend(loaded.warnings.iter().map(|w| w.to_string()));
            loaded.config
        }
        None => InferConfig::default(),
    };
    let config = settings.apply_to(config);
    let (engine, engine_warnings) =
        Engine::load(config, settings.backend, settings.cpu_threads as usize)?;
    warnings.extend(engine_warnings);
    Ok((engine, warnings))
}

struct State {
    engine: Engine,
    info: Option<gst_video::VideoInfo>,
    /// The caps carry `memory:NVMM`: buffers map to an NvBufSurface.
    nvmm: bool,
    frames: u64,
    /// What secondary classifiers found on tracked DeepStream objects.
    history: ObjectHistory,
    /// classifier-async-mode's worker, started on the first object it gets.
    async_classifier: Option<AsyncClassifier>,
    /// Whether the log already says what classifier-async-mode cannot do here.
    async_warned: bool,
    /// GPU pre-processing of NVBUF_MEM_CUDA_DEVICE surfaces, made on the first such frame.
    #[cfg(feature = "cuda")]
    gpu: Option<nvtl_core::preprocess::cuda::GpuPreprocessor>,
}

#[derive(Default)]
struct Stats {
    frames: u64,
    times: StageTimes,
    metadata: Duration,
    backend: String,
    model: String,
}

#[derive(Default)]
pub struct NvtlInfer {
    settings: Mutex<Settings>,
    /// The resolved config of the running model, for property getters.
    resolved: Mutex<Option<InferConfig>>,
    state: Mutex<Option<State>>,
    /// A model loaded off the streaming thread, swapped in before the next frame.
    pending: Arc<Mutex<Option<Engine>>>,
    /// Counts model swap requests so that an older, slower load never replaces a newer one.
    swap_generation: Arc<AtomicU64>,
    /// Shared with classifier-async-mode's worker, which adds its inferences.
    stats: Arc<Mutex<Stats>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl NvtlInfer {
    /// Posts an inference error.
    fn inference_failed(&self, err: EngineError) -> gst::FlowError {
        gst::element_imp_error!(
            self,
            gst::StreamError::Failed,
            ("inference failed: {}", err)
        );
        gst::FlowError::Error
    }

    /// Runs `engine` on the targets of a surface's frames: host frames on the CPU pre-processing,
    /// CUDA-memory frames on the GPU one (with the cuda backend on their GPU, straight into its
    /// device input). Errors are posted.
    fn infer_surface(
        &self,
        engine: &mut Engine,
        #[cfg(feature = "cuda")] gpu_slot: &mut Option<
            nvtl_core::preprocess::cuda::GpuPreprocessor,
        >,
        surface: &nvmm::SurfaceInfo,
        frames: &[nvmm::SurfaceFrame],
        targets: &[Target],
    ) -> Result<Vec<InferResult>, gst::FlowError> {
        #[cfg(feature = "cuda")]
        if frames
            .iter()
            .all(|frame| matches!(frame, nvmm::SurfaceFrame::Device(_)))
            && engine.device_input_gpu() == Some(surface.gpu_id as usize)
        {
            let gpu = self.gpu_preprocessor(gpu_slot, surface)?;
            // The network input is written into the cuda backend's own buffer.
            return engine
                .infer_on_device(targets, &mut |target, params, stream, out| {
                    let nvmm::SurfaceFrame::Device(device) = &frames[target.frame] else {
                        unreachable!("every frame is in device memory");
                    };
                    // SAFETY: `out` is a slot of the session's device input on this GPU,
                    // `params.tensor_len()` long, alive until the model has run on `stream`.
                    unsafe {
                        gpu.run_device_into(
                            stream,
                            device,
                            target.region,
                            params,
                            out,
                            params.tensor_len(),
                        )
                    }
                    .map_err(|e| EngineError::GpuPreprocess(e.to_string()))
                })
                .map_err(|err| self.inference_failed(err));
        }
        self.with_host_fill(
            #[cfg(feature = "cuda")]
            gpu_slot,
            surface,
            frames,
            |fill| engine.infer_prepared(targets, fill),
        )
    }

    /// Runs `body` with a fill that writes a target's network input on the host: from
    /// CPU-readable frames directly, from CUDA device frames through the GPU pre-processor.
    fn with_host_fill<R>(
        &self,
        #[cfg(feature = "cuda")] gpu_slot: &mut Option<
            nvtl_core::preprocess::cuda::GpuPreprocessor,
        >,
        surface: &nvmm::SurfaceInfo,
        frames: &[nvmm::SurfaceFrame],
        body: impl FnOnce(&mut FillInput<'_>) -> Result<R, EngineError>,
    ) -> Result<R, gst::FlowError> {
        let device_frame = frames
            .iter()
            .position(|frame| matches!(frame, nvmm::SurfaceFrame::Device(_)));
        #[cfg(not(feature = "cuda"))]
        if let Some(index) = device_frame {
            let err = nvmm::NvmmError::DeviceMemory {
                index,
                mem_type: surface.mem_type,
            };
            gst::element_imp_error!(self, gst::StreamError::Format, ("{}", err));
            return Err(gst::FlowError::Error);
        }
        #[cfg(feature = "cuda")]
        let mut gpu = match device_frame {
            Some(_) => Some(self.gpu_preprocessor(gpu_slot, surface)?),
            None => None,
        };
        body(&mut |target, params, out| match &frames[target.frame] {
            nvmm::SurfaceFrame::Host(view) => Ok(nvtl_core::preprocess::preprocess(
                view,
                target.region,
                params,
                out,
            )?),
            #[cfg(feature = "cuda")]
            nvmm::SurfaceFrame::Device(device) => gpu
                .as_mut()
                .ok_or_else(|| EngineError::GpuPreprocess("no GPU pre-processor".into()))?
                .run_device_to_host(device, target.region, params, out)
                .map_err(|e| EngineError::GpuPreprocess(e.to_string())),
            #[cfg(not(feature = "cuda"))]
            nvmm::SurfaceFrame::Device(_) => Err(EngineError::GpuPreprocess(
                "CUDA device memory needs the cuda feature".into(),
            )),
        })
        .map_err(|err| self.inference_failed(err))
    }

    /// The GPU pre-processor for the surface's GPU, made on first use.
    #[cfg(feature = "cuda")]
    fn gpu_preprocessor<'g>(
        &self,
        gpu_slot: &'g mut Option<nvtl_core::preprocess::cuda::GpuPreprocessor>,
        surface: &nvmm::SurfaceInfo,
    ) -> Result<&'g mut nvtl_core::preprocess::cuda::GpuPreprocessor, gst::FlowError> {
        let gpu_id = surface.gpu_id as usize;
        if gpu_slot.as_ref().is_none_or(|g| g.gpu_id() != gpu_id) {
            let made =
                nvtl_core::preprocess::cuda::GpuPreprocessor::new(gpu_id).map_err(|err| {
                    gst::element_imp_error!(
                        self,
                        gst::StreamError::Failed,
                        (
                            "{} frames need GPU pre-processing: {}",
                            surface.mem_type,
                            err
                        )
                    );
                    gst::FlowError::Error
                })?;
            *gpu_slot = Some(made);
        }
        gpu_slot.as_mut().ok_or(gst::FlowError::Error)
    }

    /// classifier-async-mode's worker, on a fork of `engine`.
    fn start_async_classifier(&self, engine: &Engine) -> Result<AsyncClassifier, gst::FlowError> {
        let fork = engine.fork().map_err(|err| self.inference_failed(err))?;
        let stats = Arc::clone(&self.stats);
        AsyncClassifier::start(fork, move |times| lock(&stats).times.add(&times)).map_err(|err| {
            gst::element_imp_error!(
                self,
                gst::CoreError::Thread,
                ("cannot start the classifier-async-mode thread: {}", err)
            );
            gst::FlowError::Error
        })
    }

    fn post_progress(&self, kind: gst::ProgressType, text: &str) {
        let msg = gst::message::Progress::builder(kind, "model-load", text)
            .src(&*self.obj())
            .build();
        let _ = self.obj().post_message(msg);
    }

    fn log_loaded(&self, engine: &Engine, warnings: &[String]) {
        for warning in warnings {
            gst::warning!(CAT, imp = self, "{warning}");
        }
        let plan = engine.plan();
        gst::info!(
            CAT,
            imp = self,
            "loaded {} on {}: input {} {:?}, outputs {}, parser {}",
            plan.spec().onnx_path.display(),
            plan.backend(),
            plan.input().name,
            plan.input().shape,
            plan.outputs()
                .iter()
                .map(|o| format!("{} {:?}", o.name, o.shape))
                .collect::<Vec<_>>()
                .join(", "),
            engine.parser().map(|p| p.name()).unwrap_or("none"),
        );
        *lock(&self.resolved) = Some(engine.config.clone());
        let mut stats = lock(&self.stats);
        stats.backend = plan.backend().to_string();
        stats.model = plan.spec().onnx_path.display().to_string();
    }

    /// Loads the model named by the current settings on a background thread and queues it for
    /// the streaming thread; on failure the running model stays and a warning is posted.
    fn request_swap(&self) {
        if lock(&self.state).is_none() {
            return;
        }
        let settings = lock(&self.settings).clone();
        let generation = self.swap_generation.fetch_add(1, Ordering::SeqCst) + 1;
        let element = self.obj().downgrade();
        self.post_progress(
            gst::ProgressType::Start,
            "loading the new model for a switch",
        );
        std::thread::Builder::new()
            .name("nvtlinfer-load".into())
            .spawn(move || {
                let result = load_engine(&settings);
                let Some(element) = element.upgrade() else {
                    return;
                };
                let imp = element.imp();
                match result {
                    Ok((engine, warnings)) => {
                        if imp.swap_generation.load(Ordering::SeqCst) != generation {
                            return;
                        }
                        imp.log_loaded(&engine, &warnings);
                        *lock(&imp.pending) = Some(engine);
                        imp.post_progress(
                            gst::ProgressType::Complete,
                            "new model ready; switching at the next frame",
                        );
                    }
                    Err(err) => {
                        imp.post_progress(gst::ProgressType::Error, "model switch failed");
                        gst::element_warning!(
                            element,
                            gst::LibraryError::Settings,
                            ("model switch failed, keeping the running model: {}", err)
                        );
                    }
                }
            })
            .expect("spawning a thread");
    }

    fn settings_getter<T>(
        &self,
        user: impl Fn(&Settings) -> Option<T>,
        resolved: impl Fn(&InferConfig) -> T,
    ) -> T {
        if let Some(value) = user(&lock(&self.settings)) {
            return value;
        }
        match lock(&self.resolved).as_ref() {
            Some(config) => resolved(config),
            None => resolved(&InferConfig::default()),
        }
    }

    fn stats_structure(&self) -> gst::Structure {
        let stats = lock(&self.stats);
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        gst::Structure::builder("nvtl/stats")
            .field("frames", stats.frames)
            .field("inferences", stats.times.inferences)
            .field("preprocess-ms", ms(stats.times.preprocess))
            .field("inference-ms", ms(stats.times.inference))
            .field("postprocess-ms", ms(stats.times.postprocess))
            .field("metadata-ms", ms(stats.metadata))
            .field("backend", &stats.backend)
            .field("model", &stats.model)
            .build()
    }
}

fn pixel_format(format: VideoFormat) -> Option<PixelFormat> {
    Some(match format {
        VideoFormat::Rgb => PixelFormat::Rgb,
        VideoFormat::Rgbx | VideoFormat::Rgba => PixelFormat::Rgbx,
        VideoFormat::Bgr => PixelFormat::Bgr,
        VideoFormat::Bgrx | VideoFormat::Bgra => PixelFormat::Bgrx,
        VideoFormat::Nv12 => PixelFormat::Nv12,
        VideoFormat::I420 => PixelFormat::I420,
        VideoFormat::Gray8 => PixelFormat::Gray8,
        _ => return None,
    })
}

fn frame_view<'a>(
    frame: &'a gst_video::VideoFrameRef<&'a gst::BufferRef>,
) -> Option<FrameView<'a>> {
    let format = pixel_format(frame.format())?;
    let planes = (0..frame.n_planes())
        .map(|p| frame.plane_data(p).ok())
        .collect::<Option<Vec<_>>>()?;
    let strides = frame.plane_stride()[..frame.n_planes() as usize]
        .iter()
        .map(|&s| s as usize)
        .collect();
    Some(FrameView {
        format,
        width: frame.width() as usize,
        height: frame.height() as usize,
        planes,
        strides,
    })
}

/// One inference target's result: (batch index of a batched NVMM buffer, parent object id or -1
/// for the whole frame, frame size, result).
pub(super) type TargetResult = (Option<u32>, i32, (u32, u32), InferResult);

#[glib::object_subclass]
impl ObjectSubclass for NvtlInfer {
    const NAME: &'static str = "GstNvtlInfer";
    type Type = super::NvtlInfer;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for NvtlInfer {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let defaults = InferConfig::default();
            vec![
                glib::ParamSpecString::builder("config-file-path")
                    .nick("Config File Path")
                    .blurb("Path to the nvinfer configuration file (.txt key-file or .yml). Setting it while PLAYING loads the new model in the background and switches between frames")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("unique-id")
                    .nick("Unique ID")
                    .blurb("Unique ID of this element, written into the metadata it attaches (overrides the config's unique-id)")
                    .default_value(defaults.unique_id)
                    .build(),
                glib::ParamSpecEnum::builder_with_default("process-mode", ProcessModeProperty::Primary)
                    .nick("Process Mode")
                    .blurb("Infer on whole frames (primary) or on objects found upstream (secondary)")
                    .build(),
                glib::ParamSpecInt::builder("infer-on-gie-id")
                    .nick("Infer on GIE ID")
                    .blurb("Secondary mode: infer only on objects attached by the element with this unique-id (-1: any)")
                    .minimum(-1)
                    .default_value(-1)
                    .build(),
                glib::ParamSpecString::builder("infer-on-class-ids")
                    .nick("Infer on Class IDs")
                    .blurb("Secondary mode: infer only on objects of these class ids, e.g. 0:2:3 (empty: all)")
                    .build(),
                glib::ParamSpecUInt::builder("batch-size")
                    .nick("Batch Size")
                    .blurb("Objects per inference call in secondary mode (models with a dynamic batch dimension)")
                    .minimum(1)
                    .maximum(1024)
                    .default_value(defaults.batch_size)
                    .build(),
                glib::ParamSpecUInt::builder("interval")
                    .nick("Interval")
                    .blurb("Primary mode: number of frames to skip between inferences")
                    .default_value(0)
                    .build(),
                glib::ParamSpecString::builder("model-engine-file")
                    .nick("Model Engine File")
                    .blurb("TensorRT engine (tensorrt backend) or an .onnx file to run; setting it while PLAYING switches models between frames")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("gpu-id")
                    .nick("GPU ID")
                    .blurb("GPU to use with the cuda/tensorrt backends")
                    .default_value(0)
                    .build(),
                glib::ParamSpecBoolean::builder("output-tensor-meta")
                    .nick("Output Tensor Meta")
                    .blurb("Attach the raw output tensors as NvtlTensorMeta")
                    .default_value(false)
                    .build(),
                glib::ParamSpecString::builder("filter-out-class-ids")
                    .nick("Filter Out Class IDs")
                    .blurb("Drop detections of these class ids, e.g. 0;2;3")
                    .build(),
                glib::ParamSpecEnum::builder_with_default("backend", BackendProperty::Auto)
                    .nick("Backend")
                    .blurb(&format!(
                        "Inference backend. This build has: {}. auto tries tensorrt, cuda, cpu and logs a warning at each fallback",
                        nvtl_core::backend::built_backends_text()
                    ))
                    .build(),
                glib::ParamSpecUInt::builder("cpu-threads")
                    .nick("CPU Threads")
                    .blurb("Threads per inference on the cpu backend (0: one per core)")
                    .default_value(0)
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb("Frames, inferences and total milliseconds per stage (preprocess, inference, postprocess, metadata)")
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut swap = false;
        {
            let mut settings = lock(&self.settings);
            match pspec.name() {
                "config-file-path" => {
                    settings.config_file_path = value
                        .get::<Option<String>>()
                        .expect("type checked")
                        .map(PathBuf::from);
                    swap = true;
                }
                "unique-id" => settings.unique_id = Some(value.get().expect("type checked")),
                "process-mode" => {
                    settings.process_mode = Some(
                        match value.get::<ProcessModeProperty>().expect("type checked") {
                            ProcessModeProperty::Primary => ProcessMode::Primary,
                            ProcessModeProperty::Secondary => ProcessMode::Secondary,
                        },
                    )
                }
                "infer-on-gie-id" => {
                    settings.infer_on_gie_id = Some(value.get().expect("type checked"))
                }
                "infer-on-class-ids" | "filter-out-class-ids" => {
                    let text = value
                        .get::<Option<String>>()
                        .expect("type checked")
                        .unwrap_or_default();
                    match parse_class_ids(&text) {
                        Ok(ids) if pspec.name() == "infer-on-class-ids" => {
                            settings.infer_on_class_ids = Some(ids)
                        }
                        Ok(ids) => settings.filter_out_class_ids = Some(ids),
                        Err(reason) => {
                            gst::element_imp_warning!(
                                self,
                                gst::LibraryError::Settings,
                                ("ignoring {}='{}': {}", pspec.name(), text, reason)
                            );
                        }
                    }
                }
                "batch-size" => settings.batch_size = Some(value.get().expect("type checked")),
                "interval" => settings.interval = Some(value.get().expect("type checked")),
                "model-engine-file" => {
                    settings.model_engine_file = value
                        .get::<Option<String>>()
                        .expect("type checked")
                        .map(PathBuf::from);
                    swap = true;
                }
                "gpu-id" => settings.gpu_id = Some(value.get().expect("type checked")),
                "output-tensor-meta" => {
                    settings.output_tensor_meta = Some(value.get().expect("type checked"))
                }
                "backend" => {
                    settings.backend = match value.get::<BackendProperty>().expect("type checked") {
                        BackendProperty::Auto => BackendKind::Auto,
                        BackendProperty::Cpu => BackendKind::Cpu,
                        BackendProperty::Cuda => BackendKind::Cuda,
                        BackendProperty::TensorRt => BackendKind::TensorRt,
                        BackendProperty::OnnxRuntime => BackendKind::OnnxRuntime,
                    }
                }
                "cpu-threads" => settings.cpu_threads = value.get().expect("type checked"),
                other => unreachable!("unknown property {other}"),
            }
        }
        if swap {
            self.request_swap();
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "config-file-path" => lock(&self.settings)
                .config_file_path
                .as_ref()
                .map(|p| p.display().to_string())
                .to_value(),
            "unique-id" => self
                .settings_getter(|s| s.unique_id, |c| c.unique_id)
                .to_value(),
            "process-mode" => match self.settings_getter(|s| s.process_mode, |c| c.process_mode) {
                ProcessMode::Primary => ProcessModeProperty::Primary,
                ProcessMode::Secondary => ProcessModeProperty::Secondary,
            }
            .to_value(),
            "infer-on-gie-id" => self
                .settings_getter(|s| s.infer_on_gie_id, |c| c.operate_on_gie_id)
                .to_value(),
            "infer-on-class-ids" => format_class_ids(
                &self.settings_getter(
                    |s| s.infer_on_class_ids.clone(),
                    |c| c.operate_on_class_ids.clone(),
                ),
                ":",
            )
            .to_value(),
            "filter-out-class-ids" => format_class_ids(
                &self.settings_getter(
                    |s| s.filter_out_class_ids.clone(),
                    |c| c.filter_out_class_ids.clone(),
                ),
                ";",
            )
            .to_value(),
            "batch-size" => self
                .settings_getter(|s| s.batch_size, |c| c.batch_size)
                .to_value(),
            "interval" => self
                .settings_getter(|s| s.interval, |c| c.interval)
                .to_value(),
            "model-engine-file" => self
                .settings_getter(
                    |s| s.model_engine_file.clone().map(Some),
                    |c| c.model_engine_file.clone(),
                )
                .map(|p| p.display().to_string())
                .to_value(),
            "gpu-id" => self.settings_getter(|s| s.gpu_id, |c| c.gpu_id).to_value(),
            "output-tensor-meta" => self
                .settings_getter(|s| s.output_tensor_meta, |c| c.output_tensor_meta)
                .to_value(),
            "backend" => match lock(&self.settings).backend {
                BackendKind::Auto => BackendProperty::Auto,
                BackendKind::Cpu => BackendProperty::Cpu,
                BackendKind::Cuda => BackendProperty::Cuda,
                BackendKind::TensorRt => BackendProperty::TensorRt,
                BackendKind::OnnxRuntime => BackendProperty::OnnxRuntime,
            }
            .to_value(),
            "cpu-threads" => lock(&self.settings).cpu_threads.to_value(),
            "stats" => self.stats_structure().to_value(),
            other => unreachable!("unknown property {other}"),
        }
    }
}

impl GstObjectImpl for NvtlInfer {}

impl ElementImpl for NvtlInfer {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "nvtl inference",
                "Filter/Video/Analyzer",
                "Runs DeepStream nvinfer configs (detectors, classifiers, segmentation) on video and attaches \
                 GstVideoRegionOfInterestMeta with nvtl/detection and nvtl/classification params. Example: \
                 gst-launch-1.0 filesrc location=vtest.avi ! decodebin ! videoconvert ! \
                 nvtlinfer config-file-path=configs/centernet_mobilenetv3_coco.txt ! nvtlosd ! videoconvert ! autovideosink",
                "nvtl developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let mut caps = gst_video::VideoCapsBuilder::new()
                .format_list(FORMATS)
                .build();
            caps.merge(
                gst_video::VideoCapsBuilder::new()
                    .features([NVMM_FEATURE])
                    .format_list(NVMM_FORMATS)
                    .build(),
            );
            crate::in_place_pad_templates(&caps)
        });
        TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for NvtlInfer {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = lock(&self.settings).clone();
        let what = settings
            .config_file_path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "(no config-file-path)".into());
        self.post_progress(
            gst::ProgressType::Start,
            &format!("loading the model of {what}"),
        );
        *lock(&self.stats) = Stats::default();
        match load_engine(&settings) {
            Ok((engine, warnings)) => {
                self.log_loaded(&engine, &warnings);
                *lock(&self.state) = Some(State {
                    engine,
                    info: None,
                    nvmm: false,
                    frames: 0,
                    history: ObjectHistory::default(),
                    async_classifier: None,
                    async_warned: false,
                    #[cfg(feature = "cuda")]
                    gpu: None,
                });
                self.post_progress(
                    gst::ProgressType::Complete,
                    &format!("model of {what} loaded"),
                );
                Ok(())
            }
            Err(err) => {
                self.post_progress(
                    gst::ProgressType::Error,
                    &format!("loading the model of {what} failed"),
                );
                Err(err.to_error_message())
            }
        }
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        self.swap_generation.fetch_add(1, Ordering::SeqCst);
        *lock(&self.state) = None;
        *lock(&self.pending) = None;
        Ok(())
    }

    fn set_caps(&self, incaps: &gst::Caps, _outcaps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let info = gst_video::VideoInfo::from_caps(incaps)
            .map_err(|_| gst::loggable_error!(CAT, "cannot read video caps {incaps}"))?;
        let mut state = lock(&self.state);
        let state = state
            .as_mut()
            .ok_or_else(|| gst::loggable_error!(CAT, "caps before start"))?;
        gst::debug!(
            CAT,
            imp = self,
            "input {}x{} {:?}",
            info.width(),
            info.height(),
            info.format()
        );
        state.nvmm = incaps
            .features(0)
            .is_some_and(|features| features.contains(NVMM_FEATURE));
        state.info = Some(info);
        Ok(())
    }

    fn transform_ip(
        &self,
        buffer: &mut gst::BufferRef,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mut guard = lock(&self.state);
        let state = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        if let Some(engine) = lock(&self.pending).take() {
            gst::info!(
                CAT,
                imp = self,
                "switched to {}",
                engine.plan().spec().onnx_path.display()
            );
            state.engine = engine;
            // Another model's results are not this one's.
            state.history = ObjectHistory::default();
            state.async_classifier = None;
        }
        let info = state.info.clone().ok_or(gst::FlowError::NotNegotiated)?;
        let frame_number = state.frames;
        state.frames += 1;
        let engine = &mut state.engine;
        let config = &engine.config;
        let unique_id = config.unique_id;
        let times_before = engine.times;

        let skip_frame = config.process_mode == ProcessMode::Primary
            && config.interval > 0
            && frame_number % (config.interval as u64 + 1) != 0;
        if skip_frame {
            lock(&self.stats).frames += 1;
            return Ok(gst::FlowSuccess::Ok);
        }
        let upstream = match config.process_mode {
            ProcessMode::Primary => Vec::new(),
            ProcessMode::Secondary => meta::read_objects(buffer),
        };

        // One entry per inference target: (batch index, parent object id, frame size, result).
        let mut results: Vec<TargetResult> = Vec::new();
        let mut reused: Vec<TargetResult> = Vec::new();
        let mut ds_batch = if state.nvmm {
            DsBatch::of(buffer)
                .map_err(|reason| gst::debug!(CAT, imp = self, "no DeepStream metadata: {reason}"))
                .ok()
                .flatten()
        } else {
            None
        };
        if engine.config.async_mode
            && engine.config.process_mode == ProcessMode::Secondary
            && engine.config.network_type == NetworkType::Classifier
            && ds_batch.is_none()
            && !state.async_warned
        {
            state.async_warned = true;
            gst::warning!(
                CAT,
                imp = self,
                "classifier-async-mode needs DeepStream objects a tracker follows; these buffers \
                 carry no NvDsBatchMeta, so objects are classified synchronously"
            );
        }
        if state.nvmm {
            let map = buffer.map_readable().map_err(|_| {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Failed,
                    ("cannot map the NVMM buffer for reading")
                );
                gst::FlowError::Error
            })?;
            // SAFETY: the memory of a `memory:NVMM` buffer is the NvBufSurface libnvbufsurface
            // made; the mapping is dropped before `map`.
            let _cpu_mapping = unsafe {
                nvmm::cpu_map::map_for_cpu(map.as_slice(), nvmm::cpu_map::NvBufSurfaceApi::load)
            }
            .map_err(|err| {
                gst::element_imp_error!(self, gst::StreamError::Format, ("{}", err));
                gst::FlowError::Error
            })?;
            // SAFETY: the memory of a `memory:NVMM` buffer is an NvBufSurface whose planes stay
            // valid while the buffer is mapped (surface arrays: while `_cpu_mapping` lives);
            // `frames` does not outlive either.
            let (surface, frames) =
                unsafe { nvmm::read_surface(map.as_slice()) }.map_err(|err| {
                    gst::element_imp_error!(self, gst::StreamError::Format, ("{}", err));
                    gst::FlowError::Error
                })?;
            gst::trace!(CAT, imp = self, "{:?}", surface);
            let batched = surface.batch_size > 1;
            // Tracked DeepStream objects a secondary classifier already classified keep their
            // result for a while (nvinfer's object history); a secondary detector with a
            // secondary-reinfer-interval looks into a tracked object again only once that many
            // frames have passed.
            let reinfer_interval = engine.config.secondary_reinfer_interval;
            let secondary =
                ds_batch.is_some() && engine.config.process_mode == ProcessMode::Secondary;
            let history = secondary && engine.config.network_type == NetworkType::Classifier;
            let detection_history = secondary
                && engine.config.network_type == NetworkType::Detector
                && reinfer_interval != DEFAULT_SECONDARY_REINFER_INTERVAL;
            // classifier-async-mode: tracked objects are classified on the worker (their results
            // come with later frames), untracked ones not at all, as in nvinfer.
            let asynchronous = history && engine.config.async_mode;
            if let Some(classifier) = state.async_classifier.as_ref().filter(|_| asynchronous) {
                for outcome in classifier.finished() {
                    for (object, output) in outcome.map_err(|err| self.inference_failed(err))? {
                        state.history.finish(&object, output);
                    }
                }
            }
            let mut deferred = Vec::new();
            let mut untracked = 0;
            // The targets of every frame, inferred together: frames share batches, as in nvinfer.
            let mut targets = Vec::new();
            let mut owners = Vec::new();
            for (index, frame) in frames.iter().enumerate() {
                let batch_index = batched.then_some(index as u32);
                let (width, height) = frame.size();
                let size = (width as u32, height as u32);
                let mut frame_upstream = upstream.clone();
                if let (Some(ds_batch), ProcessMode::Secondary) =
                    (ds_batch.as_mut(), engine.config.process_mode)
                {
                    ds_batch.add_objects(index as u32, batch_index, &mut frame_upstream);
                }
                for (parent, region) in
                    inference_targets(&engine.config, size, batch_index, &frame_upstream)
                {
                    if let Some(tracked) = ds_batch
                        .as_ref()
                        .filter(|_| detection_history)
                        .and_then(|ds| ds.tracked(parent))
                    {
                        if !state.history.detection_due(tracked, reinfer_interval) {
                            continue;
                        }
                    }
                    let tracked = ds_batch
                        .as_ref()
                        .filter(|_| history)
                        .and_then(|ds| ds.tracked(parent));
                    if let Some(tracked) = tracked {
                        let attach_meanwhile = match state.history.decide(tracked, reinfer_interval)
                        {
                            Decision::Reuse(output) => Some(output),
                            Decision::Infer if asynchronous => {
                                deferred.push((
                                    *tracked,
                                    Target {
                                        frame: index,
                                        region,
                                        size: (width, height),
                                    },
                                ));
                                Some(state.history.begin(tracked))
                            }
                            Decision::Infer => None,
                        };
                        if let Some(output) = attach_meanwhile {
                            reused.push((
                                batch_index,
                                parent,
                                size,
                                InferResult::Classification(output),
                            ));
                            continue;
                        }
                    } else if asynchronous {
                        untracked += 1;
                        continue;
                    }
                    targets.push(Target {
                        frame: index,
                        region,
                        size: (width, height),
                    });
                    owners.push((batch_index, parent, size));
                }
            }
            if untracked > 0 && !state.async_warned {
                state.async_warned = true;
                gst::warning!(
                    CAT,
                    imp = self,
                    "classifier-async-mode classifies only objects a tracker follows \
                     (NvDsObjectMeta.object_id set, as nvtracker does): {untracked} untracked \
                     objects on this buffer, and any later ones, are not classified"
                );
            }
            if !deferred.is_empty() {
                if state.async_classifier.is_none() {
                    state.async_classifier = Some(self.start_async_classifier(engine)?);
                }
                if let Some(classifier) = &state.async_classifier {
                    self.with_host_fill(
                        #[cfg(feature = "cuda")]
                        &mut state.gpu,
                        &surface,
                        &frames,
                        |fill| classifier.submit(deferred, engine.params(), fill),
                    )?;
                }
            }
            if !targets.is_empty() {
                let out = self.infer_surface(
                    engine,
                    #[cfg(feature = "cuda")]
                    &mut state.gpu,
                    &surface,
                    &frames,
                    &targets,
                )?;
                results.extend(owners.into_iter().zip(out).map(
                    |((batch_index, parent, size), result)| (batch_index, parent, size, result),
                ));
            }
            if let Some(ds) = ds_batch.as_ref().filter(|_| history || detection_history) {
                for (_, parent, _, result) in &results {
                    match (ds.tracked(*parent), result) {
                        (Some(tracked), InferResult::Classification(output)) => {
                            state.history.record(tracked, output)
                        }
                        (Some(tracked), InferResult::Objects(_)) => {
                            state.history.record(tracked, &ClassifierOutput::default())
                        }
                        _ => {}
                    }
                }
                for index in 0..frames.len() {
                    if let Some((source_id, frame_num)) = ds.frame_source(index as u32) {
                        state.history.forget_stale(source_id, frame_num);
                    }
                }
            }
        } else {
            let size = (info.width(), info.height());
            let targets = inference_targets(&engine.config, size, None, &upstream);
            if !targets.is_empty() {
                let regions: Vec<Rect> = targets.iter().map(|(_, r)| *r).collect();
                let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info)
                    .map_err(|_| {
                        gst::element_imp_error!(
                            self,
                            gst::StreamError::Failed,
                            ("cannot map the video buffer for reading")
                        );
                        gst::FlowError::Error
                    })?;
                let view = frame_view(&frame).ok_or(gst::FlowError::NotNegotiated)?;
                let out = engine
                    .infer_regions(&view, &regions)
                    .map_err(|err| self.inference_failed(err))?;
                results.extend(
                    targets
                        .iter()
                        .zip(out)
                        .map(|((parent, _), result)| (None, *parent, size, result)),
                );
            }
        }
        // One per inferred result with output-tensor-meta, else none; results reused from the
        // object history come after the inferred ones, so they pair with no raw outputs.
        let raw_outputs = std::mem::take(&mut engine.target_outputs);
        results.append(&mut reused);
        if results.is_empty() {
            lock(&self.stats).frames += 1;
            return Ok(gst::FlowSuccess::Ok);
        }

        let attach_started = Instant::now();
        let mut next_id = meta::next_object_id(buffer);
        for (batch_index, parent, (width, height), result) in &results {
            match result {
                InferResult::Objects(objects) => {
                    for object in objects {
                        meta::attach_object(
                            buffer,
                            object,
                            unique_id,
                            next_id,
                            *parent,
                            engine.config.class_attrs.get(object.class_id),
                            *batch_index,
                        );
                        next_id += 1;
                    }
                }
                InferResult::Classification(output) if output.attributes.is_empty() => {}
                InferResult::Classification(output) if *parent < 0 => {
                    meta::attach_frame_classification(
                        buffer,
                        *width,
                        *height,
                        unique_id,
                        output,
                        *batch_index,
                    );
                    next_id += 1;
                }
                InferResult::Classification(output) => {
                    meta::attach_classification(buffer, *parent, unique_id, output);
                }
                InferResult::Segmentation(map) => meta::attach_segmentation(buffer, unique_id, map),
                InferResult::Raw => {}
            }
        }
        for ((batch_index, parent, _, _), tensors) in results.iter().zip(&raw_outputs) {
            meta::attach_tensors(buffer, unique_id, *parent, *batch_index, tensors);
        }
        if let Some(ds_batch) = &ds_batch {
            let added = ds_batch.attach(&results, raw_outputs, unique_id, engine);
            gst::log!(CAT, imp = self, "{added} NvDsObjectMeta added");
        }
        let metadata_time = attach_started.elapsed();

        let mut stats = lock(&self.stats);
        stats.frames += 1;
        stats.metadata += metadata_time;
        stats.times.add(&engine.times.since(&times_before));
        Ok(gst::FlowSuccess::Ok)
    }
}
