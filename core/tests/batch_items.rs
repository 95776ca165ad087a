//! The CPU backend runs a model whose batch is dynamic item by item (tract is several times
//! slower per image on a batch): its batch outputs must be those of tract's own batched run and
//! of each image alone.

mod zoo_common;

use nvtl_core::backend::{self, BackendKind, ModelSpec, Plan};
use nvtl_core::config::TensorOrder;
use tract_onnx::prelude::*;
use zoo_common::{asset, nhwc, pulled};

const SIDE: usize = 224;

/// A photo as MobileNetV2's NCHW input.
fn nchw(name: &str) -> Vec<f32> {
    let hwc = nhwc(&asset(name), SIDE as u32, SIDE as u32, |p| {
        (p / 255.0 - 0.45) / 0.225
    });
    let mut chw = vec![0.0; hwc.len()];
    for (i, v) in hwc.iter().enumerate() {
        let (pixel, channel) = (i / 3, i % 3);
        chw[channel * SIDE * SIDE + pixel] = *v;
    }
    chw
}

fn load(onnx: &std::path::Path, batch_size: usize) -> std::sync::Arc<dyn Plan> {
    let spec = ModelSpec {
        onnx_path: onnx.to_path_buf(),
        batch_size,
        infer_dims: None,
        input_order: TensorOrder::Nchw,
        threads: 0,
        gpu_id: 0,
        precision: nvtl_core::backend::Precision::Fp32,
        int8_calib_file: None,
        engine_file: None,
    };
    backend::backend(BackendKind::Cpu)
        .unwrap()
        .load(&spec)
        .unwrap()
}

fn run(plan: &dyn Plan, data: Vec<f32>) -> Vec<f32> {
    let input =
        nvtl_core::tensor::Tensor::new(plan.input().name.clone(), plan.input().shape.clone(), data);
    let mut outputs = plan.new_session().unwrap().run(&input).unwrap();
    assert_eq!(outputs.len(), 1);
    assert_eq!(outputs[0].shape, plan.outputs()[0].shape);
    outputs.remove(0).data
}

fn argmax(row: &[f32]) -> usize {
    (0..row.len())
        .max_by(|&a, &b| row[a].total_cmp(&row[b]))
        .unwrap()
}

#[test]
fn a_dynamic_batch_gives_the_outputs_of_a_real_batch_and_of_each_image_alone() {
    let bundle = pulled("mobilenet_v2_imagenet");
    let dog = nchw("dog.jpg");
    // The third item: the dog mirrored.
    let mirrored: Vec<f32> = dog
        .chunks(SIDE)
        .flat_map(|row| row.iter().rev().copied())
        .collect();
    let images = [dog, nchw("astronaut.png"), mirrored];
    let batch = load(&bundle.onnx, 3);
    assert_eq!(batch.input().shape, [3, 3, SIDE, SIDE]);
    assert_eq!(batch.outputs()[0].shape, [3, 1000]);
    let got = run(batch.as_ref(), images.concat());

    // tract's own plan for a batch of 3.
    let shape = [3, 3, SIDE, SIDE];
    let reference = tract_onnx::onnx()
        .model_for_path(&bundle.onnx)
        .and_then(|m| m.with_input_fact(0, f32::fact(shape).into()))
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .unwrap()
        .run(tvec![Tensor::from_shape(&shape, &images.concat())
            .unwrap()
            .into_tvalue()])
        .unwrap();
    let reference = reference[0].to_plain_array_view::<f32>().unwrap();
    let scale = reference.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = reference
        .iter()
        .zip(&got)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        diff <= 1e-4 * scale,
        "max |diff| {diff} of outputs up to {scale}"
    );

    let single = load(&bundle.onnx, 1);
    let mut classes = Vec::new();
    for (index, image) in images.iter().enumerate() {
        let alone = run(single.as_ref(), image.clone());
        assert_eq!(
            &got[index * 1000..(index + 1) * 1000],
            alone.as_slice(),
            "image {index}"
        );
        classes.push(argmax(&alone));
    }
    assert_ne!(
        classes[0], classes[1],
        "a dog and an astronaut: {classes:?}"
    );
}
