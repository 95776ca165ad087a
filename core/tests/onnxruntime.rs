//! The onnxruntime backend (feature `onnxruntime`) with the CPU execution provider, on real zoo
//! models and a real photo: its outputs and detections must equal tract's. libonnxruntime comes
//! from onnxruntime's PyPI wheel (`scripts/ort-venv.sh`, the venv the trainer's onnxruntime test
//! uses), unless ORT_DYLIB_PATH is set.
#![cfg(feature = "onnxruntime")]

mod zoo_common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;

use nvtl_core::backend::onnxruntime::{check_model, DYLIB_ENV};
use nvtl_core::backend::{self, epcontext, BackendKind};
use nvtl_core::config::InferConfig;
use nvtl_core::engine::{Engine, InferResult};
use nvtl_core::preprocess::{FrameView, PixelFormat, Rect};
use zoo_common::{asset, pulled};

/// Points ORT_DYLIB_PATH at the wheel's libonnxruntime (`scripts/ort-venv.sh` makes the venv
/// the first time), unless it is set.
fn ort_library() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os(DYLIB_ENV).is_some_and(|p| !p.is_empty()) {
            return;
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/ort-venv.sh");
        let out = Command::new("bash").arg(&script).output().unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let library = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        assert!(library.is_file(), "{}", library.display());
        // Set once, before any onnxruntime use in this process.
        std::env::set_var(DYLIB_ENV, library);
    });
}

fn rgb_frame(path: &Path) -> (usize, usize, Vec<u8>) {
    let image = image::open(path).unwrap().to_rgb8();
    (
        image.width() as usize,
        image.height() as usize,
        image.into_raw(),
    )
}

/// Loads the bundle's config on `kind` with raw outputs kept.
fn engine(config: &Path, kind: BackendKind) -> (Engine, Vec<String>) {
    let mut config = InferConfig::from_file(config).unwrap().config;
    config.output_tensor_meta = true;
    Engine::load(config, kind, 2).unwrap_or_else(|e| panic!("{kind}: {e}"))
}

fn infer(
    engine: &mut Engine,
    width: usize,
    height: usize,
    rgb: &[u8],
) -> (InferResult, Vec<nvtl_core::Tensor>) {
    let frame = FrameView {
        format: PixelFormat::Rgb,
        width,
        height,
        planes: vec![rgb],
        strides: vec![width * 3],
    };
    let full = Rect {
        x: 0,
        y: 0,
        width,
        height,
    };
    let mut results = engine.infer_regions(&frame, &[full]).unwrap();
    (results.remove(0), engine.target_outputs.remove(0))
}

#[test]
fn onnxruntime_cpu_equals_tract_on_zoo_models() {
    ort_library();
    let (w, h, rgb) = rgb_frame(&asset("dog.jpg"));
    for model in [
        "centernet_mobilenetv3_coco",
        "blazeface_front_128",
        "blazeface_back_256",
    ] {
        let bundle = pulled(model);
        let (mut tract, _) = engine(&bundle.config, BackendKind::Cpu);
        let (mut ort, warnings) = engine(&bundle.config, BackendKind::OnnxRuntime);
        assert_eq!(ort.plan().backend(), BackendKind::OnnxRuntime);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(ort.plan().input(), tract.plan().input());
        assert_eq!(
            ort.plan().outputs(),
            tract.plan().outputs(),
            "{model}: same outputs"
        );

        let (tract_result, tract_out) = infer(&mut tract, w, h, &rgb);
        let (ort_result, ort_out) = infer(&mut ort, w, h, &rgb);
        let mut max_diff = 0f32;
        let mut max_value = 0f32;
        for (a, b) in tract_out.iter().zip(&ort_out) {
            assert_eq!((&a.name, &a.shape), (&b.name, &b.shape));
            for (x, y) in a.data.iter().zip(&b.data) {
                max_diff = max_diff.max((x - y).abs());
                max_value = max_value.max(x.abs());
            }
        }
        eprintln!("{model}: max |tract - onnxruntime| = {max_diff:e} (max |output| {max_value})");
        assert!(max_diff <= 1e-3 * max_value.max(1.0), "{model}: {max_diff}");

        match (&tract_result, &ort_result) {
            (InferResult::Objects(a), InferResult::Objects(b)) => {
                assert_eq!(a.len(), b.len(), "{model}: {a:?} vs {b:?}");
                for (x, y) in a.iter().zip(b) {
                    assert_eq!((x.class_id, &x.label), (y.class_id, &y.label), "{model}");
                    assert!((x.confidence - y.confidence).abs() < 1e-3, "{model}");
                    assert!((x.bbox.left - y.bbox.left).abs() < 0.5, "{model}");
                    assert!((x.bbox.top - y.bbox.top).abs() < 0.5, "{model}");
                }
                if model.starts_with("centernet") {
                    assert!(b.iter().any(|o| o.label.as_deref() == Some("dog")), "{b:?}");
                }
            }
            other => panic!("{model}: {other:?}"),
        }
    }
}

#[test]
fn auto_falls_back_past_providers_the_cpu_wheel_lacks() {
    ort_library();
    let bundle = pulled("centernet_mobilenetv3_coco");
    let (engine, warnings) = engine(&bundle.config, BackendKind::Auto);
    // The PyPI onnxruntime wheel is CPU-only: no TensorRT or CUDA execution provider.
    assert_eq!(engine.plan().backend(), BackendKind::Cpu);
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].contains("tensorrt") && warnings[0].contains("TensorRT"),
        "{}",
        warnings[0]
    );
    assert!(
        warnings[1].contains("cuda") && warnings[1].contains("falling back to cpu"),
        "{}",
        warnings[1]
    );

    let report = backend::backend_report();
    let status = |kind| report.iter().find(|s| s.kind == kind).unwrap();
    assert!(
        status(BackendKind::OnnxRuntime).usable.is_ok(),
        "{report:?}"
    );
    assert!(status(BackendKind::TensorRt).built);
    assert!(status(BackendKind::TensorRt).usable.is_err());
}

#[test]
fn epcontext_wrapper_parses_in_onnxruntime_which_names_the_ep_it_needs() {
    ort_library();
    let bundle = pulled("centernet_mobilenetv3_coco");
    let onnx = nvtl_core::model::read_onnx(&bundle.onnx).unwrap();
    let dir = std::env::temp_dir().join(format!("nvtl-ort-epctx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let engine = dir.join("model.onnx_b1_gpu0_fp16.engine");
    std::fs::write(
        &engine,
        b"not a real engine: TensorRT is not on this machine",
    )
    .unwrap();
    let (inputs, outputs) = epcontext::io_of(&onnx.proto, &onnx.path).unwrap();
    let wrapper = epcontext::write_wrapper(&engine, inputs, outputs).unwrap();

    // The CPU execution provider parses and checks the graph, then has no kernel for the
    // EPContext node: the error is about the node, not about the file.
    let err = check_model(&wrapper).unwrap_err();
    eprintln!("onnxruntime CPU EP on the EPContext wrapper: {err}");
    assert!(err.contains("EPContext"), "{err}");
    assert!(!err.to_lowercase().contains("protobuf"), "{err}");
    // A plain model passes the same check.
    check_model(&onnx.path).unwrap();
}
