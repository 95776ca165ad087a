//! `trainer ds-config ...`: DeepStream nvinfer config tools.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use nvtl_core::config::{ExplainedConfig, InferConfig};

#[derive(Subcommand)]
pub enum DsConfigCommand {
    /// Lint an nvinfer config (.txt key file or .yml/.yaml): print every key with its resolved
    /// value and whether the file set it or it is nvinfer's default, then every warning.
    ///
    /// Exit status: 0 when the config is usable, 1 when it has an error (printed with file,
    /// group, key and value), 2 with --strict when it has warnings.
    Check {
        /// The config file.
        file: PathBuf,
        /// Treat warnings (unknown, legacy or ignored keys, unknown groups) as failure.
        #[arg(long)]
        strict: bool,
    },
}

pub fn run(cmd: DsConfigCommand) -> Result<ExitCode> {
    match cmd {
        DsConfigCommand::Check { file, strict } => check(&file, strict),
    }
}

fn check(file: &std::path::Path, strict: bool) -> Result<ExitCode> {
    let explained = match InferConfig::explain_file(file) {
        Ok(explained) => explained,
        Err(err) => {
            eprintln!("error: {err}");
            return Ok(ExitCode::FAILURE);
        }
    };
    print!("{}", report(&explained));
    let warnings = &explained.loaded.warnings;
    if warnings.is_empty() {
        println!("no warnings");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{} warning(s):", warnings.len());
    for warning in warnings {
        println!("  warning: {warning}");
    }
    Ok(if strict {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// The resolved config, group by group: `key = value  (file|default)`.
fn report(explained: &ExplainedConfig) -> String {
    let config = &explained.loaded.config;
    let mut out = String::new();
    if let Some(source) = &config.source {
        out.push_str(&format!("# {}\n", source.display()));
    }
    let entries = config.entries();
    let width = entries.iter().map(|e| e.key.len()).max().unwrap_or(0);
    let mut group = None;
    for entry in &entries {
        if group != Some(&entry.group) {
            if group.is_some() {
                out.push('\n');
            }
            out.push_str(&format!("[{}]\n", entry.group));
            group = Some(&entry.group);
        }
        let origin = if explained
            .from_file
            .contains(&(entry.group.clone(), entry.key.clone()))
        {
            "file"
        } else if entry.group.starts_with("class-attrs-") && entry.group != "class-attrs-all" {
            "class-attrs-all"
        } else {
            "default"
        };
        let value = entry.value.as_deref().unwrap_or("(unset)");
        out.push_str(&format!("{:<width$} = {value:<24} # {origin}\n", entry.key));
    }
    for id in config.class_attrs.per_class.keys() {
        let name = format!("class-attrs-{id}");
        if !entries.iter().any(|e| e.group == name) {
            out.push_str(&format!("\n[{name}]\n# same as [class-attrs-all]\n"));
        }
    }
    out
}
