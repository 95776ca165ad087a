//! Pruning a bundle: analyse, score, pick the threshold (given or searched for a target), write
//! the pruned bundle.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nvtl_core::config::InferConfig;
use nvtl_core::model::read_onnx;
use tract_onnx::pb::ModelProto;

use super::report::{latencies_ms, model_params};
use super::{analyse, search_plan, Plan, PruneError, PruneOptions, Scores, Target};
use crate::export::{write_bundle, BundleContents};
use crate::runner::bundle_config_path;

/// A bundle loaded for pruning.
pub struct Source {
    pub bundle: PathBuf,
    pub config: InferConfig,
    pub labels: Vec<String>,
    pub proto: ModelProto,
    /// Network input (height, width).
    pub input_hw: (usize, usize),
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Prune(#[from] PruneError),
    #[error(transparent)]
    Config(#[from] nvtl_core::config::ConfigError),
    #[error(transparent)]
    Model(#[from] nvtl_core::model::ModelError),
    #[error(transparent)]
    Export(#[from] crate::export::ExportError),
    #[error(transparent)]
    Runner(#[from] crate::runner::RunError),
    #[error("{path}: {reason}")]
    Bundle { path: PathBuf, reason: String },
}

impl Source {
    pub fn load(bundle: &Path) -> Result<Source, RunError> {
        let config_path = bundle_config_path(bundle);
        let config = InferConfig::from_file(&config_path)?.config;
        let bad = |reason: &str| RunError::Bundle {
            path: config_path.clone(),
            reason: reason.into(),
        };
        let onnx = config
            .onnx_file
            .clone()
            .ok_or_else(|| bad("no onnx-file"))?;
        let labels_path = config
            .labelfile_path
            .clone()
            .ok_or_else(|| bad("no labelfile-path"))?;
        let labels = crate::train::read_labels(&labels_path).map_err(|e| RunError::Bundle {
            path: labels_path.clone(),
            reason: e.to_string(),
        })?;
        let proto = read_onnx(&onnx)?.proto;
        let runner = crate::runner::BundleRunner::open(bundle, 1)?;
        let (w, h) = runner.network_size();
        Ok(Source {
            bundle: bundle.to_path_buf(),
            config,
            labels,
            proto,
            input_hw: (h, w),
        })
    }

    /// Writes `proto` as a bundle in `dir` with this bundle's config, labels and input size.
    pub fn write(&self, dir: &Path, proto: &ModelProto, header: &str) -> Result<PathBuf, RunError> {
        Ok(write_bundle(
            dir,
            proto,
            &BundleContents {
                base_config: &self.config,
                labels: &self.labels,
                input_hw: self.input_hw,
                overrides: &BTreeMap::new(),
                header,
            },
        )?)
    }
}

/// How the threshold is chosen.
#[derive(Clone, Copy, Debug)]
pub struct TargetRatio {
    pub target: Target,
    /// Pruned / unpruned, in (0, 1].
    pub ratio: f64,
}

/// The chosen plan and, for a target, the ratio it reached.
pub struct Chosen {
    pub plan: Plan,
    pub reached: Option<f64>,
}

/// Latency measurements during a `--target-latency` search.
pub struct LatencyProbe<'a> {
    pub threads: usize,
    pub runs: usize,
    /// Scratch folder for the candidate bundles.
    pub scratch: &'a Path,
    /// Called after every measurement with (threshold, ratio).
    pub progress: &'a dyn Fn(f32, f64),
}

/// Chooses the plan: `options.threshold` as given, or the threshold reaching `target`.
pub fn choose(
    source: &Source,
    options: &PruneOptions,
    target: Option<TargetRatio>,
    probe: &LatencyProbe,
) -> Result<Chosen, RunError> {
    let analysis = analyse(&source.proto, &options.excluded)?;
    let scores = Scores::compute(
        &source.proto,
        &analysis,
        options.normalizer,
        options.equalization,
    )?;
    let Some(target) = target else {
        return Ok(Chosen {
            plan: Plan::new(&analysis, &scores, options)?,
            reached: None,
        });
    };
    if !(target.ratio > 0.0 && target.ratio <= 1.0) {
        return Err(PruneError::Invalid(format!(
            "a target ratio is pruned / unpruned, in (0, 1]; got {}",
            target.ratio
        ))
        .into());
    }
    let search = |steps, measure: &mut dyn FnMut(&Plan) -> Result<f64, PruneError>| {
        search_plan(&analysis, &scores, options, target.ratio, steps, measure)
    };
    let base_params = model_params(&source.proto) as f64;
    let (plan, reached) = match target.target {
        Target::Params => search(30, &mut |plan| {
            Ok(plan.params(&source.proto)? as f64 / base_params)
        })?,
        Target::Flops => search(30, &mut |plan| Ok(plan.flops_ratio()))?,
        Target::Latency => {
            let mut failure: Option<RunError> = None;
            let found = search(8, &mut |plan| {
                let measured =
                    plan.apply(&source.proto)
                        .map_err(RunError::from)
                        .and_then(|pruned| {
                            let dir = probe.scratch.join("candidate");
                            source.write(&dir, &pruned, "latency search candidate")?;
                            // The original is measured again beside every candidate.
                            let ms =
                                latencies_ms(&[&source.bundle, &dir], probe.threads, probe.runs)?;
                            Ok(ms[1] / ms[0])
                        });
                match measured {
                    Ok(ratio) => {
                        (probe.progress)(plan.threshold, ratio);
                        Ok(ratio)
                    }
                    Err(e) => {
                        let message = e.to_string();
                        failure = Some(e);
                        Err(PruneError::Invalid(message))
                    }
                }
            });
            match (found, failure) {
                (Ok(found), _) => found,
                (Err(_), Some(e)) => return Err(e),
                (Err(e), None) => return Err(e.into()),
            }
        }
    };
    Ok(Chosen {
        plan,
        reached: Some(reached),
    })
}
