//! nvtl GStreamer plugin: `nvtlinfer` runs DeepStream nvinfer configs with nvtl's backends,
//! `nvtlosd` draws what it found, `nvtljson` writes it as JSON lines.

use gst::glib;

pub mod meta;
pub mod nvtlinfer;
pub mod nvtljson;
pub mod nvtlosd;

/// The always-present src and sink templates of an in-place element with `caps` on both sides.
pub(crate) fn in_place_pad_templates(caps: &gst::Caps) -> Vec<gst::PadTemplate> {
    [
        ("src", gst::PadDirection::Src),
        ("sink", gst::PadDirection::Sink),
    ]
    .into_iter()
    .map(|(name, direction)| {
        gst::PadTemplate::new(name, direction, gst::PadPresence::Always, caps)
            .expect("valid pad template")
    })
    .collect()
}

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    meta::register();
    nvtlinfer::register(plugin)?;
    nvtlosd::register(plugin)?;
    nvtljson::register(plugin)?;
    Ok(())
}

gst::plugin_define!(
    nvtl,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MIT/X11",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
