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

/// Where the regressors and scores are: one output each (`[N, 896, 16]`, `[N, 896, 1]`), or
/// one per anchor grid as some conversions ship them (`[N, 512, 16]` + `[N, 384, 16]` and
/// `[N, 512, 1]` + `[N, 384, 1]`), listed in anchor order (the 16x16 grid first).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Layout {
    pub regressors: Vec<usize>,
    pub scores: Vec<usize>,
}

impl Layout {
    pub(crate) fn resolve(outputs: &[OutputDesc]) -> Result<Layout, DecodeError> {
        let parts = |last: usize, what: &str| -> Result<Vec<usize>, DecodeError> {
            let mut found: Vec<usize> = (0..outputs.len())
                .filter(|&i| outputs[i].shape.len() == 3 && outputs[i].shape[2] == last)
                .collect();
            if found.is_empty() {
                return Err(util::missing(
                    P,
                    outputs,
                    format!("{what} [N, {NUM_ANCHORS}, {last}]"),
                ));
            }
            // The 16x16 grid has more anchors (512) than the 8x8 one (384): it comes first.
            found.sort_by_key(|&i| std::cmp::Reverse(outputs[i].shape[1]));
            let total: usize = found.iter().map(|&i| outputs[i].shape[1]).sum();
            let split_ok = found.len() == 2
                && outputs[found[0]].shape[1] == 512
                && outputs[found[1]].shape[1] == 384;
            if total != NUM_ANCHORS || !(found.len() == 1 || split_ok) {
                return Err(util::bad_shape(
                    P,
                    &outputs[found[0]],
                    format!("{NUM_ANCHORS} anchors (front 128x128 model), in one output or split 512 + 384"),
                ));
            }
            Ok(found)
        };
        Ok(Layout {
            regressors: parts(16, "regressors")?,
            scores: parts(1, "scores")?,
        })
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
    let gather = |parts: &[usize]| -> Vec<f32> {
        parts
            .iter()
            .flat_map(|&i| util::item(&outputs[i], batch_index))
            .copied()
            .collect()
    };
    let reg = gather(&l.regressors);
    let scores = gather(&l.scores);
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
