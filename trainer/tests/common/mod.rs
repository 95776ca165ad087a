//! Shared test setup: test assets, zoo bundles (pulled on first use, like a user would), real
//! images pre-processed the way a bundle's nvinfer config says, and tract as the reference.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nvtl_core::config::InferConfig;
use nvtl_core::preprocess::{preprocess, FrameView, PixelFormat, PreprocessParams, Rect};
use nvtl_core::zoo::{self, Manifest, PulledBundle};
use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::tract_linalg::multithread::{multithread_tract_scope, Executor};

/// The test data folder that `scripts/fetch-assets.sh` fills.
pub fn assets_dir() -> PathBuf {
    std::env::var_os("NVTL_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".cache/nvtl/assets"))
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
}

pub fn asset(name: &str) -> PathBuf {
    let path = assets_dir().join(name);
    assert!(
        path.is_file(),
        "test asset {} is missing: run scripts/fetch-assets.sh",
        path.display()
    );
    path
}

/// A zoo bundle, pulled into the cache on first use (one pull at a time across tests).
pub fn bundle(name: &str) -> PulledBundle {
    static PULL: Mutex<()> = Mutex::new(());
    let _guard = PULL.lock().unwrap_or_else(|p| p.into_inner());
    let manifest = Manifest::builtin().expect("built-in zoo manifest");
    let model = manifest.get(name).expect("zoo model");
    zoo::pull_with(model, &|_| {}, Some(&nvtl_trainer::import::zoo_converter))
        .unwrap_or_else(|e| panic!("pulling {name}: {e}"))
}

/// A per-test temp folder.
pub fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nvtl-test-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `image` pre-processed as the bundle's config says into a `width` x `height` network input
/// (`[1, C, H, W]` or `[1, H, W, C]` data as the config's tensor order says).
pub fn preprocessed(bundle: &PulledBundle, image: &Path, width: usize, height: usize) -> Vec<f32> {
    let config = InferConfig::from_file(&bundle.config)
        .unwrap_or_else(|e| panic!("{}: {e}", bundle.config.display()))
        .config;
    let params = PreprocessParams::from_config(&config, width, height);
    let rgb = image::open(image)
        .unwrap_or_else(|e| panic!("{}: {e}", image.display()))
        .to_rgb8();
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let bytes = rgb.into_raw();
    let frame = FrameView {
        format: PixelFormat::Rgb,
        width: w,
        height: h,
        planes: vec![&bytes],
        strides: vec![w * 3],
    };
    let mut out = vec![0.0f32; params.tensor_len()];
    preprocess(&frame, Rect::full(w, h), &params, &mut out).expect("pre-processing");
    out
}

/// A model planned by tract for one fixed float input shape.
pub struct Tract {
    plan: std::sync::Arc<TypedRunnableModel>,
    shape: Vec<usize>,
}

impl Tract {
    pub fn new(proto: &ModelProto, shape: &[usize]) -> Self {
        let plan = tract_onnx::onnx()
            .parse(proto, None)
            .expect("tract parses the model")
            .model
            .with_input_fact(0, InferenceFact::dt_shape(f32::datum_type(), shape))
            .expect("input fact")
            .into_optimized()
            .expect("tract optimises the model")
            .into_runnable()
            .expect("tract plans the model");
        Tract {
            plan,
            shape: shape.to_vec(),
        }
    }

    /// Every output as (shape, data).
    pub fn run(&self, data: &[f32]) -> Vec<(Vec<usize>, Vec<f32>)> {
        let input = tract_ndarray::ArrayD::from_shape_vec(self.shape.as_slice(), data.to_vec())
            .expect("input shape");
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let executor = Executor::multithread_with_name(threads, "tract-test");
        let outputs = multithread_tract_scope(executor, || {
            self.plan.run(tvec![TValue::from(Tensor::from(input))])
        })
        .expect("tract runs the model");
        outputs
            .into_iter()
            .map(|value| {
                let as_f32 = value.cast_to::<f32>().expect("float output");
                let plain = as_f32.try_as_plain_ram().expect("plain output");
                let data = plain.as_slice::<f32>().expect("f32 slice").to_vec();
                (as_f32.shape().to_vec(), data)
            })
            .collect()
    }
}

/// Runs a model in tract on one float input; returns every output as (shape, data).
pub fn tract_run(proto: &ModelProto, shape: &[usize], data: &[f32]) -> Vec<(Vec<usize>, Vec<f32>)> {
    Tract::new(proto, shape).run(data)
}

/// (max absolute difference, max difference relative to the largest reference magnitude).
pub fn diff(actual: &[f32], expected: &[f32]) -> (f32, f32) {
    assert_eq!(actual.len(), expected.len(), "element counts differ");
    let abs = actual
        .iter()
        .zip(expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    let scale = expected
        .iter()
        .map(|x| x.abs())
        .fold(0.0f32, f32::max)
        .max(1e-12);
    (abs, abs / scale)
}

/// The values of initializer `name` as f32.
pub fn initializer_values(proto: &ModelProto, name: &str) -> Vec<f32> {
    let t = proto
        .graph
        .as_ref()
        .expect("graph")
        .initializer
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no initializer {name}"));
    nvtl_trainer::graph::HostTensor::from_proto(t)
        .expect("decodes")
        .to_f32()
}

/// onnxruntime (as bench/requirements.txt pins it) with what its quantization tools import.
const PYTHON_PACKAGES: [&str; 4] = [
    "onnxruntime==1.32.0",
    "onnx==1.17.0",
    "ml_dtypes==0.6.0",
    "numpy",
];

/// `~/.cache/nvtl/venv-ort`: [`PYTHON_PACKAGES`], created (or completed) the first time.
pub fn ort_python() -> PathBuf {
    static VENV: Mutex<()> = Mutex::new(());
    let _guard = VENV.lock().unwrap_or_else(|p| p.into_inner());
    let venv = home().join(".cache/nvtl/venv-ort");
    let python = venv.join("bin/python");
    let ready = |p: &Path| {
        std::process::Command::new(p)
            .args(["-c", "import numpy, onnx, onnxruntime.quantization"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ready(&python) {
        if !python.exists() {
            assert!(std::process::Command::new("python3")
                .args(["-m", "venv"])
                .arg(&venv)
                .status()
                .unwrap()
                .success());
        }
        let ok = std::process::Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet"])
            .args(PYTHON_PACKAGES)
            .status()
            .unwrap()
            .success();
        assert!(ok && ready(&python), "pip install {PYTHON_PACKAGES:?}");
    }
    python
}
