//! Pseudo-labels: a teacher bundle detects objects in unlabelled images and its detections of
//! the wanted classes become a KITTI set, the way users bootstrap a dataset for their camera.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use nvtl_core::backend::BackendKind;
use nvtl_core::config::InferConfig;
use nvtl_core::engine::{Engine, InferResult};
use nvtl_core::preprocess::Rect;

use super::batch::read_rgb;
use super::kitti::{self, KittiImage};
use super::{DataError, Object, Progress};
use crate::runner::bundle_config_path;

/// What a pseudo-labelling run wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct PseudoLabelReport {
    /// The KITTI classes, as asked for.
    pub classes: Vec<String>,
    /// Images labelled (each one got a label file, maybe empty).
    pub images: usize,
    /// Objects written per class, in `classes` order.
    pub objects: Vec<usize>,
    /// Images in which the teacher found none of the classes.
    pub empty_images: usize,
}

/// Runs the teacher `bundle` (a bundle folder or its nvinfer config) on each image exactly as
/// nvtlinfer would (the bundle's pre-processing, decoder and clustering), with every class's
/// `pre-cluster-threshold` set to `threshold`, and writes a KITTI set into `out`
/// (`image_2/<stem>.<ext>`, a copy of the image, then `label_2/<stem>.txt` with the detections
/// of `classes`, confidence as the 16th field). `classes` are teacher label names; the KITTI
/// class names are the same. Images must have distinct file stems.
pub fn pseudo_label(
    bundle: &Path,
    images: &[PathBuf],
    classes: &[String],
    threshold: f32,
    out: &Path,
    progress: &dyn Fn(Progress),
) -> Result<PseudoLabelReport, DataError> {
    let teacher_error = |reason: String| DataError::Teacher {
        bundle: bundle.to_path_buf(),
        reason,
    };
    if classes.is_empty() {
        return Err(teacher_error("no classes to label".into()));
    }
    if !(0.0..=1.0).contains(&threshold) {
        return Err(teacher_error(format!(
            "threshold {threshold} is outside [0, 1]"
        )));
    }
    if images.is_empty() {
        return Err(DataError::Empty {
            what: "pseudo-label input".into(),
            reason: "no images".into(),
        });
    }
    let mut stems: HashMap<String, &Path> = HashMap::new();
    for image in images {
        let stem = image
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(other) = stems.insert(stem.clone(), image) {
            return Err(DataError::Invalid(format!(
                "images {} and {} have the same name '{stem}'; KITTI needs one name per image",
                other.display(),
                image.display()
            )));
        }
    }

    let config_path = bundle_config_path(bundle);
    let mut config = InferConfig::from_file(&config_path)
        .map_err(|e| teacher_error(e.to_string()))?
        .config;
    config.class_attrs.all.pre_cluster_threshold = threshold;
    for attrs in config.class_attrs.per_class.values_mut() {
        attrs.pre_cluster_threshold = threshold;
    }
    let (mut engine, _warnings) =
        Engine::load(config, BackendKind::Cpu, 0).map_err(|e| teacher_error(e.to_string()))?;
    let teacher_labels: Vec<String> = match engine.labels() {
        Some(labels) => (0..labels.len() as u32)
            .filter_map(|i| labels.detector_label(i).map(str::to_string))
            .collect(),
        None => return Err(teacher_error("the bundle has no labels file".into())),
    };
    for class in classes {
        if !teacher_labels.contains(class) {
            return Err(DataError::UnknownClass {
                place: format!("teacher {}", bundle.display()),
                class: class.clone(),
                suggestion: crate::spec::closest(class, teacher_labels.iter().map(String::as_str))
                    .map(str::to_string),
                known: teacher_labels.clone(),
            });
        }
    }

    let mut report = PseudoLabelReport {
        classes: classes.to_vec(),
        images: 0,
        objects: vec![0; classes.len()],
        empty_images: 0,
    };
    for (done, image_path) in images.iter().enumerate() {
        let image = read_rgb(image_path)?;
        let (width, height) = (image.width() as usize, image.height() as usize);
        let frame = crate::runner::rgb_frame(&image);
        let results = engine
            .infer_regions(&frame, &[Rect::full(width, height)])
            .map_err(|e| teacher_error(format!("{}: {e}", image_path.display())))?;
        let found = match results.into_iter().next() {
            Some(InferResult::Objects(found)) => found,
            _ => {
                return Err(teacher_error(
                    "the teacher is not a detector (its results are not objects)".into(),
                ))
            }
        };
        let mut objects = Vec::new();
        let mut scores = Vec::new();
        for detection in found {
            if detection.confidence < threshold {
                continue;
            }
            let Some(class) = detection
                .label
                .as_ref()
                .and_then(|label| classes.iter().position(|c| c == label))
            else {
                continue;
            };
            let b = detection.bbox;
            objects.push(Object::new(class, [b.left, b.top, b.right(), b.bottom()]));
            scores.push(detection.confidence);
            report.objects[class] += 1;
        }
        if objects.is_empty() {
            report.empty_images += 1;
        }
        let stem = image_path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        kitti::write(
            out,
            &stem,
            KittiImage::File(image_path),
            &objects,
            classes,
            Some(&scores),
        )?;
        report.images += 1;
        progress(Progress {
            done: done as u64 + 1,
            total: Some(images.len() as u64),
        });
    }
    Ok(report)
}
