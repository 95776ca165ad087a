//! `trainer calibrate`: INT8 activation ranges from calibration images, written as a TensorRT
//! calibration table beside the FP32 model (nvinfer: network-mode=1 + int8-calib-file) and as a
//! QDQ ONNX bundle; with `--spec`, the QDQ model's accuracy and CPU latency against FP32.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use nvtl_core::preprocess::{preprocess, PreprocessParams, Rect};
use nvtl_trainer::data;
use nvtl_trainer::export::{write_bundle, BundleContents};
use nvtl_trainer::prune::run::Source;
use nvtl_trainer::quantize::{qdq, table, Collector, Method};
use nvtl_trainer::spec::Spec;
use nvtl_trainer::train::validate;

#[derive(Args)]
pub struct CalibrateArgs {
    /// Model: a bundle folder, its config file, or a zoo model name.
    #[arg(short = 'm', long)]
    model: String,
    /// Output folder: the FP32 bundle with `calib.table`, and `qdq/` (the QDQ bundle).
    #[arg(short = 'o', long)]
    out: PathBuf,
    /// Calibration images: a folder (searched recursively for .png/.jpg/.jpeg/.bmp).
    #[arg(long, required_unless_present = "spec")]
    images: Option<PathBuf>,
    /// Or the training split of this spec's dataset (its validation split measures accuracy).
    #[arg(long)]
    spec: Option<PathBuf>,
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// How ranges are chosen.
    #[arg(long, value_enum, default_value = "entropy")]
    method: Method,
    /// The percentile of |x| for `--method percentile`.
    #[arg(long, default_value_t = 99.99)]
    percentile: f64,
    /// At most this many images, spread evenly over the sorted list.
    #[arg(long, default_value_t = 500)]
    max_images: usize,
    /// TensorRT version in the table header (major*10000 + minor*100 + patch for 10.x; 8601
    /// for 8.6.1).
    #[arg(long, default_value_t = 100300)]
    trt_version: u32,
    /// CPU threads for the latency measurements (0 = every core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                matches!(
                    e.to_ascii_lowercase().as_str(),
                    "png" | "jpg" | "jpeg" | "bmp"
                )
            }) {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// `n` items spread evenly over `items`.
fn spread<T: Clone>(items: &[T], n: usize) -> Vec<T> {
    if items.len() <= n {
        return items.to_vec();
    }
    (0..n).map(|i| items[i * items.len() / n].clone()).collect()
}

pub fn run(args: CalibrateArgs, quiet: bool) -> Result<ExitCode> {
    let bundle = crate::prune_cmd::resolve(&args.model)?;
    let source = Source::load(&bundle).with_context(|| format!("loading {}", bundle.display()))?;
    let spec = match &args.spec {
        Some(path) => Some(Spec::load(path, &args.set)?),
        None => None,
    };
    let datasets = spec
        .as_ref()
        .map(|s| data::load_from_spec(&s.dataset, Path::new("")))
        .transpose()?;
    let images: Vec<PathBuf> = match (&args.images, &datasets) {
        (Some(dir), _) => image_files(dir)?,
        (None, Some((train, _))) => train.samples.iter().map(|s| s.image.clone()).collect(),
        (None, None) => bail!("give calibration images (--images DIR or --spec)"),
    };
    let images = spread(&images, args.max_images.max(1));
    if images.is_empty() {
        bail!("no calibration images found");
    }

    // The model's input, batch 1, as the element pre-processes frames for it.
    let (h, w) = source.input_hw;
    let nchw = source.config.network_input_order == nvtl_core::config::TensorOrder::Nchw;
    let channels = if source.config.model_color_format == nvtl_core::config::ModelColorFormat::Gray
    {
        1
    } else {
        3
    };
    let shape = if nchw {
        vec![1, channels, h, w]
    } else {
        vec![1, h, w, channels]
    };
    let params = PreprocessParams::from_config(&source.config, w, h);
    let mut collector = Collector::new(&source.proto, &shape)?;
    let bar = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(images.len() as u64).with_prefix("calibrating")
    };
    let mut input = vec![0f32; params.tensor_len()];
    for path in &images {
        let rgb = nvtl_trainer::runner::read_rgb(path)?;
        let (iw, ih) = (rgb.width() as usize, rgb.height() as usize);
        let frame = nvtl_trainer::runner::rgb_frame(&rgb);
        preprocess(&frame, Rect::full(iw, ih), &params, &mut input)
            .with_context(|| format!("pre-processing {}", path.display()))?;
        collector
            .add(&input)
            .with_context(|| format!("running the model on {}", path.display()))?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let amax = collector.ranges(args.method, args.percentile);
    println!(
        "{} tensors calibrated on {} images ({:?})",
        amax.len(),
        collector.images,
        args.method
    );

    // nvinfer: the FP32 model, network-mode=1, the table.
    let overrides: BTreeMap<String, String> = [
        ("network-mode".to_string(), "1".to_string()),
        ("int8-calib-file".to_string(), "calib.table".to_string()),
    ]
    .into();
    let header = format!(
        "INT8 calibration by nvtl trainer of {} ({:?}, {} images)",
        source.bundle.display(),
        args.method,
        collector.images
    );
    let contents = |overrides| BundleContents {
        base_config: &source.config,
        labels: &source.labels,
        input_hw: source.input_hw,
        overrides,
        header: &header,
    };
    write_bundle(&args.out, &source.proto, &contents(&overrides))?;
    let table_path = args.out.join("calib.table");
    std::fs::write(&table_path, table::write(args.trt_version, &amax))
        .with_context(|| format!("writing {}", table_path.display()))?;
    let stats: BTreeMap<&String, serde_json::Value> = collector
        .stats
        .iter()
        .map(|(name, s)| {
            (
                name,
                serde_json::json!({
                    "min": s.min, "max": s.max,
                    "amax_max": s.amax(),
                    "amax_percentile": s.percentile(args.percentile),
                    "amax_entropy": s.entropy(),
                }),
            )
        })
        .collect();
    std::fs::write(
        args.out.join("calibration.json"),
        serde_json::to_string_pretty(&stats)?,
    )?;

    // Explicit quantization: the QDQ model as its own bundle.
    let (qdq_model, summary) = qdq::quantize(&source.proto, &amax)?;
    let qdq_dir = args.out.join("qdq");
    let qdq_overrides: BTreeMap<String, String> =
        [("network-mode".to_string(), "1".to_string())].into();
    write_bundle(&qdq_dir, &qdq_model, &contents(&qdq_overrides))?;
    println!(
        "QDQ: {} layers quantized ({} activation tensors), {} left in float",
        summary.layers,
        summary.activations,
        summary.skipped.len()
    );
    println!("table: {}", table_path.display());
    println!(
        "bundles: {} (FP32 + table), {} (QDQ)",
        args.out.display(),
        qdq_dir.display()
    );

    if let (Some(spec), Some((_, val))) = (&spec, &datasets) {
        let models = [
            ("fp32", source.bundle.as_path()),
            ("int8 qdq", qdq_dir.as_path()),
        ];
        let rows =
            crate::prune_cmd::models_stats(&models, (args.threads, 10), Some((spec, val)), quiet)?;
        let report =
            nvtl_trainer::prune::report::model_table(&rows, validate::metric_name(spec.model.task));
        print!("{report}");
        std::fs::write(args.out.join("int8_report.md"), report)?;
    }
    Ok(ExitCode::SUCCESS)
}
