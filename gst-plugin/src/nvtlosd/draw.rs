//! nvtlosd draws with `nvtl_core::draw`, which the trainer's plots share.

pub use nvtl_core::draw::{class_color, Canvas, PackedRgbFormat};
