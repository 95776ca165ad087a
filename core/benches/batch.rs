//! `cargo bench -p nvtl-core --bench batch`: milliseconds per image of the zoo's MobileNetV2
//! (dynamic batch) at batch 4 on the CPU backend, which runs a batch item by item, against
//! tract's own plan for a batch of 4 and the CPU backend at batch 1, measured in turns; each
//! number is the best of `NVTL_BENCH_RUNS` rounds (default 8).

use std::time::Instant;

use nvtl_core::backend::{self, BackendKind, ModelSpec, Precision};
use nvtl_core::config::TensorOrder;
use nvtl_core::tensor::Tensor;
use nvtl_core::zoo::{self, Manifest};
use tract_onnx::prelude::*;

const BATCH: usize = 4;

fn main() {
    let manifest = Manifest::builtin().unwrap();
    let bundle = zoo::pull(manifest.get("mobilenet_v2_imagenet").unwrap(), &|_| {}).unwrap();
    let rounds: usize = std::env::var("NVTL_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let spec = |batch_size| ModelSpec {
        onnx_path: bundle.onnx.clone(),
        batch_size,
        infer_dims: None,
        input_order: TensorOrder::Nchw,
        threads: 0,
        gpu_id: 0,
        precision: Precision::Fp32,
        int8_calib_file: None,
        engine_file: None,
    };
    let cpu = backend::backend(BackendKind::Cpu).unwrap();
    let shape = [BATCH, 3, 224, 224];
    let data: Vec<f32> = (0..shape.iter().product::<usize>())
        .map(|i| ((i * 7919) % 255) as f32 / 255.0)
        .collect();
    let item_len = data.len() / BATCH;

    let batched = cpu.load(&spec(BATCH)).unwrap();
    let mut batched_session = batched.new_session().unwrap();
    let batched_input = Tensor::new(batched.input().name.clone(), shape.to_vec(), data.clone());
    let single = cpu.load(&spec(1)).unwrap();
    let mut single_session = single.new_session().unwrap();
    let single_inputs: Vec<Tensor> = data
        .chunks(item_len)
        .map(|item| {
            Tensor::new(
                single.input().name.clone(),
                vec![1, 3, 224, 224],
                item.to_vec(),
            )
        })
        .collect();
    let tract_batch = tract_onnx::onnx()
        .model_for_path(&bundle.onnx)
        .and_then(|m| m.with_input_fact(0, f32::fact(shape).into()))
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .unwrap();
    let tract_input = tract_onnx::prelude::Tensor::from_shape(&shape, &data).unwrap();

    let mut best = [f64::MAX; 3];
    for _ in 0..rounds {
        let t = Instant::now();
        batched_session.run(&batched_input).unwrap();
        best[0] = best[0].min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        for input in &single_inputs {
            single_session.run(input).unwrap();
        }
        best[1] = best[1].min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        tract_batch
            .run(tvec![tract_input.clone().into_tvalue()])
            .unwrap();
        best[2] = best[2].min(t.elapsed().as_secs_f64());
    }
    let per_image = best.map(|s| s * 1e3 / BATCH as f64);
    println!("MobileNetV2 224x224, ms per image, best of {rounds} rounds in turns:");
    println!(
        "  cpu backend, batch {BATCH} (item by item)   {:8.2}",
        per_image[0]
    );
    println!(
        "  cpu backend, batch 1 x {BATCH}              {:8.2}",
        per_image[1]
    );
    println!(
        "  tract's batch-{BATCH} plan (baseline)        {:8.2}   ({:.2}x slower than the cpu backend)",
        per_image[2],
        per_image[2] / per_image[0]
    );
}
