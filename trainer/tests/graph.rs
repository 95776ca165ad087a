//! The burn graph executor against tract on the zoo models and on hand-built graphs:
//! forward values, gradients, BatchNorm statistics, freezing, resizing and export.

mod common;

use std::time::Instant;

use burn::tensor::{Device, Tensor, TensorData};
use nvtl_trainer::graph::{GraphModule, Mode};

fn flex() -> Device {
    Device::flex()
}

/// Burn and tract on one zoo model and dog.jpg; returns burn's outputs and prints the diffs.
fn compare_zoo_model(name: &str, max_rel: f32) {
    let bundle = common::bundle(name);
    let module = GraphModule::from_onnx(&bundle.onnx, &flex()).expect("loads");
    let dims: Vec<usize> = module
        .input_dims()
        .iter()
        .map(|d| d.to_string().parse().expect("fixed input dims"))
        .collect();
    assert_eq!(dims.len(), 4);
    let (h, w) = (dims[1], dims[2]);
    let input = common::preprocessed(&bundle, &common::asset("dog.jpg"), w, h);
    let proto = nvtl_core::model::read_onnx(&bundle.onnx).unwrap().proto;

    let started = Instant::now();
    let expected = common::tract_run(&proto, &dims, &input);
    let tract_time = started.elapsed();
    let tensor = Tensor::<4>::from_data(
        TensorData::new(input.clone(), [dims[0], h, w, dims[3]]),
        &flex(),
    );
    let started = Instant::now();
    let forward = module.forward(tensor, Mode::Eval).expect("burn forward");
    let actual: Vec<Vec<f32>> = forward.outputs.iter().map(|v| v.to_f32_vec()).collect();
    let burn_time = started.elapsed();
    println!(
        "{name} {w}x{h}: forward burn flex {:.1} ms (first run), tract {:.1} ms (incl. optimisation)",
        burn_time.as_secs_f64() * 1e3,
        tract_time.as_secs_f64() * 1e3
    );
    assert_eq!(actual.len(), expected.len());
    for ((out_name, value), (shape, reference)) in module
        .output_names()
        .iter()
        .zip(&forward.outputs)
        .zip(&expected)
    {
        assert_eq!(&value.dims(), shape, "{name} {out_name} shape");
        let (abs, rel) = common::diff(&value.to_f32_vec(), reference);
        println!("{name} {out_name} {shape:?}: max abs diff {abs:.3e}, relative {rel:.3e}");
        assert!(
            rel < max_rel,
            "{name} {out_name}: relative diff {rel} >= {max_rel}"
        );
    }
}

#[test]
fn centernet_matches_tract_on_dog() {
    compare_zoo_model("centernet_mobilenetv3_coco", 1e-4);
    let bundle = common::bundle("centernet_mobilenetv3_coco");
    let module = GraphModule::from_onnx(&bundle.onnx, &flex()).unwrap();
    let input = common::preprocessed(&bundle, &common::asset("dog.jpg"), 512, 512);
    let proto = nvtl_core::model::read_onnx(&bundle.onnx).unwrap().proto;
    let tract = common::Tract::new(&proto, &[1, 512, 512, 3]);
    let tensor = Tensor::<4>::from_data(TensorData::new(input.clone(), [1, 512, 512, 3]), &flex());
    let mut burn_ms = Vec::new();
    let mut tract_ms = Vec::new();
    let mut heat = Vec::new();
    let mut expected = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let forward = module.forward(tensor.clone(), Mode::Eval).unwrap();
        heat = forward.outputs[0].to_f32_vec();
        burn_ms.push(started.elapsed().as_secs_f64() * 1e3);
        let started = Instant::now();
        expected = tract.run(&input);
        tract_ms.push(started.elapsed().as_secs_f64() * 1e3);
    }
    let (abs, _) = common::diff(&heat, &expected[0].1);
    println!(
        "centernet heatmap max abs diff {abs:.3e}; forward 512x512 batch 1: burn flex {burn_ms:.1?} ms, tract {tract_ms:.1?} ms"
    );
    assert!(abs < 1e-3, "heat map differs by {abs}");
}

#[test]
fn blazeface_front_matches_tract_on_dog() {
    compare_zoo_model("blazeface_front_128", 1e-4);
}

#[test]
fn blazeface_back_matches_tract_on_dog() {
    compare_zoo_model("blazeface_back_256", 1e-4);
}
