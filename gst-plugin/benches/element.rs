//! nvtlinfer benchmark (not a test): CenterNet (`centernet_mobilenetv3_coco`) on vtest.avi frames,
//! against a Python + onnxruntime loop doing the same work with the same thread count.
//!
//! `cargo bench -p gst-plugin-nvtl --bench element [-- --frames N --threads T]`
//!
//! 1. Decodes N frames of vtest.avi once into memory as RGB 768x576 (decoding is not timed).
//! 2. Pushes them through `appsrc ! nvtlinfer config-file-path=... cpu-threads=T ! fakesink` as
//!    fast as the element takes them (after a few untimed warm-up frames), measures the wall time
//!    and reads the element's `stats` (time per stage).
//! 3. Runs `bench/run_ort_baseline.sh` (its own venv) with the same frames, threads, threshold,
//!    NMS IoU and top-K, and parses its JSON.
//! 4. Prints a table: FPS, ms/frame per stage, share of the time outside inference, and the
//!    ratio element / onnxruntime.
//!
//! Options: --frames N (200), --threads T (cores), --warmup W (3), --config PATH (the zoo
//! bundle's config_infer.txt), --video PATH ($NVTL_ASSETS/vtest.avi), --no-ort (skip the
//! baseline). The model is pulled into the zoo cache on first use; assets come from
//! scripts/fetch-assets.sh.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use gst::prelude::*;
use nvtl_core::config::InferConfig;
use nvtl_core::zoo::{self, Manifest};

const MODEL: &str = "centernet_mobilenetv3_coco";
const WIDTH: u32 = 768;
const HEIGHT: u32 = 576;

struct Args {
    frames: usize,
    threads: usize,
    warmup: usize,
    config: Option<PathBuf>,
    video: Option<PathBuf>,
    ort: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: element [--frames N] [--threads T] [--warmup W] [--config PATH] [--video PATH] [--no-ort]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut args = Args {
        frames: 200,
        threads: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        warmup: 3,
        config: None,
        video: None,
        ort: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .unwrap_or_else(|| usage())
        };
        let number = |v: String| v.parse::<usize>().unwrap_or_else(|_| usage());
        match key.as_str() {
            "--frames" => args.frames = number(value()),
            "--threads" => args.threads = number(value()),
            "--warmup" => args.warmup = number(value()),
            "--config" => args.config = Some(PathBuf::from(value())),
            "--video" => args.video = Some(PathBuf::from(value())),
            "--no-ort" => args.ort = false,
            // cargo bench passes --bench to harness=false targets.
            "--bench" => {}
            "-h" | "--help" => usage(),
            _ => {
                eprintln!("element: unknown argument {arg}");
                usage()
            }
        }
    }
    if args.frames == 0 || args.threads == 0 {
        eprintln!("element: --frames and --threads must be >= 1");
        usage()
    }
    args
}

fn assets_dir() -> PathBuf {
    std::env::var_os("NVTL_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
            PathBuf::from(home).join(".cache/nvtl/assets")
        })
}

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("element: {msg}");
    std::process::exit(1)
}

/// Waits for EOS or an error on the pipeline's bus.
fn wait_eos(pipeline: &gst::Pipeline) {
    let bus = pipeline.bus().expect("pipeline bus");
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        match msg.view() {
            gst::MessageView::Eos(..) => return,
            gst::MessageView::Error(err) => fail(format!(
                "{}: {} ({:?})",
                err.src().map(|s| s.path_string()).unwrap_or_default(),
                err.error(),
                err.debug()
            )),
            _ => {}
        }
    }
}

/// Decodes `count` RGB 768x576 frames of the video (looping if it is shorter).
fn decode_frames(video: &Path, count: usize) -> Vec<gst::Buffer> {
    let description = format!(
        "filesrc name=src ! decodebin ! videoconvert ! videoscale ! \
         video/x-raw,format=RGB,width={WIDTH},height={HEIGHT} ! appsink name=sink sync=false"
    );
    let pipeline = gst::parse::launch(&description)
        .unwrap_or_else(|e| fail(format!("decode pipeline: {e}")))
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    pipeline
        .by_name("src")
        .unwrap()
        .set_property("location", video.to_str().expect("UTF-8 path"));
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut frames = Vec::with_capacity(count);
    while frames.len() < count {
        let Ok(sample) = sink.pull_sample() else {
            break;
        };
        let buffer = sample.buffer().expect("a buffer");
        // A tightly packed copy (RGB 768 wide has no row padding, but make sure).
        let map = buffer.map_readable().expect("readable");
        let row = (WIDTH * 3) as usize;
        let info = gst_video::VideoInfo::from_caps(sample.caps().expect("caps")).expect("info");
        let stride = info.stride()[0] as usize;
        let mut data = Vec::with_capacity(row * HEIGHT as usize);
        for y in 0..HEIGHT as usize {
            data.extend_from_slice(&map[y * stride..y * stride + row]);
        }
        frames.push(gst::Buffer::from_mut_slice(data));
    }
    pipeline.set_state(gst::State::Null).unwrap();
    if frames.is_empty() {
        fail(format!("no frame decoded from {}", video.display()));
    }
    let decoded = frames.len();
    for i in decoded..count {
        frames.push(frames[i % decoded].clone());
    }
    frames
}

#[derive(Clone, Copy, Debug, Default)]
struct Stats {
    frames: u64,
    preprocess: f64,
    inference: f64,
    postprocess: f64,
    metadata: f64,
}

fn read_stats(element: &gst::Element) -> (Stats, String) {
    let s = element.property::<gst::Structure>("stats");
    let f = |k: &str| {
        s.get::<f64>(k)
            .unwrap_or_else(|e| fail(format!("stats {k}: {e}")))
    };
    (
        Stats {
            frames: s.get::<u64>("frames").unwrap_or(0),
            preprocess: f("preprocess-ms"),
            inference: f("inference-ms"),
            postprocess: f("postprocess-ms"),
            metadata: f("metadata-ms"),
        },
        s.get::<String>("backend").unwrap_or_default(),
    )
}

struct ElementRun {
    wall: Duration,
    stats: Stats,
    backend: String,
    objects: u64,
}

/// Pushes `warm` (untimed), then `timed` through the element as fast as it takes them.
fn run_element(
    config: &Path,
    threads: usize,
    warm: &[gst::Buffer],
    timed: &[gst::Buffer],
) -> ElementRun {
    let pipeline = gst::Pipeline::new();
    let src = gst_app::AppSrc::builder()
        .caps(
            &gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgb, WIDTH, HEIGHT)
                .fps(gst::Fraction::new(25, 1))
                .build()
                .unwrap()
                .to_caps()
                .unwrap(),
        )
        .format(gst::Format::Time)
        .is_live(false)
        .block(true)
        .max_bytes(0)
        .max_buffers(4)
        .build();
    let infer = gst::ElementFactory::make("nvtlinfer")
        .property("config-file-path", config.to_str().expect("UTF-8 path"))
        .property("cpu-threads", threads as u32)
        .build()
        .unwrap_or_else(|e| fail(format!("nvtlinfer: {e}")));
    let sink = gst::ElementFactory::make("fakesink")
        .property("sync", false)
        .property("signal-handoffs", true)
        .build()
        .unwrap();
    // Count buffers and objects at the sink.
    let (tx, rx) = std::sync::mpsc::channel::<u64>();
    let tx = std::sync::Mutex::new(tx);
    sink.connect("handoff", false, move |values| {
        let buffer = values[1].get::<gst::Buffer>().unwrap();
        let objects = buffer
            .iter_meta::<gst_video::VideoRegionOfInterestMeta>()
            .count() as u64;
        let _ = tx.lock().unwrap().send(objects);
        None
    });
    pipeline
        .add_many([src.upcast_ref(), &infer, &sink])
        .unwrap();
    gst::Element::link_many([src.upcast_ref(), &infer, &sink]).unwrap();
    pipeline.set_state(gst::State::Playing).unwrap_or_else(|_| {
        wait_eos(&pipeline);
        fail("the pipeline did not start")
    });

    let frame_duration = gst::ClockTime::from_mseconds(40);
    let push = |n: usize, buffer: &gst::Buffer| {
        let mut buffer = buffer.clone();
        {
            let b = buffer.make_mut();
            b.set_pts(frame_duration * n as u64);
            b.set_duration(frame_duration);
        }
        src.push_buffer(buffer)
            .unwrap_or_else(|e| fail(format!("push: {e:?}")));
    };
    for (n, frame) in warm.iter().enumerate() {
        push(n, frame);
    }
    for _ in warm {
        rx.recv().unwrap();
    }
    let (before, _) = read_stats(&infer);
    let started = Instant::now();
    for (i, frame) in timed.iter().enumerate() {
        push(warm.len() + i, frame);
    }
    src.end_of_stream().unwrap();
    wait_eos(&pipeline);
    let wall = started.elapsed();
    let (after, backend) = read_stats(&infer);
    pipeline.set_state(gst::State::Null).unwrap();
    let objects: u64 = rx.try_iter().sum();
    ElementRun {
        wall,
        stats: Stats {
            frames: after.frames - before.frames,
            preprocess: after.preprocess - before.preprocess,
            inference: after.inference - before.inference,
            postprocess: after.postprocess - before.postprocess,
            metadata: after.metadata - before.metadata,
        },
        backend,
        objects,
    }
}

struct OrtRun {
    fps: f64,
    preprocess: f64,
    inference: f64,
    decode: f64,
    objects_per_frame: f64,
    version: String,
}

fn run_ort(args: &Args, onnx: &Path, video: &Path, config: &InferConfig) -> Option<OrtRun> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/run_ort_baseline.sh");
    let attrs = &config.class_attrs.all;
    let topk = if attrs.topk > 0 {
        attrs.topk as usize
    } else {
        100 // the CenterNet decoder's own top-K
    };
    eprintln!(
        "element: running {} (its venv is made on first use)",
        script.display()
    );
    let output = Command::new(&script)
        .arg("--model")
        .arg(onnx)
        .arg("--video")
        .arg(video)
        .args(["--frames", &args.frames.to_string()])
        .args(["--threads", &args.threads.to_string()])
        .args(["--warmup", &args.warmup.to_string()])
        .args(["--threshold", &attrs.pre_cluster_threshold.to_string()])
        .args(["--iou", &attrs.nms_iou_threshold.to_string()])
        .args(["--topk", &topk.to_string()])
        .stderr(std::process::Stdio::inherit())
        .output();
    let output = match output {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            eprintln!("element: the onnxruntime baseline failed ({})", o.status);
            return None;
        }
        Err(e) => {
            eprintln!("element: cannot run {}: {e}", script.display());
            return None;
        }
    };
    let text = String::from_utf8_lossy(&output.stdout);
    let json: serde_json::Value = text
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .or_else(|| {
            eprintln!("element: no JSON from the baseline: {text}");
            None
        })?;
    let f = |k: &str| json[k].as_f64().unwrap_or(f64::NAN);
    Some(OrtRun {
        fps: f("fps"),
        preprocess: f("preprocess_ms"),
        inference: f("inference_ms"),
        decode: f("decode_ms"),
        objects_per_frame: f("objects_per_frame"),
        version: json["onnxruntime"].as_str().unwrap_or("?").to_string(),
    })
}

fn main() {
    let args = parse_args();
    gst::init().unwrap_or_else(|e| fail(format!("GStreamer: {e}")));
    gstnvtl::plugin_register_static().unwrap_or_else(|e| fail(format!("plugin: {e}")));

    let manifest = Manifest::builtin().unwrap_or_else(|e| fail(e));
    let model = manifest.get(MODEL).unwrap_or_else(|e| fail(e));
    let bundle = zoo::pull(model, &|_| {}).unwrap_or_else(|e| fail(format!("pull {MODEL}: {e}")));
    let config_path = args.config.clone().unwrap_or(bundle.config.clone());
    let config = InferConfig::from_file(&config_path)
        .unwrap_or_else(|e| fail(e))
        .config;
    let onnx = config.onnx_file.clone().unwrap_or(bundle.onnx.clone());
    let video = args
        .video
        .clone()
        .unwrap_or_else(|| assets_dir().join("vtest.avi"));
    if !video.is_file() {
        fail(format!(
            "{} is missing: run scripts/fetch-assets.sh",
            video.display()
        ));
    }

    eprintln!(
        "element: decoding {} frames of {}",
        args.frames + args.warmup,
        video.display()
    );
    let frames = decode_frames(&video, args.frames + args.warmup);
    let (warm, timed) = frames.split_at(args.warmup);
    eprintln!(
        "element: nvtlinfer, {} frames, {} threads",
        args.frames, args.threads
    );
    let run = run_element(&config_path, args.threads, warm, timed);
    let ort = if args.ort {
        run_ort(&args, &onnx, &video, &config)
    } else {
        None
    };
    report(&args, &config_path, &run, ort.as_ref());
}

fn report(args: &Args, config: &Path, run: &ElementRun, ort: Option<&OrtRun>) {
    let n = run.stats.frames.max(1) as f64;
    let wall_ms = run.wall.as_secs_f64() * 1000.0 / args.frames as f64;
    let fps = args.frames as f64 / run.wall.as_secs_f64();
    let s = &run.stats;
    let (pre, inf, post, meta) = (
        s.preprocess / n,
        s.inference / n,
        s.postprocess / n,
        s.metadata / n,
    );
    let staged = pre + inf + post + meta;
    let pct = |v: f64, of: f64| 100.0 * v / of;
    println!();
    println!(
        "nvtlinfer benchmark: {MODEL}, {} frames of vtest.avi (RGB {WIDTH}x{HEIGHT}), {} threads",
        args.frames, args.threads
    );
    println!("config: {}", config.display());
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        // Other work on the machine skews both runs; this says how busy it was at the end.
        println!(
            "load average (1/5/15 min) at the end: {}",
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    println!(
        "element backend: {}; {} frames through the element, {:.2} objects/frame",
        run.backend,
        s.frames,
        run.objects as f64 / args.frames as f64
    );
    println!();
    println!(
        "{:<34} {:>12} {:>14}",
        "ms per frame", "nvtlinfer", "onnxruntime"
    );
    let o = |f: fn(&OrtRun) -> f64| {
        ort.map(|r| format!("{:.2}", f(r)))
            .unwrap_or_else(|| "-".into())
    };
    println!(
        "{:<34} {:>12.2} {:>14}",
        "pre-process",
        pre,
        o(|r| r.preprocess)
    );
    println!(
        "{:<34} {:>12.2} {:>14}",
        "inference",
        inf,
        o(|r| r.inference)
    );
    println!(
        "{:<34} {:>12.2} {:>14}",
        "decode + cluster",
        post,
        o(|r| r.decode)
    );
    println!("{:<34} {:>12.2} {:>14}", "metadata", meta, "-");
    println!(
        "{:<34} {:>12.2} {:>14}",
        "sum of stages",
        staged,
        o(|r| r.preprocess + r.inference + r.decode)
    );
    println!(
        "{:<34} {:>12.2} {:>14}",
        "wall (whole pipeline)",
        wall_ms,
        o(|r| 1000.0 / r.fps)
    );
    println!(
        "{:<34} {:>11.1}% {:>14}",
        "outside inference, of the stages",
        pct(staged - inf, staged),
        ort.map(|r| {
            let total = r.preprocess + r.inference + r.decode;
            format!("{:.1}%", pct(total - r.inference, total))
        })
        .unwrap_or_else(|| "-".into())
    );
    println!(
        "{:<34} {:>11.1}% {:>14}",
        "outside inference, of the wall",
        pct(wall_ms - inf, wall_ms),
        "-"
    );
    println!("{:<34} {:>12.2} {:>14}", "FPS", fps, o(|r| r.fps));
    if let Some(r) = ort {
        println!(
            "{:<34} {:>12} {:>14.2}",
            "objects per frame",
            format!("{:.2}", run.objects as f64 / args.frames as f64),
            r.objects_per_frame
        );
        println!();
        println!(
            "ratio nvtlinfer / onnxruntime {}: {:.2}x (goal >= 1.0x); outside inference {:.1}% (goal <= 5%)",
            r.version,
            fps / r.fps,
            pct(wall_ms - inf, wall_ms)
        );
        println!(
            "inference alone (tract / onnxruntime): {:.2}x; outside inference alone: {:.2}x",
            r.inference / inf,
            (r.preprocess + r.decode) / (wall_ms - inf)
        );
    }
}
