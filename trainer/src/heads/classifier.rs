//! Classifier head: cross-entropy with label smoothing, on logits or on probabilities.
//!
//! Core's classifier decoder takes either (it softmaxes rows that are not a distribution), so
//! an exported classifier may end in Softmax or not; the loss handles both.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;

use super::HeadError;

/// Probabilities are clamped to at least this before the logarithm.
pub const PROBABILITY_FLOOR: f32 = 1e-7;
/// A row is a probability distribution when its sum is 1 within this (core's decoder rule).
const SUM_TOLERANCE: f32 = 0.01;

/// Mean cross-entropy of `output` `[N, C]` (N >= 1, C >= 2) against class indices `targets` (length N).
///
/// `output` holds logits, or probabilities when `probabilities` is true (a model that ends in
/// Softmax; see [`looks_like_probabilities`]); both give the same loss for the same
/// distribution. With label smoothing `s` in `[0, 1)`, the target distribution is
/// `(1 - s) * one_hot + s / C`. Returns a one-element tensor, in nats.
pub fn loss(
    output: Tensor<2>,
    targets: &[usize],
    label_smoothing: f32,
    probabilities: bool,
) -> Result<Tensor<1>, HeadError> {
    let [n, classes] = output.dims();
    if n != targets.len() {
        return Err(HeadError::BatchSize {
            outputs: n,
            targets: targets.len(),
        });
    }
    if n == 0 || classes < 2 {
        return Err(HeadError::OutputShape {
            output: "classifier",
            shape: vec![n, classes],
            expected: vec![n.max(1), classes.max(2)],
        });
    }
    if !(0.0..1.0).contains(&label_smoothing) {
        return Err(HeadError::Param {
            name: "label_smoothing",
            value: label_smoothing.to_string(),
            reason: "must lie in [0, 1)".into(),
        });
    }
    let mut target_distribution = vec![label_smoothing / classes as f32; n * classes];
    for (index, &class) in targets.iter().enumerate() {
        if class >= classes {
            return Err(HeadError::TargetClass {
                index,
                class,
                num_classes: classes,
            });
        }
        target_distribution[index * classes + class] += 1.0 - label_smoothing;
    }
    let device = output.device();
    let target_distribution =
        Tensor::<2>::from_data(TensorData::new(target_distribution, [n, classes]), &device);
    let log_probabilities = if probabilities {
        output.clamp(PROBABILITY_FLOOR, 1.0).log()
    } else {
        log_softmax(output, 1)
    };
    Ok(log_probabilities
        .mul(target_distribution)
        .sum()
        .neg()
        .div_scalar(n as f32))
}

/// True when every row of `output` `[N, C]` is a probability distribution (values in `[0, 1]`
/// summing to 1 within 0.01), the rule core's decoder uses to decide whether to softmax.
///
/// Reads the tensor back; use it once on a model's first batch, not every step.
pub fn looks_like_probabilities(output: &Tensor<2>) -> bool {
    let [n, classes] = output.dims();
    let Ok(values) = output.try_to_vec_as::<f32>() else {
        return false;
    };
    n > 0
        && classes > 0
        && values.chunks(classes).all(|row| {
            row.iter().all(|v| (0.0..=1.0).contains(v))
                && (row.iter().sum::<f32>() - 1.0).abs() <= SUM_TOLERANCE
        })
}
