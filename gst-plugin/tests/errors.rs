//! Bad input: each case ends in a GStreamer error message naming the file and the problem —
//! no panic, no hang.

mod common;

use common::*;

fn error_of(description: &str) -> String {
    match run_pipeline(description) {
        Ok(buffers) => panic!("expected an error, got {} buffers", buffers.len()),
        Err(text) => text,
    }
}

fn infer_with(config: &std::path::Path) -> String {
    error_of(&format!(
        "videotestsrc num-buffers=1 ! video/x-raw,format=RGB,width=64,height=64 ! \
         nvtlinfer config-file-path={} ! appsink name=sink",
        config.display()
    ))
}

#[test]
fn missing_config_file() {
    let text = infer_with(std::path::Path::new("/nonexistent/dir/config_infer.txt"));
    assert!(text.contains("/nonexistent/dir/config_infer.txt"), "{text}");
}

#[test]
fn invalid_value_names_file_group_key_and_value() {
    let config = temp_file(
        "badvalue",
        "bad.txt",
        b"[property]\nonnx-file=model.onnx\nbatch-size=abc\n",
    );
    let text = infer_with(&config);
    for part in ["bad.txt", "property", "batch-size", "abc"] {
        assert!(text.contains(part), "{part} in {text}");
    }
}

#[test]
fn missing_model_file() {
    let config = temp_file(
        "nomodel",
        "config.txt",
        b"[property]\nonnx-file=missing_model.onnx\n",
    );
    let text = infer_with(&config);
    assert!(text.contains("missing_model.onnx"), "{text}");
}

#[test]
fn corrupt_onnx_model() {
    let model = temp_file(
        "corrupt",
        "model.onnx",
        b"this is not protobuf \xff\xff\xff\x00\x01",
    );
    let config = temp_file(
        "corrupt",
        "config.txt",
        b"[property]\nonnx-file=model.onnx\n",
    );
    let text = infer_with(&config);
    assert!(
        text.contains(&model.display().to_string()) && text.contains("ONNX"),
        "{text}"
    );
}

#[test]
fn outputs_that_do_not_fit_the_parser() {
    let bundle = bundle("blazeface_front_128");
    let config = config_for(&bundle, "misfit", "parser=centernet");
    let text = infer_with(&config);
    assert!(
        text.contains("centernet") && text.contains("model.onnx"),
        "{text}"
    );
}

#[test]
fn malformed_label_file() {
    let bundle = bundle("blazeface_front_128");
    let labels = temp_file("labels", "labels.txt", b"\n\n");
    let config = config_for(
        &bundle,
        "labels",
        &format!("labelfile-path={}", labels.display()),
    );
    let text = infer_with(&config);
    assert!(text.contains("labels.txt"), "{text}");
}

#[test]
fn unsupported_caps_do_not_negotiate() {
    let bundle = bundle("blazeface_front_128");
    let text = error_of(&format!(
        "videotestsrc num-buffers=1 ! video/x-raw,format=YUY2,width=64,height=64 ! \
         nvtlinfer config-file-path={} ! appsink name=sink",
        bundle.config.display()
    ));
    assert!(
        text.contains("nvtlinfer") && text.contains("YUY2") && text.contains("can't handle caps"),
        "{text}"
    );
}

#[test]
fn truncated_video_ends_without_hang_or_panic() {
    let bundle = bundle("centernet_mobilenetv3_coco");
    let video = std::fs::read(asset("vtest.avi")).unwrap();
    let truncated = temp_file(
        "truncated",
        "vtest_truncated.avi",
        &video[..video.len() / 20],
    );
    let result = run_pipeline(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=RGB ! \
         nvtlinfer config-file-path={} ! appsink name=sink",
        truncated.display(),
        bundle.config.display()
    ));
    match result {
        Ok(buffers) => assert!(
            !buffers.is_empty() && buffers.len() < 795,
            "{} frames",
            buffers.len()
        ),
        Err(text) => assert!(!text.contains("panicked"), "{text}"),
    }
}
