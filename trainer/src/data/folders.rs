//! Classification sets as class folders: `dir/<class name>/*.{png,jpg,jpeg}`.

use std::path::Path;

use super::{
    image_files, io_error, resolve, ClassMapping, DataError, Dataset, RawLabel, RawSample,
};

/// Reads one sub-folder per class (folder name = class name; files of other types and hidden
/// folders are ignored). Without target classes in `classes`, the classes are the (mapped)
/// folder names, sorted.
pub fn load(dir: &Path, classes: &ClassMapping) -> Result<Dataset, DataError> {
    let mut folders = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error("reading class folders in", dir))? {
        let path = entry
            .map_err(io_error("reading class folders in", dir))?
            .path();
        let hidden = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if path.is_dir() && !hidden {
            folders.push(path);
        }
    }
    folders.sort();
    let what = format!("class-folder set {}", dir.display());
    if folders.is_empty() {
        return Err(DataError::Empty {
            what,
            reason: "no class sub-folders".into(),
        });
    }
    let mut raw = Vec::new();
    let mut own = Vec::new();
    for folder in &folders {
        let name = folder
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let images = image_files(folder)?;
        if images.is_empty() {
            return Err(DataError::Empty {
                what: format!("class folder {}", folder.display()),
                reason: "no .png / .jpg images".into(),
            });
        }
        own.push(classes.target(&name).to_string());
        for image in images {
            raw.push(RawSample {
                label: Some(RawLabel {
                    name: name.clone(),
                    place: folder.display().to_string(),
                }),
                image,
                objects: Vec::new(),
            });
        }
    }
    own.sort();
    own.dedup();
    resolve(raw, &own, classes, &what)
}
