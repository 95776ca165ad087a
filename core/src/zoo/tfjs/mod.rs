//! TF.js graph model -> ONNX.
//!
//! Only the subgraph feeding the requested outputs is converted. The model's input keeps its TF
//! layout (NHWC); one Transpose after each input switches to NCHW, every op then works in NCHW
//! (filters HWIO -> OIHW, axes remapped, constants broadcast in NCHW) and the outputs come out
//! NCHW. TF's SAME padding becomes explicit ONNX pads (the odd pixel goes bottom/right), and
//! `ResizeBilinear` maps to ONNX `Resize` with the exact coordinate transformation:
//! align_corners=false/half_pixel_centers=false -> `asymmetric`, half_pixel_centers -> `half_pixel`,
//! align_corners -> `align_corners`.
//!
//! Supported ops: Placeholder, Const, Identity, Conv2D, DepthwiseConv2dNative, _FusedConv2D and
//! FusedDepthwiseConv2dNative (fused BiasAdd and Relu / Relu6 / LeakyRelu / Sigmoid / Tanh / Elu),
//! Add, AddV2, Sub, Mul, RealDiv, Maximum, Minimum, Relu, Relu6, Sigmoid, Tanh, Elu, Mean
//! (keep_dims), ConcatV2, ResizeBilinear, ResizeNearestNeighbor. Anything else is an error naming
//! the op and the node.

mod graph;

use std::collections::HashMap;

use thiserror::Error;
use tract_onnx::pb::{ModelProto, NodeProto};

pub use graph::{GraphModel, TfData, TfNode, TfTensor};

use crate::model::builder as onnx;
use crate::model::OnnxBuilder;

/// Why a TF.js model could not be converted.
#[derive(Debug, Error)]
pub enum ConvertError {
    #[error("model.json: {0}")]
    Json(String),
    #[error("weights: {0}")]
    Weights(String),
    #[error("reading weight shard '{path}': {message}")]
    Shard { path: String, message: String },
    #[error("unsupported op '{op}' (node '{node}')")]
    UnsupportedOp { op: String, node: String },
    #[error("node '{node}' ({op}): {message}")]
    Node {
        node: String,
        op: String,
        message: String,
    },
    #[error("node '{node}' reads '{input}', which is not in the graph")]
    MissingInput { node: String, input: String },
    #[error("requested output '{0}' is not a node of the graph")]
    MissingOutput(String),
    #[error("the graph has a cycle through node '{0}'")]
    Cycle(String),
}

/// What to export: TF node name -> ONNX output name.
#[derive(Clone, Debug)]
pub struct ConvertOptions {
    pub outputs: Vec<(String, String)>,
}

/// Converts a TF.js graph model (`model.json` bytes; shards through `read_shard`) to ONNX
/// (opset 13).
pub fn convert(
    model_json: &[u8],
    read_shard: &mut dyn FnMut(&str) -> Result<Vec<u8>, ConvertError>,
    options: &ConvertOptions,
) -> Result<ModelProto, ConvertError> {
    let graph = GraphModel::parse(model_json, read_shard)?;
    convert_graph(&graph, options)
}

/// Converts an already parsed graph.
pub fn convert_graph(
    graph: &GraphModel,
    options: &ConvertOptions,
) -> Result<ModelProto, ConvertError> {
    let by_name: HashMap<&str, &TfNode> =
        graph.nodes.iter().map(|n| (n.name.as_str(), n)).collect();
    let order = subgraph_order(&by_name, options)?;
    let mut cx = Converter {
        graph,
        vals: HashMap::new(),
        b: OnnxBuilder::default(),
    };
    for node in order {
        cx.node(node)?;
    }
    for (tf, name) in &options.outputs {
        let act = cx.act_of(tf, "output")?;
        cx.b.node("Identity", name, &[&act.name], &[name], vec![]);
        cx.b.output(name, &act.shape);
    }
    Ok(cx.b.finish("nvtl-zoo tfjs-graph"))
}

/// Nodes feeding `options.outputs`, inputs before users.
fn subgraph_order<'g>(
    by_name: &HashMap<&str, &'g TfNode>,
    options: &ConvertOptions,
) -> Result<Vec<&'g TfNode>, ConvertError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    let mut marks: HashMap<&str, Mark> = HashMap::new();
    let mut order = Vec::new();
    for (tf, _) in &options.outputs {
        let root = *by_name
            .get(tf.as_str())
            .ok_or_else(|| ConvertError::MissingOutput(tf.clone()))?;
        // Iterative DFS: (node, next input to visit).
        let mut stack: Vec<(&TfNode, usize)> = vec![(root, 0)];
        if marks.contains_key(root.name.as_str()) {
            continue;
        }
        marks.insert(&root.name, Mark::Open);
        while let Some((node, i)) = stack.pop() {
            if i < node.inputs.len() {
                stack.push((node, i + 1));
                let (input, _) = split_ref(&node.inputs[i]);
                let dep = *by_name
                    .get(input)
                    .ok_or_else(|| ConvertError::MissingInput {
                        node: node.name.clone(),
                        input: input.to_string(),
                    })?;
                match marks.get(dep.name.as_str()) {
                    Some(Mark::Done) => {}
                    Some(Mark::Open) => return Err(ConvertError::Cycle(dep.name.clone())),
                    None => {
                        marks.insert(&dep.name, Mark::Open);
                        stack.push((dep, 0));
                    }
                }
            } else {
                marks.insert(&node.name, Mark::Done);
                order.push(node);
            }
        }
    }
    Ok(order)
}

/// `name:k` -> (`name`, k).
fn split_ref(s: &str) -> (&str, usize) {
    match s.rsplit_once(':') {
        Some((n, k)) => match k.parse() {
            Ok(k) => (n, k),
            Err(_) => (s, 0),
        },
        None => (s, 0),
    }
}

/// A converted value: a constant (still in TF layout) or an NCHW activation in the ONNX graph.
#[derive(Clone, Debug)]
enum Val<'g> {
    Const(&'g TfTensor),
    Act(Act),
}

#[derive(Clone, Debug)]
struct Act {
    name: String,
    /// NCHW.
    shape: [i64; 4],
}

struct Converter<'g> {
    graph: &'g GraphModel,
    vals: HashMap<String, Val<'g>>,
    b: OnnxBuilder,
}

/// NHWC axis -> NCHW axis.
const NHWC_TO_NCHW_AXIS: [usize; 4] = [0, 2, 3, 1];

impl<'g> Converter<'g> {
    fn err(node: &TfNode, message: impl Into<String>) -> ConvertError {
        ConvertError::Node {
            node: node.name.clone(),
            op: node.op.clone(),
            message: message.into(),
        }
    }

    fn val(&self, reference: &str, user: &str) -> Result<Val<'g>, ConvertError> {
        let (name, k) = split_ref(reference);
        if k != 0 {
            return Err(ConvertError::Node {
                node: user.to_string(),
                op: String::new(),
                message: format!(
                    "reads output {k} of '{name}'; only single-output producers are supported"
                ),
            });
        }
        self.vals
            .get(name)
            .cloned()
            .ok_or_else(|| ConvertError::MissingInput {
                node: user.to_string(),
                input: name.to_string(),
            })
    }

    fn act_of(&self, reference: &str, user: &str) -> Result<Act, ConvertError> {
        match self.val(reference, user)? {
            Val::Act(a) => Ok(a),
            Val::Const(_) => Err(ConvertError::Node {
                node: user.to_string(),
                op: String::new(),
                message: format!("expects a computed tensor but '{reference}' is a constant"),
            }),
        }
    }

    fn input(&self, node: &TfNode, i: usize) -> Result<Val<'g>, ConvertError> {
        let r = node
            .inputs
            .get(i)
            .ok_or_else(|| Self::err(node, format!("has no input {i}")))?;
        self.val(r, &node.name)
    }

    fn input_act(&self, node: &TfNode, i: usize) -> Result<Act, ConvertError> {
        match self.input(node, i)? {
            Val::Act(a) => Ok(a),
            Val::Const(_) => Err(Self::err(
                node,
                format!("input {i} must be computed, not a constant"),
            )),
        }
    }

    fn input_const(&self, node: &TfNode, i: usize) -> Result<&'g TfTensor, ConvertError> {
        match self.input(node, i)? {
            Val::Const(t) => Ok(t),
            Val::Act(_) => Err(Self::err(node, format!("input {i} must be a constant"))),
        }
    }

    fn node(&mut self, node: &'g TfNode) -> Result<(), ConvertError> {
        match node.op.as_str() {
            "Const" => {
                let t = self.graph.weights.get(&node.name).ok_or_else(|| {
                    match self.graph.unreadable.get(&node.name) {
                        Some(why) => Self::err(node, format!("value cannot be read: {why}")),
                        None => {
                            Self::err(node, "no value (neither in the weight shards nor inline)")
                        }
                    }
                })?;
                self.vals.insert(node.name.clone(), Val::Const(t));
            }
            "Placeholder" => self.placeholder(node)?,
            "Identity" | "StopGradient" | "Snapshot" => {
                let v = self.input(node, 0)?;
                self.vals.insert(node.name.clone(), v);
            }
            "Conv2D" => self.conv(node, false, &[])?,
            "DepthwiseConv2dNative" => self.conv(node, true, &[])?,
            "_FusedConv2D" | "FusedDepthwiseConv2dNative" => {
                let fused = attr_list_s(node, "fused_ops")?;
                self.conv(node, node.op == "FusedDepthwiseConv2dNative", &fused)?
            }
            "Add" | "AddV2" | "BiasAdd" => self.binary(node, "Add")?,
            "Sub" => self.binary(node, "Sub")?,
            "Mul" => self.binary(node, "Mul")?,
            "RealDiv" => self.binary(node, "Div")?,
            "Maximum" => self.binary(node, "Max")?,
            "Minimum" => self.binary(node, "Min")?,
            "Relu" | "Relu6" | "Sigmoid" | "Tanh" | "Elu" | "LeakyRelu" => {
                let x = self.input_act(node, 0)?;
                let alpha = if node.op == "LeakyRelu" {
                    attr_f(node, "alpha")?.unwrap_or(0.2)
                } else {
                    0.0
                };
                let out = self.activation(&node.op, alpha, &x.name, &node.name);
                self.vals.insert(
                    node.name.clone(),
                    Val::Act(Act {
                        name: out,
                        shape: x.shape,
                    }),
                );
            }
            "Mean" => self.mean(node)?,
            "ConcatV2" => self.concat(node)?,
            "ResizeBilinear" | "ResizeNearestNeighbor" => self.resize(node)?,
            _ => {
                return Err(ConvertError::UnsupportedOp {
                    op: node.op.clone(),
                    node: node.name.clone(),
                })
            }
        }
        Ok(())
    }

    fn placeholder(&mut self, node: &TfNode) -> Result<(), ConvertError> {
        if let Some(dtype) = node
            .attrs
            .get("dtype")
            .and_then(|v| v.get("type"))
            .and_then(|v| v.as_str())
        {
            if dtype != "DT_FLOAT" {
                return Err(Self::err(
                    node,
                    format!("input dtype {dtype}; only DT_FLOAT inputs are supported"),
                ));
            }
        }
        let dims = graph::dims_opt(node.attrs.get("shape").and_then(|v| v.get("shape")))
            .map_err(|m| Self::err(node, format!("shape: {m}")))?;
        if dims.len() != 4 {
            return Err(Self::err(
                node,
                format!(
                    "input of rank {}; only NHWC images (rank 4) are supported",
                    dims.len()
                ),
            ));
        }
        let mut nhwc = [0i64; 4];
        for (i, d) in dims.iter().enumerate() {
            nhwc[i] = match (i, d) {
                (_, Some(d)) => *d,
                (0, None) => 1,
                (_, None) => {
                    return Err(Self::err(
                        node,
                        "dynamic height/width/channels are not supported",
                    ))
                }
            };
        }
        self.b.input(&node.name, &nhwc);
        let out = format!("{}:nchw", node.name);
        self.b.node(
            "Transpose",
            &out,
            &[&node.name],
            &[&out],
            vec![onnx::attr_ints("perm", &[0, 3, 1, 2])],
        );
        self.vals.insert(
            node.name.clone(),
            Val::Act(Act {
                name: out,
                shape: [nhwc[0], nhwc[3], nhwc[1], nhwc[2]],
            }),
        );
        Ok(())
    }

    /// Conv2D / DepthwiseConv2dNative, optionally with fused ops (`BiasAdd`, then an activation).
    fn conv(
        &mut self,
        node: &TfNode,
        depthwise: bool,
        fused: &[String],
    ) -> Result<(), ConvertError> {
        let x = self.input_act(node, 0)?;
        let filter = self.input_const(node, 1)?;
        if let Some(fmt) = attr_s(node, "data_format")? {
            if fmt != "NHWC" {
                return Err(Self::err(
                    node,
                    format!("data_format {fmt}; only NHWC is supported"),
                ));
            }
        }
        if filter.shape.len() != 4 {
            return Err(Self::err(
                node,
                format!("filter of shape {:?}; expected rank 4", filter.shape),
            ));
        }
        let [kh, kw, fi, fo] = [
            filter.shape[0],
            filter.shape[1],
            filter.shape[2],
            filter.shape[3],
        ];
        let w = filter.to_f32();
        let c = x.shape[1] as usize;
        let (weights, co, group) = if depthwise {
            if fi != c {
                return Err(Self::err(
                    node,
                    format!("depthwise filter has {fi} input channels, the input has {c}"),
                ));
            }
            // [kh,kw,C,M] -> [C*M,1,kh,kw]; output channel c*M+m.
            let mut out = vec![0f32; w.len()];
            for y in 0..kh {
                for xx in 0..kw {
                    for ci in 0..fi {
                        for m in 0..fo {
                            out[((ci * fo + m) * kh + y) * kw + xx] =
                                w[((y * kw + xx) * fi + ci) * fo + m];
                        }
                    }
                }
            }
            (out, fi * fo, fi)
        } else {
            if fi == 0 || c % fi != 0 {
                return Err(Self::err(
                    node,
                    format!("filter has {fi} input channels, the input has {c}"),
                ));
            }
            // HWIO -> OIHW.
            let mut out = vec![0f32; w.len()];
            for y in 0..kh {
                for xx in 0..kw {
                    for i in 0..fi {
                        for o in 0..fo {
                            out[((o * fi + i) * kh + y) * kw + xx] =
                                w[((y * kw + xx) * fi + i) * fo + o];
                        }
                    }
                }
            }
            (out, fo, c / fi)
        };
        let strides = attr_hw(node, "strides")?.unwrap_or([1, 1]);
        let dilations = attr_hw(node, "dilations")?.unwrap_or([1, 1]);
        let padding = attr_s(node, "padding")?.unwrap_or_else(|| "VALID".into());
        let explicit = attr_list_i(node, "explicit_paddings")?;
        let mut pads = [0i64; 4]; // top, left, bottom, right
        let mut out_hw = [0i64; 2];
        for d in 0..2 {
            let input = x.shape[2 + d];
            let k = [kh, kw][d] as i64;
            let (s, dil) = (strides[d], dilations[d]);
            if s < 1 || dil < 1 {
                return Err(Self::err(node, "strides and dilations must be >= 1"));
            }
            let eff = (k - 1) * dil + 1;
            let (before, after) = match padding.as_str() {
                "VALID" => (0, 0),
                "SAME" => {
                    let out = (input + s - 1) / s;
                    let total = ((out - 1) * s + eff - input).max(0);
                    (total / 2, total - total / 2)
                }
                "EXPLICIT" => {
                    if explicit.len() != 8 {
                        return Err(Self::err(
                            node,
                            "EXPLICIT padding needs 8 explicit_paddings",
                        ));
                    }
                    (explicit[2 + 2 * d], explicit[3 + 2 * d])
                }
                other => {
                    return Err(Self::err(
                        node,
                        format!("padding '{other}' is not supported"),
                    ))
                }
            };
            let padded = input + before + after;
            if padded < eff {
                return Err(Self::err(
                    node,
                    format!("kernel {k} larger than the padded input {padded}"),
                ));
            }
            out_hw[d] = (padded - eff) / s + 1;
            pads[d] = before;
            pads[2 + d] = after;
        }
        let w_name = self.b.init_f32(
            &format!("{}:weights", node.name),
            &[co as i64, (c / group) as i64, kh as i64, kw as i64],
            weights,
        );
        let mut inputs = vec![x.name.clone(), w_name];
        let mut activation: Option<(String, f32)> = None;
        let mut next_arg = 2;
        for (i, op) in fused.iter().enumerate() {
            match op.as_str() {
                "BiasAdd" if i == 0 => {
                    let bias = self.input_const(node, next_arg)?;
                    next_arg += 1;
                    if bias.len() != co {
                        return Err(Self::err(
                            node,
                            format!("bias has {} values for {co} channels", bias.len()),
                        ));
                    }
                    let name = self.b.init_f32(
                        &format!("{}:bias", node.name),
                        &[co as i64],
                        bias.to_f32(),
                    );
                    inputs.push(name);
                }
                "Relu" | "Relu6" | "Sigmoid" | "Tanh" | "Elu" | "LeakyRelu"
                    if i + 1 == fused.len() =>
                {
                    let alpha = if op == "LeakyRelu" {
                        attr_f(node, "leakyrelu_alpha")?.unwrap_or(0.2)
                    } else {
                        0.0
                    };
                    activation = Some((op.clone(), alpha));
                }
                other => {
                    return Err(Self::err(
                        node,
                        format!("fused op sequence {fused:?} is not supported (at '{other}')"),
                    ))
                }
            }
        }
        let conv_out = if activation.is_some() {
            format!("{}:conv", node.name)
        } else {
            node.name.clone()
        };
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        self.b.node(
            "Conv",
            &conv_out,
            &refs,
            &[&conv_out],
            vec![
                onnx::attr_ints("kernel_shape", &[kh as i64, kw as i64]),
                onnx::attr_ints("strides", &strides),
                onnx::attr_ints("dilations", &dilations),
                onnx::attr_ints("pads", &pads),
                onnx::attr_int("group", group as i64),
            ],
        );
        let out = match activation {
            Some((op, alpha)) => self.activation(&op, alpha, &conv_out, &node.name),
            None => conv_out,
        };
        let shape = [x.shape[0], co as i64, out_hw[0], out_hw[1]];
        self.vals
            .insert(node.name.clone(), Val::Act(Act { name: out, shape }));
        Ok(())
    }

    /// Emits a TF activation; returns the output name (`out`).
    fn activation(&mut self, op: &str, alpha: f32, x: &str, out: &str) -> String {
        match op {
            "Relu6" => {
                let lo = self.b.init_f32(&format!("{out}:min"), &[], vec![0.0]);
                let hi = self.b.init_f32(&format!("{out}:max"), &[], vec![6.0]);
                self.b.node("Clip", out, &[x, &lo, &hi], &[out], vec![]);
            }
            "LeakyRelu" => self.b.node(
                "LeakyRelu",
                out,
                &[x],
                &[out],
                vec![onnx::attr_float("alpha", alpha)],
            ),
            "Elu" => self.b.node(
                "Elu",
                out,
                &[x],
                &[out],
                vec![onnx::attr_float("alpha", 1.0)],
            ),
            other => self.b.node(other, out, &[x], &[out], vec![]),
        }
        out.to_string()
    }

    /// Broadcasting element-wise op; constants are laid out for NCHW broadcasting.
    fn binary(&mut self, node: &TfNode, onnx_op: &str) -> Result<(), ConvertError> {
        if node.inputs.len() != 2 {
            return Err(Self::err(
                node,
                format!("{} inputs; expected 2", node.inputs.len()),
            ));
        }
        let mut names = Vec::new();
        let mut shapes = Vec::new();
        let mut any_act = false;
        for i in 0..2 {
            match self.input(node, i)? {
                Val::Act(a) => {
                    any_act = true;
                    names.push(a.name);
                    shapes.push(a.shape.to_vec());
                }
                Val::Const(t) => {
                    if t.shape.len() > 4 {
                        return Err(Self::err(
                            node,
                            format!("constant of rank {} in a 4-D op", t.shape.len()),
                        ));
                    }
                    // Left-pad to 4-D (numpy broadcasting), then NHWC -> NCHW.
                    let mut nhwc = vec![1usize; 4 - t.shape.len()];
                    nhwc.extend(&t.shape);
                    let data = nhwc_to_nchw(&t.to_f32(), &nhwc);
                    let nchw = [nhwc[0], nhwc[3], nhwc[1], nhwc[2]].map(|d| d as i64);
                    let name = if t.len() == 1 {
                        self.b.init_f32(&format!("{}:in{i}", node.name), &[], data)
                    } else {
                        self.b
                            .init_f32(&format!("{}:in{i}", node.name), &nchw, data)
                    };
                    names.push(name);
                    shapes.push(nchw.to_vec());
                }
            }
        }
        if !any_act {
            return Err(Self::err(
                node,
                "both inputs are constants (constant folding is not supported)",
            ));
        }
        let mut shape = [0i64; 4];
        for d in 0..4 {
            let (a, b) = (shapes[0][d], shapes[1][d]);
            shape[d] = if a == b || b == 1 {
                a
            } else if a == 1 {
                b
            } else {
                return Err(Self::err(
                    node,
                    format!(
                        "shapes {:?} and {:?} do not broadcast (NCHW)",
                        shapes[0], shapes[1]
                    ),
                ));
            };
        }
        self.b.node(
            onnx_op,
            &node.name,
            &[&names[0], &names[1]],
            &[&node.name],
            vec![],
        );
        self.vals.insert(
            node.name.clone(),
            Val::Act(Act {
                name: node.name.clone(),
                shape,
            }),
        );
        Ok(())
    }

    fn axes(&self, node: &TfNode, t: &TfTensor) -> Result<Vec<usize>, ConvertError> {
        t.to_i64()
            .into_iter()
            .map(|a| {
                let a = if a < 0 { a + 4 } else { a };
                if !(0..4).contains(&a) {
                    return Err(Self::err(
                        node,
                        format!("axis {a} out of range for a 4-D tensor"),
                    ));
                }
                Ok(NHWC_TO_NCHW_AXIS[a as usize])
            })
            .collect()
    }

    fn mean(&mut self, node: &TfNode) -> Result<(), ConvertError> {
        let x = self.input_act(node, 0)?;
        let axes = self.input_const(node, 1)?;
        let axes = self.axes(node, axes)?;
        if !attr_b(node, "keep_dims")?.unwrap_or(false) {
            return Err(Self::err(
                node,
                "keep_dims=false is not supported (the result would leave 4-D)",
            ));
        }
        let mut shape = x.shape;
        for &a in &axes {
            shape[a] = 1;
        }
        let axes_i: Vec<i64> = axes.iter().map(|&a| a as i64).collect();
        self.b.node(
            "ReduceMean",
            &node.name,
            &[&x.name],
            &[&node.name],
            vec![
                onnx::attr_ints("axes", &axes_i),
                onnx::attr_int("keepdims", 1),
            ],
        );
        self.vals.insert(
            node.name.clone(),
            Val::Act(Act {
                name: node.name.clone(),
                shape,
            }),
        );
        Ok(())
    }

    fn concat(&mut self, node: &TfNode) -> Result<(), ConvertError> {
        let n = node.inputs.len();
        if n < 2 {
            return Err(Self::err(node, "needs at least one tensor and the axis"));
        }
        let axis = self.input_const(node, n - 1)?;
        let axis = match self.axes(node, axis)?.as_slice() {
            [a] => *a,
            _ => return Err(Self::err(node, "axis must be a single value")),
        };
        let acts = (0..n - 1)
            .map(|i| self.input_act(node, i))
            .collect::<Result<Vec<_>, _>>()?;
        let mut shape = acts[0].shape;
        shape[axis] = 0;
        for a in &acts {
            for d in 0..4 {
                if d != axis && a.shape[d] != acts[0].shape[d] {
                    return Err(Self::err(
                        node,
                        format!(
                            "inputs {:?} and {:?} differ off the axis",
                            acts[0].shape, a.shape
                        ),
                    ));
                }
            }
            shape[axis] += a.shape[axis];
        }
        let names: Vec<&str> = acts.iter().map(|a| a.name.as_str()).collect();
        self.b.node(
            "Concat",
            &node.name,
            &names,
            &[&node.name],
            vec![onnx::attr_int("axis", axis as i64)],
        );
        self.vals.insert(
            node.name.clone(),
            Val::Act(Act {
                name: node.name.clone(),
                shape,
            }),
        );
        Ok(())
    }

    fn resize(&mut self, node: &TfNode) -> Result<(), ConvertError> {
        let x = self.input_act(node, 0)?;
        let size = self.input_const(node, 1)?.to_i64();
        let [h, w] = size[..] else {
            return Err(Self::err(
                node,
                format!("size {size:?}; expected [height, width]"),
            ));
        };
        if h < 1 || w < 1 {
            return Err(Self::err(node, format!("size {size:?} must be positive")));
        }
        let align_corners = attr_b(node, "align_corners")?.unwrap_or(false);
        let half_pixel = attr_b(node, "half_pixel_centers")?.unwrap_or(false);
        let bilinear = node.op == "ResizeBilinear";
        let (mode, nearest) = match (align_corners, half_pixel, bilinear) {
            (true, true, _) => {
                return Err(Self::err(
                    node,
                    "align_corners and half_pixel_centers are both set",
                ))
            }
            (false, false, true) => ("asymmetric", None),
            (false, true, true) => ("half_pixel", None),
            (true, false, true) => ("align_corners", None),
            (false, false, false) => ("asymmetric", Some("floor")),
            (false, true, false) => ("tf_half_pixel_for_nn", Some("floor")),
            (true, false, false) => ("align_corners", Some("round_prefer_ceil")),
        };
        let shape = [x.shape[0], x.shape[1], h, w];
        let sizes = self
            .b
            .init_i64(&format!("{}:sizes", node.name), &[4], shape.to_vec());
        let mut attrs = vec![
            onnx::attr_str("mode", if bilinear { "linear" } else { "nearest" }),
            onnx::attr_str("coordinate_transformation_mode", mode),
        ];
        if let Some(n) = nearest {
            attrs.push(onnx::attr_str("nearest_mode", n));
        }
        self.b.node(
            "Resize",
            &node.name,
            &[&x.name, "", "", &sizes],
            &[&node.name],
            attrs,
        );
        self.vals.insert(
            node.name.clone(),
            Val::Act(Act {
                name: node.name.clone(),
                shape,
            }),
        );
        Ok(())
    }
}

/// Reorders a dense NHWC buffer to NCHW.
fn nhwc_to_nchw(data: &[f32], nhwc: &[usize]) -> Vec<f32> {
    let [n, h, w, c] = [nhwc[0], nhwc[1], nhwc[2], nhwc[3]];
    let mut out = vec![0f32; data.len()];
    for b in 0..n {
        for y in 0..h {
            for x in 0..w {
                for ch in 0..c {
                    out[((b * c + ch) * h + y) * w + x] = data[((b * h + y) * w + x) * c + ch];
                }
            }
        }
    }
    out
}

fn attr<'n>(node: &'n TfNode, key: &str) -> Option<&'n serde_json::Value> {
    node.attrs.get(key)
}

fn bad_attr(node: &TfNode, key: &str, what: &str) -> ConvertError {
    ConvertError::Node {
        node: node.name.clone(),
        op: node.op.clone(),
        message: format!("attr '{key}': {what}"),
    }
}

/// A string attr (`{"s": base64}`).
fn attr_s(node: &TfNode, key: &str) -> Result<Option<String>, ConvertError> {
    let Some(v) = attr(node, key) else {
        return Ok(None);
    };
    let s = v
        .get("s")
        .and_then(|s| s.as_str())
        .ok_or_else(|| bad_attr(node, key, "not a string"))?;
    let bytes = graph::base64_decode(s).ok_or_else(|| bad_attr(node, key, "not base64"))?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| bad_attr(node, key, "not UTF-8"))
}

fn attr_b(node: &TfNode, key: &str) -> Result<Option<bool>, ConvertError> {
    let Some(v) = attr(node, key) else {
        return Ok(None);
    };
    match v.get("b") {
        None => Ok(Some(false)), // proto3 JSON omits false
        Some(b) => b
            .as_bool()
            .map(Some)
            .ok_or_else(|| bad_attr(node, key, "not a bool")),
    }
}

fn attr_f(node: &TfNode, key: &str) -> Result<Option<f32>, ConvertError> {
    let Some(v) = attr(node, key) else {
        return Ok(None);
    };
    match v.get("f") {
        None => Ok(Some(0.0)),
        Some(f) => f
            .as_f64()
            .or_else(|| f.as_str().and_then(|s| s.parse().ok()))
            .map(|f| Some(f as f32))
            .ok_or_else(|| bad_attr(node, key, "not a number")),
    }
}

fn attr_list_i(node: &TfNode, key: &str) -> Result<Vec<i64>, ConvertError> {
    let Some(v) = attr(node, key) else {
        return Ok(Vec::new());
    };
    let Some(list) = v.get("list").and_then(|l| l.get("i")) else {
        return Ok(Vec::new());
    };
    list.as_array()
        .ok_or_else(|| bad_attr(node, key, "not a list"))?
        .iter()
        .map(|i| {
            i.as_i64()
                .or_else(|| i.as_str().and_then(|s| s.parse().ok()))
                .ok_or_else(|| bad_attr(node, key, "not an integer list"))
        })
        .collect()
}

fn attr_list_s(node: &TfNode, key: &str) -> Result<Vec<String>, ConvertError> {
    let Some(v) = attr(node, key) else {
        return Ok(Vec::new());
    };
    let Some(list) = v.get("list").and_then(|l| l.get("s")) else {
        return Ok(Vec::new());
    };
    list.as_array()
        .ok_or_else(|| bad_attr(node, key, "not a list"))?
        .iter()
        .map(|s| {
            s.as_str()
                .and_then(graph::base64_decode)
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| bad_attr(node, key, "not a base64 string list"))
        })
        .collect()
}

/// `[1, h, w, 1]` (NHWC strides/dilations) -> `[h, w]`.
fn attr_hw(node: &TfNode, key: &str) -> Result<Option<[i64; 2]>, ConvertError> {
    let l = attr_list_i(node, key)?;
    match l.as_slice() {
        [] => Ok(None),
        [1, h, w, 1] => Ok(Some([*h, *w])),
        other => Err(bad_attr(
            node,
            key,
            &format!("{other:?}; expected [1, h, w, 1]"),
        )),
    }
}

/// Parses a ModelProto's node list for tests and tools: `(op_type, name)` pairs.
pub fn node_summary(model: &ModelProto) -> Vec<(String, String)> {
    model
        .graph
        .as_ref()
        .map(|g| {
            g.node
                .iter()
                .map(|n: &NodeProto| (n.op_type.clone(), n.name.clone()))
                .collect()
        })
        .unwrap_or_default()
}
