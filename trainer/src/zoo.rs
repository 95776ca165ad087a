//! `trainer zoo ...`

use anyhow::Result;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum ZooCommand {}

pub fn run(cmd: ZooCommand, _quiet: bool) -> Result<std::process::ExitCode> {
    match cmd {}
}
