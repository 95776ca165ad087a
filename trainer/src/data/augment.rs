//! Training-time augmentation of an RGB image and its boxes: random crop, scale jitter (zoom in
//! or out on a canvas of the same size), horizontal flip, colour jitter.
//!
//! An [`Augmenter`] draws an [`AugmentPlan`] from a seeded rng; the plan is then applied to the
//! image and, with exactly the same geometry, to the boxes. Boxes are clipped to the result and
//! dropped when narrower or lower than [`MIN_BOX_SIZE`] pixels.

use image::RgbImage;
use rand::{Rng, RngExt};

use super::Object;
use crate::spec::AugmentSpec;

/// Boxes smaller than this (width or height, pixels) after cropping / zooming are dropped.
pub const MIN_BOX_SIZE: f32 = 2.0;

/// The smallest fraction of the width and of the height a random crop keeps.
pub const MIN_CROP_FRACTION: f64 = 0.6;

/// Zoom: the content is scaled by `factor` and shifted by `(tx, ty)` pixels on a canvas of the
/// input's size: `x' = x * factor + tx`, `y' = y * factor + ty`. Uncovered pixels are black.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Zoom {
    pub factor: f32,
    pub tx: f32,
    pub ty: f32,
}

/// Multiplicative colour factors, 1 = unchanged.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ColorJitter {
    /// Every channel times this.
    pub brightness: f32,
    /// Distance from the image's mean grey level times this.
    pub contrast: f32,
    /// Distance of each channel from the pixel's grey level times this.
    pub saturation: f32,
}

/// One sample's augmentation, applied in field order: crop, zoom, flip, colour.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AugmentPlan {
    /// `[x, y, width, height]` of the kept region, in input pixels.
    pub crop: Option<[u32; 4]>,
    pub zoom: Option<Zoom>,
    /// Mirror left-right: `x' = width - x`.
    pub flip: bool,
    pub color: Option<ColorJitter>,
}

impl AugmentPlan {
    /// No change.
    pub fn identity() -> AugmentPlan {
        AugmentPlan {
            crop: None,
            zoom: None,
            flip: false,
            color: None,
        }
    }

    /// Size `(width, height)` of the result for a `width` x `height` input.
    pub fn output_size(&self, width: u32, height: u32) -> (u32, u32) {
        match self.crop {
            Some([_, _, w, h]) => (w, h),
            None => (width, height),
        }
    }

    /// The boxes of a `width` x `height` input after the plan, clipped, small ones dropped.
    /// `truncated` grows by the part of each box that was cut away.
    pub fn apply_boxes(&self, width: u32, height: u32, objects: &[Object]) -> Vec<Object> {
        let (out_w, out_h) = self.output_size(width, height);
        let (out_w, out_h) = (out_w as f32, out_h as f32);
        objects
            .iter()
            .filter_map(|object| {
                let [mut x1, mut y1, mut x2, mut y2] = object.bbox;
                let original_area = (x2 - x1).max(0.0) * (y2 - y1).max(0.0);
                // Area in the coordinates of the current step, before its clipping.
                let mut scale_area = 1.0;
                if let Some([cx, cy, _, _]) = self.crop {
                    let (cx, cy) = (cx as f32, cy as f32);
                    (x1, y1, x2, y2) = (x1 - cx, y1 - cy, x2 - cx, y2 - cy);
                    (x1, y1, x2, y2) = clip(x1, y1, x2, y2, out_w, out_h);
                }
                if let Some(zoom) = self.zoom {
                    let f = zoom.factor;
                    (x1, y1, x2, y2) = (
                        x1 * f + zoom.tx,
                        y1 * f + zoom.ty,
                        x2 * f + zoom.tx,
                        y2 * f + zoom.ty,
                    );
                    scale_area = f * f;
                    (x1, y1, x2, y2) = clip(x1, y1, x2, y2, out_w, out_h);
                }
                if x2 - x1 < MIN_BOX_SIZE || y2 - y1 < MIN_BOX_SIZE {
                    return None;
                }
                if self.flip {
                    (x1, x2) = (out_w - x2, out_w - x1);
                }
                let visible = (x2 - x1) * (y2 - y1) / scale_area;
                let cut = if original_area > 0.0 {
                    (1.0 - visible / original_area).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                Some(Object {
                    class: object.class,
                    bbox: [x1, y1, x2, y2],
                    truncated: object.truncated.max(cut),
                    occluded: object.occluded,
                })
            })
            .collect()
    }

    /// Applies the plan to `image` and its `objects`.
    pub fn apply(&self, image: RgbImage, objects: &[Object]) -> (RgbImage, Vec<Object>) {
        let boxes = self.apply_boxes(image.width(), image.height(), objects);
        let mut image = match self.crop {
            Some([x, y, w, h]) => image::imageops::crop_imm(&image, x, y, w, h).to_image(),
            None => image,
        };
        if let Some(zoom) = self.zoom {
            image = zoom_image(&image, zoom);
        }
        if self.flip {
            image::imageops::flip_horizontal_in_place(&mut image);
        }
        if let Some(color) = self.color {
            jitter_colors(&mut image, color);
        }
        (image, boxes)
    }
}

fn clip(x1: f32, y1: f32, x2: f32, y2: f32, w: f32, h: f32) -> (f32, f32, f32, f32) {
    (
        x1.clamp(0.0, w),
        y1.clamp(0.0, h),
        x2.clamp(0.0, w),
        y2.clamp(0.0, h),
    )
}

/// Bilinear resampling of `image` under `zoom` (pixel centres: source
/// `(x' + 0.5 - tx) / factor - 0.5`), black outside the source.
fn zoom_image(image: &RgbImage, zoom: Zoom) -> RgbImage {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let mut out = RgbImage::new(w as u32, h as u32);
    if w == 0 || h == 0 {
        return out;
    }
    // Per output column / row: the two source indices and the weight of the second, or None
    // where the output pixel lies outside the scaled image.
    let taps = |size: usize, shift: f32| -> Vec<Option<(usize, usize, f32)>> {
        let max = size as f32 - 1.0;
        (0..size)
            .map(|o| {
                let s = (o as f32 + 0.5 - shift) / zoom.factor - 0.5;
                if s < -0.5 || s > max + 0.5 {
                    return None;
                }
                let s = s.clamp(0.0, max);
                let i0 = s.floor() as usize;
                Some((i0, (i0 + 1).min(size - 1), s - i0 as f32))
            })
            .collect()
    };
    let (columns, rows) = (taps(w, zoom.tx), taps(h, zoom.ty));
    let src = image.as_raw();
    let row_bytes = w * 3;
    let dst = &mut *out;
    for (v, row) in rows.iter().enumerate() {
        let Some((y0, y1, fy)) = *row else { continue };
        let (top, bottom) = (
            &src[y0 * row_bytes..][..row_bytes],
            &src[y1 * row_bytes..][..row_bytes],
        );
        let out_row = &mut dst[v * row_bytes..][..row_bytes];
        for (u, column) in columns.iter().enumerate() {
            let Some((x0, x1, fx)) = *column else {
                continue;
            };
            for ch in 0..3 {
                let t = top[x0 * 3 + ch] as f32 * (1.0 - fx) + top[x1 * 3 + ch] as f32 * fx;
                let b = bottom[x0 * 3 + ch] as f32 * (1.0 - fx) + bottom[x1 * 3 + ch] as f32 * fx;
                out_row[u * 3 + ch] = (t * (1.0 - fy) + b * fy).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

/// BT.601 grey level of an RGB pixel.
fn grey(p: [f32; 3]) -> f32 {
    0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]
}

fn jitter_colors(image: &mut RgbImage, color: ColorJitter) {
    let pixels = (image.width() as usize * image.height() as usize).max(1);
    let mean = image
        .pixels()
        .map(|p| grey(p.0.map(f32::from)) as f64)
        .sum::<f64>() as f32
        / pixels as f32
        * color.brightness;
    for pixel in image.pixels_mut() {
        let mut value = pixel.0.map(|v| v as f32 * color.brightness);
        for v in &mut value {
            *v = (*v - mean) * color.contrast + mean;
        }
        let g = grey(value);
        pixel.0 = value.map(|v| ((v - g) * color.saturation + g).round().clamp(0.0, 255.0) as u8);
    }
}

/// Draws [`AugmentPlan`]s as an [`AugmentSpec`] says.
#[derive(Clone, Debug, PartialEq)]
pub struct Augmenter {
    pub spec: AugmentSpec,
}

impl Augmenter {
    pub fn new(spec: AugmentSpec) -> Augmenter {
        Augmenter { spec }
    }

    /// A plan for a `width` x `height` image. Draws from `rng` in a fixed order, so the same
    /// rng state gives the same plan.
    pub fn plan<R: Rng + ?Sized>(&self, width: u32, height: u32, rng: &mut R) -> AugmentPlan {
        let spec = &self.spec;
        let mut plan = AugmentPlan::identity();
        if spec.crop > 0.0 && width > 0 && height > 0 && rng.random_bool(spec.crop.min(1.0)) {
            let fw = rng.random_range(MIN_CROP_FRACTION..=1.0);
            let fh = rng.random_range(MIN_CROP_FRACTION..=1.0);
            let cw = ((width as f64 * fw).round() as u32).clamp(1, width);
            let ch = ((height as f64 * fh).round() as u32).clamp(1, height);
            let x = rng.random_range(0..=width - cw);
            let y = rng.random_range(0..=height - ch);
            plan.crop = Some([x, y, cw, ch]);
        }
        let (w, h) = plan.output_size(width, height);
        let [lo, hi] = spec.scale;
        if lo > 0.0 && lo <= hi && !(lo == 1.0 && hi == 1.0) {
            let factor = if lo == hi {
                lo
            } else {
                rng.random_range(lo..=hi)
            } as f32;
            let shift = |rng: &mut R, size: u32| -> f32 {
                let slack = size as f32 * (1.0 - factor);
                let (a, b) = if slack <= 0.0 {
                    (slack, 0.0)
                } else {
                    (0.0, slack)
                };
                if a == b {
                    a
                } else {
                    rng.random_range(a..=b)
                }
            };
            let tx = shift(rng, w);
            let ty = shift(rng, h);
            plan.zoom = Some(Zoom { factor, tx, ty });
        }
        if spec.flip > 0.0 && rng.random_bool(spec.flip.min(1.0)) {
            plan.flip = true;
        }
        if spec.color > 0.0 {
            let a = spec.color as f32;
            let factor = |rng: &mut R| 1.0 + rng.random_range(-a..=a);
            plan.color = Some(ColorJitter {
                brightness: factor(rng),
                contrast: factor(rng),
                saturation: factor(rng),
            });
        }
        plan
    }
}
