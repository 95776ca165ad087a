//! `nvtlosd`: draws the objects nvtlinfer attached (boxes, labels, confidences, classifier
//! results) onto RGB-family frames.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct NvtlOsd(ObjectSubclass<imp::NvtlOsd>) @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "nvtlosd",
        gst::Rank::NONE,
        NvtlOsd::static_type(),
    )
}
