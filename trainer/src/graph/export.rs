//! Writing the graph back as ONNX with its current initializers and shapes.

use std::path::Path;
use std::sync::Arc;

use burn::tensor::Tensor;
use prost::Message;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::tensor_shape_proto::{dimension, Dimension};
use tract_onnx::pb::{type_proto, ModelProto, TensorShapeProto, TypeProto, ValueInfoProto};

use super::node::{HostData, HostTensor};
use super::value::{pad_dims, Value, MAX_RANK};
use super::{frees, Dim, GraphError, GraphModule, Mode};

/// The declared dimensions of a graph input or output (unknown ones as `Dynamic("")`).
pub(crate) fn value_info_dims(v: &ValueInfoProto) -> Vec<Dim> {
    let Some(type_proto::Value::TensorType(tensor)) =
        v.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        return Vec::new();
    };
    tensor
        .shape
        .as_ref()
        .map(|shape| {
            shape
                .dim
                .iter()
                .map(|d| match &d.value {
                    Some(dimension::Value::DimValue(n)) if *n > 0 => Dim::Fixed(*n as usize),
                    Some(dimension::Value::DimParam(name)) => Dim::Dynamic(name.clone()),
                    _ => Dim::Dynamic(String::new()),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn value_info(name: &str, dims: &[Dim], elem_type: DataType) -> ValueInfoProto {
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: elem_type as i32,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| Dimension {
                            value: Some(match d {
                                Dim::Fixed(n) => dimension::Value::DimValue(*n as i64),
                                Dim::Dynamic(name) => dimension::Value::DimParam(name.clone()),
                            }),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Runs one `Eval` pass on zeros of the declared input shape (unknown dimensions as 1) and
/// returns the values named `names`.
fn probe(module: &GraphModule, names: &[String]) -> Result<Vec<Value>, GraphError> {
    let mut probe = module.clone();
    let graph = Arc::make_mut(&mut probe.graph);
    graph.output_names = names.to_vec();
    graph.frees = frees(graph);
    let dims: Vec<usize> = graph
        .input_dims
        .iter()
        .map(|d| match d {
            Dim::Fixed(n) => *n,
            Dim::Dynamic(_) => 1,
        })
        .collect();
    if dims.is_empty() || dims.len() > MAX_RANK {
        return Err(GraphError::Graph(format!(
            "input '{}' declares no usable shape ({} dimensions)",
            graph.input_name,
            dims.len()
        )));
    }
    let input = Value::Float {
        tensor: Tensor::<MAX_RANK>::zeros(pad_dims(&dims), &module.device()),
        rank: dims.len(),
    };
    Ok(probe.forward_value(input, Mode::Eval)?.outputs)
}

/// Rewrites Resize nodes with constant output `sizes` to the equivalent constant `scales`, so
/// that they follow a change of the input size. Sizes that no scale reproduces exactly are left.
pub(crate) fn resize_sizes_to_scales(module: &mut GraphModule) -> Result<(), GraphError> {
    let targets: Vec<usize> = module
        .graph
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| {
            n.op == "Resize"
                && n.input(3)
                    .is_some_and(|s| module.graph.constants.get(s).is_some_and(|c| c.numel() > 0))
        })
        .map(|(i, _)| i)
        .collect();
    if targets.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = targets
        .iter()
        .map(|&i| module.graph.nodes[i].inputs[0].clone())
        .collect();
    let shapes: Vec<Vec<usize>> = probe(module, &names)?.iter().map(Value::dims).collect();
    let graph = Arc::make_mut(&mut module.graph);
    for (&i, in_dims) in targets.iter().zip(shapes) {
        let node = &graph.nodes[i];
        let sizes = graph.constants[&node.inputs[3]].to_i64();
        if sizes.len() != in_dims.len() {
            continue;
        }
        let scales: Vec<f32> = sizes
            .iter()
            .zip(&in_dims)
            .map(|(&s, &d)| s as f32 / d as f32)
            .collect();
        let exact = scales
            .iter()
            .zip(&in_dims)
            .zip(&sizes)
            .all(|((&scale, &d), &s)| (d as f32 * scale).floor() as i64 == s);
        if !exact {
            continue;
        }
        let mut name = format!("{}:scales", node.name);
        while graph.constants.contains_key(&name) || graph.param_index.contains_key(&name) {
            name.push('_');
        }
        graph.constants.insert(
            name.clone(),
            HostTensor {
                dims: vec![scales.len()],
                data: HostData::F32(scales),
            },
        );
        graph.initializer_order.push(name.clone());
        let node = &mut graph.nodes[i];
        node.proto.input = vec![node.inputs[0].clone(), node.inputs[1].clone(), name];
        node.inputs = node.proto.input.clone();
    }
    graph.frees = frees(graph);
    Ok(())
}

/// The model with current initializers: the input declared as [`GraphModule::input_dims`],
/// outputs with the shapes one `Eval` pass produces (symbolic dimensions kept symbolic),
/// `value_info` dropped (it would be stale after a resize).
pub(crate) fn to_proto(module: &GraphModule) -> Result<ModelProto, GraphError> {
    let graph = &module.graph;
    let outputs = probe(module, &graph.output_names)?;
    let mut model = graph.model.clone();
    let g = model
        .graph
        .as_mut()
        .ok_or_else(|| GraphError::Graph("the model holds no graph".into()))?;
    g.node = graph.nodes.iter().map(|n| n.proto.clone()).collect();
    g.value_info.clear();
    g.initializer = Vec::with_capacity(graph.initializer_order.len());
    for name in &graph.initializer_order {
        let host = if let Some(&i) = graph.param_index.get(name) {
            let values = module.params[i]
                .val()
                .to_data()
                .try_into_vec_as::<f32>()
                .map_err(|e| GraphError::Initializer {
                    name: name.clone(),
                    reason: format!("cannot read the parameter: {e:?}"),
                })?;
            HostTensor {
                dims: graph.params[i].dims.clone(),
                data: HostData::F32(values),
            }
        } else if let Some(c) = graph.constants.get(name) {
            c.clone()
        } else {
            continue;
        };
        g.initializer.push(host.to_proto(name));
    }
    for input in g.input.iter_mut() {
        if input.name == graph.input_name {
            *input = value_info(&input.name, &graph.input_dims, DataType::Float);
        } else if let Some(t) = g.initializer.iter().find(|t| t.name == input.name) {
            let dims: Vec<Dim> = t.dims.iter().map(|&d| Dim::Fixed(d as usize)).collect();
            let elem = DataType::try_from(t.data_type).unwrap_or(DataType::Float);
            *input = value_info(&input.name, &dims, elem);
        }
    }
    for (output, value) in g.output.iter_mut().zip(&outputs) {
        let declared = value_info_dims(output);
        let actual = value.dims();
        let dims: Vec<Dim> = actual
            .iter()
            .enumerate()
            .map(|(a, &d)| match declared.get(a) {
                Some(Dim::Dynamic(name)) if declared.len() == actual.len() => {
                    Dim::Dynamic(name.clone())
                }
                _ => Dim::Fixed(d),
            })
            .collect();
        let elem = match value {
            Value::Float { .. } => DataType::Float,
            Value::Int { .. } => DataType::Int64,
        };
        *output = value_info(&output.name, &dims, elem);
    }
    Ok(model)
}

/// Encodes the model and writes it through a temporary file in the same folder.
pub(crate) fn write_onnx(module: &GraphModule, path: &Path) -> Result<(), GraphError> {
    let bytes = to_proto(module)?.encode_to_vec();
    let io = |source| GraphError::Io {
        path: path.to_owned(),
        source,
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model.onnx".into());
    let tmp = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })
}
