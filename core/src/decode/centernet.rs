//! CenterNet decoder: heat map `[N, C, H, W]` (already sigmoided) + `ltrb` `[N, 4, H, W]`
//! (distances left, top, right, bottom from the cell centre, in network-input pixels). NCHW.
//!
//! Outputs are told apart by shape: the one with 4 channels is `ltrb`, the other the heat map.
//! When both have 4 channels, a name containing `wh`, `ltrb`, `reg` or `box` marks `ltrb`.
//!
//! A peak is a heat-map value that is >= each of its (up to 8, inside the map) 3x3 neighbours
//! in the same class plane (a 3x3 max-pool keeping the value) and >= the class's
//! pre-cluster-threshold. The K = 100 highest peaks over all classes are kept (ties: lower index
//! first). With stride `sx = net_w / W`, `sy = net_h / H`, the box is
//! `(sx*x - l, sy*y - t, sx*x + r, sy*y + b)`, clipped to the network input.

use super::util::{self, OutputDesc};
use super::{DecodeContext, DecodeError, Parser};
use crate::objects::Detection;
use crate::tensor::Tensor;

const P: Parser = Parser::CenterNet;
/// Peaks kept per image.
pub const TOP_K: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Layout {
    pub heat: usize,
    pub ltrb: usize,
    pub classes: usize,
    pub h: usize,
    pub w: usize,
}

fn looks_like_ltrb(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["wh", "ltrb", "reg", "box"].iter().any(|k| n.contains(k))
}

impl Layout {
    pub(crate) fn resolve(outputs: &[OutputDesc]) -> Result<Layout, DecodeError> {
        let rank4: Vec<usize> = (0..outputs.len())
            .filter(|&i| outputs[i].shape.len() == 4)
            .collect();
        if rank4.len() < 2 {
            return Err(util::missing(
                P,
                outputs,
                "two NCHW outputs: heat map [N, C, H, W] and ltrb [N, 4, H, W]",
            ));
        }
        let four: Vec<usize> = rank4
            .iter()
            .copied()
            .filter(|&i| outputs[i].shape[1] == 4)
            .collect();
        let ltrb = match four.len() {
            0 => {
                return Err(util::missing(
                    P,
                    outputs,
                    "an ltrb output with 4 channels [N, 4, H, W]",
                ))
            }
            1 => four[0],
            _ => {
                let named: Vec<usize> = four
                    .iter()
                    .copied()
                    .filter(|&i| looks_like_ltrb(outputs[i].name))
                    .collect();
                if named.len() != 1 {
                    return Err(DecodeError::Ambiguous {
                        parser: P,
                        detail: format!(
                            "several 4-channel outputs ({}); name the ltrb one with 'wh' or 'ltrb'",
                            util::list(outputs)
                        ),
                    });
                }
                named[0]
            }
        };
        let heat_candidates: Vec<usize> = rank4.iter().copied().filter(|&i| i != ltrb).collect();
        if heat_candidates.len() != 1 {
            return Err(DecodeError::Ambiguous {
                parser: P,
                detail: format!(
                    "expected exactly one heat map besides ltrb ({})",
                    util::list(outputs)
                ),
            });
        }
        let heat = heat_candidates[0];
        let hs = outputs[heat].shape;
        let ls = outputs[ltrb].shape;
        if hs[1] == 0 || hs[2] == 0 || hs[3] == 0 {
            return Err(util::bad_shape(
                P,
                &outputs[heat],
                "heat map [N, C, H, W] with C, H, W > 0",
            ));
        }
        if ls[2..] != hs[2..] || ls[0] != hs[0] {
            return Err(util::bad_shape(
                P,
                &outputs[ltrb],
                format!(
                    "ltrb [{}, 4, {}, {}] (same batch and grid as the heat map)",
                    hs[0], hs[2], hs[3]
                ),
            ));
        }
        Ok(Layout {
            heat,
            ltrb,
            classes: hs[1],
            h: hs[2],
            w: hs[3],
        })
    }
}

pub(crate) fn decode(
    outputs: &[Tensor],
    batch_index: usize,
    ctx: &DecodeContext,
) -> Result<Vec<Detection>, DecodeError> {
    let l = Layout::resolve(&util::descs(outputs))?;
    let heat = util::item(&outputs[l.heat], batch_index);
    let ltrb = util::item(&outputs[l.ltrb], batch_index);
    let (h, w) = (l.h, l.w);
    let plane = h * w;

    // (score, class, y, x)
    let mut peaks: Vec<(f32, usize, usize, usize)> = Vec::new();
    for class in 0..util::classes_to_decode(l.classes, ctx) {
        let threshold = ctx.class_attrs.get(class as u32).pre_cluster_threshold;
        let p = &heat[class * plane..(class + 1) * plane];
        for y in 0..h {
            for x in 0..w {
                let v = p[y * w + x];
                if !util::at_least(v, threshold) {
                    continue;
                }
                let mut is_peak = true;
                'n: for ny in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                    for nx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                        if p[ny * w + nx] > v {
                            is_peak = false;
                            break 'n;
                        }
                    }
                }
                if is_peak {
                    peaks.push((v, class, y, x));
                }
            }
        }
    }
    // Stable: equal scores keep class-major, row-major order.
    peaks.sort_by(|a, b| b.0.total_cmp(&a.0));
    peaks.truncate(TOP_K);

    let sx = ctx.network_width as f32 / w as f32;
    let sy = ctx.network_height as f32 / h as f32;
    let mut out = Vec::with_capacity(peaks.len());
    for (score, class, y, x) in peaks {
        let i = y * w + x;
        let (cx, cy) = (sx * x as f32, sy * y as f32);
        let (dl, dt, dr, db) = (
            ltrb[i],
            ltrb[plane + i],
            ltrb[2 * plane + i],
            ltrb[3 * plane + i],
        );
        if let Some(d) =
            util::clipped_detection(ctx, class, score, cx - dl, cy - dt, cx + dr, cy + db)
        {
            out.push(d);
        }
    }
    Ok(out)
}
