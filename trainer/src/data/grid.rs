//! Sprite-sheet datasets: one image holding a grid of equally sized samples, a block of rows
//! per class (opencv's digits.png: 20x20 digits, 100 per row, 5 rows per digit).

use std::path::Path;

use super::{io_error, DataError};

/// Cuts `image` into `cell` = `(width, height)` pixel cells and writes them as PNGs into class
/// folders `out/<class>/<row>_<column>.png` (the cells keep the sheet's colour type), where
/// `class = row / rows_per_class` counts from 0. The image size must be a whole number of
/// cells and its row count a multiple of `rows_per_class`. Returns the number of cells written
/// per class. Every file is written atomically, so a folder never holds a half-written cell.
pub fn grid_to_folders(
    image: &Path,
    cell: (u32, u32),
    rows_per_class: u32,
    out: &Path,
) -> Result<Vec<usize>, DataError> {
    let (cell_w, cell_h) = cell;
    if cell_w == 0 || cell_h == 0 || rows_per_class == 0 {
        return Err(DataError::Invalid(format!(
            "grid {}: cell {cell_w}x{cell_h} and rows per class {rows_per_class} must be positive",
            image.display()
        )));
    }
    let sheet = image::open(image).map_err(|e| DataError::Image {
        path: image.to_path_buf(),
        reason: e.to_string(),
    })?;
    let (width, height) = (sheet.width(), sheet.height());
    if width % cell_w != 0 || height % cell_h != 0 {
        return Err(DataError::Image {
            path: image.to_path_buf(),
            reason: format!("{width}x{height} is not a whole number of {cell_w}x{cell_h} cells"),
        });
    }
    let (columns, rows) = (width / cell_w, height / cell_h);
    if rows % rows_per_class != 0 {
        return Err(DataError::Image {
            path: image.to_path_buf(),
            reason: format!(
                "{rows} rows of cells are not a multiple of {rows_per_class} rows per class"
            ),
        });
    }
    let classes = (rows / rows_per_class) as usize;
    let mut counts = vec![0usize; classes];
    for class in 0..classes {
        let folder = out.join(class.to_string());
        std::fs::create_dir_all(&folder).map_err(io_error("creating", &folder))?;
    }
    for row in 0..rows {
        let class = (row / rows_per_class) as usize;
        for column in 0..columns {
            let cell_image = sheet.crop_imm(column * cell_w, row * cell_h, cell_w, cell_h);
            let path = out
                .join(class.to_string())
                .join(format!("{row:03}_{column:03}.png"));
            let mut bytes = Vec::new();
            cell_image
                .write_to(
                    &mut std::io::Cursor::new(&mut bytes),
                    image::ImageFormat::Png,
                )
                .map_err(|e| DataError::Image {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            crate::fsutil::write_atomic(&path, &bytes)?;
            counts[class] += 1;
        }
    }
    Ok(counts)
}
