//! Inference backends.
