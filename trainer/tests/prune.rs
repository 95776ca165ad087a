//! Channel pruning: group discovery on hand-built graphs (residual add, concat, depthwise conv,
//! squeeze-excite style scaling, a flatten-Gemm head), exact kept-index sets, the pruned graph
//! against the unpruned one with the removed channels' consumers zeroed, and bad input.

mod common;

use nvtl_core::model::builder::{attr_float, attr_int, attr_ints};
use nvtl_core::model::OnnxBuilder;
use nvtl_trainer::prune::{
    analyse, search_plan, Equalization, Normalizer, Plan, PruneError, PruneOptions, Scores,
};
use tract_onnx::pb::ModelProto;

/// Weights of a conv `[out, in, k, k]` whose output channel `c` is filled with `per_out[c]`
/// (times a pattern within the filter, the same for every filter, so equal fills give equal
/// norms).
fn filled(out: usize, inp: usize, k: usize, per_out: &[f32]) -> Vec<f32> {
    let inner = inp * k * k;
    (0..out * inner)
        .map(|i| per_out[i / inner] * (1.0 + 0.01 * ((i % inner % 7) as f32)))
        .collect()
}

fn scores_a() -> Vec<f32> {
    (0..16)
        .map(|c| if c % 2 == 0 { 1.0 } else { 0.1 })
        .collect()
}

fn scores_b() -> Vec<f32> {
    (0..16).map(|c| if c == 1 { 1.0 } else { 0.05 }).collect()
}

/// input [1,3,16,16]
///   -> conv_a (3->16) -> bn_a -> relu_a
///   -> conv_b (16->16, 1x1) -> Add(conv_b, relu_a)            (residual: ties a and b)
///   -> dw (depthwise 3x3, 16 groups) -> Mul(const [1,16,1,1])  (per-channel scale)
///   -> conv_c (16->8), conv_d (16->8) -> Concat                (offsets)
///   -> conv_e (16->4) -> "heat" output                         (head: fixed)
///   -> GlobalAveragePool(concat) -> Flatten -> Gemm (16->3) -> "logits" output
fn residual_graph() -> ModelProto {
    let mut b = OnnxBuilder::default();
    b.input("image", &[1, 3, 16, 16]);
    b.init_f32("a.w", &[16, 3, 3, 3], filled(16, 3, 3, &scores_a()));
    b.init_f32("a.b", &[16], (0..16).map(|c| 0.01 * c as f32).collect());
    b.node(
        "Conv",
        "conv_a",
        &["image", "a.w", "a.b"],
        &["a"],
        vec![attr_ints("pads", &[1, 1, 1, 1])],
    );
    b.init_f32("bn.g", &[16], vec![1.0; 16]);
    b.init_f32(
        "bn.b",
        &[16],
        (0..16).map(|c| 0.1 - 0.01 * c as f32).collect(),
    );
    b.init_f32("bn.m", &[16], vec![0.02; 16]);
    b.init_f32("bn.v", &[16], vec![1.0; 16]);
    b.node(
        "BatchNormalization",
        "bn_a",
        &["a", "bn.g", "bn.b", "bn.m", "bn.v"],
        &["a_bn"],
        vec![attr_float("epsilon", 1e-5)],
    );
    b.node("Relu", "relu_a", &["a_bn"], &["a_relu"], vec![]);
    b.init_f32("b.w", &[16, 16, 1, 1], filled(16, 16, 1, &scores_b()));
    b.node("Conv", "conv_b", &["a_relu", "b.w"], &["b"], vec![]);
    b.node("Add", "residual", &["b", "a_relu"], &["sum"], vec![]);
    b.init_f32(
        "dw.w",
        &[16, 1, 3, 3],
        (0..144).map(|i| 0.1 + 0.001 * i as f32).collect(),
    );
    b.node(
        "Conv",
        "dw",
        &["sum", "dw.w"],
        &["dw_out"],
        vec![attr_int("group", 16), attr_ints("pads", &[1, 1, 1, 1])],
    );
    b.init_f32(
        "scale",
        &[1, 16, 1, 1],
        (0..16).map(|c| 0.5 + 0.1 * c as f32).collect(),
    );
    b.node("Mul", "se_scale", &["dw_out", "scale"], &["scaled"], vec![]);
    let c_scores: Vec<f32> = (0..8).map(|c| (c + 1) as f32 / 8.0).collect();
    b.init_f32("c.w", &[8, 16, 1, 1], filled(8, 16, 1, &c_scores));
    b.node("Conv", "conv_c", &["scaled", "c.w"], &["c"], vec![]);
    let d_scores: Vec<f32> = (0..8)
        .map(|c| if c == 0 || c == 7 { 1.0 } else { 0.1 })
        .collect();
    b.init_f32("d.w", &[8, 16, 1, 1], filled(8, 16, 1, &d_scores));
    b.node("Conv", "conv_d", &["scaled", "d.w"], &["d"], vec![]);
    b.node(
        "Concat",
        "concat",
        &["c", "d"],
        &["cd"],
        vec![attr_int("axis", 1)],
    );
    b.init_f32(
        "e.w",
        &[4, 16, 1, 1],
        (0..64)
            .map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.1)
            .collect(),
    );
    b.node("Conv", "conv_e", &["cd", "e.w"], &["heat"], vec![]);
    b.node("GlobalAveragePool", "gap", &["cd"], &["pooled"], vec![]);
    b.node(
        "Flatten",
        "flatten",
        &["pooled"],
        &["flat"],
        vec![attr_int("axis", 1)],
    );
    b.init_f32(
        "fc.w",
        &[3, 16],
        (0..48).map(|i| ((i * 13 % 7) as f32 - 3.0) * 0.2).collect(),
    );
    b.init_f32("fc.b", &[3], vec![0.1, -0.2, 0.3]);
    b.node(
        "Gemm",
        "fc",
        &["flat", "fc.w", "fc.b"],
        &["logits"],
        vec![attr_int("transB", 1)],
    );
    b.output("heat", &[1, 4, 16, 16]);
    b.output("logits", &[1, 3]);
    b.finish("prune-test")
}

fn options(threshold: f32) -> PruneOptions {
    PruneOptions {
        threshold,
        granularity: 1,
        min_filters: 1,
        ..Default::default()
    }
}

fn plan(proto: &ModelProto, options: &PruneOptions) -> Result<Plan, PruneError> {
    let analysis = analyse(proto, &options.excluded)?;
    let scores = Scores::compute(proto, &analysis, options.normalizer, options.equalization)?;
    Plan::new(&analysis, &scores, options)
}

/// The kept channels of the group whose sources are exactly `sources`.
fn kept_of(plan: &Plan, sources: &[&str]) -> Vec<usize> {
    let (g, _) = plan
        .analysis
        .groups
        .iter()
        .enumerate()
        .find(|(_, g)| {
            let mut s: Vec<&str> = g.sources.iter().map(|s| s.node.as_str()).collect();
            s.sort_unstable();
            let mut want = sources.to_vec();
            want.sort_unstable();
            s == want
        })
        .unwrap_or_else(|| panic!("no group with sources {sources:?}"));
    plan.kept[g].clone()
}

fn dims_of(proto: &ModelProto, name: &str) -> Vec<i64> {
    proto
        .graph
        .as_ref()
        .unwrap()
        .initializer
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no initializer {name}"))
        .dims
        .clone()
}

fn input_data() -> Vec<f32> {
    (0..3 * 16 * 16)
        .map(|i| ((i * 7919 % 251) as f32 / 251.0) - 0.4)
        .collect()
}

#[test]
fn groups_follow_residual_depthwise_concat_and_flatten() {
    let proto = residual_graph();
    let analysis = analyse(&proto, &[]).expect("analysis");
    let with = |name: &str| {
        analysis
            .groups
            .iter()
            .find(|g| g.sources.iter().any(|s| s.node == name))
            .unwrap_or_else(|| panic!("no group for {name}"))
    };
    // The residual Add ties conv_a and conv_b; the depthwise conv joins no new group.
    let mut ab: Vec<&str> = with("conv_a")
        .sources
        .iter()
        .map(|s| s.node.as_str())
        .collect();
    ab.sort();
    assert_eq!(ab, ["conv_a", "conv_b"]);
    assert!(with("conv_a").fixed.is_none());
    assert!(with("conv_c").fixed.is_none() && with("conv_d").fixed.is_none());
    // Heads: conv_e and fc reach graph outputs.
    assert!(with("conv_e").fixed.as_deref().unwrap().contains("heat"));
    assert!(with("fc").fixed.as_deref().unwrap().contains("logits"));
    assert!(!analysis
        .groups
        .iter()
        .any(|g| g.sources.iter().any(|s| s.node == "dw")));
}

#[test]
fn union_keeps_the_exact_channels() {
    let proto = residual_graph();
    let plan = plan(&proto, &options(0.3)).unwrap();
    // a: even channels score 1, odd 0.1; b: channel 1 scores 1, the rest 0.05; union = max.
    assert_eq!(
        kept_of(&plan, &["conv_a", "conv_b"]),
        [0, 1, 2, 4, 6, 8, 10, 12, 14]
    );
    // c: (c+1)/8 > 0.3 from channel 2 on; d: channels 0 and 7.
    assert_eq!(kept_of(&plan, &["conv_c"]), [2, 3, 4, 5, 6, 7]);
    assert_eq!(kept_of(&plan, &["conv_d"]), [0, 7]);
    assert_eq!(kept_of(&plan, &["conv_e"]), [0, 1, 2, 3]);

    let pruned = plan.apply(&proto).unwrap();
    assert_eq!(dims_of(&pruned, "a.w"), [9, 3, 3, 3]);
    assert_eq!(dims_of(&pruned, "a.b"), [9]);
    assert_eq!(dims_of(&pruned, "bn.v"), [9]);
    assert_eq!(dims_of(&pruned, "b.w"), [9, 9, 1, 1]);
    assert_eq!(dims_of(&pruned, "dw.w"), [9, 1, 3, 3]);
    assert_eq!(dims_of(&pruned, "scale"), [1, 9, 1, 1]);
    assert_eq!(dims_of(&pruned, "c.w"), [6, 9, 1, 1]);
    assert_eq!(dims_of(&pruned, "d.w"), [2, 9, 1, 1]);
    // Concat offsets: conv_e reads c's 6 kept channels, then d's 2.
    assert_eq!(dims_of(&pruned, "e.w"), [4, 8, 1, 1]);
    assert_eq!(dims_of(&pruned, "fc.w"), [3, 8]);
    // The kept rows are the right ones: e.w input channel 6 is old channel 8 (d's 0), 7 is 15.
    let e_old = common::initializer_values(&proto, "e.w");
    let e_new = common::initializer_values(&pruned, "e.w");
    for o in 0..4 {
        for (new_c, old_c) in [2, 3, 4, 5, 6, 7, 8, 15].iter().enumerate() {
            assert_eq!(e_new[o * 8 + new_c], e_old[o * 16 + old_c]);
        }
    }
}

/// input [1,3,8,8]
///   -> conv_x (3->8), conv_y (3->8) -> Concat "xy" (16 channels)
///   -> GlobalAveragePool -> conv_s (16->16, 1x1) -> Sigmoid -> Mul(xy, gate)
///   -> conv_h (16->2) -> "heat" output
/// The Mul ties a concat of two groups to one conv's 16 channels: conv_s's output splits into
/// channels 0..8 (tied to conv_x) and 8..16 (tied to conv_y).
fn excite_over_concat_graph() -> ModelProto {
    let mut b = OnnxBuilder::default();
    b.input("image", &[1, 3, 8, 8]);
    let x_scores: Vec<f32> = (0..8).map(|c| if c < 2 { 1.0 } else { 0.1 }).collect();
    let y_scores: Vec<f32> = (0..8).map(|c| if c == 7 { 1.0 } else { 0.1 }).collect();
    // conv_s: channel 3 (x's) and 12 (y's 4) score high, the rest low.
    let s_scores: Vec<f32> = (0..16)
        .map(|c| if c == 3 || c == 12 { 1.0 } else { 0.05 })
        .collect();
    b.init_f32("x.w", &[8, 3, 3, 3], filled(8, 3, 3, &x_scores));
    b.init_f32("y.w", &[8, 3, 3, 3], filled(8, 3, 3, &y_scores));
    b.init_f32("s.w", &[16, 16, 1, 1], filled(16, 16, 1, &s_scores));
    b.init_f32(
        "s.b",
        &[16],
        (0..16).map(|c| 0.1 * c as f32 - 0.8).collect(),
    );
    let pads = || vec![attr_ints("pads", &[1, 1, 1, 1])];
    b.node("Conv", "conv_x", &["image", "x.w"], &["x"], pads());
    b.node("Conv", "conv_y", &["image", "y.w"], &["y"], pads());
    b.node(
        "Concat",
        "concat",
        &["x", "y"],
        &["xy"],
        vec![attr_int("axis", 1)],
    );
    b.node("GlobalAveragePool", "gap", &["xy"], &["pooled"], vec![]);
    b.node("Conv", "conv_s", &["pooled", "s.w", "s.b"], &["s"], vec![]);
    b.node("Sigmoid", "gate", &["s"], &["g"], vec![]);
    b.node("Mul", "excite", &["xy", "g"], &["scaled"], vec![]);
    b.init_f32(
        "h.w",
        &[2, 16, 1, 1],
        (0..32).map(|i| ((i * 5 % 9) as f32 - 4.0) * 0.1).collect(),
    );
    b.node("Conv", "conv_h", &["scaled", "h.w"], &["heat"], vec![]);
    b.output("heat", &[1, 2, 8, 8]);
    b.finish("prune-excite-concat")
}

#[test]
fn a_scale_over_a_concat_splits_the_scaling_conv() {
    let proto = excite_over_concat_graph();
    let plan = plan(&proto, &options(0.3)).unwrap();
    let groups = &plan.analysis.groups;
    let with = |node: &str, offset: usize| {
        groups
            .iter()
            .position(|g| {
                g.sources
                    .iter()
                    .any(|s| s.node == node && s.offset == offset)
            })
            .unwrap_or_else(|| panic!("no group for {node}@{offset}"))
    };
    assert_eq!(with("conv_x", 0), with("conv_s", 0));
    assert_eq!(with("conv_y", 0), with("conv_s", 8));
    assert_ne!(with("conv_x", 0), with("conv_y", 0));
    assert!(groups[with("conv_x", 0)].fixed.is_none());
    // Union: x keeps 0, 1 (its own) and 3 (conv_s's); y keeps 7 (its own) and 4 (conv_s's 12).
    assert_eq!(kept_of(&plan, &["conv_x", "conv_s"]), [0, 1, 3]);
    assert_eq!(kept_of(&plan, &["conv_y", "conv_s"]), [4, 7]);
    let pruned = plan.apply(&proto).unwrap();
    assert_eq!(dims_of(&pruned, "x.w"), [3, 3, 3, 3]);
    assert_eq!(dims_of(&pruned, "y.w"), [2, 3, 3, 3]);
    assert_eq!(dims_of(&pruned, "s.w"), [5, 5, 1, 1]);
    assert_eq!(dims_of(&pruned, "s.b"), [5]);
    assert_eq!(dims_of(&pruned, "h.w"), [2, 5, 1, 1]);
    // conv_s keeps its output channels 0, 1, 3 and 12, 15, in that order.
    let s_old = common::initializer_values(&proto, "s.b");
    let s_new = common::initializer_values(&pruned, "s.b");
    let kept_s: Vec<f32> = [0, 1, 3, 12, 15].iter().map(|&c| s_old[c]).collect();
    assert_eq!(s_new, kept_s);

    let input: Vec<f32> = (0..3 * 8 * 8)
        .map(|i| ((i * 7919 % 251) as f32 / 251.0) - 0.4)
        .collect();
    let shape = [1, 3, 8, 8];
    let a = common::tract_run(&pruned, &shape, &input);
    let b = common::tract_run(&plan.mask(&proto).unwrap(), &shape, &input);
    let (abs, _) = common::diff(&a[0].1, &b[0].1);
    assert!(abs < 1e-4, "pruned and masked differ by {abs}");
}

#[test]
fn intersection_and_means_combine_tied_layers() {
    let proto = residual_graph();
    // Intersection = min: nothing passes 0.3; the one best channel (1: min(0.1, 1.0)) stays.
    let plan_i = plan(
        &proto,
        &PruneOptions {
            equalization: Equalization::Intersection,
            ..options(0.3)
        },
    )
    .unwrap();
    assert_eq!(kept_of(&plan_i, &["conv_a", "conv_b"]), [1]);
    // Arithmetic mean: even (1 + 0.05) / 2 = 0.525, channel 1 (0.1 + 1) / 2 = 0.55, odd 0.075.
    let plan_m = plan(
        &proto,
        &PruneOptions {
            equalization: Equalization::ArithmeticMean,
            ..options(0.5)
        },
    )
    .unwrap();
    assert_eq!(
        kept_of(&plan_m, &["conv_a", "conv_b"]),
        [0, 1, 2, 4, 6, 8, 10, 12, 14]
    );
    // Geometric mean: even sqrt(0.05) = 0.22, channel 1 sqrt(0.1) = 0.32.
    let plan_g = plan(
        &proto,
        &PruneOptions {
            equalization: Equalization::GeometricMean,
            ..options(0.3)
        },
    )
    .unwrap();
    assert_eq!(kept_of(&plan_g, &["conv_a", "conv_b"]), [1]);
}

#[test]
fn granularity_and_minimum_round_the_kept_counts() {
    let proto = residual_graph();
    let plan = plan(
        &proto,
        &PruneOptions {
            threshold: 0.3,
            granularity: 4,
            min_filters: 4,
            ..Default::default()
        },
    )
    .unwrap();
    // 9 above the threshold -> 12: the 3 best odd channels by score (ties: lowest index).
    assert_eq!(
        kept_of(&plan, &["conv_a", "conv_b"]),
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14]
    );
    assert_eq!(kept_of(&plan, &["conv_c"]).len(), 8);
    // d: 2 above -> 4 (the minimum and the granularity agree).
    assert_eq!(kept_of(&plan, &["conv_d"]).len(), 4);
    // L2 normalisation: d's norms (1, 0.1 x 6, 1) / sqrt(2 + 0.06) -> 0.697 and 0.0697.
    let plan_l2 = plan_with_normalizer(&proto, Normalizer::L2, 0.5);
    assert_eq!(kept_of(&plan_l2, &["conv_d"]), [0, 7]);
}

fn plan_with_normalizer(proto: &ModelProto, n: Normalizer, threshold: f32) -> Plan {
    plan(
        proto,
        &PruneOptions {
            normalizer: n,
            ..options(threshold)
        },
    )
    .unwrap()
}

#[test]
fn pruned_graph_equals_the_masked_unpruned_graph() {
    let proto = residual_graph();
    let plan = plan(&proto, &options(0.3)).unwrap();
    let pruned = plan.apply(&proto).unwrap();
    let masked = plan.mask(&proto).unwrap();
    let input = input_data();
    let shape = [1, 3, 16, 16];
    let a = common::tract_run(&pruned, &shape, &input);
    let b = common::tract_run(&masked, &shape, &input);
    let full = common::tract_run(&proto, &shape, &input);
    assert_eq!(a.len(), 2);
    for ((sa, va), (sb, vb)) in a.iter().zip(&b) {
        assert_eq!(sa, sb);
        let (abs, _) = common::diff(va, vb);
        assert!(abs < 1e-4, "pruned and masked differ by {abs}");
    }
    // Pruning did change the function (the removed channels carried signal).
    let (abs, _) = common::diff(&a[0].1, &full[0].1);
    assert!(abs > 1e-3, "pruning removed nothing that mattered ({abs})");
    // The burn executor (retraining) loads and runs the pruned graph identically.
    let module =
        nvtl_trainer::graph::GraphModule::from_proto(&pruned, &burn::tensor::Device::flex())
            .expect("the trainer loads the pruned graph");
    let tensor = burn::tensor::Tensor::<4>::from_data(
        burn::tensor::TensorData::new(input.clone(), shape),
        &burn::tensor::Device::flex(),
    );
    let out = module
        .forward(tensor, nvtl_trainer::graph::Mode::Eval)
        .unwrap();
    let (abs, _) = common::diff(&out.outputs[0].to_f32_vec(), &a[0].1);
    assert!(
        abs < 1e-4,
        "burn and tract differ on the pruned graph by {abs}"
    );
}

#[test]
fn flops_and_params_follow_the_plan() {
    let proto = residual_graph();
    let plan = plan(&proto, &options(0.3)).unwrap();
    let pruned = plan.apply(&proto).unwrap();
    assert_eq!(
        plan.params(&proto).unwrap(),
        nvtl_trainer::prune::report::model_params(&pruned)
    );
    assert_eq!(
        plan.flops(),
        nvtl_trainer::prune::report::model_flops(&pruned).unwrap()
    );
    assert_eq!(
        plan.flops_before(),
        nvtl_trainer::prune::report::model_flops(&proto).unwrap()
    );
    // conv_a alone: 2 * 16*3*3*3 * 256 -> 2 * 9*3*3*3 * 256.
    let rows = nvtl_trainer::prune::report::layer_rows(&plan);
    let a = rows.iter().find(|r| r.layer == "conv_a").unwrap();
    assert_eq!((a.kept_channels, a.channels), (9, 16));
    assert_eq!(a.flops_before, 2 * 16 * 27 * 256);
    assert_eq!(a.flops_after, 2 * 9 * 27 * 256);
}

#[test]
fn search_reaches_a_flops_target() {
    let proto = residual_graph();
    let o = options(0.0);
    let analysis = analyse(&proto, &[]).unwrap();
    let scores = Scores::compute(&proto, &analysis, o.normalizer, o.equalization).unwrap();
    let (plan, reached) =
        search_plan(&analysis, &scores, &o, 0.6, 30, |p| Ok(p.flops_ratio())).unwrap();
    let threshold = plan.threshold;
    assert!(reached <= 0.6, "reached {reached}");
    // A slightly lower threshold keeps more than the target: the search found the edge.
    let p = Plan::new(
        &analysis,
        &scores,
        &PruneOptions {
            threshold: threshold * 0.9,
            ..o.clone()
        },
    )
    .unwrap();
    assert!(p.flops_ratio() > 0.6);
}

#[test]
fn excluded_layers_keep_their_channels() {
    let proto = residual_graph();
    let plan = plan(
        &proto,
        &PruneOptions {
            excluded: vec!["conv_d".into()],
            ..options(0.3)
        },
    )
    .unwrap();
    assert_eq!(kept_of(&plan, &["conv_d"]), (0..8).collect::<Vec<_>>());
    assert_eq!(kept_of(&plan, &["conv_c"]), [2, 3, 4, 5, 6, 7]);
}

#[test]
fn bad_input_is_named() {
    let proto = residual_graph();
    // A threshold that removes everything.
    let err = plan(
        &proto,
        &PruneOptions {
            threshold: 2.0,
            min_filters: 0,
            ..options(2.0)
        },
    )
    .unwrap_err();
    assert!(matches!(err, PruneError::RemovesEverything { .. }), "{err}");
    assert!(err.to_string().contains("conv_a"), "{err}");
    // An excluded layer that does not exist.
    let err = analyse(&proto, &["conv_x".into()]).unwrap_err();
    assert!(
        matches!(&err, PruneError::NoSuchLayer(l) if l == "conv_x"),
        "{err}"
    );
    // An op that moves the channel axis of prunable channels.
    let mut bad = proto.clone();
    let graph = bad.graph.as_mut().unwrap();
    let relu = graph.node.iter().position(|n| n.name == "relu_a").unwrap();
    graph.node.insert(
        relu + 1,
        tract_onnx::pb::NodeProto {
            op_type: "Transpose".into(),
            name: "to_nhwc".into(),
            input: vec!["a_relu".into()],
            output: vec!["a_nhwc".into()],
            attribute: vec![attr_ints("perm", &[0, 2, 3, 1])],
            ..Default::default()
        },
    );
    graph.output.push(tract_onnx::pb::ValueInfoProto {
        name: "a_nhwc".into(),
        ..Default::default()
    });
    let err = analyse(&bad, &[]).unwrap_err();
    assert!(
        matches!(&err, PruneError::Unsupported { node, .. } if node.contains("to_nhwc") && node.contains("Transpose")),
        "{err}"
    );
}

/// A zoo model pruned to half its FLOPs: the pruned graph runs in tract and computes what the
/// unpruned graph computes with the removed channels' consumers zeroed.
fn zoo_model_keeps_its_function(name: &str, shape: [usize; 4], hw: (usize, usize)) {
    let bundle = common::bundle(name);
    let proto = nvtl_core::model::read_onnx(&bundle.onnx).unwrap().proto;
    let o = PruneOptions::default();
    let analysis = analyse(&proto, &[]).unwrap();
    let scores = Scores::compute(&proto, &analysis, o.normalizer, o.equalization).unwrap();
    let (plan, reached) =
        search_plan(&analysis, &scores, &o, 0.5, 30, |p| Ok(p.flops_ratio())).unwrap();
    assert!(
        reached <= 0.5 && reached > 0.4,
        "{name}: FLOPs ratio {reached}"
    );
    let pruned = plan.apply(&proto).unwrap();
    assert_eq!(
        nvtl_trainer::prune::report::model_flops(&pruned).unwrap(),
        plan.flops()
    );
    let masked = plan.mask(&proto).unwrap();
    let input = common::preprocessed(&bundle, &common::asset("dog.jpg"), hw.1, hw.0);
    let a = common::tract_run(&pruned, &shape, &input);
    let b = common::tract_run(&masked, &shape, &input);
    for (i, ((sa, va), (sb, vb))) in a.iter().zip(&b).enumerate() {
        assert_eq!(sa, sb);
        let (abs, rel) = common::diff(va, vb);
        println!("{name} output {i}: pruned vs masked max abs {abs:.2e} rel {rel:.2e}");
        assert!(
            rel < 1e-4,
            "{name} output {i}: pruned and masked differ by {rel}"
        );
    }
}

#[test]
fn mobilenet_v2_pruned_keeps_its_function() {
    zoo_model_keeps_its_function("mobilenet_v2_imagenet", [1, 3, 224, 224], (224, 224));
}

#[test]
fn centernet_pruned_keeps_its_function() {
    zoo_model_keeps_its_function("centernet_mobilenetv3_coco", [1, 512, 512, 3], (512, 512));
}

fn trainer(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trainer"))
        .arg("--quiet")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_takes_tao_flags_and_writes_a_bundle_nvtlinfer_loads() {
    let bundle = common::bundle("centernet_mobilenetv3_coco");
    let model = bundle.dir.to_str().unwrap();
    let (ok, table, err) = trainer(&[
        "prune",
        "-m",
        model,
        "-pth",
        "0.3",
        "-pg",
        "8",
        "-nf",
        "16",
        "-n",
        "L2",
        "-eq",
        "intersection",
        "--dry-run",
    ]);
    assert!(ok, "{err}");
    // One row per Conv layer and a closing summary; heads stay whole.
    assert!(table.contains("reaches graph output 'heatmap'"), "{table}");
    assert!(
        table
            .lines()
            .last()
            .unwrap()
            .starts_with("threshold 0.3000"),
        "{table}"
    );

    let dir = common::temp_dir("prune-cli");
    let out = dir.join("pruned");
    let (ok, stdout, err) = trainer(&[
        "prune",
        "-m",
        model,
        "-o",
        out.to_str().unwrap(),
        "--target-params",
        "0.5",
        "--latency-runs",
        "1",
    ]);
    assert!(ok, "{err}");
    assert!(stdout.contains("| pruned |"), "{stdout}");
    for file in [
        "model.onnx",
        "labels.txt",
        "config_infer.txt",
        "prune_report.md",
    ] {
        assert!(out.join(file).is_file(), "no {file}");
    }
    // The pruned bundle loads and runs on the element's engine with its own config (untrained,
    // it need not find anything yet: retraining is the next step).
    let mut runner = nvtl_trainer::runner::BundleRunner::open(&out, 0).unwrap();
    let (_, result) = runner.run_file(&common::asset("dog.jpg")).unwrap();
    assert!(matches!(result, nvtl_core::engine::InferResult::Objects(_)));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn cli_bad_input_writes_nothing() {
    let bundle = common::bundle("centernet_mobilenetv3_coco");
    let model = bundle.dir.to_str().unwrap();
    let dir = common::temp_dir("prune-cli-bad");
    let out = dir.join("pruned");
    let o = out.to_str().unwrap();
    let (ok, _, err) = trainer(&["prune", "-m", model, "-o", o, "-pth", "2", "-nf", "0"]);
    assert!(!ok);
    assert!(err.contains("removes every channel"), "{err}");
    let (ok, _, err) = trainer(&["prune", "-m", model, "-o", o, "-el", "no_such_layer"]);
    assert!(!ok);
    assert!(err.contains("excluded layer 'no_such_layer'"), "{err}");
    let (ok, _, err) = trainer(&["prune", "-m", "no_such_model", "-o", o]);
    assert!(!ok);
    assert!(err.contains("no_such_model"), "{err}");
    assert!(!out.exists(), "a failed prune left {}", out.display());
    std::fs::remove_dir_all(&dir).unwrap();
}
