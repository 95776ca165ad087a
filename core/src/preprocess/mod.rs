//! Frame -> network input tensor: colour conversion, crop, scale (nearest or bilinear),
//! letterbox (maintain-aspect-ratio, symmetric-padding), `(pixel - offset) * net-scale-factor`,
//! NCHW or NHWC.

use crate::config::{ModelColorFormat, ScalingFilter, TensorOrder};

/// Pixel formats the element accepts in system memory (GStreamer names in the comments).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PixelFormat {
    /// RGB, packed 24-bit.
    Rgb,
    /// RGBx / RGBA: 32-bit, alpha or padding ignored.
    Rgbx,
    /// BGR, packed 24-bit.
    Bgr,
    /// BGRx / BGRA.
    Bgrx,
    /// NV12: Y plane + interleaved UV plane at half resolution.
    Nv12,
    /// I420: Y, U, V planes, U and V at half resolution.
    I420,
    /// GRAY8.
    Gray8,
}

/// A borrowed video frame: one slice and one stride (bytes per row) per plane.
#[derive(Clone, Debug)]
pub struct FrameView<'a> {
    pub format: PixelFormat,
    pub width: usize,
    pub height: usize,
    pub planes: Vec<&'a [u8]>,
    pub strides: Vec<usize>,
}

/// Plane pointers and strides of a frame in CUDA device memory (an `NVBUF_MEM_CUDA_DEVICE`
/// surface, or planes uploaded by the caller): what the cuda feature's GPU pre-processing reads.
/// Only the GPU dereferences the pointers; the owner keeps the memory alive while it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceFrame {
    pub format: PixelFormat,
    pub width: usize,
    pub height: usize,
    /// Device addresses of the planes (`format.plane_count()` of them; the rest 0).
    pub planes: [u64; 3],
    pub strides: [usize; 3],
}

/// A region of a frame in whole pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x: usize,
    pub y: usize,
    pub width: usize,
    pub height: usize,
}

/// How to turn a frame region into the network input (from the nvinfer config).
#[derive(Clone, Debug, PartialEq)]
pub struct PreprocessParams {
    pub network_width: usize,
    pub network_height: usize,
    pub color_format: ModelColorFormat,
    /// `net-scale-factor`.
    pub scale_factor: f32,
    /// `offsets`, one per channel (missing ones are 0).
    pub offsets: [f32; 3],
    pub maintain_aspect_ratio: bool,
    pub symmetric_padding: bool,
    pub filter: ScalingFilter,
    pub order: TensorOrder,
}

impl PreprocessParams {
    /// The pre-processing an nvinfer config asks for, into a `width` x `height` network input.
    pub fn from_config(config: &crate::config::InferConfig, width: usize, height: usize) -> Self {
        let mut offsets = [0.0; 3];
        for (slot, value) in offsets.iter_mut().zip(&config.offsets) {
            *slot = *value;
        }
        PreprocessParams {
            network_width: width,
            network_height: height,
            color_format: config.model_color_format,
            scale_factor: config.net_scale_factor,
            offsets,
            maintain_aspect_ratio: config.maintain_aspect_ratio,
            symmetric_padding: config.symmetric_padding,
            filter: config.scaling_filter,
            order: config.network_input_order,
        }
    }
}

/// Maps network-input pixels back to frame pixels:
/// `frame_x = (net_x - pad_x) / scale_x + offset_x`, likewise for y.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transform {
    pub scale_x: f32,
    pub scale_y: f32,
    pub pad_x: f32,
    pub pad_y: f32,
    pub offset_x: f32,
    pub offset_y: f32,
}

mod convert;
#[cfg(feature = "cuda")]
pub mod cuda;
mod kernel;
pub mod reference;

pub use convert::{bt601_luma, yuv_to_rgb_bt601};

/// Why a frame could not be pre-processed. Nothing is written to `out` when this is returned.
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
pub enum PreprocessError {
    #[error("{format:?} frames need {expected} planes and strides, got {planes} planes and {strides} strides")]
    PlaneCount {
        format: PixelFormat,
        expected: usize,
        planes: usize,
        strides: usize,
    },
    #[error("plane {plane}: stride {stride} is smaller than one row ({row_bytes} bytes)")]
    StrideTooSmall {
        plane: usize,
        stride: usize,
        row_bytes: usize,
    },
    #[error("plane {plane}: {len} bytes, need {needed} ({rows} rows of stride {stride})")]
    PlaneTooShort {
        plane: usize,
        len: usize,
        needed: usize,
        rows: usize,
        stride: usize,
    },
    #[error("empty region of interest {roi:?}")]
    EmptyRoi { roi: Rect },
    #[error("region of interest {roi:?} is outside the {width}x{height} frame")]
    RoiOutsideFrame {
        roi: Rect,
        width: usize,
        height: usize,
    },
    #[error("network input size {width}x{height} is empty")]
    EmptyNetwork { width: usize, height: usize },
    #[error("output buffer holds {got} values, the network input needs {expected}")]
    OutputSize { expected: usize, got: usize },
}

impl PixelFormat {
    /// Number of planes (and strides) a frame of this format carries.
    pub fn plane_count(self) -> usize {
        match self {
            PixelFormat::Nv12 => 2,
            PixelFormat::I420 => 3,
            _ => 1,
        }
    }

    /// The code of this format in the GPU kernel `preprocess.cu` (declaration order).
    pub fn kernel_code(self) -> i32 {
        match self {
            PixelFormat::Rgb => 0,
            PixelFormat::Rgbx => 1,
            PixelFormat::Bgr => 2,
            PixelFormat::Bgrx => 3,
            PixelFormat::Nv12 => 4,
            PixelFormat::I420 => 5,
            PixelFormat::Gray8 => 6,
        }
    }

    /// `(bytes per row, rows)` of plane `plane` for a `width` x `height` frame. Chroma planes of
    /// NV12/I420 are `ceil(width/2)` x `ceil(height/2)` samples.
    pub fn plane_size(self, plane: usize, width: usize, height: usize) -> (usize, usize) {
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        match (self, plane) {
            (PixelFormat::Rgb | PixelFormat::Bgr, _) => (width * 3, height),
            (PixelFormat::Rgbx | PixelFormat::Bgrx, _) => (width * 4, height),
            (PixelFormat::Gray8, _) => (width, height),
            (PixelFormat::Nv12 | PixelFormat::I420, 0) => (width, height),
            (PixelFormat::Nv12, _) => (cw * 2, ch),
            (PixelFormat::I420, _) => (cw, ch),
        }
    }
}

impl Rect {
    pub fn new(x: usize, y: usize, width: usize, height: usize) -> Self {
        Rect {
            x,
            y,
            width,
            height,
        }
    }

    /// The whole `width` x `height` frame.
    pub fn full(width: usize, height: usize) -> Self {
        Rect::new(0, 0, width, height)
    }
}

impl FrameView<'_> {
    /// Checks plane count, strides and plane lengths. A plane must hold
    /// `stride * (rows - 1) + bytes_per_row` bytes (the last row need not be padded).
    pub fn validate(&self) -> Result<(), PreprocessError> {
        let expected = self.format.plane_count();
        if self.planes.len() != expected || self.strides.len() != expected {
            return Err(PreprocessError::PlaneCount {
                format: self.format,
                expected,
                planes: self.planes.len(),
                strides: self.strides.len(),
            });
        }
        for (plane, (data, &stride)) in self.planes.iter().zip(&self.strides).enumerate() {
            let (row_bytes, rows) = self.format.plane_size(plane, self.width, self.height);
            if stride < row_bytes {
                return Err(PreprocessError::StrideTooSmall {
                    plane,
                    stride,
                    row_bytes,
                });
            }
            let needed = if rows == 0 {
                0
            } else {
                stride
                    .checked_mul(rows - 1)
                    .and_then(|n| n.checked_add(row_bytes))
                    .unwrap_or(usize::MAX)
            };
            if data.len() < needed {
                return Err(PreprocessError::PlaneTooShort {
                    plane,
                    len: data.len(),
                    needed,
                    rows,
                    stride,
                });
            }
        }
        Ok(())
    }
}

impl PreprocessParams {
    /// Normalisation as `pixel * mul + add[channel]`: `(net-scale-factor, -offset * mul)`, the
    /// form both the CPU and the GPU kernels compute.
    pub fn affine(&self) -> (f32, [f32; 3]) {
        let s = self.scale_factor;
        (s, self.offsets.map(|o| -o * s))
    }

    /// Width, height and channels of the network input, as nvinfer's `NvDsInferNetworkInfo`.
    pub fn network_info(&self) -> [u32; 3] {
        [
            self.network_width as u32,
            self.network_height as u32,
            self.channels() as u32,
        ]
    }

    /// Channels of the network input: 1 for `model-color-format=2` (GRAY), else 3.
    pub fn channels(&self) -> usize {
        match self.color_format {
            ModelColorFormat::Gray => 1,
            ModelColorFormat::Rgb | ModelColorFormat::Bgr => 3,
        }
    }

    /// `channels * network_height * network_width`: the f32 count of one batch entry.
    pub fn tensor_len(&self) -> usize {
        self.channels() * self.network_height * self.network_width
    }

    /// Where the scaled ROI lands in the network input: `(x, y, width, height)` in network pixels.
    ///
    /// Without `maintain_aspect_ratio` it fills the input. With it, nvinfer's rule: the ROI is
    /// scaled to the full network width if the resulting height fits (height truncated to an
    /// integer), else to the full network height; the rest is padding at the right/bottom, or
    /// split evenly (left/top gets the smaller half) with `symmetric_padding`. Never empty.
    pub fn placement(&self, roi_width: usize, roi_height: usize) -> (usize, usize, usize, usize) {
        let (nw, nh) = (self.network_width, self.network_height);
        let (w, h) = if self.maintain_aspect_ratio && roi_width > 0 && roi_height > 0 {
            let hdest = nw as f64 * roi_height as f64 / roi_width as f64;
            if hdest <= nh as f64 {
                (nw, hdest as usize)
            } else {
                (
                    (nh as f64 * roi_width as f64 / roi_height as f64) as usize,
                    nh,
                )
            }
        } else {
            (nw, nh)
        };
        let (w, h) = (w.clamp(1, nw.max(1)), h.clamp(1, nh.max(1)));
        if self.symmetric_padding {
            ((nw - w) / 2, (nh - h) / 2, w, h)
        } else {
            (0, 0, w, h)
        }
    }
}

impl Transform {
    /// The transform of `roi` scaled into `(x, y, width, height)` of the network input (a
    /// [`PreprocessParams::placement`]).
    pub(crate) fn of_placement(roi: Rect, (px, py, sw, sh): (usize, usize, usize, usize)) -> Self {
        Transform {
            scale_x: sw as f32 / roi.width as f32,
            scale_y: sh as f32 / roi.height as f32,
            pad_x: px as f32,
            pad_y: py as f32,
            offset_x: roi.x as f32,
            offset_y: roi.y as f32,
        }
    }

    /// No scaling, padding or offset.
    pub fn identity() -> Self {
        Transform {
            scale_x: 1.0,
            scale_y: 1.0,
            pad_x: 0.0,
            pad_y: 0.0,
            offset_x: 0.0,
            offset_y: 0.0,
        }
    }

    /// Maps a box in network-input pixels to frame pixels (not clipped).
    pub fn to_frame(&self, b: crate::BBox) -> crate::BBox {
        crate::BBox {
            left: (b.left - self.pad_x) / self.scale_x + self.offset_x,
            top: (b.top - self.pad_y) / self.scale_y + self.offset_y,
            width: b.width / self.scale_x,
            height: b.height / self.scale_y,
        }
    }

    /// Maps a box in frame pixels to network-input pixels (the inverse of [`Transform::to_frame`]).
    pub fn to_network(&self, b: crate::BBox) -> crate::BBox {
        crate::BBox {
            left: (b.left - self.offset_x) * self.scale_x + self.pad_x,
            top: (b.top - self.offset_y) * self.scale_y + self.pad_y,
            width: b.width * self.scale_x,
            height: b.height * self.scale_y,
        }
    }
}

/// Checks everything [`preprocess`] needs and returns the placement `(x, y, w, h)`.
fn check(
    frame: &FrameView,
    roi: Rect,
    params: &PreprocessParams,
    out_len: usize,
) -> Result<(usize, usize, usize, usize), PreprocessError> {
    frame.validate()?;
    check_geometry(frame.width, frame.height, roi, params, out_len)
}

/// The checks of [`check`] that need no pixel data: the ROI inside a `width` x `height` frame,
/// a non-empty network input and an output of its size.
fn check_geometry(
    width: usize,
    height: usize,
    roi: Rect,
    params: &PreprocessParams,
    out_len: usize,
) -> Result<(usize, usize, usize, usize), PreprocessError> {
    if roi.width == 0 || roi.height == 0 {
        return Err(PreprocessError::EmptyRoi { roi });
    }
    let inside = roi.x.checked_add(roi.width).is_some_and(|r| r <= width)
        && roi.y.checked_add(roi.height).is_some_and(|b| b <= height);
    if !inside {
        return Err(PreprocessError::RoiOutsideFrame { roi, width, height });
    }
    let (nw, nh) = (params.network_width, params.network_height);
    if nw == 0 || nh == 0 {
        return Err(PreprocessError::EmptyNetwork {
            width: nw,
            height: nh,
        });
    }
    let expected = params
        .channels()
        .checked_mul(nw)
        .and_then(|n| n.checked_mul(nh))
        .unwrap_or(usize::MAX);
    if out_len != expected {
        return Err(PreprocessError::OutputSize {
            expected,
            got: out_len,
        });
    }
    Ok(params.placement(roi.width, roi.height))
}

/// Fills `out` (exactly [`PreprocessParams::tensor_len`] f32: `channels x network_height x
/// network_width` laid out NCHW, or `network_height x network_width x channels` for NHWC) from
/// `roi` of `frame`, the way nvinfer does:
///
/// 1. the frame is seen as 8-bit RGB (NV12/I420: BT.601 limited range, see
///    [`yuv_to_rgb_bt601`], chroma sample `(x/2, y/2)` for pixel `(x, y)`) or, for
///    `model-color-format=2`, as 8-bit luma (YUV: the Y plane as is; RGB-family:
///    [`bt601_luma`]);
/// 2. the ROI is scaled to the placement given by [`PreprocessParams::placement`], sampling
///    pixel centres (`src = (dst + 0.5) * roi / scaled - 0.5`): nearest takes the pixel that
///    holds `src + 0.5`, bilinear interpolates the two nearest pixels per axis, clamped to the ROI;
/// 3. padding pixels are black (0);
/// 4. each value becomes `(pixel - offsets[c]) * scale_factor`, channels in `color_format` order.
///
/// Returns the transform that maps network-input pixels back to frame pixels. Never panics;
/// errors leave `out` untouched.
pub fn preprocess(
    frame: &FrameView,
    roi: Rect,
    params: &PreprocessParams,
    out: &mut [f32],
) -> Result<Transform, PreprocessError> {
    let placement = check(frame, roi, params, out.len())?;
    kernel::run(frame, roi, params, placement, out);
    Ok(Transform::of_placement(roi, placement))
}
