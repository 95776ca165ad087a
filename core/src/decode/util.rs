//! Helpers shared by the decoders: output descriptions, safe batch slicing, thresholds.

use super::{DecodeContext, DecodeError, Parser};
use crate::objects::{BBox, Detection};
use crate::tensor::Tensor;

/// An output as seen at model load or at run time: name and full shape (batch first).
#[derive(Clone, Copy, Debug)]
pub(crate) struct OutputDesc<'a> {
    pub name: &'a str,
    pub shape: &'a [usize],
}

pub(crate) fn descs(outputs: &[Tensor]) -> Vec<OutputDesc<'_>> {
    outputs
        .iter()
        .map(|t| OutputDesc {
            name: &t.name,
            shape: &t.shape,
        })
        .collect()
}

/// "name [shape], ..." for error messages.
pub(crate) fn list(outputs: &[OutputDesc]) -> String {
    if outputs.is_empty() {
        return "none".to_string();
    }
    outputs
        .iter()
        .map(|o| format!("'{}' {:?}", o.name, o.shape))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn bad_shape(
    parser: Parser,
    o: &OutputDesc,
    expected: impl Into<String>,
) -> DecodeError {
    DecodeError::BadShape {
        parser,
        output: o.name.to_string(),
        shape: o.shape.to_vec(),
        expected: expected.into(),
    }
}

pub(crate) fn missing(
    parser: Parser,
    outputs: &[OutputDesc],
    expected: impl Into<String>,
) -> DecodeError {
    DecodeError::MissingOutput {
        parser,
        expected: expected.into(),
        available: list(outputs),
    }
}

/// Checks that `t` is consistent and holds `batch_index`.
pub(crate) fn check_tensor(t: &Tensor, batch_index: usize) -> Result<(), DecodeError> {
    let expected = t
        .shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d));
    if expected != Some(t.data.len()) {
        return Err(DecodeError::DataLength {
            output: t.name.clone(),
            len: t.data.len(),
            shape: t.shape.clone(),
        });
    }
    let batch = t.shape.first().copied().unwrap_or(0);
    if batch_index >= batch {
        return Err(DecodeError::BatchIndex {
            output: t.name.clone(),
            index: batch_index,
            batch,
        });
    }
    Ok(())
}

/// The data of batch item `index` (the tensor has been checked with [`check_tensor`]).
pub(crate) fn item(t: &Tensor, index: usize) -> &[f32] {
    let batch = t.shape.first().copied().unwrap_or(1).max(1);
    let per = t.data.len() / batch;
    t.data.get(index * per..(index + 1) * per).unwrap_or(&[])
}

/// The number of classes to decode: the model's count, capped by `num-detected-classes` when
/// that is set (nvinfer drops objects whose class id is not below `numClassesConfigured`).
pub(crate) fn classes_to_decode(model_classes: usize, ctx: &DecodeContext) -> usize {
    if ctx.num_classes > 0 {
        model_classes.min(ctx.num_classes)
    } else {
        model_classes
    }
}

/// `value >= threshold`; false for NaN.
pub(crate) fn at_least(value: f32, threshold: f32) -> bool {
    value >= threshold
}

pub(crate) fn passes_pre_cluster(ctx: &DecodeContext, class_id: usize, confidence: f32) -> bool {
    confidence >= ctx.class_attrs.get(class_id as u32).pre_cluster_threshold
}

/// A detection from a box in network pixels, clipped to the network input; `None` when nothing
/// of a positive area is left after clipping (or the box is not finite).
pub(crate) fn clipped_detection(
    ctx: &DecodeContext,
    class_id: usize,
    confidence: f32,
    left: f32,
    top: f32,
    right: f32,
    bottom: f32,
) -> Option<Detection> {
    if !(left.is_finite() && top.is_finite() && right.is_finite() && bottom.is_finite()) {
        return None;
    }
    let b = BBox::from_ltrb(left, top, right, bottom)
        .clipped(ctx.network_width as f32, ctx.network_height as f32);
    if b.width <= 0.0 || b.height <= 0.0 {
        return None;
    }
    Some(Detection {
        class_id: class_id as u32,
        confidence,
        bbox: b,
    })
}

pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}
