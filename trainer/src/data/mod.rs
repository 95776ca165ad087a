//! Datasets: KITTI, COCO json, class folders, frames from video, pseudo-labels, augmentation.
//!
//! Every loader gives a [`Dataset`]: image paths with their objects (detection, boxes in image
//! pixels) or their label (classification), class indices into [`Dataset::classes`]. Which
//! classes there are and how dataset names map onto them is a [`ClassMapping`] (the spec's
//! `classes`, `class_map` and `ignore_unknown`). Loaders check that every image exists but do
//! not decode images; [`Batcher`] does that while training.

pub mod augment;
pub mod batch;
pub mod coco;
pub mod folders;
pub mod grid;
pub mod kitti;
pub mod pseudo;
pub mod video;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::spec::{DatasetFormat, DatasetSpec};

pub use augment::{AugmentPlan, Augmenter};
pub use batch::{Batch, Batcher};
pub use grid::grid_to_folders;
pub use pseudo::{pseudo_label, PseudoLabelReport};
pub use video::extract_frames;

/// Image file extensions the loaders pick up (the `image` crate's enabled decoders).
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg"];

/// The seed of [`load_from_spec`]'s train/val split: fixed, so that the validation set does not
/// change with the training seed.
pub const SPLIT_SEED: u64 = 0x6e76_746c;

/// Why a dataset (or video, or teacher run) could not be read or written. Messages name the
/// file, and the line (KITTI) or JSON path (COCO) of the bad entry.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {reason}", file.display())]
    Kitti {
        file: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{} at {json_path}: {reason}", file.display())]
    Coco {
        file: PathBuf,
        json_path: String,
        reason: String,
    },
    #[error("{place}: image {} does not exist", image.display())]
    MissingImage { place: String, image: PathBuf },
    #[error("{place}: unknown class \"{class}\"{}; classes: {} (map it with [dataset] class_map or set ignore_unknown = true)",
        suggestion.as_ref().map(|s| format!(" (did you mean \"{s}\"?)")).unwrap_or_default(),
        known.join(", "))]
    UnknownClass {
        place: String,
        class: String,
        suggestion: Option<String>,
        known: Vec<String>,
    },
    #[error("{what} is empty: {reason}")]
    Empty { what: String, reason: String },
    #[error("image {}: {reason}", path.display())]
    Image { path: PathBuf, reason: String },
    #[error("video {}: {reason}", file.display())]
    Video { file: PathBuf, reason: String },
    #[error("teacher {}: {reason}", bundle.display())]
    Teacher { bundle: PathBuf, reason: String },
    #[error("{0}")]
    Invalid(String),
}

impl From<crate::fsutil::IoError> for DataError {
    fn from(e: crate::fsutil::IoError) -> Self {
        DataError::Io {
            what: e.what,
            path: e.path,
            source: e.source,
        }
    }
}

pub(crate) fn io_error<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> DataError + 'a {
    move |source| DataError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// One labelled object of a detection sample.
#[derive(Clone, Debug, PartialEq)]
pub struct Object {
    /// Index into [`Dataset::classes`].
    pub class: usize,
    /// `[x1, y1, x2, y2]` in pixels of the image (or of the network input after batching),
    /// `x1 < x2`, `y1 < y2`.
    pub bbox: [f32; 4],
    /// KITTI truncation, 0 (fully visible) ..= 1.
    pub truncated: f32,
    /// KITTI occlusion: 0 visible, 1 partly, 2 largely occluded, 3 unknown.
    pub occluded: u8,
}

impl Object {
    pub fn new(class: usize, bbox: [f32; 4]) -> Object {
        Object {
            class,
            bbox,
            truncated: 0.0,
            occluded: 0,
        }
    }

    pub fn width(&self) -> f32 {
        self.bbox[2] - self.bbox[0]
    }

    pub fn height(&self) -> f32 {
        self.bbox[3] - self.bbox[1]
    }
}

/// One image and what it shows.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub image: PathBuf,
    /// Detection datasets: the objects (may be empty: a background image).
    pub objects: Vec<Object>,
    /// Classification datasets: the image's class (index into [`Dataset::classes`]).
    pub label: Option<usize>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Dataset {
    /// Class names in output order.
    pub classes: Vec<String>,
    pub samples: Vec<Sample>,
}

impl Dataset {
    /// Objects (detection) or samples (classification) per class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for sample in &self.samples {
            if let Some(label) = sample.label {
                counts[label] += 1;
            }
            for object in &sample.objects {
                counts[object.class] += 1;
            }
        }
        counts
    }

    fn subset(&self, indices: &[usize]) -> Dataset {
        Dataset {
            classes: self.classes.clone(),
            samples: indices.iter().map(|&i| self.samples[i].clone()).collect(),
        }
    }
}

/// Which classes a dataset is read into: the spec's `[dataset] classes`, `class_map` and
/// `ignore_unknown`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClassMapping {
    /// Target classes in output order; `None` = the dataset's own (COCO: category order;
    /// KITTI: names sorted; folders: folder names sorted), after `class_map`.
    pub classes: Option<Vec<String>>,
    /// Dataset class name -> target class name.
    pub class_map: BTreeMap<String, String>,
    /// Drop objects / samples of classes outside `classes` instead of failing.
    pub ignore_unknown: bool,
}

impl ClassMapping {
    /// The dataset's own classes, nothing mapped.
    pub fn own() -> ClassMapping {
        ClassMapping::default()
    }

    /// Exactly these classes, nothing mapped, unknown names are errors.
    pub fn fixed(classes: &[String]) -> ClassMapping {
        ClassMapping {
            classes: Some(classes.to_vec()),
            ..ClassMapping::default()
        }
    }

    pub fn from_spec(spec: &DatasetSpec) -> ClassMapping {
        ClassMapping {
            classes: spec.classes.clone(),
            class_map: spec.class_map.clone(),
            ignore_unknown: spec.ignore_unknown,
        }
    }

    /// The target name of a dataset class name.
    pub fn target<'a>(&'a self, name: &'a str) -> &'a str {
        self.class_map.get(name).map(String::as_str).unwrap_or(name)
    }

    /// The class list for a dataset whose own class names are `own` (in the dataset's order;
    /// mapped names that repeat keep their first place).
    fn class_list(&self, own: &[String]) -> Vec<String> {
        match &self.classes {
            Some(classes) => classes.clone(),
            None => {
                let mut list: Vec<String> = Vec::new();
                for name in own {
                    let target = self.target(name).to_string();
                    if !list.contains(&target) {
                        list.push(target);
                    }
                }
                list
            }
        }
    }
}

/// A class name as read, with the place it was read from (for errors).
pub(crate) struct RawLabel {
    pub name: String,
    pub place: String,
}

/// An object as read, class not yet resolved.
pub(crate) struct RawObject {
    pub label: RawLabel,
    pub bbox: [f32; 4],
    pub truncated: f32,
    pub occluded: u8,
}

pub(crate) struct RawSample {
    pub image: PathBuf,
    pub objects: Vec<RawObject>,
    pub label: Option<RawLabel>,
}

/// Resolves the class names of `raw` samples through `mapping`; `own` is the dataset's own
/// class list (used when the mapping names none). `what` names the dataset in errors.
pub(crate) fn resolve(
    raw: Vec<RawSample>,
    own: &[String],
    mapping: &ClassMapping,
    what: &str,
) -> Result<Dataset, DataError> {
    let classes = mapping.class_list(own);
    let index_of = |label: &RawLabel| -> Result<Option<usize>, DataError> {
        let target = mapping.target(&label.name);
        if let Some(index) = classes.iter().position(|c| c == target) {
            return Ok(Some(index));
        }
        if mapping.ignore_unknown {
            return Ok(None);
        }
        Err(DataError::UnknownClass {
            place: label.place.clone(),
            class: label.name.clone(),
            suggestion: crate::spec::closest(target, classes.iter().map(String::as_str))
                .map(str::to_string),
            known: classes.clone(),
        })
    };
    let mut samples = Vec::with_capacity(raw.len());
    for sample in raw {
        let label = match &sample.label {
            Some(label) => match index_of(label)? {
                Some(index) => Some(index),
                // A classification sample of an ignored class is dropped as a whole.
                None => continue,
            },
            None => None,
        };
        let mut objects = Vec::with_capacity(sample.objects.len());
        for object in &sample.objects {
            if let Some(class) = index_of(&object.label)? {
                objects.push(Object {
                    class,
                    bbox: object.bbox,
                    truncated: object.truncated,
                    occluded: object.occluded,
                });
            }
        }
        samples.push(Sample {
            image: sample.image,
            objects,
            label,
        });
    }
    if samples.is_empty() {
        return Err(DataError::Empty {
            what: what.to_string(),
            reason: "no samples (of the selected classes)".into(),
        });
    }
    if classes.is_empty() {
        return Err(DataError::Empty {
            what: what.to_string(),
            reason: "no classes".into(),
        });
    }
    Ok(Dataset { classes, samples })
}

/// Sorted image files (by extension, see [`IMAGE_EXTENSIONS`]) directly inside `dir`.
pub(crate) fn image_files(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error("reading folder", dir))? {
        let path = entry.map_err(io_error("reading folder", dir))?.path();
        if path.is_file() && is_image(&path) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

pub(crate) fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Splits `dataset` into `(train, val)` with about `val_fraction` of the samples in `val`,
/// chosen by a shuffle seeded with `seed` (the same inputs always give the same split; each
/// half keeps the original order). Classification datasets are split per class (stratified:
/// `round(n_c * val_fraction)` of each class's `n_c` samples); detection datasets as a whole.
pub fn split(dataset: &Dataset, val_fraction: f64, seed: u64) -> (Dataset, Dataset) {
    let fraction = if val_fraction.is_finite() {
        val_fraction.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut groups: BTreeMap<Option<usize>, Vec<usize>> = BTreeMap::new();
    for (index, sample) in dataset.samples.iter().enumerate() {
        groups.entry(sample.label).or_default().push(index);
    }
    let mut val = BTreeSet::new();
    for indices in groups.values_mut() {
        indices.shuffle(&mut rng);
        let take = (indices.len() as f64 * fraction).round() as usize;
        val.extend(indices.iter().take(take).copied());
    }
    let (val_indices, train_indices): (Vec<usize>, Vec<usize>) =
        (0..dataset.samples.len()).partition(|i| val.contains(i));
    (dataset.subset(&train_indices), dataset.subset(&val_indices))
}

/// Loads the spec's training and validation sets. Paths are joined to `base` (a no-op for the
/// absolute paths [`crate::spec::Spec::load`] resolves). The validation set uses the training
/// set's classes; without `val`, `val_split` of the training set is held out with
/// [`SPLIT_SEED`] (`val_split = 0` gives an empty validation set).
pub fn load_from_spec(spec: &DatasetSpec, base: &Path) -> Result<(Dataset, Dataset), DataError> {
    let mapping = ClassMapping::from_spec(spec);
    let load = |path: &Path, mapping: &ClassMapping| -> Result<Dataset, DataError> {
        let path = base.join(path);
        match spec.format {
            DatasetFormat::Kitti => kitti::load(&path, mapping),
            DatasetFormat::Folders => folders::load(&path, mapping),
            DatasetFormat::Coco => {
                let images = match &spec.images {
                    Some(images) => base.join(images),
                    None => path.parent().map(Path::to_path_buf).unwrap_or_default(),
                };
                coco::load(&path, &images, mapping)
            }
        }
    };
    let train = load(&spec.train, &mapping)?;
    match &spec.val {
        Some(val_path) => {
            let val_mapping = ClassMapping {
                classes: Some(train.classes.clone()),
                ..mapping.clone()
            };
            let val = load(val_path, &val_mapping)?;
            Ok((train, val))
        }
        None if spec.val_split > 0.0 => Ok(split(&train, spec.val_split, SPLIT_SEED)),
        None => {
            let val = Dataset {
                classes: train.classes.clone(),
                samples: Vec::new(),
            };
            Ok((train, val))
        }
    }
}

/// Progress of a long data command: `done` of `total` units (frames, images), `total` when
/// known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    pub done: u64,
    pub total: Option<u64>,
}
