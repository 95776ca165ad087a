//! Evaluation: detection mAP (VOC, COCO), classifier accuracy and confusion matrix, plots.

pub mod classification;
pub mod detection;
pub mod plot;

use std::path::PathBuf;

/// Why an evaluation or a plot could not be made.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{kind} {index}: class {class} is not below the number of classes, {classes}")]
    ClassOutOfRange {
        kind: &'static str,
        index: usize,
        class: usize,
        classes: usize,
    },
    #[error("{kind} {index}: box {bbox:?} is not [x1, y1, x2, y2] with finite x1 <= x2, y1 <= y2")]
    BadBox {
        kind: &'static str,
        index: usize,
        bbox: [f32; 4],
    },
    #[error("prediction {index}: score {score} is not finite")]
    BadScore { index: usize, score: f32 },
    #[error("IoU threshold {0} is not in 0..1")]
    BadIou(f64),
    #[error("sample {index}: {reason}")]
    BadSample { index: usize, reason: String },
    #[error("nothing to plot for {0}")]
    NothingToPlot(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: encoding PNG failed: {reason}")]
    Png { path: PathBuf, reason: String },
}
