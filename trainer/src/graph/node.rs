//! Graph nodes as the executor and the heads see them, their attributes, and host tensors decoded
//! from (and encoded to) ONNX `TensorProto`s.

use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::{AttributeProto, NodeProto, TensorProto};

use super::GraphError;

/// One ONNX node. `name` is the node's ONNX name, or `"{op}_{index}"` where the file leaves it
/// empty, so that every node can be named in errors and freeze patterns.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub name: String,
    pub op: String,
    /// Input value names in ONNX order; `""` marks an omitted optional input.
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub(crate) proto: NodeProto,
}

impl NodeInfo {
    pub(crate) fn new(index: usize, proto: NodeProto) -> Self {
        let name = if proto.name.is_empty() {
            format!("{}_{index}", proto.op_type)
        } else {
            proto.name.clone()
        };
        NodeInfo {
            name,
            op: proto.op_type.clone(),
            inputs: proto.input.clone(),
            outputs: proto.output.clone(),
            proto,
        }
    }

    /// The raw ONNX attribute, if the node has it.
    pub fn attribute(&self, name: &str) -> Option<&AttributeProto> {
        self.proto.attribute.iter().find(|a| a.name == name)
    }

    /// The attribute names this node carries.
    pub fn attribute_names(&self) -> Vec<&str> {
        self.proto
            .attribute
            .iter()
            .map(|a| a.name.as_str())
            .collect()
    }

    pub fn attr_int(&self, name: &str) -> Option<i64> {
        self.attribute(name).map(|a| a.i)
    }

    pub fn attr_ints(&self, name: &str) -> Option<Vec<i64>> {
        self.attribute(name).map(|a| a.ints.clone())
    }

    pub fn attr_float(&self, name: &str) -> Option<f32> {
        self.attribute(name).map(|a| a.f)
    }

    pub fn attr_floats(&self, name: &str) -> Option<Vec<f32>> {
        self.attribute(name).map(|a| a.floats.clone())
    }

    pub fn attr_string(&self, name: &str) -> Option<String> {
        self.attribute(name)
            .map(|a| String::from_utf8_lossy(&a.s).into_owned())
    }

    /// A tensor attribute (Constant's `value`, ConstantOfShape's `value`) decoded on the host.
    pub fn attr_tensor(&self, name: &str) -> Result<Option<HostTensor>, GraphError> {
        match self.attribute(name).and_then(|a| a.t.as_ref()) {
            None => Ok(None),
            Some(t) => HostTensor::from_proto(t)
                .map(Some)
                .map_err(|reason| self.bad_attr(name, reason)),
        }
    }

    /// The optional input `index`, or `None` where it is absent or `""`.
    pub fn input(&self, index: usize) -> Option<&str> {
        self.inputs
            .get(index)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    pub(crate) fn bad_attr(&self, attr: &str, reason: impl Into<String>) -> GraphError {
        GraphError::BadAttribute {
            node: self.label(),
            attr: attr.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn shape_err(&self, reason: impl Into<String>) -> GraphError {
        GraphError::Shape {
            node: self.label(),
            reason: reason.into(),
        }
    }

    /// `name (op)`, the way errors name a node.
    pub(crate) fn label(&self) -> String {
        format!("{} ({})", self.name, self.op)
    }
}

/// Element values of a host tensor.
#[derive(Clone, Debug, PartialEq)]
pub enum HostData {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

/// A tensor held on the host: shape sub-graphs, attribute-like inputs, non-trainable constants.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    pub dims: Vec<usize>,
    pub data: HostData,
}

impl HostTensor {
    pub fn numel(&self) -> usize {
        self.dims.iter().product()
    }

    /// Values as i64 (floats truncated toward zero, like ONNX Cast).
    pub fn to_i64(&self) -> Vec<i64> {
        match &self.data {
            HostData::I64(v) => v.clone(),
            HostData::F32(v) => v.iter().map(|&x| x as i64).collect(),
        }
    }

    pub fn to_f32(&self) -> Vec<f32> {
        match &self.data {
            HostData::I64(v) => v.iter().map(|&x| x as f32).collect(),
            HostData::F32(v) => v.clone(),
        }
    }

    /// Decodes the numeric ONNX types nvtl meets (float, double, float16 is rejected, all
    /// integer widths, bool) into f32 or i64. The reason names the problem; callers add the name.
    pub fn from_proto(t: &TensorProto) -> Result<Self, String> {
        if t.dims.iter().any(|&d| d < 0) {
            return Err(format!("negative dimension in {:?}", t.dims));
        }
        let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
        let numel: usize = dims.iter().product();
        let raw = &t.raw_data;
        let data_type = DataType::try_from(t.data_type)
            .map_err(|_| format!("unknown element type {}", t.data_type))?;
        let chunks = |width: usize| -> Result<std::slice::ChunksExact<'_, u8>, String> {
            if raw.len() != numel * width {
                return Err(format!(
                    "raw data holds {} bytes, {numel} elements of {width} bytes expected",
                    raw.len()
                ));
            }
            Ok(raw.chunks_exact(width))
        };
        let data = match data_type {
            DataType::Float => HostData::F32(if raw.is_empty() {
                t.float_data.clone()
            } else {
                chunks(4)?
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect()
            }),
            DataType::Double => HostData::F32(if raw.is_empty() {
                t.double_data.iter().map(|&x| x as f32).collect()
            } else {
                chunks(8)?
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
                    .collect()
            }),
            DataType::Int64 => HostData::I64(if raw.is_empty() {
                t.int64_data.clone()
            } else {
                chunks(8)?
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                    .collect()
            }),
            DataType::Int32
            | DataType::Int16
            | DataType::Int8
            | DataType::Uint8
            | DataType::Uint16
            | DataType::Bool => {
                let width = match data_type {
                    DataType::Int32 => 4,
                    DataType::Int16 | DataType::Uint16 => 2,
                    _ => 1,
                };
                HostData::I64(if raw.is_empty() {
                    t.int32_data.iter().map(|&x| x as i64).collect()
                } else {
                    chunks(width)?
                        .map(|c| match data_type {
                            DataType::Int32 => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64,
                            DataType::Int16 => i16::from_le_bytes([c[0], c[1]]) as i64,
                            DataType::Uint16 => u16::from_le_bytes([c[0], c[1]]) as i64,
                            DataType::Int8 => c[0] as i8 as i64,
                            _ => c[0] as i64,
                        })
                        .collect()
                })
            }
            DataType::Uint32 | DataType::Uint64 => HostData::I64(if raw.is_empty() {
                t.uint64_data.iter().map(|&x| x as i64).collect()
            } else if data_type == DataType::Uint32 {
                chunks(4)?
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                    .collect()
            } else {
                chunks(8)?
                    .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as i64)
                    .collect()
            }),
            other => return Err(format!("element type {other:?} is not supported")),
        };
        let len = match &data {
            HostData::F32(v) => v.len(),
            HostData::I64(v) => v.len(),
        };
        if len != numel {
            return Err(format!(
                "holds {len} values but its shape {:?} has {numel}",
                t.dims
            ));
        }
        Ok(HostTensor { dims, data })
    }

    /// Encodes as a float or int64 `TensorProto` with raw little-endian data.
    pub fn to_proto(&self, name: &str) -> TensorProto {
        let (data_type, raw_data) = match &self.data {
            HostData::F32(v) => (
                DataType::Float,
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ),
            HostData::I64(v) => (
                DataType::Int64,
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ),
        };
        TensorProto {
            name: name.to_string(),
            dims: self.dims.iter().map(|&d| d as i64).collect(),
            data_type: data_type as i32,
            raw_data,
            ..Default::default()
        }
    }
}
