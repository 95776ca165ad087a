//! MediaPipe BlazeFace (front, 128x128) decoder: regressors `[N, 896, 16]` + score logits
//! `[N, 896, 1]` (told apart by their last dimension).
//!
//! Anchors (MediaPipe's SSD anchor options for the front model): a 16x16 grid (stride 8) with 2
//! anchors per cell, then an 8x8 grid (stride 16) with 6 anchors per cell, row by row, all anchors
//! of a cell together; anchor centre `((x + 0.5) / grid, (y + 0.5) / grid)`, size 1.
//! Regressor values are in input pixels: box centre = anchor centre * input size + `reg[0..2]`,
//! box size = `reg[2..4]` (MediaPipe divides by 128 and multiplies back by the input size; the
//! network input size from the config is used for both). `reg[4..16]` are 6 key points, unused.
//! Score = sigmoid(logit clipped to +-100), class 0 ("face"), kept when >= class 0's
//! pre-cluster-threshold.

use super::util::{self, OutputDesc};
use super::{DecodeContext, DecodeError, Parser};
use crate::objects::Detection;
use crate::tensor::Tensor;

const P: Parser = Parser::BlazeFace;
/// Number of anchors of the front model.
pub const NUM_ANCHORS: usize = 896;
const SCORE_CLIP: f32 = 100.0;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Layout {
    pub regressors: usize,
    pub scores: usize,
}

impl Layout {
    pub(crate) fn resolve(outputs: &[OutputDesc]) -> Result<Layout, DecodeError> {
        let find = |last: usize| {
            outputs
                .iter()
                .position(|o| o.shape.len() == 3 && o.shape[2] == last)
        };
        let Some(regressors) = find(16) else {
            return Err(util::missing(
                P,
                outputs,
                format!("regressors [N, {NUM_ANCHORS}, 16]"),
            ));
        };
        let Some(scores) = find(1) else {
            return Err(util::missing(
                P,
                outputs,
                format!("scores [N, {NUM_ANCHORS}, 1]"),
            ));
        };
        for i in [regressors, scores] {
            if outputs[i].shape[1] != NUM_ANCHORS {
                return Err(util::bad_shape(
                    P,
                    &outputs[i],
                    format!("{NUM_ANCHORS} anchors (front 128x128 model)"),
                ));
            }
        }
        Ok(Layout { regressors, scores })
    }
}

/// Anchor centres, normalised to 0..1, in model output order.
pub fn anchors() -> Vec<(f32, f32)> {
    let mut a = Vec::with_capacity(NUM_ANCHORS);
    for (grid, per_cell) in [(16usize, 2usize), (8, 6)] {
        for y in 0..grid {
            for x in 0..grid {
                for _ in 0..per_cell {
                    a.push((
                        (x as f32 + 0.5) / grid as f32,
                        (y as f32 + 0.5) / grid as f32,
                    ));
                }
            }
        }
    }
    a
}

pub(crate) fn decode(
    outputs: &[Tensor],
    batch_index: usize,
    ctx: &DecodeContext,
) -> Result<Vec<Detection>, DecodeError> {
    let l = Layout::resolve(&util::descs(outputs))?;
    let reg = util::item(&outputs[l.regressors], batch_index);
    let scores = util::item(&outputs[l.scores], batch_index);
    let (w, h) = (ctx.network_width as f32, ctx.network_height as f32);
    let mut out = Vec::new();
    for (i, (ax, ay)) in anchors().into_iter().enumerate() {
        let score = util::sigmoid(scores[i].clamp(-SCORE_CLIP, SCORE_CLIP));
        if !util::passes_pre_cluster(ctx, 0, score) {
            continue;
        }
        let r = &reg[i * 16..i * 16 + 4];
        let (cx, cy) = (ax * w + r[0], ay * h + r[1]);
        let (bw, bh) = (r[2], r[3]);
        if let Some(d) = util::clipped_detection(
            ctx,
            0,
            score,
            cx - bw / 2.0,
            cy - bh / 2.0,
            cx + bw / 2.0,
            cy + bh / 2.0,
        ) {
            out.push(d);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchor_layout() {
        let a = anchors();
        assert_eq!(a.len(), NUM_ANCHORS);
        assert_eq!(a[0], a[1]);
        assert_eq!(a[0], (0.5 / 16.0, 0.5 / 16.0));
        assert_eq!(a[2], (1.5 / 16.0, 0.5 / 16.0));
        assert_eq!(a[512], (0.5 / 8.0, 0.5 / 8.0));
        assert_eq!(a[517], a[512]);
        assert_eq!(a[518], (1.5 / 8.0, 0.5 / 8.0));
        assert_eq!(a[895], (7.5 / 8.0, 7.5 / 8.0));
    }
}
