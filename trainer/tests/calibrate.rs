//! INT8 calibration on MobileNetV2 and real photos: our ranges against onnxruntime's own
//! calibrators (MinMax and Percentile, in the test's Python venv) on the same inputs, the
//! TensorRT table parsed back, and the QDQ model against FP32 in tract and onnxruntime.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use nvtl_core::model::read_onnx;
use nvtl_trainer::quantize::{qdq, table, Collector, Method};
use prost::Message;

const PHOTOS: [&str; 6] = [
    "dog.jpg",
    "person.jpg",
    "horses.jpg",
    "chelsea.png",
    "coffee.png",
    "astronaut.png",
];

const ORT_CALIBRATE: &str = r#"
import json, sys, numpy as np
from onnxruntime.quantization.calibrate import CalibrationMethod, create_calibrator
model, out, shape = sys.argv[1], sys.argv[2], [int(d) for d in sys.argv[3].split(",")]
files = sys.argv[4:]
class Reader:
    def __init__(self, name):
        self.items = iter([{name: np.fromfile(f, dtype=np.float32).reshape(shape)} for f in files])
    def get_next(self):
        return next(self.items, None)
import onnx
name = onnx.load(model).graph.input[0].name
result = {}
for method, extra in [("minmax", {}), ("percentile", {"symmetric": True, "num_bins": 2048, "percentile": 99.99})]:
    calibrator = create_calibrator(
        model, [], augmented_model_path=f"{out}.{method}.onnx",
        calibrate_method=CalibrationMethod.MinMax if method == "minmax" else CalibrationMethod.Percentile,
        extra_options=extra)
    calibrator.collect_data(Reader(name))
    data = calibrator.compute_data()
    scalar = lambda x: float(np.asarray(x).reshape(-1)[0])
    result[method] = {k: [scalar(v.range_value[0]), scalar(v.range_value[1])] for k, v in data.data.items()}
json.dump(result, open(out, "w"))
"#;

const ORT_RUN: &str = r#"
import sys, numpy as np, onnxruntime as ort
shape = [int(d) for d in sys.argv[2].split(",")]
s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
for f in sys.argv[3:]:
    y = s.run(None, {s.get_inputs()[0].name: np.fromfile(f, dtype=np.float32).reshape(shape)})[0]
    print(int(np.argmax(y)))
"#;

fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new(common::ort_python())
        .args(["-c", script])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

struct Setup {
    dir: std::path::PathBuf,
    onnx: std::path::PathBuf,
    proto: tract_onnx::pb::ModelProto,
    inputs: Vec<Vec<f32>>,
    files: Vec<String>,
    collector: Collector,
}

fn setup(test: &str) -> Setup {
    let bundle = common::bundle("mobilenet_v2_imagenet");
    let proto = read_onnx(&bundle.onnx).unwrap().proto;
    let dir = common::temp_dir(test);
    let mut collector = Collector::new(&proto, &[1, 3, 224, 224]).unwrap();
    let mut inputs = Vec::new();
    let mut files = Vec::new();
    for (i, photo) in PHOTOS.iter().enumerate() {
        let input = common::preprocessed(&bundle, &common::asset(photo), 224, 224);
        collector.add(&input).unwrap();
        let file = dir.join(format!("input{i}.f32"));
        let bytes: Vec<u8> = input.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(&file, bytes).unwrap();
        files.push(file.to_str().unwrap().to_string());
        inputs.push(input);
    }
    Setup {
        onnx: bundle.onnx.clone(),
        dir,
        proto,
        inputs,
        files,
        collector,
    }
}

#[test]
fn ranges_match_onnxruntime_calibrators() {
    let s = setup("calibrate-ort");
    let out = s.dir.join("ort.json");
    let mut args = vec![
        s.onnx.to_str().unwrap(),
        out.to_str().unwrap(),
        "1,3,224,224",
    ];
    args.extend(s.files.iter().map(String::as_str));
    python(ORT_CALIBRATE, &args);
    let ort: BTreeMap<String, BTreeMap<String, [f32; 2]>> =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();

    // MinMax: the same global min and max of every tensor both calibrated.
    let minmax = &ort["minmax"];
    let mut compared = 0;
    for (name, [lo, hi]) in minmax {
        let Some(ours) = s.collector.stats.get(name) else {
            continue;
        };
        let tol = 1e-4 * ours.amax().max(1.0);
        assert!(
            (ours.min - lo).abs() <= tol && (ours.max - hi).abs() <= tol,
            "{name}: ours [{}, {}], onnxruntime [{lo}, {hi}]",
            ours.min,
            ours.max
        );
        compared += 1;
    }
    println!(
        "minmax: {compared} tensors equal (of {} in onnxruntime's)",
        minmax.len()
    );
    assert!(compared >= 100, "only {compared} tensors in common");

    // Percentile 99.99 of |x| over a 2048-bin histogram. The 0.01 % tail is a handful of values
    // spread thinly, and onnxruntime counts slightly differently (its bins start at the first
    // image's smallest |x|, and later values below that are dropped), so the two thresholds can
    // sit many bins apart in an empty stretch; what must agree is the share of values they cut:
    // at most 0.01 % of a tensor's values lie between them. onnxruntime reports the symmetric
    // threshold t as [max(-t, min), min(t, max)]: t is the larger magnitude of the two.
    let percentile = &ort["percentile"];
    let mut worst = 0f64;
    let mut compared = 0;
    for (name, [lo, hi]) in percentile {
        let Some(ours) = s.collector.stats.get(name) else {
            continue;
        };
        let ours_p = ours.percentile(99.99);
        let hi = &(-lo).max(*hi);
        let bin = |t: f32| ((t / ours.bin_width) as usize).min(ours.histogram.len() - 1);
        let (a, b) = (bin(ours_p.min(*hi)), bin(ours_p.max(*hi)));
        let total: u64 = ours.histogram.iter().sum();
        let between: u64 = ours.histogram[a + 1..b.max(a + 1)].iter().sum();
        let share = between as f64 / total as f64;
        worst = worst.max(share);
        assert!(
            share <= 1e-4,
            "{name}: ours {ours_p}, onnxruntime {hi}: {between} of {total} values between them"
        );
        compared += 1;
    }
    println!(
        "percentile: {compared} tensors, at most {:.4} % of values between ours and onnxruntime's",
        worst * 100.0
    );
    assert!(compared >= 100);
    std::fs::remove_dir_all(&s.dir).unwrap();
}

#[test]
fn table_and_qdq_model() {
    let s = setup("calibrate-qdq");
    for method in [Method::Max, Method::Percentile, Method::Entropy] {
        let amax = s.collector.ranges(method, 99.99);
        // Entropy and percentile clip, max never does.
        for (name, a) in &amax {
            let st = &s.collector.stats[name];
            assert!(*a <= st.amax() + 1e-6, "{name}: {a} > max {}", st.amax());
            if method == Method::Max {
                assert_eq!(*a, st.amax());
            }
        }
        let parsed = table::parse(&table::write(100300, &amax)).unwrap();
        assert_eq!(parsed.algorithm, "EntropyCalibration2");
        assert_eq!(parsed.scales.len(), amax.len());
        for (name, a) in &amax {
            let expected = (a / 127.0).max(f32::MIN_POSITIVE);
            assert_eq!(parsed.scales[name], expected, "{name}");
        }
    }

    // The QDQ model (percentile ranges) classifies the photos as FP32 does, in tract and
    // onnxruntime alike.
    let amax = s.collector.ranges(Method::Percentile, 99.99);
    let (qdq_model, summary) = qdq::quantize(&s.proto, &amax).unwrap();
    assert_eq!(summary.layers, 53, "{summary:?}");
    assert!(summary.skipped.is_empty());
    let qdq_path = s.dir.join("qdq.onnx");
    std::fs::write(&qdq_path, qdq_model.encode_to_vec()).unwrap();
    let top1 = |outputs: &[(Vec<usize>, Vec<f32>)]| {
        let v = &outputs[0].1;
        (0..v.len()).max_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap()
    };
    let fp32 = common::Tract::new(&s.proto, &[1, 3, 224, 224]);
    let int8 = common::Tract::new(&qdq_model, &[1, 3, 224, 224]);
    let mut args = vec![qdq_path.to_str().unwrap(), "1,3,224,224"];
    args.extend(s.files.iter().map(String::as_str));
    let ort_top1: Vec<usize> = python(ORT_RUN, &args)
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    let mut same_tract = 0;
    let mut same_ort = 0;
    for (i, input) in s.inputs.iter().enumerate() {
        let reference = top1(&fp32.run(input));
        let tract_top1 = top1(&int8.run(input));
        println!(
            "{}: fp32 {reference}, qdq tract {tract_top1}, qdq onnxruntime {}",
            PHOTOS[i], ort_top1[i]
        );
        same_tract += usize::from(tract_top1 == reference);
        same_ort += usize::from(ort_top1[i] == reference);
    }
    println!(
        "QDQ top-1 equal to FP32 on {} photos: tract {same_tract}, onnxruntime {same_ort}",
        PHOTOS.len()
    );
    assert!(same_tract >= 5 && same_ort >= 5);
    std::fs::remove_dir_all(&s.dir).unwrap();
}

#[test]
fn calibrate_cli_writes_the_nvinfer_bundle_and_the_qdq_bundle() {
    let bundle = common::bundle("mobilenet_v2_imagenet");
    let dir = common::temp_dir("calibrate-cli");
    let images = dir.join("images");
    std::fs::create_dir_all(&images).unwrap();
    for photo in PHOTOS {
        std::fs::copy(common::asset(photo), images.join(photo)).unwrap();
    }
    let out = dir.join("int8");
    let run = Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args(["--quiet", "calibrate", "-m"])
        .arg(&bundle.dir)
        .arg("-o")
        .arg(&out)
        .arg("--images")
        .arg(&images)
        .args(["--method", "percentile"])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let config = std::fs::read_to_string(out.join("config_infer.txt")).unwrap();
    assert!(config.contains("network-mode=1"), "{config}");
    assert!(config.contains("int8-calib-file=calib.table"), "{config}");
    let parsed = table::parse(&std::fs::read_to_string(out.join("calib.table")).unwrap()).unwrap();
    assert!(parsed.scales.len() > 100);
    // The QDQ bundle runs on the element's engine and still sees a cat in chelsea.png.
    let mut runner = nvtl_trainer::runner::BundleRunner::open(&out.join("qdq"), 0).unwrap();
    let (_, result) = runner.run_file(&common::asset("chelsea.png")).unwrap();
    let nvtl_core::engine::InferResult::Classification(output) = result else {
        panic!("a classifier gives attributes");
    };
    let label = output
        .attributes
        .first()
        .and_then(|a| a.label.clone())
        .unwrap_or_default();
    assert!(label.to_lowercase().contains("cat"), "QDQ top-1: {label:?}");
    // Bad input: an empty image folder is an error, nothing written.
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args(["--quiet", "calibrate", "-m"])
        .arg(&bundle.dir)
        .arg("-o")
        .arg(dir.join("nothing"))
        .arg("--images")
        .arg(&empty)
        .output()
        .unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("no calibration images"));
    assert!(!dir.join("nothing").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
