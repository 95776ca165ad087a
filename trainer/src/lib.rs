//! nvtl's trainer library: runs ONNX graphs as trainable burn modules, reads datasets and spec
//! files, trains heads, evaluates and exports model bundles that nvtlinfer runs.

// Errors carry the file, key and value a user needs (nvtl_core's ConfigError is ~136 bytes); they
// are returned once per command, never in a hot loop, so their size does not matter.
#![allow(clippy::result_large_err)]

pub mod data;
pub mod devices;
pub mod eval;
pub mod export;
pub mod fsutil;
pub mod graph;
pub mod heads;
pub mod import;
pub mod onnx_edit;
pub mod prune;
pub mod quantize;
pub mod runner;
pub mod spec;
pub mod surgery;
pub mod train;
