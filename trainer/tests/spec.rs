//! The trainer spec file: defaults, path resolution, overrides, and the errors users see for
//! typos and wrong types.

mod common;

use std::path::{Path, PathBuf};

use nvtl_trainer::spec::{MapMode, Optimizer, Schedule, Spec, Task};

/// A fresh folder for one test.
fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nvtl-spec-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_spec(test: &str, text: &str) -> PathBuf {
    let path = temp_dir(test).join("spec.toml");
    std::fs::write(&path, text).unwrap();
    path
}

const MINIMAL: &str = r#"
[model]
zoo = "centernet_mobilenetv3_coco"
input = [256, 320]

[dataset]
format = "kitti"
train = "data/train"
classes = ["person", "car"]
"#;

fn error(path: &Path, overrides: &[&str]) -> String {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    Spec::load(path, &overrides)
        .expect_err("the spec must be rejected")
        .to_string()
}

#[test]
fn defaults_fill_in_and_paths_resolve_against_the_spec_file() {
    let path = write_spec("defaults", MINIMAL);
    let dir = path.parent().unwrap();
    let spec = Spec::load(&path, &[]).unwrap();
    assert_eq!(
        spec.model.task,
        Task::CenterNet,
        "task from the zoo manifest"
    );
    assert_eq!(spec.model.input, Some([256, 320]));
    assert_eq!(spec.dataset.train, dir.join("data/train"));
    assert_eq!(spec.dataset.val_split, 0.2);
    assert_eq!(spec.export.dir, dir.join("out"));
    assert_eq!(spec.export.name, "centernet_mobilenetv3_coco");
    assert_eq!(spec.train.epochs, 10);
    assert_eq!(spec.train.batch, 16);
    assert_eq!(spec.train.optimizer, Optimizer::Adam);
    assert_eq!(spec.train.schedule, Schedule::Cosine);
    assert_eq!(spec.train.seed, 42);
    assert_eq!(spec.train.devices, "cpu");
    assert_eq!(spec.augment.flip, 0.5);
    assert_eq!(spec.augment.scale, [0.8, 1.2]);
    assert_eq!(spec.head.focal_beta, 4.0);
    assert_eq!(spec.eval.map, MapMode::Voc);
    assert_eq!(spec.eval.max_detections, 100);

    // The resolved spec reads back to the same spec, from anywhere.
    let resolved = spec.to_toml();
    for key in [
        "epochs = 10",
        "focal_alpha = 2.0",
        "map = \"voc\"",
        "task = \"centernet\"",
    ] {
        assert!(resolved.contains(key), "{key} missing from\n{resolved}");
    }
    let elsewhere = write_spec("defaults-resolved", &resolved);
    assert_eq!(Spec::load(&elsewhere, &[]).unwrap(), spec);
}

#[test]
fn overrides_set_values_entries_and_the_model_source() {
    let path = write_spec("overrides", MINIMAL);
    // The bundle must exist for its parser to give the task: pulled like a user would.
    let bundle = common::bundle("centernet_mobilenetv3_coco").dir;
    let overrides: Vec<String> = [
        "train.lr=0.01".to_string(),
        "train.optimizer=sgd".into(),
        "train.devices=cuda:0,1".into(),
        "dataset.class_map.pedestrian=person".into(),
        "augment.scale=[1, 1]".into(),
        "export.nvinfer.class-attrs-all.pre-cluster-threshold=0.3".into(),
        format!("model.bundle={}", bundle.display()),
    ]
    .to_vec();
    let spec = Spec::load(&path, &overrides).unwrap();
    assert_eq!(spec.train.lr, 0.01);
    assert_eq!(spec.train.optimizer, Optimizer::Sgd);
    assert_eq!(
        spec.train.devices, "cuda:0,1",
        "unparsable TOML falls back to a string"
    );
    assert_eq!(spec.dataset.class_map["pedestrian"], "person");
    assert_eq!(spec.augment.scale, [1.0, 1.0]);
    assert_eq!(
        spec.export.nvinfer["class-attrs-all.pre-cluster-threshold"],
        "0.3"
    );
    // --set model.bundle replaces the file's zoo name; the task comes from the bundle config.
    assert_eq!(spec.model.zoo, None);
    assert_eq!(spec.model.bundle, Some(bundle));
    assert_eq!(spec.model.task, Task::CenterNet);
    assert_eq!(spec.export.name, "centernet_mobilenetv3_coco");
}

#[test]
fn unknown_keys_name_file_section_key_and_suggest() {
    let path = write_spec("typo", &format!("{MINIMAL}\n[train]\nepoch = 5\n"));
    let message = error(&path, &[]);
    for want in [
        &format!("spec {}", path.display()) as &str,
        "unknown key [train] `epoch`",
        "did you mean `epochs`?",
        "valid keys: epochs, batch, optimizer, lr",
    ] {
        assert!(message.contains(want), "'{want}' missing from: {message}");
    }

    let path = write_spec("typo-section", &format!("{MINIMAL}\n[trian]\nepochs = 5\n"));
    let message = error(&path, &[]);
    assert!(
        message.contains("unknown section `trian` (did you mean `train`?)")
            && message
                .contains("valid sections: model, dataset, augment, train, head, eval, export"),
        "{message}"
    );

    let path = write_spec("typo-set", MINIMAL);
    let message = error(&path, &["train.lrr=0.1"]);
    assert!(
        message.contains("--set train.lrr=0.1") && message.contains("did you mean `lr`?"),
        "{message}"
    );
    let message = error(&path, &["no-equals-sign"]);
    assert!(message.contains("expected section.key=value"), "{message}");
}

#[test]
fn wrong_types_and_values_name_the_key_and_what_is_expected() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "lr",
            "[train]\nlr = \"fast\"\n",
            &["[train] lr: expected a number, got string \"fast\""],
        ),
        (
            "epochs",
            "[train]\nepochs = -3\n",
            &["[train] epochs: expected a non-negative integer, got integer -3"],
        ),
        (
            "optimizer",
            "[train]\noptimizer = \"adamw2\"\n",
            &["[train] optimizer", "did you mean \"adamw\"?"],
        ),
        (
            "scale",
            "[augment]\nscale = 1.2\n",
            &["[augment] scale: expected [min, max] (two numbers), got float 1.2"],
        ),
        (
            "flip",
            "[augment]\nflip = 1.5\n",
            &["[augment] flip: 1.5 is outside [0, 1]"],
        ),
        (
            "devices",
            "[train]\ndevices = \"gpu\"\n",
            &["[train] devices", "\"cpu\", \"cuda\" or \"cuda:0,1,...\""],
        ),
        (
            "map",
            "[eval]\nmap = \"coc\"\n",
            &["[eval] map", "did you mean \"coco\"?"],
        ),
    ];
    for (name, extra, wants) in cases {
        let path = write_spec(&format!("type-{name}"), &format!("{MINIMAL}\n{extra}"));
        let message = error(&path, &[]);
        for want in *wants {
            assert!(message.contains(want), "'{want}' missing from: {message}");
        }
    }
    let path = write_spec("type-set", MINIMAL);
    let message = error(&path, &["train.batch=big"]);
    assert!(
        message.contains("--set train.batch=big")
            && message.contains("expected a non-negative integer, got string \"big\""),
        "{message}"
    );
}

#[test]
fn head_keys_must_belong_to_the_task() {
    let path = write_spec(
        "head",
        &format!("{MINIMAL}\n[head]\nlabel_smoothing = 0.1\n"),
    );
    let message = error(&path, &[]);
    assert!(
        message.contains("[head] label_smoothing: is not a centernet parameter")
            && message.contains("heatmap_weight, box_weight, focal_alpha, focal_beta, min_radius"),
        "{message}"
    );
    let spec = Spec::load(&path, &["model.task=classifier".to_string()]).unwrap();
    assert_eq!(spec.model.task, Task::Classifier);
    assert_eq!(spec.head.label_smoothing, 0.1);
}

#[test]
fn model_source_is_exactly_one_of_zoo_and_bundle() {
    let both = MINIMAL.replace("input =", "bundle = \"b\"\ninput =");
    let message = error(&write_spec("both", &both), &[]);
    assert!(
        message.contains("exactly one of `zoo` and `bundle`"),
        "{message}"
    );
    let neither = MINIMAL.replace("zoo = \"centernet_mobilenetv3_coco\"", "");
    let message = error(&write_spec("neither", &neither), &[]);
    assert!(message.contains("[model] zoo: is required"), "{message}");
    let unknown = MINIMAL.replace("centernet_mobilenetv3_coco", "centernet_mobilenet");
    let message = error(&write_spec("unknown-zoo", &unknown), &[]);
    assert!(
        message.contains("[model] task: is not set and cannot be inferred")
            && message.contains("unknown zoo model 'centernet_mobilenet'"),
        "{message}"
    );
    let no_dataset = "[model]\nzoo = \"centernet_mobilenetv3_coco\"\n";
    let message = error(&write_spec("no-dataset", no_dataset), &[]);
    assert!(
        message.contains("the [dataset] section is required"),
        "{message}"
    );
}

#[test]
fn nvinfer_overrides_are_checked_with_nvinfer_key_knowledge() {
    let good = format!(
        "{MINIMAL}\n[export]\nname = \"people\"\n[export.nvinfer]\nnet-scale-factor = 0.5\n\
         offsets = [1, 2, 3]\nmaintain-aspect-ratio = true\n\
         [export.nvinfer.class-attrs-all]\npre-cluster-threshold = 0.25\n"
    );
    let spec = Spec::load(&write_spec("nvinfer", &good), &[]).unwrap();
    assert_eq!(spec.export.name, "people");
    assert_eq!(spec.export.nvinfer["offsets"], "1;2;3");
    assert_eq!(spec.export.nvinfer["maintain-aspect-ratio"], "1");
    let mut config = nvtl_core::config::InferConfig::default();
    spec.export.apply_nvinfer(&mut config).unwrap();
    assert_eq!(config.net_scale_factor, 0.5);
    assert_eq!(config.offsets, vec![1.0, 2.0, 3.0]);
    assert!(config.maintain_aspect_ratio);
    assert_eq!(config.class_attrs.all.pre_cluster_threshold, 0.25);

    let typo = format!("{MINIMAL}\n[export.nvinfer]\nnet-scale-facter = 0.5\n");
    let message = error(&write_spec("nvinfer-typo", &typo), &[]);
    assert!(
        message.contains("[export] nvinfer.net-scale-facter")
            && message.contains("did you mean `net-scale-factor`?"),
        "{message}"
    );
    let bad = format!("{MINIMAL}\n[export.nvinfer]\nnetwork-type = \"detector\"\n");
    let message = error(&write_spec("nvinfer-value", &bad), &[]);
    assert!(
        message.contains("[export] nvinfer.network-type"),
        "{message}"
    );
}

/// The example specs the README and scripts/demo-transfer.sh use are shipped, load, and say
/// what the demos need.
#[test]
fn shipped_demo_specs_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/train");
    let mut specs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    specs.sort();
    let names: Vec<String> = specs
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for wanted in ["digits_mobilenet_v2", "vtest_person_car_centernet"] {
        assert!(
            names.iter().any(|n| n == wanted),
            "{wanted}.toml missing in {names:?}"
        );
    }
    for path in &specs {
        let spec = Spec::load(path, &[]).unwrap_or_else(|e| panic!("{e}"));
        let name = path.file_stem().unwrap().to_string_lossy();
        // Relative paths resolve against configs/train.
        assert!(spec.dataset.train.is_absolute(), "{name}");
        assert!(spec.export.dir.is_absolute(), "{name}");
        match name.as_ref() {
            "digits_mobilenet_v2" => {
                assert_eq!(spec.model.zoo.as_deref(), Some("mobilenet_v2_imagenet"));
                assert_eq!(spec.model.task, Task::Classifier);
                assert_eq!(spec.augment.flip, 0.0, "digits are never mirrored");
            }
            "vtest_person_car_centernet" => {
                assert_eq!(
                    spec.model.zoo.as_deref(),
                    Some("centernet_mobilenetv3_coco")
                );
                assert_eq!(spec.model.task, Task::CenterNet);
                assert_eq!(spec.model.input, Some([256, 320]));
                assert_eq!(
                    spec.dataset.classes.as_deref(),
                    Some(&["person".to_string(), "car".to_string()][..])
                );
            }
            _ => {}
        }
        // The resolved spec reads back equal.
        let resolved = temp_dir(&format!("shipped-{name}")).join("spec.resolved.toml");
        std::fs::write(&resolved, spec.to_toml()).unwrap();
        assert_eq!(Spec::load(&resolved, &[]).unwrap(), spec, "{name}");
    }
}

#[test]
fn devices_are_checked_at_load() {
    let path = write_spec("devices", MINIMAL);
    let e = error(&path, &["train.devices=\"gpu0\""]);
    assert!(
        e.contains("[train] devices") && e.contains("cuda:0,1"),
        "{e}"
    );
    let e = error(&path, &["train.devices=\"cuda:1,1\""]);
    assert!(e.contains("listed twice"), "{e}");
    let spec = Spec::load(&path, &["train.devices=\"cuda:0,1\"".to_string()]).unwrap();
    assert_eq!(spec.train.devices, "cuda:0,1");
}
