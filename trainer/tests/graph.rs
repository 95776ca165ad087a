//! The burn graph executor against tract on the zoo models and on hand-built graphs:
//! forward values, gradients, BatchNorm statistics, freezing, resizing and export.

mod common;

use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Device, Tensor, TensorData};
use nvtl_core::model::builder::{attr_float, attr_int, attr_ints, attr_str};
use nvtl_core::model::OnnxBuilder;
use nvtl_trainer::graph::{GraphError, GraphModule, Mode};
use tract_onnx::pb::ModelProto;

fn flex() -> Device {
    Device::flex()
}

/// Burn and tract on one zoo model and dog.jpg; returns burn's outputs and prints the diffs.
fn compare_zoo_model(name: &str, max_rel: f32) {
    let bundle = common::bundle(name);
    let started = Instant::now();
    let module = GraphModule::from_onnx(&bundle.onnx, &flex()).expect("loads");
    println!(
        "{name}: GraphModule::from_onnx {:.0} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
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

/// Deterministic values in [-1, 1).
fn values(seed: u64, n: usize) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn tensor4(data: Vec<f32>, dims: [usize; 4], device: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(data, dims), device)
}

fn host(t: &TensorData) -> Vec<f32> {
    t.try_to_vec::<f32>().expect("f32 data")
}

#[test]
fn centernet_exports_and_runs_smaller_in_tract_and_burn() {
    let bundle = common::bundle("centernet_mobilenetv3_coco");
    let mut module = GraphModule::from_onnx(&bundle.onnx, &flex()).unwrap();

    // Round trip at the declared size.
    let input = common::preprocessed(&bundle, &common::asset("dog.jpg"), 512, 512);
    let burn = module
        .forward(
            tensor4(input.clone(), [1, 512, 512, 3], &flex()),
            Mode::Eval,
        )
        .unwrap();
    let exported = module.to_proto().unwrap();
    let tract = common::tract_run(&exported, &[1, 512, 512, 3], &input);
    for (value, (shape, reference)) in burn.outputs.iter().zip(&tract) {
        assert_eq!(&value.dims(), shape);
        let (abs, rel) = common::diff(&value.to_f32_vec(), reference);
        println!("exported centernet {shape:?}: max abs diff {abs:.3e}, relative {rel:.3e}");
        assert!(rel < 1e-4);
    }

    // A 256x320 (HxW) input: the constant Resize sizes must follow.
    module.set_input_dims(&[1, 256, 320, 3]).unwrap();
    let small = common::preprocessed(&bundle, &common::asset("dog.jpg"), 320, 256);
    let burn = module
        .forward(
            tensor4(small.clone(), [1, 256, 320, 3], &flex()),
            Mode::Eval,
        )
        .unwrap();
    assert_eq!(burn.outputs[0].dims(), [1, 80, 64, 80]);
    assert_eq!(burn.outputs[1].dims(), [1, 4, 64, 80]);
    let dir = common::temp_dir("centernet-small");
    let path = dir.join("centernet_256x320.onnx");
    module.write_onnx(&path).unwrap();
    let model = nvtl_core::model::read_onnx(&path).unwrap();
    assert_eq!(
        model.inputs[0]
            .dims
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>(),
        ["1", "256", "320", "3"]
    );
    assert_eq!(
        model.outputs[0]
            .dims
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>(),
        ["1", "80", "64", "80"]
    );
    let tract = common::tract_run(&model.proto, &[1, 256, 320, 3], &small);
    for (value, (shape, reference)) in burn.outputs.iter().zip(&tract) {
        assert_eq!(&value.dims(), shape);
        let (abs, rel) = common::diff(&value.to_f32_vec(), reference);
        println!("centernet 256x320 {shape:?}: max abs diff {abs:.3e}, relative {rel:.3e}");
        assert!(rel < 1e-4);
    }
    // The file reloads into burn with the same outputs.
    let reloaded = GraphModule::from_onnx(&path, &flex()).unwrap();
    let again = reloaded
        .forward(tensor4(small, [1, 256, 320, 3], &flex()), Mode::Eval)
        .unwrap();
    let (abs, _) = common::diff(
        &again.outputs[0].to_f32_vec(),
        &burn.outputs[0].to_f32_vec(),
    );
    assert_eq!(abs, 0.0);
}

#[test]
fn unsupported_op_is_named_at_load() {
    let mut b = OnnxBuilder::default();
    b.input("x", &[1, 3, 8, 8]);
    b.node("Relu", "act", &["x"], &["r"], vec![]);
    b.node(
        "NonMaxSuppression",
        "suppress_boxes",
        &["r"],
        &["y"],
        vec![],
    );
    b.output("y", &[1, 3, 8, 8]);
    let err = GraphModule::from_proto(&b.finish("test"), &flex()).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, GraphError::UnsupportedOp { .. }), "{message}");
    assert!(
        message.contains("NonMaxSuppression") && message.contains("suppress_boxes"),
        "{message}"
    );

    let mut b = OnnxBuilder::default();
    b.input("x", &[1, 3, 8, 8]);
    b.init_i64("sizes", &[4], vec![1, 3, 16, 16]);
    b.node(
        "Resize",
        "up",
        &["x", "", "", "sizes"],
        &["y"],
        vec![attr_str("mode", "cubic")],
    );
    b.output("y", &[1, 3, 16, 16]);
    let message = GraphModule::from_proto(&b.finish("test"), &flex())
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("up (Resize)") && message.contains("cubic"),
        "{message}"
    );
}

/// `features` -> GlobalAveragePool -> Flatten -> Gemm(fc.w, fc.b, transB) -> `y`.
fn pooled_linear_head(b: &mut OnnxBuilder, features: &str) {
    b.node("GlobalAveragePool", "gap", &[features], &["g"], vec![]);
    b.node("Flatten", "flat", &["g"], &["f"], vec![]);
    b.node(
        "Gemm",
        "fc",
        &["f", "fc.w", "fc.b"],
        &["y"],
        vec![attr_int("transB", 1)],
    );
}

/// x -> Conv -> BatchNormalization -> Relu -> {Resize linear asymmetric x2, Resize nearest
/// half_pixel to 12x12} -> Concat -> GlobalAveragePool -> Flatten -> Gemm(transB) -> y [N, 4].
fn small_net(batch: i64) -> ModelProto {
    let mut b = OnnxBuilder::default();
    b.input("x", &[batch, 2, 6, 6]);
    b.init_f32(
        "conv.w",
        &[3, 2, 3, 3],
        values(1, 54).iter().map(|v| v * 0.5).collect(),
    );
    b.init_f32("conv.b", &[3], vec![0.1, 0.2, 0.3]);
    b.init_f32("bn.scale", &[3], vec![1.2, 0.8, 1.0]);
    b.init_f32("bn.bias", &[3], vec![0.3, 0.2, 0.4]);
    b.init_f32("bn.mean", &[3], vec![0.05, -0.1, 0.0]);
    b.init_f32("bn.var", &[3], vec![0.9, 1.1, 0.5]);
    b.init_f32("up.scales", &[4], vec![1.0, 1.0, 2.0, 2.0]);
    b.init_i64("near.sizes", &[4], vec![batch, 3, 12, 12]);
    b.init_f32("fc.w", &[4, 6], values(2, 24));
    b.init_f32("fc.b", &[4], vec![0.0, 0.1, -0.1, 0.2]);
    b.node(
        "Conv",
        "conv",
        &["x", "conv.w", "conv.b"],
        &["c"],
        vec![attr_ints("pads", &[1, 1, 1, 1])],
    );
    b.node(
        "BatchNormalization",
        "bn",
        &["c", "bn.scale", "bn.bias", "bn.mean", "bn.var"],
        &["n"],
        vec![attr_float("momentum", 0.8)],
    );
    b.node("Relu", "relu", &["n"], &["r"], vec![]);
    b.node(
        "Resize",
        "up",
        &["r", "", "up.scales"],
        &["u"],
        vec![
            attr_str("mode", "linear"),
            attr_str("coordinate_transformation_mode", "asymmetric"),
        ],
    );
    b.node(
        "Resize",
        "near",
        &["r", "", "", "near.sizes"],
        &["v"],
        vec![
            attr_str("mode", "nearest"),
            attr_str("coordinate_transformation_mode", "half_pixel"),
        ],
    );
    b.node(
        "Concat",
        "cat",
        &["u", "v"],
        &["k"],
        vec![attr_int("axis", 1)],
    );
    pooled_linear_head(&mut b, "k");
    b.output("y", &[batch, 4]);
    b.finish("test")
}

fn small_net_loss(module: &GraphModule, x: &Tensor<4>, mode: Mode) -> Tensor<1> {
    let y = module
        .forward(x.clone(), mode)
        .unwrap()
        .outputs
        .remove(0)
        .into_rank::<2>()
        .unwrap();
    let [n, k] = y.dims();
    let weights = Tensor::<2>::from_data(TensorData::new(values(9, n * k), [n, k]), &y.device());
    (y * weights).sum()
}

#[test]
fn gradients_match_central_differences() {
    let device = flex().autodiff();
    for (mode, batch) in [(Mode::Eval, 1usize), (Mode::Train, 2)] {
        let module = GraphModule::from_proto(&small_net(batch as i64), &device).unwrap();
        let x = tensor4(values(3, batch * 72), [batch, 2, 6, 6], &device);
        let grads = small_net_loss(&module, &x, mode).backward();
        let eps = 2e-3f32;
        for (name, indices) in [
            ("conv.w", vec![0usize, 17, 40]),
            ("conv.b", vec![1]),
            ("bn.scale", vec![0, 2]),
            ("bn.bias", vec![1]),
            ("fc.w", vec![5, 23]),
            ("fc.b", vec![3]),
        ] {
            let grad = module
                .param(name)
                .unwrap()
                .val()
                .grad(&grads)
                .expect("gradient");
            let grad = host(&grad.into_data());
            let original = module.initializer(name).unwrap();
            let dims = original.shape().to_vec();
            for i in indices {
                let loss_at = |delta: f32| {
                    let mut values = host(&original);
                    values[i] += delta;
                    let mut probe = module.clone();
                    probe
                        .set_initializer(name, TensorData::new(values, dims.clone()))
                        .unwrap();
                    small_net_loss(&probe, &x, mode).into_scalar::<f32>()
                };
                let numeric = (loss_at(eps) - loss_at(-eps)) / (2.0 * eps);
                println!("{mode:?} d loss / d {name}[{i}]: autodiff {:.5}, central difference {numeric:.5}", grad[i]);
                assert!(
                    (grad[i] - numeric).abs() <= 5e-4 + 2e-3 * numeric.abs(),
                    "{mode:?} {name}[{i}]: autodiff {} vs {numeric}",
                    grad[i]
                );
            }
        }
        // Running statistics are not trained.
        assert!(module
            .param("bn.mean")
            .unwrap()
            .val()
            .grad(&grads)
            .is_none());
    }
}

#[test]
fn batch_norm_uses_batch_statistics_in_train_and_updates_running_ones() {
    let mut b = OnnxBuilder::default();
    b.input("x", &[2, 3, 4, 4]);
    b.init_f32("s", &[3], vec![2.0, 0.5, 1.0]);
    b.init_f32("b", &[3], vec![1.0, -1.0, 0.0]);
    b.init_f32("m", &[3], vec![0.5, 0.0, -0.5]);
    b.init_f32("v", &[3], vec![4.0, 1.0, 0.25]);
    b.node(
        "BatchNormalization",
        "bn",
        &["x", "s", "b", "m", "v"],
        &["y"],
        vec![attr_float("momentum", 0.8)],
    );
    b.output("y", &[2, 3, 4, 4]);
    let mut module = GraphModule::from_proto(&b.finish("test"), &flex()).unwrap();
    let x: Vec<f32> = values(4, 96).iter().map(|v| v * 3.0 + 1.0).collect();
    let input = tensor4(x.clone(), [2, 3, 4, 4], &flex());
    let channel = |c: usize| -> Vec<f32> {
        (0..2)
            .flat_map(|n| x[(n * 3 + c) * 16..(n * 3 + c + 1) * 16].to_vec())
            .collect()
    };
    let stats = |v: &[f32]| {
        let mean = v.iter().sum::<f32>() / v.len() as f32;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / v.len() as f32;
        (mean, var)
    };

    let eval = module.forward(input.clone(), Mode::Eval).unwrap();
    assert!(eval.batch_norm.is_empty());
    let y = eval.outputs[0].to_f32_vec();
    let expected = (x[16] - 0.0) / (1.0f32 + 1e-5).sqrt() * 0.5 - 1.0;
    assert!(
        (y[16] - expected).abs() < 1e-5,
        "eval uses running statistics"
    );

    let train = module.forward(input.clone(), Mode::Train).unwrap();
    let y = train.outputs[0].to_f32_vec();
    for (c, (scale, bias)) in [(2.0f32, 1.0f32), (0.5, -1.0), (1.0, 0.0)]
        .into_iter()
        .enumerate()
    {
        let out: Vec<f32> = (0..2)
            .flat_map(|n| y[(n * 3 + c) * 16..(n * 3 + c + 1) * 16].to_vec())
            .collect();
        let (mean, var) = stats(&out);
        assert!((mean - bias).abs() < 1e-4, "channel {c}: train mean {mean}");
        assert!(
            (var - scale * scale).abs() < 1e-3 * scale * scale,
            "channel {c}: train var {var}"
        );
    }
    assert_eq!(train.batch_norm.len(), 1);
    assert_eq!(train.batch_norm[0].node, "bn");
    module.apply_batch_norm(train.batch_norm);
    let running_mean = host(&module.initializer("m").unwrap());
    let running_var = host(&module.initializer("v").unwrap());
    for (c, (m0, v0)) in [(0.5f32, 4.0f32), (0.0, 1.0), (-0.5, 0.25)]
        .into_iter()
        .enumerate()
    {
        let (mean, var) = stats(&channel(c));
        assert!((running_mean[c] - (0.8 * m0 + 0.2 * mean)).abs() < 1e-5);
        assert!((running_var[c] - (0.8 * v0 + 0.2 * var)).abs() < 1e-4);
    }
}

#[test]
fn frozen_parameters_get_no_gradient_and_do_not_move() {
    let device = flex().autodiff();
    let mut module = GraphModule::from_proto(&small_net(1), &device).unwrap();
    let total = module.param_count();
    assert_eq!(total, 54 + 3 + 3 + 3 + 24 + 4);
    assert_eq!(
        module
            .freeze_matching(&["conv".to_string(), "fc.?".to_string()])
            .unwrap(),
        4
    );
    assert_eq!(module.trainable_param_count(), 3 + 3);
    assert!(matches!(
        module.freeze_matching(&["nothing*".to_string()]),
        Err(GraphError::NoMatch { .. })
    ));

    let x = tensor4(values(3, 72), [1, 2, 6, 6], &device);
    let grads = small_net_loss(&module, &x, Mode::Train).backward();
    assert!(module.param("conv.w").unwrap().val().grad(&grads).is_none());
    assert!(module
        .param("bn.scale")
        .unwrap()
        .val()
        .grad(&grads)
        .is_some());
    let before: Vec<Vec<f32>> = ["conv.w", "fc.w", "bn.scale"]
        .iter()
        .map(|n| host(&module.initializer(n).unwrap()))
        .collect();
    let grads = GradientsParams::from_grads(grads, &module);
    let mut optim = SgdConfig::new().init();
    let module = optim.step(0.5, module, grads);
    let after: Vec<Vec<f32>> = ["conv.w", "fc.w", "bn.scale"]
        .iter()
        .map(|n| host(&module.initializer(n).unwrap()))
        .collect();
    assert_eq!(before[0], after[0], "frozen conv weight moved");
    assert_eq!(before[1], after[1], "frozen fc weight moved");
    assert_ne!(before[2], after[2], "trainable BN scale did not move");

    let mut module = GraphModule::from_proto(&small_net(1), &device).unwrap();
    assert_eq!(module.freeze_depth(1), 2);
    assert_eq!(module.is_frozen("conv.w"), Some(true));
    assert_eq!(module.is_frozen("bn.scale"), Some(false));
    assert_eq!(module.trainable_param_count(), total - 57);
    module.unfreeze_all();
    assert_eq!(module.trainable_param_count(), total);

    // The validation copy (no autodiff) runs and exports on the plain device.
    let valid = module.valid();
    let x = values(3, 72);
    let out = valid
        .forward(tensor4(x.clone(), [1, 2, 6, 6], &flex()), Mode::Eval)
        .unwrap();
    let tract = common::tract_run(&valid.to_proto().unwrap(), &[1, 2, 6, 6], &x);
    assert!(common::diff(&out.outputs[0].to_f32_vec(), &tract[0].1).0 < 1e-5);
}

#[test]
fn set_initializer_with_a_new_shape_runs_and_exports() {
    let mut module = GraphModule::from_proto(&small_net(1), &flex()).unwrap();
    let mut weight = host(&module.initializer("fc.w").unwrap());
    weight.extend(values(7, 6));
    module
        .set_initializer("fc.w", TensorData::new(weight, [5, 6]))
        .unwrap();
    module
        .set_initializer(
            "fc.b",
            TensorData::new(vec![0.0f32, 0.1, -0.1, 0.2, 0.5], [5]),
        )
        .unwrap();
    let x = values(3, 72);
    let out = module
        .forward(tensor4(x.clone(), [1, 2, 6, 6], &flex()), Mode::Eval)
        .unwrap();
    assert_eq!(out.outputs[0].dims(), [1, 5]);
    let proto = module.to_proto().unwrap();
    let tract = common::tract_run(&proto, &[1, 2, 6, 6], &x);
    assert_eq!(tract[0].0, [1, 5]);
    let (abs, _) = common::diff(&out.outputs[0].to_f32_vec(), &tract[0].1);
    assert!(abs < 1e-5, "burn and tract differ by {abs}");
    assert!(module
        .set_initializer("no.such", TensorData::new(vec![0.0f32], [1]))
        .is_err());
}

/// Burn (eval) and tract on the same hand-built model and input; asserts equal outputs.
fn assert_matches_tract(label: &str, proto: &ModelProto, dims: [usize; 4], input: &[f32]) {
    let module = GraphModule::from_proto(proto, &flex()).unwrap_or_else(|e| panic!("{label}: {e}"));
    let burn = module
        .forward(tensor4(input.to_vec(), dims, &flex()), Mode::Eval)
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    let tract = common::tract_run(proto, &dims, input);
    assert_eq!(burn.outputs.len(), tract.len(), "{label}");
    for (i, (value, (shape, reference))) in burn.outputs.iter().zip(&tract).enumerate() {
        assert_eq!(&value.dims(), shape, "{label}: output {i} shape");
        let (abs, _) = common::diff(&value.to_f32_vec(), reference);
        if abs >= 1e-5 {
            println!(
                "{label}: burn {:?}\n tract {:?}",
                &value.to_f32_vec()[..12],
                &reference[..12]
            );
        }
        assert!(
            abs < 1e-5,
            "{label}: output {i} differs from tract by {abs}"
        );
    }
}

#[test]
fn resize_matches_tract_in_every_mode() {
    let input = values(5, 2 * 5 * 7);
    let mut cases = 0;
    for (mode, nearest_modes, coordinate_modes) in [
        (
            "linear",
            vec!["round_prefer_floor"],
            vec![
                "half_pixel",
                "pytorch_half_pixel",
                "align_corners",
                "asymmetric",
            ],
        ),
        (
            "nearest",
            vec!["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"],
            vec![
                "half_pixel",
                "pytorch_half_pixel",
                "align_corners",
                "asymmetric",
                "tf_half_pixel_for_nn",
            ],
        ),
    ] {
        for nearest in &nearest_modes {
            for coordinates in &coordinate_modes {
                for (target, by_scales) in [([8i64, 11], false), ([3, 4], false), ([8, 10], true)] {
                    let mut b = OnnxBuilder::default();
                    b.input("x", &[1, 2, 5, 7]);
                    let inputs: Vec<&str> = if by_scales {
                        b.init_f32("scales", &[4], vec![1.0, 1.0, 1.6, 1.5]);
                        vec!["x", "", "scales"]
                    } else {
                        b.init_i64("sizes", &[4], vec![1, 2, target[0], target[1]]);
                        vec!["x", "", "", "sizes"]
                    };
                    b.node(
                        "Resize",
                        "resize",
                        &inputs,
                        &["y"],
                        vec![
                            attr_str("mode", mode),
                            attr_str("coordinate_transformation_mode", coordinates),
                            attr_str("nearest_mode", nearest),
                        ],
                    );
                    b.output("y", &[1, 2, target[0], target[1]]);
                    let label = format!(
                        "{mode} {coordinates} {nearest} to {target:?} (scales: {by_scales})"
                    );
                    assert_matches_tract(&label, &b.finish("test"), [1, 2, 5, 7], &input);
                    cases += 1;
                }
            }
        }
    }
    println!("{cases} Resize configurations equal tract");
}

#[test]
fn operator_mix_matches_tract() {
    let mut b = OnnxBuilder::default();
    b.input("x", &[1, 3, 9, 11]);
    b.init_i64("pads", &[8], vec![0, 0, 1, 2, 0, 0, 1, 0]);
    b.init_f32("pad_value", &[], vec![0.5]);
    b.init_f32("w1", &[6, 3, 3, 3], values(11, 162));
    b.init_f32("b1", &[6], values(12, 6));
    b.init_f32("w2", &[6, 1, 3, 3], values(13, 54));
    b.init_f32("slope", &[6, 1, 1], values(14, 6));
    b.init_f32("lo", &[], vec![-0.6]);
    b.init_f32("hi", &[], vec![0.7]);
    b.init_i64("gather_index", &[], vec![0]);
    b.init_i64("unsqueeze_axes", &[1], vec![0]);
    b.init_i64("tail_shape", &[2], vec![-1, 8]);
    b.init_i64("starts", &[2], vec![7, 0]);
    b.init_i64("ends", &[2], vec![-100, 12]);
    b.init_i64("axes", &[2], vec![1, 2]);
    b.init_i64("steps", &[2], vec![-2, 3]);
    b.init_i64("split", &[2], vec![5, 7]);
    b.init_f32("mw", &[4, 6], values(15, 24));
    b.init_i64("sum_axes", &[1], vec![2]);
    b.init_f32("quarter", &[], vec![0.25]);
    b.node("Pad", "pad", &["x", "pads", "pad_value"], &["p"], vec![]);
    b.node(
        "Conv",
        "conv_same",
        &["p", "w1", "b1"],
        &["c1"],
        vec![
            attr_str("auto_pad", "SAME_UPPER"),
            attr_ints("strides", &[2, 2]),
        ],
    );
    b.node("HardSwish", "hswish", &["c1"], &["h"], vec![]);
    b.node(
        "Conv",
        "conv_depthwise_dilated",
        &["h", "w2"],
        &["c2"],
        vec![
            attr_int("group", 6),
            attr_ints("dilations", &[2, 2]),
            attr_ints("pads", &[2, 2, 2, 2]),
        ],
    );
    b.node("PRelu", "prelu", &["c2", "slope"], &["pr"], vec![]);
    b.node(
        "LeakyRelu",
        "leaky",
        &["pr"],
        &["lr"],
        vec![attr_float("alpha", 0.1)],
    );
    b.node(
        "HardSigmoid",
        "hsig",
        &["lr"],
        &["hs"],
        vec![attr_float("alpha", 0.3), attr_float("beta", 0.4)],
    );
    b.node("Add", "add", &["lr", "hs"], &["a"], vec![]);
    b.node("Clip", "clip", &["a", "lo", "hi"], &["cl"], vec![]);
    b.node(
        "MaxPool",
        "maxpool_ceil",
        &["cl"],
        &["mp"],
        vec![
            attr_ints("kernel_shape", &[3, 3]),
            attr_ints("strides", &[2, 2]),
            attr_ints("pads", &[1, 1, 1, 1]),
            attr_int("ceil_mode", 1),
        ],
    );
    b.node(
        "AveragePool",
        "avgpool",
        &["cl"],
        &["ap"],
        vec![
            attr_ints("kernel_shape", &[2, 2]),
            attr_ints("strides", &[1, 1]),
            attr_ints("pads", &[1, 1, 1, 1]),
            attr_int("count_include_pad", 1),
        ],
    );
    b.node("GlobalAveragePool", "gap", &["ap"], &["gp"], vec![]);
    b.node("Mul", "mul", &["mp", "gp"], &["m"], vec![]);
    b.node("Shape", "shape", &["m"], &["s"], vec![]);
    b.node("Gather", "batch", &["s", "gather_index"], &["n"], vec![]);
    b.node(
        "Unsqueeze",
        "batch1",
        &["n", "unsqueeze_axes"],
        &["n1"],
        vec![],
    );
    b.node(
        "Concat",
        "target",
        &["n1", "tail_shape"],
        &["t"],
        vec![attr_int("axis", 0)],
    );
    b.node("Reshape", "reshape", &["m", "t"], &["r"], vec![]);
    b.node(
        "Transpose",
        "transpose",
        &["r"],
        &["tr"],
        vec![attr_ints("perm", &[0, 2, 1])],
    );
    b.node(
        "Slice",
        "slice",
        &["tr", "starts", "ends", "axes", "steps"],
        &["sl"],
        vec![],
    );
    b.node(
        "Split",
        "split",
        &["tr", "split"],
        &["sa", "sb"],
        vec![attr_int("axis", 2)],
    );
    b.node(
        "Softmax",
        "softmax",
        &["sb"],
        &["sm"],
        vec![attr_int("axis", 1)],
    );
    b.node("MatMul", "matmul", &["sl", "mw"], &["mm"], vec![]);
    b.node(
        "ReduceSum",
        "reduce_sum",
        &["sm", "sum_axes"],
        &["rs"],
        vec![attr_int("keepdims", 0)],
    );
    b.node(
        "ReduceMean",
        "reduce_mean",
        &["sa"],
        &["rm"],
        vec![attr_ints("axes", &[1])],
    );
    b.node("Sub", "sub", &["mm", "quarter"], &["sub"], vec![]);
    b.node("Sigmoid", "sigmoid", &["mm"], &["sg"], vec![]);
    b.node("Div", "div", &["sub", "sg"], &["y"], vec![]);
    b.node(
        "Sub",
        "constant_minus",
        &["quarter", "rs"],
        &["rsub"],
        vec![],
    );
    b.node(
        "Div",
        "constant_over",
        &["quarter", "sg"],
        &["rdiv"],
        vec![],
    );
    b.output("y", &[1, 4, 6]);
    b.output("rsub", &[1, 8]);
    b.output("rdiv", &[1, 4, 6]);
    b.output("rs", &[1, 8]);
    b.output("rm", &[1, 1, 5]);
    b.output("mp", &[1, 6, 4, 4]);
    let proto = b.finish("test");
    assert_matches_tract("operator mix", &proto, [1, 3, 9, 11], &values(16, 297));
}

#[test]
fn centernet_trains_a_step_with_a_frozen_backbone() {
    let bundle = common::bundle("centernet_mobilenetv3_coco");
    let device = flex().autodiff();
    let mut module = GraphModule::from_onnx(&bundle.onnx, &device).unwrap();
    module.set_input_dims(&[2, 256, 320, 3]).unwrap();
    let frozen = module
        .freeze_matching(&["tower_0/MobilenetV3/*".to_string()])
        .unwrap();
    println!(
        "centernet: {frozen} backbone parameters frozen, {} of {} values trainable",
        module.trainable_param_count(),
        module.param_count()
    );
    assert!(frozen > 0 && module.trainable_param_count() < module.param_count());

    // The conv feeding the heat map, found through the graph: heatmap <- Identity <- Sigmoid <- Conv.
    let mut node = module.producer("heatmap").unwrap();
    while node.op != "Conv" {
        node = module.producer(&node.inputs[0]).unwrap();
    }
    let head_weight = node.inputs[1].clone();
    let backbone_weight = module
        .nodes()
        .iter()
        .find(|n| n.op == "Conv" && n.name.starts_with("tower_0/MobilenetV3/"))
        .map(|n| n.inputs[1].clone())
        .unwrap();
    assert_eq!(module.is_frozen(&backbone_weight), Some(true));
    assert_eq!(module.is_frozen(&head_weight), Some(false));

    let mut batch = common::preprocessed(&bundle, &common::asset("dog.jpg"), 320, 256);
    batch.extend(common::preprocessed(
        &bundle,
        &common::asset("person.jpg"),
        320,
        256,
    ));
    let input = tensor4(batch, [2, 256, 320, 3], &device);
    let before_head = host(&module.initializer(&head_weight).unwrap());
    let before_backbone = host(&module.initializer(&backbone_weight).unwrap());

    let started = Instant::now();
    let forward = module.forward(input, Mode::Train).unwrap();
    let heat = forward.outputs[0].clone().into_rank::<4>().unwrap();
    assert_eq!(heat.dims(), [2, 80, 64, 80]);
    let loss = heat.mean();
    let grads = loss.backward();
    let grads = GradientsParams::from_grads(grads, &module);
    let mut optim = SgdConfig::new().init();
    let module = optim.step(1.0, module, grads);
    println!(
        "centernet train step (2x256x320, forward + backward + SGD): {:.0} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    assert_eq!(
        host(&module.initializer(&backbone_weight).unwrap()),
        before_backbone
    );
    assert_ne!(
        host(&module.initializer(&head_weight).unwrap()),
        before_head
    );
}

#[test]
fn dropout_drops_only_in_train_and_inputs_are_checked() {
    let mut b = OnnxBuilder::default();
    b.input("x", &[1, 4, 16, 16]);
    b.init_f32("ratio", &[], vec![0.25]);
    b.node("Dropout", "drop", &["x", "ratio"], &["y"], vec![]);
    b.output("y", &[1, 4, 16, 16]);
    let module = GraphModule::from_proto(&b.finish("test"), &flex()).unwrap();
    let x: Vec<f32> = values(8, 1024).iter().map(|v| v + 2.0).collect();
    let input = tensor4(x.clone(), [1, 4, 16, 16], &flex());
    let eval = module.forward(input.clone(), Mode::Eval).unwrap().outputs[0].to_f32_vec();
    assert_eq!(eval, x);
    let train = module.forward(input, Mode::Train).unwrap().outputs[0].to_f32_vec();
    let dropped = train.iter().filter(|&&v| v == 0.0).count() as f32 / train.len() as f32;
    assert!((dropped - 0.25).abs() < 0.06, "dropped {dropped}");
    for (y, x) in train.iter().zip(&x).filter(|(y, _)| **y != 0.0) {
        assert!((y - x / 0.75).abs() < 1e-5);
    }
    // A larger batch than declared is fine where the graph allows it.
    let three = tensor4(values(9, 3 * 1024), [3, 4, 16, 16], &flex());
    let out = module.forward(three, Mode::Eval).unwrap();
    assert_eq!(out.outputs[0].dims(), [3, 4, 16, 16]);

    let module = GraphModule::from_proto(&small_net(1), &flex()).unwrap();
    let err = module
        .forward(
            tensor4(vec![0.0; 3 * 36], [1, 3, 6, 6], &flex()),
            Mode::Eval,
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("'x'") && err.contains("[1, 3, 6, 6]"), "{err}");
    // Resize with constant sizes was turned into scales at load: the batch is free.
    let out = module
        .forward(
            tensor4(values(3, 4 * 72), [4, 2, 6, 6], &flex()),
            Mode::Eval,
        )
        .unwrap();
    assert_eq!(out.outputs[0].dims(), [4, 4]);
}

#[test]
fn opset_11_semantics_match_tract() {
    // Softmax over the flattened trailing axes, Squeeze/Split/ReduceSum axes as attributes,
    // Gemm with transA/alpha/beta, Clip bounds as inputs, constant Pad as attribute-free input.
    let mut b = OnnxBuilder::default();
    b.input("x", &[1, 2, 3, 4]);
    b.init_f32("gemm.a", &[6, 3], values(21, 18));
    b.init_f32("gemm.c", &[1, 4], values(22, 4));
    b.init_i64("shape2", &[2], vec![6, 4]);
    b.node(
        "Softmax",
        "softmax_flat",
        &["x"],
        &["sm"],
        vec![attr_int("axis", 2)],
    );
    b.node(
        "Split",
        "split",
        &["x"],
        &["xa", "xb"],
        vec![attr_int("axis", 3), attr_ints("split", &[1, 3])],
    );
    b.node(
        "Squeeze",
        "squeeze",
        &["xa"],
        &["sq"],
        vec![attr_ints("axes", &[0, 3])],
    );
    b.node(
        "ReduceSum",
        "reduce",
        &["xb"],
        &["rs"],
        vec![attr_ints("axes", &[1, 3]), attr_int("keepdims", 1)],
    );
    b.node("Reshape", "flat", &["x", "shape2"], &["x2"], vec![]);
    b.node(
        "Gemm",
        "gemm",
        &["gemm.a", "x2", "gemm.c"],
        &["g"],
        vec![
            attr_int("transA", 1),
            attr_float("alpha", 0.5),
            attr_float("beta", 2.0),
        ],
    );
    b.output("sm", &[1, 2, 3, 4]);
    b.output("sq", &[2, 3]);
    b.output("rs", &[1, 1, 3, 1]);
    b.output("g", &[3, 4]);
    let mut proto = b.finish("test");
    proto.opset_import[0].version = 11;
    assert_matches_tract("opset 11", &proto, [1, 2, 3, 4], &values(23, 24));

    // Upsample (opset 9; tract has no Upsample): nearest and linear with scales as an input,
    // against the ONNX definition: source coordinate = output coordinate / scale (asymmetric),
    // nearest takes its floor, linear interpolates with the edge repeated.
    let x = values(24, 24);
    let at = |c: usize, r: usize, k: usize| x[c * 12 + r * 4 + k];
    let lerp_axis = |s: f32, len: usize| {
        let lo = s.floor() as usize;
        (lo.min(len - 1), (lo + 1).min(len - 1), s - s.floor())
    };
    for mode in ["nearest", "linear"] {
        let mut b = OnnxBuilder::default();
        b.input("x", &[1, 2, 3, 4]);
        b.init_f32("scales", &[4], vec![1.0, 1.0, 2.0, 3.0]);
        b.node(
            "Upsample",
            "upsample",
            &["x", "scales"],
            &["y"],
            vec![attr_str("mode", mode)],
        );
        b.output("y", &[1, 2, 6, 12]);
        let mut proto = b.finish("test");
        proto.opset_import[0].version = 9;
        let module = GraphModule::from_proto(&proto, &flex()).unwrap();
        let y = module
            .forward(tensor4(x.clone(), [1, 2, 3, 4], &flex()), Mode::Eval)
            .unwrap();
        assert_eq!(y.outputs[0].dims(), [1, 2, 6, 12]);
        let y = y.outputs[0].to_f32_vec();
        for c in 0..2 {
            for i in 0..6 {
                for j in 0..12 {
                    let (si, sj) = (i as f32 / 2.0, j as f32 / 3.0);
                    let expected = if mode == "nearest" {
                        at(c, si.floor() as usize, sj.floor() as usize)
                    } else {
                        let (r0, r1, wr) = lerp_axis(si, 3);
                        let (k0, k1, wk) = lerp_axis(sj, 4);
                        let row = |r| at(c, r, k0) * (1.0 - wk) + at(c, r, k1) * wk;
                        row(r0) * (1.0 - wr) + row(r1) * wr
                    };
                    let got = y[c * 72 + i * 12 + j];
                    assert!(
                        (got - expected).abs() < 1e-6,
                        "Upsample {mode} at {c},{i},{j}: {got} vs {expected}"
                    );
                }
            }
        }
    }
}

#[test]
fn bad_graphs_are_typed_errors_naming_the_node() {
    let run = |build: &dyn Fn(&mut OnnxBuilder)| -> String {
        let mut b = OnnxBuilder::default();
        b.input("x", &[1, 3, 4, 4]);
        build(&mut b);
        b.output("y", &[1, 3, 4, 4]);
        match GraphModule::from_proto(&b.finish("test"), &flex()) {
            Err(e) => e.to_string(),
            Ok(module) => module
                .forward(tensor4(vec![0.5; 48], [1, 3, 4, 4], &flex()), Mode::Eval)
                .map(|_| "no error".to_string())
                .unwrap_or_else(|e| e.to_string()),
        }
    };
    let conv = run(&|b| {
        b.init_f32("w", &[4, 5, 3, 3], vec![0.1; 180]);
        b.node("Conv", "conv_in", &["x", "w"], &["y"], vec![]);
    });
    assert!(
        conv.contains("conv_in (Conv)") && conv.contains("do not agree"),
        "{conv}"
    );
    let add = run(&|b| {
        b.init_f32("bias", &[5], vec![0.1; 5]);
        b.node("Add", "add_bias", &["x", "bias"], &["y"], vec![]);
    });
    assert!(
        add.contains("add_bias (Add)") && add.contains("do not broadcast"),
        "{add}"
    );
    let reshape = run(&|b| {
        b.init_i64("shape", &[2], vec![7, -1]);
        b.node("Reshape", "to_rows", &["x", "shape"], &["y"], vec![]);
    });
    assert!(reshape.contains("to_rows (Reshape)"), "{reshape}");
    let missing = run(&|b| {
        b.node("Relu", "act", &["not_there"], &["y"], vec![]);
    });
    assert!(
        missing.contains("act (Relu)") && missing.contains("not_there"),
        "{missing}"
    );
    let pads = run(&|b| {
        b.init_f32("w", &[3, 3, 3, 3], vec![0.1; 81]);
        b.node(
            "Conv",
            "conv_pads",
            &["x", "w"],
            &["y"],
            vec![attr_ints("pads", &[1, 1])],
        );
    });
    assert!(
        pads.contains("conv_pads (Conv)") && pads.contains("pads"),
        "{pads}"
    );
}

/// x [N, 2, 6, 6] -> Conv -> Relu -> GlobalAveragePool -> Flatten -> Gemm -> y [N, 3]: no
/// BatchNormalization, so every image's loss depends on that image alone.
fn per_image_net() -> ModelProto {
    let mut b = OnnxBuilder::default();
    b.input("x", &[-1, 2, 6, 6]);
    b.init_f32("conv.w", &[4, 2, 3, 3], values(11, 72));
    b.init_f32("conv.b", &[4], vec![0.1, -0.2, 0.05, 0.0]);
    b.init_f32("fc.w", &[3, 4], values(12, 12));
    b.init_f32("fc.b", &[3], vec![0.0, 0.1, -0.1]);
    b.node(
        "Conv",
        "conv",
        &["x", "conv.w", "conv.b"],
        &["c"],
        vec![attr_ints("pads", &[1, 1, 1, 1])],
    );
    b.node("Relu", "relu", &["c"], &["r"], vec![]);
    pooled_linear_head(&mut b, "r");
    b.output("y", &[-1, 3]);
    b.finish("test")
}

/// A 5-image batch for the [`per_image_net`] / [`small_net`] input.
fn five_images() -> nvtl_trainer::data::Batch {
    nvtl_trainer::data::Batch {
        input: values(21, 5 * 72).iter().map(|v| v * 2.0 + 0.5).collect(),
        shape: [5, 2, 6, 6],
        objects: vec![Vec::new(); 5],
        labels: vec![None; 5],
        indices: vec![4, 0, 3, 1, 2],
    }
}

/// The mean over the shard's images of a fixed per-image weighting of the outputs (weights
/// drawn from each image's dataset index, so shards see the same weights as the whole batch).
fn mean_weighted_loss(
    model: &GraphModule,
    shard: &nvtl_trainer::data::Batch,
    device: &Device,
) -> Result<nvtl_trainer::devices::ShardLoss, GraphError> {
    let x = tensor4(shard.input.clone(), shard.shape, device);
    let forward = model.forward(x, Mode::Train)?;
    let y = forward.outputs[0].clone().into_rank::<2>()?;
    let [n, k] = y.dims();
    let weights: Vec<f32> = shard
        .indices
        .iter()
        .flat_map(|&i| values(100 + i as u64, k))
        .collect();
    let weights = Tensor::<2>::from_data(TensorData::new(weights, [n, k]), device);
    Ok(nvtl_trainer::devices::ShardLoss {
        loss: (y * weights).sum().div_scalar(n as f32),
        batch_norm: forward.batch_norm,
    })
}

fn gradient_of(model: &GraphModule, grads: &GradientsParams, name: &str) -> Vec<f32> {
    let id = model.param(name).unwrap().id;
    host(&grads.get::<6>(id).expect("gradient").into_data())
}

#[test]
fn data_parallel_shards_give_the_whole_batch_gradient() {
    let device = flex().autodiff();
    let model = GraphModule::from_proto(&per_image_net(), &device).unwrap();
    let batch = five_images();
    let whole = nvtl_trainer::devices::step_gradients(
        &model,
        std::slice::from_ref(&device),
        &batch,
        mean_weighted_loss,
    )
    .unwrap();
    // Three replicas (shards of 2, 2 and 1 images) on this machine's one CPU device: the same
    // code path as three GPUs, gradients moved to the first device and summed by burn.
    let devices = vec![device.clone(), device.clone(), device.clone()];
    let sharded =
        nvtl_trainer::devices::step_gradients(&model, &devices, &batch, mean_weighted_loss)
            .unwrap();
    assert!(
        (whole.loss - sharded.loss).abs() < 1e-5 * whole.loss.abs().max(1.0),
        "loss {} vs {}",
        whole.loss,
        sharded.loss
    );
    for name in ["conv.w", "conv.b", "fc.w", "fc.b"] {
        let a = gradient_of(&model, &whole.grads, name);
        let b = gradient_of(&model, &sharded.grads, name);
        let (max_abs, _) = common::diff(&b, &a);
        let scale = a.iter().fold(0f32, |m, v| m.max(v.abs()));
        println!("{name}: max |sharded - whole| {max_abs:.2e} (largest gradient {scale:.3})");
        assert!(max_abs <= 1e-5 * scale.max(1.0), "{name}: {max_abs}");
    }
}

#[test]
fn data_parallel_batch_norm_statistics_are_the_whole_batch_statistics() {
    let device = flex().autodiff();
    let model = GraphModule::from_proto(&small_net(5), &device).unwrap();
    let batch = five_images();
    let whole = nvtl_trainer::devices::step_gradients(
        &model,
        std::slice::from_ref(&device),
        &batch,
        mean_weighted_loss,
    )
    .unwrap();
    let devices = vec![device.clone(), device.clone()];
    let sharded =
        nvtl_trainer::devices::step_gradients(&model, &devices, &batch, mean_weighted_loss)
            .unwrap();
    assert_eq!(whole.batch_norm.len(), 1);
    assert_eq!(sharded.batch_norm.len(), 1);
    for (what, a, b) in [
        (
            "mean",
            &whole.batch_norm[0].mean,
            &sharded.batch_norm[0].mean,
        ),
        ("var", &whole.batch_norm[0].var, &sharded.batch_norm[0].var),
    ] {
        let a = host(&a.to_data());
        let b = host(&b.to_data());
        let (max_abs, _) = common::diff(&b, &a);
        println!("batch {what}: whole {a:?}, from shards {b:?}");
        assert!(max_abs < 1e-4, "{what}: {max_abs}");
    }
}
