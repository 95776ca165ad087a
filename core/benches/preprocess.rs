//! `cargo bench -p nvtl-core --bench preprocess`: ns per frame of the pipeline's pre-processing
//! (768x576 NV12 / RGBx -> 512x512), fast path against the naive per-pixel reference; each
//! number is the best of the runs made in `NVTL_BENCH_MS` milliseconds (default 1500).

use std::hint::black_box;
use std::time::{Duration, Instant};

use nvtl_core::config::{ModelColorFormat, ScalingFilter, TensorOrder};
use nvtl_core::preprocess::reference::preprocess_naive;
use nvtl_core::preprocess::{preprocess, FrameView, PixelFormat, PreprocessParams, Rect};

type Fun = fn(
    &FrameView,
    Rect,
    &PreprocessParams,
    &mut [f32],
) -> Result<nvtl_core::preprocess::Transform, nvtl_core::preprocess::PreprocessError>;

fn ns_per_frame(f: Fun, frame: &FrameView, p: &PreprocessParams, budget: Duration) -> f64 {
    let mut out = vec![0.0f32; p.tensor_len()];
    let roi = Rect::full(frame.width, frame.height);
    f(frame, roi, p, &mut out).unwrap();
    // Best of many runs: the least disturbed by other work on the machine.
    let start = Instant::now();
    let mut best = f64::MAX;
    let mut n = 0u32;
    while start.elapsed() < budget || n < 3 {
        let t = Instant::now();
        f(black_box(frame), roi, p, black_box(&mut out)).unwrap();
        best = best.min(t.elapsed().as_nanos() as f64);
        n += 1;
    }
    best
}

fn main() {
    let (w, h) = (768, 576);
    // A smooth pattern with some texture; content does not change the work done.
    let mut state = 1u32;
    let mut noise = || {
        state = state.wrapping_mul(1664525).wrapping_add(1013904223);
        (state >> 24) as u8
    };
    let y: Vec<u8> = (0..w * h)
        .map(|i| ((i % w) / 3 + (i / w) / 4) as u8 ^ (noise() & 7))
        .collect();
    let uv: Vec<u8> = (0..w * h / 2).map(|_| 96 + (noise() & 63)).collect();
    let stride = w * 4 + 64;
    let rgbx: Vec<u8> = (0..stride * h).map(|_| noise()).collect();
    let frames = [
        FrameView {
            format: PixelFormat::Nv12,
            width: w,
            height: h,
            planes: vec![&y, &uv],
            strides: vec![w, w],
        },
        FrameView {
            format: PixelFormat::Rgbx,
            width: w,
            height: h,
            planes: vec![&rgbx],
            strides: vec![stride],
        },
    ];
    let budget = Duration::from_millis(
        std::env::var("NVTL_BENCH_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1500),
    );
    println!(
        "{:<6} {:<9} {:<5} {:>12} {:>14} {:>8}",
        "input", "filter", "order", "fast ns/fr", "naive ns/fr", "speedup"
    );
    for frame in &frames {
        for filter in [ScalingFilter::Bilinear, ScalingFilter::Nearest] {
            for order in [TensorOrder::Nchw, TensorOrder::Nhwc] {
                let p = PreprocessParams {
                    network_width: 512,
                    network_height: 512,
                    color_format: ModelColorFormat::Rgb,
                    scale_factor: 1.0 / 255.0,
                    offsets: [0.0; 3],
                    maintain_aspect_ratio: false,
                    symmetric_padding: false,
                    filter,
                    order,
                };
                let fast = ns_per_frame(preprocess, frame, &p, budget);
                let naive = ns_per_frame(preprocess_naive, frame, &p, budget);
                println!(
                    "{:<6} {:<9} {:<5} {:>12.0} {:>14.0} {:>7.1}x",
                    format!("{:?}", frame.format),
                    format!("{filter:?}"),
                    format!("{order:?}"),
                    fast,
                    naive,
                    naive / fast
                );
            }
        }
    }
}
