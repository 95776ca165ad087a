//! Without libonnxruntime (ORT_DYLIB_PATH names a file that does not exist): the onnxruntime
//! backends are a clear error naming the path, and backend=auto falls back to tract with one
//! warning per backend it skipped. Its own test binary: the library is loaded once per process.
#![cfg(feature = "onnxruntime")]

mod zoo_common;

use nvtl_core::backend::onnxruntime::DYLIB_ENV;
use nvtl_core::backend::{self, BackendKind};
use nvtl_core::config::InferConfig;
use nvtl_core::engine::Engine;

#[test]
fn missing_libonnxruntime_is_a_clear_error_and_auto_falls_back_to_cpu() {
    std::env::set_var(DYLIB_ENV, "/nonexistent/nvtl/libonnxruntime.so");
    let bundle = zoo_common::pulled("blazeface_front_128");
    let config = InferConfig::from_file(&bundle.config).unwrap().config;

    // With the cuda feature too, backend=cuda is tract-cuda (tests/cuda_missing.rs).
    let kinds: &[BackendKind] = if cfg!(feature = "cuda") {
        &[BackendKind::OnnxRuntime, BackendKind::TensorRt]
    } else {
        &[
            BackendKind::OnnxRuntime,
            BackendKind::Cuda,
            BackendKind::TensorRt,
        ]
    };
    for &kind in kinds {
        let err = Engine::load(config.clone(), kind, 1)
            .err()
            .expect("an error");
        let text = err.to_string();
        assert!(
            text.contains("/nonexistent/nvtl/libonnxruntime.so") && text.contains(DYLIB_ENV),
            "{kind}: {text}"
        );
    }

    let (engine, warnings) = Engine::load(config, BackendKind::Auto, 1).unwrap();
    assert_eq!(engine.plan().backend(), BackendKind::Cpu);
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].starts_with("backend=auto: tensorrt not used"),
        "{}",
        warnings[0]
    );
    assert!(
        warnings[1].contains("falling back to cpu"),
        "{}",
        warnings[1]
    );
    assert!(
        warnings
            .iter()
            .all(|w| w.contains("cannot load onnxruntime")),
        "{warnings:?}"
    );

    let report = backend::backend_report();
    assert!(report.iter().all(|s| s.built), "{report:?}");
    for status in &report {
        assert_eq!(
            status.usable.is_ok(),
            status.kind == BackendKind::Cpu,
            "{status:?}"
        );
    }
}
