//! nvinfer config files on disk: both forms, path resolution, legacy keys, one broken file per
//! error kind.

use std::path::{Path, PathBuf};

use nvtl_core::config::{
    ClusterMode, ConfigError, InferConfig, ModelColorFormat, NetworkMode, NetworkType, ProcessMode,
};
use nvtl_core::decode::Parser;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/configs")
        .join(name)
}

fn folder() -> PathBuf {
    data("")
}

#[test]
fn primary_detector_txt() {
    let loaded = InferConfig::from_file(&data("config_infer_primary.txt")).unwrap();
    assert!(loaded.warnings.is_empty(), "{:#?}", loaded.warnings);
    let c = &loaded.config;
    assert_eq!(
        c.source.as_deref(),
        Some(data("config_infer_primary.txt").as_path())
    );
    assert_eq!(
        c.onnx_file,
        Some(folder().join("../models/resnet18_trafficcamnet.onnx"))
    );
    assert_eq!(
        c.labelfile_path,
        Some(folder().join("labels_trafficnet.txt"))
    );
    assert_eq!(
        c.int8_calib_file,
        Some(folder().join("../models/cal_trt.bin"))
    );
    assert_eq!(c.network_mode, NetworkMode::Int8);
    assert_eq!(c.num_detected_classes, 4);
    assert_eq!(c.unique_id, 1);
    assert_eq!(c.cluster_mode, ClusterMode::Nms);
    assert_eq!(c.infer_dims, Some([3, 544, 960]));
    assert_eq!(
        c.output_blob_names,
        vec!["output_cov/Sigmoid", "output_bbox/BiasAdd"]
    );
    assert!(c.force_implicit_batch_dim);
    // Defaults for what the file leaves out.
    assert_eq!(c.operate_on_gie_id, -1);
    assert_eq!(c.secondary_reinfer_interval, i32::MAX as u32);
    assert_eq!(c.parser, None);

    // [class-attrs-2] comes first in the file and still inherits [class-attrs-all].
    let two = c.class_attrs.get(2);
    assert_eq!(two.pre_cluster_threshold, 0.6);
    assert_eq!(two.topk, 20);
    assert_eq!(two.nms_iou_threshold, 0.5);
    assert_eq!(two.detected_min_w, 32);
    assert_eq!(two.border_color, Some([0.0, 0.0, 1.0, 1.0]));
    let zero = c.class_attrs.get(0);
    assert_eq!(zero.pre_cluster_threshold, 0.2);
    assert_eq!(zero.topk, 20);
    assert_eq!(zero.border_color, None);
}

#[test]
fn yaml_reads_like_txt() {
    let txt = InferConfig::from_file(&data("config_infer_primary.txt")).unwrap();
    let yml = InferConfig::from_file(&data("config_infer_primary.yml")).unwrap();
    assert!(yml.warnings.is_empty(), "{:#?}", yml.warnings);
    let mut yml_config = yml.config;
    assert_eq!(
        yml_config.source.as_deref(),
        Some(data("config_infer_primary.yml").as_path())
    );
    yml_config.source = txt.config.source.clone();
    assert_eq!(yml_config, txt.config);
}

#[test]
fn secondary_classifier() {
    let loaded = InferConfig::from_file(&data("config_infer_secondary_vehicletypes.txt")).unwrap();
    let c = &loaded.config;
    assert_eq!(c.process_mode, ProcessMode::Secondary);
    assert_eq!(c.network_type, NetworkType::Classifier);
    assert_eq!(c.parser, Some(Parser::Classifier));
    assert_eq!(c.operate_on_gie_id, 1);
    assert_eq!(c.operate_on_class_ids, vec![0]);
    assert_eq!(c.batch_size, 16);
    assert_eq!(c.input_object_min_width, 64);
    assert_eq!(c.model_color_format, ModelColorFormat::Bgr);
    assert_eq!(c.offsets, vec![124.0, 117.0, 104.0]);
    assert_eq!(c.classifier_threshold, 0.51);
    assert!(c.async_mode);
    assert_eq!(c.unique_id, 4);
    // gpu-id is given twice.
    assert_eq!(loaded.warnings.len(), 1, "{:#?}", loaded.warnings);
    assert!(loaded.warnings[0].to_string().contains("gpu-id"));
}

#[test]
fn legacy_config_warns_and_still_loads() {
    let loaded = InferConfig::from_file(&data("config_legacy.txt")).unwrap();
    let c = &loaded.config;
    assert_eq!(c.network_type, NetworkType::Detector);
    assert_eq!(c.cluster_mode, ClusterMode::Dbscan);
    assert_eq!(c.infer_dims, Some([3, 300, 300]));
    assert_eq!(c.uff_input_dims, Some(vec![3, 300, 300, 0]));
    assert_eq!(
        c.uff_file,
        Some(folder().join("../models/ssd_inception_v2.uff"))
    );
    assert_eq!(c.class_attrs.all.pre_cluster_threshold, 0.5);
    assert_eq!(c.class_attrs.all.group_threshold, 1);
    let texts: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    let has = |needle: &str| texts.iter().any(|t| t.contains(needle));
    assert!(has("[property] uff-input-dims: deprecated"), "{texts:#?}");
    assert!(has("[property] is-classifier: deprecated"), "{texts:#?}");
    assert!(has("[property] enable-dbscan: deprecated"), "{texts:#?}");
    assert!(has("[property] parse-func: legacy key"), "{texts:#?}");
    assert!(
        has("config_legacy.txt:13: [property] show-fps: unknown key"),
        "{texts:#?}"
    );
    assert!(has("[class-attrs-all] threshold: deprecated"), "{texts:#?}");
    assert!(
        has("config_legacy.txt:20: [streammux]: unknown group"),
        "{texts:#?}"
    );
    assert_eq!(texts.len(), 7, "{texts:#?}");
}

#[test]
fn written_config_reads_back_equal() {
    for name in [
        "config_infer_primary.txt",
        "config_infer_primary.yml",
        "config_infer_secondary_vehicletypes.txt",
        "config_legacy.txt",
    ] {
        let original = InferConfig::from_file(&data(name)).unwrap().config;
        let text = original.to_key_file_string();
        let back = InferConfig::from_key_file_str(&text, None).unwrap();
        let mut back = back.config;
        back.source = original.source.clone();
        assert_eq!(back, original, "{name}:\n{text}");
    }
}

/// Each broken file gives its own error kind, naming the file and what is wrong.
#[test]
fn broken_files() {
    let expect = |name: &str, needles: &[&str]| -> ConfigError {
        let err = InferConfig::from_file(&data(name)).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(name), "{name}: {text}");
        for needle in needles {
            assert!(text.contains(needle), "{name}: '{needle}' not in '{text}'");
        }
        assert_eq!(err.file(), Some(data(name).as_path()));
        err
    };
    let err = expect(
        "bad_value.txt",
        &["bad_value.txt:3", "[property] batch-size=-4"],
    );
    assert!(matches!(err, ConfigError::InvalidValue { .. }));
    let err = expect(
        "bad_enum.txt",
        &[":3", "[property] cluster-mode=9", "0..=4"],
    );
    assert!(matches!(err, ConfigError::InvalidValue { .. }));
    expect(
        "bad_number.txt",
        &[":2", "net-scale-factor=1/255", "number"],
    );
    let err = expect("bad_syntax.txt", &[":3", "syntax error"]);
    assert!(matches!(err, ConfigError::Syntax { line: Some(3), .. }));
    let err = expect("bad_group.txt", &[":4", "[class-attrs-person]"]);
    assert!(matches!(err, ConfigError::InvalidGroup { .. }));
    expect(
        "bad_color.txt",
        &[":5", "[class-attrs-1] border-color=1;0;0"],
    );
    let err = expect("missing_property.txt", &["[property]"]);
    assert!(matches!(err, ConfigError::MissingPropertyGroup { .. }));
    let err = expect("bad_value.yml", &["[property] process-mode=3"]);
    assert!(matches!(err, ConfigError::InvalidValue { line: None, .. }));
    let err = expect("bad_syntax.yaml", &["syntax error"]);
    assert!(matches!(err, ConfigError::Syntax { .. }));
    let err = expect("not_utf8.txt", &[":3", "UTF-8"]);
    assert!(matches!(err, ConfigError::Syntax { line: Some(3), .. }));

    let missing = data("no_such_config.txt");
    let err = InferConfig::from_file(&missing).unwrap_err();
    assert!(matches!(err, ConfigError::NotFound { .. }));
    assert!(err.to_string().contains("no_such_config.txt"));
    let err = InferConfig::from_file(&folder()).unwrap_err();
    assert!(matches!(err, ConfigError::Unreadable { .. }), "{err:?}");
}

#[test]
fn relative_config_path_resolves_against_its_folder() {
    let relative = Path::new("tests/data/configs/config_infer_primary.txt");
    let c = InferConfig::from_key_file_str(
        "[property]\nonnx-file=./m.onnx\nlabelfile-path=/abs/labels.txt\n",
        Some(relative),
    )
    .unwrap()
    .config;
    assert_eq!(
        c.onnx_file,
        Some(PathBuf::from("tests/data/configs/m.onnx"))
    );
    assert_eq!(c.labelfile_path, Some(PathBuf::from("/abs/labels.txt")));
    let c = InferConfig::from_key_file_str("[property]\nonnx-file=m.onnx\n", None)
        .unwrap()
        .config;
    assert_eq!(c.onnx_file, Some(PathBuf::from("m.onnx")));
}
