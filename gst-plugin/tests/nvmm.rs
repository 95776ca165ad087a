//! `video/x-raw(memory:NVMM)` input on CPU: buffers whose memory is an NvBufSurface (built in
//! system memory, in both DeepStream ABI layouts) pointing at real photos. Detections must equal
//! those of the same pixels pushed as system memory.

mod common;

use common::*;
use gst::prelude::*;
use gst_check::Harness;
use nvtl_core::nvmm::{Abi, HostFrame, HostSurface, MemType};
use nvtl_core::preprocess::PixelFormat;

const CENTERNET: &str = "centernet_mobilenetv3_coco";

/// Objects as comparable values: (batch index, label, rect, confidence).
type Found = Vec<(
    Option<u32>,
    Option<String>,
    (u32, u32, u32, u32),
    Option<f64>,
)>;

fn found(buffer: &gst::BufferRef) -> Found {
    objects(buffer)
        .into_iter()
        .map(|o| (o.batch_index, o.label, o.rect, o.confidence))
        .collect()
}

fn rgba(rgb: &[u8]) -> Vec<u8> {
    rgb.chunks(3)
        .flat_map(|p| [p[0], p[1], p[2], 255])
        .collect()
}

/// BT.601 limited-range RGB -> NV12 (Y plane, interleaved UV at half resolution).
fn nv12(width: usize, height: usize, rgb: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let px = |x: usize, y: usize| {
        let i = (y * width + x) * 3;
        (rgb[i] as f32, rgb[i + 1] as f32, rgb[i + 2] as f32)
    };
    let mut luma = Vec::with_capacity(width * height);
    for y in 0..height {
        for x in 0..width {
            let (r, g, b) = px(x, y);
            luma.push((16.0 + 0.257 * r + 0.504 * g + 0.098 * b).round() as u8);
        }
    }
    let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
    let mut uv = Vec::with_capacity(cw * ch * 2);
    for cy in 0..ch {
        for cx in 0..cw {
            let (r, g, b) = px((2 * cx).min(width - 1), (2 * cy).min(height - 1));
            uv.push((128.0 - 0.148 * r - 0.291 * g + 0.439 * b).round() as u8);
            uv.push((128.0 + 0.439 * r - 0.368 * g - 0.071 * b).round() as u8);
        }
    }
    (luma, uv)
}

/// A system-memory buffer of `frame`'s planes with GStreamer's default strides.
fn system_buffer(frame: &HostFrame, info: &gst_video::VideoInfo) -> gst::Buffer {
    let mut data = vec![0u8; info.size()];
    let rows = |plane: usize| match (frame.format, plane) {
        (PixelFormat::Nv12, 1) => frame.height.div_ceil(2) as usize,
        _ => frame.height as usize,
    };
    for plane in 0..frame.pitches.len() {
        let (src_pitch, dst_pitch) = (frame.pitches[plane] as usize, info.stride()[plane] as usize);
        let row_bytes = src_pitch.min(dst_pitch);
        for row in 0..rows(plane) {
            let src = frame.offsets[plane] as usize + row * src_pitch;
            let dst = info.offset()[plane] + row * dst_pitch;
            data[dst..dst + row_bytes].copy_from_slice(&frame.data[src..src + row_bytes]);
        }
    }
    gst::Buffer::from_mut_slice(data)
}

fn video_info(format: gst_video::VideoFormat, width: u32, height: u32) -> gst_video::VideoInfo {
    gst_video::VideoInfo::builder(format, width, height)
        .build()
        .unwrap()
}

fn run_one(config: &std::path::Path, caps: &str, buffer: gst::Buffer) -> Found {
    init();
    let mut h = Harness::new_parse(&format!("nvtlinfer config-file-path={}", config.display()));
    h.set_src_caps_str(caps);
    let out = h.push_and_pull(buffer).expect("a buffer out");
    found(&out)
}

fn gst_format(format: PixelFormat) -> gst_video::VideoFormat {
    match format {
        PixelFormat::Nv12 => gst_video::VideoFormat::Nv12,
        PixelFormat::Rgbx => gst_video::VideoFormat::Rgba,
        other => panic!("{other:?} not used here"),
    }
}

fn system_objects(config: &std::path::Path, frame: &HostFrame) -> Found {
    let format = gst_format(frame.format);
    let info = video_info(format, frame.width, frame.height);
    let caps = info.to_caps().unwrap().to_string();
    run_one(config, &caps, system_buffer(frame, &info))
}

fn nvmm_objects(config: &std::path::Path, surface: HostSurface) -> Found {
    let first = &surface.frames()[0];
    let caps = format!(
        "video/x-raw(memory:NVMM),format={},width={},height={},framerate=10/1",
        gst_format(first.format).to_str(),
        first.width,
        first.height
    );
    run_one(config, &caps, gst::Buffer::from_mut_slice(surface))
}

fn photo_frame(name: &str, format: PixelFormat) -> HostFrame {
    let (w, h, rgb) = rgb_image(&asset(name));
    match format {
        PixelFormat::Rgbx => HostFrame::from_packed(format, w, h, &[&rgba(&rgb)], 256),
        PixelFormat::Nv12 => {
            let (y, uv) = nv12(w as usize, h as usize, &rgb);
            HostFrame::from_packed(format, w, h, &[&y, &uv], 512)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn nvmm_rgba_and_nv12_give_the_detections_of_system_memory() {
    init();
    let config = bundle(CENTERNET).config;
    for format in [PixelFormat::Rgbx, PixelFormat::Nv12] {
        let frame = photo_frame("dog.jpg", format);
        let expected = system_objects(&config, &frame);
        assert!(
            expected.iter().any(|o| o.1.as_deref() == Some("dog")),
            "{format:?}: the dog in system memory: {expected:?}"
        );
        for (abi, mem_type) in [(Abi::Ds6, MemType::CudaPinned), (Abi::Ds8, MemType::System)] {
            let surface = HostSurface::new(abi, mem_type, 1, vec![frame.clone()], false);
            let got = nvmm_objects(&config, surface);
            assert_eq!(got, expected, "{format:?} {abi:?} {mem_type}");
        }
    }
}

#[test]
fn batched_surfaces_give_per_frame_results() {
    init();
    let config = bundle(CENTERNET).config;
    let frames = vec![
        photo_frame("dog.jpg", PixelFormat::Rgbx),
        photo_frame("horses.jpg", PixelFormat::Rgbx),
    ];
    let singles: Vec<Found> = frames.iter().map(|f| system_objects(&config, f)).collect();
    // batchSize 4, numFilled 2: only the filled entries are read.
    let surface = HostSurface::new(Abi::Ds8, MemType::CudaUnified, 4, frames, false);
    let got = nvmm_objects(&config, surface);
    for (index, single) in singles.iter().enumerate() {
        let mine: Found = got
            .iter()
            .filter(|o| o.0 == Some(index as u32))
            .map(|o| (None, o.1.clone(), o.2, o.3))
            .collect();
        assert!(!mine.is_empty(), "frame {index} has objects");
        assert_eq!(&mine, single, "frame {index} as if alone");
    }
    assert!(got
        .iter()
        .any(|o| o.0 == Some(1) && o.1.as_deref() == Some("horse")));
    assert_eq!(got.len(), singles.iter().map(Vec::len).sum::<usize>());
}

/// The error message nvtlinfer posts for a one-frame NVMM stream of `surface`.
fn nvmm_error(surface: HostSurface) -> String {
    init();
    let config = bundle(CENTERNET).config;
    let pipeline = gst::parse::launch(&format!(
        "appsrc name=src caps=\"video/x-raw(memory:NVMM),format=RGBA,width=768,height=576,framerate=10/1\" \
         ! nvtlinfer config-file-path={} ! fakesink",
        config.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let _ = src.push_buffer(gst::Buffer::from_mut_slice(surface));
    let _ = src.end_of_stream();
    let result = wait_for_end(&pipeline);
    pipeline.set_state(gst::State::Null).unwrap();
    result.expect_err("an error for the surface")
}

#[test]
fn cuda_device_surfaces_post_a_clear_error_without_a_gpu() {
    if std::path::Path::new("/dev/nvidiactl").exists() {
        return;
    }
    let frame = photo_frame("dog.jpg", PixelFormat::Rgbx);
    let text = nvmm_error(HostSurface::new(
        Abi::Ds6,
        MemType::CudaDevice,
        1,
        vec![frame],
        false,
    ));
    // Without the cuda feature device memory is refused; with it (and no GPU here) the GPU
    // pre-processing that would read it cannot start.
    let why = if cfg!(feature = "cuda") {
        "need GPU pre-processing: CUDA is unavailable: libcuda"
    } else {
        "cuda feature"
    };
    assert!(
        text.contains("NVBUF_MEM_CUDA_DEVICE") && text.contains(why),
        "{text}"
    );
}

#[test]
fn unmapped_surface_arrays_name_libnvbufsurface_where_it_is_missing() {
    if nvtl_core::nvmm::cpu_map::NvBufSurfaceApi::load().is_ok() {
        return;
    }
    let frame = photo_frame("dog.jpg", PixelFormat::Rgbx);
    let text = nvmm_error(HostSurface::new(
        Abi::Ds8,
        MemType::SurfaceArray,
        1,
        vec![frame],
        false,
    ));
    assert!(
        text.contains(
            "NVBUF_MEM_SURFACE_ARRAY surfaces are read through libnvbufsurface's NvBufSurfaceMap"
        ) && text.contains("libnvbufsurface.so.1.0.0"),
        "{text}"
    );
}
