//! Adding classes to a trained model (`trainer add-class`). The spec's `[model]` is the trained
//! bundle; its classes keep their output channels and ids, the dataset's new classes are
//! appended. Three ways:
//! - `merged`: the data has old and new classes (every old class must have images or objects);
//! - `distill`: the data labels only the new classes; the old model supplies the old classes —
//!   soft targets on every batch for classifiers (learning without forgetting), pseudo-labels
//!   of the old classes on the training images for detectors;
//! - `naive`: plain fine-tuning on the data as it is (the baseline that forgets).

use crate::data::{Dataset, Object};
use crate::runner::BundleRunner;
use crate::spec::{Spec, Task};
use nvtl_core::engine::InferResult;

use super::{
    read_labels, resolve_model, train_on, Distillation, FinetuneOptions, FinetuneReport, TrainError,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddClassMethod {
    Merged,
    Distill,
    Naive,
}

/// Weight and temperature of the classifier distillation term.
pub const DISTILL_WEIGHT: f32 = 1.0;
pub const DISTILL_TEMPERATURE: f32 = 2.0;

/// The old model's classes followed by the dataset's new ones.
pub fn merged_classes(old: &[String], dataset: &[String]) -> Vec<String> {
    let mut classes = old.to_vec();
    for c in dataset {
        if !old.iter().any(|o| o.eq_ignore_ascii_case(c)) {
            classes.push(c.clone());
        }
    }
    classes
}

pub fn add_class(
    spec: &Spec,
    method: AddClassMethod,
    options: &FinetuneOptions,
) -> Result<FinetuneReport, TrainError> {
    let bundle = resolve_model(spec)?;
    let config_path = crate::runner::bundle_config_path(&bundle);
    let config = nvtl_core::config::InferConfig::from_file(&config_path)?.config;
    let labels_path = config.labelfile_path.clone().ok_or_else(|| {
        TrainError::Invalid(format!("{}: no labelfile-path", config_path.display()))
    })?;
    let old = read_labels(&labels_path)?;

    // The dataset's own class names first, then the merged list in the model's order.
    let mut probe = spec.clone();
    probe.dataset.classes = None;
    probe.dataset.ignore_unknown = false;
    let (probe_train, _) = crate::data::load_from_spec(&probe.dataset, std::path::Path::new(""))?;
    let classes = merged_classes(&old, &probe_train.classes);
    if classes.len() == old.len() {
        return Err(TrainError::Invalid(format!(
            "the dataset's classes {:?} are all classes the model has already: nothing to add",
            probe_train.classes
        )));
    }
    let mut spec = spec.clone();
    spec.dataset.classes = Some(classes.clone());
    let (mut train_set, val_set) =
        crate::data::load_from_spec(&spec.dataset, std::path::Path::new(""))?;
    tracing::info!(
        "adding {:?} to the {} classes of {}",
        &classes[old.len()..],
        old.len(),
        bundle.display()
    );

    let mut options = options.clone();
    match method {
        AddClassMethod::Merged => {
            let missing: Vec<&String> = (0..old.len())
                .filter(|&c| !has_class(&train_set, c))
                .map(|c| &classes[c])
                .collect();
            if !missing.is_empty() {
                return Err(TrainError::Invalid(format!(
                    "--method merged needs training data of the old classes too; none for {missing:?} (use --method distill when the old data is gone)"
                )));
            }
        }
        AddClassMethod::Naive => {}
        AddClassMethod::Distill => {
            match spec.model.task {
                Task::Classifier => {
                    let onnx = config.onnx_file.clone().ok_or_else(|| {
                        TrainError::Invalid(format!("{}: no onnx-file", config_path.display()))
                    })?;
                    options.distill = Some(Distillation {
                        teacher_onnx: onnx,
                        old_classes: old.len(),
                        weight: DISTILL_WEIGHT,
                        temperature: DISTILL_TEMPERATURE,
                    });
                }
                Task::CenterNet | Task::DetectNetV2 => {
                    let added = pseudo_label_old_classes(
                        &bundle,
                        &mut train_set,
                        old.len(),
                        config.class_attrs.all.pre_cluster_threshold,
                    )?;
                    tracing::info!("the old model labelled {added} objects of its classes on the training images");
                }
            }
        }
    }
    train_on(&spec, &options, train_set, val_set)
}

fn has_class(set: &Dataset, class: usize) -> bool {
    set.samples
        .iter()
        .any(|s| s.label == Some(class) || s.objects.iter().any(|o| o.class == class))
}

/// Adds the teacher's detections of its classes (ids below `old_classes`, at its own
/// threshold) to every training image; returns how many objects were added.
fn pseudo_label_old_classes(
    bundle: &std::path::Path,
    set: &mut Dataset,
    old_classes: usize,
    threshold: f32,
) -> Result<usize, TrainError> {
    let mut teacher = BundleRunner::open(bundle, 0)?;
    let mut added = 0;
    for sample in &mut set.samples {
        let (_, result) = teacher.run_file(&sample.image)?;
        let InferResult::Objects(objects) = result else {
            return Err(TrainError::Invalid(format!(
                "{}: the old model is not a detector",
                bundle.display()
            )));
        };
        for o in objects {
            if (o.class_id as usize) < old_classes && o.confidence >= threshold {
                let b = o.bbox;
                sample.objects.push(Object {
                    class: o.class_id as usize,
                    bbox: [b.left, b.top, b.left + b.width, b.top + b.height],
                    truncated: 0.0,
                    occluded: 0,
                });
                added += 1;
            }
        }
    }
    Ok(added)
}
