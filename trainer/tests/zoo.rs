//! `trainer zoo ...` end to end (real registry pulls; the cache is reused between runs).

use std::process::Command;

fn trainer(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args(args)
        .output()
        .expect("run trainer");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn list_shows_every_model() {
    let (ok, out, err) = trainer(&["zoo", "list"]);
    assert!(ok, "{err}");
    let header = out.lines().next().unwrap();
    for col in ["NAME", "TASK", "INPUT", "LICENCE", "PULLED"] {
        assert!(header.contains(col), "{out}");
    }
    assert!(
        out.contains("centernet_mobilenetv3_coco") && out.contains("NHWC 1x512x512x3 rgb"),
        "{out}"
    );
    assert!(
        out.contains("blazeface_front_128") && out.contains("Apache-2.0"),
        "{out}"
    );
}

#[test]
fn info_prints_the_manifest_entry() {
    let (ok, out, err) = trainer(&["zoo", "info", "centernet_mobilenetv3_coco"]);
    assert!(ok, "{err}");
    for want in [
        "@vladmandic/human@3.3.6",
        "models/centernet.bin",
        "tfjs-graph",
        "tower_0/keypoints -> heatmap",
        "parser=centernet",
        "cache:",
    ] {
        assert!(out.contains(want), "missing '{want}' in\n{out}");
    }
}

#[test]
fn unknown_names_list_close_ones() {
    for cmd in ["info", "pull", "path"] {
        let (ok, _, err) = trainer(&["zoo", cmd, "blazeface"]);
        assert!(!ok);
        assert!(
            err.contains("unknown zoo model 'blazeface'") && err.contains("blazeface_front_128"),
            "{err}"
        );
    }
}

#[test]
fn pull_then_path_and_into() {
    let into = std::env::temp_dir().join(format!("nvtl-zoo-cli-{}", std::process::id()));
    let (ok, out, err) = trainer(&[
        "zoo",
        "pull",
        "blazeface_front_128",
        "--quiet",
        "--into",
        into.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let bundle_dir = out.lines().next().unwrap().to_string();
    for f in ["model.onnx", "labels.txt", "config_infer.txt"] {
        assert!(std::path::Path::new(&bundle_dir).join(f).is_file());
        assert!(into.join("blazeface_front_128").join(f).is_file());
    }
    let (ok, out, err) = trainer(&["zoo", "path", "blazeface_front_128"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), bundle_dir);
    let (ok, out, _) = trainer(&["zoo", "list"]);
    assert!(ok);
    let row = out
        .lines()
        .find(|l| l.starts_with("blazeface_front_128 "))
        .unwrap();
    assert!(row.trim_end().ends_with("yes"), "{row}");
    let _ = std::fs::remove_dir_all(&into);
}

#[test]
fn path_of_a_model_not_pulled_fails() {
    let cache = std::env::temp_dir().join(format!("nvtl-zoo-empty-cache-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args(["zoo", "path", "centernet_mobilenetv3_coco"])
        .env("NVTL_CACHE_DIR", &cache)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not pulled"));
}
