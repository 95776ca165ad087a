//! Classifier decoder: every output layer is one attribute, `[N, C]` or `[N, C, 1, 1]`.
//!
//! nvinfer expects softmaxed outputs and applies none. We accept raw logits too: a layer whose
//! values are not a probability distribution (any value < 0 or > 1, or a sum outside
//! 1 +- 0.01) gets a softmax first. A layer with a single value is a probability when it lies in
//! 0..1 and a logit (sigmoid) otherwise. Then, as nvinfer's `parseAttributesFromSoftmaxLayers`:
//! the class with the highest probability (ties: lower class id) wins if its probability is
//! strictly greater than `classifier-threshold`; one [`ClassifierAttribute`] per layer that has
//! a winner, `attribute_index` = the layer's index among `outputs`, `label` left `None`.

use super::util::{self, OutputDesc};
use super::{DecodeContext, DecodeError, Parser};
use crate::objects::ClassifierAttribute;
use crate::tensor::Tensor;

const P: Parser = Parser::Classifier;
const SUM_TOLERANCE: f32 = 0.01;

pub(crate) struct Layout {
    /// Classes per output layer, in output order.
    pub classes: Vec<usize>,
}

impl Layout {
    pub(crate) fn resolve(outputs: &[OutputDesc]) -> Result<Layout, DecodeError> {
        if outputs.is_empty() {
            return Err(util::missing(P, outputs, "at least one output [N, C]"));
        }
        let mut classes = Vec::with_capacity(outputs.len());
        for o in outputs {
            let ok = match o.shape.len() {
                2 => true,
                4 => o.shape[2] == 1 && o.shape[3] == 1,
                _ => false,
            };
            if !ok || o.shape[1] == 0 {
                return Err(util::bad_shape(P, o, "[N, C] or [N, C, 1, 1] with C >= 1"));
            }
            classes.push(o.shape[1]);
        }
        Ok(Layout { classes })
    }
}

/// Probabilities of one layer, softmaxing when the values are not already a distribution.
pub fn probabilities(values: &[f32]) -> Vec<f32> {
    if values.len() == 1 {
        let v = values[0];
        return vec![if (0.0..=1.0).contains(&v) {
            v
        } else {
            util::sigmoid(v)
        }];
    }
    let sum: f32 = values.iter().sum();
    let is_distribution =
        values.iter().all(|v| (0.0..=1.0).contains(v)) && (sum - 1.0).abs() <= SUM_TOLERANCE;
    if is_distribution {
        return values.to_vec();
    }
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = values.iter().map(|v| (v - max).exp()).collect();
    let total: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / total).collect()
}

pub(crate) fn decode(
    outputs: &[Tensor],
    batch_index: usize,
    ctx: &DecodeContext,
) -> Result<Vec<ClassifierAttribute>, DecodeError> {
    let layout = Layout::resolve(&util::descs(outputs))?;
    let mut attrs = Vec::new();
    for (layer, (t, &classes)) in outputs.iter().zip(&layout.classes).enumerate() {
        let values = util::item(t, batch_index);
        let probs = probabilities(&values[..classes.min(values.len())]);
        let mut best: Option<(usize, f32)> = None;
        for (c, &p) in probs.iter().enumerate() {
            if p > ctx.classifier_threshold && best.is_none_or(|(_, bp)| p > bp) {
                best = Some((c, p));
            }
        }
        if let Some((class_id, probability)) = best {
            attrs.push(ClassifierAttribute {
                attribute_index: layer as u32,
                class_id: class_id as u32,
                probability,
                label: None,
            });
        }
    }
    Ok(attrs)
}

#[cfg(test)]
mod tests {
    use super::probabilities;

    #[test]
    fn softmax_only_when_not_a_distribution() {
        assert_eq!(probabilities(&[0.2, 0.8]), vec![0.2, 0.8]);
        let p = probabilities(&[1.0, 1.0]);
        assert!((p[0] - 0.5).abs() < 1e-6 && (p[1] - 0.5).abs() < 1e-6);
        let p = probabilities(&[-1.0, 0.5, 0.5]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert_eq!(probabilities(&[0.3]), vec![0.3]);
        assert!((probabilities(&[2.0])[0] - 0.880_797).abs() < 1e-5);
    }
}
