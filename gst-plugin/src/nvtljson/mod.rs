//! `nvtljson`: writes the objects on each frame as one JSON line — place it after the last
//! nvtlinfer so that classifier results of secondary elements are included.

use gst::glib;
use gst::prelude::*;

mod imp;
pub mod line;

glib::wrapper! {
    pub struct NvtlJson(ObjectSubclass<imp::NvtlJson>) @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "nvtljson",
        gst::Rank::NONE,
        NvtlJson::static_type(),
    )
}
