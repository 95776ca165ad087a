//! NVIDIA DetectNet_v2 grid decoder: nvinfer's built-in `parseBoundingBox`.
//!
//! Outputs: coverage `[N, C, gh, gw]` (per-cell confidence of each class) and bbox
//! `[N, 4C, gh, gw]` (per class the planes x1, y1, x2, y2). As in nvinfer, the coverage layer is
//! the output whose name contains `cov` and the bbox layer the one whose name contains `bbox`
//! (the last such output wins). When no names match, two rank-4 outputs whose channel counts are
//! C and 4C are taken by shape.
//!
//! Decoding, reproduced from nvinfer: stride = ceil(net_w / gw) (and net_h / gh); cell centres
//! `gc_x[i] = (i * stride_x + 0.5) / 35`; `x1 = (gc_x - o_x1) * 35`, `y1 = (gc_y - o_y1) * 35`,
//! `x2 = (o_x2 + gc_x) * 35`, `y2 = (o_y2 + gc_y) * 35` (bboxNorm 35); coordinates at or past the
//! network width/height become width-1/height-1, negative ones 0; boxes with negative width or
//! height are dropped. Classes decoded: min(C, num-detected-classes).

use super::util::{self, OutputDesc};
use super::{DecodeContext, DecodeError, Parser};
use crate::objects::{BBox, Detection};
use crate::tensor::Tensor;

const P: Parser = Parser::DetectNetV2;
const BBOX_NORM: f32 = 35.0;

/// Which output is which, and the grid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Layout {
    pub cov: usize,
    pub bbox: usize,
    pub classes: usize,
    pub grid_h: usize,
    pub grid_w: usize,
}

impl Layout {
    pub(crate) fn resolve(
        outputs: &[OutputDesc],
        _num_classes: usize,
    ) -> Result<Layout, DecodeError> {
        let mut cov = None;
        let mut bbox = None;
        for (i, o) in outputs.iter().enumerate() {
            if o.name.contains("bbox") {
                bbox = Some(i);
            }
            if o.name.contains("cov") {
                cov = Some(i);
            }
        }
        let (cov, bbox) = match (cov, bbox) {
            (Some(c), Some(b)) if c != b => (c, b),
            (None, None) => by_shape(outputs)?,
            (None, _) => {
                return Err(util::missing(
                    P,
                    outputs,
                    "a coverage layer (name containing 'cov')",
                ))
            }
            _ => {
                return Err(util::missing(
                    P,
                    outputs,
                    "a bbox layer (name containing 'bbox')",
                ))
            }
        };
        let c = &outputs[cov];
        let b = &outputs[bbox];
        if c.shape.len() != 4 || c.shape[1] == 0 || c.shape[2] == 0 || c.shape[3] == 0 {
            return Err(util::bad_shape(P, c, "coverage [N, C, grid_h, grid_w]"));
        }
        let (classes, gh, gw) = (c.shape[1], c.shape[2], c.shape[3]);
        let want = [c.shape[0], 4 * classes, gh, gw];
        if b.shape.len() != 4 || b.shape[1..] != want[1..] {
            return Err(util::bad_shape(
                P,
                b,
                format!(
                    "bbox [N, {}, {gh}, {gw}] (4 x coverage channels, same grid)",
                    4 * classes
                ),
            ));
        }
        Ok(Layout {
            cov,
            bbox,
            classes,
            grid_h: gh,
            grid_w: gw,
        })
    }
}

fn by_shape(outputs: &[OutputDesc]) -> Result<(usize, usize), DecodeError> {
    let rank4: Vec<usize> = (0..outputs.len())
        .filter(|&i| outputs[i].shape.len() == 4)
        .collect();
    for &c in &rank4 {
        for &b in &rank4 {
            let (cs, bs) = (outputs[c].shape, outputs[b].shape);
            if c != b && cs[1] > 0 && bs[1] == 4 * cs[1] && cs[2..] == bs[2..] {
                return Ok((c, b));
            }
        }
    }
    Err(util::missing(
        P,
        outputs,
        "coverage (name containing 'cov') and bbox (name containing 'bbox') layers",
    ))
}

pub(crate) fn decode(
    outputs: &[Tensor],
    batch_index: usize,
    ctx: &DecodeContext,
) -> Result<Vec<Detection>, DecodeError> {
    let l = Layout::resolve(&util::descs(outputs), ctx.num_classes)?;
    let cov = util::item(&outputs[l.cov], batch_index);
    let bbox = util::item(&outputs[l.bbox], batch_index);
    let (gh, gw) = (l.grid_h, l.grid_w);
    let grid = gh * gw;
    let (net_w, net_h) = (ctx.network_width, ctx.network_height);
    let stride_x = net_w.div_ceil(gw);
    let stride_y = net_h.div_ceil(gh);
    let centres_x: Vec<f32> = (0..gw)
        .map(|i| ((i * stride_x) as f64 + 0.5) as f32 / BBOX_NORM)
        .collect();
    let centres_y: Vec<f32> = (0..gh)
        .map(|i| ((i * stride_y) as f64 + 0.5) as f32 / BBOX_NORM)
        .collect();
    let clip = |v: f32, limit: usize| -> f32 {
        let v = if v >= limit as f32 {
            limit as f32 - 1.0
        } else {
            v
        };
        if v < 0.0 {
            0.0
        } else {
            v
        }
    };

    let mut out = Vec::new();
    for class in 0..util::classes_to_decode(l.classes, ctx) {
        let threshold = ctx.class_attrs.get(class as u32).pre_cluster_threshold;
        let planes = &bbox[class * 4 * grid..(class + 1) * 4 * grid];
        for (h, &centre_y) in centres_y.iter().enumerate() {
            for (w, &centre_x) in centres_x.iter().enumerate() {
                let i = w + h * gw;
                let confidence = cov[class * grid + i];
                if !util::at_least(confidence, threshold) {
                    continue;
                }
                let x1 = clip((planes[i] - centre_x) * -BBOX_NORM, net_w);
                let y1 = clip((planes[grid + i] - centre_y) * -BBOX_NORM, net_h);
                let x2 = clip((planes[2 * grid + i] + centre_x) * BBOX_NORM, net_w);
                let y2 = clip((planes[3 * grid + i] + centre_y) * BBOX_NORM, net_h);
                if !(x2 - x1 >= 0.0 && y2 - y1 >= 0.0) {
                    continue;
                }
                out.push(Detection {
                    class_id: class as u32,
                    confidence,
                    bbox: BBox::new(x1, y1, x2 - x1, y2 - y1),
                });
            }
        }
    }
    Ok(out)
}
