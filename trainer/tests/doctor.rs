//! `trainer doctor` on this machine: the CPU backends are usable, and every NVIDIA piece that
//! is missing (no GPU in CI) is reported with the library it looked for, not an error exit.

use std::process::Command;

#[test]
fn doctor_reports_backends_and_missing_nvidia_pieces() {
    let out = Command::new(env!("CARGO_BIN_EXE_trainer"))
        .arg("doctor")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("  cpu          usable (tract)"), "{text}");
    assert!(text.contains("  cpu          usable (burn flex)"), "{text}");
    for kind in ["onnxruntime", "cuda", "tensorrt"] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(kind)),
            "no line for {kind}:\n{text}"
        );
    }
    if !std::path::Path::new("/dev/nvidiactl").exists() {
        assert!(
            text.contains("GPU 0        none found") && text.contains("libcuda"),
            "{text}"
        );
        assert!(
            text.contains("TensorRT     not found") && text.contains("libnvinfer"),
            "{text}"
        );
        assert!(
            text.contains("DeepStream   not found") && text.contains("libnvdsgst_meta"),
            "{text}"
        );
    }
}
