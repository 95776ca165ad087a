//! Reading ONNX files and what the rest of nvtl needs to know about their inputs and outputs.

use std::fmt;
use std::path::{Path, PathBuf};

use prost::Message;
use tract_onnx::pb;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read model file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid ONNX model: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    Unsupported { path: PathBuf, reason: String },
}

/// One dimension of a graph input or output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dim {
    Fixed(usize),
    /// A named or unnamed symbolic dimension (dynamic batch, dynamic H/W).
    Dynamic(String),
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Fixed(n) => write!(f, "{n}"),
            Dim::Dynamic(name) if name.is_empty() => f.write_str("?"),
            Dim::Dynamic(name) => f.write_str(name),
        }
    }
}

/// A graph input or output as declared in the ONNX file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueInfo {
    pub name: String,
    pub dims: Vec<Dim>,
}

/// A decoded ONNX file with its graph inputs (initializers excluded) and outputs.
#[derive(Clone, Debug)]
pub struct OnnxModel {
    pub path: PathBuf,
    pub proto: pb::ModelProto,
    pub inputs: Vec<ValueInfo>,
    pub outputs: Vec<ValueInfo>,
}

/// Reads and decodes an ONNX file. Errors name the file.
pub fn read_onnx(path: &Path) -> Result<OnnxModel, ModelError> {
    let bytes = std::fs::read(path).map_err(|source| ModelError::Read {
        path: path.to_owned(),
        source,
    })?;
    let corrupt = |reason: String| ModelError::Corrupt {
        path: path.to_owned(),
        reason,
    };
    let proto = pb::ModelProto::decode(bytes.as_slice()).map_err(|e| corrupt(e.to_string()))?;
    let graph = proto
        .graph
        .as_ref()
        .ok_or_else(|| corrupt("the file holds no graph".into()))?;
    if graph.node.is_empty() {
        return Err(corrupt("the graph has no nodes".into()));
    }
    let initializers: std::collections::HashSet<&str> =
        graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs = graph
        .input
        .iter()
        .filter(|v| !initializers.contains(v.name.as_str()))
        .map(value_info)
        .collect::<Vec<_>>();
    let outputs = graph.output.iter().map(value_info).collect::<Vec<_>>();
    if inputs.is_empty() {
        return Err(corrupt("the graph declares no inputs".into()));
    }
    if outputs.is_empty() {
        return Err(corrupt("the graph declares no outputs".into()));
    }
    Ok(OnnxModel {
        path: path.to_owned(),
        proto,
        inputs,
        outputs,
    })
}

fn value_info(v: &pb::ValueInfoProto) -> ValueInfo {
    let dims = v
        .r#type
        .as_ref()
        .and_then(|t| t.value.as_ref())
        .and_then(|pb::type_proto::Value::TensorType(tensor)| tensor.shape.as_ref())
        .map(|shape| {
            shape
                .dim
                .iter()
                .map(|d| match &d.value {
                    Some(pb::tensor_shape_proto::dimension::Value::DimValue(n)) if *n > 0 => {
                        Dim::Fixed(*n as usize)
                    }
                    Some(pb::tensor_shape_proto::dimension::Value::DimParam(name)) => {
                        Dim::Dynamic(name.clone())
                    }
                    _ => Dim::Dynamic(String::new()),
                })
                .collect()
        })
        .unwrap_or_default();
    ValueInfo {
        name: v.name.clone(),
        dims,
    }
}
