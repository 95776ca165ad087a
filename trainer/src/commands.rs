//! The transfer-learning verbs: finetune, eval, infer, export, add-class.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use nvtl_core::config::InferConfig;
use nvtl_core::draw::{class_color, Canvas, PackedRgbFormat};
use nvtl_core::engine::InferResult;
use nvtl_core::model::read_onnx;
use nvtl_trainer::data;
use nvtl_trainer::eval::plot;
use nvtl_trainer::export::{write_bundle, BundleContents};
use nvtl_trainer::runner::{read_rgb, BundleRunner};
use nvtl_trainer::spec::Spec;
use nvtl_trainer::train::{self, checkpoint, validate, FinetuneOptions};

#[derive(Args)]
pub struct FinetuneArgs {
    /// Spec file (TOML).
    #[arg(long)]
    spec: PathBuf,
    /// Override a spec value: `section.key=value` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Continue from the output folder's checkpoint.
    #[arg(long)]
    resume: bool,
    /// Output folder (default: the spec's export.dir).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Stop after this many optimizer steps (the run can be resumed).
    #[arg(long)]
    max_steps: Option<usize>,
    /// Where to train: `cpu`, `cuda` or `cuda:0,1,...` (data parallel); beats the spec's
    /// `train.devices`.
    #[arg(long)]
    devices: Option<String>,
    /// Start from this bundle instead of the spec's [model] (e.g. the output of `trainer prune`).
    #[arg(long, value_name = "BUNDLE")]
    from: Option<PathBuf>,
    /// Distil from this bundle's model (e.g. the unpruned one): the student's outputs are pulled
    /// towards the teacher's on every batch.
    #[arg(long, value_name = "BUNDLE")]
    teacher: Option<PathBuf>,
    /// Weight of the distillation term.
    #[arg(long, default_value_t = 1.0, requires = "teacher")]
    distill_weight: f32,
    /// Softmax temperature of a classifier's distillation.
    #[arg(long, default_value_t = 2.0, requires = "teacher")]
    temperature: f32,
}

/// The distillation a `--teacher` bundle gives: all of its classes.
fn teacher_distillation(
    teacher: &Path,
    weight: f32,
    temperature: f32,
) -> Result<train::Distillation> {
    let config = InferConfig::from_file(&nvtl_trainer::runner::bundle_config_path(teacher))?.config;
    let onnx = config
        .onnx_file
        .clone()
        .with_context(|| format!("{}: no onnx-file", teacher.display()))?;
    let labels = config
        .labelfile_path
        .clone()
        .with_context(|| format!("{}: no labelfile-path", teacher.display()))?;
    Ok(train::Distillation {
        teacher_onnx: onnx,
        old_classes: train::read_labels(&labels)?.len(),
        weight,
        temperature,
    })
}

pub fn finetune(mut args: FinetuneArgs, quiet: bool) -> Result<ExitCode> {
    push_devices_override(args.devices.as_deref(), &mut args.set);
    let options = FinetuneOptions {
        resume: args.resume,
        out: args.out,
        quiet,
        max_steps: args.max_steps,
        distill: args
            .teacher
            .as_deref()
            .map(|t| teacher_distillation(t, args.distill_weight, args.temperature))
            .transpose()?,
        from: args.from,
    };
    let report = train::finetune(&args.spec, &args.set, &options)
        .with_context(|| format!("fine-tuning with {}", args.spec.display()))?;
    for r in &report.history {
        println!(
            "epoch {:>3}  loss {:.4}  {}  {:.1} s",
            r.epoch,
            r.train_loss,
            r.metric
                .map(|m| format!("{} {m:.4}", report.metric_name))
                .unwrap_or_default(),
            r.seconds
        );
    }
    println!("training speed: {:.1} images/s", report.images_per_second);
    match &report.bundle {
        Some(bundle) => println!("bundle: {}", bundle.display()),
        None => println!(
            "stopped after --max-steps; continue with --resume (checkpoint in {})",
            checkpoint::checkpoint_dir(&report.out_dir).display()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct EvalArgs {
    /// Spec file: its dataset's validation split is evaluated.
    #[arg(long)]
    spec: PathBuf,
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Bundle to evaluate (default: the spec's export.dir/bundle).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Where the report and plots go (default: next to the bundle).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also compare these bundles (repeatable, `NAME=DIR` or `DIR`): params, FLOPs, file size,
    /// CPU latency and the metric of every model as `comparison.md` / `.json` and a plot of the
    /// metric against latency (`accuracy_vs_latency.png`).
    #[arg(long, value_name = "[NAME=]BUNDLE")]
    compare: Vec<String>,
    /// CPU threads for the latency measurements (0 = every core, nvtlinfer's default).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Timed runs per latency measurement (the median counts).
    #[arg(long, default_value_t = 10)]
    latency_runs: usize,
}

/// The comparison of `--compare`: the evaluated model first, then the others.
fn compare_models(
    spec: &Spec,
    val: &data::Dataset,
    models: &[(String, PathBuf)],
    out: &Path,
    (threads, runs): (usize, usize),
    quiet: bool,
) -> Result<()> {
    let named: Vec<(&str, &Path)> = models
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_path()))
        .collect();
    let rows = crate::prune_cmd::models_stats(&named, (threads, runs), Some((spec, val)), quiet)?;
    let metric = validate::metric_name(spec.model.task);
    let table = nvtl_trainer::prune::report::model_table(&rows, metric);
    print!("{table}");
    nvtl_trainer::fsutil::write_atomic(&out.join("comparison.md"), table.as_bytes())?;
    nvtl_trainer::fsutil::write_atomic(
        &out.join("comparison.json"),
        serde_json::to_string_pretty(&rows)?.as_bytes(),
    )?;
    let points: Vec<(String, f64, f64)> = rows
        .iter()
        .map(|r| (r.name.clone(), r.latency_ms, r.accuracy.unwrap_or(f64::NAN)))
        .collect();
    let plot_path = out.join("accuracy_vs_latency.png");
    plot::scatter(
        &plot_path,
        &points,
        "CPU latency in nvtlinfer (ms per frame)",
        metric,
        &format!("{metric} against latency"),
    )?;
    println!(
        "comparison: {} and {}",
        out.join("comparison.md").display(),
        plot_path.display()
    );
    Ok(())
}

pub fn eval(args: EvalArgs, quiet: bool) -> Result<ExitCode> {
    let spec = Spec::load(&args.spec, &args.set)?;
    let bundle = args.model.unwrap_or_else(|| spec.export.dir.join("bundle"));
    let (_, val) = data::load_from_spec(&spec.dataset, Path::new(""))?;
    if val.samples.is_empty() {
        bail!("the spec's dataset has no validation images (set dataset.val or dataset.val_split)");
    }
    let out = args.out.unwrap_or_else(|| bundle.clone());
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let v = validate::validate(&bundle, &val, spec.model.task, &spec.eval, quiet)
        .with_context(|| format!("evaluating {}", bundle.display()))?;
    let names = &val.classes;
    if let Some(report) = &v.classification {
        println!("{}", report.table(names));
        plot::confusion_matrix(&out.join("confusion_matrix.png"), &report.confusion, names)?;
        println!("plot: {}", out.join("confusion_matrix.png").display());
    }
    if let Some(report) = &v.detection {
        println!("{:<20} {:>8} {:>8} {:>8}", "class", "AP50", "AP", "objects");
        for c in &report.per_class {
            println!(
                "{:<20} {:>8.4} {:>8.4} {:>8}",
                names.get(c.class).map(String::as_str).unwrap_or("?"),
                c.ap50,
                c.ap,
                c.gt_count
            );
        }
        println!(
            "mAP (VOC, IoU {}) {:.4}; COCO mAP@0.5 {:.4}, @0.5:0.95 {:.4}",
            spec.eval.iou, report.voc_map, report.map50, report.map50_95
        );
        plot::pr_curves(&out.join("pr_curves.png"), &report.per_class, names)?;
        println!("plot: {}", out.join("pr_curves.png").display());
    }
    println!("{} {:.4}", validate::metric_name(spec.model.task), v.metric);
    let images: Vec<serde_json::Value> = val
        .samples
        .iter()
        .enumerate()
        .map(|(i, sample)| {
            let predicted = v.top1.get(i).filter(|&&c| c != usize::MAX);
            serde_json::json!({
                "image": sample.image,
                "truth": sample.label,
                "predicted": predicted,
                "objects": v.predictions.get(i).map(|p| p.iter().map(|(c, b, s)| serde_json::json!({
                    "class": c, "bbox": b, "score": s
                })).collect::<Vec<_>>()),
            })
        })
        .collect();
    let metrics = serde_json::json!({
        "bundle": bundle,
        "images": images,
        "metric": validate::metric_name(spec.model.task),
        "value": v.metric,
        "classes": names,
        "classification": v.classification,
        "detection": v.detection,
    });
    let path = out.join("metrics.json");
    nvtl_trainer::fsutil::write_atomic(&path, serde_json::to_string_pretty(&metrics)?.as_bytes())?;
    println!("metrics: {}", path.display());
    if !args.compare.is_empty() {
        let mut models = vec![(bundle_name(&bundle), bundle.clone())];
        for item in &args.compare {
            models.push(match item.split_once('=') {
                Some((name, dir)) => (name.to_string(), PathBuf::from(dir)),
                None => (bundle_name(Path::new(item)), PathBuf::from(item)),
            });
        }
        compare_models(
            &spec,
            &val,
            &models,
            &out,
            (args.threads, args.latency_runs),
            quiet,
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A bundle's short name: its folder, or the folder above a `bundle` folder.
fn bundle_name(bundle: &Path) -> String {
    let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    match name(bundle) {
        Some(n) if n == "bundle" => bundle.parent().and_then(name).unwrap_or(n),
        Some(n) => n,
        None => bundle.display().to_string(),
    }
}

#[derive(Args)]
pub struct ExportArgs {
    /// Spec file of the training run.
    #[arg(long)]
    spec: PathBuf,
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// The training output folder whose checkpoint is exported (default: the spec's export.dir).
    #[arg(long)]
    from: Option<PathBuf>,
    /// Bundle folder to write (default: <export.dir>/<export.name>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also build the TensorRT engine, through the element's tensorrt backend and engine cache,
    /// where nvinfer looks for it (`model.onnx_b<N>_gpu<id>_<precision>.engine`, precision from
    /// the config's network-mode; set it with the spec's export.nvinfer). Needs a trainer built
    /// with --features onnxruntime and libonnxruntime with the TensorRT execution provider.
    #[arg(long)]
    engine: bool,
}

/// Exports the last checkpoint of a run as a bundle, with the spec's export.nvinfer keys.
pub fn export(args: ExportArgs) -> Result<ExitCode> {
    let spec = Spec::load(&args.spec, &args.set)?;
    let from = args.from.unwrap_or_else(|| spec.export.dir.clone());
    let ckpt = checkpoint::load(&from)?.with_context(|| {
        format!(
            "{} has no checkpoint: run trainer finetune first",
            from.display()
        )
    })?;
    let start_bundle = train::resolve_model(&spec)?;
    let base =
        InferConfig::from_file(&nvtl_trainer::runner::bundle_config_path(&start_bundle))?.config;
    let proto = read_onnx(&ckpt.model)?.proto;
    let dest = args
        .out
        .unwrap_or_else(|| spec.export.dir.join(&spec.export.name));
    let header = format!(
        "Exported by nvtl-trainer from {} (epoch {}, {} steps).",
        from.display(),
        ckpt.state.epoch,
        ckpt.state.global_step
    );
    let config = write_bundle(
        &dest,
        &proto,
        &BundleContents {
            base_config: &base,
            labels: &ckpt.state.classes,
            input_hw: ckpt.state.input_hw,
            overrides: &spec.export.nvinfer,
            header: &header,
        },
    )?;
    // The bundle must load in the element's engine.
    BundleRunner::open(&dest, 0).with_context(|| format!("checking {}", dest.display()))?;
    println!("{}", config.display());
    if args.engine {
        let engine = build_engine(&config)?;
        println!("engine: {}", engine.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Builds (or finds current in the cache) the TensorRT engine of the bundle config at `config`
/// the way nvtlinfer's `backend=tensorrt` does, and returns its path.
fn build_engine(config_path: &Path) -> Result<PathBuf> {
    use nvtl_core::backend::{engine_cache, BackendKind};
    if !BackendKind::TensorRt.is_built() {
        bail!(
            "--engine builds the TensorRT engine through onnxruntime's TensorRT execution \
             provider, which this trainer lacks: build it with `cargo build --release -p \
             nvtl-trainer --features onnxruntime` (the bundle {} was written)",
            config_path.display()
        );
    }
    let config = InferConfig::from_file(config_path)?.config;
    let (loaded, warnings) = nvtl_core::engine::Engine::load(config, BackendKind::TensorRt, 0)
        .with_context(|| format!("building the TensorRT engine of {}", config_path.display()))?;
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    let spec = loaded.plan().spec();
    let engine = engine_cache::nvinfer_engine_path(
        &spec.onnx_path,
        spec.batch_size,
        spec.gpu_id,
        spec.precision,
    );
    if !engine.is_file() {
        bail!(
            "the tensorrt backend loaded {} but wrote no engine at {}",
            spec.onnx_path.display(),
            engine.display()
        );
    }
    Ok(engine)
}

#[derive(Args)]
pub struct InferArgs {
    /// Bundle folder or nvinfer config.
    #[arg(long)]
    model: PathBuf,
    /// Output folder: KITTI labels (label_2/) and annotated images (annotated/).
    #[arg(long)]
    out: PathBuf,
    /// Images, folders of images, or videos.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Keep every Nth frame of videos.
    #[arg(long, default_value_t = 1)]
    every: u32,
}

fn is_video(path: &Path) -> bool {
    matches!(
        path.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("avi" | "mp4" | "mkv" | "mov" | "webm" | "mpg" | "mpeg" | "ts" | "h264" | "h265")
    )
}

fn is_image(path: &Path) -> bool {
    matches!(
        path.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("png" | "jpg" | "jpeg" | "bmp" | "ppm" | "pgm" | "tif" | "tiff" | "webp")
    )
}

/// A box `[left, top, width, height]` in the class's colour with its label above it, as
/// nvtlosd draws them.
fn draw_labelled_box(image: &mut image::RgbImage, class_id: u32, b: [f32; 4], text: &str) {
    let (width, height) = (image.width() as usize, image.height() as usize);
    let mut canvas = Canvas {
        data: image.as_mut(),
        width,
        height,
        stride: width * 3,
        format: PackedRgbFormat::Rgb,
    };
    let color = class_color(class_id);
    canvas.draw_rect(b[0] as i32, b[1] as i32, b[2] as i32, b[3] as i32, 2, color);
    let (_, text_height) = Canvas::text_size(text, 1);
    let y = (b[1] as i32 - text_height as i32).max(0);
    canvas.draw_text(b[0] as i32, y, text, 1, [255, 255, 255, 255], Some(color));
}

pub fn infer(args: InferArgs, quiet: bool) -> Result<ExitCode> {
    let mut runner = BundleRunner::open(&args.model, 0)?;
    let labels_dir = args.out.join("label_2");
    let annotated_dir = args.out.join("annotated");
    std::fs::create_dir_all(&labels_dir)?;
    std::fs::create_dir_all(&annotated_dir)?;
    let mut images: Vec<PathBuf> = Vec::new();
    for input in &args.inputs {
        if input.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                .with_context(|| format!("reading {}", input.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| is_image(p))
                .collect();
            found.sort();
            images.extend(found);
        } else if is_video(input) {
            let stem = input
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let frames = args.out.join("frames").join(stem);
            let n = data::extract_frames(input, &frames, args.every, None, &|_| {})
                .with_context(|| format!("reading frames of {}", input.display()))?;
            tracing::info!("{}: {n} frames", input.display());
            let mut found: Vec<PathBuf> = std::fs::read_dir(&frames)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| is_image(p))
                .collect();
            found.sort();
            images.extend(found);
        } else if input.is_file() {
            images.push(input.clone());
        } else {
            bail!("{} does not exist", input.display());
        }
    }
    let bar = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(images.len() as u64)
    };
    let mut objects_total = 0usize;
    for path in &images {
        let image = read_rgb(path)?;
        let result = runner.run_rgb(&image, &path.display().to_string())?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut canvas = image.clone();
        let mut kitti = String::new();
        match &result {
            InferResult::Objects(objects) => {
                for o in objects {
                    let b = o.bbox;
                    let label = o.label.clone().unwrap_or_else(|| o.class_id.to_string());
                    kitti.push_str(&format!(
                        "{} 0.00 0 0.00 {:.2} {:.2} {:.2} {:.2} 0.00 0.00 0.00 0.00 0.00 0.00 0.00 {:.4}\n",
                        label.replace(' ', "_"),
                        b.left,
                        b.top,
                        b.left + b.width,
                        b.top + b.height,
                        o.confidence
                    ));
                    draw_labelled_box(
                        &mut canvas,
                        o.class_id,
                        [b.left, b.top, b.width, b.height],
                        &format!("{label} {:.2}", o.confidence),
                    );
                }
                objects_total += objects.len();
            }
            InferResult::Classification(output) => {
                for a in &output.attributes {
                    let label = a.label.clone().unwrap_or_else(|| a.class_id.to_string());
                    println!("{}: {label} {:.3}", path.display(), a.probability);
                    draw_labelled_box(
                        &mut canvas,
                        a.class_id,
                        [0.0, 0.0, image.width() as f32, image.height() as f32],
                        &format!("{label} {:.2}", a.probability),
                    );
                }
            }
            other => bail!("{}: the model produced {other:?}", path.display()),
        }
        nvtl_trainer::fsutil::write_atomic(
            &labels_dir.join(format!("{stem}.txt")),
            kitti.as_bytes(),
        )?;
        canvas
            .save(annotated_dir.join(format!("{stem}.png")))
            .with_context(|| format!("writing the annotated {stem}.png"))?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    println!(
        "{} images, {objects_total} objects; labels in {}, pictures in {}",
        images.len(),
        labels_dir.display(),
        annotated_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// A `--devices` flag as the last `--set` override, so it beats the spec and `--set`.
pub(crate) fn push_devices_override(devices: Option<&str>, set: &mut Vec<String>) {
    if let Some(devices) = devices {
        let value = toml::Value::String(devices.to_string());
        set.push(format!("train.devices={value}"));
    }
}
