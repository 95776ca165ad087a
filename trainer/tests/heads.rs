//! Heads: encoded targets decode back through core's decoders (the element's), losses equal
//! hand-computed values and vanish at the targets, gradients point the right way, and a tiny
//! optimisation against encoded targets decodes to the target boxes.

mod common;

use burn::module::{Module, Param};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::{sigmoid, softmax};

use nvtl_core::backend::BackendKind;
use nvtl_core::cluster::cluster;
use nvtl_core::config::{ClassAttrsTable, ClusterMode, InferConfig};
use nvtl_core::decode::{decode, DecodeContext, Decoded, Parser};
use nvtl_core::engine::{Engine, InferResult};
use nvtl_core::preprocess::{FrameView, PixelFormat, Rect};
use nvtl_core::{BBox, Detection};

use nvtl_trainer::heads::centernet::{self, CenterNetParams, CenterNetTargets};
use nvtl_trainer::heads::detectnet_v2::{self, DetectNetParams, DetectNetTargets};
use nvtl_trainer::heads::{classifier, scalar, HeadError, Object};

const ZOO_CENTERNET: &str = "centernet_mobilenetv3_coco";
const COCO_CLASSES: usize = 80;
const NET: usize = 512;

fn cpu() -> Device {
    Device::flex()
}

fn autodiff() -> Device {
    Device::flex().autodiff()
}

fn values<const D: usize>(t: &Tensor<D>) -> Vec<f32> {
    t.try_to_vec_as::<f32>().expect("tensor data")
}

fn bbox_of(b: [f32; 4]) -> BBox {
    BBox::from_ltrb(b[0], b[1], b[2], b[3])
}

/// A burn NCHW tensor as the core tensor a session would hand to the decoder.
fn core_tensor(name: &str, t: &Tensor<4>) -> nvtl_core::Tensor {
    nvtl_core::Tensor::new(name, t.dims().to_vec(), values(t))
}

/// What the zoo CenterNet gives for one image resized to its 512x512 input (so frame and
/// network pixels are the same): its detections as objects, and its raw heat map and ltrb.
struct ZooRun {
    objects: Vec<Object>,
    heat: nvtl_core::Tensor,
    ltrb: nvtl_core::Tensor,
}

fn zoo_engine() -> (Engine, InferConfig) {
    let bundle = common::bundle(ZOO_CENTERNET);
    let mut config = InferConfig::from_file(&bundle.config)
        .expect("zoo config")
        .config;
    config.output_tensor_meta = true;
    let (engine, _) =
        Engine::load(config.clone(), BackendKind::Cpu, 0).expect("zoo CenterNet loads");
    assert_eq!(engine.network_size(), (NET, NET));
    (engine, config)
}

fn zoo_run(engine: &mut Engine, image_name: &str) -> ZooRun {
    let image = image::open(common::asset(image_name))
        .expect("test image")
        .resize_exact(
            NET as u32,
            NET as u32,
            image::imageops::FilterType::Triangle,
        )
        .to_rgb8();
    let frame = FrameView {
        format: PixelFormat::Rgb,
        width: NET,
        height: NET,
        planes: vec![image.as_raw()],
        strides: vec![NET * 3],
    };
    let region = Rect {
        x: 0,
        y: 0,
        width: NET,
        height: NET,
    };
    let results = engine.infer_regions(&frame, &[region]).expect("inference");
    let InferResult::Objects(found) = &results[0] else {
        panic!("CenterNet gives objects, got {:?}", results[0]);
    };
    let objects: Vec<Object> = found
        .iter()
        .map(|o| {
            (
                o.class_id as usize,
                [o.bbox.left, o.bbox.top, o.bbox.right(), o.bbox.bottom()],
            )
        })
        .collect();
    let outputs = engine.target_outputs.remove(0);
    let by_channels = |c: usize| {
        outputs
            .iter()
            .find(|t| t.shape.get(1) == Some(&c))
            .cloned()
            .expect("heat map [1, 80, 128, 128] and ltrb [1, 4, 128, 128]")
    };
    ZooRun {
        objects,
        heat: by_channels(COCO_CLASSES),
        ltrb: by_channels(4),
    }
}

/// The zoo CenterNet's detections on dog.jpg, in network pixels.
fn zoo_objects_on_dog() -> (Vec<Object>, InferConfig) {
    let (mut engine, config) = zoo_engine();
    let objects = zoo_run(&mut engine, "dog.jpg").objects;
    eprintln!("zoo CenterNet on dog.jpg at 512x512: {objects:?}");
    // dog.jpg: a dog, a bicycle and a vehicle at least.
    assert!(objects.len() >= 3, "{objects:?}");
    for class in [1, 16] {
        assert!(
            objects.iter().any(|o| o.0 == class),
            "class {class} missing: {objects:?}"
        );
    }
    (objects, config)
}

fn burn_tensor(t: &nvtl_core::Tensor, device: &Device) -> Tensor<4> {
    let shape: [usize; 4] = t.shape.clone().try_into().expect("rank 4");
    Tensor::from_data(TensorData::new(t.data.clone(), shape), device)
}

fn decode_with(
    parser: Parser,
    outputs: &[nvtl_core::Tensor],
    network_hw: (usize, usize),
    num_classes: usize,
    attrs: &ClassAttrsTable,
) -> Vec<Detection> {
    let ctx = DecodeContext {
        network_width: network_hw.1,
        network_height: network_hw.0,
        num_classes,
        class_attrs: attrs,
        classifier_threshold: 0.5,
        segmentation_threshold: 0.5,
    };
    match decode(parser, outputs, 0, &ctx).expect("decodes") {
        Decoded::Detections(d) => d,
        other => panic!("{parser} gave {other:?}"),
    }
}

/// Every expected object is found once (same class, IoU > `min_iou`) and nothing else is.
fn assert_same_objects(decoded: &[Detection], expected: &[Object], min_iou: f32) {
    assert_eq!(
        decoded.len(),
        expected.len(),
        "decoded {decoded:?}\nexpected {expected:?}"
    );
    let mut used = vec![false; decoded.len()];
    for &(class, b) in expected {
        let target = bbox_of(b);
        let best = decoded
            .iter()
            .enumerate()
            .filter(|(i, d)| !used[*i] && d.class_id as usize == class)
            .map(|(i, d)| (i, d.bbox.iou(&target)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let Some((i, iou)) = best else {
            panic!("class {class} {b:?} not decoded: {decoded:?}");
        };
        assert!(
            iou > min_iou,
            "class {class} {b:?}: IoU {iou} with {:?}",
            decoded[i]
        );
        used[i] = true;
    }
}

fn centernet_outputs(t: &CenterNetTargets) -> Vec<nvtl_core::Tensor> {
    let (h, w) = t.grid_hw;
    vec![
        nvtl_core::Tensor::new("heatmap", vec![1, t.num_classes, h, w], t.heat.clone()),
        nvtl_core::Tensor::new("ltrb", vec![1, 4, h, w], t.ltrb.clone()),
    ]
}

fn detectnet_outputs(t: &DetectNetTargets) -> Vec<nvtl_core::Tensor> {
    let (h, w) = t.grid_hw;
    vec![
        nvtl_core::Tensor::new(
            "output_cov",
            vec![1, t.num_classes, h, w],
            t.coverage.clone(),
        ),
        nvtl_core::Tensor::new(
            "output_bbox",
            vec![1, 4 * t.num_classes, h, w],
            t.bbox.clone(),
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Round trips through core's decoders

#[test]
fn centernet_targets_of_zoo_detections_decode_to_the_same_boxes() {
    let (objects, config) = zoo_objects_on_dog();
    let p = CenterNetParams::default();
    let targets = centernet::encode(&objects, COCO_CLASSES, (NET, NET), &p).unwrap();
    assert_eq!(targets.grid_hw, (128, 128));
    assert!(targets.skipped.is_empty() && targets.overwritten.is_empty());
    assert_eq!(
        targets.mask.iter().filter(|&&m| m == 1.0).count(),
        objects.len()
    );
    // The zoo config's thresholds (pre-cluster 0.35) and its clustering (NMS 0.5), as the
    // element runs them.
    let decoded = decode_with(
        Parser::CenterNet,
        &centernet_outputs(&targets),
        (NET, NET),
        COCO_CLASSES,
        &config.class_attrs,
    );
    assert!(decoded.iter().all(|d| d.confidence == 1.0));
    assert_same_objects(&decoded, &objects, 0.9999);
    let clustered = cluster(decoded, config.cluster_mode, &config.class_attrs);
    assert_same_objects(&clustered, &objects, 0.9999);
}

#[test]
fn zoo_centernet_peaks_favour_the_encoded_cell_and_score_low_loss() {
    let (mut engine, _) = zoo_engine();
    let p = CenterNetParams::default();
    let runs: Vec<(&str, ZooRun)> = [
        "dog.jpg",
        "horses.jpg",
        "person.jpg",
        "astronaut.png",
        "chelsea.png",
        "coffee.png",
        "motorcycle_left.png",
    ]
    .into_iter()
    .map(|name| (name, zoo_run(&mut engine, name)))
    .collect();
    let (mut on_cell, mut on_rounded_cell, mut total) = (0, 0, 0);
    for (i, (name, run)) in runs.iter().enumerate() {
        let targets = centernet::encode(&run.objects, COCO_CLASSES, (NET, NET), &p).unwrap();
        // The teacher's ltrb at the encoded cell gives its own detection back when its peak
        // sits on that cell.
        let plane = 128 * 128;
        let decodes_from = |x: usize, y: usize, b: [f32; 4]| {
            let cell = y.min(127) * 128 + x.min(127);
            let ltrb: Vec<f32> = (0..4).map(|k| run.ltrb.data[k * plane + cell]).collect();
            let (px, py) = (4.0 * x as f32, 4.0 * y as f32);
            let decoded = [px - ltrb[0], py - ltrb[1], px + ltrb[2], py + ltrb[3]];
            bbox_of(decoded).iou(&bbox_of(b)) > 0.99
        };
        for &(_, b) in &run.objects {
            let (cx, cy) = ((b[0] + b[2]) / 8.0, (b[1] + b[3]) / 8.0);
            on_cell += decodes_from(cx.floor() as usize, cy.floor() as usize, b) as usize;
            on_rounded_cell += decodes_from(cx.round() as usize, cy.round() as usize, b) as usize;
            total += 1;
        }
        // The teacher's outputs cost less against targets from its own detections than against
        // another image's.
        let (_, other) = &runs[(i + 1) % runs.len()];
        let other_targets =
            centernet::encode(&other.objects, COCO_CLASSES, (NET, NET), &p).unwrap();
        let device = cpu();
        let (heat, ltrb) = (
            burn_tensor(&run.heat, &device),
            burn_tensor(&run.ltrb, &device),
        );
        let own = centernet::batch_targets(&[targets], &device).unwrap();
        let foreign = centernet::batch_targets(&[other_targets], &device).unwrap();
        let own = centernet::loss(heat.clone(), ltrb.clone(), &own, &p)
            .unwrap()
            .values();
        let foreign = centernet::loss(heat, ltrb, &foreign, &p).unwrap().values();
        eprintln!(
            "{name}: {} objects; teacher loss vs own targets {own:?}, vs another image's {foreign:?}",
            run.objects.len()
        );
        assert!(own.focal < foreign.focal && own.box_l1 < foreign.box_l1);
    }
    eprintln!(
        "teacher peaks on the encoded cell: {on_cell} of {total} (nearest cell: {on_rounded_cell})"
    );
    assert!(total >= 10, "{total} detections");
    assert!(
        on_cell > on_rounded_cell,
        "{on_cell} vs {on_rounded_cell} of {total}"
    );
}

#[test]
fn centernet_encoding_clips_skips_and_resolves_shared_cells() {
    // A 320x256 input (the scene-adaptation size): grid 80x64.
    let input_hw = (256, 320);
    let p = CenterNetParams::default();
    let objects: Vec<Object> = vec![
        (0, [10.0, 20.0, 90.0, 200.0]),
        (2, [150.5, 40.25, 181.0, 77.75]),
        // Partly outside: clipped to the input.
        (1, [280.0, 200.0, 360.0, 300.0]),
        // Entirely outside: skipped.
        (1, [400.0, 10.0, 420.0, 30.0]),
        // Same centre cell as the first object, smaller: it owns the cell's ltrb.
        (2, [30.0, 90.0, 70.0, 130.0]),
    ];
    let targets = centernet::encode(&objects, 3, input_hw, &p).unwrap();
    assert_eq!(targets.grid_hw, (64, 80));
    assert_eq!(targets.skipped, vec![3]);
    assert_eq!(targets.overwritten, vec![0]);
    let decoded = decode_with(
        Parser::CenterNet,
        &centernet_outputs(&targets),
        input_hw,
        3,
        &ClassAttrsTable::default(),
    );
    // Object 0's peak decodes with object 4's box (one ltrb per cell).
    let expected: Vec<Object> = vec![
        (0, [30.0, 90.0, 70.0, 130.0]),
        objects[1],
        (1, [280.0, 200.0, 320.0, 256.0]),
        objects[4],
    ];
    assert_same_objects(&decoded, &expected, 0.9999);

    let error = centernet::encode(&[(3, [0.0, 0.0, 5.0, 5.0])], 3, input_hw, &p).unwrap_err();
    assert_eq!(
        error,
        HeadError::ObjectClass {
            object: 0,
            class: 3,
            num_classes: 3
        }
    );
    let error = centernet::encode(&[(0, [0.0, f32::NAN, 5.0, 5.0])], 3, input_hw, &p).unwrap_err();
    assert!(matches!(error, HeadError::NonFiniteBox { object: 0, .. }));
    let zero_stride = CenterNetParams {
        stride: 0,
        ..p.clone()
    };
    assert!(centernet::encode(&objects, 3, input_hw, &zero_stride).is_err());
}

#[test]
fn detectnet_v2_targets_of_zoo_detections_decode_to_the_same_boxes() {
    let (objects, _) = zoo_objects_on_dog();
    let p = DetectNetParams::default();
    // nvinfer's defaults: pre-cluster-threshold 0.2; NMS merges the copies of each box.
    let mut attrs = ClassAttrsTable::default();
    attrs.all.nms_iou_threshold = 0.5;
    for (input_hw, scale) in [
        ((NET, NET), (1.0, 1.0)),
        ((544, 960), (960.0 / 512.0, 544.0 / 512.0)),
    ] {
        let scaled: Vec<Object> = objects
            .iter()
            .map(|&(c, b)| {
                (
                    c,
                    [
                        b[0] * scale.0,
                        b[1] * scale.1,
                        b[2] * scale.0,
                        b[3] * scale.1,
                    ],
                )
            })
            .collect();
        let targets = detectnet_v2::encode(&scaled, COCO_CLASSES, input_hw, &p).unwrap();
        assert_eq!(
            targets.grid_hw,
            (input_hw.0.div_ceil(16), input_hw.1.div_ceil(16))
        );
        assert!(targets.skipped.is_empty() && targets.overwritten.is_empty());
        let decoded = decode_with(
            Parser::DetectNetV2,
            &detectnet_outputs(&targets),
            input_hw,
            COCO_CLASSES,
            &attrs,
        );
        let covered = targets.coverage.iter().filter(|&&v| v == 1.0).count();
        assert_eq!(decoded.len(), covered);
        // Every covered cell gives its object's box (right/bottom edges at the input size come
        // back as size - 1, nvinfer's clipping).
        for d in &decoded {
            let best = scaled
                .iter()
                .filter(|o| o.0 == d.class_id as usize)
                .map(|o| d.bbox.iou(&bbox_of(o.1)))
                .fold(0.0f32, f32::max);
            assert!(best > 0.95, "{d:?} matches no object of its class");
        }
        let clustered = cluster(decoded, ClusterMode::Nms, &attrs);
        assert_same_objects(&clustered, &scaled, 0.95);
    }
}

#[test]
fn detectnet_v2_encoding_shares_cells_and_reports_hidden_objects() {
    let p = DetectNetParams::default();
    let input_hw = (160, 160);
    let objects: Vec<Object> = vec![
        // Covers cells 3..=6 on both axes (cell centres 56..104 in the central 48..112).
        (0, [0.0, 0.0, 160.0, 160.0]),
        // Inside it, same class: takes cells 4..=5; the big one keeps the ring around them.
        (0, [40.0, 40.0, 120.0, 120.0]),
        // Covers only cell (1, 1) ...
        (1, [0.0, 0.0, 40.0, 40.0]),
        // ... which this smaller object of the same class takes: object 2 is hidden.
        (1, [16.0, 16.0, 32.0, 32.0]),
        // Outside the input.
        (1, [170.0, 0.0, 200.0, 20.0]),
    ];
    let targets = detectnet_v2::encode(&objects, 2, input_hw, &p).unwrap();
    assert_eq!(targets.grid_hw, (10, 10));
    assert_eq!(targets.skipped, vec![4]);
    assert_eq!(targets.overwritten, vec![2]);
    let grid = 100;
    let covered = |class: usize| {
        targets.coverage[class * grid..(class + 1) * grid]
            .iter()
            .filter(|&&v| v == 1.0)
            .count()
    };
    assert_eq!((covered(0), covered(1)), (16, 1));
    let mut attrs = ClassAttrsTable::default();
    attrs.all.nms_iou_threshold = 0.5;
    let decoded = decode_with(
        Parser::DetectNetV2,
        &detectnet_outputs(&targets),
        input_hw,
        2,
        &attrs,
    );
    let clustered = cluster(decoded, ClusterMode::Nms, &attrs);
    assert_same_objects(
        &clustered,
        &objects[..2]
            .iter()
            .chain(&objects[3..4])
            .copied()
            .collect::<Vec<_>>(),
        0.95,
    );
    assert!(matches!(
        detectnet_v2::encode(&objects, 1, input_hw, &p).unwrap_err(),
        HeadError::ObjectClass {
            object: 2,
            class: 1,
            num_classes: 1
        }
    ));
    let bad = DetectNetParams {
        coverage_fraction: 0.0,
        ..p
    };
    assert!(matches!(
        detectnet_v2::encode(&objects, 2, input_hw, &bad).unwrap_err(),
        HeadError::Param {
            name: "coverage_fraction",
            ..
        }
    ));
}

// ---------------------------------------------------------------------------------------------
// Classifier loss

/// Cross-entropy of one row of logits against a smoothed one-hot target, in f64.
fn reference_cross_entropy(logits: &[f64], target: usize, smoothing: f64) -> f64 {
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let log_sum = logits.iter().map(|l| (l - max).exp()).sum::<f64>().ln() + max;
    let c = logits.len() as f64;
    logits
        .iter()
        .enumerate()
        .map(|(k, l)| {
            let q = smoothing / c + if k == target { 1.0 - smoothing } else { 0.0 };
            -q * (l - log_sum)
        })
        .sum()
}

#[test]
fn cross_entropy_equals_hand_computed_values() {
    let rows = [[2.0f32, 1.0, 0.0, -1.0], [0.5, 0.5, 3.0, 0.0]];
    let targets = [0usize, 2];
    let logits = Tensor::<2>::from_data(rows, &cpu());
    for smoothing in [0.0f32, 0.1] {
        let expected: f64 = rows
            .iter()
            .zip(targets)
            .map(|(r, t)| {
                let r: Vec<f64> = r.iter().map(|&v| v as f64).collect();
                reference_cross_entropy(&r, t, smoothing as f64)
            })
            .sum::<f64>()
            / 2.0;
        let from_logits =
            scalar(&classifier::loss(logits.clone(), &targets, smoothing, false).unwrap());
        assert!(
            (from_logits as f64 - expected).abs() < 1e-5,
            "smoothing {smoothing}: {from_logits} vs {expected}"
        );
        // The same distribution given as probabilities (a model ending in Softmax).
        let probabilities = softmax(logits.clone(), 1);
        assert!(classifier::looks_like_probabilities(&probabilities));
        let from_probabilities =
            scalar(&classifier::loss(probabilities, &targets, smoothing, true).unwrap());
        assert!(
            (from_probabilities - from_logits).abs() < 1e-5,
            "{from_probabilities} vs {from_logits}"
        );
    }
    // The first row by hand: log(e^2 + e + 1 + e^-1) - 2.
    let first = ((2.0f64).exp() + 1.0f64.exp() + 1.0 + (-1.0f64).exp()).ln() - 2.0;
    assert!((reference_cross_entropy(&[2.0, 1.0, 0.0, -1.0], 0, 0.0) - first).abs() < 1e-12);
    assert!(!classifier::looks_like_probabilities(&logits));
}

#[test]
fn cross_entropy_gradient_is_softmax_minus_target() {
    let device = autodiff();
    let rows = [[2.0f32, 1.0, 0.0], [0.0, 0.0, 0.0], [-1.0, 4.0, 1.0]];
    let targets = [0usize, 1, 2];
    let smoothing = 0.1f32;
    let logits = Tensor::<2>::from_data(rows, &device).require_grad();
    let loss = classifier::loss(logits.clone(), &targets, smoothing, false).unwrap();
    let grads = loss.backward();
    let gradient = values(&logits.grad(&grads).expect("logit gradient"));
    for (i, row) in rows.iter().enumerate() {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = row.iter().map(|v| (v - max).exp()).sum();
        for (k, v) in row.iter().enumerate() {
            let p = (v - max).exp() / sum;
            let q = smoothing / 3.0
                + if k == targets[i] {
                    1.0 - smoothing
                } else {
                    0.0
                };
            let expected = (p - q) / 3.0;
            let got = gradient[i * 3 + k];
            assert!(
                (got - expected).abs() < 1e-6,
                "[{i},{k}]: {got} vs {expected}"
            );
            // Raising the target's logit lowers the loss, unless it already wins by far.
            if k == targets[i] && p < 1.0 - smoothing {
                assert!(got < 0.0);
            }
        }
    }
    // At a confident right answer the loss is near zero; a confident wrong one costs more.
    let right = Tensor::<2>::from_data([[12.0f32, 0.0, 0.0]], &cpu());
    let wrong = Tensor::<2>::from_data([[0.0f32, 12.0, 0.0]], &cpu());
    let right = scalar(&classifier::loss(right, &[0], 0.0, false).unwrap());
    let wrong = scalar(&classifier::loss(wrong, &[0], 0.0, false).unwrap());
    assert!(right < 1e-4 && wrong > 11.9, "{right} {wrong}");
}

#[test]
fn probability_detection_agrees_with_core_classifier_decoder() {
    // Core's decoder softmaxes a row unless it is already a distribution; the loss must read
    // the same rows as probabilities.
    let rows: [[f32; 3]; 4] = [
        [0.2, 0.7, 0.1],
        [0.2, 0.7, 0.3],
        [1.5, -0.5, 0.0],
        [0.333, 0.333, 0.334],
    ];
    let attrs = ClassAttrsTable::default();
    for row in rows {
        let output = Tensor::<2>::from_data([row], &cpu());
        let ours = classifier::looks_like_probabilities(&output);
        let ctx = DecodeContext {
            network_width: 1,
            network_height: 1,
            num_classes: 3,
            class_attrs: &attrs,
            classifier_threshold: 0.0,
            segmentation_threshold: 0.5,
        };
        let tensor = nvtl_core::Tensor::new("probabilities", vec![1, 3], row.to_vec());
        let Decoded::Attributes(attributes) =
            decode(Parser::Classifier, &[tensor], 0, &ctx).unwrap()
        else {
            panic!("classifier attributes");
        };
        let best = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let core_kept_values = (attributes[0].probability - best).abs() < 1e-6;
        assert_eq!(ours, core_kept_values, "{row:?}: {attributes:?}");
    }
}

#[test]
fn cross_entropy_rejects_bad_targets() {
    let logits = Tensor::<2>::from_data([[1.0f32, 2.0], [0.0, 1.0]], &cpu());
    assert_eq!(
        classifier::loss(logits.clone(), &[0], 0.0, false).unwrap_err(),
        HeadError::BatchSize {
            outputs: 2,
            targets: 1
        }
    );
    assert_eq!(
        classifier::loss(logits.clone(), &[0, 2], 0.0, false).unwrap_err(),
        HeadError::TargetClass {
            index: 1,
            class: 2,
            num_classes: 2
        }
    );
    assert!(matches!(
        classifier::loss(logits, &[0, 1], 1.0, false).unwrap_err(),
        HeadError::Param {
            name: "label_smoothing",
            ..
        }
    ));
}

// ---------------------------------------------------------------------------------------------
// CenterNet loss

/// One class, a 1x3 grid: a peak, a cell at 0.5 and a background cell.
fn tiny_centernet_targets() -> CenterNetTargets {
    CenterNetTargets {
        num_classes: 1,
        input_hw: (4, 12),
        grid_hw: (1, 3),
        heat: vec![1.0, 0.5, 0.0],
        ltrb: vec![4.0, 0.0, 0.0, 2.0, 0.0, 0.0, 6.0, 0.0, 0.0, 2.0, 0.0, 0.0],
        mask: vec![1.0, 0.0, 0.0],
        skipped: vec![],
        overwritten: vec![],
        focal_beta: 4.0,
    }
}

#[test]
fn focal_and_l1_equal_hand_computed_values() {
    let p = CenterNetParams::default();
    let batch = centernet::batch_targets(&[tiny_centernet_targets()], &cpu()).unwrap();
    assert_eq!((batch.positives, batch.boxes), (1, 1));
    let heat = Tensor::<1>::from_floats([0.8f32, 0.3, 0.1], &cpu()).reshape([1, 1, 1, 3]);
    let ltrb = Tensor::<1>::from_floats(
        [
            5.0f32, 9.0, 9.0, 2.0, 9.0, 9.0, 4.0, 9.0, 9.0, 3.0, 9.0, 9.0,
        ],
        &cpu(),
    )
    .reshape([1, 4, 1, 3]);
    let loss = centernet::loss(heat, ltrb, &batch, &p).unwrap().values();
    // Peak: -(1 - 0.8)^2 ln 0.8; cell at 0.5: -(1 - 0.5)^4 0.3^2 ln 0.7; background:
    // -(1)^4 0.1^2 ln 0.9; divided by 1 peak.
    let focal = -(0.2f64.powi(2) * 0.8f64.ln()
        + 0.5f64.powi(4) * 0.3f64.powi(2) * 0.7f64.ln()
        + 0.1f64.powi(2) * 0.9f64.ln());
    // |5-4| + |2-2| + |4-6| + |3-2| = 4 px over 4 distances, in cells of 4 px.
    let box_l1 = 4.0 / 4.0 / 4.0;
    assert!(
        (loss.focal as f64 - focal).abs() < 1e-6,
        "{} vs {focal}",
        loss.focal
    );
    assert!(
        (loss.box_l1 as f64 - box_l1).abs() < 1e-6,
        "{}",
        loss.box_l1
    );
    let total = focal + 0.1 * box_l1;
    assert!((loss.total as f64 - total).abs() < 1e-6, "{}", loss.total);

    // A beta other than the one the batch was encoded with: the weights are recomputed.
    let beta_2 = CenterNetParams {
        focal_beta: 2.0,
        ..p
    };
    let heat = Tensor::<1>::from_floats([0.8f32, 0.3, 0.1], &cpu()).reshape([1, 1, 1, 3]);
    let ltrb = batch.ltrb.clone();
    let loss = centernet::loss(heat, ltrb, &batch, &beta_2)
        .unwrap()
        .values();
    let focal = -(0.2f64.powi(2) * 0.8f64.ln()
        + 0.5f64.powi(2) * 0.3f64.powi(2) * 0.7f64.ln()
        + 0.1f64.powi(2) * 0.9f64.ln());
    assert!(
        (loss.focal as f64 - focal).abs() < 1e-6,
        "{} vs {focal}",
        loss.focal
    );
    assert_eq!(loss.box_l1, 0.0);
}

#[test]
fn centernet_loss_of_an_image_without_objects() {
    let p = CenterNetParams::default();
    let targets = centernet::encode(&[], 2, (32, 32), &p).unwrap();
    let device = autodiff();
    let batch = centernet::batch_targets(&[targets], &device).unwrap();
    assert_eq!((batch.positives, batch.boxes), (0, 0));
    let heat = Tensor::<4>::zeros([1, 2, 8, 8], &device)
        .add_scalar(0.1)
        .require_grad();
    let ltrb = Tensor::<4>::zeros([1, 4, 8, 8], &device).require_grad();
    let loss = centernet::loss(heat.clone(), ltrb.clone(), &batch, &p).unwrap();
    let parts = loss.values();
    // 128 background cells, each -(0.1^2) ln 0.9, normalised by max(peaks, 1) = 1.
    let expected = -128.0 * 0.01 * 0.9f32.ln();
    assert!((parts.focal - expected).abs() < 1e-4, "{parts:?}");
    assert_eq!(parts.box_l1, 0.0);
    let grads = loss.total.backward();
    let heat_grad = heat.grad(&grads).unwrap();
    assert!(values(&heat_grad).iter().all(|g| *g > 0.0));
    let ltrb_grad = ltrb.grad(&grads).unwrap();
    assert!(values(&ltrb_grad).iter().all(|g| *g == 0.0));
}

#[test]
fn centernet_loss_is_near_zero_at_the_targets_and_gradients_point_to_them() {
    let p = CenterNetParams::default();
    let objects: Vec<Object> = vec![(0, [8.0, 8.0, 40.0, 56.0]), (1, [60.0, 20.0, 90.0, 44.0])];
    let targets = centernet::encode(&objects, 2, (64, 96), &p).unwrap();
    let device = autodiff();
    let batch = centernet::batch_targets(&[targets.clone(), targets], &device).unwrap();
    let at_targets = centernet::loss(batch.heat.clone(), batch.ltrb.clone(), &batch, &p)
        .unwrap()
        .values();
    // Exact ltrb: no L1; the penalty-reduced focal loss keeps a small value on gaussian cells.
    eprintln!("CenterNet loss at the targets: {at_targets:?}");
    assert_eq!(at_targets.box_l1, 0.0);
    assert!(at_targets.focal < 0.05, "{at_targets:?}");
    // Wrong predictions cost more: a flat heat map, shifted peaks, wrong distances.
    let flat = batch.heat.zeros_like().add_scalar(0.5);
    let shifted = batch.heat.clone().roll_dim(3, 3);
    let off = batch.ltrb.clone().add_scalar(6.0);
    for (heat, ltrb) in [
        (flat, batch.ltrb.clone()),
        (shifted, batch.ltrb.clone()),
        (batch.heat.clone(), off),
    ] {
        let worse = centernet::loss(heat, ltrb, &batch, &p).unwrap().values();
        assert!(worse.total > at_targets.total + 0.1, "{worse:?}");
    }

    // Gradients of a flat 0.5 prediction: negative at peaks (raise them), positive on the
    // background (lower it); ltrb gradients only at target cells, with the sign of the error.
    let heat = batch.heat.zeros_like().add_scalar(0.5).require_grad();
    let ltrb = batch.ltrb.clone().add_scalar(3.0).require_grad();
    let loss = centernet::loss(heat.clone(), ltrb.clone(), &batch, &p).unwrap();
    let grads = loss.total.backward();
    let heat_grad = values(&heat.grad(&grads).unwrap());
    let ltrb_grad = values(&ltrb.grad(&grads).unwrap());
    let target_heat = values(&batch.heat);
    assert!(heat_grad.iter().all(|g| g.is_finite()));
    for i in 0..heat_grad.len() {
        if target_heat[i] == 1.0 {
            assert!(heat_grad[i] < 0.0, "peak {i}: {}", heat_grad[i]);
        } else if target_heat[i] == 0.0 {
            assert!(heat_grad[i] > 0.0, "background {i}: {}", heat_grad[i]);
        }
    }
    let (h, w) = batch.grid_hw;
    let mask = values(&batch.mask);
    for (i, g) in ltrb_grad.iter().enumerate() {
        let (n, cell) = (i / (4 * h * w), i % (h * w));
        if mask[n * h * w + cell] == 1.0 {
            assert!(*g > 0.0, "ltrb {i}: {g}");
        } else {
            assert_eq!(*g, 0.0, "ltrb {i}");
        }
    }
}

#[test]
fn centernet_gradients_equal_finite_differences() {
    let p = CenterNetParams::default();
    let device = autodiff();
    let batch =
        centernet::batch_targets(std::slice::from_ref(&tiny_centernet_targets()), &device).unwrap();
    let heat_values = [0.7f32, 0.4, 0.2];
    let ltrb_values = [
        5.0f32, 1.0, 1.0, 1.5, 1.0, 1.0, 4.0, 1.0, 1.0, 3.0, 1.0, 1.0,
    ];
    let outputs = |heat: &[f32], ltrb: &[f32]| {
        (
            Tensor::<1>::from_floats(heat, &device).reshape([1, 1, 1, 3]),
            Tensor::<1>::from_floats(ltrb, &device).reshape([1, 4, 1, 3]),
        )
    };
    let total = |heat: &[f32], ltrb: &[f32]| {
        let (heat, ltrb) = outputs(heat, ltrb);
        scalar(&centernet::loss(heat, ltrb, &batch, &p).unwrap().total)
    };
    let (heat, ltrb) = outputs(&heat_values, &ltrb_values);
    let (heat, ltrb) = (heat.require_grad(), ltrb.require_grad());
    let grads = centernet::loss(heat.clone(), ltrb.clone(), &batch, &p)
        .unwrap()
        .total
        .backward();
    let heat_grad = values(&heat.grad(&grads).unwrap());
    let ltrb_grad = values(&ltrb.grad(&grads).unwrap());
    let eps = 1e-3f32;
    for (i, analytic) in heat_grad.iter().enumerate() {
        let (mut up, mut down) = (heat_values, heat_values);
        up[i] += eps;
        down[i] -= eps;
        let numeric = (total(&up, &ltrb_values) - total(&down, &ltrb_values)) / (2.0 * eps);
        assert!(
            (numeric - analytic).abs() < 1e-2 * numeric.abs().max(1.0),
            "heat {i}: {analytic} vs {numeric}"
        );
    }
    for (i, analytic) in ltrb_grad.iter().enumerate() {
        let (mut up, mut down) = (ltrb_values, ltrb_values);
        up[i] += eps;
        down[i] -= eps;
        let numeric = (total(&heat_values, &up) - total(&heat_values, &down)) / (2.0 * eps);
        assert!(
            (numeric - analytic).abs() < 1e-3,
            "ltrb {i}: {analytic} vs {numeric}"
        );
    }
}

#[test]
fn centernet_loss_rejects_mismatched_outputs() {
    let p = CenterNetParams::default();
    let targets = centernet::encode(&[(0, [0.0, 0.0, 8.0, 8.0])], 2, (32, 32), &p).unwrap();
    let batch = centernet::batch_targets(std::slice::from_ref(&targets), &cpu()).unwrap();
    let heat = Tensor::<4>::zeros([1, 3, 8, 8], &cpu());
    let error = centernet::loss(heat, batch.ltrb.clone(), &batch, &p).unwrap_err();
    assert_eq!(
        error,
        HeadError::OutputShape {
            output: "heat",
            shape: vec![1, 3, 8, 8],
            expected: vec![1, 2, 8, 8]
        }
    );
    let other = centernet::encode(&[], 2, (64, 32), &p).unwrap();
    assert!(matches!(
        centernet::batch_targets(&[targets, other], &cpu()).unwrap_err(),
        HeadError::TargetShape { index: 1, .. }
    ));
    assert_eq!(
        centernet::batch_targets(&[], &cpu()).unwrap_err(),
        HeadError::EmptyBatch
    );
}

// ---------------------------------------------------------------------------------------------
// DetectNet_v2 loss

#[test]
fn detectnet_loss_equals_hand_computed_values_and_vanishes_at_targets() {
    let p = DetectNetParams::default();
    // One class, a 1x2 grid; the first cell covered.
    let targets = DetectNetTargets {
        num_classes: 1,
        input_hw: (16, 32),
        grid_hw: (1, 2),
        coverage: vec![1.0, 0.0],
        bbox: vec![0.5, 0.0, 0.25, 0.0, 0.75, 0.0, 1.0, 0.0],
        skipped: vec![],
        overwritten: vec![],
    };
    let batch = detectnet_v2::batch_targets(&[targets], &cpu()).unwrap();
    assert_eq!(batch.covered, 1);
    let at_targets =
        detectnet_v2::loss(batch.coverage.clone(), batch.bbox.clone(), &batch, &p).unwrap();
    assert_eq!(at_targets.values().total, 0.0);

    let cov = Tensor::<1>::from_floats([0.6f32, 0.2], &cpu()).reshape([1, 1, 1, 2]);
    let bbox = Tensor::<1>::from_floats([0.0f32, 5.0, 0.25, 5.0, 1.0, 5.0, 0.5, 5.0], &cpu())
        .reshape([1, 4, 1, 2]);
    let loss = detectnet_v2::loss(cov, bbox, &batch, &p).unwrap().values();
    // ((0.6 - 1)^2 + 0.2^2) / 2; (0.5 + 0 + 0.25 + 0.5) / 4 (the uncovered cell's 5s ignored).
    let coverage = (0.16 + 0.04) / 2.0;
    let bbox = 1.25 / 4.0;
    assert!((loss.coverage - coverage).abs() < 1e-6, "{loss:?}");
    assert!((loss.bbox - bbox).abs() < 1e-6, "{loss:?}");
    assert!(
        (loss.total - (coverage + 10.0 * bbox)).abs() < 1e-5,
        "{loss:?}"
    );
}

#[test]
fn detectnet_gradients_point_to_the_targets() {
    let p = DetectNetParams::default();
    let objects: Vec<Object> = vec![
        (0, [16.0, 8.0, 120.0, 60.0]),
        (1, [70.0, 30.0, 110.0, 64.0]),
    ];
    let targets = detectnet_v2::encode(&objects, 2, (64, 128), &p).unwrap();
    let device = autodiff();
    let batch = detectnet_v2::batch_targets(&[targets], &device).unwrap();
    let cov = batch.coverage.zeros_like().add_scalar(0.5).require_grad();
    let bbox = batch.bbox.clone().sub_scalar(0.5).require_grad();
    let loss = detectnet_v2::loss(cov.clone(), bbox.clone(), &batch, &p).unwrap();
    let grads = loss.total.backward();
    let cov_grad = values(&cov.grad(&grads).unwrap());
    let bbox_grad = values(&bbox.grad(&grads).unwrap());
    let coverage = values(&batch.coverage);
    let mask = values(&batch.bbox_mask);
    for (i, g) in cov_grad.iter().enumerate() {
        if coverage[i] == 1.0 {
            assert!(*g < 0.0, "covered {i}: {g}");
        } else {
            assert!(*g > 0.0, "background {i}: {g}");
        }
    }
    for (i, g) in bbox_grad.iter().enumerate() {
        if mask[i] == 1.0 {
            assert!(*g < 0.0, "bbox {i}: {g}");
        } else {
            assert_eq!(*g, 0.0, "bbox {i}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tiny training: learnable outputs optimised against encoded targets decode to the boxes.

/// Two output maps as parameters: what a network's last layers would produce.
#[derive(Module, Debug)]
struct LearnedOutputs {
    /// Logits of the heat map / coverage (a sigmoid makes them probabilities, as in the models).
    scores: Param<Tensor<4>>,
    /// ltrb distances / bbox offsets.
    boxes: Param<Tensor<4>>,
}

impl LearnedOutputs {
    fn new(scores: [usize; 4], boxes: [usize; 4], device: &Device) -> Self {
        LearnedOutputs {
            scores: Param::from_tensor(Tensor::zeros(scores, device).sub_scalar(2.0)),
            boxes: Param::from_tensor(Tensor::zeros(boxes, device)),
        }
    }
}

fn train<F>(
    mut outputs: LearnedOutputs,
    steps: usize,
    lr: f64,
    loss: F,
) -> (LearnedOutputs, f32, f32)
where
    F: Fn(Tensor<4>, Tensor<4>) -> Tensor<1>,
{
    let mut optimizer = AdamConfig::new().init();
    let mut first = f32::NAN;
    let mut last = f32::NAN;
    for step in 0..steps {
        let total = loss(sigmoid(outputs.scores.val()), outputs.boxes.val());
        let value = scalar(&total);
        assert!(value.is_finite(), "step {step}: loss {value}");
        if step == 0 {
            first = value;
        }
        last = value;
        let grads = GradientsParams::from_grads(total.backward(), &outputs);
        // Linear decay, so that the sign-like L1 steps settle on the targets.
        let decayed = lr * (1.0 - step as f64 / steps as f64);
        outputs = optimizer.step(decayed, outputs, grads);
    }
    (outputs, first, last)
}

#[test]
fn centernet_outputs_trained_on_targets_decode_to_the_boxes() {
    let p = CenterNetParams::default();
    let input_hw = (96, 128);
    let objects: Vec<Object> = vec![
        (0, [6.0, 10.0, 46.0, 80.0]),
        (2, [60.0, 30.0, 100.0, 62.0]),
        (1, [90.0, 60.0, 124.0, 92.0]),
    ];
    let targets = centernet::encode(&objects, 3, input_hw, &p).unwrap();
    let (gh, gw) = targets.grid_hw;
    let device = autodiff();
    let batch = centernet::batch_targets(&[targets], &device).unwrap();
    let outputs = LearnedOutputs::new([1, 3, gh, gw], [1, 4, gh, gw], &device);
    let (outputs, first, last) = train(outputs, 400, 0.2, |heat, ltrb| {
        centernet::loss(heat, ltrb, &batch, &p).unwrap().total
    });
    eprintln!("CenterNet tiny training: loss {first} -> {last}");
    assert!(last < first / 20.0, "loss {first} -> {last}");
    let heat = sigmoid(outputs.scores.val());
    let decoded = decode_with(
        Parser::CenterNet,
        &[
            core_tensor("heatmap", &heat),
            core_tensor("ltrb", &outputs.boxes.val()),
        ],
        input_hw,
        3,
        &ClassAttrsTable::default(),
    );
    assert_same_objects(&decoded, &objects, 0.95);
}

#[test]
fn detectnet_outputs_trained_on_targets_decode_to_the_boxes() {
    let p = DetectNetParams::default();
    let input_hw = (128, 192);
    let objects: Vec<Object> = vec![
        (0, [8.0, 10.0, 70.0, 120.0]),
        (1, [100.0, 20.0, 180.0, 70.0]),
        (1, [120.0, 80.0, 160.0, 124.0]),
    ];
    let targets = detectnet_v2::encode(&objects, 2, input_hw, &p).unwrap();
    let (gh, gw) = targets.grid_hw;
    let device = autodiff();
    let batch = detectnet_v2::batch_targets(&[targets], &device).unwrap();
    let outputs = LearnedOutputs::new([1, 2, gh, gw], [1, 8, gh, gw], &device);
    let (outputs, first, last) = train(outputs, 400, 0.1, |cov, bbox| {
        detectnet_v2::loss(cov, bbox, &batch, &p).unwrap().total
    });
    eprintln!("DetectNet_v2 tiny training: loss {first} -> {last}");
    assert!(last < first / 20.0, "loss {first} -> {last}");
    let cov = sigmoid(outputs.scores.val());
    let mut attrs = ClassAttrsTable::default();
    attrs.all.nms_iou_threshold = 0.5;
    let decoded = decode_with(
        Parser::DetectNetV2,
        &[
            core_tensor("output_cov", &cov),
            core_tensor("output_bbox", &outputs.boxes.val()),
        ],
        input_hw,
        2,
        &attrs,
    );
    let clustered = cluster(decoded, ClusterMode::Nms, &attrs);
    assert_same_objects(&clustered, &objects, 0.95);
}
