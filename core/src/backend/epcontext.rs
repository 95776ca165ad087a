//! EPContext wrapper models: how onnxruntime's TensorRT execution provider loads a TensorRT
//! engine built elsewhere (trtexec, nvinfer). The wrapper is a one-node ONNX graph whose node is
//! `com.microsoft.EPContext` with `embed_mode=0` and `ep_cache_context` = the engine's file name
//! (relative to the wrapper, which is written next to the engine), and whose inputs and outputs
//! are those of the original ONNX model or, without one, the config's input name/dims and
//! output-blob-names.

use std::path::{Path, PathBuf};

use prost::Message;
use tract_onnx::pb;

/// ONNX `TensorProto.DataType.FLOAT`.
pub const ONNX_FLOAT: i32 = 1;
/// ONNX IR version written (IR 8 = opset 17/18 era; onnxruntime 1.16+ reads it).
const IR_VERSION: i64 = 8;

#[derive(Debug, thiserror::Error)]
pub enum EpContextError {
    #[error("engine {0} has no file name")]
    NoFileName(PathBuf),
    #[error("model {0} has no graph")]
    NoGraph(PathBuf),
    #[error("writing the EPContext wrapper {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A graph input or output: name, ONNX element type, dims (`None` = dynamic).
#[derive(Clone, Debug, PartialEq)]
pub struct Io {
    pub name: String,
    pub elem_type: i32,
    pub dims: Option<Vec<Option<i64>>>,
}

/// The wrapper file for `engine`: `<engine>.epctx.onnx`.
pub fn wrapper_path(engine: &Path) -> PathBuf {
    let mut name = engine.as_os_str().to_owned();
    name.push(".epctx.onnx");
    PathBuf::from(name)
}

/// Inputs (without initializers) and outputs of `model`, verbatim.
pub fn io_of(
    model: &pb::ModelProto,
    path: &Path,
) -> Result<(Vec<pb::ValueInfoProto>, Vec<pb::ValueInfoProto>), EpContextError> {
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| EpContextError::NoGraph(path.to_path_buf()))?;
    let initializers: std::collections::HashSet<&str> =
        graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs = graph
        .input
        .iter()
        .filter(|i| !initializers.contains(i.name.as_str()))
        .cloned()
        .collect();
    Ok((inputs, graph.output.clone()))
}

/// A value info from an [`Io`].
pub fn value_info(io: &Io) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{dimension, Dimension};
    let shape = io.dims.as_ref().map(|dims| pb::TensorShapeProto {
        dim: dims
            .iter()
            .enumerate()
            .map(|(axis, d)| Dimension {
                value: Some(match d {
                    Some(n) => dimension::Value::DimValue(*n),
                    None => dimension::Value::DimParam(format!("{}_dim{axis}", io.name)),
                }),
                ..Default::default()
            })
            .collect(),
    });
    pb::ValueInfoProto {
        name: io.name.clone(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: io.elem_type,
                shape,
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn attribute_int(name: &str, value: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Int as i32,
        i: value,
        ..Default::default()
    }
}

fn attribute_string(name: &str, value: &str) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::String as i32,
        s: value.as_bytes().to_vec(),
        ..Default::default()
    }
}

/// The wrapper model for the engine file `engine_file_name` (relative to the wrapper).
pub fn wrapper_model(
    engine_file_name: &str,
    inputs: Vec<pb::ValueInfoProto>,
    outputs: Vec<pb::ValueInfoProto>,
) -> pb::ModelProto {
    let node = pb::NodeProto {
        input: inputs.iter().map(|i| i.name.clone()).collect(),
        output: outputs.iter().map(|o| o.name.clone()).collect(),
        name: "nvtl_tensorrt_engine".into(),
        op_type: "EPContext".into(),
        domain: "com.microsoft".into(),
        attribute: vec![
            attribute_int("main_context", 1),
            attribute_int("embed_mode", 0),
            attribute_string("ep_cache_context", engine_file_name),
            attribute_string("source", "TensorrtExecutionProvider"),
        ],
        ..Default::default()
    };
    pb::ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![
            pb::OperatorSetIdProto {
                domain: String::new(),
                version: 17,
            },
            pb::OperatorSetIdProto {
                domain: "com.microsoft".into(),
                version: 1,
            },
        ],
        producer_name: "nvtl".into(),
        graph: Some(pb::GraphProto {
            node: vec![node],
            name: "nvtl_epcontext".into(),
            input: inputs,
            output: outputs,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Writes the wrapper for `engine` next to it and returns its path.
pub fn write_wrapper(
    engine: &Path,
    inputs: Vec<pb::ValueInfoProto>,
    outputs: Vec<pb::ValueInfoProto>,
) -> Result<PathBuf, EpContextError> {
    let name = engine
        .file_name()
        .ok_or_else(|| EpContextError::NoFileName(engine.to_path_buf()))?
        .to_string_lossy()
        .into_owned();
    let model = wrapper_model(&name, inputs, outputs);
    let path = wrapper_path(engine);
    std::fs::write(&path, model.encode_to_vec()).map_err(|source| EpContextError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapper_is_one_epcontext_node_over_the_engine() {
        let input = value_info(&Io {
            name: "image".into(),
            elem_type: ONNX_FLOAT,
            dims: Some(vec![Some(1), Some(3), Some(512), Some(512)]),
        });
        let output = value_info(&Io {
            name: "heatmap".into(),
            elem_type: ONNX_FLOAT,
            dims: None,
        });
        let dir = std::env::temp_dir().join(format!("nvtl-epctx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let engine = dir.join("model.onnx_b1_gpu0_fp16.engine");
        let path = write_wrapper(&engine, vec![input], vec![output]).unwrap();
        assert_eq!(path, dir.join("model.onnx_b1_gpu0_fp16.engine.epctx.onnx"));

        // Read back through the same protobuf types tract parses ONNX with.
        let model = pb::ModelProto::decode(std::fs::read(&path).unwrap().as_slice()).unwrap();
        let graph = model.graph.unwrap();
        assert_eq!(graph.node.len(), 1);
        let node = &graph.node[0];
        assert_eq!(
            (node.op_type.as_str(), node.domain.as_str()),
            ("EPContext", "com.microsoft")
        );
        assert_eq!(node.input, vec!["image"]);
        assert_eq!(node.output, vec!["heatmap"]);
        let attr = |name: &str| node.attribute.iter().find(|a| a.name == name).unwrap();
        assert_eq!(attr("embed_mode").i, 0);
        assert_eq!(
            attr("ep_cache_context").s,
            b"model.onnx_b1_gpu0_fp16.engine"
        );
        assert!(model
            .opset_import
            .iter()
            .any(|o| o.domain == "com.microsoft" && o.version == 1));
    }
}
