//! Helpers shared by the preprocess tests: owned frames in every format, built from RGB.
#![allow(dead_code)]

use nvtl_core::config::{ModelColorFormat, ScalingFilter, TensorOrder};
use nvtl_core::preprocess::{FrameView, PixelFormat, PreprocessParams};

pub const ALL_FORMATS: [PixelFormat; 7] = [
    PixelFormat::Rgb,
    PixelFormat::Rgbx,
    PixelFormat::Bgr,
    PixelFormat::Bgrx,
    PixelFormat::Nv12,
    PixelFormat::I420,
    PixelFormat::Gray8,
];

/// A frame that owns its planes.
#[derive(Clone, Debug)]
pub struct OwnedFrame {
    pub format: PixelFormat,
    pub width: usize,
    pub height: usize,
    pub planes: Vec<Vec<u8>>,
    pub strides: Vec<usize>,
}

impl OwnedFrame {
    pub fn view(&self) -> FrameView<'_> {
        FrameView {
            format: self.format,
            width: self.width,
            height: self.height,
            planes: self.planes.iter().map(|p| p.as_slice()).collect(),
            strides: self.strides.clone(),
        }
    }
}

/// BT.601 limited-range forward conversion, in floating point, rounded.
pub fn rgb_to_yuv(r: u8, g: u8, b: u8) -> [f64; 3] {
    let (r, g, b) = (r as f64, g as f64, b as f64);
    [
        16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0,
        128.0 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0,
        128.0 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0,
    ]
}

pub fn luma(r: u8, g: u8, b: u8) -> u8 {
    (0.299 * r as f64 + 0.587 * g as f64 + 0.114 * b as f64).round() as u8
}

/// Builds a `format` frame from interleaved RGB (`w * h * 3` bytes). Every stride is the
/// minimum plus `pad` bytes, and padding bytes hold `fill`. YUV chroma is the mean of each 2x2
/// block (clipped at odd edges); GRAY8 is BT.601 luma.
pub fn from_rgb(
    rgb: &[u8],
    w: usize,
    h: usize,
    format: PixelFormat,
    pad: usize,
    fill: u8,
) -> OwnedFrame {
    let px = |x: usize, y: usize| {
        let i = (y * w + x) * 3;
        (rgb[i], rgb[i + 1], rgb[i + 2])
    };
    let mut planes = Vec::new();
    let mut strides = Vec::new();
    let mut plane = |row_bytes: usize, rows: usize, f: &dyn Fn(usize, usize) -> u8| {
        let stride = row_bytes + pad;
        let mut p = vec![fill; stride * rows];
        for y in 0..rows {
            for i in 0..row_bytes {
                p[y * stride + i] = f(i, y);
            }
        }
        planes.push(p);
        strides.push(stride);
    };
    let chroma = |cx: usize, cy: usize, k: usize| -> u8 {
        let mut sum = 0.0;
        let mut n = 0.0;
        for y in 2 * cy..(2 * cy + 2).min(h) {
            for x in 2 * cx..(2 * cx + 2).min(w) {
                let (r, g, b) = px(x, y);
                sum += rgb_to_yuv(r, g, b)[k];
                n += 1.0;
            }
        }
        (sum / n).round().clamp(0.0, 255.0) as u8
    };
    let yval = |x: usize, y: usize| {
        let (r, g, b) = px(x, y);
        rgb_to_yuv(r, g, b)[0].round().clamp(0.0, 255.0) as u8
    };
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    match format {
        PixelFormat::Rgb => plane(w * 3, h, &|i, y| rgb[(y * w) * 3 + i]),
        PixelFormat::Bgr => plane(w * 3, h, &|i, y| rgb[(y * w + i / 3) * 3 + 2 - i % 3]),
        PixelFormat::Rgbx => plane(w * 4, h, &|i, y| {
            if i % 4 == 3 {
                0x5a
            } else {
                rgb[(y * w + i / 4) * 3 + i % 4]
            }
        }),
        PixelFormat::Bgrx => plane(w * 4, h, &|i, y| {
            if i % 4 == 3 {
                0x5a
            } else {
                rgb[(y * w + i / 4) * 3 + 2 - i % 4]
            }
        }),
        PixelFormat::Gray8 => plane(w, h, &|x, y| {
            let (r, g, b) = px(x, y);
            luma(r, g, b)
        }),
        PixelFormat::Nv12 => {
            plane(w, h, &|x, y| yval(x, y));
            plane(cw * 2, ch, &|i, y| chroma(i / 2, y, 1 + i % 2));
        }
        PixelFormat::I420 => {
            plane(w, h, &|x, y| yval(x, y));
            plane(cw, ch, &|x, y| chroma(x, y, 1));
            plane(cw, ch, &|x, y| chroma(x, y, 2));
        }
    }
    OwnedFrame {
        format,
        width: w,
        height: h,
        planes,
        strides,
    }
}

pub fn params(
    nw: usize,
    nh: usize,
    color: ModelColorFormat,
    filter: ScalingFilter,
    order: TensorOrder,
) -> PreprocessParams {
    PreprocessParams {
        network_width: nw,
        network_height: nh,
        color_format: color,
        scale_factor: 1.0,
        offsets: [0.0; 3],
        maintain_aspect_ratio: false,
        symmetric_padding: false,
        filter,
        order,
    }
}

/// Tiny deterministic generator.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

pub fn mean_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32
}
