//! The CPU backend: tract-onnx. One optimised plan per model; sessions hold tract's run state.

use std::sync::Arc;

use tract_onnx::prelude::{
    tvec, Datum, InferenceFact, InferenceModelExt, TValue, TractError, TypedFact, TypedModel,
    TypedSimplePlan, TypedSimpleState,
};
use tract_onnx::tract_core::tract_linalg::multithread::{multithread_tract_scope, Executor};

use super::{Backend, BackendError, BackendKind, ModelSpec, Plan, Session, TensorInfo};
use crate::config::TensorOrder;
use crate::model::{read_onnx, Dim, OnnxModel};
use crate::tensor::Tensor;

/// ONNX `TensorProto.DataType.FLOAT`.
const ONNX_FLOAT: i32 = 1;

pub struct TractCpu;

impl Backend for TractCpu {
    fn kind(&self) -> BackendKind {
        BackendKind::Cpu
    }

    fn load(&self, spec: &ModelSpec) -> Result<Arc<dyn Plan>, BackendError> {
        Ok(Arc::new(TractPlan::load(spec)?))
    }
}

struct TractPlan {
    spec: ModelSpec,
    plan: Arc<TypedSimplePlan>,
    executor: Executor,
    input: TensorInfo,
    outputs: Vec<TensorInfo>,
    /// The plan runs one batch item at a time and the session loops over the batch.
    per_item: bool,
}

/// How far [`typed_model`] takes the graph.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Lowering {
    /// Optimised for tract's CPU kernels (what the CPU plan runs).
    Cpu,
    /// Decluttered only: the high-level ops (Conv, matmul) that tract-cuda maps to GPU kernels;
    /// it optimises the rest itself.
    #[cfg(feature = "cuda")]
    Decluttered,
}

/// `onnx` (the model of `spec`) parsed and given its concrete input shape, lowered as `lowering`
/// says.
pub(super) fn typed_model(
    onnx: &OnnxModel,
    spec: &ModelSpec,
    lowering: Lowering,
) -> Result<(TypedModel, TensorInfo, Vec<TensorInfo>), BackendError> {
    let path = &spec.onnx_path;
    let prepare = |e: TractError| BackendError::Prepare {
        path: path.clone(),
        reason: format!("{e:#}"),
    };
    let (input_name, shape) = image_input(onnx, spec)?;
    let dir = path.parent().and_then(|d| d.to_str());
    let parsed = tract_onnx::onnx()
        .parse(&onnx.proto, dir)
        .map_err(prepare)?;
    let model = parsed
        .model
        .with_input_fact(0, InferenceFact::dt_shape(f32::datum_type(), shape.clone()))
        .map_err(prepare)?;
    let typed: TypedModel = match lowering {
        Lowering::Cpu => model.into_optimized(),
        #[cfg(feature = "cuda")]
        Lowering::Decluttered => model.into_typed().and_then(TypedModel::into_decluttered),
    }
    .map_err(prepare)?;
    let outputs = output_infos(&typed).map_err(prepare)?;
    let input = TensorInfo {
        name: input_name,
        shape,
    };
    Ok((typed, input, outputs))
}

impl TractPlan {
    fn load(spec: &ModelSpec) -> Result<TractPlan, BackendError> {
        let prepare = |e: TractError| BackendError::Prepare {
            path: spec.onnx_path.clone(),
            reason: format!("{e:#}"),
        };
        // tract runs a batch of N several times slower per image than N runs of one
        // (MobileNetV2 on 2 cores: 100 ms against 22 ms per image at N = 2 and 4), so a model
        // whose outputs all lead with the input's dynamic batch is planned for one item and run
        // item by item.
        let onnx = read_onnx(&spec.onnx_path)?;
        let batch = image_input(&onnx, spec)?.1[0];
        let per_item = batch > 1 && batch_leads_every_output(&onnx);
        let one = ModelSpec {
            batch_size: 1,
            ..spec.clone()
        };
        let (mut typed, mut input, mut outputs) =
            typed_model(&onnx, if per_item { &one } else { spec }, Lowering::Cpu)?;
        let per_item = per_item && outputs.iter().all(|o| o.shape.first() == Some(&1));
        if !per_item && input.shape[0] != batch {
            (typed, input, outputs) = typed_model(&onnx, spec, Lowering::Cpu)?;
        }
        if per_item {
            input.shape[0] = batch;
            for output in &mut outputs {
                output.shape[0] = batch;
            }
        }
        let plan = TypedSimplePlan::new(typed).map_err(prepare)?;
        let threads = if spec.threads == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        } else {
            spec.threads
        };
        let executor = if threads > 1 {
            Executor::multithread_with_name(threads, "nvtl-cpu")
        } else {
            Executor::SingleThread
        };
        Ok(TractPlan {
            spec: spec.clone(),
            plan,
            executor,
            input,
            outputs,
            per_item,
        })
    }
}

/// Whether the input's first dimension is a named dynamic one that also leads every output.
fn batch_leads_every_output(onnx: &OnnxModel) -> bool {
    let Some(Dim::Dynamic(batch)) = onnx.inputs.first().and_then(|i| i.dims.first()) else {
        return false;
    };
    !batch.is_empty()
        && !onnx.outputs.is_empty()
        && onnx
            .outputs
            .iter()
            .all(|o| matches!(o.dims.first(), Some(Dim::Dynamic(d)) if d == batch))
}

/// The model's single float image input: its name and concrete shape (dynamic dims filled from
/// the spec). Shared by every backend, so that all of them accept and refuse the same models.
pub(super) fn image_input(
    onnx: &OnnxModel,
    spec: &ModelSpec,
) -> Result<(String, Vec<usize>), BackendError> {
    let unsupported = |reason: String| BackendError::Unsupported {
        path: spec.onnx_path.clone(),
        reason,
    };
    let [input] = onnx.inputs.as_slice() else {
        return Err(unsupported(format!(
            "nvtl runs models with one image input; this one has {} ({})",
            onnx.inputs.len(),
            onnx.inputs
                .iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let elem_type = input_elem_type(&onnx.proto, &input.name);
    if elem_type != Some(ONNX_FLOAT) {
        return Err(unsupported(format!(
            "input '{}' has ONNX element type {:?}; nvtl feeds float32",
            input.name, elem_type
        )));
    }
    let shape = concrete_input_shape(&input.name, &input.dims, spec).map_err(unsupported)?;
    Ok((input.name.clone(), shape))
}

fn input_elem_type(proto: &tract_onnx::pb::ModelProto, name: &str) -> Option<i32> {
    let graph = proto.graph.as_ref()?;
    let input = graph.input.iter().find(|i| i.name == name)?;
    let tract_onnx::pb::type_proto::Value::TensorType(tensor) =
        input.r#type.as_ref()?.value.as_ref()?;
    Some(tensor.elem_type)
}

/// Fills dynamic input dimensions: batch from batch-size, channels/height/width from infer-dims.
fn concrete_input_shape(name: &str, dims: &[Dim], spec: &ModelSpec) -> Result<Vec<usize>, String> {
    if dims.len() != 4 {
        return Err(format!(
            "input '{name}' has {} dimensions ({}); nvtl expects an image batch with 4",
            dims.len(),
            dims.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("x")
        ));
    }
    let chw_index = match spec.input_order {
        TensorOrder::Nchw => [1, 2, 3],
        TensorOrder::Nhwc => [3, 1, 2],
    };
    let mut shape = Vec::with_capacity(4);
    for (axis, dim) in dims.iter().enumerate() {
        let value = match dim {
            Dim::Fixed(n) => *n,
            Dim::Dynamic(_) if axis == 0 => spec.batch_size.max(1),
            Dim::Dynamic(symbol) => {
                let which = chw_index.iter().position(|&a| a == axis).unwrap_or(0);
                spec.infer_dims.map(|d| d[which]).filter(|&n| n > 0).ok_or_else(|| {
                    format!(
                        "input '{name}' has a dynamic {} dimension ('{symbol}'); set infer-dims=c;h;w in the config",
                        ["channel", "height", "width"][which]
                    )
                })?
            }
        };
        shape.push(value);
    }
    Ok(shape)
}

fn output_infos(model: &TypedModel) -> tract_onnx::prelude::TractResult<Vec<TensorInfo>> {
    let mut infos = Vec::new();
    for (ix, outlet) in model.output_outlets()?.iter().enumerate() {
        let fact: &TypedFact = model.outlet_fact(*outlet)?;
        let shape = fact
            .shape
            .as_concrete()
            .map(|s| s.to_vec())
            .ok_or_else(|| {
                TractError::msg(format!("output {ix} has no fixed shape: {:?}", fact.shape))
            })?;
        let name = model
            .outlet_label(*outlet)
            .map(str::to_string)
            .unwrap_or_else(|| model.node(outlet.node).name.clone());
        infos.push(TensorInfo { name, shape });
    }
    Ok(infos)
}

impl Plan for TractPlan {
    fn backend(&self) -> BackendKind {
        BackendKind::Cpu
    }

    fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    fn input(&self) -> &TensorInfo {
        &self.input
    }

    fn outputs(&self) -> &[TensorInfo] {
        &self.outputs
    }

    fn new_session(&self) -> Result<Box<dyn Session>, BackendError> {
        let state = TypedSimpleState::new(&self.plan)
            .map_err(|e| BackendError::Run(format!("cannot start a session: {e:#}")))?;
        Ok(Box::new(TractSession {
            state,
            executor: self.executor.clone(),
            input_shape: self.input.shape.clone(),
            output_names: self.outputs.iter().map(|o| o.name.clone()).collect(),
            per_item: self.per_item,
        }))
    }
}

struct TractSession {
    state: TypedSimpleState,
    executor: Executor,
    input_shape: Vec<usize>,
    output_names: Vec<String>,
    per_item: bool,
}

impl TractSession {
    fn run_plan(
        &mut self,
        tensor: tract_onnx::prelude::Tensor,
    ) -> Result<Vec<Tensor>, BackendError> {
        let state = &mut self.state;
        let outputs = multithread_tract_scope(self.executor.clone(), || {
            state.run(tvec![TValue::from(tensor)])
        })
        .map_err(|e| BackendError::Run(format!("{e:#}")))?;
        host_outputs(outputs, &self.output_names)
    }
}

impl Session for TractSession {
    fn run(&mut self, input: &Tensor) -> Result<Vec<Tensor>, BackendError> {
        if !self.per_item {
            let tensor = tract_input(input, &self.input_shape)?;
            return self.run_plan(tensor);
        }
        if input.shape != self.input_shape {
            return Err(BackendError::InputShape {
                expected: self.input_shape.clone(),
                got: input.shape.clone(),
            });
        }
        let batch = self.input_shape[0];
        let mut item_shape = self.input_shape.clone();
        item_shape[0] = 1;
        let item_len = input.data.len() / batch;
        let mut merged: Vec<Tensor> = Vec::new();
        for item in input.data.chunks(item_len) {
            let tensor = tract_onnx::prelude::Tensor::from_shape(&item_shape, item)
                .map_err(|e| BackendError::Run(format!("{e:#}")))?;
            let outputs = self.run_plan(tensor)?;
            if merged.is_empty() {
                merged = outputs
                    .into_iter()
                    .map(|mut output| {
                        output.shape[0] = batch;
                        output.data.reserve(output.data.len() * (batch - 1));
                        output
                    })
                    .collect();
            } else {
                for (all, output) in merged.iter_mut().zip(outputs) {
                    all.data.extend_from_slice(&output.data);
                }
            }
        }
        Ok(merged)
    }
}

/// `input` as a tract tensor, if it has exactly the plan's input shape.
pub(super) fn tract_input(
    input: &Tensor,
    expected: &[usize],
) -> Result<tract_onnx::prelude::Tensor, BackendError> {
    if input.shape != expected {
        return Err(BackendError::InputShape {
            expected: expected.to_vec(),
            got: input.shape.clone(),
        });
    }
    tract_onnx::prelude::Tensor::from_shape(&input.shape, &input.data)
        .map_err(|e| BackendError::Run(format!("{e:#}")))
}

/// tract's output values as named f32 tensors.
pub(super) fn host_outputs(
    outputs: tract_onnx::prelude::TVec<TValue>,
    names: &[String],
) -> Result<Vec<Tensor>, BackendError> {
    let run_error = |e: TractError| BackendError::Run(format!("{e:#}"));
    outputs
        .into_iter()
        .zip(names)
        .map(|(value, name)| {
            let as_f32 = value.cast_to::<f32>().map_err(run_error)?;
            let plain = as_f32.try_as_plain_ram().map_err(run_error)?;
            let view = plain.as_slice::<f32>().map_err(run_error)?;
            Ok(Tensor::new(
                name.clone(),
                as_f32.shape().to_vec(),
                view.to_vec(),
            ))
        })
        .collect()
}
