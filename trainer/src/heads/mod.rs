//! Training heads: target encoding and losses for classifier, CenterNet and DetectNet_v2.
//!
//! Decoding is not here: the trainer decodes with `nvtl_core::decode`, the same code the
//! element runs, and every encoder in this module is the exact inverse of its core decoder (the
//! round-trip tests feed encoded targets to core's decoders and get the boxes back).
//!
//! Conventions shared by the detection heads:
//! - an object is `(class_id, [left, top, right, bottom])` in network-input pixels;
//! - targets are plain `Vec<f32>` data per image (so data loaders can build them on any
//!   thread), stacked into burn tensors per batch by `batch_targets`;
//! - network outputs are NCHW, batch first, as ONNX graphs give them.

pub mod centernet;
pub mod classifier;
pub mod detectnet_v2;
mod error;

pub use error::HeadError;

use burn::prelude::*;

/// One object to encode: class index and `[left, top, right, bottom]` in network-input pixels.
pub type Object = (usize, [f32; 4]);

/// The value of a one-element tensor (a loss) as `f32`, for logging.
pub fn scalar(loss: &Tensor<1>) -> f32 {
    loss.try_to_vec_as::<f32>()
        .ok()
        .and_then(|v| v.first().copied())
        .unwrap_or(f32::NAN)
}

/// Checks one object and clips its box to the network input.
///
/// Returns `Ok(None)` when nothing of a positive area is left inside the input (augmentation
/// crops push boxes out; those objects are skipped, not errors).
fn clipped_box(
    index: usize,
    object: &Object,
    num_classes: usize,
    input_hw: (usize, usize),
) -> Result<Option<[f32; 4]>, HeadError> {
    let (class, b) = *object;
    if class >= num_classes {
        return Err(HeadError::ObjectClass {
            object: index,
            class,
            num_classes,
        });
    }
    if !b.iter().all(|v| v.is_finite()) {
        return Err(HeadError::NonFiniteBox {
            object: index,
            bbox: b,
        });
    }
    let (h, w) = (input_hw.0 as f32, input_hw.1 as f32);
    let clipped = [
        b[0].clamp(0.0, w),
        b[1].clamp(0.0, h),
        b[2].clamp(0.0, w),
        b[3].clamp(0.0, h),
    ];
    if clipped[2] - clipped[0] <= 0.0 || clipped[3] - clipped[1] <= 0.0 {
        return Ok(None);
    }
    Ok(Some(clipped))
}

fn check_input_size(input_hw: (usize, usize)) -> Result<(), HeadError> {
    if input_hw.0 == 0 || input_hw.1 == 0 {
        return Err(HeadError::Param {
            name: "input_hw",
            value: format!("{input_hw:?}"),
            reason: "the network input needs a height and width > 0".into(),
        });
    }
    Ok(())
}

fn check_weight(name: &'static str, value: f32) -> Result<(), HeadError> {
    if !(value.is_finite() && value >= 0.0) {
        return Err(HeadError::Param {
            name,
            value: value.to_string(),
            reason: "a loss weight must be finite and >= 0".into(),
        });
    }
    Ok(())
}

/// Checks that a network output has the shape of its targets.
fn check_shape<const D: usize>(
    output: &'static str,
    actual: [usize; D],
    expected: [usize; D],
) -> Result<(), HeadError> {
    if actual != expected {
        return Err(HeadError::OutputShape {
            output,
            shape: actual.to_vec(),
            expected: expected.to_vec(),
        });
    }
    Ok(())
}

/// Smallest-area objects last, so that where two objects claim the same cell the smaller one
/// (usually the nearer or the one more easily lost) owns it. Ties keep input order.
fn drawing_order(boxes: &[(usize, usize, [f32; 4])]) -> Vec<usize> {
    let area = |b: &[f32; 4]| (b[2] - b[0]) * (b[3] - b[1]);
    let mut order: Vec<usize> = (0..boxes.len()).collect();
    order.sort_by(|&a, &b| area(&boxes[b].2).total_cmp(&area(&boxes[a].2)));
    order
}
