//! YOLOv8 / v11 decoder: one output `[N, 4 + nc, K]`: for each of the K candidates the rows
//! cx, cy, w, h (network-input pixels) and nc class scores (already sigmoided; no objectness).
//!
//! When `num-detected-classes` is set and the output is `[N, K, 4 + nc]` instead (a transposed
//! export), that layout is recognised too. The class of a candidate is its highest score (ties:
//! lower class id); it is kept when that score is >= the class's pre-cluster-threshold. Boxes are
//! clipped to the network input; boxes with no area left are dropped.

use super::util::{self, OutputDesc};
use super::{DecodeContext, DecodeError, Parser};
use crate::objects::Detection;
use crate::tensor::Tensor;

const P: Parser = Parser::YoloV8;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Layout {
    pub output: usize,
    pub classes: usize,
    pub candidates: usize,
    /// `[N, K, 4 + nc]` rather than `[N, 4 + nc, K]`.
    pub transposed: bool,
}

impl Layout {
    pub(crate) fn resolve(
        outputs: &[OutputDesc],
        num_classes: usize,
    ) -> Result<Layout, DecodeError> {
        let rank3: Vec<usize> = (0..outputs.len())
            .filter(|&i| outputs[i].shape.len() == 3)
            .collect();
        let Some(&output) = rank3.first() else {
            return Err(util::missing(
                P,
                outputs,
                "one output [N, 4 + num_classes, K]",
            ));
        };
        if rank3.len() > 1 {
            return Err(DecodeError::Ambiguous {
                parser: P,
                detail: format!(
                    "expected one [N, 4 + nc, K] output, got {}",
                    util::list(outputs)
                ),
            });
        }
        let o = &outputs[output];
        let (a, b) = (o.shape[1], o.shape[2]);
        let (rows, candidates, transposed) = if num_classes > 0 {
            if a == 4 + num_classes {
                (a, b, false)
            } else if b == 4 + num_classes {
                (b, a, true)
            } else {
                return Err(util::bad_shape(
                    P,
                    o,
                    format!(
                        "[N, {}, K] (4 + num-detected-classes {num_classes})",
                        4 + num_classes
                    ),
                ));
            }
        } else {
            (a, b, false)
        };
        if rows < 5 {
            return Err(util::bad_shape(P, o, "[N, 4 + nc, K] with nc >= 1"));
        }
        Ok(Layout {
            output,
            classes: rows - 4,
            candidates,
            transposed,
        })
    }
}

pub(crate) fn decode(
    outputs: &[Tensor],
    batch_index: usize,
    ctx: &DecodeContext,
) -> Result<Vec<Detection>, DecodeError> {
    let l = Layout::resolve(&util::descs(outputs), ctx.num_classes)?;
    let data = util::item(&outputs[l.output], batch_index);
    let k = l.candidates;
    let rows = 4 + l.classes;
    let at = |row: usize, cand: usize| -> f32 {
        if l.transposed {
            data[cand * rows + row]
        } else {
            data[row * k + cand]
        }
    };
    let classes = util::classes_to_decode(l.classes, ctx);
    let mut out = Vec::new();
    for cand in 0..k {
        let mut best = 0usize;
        let mut best_score = f32::NEG_INFINITY;
        for c in 0..classes {
            let s = at(4 + c, cand);
            if s > best_score {
                best_score = s;
                best = c;
            }
        }
        if classes == 0 || !util::passes_pre_cluster(ctx, best, best_score) {
            continue;
        }
        let (cx, cy, w, h) = (at(0, cand), at(1, cand), at(2, cand), at(3, cand));
        if let Some(d) = util::clipped_detection(
            ctx,
            best,
            best_score,
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
