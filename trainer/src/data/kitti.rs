//! KITTI object detection layout: `image_2/NAME.{png,jpg}` and `label_2/NAME.txt`, one object
//! per line: `type truncated occluded alpha x1 y1 x2 y2 h w l x y z rotation_y [score]`
//! (15 fields, 16 with a score), boxes in image pixels.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{
    image_files, io_error, resolve, ClassMapping, DataError, Dataset, Object, RawLabel, RawObject,
    RawSample,
};

pub const IMAGE_DIR: &str = "image_2";
pub const LABEL_DIR: &str = "label_2";

/// KITTI's "ignore this region" class; its lines are skipped.
pub const DONT_CARE: &str = "DontCare";

/// Reads a KITTI folder (`dir/image_2`, `dir/label_2`). Every label file needs an image of the
/// same name; an empty label file is an image without objects. `DontCare` lines are skipped.
/// Without target classes in `classes`, the classes are the (mapped) names found, sorted.
pub fn load(dir: &Path, classes: &ClassMapping) -> Result<Dataset, DataError> {
    let label_dir = dir.join(LABEL_DIR);
    let image_dir = dir.join(IMAGE_DIR);
    for folder in [&label_dir, &image_dir] {
        if !folder.is_dir() {
            return Err(DataError::Io {
                what: "KITTI folder",
                path: folder.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "not a folder (a KITTI set has image_2/ and label_2/)",
                ),
            });
        }
    }
    let images: HashMap<String, PathBuf> = image_files(&image_dir)?
        .into_iter()
        .filter_map(|p| Some((p.file_stem()?.to_string_lossy().into_owned(), p)))
        .collect();
    let mut label_files = Vec::new();
    for entry in std::fs::read_dir(&label_dir).map_err(io_error("reading folder", &label_dir))? {
        let path = entry
            .map_err(io_error("reading folder", &label_dir))?
            .path();
        if path.extension().is_some_and(|e| e == "txt") {
            label_files.push(path);
        }
    }
    label_files.sort();
    if label_files.is_empty() {
        return Err(DataError::Empty {
            what: format!("KITTI set {}", dir.display()),
            reason: format!("no .txt label files in {}", label_dir.display()),
        });
    }
    let mut raw = Vec::with_capacity(label_files.len());
    let mut names: Vec<String> = Vec::new();
    for label_file in label_files {
        let stem = label_file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let image = images
            .get(&stem)
            .cloned()
            .ok_or_else(|| DataError::MissingImage {
                place: label_file.display().to_string(),
                image: image_dir.join(format!("{stem}.{{png,jpg,jpeg}}")),
            })?;
        let text =
            std::fs::read_to_string(&label_file).map_err(io_error("reading", &label_file))?;
        let mut objects = Vec::new();
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let object = parse_line(line, &label_file, index + 1)?;
            if object.label.name == DONT_CARE {
                continue;
            }
            if !names.contains(&object.label.name) {
                names.push(object.label.name.clone());
            }
            objects.push(object);
        }
        raw.push(RawSample {
            image,
            objects,
            label: None,
        });
    }
    let mut own: Vec<String> = names
        .iter()
        .map(|n| classes.target(n).to_string())
        .collect();
    own.sort();
    own.dedup();
    resolve(raw, &own, classes, &format!("KITTI set {}", dir.display()))
}

fn parse_line(line: &str, file: &Path, line_no: usize) -> Result<RawObject, DataError> {
    let error = |reason: String| DataError::Kitti {
        file: file.to_path_buf(),
        line: line_no,
        reason,
    };
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() != 15 && fields.len() != 16 {
        return Err(error(format!(
            "expected 15 fields (type truncated occluded alpha x1 y1 x2 y2 h w l x y z rotation_y) \
             or 16 with a score, got {}",
            fields.len()
        )));
    }
    const NAMES: [&str; 16] = [
        "type",
        "truncated",
        "occluded",
        "alpha",
        "x1",
        "y1",
        "x2",
        "y2",
        "h",
        "w",
        "l",
        "x",
        "y",
        "z",
        "rotation_y",
        "score",
    ];
    let mut numbers = [0f32; 16];
    for (i, field) in fields.iter().enumerate().skip(1) {
        numbers[i] = field
            .parse::<f32>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| {
                error(format!(
                    "field {} ({}) is \"{field}\", not a number",
                    i + 1,
                    NAMES[i]
                ))
            })?;
    }
    let occluded = numbers[2];
    if !(occluded.fract() == 0.0 && (0.0..=3.0).contains(&occluded)) {
        return Err(error(format!(
            "field 3 (occluded) is {occluded}, expected 0, 1, 2 or 3"
        )));
    }
    let bbox = [numbers[4], numbers[5], numbers[6], numbers[7]];
    if fields[0] != DONT_CARE && !(bbox[2] > bbox[0] && bbox[3] > bbox[1]) {
        return Err(error(format!(
            "box x1={} y1={} x2={} y2={} is empty (need x2 > x1 and y2 > y1)",
            bbox[0], bbox[1], bbox[2], bbox[3]
        )));
    }
    Ok(RawObject {
        label: RawLabel {
            name: fields[0].to_string(),
            place: format!("{}:{line_no}", file.display()),
        },
        bbox,
        truncated: numbers[1],
        occluded: occluded as u8,
    })
}

/// One KITTI label line for `object` (class name from `classes`), 3-D fields zero; with
/// `score`, a 16th field.
pub fn label_line(object: &Object, classes: &[String], score: Option<f32>) -> String {
    let name = classes
        .get(object.class)
        .map(|c| c.replace(char::is_whitespace, "_"))
        .unwrap_or_else(|| object.class.to_string());
    let [x1, y1, x2, y2] = object.bbox;
    let mut line = format!(
        "{name} {:.2} {} 0.00 {x1:.2} {y1:.2} {x2:.2} {y2:.2} 0.00 0.00 0.00 0.00 0.00 0.00 0.00",
        object.truncated, object.occluded
    );
    if let Some(score) = score {
        let _ = write!(line, " {score:.4}");
    }
    line
}

/// The image to put into a KITTI set.
pub enum KittiImage<'a> {
    /// Copied as is (its extension is kept).
    File(&'a Path),
    /// Encoded as PNG.
    Rgb(&'a image::RgbImage),
}

/// Writes one sample into the KITTI set at `dir`: `image_2/<stem>.<ext>` and
/// `label_2/<stem>.txt` (an empty file for no objects), each written atomically. `scores`, when
/// given, holds one score per object (a 16th field). Returns the image's path in the set.
pub fn write(
    dir: &Path,
    stem: &str,
    image: KittiImage,
    objects: &[Object],
    classes: &[String],
    scores: Option<&[f32]>,
) -> Result<PathBuf, DataError> {
    if stem.is_empty() || stem.contains(['/', '\\']) {
        return Err(DataError::Invalid(format!(
            "KITTI sample name \"{stem}\" is not a file name"
        )));
    }
    let image_path = match image {
        KittiImage::File(source) => {
            let ext = source
                .extension()
                .map(|e| e.to_string_lossy().to_ascii_lowercase())
                .unwrap_or_else(|| "png".into());
            let bytes = std::fs::read(source).map_err(io_error("reading", source))?;
            let path = dir.join(IMAGE_DIR).join(format!("{stem}.{ext}"));
            crate::fsutil::write_atomic(&path, &bytes)?;
            path
        }
        KittiImage::Rgb(rgb) => {
            let path = dir.join(IMAGE_DIR).join(format!("{stem}.png"));
            let mut bytes = Vec::new();
            rgb.write_to(
                &mut std::io::Cursor::new(&mut bytes),
                image::ImageFormat::Png,
            )
            .map_err(|e| DataError::Image {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            crate::fsutil::write_atomic(&path, &bytes)?;
            path
        }
    };
    let mut text = String::new();
    for (i, object) in objects.iter().enumerate() {
        text.push_str(&label_line(
            object,
            classes,
            scores.and_then(|s| s.get(i).copied()),
        ));
        text.push('\n');
    }
    let label_path = dir.join(LABEL_DIR).join(format!("{stem}.txt"));
    crate::fsutil::write_atomic(&label_path, text.as_bytes())?;
    Ok(image_path)
}
