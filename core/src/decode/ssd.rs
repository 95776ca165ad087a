//! SSD decoder, two variants.
//!
//! **Raw** (boxes already decoded against the priors, before NMS): boxes `[N, K, 4]` as
//! `ymin, xmin, ymax, xmax` normalised to 0..1 (the TensorFlow / ONNX SSD convention) and scores
//! `[N, K, C]`. **Class 0 is the background** and is never reported; class ids are the score
//! columns, so the labels file's first line is the background (e.g. `background` or
//! `unlabeled`, as in DeepStream's SSD sample labels). Every (box, class >= 1) pair whose score
//! reaches that class's pre-cluster-threshold becomes a detection (clustering then works per
//! class). Boxes and scores are told apart by shape (last dimension 4 = boxes); when both end
//! in 4, a name containing `box` or `loc` marks the boxes.
//!
//! **Already decoded** (TF Object Detection API export with its own NMS): outputs whose names
//! contain `detection_boxes` `[N, M, 4]` (same normalised ymin, xmin, ymax, xmax),
//! `detection_scores` `[N, M]`, `detection_classes` `[N, M]` (class ids as floats, with the same
//! background-is-0 numbering) and optionally `num_detections` `[N]` or `[N, 1]` (valid rows).
//!
//! Boxes are scaled to network-input pixels and clipped to the network input.

use super::util::{self, OutputDesc};
use super::{DecodeContext, DecodeError, Parser};
use crate::objects::Detection;
use crate::tensor::Tensor;

const P: Parser = Parser::Ssd;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Layout {
    Raw {
        boxes: usize,
        scores: usize,
        anchors: usize,
        classes: usize,
    },
    Decoded {
        boxes: usize,
        scores: usize,
        classes: usize,
        count: Option<usize>,
        rows: usize,
    },
}

fn find(outputs: &[OutputDesc], key: &str) -> Option<usize> {
    outputs.iter().position(|o| o.name.contains(key))
}

impl Layout {
    pub(crate) fn resolve(outputs: &[OutputDesc]) -> Result<Layout, DecodeError> {
        if let (Some(boxes), Some(scores), Some(classes)) = (
            find(outputs, "detection_boxes"),
            find(outputs, "detection_scores"),
            find(outputs, "detection_classes"),
        ) {
            return resolve_decoded(outputs, boxes, scores, classes);
        }
        let rank3: Vec<usize> = (0..outputs.len())
            .filter(|&i| outputs[i].shape.len() == 3)
            .collect();
        let four: Vec<usize> = rank3
            .iter()
            .copied()
            .filter(|&i| outputs[i].shape[2] == 4)
            .collect();
        let boxes = match four.len() {
            0 => {
                return Err(util::missing(
                    P,
                    outputs,
                    "boxes [N, K, 4] and scores [N, K, C] (or detection_boxes/scores/classes)",
                ))
            }
            1 => four[0],
            _ => {
                let named: Vec<usize> = four
                    .iter()
                    .copied()
                    .filter(|&i| {
                        let n = outputs[i].name.to_ascii_lowercase();
                        n.contains("box") || n.contains("loc")
                    })
                    .collect();
                if named.len() != 1 {
                    return Err(DecodeError::Ambiguous {
                        parser: P,
                        detail: format!(
                            "several [N, K, 4] outputs ({}); name the boxes with 'box'",
                            util::list(outputs)
                        ),
                    });
                }
                named[0]
            }
        };
        let others: Vec<usize> = rank3.iter().copied().filter(|&i| i != boxes).collect();
        let Some(&scores) = others.first() else {
            return Err(util::missing(
                P,
                outputs,
                "scores [N, K, C] besides the boxes",
            ));
        };
        if others.len() > 1 {
            return Err(DecodeError::Ambiguous {
                parser: P,
                detail: format!("several candidate score outputs ({})", util::list(outputs)),
            });
        }
        let (b, s) = (&outputs[boxes], &outputs[scores]);
        if s.shape[1] != b.shape[1] {
            return Err(util::bad_shape(
                P,
                s,
                format!("scores [N, {}, C] (one row per box)", b.shape[1]),
            ));
        }
        if s.shape[2] < 2 {
            return Err(util::bad_shape(
                P,
                s,
                "scores [N, K, C] with C >= 2 (class 0 is the background)",
            ));
        }
        Ok(Layout::Raw {
            boxes,
            scores,
            anchors: b.shape[1],
            classes: s.shape[2],
        })
    }
}

fn resolve_decoded(
    outputs: &[OutputDesc],
    boxes: usize,
    scores: usize,
    classes: usize,
) -> Result<Layout, DecodeError> {
    let b = &outputs[boxes];
    if b.shape.len() != 3 || b.shape[2] != 4 {
        return Err(util::bad_shape(P, b, "detection_boxes [N, M, 4]"));
    }
    let rows = b.shape[1];
    for (i, what) in [(scores, "detection_scores"), (classes, "detection_classes")] {
        let o = &outputs[i];
        let ok = (o.shape.len() == 2 && o.shape[1] == rows)
            || (o.shape.len() == 3 && o.shape[1] == rows && o.shape[2] == 1);
        if !ok {
            return Err(util::bad_shape(P, o, format!("{what} [N, {rows}]")));
        }
    }
    let count = find(outputs, "num_detections");
    if let Some(c) = count {
        let o = &outputs[c];
        let ok = o.shape.len() == 1 || (o.shape.len() == 2 && o.shape[1] == 1);
        if !ok {
            return Err(util::bad_shape(P, o, "num_detections [N] or [N, 1]"));
        }
    }
    Ok(Layout::Decoded {
        boxes,
        scores,
        classes,
        count,
        rows,
    })
}

fn push_box(ctx: &DecodeContext, out: &mut Vec<Detection>, class: usize, score: f32, b: &[f32]) {
    let (w, h) = (ctx.network_width as f32, ctx.network_height as f32);
    let (ymin, xmin, ymax, xmax) = (b[0], b[1], b[2], b[3]);
    if let Some(d) =
        util::clipped_detection(ctx, class, score, xmin * w, ymin * h, xmax * w, ymax * h)
    {
        out.push(d);
    }
}

pub(crate) fn decode(
    outputs: &[Tensor],
    batch_index: usize,
    ctx: &DecodeContext,
) -> Result<Vec<Detection>, DecodeError> {
    let layout = Layout::resolve(&util::descs(outputs))?;
    let mut out = Vec::new();
    match layout {
        Layout::Raw {
            boxes,
            scores,
            anchors,
            classes,
        } => {
            let b = util::item(&outputs[boxes], batch_index);
            let s = util::item(&outputs[scores], batch_index);
            let classes_used = util::classes_to_decode(classes, ctx);
            for k in 0..anchors {
                let row = &s[k * classes..(k + 1) * classes];
                for (c, &score) in row.iter().enumerate().take(classes_used).skip(1) {
                    if util::passes_pre_cluster(ctx, c, score) {
                        push_box(ctx, &mut out, c, score, &b[k * 4..k * 4 + 4]);
                    }
                }
            }
        }
        Layout::Decoded {
            boxes,
            scores,
            classes,
            count,
            rows,
        } => {
            let b = util::item(&outputs[boxes], batch_index);
            let s = util::item(&outputs[scores], batch_index);
            let c = util::item(&outputs[classes], batch_index);
            let n = match count {
                Some(i) => {
                    let v = util::item(&outputs[i], batch_index)
                        .first()
                        .copied()
                        .unwrap_or(0.0);
                    if v.is_finite() && v > 0.0 {
                        (v as usize).min(rows)
                    } else {
                        0
                    }
                }
                None => rows,
            };
            for k in 0..n {
                let class = c[k];
                if !(class.is_finite() && class >= 0.0) {
                    continue;
                }
                let class = class.round() as usize;
                if ctx.num_classes > 0 && class >= ctx.num_classes {
                    continue;
                }
                if util::passes_pre_cluster(ctx, class, s[k]) {
                    push_box(ctx, &mut out, class, s[k], &b[k * 4..k * 4 + 4]);
                }
            }
        }
    }
    Ok(out)
}
