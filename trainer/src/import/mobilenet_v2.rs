//! torchvision MobileNetV2 state dict (`.pth`, legacy or zip format) -> ONNX, read with
//! burn-store's PyTorch reader. Node and initializer names are torchvision's keys
//! (`features.3.conv.1.0.weight`), so freeze patterns read like the PyTorch model.

use std::collections::HashMap;
use std::path::Path;

use burn::store::pytorch_reader::{DType, PytorchReader};
use nvtl_core::model::builder::{attr_float, attr_int, attr_ints};
use nvtl_core::model::{Dim, OnnxBuilder};
use tract_onnx::pb::ModelProto;

/// torchvision's ImageNet normalisation.
pub const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const STD: [f32; 3] = [0.229, 0.224, 0.225];
/// The one std nvinfer's single net-scale-factor uses; the per-channel rest is folded into the
/// first convolution (see [`ImportOptions::fold_std_into`]).
pub const FOLDED_STD: f32 = 0.226;

/// torchvision's inverted-residual settings: expansion t, output channels c, repeats n, stride s.
const SETTINGS: [(usize, usize, usize, usize); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];
const BN_EPSILON: f32 = 1e-5;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("not a readable PyTorch checkpoint: {0}")]
    Read(String),
    #[error("tensor '{name}' is missing from the checkpoint (is it a torchvision MobileNetV2?)")]
    Missing { name: String },
    #[error("tensor '{name}' has shape {got:?}, torchvision MobileNetV2 has {expected:?}")]
    Shape {
        name: String,
        got: Vec<usize>,
        expected: Vec<usize>,
    },
    #[error("tensor '{name}': {reason}")]
    Data { name: String, reason: String },
}

pub struct ImportOptions {
    /// Network input (height, width); the graph is fully convolutional up to a global pool.
    pub input_size: (usize, usize),
    /// `Some(s)`: scale input channel c of the first convolution by `s / STD[c]`, so that
    /// nvinfer's `y = net-scale-factor * (x - offset[c])` with net-scale-factor = 1 / (255 s)
    /// and offsets = 255 * MEAN reproduces torchvision's per-channel normalisation exactly.
    pub fold_std_into: Option<f32>,
}

struct Weights {
    tensors: HashMap<String, burn::store::pytorch_reader::Tensor>,
}

impl Weights {
    fn get(&self, name: &str, expected: &[usize]) -> Result<Vec<f32>, ImportError> {
        let t = self.tensors.get(name).ok_or_else(|| ImportError::Missing {
            name: name.to_string(),
        })?;
        if t.shape() != expected {
            return Err(ImportError::Shape {
                name: name.to_string(),
                got: t.shape().to_vec(),
                expected: expected.to_vec(),
            });
        }
        let data_err = |reason: String| ImportError::Data {
            name: name.to_string(),
            reason,
        };
        if t.dtype() != DType::F32 {
            return Err(data_err(format!("dtype {:?}, expected float32", t.dtype())));
        }
        let bytes = t.read().map_err(|e| data_err(e.to_string()))?;
        Ok(bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }
}

/// Builds the ONNX graph: input `input` [N, 3, H, W] (RGB, normalised as above), output
/// `probabilities` [N, 1000] (softmax of the classifier's logits).
pub fn import(pth: &Path, options: &ImportOptions) -> Result<ModelProto, ImportError> {
    let reader = PytorchReader::new(pth).map_err(|e| ImportError::Read(e.to_string()))?;
    let weights = Weights {
        tensors: reader.into_tensors(),
    };
    let mut g = Graph {
        b: OnnxBuilder::default(),
        w: &weights,
        fold_std: options
            .fold_std_into
            .map(|s| ("features.0.0.weight".to_string(), s)),
    };
    let (height, width) = options.input_size;
    g.b.input_dims(
        "input",
        &[
            Dim::Dynamic("N".into()),
            Dim::Fixed(3),
            Dim::Fixed(height),
            Dim::Fixed(width),
        ],
    );

    let mut x = g.conv_bn(
        "features.0.0",
        "features.0.1",
        "input",
        3,
        32,
        3,
        2,
        1,
        true,
    )?;
    let mut inp = 32;
    let mut block = 1;
    for (t, c, n, s) in SETTINGS {
        for i in 0..n {
            let stride = if i == 0 { s } else { 1 };
            x = g.inverted_residual(block, &x, inp, c, stride, t)?;
            inp = c;
            block += 1;
        }
    }
    x = g.conv_bn(
        &format!("features.{block}.0"),
        &format!("features.{block}.1"),
        &x,
        inp,
        1280,
        1,
        1,
        1,
        true,
    )?;
    g.b.node("GlobalAveragePool", "pool", &[&x], &["pool"], vec![]);
    g.b.node(
        "Flatten",
        "flatten",
        &["pool"],
        &["flatten"],
        vec![attr_int("axis", 1)],
    );
    let fc_w = weights.get("classifier.1.weight", &[1000, 1280])?;
    let fc_b = weights.get("classifier.1.bias", &[1000])?;
    g.b.init_f32("classifier.1.weight", &[1000, 1280], fc_w);
    g.b.init_f32("classifier.1.bias", &[1000], fc_b);
    g.b.node(
        "Gemm",
        "classifier.1",
        &["flatten", "classifier.1.weight", "classifier.1.bias"],
        &["logits"],
        vec![attr_int("transB", 1)],
    );
    g.b.node(
        "Softmax",
        "softmax",
        &["logits"],
        &["probabilities"],
        vec![attr_int("axis", 1)],
    );
    g.b.output_dims(
        "probabilities",
        &[Dim::Dynamic("N".into()), Dim::Fixed(1000)],
    );
    Ok(g.b.finish("nvtl-trainer torchvision-mobilenet-v2"))
}

struct Graph<'w> {
    b: OnnxBuilder,
    w: &'w Weights,
    /// The first convolution's weight name and the std folded into it.
    fold_std: Option<(String, f32)>,
}

impl Graph<'_> {
    /// Conv (no bias) + BatchNorm (+ ReLU6); returns the output value name.
    #[allow(clippy::too_many_arguments)]
    fn conv_bn(
        &mut self,
        conv: &str,
        bn: &str,
        input: &str,
        cin: usize,
        cout: usize,
        kernel: usize,
        stride: usize,
        groups: usize,
        relu6: bool,
    ) -> Result<String, ImportError> {
        let weight_name = format!("{conv}.weight");
        let shape = [cout, cin / groups, kernel, kernel];
        let mut weight = self.w.get(&weight_name, &shape)?;
        if let Some((name, s)) = &self.fold_std {
            if *name == weight_name {
                // Input channel c of [cout, 3, k, k] scaled by s / STD[c].
                let plane = kernel * kernel;
                for (i, w) in weight.iter_mut().enumerate() {
                    *w *= s / STD[(i / plane) % 3];
                }
            }
        }
        let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        self.b.init_f32(&weight_name, &dims, weight);
        let pad = (kernel / 2) as i64;
        let conv_out = format!("{conv}.out");
        self.b.node(
            "Conv",
            conv,
            &[input, &weight_name],
            &[&conv_out],
            vec![
                attr_ints("kernel_shape", &[kernel as i64, kernel as i64]),
                attr_ints("strides", &[stride as i64, stride as i64]),
                attr_ints("pads", &[pad, pad, pad, pad]),
                attr_int("group", groups as i64),
            ],
        );
        let mut bn_inputs = vec![conv_out.clone()];
        for (torch, onnx) in [
            ("weight", "weight"),
            ("bias", "bias"),
            ("running_mean", "running_mean"),
            ("running_var", "running_var"),
        ] {
            let name = format!("{bn}.{onnx}");
            let data = self.w.get(&format!("{bn}.{torch}"), &[cout])?;
            self.b.init_f32(&name, &[cout as i64], data);
            bn_inputs.push(name);
        }
        let bn_out = format!("{bn}.out");
        let bn_refs: Vec<&str> = bn_inputs.iter().map(String::as_str).collect();
        self.b.node(
            "BatchNormalization",
            bn,
            &bn_refs,
            &[&bn_out],
            vec![
                attr_float("epsilon", BN_EPSILON),
                attr_float("momentum", 0.9),
            ],
        );
        if !relu6 {
            return Ok(bn_out);
        }
        let relu_out = format!("{bn}.relu6");
        let (lo, hi) = (format!("{bn}.relu6.min"), format!("{bn}.relu6.max"));
        self.b.init_f32(&lo, &[], vec![0.0]);
        self.b.init_f32(&hi, &[], vec![6.0]);
        self.b.node(
            "Clip",
            &relu_out,
            &[&bn_out, &lo, &hi],
            &[&relu_out],
            vec![],
        );
        Ok(relu_out)
    }

    fn inverted_residual(
        &mut self,
        index: usize,
        input: &str,
        inp: usize,
        oup: usize,
        stride: usize,
        expand: usize,
    ) -> Result<String, ImportError> {
        let hidden = inp * expand;
        let p = format!("features.{index}.conv");
        let mut layer = 0;
        let mut x = input.to_string();
        if expand != 1 {
            x = self.conv_bn(
                &format!("{p}.0.0"),
                &format!("{p}.0.1"),
                &x,
                inp,
                hidden,
                1,
                1,
                1,
                true,
            )?;
            layer = 1;
        }
        x = self.conv_bn(
            &format!("{p}.{layer}.0"),
            &format!("{p}.{layer}.1"),
            &x,
            hidden,
            hidden,
            3,
            stride,
            hidden,
            true,
        )?;
        x = self.conv_bn(
            &format!("{p}.{}", layer + 1),
            &format!("{p}.{}", layer + 2),
            &x,
            hidden,
            oup,
            1,
            1,
            1,
            false,
        )?;
        if stride == 1 && inp == oup {
            let sum = format!("features.{index}.add");
            self.b.node("Add", &sum, &[input, &x], &[&sum], vec![]);
            x = sum;
        }
        Ok(x)
    }
}
