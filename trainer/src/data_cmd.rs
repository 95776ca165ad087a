//! `trainer data ...`: build datasets from a camera's video with a teacher model, and from
//! sprite-sheet images.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use nvtl_trainer::data;

#[derive(Subcommand)]
pub enum DataCommand {
    /// Decode a video (GStreamer) into numbered PNG frames.
    #[command(name = "extract-frames")]
    ExtractFrames {
        video: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Keep every Nth frame.
        #[arg(long, default_value_t = 1)]
        every: u32,
        /// First frame index to keep.
        #[arg(long)]
        start: Option<u64>,
        /// Stop before this frame index.
        #[arg(long)]
        end: Option<u64>,
    },
    /// Label images with a teacher bundle: a KITTI set (image_2 + label_2) of the named classes.
    #[command(name = "pseudo-label")]
    PseudoLabel {
        /// Teacher bundle folder or nvinfer config.
        #[arg(long)]
        model: PathBuf,
        /// Classes to keep, comma separated (teacher label names).
        #[arg(long, value_delimiter = ',', required = true)]
        classes: Vec<String>,
        /// Minimum confidence (default: the teacher config's pre-cluster-threshold).
        #[arg(long)]
        threshold: Option<f32>,
        #[arg(long)]
        out: PathBuf,
        /// Images or folders of images.
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
    /// Cut a sprite sheet (e.g. opencv's digits.png) into class folders.
    Grid {
        image: PathBuf,
        /// Cell size WIDTHxHEIGHT in pixels.
        #[arg(long, default_value = "20x20")]
        cell: String,
        /// Rows of cells per class (class = row / this).
        #[arg(long)]
        rows_per_class: u32,
        #[arg(long)]
        out: PathBuf,
    },
}

fn bar(quiet: bool) -> indicatif::ProgressBar {
    if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(0)
    }
}

pub fn run(cmd: DataCommand, quiet: bool) -> Result<ExitCode> {
    match cmd {
        DataCommand::ExtractFrames {
            video,
            out,
            every,
            start,
            end,
        } => {
            let range = match (start, end) {
                (None, None) => None,
                (s, e) => Some((s.unwrap_or(0), e.unwrap_or(u64::MAX))),
            };
            let progress = bar(quiet);
            let n = data::extract_frames(&video, &out, every, range, &|p| {
                if let Some(total) = p.total {
                    progress.set_length(total);
                }
                progress.set_position(p.done);
            })
            .with_context(|| format!("extracting frames of {}", video.display()))?;
            progress.finish_and_clear();
            println!("{n} frames in {}", out.display());
        }
        DataCommand::PseudoLabel {
            model,
            classes,
            threshold,
            out,
            images,
        } => {
            let mut files = Vec::new();
            for input in images {
                if input.is_dir() {
                    let mut found: Vec<PathBuf> = std::fs::read_dir(&input)
                        .with_context(|| format!("reading {}", input.display()))?
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.is_file())
                        .collect();
                    found.sort();
                    files.extend(found);
                } else {
                    files.push(input);
                }
            }
            let progress = bar(quiet);
            progress.set_length(files.len() as u64);
            let threshold = match threshold {
                Some(t) => t,
                None => {
                    let config = nvtl_trainer::runner::bundle_config_path(&model);
                    nvtl_core::config::InferConfig::from_file(&config)
                        .with_context(|| format!("reading {}", config.display()))?
                        .config
                        .class_attrs
                        .all
                        .pre_cluster_threshold
                }
            };
            let report = data::pseudo_label(&model, &files, &classes, threshold, &out, &|p| {
                progress.set_position(p.done)
            })
            .with_context(|| format!("pseudo-labelling with {}", model.display()))?;
            progress.finish_and_clear();
            let counts: Vec<String> = report
                .classes
                .iter()
                .zip(&report.objects)
                .map(|(c, n)| format!("{n} {c}"))
                .collect();
            println!(
                "{} images labelled ({} without objects): {}; KITTI set in {} (threshold {threshold})",
                report.images,
                report.empty_images,
                counts.join(", "),
                out.display()
            );
        }
        DataCommand::Grid {
            image,
            cell,
            rows_per_class,
            out,
        } => {
            let (w, h) = cell
                .split_once('x')
                .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
                .with_context(|| format!("--cell '{cell}' is not WIDTHxHEIGHT"))?;
            let n = data::grid_to_folders(&image, (w, h), rows_per_class, &out)
                .with_context(|| format!("cutting {}", image.display()))?;
            let total: usize = n.iter().sum();
            println!(
                "{total} images in {} class folders under {} ({:?} per class)",
                n.len(),
                out.display(),
                n
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
