//! Frames out of a video file with GStreamer
//! (`filesrc ! decodebin ! videoconvert ! video/x-raw,format=RGB ! appsink`).

use std::path::Path;

use gst::prelude::*;
use image::RgbImage;

use super::{io_error, DataError, Progress};

/// File name of frame `index` (0-based, counting every decoded frame of the video).
pub fn frame_file_name(index: u64) -> String {
    format!("frame_{index:06}.png")
}

/// Decodes `video` and writes every `every`-th frame (counting from the first frame of
/// `range`) as `out/frame_NNNNNN.png`, NNNNNN being the frame's index in the video.
/// `range = Some((first, last))` keeps frames `first..=last` only. Each file is written
/// atomically. `progress` is called after each decoded frame with the frames decoded so far
/// (and the video's frame count when GStreamer knows it). Returns the number of files written.
///
/// A file that is not a video, does not decode, or stops with a decoding error is an error
/// naming the file; so is a video (or range) without frames.
pub fn extract_frames(
    video: &Path,
    out: &Path,
    every: u32,
    range: Option<(u64, u64)>,
    progress: &dyn Fn(Progress),
) -> Result<usize, DataError> {
    let fail = |reason: String| DataError::Video {
        file: video.to_path_buf(),
        reason,
    };
    if every == 0 {
        return Err(fail("`every` must be at least 1".into()));
    }
    if let Some((first, last)) = range {
        if last < first {
            return Err(fail(format!("frame range {first}..={last} is empty")));
        }
    }
    if !video.is_file() {
        return Err(fail("file not found".into()));
    }
    gst::init().map_err(|e| fail(format!("GStreamer does not initialise: {e}")))?;
    let pipeline = gst::parse::launch(
        "filesrc name=src ! decodebin ! videoconvert ! video/x-raw,format=RGB ! \
         appsink name=sink sync=false max-buffers=4",
    )
    .map_err(|e| fail(format!("building the GStreamer pipeline: {e}")))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| fail("the GStreamer description is not a pipeline".into()))?;
    let source = pipeline
        .by_name("src")
        .ok_or_else(|| fail("pipeline has no filesrc".into()))?;
    source.set_property("location", video.to_string_lossy().as_ref());
    let sink = pipeline
        .by_name("sink")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or_else(|| fail("pipeline has no appsink".into()))?;
    std::fs::create_dir_all(out).map_err(io_error("creating", out))?;

    let result = pull_frames(&pipeline, &sink, video, out, every, range, progress);
    let _ = pipeline.set_state(gst::State::Null);
    result
}

fn pull_frames(
    pipeline: &gst::Pipeline,
    sink: &gst_app::AppSink,
    video: &Path,
    out: &Path,
    every: u32,
    range: Option<(u64, u64)>,
    progress: &dyn Fn(Progress),
) -> Result<usize, DataError> {
    let fail = |reason: String| DataError::Video {
        file: video.to_path_buf(),
        reason,
    };
    let bus = pipeline
        .bus()
        .ok_or_else(|| fail("pipeline has no bus".into()))?;
    let bus_error = || {
        bus.pop_filtered(&[gst::MessageType::Error])
            .and_then(|message| match message.view() {
                gst::MessageView::Error(e) => Some(match e.debug() {
                    Some(debug) => format!("{} ({debug})", e.error()),
                    None => e.error().to_string(),
                }),
                _ => None,
            })
    };
    if pipeline.set_state(gst::State::Playing).is_err() {
        let reason = bus_error().unwrap_or_else(|| "the pipeline does not start".into());
        return Err(fail(format!("cannot decode: {reason}")));
    }
    let (first, last) = range.unwrap_or((0, u64::MAX));
    let mut index: u64 = 0;
    let mut written = 0usize;
    let mut total: Option<u64> = None;
    loop {
        // A decoding error posts an error message and no EOS: poll, so it is never missed.
        let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_mseconds(100)) else {
            if let Some(reason) = bus_error() {
                return Err(fail(format!(
                    "decoding stopped after {index} frames: {reason}"
                )));
            }
            if sink.is_eos() {
                break;
            }
            continue;
        };
        let keep = index >= first && index <= last && (index - first) % every as u64 == 0;
        if keep {
            let caps = sample
                .caps()
                .ok_or_else(|| fail(format!("frame {index} has no caps")))?;
            let info = gst_video::VideoInfo::from_caps(caps)
                .map_err(|e| fail(format!("frame {index}: caps {caps}: {e}")))?;
            if total.is_none() {
                let fps = info.fps();
                let duration = pipeline.query_duration::<gst::ClockTime>();
                if let (Some(duration), true) = (duration, fps.denom() > 0 && fps.numer() > 0) {
                    total = Some(
                        (duration.nseconds() as u128 * fps.numer() as u128
                            / (fps.denom() as u128 * 1_000_000_000)) as u64,
                    );
                }
            }
            let buffer = sample
                .buffer()
                .ok_or_else(|| fail(format!("frame {index} has no buffer")))?;
            let map = buffer
                .map_readable()
                .map_err(|e| fail(format!("frame {index}: {e}")))?;
            let image = rgb_from_frame(map.as_slice(), &info)
                .ok_or_else(|| fail(format!("frame {index}: buffer smaller than its caps say")))?;
            let path = out.join(frame_file_name(index));
            let mut bytes = Vec::new();
            image
                .write_to(
                    &mut std::io::Cursor::new(&mut bytes),
                    image::ImageFormat::Png,
                )
                .map_err(|e| DataError::Image {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            crate::fsutil::write_atomic(&path, &bytes)?;
            written += 1;
        }
        index += 1;
        progress(Progress { done: index, total });
        if index > last {
            break;
        }
    }
    if let Some(reason) = bus_error() {
        return Err(fail(format!(
            "decoding stopped after {index} frames: {reason}"
        )));
    }
    if index == 0 {
        return Err(fail("no video frames decoded".into()));
    }
    if written == 0 {
        return Err(fail(format!(
            "the video has {index} frames; none is in the range {first}..={last}"
        )));
    }
    Ok(written)
}

/// Copies a packed RGB frame (rows `info.stride()[0]` bytes apart) into an image.
fn rgb_from_frame(data: &[u8], info: &gst_video::VideoInfo) -> Option<RgbImage> {
    let (width, height) = (info.width() as usize, info.height() as usize);
    let stride = usize::try_from(*info.stride().first()?).ok()?;
    let offset = *info.offset().first()?;
    let row = width * 3;
    let mut pixels = Vec::with_capacity(row * height);
    for y in 0..height {
        let start = offset + y * stride;
        pixels.extend_from_slice(data.get(start..start + row)?);
    }
    RgbImage::from_raw(width as u32, height as u32, pixels)
}
