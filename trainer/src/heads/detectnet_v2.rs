//! DetectNet_v2 head: coverage and bbox targets that core's DetectNet_v2 decoder (nvinfer's
//! `parseBoundingBox`) turns back into the encoded boxes, and the coverage + bbox loss.
//!
//! The decoder (core/src/decode/detectnet_v2.rs), with `stride_x = ceil(net_w / grid_w)`,
//! cell reference `gc_x = (col * stride_x + 0.5) / 35` (rows alike) and the per-class planes
//! `o_x1, o_y1, o_x2, o_y2`, gives `x1 = (gc_x - o_x1) * 35`, `y1 = (gc_y - o_y1) * 35`,
//! `x2 = (o_x2 + gc_x) * 35`, `y2 = (o_y2 + gc_y) * 35` for every cell whose coverage reaches
//! the class threshold. The encoder writes `o_x1 = gc_x - x1 / 35`, `o_y1 = gc_y - y1 / 35`,
//! `o_x2 = x2 / 35 - gc_x`, `o_y2 = y2 / 35 - gc_y` at every covered cell, so each covered cell
//! decodes to the object's box and clustering merges the copies into one.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::{
    check_input_size, check_shape, check_weight, clipped_box, drawing_order, HeadError, Object,
};

/// nvinfer's bbox normaliser (`bboxNorm`), fixed in its DetectNet_v2 parser and in core's.
pub const BBOX_NORM: f32 = 35.0;

/// Target and loss parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectNetParams {
    /// Network-input pixels per grid cell (nvinfer's DetectNet_v2 models: 16).
    pub stride: usize,
    /// Coverage is 1 on the cells whose centre lies in the central part of the box that is
    /// this fraction of its width and height (TAO's coverage radius), and always on the cell
    /// holding the box centre.
    pub coverage_fraction: f32,
    /// Weight of the coverage loss in the total.
    pub coverage_weight: f32,
    /// Weight of the bbox L1 loss in the total.
    pub bbox_weight: f32,
}

impl Default for DetectNetParams {
    fn default() -> Self {
        DetectNetParams {
            stride: 16,
            coverage_fraction: 0.4,
            coverage_weight: 1.0,
            bbox_weight: 10.0,
        }
    }
}

impl DetectNetParams {
    /// Checks every parameter's range.
    pub fn validate(&self) -> Result<(), HeadError> {
        if self.stride == 0 {
            return Err(HeadError::Param {
                name: "stride",
                value: "0".into(),
                reason: "the grid needs a stride >= 1".into(),
            });
        }
        if !(self.coverage_fraction > 0.0 && self.coverage_fraction <= 1.0) {
            return Err(HeadError::Param {
                name: "coverage_fraction",
                value: self.coverage_fraction.to_string(),
                reason: "must lie in (0, 1]".into(),
            });
        }
        check_weight("coverage_weight", self.coverage_weight)?;
        check_weight("bbox_weight", self.bbox_weight)?;
        Ok(())
    }

    /// The output grid `(h, w)` for a network input `(height, width)`: input / stride,
    /// rounded up.
    pub fn grid_hw(&self, input_hw: (usize, usize)) -> (usize, usize) {
        let stride = self.stride.max(1);
        (input_hw.0.div_ceil(stride), input_hw.1.div_ceil(stride))
    }
}

/// Targets of one image.
#[derive(Clone, Debug, PartialEq)]
pub struct DetectNetTargets {
    pub num_classes: usize,
    /// Network input `(height, width)` in pixels.
    pub input_hw: (usize, usize),
    /// Output grid `(h, w)`.
    pub grid_hw: (usize, usize),
    /// `[C, h, w]`: 1 on each object's covered cells in its class plane, else 0.
    pub coverage: Vec<f32>,
    /// `[4C, h, w]`: per class the planes `o_x1, o_y1, o_x2, o_y2` at covered cells, else 0.
    pub bbox: Vec<f32>,
    /// Objects (indices into the input) with nothing inside the network input; not encoded.
    pub skipped: Vec<usize>,
    /// Objects of which smaller objects of the same class took every covered cell; they do
    /// not decode.
    pub overwritten: Vec<usize>,
}

/// Encodes `objects` (class, `[left, top, right, bottom]` in network-input pixels) of one
/// image for a network input of `input_hw` = (height, width) pixels.
///
/// Boxes are clipped to the input (the decoder then clips right/bottom edges at the input size
/// to size - 1, as nvinfer does). Where objects of a class share a cell, the smaller one owns
/// it.
pub fn encode(
    objects: &[Object],
    num_classes: usize,
    input_hw: (usize, usize),
    p: &DetectNetParams,
) -> Result<DetectNetTargets, HeadError> {
    p.validate()?;
    check_input_size(input_hw)?;
    if num_classes == 0 {
        return Err(HeadError::Param {
            name: "num_classes",
            value: "0".into(),
            reason: "the coverage needs at least one class".into(),
        });
    }
    let (gh, gw) = p.grid_hw(input_hw);
    let grid = gh * gw;
    // The decoder's strides and cell references, computed the same way.
    let stride_x = input_hw.1.div_ceil(gw);
    let stride_y = input_hw.0.div_ceil(gh);
    let reference = |cell: usize, stride: usize| ((cell * stride) as f64 + 0.5) as f32 / BBOX_NORM;

    let mut boxes = Vec::with_capacity(objects.len());
    let mut skipped = Vec::new();
    for (index, object) in objects.iter().enumerate() {
        match clipped_box(index, object, num_classes, input_hw)? {
            Some(b) => boxes.push((index, object.0, b)),
            None => skipped.push(index),
        }
    }

    let mut coverage = vec![0.0f32; num_classes * grid];
    let mut bbox = vec![0.0f32; 4 * num_classes * grid];
    // Which object (index into `boxes`) owns each class cell.
    let mut owner: Vec<Option<usize>> = vec![None; num_classes * grid];
    for k in drawing_order(&boxes) {
        let (_, class, [x1, y1, x2, y2]) = boxes[k];
        let (cols, rows) = (
            covered_cells(x1, x2, p.coverage_fraction, stride_x, gw),
            covered_cells(y1, y2, p.coverage_fraction, stride_y, gh),
        );
        let planes = &mut bbox[class * 4 * grid..(class + 1) * 4 * grid];
        for row in rows.clone() {
            let gc_y = reference(row, stride_y);
            for col in cols.clone() {
                let gc_x = reference(col, stride_x);
                let cell = row * gw + col;
                owner[class * grid + cell] = Some(k);
                coverage[class * grid + cell] = 1.0;
                planes[cell] = gc_x - x1 / BBOX_NORM;
                planes[grid + cell] = gc_y - y1 / BBOX_NORM;
                planes[2 * grid + cell] = x2 / BBOX_NORM - gc_x;
                planes[3 * grid + cell] = y2 / BBOX_NORM - gc_y;
            }
        }
    }
    let mut owns_a_cell = vec![false; boxes.len()];
    for k in owner.into_iter().flatten() {
        owns_a_cell[k] = true;
    }
    let overwritten = boxes
        .iter()
        .zip(owns_a_cell)
        .filter(|(_, owns)| !owns)
        .map(|(b, _)| b.0)
        .collect();
    Ok(DetectNetTargets {
        num_classes,
        input_hw,
        grid_hw: (gh, gw),
        coverage,
        bbox,
        skipped,
        overwritten,
    })
}

/// The cells along one axis whose centre `(i + 0.5) * stride` lies in the central `fraction`
/// of `[start, end]`, together with the cell holding the centre; never empty.
fn covered_cells(
    start: f32,
    end: f32,
    fraction: f32,
    stride: usize,
    cells: usize,
) -> std::ops::RangeInclusive<usize> {
    let stride = stride as f32;
    let centre = (start + end) / 2.0;
    let half = (end - start) * fraction / 2.0;
    let centre_cell = ((centre / stride).floor().max(0.0) as usize).min(cells - 1);
    // Cell i's centre is >= centre - half when i >= (centre - half) / stride - 0.5.
    let first = ((centre - half) / stride - 0.5).ceil().max(0.0) as usize;
    let last = (((centre + half) / stride - 0.5).floor().max(0.0) as usize).min(cells - 1);
    first.min(centre_cell)..=last.max(centre_cell)
}

/// Targets of a batch as tensors, NCHW.
#[derive(Clone, Debug)]
pub struct DetectNetBatch {
    /// `[N, C, h, w]` coverage targets.
    pub coverage: Tensor<4>,
    /// `[N, 4C, h, w]` bbox targets.
    pub bbox: Tensor<4>,
    /// `[N, 4C, h, w]`: 1 where a bbox target is set (the class's coverage is 1).
    pub bbox_mask: Tensor<4>,
    /// Number of covered class cells in the batch (normalises the bbox loss).
    pub covered: usize,
    /// Output grid `(h, w)`.
    pub grid_hw: (usize, usize),
}

/// Stacks per-image targets (all with the same classes and grid) into tensors on `device`.
pub fn batch_targets(
    targets: &[DetectNetTargets],
    device: &Device,
) -> Result<DetectNetBatch, HeadError> {
    let first = targets.first().ok_or(HeadError::EmptyBatch)?;
    let (c, (h, w)) = (first.num_classes, first.grid_hw);
    let grid = h * w;
    let shape_of = |t: &DetectNetTargets| vec![t.num_classes, t.grid_hw.0, t.grid_hw.1];
    let n = targets.len();
    let mut coverage = Vec::with_capacity(n * c * grid);
    let mut bbox = Vec::with_capacity(n * 4 * c * grid);
    let mut bbox_mask = Vec::with_capacity(n * 4 * c * grid);
    for (index, t) in targets.iter().enumerate() {
        let consistent = shape_of(t) == shape_of(first)
            && t.coverage.len() == c * grid
            && t.bbox.len() == 4 * c * grid;
        if !consistent {
            return Err(HeadError::TargetShape {
                index,
                shape: shape_of(t),
                expected: shape_of(first),
            });
        }
        coverage.extend_from_slice(&t.coverage);
        bbox.extend_from_slice(&t.bbox);
        for class_plane in t.coverage.chunks(grid) {
            for _ in 0..4 {
                bbox_mask.extend(class_plane.iter().map(|&v| if v > 0.0 { 1.0 } else { 0.0 }));
            }
        }
    }
    let covered = coverage.iter().filter(|&&v| v > 0.0).count();
    let tensor = |data: Vec<f32>, channels: usize| {
        Tensor::<4>::from_data(TensorData::new(data, [n, channels, h, w]), device)
    };
    Ok(DetectNetBatch {
        coverage: tensor(coverage, c),
        bbox: tensor(bbox, 4 * c),
        bbox_mask: tensor(bbox_mask, 4 * c),
        covered,
        grid_hw: (h, w),
    })
}

/// The DetectNet_v2 loss and its parts, each a one-element tensor.
#[derive(Clone, Debug)]
pub struct DetectNetLoss {
    /// `coverage_weight * coverage + bbox_weight * bbox`: the one to call `backward` on.
    pub total: Tensor<1>,
    pub coverage: Tensor<1>,
    pub bbox: Tensor<1>,
}

/// The loss parts as numbers, for logging.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DetectNetLossValues {
    pub total: f32,
    pub coverage: f32,
    pub bbox: f32,
}

impl DetectNetLoss {
    /// Reads the parts back (one device sync).
    pub fn values(&self) -> DetectNetLossValues {
        DetectNetLossValues {
            total: super::scalar(&self.total),
            coverage: super::scalar(&self.coverage),
            bbox: super::scalar(&self.bbox),
        }
    }
}

/// DetectNet_v2 loss of the network outputs `cov` `[N, C, h, w]` (coverage, 0..1) and `bbox`
/// `[N, 4C, h, w]` (offsets in units of [`BBOX_NORM`] pixels) against `batch`.
///
/// - coverage: mean squared error over every class cell (TAO's L2 coverage cost);
/// - bbox: mean absolute error of the 4 offsets over the covered class cells only.
pub fn loss(
    cov: Tensor<4>,
    bbox: Tensor<4>,
    batch: &DetectNetBatch,
    p: &DetectNetParams,
) -> Result<DetectNetLoss, HeadError> {
    p.validate()?;
    check_shape("coverage", cov.dims(), batch.coverage.dims())?;
    check_shape("bbox", bbox.dims(), batch.bbox.dims())?;
    let coverage = cov.sub(batch.coverage.clone()).square().mean();
    let bbox = bbox
        .sub(batch.bbox.clone())
        .abs()
        .mul(batch.bbox_mask.clone())
        .sum()
        .div_scalar((4 * batch.covered.max(1)) as f32);
    let total = coverage
        .clone()
        .mul_scalar(p.coverage_weight)
        .add(bbox.clone().mul_scalar(p.bbox_weight));
    Ok(DetectNetLoss {
        total,
        coverage,
        bbox,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_read_from_toml_with_defaults() {
        let p: DetectNetParams = toml::from_str("coverage_fraction = 0.5").unwrap();
        assert_eq!(p.coverage_fraction, 0.5);
        assert_eq!((p.stride, p.bbox_weight), (16, 10.0));
        assert!(toml::from_str::<DetectNetParams>("bbox_wieght = 1.0").is_err());
    }

    #[test]
    fn covered_cells_are_the_central_part() {
        // A box 0..160 px on a 16 px grid: centre 80, central 40 % = 48..112; cell centres
        // 56, 72, 88, 104 lie inside (cells 3..=6).
        assert_eq!(covered_cells(0.0, 160.0, 0.4, 16, 10), 3..=6);
        // A box smaller than a cell still covers the cell that holds its centre.
        assert_eq!(covered_cells(33.0, 37.0, 0.4, 16, 10), 2..=2);
        // At the border the range stays inside the grid.
        assert_eq!(covered_cells(150.0, 160.0, 1.0, 16, 10), 9..=9);
        assert_eq!(covered_cells(0.0, 4.0, 1.0, 16, 10), 0..=0);
    }
}
