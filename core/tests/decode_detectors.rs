//! Detector decoders on tensors whose expected boxes were worked out by hand.

use nvtl_core::config::{ClassAttrs, ClassAttrsTable};
use nvtl_core::decode::{decode, DecodeContext, Decoded, Parser};
use nvtl_core::{BBox, Detection, Tensor};

fn ctx(attrs: &ClassAttrsTable, w: usize, h: usize, num_classes: usize) -> DecodeContext<'_> {
    DecodeContext {
        network_width: w,
        network_height: h,
        num_classes,
        class_attrs: attrs,
        classifier_threshold: 0.5,
        segmentation_threshold: 0.5,
    }
}

fn dets(d: Decoded) -> Vec<Detection> {
    match d {
        Decoded::Detections(d) => d,
        other => panic!("expected detections, got {other:?}"),
    }
}

fn det(class_id: u32, confidence: f32, l: f32, t: f32, w: f32, h: f32) -> Detection {
    Detection {
        class_id,
        confidence,
        bbox: BBox::new(l, t, w, h),
    }
}

fn assert_close(got: &[Detection], want: &[Detection]) {
    assert_eq!(got.len(), want.len(), "got {got:?}\nwant {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.class_id, w.class_id, "{g:?} vs {w:?}");
        assert!((g.confidence - w.confidence).abs() < 1e-4, "{g:?} vs {w:?}");
        for (a, b) in [
            (g.bbox.left, w.bbox.left),
            (g.bbox.top, w.bbox.top),
            (g.bbox.width, w.bbox.width),
            (g.bbox.height, w.bbox.height),
        ] {
            assert!((a - b).abs() < 1e-3, "{g:?} vs {w:?}");
        }
    }
}

/// DetectNet_v2: network 64x32, grid 4x2 -> stride 16 both ways; 2 classes.
/// Cell centres: gc_x[i] = (16 i + 0.5) / 35, gc_y[j] = (16 j + 0.5) / 35.
fn detectnet_tensors() -> Vec<Tensor> {
    let (gh, gw) = (2, 4);
    let grid = gh * gw;
    let mut cov = vec![0.0f32; 2 * grid];
    let mut bbox = vec![0.0f32; 8 * grid];
    let mut set = |class: usize, h: usize, w: usize, conf: f32, o: [f32; 4]| {
        let i = w + h * gw;
        cov[class * grid + i] = conf;
        for (k, v) in o.iter().enumerate() {
            bbox[class * 4 * grid + k * grid + i] = *v;
        }
    };
    // Class 0, cell (h 1, w 2): x1 = 32.5 - 0.2*35 = 25.5, y1 = 16.5 - 0.1*35 = 13,
    // x2 = 0.3*35 + 32.5 = 43, y2 = 0.4*35 + 16.5 = 30.5.
    set(0, 1, 2, 0.9, [0.2, 0.1, 0.3, 0.4]);
    // Class 0, cell (0, 0): below the 0.2 threshold.
    set(0, 0, 0, 0.1, [0.0, 0.0, 0.5, 0.5]);
    // Class 0, cell (0, 3): x1 = 48.5, y1 = 0.5 - 17.5 < 0 -> 0, x2 = 35 + 48.5 >= 64 -> 63,
    // y2 = 0.5.
    set(0, 0, 3, 0.5, [0.0, 0.5, 1.0, 0.0]);
    // Class 1, cell (0, 1): x1 = 16.5 - 3.5 = 13, y1 = 0.5, x2 = 7 + 16.5 = 23.5, y2 = 10.5 + 0.5.
    set(1, 0, 1, 0.8, [0.1, 0.0, 0.2, 0.3]);
    // Class 1, cell (1, 0): 0.6 is below class 1's own threshold 0.7.
    set(1, 1, 0, 0.6, [0.0, 0.0, 0.1, 0.1]);
    vec![
        Tensor::new("output_bbox/BiasAdd", vec![1, 8, gh, gw], bbox),
        Tensor::new("output_cov/Sigmoid", vec![1, 2, gh, gw], cov),
    ]
}

#[test]
fn detectnet_v2_matches_nvinfer_arithmetic() {
    let mut attrs = ClassAttrsTable::default();
    attrs.per_class.insert(
        1,
        ClassAttrs {
            pre_cluster_threshold: 0.7,
            ..Default::default()
        },
    );
    let got = dets(
        decode(
            Parser::DetectNetV2,
            &detectnet_tensors(),
            0,
            &ctx(&attrs, 64, 32, 2),
        )
        .unwrap(),
    );
    assert_close(
        &got,
        &[
            det(0, 0.5, 48.5, 0.0, 14.5, 0.5),
            det(0, 0.9, 25.5, 13.0, 17.5, 17.5),
            det(1, 0.8, 13.0, 0.5, 10.5, 10.5),
        ],
    );
    // num-detected-classes 1: nvinfer decodes min(C, configured) classes.
    let got = dets(
        decode(
            Parser::DetectNetV2,
            &detectnet_tensors(),
            0,
            &ctx(&attrs, 64, 32, 1),
        )
        .unwrap(),
    );
    assert_eq!(got.len(), 2);
    // Stride is ceil(net / grid): a 62-wide network still has stride 16, clips at 61.
    let got = dets(
        decode(
            Parser::DetectNetV2,
            &detectnet_tensors(),
            0,
            &ctx(&attrs, 62, 32, 2),
        )
        .unwrap(),
    );
    assert_close(&got[..1], &[det(0, 0.5, 48.5, 0.0, 12.5, 0.5)]);
}

#[test]
fn detectnet_v2_falls_back_to_shapes_when_names_do_not_say() {
    let attrs = ClassAttrsTable::default();
    let mut t = detectnet_tensors();
    t[0].name = "out_a".into();
    t[1].name = "out_b".into();
    let got = dets(decode(Parser::DetectNetV2, &t, 0, &ctx(&attrs, 64, 32, 2)).unwrap());
    assert_eq!(got.len(), 4);
}

#[test]
fn yolov8_boxes_by_hand() {
    // [1, 4 + 2, 3]: rows cx, cy, w, h, score0, score1; columns are candidates.
    let data = vec![
        50.0, 10.0, 80.0, // cx
        50.0, 10.0, 80.0, // cy
        20.0, 30.0, 10.0, // w
        10.0, 30.0, 10.0, // h
        0.9, 0.3, 0.1, // class 0
        0.1, 0.6, 0.15, // class 1
    ];
    let t = vec![Tensor::new("output0", vec![1, 6, 3], data.clone())];
    let attrs = ClassAttrsTable::default();
    let got = dets(decode(Parser::YoloV8, &t, 0, &ctx(&attrs, 100, 100, 2)).unwrap());
    // Candidate 1 spans (-5, -5)..(25, 25), clipped to (0, 0)..(25, 25); candidate 2 is below 0.2.
    assert_close(
        &got,
        &[
            det(0, 0.9, 40.0, 45.0, 20.0, 10.0),
            det(1, 0.6, 0.0, 0.0, 25.0, 25.0),
        ],
    );

    // The same as [1, 3, 6] (transposed export), recognised with num-detected-classes.
    let mut tr = vec![0.0; 18];
    for row in 0..6 {
        for cand in 0..3 {
            tr[cand * 6 + row] = data[row * 3 + cand];
        }
    }
    let t = vec![Tensor::new("output0", vec![1, 3, 6], tr)];
    let got2 = dets(decode(Parser::YoloV8, &t, 0, &ctx(&attrs, 100, 100, 2)).unwrap());
    assert_close(&got2, &got);
}

#[test]
fn yolov8_second_batch_item() {
    let mut data = vec![0.0f32; 2 * 6];
    // Item 1, one candidate: (30, 40, 10, 20), class 1 at 0.7.
    data[6..].copy_from_slice(&[30.0, 40.0, 10.0, 20.0, 0.1, 0.7]);
    let t = vec![Tensor::new("output0", vec![2, 6, 1], data)];
    let attrs = ClassAttrsTable::default();
    let c = ctx(&attrs, 100, 100, 0);
    assert!(dets(decode(Parser::YoloV8, &t, 0, &c).unwrap()).is_empty());
    let got = dets(decode(Parser::YoloV8, &t, 1, &c).unwrap());
    assert_close(&got, &[det(1, 0.7, 25.0, 30.0, 10.0, 20.0)]);
}

#[test]
fn yolov5_confidence_is_objectness_times_class() {
    let data = vec![
        50.0, 50.0, 20.0, 10.0, 0.5, 0.8, 0.2, // conf 0.4, class 0
        10.0, 10.0, 4.0, 4.0, 0.9, 0.1, 0.2, // conf 0.18 < 0.2
    ];
    let t = vec![Tensor::new("output", vec![1, 2, 7], data)];
    let attrs = ClassAttrsTable::default();
    let got = dets(decode(Parser::YoloV5, &t, 0, &ctx(&attrs, 100, 100, 2)).unwrap());
    assert_close(&got, &[det(0, 0.4, 40.0, 45.0, 20.0, 10.0)]);
}

#[test]
fn ssd_raw_boxes_and_background_class() {
    // Network 200 x 100. Box 0: ymin .1 xmin .2 ymax .5 xmax .6 -> x 40..120, y 10..50.
    let boxes = Tensor::new(
        "boxes",
        vec![1, 2, 4],
        vec![0.1, 0.2, 0.5, 0.6, 0.0, 0.0, 1.0, 1.0],
    );
    // Scores: class 0 is background and never reported.
    let scores = Tensor::new("scores", vec![1, 2, 3], vec![0.1, 0.7, 0.3, 0.9, 0.05, 0.1]);
    let attrs = ClassAttrsTable::default();
    let got = dets(decode(Parser::Ssd, &[scores, boxes], 0, &ctx(&attrs, 200, 100, 3)).unwrap());
    assert_close(
        &got,
        &[
            det(1, 0.7, 40.0, 10.0, 80.0, 40.0),
            det(2, 0.3, 40.0, 10.0, 80.0, 40.0),
        ],
    );
}

#[test]
fn ssd_already_decoded_outputs() {
    let t = vec![
        Tensor::new("num_detections", vec![1], vec![2.0]),
        Tensor::new(
            "detection_boxes",
            vec![1, 3, 4],
            vec![0.1, 0.2, 0.5, 0.6, 0.0, 0.0, 0.5, 0.5, 0.0, 0.0, 1.0, 1.0],
        ),
        Tensor::new("detection_scores", vec![1, 3], vec![0.9, 0.1, 0.95]),
        Tensor::new("detection_classes", vec![1, 3], vec![3.0, 1.0, 2.0]),
    ];
    let attrs = ClassAttrsTable::default();
    let got = dets(decode(Parser::Ssd, &t, 0, &ctx(&attrs, 200, 100, 91)).unwrap());
    // Row 1 is below threshold; row 2 is past num_detections.
    assert_close(&got, &[det(3, 0.9, 40.0, 10.0, 80.0, 40.0)]);
}

#[test]
fn centernet_peaks_and_ltrb() {
    // Network 16x16, map 4x4 -> stride 4. Two classes.
    let (h, w) = (4, 4);
    let plane = h * w;
    let mut heat = vec![0.0f32; 2 * plane];
    let mut ltrb = vec![0.0f32; 4 * plane];
    let mut set_ltrb = |y: usize, x: usize, v: [f32; 4]| {
        for (k, d) in v.iter().enumerate() {
            ltrb[k * plane + y * w + x] = *d;
        }
    };
    heat[w + 2] = 0.8; // class 0 at (y 1, x 2): peak
    heat[w + 1] = 0.5; // its neighbour: not a peak
    heat[3 * w] = 0.3; // class 0 at (3, 0): isolated peak
    heat[plane + 3 * w + 3] = 0.6; // class 1 at (3, 3)
    set_ltrb(1, 2, [3.0, 2.0, 5.0, 6.0]); // centre (8, 4) -> (5, 2, 13, 10)
    set_ltrb(3, 3, [2.0, 2.0, 10.0, 10.0]); // centre (12, 12) -> (10, 10, 22, 22) -> clipped to 16
    set_ltrb(3, 0, [1.0, 1.0, 1.0, 1.0]); // centre (0, 12) -> (-1, 11, 1, 13) -> (0, 11, 1, 13)
    let t = vec![
        Tensor::new("tower_0/keypoints", vec![1, 2, h, w], heat),
        Tensor::new("tower_0/wh", vec![1, 4, h, w], ltrb),
    ];
    let attrs = ClassAttrsTable::default();
    let got = dets(decode(Parser::CenterNet, &t, 0, &ctx(&attrs, 16, 16, 2)).unwrap());
    assert_close(
        &got,
        &[
            det(0, 0.8, 5.0, 2.0, 8.0, 8.0),
            det(1, 0.6, 10.0, 10.0, 6.0, 6.0),
            det(0, 0.3, 0.0, 11.0, 1.0, 2.0),
        ],
    );
}

#[test]
fn centernet_keeps_top_100() {
    // 20x20 map, isolated peaks on even (y, x): 100 per class; class 1 scores higher.
    let (h, w) = (20, 20);
    let plane = h * w;
    let mut heat = vec![0.0f32; 2 * plane];
    for y in (0..h).step_by(2) {
        for x in (0..w).step_by(2) {
            heat[y * w + x] = 0.5;
            heat[plane + y * w + x] = 0.9;
        }
    }
    let ltrb = vec![1.0f32; 4 * plane];
    let t = vec![
        Tensor::new("heat", vec![1, 2, h, w], heat),
        Tensor::new("wh", vec![1, 4, h, w], ltrb),
    ];
    let attrs = ClassAttrsTable::default();
    let got = dets(decode(Parser::CenterNet, &t, 0, &ctx(&attrs, 80, 80, 2)).unwrap());
    assert_eq!(got.len(), 100);
    assert!(got.iter().all(|d| d.class_id == 1));
}

#[test]
fn blazeface_anchors_and_regressors() {
    let mut reg = vec![0.0f32; 896 * 16];
    let mut scores = vec![-10.0f32; 896];
    // Anchor 0: 16x16 grid, cell (0, 0): centre (4, 4) px. reg centre +1, +2 -> (5, 6), size 10x20.
    reg[..4].copy_from_slice(&[1.0, 2.0, 10.0, 20.0]);
    scores[0] = 2.0;
    // Anchor 71: 16x16 grid, cell (y 2, x 3), second anchor: centre (28, 20).
    reg[71 * 16..71 * 16 + 4].copy_from_slice(&[0.0, 0.0, 8.0, 8.0]);
    scores[71] = 0.0;
    // Anchor 688: 8x8 grid, cell (y 3, x 5), third anchor: centre (88, 56).
    reg[688 * 16..688 * 16 + 4].copy_from_slice(&[0.0, 0.0, 20.0, 30.0]);
    scores[688] = 1000.0; // clipped to 100
    let t = vec![
        Tensor::new("regressors", vec![1, 896, 16], reg),
        Tensor::new("classificators", vec![1, 896, 1], scores),
    ];
    let attrs = ClassAttrsTable::default();
    let got = dets(decode(Parser::BlazeFace, &t, 0, &ctx(&attrs, 128, 128, 1)).unwrap());
    let s = 1.0 / (1.0 + (-2.0f32).exp());
    assert_close(
        &got,
        &[
            det(0, s, 0.0, 0.0, 10.0, 16.0), // (0, -4, 10, 16) clipped
            det(0, 0.5, 24.0, 16.0, 8.0, 8.0),
            det(0, 1.0, 78.0, 41.0, 20.0, 30.0),
        ],
    );
}
