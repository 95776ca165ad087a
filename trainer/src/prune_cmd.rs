//! `trainer prune`: structured channel pruning with TAO's flags (see nvtl_trainer::prune).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use nvtl_trainer::data;
use nvtl_trainer::prune::report::{self, ModelStats};
use nvtl_trainer::prune::run::{choose, LatencyProbe, Source, TargetRatio};
use nvtl_trainer::prune::{Equalization, Normalizer, PruneOptions, Target};
use nvtl_trainer::spec::Spec;
use nvtl_trainer::train::validate;

/// TAO's single-dash multi-letter flags, accepted as they are (`-pth 0.2` = `--pth 0.2`).
pub const TAO_FLAGS: &[&str] = &["-pth", "-pg", "-nf", "-eq", "-el"];

#[derive(Args)]
pub struct PruneArgs {
    /// Model to prune: a bundle folder, its config file, or a zoo model name.
    #[arg(short = 'm', long)]
    model: String,
    /// Output bundle folder (not needed with --dry-run).
    #[arg(short = 'o', long)]
    out: Option<PathBuf>,
    /// Threshold (-pth): channels whose normalised score is at most this are removed.
    #[arg(long = "pth", default_value_t = 0.1)]
    threshold: f32,
    /// Granularity (-pg): kept channel counts are multiples of this.
    #[arg(long = "pg", default_value_t = 8)]
    granularity: usize,
    /// Minimum filters (-nf) every layer keeps.
    #[arg(long = "nf", default_value_t = 16)]
    min_filters: usize,
    /// Normaliser (-n) of the per-filter norms within a layer.
    #[arg(short = 'n', long = "normalizer", value_enum, default_value = "max")]
    normalizer: Normalizer,
    /// Equalisation (-eq) of layers tied by element-wise ops.
    #[arg(long = "eq", value_enum, default_value = "union")]
    equalization: Equalization,
    /// Excluded layers (-el), comma-separated node names: their output channels stay.
    #[arg(long = "el", value_delimiter = ',')]
    excluded: Vec<String>,
    /// Search the threshold that keeps this fraction of the parameters.
    #[arg(long, conflicts_with_all = ["target_flops", "target_latency"])]
    target_params: Option<f64>,
    /// Search the threshold that keeps this fraction of the FLOPs.
    #[arg(long, conflicts_with = "target_latency")]
    target_flops: Option<f64>,
    /// Search the threshold whose CPU latency in the element is this fraction of the original's.
    #[arg(long)]
    target_latency: Option<f64>,
    /// Print the per-layer table and totals; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Also measure accuracy on this spec's validation images.
    #[arg(long)]
    spec: Option<PathBuf>,
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// CPU threads for latency measurements (0 = every core, as nvtlinfer's default).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Timed runs per latency measurement (the median counts).
    #[arg(long, default_value_t = 10)]
    latency_runs: usize,
}

/// Turns TAO's `-pth`-style flags into clap's `--pth` (only those flags, only as whole words).
pub fn tao_flags(args: impl Iterator<Item = String>) -> Vec<String> {
    args.map(|a| {
        if TAO_FLAGS.contains(&a.as_str()) {
            format!("-{a}")
        } else {
            a
        }
    })
    .collect()
}

pub fn resolve(model: &str) -> Result<PathBuf> {
    let path = Path::new(model);
    if path.exists() {
        return Ok(path.to_path_buf());
    }
    nvtl_trainer::train::resolve_bundle(model)
        .with_context(|| format!("'{model}' is neither a bundle path nor a zoo model"))
}

pub fn run(args: PruneArgs, quiet: bool) -> Result<ExitCode> {
    let bundle = resolve(&args.model)?;
    let source = Source::load(&bundle).with_context(|| format!("loading {}", bundle.display()))?;
    let options = PruneOptions {
        threshold: args.threshold,
        granularity: args.granularity,
        min_filters: args.min_filters,
        normalizer: args.normalizer,
        equalization: args.equalization,
        excluded: args.excluded.clone(),
    };
    let target = [
        (Target::Params, args.target_params),
        (Target::Flops, args.target_flops),
        (Target::Latency, args.target_latency),
    ]
    .into_iter()
    .find_map(|(target, ratio)| ratio.map(|ratio| TargetRatio { target, ratio }));
    if args.out.is_none() && !args.dry_run {
        bail!("say where the pruned bundle goes (-o DIR), or use --dry-run");
    }
    let scratch = tempdir_for(args.out.as_deref())?;
    let bar = if quiet || target.is_none_or(|t| t.target != Target::Latency) {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(9).with_prefix("latency search")
    };
    let progress = |threshold: f32, ratio: f64| {
        bar.inc(1);
        bar.set_message(format!(
            "threshold {threshold:.4}: latency ratio {ratio:.3}"
        ));
    };
    let chosen = choose(
        &source,
        &options,
        target,
        &LatencyProbe {
            threads: args.threads,
            runs: args.latency_runs,
            scratch: &scratch,
            progress: &progress,
        },
    )
    .with_context(|| format!("pruning {}", bundle.display()));
    bar.finish_and_clear();
    let _ = std::fs::remove_dir_all(&scratch);
    let chosen = chosen?;
    let plan = &chosen.plan;
    let rows = report::layer_rows(plan);
    let table = report::layer_table(&rows);
    let params_before = report::model_params(&source.proto);
    let params_after = plan.params(&source.proto)?;
    let summary = format!(
        "threshold {:.4}{}: params {} -> {} ({:.3}), FLOPs {} -> {} ({:.3})",
        plan.threshold,
        chosen
            .reached
            .map_or(String::new(), |r| format!(" (target reached: {r:.3})")),
        report::human(params_before as f64),
        report::human(params_after as f64),
        params_after as f64 / params_before as f64,
        report::human(plan.flops_before() as f64),
        report::human(plan.flops() as f64),
        plan.flops() as f64 / plan.flops_before().max(1) as f64,
    );
    if args.dry_run {
        print!("{table}");
        println!("{summary}");
        return Ok(ExitCode::SUCCESS);
    }
    let out = args.out.expect("checked above");
    let pruned = plan.apply(&source.proto)?;
    let header = format!(
        "Pruned by nvtl trainer from {}\n{summary}",
        source.bundle.display()
    );
    let config = source.write(&out, &pruned, &header)?;
    println!("{summary}");
    println!("bundle: {}", out.display());

    // Report: both models' size, cost, speed (and accuracy with --spec).
    let validation = match &args.spec {
        Some(spec) => {
            let spec = Spec::load(spec, &args.set)?;
            let (_, val) = data::load_from_spec(&spec.dataset, Path::new(""))?;
            Some((spec, val))
        }
        None => None,
    };
    let models = [
        ("unpruned", source.bundle.as_path()),
        ("pruned", out.as_path()),
    ];
    let rows_stats = models_stats(
        &models,
        (args.threads, args.latency_runs),
        validation.as_ref().map(|(spec, val)| (spec, val)),
        quiet,
    )?;
    let metric = validation
        .as_ref()
        .map_or("accuracy", |(s, _)| validate::metric_name(s.model.task));
    let models = report::model_table(&rows_stats, metric);
    print!("{models}");
    let text = format!(
        "# Pruning report\n\n{}\n\n{summary}\n\n```\n{table}```\n\n{models}",
        header.replace('\n', "  \n")
    );
    let report_path = out.join("prune_report.md");
    std::fs::write(&report_path, text)
        .with_context(|| format!("writing {}", report_path.display()))?;
    std::fs::write(
        out.join("prune_report.json"),
        serde_json::to_string_pretty(&rows_stats)?,
    )?;
    println!(
        "report: {} (config {})",
        report_path.display(),
        config.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Size, FLOPs and CPU latency of named bundles, and with `validation` their metric on its
/// images. The latencies are measured in turns, so their ratios are steady on a busy machine.
pub fn models_stats(
    models: &[(&str, &Path)],
    (threads, runs): (usize, usize),
    validation: Option<(&Spec, &data::Dataset)>,
    quiet: bool,
) -> Result<Vec<ModelStats>> {
    let mut stats = Vec::with_capacity(models.len());
    for (name, bundle) in models {
        // Only the graph is read here; the engine is loaded once, by the latency measurement.
        let config_path = nvtl_trainer::runner::bundle_config_path(bundle);
        let onnx = nvtl_core::config::InferConfig::from_file(&config_path)?
            .config
            .onnx_file
            .with_context(|| format!("{}: no onnx-file", config_path.display()))?;
        let proto = nvtl_core::model::read_onnx(&onnx)?.proto;
        stats.push(ModelStats {
            name: name.to_string(),
            params: report::model_params(&proto),
            flops: report::model_flops(&proto)?,
            file_bytes: std::fs::metadata(&onnx)
                .with_context(|| format!("reading {}", onnx.display()))?
                .len(),
            latency_ms: f64::NAN,
            accuracy: None,
        });
    }
    let bundles: Vec<&Path> = models.iter().map(|(_, b)| *b).collect();
    for (s, ms) in stats
        .iter_mut()
        .zip(report::latencies_ms(&bundles, threads, runs)?)
    {
        s.latency_ms = ms;
    }
    if let Some((spec, val)) = validation {
        for (s, (_, bundle)) in stats.iter_mut().zip(models) {
            s.accuracy = Some(
                validate::validate(bundle, val, spec.model.task, &spec.eval, quiet)
                    .with_context(|| format!("evaluating {}", bundle.display()))?
                    .metric,
            );
        }
    }
    Ok(stats)
}

fn tempdir_for(out: Option<&Path>) -> Result<PathBuf> {
    let base = out
        .and_then(Path::parent)
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!(".nvtl-prune-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
