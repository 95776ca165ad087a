//! `trainer zoo ...`: list, inspect and pull the pretrained models of `configs/zoo.toml`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use nvtl_core::zoo::{self, Manifest, PullStage, ZooModel};

#[derive(Subcommand)]
pub enum ZooCommand {
    /// Table of the models: name, task, input, licence, pulled or not.
    List,
    /// Everything the manifest says about a model, and its cache state.
    Info {
        /// Model name (see `trainer zoo list`).
        name: String,
    },
    /// Download (npm / pip / apt-get), verify, convert and cache a model's bundle.
    Pull {
        /// Model name (see `trainer zoo list`).
        name: String,
        /// Also copy the bundle to DIR/NAME/ (model.onnx, labels.txt, config_infer.txt).
        #[arg(long, value_name = "DIR")]
        into: Option<PathBuf>,
    },
    /// Print the bundle folder of a pulled model; exit status 1 if it is not pulled.
    Path {
        /// Model name (see `trainer zoo list`).
        name: String,
    },
}

pub fn run(cmd: ZooCommand, quiet: bool) -> Result<ExitCode> {
    let manifest = Manifest::builtin()?;
    match cmd {
        ZooCommand::List => {
            list(&manifest);
            Ok(ExitCode::SUCCESS)
        }
        ZooCommand::Info { name } => {
            info(manifest.get(&name)?);
            Ok(ExitCode::SUCCESS)
        }
        ZooCommand::Pull { name, into } => {
            let model = manifest.get(&name)?;
            let bar = progress_bar(quiet);
            bar.set_prefix(model.name.clone());
            let convert = nvtl_trainer::import::zoo_converter;
            let result = zoo::pull_with(
                model,
                &|stage: PullStage| {
                    bar.set_message(stage.to_string());
                    bar.tick();
                },
                Some(&convert),
            );
            bar.finish_and_clear();
            let bundle = result.with_context(|| format!("pulling '{}'", model.name))?;
            println!("{}", bundle.dir.display());
            if let Some(dir) = into {
                let copy = zoo::copy_bundle(&bundle, &model.name, &dir)
                    .with_context(|| format!("copying the bundle into {}", dir.display()))?;
                println!("{}", copy.dir.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        ZooCommand::Path { name } => match zoo::cached_bundle(manifest.get(&name)?) {
            Some(b) => {
                println!("{}", b.dir.display());
                Ok(ExitCode::SUCCESS)
            }
            None => {
                eprintln!("'{name}' is not pulled (run `trainer zoo pull {name}`)");
                Ok(ExitCode::FAILURE)
            }
        },
    }
}

fn progress_bar(quiet: bool) -> ProgressBar {
    use std::io::IsTerminal;
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix}: {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn list(manifest: &Manifest) {
    let rows: Vec<[String; 5]> = manifest
        .models()
        .iter()
        .map(|m| {
            let pulled = if zoo::cached_bundle(m).is_some() {
                "yes"
            } else {
                "no"
            };
            [
                m.name.clone(),
                m.task.to_string(),
                m.input.summary(),
                short_licence(&m.licence),
                pulled.to_string(),
            ]
        })
        .collect();
    let header = ["NAME", "TASK", "INPUT", "LICENCE", "PULLED"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    for r in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
}

/// The licence up to its first space-separated qualifier ("MIT (npm package...)" -> "MIT").
fn short_licence(l: &str) -> String {
    l.split(" (").next().unwrap_or(l).to_string()
}

fn info(m: &ZooModel) {
    println!("name:        {}", m.name);
    println!("description: {}", m.description);
    println!("task:        {}", m.task);
    println!("licence:     {}", m.licence);
    println!("source:      {} {}", m.source.kind, m.source.spec());
    for f in &m.source.files {
        println!("  file:      {}  sha256 {}", f.path, f.sha256);
    }
    println!(
        "converter:   {} (from {})",
        m.converter, m.convert.model_file
    );
    for o in &m.convert.outputs {
        println!("  output:    {} -> {}", o.tf, o.name);
    }
    let i = &m.input;
    println!("input:       {}", i.summary());
    println!(
        "  scale:     y = {} * (x - [{}])",
        i.net_scale_factor,
        i.offsets
            .iter()
            .map(|o| o.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    match (&m.labels.inline, &m.labels.file) {
        (Some(l), _) => println!("labels:      {} inline: {}", l.len(), l.join(", ")),
        (None, Some(f)) => println!("labels:      from {f}"),
        _ => println!("labels:      none"),
    }
    println!(
        "nvinfer:     parser={} network-type={}",
        m.nvinfer.parser, m.nvinfer.network_type
    );
    for (k, v) in [
        ("num-detected-classes", m.nvinfer.num_detected_classes),
        ("cluster-mode", m.nvinfer.cluster_mode),
        ("maintain-aspect-ratio", m.nvinfer.maintain_aspect_ratio),
        ("symmetric-padding", m.nvinfer.symmetric_padding),
        ("scaling-filter", m.nvinfer.scaling_filter),
    ] {
        if let Some(v) = v {
            println!("  {k}={v}");
        }
    }
    for (k, v) in &m.nvinfer.class_attrs_all {
        println!("  [class-attrs-all] {k}={v}");
    }
    match zoo::cached_bundle(m) {
        Some(b) => println!("cache:       pulled at {}", b.dir.display()),
        None => println!(
            "cache:       not pulled (would go to {})",
            zoo::cache_dir().join(&m.name).display()
        ),
    }
}
