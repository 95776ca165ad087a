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
