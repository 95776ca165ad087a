//! Pulling from the real registries: bundles, cache reuse, checksum failures, manifest checks.

mod zoo_common;

use nvtl_core::zoo::{self, cache_dir, Manifest, PullStage, ZooError};
use zoo_common::pulled;

const BUILTIN: &str = include_str!("../../configs/zoo.toml");

#[test]
fn manifest_lists_the_zoo() {
    let m = Manifest::builtin().unwrap();
    for name in ["centernet_mobilenetv3_coco", "blazeface_front_128"] {
        let model = m.get(name).unwrap();
        assert!(!model.licence.is_empty());
        assert!(model.source.files.iter().all(|f| f.sha256.len() == 64));
    }
    let err = m.get("centernet").unwrap_err().to_string();
    assert!(err.contains("centernet_mobilenetv3_coco"), "{err}");
    let err = m.get("blazefase_front_128").unwrap_err();
    assert!(
        matches!(&err, ZooError::UnknownModel { close, .. } if close.contains(&"blazeface_front_128".to_string()))
    );
}

#[test]
fn manifest_errors_name_the_problem() {
    let dup = format!(
        "{BUILTIN}\n{}",
        &BUILTIN[BUILTIN.find("\n[[model]]").unwrap()..]
    );
    let err = Manifest::parse(&dup, "dup.toml").unwrap_err().to_string();
    assert!(err.contains("dup.toml") && err.contains("twice"), "{err}");
    let err = Manifest::parse("[[model]]\nname = 3\n", "bad.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad.toml"), "{err}");
    let short_sha = BUILTIN.replacen("sha256 = \"bfb942ea", "sha256 = \"zz", 1);
    assert!(Manifest::parse(&short_sha, "x").is_err());
}

/// The bundle: ONNX + labels + an nvinfer config pointing at them, reused from the cache.
#[test]
fn pull_writes_complete_bundles() {
    for (name, blobs, labels) in [
        (
            "centernet_mobilenetv3_coco",
            "output-blob-names=heatmap;ltrb",
            80,
        ),
        (
            "blazeface_front_128",
            "output-blob-names=Identity:0;Identity_1:0;Identity_2:0;Identity_3:0",
            1,
        ),
    ] {
        let b = pulled(name);
        assert_eq!(b.dir, cache_dir().join(name));
        assert_eq!(zoo::bundle_path(name).unwrap(), Some(b.clone()));
        let config = std::fs::read_to_string(&b.config).unwrap();
        assert!(config.contains("onnx-file=model.onnx\n"), "{config}");
        assert!(config.contains("labelfile-path=labels.txt\n"), "{config}");
        assert!(config.contains(blobs), "{config}");
        assert!(config.contains("network-input-order=1\n"), "{config}");
        assert_eq!(
            std::fs::read_to_string(&b.labels).unwrap().lines().count(),
            labels
        );

        // The copy in configs/ is the same config, pointing into a bundle folder beside it.
        let committed =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../configs/{name}.txt"));
        let committed = std::fs::read_to_string(&committed).unwrap();
        let manifest = Manifest::builtin().unwrap();
        let outputs: Vec<String> = blobs
            .trim_start_matches("output-blob-names=")
            .split(';')
            .map(String::from)
            .collect();
        assert_eq!(
            committed,
            zoo::nvinfer_config(manifest.get(name).unwrap(), &outputs, &format!("{name}/"))
        );

        // A second pull reuses the cache.
        let stages = std::cell::RefCell::new(Vec::new());
        let again = zoo::pull(manifest.get(name).unwrap(), &|s| {
            stages.borrow_mut().push(s)
        })
        .unwrap();
        assert_eq!(again, b);
        assert_eq!(stages.into_inner(), vec![PullStage::Cached]);
    }
}

/// A file whose sha256 differs from the manifest is an error naming file, expected and actual
/// digests, and leaves no bundle behind.
#[test]
fn checksum_mismatch_is_an_error_and_leaves_no_bundle() {
    let wrong = "0".repeat(64);
    let text = BUILTIN
        .replace(
            "name = \"blazeface_front_128\"",
            "name = \"zz_test_bad_checksum\"",
        )
        .replace(
            "d388b1cf8a5f6f1af2b3f4c14f6d0f138bab970cd618cccd12dddb7484e82e51",
            &wrong,
        );
    let manifest = Manifest::parse(&text, "test").unwrap();
    let model = manifest.get("zz_test_bad_checksum").unwrap();
    let err = zoo::pull(model, &|_| {}).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ZooError::Checksum { .. }), "{msg}");
    assert!(
        msg.contains("face_detection_front_128x128_barracuda.onnx"),
        "{msg}"
    );
    assert!(
        msg.contains(&wrong)
            && msg.contains("d388b1cf8a5f6f1af2b3f4c14f6d0f138bab970cd618cccd12dddb7484e82e51"),
        "{msg}"
    );
    assert!(!cache_dir().join("zz_test_bad_checksum").exists());
    let leftovers: Vec<_> = std::fs::read_dir(cache_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .contains("zz_test_bad_checksum")
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// A version that does not exist is a registry error naming the command.
#[test]
fn missing_package_version_is_a_registry_error() {
    let text = BUILTIN
        .replace(
            "name = \"blazeface_front_128\"",
            "name = \"zz_test_no_such_version\"",
        )
        .replacen(
            "version = \"1.2.0\"",
            "version = \"0.0.0-nvtl-does-not-exist\"",
            1,
        );
    let manifest = Manifest::parse(&text, "test").unwrap();
    let err = zoo::pull(manifest.get("zz_test_no_such_version").unwrap(), &|_| {}).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ZooError::Registry { .. }), "{msg}");
    assert!(msg.contains("npm pack"), "{msg}");
    assert!(!cache_dir().join("zz_test_no_such_version").exists());
}

/// The ConstantOfShape fix: every such node gets a float32 zero `value`.
#[test]
fn blazeface_constant_of_shape_is_fixed() {
    use prost::Message;
    let b = pulled("blazeface_front_128");
    let bytes = std::fs::read(&b.onnx).unwrap();
    let model = tract_onnx::pb::ModelProto::decode(bytes.as_slice()).unwrap();
    let nodes: Vec<_> = model
        .graph
        .unwrap()
        .node
        .into_iter()
        .filter(|n| n.op_type == "ConstantOfShape")
        .collect();
    assert_eq!(nodes.len(), 11);
    for n in nodes {
        let v = n
            .attribute
            .iter()
            .find(|a| a.name == "value")
            .expect("value attribute");
        let t = v.t.as_ref().unwrap();
        assert_eq!(t.data_type, 1);
        assert_eq!(t.float_data, vec![0.0]);
    }
    // Running the fix again changes nothing.
    let (again, fixed) = zoo::fix_constant_of_shape(&bytes).unwrap();
    assert_eq!(fixed, 0);
    assert_eq!(again.len(), bytes.len());
}
