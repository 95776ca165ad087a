//! ONNX operators on burn tensors (float data) and on the host (integer shape data).

use std::collections::HashMap;

use burn::tensor::activation;
use burn::tensor::module::{avg_pool2d, conv2d, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};

use super::host;
use super::node::{HostData, HostTensor, NodeInfo};
use super::value::{pad_dims, Value, MAX_RANK};
use super::{BatchNormUpdate, GraphError, GraphModule, Mode};

type T6 = Tensor<MAX_RANK>;

/// Every ONNX op (default domain) the executor runs.
pub const SUPPORTED_OPS: &[&str] = &[
    "Abs",
    "Add",
    "AveragePool",
    "BatchNormalization",
    "Cast",
    "Ceil",
    "Clip",
    "Concat",
    "Constant",
    "ConstantOfShape",
    "Conv",
    "Div",
    "Dropout",
    "Exp",
    "Expand",
    "Flatten",
    "Floor",
    "Gather",
    "Gemm",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "HardSigmoid",
    "HardSwish",
    "Identity",
    "LeakyRelu",
    "Log",
    "LogSoftmax",
    "MatMul",
    "Max",
    "MaxPool",
    "Min",
    "Mul",
    "Neg",
    "Pad",
    "PRelu",
    "Reciprocal",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceSum",
    "Relu",
    "Reshape",
    "Resize",
    "Shape",
    "Sigmoid",
    "Slice",
    "Softmax",
    "Split",
    "Sqrt",
    "Squeeze",
    "Sub",
    "Sum",
    "Tanh",
    "Transpose",
    "Unsqueeze",
    "Upsample",
];

/// Whether input `index` of `op` is read on the host (shapes, axes, scales, clip bounds) rather
/// than used as tensor data; float initializers only read there never become parameters.
pub(crate) fn is_host_input(op: &str, index: usize) -> bool {
    match op {
        "Clip" | "Pad" | "Resize" => index >= 1,
        "Upsample" | "Reshape" | "Expand" | "Squeeze" | "Unsqueeze" | "Split" => index == 1,
        "ReduceMean" | "ReduceSum" | "ReduceMax" | "ReduceMin" => index == 1,
        "Slice" => index >= 1,
        "ConstantOfShape" | "Shape" => true,
        "Gather" => index == 1,
        "Dropout" => index >= 1,
        _ => false,
    }
}

/// Ops whose single-element float initializers are fixed constants (hard-swish's `1/6`, the
/// `+3` of a decomposed hard-sigmoid) rather than trainable parameters.
pub(crate) fn is_elementwise_arithmetic(op: &str) -> bool {
    matches!(op, "Add" | "Sub" | "Mul" | "Div" | "Max" | "Min" | "Sum")
}

/// Load-time checks of what can be checked without tensors: attribute values the executor
/// does not implement are errors here rather than in the middle of a forward pass.
pub(crate) fn check_node(node: &NodeInfo) -> Result<(), GraphError> {
    if !SUPPORTED_OPS.contains(&node.op.as_str()) {
        return Err(GraphError::UnsupportedOp {
            op: node.op.clone(),
            node: node.name.clone(),
        });
    }
    let string_in = |attr: &str, allowed: &[&str]| -> Result<(), GraphError> {
        match node.attr_string(attr) {
            Some(v) if !allowed.contains(&v.as_str()) => Err(node.bad_attr(
                attr,
                format!("'{v}' is not supported (supported: {})", allowed.join(", ")),
            )),
            _ => Ok(()),
        }
    };
    match node.op.as_str() {
        "Conv" | "MaxPool" | "AveragePool" => {
            string_in("auto_pad", &["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"])?;
            if let Some(k) = node.attr_ints("kernel_shape") {
                if k.len() != 2 {
                    return Err(node.bad_attr(
                        "kernel_shape",
                        format!("{k:?}: only 2-D kernels are supported"),
                    ));
                }
            } else if node.op != "Conv" {
                return Err(node.bad_attr("kernel_shape", "missing"));
            }
            if node.op == "MaxPool" && node.outputs.len() > 1 && !node.outputs[1].is_empty() {
                return Err(node.bad_attr("Indices", "MaxPool indices output is not supported"));
            }
            if node.attr_int("storage_order").unwrap_or(0) != 0 {
                return Err(node.bad_attr("storage_order", "only row-major is supported"));
            }
        }
        "Resize" | "Upsample" => {
            string_in("mode", &["nearest", "linear", "bilinear"])?;
            string_in(
                "coordinate_transformation_mode",
                &[
                    "half_pixel",
                    "pytorch_half_pixel",
                    "align_corners",
                    "asymmetric",
                    "tf_half_pixel_for_nn",
                ],
            )?;
            string_in(
                "nearest_mode",
                &["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"],
            )?;
            string_in("keep_aspect_ratio_policy", &["stretch"])?;
            if node.attr_ints("axes").is_some() {
                return Err(node.bad_attr("axes", "Resize with axes is not supported"));
            }
        }
        "Pad" => string_in("mode", &["constant"])?,
        "Cast" => {
            let to = node.attr_int("to").unwrap_or(0);
            if cast_target(to).is_none() {
                return Err(node.bad_attr("to", format!("element type {to} is not supported")));
            }
        }
        _ => {}
    }
    Ok(())
}

enum CastTarget {
    Float,
    Int,
    Bool,
}

fn cast_target(to: i64) -> Option<CastTarget> {
    match to {
        1 | 10 | 11 | 16 => Some(CastTarget::Float),
        2..=7 | 12 | 13 => Some(CastTarget::Int),
        9 => Some(CastTarget::Bool),
        _ => None,
    }
}

/// ONNX axis (maybe negative) of a rank-`rank` tensor, checked.
fn axis(node: &NodeInfo, value: i64, rank: usize) -> Result<usize, GraphError> {
    let r = rank as i64;
    if value < -r || value >= r.max(1) {
        return Err(node.shape_err(format!("axis {value} is out of range for rank {rank}")));
    }
    Ok(if value < 0 {
        (value + r) as usize
    } else {
        value as usize
    })
}

/// The stored (padded) axis of ONNX axis `a` of a rank-`rank` value.
fn padded(a: usize, rank: usize) -> usize {
    a + MAX_RANK - rank
}

fn float_value(tensor: T6, rank: usize) -> Value {
    Value::Float { tensor, rank }
}

fn int_value(dims: Vec<usize>, data: Vec<i64>) -> Value {
    Value::Int { dims, data }
}

fn dims_of(t: &T6, rank: usize) -> Vec<usize> {
    t.dims()[MAX_RANK - rank..].to_vec()
}

fn reshape(t: T6, dims: &[usize]) -> T6 {
    t.reshape(pad_dims(dims))
}

fn to4(t: T6) -> Tensor<4> {
    let d = t.dims();
    t.reshape([d[2], d[3], d[4], d[5]])
}

fn from4(t: Tensor<4>) -> T6 {
    let [n, c, h, w] = t.dims();
    t.reshape([1, 1, n, c, h, w])
}

fn index_tensor(indices: &[usize], device: &Device) -> Tensor<1, Int> {
    let data: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
    Tensor::from_data(TensorData::new(data, [indices.len()]), device)
}

/// Runs nodes on the values computed so far.
pub(crate) struct Exec<'a> {
    pub module: &'a GraphModule,
    pub device: Device,
    pub mode: Mode,
    pub env: HashMap<String, Value>,
    pub batch_norm: Vec<BatchNormUpdate>,
}

impl Exec<'_> {
    /// A value by name: computed so far, a parameter, or a constant initializer.
    pub fn lookup(&self, name: &str) -> Option<Value> {
        if let Some(v) = self.env.get(name) {
            return Some(v.clone());
        }
        let graph = &self.module.graph;
        if let Some(&i) = graph.param_index.get(name) {
            return Some(float_value(
                self.module.params[i].val(),
                graph.params[i].dims.len(),
            ));
        }
        graph
            .constants
            .get(name)
            .map(|c| Value::from_host(c, &self.device))
    }

    fn opt_value(&self, node: &NodeInfo, k: usize) -> Result<Option<Value>, GraphError> {
        match node.input(k) {
            None => Ok(None),
            Some(name) => self
                .lookup(name)
                .map(Some)
                .ok_or_else(|| GraphError::MissingValue {
                    node: node.label(),
                    name: name.to_string(),
                }),
        }
    }

    fn value(&self, node: &NodeInfo, k: usize) -> Result<Value, GraphError> {
        self.opt_value(node, k)?
            .ok_or_else(|| node.shape_err(format!("input {k} is required")))
    }

    fn float(&self, node: &NodeInfo, k: usize) -> Result<(T6, usize), GraphError> {
        Ok(self.value(node, k)?.into_float(&self.device))
    }

    fn opt_host(&self, node: &NodeInfo, k: usize) -> Result<Option<HostTensor>, GraphError> {
        match node.input(k) {
            None => Ok(None),
            Some(name) => {
                if let Some(c) = self.module.graph.constants.get(name) {
                    return Ok(Some(c.clone()));
                }
                Ok(self.opt_value(node, k)?.map(|v| v.to_host()))
            }
        }
    }

    fn host(&self, node: &NodeInfo, k: usize) -> Result<HostTensor, GraphError> {
        self.opt_host(node, k)?
            .ok_or_else(|| node.shape_err(format!("input {k} is required")))
    }

    /// Runs one node; returns its outputs in order.
    pub fn run(&mut self, node: &NodeInfo) -> Result<Vec<Value>, GraphError> {
        let op = node.op.as_str();
        let out = match op {
            "Identity" => vec![self.value(node, 0)?],
            "Dropout" => vec![self.dropout(node)?],
            "Relu" | "Sigmoid" | "Tanh" | "Exp" | "Log" | "Sqrt" | "Neg" | "Abs" | "Floor"
            | "Ceil" | "Reciprocal" | "LeakyRelu" | "HardSigmoid" | "HardSwish" => {
                vec![self.unary(node)?]
            }
            "Add" | "Sub" | "Mul" | "Div" => vec![self.binary(node)?],
            "Max" | "Min" | "Sum" => vec![self.variadic(node)?],
            "PRelu" => vec![self.prelu(node)?],
            "Clip" => vec![self.clip(node)?],
            "Conv" => vec![self.conv(node)?],
            "BatchNormalization" => vec![self.batch_norm(node)?],
            "Concat" => vec![self.concat(node)?],
            "Split" => self.split(node)?,
            "Slice" => vec![self.slice(node)?],
            "Reshape" | "Flatten" | "Squeeze" | "Unsqueeze" => vec![self.reshape_like(node)?],
            "Transpose" => vec![self.transpose(node)?],
            "Expand" => vec![self.expand(node)?],
            "GlobalAveragePool" | "GlobalMaxPool" => vec![self.global_pool(node)?],
            "AveragePool" | "MaxPool" => vec![self.pool(node)?],
            "ReduceMean" | "ReduceSum" | "ReduceMax" | "ReduceMin" => vec![self.reduce(node)?],
            "Resize" | "Upsample" => vec![self.resize(node)?],
            "Gemm" => vec![self.gemm(node)?],
            "MatMul" => vec![self.matmul(node)?],
            "Softmax" | "LogSoftmax" => vec![self.softmax(node)?],
            "Pad" => vec![self.pad(node)?],
            "Constant" => vec![self.constant(node)?],
            "ConstantOfShape" => vec![self.constant_of_shape(node)?],
            "Shape" => vec![self.shape(node)?],
            "Gather" => vec![self.gather(node)?],
            "Cast" => vec![self.cast(node)?],
            _ => {
                return Err(GraphError::UnsupportedOp {
                    op: node.op.clone(),
                    node: node.name.clone(),
                })
            }
        };
        Ok(out)
    }

    /// Identity in `Eval`; in `Train` zeroes elements with probability `ratio` (input 1 or the
    /// pre-opset-12 attribute, default 0.5) and scales the rest by `1 / (1 - ratio)`.
    fn dropout(&self, node: &NodeInfo) -> Result<Value, GraphError> {
        let v = self.value(node, 0)?;
        if self.mode == Mode::Eval {
            return Ok(v);
        }
        let ratio = match self.opt_host(node, 1)? {
            Some(h) if h.numel() == 1 => h.to_f32()[0],
            _ => node.attr_float("ratio").unwrap_or(0.5),
        };
        if !(0.0..1.0).contains(&ratio) {
            return Err(node.bad_attr("ratio", format!("{ratio} is outside [0, 1)")));
        }
        if ratio == 0.0 {
            return Ok(v);
        }
        let (x, rank) = v.into_float(&self.device);
        let keep = x.random_like(Distribution::Bernoulli(1.0 - ratio as f64));
        Ok(float_value(x.mul(keep).div_scalar(1.0 - ratio), rank))
    }

    fn unary(&self, node: &NodeInfo) -> Result<Value, GraphError> {
        let (x, rank) = self.float(node, 0)?;
        let y = match node.op.as_str() {
            "Relu" => activation::relu(x),
            "Sigmoid" => activation::sigmoid(x),
            "Tanh" => x.tanh(),
            "Exp" => x.exp(),
            "Log" => x.log(),
            "Sqrt" => x.sqrt(),
            "Neg" => x.neg(),
            "Abs" => x.abs(),
            "Floor" => x.floor(),
            "Ceil" => x.ceil(),
            "Reciprocal" => x.recip(),
            "LeakyRelu" => {
                activation::leaky_relu(x, node.attr_float("alpha").unwrap_or(0.01) as f64)
            }
            "HardSigmoid" => {
                let alpha = node.attr_float("alpha").unwrap_or(0.2);
                let beta = node.attr_float("beta").unwrap_or(0.5);
                x.mul_scalar(alpha).add_scalar(beta).clamp(0.0, 1.0)
            }
            // HardSwish(x) = x * max(0, min(1, x / 6 + 1 / 2))
            _ => x
                .clone()
                .mul(x.div_scalar(6.0).add_scalar(0.5).clamp(0.0, 1.0)),
        };
        Ok(float_value(y, rank))
    }

    /// A float constant initializer of one element at input `k` (hard-swish's `1/6`).
    fn scalar_constant(&self, node: &NodeInfo, k: usize) -> Option<f32> {
        let c = self.module.graph.constants.get(node.input(k)?)?;
        match &c.data {
            HostData::F32(v) if v.len() == 1 => Some(v[0]),
            _ => None,
        }
    }

    fn binary(&self, node: &NodeInfo) -> Result<Value, GraphError> {
        let op = node.op.as_str();
        // A float tensor with a one-element constant: a scalar op, no broadcast tensor. The
        // result keeps the tensor's rank unless the constant's rank is higher.
        for (k, other) in [(1usize, 0usize), (0, 1)] {
            let Some(c) = self.scalar_constant(node, k) else {
                continue;
            };
            let constant_rank = self.module.graph.constants[&node.inputs[k]].dims.len();
            let Value::Float { tensor: x, rank } = self.value(node, other)? else {
                break;
            };
            if constant_rank > rank {
                break;
            }
            let constant_first = k == 0;
            let y = match (op, constant_first) {
                ("Add", _) => x.add_scalar(c),
                ("Mul", _) => x.mul_scalar(c),
                ("Sub", false) => x.sub_scalar(c),
                ("Sub", true) => x.neg().add_scalar(c),
                ("Div", false) => x.div_scalar(c),
                _ => x.recip().mul_scalar(c),
            };
            return Ok(float_value(y, rank));
        }
        let a = self.value(node, 0)?;
        let b = self.value(node, 1)?;
        self.apply_binary(node, op, a, b)
    }

    fn apply_binary(
        &self,
        node: &NodeInfo,
        op: &str,
        a: Value,
        b: Value,
    ) -> Result<Value, GraphError> {
        let (da, db) = (a.dims(), b.dims());
        let out_dims = host::broadcast_shape(&da, &db)
            .ok_or_else(|| node.shape_err(format!("shapes {da:?} and {db:?} do not broadcast")))?;
        if let (Value::Int { data: xa, .. }, Value::Int { data: xb, .. }) = (&a, &b) {
            let xa = host::broadcast_to(xa, &da, &out_dims);
            let xb = host::broadcast_to(xb, &db, &out_dims);
            let mut out = Vec::with_capacity(xa.len());
            for (&p, &q) in xa.iter().zip(&xb) {
                out.push(match op {
                    "Add" | "Sum" => p + q,
                    "Sub" => p - q,
                    "Mul" => p * q,
                    "Max" => p.max(q),
                    "Min" => p.min(q),
                    _ => {
                        if q == 0 {
                            return Err(node.shape_err("integer division by zero"));
                        }
                        p / q
                    }
                });
            }
            return Ok(int_value(out_dims, out));
        }
        let (ta, _) = a.into_float(&self.device);
        let (tb, _) = b.into_float(&self.device);
        let y = match op {
            "Add" | "Sum" => ta.add(tb),
            "Sub" => ta.sub(tb),
            "Mul" => ta.mul(tb),
            "Div" => ta.div(tb),
            "Max" => ta.max_pair(tb),
            _ => ta.min_pair(tb),
        };
        Ok(float_value(y, out_dims.len()))
    }

    fn variadic(&self, node: &NodeInfo) -> Result<Value, GraphError> {
        let mut acc = self.value(node, 0)?;
        for k in 1..node.inputs.len() {
            let next = self.value(node, k)?;
            acc = self.apply_binary(node, node.op.as_str(), acc, next)?;
        }
        Ok(acc)
    }

    fn prelu(&self, node: &NodeInfo) -> Result<Value, GraphError> {
        let (x, rank) = self.float(node, 0)?;
        let slope = self.value(node, 1)?;
        let (xd, sd) = (dims_of(&x, rank), slope.dims());
        if host::broadcast_shape(&xd, &sd).as_deref() != Some(xd.as_slice()) {
            return Err(node.shape_err(format!(
                "slope of shape {sd:?} does not broadcast to the input {xd:?}"
            )));
        }
        let (s, _) = slope.into_float(&self.device);
        let negative = x.clone().clamp_max(0.0).mul(s);
        Ok(float_value(x.clamp_min(0.0).add(negative), rank))
    }

    fn clip(&self, node: &NodeInfo) -> Result<Value, GraphError> {
        let (x, rank) = self.float(node, 0)?;
        let bound = |k: usize, attr: &str| -> Result<Option<f32>, GraphError> {
            if let Some(v) = node.attr_float(attr) {
                return Ok(Some(v));
            }
            match self.opt_host(node, k)? {
                None => Ok(None),
                Some(h) if h.numel() == 1 => Ok(Some(h.to_f32()[0])),
                Some(h) => Err(node.shape_err(format!(
                    "Clip bound {attr} must be a scalar, got shape {:?}",
                    h.dims
                ))),
            }
        };
        let y = match (bound(1, "min")?, bound(2, "max")?) {
            (Some(lo), Some(hi)) => x.clamp(lo, hi),
            (Some(lo), None) => x.clamp_min(lo),
            (None, Some(hi)) => x.clamp_max(hi),
            (None, None) => x,
        };
        Ok(float_value(y, rank))
    }

    /// Per-axis (begin, end) padding of a 2-D window op, resolving `auto_pad`.
    fn window_pads(
        &self,
        node: &NodeInfo,
        input: [usize; 2],
        kernel: [usize; 2],
        stride: [usize; 2],
        dilation: [usize; 2],
    ) -> Result<[(usize, usize); 2], GraphError> {
        let auto_pad = node
            .attr_string("auto_pad")
            .unwrap_or_else(|| "NOTSET".into());
        match auto_pad.as_str() {
            "VALID" => Ok([(0, 0); 2]),
            "SAME_UPPER" | "SAME_LOWER" => {
                let mut out = [(0, 0); 2];
                for a in 0..2 {
                    let target = input[a].div_ceil(stride[a]);
                    let span = (kernel[a] - 1) * dilation[a] + 1;
                    let total =
                        ((target.saturating_sub(1)) * stride[a] + span).saturating_sub(input[a]);
                    let small = total / 2;
                    out[a] = if auto_pad == "SAME_UPPER" {
                        (small, total - small)
                    } else {
                        (total - small, small)
                    };
                }
                Ok(out)
            }
            _ => {
                let pads = node.attr_ints("pads").unwrap_or_else(|| vec![0; 4]);
                if pads.len() != 4 || pads.iter().any(|&p| p < 0) {
                    return Err(
                        node.bad_attr("pads", format!("{pads:?}: 4 non-negative values expected"))
                    );
                }
                Ok([
                    (pads[0] as usize, pads[2] as usize),
                    (pads[1] as usize, pads[3] as usize),
                ])
            }
        }
    }

    fn pair(&self, node: &NodeInfo, attr: &str, default: usize) -> Result<[usize; 2], GraphError> {
        match node.attr_ints(attr) {
            None => Ok([default; 2]),
            Some(v) if v.len() == 2 && v.iter().all(|&x| x >= 1) => {
                Ok([v[0] as usize, v[1] as usize])
            }
            Some(v) => Err(node.bad_attr(attr, format!("{v:?}: two positive values expected"))),
        }
    }

    fn conv(&self, node: &NodeInfo) -> Result<Value, GraphError> {
        let (x, rank) = self.float(node, 0)?;
        let (w, wrank) = self.float(node, 1)?;
        if rank != 4 || wrank != 4 {
            return Err(node.shape_err(format!(
                "only 2-D convolution is supported (input rank {rank}, weight rank {wrank})"
            )));
        }
        let xd = dims_of(&x, 4);
        let wd = dims_of(&w, 4);
        let groups = node.attr_int("group").unwrap_or(1);
        if groups < 1 || xd[1] as i64 != wd[1] as i64 * groups || wd[0] as i64 % groups != 0 {
            return Err(node.shape_err(format!(
                "input {xd:?}, weight {wd:?} and group {groups} do not agree"
            )));
        }
        if let Some(k) = node.attr_ints("kernel_shape") {
            if k != [wd[2] as i64, wd[3] as i64] {
                return Err(
                    node.bad_attr("kernel_shape", format!("{k:?} but the weight is {wd:?}"))
                );
            }
        }
        let stride = self.pair(node, "strides", 1)?;
        let dilation = self.pair(node, "dilations", 1)?;
        let pads = self.window_pads(node, [xd[2], xd[3]], [wd[2], wd[3]], stride, dilation)?;
        for a in 0..2 {
            if xd[2 + a] + pads[a].0 + pads[a].1 < (wd[2 + a] - 1) * dilation[a] + 1 {
                return Err(node.shape_err(format!(
                    "input {xd:?} with pads {pads:?} is smaller than the kernel {wd:?}"
                )));
            }
        }
        let bias = match self.opt_value(node, 2)? {
            None => None,
            Some(b) => {
                if b.dims() != [wd[0]] {
                    return Err(node.shape_err(format!(
                        "bias of shape {:?}, {} output channels",
                        b.dims(),
                        wd[0]
                    )));
                }
                let (b, _) = b.into_float(&self.device);
                Some(b.reshape([wd[0]]))
            }
        };
        let options = ConvOptions::new_with_padding(stride, pads, dilation, groups as usize);
        let y = conv2d(to4(x), to4(w), bias, options);
        Ok(float_value(from4(y), 4))
    }

    fn batch_norm(&mut self, node: &NodeInfo) -> Result<Value, GraphError> {
        let (x, rank) = self.float(node, 0)?;
        if rank < 2 {
            return Err(node.shape_err(format!("input rank {rank}, at least 2 expected")));
        }
        let channels = dims_of(&x, rank)[1];
        let mut per_channel = Vec::new();
        for k in 1..5 {
            let v = self.value(node, k)?;
            if v.dims() != [channels] {
                return Err(node.shape_err(format!(
                    "input {k} has shape {:?}, {channels} channels expected",
                    v.dims()
                )));
            }
            per_channel.push(v.into_float(&self.device).0);
        }
        let epsilon = node.attr_float("epsilon").unwrap_or(1e-5) as f64;
        let mut shape = vec![1usize; rank];
        shape[1] = channels;
        let broadcast = |t: T6| reshape(t, &shape);
        let scale = broadcast(per_channel[0].clone());
        let offset = broadcast(per_channel[1].clone());
        let y = match self.mode {
            Mode::Eval => {
                let mean = broadcast(per_channel[2].clone());
                let var = broadcast(per_channel[3].clone());
                let factor = scale.div(var.add_scalar(epsilon).sqrt());
                x.sub(mean).mul(factor).add(offset)
            }
            Mode::Train => {
                let reduce: Vec<usize> = (0..rank)
                    .filter(|&a| a != 1)
                    .map(|a| padded(a, rank))
                    .collect();
                let mean = x.clone().mean_dims(&reduce);
                let centered = x.sub(mean.clone());
                let var = centered.clone().square().mean_dims(&reduce);
                self.batch_norm.push(BatchNormUpdate {
                    node: node.name.clone(),
                    mean: mean.clone().detach().reshape([channels]),
                    var: var.clone().detach().reshape([channels]),
                });
                centered
                    .div(var.add_scalar(epsilon).sqrt())
                    .mul(scale)
                    .add(offset)
            }
        };
        Ok(float_value(y, rank))
    }

    fn concat(&self, node: &NodeInfo) -> Result<Value, GraphError> {
        let mut values = Vec::new();
        for k in 0..node.inputs.len() {
            if let Some(v) = self.opt_value(node, k)? {
                values.push(v);
            }
        }
        if values.is_empty() {
            return Err(node.shape_err("no inputs"));
        }
        let rank = values[0].rank();
        let ax = axis(node, node.attr_int("axis").unwrap_or(0), rank)?;
        let first = values[0].dims();
        for v in &values {
            let d = v.dims();
            let agree = d.len() == rank && (0..rank).all(|a| a == ax || d[a] == first[a]);
            if !agree {
                return Err(node.shape_err(format!(
                    "input shapes {:?} do not agree outside axis {ax}",
                    values.iter().map(Value::dims).collect::<Vec<_>>()
                )));
            }
        }
        if values.iter().all(|v| matches!(v, Value::Int { .. })) {
            let parts: Vec<(Vec<usize>, Vec<i64>)> = values
                .into_iter()
                .filter_map(|v| match v {
                    Value::Int { dims, data } => Some((dims, data)),
                    Value::Float { .. } => None,
                })
                .collect();
            let (dims, data) = host::concat(&parts, ax);
            return Ok(int_value(dims, data));
        }
        let tensors: Vec<T6> = values
            .into_iter()
            .map(|v| v.into_float(&self.device).0)
            .filter(|t| t.dims()[padded(ax, rank)] > 0)
            .collect();
        if tensors.is_empty() {
            return Err(node.shape_err("every input is empty along the concat axis"));
        }
        Ok(float_value(T6::cat(tensors, padded(ax, rank)), rank))
    }

    fn split(&self, node: &NodeInfo) -> Result<Vec<Value>, GraphError> {
        let v = self.value(node, 0)?;
        let dims = v.dims();
        let ax = axis(node, node.attr_int("axis").unwrap_or(0), dims.len())?;
        let sizes: Vec<usize> = match self.opt_host(node, 1)? {
            Some(h) => h.to_i64().iter().map(|&s| s.max(0) as usize).collect(),
            None => match node.attr_ints("split") {
                Some(s) => s.iter().map(|&s| s.max(0) as usize).collect(),
                None => {
                    let parts = node
                        .attr_int("num_outputs")
                        .map(|n| n.max(1) as usize)
                        .unwrap_or(node.outputs.len().max(1));
                    let chunk = dims[ax].div_ceil(parts);
                    (0..parts)
                        .map(|i| chunk.min(dims[ax].saturating_sub(i * chunk)))
                        .collect()
                }
            },
        };
        if sizes.iter().sum::<usize>() != dims[ax] || sizes.len() != node.outputs.len() {
            return Err(node.shape_err(format!(
                "split sizes {sizes:?} do not cover axis {ax} of {dims:?} in {} outputs",
                node.outputs.len()
            )));
        }
        let mut out = Vec::new();
        let mut start = 0;
        for size in sizes {
            let indices: Vec<Vec<usize>> = dims
                .iter()
                .enumerate()
                .map(|(a, &d)| {
                    if a == ax {
                        (start..start + size).collect()
                    } else {
                        (0..d).collect()
                    }
                })
                .collect();
            out.push(self.select_ranges(&v, &indices, ax, start..start + size));
            start += size;
        }
        Ok(out)
    }

    /// `v` restricted to `indices[a]` along every axis, where only `axis` is restricted and
    /// that restriction is the contiguous `range`.
    fn select_ranges(
        &self,
        v: &Value,
        indices: &[Vec<usize>],
        ax: usize,
        range: std::ops::Range<usize>,
    ) -> Value {
        match v {
            Value::Int { dims, data } => int_value(
                indices.iter().map(Vec::len).collect(),
                host::select_per_axis(data, dims, indices),
            ),
            Value::Float { tensor, rank } => {
                float_value(tensor.clone().slice_dim(padded(ax, *rank), range), *rank)
            }
        }
    }

    fn slice(&self, node: &NodeInfo) -> Result<Value, GraphError> {
        let v = self.value(node, 0)?;
        let dims = v.dims();
        let rank = dims.len();
        let (starts, ends, axes, steps) = if node.input(1).is_some() {
            (
                self.host(node, 1)?.to_i64(),
                self.host(node, 2)?.to_i64(),
                self.opt_host(node, 3)?.map(|h| h.to_i64()),
                self.opt_host(node, 4)?.map(|h| h.to_i64()),
            )
        } else {
            (
                node.attr_ints("starts").unwrap_or_default(),
                node.attr_ints("ends").unwrap_or_default(),
                node.attr_ints("axes"),
                None,
            )
        };
        let axes = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
        let steps = steps.unwrap_or_else(|| vec![1; starts.len()]);
        if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
            return Err(node.shape_err("starts, ends, axes and steps differ in length"));
        }
        let mut indices: Vec<Vec<usize>> = dims.iter().map(|&d| (0..d).collect()).collect();
        for i in 0..starts.len() {
            let a = axis(node, axes[i], rank)?;
            let d = dims[a] as i64;
            let step = steps[i];
            if step == 0 {
                return Err(node.shape_err("slice step 0"));
            }
            let norm = |x: i64| if x < 0 { x + d } else { x };
            let (lo, hi) = if step > 0 { (0, d) } else { (-1, d - 1) };
            let start = norm(starts[i]).clamp(lo, hi);
            let end = norm(ends[i]).clamp(lo, hi);
            let mut picked = Vec::new();
            let mut x = start;
            while (step > 0 && x < end) || (step < 0 && x > end) {
                picked.push(x as usize);
                x += step;
            }
            indices[a] = picked;
        }
        match v {
            Value::Int { dims, data } => Ok(int_value(
                indices.iter().map(Vec::len).collect(),
                host::select_per_axis(&data, &dims, &indices),
            )),
            Value::Float { mut tensor, rank } => {
                for (a, picked) in indices.iter().enumerate() {
                    if picked.len() == dims[a] && picked.iter().enumerate().all(|(i, &p)| i == p) {
                        continue;
                    }
                    if picked.is_empty() {
                        return Err(node.shape_err(format!("slice of axis {a} is empty")));
                    }
                    let contiguous = picked.windows(2).all(|w| w[1] == w[0] + 1);
                    tensor = if contiguous {
                        tensor.slice_dim(padded(a, rank), picked[0]..picked[0] + picked.len())
                    } else {
                        tensor.select(padded(a, rank), index_tensor(picked, &self.device))
                    };
                }
                Ok(float_value(tensor, rank))
            }
        }
    }

    fn reshape_like(&self, node: &NodeInfo) -> Result<Value, GraphError> {
        let v = self.value(node, 0)?;
        let dims = v.dims();
        let numel: usize = dims.iter().product();
        let new_dims: Vec<usize> = match node.op.as_str() {
            "Reshape" => {
                let shape = self.host(node, 1)?.to_i64();
                let allow_zero = node.attr_int("allowzero").unwrap_or(0) == 1;
                let mut out = Vec::with_capacity(shape.len());
                let mut infer = None;
                for (i, &s) in shape.iter().enumerate() {
                    match s {
                        0 if !allow_zero => out.push(*dims.get(i).ok_or_else(|| {
                            node.shape_err(format!("shape {shape:?} copies dim {i} of {dims:?}"))
                        })?),
                        -1 if infer.is_none() => {
                            infer = Some(i);
                            out.push(1);
                        }
                        s if s >= 0 => out.push(s as usize),
                        _ => return Err(node.shape_err(format!("invalid target shape {shape:?}"))),
                    }
                }
                if let Some(i) = infer {
                    let known: usize = out.iter().product();
                    if known == 0 || numel % known != 0 {
                        return Err(node.shape_err(format!("cannot reshape {dims:?} to {shape:?}")));
                    }
                    out[i] = numel / known;
                }
                out
            }
            "Flatten" => {
                let a = node.attr_int("axis").unwrap_or(1);
                let a = if a < 0 { a + dims.len() as i64 } else { a };
                if a < 0 || a > dims.len() as i64 {
                    return Err(node.bad_attr("axis", format!("{a} for rank {}", dims.len())));
                }
                let a = a as usize;
                vec![dims[..a].iter().product(), dims[a..].iter().product()]
            }
            "Squeeze" => {
                let axes = match self.opt_host(node, 1)? {
                    Some(h) => Some(h.to_i64()),
                    None => node.attr_ints("axes"),
                };
                match axes {
                    None => dims.iter().copied().filter(|&d| d != 1).collect(),
                    Some(axes) => {
                        let axes: Vec<usize> = axes
                            .iter()
                            .map(|&a| axis(node, a, dims.len()))
                            .collect::<Result<_, _>>()?;
                        if let Some(&a) = axes.iter().find(|&&a| dims[a] != 1) {
                            return Err(node.shape_err(format!("axis {a} of {dims:?} is not 1")));
                        }
                        dims.iter()
                            .enumerate()
                            .filter(|(a, _)| !axes.contains(a))
                            .map(|(_, &d)| d)
                            .collect()
                    }
                }
            }
            _ => {
                let axes = match self.opt_host(node, 1)? {
                    Some(h) => h.to_i64(),
                    None => node
                        .attr_ints("axes")
                        .ok_or_else(|| node.bad_attr("axes", "missing"))?,
                };
                let out_rank = dims.len() + axes.len();
                let mut axes: Vec<usize> = axes
                    .iter()
                    .map(|&a| axis(node, a, out_rank))
                    .collect::<Result<_, _>>()?;
                axes.sort_unstable();
                let mut out = dims.clone();
                for a in axes {
                    out.insert(a.min(out.len()), 1);
                }
                out
            }
        };
        if new_dims.iter().product::<usize>() != numel || new_dims.len() > MAX_RANK {
            return Err(node.shape_err(format!("cannot reshape {dims:?} to {new_dims:?}")));
        }
        Ok(match v {
            Value::Int { data, .. } => int_value(new_dims, data),
            Value::Float { tensor, .. } => float_value(reshape(tensor, &new_dims), new_dims.len()),
        })
    }

    fn transpose(&self, node: &NodeInfo) -> Result<Value, GraphError> {
        let v = self.value(node, 0)?;
        let rank = v.rank();
        let perm: Vec<usize> = match node.attr_ints("perm") {
            None => (0..rank).rev().collect(),
            Some(p) => p
                .iter()
                .map(|&a| axis(node, a, rank))
                .collect::<Result<_, _>>()?,
        };
        let mut sorted = perm.clone();
        sorted.sort_unstable();
        if sorted != (0..rank).collect::<Vec<_>>() {
            return Err(node.bad_attr(
                "perm",
                format!("{perm:?} is not a permutation of rank {rank}"),
            ));
        }
        Ok(match v {
            Value::Int { dims, data } => int_value(
                perm.iter().map(|&p| dims[p]).collect(),
                host::transpose(&data, &dims, &perm),
            ),
            Value::Float { tensor, rank } => {
                let mut full = [0usize; MAX_RANK];
                for (i, slot) in full.iter_mut().enumerate() {
                    *slot = if i < MAX_RANK - rank {
                        i
                    } else {
                        padded(perm[i - (MAX_RANK - rank)], rank)
                    };
                }
                float_value(tensor.permute(full), rank)
            }
        })
    }

    fn expand(&self, node: &NodeInfo) -> Result<Value, GraphError> {
        let v = self.value(node, 0)?;
        let shape: Vec<usize> = self
            .host(node, 1)?
            .to_i64()
            .iter()
            .map(|&s| s.max(0) as usize)
            .collect();
        let dims = v.dims();
        let out = host::broadcast_shape(&dims, &shape)
            .filter(|o| o.len() <= MAX_RANK)
            .ok_or_else(|| node.shape_err(format!("{dims:?} does not expand to {shape:?}")))?;
        Ok(match v {
            Value::Int { dims, data } => {
                let data = host::broadcast_to(&data, &dims, &out);
                int_value(out, data)
            }
            Value::Float { tensor, .. } => float_value(tensor.expand(pad_dims(&out)), out.len()),
        })
    }

    fn global_pool(&self, node: &NodeInfo) -> Result<Value, GraphError> {
        let (x, rank) = self.float(node, 0)?;
        if rank < 3 {
            return Err(node.shape_err(format!("input rank {rank}, at least 3 expected")));
        }
        let spatial: Vec<usize> = (2..rank).map(|a| padded(a, rank)).collect();
        let y = if node.op == "GlobalAveragePool" {
            x.mean_dims(&spatial)
        } else {
            x.max_dims(&spatial)
        };
        Ok(float_value(y, rank))
    }

    fn pool(&self, node: &NodeInfo) -> Result<Value, GraphError> {
        let (x, rank) = self.float(node, 0)?;
        if rank != 4 {
            return Err(
                node.shape_err(format!("only 2-D pooling is supported (input rank {rank})"))
            );
        }
        let xd = dims_of(&x, 4);
        let kernel = self.pair(node, "kernel_shape", 1)?;
        let stride = self.pair(node, "strides", 1)?;
        let dilation = self.pair(node, "dilations", 1)?;
        let pads = self.window_pads(node, [xd[2], xd[3]], kernel, stride, dilation)?;
        let ceil_mode = node.attr_int("ceil_mode").unwrap_or(0) == 1;
        for a in 0..2 {
            if xd[2 + a] + pads[a].0 + pads[a].1 < (kernel[a] - 1) * dilation[a] + 1 {
                return Err(node.shape_err(format!(
                    "input {xd:?} is smaller than the window {kernel:?}"
                )));
            }
        }
        let y = if node.op == "MaxPool" {
            let options = MaxPoolOptions::new(kernel)
                .with_stride(stride)
                .with_padding_pairs(pads)
                .with_dilation(dilation)
                .with_ceil_mode(ceil_mode);
            max_pool2d(to4(x), options)
        } else {
            if dilation != [1, 1] {
                return Err(
                    node.bad_attr("dilations", "AveragePool with dilation is not supported")
                );
            }
            let options = AvgPoolOptions::new(kernel)
                .with_stride(stride)
                .with_padding_pairs(pads)
                .with_count_include_pad(node.attr_int("count_include_pad").unwrap_or(0) == 1)
                .with_ceil_mode(ceil_mode);
            avg_pool2d(to4(x), options)
        };
        Ok(float_value(from4(y), 4))
    }

    fn reduce(&self, node: &NodeInfo) -> Result<Value, GraphError> {
        let (x, rank) = self.float(node, 0)?;
        let dims = dims_of(&x, rank);
        let axes = match self.opt_host(node, 1)? {
            Some(h) => Some(h.to_i64()),
            None => node.attr_ints("axes"),
        };
        let axes: Vec<usize> = match axes {
            Some(a) if !a.is_empty() => a
                .iter()
                .map(|&v| axis(node, v, rank))
                .collect::<Result<_, _>>()?,
            _ if node.attr_int("noop_with_empty_axes").unwrap_or(0) == 1 => {
                return Ok(float_value(x, rank))
            }
            _ => (0..rank).collect(),
        };
        let stored: Vec<usize> = axes.iter().map(|&a| padded(a, rank)).collect();
        let y = match node.op.as_str() {
            "ReduceMean" => x.mean_dims(&stored),
            "ReduceSum" => x.sum_dims(&stored),
            "ReduceMax" => x.max_dims(&stored),
            _ => x.min_dims(&stored),
        };
        if node.attr_int("keepdims").unwrap_or(1) == 1 {
            return Ok(float_value(y, rank));
        }
        let kept: Vec<usize> = dims
            .iter()
            .enumerate()
            .filter(|(a, _)| !axes.contains(a))
            .map(|(_, &d)| d)
            .collect();
        Ok(float_value(reshape(y, &kept), kept.len()))
    }

    fn resize(&self, node: &NodeInfo) -> Result<Value, GraphError> {
        let (mut x, rank) = self.float(node, 0)?;
        let dims = dims_of(&x, rank);
        let (scales, sizes) = if node.op == "Upsample" {
            let scales = match node.attr_floats("scales") {
                Some(s) => s,
                None => self.host(node, 1)?.to_f32(),
            };
            (Some(scales), None)
        } else if node.inputs.len() == 2 {
            (Some(self.host(node, 1)?.to_f32()), None)
        } else {
            let scales = self.opt_host(node, 2)?.filter(|h| h.numel() > 0);
            let sizes = self.opt_host(node, 3)?.filter(|h| h.numel() > 0);
            (scales.map(|h| h.to_f32()), sizes.map(|h| h.to_i64()))
        };
        let plan: Vec<(usize, f32)> = match (scales, sizes) {
            (_, Some(sizes)) if sizes.len() == rank => sizes
                .iter()
                .zip(&dims)
                .map(|(&s, &d)| (s.max(0) as usize, s as f32 / d as f32))
                .collect(),
            (Some(scales), None) if scales.len() == rank => scales
                .iter()
                .zip(&dims)
                .map(|(&s, &d)| (((d as f32) * s).floor() as usize, s))
                .collect(),
            _ => {
                return Err(node.shape_err(format!(
                    "needs scales or sizes with one value per axis of {dims:?}"
                )))
            }
        };
        let mode = node.attr_string("mode").unwrap_or_else(|| "nearest".into());
        let coordinates = if node.op == "Upsample" {
            "asymmetric".to_string()
        } else {
            node.attr_string("coordinate_transformation_mode")
                .unwrap_or_else(|| "half_pixel".into())
        };
        let nearest_mode = if node.op == "Upsample" {
            "floor".to_string()
        } else {
            node.attr_string("nearest_mode")
                .unwrap_or_else(|| "round_prefer_floor".into())
        };
        for (a, &(out_len, scale)) in plan.iter().enumerate() {
            let in_len = dims[a];
            if out_len == in_len && scale == 1.0 {
                continue;
            }
            if out_len == 0 || in_len == 0 || scale <= 0.0 {
                return Err(
                    node.shape_err(format!("cannot resize axis {a} of {dims:?} to {out_len}"))
                );
            }
            let source = |i: usize| -> f32 {
                let i = i as f32;
                match coordinates.as_str() {
                    "half_pixel" => (i + 0.5) / scale - 0.5,
                    "pytorch_half_pixel" if out_len > 1 => (i + 0.5) / scale - 0.5,
                    "pytorch_half_pixel" => 0.0,
                    // The resized length is `in * scale` before flooring (ONNX's reference
                    // implementation and tract agree; with `sizes` it is the size itself).
                    "align_corners" if out_len > 1 => {
                        i * (in_len as f32 - 1.0) / (in_len as f32 * scale - 1.0)
                    }
                    "align_corners" => 0.0,
                    "tf_half_pixel_for_nn" => (i + 0.5) / scale,
                    _ => i / scale,
                }
            };
            let last = in_len as i64 - 1;
            let clamp = |v: i64| v.clamp(0, last) as usize;
            let pa = padded(a, rank);
            if mode == "nearest" {
                let picked: Vec<usize> = (0..out_len)
                    .map(|i| {
                        let s = source(i);
                        let fraction = s - s.floor();
                        let r = match nearest_mode.as_str() {
                            "floor" => s.floor(),
                            "ceil" => s.ceil(),
                            "round_prefer_ceil" if fraction == 0.5 => s.ceil(),
                            "round_prefer_floor" if fraction == 0.5 => s.floor(),
                            _ => s.round(),
                        };
                        clamp(r as i64)
                    })
                    .collect();
                x = x.select(pa, index_tensor(&picked, &self.device));
            } else {
                let mut low = Vec::with_capacity(out_len);
                let mut high = Vec::with_capacity(out_len);
                let mut weight_high = Vec::with_capacity(out_len);
                for i in 0..out_len {
                    let s = source(i);
                    let base = s.floor();
                    low.push(clamp(base as i64));
                    high.push(clamp(base as i64 + 1));
                    weight_high.push(s - base);
                }
                let mut wshape = vec![1usize; rank];
                wshape[a] = out_len;
                let wh =
                    Tensor::<1>::from_data(TensorData::new(weight_high, [out_len]), &self.device);
                let wh = reshape(wh.reshape(pad_dims(&[out_len])), &wshape);
                let wl = wh.clone().neg().add_scalar(1.0);
                let xl = x.clone().select(pa, index_tensor(&low, &self.device));
                let xh = x.select(pa, index_tensor(&high, &self.device));
                x = xl.mul(wl).add(xh.mul(wh));
            }
        }
        Ok(float_value(x, rank))
    }

    fn gemm(&self, node: &NodeInfo) -> Result<Value, GraphError> {
        let (a, ra) = self.float(node, 0)?;
        let (b, rb) = self.float(node, 1)?;
        if ra != 2 || rb != 2 {
            return Err(node.shape_err(format!("Gemm needs rank-2 A and B, got {ra} and {rb}")));
        }
        let mut a: Tensor<2> = {
            let d = dims_of(&a, 2);
            a.reshape([d[0], d[1]])
        };
        let mut b: Tensor<2> = {
            let d = dims_of(&b, 2);
            b.reshape([d[0], d[1]])
        };
        if node.attr_int("transA").unwrap_or(0) == 1 {
            a = a.transpose();
        }
        if node.attr_int("transB").unwrap_or(0) == 1 {
            b = b.transpose();
        }
        let (ad, bd) = (a.dims(), b.dims());
        if ad[1] != bd[0] {
            return Err(node.shape_err(format!("A {ad:?} and B {bd:?} do not multiply")));
        }
        let alpha = node.attr_float("alpha").unwrap_or(1.0);
        let beta = node.attr_float("beta").unwrap_or(1.0);
        let mut y = a.matmul(b);
        if alpha != 1.0 {
            y = y.mul_scalar(alpha);
        }
        let mut y: T6 = y.reshape(pad_dims(&[ad[0], bd[1]]));
        if let Some(c) = self.opt_value(node, 2)? {
            let cd = c.dims();
            if host::broadcast_shape(&cd, &[ad[0], bd[1]]).as_deref() != Some(&[ad[0], bd[1]][..]) {
                return Err(node.shape_err(format!(
                    "C {cd:?} does not broadcast to [{}, {}]",
                    ad[0], bd[1]
                )));
            }
            let (c, _) = c.into_float(&self.device);
            y = y.add(if beta != 1.0 { c.mul_scalar(beta) } else { c });
        }
        Ok(float_value(y, 2))
    }

    fn matmul(&self, node: &NodeInfo) -> Result<Value, GraphError> {
        let (a, ra) = self.float(node, 0)?;
        let (b, rb) = self.float(node, 1)?;
        let (mut ad, mut bd) = (dims_of(&a, ra), dims_of(&b, rb));
        if ra == 0 || rb == 0 {
            return Err(node.shape_err("MatMul of a scalar"));
        }
        if rb == 1 {
            bd.push(1);
        }
        if ra == 1 {
            ad.insert(0, 1);
        }
        let (ka, kb) = (ad[ad.len() - 1], bd[bd.len() - 2]);
        let batch_a = &ad[..ad.len() - 2];
        let batch_b = &bd[..bd.len() - 2];
        let batch = host::broadcast_shape(batch_a, batch_b);
        if ka != kb || batch.is_none() || ad.len().max(bd.len()) > MAX_RANK {
            return Err(node.shape_err(format!("{ad:?} and {bd:?} do not multiply")));
        }
        let mut out_dims = batch.unwrap_or_default();
        out_dims.push(ad[ad.len() - 2]);
        out_dims.push(bd[bd.len() - 1]);
        let y = reshape(a, &ad).matmul(reshape(b, &bd));
        if rb == 1 {
            out_dims.pop();
        }
        if ra == 1 {
            out_dims.remove(out_dims.len() - if rb == 1 { 1 } else { 2 });
        }
        Ok(float_value(reshape(y, &out_dims), out_dims.len()))
    }

    fn softmax(&self, node: &NodeInfo) -> Result<Value, GraphError> {
        let (x, rank) = self.float(node, 0)?;
        let opset = self.module.graph.opset;
        let default_axis = if opset >= 13 { -1 } else { 1 };
        let ax = axis(node, node.attr_int("axis").unwrap_or(default_axis), rank)?;
        let log = node.op == "LogSoftmax";
        let apply = |t: T6, dim: usize| {
            if log {
                activation::log_softmax(t, dim)
            } else {
                activation::softmax(t, dim)
            }
        };
        if opset >= 13 {
            return Ok(float_value(apply(x, padded(ax, rank)), rank));
        }
        // Before opset 13 the input is flattened to [prod(dims[..axis]), prod(dims[axis..])].
        let dims = dims_of(&x, rank);
        let flat = [
            dims[..ax].iter().product::<usize>(),
            dims[ax..].iter().product(),
        ];
        let y = apply(reshape(x, &flat), MAX_RANK - 1);
        Ok(float_value(reshape(y, &dims), rank))
    }

    fn pad(&self, node: &NodeInfo) -> Result<Value, GraphError> {
        let (mut x, rank) = self.float(node, 0)?;
        let dims = dims_of(&x, rank);
        let pads = match self.opt_host(node, 1)? {
            Some(h) => h.to_i64(),
            None => node
                .attr_ints("pads")
                .ok_or_else(|| node.bad_attr("pads", "missing"))?,
        };
        let value = match self.opt_host(node, 2)? {
            Some(h) if h.numel() > 0 => h.to_f32()[0],
            _ => node.attr_float("value").unwrap_or(0.0),
        };
        let axes: Vec<usize> = match self.opt_host(node, 3)? {
            Some(h) => h
                .to_i64()
                .iter()
                .map(|&a| axis(node, a, rank))
                .collect::<Result<_, _>>()?,
            None => (0..rank).collect(),
        };
        if pads.len() != 2 * axes.len() {
            return Err(node.shape_err(format!("{} pads for {} axes", pads.len(), axes.len())));
        }
        for (i, &a) in axes.iter().enumerate() {
            let (begin, end) = (pads[i], pads[i + axes.len()]);
            let pa = padded(a, rank);
            let len = x.dims()[pa] as i64;
            if begin < 0 || end < 0 {
                let lo = (-begin).max(0);
                let hi = len - (-end).max(0);
                if lo >= hi {
                    return Err(
                        node.shape_err(format!("pads {pads:?} crop axis {a} of {dims:?} away"))
                    );
                }
                x = x.slice_dim(pa, lo as usize..hi as usize);
            }
            let mut parts = Vec::new();
            let block = |n: i64, t: &T6| {
                let mut d = t.dims();
                d[pa] = n as usize;
                T6::full(d, value, &self.device)
            };
            if begin > 0 {
                parts.push(block(begin, &x));
            }
            let tail = if end > 0 { Some(block(end, &x)) } else { None };
            parts.push(x);
            parts.extend(tail);
            x = if parts.len() == 1 {
                parts.remove(0)
            } else {
                T6::cat(parts, pa)
            };
        }
        Ok(float_value(x, rank))
    }

    fn constant(&self, node: &NodeInfo) -> Result<Value, GraphError> {
        if let Some(t) = node.attr_tensor("value")? {
            return Ok(Value::from_host(&t, &self.device));
        }
        let host = if let Some(a) = node.attribute("value_float") {
            HostTensor {
                dims: vec![],
                data: HostData::F32(vec![a.f]),
            }
        } else if let Some(a) = node.attribute("value_floats") {
            HostTensor {
                dims: vec![a.floats.len()],
                data: HostData::F32(a.floats.clone()),
            }
        } else if let Some(a) = node.attribute("value_int") {
            HostTensor {
                dims: vec![],
                data: HostData::I64(vec![a.i]),
            }
        } else if let Some(a) = node.attribute("value_ints") {
            HostTensor {
                dims: vec![a.ints.len()],
                data: HostData::I64(a.ints.clone()),
            }
        } else {
            return Err(node.bad_attr("value", "Constant without a supported value attribute"));
        };
        Ok(Value::from_host(&host, &self.device))
    }

    fn constant_of_shape(&self, node: &NodeInfo) -> Result<Value, GraphError> {
        let shape = self.host(node, 0)?.to_i64();
        if shape.iter().any(|&d| d < 0) || shape.len() > MAX_RANK {
            return Err(node.shape_err(format!("invalid shape {shape:?}")));
        }
        let dims: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
        let fill = node.attr_tensor("value")?.unwrap_or(HostTensor {
            dims: vec![1],
            data: HostData::F32(vec![0.0]),
        });
        let numel: usize = dims.iter().product();
        Ok(match fill.data {
            HostData::F32(v) => float_value(
                T6::full(
                    pad_dims(&dims),
                    v.first().copied().unwrap_or(0.0),
                    &self.device,
                ),
                dims.len(),
            ),
            HostData::I64(v) => int_value(dims, vec![v.first().copied().unwrap_or(0); numel]),
        })
    }

    fn shape(&self, node: &NodeInfo) -> Result<Value, GraphError> {
        let dims = self.value(node, 0)?.dims();
        let rank = dims.len() as i64;
        let norm = |v: i64| (if v < 0 { v + rank } else { v }).clamp(0, rank) as usize;
        let start = norm(node.attr_int("start").unwrap_or(0));
        let end = norm(node.attr_int("end").unwrap_or(rank));
        let data: Vec<i64> = dims[start..end.max(start)]
            .iter()
            .map(|&d| d as i64)
            .collect();
        Ok(int_value(vec![data.len()], data))
    }

    fn gather(&self, node: &NodeInfo) -> Result<Value, GraphError> {
        let v = self.value(node, 0)?;
        let indices = self.host(node, 1)?;
        let dims = v.dims();
        let ax = axis(node, node.attr_int("axis").unwrap_or(0), dims.len())?;
        let len = dims[ax] as i64;
        let picked: Vec<usize> = indices
            .to_i64()
            .iter()
            .map(|&i| {
                let j = if i < 0 { i + len } else { i };
                if (0..len).contains(&j) {
                    Ok(j as usize)
                } else {
                    Err(node.shape_err(format!(
                        "index {i} is out of range for axis {ax} of {dims:?}"
                    )))
                }
            })
            .collect::<Result<_, _>>()?;
        let mut out_dims = dims[..ax].to_vec();
        out_dims.extend_from_slice(&indices.dims);
        out_dims.extend_from_slice(&dims[ax + 1..]);
        if out_dims.len() > MAX_RANK {
            return Err(
                node.shape_err(format!("result rank {} exceeds {MAX_RANK}", out_dims.len()))
            );
        }
        Ok(match v {
            Value::Int { dims, data } => {
                let (d, data) = host::gather(&data, &dims, ax, &picked, &indices.dims);
                int_value(d, data)
            }
            Value::Float { tensor, rank } => {
                let y = tensor.select(padded(ax, rank), index_tensor(&picked, &self.device));
                float_value(reshape(y, &out_dims), out_dims.len())
            }
        })
    }

    fn cast(&self, node: &NodeInfo) -> Result<Value, GraphError> {
        let v = self.value(node, 0)?;
        let to = node.attr_int("to").unwrap_or(0);
        Ok(match (cast_target(to), v) {
            (Some(CastTarget::Float), v) => {
                let (t, rank) = v.into_float(&self.device);
                float_value(t, rank)
            }
            (Some(CastTarget::Int), Value::Int { dims, data }) => int_value(dims, data),
            (Some(CastTarget::Bool), Value::Int { dims, data }) => {
                int_value(dims, data.iter().map(|&x| (x != 0) as i64).collect())
            }
            (Some(target), v) => {
                let host = v.to_host();
                let data = host
                    .to_f32()
                    .iter()
                    .map(|&x| match target {
                        CastTarget::Bool => (x != 0.0) as i64,
                        _ => x as i64,
                    })
                    .collect();
                int_value(host.dims, data)
            }
            (None, _) => {
                return Err(node.bad_attr("to", format!("element type {to} is not supported")))
            }
        })
    }
}
