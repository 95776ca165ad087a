//! Classifier metrics: accuracy, top-5 accuracy, confusion matrix, per-class precision, recall
//! and F1, and a text table of them.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::EvalError;

/// Precision, recall and F1 of one class (0 where undefined: no prediction or no sample).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    pub class: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Samples whose target is this class.
    pub support: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassificationReport {
    /// Samples evaluated.
    pub samples: usize,
    /// Fraction of samples whose best-scoring class is the target, `0..=1` (0 without samples).
    pub accuracy: f64,
    /// Fraction whose target is among the `min(5, classes)` best-scoring classes.
    pub top5: f64,
    /// `confusion[target][predicted]` = number of samples; `classes` x `classes`.
    pub confusion: Vec<Vec<usize>>,
    pub per_class: Vec<ClassMetrics>,
    /// Unweighted mean of the per-class F1 over classes with samples.
    pub macro_f1: f64,
}

/// Evaluates `scores`, row-major `targets.len()` x `classes` (logits or probabilities: only
/// their order matters), against `targets`. The prediction is the first index of the highest
/// score; in top-k, classes scoring the same as the target count as above it when their index
/// is lower, so top-1 agrees with accuracy.
///
/// Errors: `scores.len() != targets.len() * classes`, a target `>= classes`, a non-finite score.
pub fn evaluate(
    targets: &[usize],
    scores: &[f32],
    classes: usize,
) -> Result<ClassificationReport, EvalError> {
    if classes == 0 || scores.len() != targets.len() * classes {
        return Err(EvalError::BadSample {
            index: 0,
            reason: format!(
                "{} scores do not make {} rows of {classes} classes",
                scores.len(),
                targets.len()
            ),
        });
    }
    let k = classes.min(5);
    let mut top_k_hits = 0usize;
    let mut predicted = Vec::with_capacity(targets.len());
    for (index, (&target, row)) in targets.iter().zip(scores.chunks_exact(classes)).enumerate() {
        if target >= classes {
            return Err(EvalError::BadSample {
                index,
                reason: format!("target class {target} is not below {classes}"),
            });
        }
        if let Some(bad) = row.iter().find(|s| !s.is_finite()) {
            return Err(EvalError::BadSample {
                index,
                reason: format!("score {bad} is not finite"),
            });
        }
        let mut best = 0;
        for (c, &s) in row.iter().enumerate() {
            if s > row[best] {
                best = c;
            }
        }
        predicted.push(best);
        let t = row[target];
        let above = row
            .iter()
            .enumerate()
            .filter(|&(c, &s)| s > t || (s == t && c < target))
            .count();
        if above < k {
            top_k_hits += 1;
        }
    }
    let mut report = from_predictions(targets, &predicted, classes)?;
    report.top5 = if targets.is_empty() {
        0.0
    } else {
        top_k_hits as f64 / targets.len() as f64
    };
    Ok(report)
}

/// Metrics from hard predictions only (`top5` is then the accuracy: nothing ranks below the
/// prediction). Errors: lengths differ, or a class `>= classes`.
pub fn from_predictions(
    targets: &[usize],
    predicted: &[usize],
    classes: usize,
) -> Result<ClassificationReport, EvalError> {
    if targets.len() != predicted.len() {
        return Err(EvalError::BadSample {
            index: targets.len().min(predicted.len()),
            reason: format!(
                "{} targets but {} predictions",
                targets.len(),
                predicted.len()
            ),
        });
    }
    let mut confusion = vec![vec![0usize; classes]; classes];
    for (index, (&t, &p)) in targets.iter().zip(predicted).enumerate() {
        if t >= classes || p >= classes {
            return Err(EvalError::BadSample {
                index,
                reason: format!("target {t} / prediction {p}: classes are 0..{classes}"),
            });
        }
        confusion[t][p] += 1;
    }
    let samples = targets.len();
    let correct: usize = (0..classes).map(|c| confusion[c][c]).sum();
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let per_class: Vec<ClassMetrics> = (0..classes)
        .map(|c| {
            let support: usize = confusion[c].iter().sum();
            let predicted_as: usize = confusion.iter().map(|row| row[c]).sum();
            let precision = ratio(confusion[c][c], predicted_as);
            let recall = ratio(confusion[c][c], support);
            let f1 = if precision + recall > 0.0 {
                2.0 * precision * recall / (precision + recall)
            } else {
                0.0
            };
            ClassMetrics {
                class: c,
                precision,
                recall,
                f1,
                support,
            }
        })
        .collect();
    let with_samples: Vec<f64> = per_class
        .iter()
        .filter(|m| m.support > 0)
        .map(|m| m.f1)
        .collect();
    let accuracy = ratio(correct, samples);
    Ok(ClassificationReport {
        samples,
        accuracy,
        top5: accuracy,
        confusion,
        per_class,
        macro_f1: if with_samples.is_empty() {
            0.0
        } else {
            with_samples.iter().sum::<f64>() / with_samples.len() as f64
        },
    })
}

impl ClassificationReport {
    /// A text table: one row per class (name from `names`, else `class N`) with precision,
    /// recall, F1 and support, then accuracy, top-5 and macro F1.
    pub fn table(&self, names: &[String]) -> String {
        let name = |c: usize| {
            names
                .get(c)
                .cloned()
                .unwrap_or_else(|| format!("class {c}"))
        };
        let width = (0..self.per_class.len())
            .map(|c| name(c).chars().count())
            .chain([5])
            .max()
            .unwrap_or(5);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<width$}  {:>9}  {:>6}  {:>6}  {:>7}",
            "class", "precision", "recall", "f1", "support"
        );
        for m in &self.per_class {
            let _ = writeln!(
                out,
                "{:<width$}  {:>9.4}  {:>6.4}  {:>6.4}  {:>7}",
                name(m.class),
                m.precision,
                m.recall,
                m.f1,
                m.support
            );
        }
        let _ = writeln!(
            out,
            "accuracy {:.4}  top-5 {:.4}  macro F1 {:.4}  ({} samples)",
            self.accuracy, self.top5, self.macro_f1, self.samples
        );
        out
    }
}
