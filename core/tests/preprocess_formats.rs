//! Every input format against values computed by hand or by an independent reference.

mod preprocess_util;

use nvtl_core::config::{ModelColorFormat as Mc, ScalingFilter as Sf, TensorOrder as To};
use nvtl_core::preprocess::reference::preprocess_naive;
use nvtl_core::preprocess::{preprocess, FrameView, PixelFormat, Rect};
use preprocess_util::*;

/// Named so that `cargo test -p nvtl-core preprocess` selects these tests.
mod preprocess {
    use super::*;

    /// 4x2 RGB frame: pixel (x, y) = [10x + 100y, 20 + 30x, 250 - 40x - 90y] .. all distinct.
    fn rgb_4x2() -> Vec<u8> {
        let mut v = Vec::new();
        for y in 0..2u8 {
            for x in 0..4u8 {
                v.extend([10 * x + 100 * y, 20 + 30 * x, 250 - 40 * x - 90 * y]);
            }
        }
        v
    }

    fn run(frame: &FrameView, p: &nvtl_core::preprocess::PreprocessParams) -> Vec<f32> {
        let mut out = vec![f32::NAN; p.tensor_len()];
        preprocess(frame, Rect::full(frame.width, frame.height), p, &mut out).unwrap();
        out
    }

    #[test]
    fn packed_formats_at_identity_size_are_exact() {
        let rgb = rgb_4x2();
        for format in [
            PixelFormat::Rgb,
            PixelFormat::Bgr,
            PixelFormat::Rgbx,
            PixelFormat::Bgrx,
        ] {
            for pad in [0, 7] {
                let f = from_rgb(&rgb, 4, 2, format, pad, 0xEE);
                for filter in [Sf::Nearest, Sf::Bilinear] {
                    let mut p = params(4, 2, Mc::Rgb, filter, To::Nchw);
                    p.scale_factor = 0.5;
                    p.offsets = [1.0, 2.0, 3.0];
                    let out = run(&f.view(), &p);
                    for y in 0..2 {
                        for x in 0..4 {
                            for c in 0..3 {
                                let want = (rgb[(y * 4 + x) * 3 + c] as f32 - p.offsets[c]) * 0.5;
                                assert_eq!(
                                    out[(c * 2 + y) * 4 + x],
                                    want,
                                    "{format:?} pad {pad} {filter:?} ({x},{y}) c{c}"
                                );
                            }
                        }
                    }
                    // BGR model: channels reversed.
                    p.color_format = Mc::Bgr;
                    p.offsets = [0.0; 3];
                    let out = run(&f.view(), &p);
                    for i in 0..8 {
                        for c in 0..3 {
                            assert_eq!(out[c * 8 + i], rgb[i * 3 + 2 - c] as f32 * 0.5);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn packed_to_gray_is_bt601_luma() {
        let rgb = rgb_4x2();
        for format in [PixelFormat::Rgb, PixelFormat::Bgrx] {
            let f = from_rgb(&rgb, 4, 2, format, 3, 0);
            let out = run(&f.view(), &params(4, 2, Mc::Gray, Sf::Nearest, To::Nchw));
            assert_eq!(out.len(), 8);
            for i in 0..8 {
                let want = 0.299 * rgb[i * 3] as f64
                    + 0.587 * rgb[i * 3 + 1] as f64
                    + 0.114 * rgb[i * 3 + 2] as f64;
                assert!(
                    (out[i] as f64 - want).abs() <= 0.5 + 1e-6,
                    "{format:?} {i}: {} vs {want}",
                    out[i]
                );
            }
        }
    }

    #[test]
    fn gray8_replicates_into_rgb_and_passes_through_gray() {
        let g: Vec<u8> = vec![0, 1, 2, 3, 250, 251, 252, 255];
        let f = FrameView {
            format: PixelFormat::Gray8,
            width: 4,
            height: 2,
            planes: vec![&g],
            strides: vec![4],
        };
        let out = run(&f, &params(4, 2, Mc::Rgb, Sf::Nearest, To::Nhwc));
        for i in 0..8 {
            assert_eq!(&out[i * 3..i * 3 + 3], &[g[i] as f32; 3]);
        }
        let out = run(&f, &params(4, 2, Mc::Gray, Sf::Nearest, To::Nhwc));
        assert_eq!(out, g.iter().map(|&v| v as f32).collect::<Vec<_>>());
    }

    /// 4x2 YUV frame: left 2x2 block neutral chroma with Y = 16, 235, 126, 126 (black, white,
    /// grey 128), right block Y = 81, U = 90, V = 240 (BT.601 video red).
    const Y_4X2: [u8; 8] = [16, 235, 81, 81, 126, 126, 81, 81];
    const EXPECTED_4X2: [[u8; 3]; 8] = [
        [0, 0, 0],
        [255, 255, 255],
        [254, 0, 0],
        [254, 0, 0],
        [128, 128, 128],
        [128, 128, 128],
        [254, 0, 0],
        [254, 0, 0],
    ];

    #[test]
    fn nv12_and_i420_hand_values() {
        for pad in [0, 5] {
            let s = 4 + pad;
            let mut y = vec![0xCC; s * 2];
            y[..4].copy_from_slice(&Y_4X2[..4]);
            y[s..s + 4].copy_from_slice(&Y_4X2[4..]);
            let mut uv = vec![0xCC; s];
            uv[..4].copy_from_slice(&[128, 128, 90, 240]);
            let nv12 = FrameView {
                format: PixelFormat::Nv12,
                width: 4,
                height: 2,
                planes: vec![&y, &uv],
                strides: vec![s, s],
            };
            let u = [128u8, 90, 0xCC, 0xCC];
            let v = [128u8, 240, 0xCC, 0xCC];
            let i420 = FrameView {
                format: PixelFormat::I420,
                width: 4,
                height: 2,
                planes: vec![&y, &u, &v],
                strides: vec![s, 2 + pad.min(2), 2 + pad.min(2)],
            };
            for f in [&nv12, &i420] {
                for order in [To::Nchw, To::Nhwc] {
                    let out = run(f, &params(4, 2, Mc::Rgb, Sf::Bilinear, order));
                    for (i, want) in EXPECTED_4X2.iter().enumerate() {
                        for (c, &wc) in want.iter().enumerate() {
                            let idx = if order == To::Nchw {
                                c * 8 + i
                            } else {
                                i * 3 + c
                            };
                            assert_eq!(
                                out[idx], wc as f32,
                                "{:?} pad {pad} {order:?} px {i} c{c}",
                                f.format
                            );
                        }
                    }
                }
                let out = run(f, &params(4, 2, Mc::Bgr, Sf::Nearest, To::Nchw));
                for (i, want) in EXPECTED_4X2.iter().enumerate() {
                    assert_eq!(
                        [out[i], out[8 + i], out[16 + i]],
                        [want[2] as f32, want[1] as f32, want[0] as f32]
                    );
                }
                // GRAY from YUV is the Y plane as is.
                let out = run(f, &params(4, 2, Mc::Gray, Sf::Nearest, To::Nchw));
                assert_eq!(out, Y_4X2.iter().map(|&v| v as f32).collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn odd_sized_yuv_uses_ceil_chroma() {
        // 5x3: chroma planes are 3x2; the last column/row has its own chroma sample.
        let (w, h) = (5, 3);
        let y = vec![180u8; w * h];
        let mut uv = vec![128u8; 3 * 2 * 2];
        // chroma (2, 1) -> pixel (4, 2) only
        uv[(3 + 2) * 2] = 90;
        uv[(3 + 2) * 2 + 1] = 240;
        // exact-length planes (no padding after the last row)
        let f = FrameView {
            format: PixelFormat::Nv12,
            width: w,
            height: h,
            planes: vec![&y, &uv],
            strides: vec![w, 6],
        };
        let out = run(&f, &params(w, h, Mc::Rgb, Sf::Nearest, To::Nhwc));
        let grey = (1.164383f64 * 164.0).round() as f32;
        for i in 0..w * h - 1 {
            assert_eq!(&out[i * 3..i * 3 + 3], &[grey; 3], "px {i}");
        }
        let last = &out[(w * h - 1) * 3..];
        let c: f64 = 1.164383 * 164.0;
        let want = [
            c + 1.596027 * 112.0,
            c + 0.391762 * 38.0 - 0.812968 * 112.0,
            c - 2.017232 * 38.0,
        ];
        for k in 0..3 {
            assert!(
                (last[k] as f64 - want[k].round().clamp(0.0, 255.0)).abs() <= 1.0,
                "{last:?} {want:?}"
            );
        }
        let u = vec![128u8; 6];
        let mut v = vec![128u8; 6];
        v[5] = 200;
        let f = FrameView {
            format: PixelFormat::I420,
            width: w,
            height: h,
            planes: vec![&y, &u, &v],
            strides: vec![w, 3, 3],
        };
        let out = run(&f, &params(w, h, Mc::Rgb, Sf::Nearest, To::Nchw));
        assert_eq!(out[0], grey);
        assert_eq!(
            out[w * h - 1],
            (c + 1.596027 * 72.0).round().min(255.0) as f32
        );
    }

    #[test]
    fn stride_padding_does_not_leak() {
        let mut rng = Lcg(7);
        let (w, h) = (9, 7);
        let rgb = rng.bytes(w * h * 3);
        for format in ALL_FORMATS {
            let tight = from_rgb(&rgb, w, h, format, 0, 0);
            let padded = from_rgb(&rgb, w, h, format, 11, 0xFF);
            let padded0 = from_rgb(&rgb, w, h, format, 11, 0x00);
            for filter in [Sf::Nearest, Sf::Bilinear] {
                let p = params(13, 4, Mc::Rgb, filter, To::Nchw);
                let a = run(&tight.view(), &p);
                assert_eq!(a, run(&padded.view(), &p), "{format:?} {filter:?}");
                assert_eq!(a, run(&padded0.view(), &p), "{format:?} {filter:?}");
            }
        }
    }

    #[test]
    fn fast_path_matches_naive_reference_on_random_inputs() {
        let mut rng = Lcg(12345);
        for case in 0..600 {
            let format = ALL_FORMATS[rng.below(7)];
            let (w, h) = (1 + rng.below(40), 1 + rng.below(30));
            let rgb = rng.bytes(w * h * 3);
            let f = from_rgb(&rgb, w, h, format, rng.below(9), rng.next() as u8);
            let rx = rng.below(w);
            let ry = rng.below(h);
            let roi = Rect::new(rx, ry, 1 + rng.below(w - rx), 1 + rng.below(h - ry));
            let mut p = params(
                1 + rng.below(37),
                1 + rng.below(29),
                [Mc::Rgb, Mc::Bgr, Mc::Gray][rng.below(3)],
                [Sf::Nearest, Sf::Bilinear][rng.below(2)],
                [To::Nchw, To::Nhwc][rng.below(2)],
            );
            p.maintain_aspect_ratio = rng.below(2) == 1;
            p.symmetric_padding = rng.below(2) == 1;
            p.scale_factor = 1.0 / 255.0;
            p.offsets = [rng.below(200) as f32, 3.5, 100.0];
            let mut fast = vec![f32::NAN; p.tensor_len()];
            let mut slow = vec![f32::NAN; p.tensor_len()];
            let t1 = preprocess(&f.view(), roi, &p, &mut fast).unwrap();
            let t2 = preprocess_naive(&f.view(), roi, &p, &mut slow).unwrap();
            assert_eq!(t1, t2);
            // Colour conversion may round differently by one 8-bit step; nothing else may differ.
            let d = max_abs_diff(&fast, &slow);
            assert!(
                d <= 1.0 / 255.0 + 1e-5,
                "case {case}: {format:?} {w}x{h} {roi:?} {p:?}: max diff {d}"
            );
            assert!(fast.iter().all(|v| v.is_finite()));
        }
    }

    fn asset(name: &str) -> Option<std::path::PathBuf> {
        let dir = std::env::var_os("NVTL_ASSETS")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .map(|h| std::path::Path::new(&h).join(".cache/nvtl/assets"))
            })?;
        let path = dir.join(name);
        if path.is_file() {
            Some(path)
        } else if std::env::var_os("NVTL_REQUIRE_ASSETS").is_some() {
            panic!("{} missing: run scripts/fetch-assets.sh", path.display());
        } else {
            eprintln!(
                "skipping: {} missing (scripts/fetch-assets.sh fetches it)",
                path.display()
            );
            None
        }
    }

    /// darknet's dog.jpg (768x576, the pipeline's frame size) in every format: each agrees with
    /// the naive reference, and the YUV and GRAY8 renditions stay close to the RGB one.
    #[test]
    fn real_image_in_every_format() {
        let Some(path) = asset("dog.jpg") else { return };
        let img = image::open(&path).unwrap().to_rgb8();
        // An odd crop so YUV chroma edges are exercised too.
        let (w, h) = (img.width() as usize - 1, img.height() as usize - 3);
        let full = img.as_raw();
        let mut rgb = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            rgb.extend_from_slice(&full[y * img.width() as usize * 3..][..w * 3]);
        }
        let mut p = params(512, 512, Mc::Rgb, Sf::Bilinear, To::Nchw);
        p.maintain_aspect_ratio = true;
        p.symmetric_padding = true;
        p.scale_factor = 1.0 / 255.0;
        let roi = Rect::full(w, h);
        let mut base = vec![0.0; p.tensor_len()];
        preprocess(
            &from_rgb(&rgb, w, h, PixelFormat::Rgb, 0, 0).view(),
            roi,
            &p,
            &mut base,
        )
        .unwrap();
        for format in ALL_FORMATS {
            let f = from_rgb(&rgb, w, h, format, 24, 0x80);
            for (color, filter, order) in [
                (Mc::Rgb, Sf::Bilinear, To::Nchw),
                (Mc::Bgr, Sf::Nearest, To::Nhwc),
                (Mc::Gray, Sf::Bilinear, To::Nchw),
            ] {
                let mut q = p.clone();
                (q.color_format, q.filter, q.order) = (color, filter, order);
                let mut fast = vec![0.0; q.tensor_len()];
                let mut slow = vec![0.0; q.tensor_len()];
                let t = preprocess(&f.view(), roi, &q, &mut fast).unwrap();
                preprocess_naive(&f.view(), roi, &q, &mut slow).unwrap();
                assert!(
                    max_abs_diff(&fast, &slow) <= 1.0 / 255.0 + 1e-5,
                    "{format:?} {color:?}"
                );
                assert!((t.scale_x - 512.0 / w as f32).abs() < 1e-6);
            }
            let mut out = vec![0.0; p.tensor_len()];
            preprocess(&f.view(), roi, &p, &mut out).unwrap();
            let mad = mean_abs_diff(&out, &base) * 255.0;
            // Packed formats are lossless; YUV loses chroma detail and rounds; GRAY8 has no colour.
            let bound = match format {
                PixelFormat::Nv12 | PixelFormat::I420 => 2.5,
                PixelFormat::Gray8 => 40.0,
                _ => 0.0,
            };
            eprintln!("{format:?}: mean |diff| vs RGB = {mad:.3} levels");
            assert!(mad <= bound, "{format:?}: mean |diff| {mad}");
        }
    }

    #[test]
    fn secondary_crops_at_odd_positions() {
        let mut rng = Lcg(99);
        let (w, h) = (67, 45);
        let rgb = rng.bytes(w * h * 3);
        for format in ALL_FORMATS {
            let f = from_rgb(&rgb, w, h, format, 3, 0);
            for roi in [
                Rect::new(1, 1, 7, 5),
                Rect::new(66, 44, 1, 1),
                Rect::new(33, 0, 34, 45),
                Rect::new(5, 17, 31, 3),
            ] {
                let mut p = params(24, 24, Mc::Rgb, Sf::Bilinear, To::Nchw);
                p.maintain_aspect_ratio = true;
                let mut a = vec![0.0; p.tensor_len()];
                let mut b = vec![0.0; p.tensor_len()];
                let t = preprocess(&f.view(), roi, &p, &mut a).unwrap();
                preprocess_naive(&f.view(), roi, &p, &mut b).unwrap();
                assert!(max_abs_diff(&a, &b) <= 1.0 + 1e-4, "{format:?} {roi:?}");
                assert_eq!((t.offset_x, t.offset_y), (roi.x as f32, roi.y as f32));
            }
        }
    }
}
