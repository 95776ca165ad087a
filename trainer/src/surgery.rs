//! Class-layer surgery on ONNX graphs: the layer that produces a model's class channels (a
//! classifier's Gemm/Conv, a detector's class heat map or coverage conv) gets the channels of a
//! new class list. Channels of classes the old model had keep their trained weights; new ones
//! start from a fresh initialisation. This is how a COCO-80 detector becomes a person/car
//! detector without forgetting what person and car look like, and how `add-class` grows a head.

use rand::{RngExt, SeedableRng};
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::{ModelProto, NodeProto, TensorProto};

#[derive(Debug, thiserror::Error)]
pub enum SurgeryError {
    #[error("the graph has no output '{0}'")]
    NoOutput(String),
    #[error("cannot find the layer producing the class channels of output '{output}': {reason}")]
    NoClassLayer { output: String, reason: String },
    #[error("initializer '{name}': {reason}")]
    Initializer { name: String, reason: String },
    #[error("class layer '{node}' has {got} output channels, expected {expected} ({per_class} per class x {classes} classes)")]
    Channels {
        node: String,
        got: usize,
        expected: usize,
        per_class: usize,
        classes: usize,
    },
}

/// Where each new class's channels come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClassSource {
    /// The old model's class with this index.
    Old(usize),
    /// A class the old model did not have.
    New,
}

/// Maps `new` class names onto `old` ones (case-insensitive, exact names).
pub fn class_sources(old: &[String], new: &[String]) -> Vec<ClassSource> {
    new.iter()
        .map(|n| {
            old.iter()
                .position(|o| o.eq_ignore_ascii_case(n))
                .map_or(ClassSource::New, ClassSource::Old)
        })
        .collect()
}

/// How the fresh channels of new classes start.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NewChannelInit {
    /// Bias of a new class channel (e.g. -2.19 so a sigmoid heat map starts at 0.1, CenterNet's
    /// prior; 0 for logits).
    pub bias: f32,
    pub seed: u64,
}

/// The class layer feeding `output`: walks back through ops that keep channels in place.
fn class_layer<'g>(proto: &'g ModelProto, output: &str) -> Result<&'g NodeProto, SurgeryError> {
    let graph = proto
        .graph
        .as_ref()
        .ok_or_else(|| SurgeryError::NoOutput(output.into()))?;
    if !graph.output.iter().any(|o| o.name == output) {
        return Err(SurgeryError::NoOutput(output.into()));
    }
    let is_init = |name: &str| graph.initializer.iter().any(|i| i.name == name);
    let mut value = output.to_string();
    for _ in 0..16 {
        let node = graph
            .node
            .iter()
            .find(|n| n.output.contains(&value))
            .ok_or_else(|| SurgeryError::NoClassLayer {
                output: output.into(),
                reason: format!("nothing produces '{value}'"),
            })?;
        match node.op_type.as_str() {
            "Conv" | "Gemm" | "MatMul" | "ConvTranspose" => return Ok(node),
            "Identity" | "Sigmoid" | "Softmax" | "LogSoftmax" | "Relu" | "Clip" | "Flatten"
            | "Squeeze" | "Reshape" | "Transpose" | "Dropout" => {}
            // Elementwise with a constant (a scale or a bias added after MatMul).
            "Mul" | "Add" | "Div" | "Sub"
                if node.input.iter().filter(|i| is_init(i)).count() == 1 => {}
            op => {
                return Err(SurgeryError::NoClassLayer {
                    output: output.into(),
                    reason: format!(
                        "node '{}' ({op}) is not a layer the classes pass through",
                        node.name
                    ),
                })
            }
        }
        value = node
            .input
            .iter()
            .find(|i| !is_init(i))
            .cloned()
            .ok_or_else(|| SurgeryError::NoClassLayer {
                output: output.into(),
                reason: format!("node '{}' has only constant inputs", node.name),
            })?;
    }
    Err(SurgeryError::NoClassLayer {
        output: output.into(),
        reason: "no Conv/Gemm/MatMul within 16 nodes".into(),
    })
}

fn float_values(t: &TensorProto) -> Result<Vec<f32>, SurgeryError> {
    if t.data_type != DataType::Float as i32 {
        return Err(SurgeryError::Initializer {
            name: t.name.clone(),
            reason: format!("data type {} is not float32", t.data_type),
        });
    }
    if !t.float_data.is_empty() {
        return Ok(t.float_data.clone());
    }
    if t.raw_data.len() % 4 != 0 {
        return Err(SurgeryError::Initializer {
            name: t.name.clone(),
            reason: "raw data is not a whole number of float32".into(),
        });
    }
    Ok(t.raw_data
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// Gives the class layer feeding `output` `per_class` channels per class in `sources` order
/// (e.g. 4 box channels per class for DetectNet_v2's bbox output). Returns the layer's name.
pub fn set_classes(
    proto: &mut ModelProto,
    output: &str,
    old_classes: usize,
    per_class: usize,
    sources: &[ClassSource],
    init: NewChannelInit,
) -> Result<String, SurgeryError> {
    let layer = class_layer(proto, output)?.clone();
    let graph = proto.graph.as_mut().expect("class_layer checked the graph");
    // Output channels are axis 0 of a Conv weight [O, I/g, kh, kw] and of a Gemm weight with
    // transB=1 [O, I]; axis 1 of a Gemm weight without transB and of a MatMul weight [I, O].
    let trans_b = layer
        .attribute
        .iter()
        .find(|a| a.name == "transB")
        .is_some_and(|a| a.i != 0);
    let out_axis = match layer.op_type.as_str() {
        "Conv" => 0,
        "Gemm" if trans_b => 0,
        _ => 1,
    };
    let weight_name = layer.input.get(1).cloned().unwrap_or_default();
    let bias_name = match layer.op_type.as_str() {
        "Conv" | "Gemm" => layer.input.get(2).cloned().filter(|b| !b.is_empty()),
        _ => None,
    };
    let expected = old_classes * per_class;
    let mut rng = rand::rngs::StdRng::seed_from_u64(init.seed);

    let weight = graph
        .initializer
        .iter_mut()
        .find(|i| i.name == weight_name)
        .ok_or_else(|| SurgeryError::Initializer {
            name: weight_name.clone(),
            reason: format!("the weight of '{}' is not an initializer", layer.name),
        })?;
    let dims: Vec<usize> = weight.dims.iter().map(|&d| d as usize).collect();
    let got = dims.get(out_axis).copied().unwrap_or(0);
    if got != expected {
        return Err(SurgeryError::Channels {
            node: layer.name.clone(),
            got,
            expected,
            per_class,
            classes: old_classes,
        });
    }
    let values = float_values(weight)?;
    let fan_in: usize = dims
        .iter()
        .enumerate()
        .filter(|&(a, _)| a != out_axis)
        .map(|(_, d)| d)
        .product();
    let std = (1.0 / fan_in.max(1) as f32).sqrt();
    let outer: usize = dims[..out_axis].iter().product();
    let inner: usize = dims[out_axis + 1..].iter().product();
    let new_channels = sources.len() * per_class;
    let mut new_values = Vec::with_capacity(outer * new_channels * inner);
    for o in 0..outer {
        for source in sources {
            for k in 0..per_class {
                match source {
                    ClassSource::Old(c) => {
                        let start = (o * expected + c * per_class + k) * inner;
                        new_values.extend_from_slice(&values[start..start + inner]);
                    }
                    ClassSource::New => {
                        new_values.extend((0..inner).map(|_| rng.random_range(-std..std)));
                    }
                }
            }
        }
    }
    let mut new_dims = weight.dims.clone();
    new_dims[out_axis] = new_channels as i64;
    *weight = TensorProto {
        name: weight_name,
        dims: new_dims,
        data_type: DataType::Float as i32,
        float_data: new_values,
        ..Default::default()
    };

    if let Some(bias_name) = bias_name {
        let bias = graph
            .initializer
            .iter_mut()
            .find(|i| i.name == bias_name)
            .ok_or_else(|| SurgeryError::Initializer {
                name: bias_name.clone(),
                reason: format!("the bias of '{}' is not an initializer", layer.name),
            })?;
        let values = float_values(bias)?;
        if values.len() != expected {
            return Err(SurgeryError::Initializer {
                name: bias_name,
                reason: format!("{} values, expected {expected}", values.len()),
            });
        }
        let mut new_bias = Vec::with_capacity(new_channels);
        for source in sources {
            for k in 0..per_class {
                new_bias.push(match source {
                    ClassSource::Old(c) => values[c * per_class + k],
                    ClassSource::New => init.bias,
                });
            }
        }
        *bias = TensorProto {
            name: bias_name,
            dims: vec![new_channels as i64],
            data_type: DataType::Float as i32,
            float_data: new_bias,
            ..Default::default()
        };
    }
    Ok(layer.name)
}
