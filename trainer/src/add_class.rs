//! `trainer add-class`: grow a trained model's classes (see nvtl_trainer::train::add_class).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use nvtl_trainer::spec::Spec;
use nvtl_trainer::train::add_class::{add_class, AddClassMethod};
use nvtl_trainer::train::FinetuneOptions;

#[derive(Clone, Copy, ValueEnum)]
enum Method {
    /// The data has the old classes too: extend the head, train on everything.
    Merged,
    /// Only new-class labels: the old model keeps the old classes alive (distillation).
    Distill,
    /// Plain fine-tuning on the data as it is (forgets; for comparison).
    Naive,
}

#[derive(Args)]
pub struct AddClassArgs {
    /// Spec file: [model] is the trained bundle, [dataset] has the new classes.
    #[arg(long)]
    spec: PathBuf,
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    #[arg(long, value_enum, default_value = "distill")]
    method: Method,
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long)]
    resume: bool,
    /// Where to train: `cpu`, `cuda` or `cuda:0,1,...` (data parallel); beats the spec's
    /// `train.devices`.
    #[arg(long)]
    devices: Option<String>,
}

pub fn run(mut args: AddClassArgs, quiet: bool) -> Result<ExitCode> {
    crate::commands::push_devices_override(args.devices.as_deref(), &mut args.set);
    let spec = Spec::load(&args.spec, &args.set)?;
    let method = match args.method {
        Method::Merged => AddClassMethod::Merged,
        Method::Distill => AddClassMethod::Distill,
        Method::Naive => AddClassMethod::Naive,
    };
    let options = FinetuneOptions {
        resume: args.resume,
        out: args.out,
        quiet,
        ..Default::default()
    };
    let report = add_class(&spec, method, &options)
        .with_context(|| format!("adding classes with {}", args.spec.display()))?;
    if let Some(bundle) = &report.bundle {
        println!("bundle: {}", bundle.display());
    }
    if let Some(m) = report.best_metric {
        println!("{} {m:.4}", report.metric_name);
    }
    Ok(ExitCode::SUCCESS)
}
