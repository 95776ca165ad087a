//! What can go wrong when network outputs are matched to a parser or decoded.

use super::Parser;

/// A decoder error: which output, what shape it has and what the parser expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// No output (or not enough outputs) matches what the parser needs.
    #[error("{parser}: no output matches {expected} (outputs: {available})")]
    MissingOutput {
        parser: Parser,
        expected: String,
        available: String,
    },

    /// An output was found but its shape does not fit.
    #[error("{parser}: output '{output}' has shape {shape:?}, expected {expected}")]
    BadShape {
        parser: Parser,
        output: String,
        shape: Vec<usize>,
        expected: String,
    },

    /// The outputs could not be told apart.
    #[error("{parser}: ambiguous outputs: {detail}")]
    Ambiguous { parser: Parser, detail: String },

    /// The requested batch item is not in the tensor.
    #[error("output '{output}': batch index {index} out of range (batch size {batch})")]
    BatchIndex {
        output: String,
        index: usize,
        batch: usize,
    },

    /// The tensor's data length does not match its shape.
    #[error("output '{output}': {len} values do not match shape {shape:?}")]
    DataLength {
        output: String,
        len: usize,
        shape: Vec<usize>,
    },
}
