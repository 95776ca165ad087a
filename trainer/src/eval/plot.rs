//! PNG plots: training curves, per-class precision-recall curves, confusion matrices and
//! labelled scatter plots, drawn with `nvtl_core::draw` (5x7 bitmap font, anti-aliased lines)
//! and written with the `image` crate. Files are written to a temporary name and renamed, so a
//! half-written plot never appears under the requested path.
//!
//! Layout shared by the line plots: white background, title on top, a legend row under it
//! (everything above [`PLOT_TOP`] px), plot panels below with grid lines, ticks and numbers.

use std::path::Path;

use nvtl_core::draw::{class_color, Canvas, PackedRgbFormat};
use serde::{Deserialize, Serialize};

use super::detection::ClassAp;
use super::EvalError;

/// Size of training-curve, PR-curve and scatter plots, in pixels.
pub const PLOT_WIDTH: u32 = 1000;
pub const PLOT_HEIGHT: u32 = 620;
/// Title and legend live above this row; plot panels below it.
pub const PLOT_TOP: u32 = 84;

const WHITE: [u8; 4] = [255, 255, 255, 255];
const BLACK: [u8; 4] = [0, 0, 0, 255];
const GRID: [u8; 4] = [225, 225, 225, 255];
/// Train loss, validation loss, metric.
pub const TRAIN_COLOR: [u8; 4] = [31, 119, 180, 255];
pub const VAL_COLOR: [u8; 4] = [255, 127, 14, 255];
pub const METRIC_COLOR: [u8; 4] = [44, 160, 44, 255];

/// One epoch of training history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub val_loss: Option<f64>,
    /// Validation metric (accuracy, mAP, ...), named by `metric_name`.
    pub metric: Option<f64>,
    pub metric_name: String,
}

/// An RGB picture being drawn.
struct Picture {
    data: Vec<u8>,
    width: u32,
    height: u32,
}

impl Picture {
    fn new(width: u32, height: u32) -> Picture {
        Picture {
            data: vec![255; width as usize * height as usize * 3],
            width,
            height,
        }
    }

    fn canvas(&mut self) -> Canvas<'_> {
        Canvas {
            data: &mut self.data,
            width: self.width as usize,
            height: self.height as usize,
            stride: self.width as usize * 3,
            format: PackedRgbFormat::Rgb,
        }
    }

    fn text(&mut self, x: i32, y: i32, text: &str, scale: u32) -> (u32, u32) {
        self.canvas().draw_text(x, y, text, scale, BLACK, None)
    }

    /// Text centred on `x`.
    fn text_centred(&mut self, x: i32, y: i32, text: &str, scale: u32) {
        let (w, _) = Canvas::text_size(text, scale);
        self.text(x - w as i32 / 2, y, text, scale);
    }

    fn save(self, path: &Path) -> Result<(), EvalError> {
        let io = |source| EvalError::Io {
            path: path.to_path_buf(),
            source,
        };
        let image = image::RgbImage::from_raw(self.width, self.height, self.data).ok_or(
            EvalError::Png {
                path: path.to_path_buf(),
                reason: "buffer does not match the picture size".into(),
            },
        )?;
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".partial");
        let tmp = std::path::PathBuf::from(tmp);
        let file = std::fs::File::create(&tmp).map_err(io)?;
        let mut writer = std::io::BufWriter::new(file);
        let encoded = image
            .write_to(&mut writer, image::ImageFormat::Png)
            .map_err(|e| EvalError::Png {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })
            .and_then(|()| {
                use std::io::Write as _;
                writer.flush().map_err(io)
            });
        if let Err(e) = encoded {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io(e)
        })
    }
}

/// About `target` round tick values (steps of 1, 2 or 5 times a power of ten) covering
/// `min..=max`, and the step.
fn nice_ticks(min: f64, max: f64, target: usize) -> (Vec<f64>, f64) {
    let span = (max - min).max(f64::MIN_POSITIVE);
    let raw = span / target.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let first = (min / step).ceil() as i64;
    let last = (max / step).floor() as i64;
    let ticks = (first..=last).map(|i| i as f64 * step).collect();
    (ticks, step)
}

/// `value` with as many decimals as `step` needs.
fn format_tick(value: f64, step: f64) -> String {
    let decimals = (-step.log10().floor()).clamp(0.0, 6.0) as usize;
    let v = if value.abs() < step * 1e-9 {
        0.0
    } else {
        value
    };
    format!("{v:.decimals$}")
}

/// A data range padded so that a flat series still has a visible span.
fn padded_range(values: impl Iterator<Item = f64>, pad: f64) -> Option<(f64, f64)> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        return None;
    }
    let span = hi - lo;
    if span <= f64::EPSILON * hi.abs().max(1.0) {
        let d = if hi == 0.0 { 1.0 } else { hi.abs() * 0.1 };
        return Some((lo - d, hi + d));
    }
    Some((lo - span * pad, hi + span * pad))
}

/// A plot panel: a pixel rectangle and the data ranges it shows.
struct Axes {
    left: f64,
    top: f64,
    width: f64,
    height: f64,
    x: (f64, f64),
    y: (f64, f64),
}

impl Axes {
    fn px(&self, x: f64) -> f32 {
        (self.left + (x - self.x.0) / (self.x.1 - self.x.0) * self.width) as f32
    }
    fn py(&self, y: f64) -> f32 {
        (self.top + self.height - (y - self.y.0) / (self.y.1 - self.y.0) * self.height) as f32
    }

    /// Grid, frame, ticks with numbers, axis labels and the panel title.
    fn draw(&self, pic: &mut Picture, title: &str, x_label: &str, y_label: &str) {
        let (l, t, w, h) = (self.left, self.top, self.width, self.height);
        let (xt, xs) = nice_ticks(self.x.0, self.x.1, 8);
        let (yt, ys) = nice_ticks(self.y.0, self.y.1, 6);
        let mut widest = 0;
        for &v in &xt {
            let x = self.px(v);
            pic.canvas()
                .draw_line(x, t as f32, x, (t + h) as f32, 1.0, GRID);
            pic.canvas()
                .draw_line(x, (t + h) as f32, x, (t + h + 5.0) as f32, 1.0, BLACK);
            pic.text_centred(x as i32, (t + h + 7.0) as i32, &format_tick(v, xs), 1);
        }
        for &v in &yt {
            let y = self.py(v);
            pic.canvas()
                .draw_line(l as f32, y, (l + w) as f32, y, 1.0, GRID);
            pic.canvas()
                .draw_line((l - 5.0) as f32, y, l as f32, y, 1.0, BLACK);
            let label = format_tick(v, ys);
            let (tw, _) = Canvas::text_size(&label, 1);
            widest = widest.max(tw);
            pic.text((l - 7.0) as i32 - tw as i32, y as i32 - 4, &label, 1);
        }
        let c = |v: f64| v as f32;
        let mut canvas = pic.canvas();
        canvas.draw_line(c(l), c(t), c(l + w), c(t), 1.0, BLACK);
        canvas.draw_line(c(l), c(t + h), c(l + w), c(t + h), 1.0, BLACK);
        canvas.draw_line(c(l), c(t), c(l), c(t + h), 1.0, BLACK);
        canvas.draw_line(c(l + w), c(t), c(l + w), c(t + h), 1.0, BLACK);
        pic.text_centred((l + w / 2.0) as i32, (t + h + 20.0) as i32, x_label, 2);
        let (lw, _) = Canvas::text_size(y_label, 2);
        pic.canvas().draw_text_rotated(
            (l - 14.0) as i32 - widest as i32 - 20,
            (t + h / 2.0) as i32 - lw as i32 / 2,
            y_label,
            2,
            BLACK,
            None,
        );
        pic.text_centred((l + w / 2.0) as i32, (t - 22.0) as i32, title, 2);
    }

    /// Polyline through the finite points, in data coordinates.
    fn series(&self, pic: &mut Picture, points: &[(f64, f64)], color: [u8; 4]) {
        let px: Vec<(f32, f32)> = points
            .iter()
            .map(|&(x, y)| {
                if x.is_finite() && y.is_finite() {
                    (self.px(x), self.py(y))
                } else {
                    (f32::NAN, f32::NAN)
                }
            })
            .collect();
        pic.canvas().draw_polyline(&px, 2.5, color);
        if px.iter().filter(|p| p.0.is_finite()).count() <= 30 {
            for &(x, y) in px.iter().filter(|p| p.0.is_finite()) {
                pic.canvas()
                    .fill_rect(x as i32 - 2, y as i32 - 2, 5, 5, color);
            }
        }
    }
}

/// A legend row: a short line of each colour and its text, left to right from `x`, wrapping
/// at `max_x`.
fn legend_row(pic: &mut Picture, x: i32, y: i32, max_x: i32, entries: &[(String, [u8; 4])]) {
    let (mut cx, mut cy) = (x, y);
    for (text, color) in entries {
        let (tw, _) = Canvas::text_size(text, 2);
        let need = 34 + tw as i32 + 24;
        if cx + need > max_x && cx > x {
            cx = x;
            cy += 22;
        }
        pic.canvas().draw_line(
            cx as f32,
            cy as f32 + 9.0,
            cx as f32 + 28.0,
            cy as f32 + 9.0,
            3.0,
            *color,
        );
        pic.text(cx + 34, cy, text, 2);
        cx += need;
    }
}

/// Training history: loss per epoch (train, and validation where given) in the left panel,
/// the metric per epoch in the right panel (when any epoch has one); title, legend, axes
/// with ticks and numbers. [`PLOT_WIDTH`] x [`PLOT_HEIGHT`].
pub fn training_curves(path: &Path, epochs: &[EpochRecord]) -> Result<(), EvalError> {
    let losses = epochs
        .iter()
        .flat_map(|e| [Some(e.train_loss), e.val_loss])
        .flatten();
    let Some(loss_range) = padded_range(losses, 0.05) else {
        return Err(EvalError::NothingToPlot(format!(
            "{}: no finite loss in {} epochs",
            path.display(),
            epochs.len()
        )));
    };
    let x_range = padded_range(epochs.iter().map(|e| e.epoch as f64), 0.03).unwrap_or((0.0, 1.0));
    let metric_name = epochs
        .iter()
        .find(|e| e.metric.is_some())
        .map(|e| e.metric_name.clone());
    let metric_range = padded_range(epochs.iter().filter_map(|e| e.metric), 0.05);

    let mut pic = Picture::new(PLOT_WIDTH, PLOT_HEIGHT);
    pic.text_centred(PLOT_WIDTH as i32 / 2, 8, "Training", 3);
    let mut legend = vec![("train loss".to_string(), TRAIN_COLOR)];
    if epochs.iter().any(|e| e.val_loss.is_some()) {
        legend.push(("validation loss".to_string(), VAL_COLOR));
    }
    if let Some(name) = &metric_name {
        legend.push((name.clone(), METRIC_COLOR));
    }
    legend_row(&mut pic, 90, 40, PLOT_WIDTH as i32 - 20, &legend);

    let panel_top = PLOT_TOP as f64 + 30.0;
    let panel_height = PLOT_HEIGHT as f64 - panel_top - 60.0;
    let two = metric_range.is_some();
    let panel_width = if two {
        380.0
    } else {
        PLOT_WIDTH as f64 - 140.0
    };
    let loss_axes = Axes {
        left: 100.0,
        top: panel_top,
        width: panel_width,
        height: panel_height,
        x: x_range,
        y: loss_range,
    };
    loss_axes.draw(&mut pic, "loss", "epoch", "loss");
    let train: Vec<(f64, f64)> = epochs
        .iter()
        .map(|e| (e.epoch as f64, e.train_loss))
        .collect();
    loss_axes.series(&mut pic, &train, TRAIN_COLOR);
    let val: Vec<(f64, f64)> = epochs
        .iter()
        .map(|e| (e.epoch as f64, e.val_loss.unwrap_or(f64::NAN)))
        .collect();
    loss_axes.series(&mut pic, &val, VAL_COLOR);

    if let (Some(range), Some(name)) = (metric_range, metric_name) {
        let metric_axes = Axes {
            left: 100.0 + panel_width + 110.0,
            top: panel_top,
            width: panel_width,
            height: panel_height,
            x: x_range,
            y: range,
        };
        metric_axes.draw(&mut pic, &name, "epoch", &name);
        let metric: Vec<(f64, f64)> = epochs
            .iter()
            .map(|e| (e.epoch as f64, e.metric.unwrap_or(f64::NAN)))
            .collect();
        metric_axes.series(&mut pic, &metric, METRIC_COLOR);
    }
    pic.save(path)
}

/// Precision-recall curves, one per class with ground truth and a curve, coloured by
/// `nvtl_core::draw::class_color(class)`; the legend on the right lists each class's name
/// (`names[class]`, else `class N`; up to 17 characters) with its AP50, best first (as many
/// as fit, then "+N more").
/// [`PLOT_WIDTH`] x [`PLOT_HEIGHT`]; the plot area spans x 90..650.
pub fn pr_curves(path: &Path, per_class: &[ClassAp], names: &[String]) -> Result<(), EvalError> {
    let mut drawn: Vec<&ClassAp> = per_class
        .iter()
        .filter(|c| c.gt_count > 0 && !c.recall.is_empty() && !c.precision.is_empty())
        .collect();
    if drawn.is_empty() {
        return Err(EvalError::NothingToPlot(format!(
            "{}: no class has both ground truth and detections",
            path.display()
        )));
    }
    drawn.sort_by(|a, b| {
        b.ap50
            .partial_cmp(&a.ap50)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut pic = Picture::new(PLOT_WIDTH, PLOT_HEIGHT);
    pic.text_centred(PLOT_WIDTH as i32 / 2, 8, "Precision-recall", 3);
    let axes = Axes {
        left: 90.0,
        top: PLOT_TOP as f64 + 30.0,
        width: 560.0,
        height: PLOT_HEIGHT as f64 - PLOT_TOP as f64 - 90.0,
        x: (0.0, 1.0),
        y: (0.0, 1.02),
    };
    let mean50 = drawn.iter().map(|c| c.ap50).sum::<f64>() / drawn.len() as f64;
    axes.draw(
        &mut pic,
        &format!("mean AP50 {mean50:.3} over {} classes", drawn.len()),
        "recall",
        "precision",
    );
    // Worst first, so the best curves end up on top.
    for class in drawn.iter().rev() {
        // From (0, first precision) so each curve starts at the left edge.
        let mut points = Vec::with_capacity(class.recall.len() + 1);
        points.push((0.0, class.precision[0]));
        points.extend(
            class
                .recall
                .iter()
                .copied()
                .zip(class.precision.iter().copied()),
        );
        axes.series(&mut pic, &points, class_color(class.class as u32));
    }
    let (x, mut y) = (680, PLOT_TOP as i32 + 30);
    let rows = ((PLOT_HEIGHT as i32 - y - 30) / 18) as usize;
    let shown = if drawn.len() > rows {
        rows - 1
    } else {
        drawn.len()
    };
    for class in &drawn[..shown] {
        let name = names
            .get(class.class)
            .cloned()
            .unwrap_or_else(|| format!("class {}", class.class));
        let short: String = name.chars().take(17).collect();
        pic.canvas().draw_line(
            x as f32,
            y as f32 + 7.0,
            x as f32 + 24.0,
            y as f32 + 7.0,
            3.0,
            class_color(class.class as u32),
        );
        pic.text(x + 30, y, &format!("{short} {:.3}", class.ap50), 2);
        y += 18;
    }
    if shown < drawn.len() {
        pic.text(x + 30, y, &format!("+{} more", drawn.len() - shown), 2);
    }
    pic.save(path)
}

/// Side of one confusion-matrix cell in pixels for `classes` classes.
fn cell_size(classes: usize) -> u32 {
    (720 / classes.max(1) as u32).clamp(14, 60)
}

/// Room for class names left of and above the cells, and around.
const MATRIX_LABEL: u32 = 150;
const MATRIX_MARGIN: u32 = 40;
const MATRIX_TITLE: u32 = 50;

/// The most classes [`confusion_matrix`] draws (then about 3000 px square).
pub const MATRIX_MAX_CLASSES: usize = 200;

/// The size in pixels of [`confusion_matrix`]'s picture for `classes` classes.
pub fn confusion_matrix_size(classes: usize) -> (u32, u32) {
    let side = cell_size(classes) * classes as u32;
    (
        MATRIX_LABEL + side + MATRIX_MARGIN,
        MATRIX_TITLE + MATRIX_LABEL + side + MATRIX_MARGIN,
    )
}

/// A confusion matrix heat map: row = true class, column = predicted class; cell colour from
/// white (0) to dark blue (the row's whole support), the count written in each cell that is
/// large enough; class names (from `names`, else the index) along both axes.
/// Size: [`confusion_matrix_size`]. Errors: an empty or non-square matrix, or more than
/// [`MATRIX_MAX_CLASSES`] classes.
pub fn confusion_matrix(
    path: &Path,
    matrix: &[Vec<usize>],
    names: &[String],
) -> Result<(), EvalError> {
    let n = matrix.len();
    if n > MATRIX_MAX_CLASSES {
        return Err(EvalError::NothingToPlot(format!(
            "{}: {n} classes are more than a confusion matrix picture holds ({MATRIX_MAX_CLASSES})",
            path.display()
        )));
    }
    if n == 0 {
        return Err(EvalError::NothingToPlot(format!(
            "{}: empty confusion matrix",
            path.display()
        )));
    }
    if let Some((row, r)) = matrix.iter().enumerate().find(|(_, r)| r.len() != n) {
        return Err(EvalError::BadSample {
            index: row,
            reason: format!("confusion matrix row has {} entries, not {n}", r.len()),
        });
    }
    let (width, height) = confusion_matrix_size(n);
    let cell = cell_size(n) as i32;
    let mut pic = Picture::new(width, height);
    pic.text_centred(width as i32 / 2, 10, "Confusion matrix", 3);
    let left = MATRIX_LABEL as i32;
    let top = (MATRIX_TITLE + MATRIX_LABEL) as i32;
    let name = |c: usize| names.get(c).cloned().unwrap_or_else(|| c.to_string());
    let label_scale = if cell >= 20 { 2 } else { 1 };
    let max_chars = ((MATRIX_LABEL - 30) / (6 * label_scale)) as usize;
    for (t, row) in matrix.iter().enumerate() {
        let support: usize = row.iter().sum();
        for (p, &count) in row.iter().enumerate() {
            let share = if support == 0 {
                0.0
            } else {
                count as f64 / support as f64
            };
            // White to rgb(8, 48, 107).
            let mix = |to: f64| (255.0 + (to - 255.0) * share).round() as u8;
            let color = [mix(8.0), mix(48.0), mix(107.0), 255];
            let (x, y) = (left + p as i32 * cell, top + t as i32 * cell);
            pic.canvas().fill_rect(x, y, cell, cell, color);
            let text = count.to_string();
            let scale = if cell >= 40 { 2 } else { 1 };
            let (tw, th) = Canvas::text_size(&text, scale);
            if (tw as i32) < cell - 2 {
                let ink = if share > 0.5 { WHITE } else { BLACK };
                pic.canvas().draw_text(
                    x + (cell - tw as i32) / 2,
                    y + (cell - th as i32) / 2,
                    &text,
                    scale,
                    ink,
                    None,
                );
            }
        }
        let label: String = name(t).chars().take(max_chars).collect();
        let (tw, th) = Canvas::text_size(&label, label_scale);
        pic.canvas().draw_text(
            left - 6 - tw as i32,
            top + t as i32 * cell + (cell - th as i32) / 2,
            &label,
            label_scale,
            BLACK,
            None,
        );
        pic.canvas().draw_text_rotated(
            left + t as i32 * cell + (cell - th as i32) / 2,
            top - 6 - tw as i32,
            &label,
            label_scale,
            BLACK,
            None,
        );
    }
    let side = cell * n as i32;
    pic.canvas()
        .draw_rect(left - 1, top - 1, side + 2, side + 2, 1, BLACK);
    pic.text_centred(left + side / 2, top + side + 10, "predicted", 2);
    pic.canvas().draw_text_rotated(
        6,
        top + side / 2 - Canvas::text_size("true", 2).0 as i32 / 2,
        "true",
        2,
        BLACK,
        None,
    );
    pic.save(path)
}

/// Labelled points (e.g. accuracy against latency per model): each point a dot in its own
/// colour with its label beside it; axes with ticks and numbers. [`PLOT_WIDTH`] x
/// [`PLOT_HEIGHT`]. Errors: no point with finite coordinates.
pub fn scatter(
    path: &Path,
    points: &[(String, f64, f64)],
    x_label: &str,
    y_label: &str,
    title: &str,
) -> Result<(), EvalError> {
    let finite: Vec<&(String, f64, f64)> = points
        .iter()
        .filter(|(_, x, y)| x.is_finite() && y.is_finite())
        .collect();
    let (Some(xr), Some(yr)) = (
        padded_range(finite.iter().map(|p| p.1), 0.1),
        padded_range(finite.iter().map(|p| p.2), 0.1),
    ) else {
        return Err(EvalError::NothingToPlot(format!(
            "{}: no point with finite coordinates",
            path.display()
        )));
    };
    let mut pic = Picture::new(PLOT_WIDTH, PLOT_HEIGHT);
    pic.text_centred(PLOT_WIDTH as i32 / 2, 8, title, 3);
    let axes = Axes {
        left: 110.0,
        top: PLOT_TOP as f64 + 10.0,
        width: PLOT_WIDTH as f64 - 160.0,
        height: PLOT_HEIGHT as f64 - PLOT_TOP as f64 - 70.0,
        x: xr,
        y: yr,
    };
    axes.draw(&mut pic, "", x_label, y_label);
    for (i, (label, x, y)) in finite.iter().enumerate() {
        let (px, py) = (axes.px(*x) as i32, axes.py(*y) as i32);
        let color = class_color(i as u32);
        pic.canvas().fill_rect(px - 4, py - 4, 9, 9, color);
        pic.canvas().draw_rect(px - 4, py - 4, 9, 9, 1, BLACK);
        // Labels go right of their point unless they would leave the picture.
        let (tw, _) = Canvas::text_size(label, 2);
        let lx = if px + 8 + tw as i32 > PLOT_WIDTH as i32 {
            px - 8 - tw as i32
        } else {
            px + 8
        };
        pic.text(lx, py - 8, label, 2);
    }
    pic.save(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        let (t, s) = nice_ticks(0.0, 1.0, 6);
        assert_eq!(s, 0.2);
        assert_eq!(t.len(), 6);
        let (t, s) = nice_ticks(0.93, 4.1, 8);
        assert_eq!(s, 0.5);
        assert_eq!(t.first().copied(), Some(1.0));
        assert_eq!(format_tick(0.30000000000000004, 0.1), "0.3");
        assert_eq!(format_tick(-1e-17, 0.5), "0.0");
        assert_eq!(format_tick(20.0, 5.0), "20");
        assert_eq!(padded_range([2.0, 2.0].into_iter(), 0.1), Some((1.8, 2.2)));
        assert_eq!(padded_range([f64::NAN].into_iter(), 0.1), None);
    }
}
