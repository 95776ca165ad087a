//! model-engine-file handling without TensorRT: an engine next to onnx-file is left to the
//! tensorrt backend (the cpu backend runs the ONNX model and says so); an engine alone is an
//! error that names the file and asks for onnx-file.

mod zoo_common;

use std::path::PathBuf;

use nvtl_core::backend::BackendKind;
use nvtl_core::config::InferConfig;
use nvtl_core::engine::Engine;

fn config() -> InferConfig {
    let bundle = zoo_common::pulled("blazeface_front_128");
    InferConfig::from_file(&bundle.config).unwrap().config
}

#[test]
fn an_engine_beside_the_onnx_model_is_for_tensorrt_only() {
    let mut config = config();
    config.model_engine_file = Some(PathBuf::from("/models/face.onnx_b1_gpu0_fp16.engine"));
    let (engine, warnings) = Engine::load(config, BackendKind::Cpu, 1).unwrap();
    assert_eq!(engine.plan().backend(), BackendKind::Cpu);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("face.onnx_b1_gpu0_fp16.engine")
                && w.contains("only used by the tensorrt backend")),
        "{warnings:?}"
    );
}

#[test]
fn an_engine_alone_is_an_error_naming_it() {
    let mut config = config();
    config.onnx_file = None;
    config.model_engine_file = Some(PathBuf::from("/models/face.engine"));
    let err = Engine::load(config, BackendKind::Cpu, 1)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("/models/face.engine") && err.contains("onnx-file"),
        "{err}"
    );
}

#[test]
fn an_onnx_model_engine_file_is_the_model() {
    let mut config = config();
    let onnx = config.onnx_file.take().unwrap();
    config.model_engine_file = Some(onnx.clone());
    let (engine, warnings) = Engine::load(config, BackendKind::Cpu, 1).unwrap();
    assert_eq!(engine.plan().spec().onnx_path, onnx);
    assert!(warnings.is_empty(), "{warnings:?}");
}
