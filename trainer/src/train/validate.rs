//! Validation through the element's engine: the candidate bundle runs on the validation images
//! as nvtlinfer would run it (only the detection threshold lowered to the spec's
//! `eval.score_threshold`, as mAP needs the whole precision/recall curve).

use std::path::Path;

use nvtl_core::engine::InferResult;

use crate::data::Dataset;
use crate::eval::classification::ClassificationReport;
use crate::eval::detection::{self, DetectionReport, GroundTruth, Prediction};
use crate::runner::BundleRunner;
use crate::spec::{EvalSpec, MapMode, Task};

use super::TrainError;

/// What validation measured.
pub struct Validation {
    /// The number training optimises for: top-1 accuracy, or mAP (VOC at `eval.iou`, or COCO
    /// 0.5:0.95) for detectors.
    pub metric: f64,
    pub classification: Option<ClassificationReport>,
    pub detection: Option<DetectionReport>,
    /// Per image: predicted (class, [left, top, right, bottom], score) in image pixels.
    pub predictions: Vec<Vec<(usize, [f32; 4], f32)>>,
    /// Per image of a classifier: the top-1 class (usize::MAX when the model gave none).
    pub top1: Vec<usize>,
}

pub fn metric_name(task: Task) -> &'static str {
    match task {
        Task::Classifier => "accuracy",
        Task::CenterNet | Task::DetectNetV2 => "mAP",
    }
}

/// Runs `bundle` on every image of `set` and scores it.
pub fn validate(
    bundle: &Path,
    set: &Dataset,
    task: Task,
    eval: &EvalSpec,
    quiet: bool,
) -> Result<Validation, TrainError> {
    let threshold = eval.score_threshold as f32;
    let mut runner = BundleRunner::open_with(bundle, 0, |config| {
        if task != Task::Classifier {
            config.class_attrs.all.pre_cluster_threshold = threshold;
            for attrs in config.class_attrs.per_class.values_mut() {
                attrs.pre_cluster_threshold = threshold;
            }
        }
    })?;
    let bar = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(set.samples.len() as u64)
    };
    bar.set_prefix("validating");
    let mut predictions = Vec::with_capacity(set.samples.len());
    let mut predicted_labels = Vec::with_capacity(set.samples.len());
    for sample in &set.samples {
        let (_, result) = runner.run_file(&sample.image)?;
        match result {
            InferResult::Classification(output) => {
                let top = output
                    .attributes
                    .first()
                    .map_or(usize::MAX, |a| a.class_id as usize);
                predicted_labels.push(top);
                predictions.push(Vec::new());
            }
            InferResult::Objects(objects) => {
                predictions.push(
                    objects
                        .into_iter()
                        .map(|o| {
                            let b = o.bbox;
                            (
                                o.class_id as usize,
                                [b.left, b.top, b.left + b.width, b.top + b.height],
                                o.confidence,
                            )
                        })
                        .collect(),
                );
            }
            other => {
                return Err(TrainError::Invalid(format!(
                    "{}: the bundle produced {other:?}, not objects or classes",
                    bundle.display()
                )))
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();

    let classes = set.classes.len();
    if task == Task::Classifier {
        let truth: Vec<usize> = set
            .samples
            .iter()
            .map(|s| s.label.unwrap_or(usize::MAX))
            .collect();
        let report =
            crate::eval::classification::from_predictions(&truth, &predicted_labels, classes)?;
        return Ok(Validation {
            metric: report.accuracy,
            classification: Some(report),
            detection: None,
            predictions,
            top1: predicted_labels,
        });
    }
    let mut gt = Vec::new();
    let mut pred = Vec::new();
    for (image_id, (sample, found)) in set.samples.iter().zip(&predictions).enumerate() {
        for o in &sample.objects {
            gt.push(GroundTruth {
                image_id: image_id as u64,
                class: o.class,
                bbox: o.bbox,
                crowd: false,
            });
        }
        for &(class, bbox, score) in found {
            pred.push(Prediction {
                image_id: image_id as u64,
                class,
                bbox,
                score,
            });
        }
    }
    let report = match eval.map {
        MapMode::Voc => detection::evaluate_voc(&gt, &pred, classes, eval.iou)?,
        MapMode::Coco => {
            detection::evaluate_coco(&gt, &pred, classes, eval.max_detections as usize)?
        }
    };
    let metric = match eval.map {
        MapMode::Voc => report.voc_map,
        MapMode::Coco => report.map50_95,
    };
    Ok(Validation {
        metric,
        classification: None,
        detection: Some(report),
        predictions,
        top1: Vec::new(),
    })
}
