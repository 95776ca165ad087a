//! The real zoo models: pulled from npm, converted, loaded in tract and run on real photos.

mod zoo_common;

use tract_onnx::prelude::*;
use zoo_common::{asset, nhwc, pulled};

fn run(onnx: &std::path::Path, input: Tensor) -> TVec<TValue> {
    let model = tract_onnx::onnx()
        .model_for_path(onnx)
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    model.run(tvec![input.into_tvalue()]).unwrap()
}

/// (value, x, y) of the highest heat-map cell of `class` (heat map `[1, C, H, W]`).
fn peak(heat: &tract_ndarray::ArrayViewD<f32>, class: usize) -> (f32, usize, usize) {
    let (h, w) = (heat.shape()[2], heat.shape()[3]);
    let mut best = (f32::MIN, 0, 0);
    for y in 0..h {
        for x in 0..w {
            let v = heat[[0, class, y, x]];
            if v > best.0 {
                best = (v, x, y);
            }
        }
    }
    best
}

/// Darknet's dog.jpg (768x576: a dog bottom-left, a bicycle in the middle, a truck top-right).
#[test]
fn centernet_finds_dog_bicycle_and_truck() {
    let bundle = pulled("centernet_mobilenetv3_coco");
    let labels = std::fs::read_to_string(&bundle.labels).unwrap();
    let labels: Vec<&str> = labels.lines().collect();
    assert_eq!(labels.len(), 80);
    assert_eq!(
        (labels[1], labels[2], labels[7], labels[16]),
        ("bicycle", "car", "truck", "dog")
    );

    // Raw 0..255 RGB, NHWC, no scaling.
    let data = nhwc(&asset("dog.jpg"), 512, 512, |p| p);
    let input = Tensor::from_shape(&[1, 512, 512, 3], &data).unwrap();
    let outputs = run(&bundle.onnx, input);
    assert_eq!(outputs.len(), 2);
    let heat = outputs[0].to_plain_array_view::<f32>().unwrap();
    let ltrb = outputs[1].to_plain_array_view::<f32>().unwrap();
    assert_eq!(heat.shape(), &[1, 80, 128, 128]);
    assert_eq!(ltrb.shape(), &[1, 4, 128, 128]);

    let report = |class: usize| {
        let (v, x, y) = peak(&heat, class);
        // Box in 512x512 input pixels, then in dog.jpg pixels.
        let d: Vec<f32> = (0..4).map(|k| ltrb[[0, k, y, x]]).collect();
        let (cx, cy) = (4.0 * x as f32, 4.0 * y as f32);
        let (sx, sy) = (768.0 / 512.0, 576.0 / 512.0);
        let b = [
            (cx - d[0]) * sx,
            (cy - d[1]) * sy,
            (cx + d[2]) * sx,
            (cy + d[3]) * sy,
        ];
        eprintln!(
            "{:>8}: peak {v:.3} at cell ({x}, {y}) -> image ({:.0}, {:.0}); box [{:.0}, {:.0}, {:.0}, {:.0}]",
            labels[class],
            cx * sx,
            cy * sy,
            b[0],
            b[1],
            b[2],
            b[3]
        );
        (v, cx * sx, cy * sy, b)
    };
    let (dog, dx, dy, dog_box) = report(16);
    let (bike, bx, by, _) = report(1);
    let (truck, tx, ty, _) = report(7);
    let (car, cx, cy, _) = report(2);

    assert!(dog > 0.4, "dog peak {dog}");
    assert!(
        dx < 384.0 && dy > 288.0,
        "dog should be bottom-left, peak at ({dx}, {dy})"
    );
    assert!(
        dog_box[2] - dog_box[0] > 100.0 && dog_box[3] - dog_box[1] > 150.0,
        "dog box {dog_box:?}"
    );
    assert!(bike > 0.4, "bicycle peak {bike}");
    assert!(
        (150.0..600.0).contains(&bx) && (150.0..450.0).contains(&by),
        "bicycle at ({bx}, {by})"
    );
    let (v, x, y) = if truck >= car {
        (truck, tx, ty)
    } else {
        (car, cx, cy)
    };
    assert!(v > 0.4, "truck {truck} / car {car}");
    assert!(
        x > 400.0 && y < 250.0,
        "truck/car should be top-right, peak at ({x}, {y})"
    );
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// scikit-image's astronaut.png (512x512 portrait of Eileen Collins).
#[test]
fn blazeface_finds_the_astronaut() {
    let bundle = pulled("blazeface_front_128");
    let data = nhwc(&asset("astronaut.png"), 128, 128, |p| p / 127.5 - 1.0);
    let input = Tensor::from_shape(&[1, 128, 128, 3], &data).unwrap();
    let outputs = run(&bundle.onnx, input);
    assert_eq!(outputs.len(), 4);
    // Scores: [1,512,1] (16x16 grid, 2 anchors) and [1,384,1] (8x8 grid, 6 anchors);
    // regressors [1,512,16] and [1,384,16].
    let mut best = (f32::MIN, 0.0, 0.0);
    for (scores, regs, grid, per_cell) in [
        (&outputs[0], &outputs[2], 16usize, 2usize),
        (&outputs[1], &outputs[3], 8, 6),
    ] {
        let s = scores.to_plain_array_view::<f32>().unwrap();
        let r = regs.to_plain_array_view::<f32>().unwrap();
        for i in 0..grid * grid * per_cell {
            let score = sigmoid(s[[0, i, 0]]);
            if score > best.0 {
                let cell = i / per_cell;
                let ax = ((cell % grid) as f32 + 0.5) / grid as f32;
                let ay = ((cell / grid) as f32 + 0.5) / grid as f32;
                best = (score, ax + r[[0, i, 0]] / 128.0, ay + r[[0, i, 1]] / 128.0);
            }
        }
    }
    let (score, x, y) = best;
    eprintln!(
        "astronaut: face score {score:.3} centred at ({:.0}, {:.0}) px",
        x * 512.0,
        y * 512.0
    );
    assert!(score > 0.5, "face score {score}");
    assert!(
        (0.3..0.7).contains(&x) && (0.05..0.5).contains(&y),
        "face centre ({x}, {y})"
    );
}

/// The converted CenterNet equals TF.js's own execution of the graph (tfjs-converter 4.22 with the
/// cpu backend, run once by hand) on a fixed pseudo-random input: values sampled from its NHWC
/// outputs as (channel, y, x, value).
#[test]
fn centernet_matches_tfjs_reference() {
    let bundle = pulled("centernet_mobilenetv3_coco");
    let data: Vec<f32> = (0..512u64 * 512 * 3)
        .map(|i| ((i * 7919) % 256) as f32)
        .collect();
    let outputs = run(
        &bundle.onnx,
        Tensor::from_shape(&[1, 512, 512, 3], &data).unwrap(),
    );
    let heat = outputs[0].to_plain_array_view::<f32>().unwrap();
    let ltrb = outputs[1].to_plain_array_view::<f32>().unwrap();
    #[rustfmt::skip]
    let heat_ref = [
        (0, 0, 0, 0.024354324), (78, 56, 123, 0.00036575785), (69, 57, 119, 0.00021754566),
        (52, 57, 126, 0.0002995481), (77, 58, 108, 0.0007541257), (60, 58, 115, 0.0007907961),
        (43, 58, 122, 0.00049717724), (68, 59, 104, 0.00024908048), (51, 59, 111, 0.0013592921),
        (34, 59, 118, 0.0031984309), (17, 59, 125, 0.00044458563), (76, 60, 93, 0.0037524393),
    ];
    for (c, y, x, v) in heat_ref {
        let got = heat[[0, c, y, x]];
        assert!(
            (got - v).abs() < 1e-6,
            "heat map ({c}, {y}, {x}): {got} vs TF.js {v}"
        );
    }
    let ltrb_ref = [
        (0, 0, 0, 1.3098788),
        (3, 70, 46, 229.00081),
        (2, 72, 31, 72.181366),
        (1, 74, 16, 262.65366),
        (0, 76, 1, 3.3602011),
    ];
    for (c, y, x, v) in ltrb_ref {
        let got = ltrb[[0, c, y, x]];
        assert!(
            (got - v).abs() < 1e-3,
            "ltrb ({c}, {y}, {x}): {got} vs TF.js {v}"
        );
    }
}
