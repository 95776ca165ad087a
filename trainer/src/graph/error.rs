//! Errors of loading, running and exporting ONNX graphs.

use std::path::PathBuf;

/// What went wrong, naming the node (and its op) or the file.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("node '{node}': op '{op}' is not supported by the burn graph executor")]
    UnsupportedOp { op: String, node: String },
    #[error("node '{node}': attribute '{attr}': {reason}")]
    BadAttribute {
        node: String,
        attr: String,
        reason: String,
    },
    #[error("node '{node}': {reason}")]
    Shape { node: String, reason: String },
    #[error("node '{node}': input value '{name}' is not produced by any earlier node, initializer or graph input")]
    MissingValue { node: String, name: String },
    #[error("initializer '{name}': {reason}")]
    Initializer { name: String, reason: String },
    #[error("the graph: {0}")]
    Graph(String),
    #[error("no parameter or node matches the freeze pattern '{pattern}'")]
    NoMatch { pattern: String },
    #[error(transparent)]
    Model(#[from] nvtl_core::model::ModelError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}
