//! Fine-tuning (`trainer finetune`): a zoo model or bundle, the spec's dataset and head, burn's
//! autodiff over the ONNX graph, checkpoints that survive kill -9, validation through the
//! element's engine after every epoch, plots, and the best epoch exported as a bundle.

pub mod add_class;
pub mod checkpoint;
pub mod schedule;
pub mod validate;

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamConfig, AdamWConfig, SgdConfig};
use burn::prelude::*;
use burn::tensor::TensorData;
use nvtl_core::config::InferConfig;
use nvtl_core::model::read_onnx;
use nvtl_core::preprocess::PreprocessParams;
use nvtl_core::zoo::{self, Manifest};
use prost::Message;
use tract_onnx::pb::ModelProto;

use crate::data::{self, Batcher, Dataset};
use crate::devices::{self, DeviceList};
use crate::eval::plot;
use crate::export::{write_bundle, BundleContents};
use crate::graph::{GraphModule, Mode};
use crate::heads;
use crate::onnx_edit;
use crate::spec::{Optimizer, Spec, Task};
use crate::surgery::{self, ClassSource, NewChannelInit};
use checkpoint::{EpochRecord, LoopState};
use schedule::{LrSchedule, Schedule};

pub use validate::Validation;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error(transparent)]
    Zoo(#[from] nvtl_core::zoo::ZooError),
    #[error(transparent)]
    Model(#[from] nvtl_core::model::ModelError),
    #[error(transparent)]
    Config(#[from] nvtl_core::config::ConfigError),
    #[error(transparent)]
    Graph(#[from] crate::graph::GraphError),
    #[error(transparent)]
    Edit(#[from] crate::onnx_edit::EditError),
    #[error(transparent)]
    Surgery(#[from] crate::surgery::SurgeryError),
    #[error(transparent)]
    Head(#[from] crate::heads::HeadError),
    #[error(transparent)]
    Checkpoint(#[from] checkpoint::CheckpointError),
    #[error(transparent)]
    Export(#[from] crate::export::ExportError),
    #[error(transparent)]
    Run(#[from] crate::runner::RunError),
    #[error(transparent)]
    Eval(#[from] crate::eval::EvalError),
    #[error(transparent)]
    Devices(#[from] crate::devices::DeviceError),
    #[error("the optimizer state in {path} does not load: {reason}")]
    Optimizer { path: PathBuf, reason: String },
    #[error("cannot resume from {path}: {reason}")]
    Resume { path: PathBuf, reason: String },
    #[error("{0}")]
    Invalid(String),
}

/// How `finetune` runs besides the spec.
#[derive(Clone, Debug, Default)]
pub struct FinetuneOptions {
    /// Continue from `<out>/checkpoint` (error when there is none).
    pub resume: bool,
    /// Output folder instead of the spec's `export.dir`.
    pub out: Option<PathBuf>,
    /// Hide progress bars.
    pub quiet: bool,
    /// Stop after this many optimizer steps in total (tests, benchmarks); the run can be resumed.
    pub max_steps: Option<usize>,
    /// Keep the outputs close to a teacher's (learning without forgetting, or retraining a
    /// pruned model with the unpruned one as teacher).
    pub distill: Option<Distillation>,
    /// Start from this bundle instead of the spec's `[model]` (a pruned bundle, say).
    pub from: Option<PathBuf>,
}

/// Knowledge distillation from a teacher model run on every training batch. Classifiers: the
/// student's distribution over the teacher's classes is pulled towards the teacher's (KL
/// divergence at a temperature), so old classes survive training on new-class data only, or a
/// pruned model relearns its unpruned self. Detectors: the student's class map (first output,
/// per-pixel probabilities) is pulled towards the teacher's (Bernoulli KL per element).
#[derive(Clone, Debug)]
pub struct Distillation {
    /// The teacher's ONNX graph (same input as the student's).
    pub teacher_onnx: PathBuf,
    /// Classifiers: the student's first `old_classes` outputs are the teacher's classes, in its
    /// order.
    pub old_classes: usize,
    pub weight: f32,
    pub temperature: f32,
}

/// KL(teacher || student) at temperature `t`, times t^2 (Hinton et al.), where the teacher's
/// distribution gives the new classes nothing. Both inputs are probabilities `[N, C]`; the
/// student's first `teacher.dims()[1]` columns are the old classes. The student is softened over
/// all its classes, so mass it moves to a new class counts against it: matching the teacher only
/// in the old classes' proportions (renormalised among themselves) would let the one class the
/// new data shows take over every image.
pub fn distillation_loss(student: Tensor<2>, teacher: Tensor<2>, t: f32) -> Tensor<1> {
    let [n, old] = teacher.dims();
    let soften = |p: Tensor<2>| {
        let p = p.clamp_min(1e-7).powf_scalar(1.0 / t);
        let sum = p.clone().sum_dim(1);
        p / sum
    };
    let student_old = soften(student).slice([0..n, 0..old]);
    let teacher = soften(teacher);
    let kl = (teacher.clone() * (teacher.log() - student_old.log())).sum_dim(1);
    kl.mean().mul_scalar(t * t)
}

/// Mean Bernoulli KL(teacher || student) over every element of two probability maps of the
/// same shape (sigmoid heat maps or coverage): zero when the student matches the teacher.
pub fn map_distillation_loss(student: Tensor<4>, teacher: Tensor<4>) -> Tensor<1> {
    let eps = 1e-6;
    let s = student.clamp(eps, 1.0 - eps);
    let t = teacher.clamp(eps, 1.0 - eps);
    let one_minus = |x: Tensor<4>| x.neg().add_scalar(1.0);
    let kl = t.clone() * (t.clone().log() - s.clone().log())
        + one_minus(t.clone()) * (one_minus(t).log() - one_minus(s).log());
    kl.mean()
}

/// What a finished (or stopped) run produced.
#[derive(Clone, Debug)]
pub struct FinetuneReport {
    pub out_dir: PathBuf,
    /// The exported bundle of the best (or last) epoch; `None` when stopped early by max_steps.
    pub bundle: Option<PathBuf>,
    pub history: Vec<EpochRecord>,
    pub metric_name: String,
    pub best_metric: Option<f64>,
    /// Training images per second over the run's optimizer steps.
    pub images_per_second: f64,
}

/// The bundle folder a spec's `[model]` names (a zoo model is pulled first).
pub fn resolve_model(spec: &Spec) -> Result<PathBuf, TrainError> {
    match (&spec.model.zoo, &spec.model.bundle) {
        (Some(name), _) => resolve_bundle(name),
        (None, Some(path)) => Ok(path.clone()),
        (None, None) => Err(TrainError::Invalid("[model] needs zoo or bundle".into())),
    }
}

/// The bundle folder of zoo model `name`, pulled (and converted) first if needed.
pub fn resolve_bundle(name: &str) -> Result<PathBuf, TrainError> {
    let manifest = Manifest::builtin()?;
    let model = manifest.get(name)?;
    let bundle = zoo::pull_with(model, &|_| {}, Some(&crate::import::zoo_converter))?;
    Ok(bundle.dir)
}

/// The starting model, made ready for the spec: input size, class channels.
pub struct StartModel {
    pub bundle: PathBuf,
    pub config: InferConfig,
    pub labels: Vec<String>,
    pub proto: ModelProto,
    pub input_hw: (usize, usize),
}

pub fn read_labels(path: &Path) -> Result<Vec<String>, TrainError> {
    let labels = nvtl_core::model::Labels::from_file(path)
        .map_err(|e| TrainError::Invalid(e.to_string()))?;
    let text = std::fs::read_to_string(path).unwrap_or_default();
    // A classifier's labels are one ';'-separated line; a detector's one per line.
    let names: Vec<String> = if labels.len() == 1 {
        text.trim_end()
            .split(';')
            .map(|s| s.trim().to_string())
            .collect()
    } else {
        text.lines().map(|l| l.trim().to_string()).collect()
    };
    Ok(names)
}

/// Output names of the graph the task's head reads, in the decoder's order.
fn head_outputs(config: &InferConfig, proto: &ModelProto) -> Vec<String> {
    if !config.output_blob_names.is_empty() {
        return config.output_blob_names.clone();
    }
    proto
        .graph
        .as_ref()
        .map(|g| g.output.iter().map(|o| o.name.clone()).collect())
        .unwrap_or_default()
}

/// Loads the spec's model and edits it for the spec: a new input size, the class channels of
/// `classes` (old classes keep their weights, new ones start fresh).
pub fn start_model(spec: &Spec, classes: &[String]) -> Result<StartModel, TrainError> {
    let bundle = resolve_model(spec)?;
    let config_path = crate::runner::bundle_config_path(&bundle);
    let config = InferConfig::from_file(&config_path)?.config;
    let onnx_path = config
        .onnx_file
        .clone()
        .ok_or_else(|| TrainError::Invalid(format!("{}: no onnx-file", config_path.display())))?;
    let labels_path = config.labelfile_path.clone().ok_or_else(|| {
        TrainError::Invalid(format!("{}: no labelfile-path", config_path.display()))
    })?;
    let labels = read_labels(&labels_path)?;
    let mut proto = read_onnx(&onnx_path)?.proto;
    let graph = GraphModule::from_proto(&proto, &Device::flex())?;
    let declared: Vec<usize> = graph
        .input_dims()
        .iter()
        .map(|d| match d {
            nvtl_core::model::Dim::Fixed(n) => *n,
            nvtl_core::model::Dim::Dynamic(_) => 0,
        })
        .collect();
    let nchw = config.network_input_order == nvtl_core::config::TensorOrder::Nchw;
    let model_hw = if nchw {
        (declared[2], declared[3])
    } else {
        (declared[1], declared[2])
    };
    let input_hw = match spec.model.input {
        Some([h, w]) => (h as usize, w as usize),
        None => model_hw,
    };
    if input_hw != model_hw {
        onnx_edit::resizes_to_scales(&mut proto)?;
        onnx_edit::set_input_size(&mut proto, input_hw.0, input_hw.1)?;
    }
    let sources = surgery::class_sources(&labels, classes);
    let unchanged = sources.len() == labels.len()
        && sources
            .iter()
            .enumerate()
            .all(|(i, s)| *s == ClassSource::Old(i));
    if !unchanged {
        let outputs = head_outputs(&config, &proto);
        let seed = spec.train.seed;
        match spec.model.task {
            Task::Classifier => {
                surgery::set_classes(
                    &mut proto,
                    &outputs[0],
                    labels.len(),
                    1,
                    &sources,
                    NewChannelInit { bias: 0.0, seed },
                )?;
            }
            Task::CenterNet => {
                // New heat-map channels start at CenterNet's prior probability 0.1.
                surgery::set_classes(
                    &mut proto,
                    &outputs[0],
                    labels.len(),
                    1,
                    &sources,
                    NewChannelInit { bias: -2.19, seed },
                )?;
            }
            Task::DetectNetV2 => {
                surgery::set_classes(
                    &mut proto,
                    &outputs[0],
                    labels.len(),
                    1,
                    &sources,
                    NewChannelInit { bias: -2.19, seed },
                )?;
                surgery::set_classes(
                    &mut proto,
                    &outputs[1],
                    labels.len(),
                    4,
                    &sources,
                    NewChannelInit { bias: 0.0, seed },
                )?;
            }
        }
        let kept = sources
            .iter()
            .filter(|s| matches!(s, ClassSource::Old(_)))
            .count();
        tracing::info!(
            "class channels: {} classes, {kept} keep the pretrained weights, {} start fresh",
            classes.len(),
            classes.len() - kept
        );
    }
    onnx_edit::refresh_output_dims(&mut proto)?;
    Ok(StartModel {
        bundle,
        config,
        labels,
        proto,
        input_hw,
    })
}

fn optimizer(spec: &Spec) -> burn::optim::ModuleOptimizer {
    let t = &spec.train;
    let decay = (t.weight_decay > 0.0)
        .then(|| burn::optim::decay::WeightDecayConfig::new(t.weight_decay as f32));
    match t.optimizer {
        Optimizer::Adam => AdamConfig::new().with_weight_decay(decay).init(),
        Optimizer::AdamW => AdamWConfig::new()
            .with_weight_decay(t.weight_decay as f32)
            .init(),
        Optimizer::Sgd => SgdConfig::new()
            .with_weight_decay(decay)
            .with_momentum(Some(
                burn::optim::momentum::MomentumConfig::new().with_momentum(t.momentum),
            ))
            .init(),
    }
}

fn lr_schedule(spec: &Spec, steps_per_epoch: usize) -> LrSchedule {
    let t = &spec.train;
    LrSchedule {
        base: t.lr,
        schedule: match t.schedule {
            crate::spec::Schedule::Constant => Schedule::Constant,
            crate::spec::Schedule::Cosine => Schedule::Cosine,
            crate::spec::Schedule::Step => Schedule::Step {
                every_epochs: t.step_epochs as usize,
                gamma: t.gamma,
            },
        },
        warmup_steps: t.warmup_epochs as usize * steps_per_epoch,
        steps_per_epoch,
        total_steps: t.epochs as usize * steps_per_epoch,
    }
}

/// The loss of one batch for the spec's task.
fn batch_loss(
    task: Task,
    spec: &Spec,
    outputs: Vec<crate::graph::Value>,
    batch: &data::Batch,
    classes: usize,
    input_hw: (usize, usize),
    device: &Device,
) -> Result<Tensor<1>, TrainError> {
    let mut outputs = outputs.into_iter();
    let mut next = |what: &str| {
        outputs
            .next()
            .ok_or_else(|| TrainError::Invalid(format!("the model has no {what} output")))
    };
    Ok(match task {
        Task::Classifier => {
            let out = next("classifier")?.into_rank::<2>()?;
            let probabilities = heads::classifier::looks_like_probabilities(&out);
            let labels = batch
                .labels
                .iter()
                .map(|l| {
                    l.ok_or_else(|| TrainError::Invalid("a training image has no class".into()))
                })
                .collect::<Result<Vec<usize>, _>>()?;
            heads::classifier::loss(
                out,
                &labels,
                spec.head.label_smoothing as f32,
                probabilities,
            )?
        }
        Task::CenterNet => {
            let heat = next("heat-map")?.into_rank::<4>()?;
            let ltrb = next("ltrb")?.into_rank::<4>()?;
            let [_, _, gh, _] = heat.dims();
            let params = heads::centernet::CenterNetParams {
                stride: (input_hw.0 / gh.max(1)).max(1),
                heatmap_weight: spec.head.heatmap_weight as f32,
                box_weight: spec.head.box_weight as f32,
                focal_alpha: spec.head.focal_alpha as f32,
                focal_beta: spec.head.focal_beta as f32,
                min_radius: spec.head.min_radius as usize,
            };
            let targets = batch
                .objects
                .iter()
                .map(|o| heads::centernet::encode(&head_objects(o), classes, input_hw, &params))
                .collect::<Result<Vec<_>, _>>()?;
            let targets = heads::centernet::batch_targets(&targets, device)?;
            heads::centernet::loss(heat, ltrb, &targets, &params)?.total
        }
        Task::DetectNetV2 => {
            let coverage = next("coverage")?.into_rank::<4>()?;
            let bbox = next("bbox")?.into_rank::<4>()?;
            let [_, _, gh, _] = coverage.dims();
            let params = heads::detectnet_v2::DetectNetParams {
                stride: (input_hw.0 / gh.max(1)).max(1),
                coverage_weight: spec.head.coverage_weight as f32,
                bbox_weight: spec.head.bbox_weight as f32,
                ..Default::default()
            };
            let targets = batch
                .objects
                .iter()
                .map(|o| heads::detectnet_v2::encode(&head_objects(o), classes, input_hw, &params))
                .collect::<Result<Vec<_>, _>>()?;
            let targets = heads::detectnet_v2::batch_targets(&targets, device)?;
            heads::detectnet_v2::loss(coverage, bbox, &targets, &params)?.total
        }
    })
}

/// One shard's loss (the mean over its images) and batch statistics: the task's loss on the
/// replica's outputs, plus the distillation term when a teacher is given.
#[allow(clippy::too_many_arguments)]
fn shard_loss(
    model: &GraphModule,
    batch: &data::Batch,
    device: &Device,
    task: Task,
    spec: &Spec,
    classes: usize,
    input_hw: (usize, usize),
    distill: Option<(&Distillation, &GraphModule)>,
) -> Result<devices::ShardLoss, TrainError> {
    let input = Tensor::<4>::from_data(TensorData::new(batch.input.clone(), batch.shape), device);
    let forward = model.forward(input, Mode::Train)?;
    let student_out = forward.outputs.first().cloned();
    let mut loss = batch_loss(
        task,
        spec,
        forward.outputs,
        batch,
        classes,
        input_hw,
        device,
    )?;
    if let (Some((d, teacher)), Some(student_out)) = (distill, student_out) {
        let plain = Tensor::<4>::from_data(
            TensorData::new(batch.input.clone(), batch.shape),
            &teacher.device(),
        );
        let taught = teacher.forward(plain, Mode::Eval)?;
        let teacher_out = taught
            .outputs
            .into_iter()
            .next()
            .ok_or_else(|| TrainError::Invalid("the teacher has no output".into()))?;
        let kd = match task {
            Task::Classifier => {
                let teacher_probs = teacher_out.into_rank::<2>()?;
                let teacher_probs = Tensor::<2>::from_data(teacher_probs.into_data(), device);
                distillation_loss(student_out.into_rank::<2>()?, teacher_probs, d.temperature)
            }
            Task::CenterNet | Task::DetectNetV2 => {
                let teacher_map = teacher_out.into_rank::<4>()?;
                let teacher_map = Tensor::<4>::from_data(teacher_map.into_data(), device);
                map_distillation_loss(student_out.into_rank::<4>()?, teacher_map)
            }
        };
        loss = loss + kd.mul_scalar(d.weight);
    }
    Ok(devices::ShardLoss {
        loss,
        batch_norm: forward.batch_norm,
    })
}

fn head_objects(objects: &[data::Object]) -> Vec<heads::Object> {
    objects.iter().map(|o| (o.class, o.bbox)).collect()
}

fn progress_bar(quiet: bool, len: u64) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} batches {msg}",
        )
        .expect("valid template"),
    );
    bar
}

/// Runs `trainer finetune` for a spec file.
pub fn finetune(
    spec_path: &Path,
    overrides: &[String],
    options: &FinetuneOptions,
) -> Result<FinetuneReport, TrainError> {
    let mut spec = Spec::load(spec_path, overrides)?;
    if let Some(from) = &options.from {
        spec.model.zoo = None;
        spec.model.bundle = Some(from.clone());
    }
    run(&spec, options)
}

/// Fine-tunes as `spec` says.
pub fn run(spec: &Spec, options: &FinetuneOptions) -> Result<FinetuneReport, TrainError> {
    let (train_set, val_set) = data::load_from_spec(&spec.dataset, Path::new(""))?;
    train_on(spec, options, train_set, val_set)
}

/// Fine-tunes on datasets the caller prepared (add-class merges pseudo-labels first).
pub fn train_on(
    spec: &Spec,
    options: &FinetuneOptions,
    train_set: Dataset,
    val_set: Dataset,
) -> Result<FinetuneReport, TrainError> {
    // Before anything is written: a device this build or machine lacks is an error, not a
    // half-made output folder.
    let devices = DeviceList::parse(&spec.train.devices)?.training_devices()?;
    let out = options
        .out
        .clone()
        .unwrap_or_else(|| spec.export.dir.clone());
    std::fs::create_dir_all(&out)
        .map_err(|e| TrainError::Invalid(format!("creating {}: {e}", out.display())))?;
    crate::fsutil::write_atomic(&out.join("spec.resolved.toml"), spec.to_toml().as_bytes())
        .map_err(|e| TrainError::Invalid(e.to_string()))?;

    let classes = train_set.classes.clone();
    let task = spec.model.task;
    let start = start_model(spec, &classes)?;
    let input_hw = start.input_hw;
    let device = devices[0].clone();
    if devices.len() > 1 {
        tracing::info!(
            "data parallel over {} devices ({}): each batch of {} is split into one shard per device",
            devices.len(),
            spec.train.devices,
            spec.train.batch
        );
    }

    let resumed = if options.resume {
        let ckpt = checkpoint::load(&out)?.ok_or_else(|| TrainError::Resume {
            path: checkpoint::checkpoint_dir(&out),
            reason: "there is no checkpoint".into(),
        })?;
        if ckpt.state.classes != classes || ckpt.state.input_hw != input_hw {
            return Err(TrainError::Resume {
                path: checkpoint::checkpoint_dir(&out),
                reason: format!(
                    "it was made for classes {:?} at {:?}, the spec now has {:?} at {:?}",
                    ckpt.state.classes, ckpt.state.input_hw, classes, input_hw
                ),
            });
        }
        Some(ckpt)
    } else {
        None
    };

    let proto = match &resumed {
        Some(ckpt) => read_onnx(&ckpt.model)?.proto,
        None => start.proto.clone(),
    };
    let mut model = GraphModule::from_proto(&proto, &device)?;
    if resumed.is_some() {
        // Shapes must match what the spec makes from the start model.
        let fresh = GraphModule::from_proto(&start.proto, &Device::flex())?;
        for name in fresh.param_names() {
            let want = fresh.initializer(&name).map(|d| d.shape().to_vec());
            let got = model.initializer(&name).map(|d| d.shape().to_vec());
            if want != got {
                return Err(TrainError::Resume {
                    path: checkpoint::checkpoint_dir(&out),
                    reason: format!("parameter '{name}' has shape {got:?} in the checkpoint, {want:?} for this spec"),
                });
            }
        }
    }
    if !spec.model.freeze.is_empty() {
        let n = model.freeze_matching(&spec.model.freeze)?;
        tracing::info!("froze {n} parameters matching {:?}", spec.model.freeze);
    }
    if spec.model.freeze_depth > 0 {
        let n = model.freeze_depth(spec.model.freeze_depth as usize);
        tracing::info!(
            "froze {n} parameters of the first {} layers",
            spec.model.freeze_depth
        );
    }
    tracing::info!(
        "model: {} parameters, {} trainable; {} training images, {} validation images, classes {:?}",
        model.param_count(),
        model.trainable_param_count(),
        train_set.samples.len(),
        val_set.samples.len(),
        classes
    );

    let teacher = match &options.distill {
        Some(d) => Some(GraphModule::from_onnx(
            &d.teacher_onnx,
            &device.clone().inner(),
        )?),
        None => None,
    };
    let mut optim = optimizer(spec);
    if let Some(ckpt) = &resumed {
        optim = optim
            .from_bytes(burn::tensor::Bytes::from_bytes_vec(ckpt.optimizer.clone()))
            .map_err(|e| TrainError::Optimizer {
                path: checkpoint::checkpoint_dir(&out),
                reason: format!("{e:?}"),
            })?;
    }

    let params = PreprocessParams::from_config(&start.config, input_hw.1, input_hw.0);
    let batcher = Batcher::new(params, Some(spec.augment.clone()), spec.train.seed, 0);
    let batch_size = spec.train.batch.max(1) as usize;
    let steps_per_epoch = train_set.samples.len().div_ceil(batch_size);
    let schedule = lr_schedule(spec, steps_per_epoch);
    let metric_name = validate::metric_name(task).to_string();

    let mut state = match resumed {
        Some(ckpt) => ckpt.state,
        None => LoopState {
            epoch: 0,
            batches_done: 0,
            global_step: 0,
            epoch_loss_sum: 0.0,
            epoch_seconds: 0.0,
            history: Vec::new(),
            best_epoch: None,
            best_metric: None,
            classes: classes.clone(),
            input_hw,
            metric_name: metric_name.clone(),
        },
    };
    let contents_header = format!(
        "Fine-tuned by nvtl-trainer from {} ({} classes: {}).",
        start.bundle.display(),
        classes.len(),
        classes.join(", ")
    );
    let best_dir = out.join("bundle");
    let steps_this_run_start = state.global_step;
    let run_started = Instant::now();

    let save_checkpoint = |model: &GraphModule,
                           optim: &burn::optim::ModuleOptimizer,
                           state: &LoopState|
     -> Result<(), TrainError> {
        let proto = model.to_proto()?;
        let optimizer = optim.into_bytes().map_err(|e| TrainError::Optimizer {
            path: checkpoint::checkpoint_dir(&out),
            reason: format!("{e:?}"),
        })?;
        checkpoint::save(&out, &proto.encode_to_vec(), &optimizer, state)?;
        Ok(())
    };

    let epochs = spec.train.epochs as usize;
    while state.epoch < epochs {
        let epoch = state.epoch;
        let batches = batcher.epoch_batches(train_set.samples.len(), epoch, batch_size, true);
        let bar = progress_bar(options.quiet, steps_per_epoch as u64);
        bar.set_prefix(format!("epoch {}/{epochs}", epoch + 1));
        bar.set_position(state.batches_done as u64);
        let epoch_started =
            Instant::now() - std::time::Duration::from_secs_f64(state.epoch_seconds);
        for (b, indices) in batches.iter().enumerate().skip(state.batches_done) {
            if options
                .max_steps
                .is_some_and(|m| state.global_step - steps_this_run_start >= m)
            {
                bar.abandon();
                save_checkpoint(&model, &optim, &state)?;
                let images_per_second =
                    images_per_second(&state, steps_this_run_start, batch_size, run_started);
                return Ok(FinetuneReport {
                    out_dir: out,
                    bundle: None,
                    history: state.history,
                    metric_name,
                    best_metric: state.best_metric,
                    images_per_second,
                });
            }
            let batch = batcher.load(&train_set, indices, epoch)?;
            let shard_loss = |replica: &GraphModule, shard: &data::Batch, device: &Device| {
                shard_loss(
                    replica,
                    shard,
                    device,
                    task,
                    spec,
                    classes.len(),
                    input_hw,
                    options.distill.as_ref().zip(teacher.as_ref()),
                )
            };
            let step = devices::step_gradients(&model, &devices, &batch, shard_loss)?;
            let loss_value = step.loss;
            if !loss_value.is_finite() {
                return Err(TrainError::Invalid(format!(
                    "the loss became {loss_value} at epoch {}, batch {b}: lower train.lr",
                    epoch + 1
                )));
            }
            model = optim.step(schedule.at(state.global_step), model, step.grads);
            model.apply_batch_norm(step.batch_norm);
            state.global_step += 1;
            state.batches_done = b + 1;
            state.epoch_loss_sum += loss_value as f64;
            state.epoch_seconds = epoch_started.elapsed().as_secs_f64();
            bar.set_position(state.batches_done as u64);
            bar.set_message(format!(
                "loss {:.4}",
                state.epoch_loss_sum / state.batches_done as f64
            ));
            if spec.train.checkpoint_steps > 0
                && state.global_step % spec.train.checkpoint_steps as usize == 0
            {
                save_checkpoint(&model, &optim, &state)?;
            }
        }
        bar.finish_and_clear();

        let train_loss = state.epoch_loss_sum / state.batches_done.max(1) as f64;
        let seconds = epoch_started.elapsed().as_secs_f64();
        let proto = model.valid().to_proto()?;
        let contents = BundleContents {
            base_config: &start.config,
            labels: &classes,
            input_hw,
            overrides: &spec.export.nvinfer,
            header: &contents_header,
        };
        let validation = if val_set.samples.is_empty() {
            None
        } else {
            let candidate = out.join(".epoch-bundle");
            write_bundle(&candidate, &proto, &contents)?;
            let validation =
                validate::validate(&candidate, &val_set, task, &spec.eval, options.quiet)?;
            let _ = std::fs::remove_dir_all(&candidate);
            Some(validation)
        };
        let metric = validation.as_ref().map(|v| v.metric);
        tracing::info!(
            "epoch {}/{epochs}: loss {train_loss:.4}{} in {seconds:.1} s",
            epoch + 1,
            metric
                .map(|m| format!(", {metric_name} {m:.4}"))
                .unwrap_or_default()
        );
        state.history.push(EpochRecord {
            epoch: epoch + 1,
            train_loss,
            metric,
            seconds,
        });
        let improved = match (metric, state.best_metric) {
            (Some(m), Some(best)) => m > best,
            (Some(_), None) => true,
            (None, _) => true,
        };
        if improved {
            state.best_metric = metric;
            state.best_epoch = Some(epoch + 1);
            write_bundle(&best_dir, &proto, &contents)?;
            // The best epoch's validation as pictures next to the curves.
            if let Some(v) = &validation {
                if let Some(report) = &v.detection {
                    plot::pr_curves(&out.join("pr_curves.png"), &report.per_class, &classes)?;
                }
                if let Some(report) = &v.classification {
                    plot::confusion_matrix(
                        &out.join("confusion_matrix.png"),
                        &report.confusion,
                        &classes,
                    )?;
                }
            }
        }
        plot::training_curves(
            &out.join("training_curves.png"),
            &plot_records(&state.history, &metric_name),
        )?;
        state.epoch += 1;
        state.batches_done = 0;
        state.epoch_loss_sum = 0.0;
        state.epoch_seconds = 0.0;
        save_checkpoint(&model, &optim, &state)?;
        let patience = spec.train.early_stopping as usize;
        if patience > 0 {
            if let Some(best) = state.best_epoch {
                if epoch + 1 - best >= patience {
                    tracing::info!("early stopping: no better {metric_name} for {patience} epochs");
                    break;
                }
            }
        }
    }
    if epochs == 0 {
        // No training asked for: the edited start model (new input size, class channels) is
        // the result.
        let contents = BundleContents {
            base_config: &start.config,
            labels: &classes,
            input_hw,
            overrides: &spec.export.nvinfer,
            header: &contents_header,
        };
        write_bundle(&best_dir, &model.valid().to_proto()?, &contents)?;
    }
    Ok(FinetuneReport {
        out_dir: out,
        bundle: Some(best_dir),
        images_per_second: images_per_second(&state, steps_this_run_start, batch_size, run_started),
        history: state.history,
        metric_name,
        best_metric: state.best_metric,
    })
}

fn images_per_second(state: &LoopState, start_step: usize, batch: usize, started: Instant) -> f64 {
    let images = (state.global_step - start_step) * batch;
    images as f64 / started.elapsed().as_secs_f64().max(1e-9)
}

fn plot_records(history: &[EpochRecord], metric_name: &str) -> Vec<plot::EpochRecord> {
    history
        .iter()
        .map(|r| plot::EpochRecord {
            epoch: r.epoch,
            train_loss: r.train_loss,
            val_loss: None,
            metric: r.metric,
            metric_name: metric_name.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probabilities(rows: &[&[f32]]) -> Tensor<2> {
        let cols = rows[0].len();
        let data: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::<2>::from_data(TensorData::new(data, [rows.len(), cols]), &Device::flex())
    }

    #[test]
    fn distillation_penalises_mass_moved_to_a_new_class() {
        let teacher = probabilities(&[&[0.7, 0.3]]);
        let kept = distillation_loss(probabilities(&[&[0.7, 0.3, 0.0]]), teacher.clone(), 2.0);
        // The old classes' proportions are the teacher's, but half the mass went to the new
        // class: that is forgetting, and it must cost.
        let moved = distillation_loss(probabilities(&[&[0.35, 0.15, 0.5]]), teacher.clone(), 2.0);
        let swapped = distillation_loss(probabilities(&[&[0.3, 0.7, 0.0]]), teacher, 2.0);
        let (kept, moved, swapped) = (
            heads::scalar(&kept),
            heads::scalar(&moved),
            heads::scalar(&swapped),
        );
        assert!(kept.abs() < 1e-3, "{kept}");
        assert!(moved > 0.1, "{moved}");
        assert!(swapped > 0.1, "{swapped}");
    }
}
