//! Exported graphs in three engines: a model edited and trained by the trainer (new class
//! layer, a different input size, BatchNorm statistics moved by training), written back to ONNX,
//! gives the same outputs in burn (the trainer), tract (nvtlinfer's CPU backend) and
//! onnxruntime (Python, in a venv the test makes with bench/requirements.txt's version).

mod common;

use std::path::Path;
use std::process::Command;

use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::TensorData;
use nvtl_core::model::read_onnx;
use nvtl_trainer::graph::{GraphModule, Mode};
use nvtl_trainer::onnx_edit::{refresh_output_dims, resizes_to_scales, set_input_size};
use nvtl_trainer::surgery::{class_sources, set_classes, ClassSource, NewChannelInit};
use prost::Message;
use tract_onnx::pb::ModelProto;

const RUN_ORT: &str = r#"
import sys, numpy as np, onnxruntime as ort
model, data, out = sys.argv[1], sys.argv[2], sys.argv[3]
shape = [int(d) for d in sys.argv[4].split(",")]
s = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
x = np.fromfile(data, dtype=np.float32).reshape(shape)
for i, y in enumerate(s.run(None, {s.get_inputs()[0].name: x})):
    np.asarray(y, dtype=np.float32).tofile(f"{out}.{i}")
"#;

fn run_ort(
    model: &ModelProto,
    input: &[f32],
    shape: &[usize],
    dir: &Path,
    outputs: usize,
) -> Vec<Vec<f32>> {
    let onnx = dir.join("model.onnx");
    std::fs::write(&onnx, model.encode_to_vec()).unwrap();
    let data = dir.join("input.f32");
    let bytes: Vec<u8> = input.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&data, bytes).unwrap();
    let shape_arg: Vec<String> = shape.iter().map(usize::to_string).collect();
    let out = dir.join("ort");
    let status = Command::new(common::ort_python())
        .args(["-c", RUN_ORT])
        .arg(&onnx)
        .arg(&data)
        .arg(&out)
        .arg(shape_arg.join(","))
        .status()
        .unwrap();
    assert!(status.success(), "onnxruntime failed on the exported model");
    (0..outputs)
        .map(|i| {
            std::fs::read(format!("{}.{i}", out.display()))
                .unwrap()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        })
        .collect()
}

/// Two Adam steps on a real image (Train mode: BatchNorm statistics move too), then the
/// graph with its new weights.
fn trained(proto: &ModelProto, input: &[f32], shape: [usize; 4]) -> (GraphModule, ModelProto) {
    let device = Device::flex().autodiff();
    let mut model = GraphModule::from_proto(proto, &device).unwrap();
    let mut optim = AdamConfig::new().init();
    for _ in 0..2 {
        let x = Tensor::<4>::from_data(TensorData::new(input.to_vec(), shape), &device);
        let forward = model.forward(x, Mode::Train).unwrap();
        let loss = forward
            .outputs
            .into_iter()
            .map(|o| match o.rank() {
                2 => o.into_rank::<2>().unwrap().powf_scalar(2.0).mean(),
                _ => o.into_rank::<4>().unwrap().powf_scalar(2.0).mean(),
            })
            .reduce(|a, b| a + b)
            .unwrap();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-3, model, grads);
        model.apply_batch_norm(forward.batch_norm);
    }
    let valid = model.valid();
    let exported = valid.to_proto().unwrap();
    (valid, exported)
}

fn compare(
    name: &str,
    model: &GraphModule,
    exported: &ModelProto,
    input: &[f32],
    shape: [usize; 4],
) {
    let dir = common::temp_dir(&format!("ort-{name}"));
    let x = Tensor::<4>::from_data(TensorData::new(input.to_vec(), shape), &Device::flex());
    let burn: Vec<Vec<f32>> = model
        .forward(x, Mode::Eval)
        .unwrap()
        .outputs
        .iter()
        .map(|v| v.to_f32_vec())
        .collect();
    let tract = common::tract_run(exported, &shape, input);
    let ort = run_ort(exported, input, &shape, &dir, burn.len());
    for (i, b) in burn.iter().enumerate() {
        let (abs_t, rel_t) = common::diff(b, &tract[i].1);
        let (abs_o, rel_o) = common::diff(b, &ort[i]);
        println!("{name} output {i}: burn vs tract max abs {abs_t:.2e} rel {rel_t:.2e}; burn vs onnxruntime max abs {abs_o:.2e} rel {rel_o:.2e}");
        assert!(rel_t < 1e-4, "{name} output {i}: tract differs by {rel_t}");
        assert!(
            rel_o < 1e-4,
            "{name} output {i}: onnxruntime differs by {rel_o}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_ten_class_mobilenet_at_64x64_agrees_in_burn_tract_and_onnxruntime() {
    let bundle = common::bundle("mobilenet_v2_imagenet");
    let mut proto = read_onnx(&bundle.onnx).unwrap().proto;
    set_classes(
        &mut proto,
        "probabilities",
        1000,
        1,
        &[ClassSource::New; 10],
        NewChannelInit { bias: 0.0, seed: 3 },
    )
    .unwrap();
    set_input_size(&mut proto, 64, 64).unwrap();
    refresh_output_dims(&mut proto).unwrap();
    let input = common::preprocessed(&bundle, &common::asset("chelsea.png"), 64, 64);
    let (model, exported) = trained(&proto, &input, [1, 3, 64, 64]);
    compare("mobilenet-10", &model, &exported, &input, [1, 3, 64, 64]);
}

#[test]
fn a_person_car_centernet_at_320x256_agrees_in_burn_tract_and_onnxruntime() {
    let bundle = common::bundle("centernet_mobilenetv3_coco");
    let labels: Vec<String> = std::fs::read_to_string(&bundle.labels)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let mut proto = read_onnx(&bundle.onnx).unwrap().proto;
    resizes_to_scales(&mut proto).unwrap();
    set_input_size(&mut proto, 256, 320).unwrap();
    let sources = class_sources(&labels, &["person".to_string(), "car".to_string()]);
    set_classes(
        &mut proto,
        "heatmap",
        80,
        1,
        &sources,
        NewChannelInit {
            bias: -2.19,
            seed: 3,
        },
    )
    .unwrap();
    refresh_output_dims(&mut proto).unwrap();
    let input = common::preprocessed(&bundle, &common::asset("dog.jpg"), 320, 256);
    let (model, exported) = trained(&proto, &input, [1, 256, 320, 3]);
    compare(
        "centernet-person-car",
        &model,
        &exported,
        &input,
        [1, 256, 320, 3],
    );
}

#[test]
fn a_pruned_centernet_agrees_in_burn_tract_and_onnxruntime() {
    use nvtl_trainer::prune::{analyse, Plan, PruneOptions, Scores};
    let bundle = common::bundle("centernet_mobilenetv3_coco");
    let proto = read_onnx(&bundle.onnx).unwrap().proto;
    let options = PruneOptions {
        threshold: 0.5,
        ..Default::default()
    };
    let analysis = analyse(&proto, &[]).unwrap();
    let scores =
        Scores::compute(&proto, &analysis, options.normalizer, options.equalization).unwrap();
    let pruned = Plan::new(&analysis, &scores, &options)
        .unwrap()
        .apply(&proto)
        .unwrap();
    let input = common::preprocessed(&bundle, &common::asset("dog.jpg"), 512, 512);
    let model = GraphModule::from_proto(&pruned, &Device::flex()).unwrap();
    compare(
        "centernet-pruned",
        &model,
        &pruned,
        &input,
        [1, 512, 512, 3],
    );
}
