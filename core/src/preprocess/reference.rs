//! A deliberately plain per-pixel implementation of [`super::preprocess`]'s contract, written
//! without the fast path's tables or fixed point: the yardstick for tests and the benchmark.
//! Colour conversion here is in floating point, so it may differ from the fast path by one
//! 8-bit step where a value rounds at exactly .5.

use super::{FrameView, PixelFormat, PreprocessError, PreprocessParams, Rect, Transform};
use crate::config::{ModelColorFormat, ScalingFilter, TensorOrder};

/// Pixel `(x, y)` of `frame` as `[R, G, B]` and as luma, both 8-bit.
pub fn pixel(frame: &FrameView, x: usize, y: usize) -> ([u8; 3], u8) {
    let p0 = frame.planes[0];
    let s0 = frame.strides[0];
    let round = |v: f64| v.round().clamp(0.0, 255.0) as u8;
    let luma = |r: u8, g: u8, b: u8| round(0.299 * r as f64 + 0.587 * g as f64 + 0.114 * b as f64);
    let packed = |bpp: usize, swap: bool| {
        let i = y * s0 + x * bpp;
        let (r, g, b) = (p0[i], p0[i + 1], p0[i + 2]);
        let rgb = if swap { [b, g, r] } else { [r, g, b] };
        (rgb, luma(rgb[0], rgb[1], rgb[2]))
    };
    match frame.format {
        PixelFormat::Rgb => packed(3, false),
        PixelFormat::Bgr => packed(3, true),
        PixelFormat::Rgbx => packed(4, false),
        PixelFormat::Bgrx => packed(4, true),
        PixelFormat::Gray8 => {
            let g = p0[y * s0 + x];
            ([g, g, g], g)
        }
        PixelFormat::Nv12 | PixelFormat::I420 => {
            let yv = p0[y * s0 + x] as f64;
            let (cx, cy) = (x / 2, y / 2);
            let (u, v) = if frame.format == PixelFormat::Nv12 {
                let i = cy * frame.strides[1] + 2 * cx;
                (frame.planes[1][i], frame.planes[1][i + 1])
            } else {
                (
                    frame.planes[1][cy * frame.strides[1] + cx],
                    frame.planes[2][cy * frame.strides[2] + cx],
                )
            };
            let (c, d, e) = (yv - 16.0, u as f64 - 128.0, v as f64 - 128.0);
            let k = 255.0 / 219.0;
            let kc = 255.0 / 224.0;
            let r = round(k * c + kc * 1.402 * e);
            let g = round(k * c - kc * 0.344136 * d - kc * 0.714136 * e);
            let b = round(k * c + kc * 1.772 * d);
            ([r, g, b], yv as u8)
        }
    }
}

/// Same contract as [`super::preprocess`], computed pixel by pixel in `f64`.
pub fn preprocess_naive(
    frame: &FrameView,
    roi: Rect,
    params: &PreprocessParams,
    out: &mut [f32],
) -> Result<Transform, PreprocessError> {
    let (px, py, sw, sh) = super::check(frame, roi, params, out.len())?;
    let (nw, nh, ch) = (
        params.network_width,
        params.network_height,
        params.channels(),
    );
    let sample = |x: usize, y: usize| -> [f64; 3] {
        let (rgb, l) = pixel(frame, roi.x + x, roi.y + y);
        match params.color_format {
            ModelColorFormat::Rgb => rgb.map(f64::from),
            ModelColorFormat::Bgr => [rgb[2] as f64, rgb[1] as f64, rgb[0] as f64],
            ModelColorFormat::Gray => [l as f64; 3],
        }
    };
    let fx = roi.width as f64 / sw as f64;
    let fy = roi.height as f64 / sh as f64;
    for oy in 0..nh {
        for ox in 0..nw {
            let inside = ox >= px && ox < px + sw && oy >= py && oy < py + sh;
            let value: [f64; 3] = if !inside {
                [0.0; 3]
            } else {
                let (dx, dy) = ((ox - px) as f64 + 0.5, (oy - py) as f64 + 0.5);
                match params.filter {
                    ScalingFilter::Nearest => {
                        let sx = ((dx * fx) as usize).min(roi.width - 1);
                        let sy = ((dy * fy) as usize).min(roi.height - 1);
                        sample(sx, sy)
                    }
                    ScalingFilter::Bilinear => {
                        let sx = (dx * fx - 0.5).clamp(0.0, (roi.width - 1) as f64);
                        let sy = (dy * fy - 0.5).clamp(0.0, (roi.height - 1) as f64);
                        let (x0, y0) = (sx.floor() as usize, sy.floor() as usize);
                        let (x1, y1) = ((x0 + 1).min(roi.width - 1), (y0 + 1).min(roi.height - 1));
                        let (wx, wy) = (sx - x0 as f64, sy - y0 as f64);
                        let (a, b) = (sample(x0, y0), sample(x1, y0));
                        let (c, d) = (sample(x0, y1), sample(x1, y1));
                        std::array::from_fn(|k| {
                            let top = a[k] + (b[k] - a[k]) * wx;
                            let bottom = c[k] + (d[k] - c[k]) * wx;
                            top + (bottom - top) * wy
                        })
                    }
                }
            };
            for (c, v) in value.iter().take(ch).enumerate() {
                let idx = match params.order {
                    TensorOrder::Nchw => (c * nh + oy) * nw + ox,
                    TensorOrder::Nhwc => (oy * nw + ox) * ch + c,
                };
                out[idx] = ((v - params.offsets[c] as f64) * params.scale_factor as f64) as f32;
            }
        }
    }
    Ok(Transform::of_placement(roi, (px, py, sw, sh)))
}
