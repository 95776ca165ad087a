//! The cuda backend (tract-cuda) and GPU pre-processing on a machine without a GPU or CUDA
//! libraries, as in CI: clear errors that say what is missing, `backend=auto` falls back to the
//! CPU with a warning, and the backend report says why cuda cannot run. (On a GPU machine,
//! scripts/device-check.sh runs the same code against the CPU backend.)
#![cfg(feature = "cuda")]

mod zoo_common;

use nvtl_core::backend::{self, BackendKind};
use nvtl_core::config::InferConfig;
use nvtl_core::engine::Engine;
use nvtl_core::preprocess::cuda::{GpuPreprocessError, GpuPreprocessor};

fn gpu_present() -> bool {
    std::path::Path::new("/dev/nvidiactl").exists()
}

#[test]
fn without_cuda_the_backend_is_a_clear_error_and_auto_falls_back_to_cpu() {
    if gpu_present() {
        eprintln!("this machine has an NVIDIA GPU: the no-CUDA paths are not what runs here");
        return;
    }
    let bundle = zoo_common::pulled("blazeface_front_128");
    let config = InferConfig::from_file(&bundle.config).unwrap().config;

    let err = Engine::load(config.clone(), BackendKind::Cuda, 1)
        .err()
        .expect("no GPU: an error");
    let text = err.to_string();
    assert!(
        text.contains("backend 'cuda' is unavailable") && text.contains("CUDA driver"),
        "{text}"
    );

    let (engine, warnings) = Engine::load(config, BackendKind::Auto, 1).unwrap();
    assert_eq!(engine.plan().backend(), BackendKind::Cpu);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("backend=auto: cuda not used") && w.contains("falling back to cpu")),
        "{warnings:?}"
    );

    let report = backend::backend_report();
    let cuda = report.iter().find(|s| s.kind == BackendKind::Cuda).unwrap();
    assert!(cuda.built, "{cuda:?}");
    let why = cuda.usable.as_ref().unwrap_err();
    assert!(why.contains("CUDA driver"), "{why}");
    assert!(backend::built_backends_text().contains("tract-cuda"));
}

#[test]
fn without_cuda_gpu_preprocessing_names_the_missing_library() {
    if gpu_present() {
        return;
    }
    match GpuPreprocessor::new(0) {
        Err(GpuPreprocessError::Unavailable(why)) => {
            assert!(why.contains("libcuda"), "{why}")
        }
        Err(other) => panic!("expected Unavailable, got {other}"),
        Ok(_) => panic!("GPU pre-processing started on a machine without a GPU"),
    }
}
