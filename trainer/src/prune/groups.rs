//! Channel groups: which output channels of which layers must be kept or removed together.
//!
//! Every value in the graph that carries channels (axis 1, NCHW or `[N, C]`) gets a [`Layout`]:
//! the concatenation, along its channel axis, of segments of channel groups. A Conv or Gemm starts
//! a new group with its output channels; BatchNormalization, activations, pooling, Resize and Pad
//! pass the layout through; element-wise ops between two activations tie their groups (union-find);
//! Concat on the channel axis concatenates layouts; a depthwise conv keeps its input's layout;
//! Flatten repeats each channel over the flattened spatial positions. Groups that reach a graph
//! output, that a layer the user excluded produces, or that meet an op whose channel mapping is
//! not one of these are *fixed*: never pruned. An op the analysis cannot follow that receives
//! prunable channels is an error naming it, so a pruned graph is always valid.

use std::collections::{HashMap, HashSet};

use tract_onnx::pb::{ModelProto, NodeProto};
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::InferenceModelExt;

use crate::graph::HostTensor;

use super::PruneError;

/// A run of `len` consecutive channels of group `group`, starting at its channel `start`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub group: usize,
    pub start: usize,
    pub len: usize,
}

/// The channel axis of a value as segments of groups; each channel occupies `inner` consecutive
/// positions (1, or H*W after a Flatten of an `[N, C, H, W]` value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub segments: Vec<Segment>,
    pub inner: usize,
}

impl Layout {
    fn whole(group: usize, len: usize) -> Layout {
        Layout {
            segments: vec![Segment {
                group,
                start: 0,
                len,
            }],
            inner: 1,
        }
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.segments.iter().map(|s| s.len).sum()
    }

    /// Positions along the axis that survive when group `g` keeps `kept(g)` (sorted indices).
    pub fn kept_positions(&self, kept: &dyn Fn(usize) -> Vec<usize>) -> Vec<usize> {
        let mut positions = Vec::new();
        let mut offset = 0;
        for s in &self.segments {
            for c in kept(s.group) {
                if c >= s.start && c < s.start + s.len {
                    let channel = offset + c - s.start;
                    positions.extend(channel * self.inner..(channel + 1) * self.inner);
                }
            }
            offset += s.len;
        }
        positions
    }
}

/// How an initializer changes when channels go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EditRole {
    /// Output channels of a Conv/Gemm weight or bias.
    Producer,
    /// One value per channel: BatchNormalization, PRelu, depthwise kernels, per-channel constants.
    PerChannel,
    /// Input channels of a consuming Conv/Gemm: the only place a removed channel is read.
    Consumer,
}

/// Slice initializer `init` along `axis` to the positions `layout` keeps.
#[derive(Clone, Debug)]
pub struct Edit {
    pub init: String,
    pub axis: usize,
    pub layout: Layout,
    pub role: EditRole,
    /// The node the edit belongs to.
    pub node: String,
}

/// A Conv / ConvTranspose / Gemm / MatMul layer, for the per-layer report.
#[derive(Clone, Debug)]
pub struct Layer {
    pub node: String,
    pub op: String,
    pub input: Layout,
    pub output: Layout,
    /// Weight elements and bias elements before pruning.
    pub weight_params: usize,
    pub bias_params: usize,
    /// Output spatial positions per image (1 for Gemm).
    pub positions: usize,
    /// Convolution groups (1 = dense).
    pub conv_groups: usize,
    /// A depthwise conv, which keeps its input's channels instead of starting its own.
    pub depthwise: bool,
}

impl Layer {
    /// Parameters after pruning to `kept_in` input and `kept_out` output channels.
    pub fn params(&self, kept_in: usize, kept_out: usize) -> usize {
        let (in0, out0) = (
            self.input.channels() * self.input.inner,
            self.output.channels(),
        );
        if self.conv_groups > 1 {
            // Depthwise: one kernel per channel.
            return self.weight_params * kept_out / out0.max(1)
                + self.bias_params * kept_out / out0.max(1);
        }
        self.weight_params * kept_in * kept_out / (in0 * out0).max(1)
            + self.bias_params * kept_out / out0.max(1)
    }

    /// Multiply-adds counted as two FLOPs, per image.
    pub fn flops(&self, kept_in: usize, kept_out: usize) -> u64 {
        let (in0, out0) = (
            self.input.channels() * self.input.inner,
            self.output.channels(),
        );
        let weights = if self.conv_groups > 1 {
            self.weight_params * kept_out / out0.max(1)
        } else {
            self.weight_params * kept_in * kept_out / (in0 * out0).max(1)
        };
        2 * weights as u64 * self.positions as u64
    }
}

/// Output channels `offset..offset + channels` of Conv/Gemm node `node`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub node: String,
    pub offset: usize,
}

/// One channel group after union-find: the output channels of `sources` that stay together.
#[derive(Clone, Debug)]
pub struct Group {
    pub channels: usize,
    /// The layers' output channels this group is (a whole layer's, or a range of them where
    /// an element-wise op meets a concat).
    pub sources: Vec<Source>,
    /// Why the group is never pruned (graph output, excluded layer, untraceable op).
    pub fixed: Option<String>,
}

/// The result of [`analyse`].
#[derive(Clone, Debug)]
pub struct ChannelAnalysis {
    pub groups: Vec<Group>,
    pub layers: Vec<Layer>,
    pub edits: Vec<Edit>,
    /// Reshape nodes' constant target shapes that flatten channel data: rewritten as `[0, -1]`.
    pub reshapes: Vec<String>,
    /// Resize nodes' constant `sizes` (initializer, layout of the resized value): entry 1 is the
    /// channel count.
    pub resize_sizes: Vec<(String, Layout)>,
}

struct UnionFind {
    parent: Vec<usize>,
    channels: Vec<usize>,
    sources: Vec<Vec<Source>>,
    fixed: Vec<Option<String>>,
    /// The groups a root was split into, in channel order (empty while it is whole).
    parts: Vec<Vec<usize>>,
}

impl UnionFind {
    fn add(&mut self, channels: usize, source: Option<&str>, fixed: Option<String>) -> usize {
        let sources = source
            .map(|node| {
                vec![Source {
                    node: node.to_string(),
                    offset: 0,
                }]
            })
            .unwrap_or_default();
        self.push(channels, sources, fixed)
    }

    fn push(&mut self, channels: usize, sources: Vec<Source>, fixed: Option<String>) -> usize {
        self.parent.push(self.parent.len());
        self.channels.push(channels);
        self.sources.push(sources);
        self.fixed.push(fixed);
        self.parts.push(Vec::new());
        self.parent.len() - 1
    }

    fn find(&mut self, g: usize) -> usize {
        let mut root = g;
        while self.parent[root] != root {
            root = self.parent[root];
        }
        let mut g = g;
        while self.parent[g] != root {
            let next = self.parent[g];
            self.parent[g] = root;
            g = next;
        }
        root
    }

    /// Splits group `g` at channel offsets `cuts`, so that a channel range of it can be tied
    /// on its own. Its sources and fixed state carry over to the parts.
    fn split(&mut self, g: usize, cuts: &[usize]) {
        let r = self.find(g);
        if !self.parts[r].is_empty() {
            let mut start = 0;
            for part in self.parts[r].clone() {
                let len = self.channels[part];
                let local: Vec<usize> = cuts
                    .iter()
                    .filter(|&&c| c > start && c < start + len)
                    .map(|&c| c - start)
                    .collect();
                if !local.is_empty() {
                    self.split(part, &local);
                }
                start += len;
            }
            return;
        }
        let total = self.channels[r];
        let mut ends: Vec<usize> = cuts
            .iter()
            .copied()
            .filter(|&c| c > 0 && c < total)
            .collect();
        if ends.is_empty() {
            return;
        }
        ends.sort_unstable();
        ends.dedup();
        ends.push(total);
        let mut start = 0;
        let mut parts = Vec::with_capacity(ends.len());
        for end in ends {
            let sources = self.sources[r]
                .iter()
                .map(|s| Source {
                    node: s.node.clone(),
                    offset: s.offset + start,
                })
                .collect();
            parts.push(self.push(end - start, sources, self.fixed[r].clone()));
            start = end;
        }
        self.parts[r] = parts;
    }

    /// `layout` over whole groups that were never split, each named by its root.
    fn leaves(&mut self, layout: &Layout) -> Layout {
        let mut segments = Vec::with_capacity(layout.segments.len());
        for s in &layout.segments {
            self.leaf_segments(s.group, s.start, s.len, &mut segments);
        }
        Layout {
            segments,
            inner: layout.inner,
        }
    }

    fn leaf_segments(&mut self, g: usize, start: usize, len: usize, out: &mut Vec<Segment>) {
        let r = self.find(g);
        if self.parts[r].is_empty() {
            out.push(Segment {
                group: r,
                start,
                len,
            });
            return;
        }
        let mut offset = 0;
        for part in self.parts[r].clone() {
            let part_len = self.channels[part];
            let (lo, hi) = (start.max(offset), (start + len).min(offset + part_len));
            if lo < hi {
                self.leaf_segments(part, lo - offset, hi - lo, out);
            }
            offset += part_len;
        }
    }

    fn fix_layout(&mut self, layout: &Layout, reason: &str) {
        for s in self.leaves(layout).segments {
            if self.fixed[s.group].is_none() {
                self.fixed[s.group] = Some(reason.to_string());
            }
        }
    }

    fn prunable(&mut self, layout: &Layout) -> bool {
        let leaves = self.leaves(layout);
        leaves
            .segments
            .iter()
            .any(|s| self.fixed[s.group].is_none())
    }

    /// Ties two layouts channel for channel. Groups are split where the two sides' segments
    /// do not line up (a concat on one side, one conv's output on the other).
    fn tie(&mut self, a: &Layout, b: &Layout, node: &str) {
        if a.inner != b.inner || a.channels() != b.channels() {
            let reason = format!("'{node}' joins values of different channel layouts");
            self.fix_layout(a, &reason);
            self.fix_layout(b, &reason);
            return;
        }
        for s in a.segments.iter().chain(&b.segments) {
            self.split(s.group, &[s.start, s.start + s.len]);
        }
        let ends = |l: &Layout| {
            l.segments
                .iter()
                .scan(0, |end, s| {
                    *end += s.len;
                    Some(*end)
                })
                .collect::<Vec<usize>>()
        };
        let (la, lb) = (self.leaves(a), self.leaves(b));
        let cuts: Vec<usize> = ends(&la).into_iter().chain(ends(&lb)).collect();
        for l in [&la, &lb] {
            let mut offset = 0;
            for s in &l.segments {
                let local: Vec<usize> = cuts
                    .iter()
                    .filter(|&&c| c > offset && c < offset + s.len)
                    .map(|&c| c - offset)
                    .collect();
                self.split(s.group, &local);
                offset += s.len;
            }
        }
        let (la, lb) = (self.leaves(a), self.leaves(b));
        for (x, y) in la.segments.iter().zip(&lb.segments) {
            let (rx, ry) = (self.find(x.group), self.find(y.group));
            if rx == ry {
                continue;
            }
            self.parent[ry] = rx;
            let moved = std::mem::take(&mut self.sources[ry]);
            self.sources[rx].extend(moved);
            if self.fixed[rx].is_none() {
                self.fixed[rx] = self.fixed[ry].take();
            }
        }
    }
}

fn edit(init: &str, axis: usize, layout: &Layout, role: EditRole, node: &str) -> Edit {
    Edit {
        init: init.to_string(),
        axis,
        layout: layout.clone(),
        role,
        node: node.to_string(),
    }
}

/// Value shapes from tract's shape inference, by ONNX value name.
pub(crate) fn value_shapes(proto: &ModelProto) -> Result<HashMap<String, Vec<usize>>, PruneError> {
    let err = |e: TractError| PruneError::Shapes(format!("{e:#}"));
    let mut model = tract_onnx::onnx()
        .model_for_proto_model(proto)
        .map_err(err)?;
    let graph = proto.graph.as_ref().ok_or(PruneError::NoGraph)?;
    // Symbolic dimensions (a dynamic batch) count as 1: channel counts and per-image FLOPs do
    // not depend on them.
    let inits: HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let data_inputs = graph
        .input
        .iter()
        .filter(|i| !inits.contains(i.name.as_str()));
    for (slot, input) in data_inputs.enumerate() {
        let dims = crate::onnx_edit::value_dims(input);
        if dims.is_empty() {
            continue;
        }
        let shape: Vec<usize> = dims.iter().map(|d| d.unwrap_or(1)).collect();
        model
            .set_input_fact(slot, InferenceFact::dt_shape(f32::datum_type(), shape))
            .map_err(err)?;
    }
    model.analyse(false).map_err(err)?;
    let mut shapes = HashMap::new();
    for node in &graph.node {
        let Ok(id) = model.node_id_by_name(&node.name) else {
            continue;
        };
        for (slot, name) in node.output.iter().enumerate() {
            if let Ok(fact) = model.outlet_fact(OutletId::new(id, slot)) {
                if let Ok(Some(shape)) = fact.shape.as_concrete_finite() {
                    shapes.insert(name.clone(), shape.to_vec());
                }
            }
        }
    }
    for input in &graph.input {
        if let Ok(id) = model.node_id_by_name(&input.name) {
            if let Ok(Some(shape)) = model
                .outlet_fact(OutletId::new(id, 0))
                .map(|f| f.shape.as_concrete_finite().ok().flatten())
            {
                shapes.insert(input.name.clone(), shape.to_vec());
            }
        }
    }
    Ok(shapes)
}

fn attr_int(node: &NodeProto, name: &str) -> Option<i64> {
    node.attribute.iter().find(|a| a.name == name).map(|a| a.i)
}

fn attr_ints(node: &NodeProto, name: &str) -> Option<Vec<i64>> {
    node.attribute
        .iter()
        .find(|a| a.name == name)
        .map(|a| a.ints.clone())
}

const PASS_THROUGH: &[&str] = &[
    "Relu",
    "LeakyRelu",
    "Clip",
    "Sigmoid",
    "HardSigmoid",
    "HardSwish",
    "Tanh",
    "Elu",
    "Selu",
    "Softplus",
    "Softsign",
    "Identity",
    "Dropout",
    "Abs",
    "Neg",
    "Exp",
    "Sqrt",
    "Erf",
    "Gelu",
    "Mish",
    "Cast",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "LpPool",
    "Upsample",
];

const ELEMENTWISE: &[&str] = &["Add", "Sub", "Mul", "Div", "Max", "Min", "Pow"];

/// Ops whose outputs never carry channels (shape arithmetic).
const SHAPE_OPS: &[&str] = &["Shape", "Size", "Constant", "ConstantOfShape"];

/// Finds the channel groups of `proto`. `excluded` names layers (node names, or the names of
/// their weight initializers) whose output channels stay as they are.
pub fn analyse(proto: &ModelProto, excluded: &[String]) -> Result<ChannelAnalysis, PruneError> {
    let graph = proto.graph.as_ref().ok_or(PruneError::NoGraph)?;
    let shapes = value_shapes(proto)?;
    let inits: HashMap<&str, &tract_onnx::pb::TensorProto> = graph
        .initializer
        .iter()
        .map(|t| (t.name.as_str(), t))
        .collect();
    let init_dims = |name: &str| -> Option<Vec<usize>> {
        inits
            .get(name)
            .map(|t| t.dims.iter().map(|&d| d.max(0) as usize).collect())
    };
    // Constant nodes count as initializers for per-channel constants.
    let mut const_dims: HashMap<String, Vec<usize>> = HashMap::new();
    for node in graph.node.iter().filter(|n| n.op_type == "Constant") {
        if let Some(t) = node.attribute.iter().find_map(|a| a.t.as_ref()) {
            if let Some(out) = node.output.first() {
                const_dims.insert(out.clone(), t.dims.iter().map(|&d| d as usize).collect());
            }
        }
    }
    let is_const = |name: &str| inits.contains_key(name) || const_dims.contains_key(name);

    let mut uf = UnionFind {
        parent: Vec::new(),
        channels: Vec::new(),
        sources: Vec::new(),
        fixed: Vec::new(),
        parts: Vec::new(),
    };
    let mut layouts: HashMap<String, Layout> = HashMap::new();
    let mut layers = Vec::new();
    let mut edits: Vec<Edit> = Vec::new();
    let mut reshapes = Vec::new();
    let mut resize_sizes = Vec::new();
    let mut excluded_found: HashSet<&str> = HashSet::new();

    for input in &graph.input {
        if inits.contains_key(input.name.as_str()) {
            continue;
        }
        let channels = shapes
            .get(&input.name)
            .and_then(|s| s.get(1).copied())
            .unwrap_or(0);
        let g = uf.add(channels, None, Some("graph input".into()));
        layouts.insert(input.name.clone(), Layout::whole(g, channels));
    }

    for node in &graph.node {
        let op = node.op_type.as_str();
        let name = node.name.as_str();
        let label = format!("{name} ({op})");
        let data_inputs: Vec<&str> = node
            .input
            .iter()
            .map(String::as_str)
            .filter(|i| !i.is_empty() && !is_const(i))
            .collect();
        let in_layouts: Vec<Layout> = data_inputs
            .iter()
            .filter_map(|i| layouts.get(*i).cloned())
            .collect();
        let first = in_layouts.first().cloned();
        let rank_of = |value: &str| shapes.get(value).map(Vec::len);
        let out0 = node.output.first().cloned().unwrap_or_default();
        let set = |layouts: &mut HashMap<String, Layout>, layout: Layout| {
            layouts.insert(out0.clone(), layout);
        };

        match op {
            "Conv" | "ConvTranspose" => {
                let Some(input) = first else {
                    return Err(PruneError::Unsupported {
                        node: label,
                        reason: "its input's channels are not known".into(),
                    });
                };
                let weight = node.input.get(1).cloned().unwrap_or_default();
                let Some(wdims) = init_dims(&weight) else {
                    return Err(PruneError::Unsupported {
                        node: label,
                        reason: format!("its weight '{weight}' is not an initializer"),
                    });
                };
                let bias = node.input.get(2).filter(|b| !b.is_empty()).cloned();
                let groups = attr_int(node, "group").unwrap_or(1).max(1) as usize;
                let transpose = op == "ConvTranspose";
                let out_channels = if transpose {
                    wdims[1] * groups
                } else {
                    wdims[0]
                };
                let positions: usize = shapes
                    .get(&out0)
                    .map(|s| s[2..].iter().product())
                    .unwrap_or(1);
                let weight_params: usize = wdims.iter().product();
                let bias_params = bias
                    .as_deref()
                    .and_then(init_dims)
                    .map_or(0, |d| d.iter().product());
                let in_channels = input.channels();
                let depthwise =
                    !transpose && groups > 1 && groups == in_channels && out_channels == groups;
                let is_excluded = excluded
                    .iter()
                    .any(|e| e == name || *e == weight || out0 == *e);
                if is_excluded {
                    excluded_found.extend(
                        excluded
                            .iter()
                            .filter(|e| *e == name || **e == weight || out0 == **e)
                            .map(String::as_str),
                    );
                }
                if depthwise {
                    if is_excluded {
                        uf.fix_layout(&input, &format!("excluded layer '{name}'"));
                    }
                    edits.push(edit(&weight, 0, &input, EditRole::PerChannel, name));
                    if let Some(b) = &bias {
                        edits.push(edit(b, 0, &input, EditRole::PerChannel, name));
                    }
                    layers.push(Layer {
                        node: name.into(),
                        op: op.into(),
                        input: input.clone(),
                        output: input.clone(),
                        weight_params,
                        bias_params,
                        positions,
                        conv_groups: groups,
                        depthwise: true,
                    });
                    set(&mut layouts, input);
                    continue;
                }
                let fixed = if groups > 1 {
                    let reason = format!("grouped convolution '{name}'");
                    uf.fix_layout(&input, &reason);
                    Some(reason)
                } else if is_excluded {
                    Some(format!("excluded layer '{name}'"))
                } else {
                    None
                };
                let g = uf.add(out_channels, Some(name), fixed);
                let output = Layout::whole(g, out_channels);
                let (in_axis, out_axis) = if transpose { (0, 1) } else { (1, 0) };
                edits.push(edit(&weight, in_axis, &input, EditRole::Consumer, name));
                edits.push(edit(&weight, out_axis, &output, EditRole::Producer, name));
                if let Some(b) = &bias {
                    edits.push(edit(b, 0, &output, EditRole::Producer, name));
                }
                layers.push(Layer {
                    node: name.into(),
                    op: op.into(),
                    input,
                    output: output.clone(),
                    weight_params,
                    bias_params,
                    positions,
                    conv_groups: groups,
                    depthwise: false,
                });
                set(&mut layouts, output);
            }
            "Gemm" | "MatMul" => {
                let Some(input) = first else {
                    // Both operands constant or shapes only: nothing to prune here.
                    continue;
                };
                let weight = node.input.get(1).cloned().unwrap_or_default();
                let Some(wdims) = init_dims(&weight).filter(|d| d.len() == 2) else {
                    return Err(PruneError::Unsupported {
                        node: label,
                        reason: format!("its second operand '{weight}' is not a 2-D initializer"),
                    });
                };
                if rank_of(data_inputs[0]).is_some_and(|r| r != 2) {
                    return Err(PruneError::Unsupported {
                        node: label,
                        reason: "its input is not a [N, features] matrix".into(),
                    });
                }
                let trans_b = op == "Gemm" && attr_int(node, "transB").unwrap_or(0) != 0;
                if op == "Gemm" && attr_int(node, "transA").unwrap_or(0) != 0 {
                    uf.fix_layout(&input, &format!("transposed input of '{name}'"));
                }
                let (in_axis, out_axis) = if trans_b { (1, 0) } else { (0, 1) };
                let out_channels = wdims[out_axis];
                let bias = if op == "Gemm" {
                    node.input.get(2).filter(|b| !b.is_empty()).cloned()
                } else {
                    None
                };
                let is_excluded = excluded.iter().any(|e| e == name || *e == weight);
                if is_excluded {
                    excluded_found.extend(
                        excluded
                            .iter()
                            .filter(|e| *e == name || **e == weight)
                            .map(String::as_str),
                    );
                }
                let g = uf.add(
                    out_channels,
                    Some(name),
                    is_excluded.then(|| format!("excluded layer '{name}'")),
                );
                let output = Layout::whole(g, out_channels);
                edits.push(edit(&weight, in_axis, &input, EditRole::Consumer, name));
                edits.push(edit(&weight, out_axis, &output, EditRole::Producer, name));
                if let Some(b) = &bias {
                    if init_dims(b).is_some_and(|d| d.iter().product::<usize>() == out_channels) {
                        edits.push(Edit {
                            init: b.clone(),
                            axis: init_dims(b).map_or(0, |d| d.len() - 1),
                            layout: output.clone(),
                            role: EditRole::Producer,
                            node: name.into(),
                        });
                    }
                }
                layers.push(Layer {
                    node: name.into(),
                    op: op.into(),
                    input,
                    output: output.clone(),
                    weight_params: wdims.iter().product(),
                    bias_params: bias
                        .as_deref()
                        .and_then(init_dims)
                        .map_or(0, |d| d.iter().product()),
                    positions: 1,
                    conv_groups: 1,
                    depthwise: false,
                });
                set(&mut layouts, output);
            }
            "BatchNormalization" | "InstanceNormalization" => {
                let Some(input) = first else { continue };
                for param in node.input.iter().skip(1).filter(|p| !p.is_empty()) {
                    if inits.contains_key(param.as_str()) {
                        edits.push(edit(param, 0, &input, EditRole::PerChannel, name));
                    } else {
                        uf.fix_layout(&input, &format!("'{name}' has a non-constant parameter"));
                    }
                }
                set(&mut layouts, input);
            }
            "PRelu" => {
                let Some(input) = first else { continue };
                let slope = node.input.get(1).cloned().unwrap_or_default();
                per_channel_constant(
                    &mut uf,
                    &mut edits,
                    &input,
                    &slope,
                    init_dims(&slope).or_else(|| const_dims.get(&slope).cloned()),
                    rank_of(data_inputs[0]),
                    name,
                    inits.contains_key(slope.as_str()),
                );
                set(&mut layouts, input);
            }
            "Resize" => {
                if let Some(input) = first {
                    if let Some(sizes) = node.input.get(3).filter(|s| !s.is_empty()) {
                        if inits.contains_key(sizes.as_str()) {
                            resize_sizes.push((sizes.clone(), input.clone()));
                        } else {
                            uf.fix_layout(&input, &format!("'{name}' has computed sizes"));
                        }
                    }
                    set(&mut layouts, input);
                }
            }
            _ if PASS_THROUGH.contains(&op) => {
                if let Some(input) = first {
                    set(&mut layouts, input);
                }
            }
            "Pad" => {
                if let Some(input) = first {
                    let pads = node
                        .input
                        .get(1)
                        .and_then(|p| inits.get(p.as_str()))
                        .and_then(|t| HostTensor::from_proto(t).ok())
                        .map(|t| t.to_i64())
                        .or_else(|| attr_ints(node, "pads"));
                    let rank = rank_of(data_inputs[0]).unwrap_or(4);
                    let pads_channels = pads
                        .is_some_and(|p| p.len() == 2 * rank && (p[1] != 0 || p[1 + rank] != 0));
                    if pads_channels {
                        uf.fix_layout(&input, &format!("'{name}' pads the channel axis"));
                        let g = uf.add(0, None, Some(format!("output of '{name}'")));
                        set(&mut layouts, Layout::whole(g, 0));
                    } else {
                        set(&mut layouts, input);
                    }
                }
            }
            "ReduceMean" | "ReduceMax" | "ReduceSum" | "ReduceMin" => {
                let Some(input) = first else { continue };
                let rank = rank_of(data_inputs[0]).unwrap_or(4) as i64;
                let axes = attr_ints(node, "axes")
                    .or_else(|| {
                        node.input
                            .get(1)
                            .and_then(|a| inits.get(a.as_str()))
                            .and_then(|t| HostTensor::from_proto(t).ok())
                            .map(|t| t.to_i64())
                    })
                    .unwrap_or_else(|| (0..rank).collect());
                let reduces_channels = axes.iter().any(|&a| (a + rank) % rank == 1);
                if reduces_channels {
                    uf.fix_layout(&input, &format!("'{name}' reduces over channels"));
                } else {
                    set(&mut layouts, input);
                }
            }
            "Flatten" | "Reshape" | "Squeeze" | "Unsqueeze" => {
                let Some(input) = first else { continue };
                let in_shape = shapes.get(data_inputs[0]);
                let out_shape = shapes.get(&out0);
                match (in_shape, out_shape) {
                    (Some(i), Some(o))
                        if i.len() >= 2
                            && o.len() >= 2
                            && i[0] == o[0]
                            && i[1] == input.channels() * input.inner
                            && o[1] % i[1] == 0
                            && o[2..].iter().product::<usize>() == 1
                            && o[1] == i[1..].iter().product::<usize>() =>
                    {
                        // [N, C, ...] -> [N, C * spatial] (Flatten, Reshape to [N, -1], Squeeze).
                        let spatial = o[1] / i[1];
                        if op == "Reshape" {
                            if let Some(shape) = node.input.get(1) {
                                if inits.contains_key(shape.as_str()) {
                                    reshapes.push(shape.clone());
                                }
                            }
                        }
                        set(
                            &mut layouts,
                            Layout {
                                segments: input.segments.clone(),
                                inner: input.inner * spatial,
                            },
                        );
                    }
                    (Some(i), Some(o))
                        if i.len() >= 2
                            && o.len() >= 2
                            && i[0] == o[0]
                            && i[1] == o[1]
                            && input.inner == 1 =>
                    {
                        // Unit spatial axes added or removed behind the channel axis.
                        set(&mut layouts, input);
                    }
                    _ => {
                        if uf.prunable(&input) {
                            return Err(PruneError::Unsupported {
                                node: label,
                                reason: format!(
                                    "it reshapes channel data {:?} -> {:?}",
                                    in_shape, out_shape
                                ),
                            });
                        }
                    }
                }
            }
            _ if ELEMENTWISE.contains(&op) => {
                let rank = rank_of(&out0).unwrap_or(4);
                let out_channels = shapes.get(&out0).and_then(|s| s.get(1)).copied();
                let mut result: Option<Layout> = None;
                for value in node.input.iter().filter(|i| !i.is_empty()) {
                    if let Some(l) = layouts.get(value).cloned() {
                        // A value broadcast along the channel axis (one channel) ties nothing.
                        let broadcast = shapes.get(value).is_some_and(|d| {
                            let k = d.len() as isize - (rank as isize - 1);
                            k < 0 || d[k as usize] == 1
                        }) && out_channels.is_some_and(|c| c > 1);
                        if broadcast {
                            continue;
                        }
                        match &result {
                            None => result = Some(l),
                            Some(r) => {
                                if r.inner != l.inner {
                                    uf.fix_layout(r, &format!("'{name}'"));
                                    uf.fix_layout(&l, &format!("'{name}'"));
                                } else {
                                    uf.tie(r, &l, name);
                                }
                            }
                        }
                    }
                }
                let Some(output) = result.or(first) else {
                    continue;
                };
                for value in node.input.iter().filter(|i| is_const(i)) {
                    let dims = init_dims(value).or_else(|| const_dims.get(value).cloned());
                    per_channel_constant(
                        &mut uf,
                        &mut edits,
                        &output,
                        value,
                        dims,
                        Some(rank),
                        name,
                        inits.contains_key(value.as_str()),
                    );
                }
                set(&mut layouts, output);
            }
            "Concat" => {
                let rank = rank_of(&out0).unwrap_or(4) as i64;
                let axis = (attr_int(node, "axis").unwrap_or(1) + rank) % rank.max(1);
                let parts: Vec<Option<Layout>> =
                    node.input.iter().map(|i| layouts.get(i).cloned()).collect();
                if parts.iter().any(Option::is_none) {
                    // A constant operand: its channels cannot follow a pruned group.
                    for l in parts.iter().flatten() {
                        uf.fix_layout(l, &format!("'{name}' concatenates a constant"));
                    }
                    let g = uf.add(0, None, Some(format!("output of '{name}'")));
                    set(&mut layouts, Layout::whole(g, 0));
                    continue;
                }
                let parts: Vec<Layout> = parts.into_iter().flatten().collect();
                if axis == 1 && parts.iter().all(|p| p.inner == parts[0].inner) {
                    set(
                        &mut layouts,
                        Layout {
                            segments: parts.iter().flat_map(|p| p.segments.clone()).collect(),
                            inner: parts[0].inner,
                        },
                    );
                } else {
                    for p in &parts[1..] {
                        uf.tie(&parts[0], p, name);
                    }
                    set(&mut layouts, parts[0].clone());
                }
            }
            "Softmax" | "LogSoftmax" => {
                if let Some(input) = first {
                    let rank = rank_of(data_inputs[0]).unwrap_or(2) as i64;
                    let axis = (attr_int(node, "axis").unwrap_or(-1) + rank) % rank.max(1);
                    if axis == 1 {
                        uf.fix_layout(&input, &format!("'{name}' normalises over channels"));
                    }
                    set(&mut layouts, input);
                }
            }
            "Transpose" => {
                if let Some(input) = first {
                    let perm = attr_ints(node, "perm").unwrap_or_default();
                    if perm.get(1) == Some(&1) {
                        set(&mut layouts, input);
                    } else if uf.prunable(&input) {
                        return Err(PruneError::Unsupported {
                            node: label,
                            reason: format!("it moves the channel axis (perm {perm:?})"),
                        });
                    } else {
                        let channels = shapes.get(&out0).and_then(|s| s.get(1)).copied();
                        let g = uf.add(
                            channels.unwrap_or(0),
                            None,
                            Some(format!("output of '{name}'")),
                        );
                        set(&mut layouts, Layout::whole(g, channels.unwrap_or(0)));
                    }
                }
            }
            _ if SHAPE_OPS.contains(&op) => {}
            _ => {
                if in_layouts.iter().any(|l| uf.prunable(l)) {
                    return Err(PruneError::Unsupported {
                        node: label,
                        reason: "the pruner cannot follow channels through this op".into(),
                    });
                }
                // Only fixed channels come in: the outputs are fixed too.
                if !in_layouts.is_empty() {
                    for out in &node.output {
                        let channels = shapes.get(out).and_then(|s| s.get(1)).copied();
                        let g = uf.add(
                            channels.unwrap_or(0),
                            None,
                            Some(format!("output of '{name}'")),
                        );
                        layouts.insert(out.clone(), Layout::whole(g, channels.unwrap_or(0)));
                    }
                }
            }
        }
    }

    for output in &graph.output {
        if let Some(l) = layouts.get(&output.name).cloned() {
            uf.fix_layout(&l, &format!("reaches graph output '{}'", output.name));
        }
    }
    if let Some(missing) = excluded
        .iter()
        .find(|e| !excluded_found.contains(e.as_str()))
    {
        return Err(PruneError::NoSuchLayer(missing.clone()));
    }

    // Number the groups that were never split 0..n and rewrite every layout onto them.
    let mut index: HashMap<usize, usize> = HashMap::new();
    let mut groups = Vec::new();
    for g in 0..uf.parent.len() {
        let r = uf.find(g);
        if uf.parts[r].is_empty() && !index.contains_key(&r) {
            index.insert(r, groups.len());
            groups.push(Group {
                channels: uf.channels[r],
                sources: uf.sources[r].clone(),
                fixed: uf.fixed[r].clone(),
            });
        }
    }
    let mut remap = |l: &mut Layout| {
        *l = uf.leaves(l);
        for s in &mut l.segments {
            s.group = index[&s.group];
        }
    };
    for e in &mut edits {
        remap(&mut e.layout);
    }
    for (_, l) in &mut resize_sizes {
        remap(l);
    }
    for l in &mut layers {
        remap(&mut l.input);
        remap(&mut l.output);
    }
    Ok(ChannelAnalysis {
        groups,
        layers,
        edits,
        reshapes,
        resize_sizes,
    })
}

/// A constant operand of an op on channel data: sliced with the channels when it holds one
/// value per channel, left alone when it broadcasts (one value), fixed when it is not an
/// initializer that can be edited.
#[allow(clippy::too_many_arguments)]
fn per_channel_constant(
    uf: &mut UnionFind,
    edits: &mut Vec<Edit>,
    layout: &Layout,
    name: &str,
    dims: Option<Vec<usize>>,
    rank: Option<usize>,
    node: &str,
    editable: bool,
) {
    let Some(dims) = dims else { return };
    let rank = rank.unwrap_or(dims.len()).max(dims.len());
    // Broadcasting aligns trailing axes: the channel axis 1 of the value is axis
    // `1 - (rank - dims.len())` of the constant.
    let axis = 1 + dims.len() as isize - rank as isize;
    let channels = layout.channels() * layout.inner;
    if axis < 0 || dims[axis as usize] == 1 {
        return;
    }
    if dims[axis as usize] != channels || !editable {
        uf.fix_layout(
            layout,
            &format!("constant '{name}' of '{node}' does not follow the channels"),
        );
        return;
    }
    edits.push(edit(
        name,
        axis as usize,
        layout,
        EditRole::PerChannel,
        node,
    ));
}
