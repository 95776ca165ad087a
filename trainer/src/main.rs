//! `trainer`: nvtl's command-line tool — model zoo, nvinfer config linter, transfer learning.

mod add_class;
mod calibrate_cmd;
mod commands;
mod data_cmd;
mod doctor;
mod ds_config;
mod prune_cmd;
mod zoo;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "trainer",
    version,
    about = "nvtl: model zoo, nvinfer configs, transfer learning"
)]
struct Cli {
    /// Hide progress bars.
    #[arg(long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Pretrained models: list, inspect, pull into the cache.
    #[command(subcommand)]
    Zoo(zoo::ZooCommand),
    /// DeepStream nvinfer config files.
    #[command(subcommand, name = "ds-config")]
    DsConfig(ds_config::DsConfigCommand),
    /// Datasets: frames from video, pseudo-labels from a teacher, sprite sheets to folders.
    #[command(subcommand)]
    Data(data_cmd::DataCommand),
    /// Fine-tune a zoo model or bundle on your data, as a spec file says.
    Finetune(commands::FinetuneArgs),
    /// Evaluate a bundle on the spec's validation images (mAP, accuracy), with plots.
    Eval(commands::EvalArgs),
    /// Run a bundle on images or videos: KITTI labels and annotated pictures.
    Infer(commands::InferArgs),
    /// Export a training run's checkpoint as a bundle (ONNX + labels + nvinfer config).
    Export(commands::ExportArgs),
    /// Add classes to a trained model, with or without its old training data.
    #[command(name = "add-class")]
    AddClass(add_class::AddClassArgs),
    /// Remove channels from a model (TAO's -pth/-pg/-nf/-n/-eq/-el, or a target ratio).
    Prune(prune_cmd::PruneArgs),
    /// INT8: activation ranges from calibration images -> TensorRT calibration table + QDQ ONNX.
    Calibrate(calibrate_cmd::CalibrateArgs),
    /// Which backends this build has and this machine can run (GPU, TensorRT, DeepStream).
    Doctor,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse_from(prune_cmd::tao_flags(std::env::args()));
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<std::process::ExitCode> {
    match cli.command {
        Command::Zoo(cmd) => zoo::run(cmd, cli.quiet),
        Command::DsConfig(cmd) => ds_config::run(cmd),
        Command::Data(cmd) => data_cmd::run(cmd, cli.quiet),
        Command::Finetune(args) => commands::finetune(args, cli.quiet),
        Command::Eval(args) => commands::eval(args, cli.quiet),
        Command::Infer(args) => commands::infer(args, cli.quiet),
        Command::Export(args) => commands::export(args),
        Command::AddClass(args) => add_class::run(args, cli.quiet),
        Command::Prune(args) => prune_cmd::run(args, cli.quiet),
        Command::Calibrate(args) => calibrate_cmd::run(args, cli.quiet),
        Command::Doctor => doctor::run(),
    }
}
