//! `trainer`: nvtl's command-line tool — model zoo, nvinfer config linter, transfer learning.

mod ds_config;
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
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
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
    }
}
