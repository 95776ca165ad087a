//! nvinfer's `custom-lib-path` + `parse-bbox-func-name` (`parse-bbox-instance-mask-func-name`,
//! `parse-classifier-func-name`): a C++ parser library built here with the C++ compiler
//! (`tests/custom_parser/rows_parser.cpp`, written against the prototypes of
//! `nvdsinfer_custom_impl.h`) decodes the outputs of a model instead of a built-in decoder.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use nvtl_core::backend::BackendKind;
use nvtl_core::config::InferConfig;
use nvtl_core::engine::{Engine, EngineError, InferResult};
use nvtl_core::model::builder::OnnxBuilder;
use nvtl_core::preprocess::{FrameView, PixelFormat, Rect};
use nvtl_core::{ClassifierOutput, InstanceMask};

fn dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nvtl-custom-parser-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The parser library, compiled once per test run.
fn parser_library() -> &'static Path {
    static LIBRARY: OnceLock<PathBuf> = OnceLock::new();
    LIBRARY.get_or_init(|| {
        let source =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/custom_parser/rows_parser.cpp");
        let library = dir().join("librows_parser.so");
        let compiler = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
        let status = Command::new(&compiler)
            .args([
                "-shared",
                "-fPIC",
                "-O1",
                "-Wall",
                "-Werror",
                "-Wl,-Bsymbolic",
                "-o",
            ])
            .arg(&library)
            .arg(&source)
            .status()
            .unwrap_or_else(|e| panic!("{compiler}: {e}"));
        assert!(status.success(), "{compiler} {}", source.display());
        library
    })
}

/// Rows (class, confidence, centre x, centre y, width, height) in 64x64 network pixels.
const ROWS: [[f32; 6]; 4] = [
    [0.0, 0.8, 16.0, 16.0, 8.0, 8.0],
    // Below class 1's pre-cluster-threshold (0.9).
    [1.0, 0.8, 40.0, 40.0, 10.0, 10.0],
    [1.0, 0.95, 48.0, 20.0, 8.0, 12.0],
    // A class beyond num-detected-classes.
    [2.0, 0.99, 30.0, 30.0, 4.0, 4.0],
];

/// A 64x64 RGB model whose output `rows` [1, 4, 6] is [`ROWS`], whatever the image; written
/// once per test run.
fn rows_model() -> &'static Path {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    MODEL.get_or_init(|| constant_model("rows", &[1, 4, 6], ROWS.concat()))
}

/// A 64x64 RGB model whose output `output` (of `dims`) is `values` whatever the image.
fn constant_model(output: &str, dims: &[i64], values: Vec<f32>) -> PathBuf {
    let path = dir().join(format!("{output}.onnx"));
    OnnxBuilder::constant_output("image", &[1, 3, 64, 64], output, dims, values)
        .write("nvtl custom_parser test", &path)
        .unwrap();
    path
}

/// `text` as a config file of its own (tests run in parallel), parsed.
fn config_file(text: &str) -> InferConfig {
    static CONFIGS: AtomicUsize = AtomicUsize::new(0);
    let path = dir().join(format!(
        "config-{}.txt",
        CONFIGS.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, text).unwrap();
    InferConfig::from_file(&path).unwrap().config
}

fn config(function: Option<&str>, library: Option<&Path>, extra: &str) -> InferConfig {
    let mut text = format!(
        "[property]\nonnx-file={}\nnetwork-type=0\nnum-detected-classes=2\ncluster-mode=4\n\
         net-scale-factor=0.00392156862745098\n{extra}\n",
        rows_model().display()
    );
    if let Some(function) = function {
        text.push_str(&format!("parse-bbox-func-name={function}\n"));
    }
    if let Some(library) = library {
        text.push_str(&format!("custom-lib-path={}\n", library.display()));
    }
    text.push_str(
        "[class-attrs-all]\npre-cluster-threshold=0.5\n[class-attrs-1]\npre-cluster-threshold=0.9\n",
    );
    config_file(&text)
}

/// The parser library's live `operator new` allocations (arrays included).
fn live_allocations() -> std::ffi::c_long {
    parser_counter(b"rows_parser_live_allocations")
}

/// The parser library's live `operator new[]` allocations.
fn live_arrays() -> std::ffi::c_long {
    parser_counter(b"rows_parser_live_arrays")
}

fn parser_counter(symbol: &[u8]) -> std::ffi::c_long {
    // SAFETY: the counters of rows_parser.cpp are `long f()`; the library stays loaded by the
    // engines of this process.
    unsafe {
        let library = libloading::Library::new(parser_library()).unwrap();
        let count: libloading::Symbol<unsafe extern "C" fn() -> std::ffi::c_long> =
            library.get(symbol).unwrap();
        count()
    }
}

/// Parser calls, one at a time, so that [`live_allocations`] counts only the call under test.
static PARSING: Mutex<()> = Mutex::new(());

/// A 128x128 grey frame through `engine`.
fn infer(engine: &mut Engine) -> Result<InferResult, EngineError> {
    let pixels = vec![128u8; 128 * 128 * 3];
    let frame = FrameView {
        format: PixelFormat::Rgb,
        width: 128,
        height: 128,
        planes: vec![&pixels],
        strides: vec![128 * 3],
    };
    engine
        .infer_regions(&frame, &[Rect::full(128, 128)])
        .map(|mut results| results.remove(0))
}

#[test]
fn the_library_s_parser_decodes_the_outputs() {
    let config = config(Some("NvDsInferParseRows"), Some(parser_library()), "");
    let (mut engine, warnings) = Engine::load(config, BackendKind::Cpu, 1).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let _parsing = PARSING.lock().unwrap_or_else(|p| p.into_inner());
    let InferResult::Objects(objects) = infer(&mut engine).unwrap() else {
        panic!("a detector gives objects")
    };
    assert_eq!(
        live_allocations(),
        0,
        "the objects' storage went back to the library"
    );
    let found: Vec<(u32, f32, [f32; 4])> = objects
        .iter()
        .map(|o| {
            let b = o.bbox;
            (o.class_id, o.confidence, [b.left, b.top, b.width, b.height])
        })
        .collect();
    // The rows the parser kept, scaled from the 64x64 network to the 128x128 frame.
    assert_eq!(
        found,
        [
            (0, 0.8, [24.0, 24.0, 16.0, 16.0]),
            (1, 0.95, [88.0, 28.0, 16.0, 24.0])
        ]
    );
}

#[test]
fn a_forked_engine_runs_on_another_thread_with_the_same_parser() {
    let config = config(Some("NvDsInferParseRows"), Some(parser_library()), "");
    let (mut engine, _) = Engine::load(config, BackendKind::Cpu, 1).unwrap();
    let mut fork = engine.fork().unwrap();
    let _parsing = PARSING.lock().unwrap_or_else(|p| p.into_inner());
    let on_this_thread = infer(&mut engine).unwrap();
    drop(engine);
    let on_another = std::thread::spawn(move || (infer(&mut fork).unwrap(), fork.times))
        .join()
        .unwrap();
    assert_eq!(on_another.0, on_this_thread);
    assert_eq!(on_another.1.inferences, 1, "the fork counts its own calls");
    assert_eq!(live_allocations(), 0);
}

#[test]
fn a_failing_parser_is_a_decode_error_and_its_objects_are_freed() {
    let config = config(Some("NvDsInferParseFails"), Some(parser_library()), "");
    let (mut engine, _) = Engine::load(config, BackendKind::Cpu, 1).unwrap();
    let _parsing = PARSING.lock().unwrap_or_else(|p| p.into_inner());
    let err = infer(&mut engine).unwrap_err().to_string();
    assert_eq!(live_allocations(), 0, "freed on failure too");
    assert!(
        err.contains("NvDsInferParseFails of") && err.contains("returned false"),
        "{err}"
    );
}

#[test]
fn missing_functions_libraries_and_library_paths_are_config_errors() {
    let err = Engine::load(
        config(Some("NvDsInferParseYolo"), Some(parser_library()), ""),
        BackendKind::Cpu,
        1,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("has no function NvDsInferParseYolo"), "{err}");

    let missing = Path::new("/nonexistent/libnvdsinfer_custom_impl_Yolo.so");
    let err = Engine::load(
        config(Some("NvDsInferParseYolo"), Some(missing), ""),
        BackendKind::Cpu,
        1,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains(
            "custom-lib-path /nonexistent/libnvdsinfer_custom_impl_Yolo.so: cannot be loaded"
        ),
        "{err}"
    );

    let err = Engine::load(
        config(Some("NvDsInferParseRows"), None, ""),
        BackendKind::Cpu,
        1,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("needs custom-lib-path"), "{err}");
}

#[test]
fn an_explicit_built_in_parser_wins_with_a_warning() {
    let config = config(
        Some("NvDsInferParseRows"),
        Some(parser_library()),
        "parser=yolov5",
    );
    let (_, warnings) = Engine::load(config, BackendKind::Cpu, 1).unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("parser=yolov5") && w.contains("NvDsInferParseRows is not used")),
        "{warnings:?}"
    );
}

/// An instance-segmentation config (network-type=3) of the rows model and NvDsInferParseRowMasks.
fn instance_config(output_instance_mask: bool, cluster_mode: u32, function: &str) -> InferConfig {
    config_file(&format!(
        "[property]\nonnx-file={}\nnetwork-type=3\nnum-detected-classes=2\n\
         cluster-mode={cluster_mode}\noutput-instance-mask={}\nsegmentation-threshold=0.3\n\
         net-scale-factor=0.00392156862745098\ncustom-lib-path={}\n{function}\n\
         [class-attrs-all]\npre-cluster-threshold=0.5\n[class-attrs-1]\npre-cluster-threshold=0.9\n",
        rows_model().display(),
        u8::from(output_instance_mask),
        parser_library().display(),
    ))
}

#[test]
fn instance_masks_come_with_their_objects_and_go_back_to_the_library() {
    let function = "parse-bbox-instance-mask-func-name=NvDsInferParseRowMasks";
    let (mut engine, warnings) =
        Engine::load(instance_config(true, 4, function), BackendKind::Cpu, 1).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let (mut without_masks, _) =
        Engine::load(instance_config(false, 4, function), BackendKind::Cpu, 1).unwrap();
    let _parsing = PARSING.lock().unwrap_or_else(|p| p.into_inner());
    let InferResult::Objects(objects) = infer(&mut engine).unwrap() else {
        panic!("instance segmentation gives objects")
    };
    assert_eq!(
        (live_allocations(), live_arrays()),
        (0, 0),
        "every mask, kept or dropped, and the objects' storage went back"
    );
    let found: Vec<(u32, [f32; 4], Option<InstanceMask>)> = objects
        .iter()
        .map(|o| {
            let b = o.bbox;
            (
                o.class_id,
                [b.left, b.top, b.width, b.height],
                o.mask.clone(),
            )
        })
        .collect();
    // Class 1's 0.8 is below its threshold and class 2 beyond num-detected-classes, as nvinfer
    // filters them; the parser gave the third row no mask.
    let mask = InstanceMask {
        width: 4,
        height: 2,
        threshold: 0.3,
        data: (0..8).map(|v| v as f32 / 8.0).collect(),
    };
    assert_eq!(
        found,
        [
            (0, [24.0, 24.0, 16.0, 16.0], Some(mask)),
            (1, [88.0, 28.0, 16.0, 24.0], None)
        ]
    );

    let InferResult::Objects(objects) = infer(&mut without_masks).unwrap() else {
        panic!("instance segmentation gives objects")
    };
    assert_eq!(objects.len(), 2);
    assert!(
        objects.iter().all(|o| o.mask.is_none()),
        "output-instance-mask=0"
    );
    assert_eq!((live_allocations(), live_arrays()), (0, 0));
}

#[test]
fn instance_segmentation_needs_its_parser_and_no_clustering() {
    let load_error = |config| {
        Engine::load(config, BackendKind::Cpu, 1)
            .err()
            .unwrap()
            .to_string()
    };
    let function = "parse-bbox-instance-mask-func-name=NvDsInferParseRowMasks";
    let err = load_error(instance_config(true, 2, function));
    assert!(
        err.contains("needs cluster-mode=4") && err.contains("cluster-mode=2"),
        "{err}"
    );
    let err = load_error(instance_config(true, 4, ""));
    assert!(
        err.contains("needs parse-bbox-instance-mask-func-name"),
        "{err}"
    );
    let err = load_error(instance_config(
        true,
        4,
        "parse-bbox-instance-mask-func-name=NvDsInferParseCustomMrcnnTLTV2",
    ));
    assert!(
        err.contains("has no function NvDsInferParseCustomMrcnnTLTV2"),
        "{err}"
    );
}

/// A 64x64 RGB classifier whose output `scores` [1, 3] is (0.1, 0.7, 0.2), whatever the image.
fn scores_model() -> &'static Path {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    MODEL.get_or_init(|| constant_model("scores", &[1, 3], vec![0.1, 0.7, 0.2]))
}

fn classifier(threshold: f32) -> Engine {
    let labels = dir().join("labels.txt");
    std::fs::write(&labels, "a;b;c\nx;y;z\n").unwrap();
    let text = format!(
        "[property]\nonnx-file={}\nnetwork-type=1\nlabelfile-path={}\n\
         classifier-threshold={threshold}\ncustom-lib-path={}\n\
         parse-classifier-func-name=NvDsInferClassifyScores\n",
        scores_model().display(),
        labels.display(),
        parser_library().display()
    );
    Engine::load(config_file(&text), BackendKind::Cpu, 1)
        .unwrap()
        .0
}

#[test]
fn the_library_s_classifier_parser_labels_what_the_label_file_does_not() {
    let _parsing = PARSING.lock().unwrap_or_else(|p| p.into_inner());
    let InferResult::Classification(output) = infer(&mut classifier(0.5)).unwrap() else {
        panic!("a classifier gives attributes")
    };
    assert_eq!(
        output.description, "a description longer than sixteen bytes",
        "the parser's description string, which DeepStream shows"
    );
    let attributes = output.attributes;
    let found: Vec<(u32, u32, f32, Option<&str>)> = attributes
        .iter()
        .map(|a| {
            (
                a.attribute_index,
                a.class_id,
                a.probability,
                a.label.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [(0, 1, 0.7, Some("class-1")), (1, 2, 1.0, Some("z"))],
        "the parser's label, then the label file's"
    );
    assert_eq!(
        live_allocations(),
        0,
        "the vector and the heap string were freed"
    );

    // Above the best score: the parser leaves attribute 0 out.
    let InferResult::Classification(ClassifierOutput { attributes, .. }) =
        infer(&mut classifier(0.8)).unwrap()
    else {
        panic!("a classifier gives attributes")
    };
    assert_eq!(attributes.len(), 1);
    assert_eq!(attributes[0].label.as_deref(), Some("z"));
    assert_eq!(live_allocations(), 0);
}
