//! QDQ ONNX (explicit INT8 quantization, the form TensorRT and onnxruntime read): every Conv,
//! Gemm and MatMul with a constant weight reads its activation input through a
//! QuantizeLinear/DequantizeLinear pair (per tensor, symmetric: scale = amax / 127, zero point
//! 0) and its weight through a DequantizeLinear of an INT8 initializer (per output channel,
//! symmetric). Biases and every other op stay float.

use std::collections::{BTreeMap, HashMap};

use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::{AttributeProto, ModelProto, NodeProto, TensorProto};

use super::QuantizeError;
use crate::graph::HostTensor;

fn scalar_f32(name: &str, v: f32) -> TensorProto {
    TensorProto {
        name: name.into(),
        data_type: DataType::Float as i32,
        float_data: vec![v],
        ..Default::default()
    }
}

fn int8(name: &str, dims: Vec<i64>, values: Vec<i8>) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims,
        data_type: DataType::Int8 as i32,
        raw_data: values.into_iter().map(|v| v as u8).collect(),
        ..Default::default()
    }
}

fn node(op: &str, name: &str, inputs: &[&str], output: &str, axis: Option<i64>) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: name.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute: axis
            .map(|a| {
                vec![AttributeProto {
                    name: "axis".into(),
                    r#type: tract_onnx::pb::attribute_proto::AttributeType::Int as i32,
                    i: a,
                    ..Default::default()
                }]
            })
            .unwrap_or_default(),
        ..Default::default()
    }
}

/// What [`quantize`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QdqSummary {
    /// Layers whose input and weight are quantized.
    pub layers: usize,
    /// Activation tensors with a Q/DQ pair.
    pub activations: usize,
    /// Layers left in float (no range for their input, or a non-constant weight).
    pub skipped: Vec<String>,
}

/// The QDQ model of `proto` with activation ranges `amax` (by tensor name).
pub fn quantize(
    proto: &ModelProto,
    amax: &BTreeMap<String, f32>,
) -> Result<(ModelProto, QdqSummary), QuantizeError> {
    let opset = proto
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map_or(0, |o| o.version);
    if opset < 13 {
        return Err(QuantizeError::Invalid(format!(
            "per-channel DequantizeLinear needs opset 13; the model has opset {opset}"
        )));
    }
    let mut out = proto.clone();
    let graph = out.graph.as_mut().ok_or(QuantizeError::NoGraph)?;
    let inits: HashMap<String, TensorProto> = graph
        .initializer
        .iter()
        .map(|t| (t.name.clone(), t.clone()))
        .collect();
    let zero = "nvtl_qdq_zero_point";
    graph.initializer.push(int8(zero, vec![], vec![0]));
    let mut summary = QdqSummary::default();
    let mut dequantized: HashMap<String, String> = HashMap::new();
    let mut new_nodes: Vec<NodeProto> = Vec::with_capacity(graph.node.len() * 2);
    let mut new_inits: Vec<TensorProto> = Vec::new();
    for mut n in std::mem::take(&mut graph.node) {
        let op = n.op_type.as_str();
        if !matches!(op, "Conv" | "Gemm" | "MatMul") || n.input.len() < 2 {
            new_nodes.push(n);
            continue;
        }
        let x = n.input[0].clone();
        let w = n.input[1].clone();
        let (Some(range), Some(weight)) = (amax.get(&x), inits.get(&w)) else {
            summary.skipped.push(n.name.clone());
            new_nodes.push(n);
            continue;
        };
        let trans_b = n.attribute.iter().any(|a| a.name == "transB" && a.i != 0);
        let axis: usize = match op {
            "Conv" => 0,
            "Gemm" if trans_b => 0,
            _ => 1,
        };
        // Activation: one Q/DQ pair per tensor, shared by its consumers.
        let x_dq = match dequantized.get(&x) {
            Some(d) => d.clone(),
            None => {
                let scale = format!("{x}_scale");
                let q = format!("{x}_quantized");
                let dq = format!("{x}_dequantized");
                new_inits.push(scalar_f32(&scale, (range / 127.0).max(f32::MIN_POSITIVE)));
                new_nodes.push(node("QuantizeLinear", &q, &[&x, &scale, zero], &q, None));
                new_nodes.push(node(
                    "DequantizeLinear",
                    &dq,
                    &[&q, &scale, zero],
                    &dq,
                    None,
                ));
                dequantized.insert(x.clone(), dq.clone());
                summary.activations += 1;
                dq
            }
        };
        // Weight: INT8 per output channel.
        let host = HostTensor::from_proto(weight)
            .map_err(|reason| QuantizeError::Invalid(format!("initializer '{w}': {reason}")))?;
        let values = host.to_f32();
        let channels = host.dims[axis];
        let inner: usize = host.dims[axis + 1..].iter().product();
        let mut channel_max = vec![0f32; channels];
        for (i, v) in values.iter().enumerate() {
            let c = (i / inner) % channels;
            channel_max[c] = channel_max[c].max(v.abs());
        }
        let scales: Vec<f32> = channel_max
            .iter()
            .map(|m| (m / 127.0).max(f32::MIN_POSITIVE))
            .collect();
        let quantized: Vec<i8> = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                (v / scales[(i / inner) % channels])
                    .round()
                    .clamp(-127.0, 127.0) as i8
            })
            .collect();
        let (wq, ws, wz, wdq) = (
            format!("{w}_quantized"),
            format!("{w}_scale"),
            format!("{w}_zero_point"),
            format!("{w}_dequantized"),
        );
        new_inits.push(int8(&wq, weight.dims.clone(), quantized));
        new_inits.push(TensorProto {
            name: ws.clone(),
            dims: vec![channels as i64],
            data_type: DataType::Float as i32,
            float_data: scales,
            ..Default::default()
        });
        new_inits.push(int8(&wz, vec![channels as i64], vec![0; channels]));
        new_nodes.push(node(
            "DequantizeLinear",
            &wdq,
            &[&wq, &ws, &wz],
            &wdq,
            Some(axis as i64),
        ));
        n.input[0] = x_dq;
        n.input[1] = wdq;
        summary.layers += 1;
        new_nodes.push(n);
    }
    graph.node = new_nodes;
    // The float weights now only feed DequantizeLinear through their INT8 copies.
    let used: std::collections::HashSet<String> = graph
        .node
        .iter()
        .flat_map(|n| n.input.iter().cloned())
        .collect();
    graph.initializer.retain(|t| used.contains(&t.name));
    graph
        .input
        .retain(|i| used.contains(&i.name) || !inits.contains_key(&i.name));
    graph.initializer.extend(new_inits);
    Ok((out, summary))
}
