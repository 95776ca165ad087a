//! Fine-tuning end to end on real data: MobileNetV2 (zoo, imported from PyTorch) on opencv's
//! hand-written digits, CenterNet on pseudo-labelled vtest.avi frames; checkpoints, resume
//! after stop and after kill -9, add-class, and the errors a user meets.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use nvtl_trainer::data::grid_to_folders;
use nvtl_trainer::graph::GraphModule;
use nvtl_trainer::runner::BundleRunner;
use nvtl_trainer::spec::Spec;
use nvtl_trainer::train::add_class::{add_class, AddClassMethod};
use nvtl_trainer::train::{checkpoint, finetune, FinetuneOptions};

/// `per_class` digits of each class (of opencv's 500) in class folders under `dir`.
fn digits(dir: &Path, per_class: usize, classes: std::ops::Range<usize>) -> PathBuf {
    digits_from(dir, per_class, classes, 0)
}

/// Like [`digits`], starting at the `offset`-th digit of each class (a disjoint held-out set).
fn digits_from(
    dir: &Path,
    per_class: usize,
    classes: std::ops::Range<usize>,
    offset: usize,
) -> PathBuf {
    let all = dir.join("all");
    if !all.is_dir() {
        grid_to_folders(&common::asset("digits.png"), (20, 20), 5, &all).unwrap();
    }
    let subset = dir.join(format!(
        "digits_{per_class}_{}_{}_{offset}",
        classes.start, classes.end
    ));
    for class in classes {
        let from = all.join(class.to_string());
        let to = subset.join(class.to_string());
        std::fs::create_dir_all(&to).unwrap();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&from)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        // Spread over the sheet: every (500 / per_class)-th digit, not one writer's row.
        let step = (files.len() / per_class).max(1);
        for f in files.iter().skip(offset).step_by(step).take(per_class) {
            std::fs::copy(f, to.join(f.file_name().unwrap())).unwrap();
        }
    }
    subset
}

fn spec_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn digits_spec(dir: &Path, data: &Path, out: &Path, epochs: u32) -> PathBuf {
    digits_spec_from(
        dir,
        "digits.toml",
        "zoo = \"mobilenet_v2_imagenet\"",
        data,
        out,
        epochs,
    )
}

/// A digits spec starting from `model` (a `zoo = ...` or `bundle = ...` line).
fn digits_spec_from(
    dir: &Path,
    name: &str,
    model: &str,
    data: &Path,
    out: &Path,
    epochs: u32,
) -> PathBuf {
    spec_file(
        dir,
        name,
        &format!(
            r#"
[model]
{model}
task = "classifier"
input = [48, 48]
[dataset]
format = "folders"
train = "{}"
val_split = 0.25
[augment]
flip = 0.0
scale = [0.9, 1.1]
crop = 0.0
color = 0.1
[train]
epochs = {epochs}
batch = 16
optimizer = "adam"
lr = 0.001
schedule = "constant"
checkpoint_steps = 2
seed = 7
[export]
dir = "{}"
"#,
            data.display(),
            out.display()
        ),
    )
}

fn options() -> FinetuneOptions {
    FinetuneOptions {
        quiet: true,
        ..Default::default()
    }
}

fn weights(out: &Path) -> Vec<(String, Vec<f32>)> {
    let model = checkpoint::checkpoint_dir(out).join(checkpoint::MODEL_FILE);
    let graph = GraphModule::from_onnx(&model, &burn::prelude::Device::flex()).unwrap();
    graph
        .param_names()
        .into_iter()
        .map(|n| {
            let v = graph.initializer(&n).unwrap().try_to_vec::<f32>().unwrap();
            (n, v)
        })
        .collect()
}

#[test]
fn mobilenet_learns_digits_and_the_bundle_runs_in_the_engine() {
    let dir = common::temp_dir("finetune-digits");
    let data = digits(&dir, 40, 0..10);
    let out = dir.join("run");
    let spec = digits_spec(&dir, &data, &out, 3);
    let report = finetune(&spec, &[], &options()).unwrap();
    let accuracy = report.best_metric.unwrap();
    println!(
        "digits (400 images, 48x48, 3 epochs): accuracy {accuracy:.3}, {:.1} images/s, history {:?}",
        report.images_per_second, report.history
    );
    // 10 classes: chance is 0.1.
    assert!(accuracy > 0.6, "accuracy {accuracy}");
    assert!(report.history.last().unwrap().train_loss < report.history[0].train_loss);
    let bundle = report.bundle.unwrap();
    for file in ["model.onnx", "labels.txt", "config_infer.txt"] {
        assert!(bundle.join(file).is_file(), "{file}");
    }
    assert!(out.join("training_curves.png").is_file());
    assert!(out.join("spec.resolved.toml").is_file());
    // The resolved spec reads back to the same spec.
    let resolved = Spec::load(&out.join("spec.resolved.toml"), &[]).unwrap();
    assert_eq!(resolved.train.epochs, 3);
    // The bundle is a classifier nvtlinfer runs: labels are the digit folders.
    let mut runner = BundleRunner::open(&bundle, 0).unwrap();
    let (_, result) = runner
        .run_file(
            &data
                .join("7")
                .read_dir()
                .unwrap()
                .next()
                .unwrap()
                .unwrap()
                .path(),
        )
        .unwrap();
    let nvtl_core::engine::InferResult::Classification(output) = result else {
        panic!("classifier output expected")
    };
    let attributes = output.attributes;
    assert!(
        attributes[0]
            .label
            .as_deref()
            .unwrap()
            .parse::<usize>()
            .unwrap()
            < 10
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_run_stopped_and_resumed_ends_with_the_weights_of_an_uninterrupted_run() {
    let dir = common::temp_dir("finetune-resume");
    let data = digits(&dir, 8, 0..10);
    let straight = dir.join("straight");
    let spec = digits_spec(&dir, &data, &straight, 1);
    let run = |out: &Path, steps: usize, resume: bool| {
        finetune(
            &spec,
            &[],
            &FinetuneOptions {
                out: Some(out.to_path_buf()),
                max_steps: Some(steps),
                resume,
                quiet: true,
                ..Default::default()
            },
        )
        .unwrap()
    };
    run(&straight, 4, false);
    let resumed = dir.join("resumed");
    run(&resumed, 2, false);
    run(&resumed, 2, true);
    let a = weights(&straight);
    let b = weights(&resumed);
    assert_eq!(a.len(), b.len());
    let mut worst = 0.0f32;
    for ((name_a, va), (name_b, vb)) in a.iter().zip(&b) {
        assert_eq!(name_a, name_b);
        for (x, y) in va.iter().zip(vb) {
            worst = worst.max((x - y).abs());
        }
    }
    println!("max weight difference, 4 steps vs 2 + resume + 2: {worst:e}");
    // Adam moments, step count, data order and augmentation all carried over.
    assert!(worst < 1e-4, "resumed weights differ by {worst}");
    // A resume with other classes is refused.
    let err = finetune(
        &spec,
        &[
            "dataset.classes=[\"0\", \"1\"]".to_string(),
            "dataset.ignore_unknown=true".to_string(),
        ],
        &FinetuneOptions {
            out: Some(resumed.clone()),
            resume: true,
            quiet: true,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("cannot resume"), "{err:#}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn kill_minus_nine_loses_nothing_and_resume_finishes() {
    let dir = common::temp_dir("finetune-kill");
    let data = digits(&dir, 8, 0..10);
    let out = dir.join("run");
    let spec = digits_spec(&dir, &data, &out, 2);
    let mut child = Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args(["--quiet", "finetune", "--spec"])
        .arg(&spec)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let state = checkpoint::checkpoint_dir(&out).join(checkpoint::STATE_FILE);
    let started = std::time::Instant::now();
    while !state.is_file() && started.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(700));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let saved = checkpoint::load(&out).unwrap().expect("a checkpoint");
    assert!(saved.state.global_step >= 2);
    let status = Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args(["--quiet", "finetune", "--resume", "--spec"])
        .arg(&spec)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let done = checkpoint::load(&out).unwrap().unwrap();
    assert_eq!(done.state.epoch, 2);
    assert_eq!(done.state.history.len(), 2);
    assert!(out.join("bundle").join("model.onnx").is_file());
    // No staging folder is left behind.
    let leftovers: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial") || n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn add_class_keeps_old_classes_with_merged_data_and_with_distillation() {
    let dir = common::temp_dir("finetune-add-class");
    let old_data = digits(&dir, 40, 0..9);
    let base_out = dir.join("base");
    let spec = digits_spec(&dir, &old_data, &base_out, 3);
    let base = finetune(&spec, &[], &options()).unwrap();
    let base_bundle = base.bundle.unwrap();
    let labels = std::fs::read_to_string(base_bundle.join("labels.txt")).unwrap();
    assert_eq!(labels.trim().split(';').count(), 9);

    let all = digits(&dir, 40, 0..10);
    let nine = digits(&dir, 40, 9..10);
    let held_out = digits_from(&dir, 10, 0..9, 3);
    let mut retention = Vec::new();
    for (method, data) in [
        (AddClassMethod::Merged, &all),
        (AddClassMethod::Distill, &nine),
        (AddClassMethod::Naive, &nine),
    ] {
        let out = dir.join(format!("{method:?}"));
        let model = format!("bundle = \"{}\"", base_bundle.display());
        let path = digits_spec_from(&dir, &format!("{method:?}.toml"), &model, data, &out, 1);
        let spec = Spec::load(&path, &[]).unwrap();
        let report = add_class(&spec, method, &options()).unwrap();
        let bundle = report.bundle.unwrap();
        let labels = std::fs::read_to_string(bundle.join("labels.txt")).unwrap();
        let names: Vec<&str> = labels.trim().split(';').collect();
        assert_eq!(names.len(), 10, "{method:?}: {names:?}");
        assert_eq!(names[9], "9");
        // Old-class retention: accuracy on held-out digits 0-8.
        let mut runner = BundleRunner::open(&bundle, 0).unwrap();
        let (mut right, mut total) = (0, 0);
        for class in 0..9 {
            for file in std::fs::read_dir(held_out.join(class.to_string())).unwrap() {
                let (_, result) = runner.run_file(&file.unwrap().path()).unwrap();
                let nvtl_core::engine::InferResult::Classification(output) = result else {
                    panic!("classifier output expected")
                };
                right += usize::from(output.attributes[0].class_id as usize == class);
                total += 1;
            }
        }
        retention.push((method, right as f64 / total as f64));
    }
    println!("old-class retention after adding '9': {retention:?}");
    let of = |m: AddClassMethod| retention.iter().find(|(x, _)| *x == m).unwrap().1;
    assert!(
        of(AddClassMethod::Merged) > of(AddClassMethod::Naive),
        "{retention:?}"
    );
    assert!(
        of(AddClassMethod::Distill) > of(AddClassMethod::Naive),
        "{retention:?}"
    );
    // Merged without old data is refused with a pointer to distill.
    let out = dir.join("refused");
    let model = format!("bundle = \"{}\"", base_bundle.display());
    let path = digits_spec_from(&dir, "refused.toml", &model, &nine, &out, 1);
    let spec = Spec::load(&path, &[]).unwrap();
    let err = add_class(&spec, AddClassMethod::Merged, &options())
        .unwrap_err()
        .to_string();
    assert!(err.contains("--method distill"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
