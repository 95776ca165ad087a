//! Graph edits on real zoo models, checked by running the edited bundle in nvtl_core's engine:
//! CenterNet COCO-80 -> person/car at 320x256 keeps finding the same people; MobileNetV2's
//! 1000-class head -> 10 classes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use nvtl_core::config::InferConfig;
use nvtl_core::engine::{FrameObject, InferResult};
use nvtl_core::model::read_onnx;
use nvtl_core::zoo::{self, Manifest, PulledBundle};
use nvtl_trainer::export::{write_bundle, BundleContents};
use nvtl_trainer::import::zoo_converter;
use nvtl_trainer::onnx_edit::{refresh_output_dims, resizes_to_scales, set_input_size};
use nvtl_trainer::runner::BundleRunner;
use nvtl_trainer::surgery::{class_sources, set_classes, ClassSource, NewChannelInit};

fn asset(name: &str) -> PathBuf {
    let dir = std::env::var_os("NVTL_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/nvtl/assets")
        });
    dir.join(name)
}

fn bundle(name: &str) -> PulledBundle {
    static PULL: Mutex<()> = Mutex::new(());
    let _guard = PULL.lock().unwrap_or_else(|p| p.into_inner());
    let manifest = Manifest::builtin().unwrap();
    zoo::pull_with(manifest.get(name).unwrap(), &|_| {}, Some(&zoo_converter)).unwrap()
}

fn out_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nvtl-surgery-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn objects(result: InferResult) -> Vec<FrameObject> {
    match result {
        InferResult::Objects(o) => o,
        other => panic!("objects expected, got {other:?}"),
    }
}

fn iou(a: &FrameObject, b: &FrameObject) -> f32 {
    let (ax2, ay2) = (a.bbox.left + a.bbox.width, a.bbox.top + a.bbox.height);
    let (bx2, by2) = (b.bbox.left + b.bbox.width, b.bbox.top + b.bbox.height);
    let iw = (ax2.min(bx2) - a.bbox.left.max(b.bbox.left)).max(0.0);
    let ih = (ay2.min(by2) - a.bbox.top.max(b.bbox.top)).max(0.0);
    let inter = iw * ih;
    inter / (a.bbox.width * a.bbox.height + b.bbox.width * b.bbox.height - inter)
}

#[test]
fn centernet_cut_to_person_and_car_at_320x256_still_finds_the_people() {
    let teacher = bundle("centernet_mobilenetv3_coco");
    let labels: Vec<String> = std::fs::read_to_string(&teacher.labels)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let classes = vec!["person".to_string(), "car".to_string()];
    let sources = class_sources(&labels, &classes);
    assert_eq!(sources, vec![ClassSource::Old(0), ClassSource::Old(2)]);

    let mut proto = read_onnx(&teacher.onnx).unwrap().proto;
    assert_eq!(resizes_to_scales(&mut proto).unwrap(), 3);
    set_input_size(&mut proto, 256, 320).unwrap();
    let init = NewChannelInit {
        bias: -2.19,
        seed: 1,
    };
    let layer = set_classes(&mut proto, "heatmap", 80, 1, &sources, init).unwrap();
    assert!(layer.contains("centernet_cls_output"), "{layer}");
    refresh_output_dims(&mut proto).unwrap();

    let base = InferConfig::from_file(&teacher.config).unwrap().config;
    let dir = out_dir("centernet");
    let overrides = BTreeMap::new();
    write_bundle(
        &dir,
        &proto,
        &BundleContents {
            base_config: &base,
            labels: &classes,
            input_hw: (256, 320),
            overrides: &overrides,
            header: "test: CenterNet cut to person/car",
        },
    )
    .unwrap();
    let config = std::fs::read_to_string(dir.join("config_infer.txt")).unwrap();
    assert!(config.contains("num-detected-classes=2"), "{config}");

    let mut student = BundleRunner::open(&dir, 0).unwrap();
    assert_eq!(student.network_size(), (320, 256));
    let mut original = BundleRunner::open(&teacher.dir, 0).unwrap();
    let (image, result) = original.run_file(&asset("person.jpg")).unwrap();
    let people: Vec<FrameObject> = objects(result)
        .into_iter()
        .filter(|o| o.label.as_deref() == Some("person"))
        .collect();
    assert!(!people.is_empty());
    let found = objects(student.run_rgb(&image, "person.jpg").unwrap());
    assert!(found.iter().all(|o| o.class_id < 2));
    for person in &people {
        let best = found
            .iter()
            .filter(|o| o.label.as_deref() == Some("person"))
            .map(|o| iou(o, person))
            .fold(0.0, f32::max);
        println!("person {:?}: best IoU at 320x256 {best:.2}", person.bbox);
        assert!(
            best > 0.5,
            "the person at {:?} is lost at 320x256",
            person.bbox
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn mobilenet_head_becomes_ten_classes_with_new_channels() {
    let teacher = bundle("mobilenet_v2_imagenet");
    let mut proto = read_onnx(&teacher.onnx).unwrap().proto;
    let classes: Vec<String> = (0..10).map(|d| d.to_string()).collect();
    let sources = vec![ClassSource::New; 10];
    let init = NewChannelInit { bias: 0.0, seed: 7 };
    let layer = set_classes(&mut proto, "probabilities", 1000, 1, &sources, init).unwrap();
    assert_eq!(layer, "classifier.1");
    set_input_size(&mut proto, 64, 64).unwrap();
    refresh_output_dims(&mut proto).unwrap();

    let base = InferConfig::from_file(&teacher.config).unwrap().config;
    let dir = out_dir("mobilenet");
    write_bundle(
        &dir,
        &proto,
        &BundleContents {
            base_config: &base,
            labels: &classes,
            input_hw: (64, 64),
            overrides: &BTreeMap::new(),
            header: "test: MobileNetV2 with a 10-class head",
        },
    )
    .unwrap();
    let mut runner = BundleRunner::open(&dir, 0).unwrap();
    let (_, result) = runner.run_file(&asset("coffee.png")).unwrap();
    let InferResult::Classification(output) = result else {
        panic!("classifier output expected")
    };
    let best = &output.attributes[0];
    assert!(best.class_id < 10);
    assert!(classes.contains(best.label.as_ref().unwrap()));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_class_count_that_does_not_match_the_layer_is_refused() {
    let teacher = bundle("centernet_mobilenetv3_coco");
    let mut proto = read_onnx(&teacher.onnx).unwrap().proto;
    let err = set_classes(
        &mut proto,
        "heatmap",
        91,
        1,
        &[ClassSource::Old(0)],
        NewChannelInit { bias: 0.0, seed: 1 },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("has 80 output channels, expected 91"), "{err}");
    let err = set_classes(
        &mut proto,
        "nope",
        80,
        1,
        &[],
        NewChannelInit { bias: 0.0, seed: 1 },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("no output 'nope'"), "{err}");
}
