//! ONNX graphs executed by burn: load, forward (train and eval), freeze, export.
//!
//! [`GraphModule`] holds every float initializer that feeds tensor data as a burn parameter
//! and walks the ONNX nodes in order with burn tensor ops, so autodiff, optimizers and records
//! work on any ONNX CNN. Integer shape arithmetic runs on the host. [`GraphModule::to_proto`]
//! writes the same graph back with the current (trained, possibly resized) initializers.
//!
//! Which initializers are parameters: float initializers read as tensor data, except
//! one-element constants of elementwise arithmetic (hard-swish's `1/6`). Initializers read only
//! as shapes, axes, scales or clip bounds stay host constants. BatchNormalization running
//! statistics are parameters without gradient, moved by [`GraphModule::apply_batch_norm`].
//! Freeze through [`GraphModule::freeze_matching`] / [`GraphModule::freeze_depth`] (they keep
//! the counts and exports consistent), not through burn's `Module::freeze`.

mod error;
mod export;
mod host;
mod node;
mod ops;
mod value;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use burn::module::{Module, Param, ParamId};
use burn::tensor::{Device, Tensor, TensorData};
use tract_onnx::pb::ModelProto;

pub use error::GraphError;
pub use node::{HostData, HostTensor, NodeInfo};
pub use nvtl_core::model::Dim;
pub use ops::SUPPORTED_OPS;
pub use value::{Value, MAX_RANK};

use value::pad_dims;

/// How BatchNormalization normalises: batch statistics (`Train`) or running ones (`Eval`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Train,
    Eval,
}

/// The batch statistics one BatchNormalization node saw in a `Train` forward pass, detached.
#[derive(Clone, Debug)]
pub struct BatchNormUpdate {
    /// The node's name (as in [`NodeInfo::name`]).
    pub node: String,
    /// Per-channel batch mean, shape `[C]`.
    pub mean: Tensor<1>,
    /// Per-channel biased (population) batch variance, shape `[C]`.
    pub var: Tensor<1>,
}

/// The result of a forward pass.
#[derive(Clone, Debug)]
pub struct Forward {
    /// One value per graph output, in graph output order.
    pub outputs: Vec<Value>,
    /// Batch statistics of every BatchNormalization node (empty in `Eval`).
    pub batch_norm: Vec<BatchNormUpdate>,
}

/// What the module knows about one parameter.
#[derive(Clone, Debug)]
pub(crate) struct ParamInfo {
    pub name: String,
    /// Current ONNX shape.
    pub dims: Vec<usize>,
    /// A BatchNormalization running mean or variance: never trained, updated by
    /// [`GraphModule::apply_batch_norm`].
    pub running_stat: bool,
    pub frozen: bool,
}

/// The graph structure: everything but the parameter values.
#[derive(Clone, Debug)]
pub(crate) struct Graph {
    /// The loaded model without initializers, the template `to_proto` fills.
    pub model: ModelProto,
    pub opset: i64,
    pub nodes: Vec<NodeInfo>,
    pub input_name: String,
    pub input_dims: Vec<Dim>,
    pub output_names: Vec<String>,
    pub params: Vec<ParamInfo>,
    pub param_index: HashMap<String, usize>,
    /// Initializers that are not parameters: integer tensors and float constants.
    pub constants: HashMap<String, HostTensor>,
    /// Every initializer name in file order (new ones appended).
    pub initializer_order: Vec<String>,
    /// Value name -> index of the node producing it.
    pub producers: HashMap<String, usize>,
    /// Per node: values no later node or graph output reads, dropped after the node ran.
    pub frees: Vec<Vec<String>>,
    pub device: Device,
}

/// An ONNX model as a trainable burn module.
#[derive(Module, Debug)]
pub struct GraphModule {
    /// One parameter per float initializer that feeds tensor data, stored with leading unit
    /// dimensions up to rank [`MAX_RANK`] (see [`Value`]); order = `graph.params`.
    params: Vec<Param<Tensor<MAX_RANK>>>,
    #[module(skip)]
    graph: Arc<Graph>,
}

/// Matches `text` against a glob `pattern` with `*` (any run) and `?` (one character).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            backtrack = Some((pi, ti));
            pi += 1;
        } else if let Some((bp, bt)) = backtrack {
            pi = bp + 1;
            ti = bt + 1;
            backtrack = Some((bp, bt + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// The parameter id of initializer `name`: a hash of the name, so a graph reloaded from a
/// checkpoint has the ids its optimizer state was saved under.
pub fn param_id(name: &str) -> ParamId {
    // FNV-1a, 64 bit: stable across runs and platforms, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    ParamId::from(hash)
}

fn new_param(
    name: &str,
    values: Vec<f32>,
    dims: &[usize],
    device: &Device,
    trainable: bool,
) -> Param<Tensor<MAX_RANK>> {
    let tensor = Tensor::<MAX_RANK>::from_data(TensorData::new(values, pad_dims(dims)), device);
    Param::initialized(param_id(name), tensor).set_require_grad(trainable)
}

impl GraphModule {
    /// Reads an ONNX file and loads it onto `device`.
    pub fn from_onnx(path: &Path, device: &Device) -> Result<Self, GraphError> {
        let model = nvtl_core::model::read_onnx(path)?;
        Self::from_proto(&model.proto, device)
    }

    /// Loads a decoded ONNX model: every op and attribute is checked here, so an unsupported
    /// graph fails at load and not in the middle of training. Where the input shape is fully
    /// fixed and Resize nodes have constant `sizes`, one `Eval` pass on zeros converts those to
    /// `scales` (see [`Self::set_input_dims`]), so such a graph also proves it runs.
    pub fn from_proto(proto: &ModelProto, device: &Device) -> Result<Self, GraphError> {
        let graph = proto
            .graph
            .as_ref()
            .ok_or_else(|| GraphError::Graph("the model holds no graph".into()))?;
        let opset = proto
            .opset_import
            .iter()
            .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
            .map(|o| o.version)
            .unwrap_or(13);
        let nodes: Vec<NodeInfo> = graph
            .node
            .iter()
            .enumerate()
            .map(|(i, n)| NodeInfo::new(i, n.clone()))
            .collect();
        for node in &nodes {
            if !node.proto.domain.is_empty() && node.proto.domain != "ai.onnx" {
                return Err(GraphError::UnsupportedOp {
                    op: format!("{}:{}", node.proto.domain, node.op),
                    node: node.name.clone(),
                });
            }
            ops::check_node(node)?;
        }

        let mut decoded = Vec::with_capacity(graph.initializer.len());
        for t in &graph.initializer {
            let host = HostTensor::from_proto(t).map_err(|reason| GraphError::Initializer {
                name: t.name.clone(),
                reason,
            })?;
            if host.dims.len() > MAX_RANK {
                return Err(GraphError::Initializer {
                    name: t.name.clone(),
                    reason: format!("rank {} exceeds {MAX_RANK}", host.dims.len()),
                });
            }
            decoded.push((t.name.clone(), host));
        }
        let initializer_names: HashSet<&str> = decoded.iter().map(|(n, _)| n.as_str()).collect();

        // How each initializer is read: as tensor data (by which ops, which slots) or only on
        // the host.
        let mut data_uses: HashMap<&str, Vec<(&str, usize)>> = HashMap::new();
        for node in &nodes {
            for (k, name) in node.inputs.iter().enumerate() {
                if initializer_names.contains(name.as_str()) && !ops::is_host_input(&node.op, k) {
                    data_uses
                        .entry(name.as_str())
                        .or_default()
                        .push((node.op.as_str(), k));
                }
            }
        }

        let mut params = Vec::new();
        let mut param_values = Vec::new();
        let mut param_index = HashMap::new();
        let mut constants = HashMap::new();
        for (name, host) in &decoded {
            let uses = data_uses.get(name.as_str());
            let is_param = match (&host.data, uses) {
                (HostData::F32(_), Some(uses)) => {
                    !(host.numel() <= 1
                        && uses
                            .iter()
                            .all(|(op, _)| ops::is_elementwise_arithmetic(op)))
                }
                _ => false,
            };
            if !is_param {
                constants.insert(name.clone(), host.clone());
                continue;
            }
            let running_stat = uses.is_some_and(|u| {
                u.iter()
                    .all(|&(op, k)| op == "BatchNormalization" && k >= 3)
            });
            param_index.insert(name.clone(), params.len());
            param_values.push(new_param(
                name,
                host.to_f32(),
                &host.dims,
                device,
                !running_stat,
            ));
            params.push(ParamInfo {
                name: name.clone(),
                dims: host.dims.clone(),
                running_stat,
                frozen: false,
            });
        }

        let inputs: Vec<_> = graph
            .input
            .iter()
            .filter(|v| !initializer_names.contains(v.name.as_str()))
            .collect();
        let input = match inputs.as_slice() {
            [one] => *one,
            [] => {
                return Err(GraphError::Graph(
                    "the graph declares no (non-initializer) input".into(),
                ))
            }
            many => {
                return Err(GraphError::Graph(format!(
                    "the graph declares {} inputs ({}); one image input is supported",
                    many.len(),
                    many.iter()
                        .map(|v| v.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
            }
        };
        let input_dims = export::value_info_dims(input);
        let output_names: Vec<String> = graph.output.iter().map(|o| o.name.clone()).collect();

        // Every input of every node must exist before the node runs.
        let mut defined: HashSet<&str> = initializer_names.clone();
        defined.insert(input.name.as_str());
        let mut producers = HashMap::new();
        for (i, node) in nodes.iter().enumerate() {
            for name in node.inputs.iter().filter(|n| !n.is_empty()) {
                if !defined.contains(name.as_str()) {
                    return Err(GraphError::MissingValue {
                        node: node.label(),
                        name: name.clone(),
                    });
                }
            }
            for name in node.outputs.iter().filter(|n| !n.is_empty()) {
                defined.insert(name.as_str());
                producers.insert(name.clone(), i);
            }
        }
        for name in &output_names {
            if !defined.contains(name.as_str()) {
                return Err(GraphError::Graph(format!(
                    "graph output '{name}' is never produced"
                )));
            }
        }

        let mut model = proto.clone();
        if let Some(g) = model.graph.as_mut() {
            g.initializer.clear();
        }
        let mut structure = Graph {
            model,
            opset,
            nodes,
            input_name: input.name.clone(),
            input_dims,
            output_names,
            params,
            param_index,
            constants,
            initializer_order: decoded.into_iter().map(|(n, _)| n).collect(),
            producers,
            frees: Vec::new(),
            device: device.clone(),
        };
        structure.frees = frees(&structure);
        let all_fixed = structure
            .input_dims
            .iter()
            .all(|d| matches!(d, Dim::Fixed(_)));
        let mut module = GraphModule {
            params: param_values,
            graph: Arc::new(structure),
        };
        if all_fixed {
            export::resize_sizes_to_scales(&mut module)?;
        }
        Ok(module)
    }

    /// The graph's one non-initializer input.
    pub fn input_name(&self) -> &str {
        &self.graph.input_name
    }

    /// The input dimensions as declared in the ONNX (or set by [`Self::set_input_dims`]).
    pub fn input_dims(&self) -> Vec<Dim> {
        self.graph.input_dims.clone()
    }

    pub fn output_names(&self) -> Vec<String> {
        self.graph.output_names.clone()
    }

    /// The ONNX default-domain opset the model imports.
    pub fn opset(&self) -> i64 {
        self.graph.opset
    }

    /// The device the parameters are on (the load device for a graph without parameters).
    pub fn device(&self) -> Device {
        self.params
            .first()
            .map(|p| p.val().device())
            .unwrap_or_else(|| self.graph.device.clone())
    }

    /// Runs the graph on an image batch (`[N, ...]` as the model declares it, e.g. NCHW or NHWC).
    pub fn forward(&self, input: Tensor<4>, mode: Mode) -> Result<Forward, GraphError> {
        self.forward_value(Value::from_tensor(input), mode)
    }

    /// Runs the graph on an input of any rank.
    pub fn forward_value(&self, input: Value, mode: Mode) -> Result<Forward, GraphError> {
        let graph = &self.graph;
        let dims = input.dims();
        let declared = &graph.input_dims;
        let agrees = declared.is_empty()
            || (declared.len() == dims.len()
                && declared.iter().zip(&dims).skip(1).all(|(d, &n)| match d {
                    Dim::Fixed(f) => *f == n,
                    Dim::Dynamic(_) => true,
                }));
        if !agrees {
            return Err(GraphError::Graph(format!(
                "input '{}' of shape {dims:?} does not match the declared [{}] (batch may differ; \
                 set_input_dims changes the rest)",
                graph.input_name,
                declared
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let device = match &input {
            Value::Float { tensor, .. } => tensor.device(),
            Value::Int { .. } => self.device(),
        };
        let mut exec = ops::Exec {
            module: self,
            device,
            mode,
            env: HashMap::new(),
            batch_norm: Vec::new(),
        };
        exec.env.insert(graph.input_name.clone(), input);
        for (i, node) in graph.nodes.iter().enumerate() {
            let outputs = exec.run(node)?;
            for (name, value) in node.outputs.iter().zip(outputs) {
                if !name.is_empty() {
                    exec.env.insert(name.clone(), value);
                }
            }
            for name in &graph.frees[i] {
                exec.env.remove(name);
            }
        }
        let outputs = graph
            .output_names
            .iter()
            .map(|name| {
                exec.lookup(name).ok_or_else(|| {
                    GraphError::Graph(format!("graph output '{name}' was not computed"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Forward {
            outputs,
            batch_norm: exec.batch_norm,
        })
    }

    /// Moves every BatchNormalization running statistic towards the batch statistics of a
    /// `Train` pass: `running = running * momentum + batch * (1 - momentum)` (ONNX semantics,
    /// the node's `momentum` attribute, default 0.9). Call after the optimizer step. Updates
    /// naming unknown nodes are ignored.
    pub fn apply_batch_norm(&mut self, updates: Vec<BatchNormUpdate>) {
        for update in updates {
            let Some(node) = self.graph.nodes.iter().find(|n| n.name == update.node) else {
                continue;
            };
            let momentum = node.attr_float("momentum").unwrap_or(0.9);
            let targets = [(node.input(3), update.mean), (node.input(4), update.var)];
            for (name, batch) in targets {
                let Some(&i) = name.and_then(|n| self.graph.param_index.get(n)) else {
                    continue;
                };
                if batch.dims() != [self.graph.params[i].dims.iter().product::<usize>()] {
                    continue;
                }
                let param = self.params[i].clone();
                let shape = param.val().dims();
                self.params[i] = param
                    .map(|running| {
                        running
                            .detach()
                            .mul_scalar(momentum)
                            .add(batch.detach().reshape(shape).mul_scalar(1.0 - momentum))
                    })
                    .set_require_grad(false);
            }
        }
    }

    fn set_frozen(&mut self, i: usize, frozen: bool) {
        let info = &mut Arc::make_mut(&mut self.graph).params[i];
        if info.running_stat {
            return;
        }
        info.frozen = frozen;
        self.params[i] = self.params[i].clone().set_require_grad(!frozen);
    }

    /// Parameters read by node `index` (BatchNormalization running statistics excluded).
    fn node_params(&self, index: usize) -> Vec<usize> {
        let node = &self.graph.nodes[index];
        let mut out: Vec<usize> = node
            .inputs
            .iter()
            .filter_map(|n| self.graph.param_index.get(n).copied())
            .filter(|&i| !self.graph.params[i].running_stat)
            .collect();
        out.dedup();
        out
    }

    /// Freezes every parameter whose initializer name, or the name of a node reading it,
    /// matches one of the glob `patterns` (`*`, `?`). Returns how many parameters (tensors)
    /// the patterns matched. A pattern that matches nothing is an error (and nothing is frozen).
    /// (Not named `freeze`: burn's `Module::freeze(self)` would shadow it wherever `Module` is
    /// in scope.)
    pub fn freeze_matching(&mut self, patterns: &[String]) -> Result<usize, GraphError> {
        let mut matched: Vec<usize> = Vec::new();
        for pattern in patterns {
            let mut hits: Vec<usize> = self
                .graph
                .params
                .iter()
                .enumerate()
                .filter(|(_, p)| !p.running_stat && glob_match(pattern, &p.name))
                .map(|(i, _)| i)
                .collect();
            for (n, node) in self.graph.nodes.iter().enumerate() {
                if glob_match(pattern, &node.name) {
                    hits.extend(self.node_params(n));
                }
            }
            if hits.is_empty() {
                return Err(GraphError::NoMatch {
                    pattern: pattern.clone(),
                });
            }
            matched.extend(hits);
        }
        matched.sort_unstable();
        matched.dedup();
        for &i in &matched {
            self.set_frozen(i, true);
        }
        Ok(matched.len())
    }

    /// Freezes the parameters of the first `n` nodes (in graph order) that have parameters:
    /// backbone first. Returns how many parameters (tensors) were frozen.
    pub fn freeze_depth(&mut self, n: usize) -> usize {
        let mut chosen = Vec::new();
        let mut seen_nodes = 0;
        for index in 0..self.graph.nodes.len() {
            if seen_nodes == n {
                break;
            }
            let params = self.node_params(index);
            if !params.is_empty() {
                seen_nodes += 1;
                chosen.extend(params);
            }
        }
        chosen.sort_unstable();
        chosen.dedup();
        for &i in &chosen {
            self.set_frozen(i, true);
        }
        chosen.len()
    }

    /// Makes every parameter trainable again (running statistics stay untrained).
    pub fn unfreeze_all(&mut self) {
        for i in 0..self.params.len() {
            self.set_frozen(i, false);
        }
    }

    /// Whether the named parameter is frozen; `None` for names that are not parameters.
    pub fn is_frozen(&self, name: &str) -> Option<bool> {
        self.graph
            .param_index
            .get(name)
            .map(|&i| self.graph.params[i].frozen || self.graph.params[i].running_stat)
    }

    /// The parameter holding initializer `name` (stored with leading unit dimensions up to
    /// rank [`MAX_RANK`]), e.g. to read its gradient.
    pub fn param(&self, name: &str) -> Option<&Param<Tensor<MAX_RANK>>> {
        self.graph.param_index.get(name).map(|&i| &self.params[i])
    }

    /// Names of the initializers held as parameters, in parameter order.
    pub fn param_names(&self) -> Vec<String> {
        self.graph.params.iter().map(|p| p.name.clone()).collect()
    }

    /// The current value of an initializer (parameter or constant), in its ONNX shape.
    pub fn initializer(&self, name: &str) -> Option<TensorData> {
        if let Some(&i) = self.graph.param_index.get(name) {
            let values = self.params[i]
                .val()
                .to_data()
                .try_into_vec_as::<f32>()
                .ok()?;
            return Some(TensorData::new(values, self.graph.params[i].dims.clone()));
        }
        self.graph.constants.get(name).map(|c| match &c.data {
            HostData::F32(v) => TensorData::new(v.clone(), c.dims.clone()),
            HostData::I64(v) => TensorData::new(v.clone(), c.dims.clone()),
        })
    }

    /// Replaces an initializer's value; its shape may change (adding classes, pruning). A
    /// parameter whose shape changes gets a new parameter id (optimizer state for it starts
    /// afresh) and keeps its frozen state.
    pub fn set_initializer(&mut self, name: &str, data: TensorData) -> Result<(), GraphError> {
        let dims = data.shape().to_vec();
        let bad = |reason: String| GraphError::Initializer {
            name: name.to_string(),
            reason,
        };
        if dims.len() > MAX_RANK {
            return Err(bad(format!("rank {} exceeds {MAX_RANK}", dims.len())));
        }
        if let Some(&i) = self.graph.param_index.get(name) {
            let values = data
                .try_into_vec_as::<f32>()
                .map_err(|e| bad(format!("{e:?}")))?;
            let info = &self.graph.params[i];
            let trainable = !(info.frozen || info.running_stat);
            let tensor = Tensor::<MAX_RANK>::from_data(
                TensorData::new(values, pad_dims(&dims)),
                &self.params[i].val().device(),
            );
            let param = if dims == info.dims {
                Param::initialized(self.params[i].id, tensor)
            } else {
                Param::initialized(ParamId::new(), tensor)
            };
            self.params[i] = param.set_require_grad(trainable);
            Arc::make_mut(&mut self.graph).params[i].dims = dims;
            return Ok(());
        }
        let graph = Arc::make_mut(&mut self.graph);
        let Some(constant) = graph.constants.get_mut(name) else {
            return Err(bad("no initializer has this name".into()));
        };
        let host = match constant.data {
            HostData::F32(_) => HostData::F32(
                data.try_into_vec_as::<f32>()
                    .map_err(|e| bad(format!("{e:?}")))?,
            ),
            HostData::I64(_) => HostData::I64(
                data.try_into_vec_as::<i64>()
                    .map_err(|e| bad(format!("{e:?}")))?,
            ),
        };
        *constant = HostTensor { dims, data: host };
        Ok(())
    }

    /// The node producing `value`, if a node does.
    pub fn producer(&self, value: &str) -> Option<&NodeInfo> {
        self.graph
            .producers
            .get(value)
            .map(|&i| &self.graph.nodes[i])
    }

    /// The nodes that read `value`, in graph order.
    pub fn consumers(&self, value: &str) -> Vec<&NodeInfo> {
        self.graph
            .nodes
            .iter()
            .filter(|n| n.inputs.iter().any(|i| i == value))
            .collect()
    }

    /// All nodes in graph order.
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.graph.nodes
    }

    /// Sets the declared input dimensions (e.g. a smaller detector input). Resize nodes whose
    /// output `sizes` are constants are rewritten to the equivalent constant `scales` first
    /// (measured with one `Eval` pass at the old dimensions), so they follow the new size.
    /// [`Self::from_proto`] already does this for models whose input shape is fully fixed, so
    /// that the batch size is free; the rewrite is exact and exported as such.
    pub fn set_input_dims(&mut self, dims: &[i64]) -> Result<(), GraphError> {
        export::resize_sizes_to_scales(self)?;
        Arc::make_mut(&mut self.graph).input_dims = dims
            .iter()
            .map(|&d| {
                if d > 0 {
                    Dim::Fixed(d as usize)
                } else {
                    Dim::Dynamic(String::new())
                }
            })
            .collect();
        Ok(())
    }

    /// Number of scalar parameter values (weights and biases; BatchNormalization running
    /// statistics excluded).
    pub fn param_count(&self) -> usize {
        self.graph
            .params
            .iter()
            .filter(|p| !p.running_stat)
            .map(|p| p.dims.iter().product::<usize>())
            .sum()
    }

    /// Number of scalar parameter values that receive gradients (not frozen).
    pub fn trainable_param_count(&self) -> usize {
        self.graph
            .params
            .iter()
            .filter(|p| !p.running_stat && !p.frozen)
            .map(|p| p.dims.iter().product::<usize>())
            .sum()
    }

    /// The model with current initializers: the input declared as [`Self::input_dims`],
    /// outputs with the shapes one `Eval` pass on zeros produces (symbolic dimensions stay
    /// symbolic), stale `value_info` dropped. Runs in tract (tested) and any ONNX runtime.
    pub fn to_proto(&self) -> Result<ModelProto, GraphError> {
        export::to_proto(self)
    }

    /// Writes [`Self::to_proto`] to `path` atomically (a temporary file, then a rename).
    pub fn write_onnx(&self, path: &Path) -> Result<(), GraphError> {
        export::write_onnx(self, path)
    }
}

/// Per node, the values that nothing after it reads (graph outputs are kept).
fn frees(graph: &Graph) -> Vec<Vec<String>> {
    let mut last_use: HashMap<&str, usize> = HashMap::new();
    for (i, node) in graph.nodes.iter().enumerate() {
        for name in node.inputs.iter().chain(&node.outputs) {
            if !name.is_empty() {
                last_use.insert(name.as_str(), i);
            }
        }
    }
    let keep: HashSet<&str> = graph.output_names.iter().map(String::as_str).collect();
    let mut out = vec![Vec::new(); graph.nodes.len()];
    for (name, i) in last_use {
        if !keep.contains(name)
            && !graph.param_index.contains_key(name)
            && !graph.constants.contains_key(name)
        {
            out[i].push(name.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn glob_matches_star_and_question_mark() {
        assert!(glob_match("backbone/*", "backbone/conv1/weight"));
        assert!(glob_match("*conv?", "head/conv3"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("head/*", "backbone/conv1"));
        assert!(!glob_match("conv?", "conv12"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
    }
}
