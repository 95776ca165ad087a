//! Structured channel pruning of ONNX CNNs (`trainer prune`), with TAO's flags and defaults.
//!
//! 1. [`groups::analyse`] finds the channel groups of the graph (see its module docs).
//! 2. [`Scores::compute`] rates every output channel of every prunable group: the L2 norm of
//!    each layer's filter (times |gamma| / sqrt(var + eps) of a BatchNormalization that directly
//!    follows, so folded and unfolded graphs rate alike), normalised per layer (`max` or `L2`),
//!    then equalised over the layers a group ties together (union = max, intersection = min,
//!    arithmetic or geometric mean).
//! 3. [`Plan::new`] keeps, per group, the channels scoring above the threshold, rounded up to a
//!    multiple of the granularity and at least the minimum filter count.
//! 4. [`Plan::apply`] slices every initializer along the kept channels; the result is a valid
//!    ONNX graph of the same function on the kept channels ([`Plan::mask`] gives the unpruned
//!    graph that reads only those channels: both compute the same outputs).
//!
//! [`search_threshold`] finds the threshold that reaches a target ratio of parameters, FLOPs or
//! measured latency.

pub mod groups;
pub mod report;
pub mod run;

use std::collections::HashMap;

use tract_onnx::pb::{ModelProto, TensorProto};

use crate::graph::{HostData, HostTensor};
pub use groups::{analyse, ChannelAnalysis, EditRole, Layout};

#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error("the ONNX model holds no graph")]
    NoGraph,
    #[error("shape inference failed: {0}")]
    Shapes(String),
    #[error("node '{node}': the pruner cannot see through it: {reason}")]
    Unsupported { node: String, reason: String },
    #[error("excluded layer '{0}' is not a Conv, ConvTranspose, Gemm or MatMul node (nor the name of one's weight or output) in the graph")]
    NoSuchLayer(String),
    #[error("initializer '{name}': {reason}")]
    Initializer { name: String, reason: String },
    #[error("threshold {threshold} removes every channel of the layer(s) {layers}; lower the threshold or set a minimum filter count (-nf)")]
    RemovesEverything { threshold: f32, layers: String },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Edit(#[from] crate::onnx_edit::EditError),
}

/// `-n`: how per-filter norms are scaled within a layer before the threshold applies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Normalizer {
    /// Divide by the layer's largest norm (scores in 0..=1; TAO's default).
    #[default]
    Max,
    /// Divide by the L2 norm of all the layer's norms.
    #[value(name = "L2", alias = "l2")]
    L2,
}

/// `-eq`: how the scores of layers tied by element-wise ops combine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Equalization {
    /// Keep a channel any tied layer keeps (maximum score; TAO's default).
    #[default]
    Union,
    /// Keep a channel only if every tied layer keeps it (minimum score).
    Intersection,
    #[value(name = "arithmetic_mean")]
    ArithmeticMean,
    #[value(name = "geometric_mean")]
    GeometricMean,
}

/// TAO's pruning parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct PruneOptions {
    /// `-pth`: channels whose normalised score is at most this go.
    pub threshold: f32,
    /// `-pg`: kept channel counts are multiples of this.
    pub granularity: usize,
    /// `-nf`: every group keeps at least this many channels (or all it has, if fewer).
    pub min_filters: usize,
    pub normalizer: Normalizer,
    pub equalization: Equalization,
    /// `-el`: layers whose output channels are never pruned.
    pub excluded: Vec<String>,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            threshold: 0.1,
            granularity: 8,
            min_filters: 16,
            normalizer: Normalizer::Max,
            equalization: Equalization::Union,
            excluded: Vec::new(),
        }
    }
}

fn initializer<'m>(proto: &'m ModelProto, name: &str) -> Result<&'m TensorProto, PruneError> {
    proto
        .graph
        .as_ref()
        .ok_or(PruneError::NoGraph)?
        .initializer
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| PruneError::Initializer {
            name: name.into(),
            reason: "not found".into(),
        })
}

fn host(t: &TensorProto) -> Result<HostTensor, PruneError> {
    HostTensor::from_proto(t).map_err(|reason| PruneError::Initializer {
        name: t.name.clone(),
        reason,
    })
}

/// Per-channel L2 norms of `t` along `axis`.
fn channel_norms(t: &HostTensor, axis: usize) -> Vec<f32> {
    let values = t.to_f32();
    let channels = t.dims[axis];
    let inner: usize = t.dims[axis + 1..].iter().product();
    let mut sums = vec![0f64; channels];
    for (i, v) in values.iter().enumerate() {
        sums[(i / inner) % channels] += f64::from(*v) * f64::from(*v);
    }
    sums.into_iter().map(|s| s.sqrt() as f32).collect()
}

/// Channel scores of every prunable group (`None` for fixed groups).
#[derive(Clone, Debug)]
pub struct Scores {
    pub per_group: Vec<Option<Vec<f32>>>,
}

impl Scores {
    pub fn compute(
        proto: &ModelProto,
        analysis: &ChannelAnalysis,
        normalizer: Normalizer,
        equalization: Equalization,
    ) -> Result<Scores, PruneError> {
        let graph = proto.graph.as_ref().ok_or(PruneError::NoGraph)?;
        let mut per_group = Vec::with_capacity(analysis.groups.len());
        for group in &analysis.groups {
            if group.fixed.is_some() || group.sources.is_empty() {
                per_group.push(None);
                continue;
            }
            let mut layer_scores: Vec<Vec<f32>> = Vec::new();
            for source in &group.sources {
                let edit = analysis
                    .edits
                    .iter()
                    .find(|e| e.node == source.node && e.role == EditRole::Producer)
                    .ok_or_else(|| {
                        PruneError::Invalid(format!("no weight for '{}'", source.node))
                    })?;
                let weight = host(initializer(proto, &edit.init)?)?;
                let mut norms = channel_norms(&weight, edit.axis);
                // A BatchNormalization reading the layer's output scales each channel.
                let node = graph.node.iter().find(|n| n.name == source.node);
                let output = node.and_then(|n| n.output.first());
                let bn = output.and_then(|o| {
                    graph
                        .node
                        .iter()
                        .find(|n| n.op_type == "BatchNormalization" && n.input.first() == Some(o))
                });
                if let Some(bn) = bn {
                    let eps = bn
                        .attribute
                        .iter()
                        .find(|a| a.name == "epsilon")
                        .map_or(1e-5, |a| a.f);
                    let gamma = host(initializer(proto, &bn.input[1])?)?.to_f32();
                    let var = host(initializer(proto, &bn.input[4])?)?.to_f32();
                    for (c, n) in norms.iter_mut().enumerate() {
                        *n *= gamma[c].abs() / (var[c] + eps).sqrt();
                    }
                }
                // Normalised over the whole layer, as TAO does, then the group's range of it.
                let scale = match normalizer {
                    Normalizer::Max => norms.iter().cloned().fold(0f32, f32::max),
                    Normalizer::L2 => norms.iter().map(|n| n * n).sum::<f32>().sqrt(),
                };
                if scale > 0.0 {
                    norms.iter_mut().for_each(|n| *n /= scale);
                }
                let range = source.offset..source.offset + group.channels;
                let norms = norms.get(range).map(<[f32]>::to_vec).ok_or_else(|| {
                    PruneError::Invalid(format!(
                        "'{}' has fewer than {} output channels",
                        source.node,
                        source.offset + group.channels
                    ))
                })?;
                layer_scores.push(norms);
            }
            let channels = group.channels;
            let combined: Vec<f32> = (0..channels)
                .map(|c| {
                    let values = layer_scores.iter().map(|s| s[c]);
                    let k = layer_scores.len() as f32;
                    match equalization {
                        Equalization::Union => values.fold(f32::MIN, f32::max),
                        Equalization::Intersection => values.fold(f32::MAX, f32::min),
                        Equalization::ArithmeticMean => values.sum::<f32>() / k,
                        Equalization::GeometricMean => {
                            (values.map(|v| v.max(1e-30).ln()).sum::<f32>() / k).exp()
                        }
                    }
                })
                .collect();
            per_group.push(Some(combined));
        }
        Ok(Scores { per_group })
    }
}

/// Per initializer name: (axis, kept positions along it) for every axis that shrinks.
type Cuts = HashMap<String, Vec<(usize, Vec<usize>)>>;

/// Which channels every group keeps.
#[derive(Clone, Debug)]
pub struct Plan {
    pub analysis: ChannelAnalysis,
    /// Kept channel indices per group (sorted); all of them for fixed groups.
    pub kept: Vec<Vec<usize>>,
    pub threshold: f32,
}

impl Plan {
    /// Applies `options`' threshold, granularity and minimum to the scores.
    pub fn new(
        analysis: &ChannelAnalysis,
        scores: &Scores,
        options: &PruneOptions,
    ) -> Result<Plan, PruneError> {
        let mut kept = Vec::with_capacity(analysis.groups.len());
        let mut emptied = Vec::new();
        for (group, scores) in analysis.groups.iter().zip(&scores.per_group) {
            let Some(scores) = scores else {
                kept.push((0..group.channels).collect());
                continue;
            };
            let total = scores.len();
            let above = scores.iter().filter(|&&s| s > options.threshold).count();
            let granularity = options.granularity.max(1);
            let mut count = above.div_ceil(granularity) * granularity;
            count = count.max(options.min_filters.min(total)).min(total);
            if count == 0 {
                emptied.push(
                    group
                        .sources
                        .iter()
                        .map(|s| s.node.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                );
                kept.push(Vec::new());
                continue;
            }
            let mut order: Vec<usize> = (0..total).collect();
            // Highest score first; ties keep the lower index.
            order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
            let mut chosen = order[..count].to_vec();
            chosen.sort_unstable();
            kept.push(chosen);
        }
        if !emptied.is_empty() {
            return Err(PruneError::RemovesEverything {
                threshold: options.threshold,
                layers: emptied.join("; "),
            });
        }
        Ok(Plan {
            analysis: analysis.clone(),
            kept,
            threshold: options.threshold,
        })
    }

    fn is_pruned(&self, layout: &Layout) -> bool {
        layout
            .segments
            .iter()
            .any(|s| self.kept[s.group].len() < self.analysis.groups[s.group].channels)
    }

    fn kept_positions(&self, layout: &Layout) -> Vec<usize> {
        layout.kept_positions(&|g| self.kept[g].clone())
    }

    /// Kept input and output channels (times the input's flatten factor) of a layer.
    pub fn layer_kept(&self, layer: &groups::Layer) -> (usize, usize) {
        (
            self.kept_positions(&layer.input).len(),
            self.kept_positions(&layer.output).len(),
        )
    }

    /// Parameters (float initializer elements) of the pruned graph.
    pub fn params(&self, proto: &ModelProto) -> Result<usize, PruneError> {
        let cuts = self.cuts()?;
        let graph = proto.graph.as_ref().ok_or(PruneError::NoGraph)?;
        Ok(graph
            .initializer
            .iter()
            .filter(|t| t.data_type == tract_onnx::pb::tensor_proto::DataType::Float as i32)
            .map(|t| {
                let mut dims: Vec<usize> = t.dims.iter().map(|&d| d.max(0) as usize).collect();
                for (axis, positions) in cuts.get(&t.name).into_iter().flatten() {
                    dims[*axis] = positions.len();
                }
                dims.iter().product::<usize>()
            })
            .sum())
    }

    /// Per initializer, the kept positions along each axis that changes.
    fn cuts(&self) -> Result<Cuts, PruneError> {
        let mut slices = Cuts::new();
        for e in &self.analysis.edits {
            if !self.is_pruned(&e.layout) {
                continue;
            }
            let positions = self.kept_positions(&e.layout);
            let entry = slices.entry(e.init.clone()).or_default();
            match entry.iter().find(|(axis, _)| *axis == e.axis) {
                Some((_, existing)) if *existing != positions => {
                    return Err(PruneError::Invalid(format!(
                        "initializer '{}' is shared by layers that keep different channels",
                        e.init
                    )))
                }
                Some(_) => {}
                None => entry.push((e.axis, positions)),
            }
        }
        Ok(slices)
    }

    /// FLOPs per image of the Conv/Gemm/MatMul layers after pruning.
    pub fn flops(&self) -> u64 {
        self.analysis
            .layers
            .iter()
            .map(|l| {
                let (ki, ko) = self.layer_kept(l);
                l.flops(ki, ko)
            })
            .sum()
    }

    /// FLOPs after / before pruning.
    pub fn flops_ratio(&self) -> f64 {
        self.flops() as f64 / self.flops_before().max(1) as f64
    }

    /// FLOPs per image of the Conv/Gemm/MatMul layers before pruning.
    pub fn flops_before(&self) -> u64 {
        self.analysis
            .layers
            .iter()
            .map(|l| l.flops(l.input.channels() * l.input.inner, l.output.channels()))
            .sum()
    }

    /// The pruned graph: every edited initializer sliced to its kept channels, flatten-reshapes
    /// made size-independent, output shapes refreshed.
    pub fn apply(&self, proto: &ModelProto) -> Result<ModelProto, PruneError> {
        let mut out = proto.clone();
        let slices = self.cuts()?;
        let graph = out.graph.as_mut().ok_or(PruneError::NoGraph)?;
        for t in &mut graph.initializer {
            let Some(cuts) = slices.get(&t.name) else {
                continue;
            };
            let mut tensor = host(t)?;
            for (axis, positions) in cuts {
                tensor = slice_axis(&tensor, *axis, positions);
            }
            *t = tensor.to_proto(&t.name);
        }
        for shape in &self.analysis.reshapes {
            if let Some(t) = graph.initializer.iter_mut().find(|t| t.name == *shape) {
                *t = HostTensor {
                    dims: vec![2],
                    data: HostData::I64(vec![0, -1]),
                }
                .to_proto(shape);
            }
        }
        for (sizes, layout) in &self.analysis.resize_sizes {
            let channels = self.kept_positions(layout).len() as i64;
            if let Some(t) = graph.initializer.iter_mut().find(|t| t.name == *sizes) {
                let mut tensor = host(t)?;
                if let HostData::I64(v) = &mut tensor.data {
                    if v.len() >= 2 {
                        v[1] = channels;
                    }
                }
                *t = tensor.to_proto(sizes);
            }
        }
        // A depthwise conv has one group per (kept) channel.
        for layer in self.analysis.layers.iter().filter(|l| l.depthwise) {
            let channels = self.kept_positions(&layer.input).len() as i64;
            if let Some(group) = graph
                .node
                .iter_mut()
                .find(|n| n.name == layer.node)
                .and_then(|n| n.attribute.iter_mut().find(|a| a.name == "group"))
            {
                group.i = channels;
            }
        }
        crate::onnx_edit::refresh_output_dims(&mut out)?;
        Ok(out)
    }

    /// The unpruned graph with the consumers' weights of every removed channel zeroed: it reads
    /// exactly what the pruned graph keeps, so both compute the same outputs.
    pub fn mask(&self, proto: &ModelProto) -> Result<ModelProto, PruneError> {
        let mut out = proto.clone();
        let graph = out.graph.as_mut().ok_or(PruneError::NoGraph)?;
        for e in &self.analysis.edits {
            if e.role != EditRole::Consumer || !self.is_pruned(&e.layout) {
                continue;
            }
            let kept: std::collections::HashSet<usize> =
                self.kept_positions(&e.layout).into_iter().collect();
            let t = graph
                .initializer
                .iter_mut()
                .find(|t| t.name == e.init)
                .ok_or_else(|| PruneError::Initializer {
                    name: e.init.clone(),
                    reason: "not found".into(),
                })?;
            let tensor = host(t)?;
            let mut values = tensor.to_f32();
            let channels = tensor.dims[e.axis];
            let inner: usize = tensor.dims[e.axis + 1..].iter().product();
            for (i, v) in values.iter_mut().enumerate() {
                if !kept.contains(&((i / inner) % channels)) {
                    *v = 0.0;
                }
            }
            *t = HostTensor {
                dims: tensor.dims,
                data: HostData::F32(values),
            }
            .to_proto(&e.init);
        }
        Ok(out)
    }
}

/// `t` restricted to `positions` along `axis`.
fn slice_axis(t: &HostTensor, axis: usize, positions: &[usize]) -> HostTensor {
    let outer: usize = t.dims[..axis].iter().product();
    let channels = t.dims[axis];
    let inner: usize = t.dims[axis + 1..].iter().product();
    let mut dims = t.dims.clone();
    dims[axis] = positions.len();
    let pick = |values: &[f32]| -> Vec<f32> {
        let mut out = Vec::with_capacity(outer * positions.len() * inner);
        for o in 0..outer {
            for &p in positions {
                let start = (o * channels + p) * inner;
                out.extend_from_slice(&values[start..start + inner]);
            }
        }
        out
    };
    let data = match &t.data {
        HostData::F32(v) => HostData::F32(pick(v)),
        HostData::I64(v) => {
            let as_f: Vec<f32> = v.iter().map(|&x| x as f32).collect();
            HostData::I64(pick(&as_f).into_iter().map(|x| x as i64).collect())
        }
    };
    HostTensor { dims, data }
}

/// The plan whose `measure` (pruned / unpruned) is at most `ratio`, by [`search_threshold`]
/// over `options` with the threshold varied; returns the plan and the ratio it reached.
pub fn search_plan(
    analysis: &ChannelAnalysis,
    scores: &Scores,
    options: &PruneOptions,
    ratio: f64,
    steps: usize,
    mut measure: impl FnMut(&Plan) -> Result<f64, PruneError>,
) -> Result<(Plan, f64), PruneError> {
    let plan_at = |threshold: f32| {
        Plan::new(
            analysis,
            scores,
            &PruneOptions {
                threshold,
                ..options.clone()
            },
        )
    };
    let (threshold, reached) = search_threshold(scores, ratio, steps, |t| measure(&plan_at(t)?))?;
    Ok((plan_at(threshold)?, reached))
}

/// What a target ratio measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Params,
    Flops,
    Latency,
}

/// Finds the smallest threshold whose plan's `measure` (pruned / unpruned, decreasing as the
/// threshold grows) is at most `ratio`, by bisection over `[0, hi]` where `hi` is the highest
/// score. `measure` returns `Err` for thresholds that remove everything; those count as too far.
pub fn search_threshold(
    scores: &Scores,
    ratio: f64,
    steps: usize,
    mut measure: impl FnMut(f32) -> Result<f64, PruneError>,
) -> Result<(f32, f64), PruneError> {
    let hi_score = scores
        .per_group
        .iter()
        .flatten()
        .flat_map(|s| s.iter().cloned())
        .fold(0f32, f32::max);
    let (mut lo, mut hi) = (0f32, hi_score);
    let mut best: Option<(f32, f64)> = None;
    for _ in 0..steps {
        let mid = 0.5 * (lo + hi);
        match measure(mid) {
            Ok(r) if r <= ratio => {
                best = Some((mid, r));
                hi = mid;
            }
            Ok(_) => lo = mid,
            Err(PruneError::RemovesEverything { .. }) => hi = mid,
            Err(e) => return Err(e),
        }
    }
    if best.is_none() {
        let r = measure(hi_score)?;
        if r <= ratio {
            best = Some((hi_score, r));
        }
    }
    best.ok_or_else(|| {
        PruneError::Invalid(format!(
            "no threshold reaches the target ratio {ratio} (the minimum filter count and the fixed layers keep more); lower -nf or exclude fewer layers"
        ))
    })
}
