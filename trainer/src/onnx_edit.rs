//! Edits on ONNX graphs that need shape knowledge, done with tract's shape inference: a new
//! network input size (Resize nodes given as absolute `sizes` become `scales`), and output
//! dimensions refreshed after initializers changed shape.

use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::tensor_shape_proto::{dimension, Dimension};
use tract_onnx::pb::{
    type_proto, ModelProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use tract_onnx::prelude::*;

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("the ONNX graph has no graph body")]
    NoGraph,
    #[error("shape inference on the graph failed: {0}")]
    Inference(String),
    #[error("Resize node '{node}': {reason}")]
    Resize { node: String, reason: String },
    #[error(
        "the graph input '{input}' has rank {rank}; a new size needs an NCHW or NHWC image input"
    )]
    Input { input: String, rank: usize },
}

fn typed(proto: &ModelProto) -> Result<TypedModel, EditError> {
    let err = |e: TractError| EditError::Inference(format!("{e:#}"));
    tract_onnx::onnx()
        .model_for_proto_model(proto)
        .map_err(err)?
        .into_typed()
        .map_err(err)
}

fn concrete_shape(model: &TypedModel, outlet: OutletId) -> Option<Vec<usize>> {
    let fact = model.outlet_fact(outlet).ok()?;
    fact.shape.as_concrete().map(|s| s.to_vec())
}

/// Rewrites every `Resize` that uses `sizes` to use the equivalent `scales` (integer or
/// fractional ratios of its input at the graph's current input size), so the graph stays
/// valid at other input sizes.
pub fn resizes_to_scales(proto: &mut ModelProto) -> Result<usize, EditError> {
    let model = typed(proto)?;
    let graph = proto.graph.as_mut().ok_or(EditError::NoGraph)?;
    let mut new_inits = Vec::new();
    let mut changed = 0;
    for node in graph.node.iter_mut().filter(|n| n.op_type == "Resize") {
        let Some(sizes) = node.input.get(3).filter(|s| !s.is_empty()) else {
            continue;
        };
        let bad = |reason: String| EditError::Resize {
            node: node.name.clone(),
            reason,
        };
        let tract_node = model
            .node_by_name(&node.name)
            .map_err(|e| bad(format!("not found after inference: {e}")))?;
        let input_shape = concrete_shape(&model, tract_node.inputs[0])
            .ok_or_else(|| bad("its input shape is not known".into()))?;
        let output_shape = concrete_shape(&model, OutletId::new(tract_node.id, 0))
            .ok_or_else(|| bad(format!("its output size '{sizes}' is not known")))?;
        let scales: Vec<f32> = input_shape
            .iter()
            .zip(&output_shape)
            .map(|(&i, &o)| o as f32 / i as f32)
            .collect();
        let name = format!("{}.scales", node.name);
        new_inits.push(TensorProto {
            name: name.clone(),
            dims: vec![scales.len() as i64],
            data_type: DataType::Float as i32,
            float_data: scales,
            ..Default::default()
        });
        node.input.truncate(2);
        if node.input.len() < 2 {
            node.input.resize(2, String::new());
        }
        node.input.push(name);
        changed += 1;
    }
    graph.initializer.extend(new_inits);
    // The `sizes` constants nothing reads any more.
    let used: std::collections::HashSet<String> = graph
        .node
        .iter()
        .flat_map(|n| n.input.iter().cloned())
        .collect();
    let outputs: std::collections::HashSet<&str> =
        graph.output.iter().map(|o| o.name.as_str()).collect();
    let unused: std::collections::HashSet<String> = graph
        .initializer
        .iter()
        .filter(|i| !used.contains(&i.name) && !outputs.contains(i.name.as_str()))
        .map(|i| i.name.clone())
        .collect();
    graph.initializer.retain(|i| !unused.contains(&i.name));
    // Old IR versions list initializers as graph inputs too.
    graph.input.retain(|i| !unused.contains(&i.name));
    Ok(changed)
}

fn dims_proto(dims: &[Option<usize>]) -> TypeProto {
    TypeProto {
        value: Some(type_proto::Value::TensorType(type_proto::Tensor {
            elem_type: DataType::Float as i32,
            shape: Some(TensorShapeProto {
                dim: dims
                    .iter()
                    .map(|d| Dimension {
                        value: Some(match d {
                            Some(n) => dimension::Value::DimValue(*n as i64),
                            None => dimension::Value::DimParam("N".into()),
                        }),
                        ..Default::default()
                    })
                    .collect(),
            }),
        })),
        ..Default::default()
    }
}

/// Sets the spatial size of the (single, image) graph input, keeping batch and channels and
/// the layout (NCHW when dimension 1 is 1 or 3 channels, else NHWC).
pub fn set_input_size(
    proto: &mut ModelProto,
    height: usize,
    width: usize,
) -> Result<(), EditError> {
    let graph = proto.graph.as_mut().ok_or(EditError::NoGraph)?;
    let initializers: std::collections::HashSet<&str> =
        graph.initializer.iter().map(|i| i.name.as_str()).collect();
    let input = graph
        .input
        .iter_mut()
        .find(|i| !initializers.contains(i.name.as_str()))
        .ok_or(EditError::NoGraph)?;
    let dims = value_dims(input);
    if dims.len() != 4 {
        return Err(EditError::Input {
            input: input.name.clone(),
            rank: dims.len(),
        });
    }
    let nchw = matches!(dims[1], Some(1) | Some(3));
    let mut new = dims.clone();
    if nchw {
        new[2] = Some(height);
        new[3] = Some(width);
    } else {
        new[1] = Some(height);
        new[2] = Some(width);
    }
    input.r#type = Some(dims_proto(&new));
    Ok(())
}

pub(crate) fn value_dims(v: &ValueInfoProto) -> Vec<Option<usize>> {
    let Some(TypeProto {
        value: Some(type_proto::Value::TensorType(t)),
        ..
    }) = &v.r#type
    else {
        return Vec::new();
    };
    t.shape
        .as_ref()
        .map(|s| {
            s.dim
                .iter()
                .map(|d| match d.value {
                    Some(dimension::Value::DimValue(n)) if n > 0 => Some(n as usize),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Drops intermediate value_info (stale after shape changes) and rewrites each graph output's
/// dimensions from shape inference; a batch dimension that is symbolic in the input stays so.
pub fn refresh_output_dims(proto: &mut ModelProto) -> Result<(), EditError> {
    if let Some(graph) = proto.graph.as_mut() {
        graph.value_info.clear();
        for output in &mut graph.output {
            output.r#type = None;
        }
    }
    let model = typed(proto)?;
    let graph = proto.graph.as_mut().ok_or(EditError::NoGraph)?;
    for (output, outlet) in graph.output.iter_mut().zip(
        model
            .output_outlets()
            .map_err(|e| EditError::Inference(format!("{e:#}")))?,
    ) {
        let fact = model
            .outlet_fact(*outlet)
            .map_err(|e| EditError::Inference(format!("{e:#}")))?;
        let dims: Vec<Option<usize>> = fact
            .shape
            .iter()
            .map(|d| d.as_i64().map(|v| v as usize))
            .collect();
        output.r#type = Some(dims_proto(&dims));
    }
    Ok(())
}
