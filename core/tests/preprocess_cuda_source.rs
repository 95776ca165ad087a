//! The GPU pre-processing kernel (`src/preprocess/preprocess.cu`, compiled with NVRTC by the
//! `cuda` feature) checked without a GPU: the same source is compiled with the host C++ compiler
//! behind a shim that runs every CUDA thread in turn, and its tensors must equal the CPU path's
//! (`nvtl_core::preprocess::preprocess`) exactly, for every pixel format, colour format, filter,
//! tensor order, letterbox mode and a cropped ROI.

use std::path::{Path, PathBuf};
use std::process::Command;

use nvtl_core::config::{ModelColorFormat, ScalingFilter, TensorOrder};
use nvtl_core::preprocess::{preprocess, PixelFormat, PreprocessParams, Rect};

mod preprocess_util;
use preprocess_util::{OwnedFrame, ALL_FORMATS};

type KernelFn = unsafe extern "C" fn(
    *const u8,
    *const u8,
    *const u8,
    i32,
    i32,
    i32,
    i32,
    i32,
    i32,
    i32,
    i32,
    i32,
    i32,
    i32,
    i32,
    i32,
    i32,
    i32,
    i32,
    i32,
    f32,
    f32,
    f32,
    f32,
    *mut f32,
);

/// The kernel built as a host shared library: `__global__` functions become plain functions,
/// `blockIdx` a global that `nvtl_host_at` sets (one-thread blocks).
fn host_kernel() -> libloading::Library {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/preprocess/preprocess.cu");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("preprocess_cuda_source");
    std::fs::create_dir_all(&dir).unwrap();
    let shim = dir.join("shim.cpp");
    std::fs::write(
        &shim,
        format!(
            "struct nvtl_dim3 {{ unsigned x, y, z; }};\n\
             static nvtl_dim3 blockIdx, threadIdx, blockDim = {{1, 1, 1}};\n\
             extern \"C\" void nvtl_host_at(unsigned x, unsigned y) {{ blockIdx.x = x; blockIdx.y = y; }}\n\
             #define NVTL_HOST_BUILD\n\
             #define NVTL_DEVICE static inline\n\
             #define __global__\n\
             #include \"{}\"\n",
            source.display()
        ),
    )
    .unwrap();
    let lib = dir.join(format!("libnvtl_preprocess_host_{}.so", std::process::id()));
    let compiler = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let out = Command::new(&compiler)
        .args([
            "-O1",
            "-ffp-contract=off",
            "-Wall",
            "-Werror",
            "-shared",
            "-fPIC",
            "-o",
        ])
        .arg(&lib)
        .arg(&shim)
        .output()
        .unwrap_or_else(|e| panic!("running {compiler}: {e} (install build-essential)"));
    assert!(
        out.status.success(),
        "{compiler} failed on preprocess.cu:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // SAFETY: a library built just now from our own source, with no initialisers.
    unsafe { libloading::Library::new(&lib) }.unwrap()
}

/// A frame with every byte of every plane (stride padding included) pseudo-random, so chroma
/// is independent of luma.
fn random_frame(format: PixelFormat, width: usize, height: usize, seed: u32) -> OwnedFrame {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state >> 8) as u8
    };
    let mut planes = Vec::new();
    let mut strides = Vec::new();
    for plane in 0..format.plane_count() {
        let (row_bytes, rows) = format.plane_size(plane, width, height);
        let stride = row_bytes + 5;
        planes.push((0..stride * rows).map(|_| next()).collect());
        strides.push(stride);
    }
    OwnedFrame {
        format,
        width,
        height,
        planes,
        strides,
    }
}

fn run_host(
    lib: &libloading::Library,
    frame: &OwnedFrame,
    roi: Rect,
    params: &PreprocessParams,
) -> Vec<f32> {
    // SAFETY: the symbols are the shim's and the kernel's, with these signatures.
    let at: libloading::Symbol<unsafe extern "C" fn(u32, u32)> =
        unsafe { lib.get(b"nvtl_host_at") }.unwrap();
    let kernel: libloading::Symbol<KernelFn> = unsafe { lib.get(b"nvtl_preprocess") }.unwrap();
    let (px, py, sw, sh) = params.placement(roi.width, roi.height);
    let mut out = vec![f32::NAN; params.tensor_len()];
    let plane = |i: usize| frame.planes.get(i).map_or(std::ptr::null(), |p| p.as_ptr());
    let stride = |i: usize| frame.strides.get(i).copied().unwrap_or(0) as i32;
    let format = frame.format.kernel_code();
    let (s, adds) = params.affine();
    for y in 0..params.network_height as u32 {
        for x in 0..params.network_width as u32 {
            // SAFETY: pointers cover the planes and the output tensor the kernel indexes.
            unsafe {
                at(x, y);
                kernel(
                    plane(0),
                    plane(1),
                    plane(2),
                    stride(0),
                    stride(1),
                    stride(2),
                    format,
                    roi.x as i32,
                    roi.y as i32,
                    roi.width as i32,
                    roi.height as i32,
                    px as i32,
                    py as i32,
                    sw as i32,
                    sh as i32,
                    params.network_width as i32,
                    params.network_height as i32,
                    params.color_format as i32,
                    params.filter as i32,
                    params.order as i32,
                    s,
                    adds[0],
                    adds[1],
                    adds[2],
                    out.as_mut_ptr(),
                );
            }
        }
    }
    out
}

#[test]
fn host_compiled_kernel_equals_the_cpu_path() {
    let lib = host_kernel();
    let colors = [
        ModelColorFormat::Rgb,
        ModelColorFormat::Bgr,
        ModelColorFormat::Gray,
    ];
    let mut cases = 0;
    for (fi, &format) in ALL_FORMATS.iter().enumerate() {
        // Odd sizes: chroma planes round up, the last column/row has its own chroma sample.
        let frame = random_frame(format, 37, 29, fi as u32 + 1);
        for &color in &colors {
            for filter in [ScalingFilter::Nearest, ScalingFilter::Bilinear] {
                for order in [TensorOrder::Nchw, TensorOrder::Nhwc] {
                    for (aspect, symmetric, roi, (nw, nh)) in [
                        (false, false, Rect::full(37, 29), (24, 16)),
                        (true, true, Rect::new(3, 5, 21, 17), (32, 32)),
                        (true, false, Rect::new(1, 0, 36, 9), (20, 30)),
                        (false, false, Rect::new(10, 7, 5, 4), (23, 19)),
                    ] {
                        let params = PreprocessParams {
                            network_width: nw,
                            network_height: nh,
                            color_format: color,
                            scale_factor: 1.0 / 255.0 * 1.7,
                            offsets: [123.7, 116.3, 103.5],
                            maintain_aspect_ratio: aspect,
                            symmetric_padding: symmetric,
                            filter,
                            order,
                        };
                        let mut cpu = vec![0f32; params.tensor_len()];
                        preprocess(&frame.view(), roi, &params, &mut cpu).unwrap();
                        let gpu = run_host(&lib, &frame, roi, &params);
                        let worst =
                            cpu.iter()
                                .zip(&gpu)
                                .map(|(a, b)| (a - b).abs())
                                .fold(
                                    0f32,
                                    |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d) },
                                );
                        assert!(
                            worst == 0.0,
                            "{format:?} -> {color:?}, {filter:?}, {order:?}, aspect {aspect}, \
                             symmetric {symmetric}, {roi:?} -> {nw}x{nh}: kernel differs from \
                             the CPU path by {worst}"
                        );
                        cases += 1;
                    }
                }
            }
        }
    }
    assert_eq!(cases, 7 * 3 * 2 * 2 * 4);
}
