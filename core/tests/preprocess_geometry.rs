//! Letterbox geometry, `Transform`, tensor layouts, bilinear values and errors.

mod preprocess_util;

use nvtl_core::config::{ModelColorFormat as Mc, ScalingFilter as Sf, TensorOrder as To};
use nvtl_core::preprocess::{preprocess, FrameView, PixelFormat, PreprocessError, Rect, Transform};
use nvtl_core::BBox;
use preprocess_util::*;

/// Named so that `cargo test -p nvtl-core preprocess` selects these tests.
mod preprocess {
    use super::*;

    fn gray(data: &[u8], w: usize, h: usize) -> FrameView<'_> {
        FrameView {
            format: PixelFormat::Gray8,
            width: w,
            height: h,
            planes: vec![data],
            strides: vec![w],
        }
    }

    #[test]
    fn letterbox_right_bottom_and_symmetric() {
        // 8x4 white frame into 6x6: scaled to 6x3 (nvinfer: height 6*4/8 = 3 fits).
        let data = vec![255u8; 32];
        let f = gray(&data, 8, 4);
        let mut p = params(6, 6, Mc::Gray, Sf::Bilinear, To::Nchw);
        p.maintain_aspect_ratio = true;
        p.offsets = [5.0, 0.0, 0.0];
        p.scale_factor = 2.0;
        let mut out = vec![0.0; 36];
        let t = preprocess(&f, Rect::full(8, 4), &p, &mut out).unwrap();
        let white = (255.0 - 5.0) * 2.0;
        let black = (0.0 - 5.0) * 2.0;
        for y in 0..6 {
            for x in 0..6 {
                assert_eq!(
                    out[y * 6 + x],
                    if y < 3 { white } else { black },
                    "({x},{y})"
                );
            }
        }
        assert_eq!(
            t,
            Transform {
                scale_x: 0.75,
                scale_y: 0.75,
                pad_x: 0.0,
                pad_y: 0.0,
                offset_x: 0.0,
                offset_y: 0.0
            }
        );

        // Symmetric: 3 rows of padding -> 1 on top, 2 at the bottom (nvinfer's integer halving).
        p.symmetric_padding = true;
        let t = preprocess(&f, Rect::full(8, 4), &p, &mut out).unwrap();
        let rows: Vec<f32> = (0..6).map(|y| out[y * 6]).collect();
        assert_eq!(rows, vec![black, white, white, white, black, black]);
        assert_eq!((t.pad_x, t.pad_y), (0.0, 1.0));

        // Tall ROI: width is the one that shrinks; padding on the left/right.
        let data = vec![200u8; 2 * 6];
        let f = gray(&data, 2, 6);
        let mut p = params(7, 6, Mc::Rgb, Sf::Nearest, To::Nhwc);
        p.maintain_aspect_ratio = true;
        p.symmetric_padding = true;
        let mut out = vec![0.0; 7 * 6 * 3];
        let t = preprocess(&f, Rect::full(2, 6), &p, &mut out).unwrap();
        // 7*6/2 = 21 > 6 -> width = 6*2/6 = 2, pad (7-2)/2 = 2 left, 3 right.
        assert_eq!(
            (t.scale_x, t.scale_y, t.pad_x, t.pad_y),
            (1.0, 1.0, 2.0, 0.0)
        );
        for y in 0..6 {
            let row: Vec<f32> = (0..7).map(|x| out[(y * 7 + x) * 3 + 1]).collect();
            assert_eq!(row, vec![0.0, 0.0, 200.0, 200.0, 0.0, 0.0, 0.0]);
        }
    }

    #[test]
    fn placement_follows_nvinfer() {
        let mut p = params(512, 512, Mc::Rgb, Sf::Bilinear, To::Nchw);
        assert_eq!(p.placement(768, 576), (0, 0, 512, 512));
        p.maintain_aspect_ratio = true;
        assert_eq!(p.placement(768, 576), (0, 0, 512, 384));
        p.symmetric_padding = true;
        assert_eq!(p.placement(768, 576), (0, 64, 512, 384));
        assert_eq!(p.placement(100, 301), (171, 0, 170, 512));
        // Degenerate ROI still gets at least one pixel.
        assert_eq!(p.placement(10_000, 1), (0, 255, 512, 1));
    }

    #[test]
    fn transform_round_trip() {
        let data = vec![0u8; 300 * 200];
        let f = gray(&data, 300, 200);
        let mut p = params(128, 96, Mc::Gray, Sf::Nearest, To::Nchw);
        p.maintain_aspect_ratio = true;
        p.symmetric_padding = true;
        let roi = Rect::new(40, 30, 150, 160);
        let mut out = vec![0.0; p.tensor_len()];
        let t = preprocess(&f, roi, &p, &mut out).unwrap();
        // 128*160/150 = 136.5 > 96 -> width 96*150/160 = 90, pad (128-90)/2 = 19.
        assert_eq!((t.pad_x, t.pad_y), (19.0, 0.0));
        assert_eq!(t.scale_y, 0.6);
        // The ROI maps onto the placement and back.
        let net = t.to_network(BBox::new(40.0, 30.0, 150.0, 160.0));
        assert!((net.left - 19.0).abs() < 1e-4 && net.top.abs() < 1e-4);
        assert!((net.width - 90.0).abs() < 1e-3 && (net.height - 96.0).abs() < 1e-3);
        let b = BBox::new(25.5, 10.0, 30.0, 40.0);
        let back = t.to_network(t.to_frame(b));
        for (x, y) in [
            (back.left, b.left),
            (back.top, b.top),
            (back.width, b.width),
            (back.height, b.height),
        ] {
            assert!((x - y).abs() < 1e-3);
        }
        assert_eq!(Transform::identity().to_frame(b), b);
    }

    #[test]
    fn nchw_and_nhwc_hold_the_same_values() {
        let mut rng = Lcg(3);
        let rgb = rng.bytes(31 * 17 * 3);
        for format in ALL_FORMATS {
            let f = from_rgb(&rgb, 31, 17, format, 2, 0);
            for filter in [Sf::Nearest, Sf::Bilinear] {
                let mut p = params(20, 11, Mc::Bgr, filter, To::Nchw);
                p.maintain_aspect_ratio = true;
                p.offsets = [1.0, 2.0, 3.0];
                let mut a = vec![0.0; p.tensor_len()];
                preprocess(&f.view(), Rect::full(31, 17), &p, &mut a).unwrap();
                p.order = To::Nhwc;
                let mut b = vec![0.0; p.tensor_len()];
                preprocess(&f.view(), Rect::full(31, 17), &p, &mut b).unwrap();
                for c in 0..3 {
                    for i in 0..220 {
                        assert_eq!(a[c * 220 + i], b[i * 3 + c]);
                    }
                }
            }
        }
    }

    #[test]
    fn bilinear_exact_values() {
        // 2x1 -> 4x1: sample positions -0.25, 0.25, 0.75, 1.25 -> clamp, interpolate.
        let data = [10u8, 50];
        let f = gray(&data, 2, 1);
        let p = params(4, 1, Mc::Gray, Sf::Bilinear, To::Nchw);
        let mut out = vec![0.0; 4];
        preprocess(&f, Rect::full(2, 1), &p, &mut out).unwrap();
        assert_eq!(out, vec![10.0, 20.0, 40.0, 50.0]);
        // Nearest of the same.
        let p = params(4, 1, Mc::Gray, Sf::Nearest, To::Nchw);
        preprocess(&f, Rect::full(2, 1), &p, &mut out).unwrap();
        assert_eq!(out, vec![10.0, 10.0, 50.0, 50.0]);
        // 2x2 -> 3x3: centre = mean of the four, edges = means of two.
        let data = [0u8, 100, 200, 60];
        let f = gray(&data, 2, 2);
        let p = params(3, 3, Mc::Gray, Sf::Bilinear, To::Nchw);
        let mut out = vec![0.0; 9];
        preprocess(&f, Rect::full(2, 2), &p, &mut out).unwrap();
        // positions: (i + 0.5) * 2/3 - 0.5 = -1/6, 0.5, 7/6 -> 0, 0.5, 1
        assert_eq!(
            out,
            vec![0.0, 50.0, 100.0, 100.0, 90.0, 80.0, 200.0, 130.0, 60.0]
        );
        // 4x1 -> 2x1 downscale: positions 0.5 and 2.5.
        let data = [0u8, 100, 200, 220];
        let f = gray(&data, 4, 1);
        let p = params(2, 1, Mc::Gray, Sf::Bilinear, To::Nchw);
        let mut out = vec![0.0; 2];
        preprocess(&f, Rect::full(4, 1), &p, &mut out).unwrap();
        assert_eq!(out, vec![50.0, 210.0]);
    }

    #[test]
    fn errors_instead_of_panics() {
        let p = params(4, 4, Mc::Rgb, Sf::Bilinear, To::Nchw);
        let mut out = vec![0.0; 48];
        let rgb = vec![0u8; 4 * 4 * 3];
        let ok = FrameView {
            format: PixelFormat::Rgb,
            width: 4,
            height: 4,
            planes: vec![&rgb],
            strides: vec![12],
        };
        assert!(preprocess(&ok, Rect::full(4, 4), &p, &mut out).is_ok());

        let short = FrameView {
            planes: vec![&rgb[..47]],
            ..ok.clone()
        };
        assert!(matches!(
            preprocess(&short, Rect::full(4, 4), &p, &mut out),
            Err(PreprocessError::PlaneTooShort {
                plane: 0,
                len: 47,
                needed: 48,
                ..
            })
        ));
        let wide = FrameView {
            strides: vec![13],
            ..ok.clone()
        };
        assert!(matches!(
            preprocess(&wide, Rect::full(4, 4), &p, &mut out),
            Err(PreprocessError::PlaneTooShort { .. })
        ));
        let narrow = FrameView {
            strides: vec![11],
            ..ok.clone()
        };
        assert!(matches!(
            preprocess(&narrow, Rect::full(4, 4), &p, &mut out),
            Err(PreprocessError::StrideTooSmall { .. })
        ));
        let huge = FrameView {
            strides: vec![usize::MAX],
            ..ok.clone()
        };
        assert!(matches!(
            preprocess(&huge, Rect::full(4, 4), &p, &mut out),
            Err(PreprocessError::PlaneTooShort { .. })
        ));
        let nv12 = FrameView {
            format: PixelFormat::Nv12,
            strides: vec![4],
            ..ok.clone()
        };
        assert!(matches!(
            preprocess(&nv12, Rect::full(4, 4), &p, &mut out),
            Err(PreprocessError::PlaneCount { expected: 2, .. })
        ));
        let y = vec![0u8; 16];
        let uv = vec![0u8; 7];
        let nv12 = FrameView {
            format: PixelFormat::Nv12,
            width: 4,
            height: 4,
            planes: vec![&y, &uv],
            strides: vec![4, 4],
        };
        assert!(matches!(
            preprocess(&nv12, Rect::full(4, 4), &p, &mut out),
            Err(PreprocessError::PlaneTooShort { plane: 1, .. })
        ));

        assert!(matches!(
            preprocess(&ok, Rect::new(1, 1, 0, 2), &p, &mut out),
            Err(PreprocessError::EmptyRoi { .. })
        ));
        assert!(matches!(
            preprocess(&ok, Rect::new(3, 0, 2, 2), &p, &mut out),
            Err(PreprocessError::RoiOutsideFrame { .. })
        ));
        assert!(matches!(
            preprocess(&ok, Rect::new(usize::MAX, 0, 2, 2), &p, &mut out),
            Err(PreprocessError::RoiOutsideFrame { .. })
        ));
        assert!(matches!(
            preprocess(&ok, Rect::full(4, 4), &p, &mut out[..47]),
            Err(PreprocessError::OutputSize {
                expected: 48,
                got: 47
            })
        ));
        let empty_net = params(0, 4, Mc::Rgb, Sf::Bilinear, To::Nchw);
        assert!(matches!(
            preprocess(&ok, Rect::full(4, 4), &empty_net, &mut []),
            Err(PreprocessError::EmptyNetwork { .. })
        ));
        // Zero-sized frame.
        let z = FrameView {
            width: 0,
            height: 0,
            planes: vec![&[]],
            ..ok.clone()
        };
        assert!(preprocess(&z, Rect::full(0, 0), &p, &mut out).is_err());
        // Messages name the problem.
        let e = preprocess(&short, Rect::full(4, 4), &p, &mut out).unwrap_err();
        assert!(e.to_string().contains("47"), "{e}");
    }
}
