//! Shared test setup: GStreamer with the plugin registered statically, test assets, zoo
//! bundles (pulled on first use, like a user would), frames decoded from real images.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once};

use gst::prelude::*;
use nvtl_core::zoo::{self, Manifest, PulledBundle};

pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().expect("GStreamer initialises");
        gstnvtl::plugin_register_static().expect("nvtl plugin registers");
    });
}

/// The test data folder that `scripts/fetch-assets.sh` fills.
pub fn assets_dir() -> PathBuf {
    std::env::var_os("NVTL_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| dirs_home().join(".cache/nvtl/assets"))
}

fn dirs_home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
}

pub fn asset(name: &str) -> PathBuf {
    let path = assets_dir().join(name);
    assert!(
        path.is_file(),
        "test asset {} is missing: run scripts/fetch-assets.sh",
        path.display()
    );
    path
}

/// A zoo bundle, pulled into the cache on first use (one pull at a time across tests).
pub fn bundle(name: &str) -> PulledBundle {
    static PULL: Mutex<()> = Mutex::new(());
    let _guard = PULL.lock().unwrap_or_else(|p| p.into_inner());
    let manifest = Manifest::builtin().expect("built-in zoo manifest");
    let model = manifest.get(name).expect("zoo model");
    zoo::pull(model, &|_| {}).unwrap_or_else(|e| panic!("pulling {name}: {e}"))
}

/// Decodes an image file into tightly packed RGB bytes.
pub fn rgb_image(path: &Path) -> (u32, u32, Vec<u8>) {
    let image = image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb8();
    (image.width(), image.height(), image.into_raw())
}

/// Writes `text` to a fresh file in a per-test temp folder and returns its path.
pub fn temp_file(test: &str, name: &str, contents: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nvtl-test-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// A config file for a zoo bundle with extra `[property]` lines (paths absolute, so the
/// config can live anywhere).
pub fn config_for(bundle: &PulledBundle, test: &str, extra: &str) -> PathBuf {
    let original = std::fs::read_to_string(&bundle.config).unwrap();
    let key_of = |line: &str| line.split('=').next().unwrap_or("").trim().to_string();
    let overridden: Vec<String> = extra.lines().map(key_of).collect();
    let mut text = String::new();
    for line in original.lines() {
        let key = key_of(line);
        let replaced = overridden.contains(&key)
            || (key == "unique-id" && overridden.iter().any(|k| k == "gie-unique-id"));
        match key.as_str() {
            _ if replaced => {}
            "onnx-file" => text.push_str(&format!("onnx-file={}\n", bundle.onnx.display())),
            "labelfile-path" => {
                text.push_str(&format!("labelfile-path={}\n", bundle.labels.display()))
            }
            _ => {
                text.push_str(line);
                text.push('\n');
            }
        }
        if line.trim() == "[property]" {
            text.push_str(extra);
            text.push('\n');
        }
    }
    temp_file(test, "config.txt", text.as_bytes())
}

/// An object read back from buffer metadata.
pub type Object = gstnvtl::meta::ObjectMeta;

pub fn objects(buffer: &gst::BufferRef) -> Vec<Object> {
    gstnvtl::meta::read_objects(buffer)
}

/// Runs a gst-launch style description ending in `appsink name=sink` and returns the
/// buffers, or the first error message.
pub fn run_pipeline(description: &str) -> Result<Vec<gst::Buffer>, String> {
    init();
    let pipeline = gst::parse::launch(description)
        .map_err(|e| format!("parse: {e}"))?
        .downcast::<gst::Pipeline>()
        .unwrap();
    let sink = pipeline.by_name("sink").expect("appsink named sink");
    let collected = std::sync::Arc::new(Mutex::new(Vec::new()));
    let store = collected.clone();
    sink.set_property("emit-signals", true);
    sink.set_property("sync", false);
    sink.connect("new-sample", false, move |args| {
        let sink = args[0].get::<gst::Element>().unwrap();
        let sample = sink.emit_by_name::<Option<gst::Sample>>("pull-sample", &[]);
        if let Some(buffer) = sample.and_then(|s| s.buffer_owned()) {
            store.lock().unwrap().push(buffer);
        }
        Some(gst::FlowReturn::Ok.to_value())
    });
    let result = wait_for_end(&pipeline);
    pipeline.set_state(gst::State::Null).unwrap();
    result?;
    let buffers = std::mem::take(&mut *collected.lock().unwrap());
    Ok(buffers)
}

/// Plays a pipeline to EOS or error (with a generous timeout, so no test hangs).
pub fn wait_for_end(pipeline: &gst::Pipeline) -> Result<(), String> {
    pipeline.set_state(gst::State::Playing).map_err(|e| {
        let bus = pipeline.bus().unwrap();
        match bus.timed_pop_filtered(gst::ClockTime::from_seconds(1), &[gst::MessageType::Error]) {
            Some(msg) => error_text(&msg),
            None => format!("state change failed: {e}"),
        }
    })?;
    let bus = pipeline.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(600),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .ok_or("pipeline did not finish within 600 s")?;
    match msg.view() {
        gst::MessageView::Eos(_) => Ok(()),
        _ => Err(error_text(&msg)),
    }
}

pub fn error_text(msg: &gst::Message) -> String {
    match msg.view() {
        gst::MessageView::Error(e) => format!("{} ({:?})", e.error(), e.debug()),
        gst::MessageView::Warning(w) => format!("{} ({:?})", w.error(), w.debug()),
        _ => format!("{msg:?}"),
    }
}

/// Points ORT_DYLIB_PATH at libonnxruntime from onnxruntime's PyPI wheel
/// (`scripts/ort-venv.sh`), unless it is set. Call before the first onnxruntime use.
pub fn ort_library() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("ORT_DYLIB_PATH").is_some_and(|p| !p.is_empty()) {
            return;
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/ort-venv.sh");
        let out = std::process::Command::new("bash")
            .arg(&script)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let library = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        std::env::set_var("ORT_DYLIB_PATH", library);
    });
}

/// Rows (class, confidence, centre x, centre y, width, height) in 64x64 network pixels that
/// [`instance_segmenter`]'s model outputs.
pub const INSTANCE_ROWS: [[f32; 6]; 2] = [
    [0.0, 0.9, 16.0, 16.0, 16.0, 16.0],
    [1.0, 0.95, 44.0, 40.0, 24.0, 16.0],
];

/// An instance-segmentation config (network-type=3) as DeepStream users write them: a 64x64
/// model whose output `rows` is [`INSTANCE_ROWS`] whatever the image, decoded by
/// `NvDsInferParseRowMasks` of the C++ parser library core's tests use
/// (`core/tests/custom_parser/rows_parser.cpp`, compiled here): each object gets a 4x2 mask
/// whose value i is its class + i / 8; output-instance-mask=1, segmentation-threshold=0.3.
pub fn instance_segmenter(test: &str) -> PathBuf {
    let onnx = temp_file(
        test,
        "rows.onnx",
        &nvtl_core::model::builder::OnnxBuilder::constant_output(
            "image",
            &[1, 3, 64, 64],
            "rows",
            &[1, 2, 6],
            INSTANCE_ROWS.concat(),
        )
        .to_bytes("nvtl instance mask test"),
    );
    let library = temp_file(test, "librows_parser.so", b"");
    let source =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/tests/custom_parser/rows_parser.cpp");
    let compiler = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let status = std::process::Command::new(&compiler)
        .args(["-shared", "-fPIC", "-O1", "-Wl,-Bsymbolic", "-o"])
        .arg(&library)
        .arg(&source)
        .status()
        .unwrap_or_else(|e| panic!("{compiler}: {e}"));
    assert!(status.success(), "{compiler} {}", source.display());
    let config = format!(
        "[property]\n\
         onnx-file={}\n\
         network-type=3\n\
         num-detected-classes=2\n\
         cluster-mode=4\n\
         output-instance-mask=1\n\
         segmentation-threshold=0.3\n\
         net-scale-factor=0.00392156862745098\n\
         custom-lib-path={}\n\
         parse-bbox-instance-mask-func-name=NvDsInferParseRowMasks\n\
         [class-attrs-all]\n\
         pre-cluster-threshold=0.5\n",
        onnx.display(),
        library.display()
    );
    temp_file(test, "instance.txt", config.as_bytes())
}

/// [`instance_segmenter`] whose class 1 has `bg-color` blue at half opacity and a green
/// `border-color`; class 0 has neither.
pub fn instance_segmenter_with_class_1_colours(test: &str) -> PathBuf {
    let mut config = std::fs::read_to_string(instance_segmenter(test)).unwrap();
    config.push_str("[class-attrs-1]\nbg-color=0;0;1;0.5\nborder-color=0;1;0;1\n");
    temp_file(test, "coloured.txt", config.as_bytes())
}
