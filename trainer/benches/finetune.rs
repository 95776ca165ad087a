//! Fine-tuning speed: MobileNetV2 at 224x224, batch 16, one Adam step (forward, backward,
//! update) in the trainer (burn flex, the ONNX graph executor) against PyTorch on the CPU doing
//! the same step (bench/run_torch_baseline.sh, its own venv), measured in the same run.
//!
//!   cargo bench -p nvtl-trainer --bench finetune            # -- --steps 5 --batch 16
//!
//! Prints images/s of both and the ratio (goal >= 1.0).

use std::process::Command;
use std::time::Instant;

use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::TensorData;
use nvtl_core::zoo::{self, Manifest};
use nvtl_trainer::graph::{GraphModule, Mode};
use nvtl_trainer::heads::classifier;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let steps = arg("--steps", 5);
    let batch = arg("--batch", 16);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let manifest = Manifest::builtin().expect("zoo manifest");
    let model = manifest.get("mobilenet_v2_imagenet").expect("zoo model");
    let bundle = zoo::pull_with(model, &|_| {}, Some(&nvtl_trainer::import::zoo_converter))
        .expect("pulling mobilenet_v2_imagenet");

    let device = Device::flex().autodiff();
    let mut graph = GraphModule::from_onnx(&bundle.onnx, &device).expect("graph");
    let mut optim = AdamConfig::new().init();
    // Deterministic pseudo-images in the network's value range; the step's cost does not depend
    // on the pixels.
    let len = batch * 3 * 224 * 224;
    let input: Vec<f32> = (0..len)
        .map(|i| ((i * 7919) % 255) as f32 / 64.0 - 2.0)
        .collect();
    let targets: Vec<usize> = (0..batch).map(|i| (i * 37) % 1000).collect();
    let mut step = |graph: GraphModule| -> GraphModule {
        let x = Tensor::<4>::from_data(
            TensorData::new(input.clone(), [batch, 3, 224, 224]),
            &device,
        );
        let forward = graph.forward(x, Mode::Train).expect("forward");
        let out = forward.outputs[0]
            .clone()
            .into_rank::<2>()
            .expect("[N, 1000]");
        let loss = classifier::loss(out, &targets, 0.0, true).expect("loss");
        let grads = GradientsParams::from_grads(loss.backward(), &graph);
        let mut graph = optim.step(1e-4, graph, grads);
        graph.apply_batch_norm(forward.batch_norm);
        graph
    };
    graph = step(graph); // warm-up
    let started = Instant::now();
    for _ in 0..steps {
        graph = step(graph);
    }
    let ours = (steps * batch) as f64 / started.elapsed().as_secs_f64();
    println!("nvtl-trainer (burn flex, {threads} threads): {ours:.2} images/s ({steps} steps of {batch} at 224x224)");

    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../bench/run_torch_baseline.sh"
    );
    let output = Command::new("bash")
        .arg(script)
        .args([
            "--steps",
            &steps.to_string(),
            "--batch",
            &batch.to_string(),
            "--threads",
            &threads.to_string(),
        ])
        .output()
        .expect("running bench/run_torch_baseline.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&output.stderr));
        panic!("the PyTorch baseline failed");
    }
    let theirs: f64 = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("images_per_second "))
        .next_back()
        .and_then(|v| v.trim().parse().ok())
        .expect("images_per_second from the baseline");
    println!("PyTorch (CPU, {threads} threads):              {theirs:.2} images/s");
    println!("ratio nvtl-trainer / PyTorch: {:.2}x", ours / theirs);
}
