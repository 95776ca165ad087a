//! What a user sees when the input is wrong: one clear message naming the file and the problem,
//! exit status 1, and no bundle left behind as if training had finished.

mod common;

use std::path::Path;
use std::process::Command;

use nvtl_core::model::OnnxBuilder;

fn trainer(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_trainer"))
        .arg("--quiet")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A KITTI set of two real photos, the second label file broken at `line`.
fn kitti_with_bad_line(dir: &Path) {
    for (i, photo) in ["dog.jpg", "person.jpg"].iter().enumerate() {
        let image = dir.join("image_2").join(format!("{i:06}.jpg"));
        std::fs::create_dir_all(image.parent().unwrap()).unwrap();
        std::fs::copy(common::asset(photo), &image).unwrap();
    }
    write(
        &dir.join("label_2/000000.txt"),
        "person 0.00 0 0.00 10 20 110 220 0 0 0 0 0 0 0\n",
    );
    write(
        &dir.join("label_2/000001.txt"),
        "person 0.00 0 0.00 10 20 110 220 0 0 0 0 0 0 0\nperson 0.00 0 0.00 ten 20 110 220 0 0 0 0 0 0 0\n",
    );
}

/// The same two photos with valid labels.
fn valid_kitti(dir: &Path) {
    kitti_with_bad_line(dir);
    write(
        &dir.join("label_2/000001.txt"),
        "person 0.00 0 0.00 10 20 110 220 0 0 0 0 0 0 0\n",
    );
}

fn detector_spec(dir: &Path, extra: &str) -> std::path::PathBuf {
    let spec = dir.join("spec.toml");
    write(
        &spec,
        &format!(
            r#"
[model]
zoo = "centernet_mobilenetv3_coco"
task = "centernet"
input = [256, 320]
[dataset]
format = "kitti"
train = "{}"
classes = ["person"]
[train]
epochs = 1
batch = 2
[export]
dir = "{}"
{extra}
"#,
            dir.join("kitti").display(),
            dir.join("out").display()
        ),
    );
    spec
}

#[test]
fn a_spec_typo_names_the_key_and_suggests_the_right_one() {
    let dir = common::temp_dir("cli-typo");
    kitti_with_bad_line(&dir.join("kitti"));
    let spec = detector_spec(&dir, "[trian]\nepochs = 2\n");
    let (ok, err) = trainer(&["finetune", "--spec", spec.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("trian") && err.contains("did you mean `train`"),
        "{err}"
    );
    let spec = detector_spec(&dir, "");
    let (ok, err) = trainer(&[
        "finetune",
        "--spec",
        spec.to_str().unwrap(),
        "--set",
        "train.lr_rate=0.1",
    ]);
    assert!(!ok);
    assert!(err.contains("lr_rate"), "{err}");
    assert!(!dir.join("out/bundle").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_malformed_kitti_label_names_file_and_line_and_nothing_is_exported() {
    let dir = common::temp_dir("cli-kitti");
    kitti_with_bad_line(&dir.join("kitti"));
    let spec = detector_spec(&dir, "");
    let (ok, err) = trainer(&["finetune", "--spec", spec.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("000001.txt:2") && err.contains("\"ten\""),
        "{err}"
    );
    assert!(!dir.join("out/bundle").exists());
    // A missing image is named too.
    std::fs::remove_file(dir.join("kitti/image_2/000001.jpg")).unwrap();
    write(
        &dir.join("kitti/label_2/000001.txt"),
        "person 0.00 0 0.00 10 20 110 220 0 0 0 0 0 0 0\n",
    );
    let (ok, err) = trainer(&["finetune", "--spec", spec.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("000001"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn resume_without_a_checkpoint_and_an_unsupported_op_are_clear_errors() {
    let dir = common::temp_dir("cli-resume");
    valid_kitti(&dir.join("kitti"));
    let spec = detector_spec(&dir, "");
    let (ok, err) = trainer(&["finetune", "--resume", "--spec", spec.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("cannot resume") && err.contains("no checkpoint"),
        "{err}"
    );

    // A bundle whose graph has an op the trainer cannot differentiate.
    let bundle = dir.join("odd");
    let mut b = OnnxBuilder::default();
    b.input("input", &[1, 3, 8, 8]);
    b.node(
        "LpNormalization",
        "normalise",
        &["input"],
        &["probabilities"],
        vec![],
    );
    b.output("probabilities", &[1, 3, 8, 8]);
    std::fs::create_dir_all(&bundle).unwrap();
    b.write("test", &bundle.join("model.onnx")).unwrap();
    write(&bundle.join("labels.txt"), "a;b;c\n");
    write(
        &bundle.join("config_infer.txt"),
        "[property]\nonnx-file=model.onnx\nlabelfile-path=labels.txt\nnetwork-type=1\nparser=classifier\n",
    );
    let folders = dir.join("folders");
    for (class, photo) in [("a", "dog.jpg"), ("b", "person.jpg"), ("c", "horses.jpg")] {
        std::fs::create_dir_all(folders.join(class)).unwrap();
        std::fs::copy(common::asset(photo), folders.join(class).join(photo)).unwrap();
    }
    let spec = dir.join("odd.toml");
    write(
        &spec,
        &format!(
            "[model]\nbundle = \"{}\"\ntask = \"classifier\"\n[dataset]\nformat = \"folders\"\ntrain = \"{}\"\nval_split = 0.0\n[export]\ndir = \"{}\"\n",
            bundle.display(),
            folders.display(),
            dir.join("odd-out").display()
        ),
    );
    let (ok, err) = trainer(&["finetune", "--spec", spec.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("LpNormalization") && err.contains("normalise"),
        "{err}"
    );
    assert!(!dir.join("odd-out/bundle").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn gpus_in_a_cpu_build_say_how_to_get_cuda_and_nothing_is_written() {
    if nvtl_trainer::devices::CUDA_BUILT {
        return; // this test is about the CPU build CI makes
    }
    let dir = common::temp_dir("cli-devices");
    valid_kitti(&dir.join("kitti"));
    let spec = detector_spec(&dir, "");
    let spec = spec.to_str().unwrap();
    let (ok, err) = trainer(&["finetune", "--spec", spec, "--devices", "cuda:0,1"]);
    assert!(!ok);
    assert!(
        err.contains("cuda:0,1") && err.contains("--features cuda"),
        "{err}"
    );
    let (ok, err) = trainer(&["finetune", "--spec", spec, "--devices", "gpu"]);
    assert!(!ok);
    assert!(
        err.contains("\"gpu\"") && err.contains("cuda:0,1,..."),
        "{err}"
    );
    assert!(!dir.join("out").exists(), "nothing may be written");
    std::fs::remove_dir_all(&dir).unwrap();
}
