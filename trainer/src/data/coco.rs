//! COCO instances json: `images` (`id`, `file_name`), `annotations` (`image_id`,
//! `category_id`, `bbox` = `[x, y, width, height]` in pixels, optional `iscrowd`),
//! `categories` (`id`, `name`).

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use super::{io_error, resolve, ClassMapping, DataError, Dataset, RawLabel, RawObject, RawSample};

/// Reads a COCO json; `images` is the folder `file_name`s are relative to. Crowd annotations
/// (`iscrowd = 1`) are skipped; images without annotations are background samples. Without
/// target classes in `classes`, the classes are the categories in `categories` order (mapped).
pub fn load(json: &Path, images: &Path, classes: &ClassMapping) -> Result<Dataset, DataError> {
    let text = std::fs::read_to_string(json).map_err(io_error("reading", json))?;
    let root: Value = serde_json::from_str(&text).map_err(|e| DataError::Coco {
        file: json.to_path_buf(),
        json_path: format!("line {} column {}", e.line(), e.column()),
        reason: format!("not valid JSON: {e}"),
    })?;
    let error = |json_path: String, reason: String| DataError::Coco {
        file: json.to_path_buf(),
        json_path,
        reason,
    };
    let array = |key: &str| -> Result<&Vec<Value>, DataError> {
        root.get(key)
            .and_then(Value::as_array)
            .ok_or_else(|| error(format!("$.{key}"), "missing or not an array".into()))
    };
    let integer = |entry: &Value, path: &str, key: &str| -> Result<i64, DataError> {
        entry
            .get(key)
            .and_then(Value::as_i64)
            .ok_or_else(|| error(format!("{path}.{key}"), "missing or not an integer".into()))
    };

    let mut categories: HashMap<i64, String> = HashMap::new();
    let mut category_order = Vec::new();
    for (i, entry) in array("categories")?.iter().enumerate() {
        let path = format!("$.categories[{i}]");
        let id = integer(entry, &path, "id")?;
        let name = entry
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| error(format!("{path}.name"), "missing or not a string".into()))?;
        if categories.insert(id, name.to_string()).is_some() {
            return Err(error(
                format!("{path}.id"),
                format!("category id {id} is used twice"),
            ));
        }
        category_order.push(name.to_string());
    }

    let mut samples: Vec<RawSample> = Vec::new();
    let mut by_id: HashMap<i64, usize> = HashMap::new();
    for (i, entry) in array("images")?.iter().enumerate() {
        let path = format!("$.images[{i}]");
        let id = integer(entry, &path, "id")?;
        let file_name = entry
            .get("file_name")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                error(
                    format!("{path}.file_name"),
                    "missing or not a string".into(),
                )
            })?;
        let image = images.join(file_name);
        if !image.is_file() {
            return Err(DataError::MissingImage {
                place: format!("{} at {path}.file_name", json.display()),
                image,
            });
        }
        if by_id.insert(id, samples.len()).is_some() {
            return Err(error(
                format!("{path}.id"),
                format!("image id {id} is used twice"),
            ));
        }
        samples.push(RawSample {
            image,
            objects: Vec::new(),
            label: None,
        });
    }

    for (i, entry) in array("annotations")?.iter().enumerate() {
        let path = format!("$.annotations[{i}]");
        let image_id = integer(entry, &path, "image_id")?;
        let category_id = integer(entry, &path, "category_id")?;
        let crowd = entry.get("iscrowd").and_then(Value::as_i64).unwrap_or(0) != 0;
        let sample = *by_id.get(&image_id).ok_or_else(|| {
            error(
                format!("{path}.image_id"),
                format!("no image has id {image_id}"),
            )
        })?;
        let name = categories.get(&category_id).ok_or_else(|| {
            error(
                format!("{path}.category_id"),
                format!("no category has id {category_id}"),
            )
        })?;
        let bbox: Vec<f32> = entry
            .get("bbox")
            .and_then(Value::as_array)
            .map(|b| {
                b.iter()
                    .filter_map(Value::as_f64)
                    .map(|v| v as f32)
                    .collect()
            })
            .unwrap_or_default();
        if bbox.len() != 4 || bbox.iter().any(|v| !v.is_finite()) {
            return Err(error(
                format!("{path}.bbox"),
                "expected [x, y, width, height] (four numbers)".into(),
            ));
        }
        if crowd {
            continue;
        }
        let (x, y, w, h) = (bbox[0], bbox[1], bbox[2], bbox[3]);
        if !(w > 0.0 && h > 0.0) {
            return Err(error(
                format!("{path}.bbox"),
                format!("box [{x}, {y}, {w}, {h}] is empty (width and height must be > 0)"),
            ));
        }
        samples[sample].objects.push(RawObject {
            label: RawLabel {
                name: name.clone(),
                place: format!("{} at {path}", json.display()),
            },
            bbox: [x, y, x + w, y + h],
            truncated: 0.0,
            occluded: 0,
        });
    }
    if samples.is_empty() {
        return Err(DataError::Empty {
            what: format!("COCO set {}", json.display()),
            reason: "$.images is empty".into(),
        });
    }
    resolve(
        samples,
        &category_order,
        classes,
        &format!("COCO set {}", json.display()),
    )
}
