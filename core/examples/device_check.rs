//! The GPU half of scripts/device-check.sh: on a machine with an NVIDIA GPU, runs every zoo
//! bundle under `--zoo` on the cpu backend (tract) and the cuda backend (tract-cuda) on the same
//! pre-processed photo and compares their outputs; times both; runs the element's path on the CPU,
//! on cuda, and on cuda with the frame and the network input in GPU memory, and compares what
//! each decodes; and compares the NVRTC pre-processing kernel with the CPU pre-processing on the
//! same photo as RGBx and NV12.
//! Prints one line per check and exits 1 when any output is outside its tolerance.
//!
//! Usage: device_check --zoo DIR --image PHOTO [--runs N]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use nvtl_core::backend::{self, BackendKind, ModelSpec, Plan};
use nvtl_core::config::InferConfig;
use nvtl_core::engine::{Engine, EngineError, InferResult, Target};
use nvtl_core::preprocess::cuda::GpuPreprocessor;
use nvtl_core::preprocess::{preprocess, FrameView, PixelFormat, PreprocessParams, Rect};
use nvtl_core::tensor::Tensor;

/// Largest |cpu - cuda| allowed, relative to the largest |cpu| of the output. cuDNN may run
/// float convolutions in TF32 on Ampere and later, which keeps 10 mantissa bits.
const MODEL_TOLERANCE: f32 = 1e-2;
/// Pre-processing: the same arithmetic on both sides, up to fused multiply-adds on the GPU.
const PREPROCESS_TOLERANCE: f32 = 1e-4;

struct Args {
    zoo: PathBuf,
    image: PathBuf,
    runs: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut zoo = None;
    let mut image = None;
    let mut runs = 50;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--zoo" => zoo = Some(PathBuf::from(value()?)),
            "--image" => image = Some(PathBuf::from(value()?)),
            "--runs" => runs = value()?.parse().map_err(|e| format!("--runs: {e}"))?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        zoo: zoo.ok_or("--zoo DIR is required")?,
        image: image.ok_or("--image PHOTO is required")?,
        runs,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("device_check: {e}\nusage: device_check --zoo DIR --image PHOTO [--runs N]");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("device_check: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> Result<bool, String> {
    for status in backend::backend_report() {
        println!(
            "backend {:12} built {:5} {}",
            status.kind.name(),
            status.built,
            match &status.usable {
                Ok(detail) => format!("usable: {detail}"),
                Err(why) => format!("unusable: {why}"),
            }
        );
    }
    let photo = image::open(&args.image)
        .map_err(|e| format!("{}: {e}", args.image.display()))?
        .to_rgba8();
    let mut all_ok = true;
    let mut bundles: Vec<PathBuf> = std::fs::read_dir(&args.zoo)
        .map_err(|e| format!("{}: {e}", args.zoo.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("config_infer.txt").is_file())
        .collect();
    bundles.sort();
    for bundle in &bundles {
        all_ok &= compare_model(bundle, &photo, args.runs)?;
    }
    all_ok &= compare_preprocessing(&bundles, &photo, args.runs)?;
    println!("device check: {}", if all_ok { "PASS" } else { "FAIL" });
    Ok(all_ok)
}

fn rgbx_view(photo: &image::RgbaImage) -> FrameView<'_> {
    FrameView {
        format: PixelFormat::Rgbx,
        width: photo.width() as usize,
        height: photo.height() as usize,
        planes: vec![photo.as_raw()],
        strides: vec![photo.width() as usize * 4],
    }
}

fn load(config: &InferConfig, kind: BackendKind) -> Result<std::sync::Arc<dyn Plan>, String> {
    let onnx = config.onnx_file.clone().ok_or("config without onnx-file")?;
    let spec = ModelSpec {
        onnx_path: onnx,
        batch_size: 1,
        infer_dims: config.infer_dims.map(|d| d.map(|v| v as usize)),
        input_order: config.network_input_order,
        threads: 0,
        gpu_id: 0,
        precision: config.network_mode.into(),
        int8_calib_file: None,
        engine_file: None,
    };
    backend::backend(kind)
        .and_then(|b| b.load(&spec))
        .map_err(|e| format!("{kind}: {e}"))
}

fn timed_runs(plan: &dyn Plan, input: &Tensor, runs: usize) -> Result<(Vec<Tensor>, f64), String> {
    let mut session = plan.new_session().map_err(|e| e.to_string())?;
    let first = session.run(input).map_err(|e| e.to_string())?;
    let start = Instant::now();
    for _ in 0..runs {
        session.run(input).map_err(|e| e.to_string())?;
    }
    let ms = start.elapsed().as_secs_f64() * 1e3 / runs.max(1) as f64;
    Ok((first, ms))
}

fn compare_model(bundle: &Path, photo: &image::RgbaImage, runs: usize) -> Result<bool, String> {
    let name = bundle.file_name().unwrap_or_default().to_string_lossy();
    let config = InferConfig::from_file(&bundle.join("config_infer.txt"))
        .map_err(|e| e.to_string())?
        .config;
    let cpu = load(&config, BackendKind::Cpu)?;
    let load_start = Instant::now();
    let cuda = load(&config, BackendKind::Cuda)?;
    let load_s = load_start.elapsed().as_secs_f64();
    let (_, h, w) = cpu
        .input()
        .image_dims(config.network_input_order)
        .ok_or("input is not an image")?;
    let params = PreprocessParams::from_config(&config, w, h);
    let mut input = Tensor::new(
        cpu.input().name.clone(),
        cpu.input().shape.clone(),
        vec![0.0; cpu.input().shape.iter().product()],
    );
    let frame = rgbx_view(photo);
    preprocess(
        &frame,
        Rect::full(frame.width, frame.height),
        &params,
        &mut input.data,
    )
    .map_err(|e| e.to_string())?;
    let (convs, on_gpu) = gpu_ops(&config, &cpu.input().shape)?;
    println!("model {name}: {convs} convolutions in the graph, {on_gpu} ops rewritten to CUDA");
    let (cpu_out, cpu_ms) = timed_runs(cpu.as_ref(), &input, runs.min(20))?;
    let (cuda_out, cuda_ms) = timed_runs(cuda.as_ref(), &input, runs)?;
    let mut ok = true;
    for (a, b) in cpu_out.iter().zip(&cuda_out) {
        let scale = a.data.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
        let diff = a
            .data
            .iter()
            .zip(&b.data)
            .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        let pass = a.shape == b.shape && diff / scale <= MODEL_TOLERANCE;
        ok &= pass;
        println!(
            "model {name} output {} {:?}: max |cpu - cuda| {diff:.3e} (outputs up to {scale:.3e}, relative {:.2e}) {}",
            a.name,
            a.shape,
            diff / scale,
            if pass { "PASS" } else { "FAIL" }
        );
    }
    println!(
        "model {name}: cpu {cpu_ms:.2} ms ({:.1} FPS), cuda {cuda_ms:.2} ms ({:.1} FPS), {:.1}x; cuda load {load_s:.1} s",
        1e3 / cpu_ms,
        1e3 / cuda_ms,
        cpu_ms / cuda_ms
    );
    // The whole element path (pre-processing, inference, decoding): the number of objects or
    // attributes decoded and frames per second, on the CPU; on cuda from a host frame; and on
    // cuda from a frame in GPU memory whose network input the kernel writes straight into the
    // model's device input (nvtlinfer's path for NVMM in CUDA memory).
    let gpu = GpuPreprocessor::new(0).map_err(|e| e.to_string())?;
    let uploaded = gpu.upload(&frame).map_err(|e| e.to_string())?;
    let regions = [Rect::full(frame.width, frame.height)];
    let targets = Target::of_frame(0, (frame.width, frame.height), &regions);
    let paths = [
        ("cpu", BackendKind::Cpu, false),
        ("cuda, host frame", BackendKind::Cuda, false),
        ("cuda, frame and input on the GPU", BackendKind::Cuda, true),
    ];
    let mut counts = Vec::new();
    for (label, kind, on_device) in paths {
        let (mut engine, _) = Engine::load(config.clone(), kind, 0).map_err(|e| e.to_string())?;
        if on_device && engine.device_input_gpu() != Some(0) {
            println!("model {name}: the cuda engine takes no device input FAIL");
            ok = false;
            continue;
        }
        let infer = |engine: &mut Engine| {
            if on_device {
                engine.infer_on_device(&targets, &mut |target, params, stream, out| {
                    // SAFETY: `out` is a slot of the engine's device input on GPU 0.
                    unsafe {
                        gpu.run_device_into(
                            stream,
                            uploaded.frame(),
                            target.region,
                            params,
                            out,
                            params.tensor_len(),
                        )
                    }
                    .map_err(|e| EngineError::GpuPreprocess(e.to_string()))
                })
            } else {
                engine.infer_regions(&frame, &regions)
            }
            .map_err(|e| e.to_string())
        };
        let decoded: usize = infer(&mut engine)?
            .iter()
            .map(|r| match r {
                InferResult::Objects(o) => o.len(),
                InferResult::Classification(c) => c.attributes.len(),
                InferResult::Segmentation(_) | InferResult::Raw => 1,
            })
            .sum();
        let timed = if kind == BackendKind::Cpu {
            runs.min(20)
        } else {
            runs
        };
        let start = Instant::now();
        for _ in 0..timed {
            infer(&mut engine)?;
        }
        let fps = timed.max(1) as f64 / start.elapsed().as_secs_f64();
        println!("model {name}: {label}: {decoded} results decoded, {fps:.1} frames/s end to end");
        counts.push(decoded);
    }
    let pass = counts.len() == paths.len() && counts.iter().all(|&n| n == counts[0]);
    ok &= pass;
    println!(
        "model {name}: decoded results {counts:?} (cpu, cuda, cuda on device) {}",
        if pass { "PASS" } else { "FAIL" }
    );
    Ok(ok)
}

/// Convolutions in the decluttered graph (what the cuda backend hands tract-cuda) and the ops
/// tract-cuda rewrites to CUDA kernels: fewer CUDA ops than convolutions means work left on the CPU.
fn gpu_ops(config: &InferConfig, shape: &[usize]) -> Result<(usize, usize), String> {
    use tract_onnx::prelude::*;
    use tract_onnx::tract_core::transform::ModelTransform;
    let onnx = config.onnx_file.clone().ok_or("config without onnx-file")?;
    let model = tract_onnx::onnx()
        .model_for_path(&onnx)
        .and_then(|m| m.with_input_fact(0, f32::fact(shape).into()))
        .and_then(|m| m.into_typed())
        .and_then(|m| m.into_decluttered())
        .map_err(|e| format!("{}: {e:#}", onnx.display()))?;
    let convs = model
        .nodes()
        .iter()
        .filter(|n| n.op().name().contains("Conv"))
        .count();
    let cuda = tract_cuda::CudaTransform
        .transform_into(model)
        .map_err(|e| format!("tract-cuda: {e:#}"))?;
    let on_gpu = cuda
        .nodes()
        .iter()
        .filter(|n| n.op().name().starts_with("Cuda"))
        .count();
    Ok((convs, on_gpu))
}

/// BT.601 limited-range NV12 of an RGBA photo (even size), for the YUV path of the kernel.
fn nv12(photo: &image::RgbaImage) -> (usize, usize, Vec<u8>, Vec<u8>) {
    let (w, h) = (photo.width() as usize & !1, photo.height() as usize & !1);
    let px = |x: usize, y: usize| photo.get_pixel(x as u32, y as u32).0;
    let mut luma = vec![0u8; w * h];
    let mut chroma = vec![0u8; w * h / 2];
    for y in 0..h {
        for x in 0..w {
            let [r, g, b, _] = px(x, y).map(f32::from);
            luma[y * w + x] = (16.0 + 0.257 * r + 0.504 * g + 0.098 * b).round() as u8;
        }
    }
    for y in (0..h).step_by(2) {
        for x in (0..w).step_by(2) {
            let [r, g, b, _] = px(x, y).map(f32::from);
            chroma[y / 2 * w + x] = (128.0 - 0.148 * r - 0.291 * g + 0.439 * b).round() as u8;
            chroma[y / 2 * w + x + 1] = (128.0 + 0.439 * r - 0.368 * g - 0.071 * b).round() as u8;
        }
    }
    (w, h, luma, chroma)
}

fn compare_preprocessing(
    bundles: &[PathBuf],
    photo: &image::RgbaImage,
    runs: usize,
) -> Result<bool, String> {
    let gpu = GpuPreprocessor::new(0).map_err(|e| e.to_string())?;
    let (w, h, luma, chroma) = nv12(photo);
    let nv12_frame = FrameView {
        format: PixelFormat::Nv12,
        width: w,
        height: h,
        planes: vec![&luma, &chroma],
        strides: vec![w, w],
    };
    let rgbx_frame = rgbx_view(photo);
    let mut ok = true;
    for bundle in bundles {
        let name = bundle.file_name().unwrap_or_default().to_string_lossy();
        let config = InferConfig::from_file(&bundle.join("config_infer.txt"))
            .map_err(|e| e.to_string())?
            .config;
        let cpu_plan = load(&config, BackendKind::Cpu)?;
        let (_, nh, nw) = cpu_plan
            .input()
            .image_dims(config.network_input_order)
            .ok_or("input is not an image")?;
        let params = PreprocessParams::from_config(&config, nw, nh);
        for frame in [&rgbx_frame, &nv12_frame] {
            let roi = Rect::full(frame.width, frame.height);
            let mut cpu = vec![0f32; params.tensor_len()];
            let start = Instant::now();
            for _ in 0..runs {
                preprocess(frame, roi, &params, &mut cpu).map_err(|e| e.to_string())?;
            }
            let cpu_ms = start.elapsed().as_secs_f64() * 1e3 / runs as f64;
            let mut host_path = vec![0f32; params.tensor_len()];
            gpu.run_host(frame, roi, &params, &mut host_path)
                .map_err(|e| e.to_string())?;
            // Kernel time on a frame already on the GPU (the NVMM CUDA-memory case).
            let stream = gpu.stream();
            let uploaded = gpu.upload(frame).map_err(|e| e.to_string())?;
            let device_frame = uploaded.frame();
            let mut device_out = stream
                .alloc_zeros::<f32>(params.tensor_len())
                .map_err(|e| e.to_string())?;
            gpu.run_device(device_frame, roi, &params, &mut device_out)
                .map_err(|e| e.to_string())?;
            stream.synchronize().map_err(|e| e.to_string())?;
            let start = Instant::now();
            for _ in 0..runs {
                gpu.run_device(device_frame, roi, &params, &mut device_out)
                    .map_err(|e| e.to_string())?;
            }
            stream.synchronize().map_err(|e| e.to_string())?;
            let gpu_ms = start.elapsed().as_secs_f64() * 1e3 / runs as f64;
            let device_path = stream.clone_dtoh(&device_out).map_err(|e| e.to_string())?;
            for (label, got) in [("host frame", &host_path), ("device frame", &device_path)] {
                let diff = cpu
                    .iter()
                    .zip(got.iter())
                    .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                let pass = diff <= PREPROCESS_TOLERANCE;
                ok &= pass;
                println!(
                    "preprocess {name} {:?} {}x{} -> {nw}x{nh} ({label}): max |cpu - gpu| {diff:.2e} {}",
                    frame.format,
                    frame.width,
                    frame.height,
                    if pass { "PASS" } else { "FAIL" }
                );
            }
            println!(
                "preprocess {name} {:?}: cpu {cpu_ms:.3} ms, gpu kernel {gpu_ms:.3} ms ({:.1}x)",
                frame.format,
                cpu_ms / gpu_ms
            );
        }
    }
    Ok(ok)
}
