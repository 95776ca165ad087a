//! What can go wrong when targets are encoded or losses computed.

/// A head error: which object, output or parameter, and what was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HeadError {
    /// An object's class index is not below the number of classes.
    #[error("object {object}: class {class} is out of range (the head has {num_classes} classes)")]
    ObjectClass {
        object: usize,
        class: usize,
        num_classes: usize,
    },

    /// An object's box has a NaN or infinite coordinate.
    #[error("object {object}: box {bbox:?} has a coordinate that is not finite")]
    NonFiniteBox { object: usize, bbox: [f32; 4] },

    /// A classifier target index is not below the number of classes.
    #[error(
        "target {index}: class {class} is out of range (the output has {num_classes} classes)"
    )]
    TargetClass {
        index: usize,
        class: usize,
        num_classes: usize,
    },

    /// The batch of targets does not match the batch of outputs.
    #[error("{outputs} outputs in the batch but {targets} targets")]
    BatchSize { outputs: usize, targets: usize },

    /// A network output does not have the shape of its targets.
    #[error("output '{output}' has shape {shape:?}, the targets need {expected:?}")]
    OutputShape {
        output: &'static str,
        shape: Vec<usize>,
        expected: Vec<usize>,
    },

    /// Images of one batch were encoded with different classes or grids.
    #[error("target {index} has shape {shape:?}, the first target of the batch {expected:?}")]
    TargetShape {
        index: usize,
        shape: Vec<usize>,
        expected: Vec<usize>,
    },

    /// No targets to stack into a batch.
    #[error("an empty batch: no targets to stack")]
    EmptyBatch,

    /// A head parameter is out of its range.
    #[error("head parameter {name} = {value}: {reason}")]
    Param {
        name: &'static str,
        value: String,
        reason: String,
    },
}
