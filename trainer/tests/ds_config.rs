//! `trainer ds-config check` on a good, a legacy and a broken nvinfer config.

use std::path::{Path, PathBuf};
use std::process::Command;

fn config(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../core/tests/data/configs")
        .join(name)
}

fn check(args: &[&str], name: &str) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args(["ds-config", "check"])
        .args(args)
        .arg(config(name))
        .env("RUST_LOG", "off")
        .output()
        .expect("run trainer");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn good_config_prints_resolved_keys() {
    let (code, stdout, stderr) = check(&[], "config_infer_primary.txt");
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("[property]"), "{stdout}");
    let line = |key: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("{key} ")))
            .unwrap_or_else(|| panic!("no {key} in {stdout}"))
            .to_string()
    };
    assert!(line("gie-unique-id").contains("= 1"));
    assert!(line("gie-unique-id").ends_with("# file"));
    assert!(line("batch-size").ends_with("# file"));
    assert!(line("operate-on-gie-id").contains("= -1"));
    assert!(line("operate-on-gie-id").ends_with("# default"));
    assert!(stdout.contains("[class-attrs-2]"), "{stdout}");
    assert!(stdout.contains("no warnings"), "{stdout}");
}

#[test]
fn warnings_are_listed_and_fail_only_with_strict() {
    let (code, stdout, _) = check(&[], "config_legacy.txt");
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("7 warning(s)"), "{stdout}");
    assert!(stdout.contains("show-fps: unknown key"), "{stdout}");
    let (code, _, _) = check(&["--strict"], "config_legacy.txt");
    assert_eq!(code, 2);
}

#[test]
fn bad_config_fails_naming_file_group_key_value() {
    let (code, stdout, stderr) = check(&[], "bad_value.txt");
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stderr.contains("bad_value.txt:3"), "{stderr}");
    assert!(stderr.contains("[property] batch-size=-4"), "{stderr}");
    let (code, _, stderr) = check(&[], "bad_value.yml");
    assert_eq!(code, 1);
    assert!(
        stderr.contains("bad_value.yml: [property] process-mode=3"),
        "{stderr}"
    );
}
