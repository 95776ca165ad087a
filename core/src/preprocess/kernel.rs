//! The fast path of [`super::preprocess`]: rows of the ROI are fetched (straight from the plane,
//! or colour-converted once into a scratch row), resampled horizontally with per-column taps
//! computed once per call, blended vertically, normalised and written; vertically resampled
//! rows are cached so each source row is converted and resampled at most once per call.
//! Everything here assumes `super::check` passed.

use super::convert::{luma_row, yuv_row};
use super::{FrameView, PixelFormat, PreprocessParams, Rect};
use crate::config::{ModelColorFormat, ScalingFilter, TensorOrder};

/// How rows of the ROI are obtained.
enum Source {
    /// Straight from plane `plane`: `bpp` bytes per pixel.
    Direct { plane: usize, bpp: usize },
    /// NV12 / I420 converted to interleaved RGB or BGR.
    Yuv { nv12: bool, bgr: bool },
    /// Packed RGB-family converted to luma; R, G, B bytes at `offs` within `bpp`.
    Luma { bpp: usize, offs: [usize; 3] },
}

struct Rows<'f, 'a> {
    frame: &'f FrameView<'a>,
    roi: Rect,
    source: Source,
    buf: Vec<u8>,
}

impl Rows<'_, '_> {
    /// Row `ry` of the ROI (0-based), `roi.width` pixels.
    fn get(&mut self, ry: usize) -> &[u8] {
        let f = self.frame;
        let fy = self.roi.y + ry;
        let (x, w) = (self.roi.x, self.roi.width);
        match self.source {
            Source::Direct { plane, bpp } => {
                let start = fy * f.strides[plane] + x * bpp;
                &f.planes[plane][start..start + w * bpp]
            }
            Source::Yuv { nv12, bgr } => {
                let y = &f.planes[0][fy * f.strides[0] + x..][..w];
                let cy = fy / 2;
                let cw = f.width.div_ceil(2);
                let buf = &mut self.buf[..w * 3];
                let c0 = x / 2;
                let n = cw - c0;
                match (nv12, bgr) {
                    (true, _) => {
                        let uv = &f.planes[1][cy * f.strides[1] + 2 * c0..][..2 * n];
                        let it = uv.chunks_exact(2).map(|p| (p[0], p[1]));
                        if bgr {
                            yuv_row::<true>(y, it, x, buf);
                        } else {
                            yuv_row::<false>(y, it, x, buf);
                        }
                    }
                    (false, _) => {
                        let u = &f.planes[1][cy * f.strides[1] + c0..][..n];
                        let v = &f.planes[2][cy * f.strides[2] + c0..][..n];
                        let it = u.iter().copied().zip(v.iter().copied());
                        if bgr {
                            yuv_row::<true>(y, it, x, buf);
                        } else {
                            yuv_row::<false>(y, it, x, buf);
                        }
                    }
                }
                buf
            }
            Source::Luma { bpp, offs } => {
                let start = fy * f.strides[0] + x * bpp;
                let src = &f.planes[0][start..start + w * bpp];
                let buf = &mut self.buf[..w];
                if bpp == 4 {
                    luma_row::<4>(src, offs, buf);
                } else {
                    luma_row::<3>(src, offs, buf);
                }
                buf
            }
        }
    }
}

/// Where the scaled ROI goes in the output tensor.
struct Layout {
    nw: usize,
    nh: usize,
    px: usize,
    py: usize,
    sw: usize,
    sh: usize,
    nchw: bool,
    /// Per channel `(mul, add)`: `value = pixel * mul + add`.
    affine: [(f32, f32); 3],
}

pub(super) fn run(
    frame: &FrameView,
    roi: Rect,
    params: &PreprocessParams,
    (px, py, sw, sh): (usize, usize, usize, usize),
    out: &mut [f32],
) {
    let (mul, add) = params.affine();
    let layout = Layout {
        nw: params.network_width,
        nh: params.network_height,
        px,
        py,
        sw,
        sh,
        nchw: params.order == TensorOrder::Nchw,
        affine: [(mul, add[0]), (mul, add[1]), (mul, add[2])],
    };
    // Byte positions of R, G, B within a packed pixel.
    let rgb_pos = match frame.format {
        PixelFormat::Bgr | PixelFormat::Bgrx => [2, 1, 0],
        _ => [0, 1, 2],
    };
    let packed_bpp = match frame.format {
        PixelFormat::Rgbx | PixelFormat::Bgrx => 4,
        PixelFormat::Rgb | PixelFormat::Bgr => 3,
        _ => 1,
    };
    // (source, bytes per pixel of the rows it yields, channel byte offsets, channels)
    let (source, bpp, offs) = match (frame.format, params.color_format) {
        (PixelFormat::Gray8, ModelColorFormat::Gray)
        | (PixelFormat::Nv12 | PixelFormat::I420, ModelColorFormat::Gray) => {
            (Source::Direct { plane: 0, bpp: 1 }, 1, [0, 0, 0])
        }
        (PixelFormat::Gray8, _) => (Source::Direct { plane: 0, bpp: 1 }, 1, [0, 0, 0]),
        (PixelFormat::Nv12 | PixelFormat::I420, color) => (
            Source::Yuv {
                nv12: frame.format == PixelFormat::Nv12,
                bgr: color == ModelColorFormat::Bgr,
            },
            3,
            [0, 1, 2],
        ),
        (_, ModelColorFormat::Gray) => (
            Source::Luma {
                bpp: packed_bpp,
                offs: rgb_pos,
            },
            1,
            [0, 0, 0],
        ),
        (_, ModelColorFormat::Rgb) => (
            Source::Direct {
                plane: 0,
                bpp: packed_bpp,
            },
            packed_bpp,
            rgb_pos,
        ),
        (_, ModelColorFormat::Bgr) => (
            Source::Direct {
                plane: 0,
                bpp: packed_bpp,
            },
            packed_bpp,
            [rgb_pos[2], rgb_pos[1], rgb_pos[0]],
        ),
    };
    let mut rows = Rows {
        frame,
        roi,
        source,
        buf: vec![0; roi.width * 3],
    };
    fill_padding(out, &layout, params.channels());
    let linear = params.filter == ScalingFilter::Bilinear;
    match (bpp, params.channels()) {
        (1, 1) => scale::<1, 1>(&mut rows, offs, linear, &layout, out),
        (1, _) => scale::<1, 3>(&mut rows, offs, linear, &layout, out),
        (3, _) => scale::<3, 3>(&mut rows, offs, linear, &layout, out),
        _ => scale::<4, 3>(&mut rows, offs, linear, &layout, out),
    }
}

/// Writes the normalised black value into every output element outside the placement.
fn fill_padding(out: &mut [f32], l: &Layout, channels: usize) {
    let pad: Vec<f32> = l.affine[..channels].iter().map(|&(_, add)| add).collect();
    let plane = l.nw * l.nh;
    // Spans of pixel indices (y * nw + x) that are padding.
    let right = l.nw - l.px - l.sw;
    let mut spans = vec![(0, l.py * l.nw), ((l.py + l.sh) * l.nw, plane)];
    if l.px > 0 || right > 0 {
        for y in l.py..l.py + l.sh {
            spans.push((y * l.nw, y * l.nw + l.px));
            spans.push(((y + 1) * l.nw - right, (y + 1) * l.nw));
        }
    }
    for (a, b) in spans {
        if a >= b {
            continue;
        }
        if l.nchw {
            for (c, &v) in pad.iter().enumerate() {
                out[c * plane + a..c * plane + b].fill(v);
            }
        } else {
            for px in out[a * channels..b * channels].chunks_exact_mut(channels) {
                px.copy_from_slice(&pad);
            }
        }
    }
}

/// Bilinear tap: byte offsets of the two source pixels in a row and the weight of the second.
#[derive(Clone, Copy)]
struct Tap {
    i0: usize,
    i1: usize,
    w: f32,
}

/// Pixel-centre sampling of `dst` positions over `src` pixels: `(p0, p1, weight of p1)`.
fn linear_map(src: usize, dst: usize) -> impl Iterator<Item = (usize, usize, f32)> {
    let ratio = src as f64 / dst as f64;
    let last = (src - 1) as f64;
    (0..dst).map(move |i| {
        let s = ((i as f64 + 0.5) * ratio - 0.5).clamp(0.0, last);
        let p0 = s.floor() as usize;
        let p1 = (p0 + 1).min(src - 1);
        (p0, p1, (s - p0 as f64) as f32)
    })
}

/// Nearest sampling: the source pixel that holds the destination pixel's centre.
fn nearest_map(src: usize, dst: usize) -> impl Iterator<Item = usize> {
    let ratio = src as f64 / dst as f64;
    (0..dst).map(move |i| (((i as f64 + 0.5) * ratio) as usize).min(src - 1))
}

fn scale<const BPP: usize, const C: usize>(
    rows: &mut Rows,
    offs: [usize; 3],
    linear: bool,
    l: &Layout,
    out: &mut [f32],
) {
    let (rw, rh) = (rows.roi.width, rows.roi.height);
    let mut ha = vec![0f32; C * l.sw];
    let mut ia: Option<usize> = None;
    if !linear {
        let cols: Vec<usize> = nearest_map(rw, l.sw).map(|x| x * BPP).collect();
        for (y, sy) in nearest_map(rh, l.sh).enumerate() {
            if ia != Some(sy) {
                hpass_nearest::<BPP, C>(rows.get(sy), &cols, offs, &mut ha);
                ia = Some(sy);
            }
            emit::<C>(out, l, y, &ha, None);
        }
        return;
    }
    let taps: Vec<Tap> = linear_map(rw, l.sw)
        .map(|(x0, x1, w)| Tap {
            i0: x0 * BPP,
            i1: x1 * BPP,
            w,
        })
        .collect();
    let mut hb = vec![0f32; C * l.sw];
    let mut ib: Option<usize> = None;
    for (y, (y0, y1, wy)) in linear_map(rh, l.sh).enumerate() {
        if ia != Some(y0) {
            if ib == Some(y0) {
                std::mem::swap(&mut ha, &mut hb);
                std::mem::swap(&mut ia, &mut ib);
            } else {
                hpass_linear::<BPP, C>(rows.get(y0), &taps, offs, &mut ha);
                ia = Some(y0);
            }
        }
        if y1 == y0 || wy == 0.0 {
            emit::<C>(out, l, y, &ha, None);
            continue;
        }
        if ib != Some(y1) {
            hpass_linear::<BPP, C>(rows.get(y1), &taps, offs, &mut hb);
            ib = Some(y1);
        }
        emit::<C>(out, l, y, &ha, Some((&hb, wy)));
    }
}

/// Horizontal bilinear resampling of one row into `C` planar runs of `taps.len()` values.
#[inline(never)]
fn hpass_linear<const BPP: usize, const C: usize>(
    row: &[u8],
    taps: &[Tap],
    offs: [usize; 3],
    dst: &mut [f32],
) {
    let sw = taps.len();
    for (c, d) in dst.chunks_exact_mut(sw).take(C).enumerate() {
        let o = offs[c];
        for (d, t) in d.iter_mut().zip(taps) {
            let a = row[t.i0 + o] as f32;
            let b = row[t.i1 + o] as f32;
            *d = a + (b - a) * t.w;
        }
    }
}

/// Horizontal nearest sampling of one row into `C` planar runs of `cols.len()` values.
#[inline(never)]
fn hpass_nearest<const BPP: usize, const C: usize>(
    row: &[u8],
    cols: &[usize],
    offs: [usize; 3],
    dst: &mut [f32],
) {
    let sw = cols.len();
    for (c, d) in dst.chunks_exact_mut(sw).take(C).enumerate() {
        let o = offs[c];
        for (d, &i) in d.iter_mut().zip(cols) {
            *d = row[i + o] as f32;
        }
    }
}

/// Writes output row `y` of the placement: `a` (planar, `C x sw`), blended towards `b` by its
/// weight when given, normalised.
#[inline(never)]
fn emit<const C: usize>(
    out: &mut [f32],
    l: &Layout,
    y: usize,
    a: &[f32],
    b: Option<(&[f32], f32)>,
) {
    let sw = l.sw;
    let row = (l.py + y) * l.nw + l.px;
    if l.nchw {
        let plane = l.nw * l.nh;
        for c in 0..C {
            let dst = &mut out[c * plane + row..c * plane + row + sw];
            let ar = &a[c * sw..(c + 1) * sw];
            let (m, k) = l.affine[c];
            match b {
                Some((b, w)) => {
                    let br = &b[c * sw..(c + 1) * sw];
                    for ((d, &x), &z) in dst.iter_mut().zip(ar).zip(br) {
                        *d = (x + (z - x) * w) * m + k;
                    }
                }
                None => {
                    for (d, &x) in dst.iter_mut().zip(ar) {
                        *d = x * m + k;
                    }
                }
            }
        }
    } else {
        let dst = &mut out[row * C..(row + sw) * C];
        let ar: [&[f32]; C] = std::array::from_fn(|c| &a[c * sw..(c + 1) * sw]);
        match b {
            Some((b, w)) => {
                let br: [&[f32]; C] = std::array::from_fn(|c| &b[c * sw..(c + 1) * sw]);
                for (i, px) in dst.chunks_exact_mut(C).enumerate() {
                    for c in 0..C {
                        let (x, z) = (ar[c][i], br[c][i]);
                        px[c] = (x + (z - x) * w) * l.affine[c].0 + l.affine[c].1;
                    }
                }
            }
            None => {
                for (i, px) in dst.chunks_exact_mut(C).enumerate() {
                    for c in 0..C {
                        px[c] = ar[c][i] * l.affine[c].0 + l.affine[c].1;
                    }
                }
            }
        }
    }
}
