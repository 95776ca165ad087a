//! `trainer ds-config ...`

use anyhow::Result;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum DsConfigCommand {}

pub fn run(cmd: DsConfigCommand) -> Result<std::process::ExitCode> {
    match cmd {}
}
