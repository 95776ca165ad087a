use std::sync::{LazyLock, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::prelude::*;
use gst_video::VideoFormat;

use crate::meta;
use nvtl_core::draw::{class_color, Canvas, PackedRgbFormat};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "nvtlosd",
        gst::DebugColorFlags::empty(),
        Some("nvtl overlay"),
    )
});

const FORMATS: [VideoFormat; 10] = [
    VideoFormat::Rgb,
    VideoFormat::Bgr,
    VideoFormat::Rgbx,
    VideoFormat::Bgrx,
    VideoFormat::Rgba,
    VideoFormat::Bgra,
    VideoFormat::Xrgb,
    VideoFormat::Xbgr,
    VideoFormat::Argb,
    VideoFormat::Abgr,
];

const DEFAULT_BORDER_WIDTH: u32 = 2;
const DEFAULT_TEXT_SCALE: u32 = 2;

#[derive(Clone, Debug)]
struct Settings {
    border_width: u32,
    text_scale: u32,
    display_text: bool,
    display_confidence: bool,
    display_mask: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            border_width: DEFAULT_BORDER_WIDTH,
            text_scale: DEFAULT_TEXT_SCALE,
            display_text: true,
            display_confidence: true,
            display_mask: false,
        }
    }
}

#[derive(Default)]
pub struct NvtlOsd {
    settings: Mutex<Settings>,
    info: Mutex<Option<gst_video::VideoInfo>>,
}

fn packed_format(format: VideoFormat) -> Option<PackedRgbFormat> {
    Some(match format {
        VideoFormat::Rgb => PackedRgbFormat::Rgb,
        VideoFormat::Bgr => PackedRgbFormat::Bgr,
        VideoFormat::Rgbx => PackedRgbFormat::Rgbx,
        VideoFormat::Bgrx => PackedRgbFormat::Bgrx,
        VideoFormat::Rgba => PackedRgbFormat::Rgba,
        VideoFormat::Bgra => PackedRgbFormat::Bgra,
        VideoFormat::Xrgb => PackedRgbFormat::Xrgb,
        VideoFormat::Xbgr => PackedRgbFormat::Xbgr,
        VideoFormat::Argb => PackedRgbFormat::Argb,
        VideoFormat::Abgr => PackedRgbFormat::Abgr,
        _ => return None,
    })
}

/// The caption drawn above an object: label, confidence, then classifier labels.
pub(crate) fn caption(object: &meta::ObjectMeta, with_confidence: bool) -> String {
    let mut text = match (&object.label, object.roi_type.as_str()) {
        (Some(label), _) => label.clone(),
        (None, meta::FRAME_ROI_TYPE) => String::new(),
        (None, roi_type) => roi_type.to_string(),
    };
    if with_confidence {
        if let Some(confidence) = object.confidence {
            text.push_str(&format!(" {confidence:.2}"));
        }
    }
    for classification in &object.classifications {
        if !text.is_empty() {
            text.push_str(" | ");
        }
        text.push_str(&classification.label);
        if with_confidence {
            text.push_str(&format!(" {:.2}", classification.probability));
        }
    }
    text
}

fn to_rgba8(color: [f64; 4]) -> [u8; 4] {
    color.map(|c| (c.clamp(0.0, 1.0) * 255.0).round() as u8)
}

#[glib::object_subclass]
impl ObjectSubclass for NvtlOsd {
    const NAME: &'static str = "GstNvtlOsd";
    type Type = super::NvtlOsd;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for NvtlOsd {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecUInt::builder("border-width")
                    .nick("Border Width")
                    .blurb("Box line thickness in pixels")
                    .minimum(1)
                    .maximum(64)
                    .default_value(DEFAULT_BORDER_WIDTH)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("text-scale")
                    .nick("Text Scale")
                    .blurb("Caption size as a multiple of the 8-pixel built-in font")
                    .minimum(1)
                    .maximum(16)
                    .default_value(DEFAULT_TEXT_SCALE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("display-text")
                    .nick("Display Text")
                    .blurb("Draw captions (label, confidence, classifier results)")
                    .default_value(true)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("display-confidence")
                    .nick("Display Confidence")
                    .blurb("Add confidences to the captions")
                    .default_value(true)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("display-mask")
                    .nick("Display Mask")
                    .blurb(
                        "Shade instance masks (network-type=3 with output-instance-mask) over \
                         their boxes, as nvdsosd's display-mask",
                    )
                    .default_value(false)
                    .mutable_playing()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = self.settings.lock().unwrap();
        match pspec.name() {
            "border-width" => settings.border_width = value.get().expect("type checked"),
            "text-scale" => settings.text_scale = value.get().expect("type checked"),
            "display-text" => settings.display_text = value.get().expect("type checked"),
            "display-confidence" => {
                settings.display_confidence = value.get().expect("type checked")
            }
            "display-mask" => settings.display_mask = value.get().expect("type checked"),
            other => unreachable!("unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let settings = self.settings.lock().unwrap();
        match pspec.name() {
            "border-width" => settings.border_width.to_value(),
            "text-scale" => settings.text_scale.to_value(),
            "display-text" => settings.display_text.to_value(),
            "display-confidence" => settings.display_confidence.to_value(),
            "display-mask" => settings.display_mask.to_value(),
            other => unreachable!("unknown property {other}"),
        }
    }
}

impl GstObjectImpl for NvtlOsd {}

impl ElementImpl for NvtlOsd {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "nvtl overlay",
                "Filter/Effect/Video",
                "Draws the boxes, labels, confidences and classifier results that nvtlinfer attached. \
                 Colours per class, or the config's border-color; boxes of a class with a bg-color are filled with it. Example: ... ! nvtlinfer config-file-path=det.txt ! \
                 videoconvert ! nvtlosd ! videoconvert ! autovideosink",
                "nvtl developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            crate::in_place_pad_templates(
                &gst_video::VideoCapsBuilder::new()
                    .format_list(FORMATS)
                    .build(),
            )
        });
        TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for NvtlOsd {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn set_caps(&self, incaps: &gst::Caps, _outcaps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let info = gst_video::VideoInfo::from_caps(incaps)
            .map_err(|_| gst::loggable_error!(CAT, "cannot read video caps {incaps}"))?;
        *self.info.lock().unwrap() = Some(info);
        Ok(())
    }

    fn transform_ip(
        &self,
        buffer: &mut gst::BufferRef,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let info = self
            .info
            .lock()
            .unwrap()
            .clone()
            .ok_or(gst::FlowError::NotNegotiated)?;
        let settings = self.settings.lock().unwrap().clone();
        let objects = meta::read_objects(buffer);
        if objects.is_empty() {
            return Ok(gst::FlowSuccess::Ok);
        }
        let format = packed_format(info.format()).ok_or(gst::FlowError::NotNegotiated)?;
        let mut frame =
            gst_video::VideoFrameRef::from_buffer_ref_writable(buffer, &info).map_err(|_| {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Failed,
                    ("cannot map the video buffer for writing")
                );
                gst::FlowError::Error
            })?;
        let (width, height) = (frame.width() as usize, frame.height() as usize);
        let stride = frame.plane_stride()[0] as usize;
        let data = frame.plane_data_mut(0).map_err(|_| gst::FlowError::Error)?;
        let mut canvas = Canvas {
            data,
            width,
            height,
            stride,
            format,
        };
        for object in objects
            .iter()
            .filter(|o| o.roi_type != meta::FRAME_ROI_TYPE)
        {
            let color = object
                .border_color
                .map(to_rgba8)
                .unwrap_or_else(|| class_color(object.class_id.unwrap_or(0)));
            let (x, y, w, h) = object.rect;
            if let Some(background) = object.bg_color {
                canvas.fill_rect(x as i32, y as i32, w as i32, h as i32, to_rgba8(background));
            }
            if let Some(mask) = object.mask.as_ref().filter(|_| settings.display_mask) {
                let [red, green, blue, _] = color;
                canvas.fill_mask(
                    x as i32,
                    y as i32,
                    w as i32,
                    h as i32,
                    mask,
                    [red, green, blue, 128],
                );
            }
            canvas.draw_rect(
                x as i32,
                y as i32,
                w as i32,
                h as i32,
                settings.border_width,
                color,
            );
            if settings.display_text {
                let text = caption(object, settings.display_confidence);
                let (_, text_height) = Canvas::text_size(&text, settings.text_scale);
                let text_y = (y as i32 - text_height as i32).max(0);
                canvas.draw_text(
                    x as i32,
                    text_y,
                    &text,
                    settings.text_scale,
                    [255, 255, 255, 255],
                    Some(color),
                );
            }
        }
        // Frame-level classifier results (primary classifiers) go in the top-left corner.
        let mut line = 0;
        for object in objects
            .iter()
            .filter(|o| o.roi_type == meta::FRAME_ROI_TYPE)
        {
            let text = caption(object, settings.display_confidence);
            let (_, text_height) = Canvas::text_size(&text, settings.text_scale);
            canvas.draw_text(
                0,
                line,
                &text,
                settings.text_scale,
                [255, 255, 255, 255],
                Some([0, 0, 0, 160]),
            );
            line += text_height as i32;
        }
        Ok(gst::FlowSuccess::Ok)
    }
}
