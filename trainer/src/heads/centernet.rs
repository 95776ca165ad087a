//! CenterNet head: heat-map and ltrb targets that core's CenterNet decoder turns back into the
//! encoded boxes, and the focal + L1 loss.
//!
//! The decoder (core/src/decode/centernet.rs) reads, for a heat-map peak at grid cell `(x, y)`
//! with `sx = net_w / grid_w`, `sy = net_h / grid_h`, the box
//! `(sx*x - l, sy*y - t, sx*x + r, sy*y + b)` from the ltrb planes at that cell. The encoder
//! puts each object on the cell holding its box centre, `(floor(cx / sx), floor(cy / sy))` as
//! CenterNet's reference code does (the zoo model's peaks sit there for 7 of 13 detections on
//! the test images, on the nearest cell for 4), writes a gaussian peak of exactly 1 there in
//! the object's class plane, and the distances `l = sx*x - left`, `t = sy*y - top`,
//! `r = right - sx*x`, `b = bottom - sy*y` (input pixels) in the ltrb planes, so decoding gives
//! the box back.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::{
    check_input_size, check_shape, check_weight, clipped_box, drawing_order, HeadError, Object,
};

/// The IoU that a box displaced by the gaussian radius still reaches (CornerNet, CenterNet).
pub const MIN_OVERLAP: f32 = 0.7;
/// Heat-map probabilities are clamped to `[HEAT_CLAMP, 1 - HEAT_CLAMP]` before the logarithms.
pub const HEAT_CLAMP: f32 = 1e-4;

/// Target and loss parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CenterNetParams {
    /// Network-input pixels per heat-map cell (4 for the zoo model: 512 -> 128).
    pub stride: usize,
    /// Weight of the focal loss in the total.
    pub heatmap_weight: f32,
    /// Weight of the ltrb L1 loss (measured in grid cells, see [`loss`]) in the total.
    pub box_weight: f32,
    /// Focal-loss exponent on `(1 - p)` at peaks and on `p` elsewhere (CornerNet: 2).
    pub focal_alpha: f32,
    /// Exponent of the `(1 - y)` penalty reduction near peaks (CornerNet: 4).
    pub focal_beta: f32,
    /// The gaussian radius in cells is at least this.
    pub min_radius: usize,
}

impl Default for CenterNetParams {
    fn default() -> Self {
        CenterNetParams {
            stride: 4,
            heatmap_weight: 1.0,
            box_weight: 0.1,
            focal_alpha: 2.0,
            focal_beta: 4.0,
            min_radius: 0,
        }
    }
}

impl CenterNetParams {
    /// Checks every parameter's range.
    pub fn validate(&self) -> Result<(), HeadError> {
        if self.stride == 0 {
            return Err(HeadError::Param {
                name: "stride",
                value: "0".into(),
                reason: "the heat map needs a stride >= 1".into(),
            });
        }
        check_weight("heatmap_weight", self.heatmap_weight)?;
        check_weight("box_weight", self.box_weight)?;
        check_weight("focal_alpha", self.focal_alpha)?;
        check_weight("focal_beta", self.focal_beta)?;
        Ok(())
    }

    /// The heat-map grid `(h, w)` for a network input `(height, width)`: input / stride,
    /// rounded up (TensorFlow's SAME padding).
    pub fn grid_hw(&self, input_hw: (usize, usize)) -> (usize, usize) {
        let stride = self.stride.max(1);
        (input_hw.0.div_ceil(stride), input_hw.1.div_ceil(stride))
    }
}

/// Targets of one image.
#[derive(Clone, Debug, PartialEq)]
pub struct CenterNetTargets {
    pub num_classes: usize,
    /// Network input `(height, width)` in pixels.
    pub input_hw: (usize, usize),
    /// Heat-map grid `(h, w)`.
    pub grid_hw: (usize, usize),
    /// `[C, h, w]`: 1 at each object's cell, gaussian around it, 0 elsewhere.
    pub heat: Vec<f32>,
    /// `[4, h, w]`: left, top, right, bottom distances in input pixels at object cells, else 0.
    pub ltrb: Vec<f32>,
    /// `[h, w]`: 1 at cells that carry an ltrb target.
    pub mask: Vec<f32>,
    /// Objects (indices into the input) with nothing inside the network input; not encoded.
    pub skipped: Vec<usize>,
    /// Objects whose ltrb a smaller object on the same cell replaced: they decode with that
    /// object's box (one ltrb per cell is all the model has).
    pub overwritten: Vec<usize>,
    /// The `focal_beta` of the encoding parameters: [`batch_targets`] computes the background
    /// weights `(1 - y)^beta` of the focal loss with it, once per batch.
    pub focal_beta: f32,
}

/// Encodes `objects` (class, `[left, top, right, bottom]` in network-input pixels) of one
/// image for a network input of `input_hw` = (height, width) pixels.
///
/// Boxes are clipped to the input. The gaussian radius is [`gaussian_radius`] of the box in
/// cells with [`MIN_OVERLAP`], rounded down and at least `p.min_radius`; sigma =
/// (2 * radius + 1) / 6. Where gaussians of one class overlap, the maximum wins.
pub fn encode(
    objects: &[Object],
    num_classes: usize,
    input_hw: (usize, usize),
    p: &CenterNetParams,
) -> Result<CenterNetTargets, HeadError> {
    p.validate()?;
    check_input_size(input_hw)?;
    if num_classes == 0 {
        return Err(HeadError::Param {
            name: "num_classes",
            value: "0".into(),
            reason: "the heat map needs at least one class".into(),
        });
    }
    let (gh, gw) = p.grid_hw(input_hw);
    let plane = gh * gw;
    // The decoder's cell scale, computed the same way.
    let sx = input_hw.1 as f32 / gw as f32;
    let sy = input_hw.0 as f32 / gh as f32;

    let mut boxes = Vec::with_capacity(objects.len());
    let mut skipped = Vec::new();
    for (index, object) in objects.iter().enumerate() {
        match clipped_box(index, object, num_classes, input_hw)? {
            Some(b) => boxes.push((index, object.0, b)),
            None => skipped.push(index),
        }
    }

    let mut heat = vec![0.0f32; num_classes * plane];
    let mut ltrb = vec![0.0f32; 4 * plane];
    let mut mask = vec![0.0f32; plane];
    let mut owner: Vec<Option<usize>> = vec![None; plane];
    let mut overwritten = Vec::new();
    for k in drawing_order(&boxes) {
        let (index, class, [left, top, right, bottom]) = boxes[k];
        let x = (((left + right) / 2.0 / sx).floor() as usize).min(gw - 1);
        let y = (((top + bottom) / 2.0 / sy).floor() as usize).min(gh - 1);
        let radius =
            (gaussian_radius((bottom - top) / sy, (right - left) / sx, MIN_OVERLAP).floor()
                as usize)
                .max(p.min_radius);
        draw_gaussian(
            &mut heat[class * plane..(class + 1) * plane],
            (gh, gw),
            (y, x),
            radius,
        );
        let cell = y * gw + x;
        if let Some(previous) = owner[cell].replace(index) {
            overwritten.push(previous);
        }
        let (px, py) = (sx * x as f32, sy * y as f32);
        ltrb[cell] = px - left;
        ltrb[plane + cell] = py - top;
        ltrb[2 * plane + cell] = right - px;
        ltrb[3 * plane + cell] = bottom - py;
        mask[cell] = 1.0;
    }
    overwritten.sort_unstable();
    Ok(CenterNetTargets {
        num_classes,
        input_hw,
        grid_hw: (gh, gw),
        heat,
        ltrb,
        mask,
        skipped,
        overwritten,
        focal_beta: p.focal_beta,
    })
}

/// The gaussian radius for an object of `height` x `width` (any unit; the radius comes out in
/// the same unit), as CenterNet's and the TensorFlow Object Detection API's target code compute
/// it, so that fine-tuned models see the peak widths they were trained with.
///
/// CornerNet bounds the corner displacement `r` that keeps IoU >= `min_overlap` in three cases
/// (box shifted by r; shrunk by r on each side; grown by r on each side), each the root of a
/// quadratic `a r^2 + b r + c = 0`. The reference code takes `(-b + sqrt(b^2 - 4ac)) / 2` for
/// each (not dividing by `2a`) and the smallest of the three; the result is about 2.8x the exact
/// bound (for a 20 x 20 box 5.47 instead of 1.63), and the reference models were trained with it.
pub fn gaussian_radius(height: f32, width: f32, min_overlap: f32) -> f32 {
    let (h, w, o) = (height.max(0.0), width.max(0.0), min_overlap);
    let (sum, area) = (h + w, h * w);
    let root = |a: f32, b: f32, c: f32| (-b + (b * b - 4.0 * a * c).max(0.0).sqrt()) / 2.0;
    let shifted = root(1.0, -sum, area * (1.0 - o) / (1.0 + o));
    let shrunk = root(4.0, -2.0 * sum, (1.0 - o) * area);
    let grown = root(4.0 * o, 2.0 * o * sum, (o - 1.0) * area);
    shifted.min(shrunk).min(grown).max(0.0)
}

/// Max-blends `exp(-(dx^2 + dy^2) / (2 sigma^2))`, sigma = (2 radius + 1) / 6, over the
/// `(2 radius + 1)^2` cells around `centre` (`(y, x)`) of a `grid_hw` plane. The centre gets 1.
fn draw_gaussian(
    plane: &mut [f32],
    grid_hw: (usize, usize),
    centre: (usize, usize),
    radius: usize,
) {
    let (gh, gw) = grid_hw;
    let (cy, cx) = centre;
    let sigma = (2 * radius + 1) as f32 / 6.0;
    let denominator = 2.0 * sigma * sigma;
    for y in cy.saturating_sub(radius)..=(cy + radius).min(gh - 1) {
        for x in cx.saturating_sub(radius)..=(cx + radius).min(gw - 1) {
            let (dx, dy) = (x.abs_diff(cx) as f32, y.abs_diff(cy) as f32);
            let value = (-(dx * dx + dy * dy) / denominator).exp();
            let cell = &mut plane[y * gw + x];
            *cell = cell.max(value);
        }
    }
}

/// Targets of a batch as tensors, NCHW, with what the loss needs precomputed.
#[derive(Clone, Debug)]
pub struct CenterNetBatch {
    /// `[N, C, h, w]` heat-map targets.
    pub heat: Tensor<4>,
    /// `[N, 4, h, w]` ltrb targets in input pixels.
    pub ltrb: Tensor<4>,
    /// `[N, 1, h, w]`: 1 where an ltrb target is set.
    pub mask: Tensor<4>,
    /// `[N, C, h, w]`: the focal loss's background weights `(1 - y)^beta`, 0 at the peaks.
    pub background_weight: Tensor<4>,
    /// The beta `background_weight` was computed with.
    pub focal_beta: f32,
    /// Flat indices into `[N, C, h, w]` of the peaks (heat target 1).
    pub peak_indices: Tensor<1, Int>,
    /// Flat indices into `[N, 4, h, w]` of the 4 distances at every masked cell, and the
    /// target values there.
    pub box_indices: Tensor<1, Int>,
    pub box_targets: Tensor<1>,
    /// Number of peaks in the batch (normalises the focal loss).
    pub positives: usize,
    /// Number of ltrb targets (cells) in the batch (normalises the L1 loss).
    pub boxes: usize,
    /// Heat-map grid `(h, w)`.
    pub grid_hw: (usize, usize),
}

/// Stacks per-image targets (all with the same classes, grid and `focal_beta`) into tensors on
/// `device`.
pub fn batch_targets(
    targets: &[CenterNetTargets],
    device: &Device,
) -> Result<CenterNetBatch, HeadError> {
    let first = targets.first().ok_or(HeadError::EmptyBatch)?;
    let (c, (h, w)) = (first.num_classes, first.grid_hw);
    let plane = h * w;
    let shape_of = |t: &CenterNetTargets| vec![t.num_classes, t.grid_hw.0, t.grid_hw.1];
    let n = targets.len();
    let beta = first.focal_beta;
    let mut heat = Vec::with_capacity(n * c * plane);
    let mut ltrb = Vec::with_capacity(n * 4 * plane);
    let mut mask = Vec::with_capacity(n * plane);
    let mut box_indices = Vec::new();
    let mut box_targets = Vec::new();
    for (index, t) in targets.iter().enumerate() {
        let consistent = shape_of(t) == shape_of(first)
            && t.heat.len() == c * plane
            && t.ltrb.len() == 4 * plane
            && t.mask.len() == plane;
        if !consistent {
            return Err(HeadError::TargetShape {
                index,
                shape: shape_of(t),
                expected: shape_of(first),
            });
        }
        if t.focal_beta != beta {
            return Err(HeadError::Param {
                name: "focal_beta",
                value: t.focal_beta.to_string(),
                reason: format!(
                    "target {index} was encoded with another beta than the first ({beta})"
                ),
            });
        }
        for cell in (0..plane).filter(|&cell| t.mask[cell] > 0.0) {
            for k in 0..4 {
                box_indices.push(((index * 4 + k) * plane + cell) as i64);
                box_targets.push(t.ltrb[k * plane + cell]);
            }
        }
        heat.extend_from_slice(&t.heat);
        ltrb.extend_from_slice(&t.ltrb);
        mask.extend_from_slice(&t.mask);
    }
    let peak_indices: Vec<i64> = (0..heat.len())
        .filter(|&i| heat[i] >= 1.0)
        .map(|i| i as i64)
        .collect();
    let background_weight: Vec<f32> = heat.iter().map(|&y| background_weight(y, beta)).collect();
    let positives = peak_indices.len();
    let boxes = box_indices.len() / 4;
    let tensor = |data: Vec<f32>, channels: usize| {
        Tensor::<4>::from_data(TensorData::new(data, [n, channels, h, w]), device)
    };
    let indices = |data: Vec<i64>| {
        let len = data.len();
        Tensor::<1, Int>::from_data(TensorData::new(data, [len]), device)
    };
    let box_count = box_targets.len();
    Ok(CenterNetBatch {
        heat: tensor(heat, c),
        ltrb: tensor(ltrb, 4),
        mask: tensor(mask, 1),
        background_weight: tensor(background_weight, c),
        focal_beta: beta,
        peak_indices: indices(peak_indices),
        box_indices: indices(box_indices),
        box_targets: Tensor::from_data(TensorData::new(box_targets, [box_count]), device),
        positives,
        boxes,
        grid_hw: (h, w),
    })
}

/// `(1 - y)^beta` off the peaks, 0 at them.
fn background_weight(y: f32, beta: f32) -> f32 {
    if y >= 1.0 {
        0.0
    } else if y == 0.0 {
        1.0
    } else {
        (1.0 - y).powf(beta)
    }
}

/// The CenterNet loss and its parts, each a one-element tensor.
#[derive(Clone, Debug)]
pub struct CenterNetLoss {
    /// `heatmap_weight * focal + box_weight * box_l1`: the one to call `backward` on.
    pub total: Tensor<1>,
    pub focal: Tensor<1>,
    pub box_l1: Tensor<1>,
}

/// The loss parts as numbers, for logging.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CenterNetLossValues {
    pub total: f32,
    pub focal: f32,
    pub box_l1: f32,
}

impl CenterNetLoss {
    /// Reads the parts back (one device sync).
    pub fn values(&self) -> CenterNetLossValues {
        CenterNetLossValues {
            total: super::scalar(&self.total),
            focal: super::scalar(&self.focal),
            box_l1: super::scalar(&self.box_l1),
        }
    }
}

/// CenterNet loss of the network outputs `heat` `[N, C, h, w]` (probabilities: the zoo model
/// ends the heat map in a sigmoid) and `ltrb` `[N, 4, h, w]` (input pixels) against `batch`.
///
/// - focal: CornerNet's penalty-reduced focal loss, `-(sum over peaks of (1-p)^a log p + sum
///   elsewhere of (1-y)^b p^a log(1-p)) / max(peaks, 1)`, with `p` clamped to
///   `[1e-4, 1 - 1e-4]`;
/// - box_l1: mean absolute ltrb error over the 4 distances of every target cell, in grid cells
///   (input pixels / stride), so that `box_weight` = 0.1 weighs it as CenterNet weighs sizes.
pub fn loss(
    heat: Tensor<4>,
    ltrb: Tensor<4>,
    batch: &CenterNetBatch,
    p: &CenterNetParams,
) -> Result<CenterNetLoss, HeadError> {
    p.validate()?;
    check_shape("heat", heat.dims(), batch.heat.dims())?;
    check_shape("ltrb", ltrb.dims(), batch.ltrb.dims())?;
    let [n, c, h, w] = heat.dims();

    // Full-size work is kept to a few element-wise passes (a 80-class 128x128 map is 1.3 M
    // values per image); peaks and box cells are gathered first.
    let probability = heat.clamp(HEAT_CLAMP, 1.0 - HEAT_CLAMP);
    let background_weight = if batch.focal_beta == p.focal_beta {
        batch.background_weight.clone()
    } else {
        let peaks = batch.heat.clone().greater_equal_scalar(1.0);
        batch
            .heat
            .clone()
            .neg()
            .add_scalar(1.0)
            .powf_scalar(p.focal_beta)
            .mask_fill(peaks, 0.0)
    };
    let background = probability
        .clone()
        .neg()
        .log1p()
        .mul(probability.clone().powf_scalar(p.focal_alpha))
        .mul(background_weight)
        .sum();
    let at_peaks = if batch.positives > 0 {
        let peak = probability
            .reshape([n * c * h * w])
            .select(0, batch.peak_indices.clone());
        peak.clone()
            .log()
            .mul(peak.neg().add_scalar(1.0).powf_scalar(p.focal_alpha))
            .sum()
    } else {
        background.zeros_like()
    };
    let focal = at_peaks
        .add(background)
        .neg()
        .div_scalar(batch.positives.max(1) as f32);

    let box_l1 = if batch.boxes > 0 {
        ltrb.reshape([n * 4 * h * w])
            .select(0, batch.box_indices.clone())
            .sub(batch.box_targets.clone())
            .abs()
            .sum()
            .div_scalar((4 * batch.boxes * p.stride) as f32)
    } else {
        // No boxes: zero, still connected to `ltrb` so that it gets a (zero) gradient.
        ltrb.sum().mul_scalar(0.0)
    };

    let total = focal
        .clone()
        .mul_scalar(p.heatmap_weight)
        .add(box_l1.clone().mul_scalar(p.box_weight));
    Ok(CenterNetLoss {
        total,
        focal,
        box_l1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radius_is_the_reference_codes() {
        // By hand: the grown-box case, (-2o(h+w) + sqrt(4o^2(h+w)^2 + 16o(1-o)hw)) / 2.
        for (h, w, expected) in [
            (20.0f32, 20.0f32, 5.466_401f32),
            (10.0, 40.0, 4.509_493),
            (8.0, 12.0, 2.632_498),
            (2.0, 3.0, 0.658_125),
        ] {
            let r = gaussian_radius(h, w, MIN_OVERLAP);
            assert!((r - expected).abs() < 1e-4, "{h}x{w}: {r} vs {expected}");
            assert_eq!(gaussian_radius(w, h, MIN_OVERLAP), r);
        }
        assert_eq!(gaussian_radius(0.0, 10.0, MIN_OVERLAP), 0.0);
        // Larger boxes get larger radii.
        assert!(
            gaussian_radius(40.0, 40.0, MIN_OVERLAP) > gaussian_radius(20.0, 20.0, MIN_OVERLAP)
        );
    }

    #[test]
    fn gaussian_peak_and_falloff() {
        let mut plane = vec![0.0; 7 * 9];
        draw_gaussian(&mut plane, (7, 9), (3, 4), 2);
        assert_eq!(plane[3 * 9 + 4], 1.0);
        let sigma = 5.0f32 / 6.0;
        let expected = (-1.0 / (2.0 * sigma * sigma)).exp();
        assert!((plane[3 * 9 + 5] - expected).abs() < 1e-6);
        assert!((plane[2 * 9 + 4] - expected).abs() < 1e-6);
        // Outside the radius nothing is drawn.
        assert_eq!(plane[3 * 9 + 7], 0.0);
        assert_eq!(plane[0], 0.0);
        // Clipped at the border without panicking.
        draw_gaussian(&mut plane, (7, 9), (0, 8), 3);
        assert_eq!(plane[8], 1.0);
    }

    #[test]
    fn params_read_from_toml_with_defaults() {
        let p: CenterNetParams = toml::from_str("stride = 8\nmin_radius = 1").unwrap();
        assert_eq!(
            p,
            CenterNetParams {
                stride: 8,
                min_radius: 1,
                ..CenterNetParams::default()
            }
        );
        let error = toml::from_str::<CenterNetParams>("strde = 8").unwrap_err();
        assert!(error.to_string().contains("strde"), "{error}");
    }

    #[test]
    fn grid_rounds_up() {
        let p = CenterNetParams::default();
        assert_eq!(p.grid_hw((512, 512)), (128, 128));
        assert_eq!(p.grid_hw((256, 320)), (64, 80));
        assert_eq!(p.grid_hw((250, 321)), (63, 81));
    }
}
