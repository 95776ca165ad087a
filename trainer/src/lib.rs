//! nvtl's trainer library: runs ONNX graphs as trainable burn modules, reads datasets and spec
//! files, trains heads, evaluates and exports model bundles that nvtlinfer runs.

pub mod data;
pub mod eval;
pub mod export;
pub mod fsutil;
pub mod graph;
pub mod heads;
pub mod import;
pub mod onnx_edit;
pub mod runner;
pub mod spec;
pub mod surgery;
pub mod train;
