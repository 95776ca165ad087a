//! TF.js graph -> ONNX converter on tiny hand-written graphs: the converted ONNX runs in tract and
//! its outputs are compared against values worked out by hand.

use nvtl_core::zoo::tfjs::{convert, ConvertError, ConvertOptions};
use prost::Message;
use serde_json::{json, Value};
use tract_onnx::prelude::*;

fn b64(s: &str) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |a, (i, &c)| a | (u32::from(c) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn s(v: &str) -> Value {
    json!({ "s": b64(v) })
}

fn ints(v: &[i64]) -> Value {
    json!({ "list": { "i": v.iter().map(|i| i.to_string()).collect::<Vec<_>>() } })
}

fn placeholder(name: &str, nhwc: [usize; 4]) -> Value {
    json!({ "name": name, "op": "Placeholder", "attr": {
        "dtype": { "type": "DT_FLOAT" },
        "shape": { "shape": { "dim": nhwc.iter().map(|d| json!({ "size": d.to_string() })).collect::<Vec<_>>() } }
    }})
}

fn konst(name: &str) -> Value {
    json!({ "name": name, "op": "Const", "attr": { "dtype": { "type": "DT_FLOAT" } } })
}

/// A graph model whose float32 weights come from one shard, in the order given.
struct Graph {
    nodes: Vec<Value>,
    weights: Vec<Value>,
    bin: Vec<u8>,
}

impl Graph {
    fn new() -> Graph {
        Graph {
            nodes: Vec::new(),
            weights: Vec::new(),
            bin: Vec::new(),
        }
    }

    fn weight(&mut self, name: &str, shape: &[usize], data: &[f32]) {
        self.nodes.push(konst(name));
        self.weights
            .push(json!({ "name": name, "shape": shape, "dtype": "float32" }));
        for v in data {
            self.bin.extend(v.to_le_bytes());
        }
    }

    fn weight_i32(&mut self, name: &str, shape: &[usize], data: &[i32]) {
        self.nodes.push(
            json!({ "name": name, "op": "Const", "attr": { "dtype": { "type": "DT_INT32" } } }),
        );
        self.weights
            .push(json!({ "name": name, "shape": shape, "dtype": "int32" }));
        for v in data {
            self.bin.extend(v.to_le_bytes());
        }
    }

    fn json(&self) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "format": "graph-model",
            "modelTopology": { "node": self.nodes },
            "weightsManifest": [{ "paths": ["w.bin"], "weights": self.weights }],
        }))
        .unwrap()
    }

    fn convert(&self, outputs: &[&str]) -> Result<Vec<u8>, ConvertError> {
        let bin = self.bin.clone();
        let mut shards = move |p: &str| {
            assert_eq!(p, "w.bin");
            Ok(bin.clone())
        };
        let options = ConvertOptions {
            outputs: outputs
                .iter()
                .map(|o| (o.to_string(), format!("out_{o}")))
                .collect(),
        };
        Ok(convert(&self.json(), &mut shards, &options)?.encode_to_vec())
    }
}

/// Runs an ONNX model on one NHWC input; returns (shape, values) of each output.
fn run(onnx: &[u8], nhwc: [usize; 4], data: &[f32]) -> Vec<(Vec<usize>, Vec<f32>)> {
    let model = tract_onnx::onnx()
        .model_for_read(&mut &onnx[..])
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let input = Tensor::from_shape(&nhwc, data).unwrap();
    let outputs = model.run(tvec![input.into_tvalue()]).unwrap();
    outputs
        .iter()
        .map(|t| {
            (
                t.shape().to_vec(),
                t.to_plain_array_view::<f32>()
                    .unwrap()
                    .iter()
                    .copied()
                    .collect(),
            )
        })
        .collect()
}

fn assert_close(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "got {got:?}, want {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-4, "got {got:?}, want {want:?}");
    }
}

/// SAME padding with stride 2 pads asymmetrically (the extra row/column bottom/right); fused
/// BiasAdd + Relu6; HWIO filters; NCHW output.
#[test]
fn same_padding_is_asymmetric_and_fused_ops_apply() {
    let mut g = Graph::new();
    g.nodes.push(placeholder("x", [1, 4, 4, 1]));
    // HWIO [3,3,1,2]: channel 0 all 0.1, channel 1 all -0.1.
    let filter: Vec<f32> = (0..9).flat_map(|_| [0.1, -0.1]).collect();
    g.weight("w", &[3, 3, 1, 2], &filter);
    g.weight("b", &[2], &[0.0, 6.0]);
    g.nodes.push(
        json!({ "name": "conv", "op": "_FusedConv2D", "input": ["x", "w", "b"], "attr": {
            "padding": s("SAME"), "strides": ints(&[1, 2, 2, 1]), "dilations": ints(&[1, 1, 1, 1]),
            "data_format": s("NHWC"), "num_args": { "i": "1" },
            "fused_ops": { "list": { "s": [b64("BiasAdd"), b64("Relu6")] } },
        }}),
    );
    let onnx = g.convert(&["conv"]).unwrap();
    // x = 1..16 row-major. Windows (rows x cols, the padded row/col contributes 0):
    // (0..3, 0..3) = 54, (0..3, 2..4) = 45, (2..4, 0..3) = 72, (2..4, 2..4) = 54.
    // ch0 = min(0.1 * sum, 6): 5.4, 4.5, 6, 5.4.  ch1 = max(6 - 0.1 * sum, 0): 0.6, 1.5, 0, 0.6.
    // Symmetric padding would give 1.4 for the first window.
    let x: Vec<f32> = (1..=16).map(|v| v as f32).collect();
    let out = run(&onnx, [1, 4, 4, 1], &x);
    assert_eq!(out[0].0, vec![1, 2, 2, 2]);
    assert_close(&out[0].1, &[5.4, 4.5, 6.0, 5.4, 0.6, 1.5, 0.0, 0.6]);
}

/// Depthwise with a channel multiplier: output channel c*M+m = x_c * f[c][m]; VALID 3x3.
#[test]
fn depthwise_channel_order_and_valid_padding() {
    let mut g = Graph::new();
    g.nodes.push(placeholder("x", [1, 3, 3, 2]));
    // [3,3,2,1]: channel 0 takes the centre pixel, channel 1 sums its window.
    let mut f = vec![0f32; 18];
    f[8] = 1.0; // (y=1, x=1, c=0, m=0): ((1 * 3 + 1) * 2 + 0) * 1 + 0
    for k in 0..9 {
        f[k * 2 + 1] = 1.0; // (y, x, c=1, m=0)
    }
    g.weight("f", &[3, 3, 2, 1], &f);
    g.nodes.push(
        json!({ "name": "dw", "op": "DepthwiseConv2dNative", "input": ["x", "f"], "attr": {
            "padding": s("VALID"), "strides": ints(&[1, 1, 1, 1]), "data_format": s("NHWC"),
        }}),
    );
    // [1,1,2,2] multiplier 2: (c0: 1, 2), (c1: 3, 4), with a bias through FusedDepthwiseConv2dNative.
    g.weight("f2", &[1, 1, 2, 2], &[1.0, 2.0, 3.0, 4.0]);
    g.weight("b2", &[4], &[0.5, 0.5, 0.5, 0.5]);
    g.nodes.push(json!({ "name": "dw2", "op": "FusedDepthwiseConv2dNative", "input": ["x", "f2", "b2"], "attr": {
        "padding": s("SAME"), "strides": ints(&[1, 1, 1, 1]), "data_format": s("NHWC"),
        "fused_ops": { "list": { "s": [b64("BiasAdd")] } }, "num_args": { "i": "1" },
    }}));
    let onnx = g.convert(&["dw", "dw2"]).unwrap();
    // NHWC: channel 0 = 1..9, channel 1 = 10, 20, ... 90.
    let x: Vec<f32> = (1..=9).flat_map(|v| [v as f32, 10.0 * v as f32]).collect();
    let out = run(&onnx, [1, 3, 3, 2], &x);
    assert_eq!(out[0].0, vec![1, 2, 1, 1]);
    assert_close(&out[0].1, &[5.0, 450.0]);
    assert_eq!(out[1].0, vec![1, 4, 3, 3]);
    // Pixel (0,0): x = (1, 10) -> (1*1, 1*2, 10*3, 10*4) + 0.5.
    let at00: Vec<f32> = (0..4).map(|c| out[1].1[c * 9]).collect();
    assert_close(&at00, &[1.5, 2.5, 30.5, 40.5]);
}

fn resize_graph(align_corners: bool, half_pixel: bool) -> Vec<u8> {
    let mut g = Graph::new();
    g.nodes.push(placeholder("x", [1, 2, 2, 1]));
    g.weight_i32("size", &[2], &[4, 4]);
    g.nodes.push(
        json!({ "name": "up", "op": "ResizeBilinear", "input": ["x", "size"], "attr": {
            "align_corners": { "b": align_corners }, "half_pixel_centers": { "b": half_pixel },
        }}),
    );
    g.convert(&["up"]).unwrap()
}

/// TF's legacy ResizeBilinear (align_corners=false, half_pixel_centers=false) samples at
/// dst * in/out: rows/cols 0, 0.5, 1, 1.5 (clamped).
#[test]
fn resize_bilinear_asymmetric() {
    let out = run(
        &resize_graph(false, false),
        [1, 2, 2, 1],
        &[0.0, 10.0, 20.0, 30.0],
    );
    assert_eq!(out[0].0, vec![1, 1, 4, 4]);
    #[rustfmt::skip]
    let want = [
        0.0, 5.0, 10.0, 10.0,
        10.0, 15.0, 20.0, 20.0,
        20.0, 25.0, 30.0, 30.0,
        20.0, 25.0, 30.0, 30.0,
    ];
    assert_close(&out[0].1, &want);
}

/// half_pixel_centers samples at (dst + 0.5) * in/out - 0.5: 0 (clamped), 0.25, 0.75, 1 (clamped).
#[test]
fn resize_bilinear_half_pixel() {
    let out = run(
        &resize_graph(false, true),
        [1, 2, 2, 1],
        &[0.0, 10.0, 20.0, 30.0],
    );
    #[rustfmt::skip]
    let want = [
        0.0, 2.5, 7.5, 10.0,
        5.0, 7.5, 12.5, 15.0,
        15.0, 17.5, 22.5, 25.0,
        20.0, 22.5, 27.5, 30.0,
    ];
    assert_close(&out[0].1, &want);
}

/// align_corners samples at dst * (in-1)/(out-1): 0, 1/3, 2/3, 1.
#[test]
fn resize_bilinear_align_corners() {
    let out = run(
        &resize_graph(true, false),
        [1, 2, 2, 1],
        &[0.0, 10.0, 20.0, 30.0],
    );
    let row0 = &out[0].1[0..4];
    assert_close(row0, &[0.0, 10.0 / 3.0, 20.0 / 3.0, 10.0]);
}

/// Squeeze-excite pattern: Mean over H,W (keep_dims), Mul with broadcasting, Add of a float16
/// per-channel constant, ConcatV2 on the channel axis, Sigmoid.
#[test]
fn mean_mul_add_concat_and_float16_weights() {
    let mut g = Graph::new();
    g.nodes.push(placeholder("x", [1, 2, 2, 2]));
    g.weight_i32("axes", &[2], &[1, 2]);
    g.weight_i32("axis", &[], &[-1]);
    g.nodes.push(json!({ "name": "mean", "op": "Mean", "input": ["x", "axes"], "attr": { "keep_dims": { "b": true } } }));
    g.nodes
        .push(json!({ "name": "mul", "op": "Mul", "input": ["x", "mean"] }));
    // float16 [1.0, -100.0] = 0x3c00, 0xd640.
    g.nodes.push(konst("c"));
    g.weights.push(json!({ "name": "c", "shape": [2], "dtype": "float32", "quantization": { "dtype": "float16" } }));
    g.bin.extend([0x00, 0x3c, 0x40, 0xd6]);
    g.nodes
        .push(json!({ "name": "add", "op": "AddV2", "input": ["mul", "c"] }));
    g.nodes.push(json!({ "name": "cat", "op": "ConcatV2", "input": ["x", "add", "axis"], "attr": { "N": { "i": "2" } } }));
    g.nodes
        .push(json!({ "name": "sig", "op": "Sigmoid", "input": ["mean"] }));
    g.nodes
        .push(json!({ "name": "out", "op": "Identity", "input": ["cat"] }));
    let onnx = g.convert(&["out", "sig"]).unwrap();
    // NHWC: channel 0 = 1, 2, 3, 4; channel 1 = 10, 20, 30, 40. Means 2.5 and 25.
    let x = [1.0, 10.0, 2.0, 20.0, 3.0, 30.0, 4.0, 40.0];
    let out = run(&onnx, [1, 2, 2, 2], &x);
    assert_eq!(out[0].0, vec![1, 4, 2, 2]);
    #[rustfmt::skip]
    let want = [
        1.0, 2.0, 3.0, 4.0,
        10.0, 20.0, 30.0, 40.0,
        3.5, 6.0, 8.5, 11.0,          // 2.5 * x + 1
        150.0, 400.0, 650.0, 900.0,   // 25 * x - 100
    ];
    assert_close(&out[0].1, &want);
    assert_eq!(out[1].0, vec![1, 2, 1, 1]);
    assert_close(
        &out[1].1,
        &[1.0 / (1.0 + (-2.5f32).exp()), 1.0 / (1.0 + (-25f32).exp())],
    );
}

/// Only the subgraph feeding the outputs is converted: an unsupported op elsewhere is ignored,
/// one inside is an error naming op and node.
#[test]
fn unsupported_ops_are_named() {
    let mut g = Graph::new();
    g.nodes.push(placeholder("x", [1, 2, 2, 1]));
    g.nodes
        .push(json!({ "name": "relu", "op": "Relu", "input": ["x"] }));
    g.nodes
        .push(json!({ "name": "tail/topk", "op": "TopKV2", "input": ["relu"] }));
    assert!(g.convert(&["relu"]).is_ok());
    let err = g.convert(&["tail/topk"]).unwrap_err().to_string();
    assert!(err.contains("TopKV2") && err.contains("tail/topk"), "{err}");
    let err = g.convert(&["nope"]).unwrap_err().to_string();
    assert!(err.contains("nope"), "{err}");
}

/// Corrupt inputs are errors, never panics.
#[test]
fn corrupt_inputs_are_errors() {
    let mut g = Graph::new();
    g.nodes.push(placeholder("x", [1, 2, 2, 1]));
    g.weight("w", &[1, 1, 1, 1], &[2.0]);
    g.nodes.push(json!({ "name": "conv", "op": "Conv2D", "input": ["x", "w"], "attr": { "padding": s("VALID") } }));
    assert!(g.convert(&["conv"]).is_ok());

    // Truncated shard.
    let json = g.json();
    let mut short = |_: &str| Ok(vec![0u8; 2]);
    let opts = ConvertOptions {
        outputs: vec![("conv".into(), "y".into())],
    };
    let err = convert(&json, &mut short, &opts).unwrap_err().to_string();
    assert!(err.contains("'w'") && err.contains("truncated"), "{err}");

    // Not JSON / wrong structure / truncated JSON.
    let mut shards = |_: &str| Ok(vec![0u8; 4]);
    for bad in [
        &b"{"[..],
        b"[]",
        b"{\"modelTopology\": {\"node\": 3}}",
        &json[..json.len() / 2],
    ] {
        assert!(convert(bad, &mut shards, &opts).is_err());
    }

    // Absurd shapes.
    let mut g2 = Graph::new();
    g2.nodes.push(placeholder("x", [1, 2, 2, 1]));
    g2.weight("w", &[1, 1, 1, 1], &[2.0]);
    g2.weights[0]["shape"] = json!([u64::MAX, 4]);
    assert!(g2.convert(&["x"]).is_err());

    // A cycle.
    let mut g3 = Graph::new();
    g3.nodes
        .push(json!({ "name": "a", "op": "Relu", "input": ["b"] }));
    g3.nodes
        .push(json!({ "name": "b", "op": "Relu", "input": ["a"] }));
    let err = g3.convert(&["a"]).unwrap_err().to_string();
    assert!(err.contains("cycle"), "{err}");

    // Filter rank / channel mismatch.
    let mut g4 = Graph::new();
    g4.nodes.push(placeholder("x", [1, 2, 2, 3]));
    g4.weight("w", &[1, 1, 2, 1], &[1.0, 1.0]);
    g4.nodes.push(json!({ "name": "conv", "op": "Conv2D", "input": ["x", "w"], "attr": { "padding": s("VALID") } }));
    let err = g4.convert(&["conv"]).unwrap_err().to_string();
    assert!(err.contains("conv"), "{err}");
}
