//! Evaluation metrics against their references: COCO mAP against pycocotools (in a venv this
//! test makes once), VOC AP against hand-computed values, classifier metrics, and the plots.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use nvtl_trainer::eval::detection::{
    evaluate_coco, evaluate_voc, write_coco_ground_truth, write_coco_results, CocoCategory,
    DetectionReport, GroundTruth, Prediction,
};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
}

fn assets_dir() -> PathBuf {
    std::env::var_os("NVTL_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".cache/nvtl/assets"))
}

fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nvtl-eval-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A Python with pycocotools: `~/.cache/nvtl/venv-eval`, created (python3 -m venv, pip from
/// PyPI) the first time.
fn pycocotools_python() -> PathBuf {
    static VENV: Mutex<()> = Mutex::new(());
    let _guard = VENV.lock().unwrap_or_else(|p| p.into_inner());
    let venv = home().join(".cache/nvtl/venv-eval");
    let python = venv.join("bin/python");
    let ready = |python: &Path| {
        Command::new(python)
            .args(["-c", "import pycocotools.cocoeval, numpy"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ready(&python) {
        let status = Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&venv)
            .status()
            .expect("python3 runs");
        assert!(status.success(), "python3 -m venv {}", venv.display());
        let status = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "pycocotools", "numpy"])
            .status()
            .expect("pip runs");
        assert!(status.success(), "pip install pycocotools numpy");
        assert!(ready(&python), "pycocotools imports after installing");
    }
    python
}

/// Runs COCOeval (bbox, maxDets [1, 10, max_det]) and prints the AP numbers as json.
const COCOEVAL: &str = r#"
import contextlib, io, json, sys
import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
gt_path, res_path, max_det = sys.argv[1], sys.argv[2], int(sys.argv[3])
with contextlib.redirect_stdout(io.StringIO()):
    gt = COCO(gt_path)
    dt = gt.loadRes(res_path)
    e = COCOeval(gt, dt, 'bbox')
    e.params.maxDets = [1, 10, max_det]
    e.evaluate(); e.accumulate(); e.summarize()
p = e.eval['precision'][:, :, :, 0, 2]
def mean(s):
    s = s[s > -1]
    return float(np.mean(s)) if s.size else -1.0
print(json.dumps({
    'map50_95': mean(p), 'map50': mean(p[0]), 'map75': mean(p[5]),
    'ap': [mean(p[:, :, k]) for k in range(p.shape[2])],
    'ap50': [mean(p[0, :, k]) for k in range(p.shape[2])],
    'stats': e.stats.tolist(),
}))
"#;

#[derive(serde::Deserialize, Debug)]
struct Reference {
    map50_95: f64,
    map50: f64,
    map75: f64,
    ap: Vec<f64>,
    ap50: Vec<f64>,
    stats: Vec<f64>,
}

/// Evaluates with us and with pycocotools and asserts every AP agrees to 1e-4.
fn compare_with_pycocotools(
    test: &str,
    gt: &[GroundTruth],
    pred: &[Prediction],
    classes: usize,
    max_det: usize,
) -> DetectionReport {
    let dir = temp_dir(test);
    let names: Vec<String> = (0..classes).map(|c| format!("class{c}")).collect();
    let categories = CocoCategory::contiguous(&names);
    let images: Vec<u64> = pred.iter().map(|p| p.image_id).collect();
    let gt_path = dir.join("gt.json");
    let res_path = dir.join("results.json");
    write_coco_ground_truth(&gt_path, gt, &images, &categories).unwrap();
    write_coco_results(&res_path, pred, &categories).unwrap();
    let out = Command::new(pycocotools_python())
        .arg("-c")
        .arg(COCOEVAL)
        .arg(&gt_path)
        .arg(&res_path)
        .arg(max_det.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "COCOeval: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reference: Reference = serde_json::from_slice(&out.stdout).unwrap();
    let ours = evaluate_coco(gt, pred, classes, max_det).unwrap();
    let max_diff = std::cell::Cell::new(0.0f64);
    let close = |a: f64, b: f64, what: &str| {
        max_diff.set(max_diff.get().max((a - b).abs()));
        assert!(
            (a - b).abs() <= 1e-4,
            "{test}: {what}: ours {a}, pycocotools {b}"
        )
    };
    close(ours.map50_95, reference.map50_95, "mAP 0.5:0.95");
    close(ours.map50, reference.map50, "mAP@0.5");
    close(ours.map75, reference.map75, "mAP@0.75");
    if max_det == 100 {
        close(ours.map50_95, reference.stats[0], "stats[0]");
        close(ours.map50, reference.stats[1], "stats[1]");
        close(ours.map75, reference.stats[2], "stats[2]");
    }
    assert_eq!(ours.per_class.len(), classes);
    for (c, class) in ours.per_class.iter().enumerate() {
        close(class.ap, reference.ap[c], &format!("class {c} AP"));
        close(class.ap50, reference.ap50[c], &format!("class {c} AP50"));
    }
    eprintln!(
        "{test}: mAP {:.6} / {:.6}, AP50 {:.6} / {:.6}, AP75 {:.6} / {:.6} (ours / pycocotools), \
         largest difference {:e}",
        ours.map50_95,
        reference.map50_95,
        ours.map50,
        reference.map50,
        ours.map75,
        reference.map75,
        max_diff.get()
    );
    ours
}

fn random_box(rng: &mut StdRng, max: f32) -> [f32; 4] {
    let x = rng.random_range(0.0..max * 0.8);
    let y = rng.random_range(0.0..max * 0.8);
    let w = rng.random_range(4.0..max * 0.3);
    let h = rng.random_range(4.0..max * 0.3);
    [x, y, x + w, y + h]
}

fn jitter(rng: &mut StdRng, b: [f32; 4], amount: f32) -> [f32; 4] {
    let (w, h) = (b[2] - b[0], b[3] - b[1]);
    let mut j = |v: f32, size: f32| v + rng.random_range(-amount..=amount) * size;
    let (x1, y1, x2, y2) = (j(b[0], w), j(b[1], h), j(b[2], w), j(b[3], h));
    [x1.min(x2), y1.min(y2), x1.max(x2), y1.max(y2)]
}

/// A seeded random data set: `images` images with up to `objects` ground-truth objects each,
/// predictions near most of them (more jitter = lower IoU), duplicates, and false positives.
/// Scores are rounded to 0.05 so ties are common (tie order matters in COCOeval).
fn random_set(
    seed: u64,
    images: u64,
    classes: usize,
    objects: usize,
    crowd_rate: f64,
) -> (Vec<GroundTruth>, Vec<Prediction>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut gt, mut pred) = (Vec::new(), Vec::new());
    for image_id in 1..=images {
        for _ in 0..rng.random_range(0..=objects) {
            let g = GroundTruth {
                image_id,
                class: rng.random_range(0..classes),
                bbox: random_box(&mut rng, 640.0),
                crowd: rng.random_bool(crowd_rate),
            };
            let copies = rng.random_range(0..=3);
            for _ in 0..copies {
                pred.push(Prediction {
                    image_id,
                    class: if rng.random_bool(0.9) {
                        g.class
                    } else {
                        rng.random_range(0..classes)
                    },
                    bbox: jitter(&mut rng, g.bbox, 0.25),
                    score: (rng.random_range(0.0f32..1.0) * 20.0).round() / 20.0,
                });
            }
            gt.push(g);
        }
        for _ in 0..rng.random_range(0..4) {
            pred.push(Prediction {
                image_id,
                class: rng.random_range(0..classes),
                bbox: random_box(&mut rng, 640.0),
                score: rng.random_range(0.0f32..0.6),
            });
        }
    }
    (gt, pred)
}

#[test]
fn coco_random_boxes_equal_pycocotools() {
    for seed in [1, 2, 3] {
        let (gt, pred) = random_set(seed, 40, 6, 8, 0.0);
        let report = compare_with_pycocotools(&format!("random{seed}"), &gt, &pred, 6, 100);
        assert!(report.map50 > 0.2 && report.map50_95 < report.map50);
    }
}

#[test]
fn coco_crowd_regions_equal_pycocotools() {
    let (mut gt, mut pred) = random_set(11, 30, 4, 6, 0.2);
    // Large crowd regions holding several detections each (crowd IoU = overlap / det area).
    for image_id in 1..=10u64 {
        gt.push(GroundTruth {
            image_id,
            class: 1,
            bbox: [100.0, 100.0, 500.0, 400.0],
            crowd: true,
        });
        for k in 0..5 {
            let x = 110.0 + 70.0 * k as f32;
            pred.push(Prediction {
                image_id,
                class: 1,
                bbox: [x, 150.0, x + 60.0, 300.0],
                score: 0.3 + 0.1 * k as f32,
            });
        }
    }
    let report = compare_with_pycocotools("crowd", &gt, &pred, 4, 100);
    let crowd_count = gt.iter().filter(|g| g.crowd && g.class == 1).count();
    let all_count = gt.iter().filter(|g| g.class == 1).count();
    assert_eq!(report.per_class[1].gt_count, all_count - crowd_count);
}

#[test]
fn coco_classes_without_ground_truth_are_left_out() {
    let (gt, mut pred) = random_set(21, 25, 4, 6, 0.0);
    // Classes 4..7 exist, class 5 and 6 have predictions but no ground truth.
    for image_id in 1..=25 {
        pred.push(Prediction {
            image_id,
            class: 5 + (image_id % 2) as usize,
            bbox: [10.0, 10.0, 80.0, 90.0],
            score: 0.9,
        });
    }
    let report = compare_with_pycocotools("no-gt-classes", &gt, &pred, 8, 100);
    for c in 4..8 {
        assert_eq!(report.per_class[c].gt_count, 0);
        assert_eq!(report.per_class[c].ap, -1.0);
        assert_eq!(report.per_class[c].voc_ap, -1.0);
    }
    let defined: Vec<f64> = report.per_class[..4].iter().map(|c| c.ap).collect();
    let mean = defined.iter().sum::<f64>() / 4.0;
    assert!((report.map50_95 - mean).abs() < 1e-12);
}

#[test]
fn coco_more_than_max_detections_per_image() {
    let (gt, mut pred) = random_set(31, 12, 3, 10, 0.0);
    let mut rng = StdRng::seed_from_u64(32);
    for image_id in 1..=12 {
        for _ in 0..150 {
            pred.push(Prediction {
                image_id,
                class: rng.random_range(0..3),
                bbox: random_box(&mut rng, 640.0),
                score: rng.random_range(0.0f32..1.0),
            });
        }
    }
    let at100 = compare_with_pycocotools("maxdet100", &gt, &pred, 3, 100);
    let at20 = compare_with_pycocotools("maxdet20", &gt, &pred, 3, 20);
    assert_ne!(at100.map50_95, at20.map50_95);
}

/// The CenterNet zoo bundle's detections on three photos, against ground truth made from the
/// same detections: jittered, some dropped, one object added that the model cannot know.
#[test]
fn coco_real_centernet_predictions_equal_pycocotools() {
    use nvtl_core::backend::BackendKind;
    use nvtl_core::config::InferConfig;
    use nvtl_core::engine::{Engine, InferResult};
    use nvtl_core::preprocess::{FrameView, PixelFormat, Rect};
    use nvtl_core::zoo::{self, Manifest};

    let manifest = Manifest::builtin().unwrap();
    let bundle = zoo::pull(manifest.get("centernet_mobilenetv3_coco").unwrap(), &|_| {}).unwrap();
    let mut config = InferConfig::from_file(&bundle.config).unwrap().config;
    // Keep low-confidence detections too, as an evaluation does.
    for attrs in config.class_attrs.per_class.values_mut() {
        attrs.pre_cluster_threshold = 0.05;
    }
    config.class_attrs.all.pre_cluster_threshold = 0.05;
    let (mut engine, _) = Engine::load(config, BackendKind::Cpu, 0).unwrap();
    let mut rng = StdRng::seed_from_u64(41);
    let (mut gt, mut pred) = (Vec::new(), Vec::new());
    for (image_id, name) in [(1u64, "dog.jpg"), (2, "person.jpg"), (3, "horses.jpg")] {
        let image = image::open(assets_dir().join(name)).unwrap().to_rgb8();
        let (w, h) = (image.width() as usize, image.height() as usize);
        let frame = FrameView {
            format: PixelFormat::Rgb,
            width: w,
            height: h,
            planes: vec![image.as_raw()],
            strides: vec![w * 3],
        };
        let region = Rect {
            x: 0,
            y: 0,
            width: w,
            height: h,
        };
        let results = engine.infer_regions(&frame, &[region]).unwrap();
        let InferResult::Objects(objects) = &results[0] else {
            panic!("{name}: CenterNet gives objects");
        };
        assert!(objects.len() >= 2, "{name}: {objects:?}");
        let mut confident = 0;
        for o in objects {
            let b = [
                o.bbox.left,
                o.bbox.top,
                o.bbox.left + o.bbox.width,
                o.bbox.top + o.bbox.height,
            ];
            pred.push(Prediction {
                image_id,
                class: o.class_id as usize,
                bbox: b,
                score: o.confidence,
            });
            if o.confidence >= 0.3 {
                confident += 1;
                // Every third confident object is left out of the ground truth (a false
                // positive of the model); the rest move by up to 8 % of their size.
                if confident % 3 != 2 {
                    gt.push(GroundTruth {
                        image_id,
                        class: o.class_id as usize,
                        bbox: jitter(&mut rng, b, 0.08),
                        crowd: false,
                    });
                }
            }
        }
        if image_id == 1 {
            // An object the model cannot find: a false negative.
            gt.push(GroundTruth {
                image_id,
                class: 0,
                bbox: [1.0, 1.0, 40.0, 90.0],
                crowd: false,
            });
        }
    }
    eprintln!(
        "CenterNet: {} predictions, {} ground truth",
        pred.len(),
        gt.len()
    );
    let report = compare_with_pycocotools("centernet", &gt, &pred, 80, 100);
    assert!(report.map50 > 0.5, "{report:?}");
    let names: Vec<String> = std::fs::read_to_string(assets_dir().join("coco.names"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let table = report.table(&names);
    eprintln!("{table}");
    assert!(
        table.contains("truck") && table.contains("horse"),
        "{table}"
    );
    assert!(
        !table.contains("toaster"),
        "classes without objects are left out"
    );
}

#[test]
fn voc_all_point_ap_by_hand() {
    let g = |image_id, bbox, crowd| GroundTruth {
        image_id,
        class: 0,
        bbox,
        crowd,
    };
    let p = |image_id, bbox, score| Prediction {
        image_id,
        class: 0,
        bbox,
        score,
    };
    let a = [0.0, 0.0, 10.0, 10.0];
    let b = [20.0, 20.0, 30.0, 30.0];
    let gt = vec![
        g(1, a, false),
        g(2, b, false),
        g(2, [50.0, 50.0, 60.0, 60.0], true),
    ];
    let pred = vec![
        p(1, a, 0.9),                         // TP
        p(1, [0.0, 0.0, 10.0, 9.0], 0.8),     // duplicate of a: FP
        p(2, [51.0, 50.0, 60.0, 60.0], 0.75), // on the crowd region: ignored
        p(2, [21.0, 20.0, 30.0, 30.0], 0.7),  // IoU 0.9: TP
    ];
    // recall 0.5, 0.5, 1.0; precision 1, 0.5, 0.667 -> envelope 1, 0.667, 0.667.
    let report = evaluate_voc(&gt, &pred, 1, 0.5).unwrap();
    let want = 0.5 * 1.0 + 0.5 * (2.0 / 3.0);
    assert!((report.voc_map - want).abs() < 1e-12, "{report:?}");
    assert_eq!(report.per_class[0].gt_count, 2);
    assert_eq!(report.per_class[0].recall, vec![0.5, 0.5, 1.0]);
    // At IoU 0.95 the shifted box (IoU 0.9) misses: recall stops at 0.5.
    let strict = evaluate_voc(&gt, &pred, 1, 0.95).unwrap();
    assert!((strict.voc_map - 0.5).abs() < 1e-12);
    // map50_95 averages the ten COCO thresholds: 0.8333 at 0.5..0.9 (9 of them), 0.5 at 0.95.
    assert!((report.map50_95 - (9.0 * want + 0.5) / 10.0).abs() < 1e-12);
    assert!((report.map50 - want).abs() < 1e-12 && (report.map75 - want).abs() < 1e-12);
}

#[test]
fn bad_inputs_are_typed_errors() {
    let g = GroundTruth {
        image_id: 1,
        class: 0,
        bbox: [0.0, 0.0, 10.0, 10.0],
        crowd: false,
    };
    let p = Prediction {
        image_id: 1,
        class: 0,
        bbox: [0.0, 0.0, 10.0, 10.0],
        score: 0.5,
    };
    let err =
        evaluate_coco(std::slice::from_ref(&g), std::slice::from_ref(&p), 0, 100).unwrap_err();
    assert!(err.to_string().contains("ground truth 0: class 0"), "{err}");
    let flipped = Prediction {
        bbox: [5.0, 0.0, 1.0, 10.0],
        ..p.clone()
    };
    let err = evaluate_coco(std::slice::from_ref(&g), &[p.clone(), flipped], 1, 100).unwrap_err();
    assert!(err.to_string().starts_with("prediction 1: box"), "{err}");
    let nan = Prediction {
        score: f32::NAN,
        ..p.clone()
    };
    let err = evaluate_voc(std::slice::from_ref(&g), &[nan], 1, 0.5).unwrap_err();
    assert!(err.to_string().contains("score NaN"), "{err}");
    assert!(evaluate_voc(std::slice::from_ref(&g), std::slice::from_ref(&p), 1, 1.5).is_err());
    // Nothing at all: every mean is undefined (-1), nothing panics.
    let empty = evaluate_coco(&[], &[], 3, 100).unwrap();
    assert_eq!(
        (empty.map50_95, empty.map50, empty.voc_map),
        (-1.0, -1.0, -1.0)
    );
    // A perfect detector scores 1 (COCO's precision tp / (tp + fp + eps) is 1 - 2e-16).
    let perfect = evaluate_coco(&[g], &[p], 1, 100).unwrap();
    for ap in [
        perfect.map50_95,
        perfect.map50,
        perfect.map75,
        perfect.voc_map,
    ] {
        assert!((ap - 1.0).abs() < 1e-12, "{perfect:?}");
    }
}

#[test]
fn classification_metrics_on_known_scores() {
    use nvtl_trainer::eval::classification::{evaluate, from_predictions};
    // 3 classes; rows are scores. Sample 3's target is second best, sample 4's is last.
    let targets = [0, 1, 2, 2, 1, 0];
    let scores = [
        0.9, 0.05, 0.05, //
        0.1, 0.8, 0.1, //
        0.2, 0.2, 0.6, //
        0.1, 0.6, 0.3, //
        0.5, 0.4, 0.1, //
        0.7, 0.2, 0.1, //
    ];
    let report = evaluate(&targets, &scores, 3).unwrap();
    assert_eq!(report.samples, 6);
    assert!((report.accuracy - 4.0 / 6.0).abs() < 1e-12);
    assert_eq!(report.top5, 1.0, "3 classes: top-5 = top-3 covers all");
    assert_eq!(
        report.confusion,
        vec![vec![2, 0, 0], vec![1, 1, 0], vec![0, 1, 1]]
    );
    let c1 = &report.per_class[1];
    assert_eq!((c1.precision, c1.recall, c1.support), (0.5, 0.5, 2));
    let c0 = &report.per_class[0];
    assert!((c0.precision - 2.0 / 3.0).abs() < 1e-12 && c0.recall == 1.0);
    let table = report.table(&["zero".into(), "one".into()]);
    assert!(
        table.contains("zero") && table.contains("class 2"),
        "{table}"
    );
    assert!(table.contains("accuracy 0.6667"), "{table}");
    // Top-5 on more classes: the target ranked 6th misses, ties go to the lower index.
    let mut row = vec![0.0f32; 8];
    for (i, v) in row.iter_mut().enumerate() {
        *v = 1.0 - i as f32 * 0.1;
    }
    let r = evaluate(&[4, 5], &[row.clone(), row].concat(), 8).unwrap();
    assert_eq!((r.accuracy, r.top5), (0.0, 0.5));
    let tie = evaluate(&[1], &[0.5, 0.5], 2).unwrap();
    assert_eq!(tie.accuracy, 0.0, "argmax takes the first of equal scores");
    // Bad input.
    assert!(evaluate(&[0], &[0.1, 0.2], 3).is_err());
    assert!(evaluate(&[3], &[0.1, 0.2, 0.3], 3).is_err());
    let err = evaluate(&[0, 1], &[0.1, 0.2, f32::NAN, 0.3], 2).unwrap_err();
    assert!(err.to_string().starts_with("sample 1:"), "{err}");
    assert!(from_predictions(&[0, 1], &[0], 2).is_err());
}

fn read_png(path: &Path) -> image::RgbImage {
    image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb8()
}

/// Pixels of exactly `color` in rows `y0..`, as (x, y).
fn pixels_of(img: &image::RgbImage, color: [u8; 4], y0: u32) -> Vec<(u32, u32)> {
    img.enumerate_pixels()
        .filter(|(_, y, p)| *y >= y0 && p.0 == [color[0], color[1], color[2]])
        .map(|(x, y, _)| (x, y))
        .collect()
}

/// Mean y of the `pixels` in the leftmost and in the rightmost `fraction` of their x span.
fn ends_mean_y(pixels: &[(u32, u32)], fraction: f64) -> (f64, f64) {
    let min = pixels.iter().map(|p| p.0).min().unwrap() as f64;
    let max = pixels.iter().map(|p| p.0).max().unwrap() as f64;
    let cut = (max - min) * fraction;
    let mean = |keep: &dyn Fn(f64) -> bool| {
        let ys: Vec<f64> = pixels
            .iter()
            .filter(|p| keep(p.0 as f64))
            .map(|p| p.1 as f64)
            .collect();
        ys.iter().sum::<f64>() / ys.len() as f64
    };
    (mean(&|x| x <= min + cut), mean(&|x| x >= max - cut))
}

fn dark_pixels(img: &image::RgbImage, x0: u32, y0: u32, x1: u32, y1: u32) -> usize {
    img.enumerate_pixels()
        .filter(|(x, y, p)| {
            (x0..x1).contains(x) && (y0..y1).contains(y) && p.0.iter().all(|&c| c < 60)
        })
        .count()
}

#[test]
fn training_curve_plot_shows_falling_loss_and_rising_metric() {
    use nvtl_trainer::eval::plot::{
        training_curves, EpochRecord, METRIC_COLOR, PLOT_HEIGHT, PLOT_TOP, PLOT_WIDTH, TRAIN_COLOR,
        VAL_COLOR,
    };
    let epochs: Vec<EpochRecord> = (1..=20)
        .map(|e| EpochRecord {
            epoch: e,
            train_loss: 2.0 / e as f64,
            val_loss: Some(2.2 / e as f64 + 0.05),
            metric: Some(1.0 - 0.8 / e as f64),
            metric_name: "accuracy".into(),
        })
        .collect();
    let path = temp_dir("curves").join("training.png");
    training_curves(&path, &epochs).unwrap();
    let img = read_png(&path);
    assert_eq!((img.width(), img.height()), (PLOT_WIDTH, PLOT_HEIGHT));
    for (color, falls) in [
        (TRAIN_COLOR, true),
        (VAL_COLOR, true),
        (METRIC_COLOR, false),
    ] {
        let px = pixels_of(&img, color, PLOT_TOP);
        assert!(px.len() > 200, "{color:?}: {} pixels", px.len());
        let (left, right) = ends_mean_y(&px, 0.1);
        // Image rows grow downwards: a falling curve ends lower on screen (larger y).
        assert_eq!(right > left + 100.0, falls, "{color:?}: {left} -> {right}");
        // Legend sample above the panels.
        assert!(!pixels_of(&img, color, 0).iter().all(|p| p.1 >= PLOT_TOP));
    }
    // Title, legend and tick numbers are text: dark pixels in those places.
    assert!(dark_pixels(&img, 300, 0, 700, 36) > 100, "title");
    assert!(
        dark_pixels(&img, 0, PLOT_TOP, 95, PLOT_HEIGHT) > 200,
        "y tick numbers"
    );
    assert!(
        dark_pixels(&img, 0, PLOT_HEIGHT - 60, PLOT_WIDTH, PLOT_HEIGHT) > 300,
        "x ticks"
    );
    // No losses at all is an error, and no file appears.
    let empty = temp_dir("curves").join("empty.png");
    assert!(training_curves(&empty, &[]).is_err());
    assert!(!empty.exists());
}

#[test]
fn pr_curve_plot_has_one_curve_per_class() {
    use nvtl_core::draw::class_color;
    use nvtl_trainer::eval::plot::{pr_curves, PLOT_HEIGHT, PLOT_TOP, PLOT_WIDTH};
    let (gt, pred) = random_set(51, 30, 4, 6, 0.0);
    let mut report = evaluate_coco(&gt, &pred, 5, 100).unwrap();
    // Class 4 has no ground truth: no curve. Make class 0 perfect to know its shape.
    report.per_class[0].precision = vec![1.0; 4];
    report.per_class[0].recall = vec![0.25, 0.5, 0.75, 1.0];
    report.per_class[0].ap50 = 1.0;
    let names: Vec<String> = ["person", "car", "dog", "cat", "unused"]
        .map(String::from)
        .to_vec();
    let path = temp_dir("pr").join("pr.png");
    pr_curves(&path, &report.per_class, &names).unwrap();
    let img = read_png(&path);
    assert_eq!((img.width(), img.height()), (PLOT_WIDTH, PLOT_HEIGHT));
    for class in 0..4u32 {
        let in_plot: Vec<(u32, u32)> = pixels_of(&img, class_color(class), PLOT_TOP)
            .into_iter()
            .filter(|p| p.0 < 660)
            .collect();
        assert!(in_plot.len() > 30, "class {class}: {}", in_plot.len());
    }
    assert!(pixels_of(&img, class_color(4), 0).is_empty());
    // The perfect class is a flat line at precision 1 across the whole recall axis.
    let perfect: Vec<(u32, u32)> = pixels_of(&img, class_color(0), PLOT_TOP)
        .into_iter()
        .filter(|p| p.0 < 660)
        .collect();
    let (left, right) = ends_mean_y(&perfect, 0.1);
    assert!((left - right).abs() < 3.0, "{left} vs {right}");
    let xs: Vec<u32> = perfect.iter().map(|p| p.0).collect();
    assert!(xs.iter().max().unwrap() - xs.iter().min().unwrap() > 500);
    // Legend text on the right.
    assert!(dark_pixels(&img, 700, PLOT_TOP, PLOT_WIDTH, PLOT_HEIGHT) > 300);
    // 80 classes: the legend ends with "+N more" instead of running off the picture.
    let mut many = Vec::new();
    for k in 0..80 {
        let mut c = report.per_class[k % 4].clone();
        c.class = k;
        many.push(c);
    }
    let names: Vec<String> = (0..80).map(|k| format!("class number {k}")).collect();
    let path = temp_dir("pr").join("pr80.png");
    pr_curves(&path, &many, &names).unwrap();
    assert_eq!(read_png(&path).dimensions(), (PLOT_WIDTH, PLOT_HEIGHT));
}

#[test]
fn confusion_matrix_plot_is_a_heat_map_with_counts() {
    use nvtl_trainer::eval::plot::{confusion_matrix, confusion_matrix_size};
    let matrix = vec![vec![50, 2, 0], vec![5, 40, 5], vec![0, 0, 10]];
    let names: Vec<String> = ["cat", "dog", "bird"].map(String::from).to_vec();
    let path = temp_dir("confusion").join("confusion.png");
    confusion_matrix(&path, &matrix, &names).unwrap();
    let img = read_png(&path);
    let (w, h) = confusion_matrix_size(3);
    assert_eq!((img.width(), img.height()), (w, h));
    // Diagonal cells are dark blue, empty cells white: blue-dominant dark pixels exist, and
    // so do plenty of pure white ones.
    let blue = img.pixels().filter(|p| p.0 == [8, 48, 107]).count();
    assert!(blue > 1000, "{blue}");
    assert!(dark_pixels(&img, 0, 0, 150, h) > 100, "row names");
    assert!(confusion_matrix(&path, &[vec![1, 2]], &names).is_err());
    assert!(confusion_matrix(&path, &[], &names).is_err());
    assert!(confusion_matrix(&path, &vec![vec![0; 500]; 500], &names).is_err());
    let size80 = confusion_matrix_size(80);
    assert!(size80.0 > w && size80.0 < 3000);
    // Digits-sized: 10 classes, 500 samples each, three-digit counts.
    let digits: Vec<Vec<usize>> = (0..10)
        .map(|t| {
            (0..10)
                .map(|p| {
                    if p == t {
                        480
                    } else {
                        usize::from(p == (t + 1) % 10) * 20
                    }
                })
                .collect()
        })
        .collect();
    let names: Vec<String> = (0..10).map(|d| format!("digit {d}")).collect();
    let path = temp_dir("confusion").join("digits.png");
    confusion_matrix(&path, &digits, &names).unwrap();
    let img = read_png(&path);
    assert_eq!((img.width(), img.height()), confusion_matrix_size(10));
}

#[test]
fn scatter_plot_places_labelled_points() {
    use nvtl_core::draw::class_color;
    use nvtl_trainer::eval::plot::{scatter, PLOT_HEIGHT, PLOT_WIDTH};
    let points = vec![
        ("centernet 512".to_string(), 120.0, 0.42),
        ("centernet 320".to_string(), 50.0, 0.35),
        ("tiny".to_string(), 10.0, 0.2),
    ];
    let path = temp_dir("scatter").join("scatter.png");
    scatter(&path, &points, "latency ms", "mAP", "Accuracy vs latency").unwrap();
    let img = read_png(&path);
    assert_eq!((img.width(), img.height()), (PLOT_WIDTH, PLOT_HEIGHT));
    let centre = |i: u32| {
        let px = pixels_of(&img, class_color(i), 0);
        assert!(!px.is_empty(), "point {i}");
        let n = px.len() as f64;
        (
            px.iter().map(|p| p.0 as f64).sum::<f64>() / n,
            px.iter().map(|p| p.1 as f64).sum::<f64>() / n,
        )
    };
    let (a, b, c) = (centre(0), centre(1), centre(2));
    // Larger x is further right, larger y higher up.
    assert!(a.0 > b.0 && b.0 > c.0, "{a:?} {b:?} {c:?}");
    assert!(a.1 < b.1 && b.1 < c.1, "{a:?} {b:?} {c:?}");
    assert!(scatter(&path, &[("x".into(), f64::NAN, 1.0)], "a", "b", "c").is_err());
}
