//! YOLOv5 / v7 decoder: one output `[N, K, 5 + nc]`: per candidate cx, cy, w, h
//! (network-input pixels), objectness and nc class scores (all already sigmoided).
//!
//! The class is the highest class score (ties: lower class id); confidence = objectness x that
//! score, kept when >= the class's pre-cluster-threshold. Boxes are clipped to the network input.

use super::util::{self, OutputDesc};
use super::{DecodeContext, DecodeError, Parser};
use crate::objects::Detection;
use crate::tensor::Tensor;

const P: Parser = Parser::YoloV5;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Layout {
    pub output: usize,
    pub classes: usize,
    pub candidates: usize,
}

impl Layout {
    pub(crate) fn resolve(outputs: &[OutputDesc]) -> Result<Layout, DecodeError> {
        let rank3: Vec<usize> = (0..outputs.len())
            .filter(|&i| outputs[i].shape.len() == 3)
            .collect();
        let Some(&output) = rank3.first() else {
            return Err(util::missing(
                P,
                outputs,
                "one output [N, K, 5 + num_classes]",
            ));
        };
        if rank3.len() > 1 {
            return Err(DecodeError::Ambiguous {
                parser: P,
                detail: format!(
                    "expected one [N, K, 5 + nc] output, got {}",
                    util::list(outputs)
                ),
            });
        }
        let o = &outputs[output];
        if o.shape[2] < 6 {
            return Err(util::bad_shape(P, o, "[N, K, 5 + nc] with nc >= 1"));
        }
        Ok(Layout {
            output,
            classes: o.shape[2] - 5,
            candidates: o.shape[1],
        })
    }
}

pub(crate) fn decode(
    outputs: &[Tensor],
    batch_index: usize,
    ctx: &DecodeContext,
) -> Result<Vec<Detection>, DecodeError> {
    let l = Layout::resolve(&util::descs(outputs))?;
    let data = util::item(&outputs[l.output], batch_index);
    let stride = 5 + l.classes;
    let classes = util::classes_to_decode(l.classes, ctx);
    let mut out = Vec::new();
    for cand in 0..l.candidates {
        let row = &data[cand * stride..(cand + 1) * stride];
        let mut best = 0usize;
        let mut best_score = f32::NEG_INFINITY;
        for (c, &s) in row[5..5 + classes].iter().enumerate() {
            if s > best_score {
                best_score = s;
                best = c;
            }
        }
        let confidence = row[4] * best_score;
        if classes == 0 || !util::passes_pre_cluster(ctx, best, confidence) {
            continue;
        }
        let (cx, cy, w, h) = (row[0], row[1], row[2], row[3]);
        if let Some(d) = util::clipped_detection(
            ctx,
            best,
            confidence,
            cx - w / 2.0,
            cy - h / 2.0,
            cx + w / 2.0,
            cy + h / 2.0,
        ) {
            out.push(d);
        }
    }
    Ok(out)
}
