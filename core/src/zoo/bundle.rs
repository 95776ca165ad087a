//! The nvinfer config a zoo bundle carries.

use std::fmt::Write as _;

use super::manifest::{Colour, Layout, ZooModel};

/// File names inside a bundle folder.
pub const BUNDLE_ONNX: &str = "model.onnx";
pub const BUNDLE_LABELS: &str = "labels.txt";
pub const BUNDLE_CONFIG: &str = "config_infer.txt";

/// The nvinfer config (`.txt` key-file form) for `model`.
///
/// `outputs` are the ONNX output names (used for `output-blob-names` unless the manifest gives
/// them). `prefix` goes before the bundle's file names in `onnx-file` / `labelfile-path`: `""` for
/// the config inside the bundle, `"<name>/"` for a config beside a copied bundle folder (as in
/// `configs/`).
///
/// Keys written, in order: `[property]` gpu-id, gie-unique-id, process-mode, onnx-file,
/// labelfile-path, batch-size, network-mode, network-type, net-scale-factor, offsets,
/// model-color-format, network-input-order, num-detected-classes, output-blob-names,
/// cluster-mode, maintain-aspect-ratio, symmetric-padding, scaling-filter (those set), the
/// manifest's extra keys, parser; then `[class-attrs-all]` with the manifest's keys.
pub fn nvinfer_config(model: &ZooModel, outputs: &[String], prefix: &str) -> String {
    let i = &model.input;
    let n = &model.nvinfer;
    let mut s = String::new();
    let files: Vec<&str> = model.source.files.iter().map(|f| f.path.as_str()).collect();
    let _ = writeln!(s, "# nvinfer config of the nvtl zoo model '{}' (made by `trainer zoo pull` from configs/zoo.toml).", model.name);
    let _ = writeln!(s, "# {}", model.description);
    let _ = writeln!(
        s,
        "# Source: {} {} ({}), converter {}.",
        model.source.kind,
        model.source.spec(),
        files.join(", "),
        model.converter
    );
    let _ = writeln!(s, "# Licence: {}", model.licence);
    let _ = writeln!(
        s,
        "# Input: {}; y = net-scale-factor * (x - offsets).",
        i.summary()
    );
    if !prefix.is_empty() {
        let _ = writeln!(
            s,
            "# Paths point into {prefix}: run `trainer zoo pull {} --into <the folder of this file>` first.",
            model.name
        );
    }
    let _ = writeln!(s, "[property]");
    let mut kv = |k: &str, v: String| {
        let _ = writeln!(s, "{k}={v}");
    };
    kv("gpu-id", "0".into());
    kv("gie-unique-id", "1".into());
    kv("process-mode", "1".into());
    kv("onnx-file", format!("{prefix}{BUNDLE_ONNX}"));
    kv("labelfile-path", format!("{prefix}{BUNDLE_LABELS}"));
    kv("batch-size", "1".into());
    kv("network-mode", "0".into());
    kv("network-type", n.network_type.to_string());
    kv("net-scale-factor", format!("{}", i.net_scale_factor));
    kv(
        "offsets",
        i.offsets
            .iter()
            .map(|o| format!("{o}"))
            .collect::<Vec<_>>()
            .join(";"),
    );
    let colour = match i.colour {
        Colour::Rgb => 0,
        Colour::Bgr => 1,
        Colour::Gray => 2,
    };
    kv("model-color-format", colour.to_string());
    kv(
        "network-input-order",
        if i.layout == Layout::Nhwc { "1" } else { "0" }.into(),
    );
    if let Some(v) = n.num_detected_classes {
        kv("num-detected-classes", v.to_string());
    }
    let blobs = n
        .output_blob_names
        .clone()
        .unwrap_or_else(|| outputs.to_vec());
    if !blobs.is_empty() {
        kv("output-blob-names", blobs.join(";"));
    }
    for (k, v) in [
        ("cluster-mode", n.cluster_mode),
        ("maintain-aspect-ratio", n.maintain_aspect_ratio),
        ("symmetric-padding", n.symmetric_padding),
        ("scaling-filter", n.scaling_filter),
    ] {
        if let Some(v) = v {
            kv(k, v.to_string());
        }
    }
    for (k, v) in &n.extra {
        kv(k, v.clone());
    }
    kv("parser", n.parser.clone());
    if !n.class_attrs_all.is_empty() {
        let _ = writeln!(s, "\n[class-attrs-all]");
        for (k, v) in &n.class_attrs_all {
            let v = match v {
                toml::Value::String(t) => t.clone(),
                other => other.to_string(),
            };
            let _ = writeln!(s, "{k}={v}");
        }
    }
    s
}
