//! Colour conversion of single pixels and whole rows, in 16-bit fixed point.
//!
//! YUV -> RGB is ITU-R BT.601 with limited ("video") range, what NvBufSurfTransform applies to
//! NV12/I420 video:
//!
//! ```text
//! R = 1.164383 (Y - 16)                      + 1.596027 (V - 128)
//! G = 1.164383 (Y - 16) - 0.391762 (U - 128) - 0.812968 (V - 128)
//! B = 1.164383 (Y - 16) + 2.017232 (U - 128)
//! ```
//!
//! (1.164383 = 255/219, the chroma factors are 255/224 times 1.402, 0.344136, 0.714136, 1.772),
//! rounded to the nearest integer and clamped to 0..=255. Luma from RGB is BT.601's
//! `Y = 0.299 R + 0.587 G + 0.114 B`, full range, rounded.

const SHIFT: u32 = 16;
const HALF: i32 = 1 << (SHIFT - 1);
const K_Y: i32 = 76309; // 1.164383 * 65536
const K_RV: i32 = 104597; // 1.596027 * 65536
const K_GU: i32 = 25675; // 0.391762 * 65536
const K_GV: i32 = 53280; // 0.812968 * 65536
const K_BU: i32 = 132201; // 2.017232 * 65536
const L_R: u32 = 19595; // 0.299 * 65536
const L_G: u32 = 38470; // 0.587 * 65536
const L_B: u32 = 7471; // 0.114 * 65536 (the three sum to 65536)

#[inline(always)]
fn clamp_u8(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}

/// One BT.601 limited-range YUV sample to `[R, G, B]` (coefficients in the module docs).
#[inline(always)]
pub fn yuv_to_rgb_bt601(y: u8, u: u8, v: u8) -> [u8; 3] {
    let c = (y as i32 - 16) * K_Y + HALF;
    let d = u as i32 - 128;
    let e = v as i32 - 128;
    [
        clamp_u8((c + K_RV * e) >> SHIFT),
        clamp_u8((c - K_GU * d - K_GV * e) >> SHIFT),
        clamp_u8((c + K_BU * d) >> SHIFT),
    ]
}

/// BT.601 luma of an RGB pixel: `round(0.299 R + 0.587 G + 0.114 B)`.
#[inline(always)]
pub fn bt601_luma(r: u8, g: u8, b: u8) -> u8 {
    ((r as u32 * L_R + g as u32 * L_G + b as u32 * L_B + HALF as u32) >> SHIFT) as u8
}

/// Converts `out.len() / 3` pixels of one YUV row to interleaved RGB (or BGR when `BGR`).
/// `y` starts at the first pixel, whose frame column is `x0`; `chroma` yields `(U, V)` from
/// chroma column `x0 / 2` on. Pixels sharing a chroma sample share its products.
pub(crate) fn yuv_row<const BGR: bool>(
    y: &[u8],
    mut chroma: impl Iterator<Item = (u8, u8)>,
    x0: usize,
    out: &mut [u8],
) {
    let (ri, bi) = if BGR { (2, 0) } else { (0, 2) };
    let (mut y, mut out) = (y, out);
    let put = |px: &mut [u8], yv: u8, (rv, g, bu): (i32, i32, i32)| {
        let c = (yv as i32 - 16) * K_Y + HALF;
        px[ri] = clamp_u8((c + rv) >> SHIFT);
        px[1] = clamp_u8((c + g) >> SHIFT);
        px[bi] = clamp_u8((c + bu) >> SHIFT);
    };
    let terms = |(u, v): (u8, u8)| {
        let (d, e) = (u as i32 - 128, v as i32 - 128);
        (K_RV * e, -K_GU * d - K_GV * e, K_BU * d)
    };
    if x0 & 1 == 1 && !y.is_empty() && out.len() >= 3 {
        let t = terms(chroma.next().unwrap_or((128, 128)));
        put(&mut out[..3], y[0], t);
        (y, out) = (&y[1..], &mut out[3..]);
    }
    for (yp, op) in y.chunks(2).zip(out.chunks_mut(6)) {
        let t = terms(chroma.next().unwrap_or((128, 128)));
        for (&yv, px) in yp.iter().zip(op.chunks_exact_mut(3)) {
            put(px, yv, t);
        }
    }
}

/// Luma of `out.len()` pixels of one packed row of `BPP` bytes per pixel whose R, G, B bytes sit
/// at `offs`.
pub(crate) fn luma_row<const BPP: usize>(src: &[u8], offs: [usize; 3], out: &mut [u8]) {
    for (o, px) in out.iter_mut().zip(src.chunks_exact(BPP)) {
        *o = bt601_luma(px[offs[0]], px[offs[1]], px[offs[2]]);
    }
}
