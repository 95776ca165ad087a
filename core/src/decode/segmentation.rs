//! Semantic segmentation decoder: the first rank-4 output, `[N, C, H, W]` (NCHW, nvinfer's
//! default `segmentation-output-order`) or `[N, H, W, C]` (NHWC).
//!
//! NHWC is recognised when `num-detected-classes` is set, the last dimension equals it and the
//! second does not; in every other case (including C == W) the tensor is read as NCHW. Values
//! are used as they are (no softmax), as in nvinfer's `parseSemanticSegmentationOutput`: each
//! pixel gets the class with the highest value (ties: lower class id) among those strictly
//! greater than `segmentation-threshold`, or -1 when none is. The map has the output's H x W.

use super::util::{self, OutputDesc};
use super::{DecodeContext, DecodeError, Parser};
use crate::objects::SegmentationMap;
use crate::tensor::Tensor;

const P: Parser = Parser::Segmentation;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Layout {
    pub output: usize,
    pub classes: usize,
    pub h: usize,
    pub w: usize,
    pub nhwc: bool,
}

impl Layout {
    pub(crate) fn resolve(
        outputs: &[OutputDesc],
        num_classes: usize,
    ) -> Result<Layout, DecodeError> {
        let Some(output) = outputs.iter().position(|o| o.shape.len() == 4) else {
            return Err(util::missing(
                P,
                outputs,
                "an output [N, C, H, W] (or [N, H, W, C])",
            ));
        };
        let s = outputs[output].shape;
        let nhwc = num_classes > 0 && s[3] == num_classes && s[1] != num_classes;
        let (classes, h, w) = if nhwc {
            (s[3], s[1], s[2])
        } else {
            (s[1], s[2], s[3])
        };
        if classes == 0 || h == 0 || w == 0 {
            return Err(util::bad_shape(
                P,
                &outputs[output],
                "[N, C, H, W] with C, H, W > 0",
            ));
        }
        Ok(Layout {
            output,
            classes,
            h,
            w,
            nhwc,
        })
    }
}

pub(crate) fn decode(
    outputs: &[Tensor],
    batch_index: usize,
    ctx: &DecodeContext,
) -> Result<SegmentationMap, DecodeError> {
    let l = Layout::resolve(&util::descs(outputs), ctx.num_classes)?;
    let data = util::item(&outputs[l.output], batch_index);
    let plane = l.h * l.w;
    let mut class_map = vec![-1i32; plane];
    for (i, slot) in class_map.iter_mut().enumerate() {
        let mut best = f32::NEG_INFINITY;
        for c in 0..l.classes {
            let v = if l.nhwc {
                data[i * l.classes + c]
            } else {
                data[c * plane + i]
            };
            if v > ctx.segmentation_threshold && v > best {
                best = v;
                *slot = c as i32;
            }
        }
    }
    let class_probabilities = if l.nhwc {
        (0..l.classes)
            .flat_map(|c| (0..plane).map(move |i| data[i * l.classes + c]))
            .collect()
    } else {
        data[..l.classes * plane].to_vec()
    };
    Ok(SegmentationMap {
        width: l.w,
        height: l.h,
        num_classes: l.classes,
        class_map,
        class_probabilities,
    })
}
