use std::path::{Path, PathBuf};

use super::*;
use crate::decode::Parser;

fn txt(text: &str) -> LoadedConfig {
    InferConfig::from_key_file_str(text, Some(Path::new("/cfg/dir/infer.txt"))).unwrap()
}

fn txt_err(text: &str) -> ConfigError {
    InferConfig::from_key_file_str(text, Some(Path::new("/cfg/dir/infer.txt"))).unwrap_err()
}

#[test]
fn defaults_are_nvinfers() {
    let c = InferConfig::default();
    assert_eq!(c.unique_id, 15);
    assert_eq!(c.batch_size, 1);
    assert_eq!(c.net_scale_factor, 1.0);
    assert_eq!(c.process_mode, ProcessMode::Primary);
    assert_eq!(c.operate_on_gie_id, -1);
    assert_eq!(c.interval, 0);
    assert_eq!(c.cluster_mode, ClusterMode::GroupRectangles);
    assert_eq!(c.classifier_threshold, 0.0);
    assert_eq!(c.segmentation_threshold, 0.0);
    assert_eq!(c.gpu_id, 0);
    assert_eq!(c.network_mode, NetworkMode::Fp32);
    assert_eq!(c.network_type, NetworkType::Detector);
    assert_eq!(c.model_color_format, ModelColorFormat::Rgb);
    assert_eq!(c.secondary_reinfer_interval, i32::MAX as u32);
    assert_eq!(c.tensor_meta_pool_size, 2);
    let all = &c.class_attrs.all;
    assert_eq!(all.pre_cluster_threshold, 0.2);
    assert_eq!(all.nms_iou_threshold, 0.3);
    assert_eq!(all.topk, -1);
}

#[test]
fn minimal_file_is_all_defaults() {
    let loaded = txt("[property]\n");
    assert!(loaded.warnings.is_empty());
    assert_eq!(
        loaded.config,
        InferConfig {
            source: Some(PathBuf::from("/cfg/dir/infer.txt")),
            ..InferConfig::default()
        }
    );
}

#[test]
fn property_keys() {
    let c = txt("[property]
gpu-id=1
net-scale-factor=0.0039215697906911373
offsets=123.675;116.28;103.53
model-color-format=1
onnx-file=../models/resnet.onnx
model-engine-file=/abs/resnet.onnx_b2_gpu0_fp16.engine
labelfile-path=./labels.txt
batch-size=2
network-mode=2
num-detected-classes=4
interval=3
gie-unique-id=7
process-mode=2
operate-on-gie-id=1
operate-on-class-ids=0;2;
filter-out-class-ids=3
output-blob-names=conv2d_bbox;conv2d_cov/Sigmoid
infer-dims=3;544;960
network-input-order=1
maintain-aspect-ratio=true
symmetric-padding=1
cluster-mode=2
parser=centernet
output-tensor-meta=1
input-object-min-width=32
classifier-threshold=0.51
workspace-size=2048
")
    .config;
    assert_eq!(c.gpu_id, 1);
    assert!((c.net_scale_factor - 1.0 / 255.0).abs() < 1e-9);
    assert_eq!(c.offsets, vec![123.675, 116.28, 103.53]);
    assert_eq!(c.model_color_format, ModelColorFormat::Bgr);
    assert_eq!(
        c.onnx_file,
        Some(PathBuf::from("/cfg/dir/../models/resnet.onnx"))
    );
    assert_eq!(
        c.model_engine_file,
        Some(PathBuf::from("/abs/resnet.onnx_b2_gpu0_fp16.engine"))
    );
    assert_eq!(c.labelfile_path, Some(PathBuf::from("/cfg/dir/labels.txt")));
    assert_eq!(c.batch_size, 2);
    assert_eq!(c.network_mode, NetworkMode::Fp16);
    assert_eq!(c.num_detected_classes, 4);
    assert_eq!(c.interval, 3);
    assert_eq!(c.unique_id, 7);
    assert_eq!(c.process_mode, ProcessMode::Secondary);
    assert_eq!(c.operate_on_gie_id, 1);
    assert_eq!(c.operate_on_class_ids, vec![0, 2]);
    assert_eq!(c.filter_out_class_ids, vec![3]);
    assert_eq!(
        c.output_blob_names,
        vec!["conv2d_bbox", "conv2d_cov/Sigmoid"]
    );
    assert_eq!(c.infer_dims, Some([3, 544, 960]));
    assert_eq!(c.network_input_order, TensorOrder::Nhwc);
    assert!(c.maintain_aspect_ratio && c.symmetric_padding && c.output_tensor_meta);
    assert_eq!(c.cluster_mode, ClusterMode::Nms);
    assert_eq!(c.parser, Some(Parser::CenterNet));
    assert_eq!(c.input_object_min_width, 32);
    assert_eq!(c.classifier_threshold, 0.51);
    assert_eq!(c.workspace_size, Some(2048));
}

#[test]
fn aliases_and_legacy_keys() {
    let loaded = txt("[property]\nunique-id=3\ninfer-on-gie-id=2\nis-classifier=1\nenable-dbscan=1\ninput-dims=3;224;224;0\n[class-attrs-all]\nthreshold=0.6\n");
    let c = &loaded.config;
    assert_eq!(c.unique_id, 3);
    assert_eq!(c.operate_on_gie_id, 2);
    assert_eq!(c.network_type, NetworkType::Classifier);
    assert_eq!(c.cluster_mode, ClusterMode::Dbscan);
    assert_eq!(c.infer_dims, Some([3, 224, 224]));
    assert_eq!(c.uff_input_order, Some(TensorOrder::Nchw));
    assert_eq!(c.class_attrs.all.pre_cluster_threshold, 0.6);
    assert_eq!(loaded.warnings.len(), 6, "{:#?}", loaded.warnings);
}

#[test]
fn replacement_beats_legacy_key_in_any_order() {
    let loaded =
        txt("[property]\nis-classifier=1\nnetwork-type=0\nenable-dbscan=1\ncluster-mode=2\n");
    assert_eq!(loaded.config.network_type, NetworkType::Detector);
    assert_eq!(loaded.config.cluster_mode, ClusterMode::Nms);
    assert_eq!(loaded.warnings.len(), 2);
    assert!(loaded.warnings[0]
        .to_string()
        .contains("ignored because 'network-type' is set"));
}

#[test]
fn class_attrs_inherit_from_all_regardless_of_order() {
    let c = txt("[class-attrs-2]\nnms-iou-threshold=0.7\n[property]\nnum-detected-classes=4\n[class-attrs-all]\npre-cluster-threshold=0.4\ntopk=20\nborder-color=0;1;0;1\n").config;
    let two = c.class_attrs.get(2);
    assert_eq!(two.pre_cluster_threshold, 0.4);
    assert_eq!(two.topk, 20);
    assert_eq!(two.nms_iou_threshold, 0.7);
    assert_eq!(two.border_color, Some([0.0, 1.0, 0.0, 1.0]));
    assert_eq!(c.class_attrs.get(1).nms_iou_threshold, 0.3);
}

#[test]
fn warnings_for_unknown_keys_and_groups() {
    let loaded =
        txt("[property]\nfrobnicate=1\n[class-attrs-all]\nwidth=3\n[streammux]\nbatch-size=1\n");
    let texts: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(texts.len(), 3, "{texts:#?}");
    assert!(texts
        .iter()
        .any(|t| t.contains("infer.txt:2: [property] frobnicate: unknown key")));
    assert!(texts
        .iter()
        .any(|t| t.contains("[class-attrs-all] width: unknown key")));
    assert!(texts
        .iter()
        .any(|t| t.contains("[streammux]: unknown group")));
}

#[test]
fn invalid_values_name_file_group_key_value_line() {
    let err = txt_err("[property]\ngpu-id=0\nbatch-size=-4\n");
    let text = err.to_string();
    assert!(text.contains("/cfg/dir/infer.txt:3"), "{text}");
    assert!(text.contains("[property] batch-size=-4"), "{text}");
    match err {
        ConfigError::InvalidValue {
            group,
            key,
            value,
            line,
            ..
        } => {
            assert_eq!(
                (group.as_str(), key.as_str(), value.as_str(), line),
                ("property", "batch-size", "-4", Some(3))
            );
        }
        other => panic!("{other:?}"),
    }
    for (text, key) in [
        ("[property]\nnetwork-type=7\n", "network-type"),
        ("[property]\ncluster-mode=5\n", "cluster-mode"),
        ("[property]\nnet-scale-factor=abc\n", "net-scale-factor"),
        ("[property]\ninterval=1 # every other frame\n", "interval"),
        ("[property]\nparser=magic\n", "parser"),
        ("[property]\ngie-unique-id=0\n", "gie-unique-id"),
        ("[property]\ninfer-dims=3;224\n", "infer-dims"),
        ("[property]\noffsets=1;2;3;4;5\n", "offsets"),
        (
            "[property]\nmaintain-aspect-ratio=yes\n",
            "maintain-aspect-ratio",
        ),
        (
            "[property]\n[class-attrs-0]\nnms-iou-threshold=1.5\n",
            "nms-iou-threshold",
        ),
        (
            "[property]\n[class-attrs-all]\nborder-color=1;0;0\n",
            "border-color",
        ),
        (
            "[property]\n[class-attrs-all]\nbg-color=1;0;0;2\n",
            "bg-color",
        ),
        (
            "[property]\n[class-attrs-all]\npre-cluster-threshold=-0.1\n",
            "pre-cluster-threshold",
        ),
        ("[property]\n[class-attrs-all]\ntopk=-2\n", "topk"),
    ] {
        match txt_err(text) {
            ConfigError::InvalidValue { key: k, .. } => assert_eq!(k, key, "{text}"),
            other => panic!("{text}: {other:?}"),
        }
    }
    let hint = txt_err("[property]\ninterval=1 # every other frame\n").to_string();
    assert!(hint.contains("no end-of-line comments"), "{hint}");
}

#[test]
fn structural_errors() {
    assert!(matches!(
        txt_err("[class-attrs-all]\neps=1\n"),
        ConfigError::MissingPropertyGroup { .. }
    ));
    assert!(matches!(
        txt_err("[property]\n[class-attrs-car]\n"),
        ConfigError::InvalidGroup { .. }
    ));
    assert!(matches!(
        txt_err("[property]\nbatch-size\n"),
        ConfigError::Syntax { line: Some(2), .. }
    ));
}

#[test]
fn yaml_form() {
    let loaded = InferConfig::from_yaml_str(
        "property:\n  gpu-id: 0\n  net-scale-factor: 0.0039215697906911373\n  onnx-file: model.onnx\n  output-blob-names: [a, b]\n  offsets: 1;2;3\n  maintain-aspect-ratio: true\n  num-detected-classes: 3\n  cluster-mode: 2\nclass-attrs-1:\n  topk: 5\nclass-attrs-all:\n  pre-cluster-threshold: 0.3\n  border-color: [0, 0, 1, 1]\n",
        Some(Path::new("/y/config.yml")),
    )
    .unwrap();
    let c = &loaded.config;
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(c.onnx_file, Some(PathBuf::from("/y/model.onnx")));
    assert_eq!(c.output_blob_names, vec!["a", "b"]);
    assert_eq!(c.offsets, vec![1.0, 2.0, 3.0]);
    assert!(c.maintain_aspect_ratio);
    assert_eq!(c.class_attrs.get(1).topk, 5);
    assert_eq!(c.class_attrs.get(1).pre_cluster_threshold, 0.3);
    assert_eq!(c.class_attrs.all.border_color, Some([0.0, 0.0, 1.0, 1.0]));
}

#[test]
fn yaml_errors() {
    let source = Some(Path::new("/y/bad.yaml"));
    let err = InferConfig::from_yaml_str("property:\n  batch-size: many\n", source).unwrap_err();
    assert!(
        err.to_string()
            .contains("/y/bad.yaml: [property] batch-size=many"),
        "{err}"
    );
    let err = InferConfig::from_yaml_str("property: [1, 2\n", source).unwrap_err();
    assert!(matches!(err, ConfigError::Syntax { .. }), "{err:?}");
    let err = InferConfig::from_yaml_str("- 1\n", source).unwrap_err();
    assert!(matches!(err, ConfigError::Syntax { .. }), "{err:?}");
    let err = InferConfig::from_yaml_str("", source).unwrap_err();
    assert!(
        matches!(err, ConfigError::MissingPropertyGroup { .. }),
        "{err:?}"
    );
}

#[test]
fn set_key_single_entry_point() {
    let mut c = InferConfig::default();
    assert_eq!(c.set_key("property", "batch-size", "4").unwrap(), None);
    assert_eq!(c.batch_size, 4);
    assert!(c.set_key("property", "nonsense", "1").unwrap().is_some());
    assert!(c.set_key("elsewhere", "batch-size", "1").unwrap().is_some());
    assert!(c.set_key("property", "batch-size", "0").is_err());
    c.set_key("class-attrs-all", "eps", "0.5").unwrap();
    c.set_key("class-attrs-3", "topk", "2").unwrap();
    assert_eq!(c.class_attrs.get(3).eps, 0.5);
    assert_eq!(c.class_attrs.get(3).topk, 2);
}

/// A config with every key away from its default survives write + read.
#[test]
fn key_file_round_trip() {
    let original = txt("[property]
gpu-id=1
gie-unique-id=4
process-mode=2
network-type=1
parser=yolov8
onnx-file=m.onnx
model-engine-file=m.engine
int8-calib-file=cal.bin
labelfile-path=labels.txt
model-file=m.caffemodel
proto-file=m.prototxt
uff-file=m.uff
tlt-encoded-model=m.etlt
tlt-model-key=\\stlt;key\\s
mean-file=mean.ppm
custom-lib-path=libcustom.so
parse-bbox-func-name=ParseIt
parse-classifier-func-name=ClassifyIt
engine-create-func-name=CreateIt
custom-network-config=net.cfg
uff-input-blob-name=input_1
uff-input-dims=3;32;64;1
output-blob-names=a\\;b;c
output-io-formats=a:fp32:chw
layer-device-precision=a:fp16:gpu
network-mode=1
workspace-size=100
enable-dla=1
use-dla-core=1
force-implicit-batch-dim=1
num-detected-classes=91
network-input-order=1
batch-size=8
net-scale-factor=0.017
offsets=1.5;2;3
model-color-format=2
maintain-aspect-ratio=1
symmetric-padding=1
scaling-filter=1
scaling-compute-hw=1
operate-on-gie-id=1
operate-on-class-ids=0;1
filter-out-class-ids=5
interval=2
input-object-min-width=1
input-object-min-height=2
input-object-max-width=3
input-object-max-height=4
secondary-reinfer-interval=10
output-tensor-meta=1
output-instance-mask=1
crop-objects-to-roi-boundary=1
classifier-async-mode=1
tensor-meta-pool-size=6
cluster-mode=3
classifier-threshold=0.25
classifier-type=colour
segmentation-threshold=0.5
segmentation-output-order=1
disable-output-host-copy=1
[class-attrs-all]
pre-cluster-threshold=0.4
post-cluster-threshold=0.1
nms-iou-threshold=0.45
topk=50
eps=0.2
group-threshold=1
minBoxes=3
dbscan-min-score=0.7
roi-top-offset=10
roi-bottom-offset=20
detected-min-w=4
detected-min-h=5
detected-max-w=600
detected-max-h=700
border-color=0;1;0;1
bg-color=0.5;0.5;0.5;0.3
[class-attrs-0]
topk=3
[class-attrs-7]
")
    .config;
    let written = original.to_key_file_string();
    let back =
        InferConfig::from_key_file_str(&written, Some(Path::new("/cfg/dir/infer.txt"))).unwrap();
    assert_eq!(back.config, original, "{written}");
    assert_eq!(original.tlt_model_key.as_deref(), Some(" tlt;key "));
    assert_eq!(original.output_blob_names, vec!["a;b", "c"]);
    assert!(original.class_attrs.per_class.contains_key(&7));
    assert!(written.contains("[class-attrs-7]"));
    // Every property key in the table is reachable from a file.
    let defaults = InferConfig::default().to_key_file_string();
    assert_eq!(defaults, "[property]\n");
}

#[test]
fn explain_marks_keys_from_file() {
    let explained = InferConfig::explain_str(
        "[property]\nunique-id=2\n[class-attrs-all]\nthreshold=0.5\n",
        ConfigFormat::KeyFile,
        None,
    )
    .unwrap();
    assert!(explained
        .from_file
        .contains(&("property".to_string(), "gie-unique-id".to_string())));
    assert!(explained.from_file.contains(&(
        "class-attrs-all".to_string(),
        "pre-cluster-threshold".to_string()
    )));
    assert_eq!(explained.from_file.len(), 2);
}

#[test]
fn odd_values_round_trip() {
    let yaml = "property:\n  parse-bbox-instance-mask-func-name: \"two\\nlines\"\n  tlt-model-key: \" spaced\\\\key \"\n  onnx-file: .\n  output-blob-names: [\"a;b\", \"c\\td\"]\n";
    let loaded = InferConfig::from_yaml_str(yaml, None).unwrap();
    let c = &loaded.config;
    assert_eq!(c.tlt_model_key.as_deref(), Some(" spaced\\key "));
    assert_eq!(
        c.parse_bbox_instance_mask_func_name.as_deref(),
        Some("two\nlines")
    );
    assert_eq!(c.onnx_file, Some(PathBuf::from(".")));
    assert_eq!(c.output_blob_names, vec!["a;b", "c\td"]);
    let written = c.to_key_file_string();
    let back = InferConfig::from_key_file_str(&written, None).unwrap();
    assert_eq!(&back.config, c, "{written}");
}
