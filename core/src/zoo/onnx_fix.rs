//! Import fixes for shipped ONNX files.

use prost::Message;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::{AttributeProto, GraphProto, ModelProto, TensorProto};

/// Gives every `ConstantOfShape` node without a `value` attribute an explicit float32 zero (the
/// ONNX default, which tract would otherwise infer as f64). Walks subgraphs too. Returns the
/// re-encoded model and the number of nodes fixed.
pub fn fix_constant_of_shape(onnx: &[u8]) -> Result<(Vec<u8>, usize), String> {
    let mut model = ModelProto::decode(onnx).map_err(|e| format!("not an ONNX model: {e}"))?;
    let mut fixed = 0;
    if let Some(g) = model.graph.as_mut() {
        fix_graph(g, &mut fixed);
    }
    Ok((model.encode_to_vec(), fixed))
}

fn fix_graph(g: &mut GraphProto, fixed: &mut usize) {
    for node in &mut g.node {
        for a in &mut node.attribute {
            if let Some(sub) = a.g.as_mut() {
                fix_graph(sub, fixed);
            }
            for sub in &mut a.graphs {
                fix_graph(sub, fixed);
            }
        }
        if node.op_type == "ConstantOfShape"
            && node.domain.is_empty()
            && !node.attribute.iter().any(|a| a.name == "value")
        {
            node.attribute.push(AttributeProto {
                name: "value".into(),
                r#type: AttributeType::Tensor as i32,
                t: Some(TensorProto {
                    dims: vec![1],
                    data_type: DataType::Float as i32,
                    float_data: vec![0.0],
                    ..Default::default()
                }),
                ..Default::default()
            });
            *fixed += 1;
        }
    }
}

/// Names of the graph outputs of an encoded model.
pub fn output_names(onnx: &[u8]) -> Result<Vec<String>, String> {
    let model = ModelProto::decode(onnx).map_err(|e| format!("not an ONNX model: {e}"))?;
    Ok(model
        .graph
        .map(|g| g.output.into_iter().map(|o| o.name).collect())
        .unwrap_or_default())
}
