//! Drawing on packed RGB-family frames in system memory: rectangles (outlined or filled),
//! instance masks, anti-aliased lines, text in the built-in bitmap font (horizontal or rotated to read bottom to
//! top), and a per-class colour palette. nvtlosd draws its overlays with it, the trainer its
//! plots.
//!
//! Colours are `[R, G, B, A]`; `A` blends the colour over the frame (255 opaque, 0 invisible).
//! Coordinates are frame pixels and may lie partly or wholly outside the frame: everything is
//! clipped, nothing panics, whatever the inputs.

pub mod font;

use crate::InstanceMask;

/// Byte order of a packed 8-bit RGB-family pixel (GStreamer's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PackedRgbFormat {
    Rgb,
    Bgr,
    Rgbx,
    Bgrx,
    Rgba,
    Bgra,
    Xrgb,
    Xbgr,
    Argb,
    Abgr,
}

impl PackedRgbFormat {
    pub fn bytes_per_pixel(self) -> usize {
        match self {
            PackedRgbFormat::Rgb | PackedRgbFormat::Bgr => 3,
            _ => 4,
        }
    }

    /// Byte positions of R, G and B within a pixel.
    pub fn rgb_offsets(self) -> [usize; 3] {
        use PackedRgbFormat::*;
        match self {
            Rgb | Rgbx | Rgba => [0, 1, 2],
            Bgr | Bgrx | Bgra => [2, 1, 0],
            Xrgb | Argb => [1, 2, 3],
            Xbgr | Abgr => [3, 2, 1],
        }
    }

    /// Byte position of a real alpha channel (not of an `x` padding byte).
    pub fn alpha_offset(self) -> Option<usize> {
        use PackedRgbFormat::*;
        match self {
            Rgba | Bgra => Some(3),
            Argb | Abgr => Some(0),
            _ => None,
        }
    }
}

/// A writable frame: `height` rows of `stride` bytes, each starting with `width` pixels.
/// Rows (or pixels) that `data` is too short to hold are skipped.
pub struct Canvas<'a> {
    pub data: &'a mut [u8],
    pub width: usize,
    pub height: usize,
    pub stride: usize,
    pub format: PackedRgbFormat,
}

/// `a * b / 255`, rounded.
#[inline]
fn mul255(a: u32, b: u32) -> u32 {
    let t = a * b + 128;
    (t + (t >> 8)) >> 8
}

impl Canvas<'_> {
    /// Blends `color` over every pixel of the rectangle `x, y, w, h` that lies in the frame.
    /// `w` or `h` <= 0 draws nothing.
    pub fn fill_rect(&mut self, x: i32, y: i32, w: i32, h: i32, color: [u8; 4]) {
        let alpha = color[3] as u32;
        if alpha == 0 || w <= 0 || h <= 0 {
            return;
        }
        let clip = |start: i32, len: i32, max: usize| -> (usize, usize) {
            let a = (start as i64).clamp(0, max as i64);
            let b = (start as i64 + len as i64).clamp(0, max as i64);
            (a as usize, b as usize)
        };
        let (x0, x1) = clip(x, w, self.width);
        let (y0, y1) = clip(y, h, self.height);
        if x0 >= x1 || y0 >= y1 {
            return;
        }
        let bpp = self.format.bytes_per_pixel();
        let offs = self.format.rgb_offsets();
        let alpha_at = self.format.alpha_offset();
        let inv = 255 - alpha;
        let premul = [0, 1, 2].map(|c| color[c] as u32 * alpha);
        for row in y0..y1 {
            let Some(start) = row
                .checked_mul(self.stride)
                .and_then(|s| s.checked_add(x0 * bpp))
            else {
                return;
            };
            let end = start.saturating_add((x1 - x0) * bpp).min(self.data.len());
            if start >= end {
                return;
            }
            for px in self.data[start..end].chunks_exact_mut(bpp) {
                for c in 0..3 {
                    let d = &mut px[offs[c]];
                    *d = if alpha == 255 {
                        color[c]
                    } else {
                        // (color * a + dst * (255 - a)) / 255, rounded
                        let t = premul[c] + *d as u32 * inv + 128;
                        ((t + (t >> 8)) >> 8) as u8
                    };
                }
                if let Some(a) = alpha_at {
                    px[a] = (alpha + mul255(px[a] as u32, inv)).min(255) as u8;
                }
            }
        }
    }

    /// Blends `color` over the pixels of the box `x, y, w, h` where `mask`, stretched over the
    /// box (nearest value), is above its threshold: an `NvOSD_MaskParams` as nvdsosd draws it.
    /// A mask with fewer values than its size says draws nothing.
    pub fn fill_mask(
        &mut self,
        x: i32,
        y: i32,
        w: i32,
        h: i32,
        mask: &InstanceMask,
        color: [u8; 4],
    ) {
        let (mask_width, mask_height) = (mask.width as usize, mask.height as usize);
        if w <= 0 || h <= 0 || mask_width == 0 || mask.data.len() < mask_width * mask_height {
            return;
        }
        for row in 0..h {
            let mask_row = row as usize * mask_height / h as usize;
            let values = &mask.data[mask_row * mask_width..(mask_row + 1) * mask_width];
            let covered =
                |col: i32| values[col as usize * mask_width / w as usize] > mask.threshold;
            let mut col = 0;
            while col < w {
                let start = col;
                while col < w && covered(col) {
                    col += 1;
                }
                if col > start {
                    self.fill_rect(
                        x.saturating_add(start),
                        y.saturating_add(row),
                        col - start,
                        1,
                        color,
                    );
                } else {
                    col += 1;
                }
            }
        }
    }

    /// Outlines the rectangle `x, y, w, h` with lines `thickness` pixels wide, drawn inside it
    /// (a box thicker than half its size is filled). Each pixel is blended once.
    pub fn draw_rect(&mut self, x: i32, y: i32, w: i32, h: i32, thickness: u32, color: [u8; 4]) {
        if w <= 0 || h <= 0 || thickness == 0 {
            return;
        }
        let t = thickness.min(i32::MAX as u32) as i32;
        if t.saturating_mul(2) >= w || t.saturating_mul(2) >= h {
            self.fill_rect(x, y, w, h, color);
            return;
        }
        let (x, y) = (x as i64, y as i64);
        let (w64, h64, t64) = (w as i64, h as i64, t as i64);
        // Bands in i64 so far-away boxes do not overflow; clamp back into i32 for fill_rect.
        let c = |v: i64| v.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
        self.fill_rect(c(x), c(y), w, t, color);
        self.fill_rect(c(x), c(y + h64 - t64), w, t, color);
        self.fill_rect(c(x), c(y + t64), t, c(h64 - 2 * t64), color);
        self.fill_rect(c(x + w64 - t64), c(y + t64), t, c(h64 - 2 * t64), color);
    }

    /// Size in frame pixels of `text` drawn at `scale` (0 counts as 1): a margin of one font
    /// pixel around lines of 6x8-font-pixel cells; `\n` starts a new line. Empty text is 0x0.
    pub fn text_size(text: &str, scale: u32) -> (u32, u32) {
        if text.is_empty() {
            return (0, 0);
        }
        let scale = scale.max(1);
        let lines = text.split('\n').count() as u32;
        let cols = text
            .split('\n')
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(0) as u32;
        (
            cols.saturating_mul(font::CELL_WIDTH)
                .saturating_add(1)
                .saturating_mul(scale),
            lines
                .saturating_mul(font::CELL_HEIGHT)
                .saturating_add(1)
                .saturating_mul(scale),
        )
    }

    /// Draws `text` with its top-left corner at `x, y`: `bg` (when given) fills the whole
    /// [`Canvas::text_size`] box, then each ink pixel of each glyph becomes a `scale` x `scale`
    /// square of `fg`. Returns the text size.
    pub fn draw_text(
        &mut self,
        x: i32,
        y: i32,
        text: &str,
        scale: u32,
        fg: [u8; 4],
        bg: Option<[u8; 4]>,
    ) -> (u32, u32) {
        let (w, h) = Self::text_size(text, scale);
        let c = |v: u32| v.min(i32::MAX as u32) as i32;
        if let Some(bg) = bg {
            self.fill_rect(x, y, c(w), c(h), bg);
        }
        let s = scale.max(1) as i64;
        let clamp = |v: i64| v.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
        for (line, text_line) in text.split('\n').enumerate() {
            let top = y as i64 + s * (1 + line as i64 * font::CELL_HEIGHT as i64);
            if top >= self.height as i64 {
                break;
            }
            for (col, ch) in text_line.chars().enumerate() {
                let left = x as i64 + s * (1 + col as i64 * font::CELL_WIDTH as i64);
                if left >= self.width as i64 {
                    break;
                }
                if left + s * (font::GLYPH_WIDTH as i64) < 0 {
                    continue;
                }
                for gy in 0..font::GLYPH_HEIGHT {
                    for gx in 0..font::GLYPH_WIDTH {
                        if font::ink(ch, gx, gy) {
                            let px = clamp(left + s * gx as i64);
                            let py = clamp(top + s * gy as i64);
                            self.fill_rect(px, py, c(s as u32), c(s as u32), fg);
                        }
                    }
                }
            }
        }
        (w, h)
    }

    /// Draws `text` rotated a quarter turn counter-clockwise (it reads bottom to top, as a
    /// y-axis label does), inside the box whose top-left corner is `x, y` and whose size is
    /// [`Canvas::text_size`] with width and height swapped. `bg` fills that box when given.
    /// Returns the rotated size `(width, height)`.
    pub fn draw_text_rotated(
        &mut self,
        x: i32,
        y: i32,
        text: &str,
        scale: u32,
        fg: [u8; 4],
        bg: Option<[u8; 4]>,
    ) -> (u32, u32) {
        let (w, h) = Self::text_size(text, scale);
        let c = |v: u32| v.min(i32::MAX as u32) as i32;
        if let Some(bg) = bg {
            self.fill_rect(x, y, c(h), c(w), bg);
        }
        let s = scale.max(1) as i64;
        let clamp = |v: i64| v.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
        for (line, text_line) in text.split('\n').enumerate() {
            // Unrotated top of the line; it becomes the rotated left edge.
            let top = s * (1 + line as i64 * font::CELL_HEIGHT as i64);
            if x as i64 + top >= self.width as i64 {
                break;
            }
            for (col, ch) in text_line.chars().enumerate() {
                let left = s * (1 + col as i64 * font::CELL_WIDTH as i64);
                // Unrotated column u lands on rotated row (w - 1 - u): glyphs run upwards.
                if y as i64 + w as i64 - left <= 0 {
                    break;
                }
                for gy in 0..font::GLYPH_HEIGHT {
                    for gx in 0..font::GLYPH_WIDTH {
                        if font::ink(ch, gx, gy) {
                            let u = left + s * gx as i64;
                            let v = top + s * gy as i64;
                            let px = clamp(x as i64 + v);
                            let py = clamp(y as i64 + w as i64 - u - s);
                            self.fill_rect(px, py, c(s as u32), c(s as u32), fg);
                        }
                    }
                }
            }
        }
        (h, w)
    }

    /// Draws the segment from `(x0, y0)` to `(x1, y1)`, `width` pixels wide with round caps,
    /// anti-aliased: each pixel is blended with `color` in proportion to how far its centre
    /// (`x + 0.5, y + 0.5`) lies inside the stroke. Coordinates are in pixels (pixel `x` spans
    /// `x..x + 1`); non-finite coordinates or a width that is not positive draw nothing.
    pub fn draw_line(&mut self, x0: f32, y0: f32, x1: f32, y1: f32, width: f32, color: [u8; 4]) {
        let (x0, y0, x1, y1, width) = (x0 as f64, y0 as f64, x1 as f64, y1 as f64, width as f64);
        if ![x0, y0, x1, y1, width].iter().all(|v| v.is_finite()) || width <= 0.0 {
            return;
        }
        if color[3] == 0 || self.width == 0 || self.height == 0 {
            return;
        }
        // Pixels whose centre is within `reach` of the segment get some coverage.
        let half = width / 2.0;
        let reach = half + 0.5;
        let (dx, dy) = (x1 - x0, y1 - y0);
        let length_sq = dx * dx + dy * dy;
        let row_first = (y0.min(y1) - reach - 0.5).floor().max(0.0);
        let row_last = (y0.max(y1) + reach - 0.5)
            .ceil()
            .min(self.height as f64 - 1.0);
        if row_first > row_last {
            return;
        }
        for row in row_first as usize..=row_last as usize {
            let cy = row as f64 + 0.5;
            // The part of the segment within `reach` rows of this one, widened by `reach`.
            let (t_first, t_last) = if dy.abs() > f64::EPSILON {
                let ta = (cy - reach - y0) / dy;
                let tb = (cy + reach - y0) / dy;
                (ta.min(tb).max(0.0), ta.max(tb).min(1.0))
            } else if (cy - y0).abs() <= reach {
                (0.0, 1.0)
            } else {
                continue;
            };
            if t_first > t_last {
                continue;
            }
            let (xa, xb) = (x0 + t_first * dx, x0 + t_last * dx);
            let col_first = (xa.min(xb) - reach - 0.5).floor().max(0.0);
            let col_last = (xa.max(xb) + reach - 0.5)
                .ceil()
                .min(self.width as f64 - 1.0);
            if col_first > col_last {
                continue;
            }
            for col in col_first as usize..=col_last as usize {
                let cx = col as f64 + 0.5;
                let t = if length_sq > 0.0 {
                    (((cx - x0) * dx + (cy - y0) * dy) / length_sq).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let distance = (cx - (x0 + t * dx)).hypot(cy - (y0 + t * dy));
                let coverage = (reach - distance).clamp(0.0, 1.0);
                let alpha = (color[3] as f64 * coverage).round() as u8;
                if alpha > 0 {
                    let c = [color[0], color[1], color[2], alpha];
                    self.fill_rect(col as i32, row as i32, 1, 1, c);
                }
            }
        }
    }

    /// Draws a polyline through `points` with [`Canvas::draw_line`]; a non-finite point breaks
    /// the line in two.
    pub fn draw_polyline(&mut self, points: &[(f32, f32)], width: f32, color: [u8; 4]) {
        for pair in points.windows(2) {
            let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
            self.draw_line(x0, y0, x1, y1, width, color);
        }
    }
}

/// A stable colour for `class_id`, opaque: hues spread by the golden ratio, so neighbouring ids
/// differ strongly; saturation and value alternate slightly to separate far-apart ids too.
pub fn class_color(class_id: u32) -> [u8; 4] {
    let hue = (class_id as f64 * 0.618_033_988_749_895).fract() * 6.0;
    let (s, v) = match class_id % 3 {
        0 => (0.85, 1.0),
        1 => (0.7, 0.9),
        _ => (1.0, 0.8),
    };
    let i = hue.floor();
    let f = hue - i;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    let (r, g, b) = match i as u32 {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    };
    let to8 = |x: f64| (x * 255.0).round().clamp(0.0, 255.0) as u8;
    [to8(r), to8(g), to8(b), 255]
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [PackedRgbFormat; 10] = [
        PackedRgbFormat::Rgb,
        PackedRgbFormat::Bgr,
        PackedRgbFormat::Rgbx,
        PackedRgbFormat::Bgrx,
        PackedRgbFormat::Rgba,
        PackedRgbFormat::Bgra,
        PackedRgbFormat::Xrgb,
        PackedRgbFormat::Xbgr,
        PackedRgbFormat::Argb,
        PackedRgbFormat::Abgr,
    ];

    struct Img {
        data: Vec<u8>,
        width: usize,
        height: usize,
        stride: usize,
        format: PackedRgbFormat,
    }

    impl Img {
        fn new(width: usize, height: usize, pad: usize, format: PackedRgbFormat) -> Self {
            let stride = width * format.bytes_per_pixel() + pad;
            Img {
                data: vec![0; stride * height],
                width,
                height,
                stride,
                format,
            }
        }
        fn canvas(&mut self) -> Canvas<'_> {
            Canvas {
                data: &mut self.data,
                width: self.width,
                height: self.height,
                stride: self.stride,
                format: self.format,
            }
        }
        fn rgb(&self, x: usize, y: usize) -> [u8; 3] {
            let i = y * self.stride + x * self.format.bytes_per_pixel();
            self.format.rgb_offsets().map(|o| self.data[i + o])
        }
        /// Pixels whose colour is not black.
        fn painted(&self) -> Vec<(usize, usize)> {
            let mut v = Vec::new();
            for y in 0..self.height {
                for x in 0..self.width {
                    if self.rgb(x, y) != [0, 0, 0] {
                        v.push((x, y));
                    }
                }
            }
            v
        }
    }

    #[test]
    fn rect_outline_pixels_in_every_format() {
        for format in ALL {
            let mut img = Img::new(10, 8, 5, format);
            img.canvas().draw_rect(2, 1, 5, 4, 1, [10, 20, 30, 255]);
            let want: Vec<(usize, usize)> = (0..8)
                .flat_map(|y| (0..10).map(move |x| (x, y)))
                .filter(|&(x, y)| {
                    (2..7).contains(&x)
                        && (1..5).contains(&y)
                        && (x == 2 || x == 6 || y == 1 || y == 4)
                })
                .collect();
            assert_eq!(img.painted(), want, "{format:?}");
            assert_eq!(img.rgb(2, 1), [10, 20, 30]);
            // Row padding untouched.
            for y in 0..8 {
                let row_end = y * img.stride + 10 * format.bytes_per_pixel();
                assert!(img.data[row_end..row_end + 5].iter().all(|&b| b == 0));
            }
            if let Some(a) = format.alpha_offset() {
                assert_eq!(img.data[img.stride + 2 * 4 + a], 255);
            }
        }
    }

    #[test]
    fn thick_rect_and_fill() {
        let mut img = Img::new(12, 12, 0, PackedRgbFormat::Rgb);
        img.canvas().draw_rect(0, 0, 12, 12, 3, [255, 0, 0, 255]);
        assert_eq!(img.painted().len(), 144 - 36);
        assert_eq!(img.rgb(3, 3), [0, 0, 0]);
        assert_eq!(img.rgb(2, 5), [255, 0, 0]);
        let mut img = Img::new(6, 6, 0, PackedRgbFormat::Rgb);
        img.canvas().draw_rect(1, 1, 4, 4, 2, [0, 255, 0, 255]);
        assert_eq!(img.painted().len(), 16);
    }

    #[test]
    fn masks_cover_the_box_where_above_their_threshold() {
        let mask = InstanceMask {
            width: 4,
            height: 2,
            threshold: 0.5,
            data: vec![0.0, 0.9, 0.2, 1.0, 0.6, 0.6, 0.5, 0.0],
        };
        let mut img = Img::new(12, 8, 2, PackedRgbFormat::Bgrx);
        // Each mask value covers 2x2 pixels of the 8x4 box at (1, 2).
        img.canvas()
            .fill_mask(1, 2, 8, 4, &mask, [200, 100, 50, 255]);
        let want: Vec<(usize, usize)> = (2..6)
            .flat_map(|y| (1..9).map(move |x| (x, y)))
            .filter(|&(x, y)| mask.data[(y - 2) / 2 * 4 + (x - 1) / 2] > 0.5)
            .collect();
        assert_eq!(img.painted(), want);
        assert_eq!(img.rgb(3, 2), [200, 100, 50]);
        // Stretched over a box partly outside the frame; a short mask draws nothing.
        let mut img = Img::new(6, 6, 0, PackedRgbFormat::Rgb);
        img.canvas()
            .fill_mask(-3, 4, 12, 40, &mask, [255, 0, 0, 255]);
        let painted = img.painted();
        assert!(!painted.is_empty() && painted.iter().all(|&(_, y)| y >= 4));
        let short = InstanceMask {
            data: vec![1.0; 7],
            ..mask
        };
        let mut img = Img::new(6, 6, 0, PackedRgbFormat::Rgb);
        img.canvas().fill_mask(0, 0, 6, 6, &short, [255, 0, 0, 255]);
        assert!(img.painted().is_empty());
    }

    #[test]
    fn clipping_never_panics() {
        let extremes = [i32::MIN, -1000, -3, -1, 0, 1, 5, 7, 8, 1000, i32::MAX];
        for format in [PackedRgbFormat::Rgb, PackedRgbFormat::Argb] {
            let mut img = Img::new(8, 6, 3, format);
            let mut c = img.canvas();
            for &x in &extremes {
                for &y in &extremes {
                    for &w in &extremes {
                        for &h in &[i32::MIN, -1, 0, 1, 4, i32::MAX] {
                            c.draw_rect(x, y, w, h, 2, [1, 2, 3, 255]);
                            c.draw_rect(x, y, w, h, u32::MAX, [1, 2, 3, 128]);
                            c.fill_rect(x, y, w, h, [1, 2, 3, 100]);
                        }
                    }
                    c.draw_text(x, y, "Hi!\nxy", 3, [255; 4], Some([0, 0, 0, 200]));
                    c.draw_text(x, y, "a", u32::MAX, [255; 4], None);
                }
            }
        }
        // Partly outside: only the visible part is drawn.
        let mut img = Img::new(8, 6, 0, PackedRgbFormat::Rgb);
        img.canvas().fill_rect(-5, 4, 7, 100, [9, 9, 9, 255]);
        assert_eq!(img.painted(), vec![(0, 4), (1, 4), (0, 5), (1, 5)]);
        let mut img = Img::new(8, 6, 0, PackedRgbFormat::Rgb);
        img.canvas().draw_rect(-2, -2, 5, 5, 1, [9, 9, 9, 255]);
        assert_eq!(img.painted(), vec![(2, 0), (2, 1), (0, 2), (1, 2), (2, 2)]);
        // A buffer shorter than the geometry claims: the missing rows are skipped.
        let mut data = vec![0u8; 20];
        let mut c = Canvas {
            data: &mut data,
            width: 8,
            height: 6,
            stride: 8 * 3,
            format: PackedRgbFormat::Rgb,
        };
        c.fill_rect(0, 0, 8, 6, [5, 5, 5, 255]);
        c.draw_text(0, 0, "xyz", 1, [5; 4], Some([1; 4]));
        let mut c = Canvas {
            data: &mut data,
            width: 8,
            height: 6,
            stride: 8 * 3,
            format: PackedRgbFormat::Rgb,
        };
        c.fill_rect(0, 0, 8, 6, [5, 5, 5, 255]);
        // Only the 6 whole pixels that fit are written.
        assert!(data[..18].iter().all(|&b| b == 5) && data[18..].iter().all(|&b| b != 5));
    }

    #[test]
    fn alpha_blend() {
        for format in ALL {
            let mut img = Img::new(2, 1, 0, format);
            let bpp = format.bytes_per_pixel();
            img.data = vec![200; bpp * 2];
            let mut c = img.canvas();
            c.fill_rect(0, 0, 1, 1, [100, 0, 255, 128]);
            c.fill_rect(1, 0, 1, 1, [100, 0, 255, 0]);
            // 100*128/255 + 200*127/255 = 149.8; 0 + 99.6; 255*128/255 + 99.6 = 227.6
            assert_eq!(img.rgb(0, 0), [150, 100, 228], "{format:?}");
            assert_eq!(img.rgb(1, 0), [200, 200, 200]);
            if let Some(a) = format.alpha_offset() {
                // 128 + 200 * 127 / 255 = 227.6
                assert_eq!(img.data[a], 228);
            }
        }
        // Opaque over anything is exact.
        let mut img = Img::new(1, 1, 0, PackedRgbFormat::Bgrx);
        img.data = vec![7, 8, 9, 10];
        img.canvas().fill_rect(0, 0, 1, 1, [1, 2, 3, 255]);
        assert_eq!(img.data, vec![3, 2, 1, 10]);
    }

    #[test]
    fn text_bounds_and_pixels() {
        assert_eq!(Canvas::text_size("", 2), (0, 0));
        assert_eq!(Canvas::text_size("ab", 1), (13, 9));
        assert_eq!(Canvas::text_size("ab", 2), (26, 18));
        assert_eq!(Canvas::text_size("abc\nd", 0), (19, 17));
        let mut img = Img::new(40, 30, 1, PackedRgbFormat::Bgrx);
        let size = img
            .canvas()
            .draw_text(3, 2, "I|", 2, [255, 255, 255, 255], None);
        assert_eq!(size, (26, 18));
        let p = img.painted();
        let (xs, ys): (Vec<usize>, Vec<usize>) = p.iter().copied().unzip();
        // Ink stays inside the box minus its margin, and reaches the glyph rows' extremes.
        assert!(*xs.iter().min().unwrap() >= 3 + 2 && *xs.iter().max().unwrap() < 3 + 26);
        assert_eq!(
            (*ys.iter().min().unwrap(), *ys.iter().max().unwrap()),
            (2 + 2, 2 + 2 + 14 - 1)
        );
        // 'I' top bar: font columns 1..=3 of row 0 -> frame x 5 + 2..=7, 2x2 squares.
        for x in 7..13 {
            assert_eq!(img.rgb(x, 4), [255, 255, 255], "x {x}");
        }
        assert_eq!(img.rgb(6, 4), [0, 0, 0]);
        // '|': column 2 of cell 1 -> x = 5 + 12 + 4 = 21..23 on every glyph row.
        for y in 4..18 {
            assert_eq!(img.rgb(21, y), [255, 255, 255]);
        }
        // Background fills the whole box, text on top.
        let mut img = Img::new(40, 30, 0, PackedRgbFormat::Rgb);
        img.canvas()
            .draw_text(0, 0, "-", 1, [0, 0, 255, 255], Some([255, 0, 0, 255]));
        assert_eq!(img.painted().len(), 7 * 9);
        assert_eq!(img.rgb(1, 4), [0, 0, 255]);
        assert_eq!(img.rgb(0, 0), [255, 0, 0]);
        assert_eq!(img.rgb(6, 8), [255, 0, 0]);
        assert_eq!(img.rgb(7, 8), [0, 0, 0]);
    }

    #[test]
    fn lines_cover_their_pixels_and_nothing_far_away() {
        // Horizontal, 1 px wide, on pixel centres: exactly one opaque row.
        let mut img = Img::new(20, 10, 0, PackedRgbFormat::Rgb);
        img.canvas()
            .draw_line(2.0, 4.5, 17.0, 4.5, 1.0, [255, 255, 255, 255]);
        for x in 3..17 {
            assert_eq!(img.rgb(x, 4), [255, 255, 255], "x {x}");
            assert_eq!(img.rgb(x, 2), [0, 0, 0]);
            assert_eq!(img.rgb(x, 6), [0, 0, 0]);
        }
        // Diagonal: every painted pixel lies near the segment, and each column is painted.
        let mut img = Img::new(40, 40, 0, PackedRgbFormat::Rgbx);
        img.canvas()
            .draw_line(1.0, 38.0, 38.0, 1.0, 2.0, [0, 200, 0, 255]);
        for (x, y) in img.painted() {
            let d = ((x as f64 + 0.5) + (y as f64 + 0.5) - 39.0).abs() / 2f64.sqrt();
            assert!(d <= 1.5 + 1e-9, "({x}, {y}) is {d} px away");
        }
        for x in 2..37 {
            let y = 38 - x;
            assert_eq!(img.rgb(x, y)[1], 200, "({x}, {y})");
        }
        // Anti-aliasing: a line between rows blends half into each.
        let mut img = Img::new(10, 4, 0, PackedRgbFormat::Rgb);
        img.canvas()
            .draw_line(0.0, 2.0, 10.0, 2.0, 1.0, [255, 0, 0, 255]);
        assert_eq!(img.rgb(5, 1), [128, 0, 0]);
        assert_eq!(img.rgb(5, 2), [128, 0, 0]);
        // A point draws a dot; bad input draws nothing and does not panic.
        let mut img = Img::new(10, 10, 0, PackedRgbFormat::Rgb);
        let mut c = img.canvas();
        c.draw_line(5.5, 5.5, 5.5, 5.5, 1.0, [9, 9, 9, 255]);
        for v in [f32::NAN, f32::INFINITY, -1e30, 1e30] {
            c.draw_line(v, 0.0, 3.0, 3.0, 1.0, [1, 1, 1, 255]);
            c.draw_line(0.0, 0.0, 3.0, 3.0, v, [1, 1, 1, 255]);
        }
        c.draw_line(-1e9, -1e9, 1e9, 1e9, 1.0, [7, 7, 7, 255]);
        assert_eq!(img.rgb(5, 5), [7, 7, 7]);
        let mut img = Img::new(10, 10, 0, PackedRgbFormat::Rgb);
        img.canvas().draw_polyline(
            &[(0.5, 0.5), (5.5, 0.5), (f32::NAN, 0.0), (5.5, 5.5)],
            1.0,
            [3, 3, 3, 255],
        );
        assert_eq!(img.painted(), (0..6).map(|x| (x, 0)).collect::<Vec<_>>());
    }

    #[test]
    fn rotated_text_reads_bottom_to_top() {
        let (w, h) = Canvas::text_size("L-", 1);
        let mut img = Img::new(30, 30, 0, PackedRgbFormat::Rgb);
        let size = img
            .canvas()
            .draw_text_rotated(2, 3, "L-", 1, [255, 255, 255, 255], None);
        assert_eq!(size, (h, w));
        let painted = img.painted();
        assert!(painted
            .iter()
            .all(|&(x, y)| (2..2 + h as usize).contains(&x) && (3..3 + w as usize).contains(&y)));
        // 'L' is the first character, so it sits at the bottom: its vertical stroke (font
        // column 0, rows 0..7) becomes a horizontal run on the bottom row of its cell.
        let bottom = 3 + w as usize - 2;
        for x in 3..10 {
            assert_eq!(img.rgb(x, bottom), [255, 255, 255], "x {x}");
        }
        // '-' (font row 3, columns 0..5) becomes a vertical run in rotated column 2 + 1 + 3.
        let dash: Vec<usize> = painted
            .iter()
            .filter(|&&(x, y)| x == 6 && y < bottom)
            .map(|&(_, y)| y)
            .collect();
        assert_eq!(dash.len(), 5, "{painted:?}");
    }

    #[test]
    fn palette_is_stable_distinct_and_opaque() {
        let colors: Vec<[u8; 4]> = (0..32).map(class_color).collect();
        assert_eq!(colors, (0..32).map(class_color).collect::<Vec<_>>());
        for (i, a) in colors.iter().enumerate() {
            assert_eq!(a[3], 255);
            for b in &colors[i + 1..] {
                let d: i32 = (0..3).map(|c| (a[c] as i32 - b[c] as i32).abs()).sum();
                assert!(d >= 20, "{a:?} vs {b:?}");
            }
        }
        let _ = class_color(u32::MAX);
    }
}
