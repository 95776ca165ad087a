//! A small ONNX graph builder over tract-onnx's protobuf types: the zoo's TF.js converter
//! emits its graphs with it, and tests build small models with known weights.

use std::path::Path;

use prost::Message;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::tensor_shape_proto::{dimension, Dimension};
use tract_onnx::pb::{
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};

use super::Dim;

/// The opset the builder emits (Resize with `sizes`, Clip with min/max inputs, ReduceMean with
/// an `axes` attribute).
pub const OPSET: i64 = 13;

#[derive(Default)]
pub struct OnnxBuilder {
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
}

impl OnnxBuilder {
    /// A model with one image input `input` (of `input_dims`) whose one output `output` (of
    /// `dims`) is `values` whatever the image: the image's sum, times zero, is added to them,
    /// so the graph still reads its input. Tests give parsers known outputs with it.
    pub fn constant_output(
        input: &str,
        input_dims: &[i64],
        output: &str,
        dims: &[i64],
        values: Vec<f32>,
    ) -> OnnxBuilder {
        let mut b = OnnxBuilder::default();
        b.input(input, input_dims);
        let zero = b.init_f32("zero", &[1], vec![0.0]);
        let constant = b.init_f32("constant", dims, values);
        b.node(
            "ReduceSum",
            "sum",
            &[input],
            &["total"],
            vec![attr_int("keepdims", 0)],
        );
        b.node("Mul", "nothing", &["total", &zero], &["none"], vec![]);
        b.node("Add", output, &[&constant, "none"], &[output], vec![]);
        b.output(output, dims);
        b
    }

    pub fn node(
        &mut self,
        op: &str,
        name: &str,
        inputs: &[&str],
        outputs: &[&str],
        attribute: Vec<AttributeProto>,
    ) {
        self.nodes.push(NodeProto {
            op_type: op.to_string(),
            name: name.to_string(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            attribute,
            ..Default::default()
        });
    }

    /// Adds a float initializer; returns its name.
    pub fn init_f32(&mut self, name: &str, dims: &[i64], data: Vec<f32>) -> String {
        self.inits.push(TensorProto {
            name: name.to_string(),
            dims: dims.to_vec(),
            data_type: DataType::Float as i32,
            float_data: data,
            ..Default::default()
        });
        name.to_string()
    }

    /// Adds an int64 initializer; returns its name.
    pub fn init_i64(&mut self, name: &str, dims: &[i64], data: Vec<i64>) -> String {
        self.inits.push(TensorProto {
            name: name.to_string(),
            dims: dims.to_vec(),
            data_type: DataType::Int64 as i32,
            int64_data: data,
            ..Default::default()
        });
        name.to_string()
    }

    /// Adds a float graph input of fixed shape.
    pub fn input(&mut self, name: &str, dims: &[i64]) {
        self.inputs.push(value_info(name, &fixed(dims)));
    }

    /// Adds a float graph output of fixed shape.
    pub fn output(&mut self, name: &str, dims: &[i64]) {
        self.outputs.push(value_info(name, &fixed(dims)));
    }

    /// Adds a float graph input whose dimensions may be symbolic (e.g. a dynamic batch `N`).
    pub fn input_dims(&mut self, name: &str, dims: &[Dim]) {
        self.inputs.push(value_info(name, dims));
    }

    /// Adds a float graph output whose dimensions may be symbolic.
    pub fn output_dims(&mut self, name: &str, dims: &[Dim]) {
        self.outputs.push(value_info(name, dims));
    }

    /// The finished model as ONNX protobuf bytes.
    pub fn to_bytes(self, producer: &str) -> Vec<u8> {
        self.finish(producer).encode_to_vec()
    }

    /// Writes the finished model to an `.onnx` file.
    pub fn write(self, producer: &str, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.to_bytes(producer))
    }

    pub fn finish(self, producer: &str) -> ModelProto {
        ModelProto {
            ir_version: 7,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: OPSET,
            }],
            producer_name: producer.to_string(),
            producer_version: env!("CARGO_PKG_VERSION").to_string(),
            graph: Some(GraphProto {
                name: "main".to_string(),
                node: self.nodes,
                initializer: self.inits,
                input: self.inputs,
                output: self.outputs,
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

fn fixed(dims: &[i64]) -> Vec<Dim> {
    dims.iter().map(|&d| Dim::Fixed(d as usize)).collect()
}

fn value_info(name: &str, dims: &[Dim]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: DataType::Float as i32,
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

pub fn attr_int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: AttributeType::Int as i32,
        i,
        ..Default::default()
    }
}

pub fn attr_ints(name: &str, ints: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: AttributeType::Ints as i32,
        ints: ints.to_vec(),
        ..Default::default()
    }
}

pub fn attr_float(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: AttributeType::Float as i32,
        f,
        ..Default::default()
    }
}

pub fn attr_str(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: AttributeType::String as i32,
        s: s.as_bytes().to_vec(),
        ..Default::default()
    }
}
