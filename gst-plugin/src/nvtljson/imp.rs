use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::{LazyLock, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;

use super::line::frame_record;
use crate::meta;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "nvtljson",
        gst::DebugColorFlags::empty(),
        Some("nvtl JSON-lines writer"),
    )
});

struct State {
    writer: BufWriter<File>,
    frames: u64,
}

#[derive(Default)]
pub struct NvtlJson {
    location: Mutex<Option<PathBuf>>,
    state: Mutex<Option<State>>,
}

#[glib::object_subclass]
impl ObjectSubclass for NvtlJson {
    const NAME: &'static str = "GstNvtlJson";
    type Type = super::NvtlJson;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for NvtlJson {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![glib::ParamSpecString::builder("location")
                .nick("Location")
                .blurb("File to write, one JSON object per frame (frame, pts, objects with box, label, class_id, confidence, classifier results)")
                .build()]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        match pspec.name() {
            "location" => {
                *self.location.lock().unwrap() = value
                    .get::<Option<String>>()
                    .expect("type checked")
                    .map(PathBuf::from)
            }
            other => unreachable!("unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "location" => self
                .location
                .lock()
                .unwrap()
                .as_ref()
                .map(|p| p.display().to_string())
                .to_value(),
            other => unreachable!("unknown property {other}"),
        }
    }
}

impl GstObjectImpl for NvtlJson {}

impl ElementImpl for NvtlJson {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "nvtl JSON lines",
                "Sink/Metadata",
                "Passes video through and writes its nvtl objects as JSON lines, one per frame. Example: \
                 ... ! nvtlinfer config-file-path=det.txt ! nvtljson location=objects.jsonl ! fakesink",
                "nvtl developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            crate::in_place_pad_templates(&gst::Caps::builder("video/x-raw").build())
        });
        TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for NvtlJson {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let location = self.location.lock().unwrap().clone().ok_or_else(|| {
            gst::error_msg!(gst::ResourceError::NotFound, ("nvtljson: no location set"))
        })?;
        let file = File::create(&location).map_err(|e| {
            gst::error_msg!(
                gst::ResourceError::OpenWrite,
                ("cannot create {}: {}", location.display(), e)
            )
        })?;
        *self.state.lock().unwrap() = Some(State {
            writer: BufWriter::new(file),
            frames: 0,
        });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        if let Some(mut state) = self.state.lock().unwrap().take() {
            state.writer.flush().map_err(|e| {
                gst::error_msg!(
                    gst::ResourceError::Write,
                    ("cannot write JSON lines: {}", e)
                )
            })?;
        }
        Ok(())
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        if event.type_() == gst::EventType::Eos {
            if let Some(state) = self.state.lock().unwrap().as_mut() {
                if let Err(e) = state.writer.flush() {
                    gst::element_imp_error!(
                        self,
                        gst::ResourceError::Write,
                        ("cannot write JSON lines: {}", e)
                    );
                }
            }
        }
        self.parent_sink_event(event)
    }

    fn transform_ip(
        &self,
        buffer: &mut gst::BufferRef,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let objects = meta::read_objects(buffer);
        let mut guard = self.state.lock().unwrap();
        let state = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        let record = frame_record(state.frames, buffer.pts().map(|t| t.nseconds()), &objects);
        state.frames += 1;
        writeln!(state.writer, "{record}").map_err(|e| {
            gst::element_imp_error!(
                self,
                gst::ResourceError::Write,
                ("cannot write JSON lines: {}", e)
            );
            gst::FlowError::Error
        })?;
        gst::trace!(
            CAT,
            imp = self,
            "frame {} with {} objects",
            state.frames - 1,
            objects.len()
        );
        Ok(gst::FlowSuccess::Ok)
    }
}
