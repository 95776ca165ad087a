//! The built-in 5x7 bitmap font lives in `nvtl_core::draw::font`.

pub use nvtl_core::draw::font::*;
