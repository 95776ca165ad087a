//! A classifier stage behind a detector: CenterNet (a zoo bundle) finds objects in darknet's
//! dog.jpg and a colour classifier with known weights, built here as ONNX, classifies each
//! object of the operated classes. The expected colour of an object is computed independently
//! from the decoded image: the argmax of its box's mean R, G, B.

mod common;

use common::*;
use gst::prelude::*;
use gst_check::Harness;
use gst_video::VideoRegionOfInterestMeta;
use nvtl_core::model::builder::{attr_int, OnnxBuilder};
use nvtl_core::model::Dim;

const CENTERNET: &str = "centernet_mobilenetv3_coco";
const COLOURS: [&str; 3] = ["red", "green", "blue"];
/// COCO class ids CenterNet gives the dog and the bicycle in dog.jpg.
const DOG: u32 = 16;
const BICYCLE: u32 = 1;
/// Only colours whose mean beats the runner-up by this much (0..255 scale) are asserted: the
/// element sees the box resampled to 32x32 and jpegdec may round differently from `image`.
const MARGIN: f64 = 5.0;

/// The colour classifier: `image` [N,3,32,32] -> GlobalAveragePool -> Flatten -> x20 ->
/// Softmax -> `colour` [N,3]. With net-scale-factor 1/255 its winner is the channel with the
/// highest mean over the (resampled) input.
fn colour_model(test: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let batch = || Dim::Dynamic("N".into());
    let mut b = OnnxBuilder::default();
    b.input_dims(
        "image",
        &[batch(), Dim::Fixed(3), Dim::Fixed(32), Dim::Fixed(32)],
    );
    b.node("GlobalAveragePool", "pool", &["image"], &["pooled"], vec![]);
    b.node(
        "Flatten",
        "flatten",
        &["pooled"],
        &["means"],
        vec![attr_int("axis", 1)],
    );
    let sharpen = b.init_f32("sharpen", &[1], vec![20.0]);
    b.node("Mul", "mul", &["means", &sharpen], &["logits"], vec![]);
    b.node(
        "Softmax",
        "softmax",
        &["logits"],
        &["colour"],
        vec![attr_int("axis", 1)],
    );
    b.output_dims("colour", &[batch(), Dim::Fixed(3)]);
    let onnx = temp_file(
        test,
        "colour.onnx",
        &b.to_bytes("nvtl secondary_classifier test"),
    );
    // nvinfer's classifier label format: one line per output layer, labels split by ';'.
    let labels = temp_file(test, "colour_labels.txt", COLOURS.join(";").as_bytes());
    (onnx, labels)
}

/// An nvinfer config for the colour classifier, with extra `[property]` lines.
fn classifier_config(test: &str, extra: &str) -> std::path::PathBuf {
    let (onnx, labels) = colour_model(test);
    let text = format!(
        "[property]\n\
         onnx-file={}\n\
         labelfile-path={}\n\
         network-type=1\n\
         net-scale-factor=0.00392156862745098\n\
         model-color-format=0\n\
         classifier-threshold=0.0\n\
         gie-unique-id=2\n\
         {extra}\n",
        onnx.display(),
        labels.display()
    );
    temp_file(test, "colour_config.txt", text.as_bytes())
}

fn secondary_config(test: &str, extra: &str) -> std::path::PathBuf {
    classifier_config(
        test,
        &format!("process-mode=2\noperate-on-gie-id=1\n{extra}"),
    )
}

/// dog.jpg through CenterNet (unique-id 1) and then the classifier stage `classifier`.
fn run_dog(classifier: &str) -> Vec<Object> {
    let centernet = bundle(CENTERNET);
    let buffers = run_pipeline(&format!(
        "filesrc location={} ! jpegdec ! videoconvert ! video/x-raw,format=RGB ! \
         nvtlinfer config-file-path={} unique-id=1 ! {classifier} ! appsink name=sink",
        asset("dog.jpg").display(),
        centernet.config.display(),
    ))
    .unwrap();
    assert_eq!(buffers.len(), 1);
    objects(&buffers[0])
}

/// Mean R, G, B (0..255) over `rect` of a tightly packed RGB image.
fn box_mean(width: u32, rgb: &[u8], rect: (u32, u32, u32, u32)) -> [f64; 3] {
    let (x, y, w, h) = rect;
    let mut sum = [0f64; 3];
    for row in y..y + h {
        for col in x..x + w {
            let at = (row as usize * width as usize + col as usize) * 3;
            for (c, s) in sum.iter_mut().enumerate() {
                *s += rgb[at + c] as f64;
            }
        }
    }
    let n = (w as f64 * h as f64).max(1.0);
    sum.map(|s| s / n)
}

/// The index of the highest mean when it beats the second by [`MARGIN`].
fn clear_winner(mean: [f64; 3]) -> Option<usize> {
    let mut order = [0usize, 1, 2];
    order.sort_by(|&a, &b| mean[b].total_cmp(&mean[a]));
    (mean[order[0]] - mean[order[1]] >= MARGIN).then_some(order[0])
}

/// The classifier results with unique-id 2 on an object.
fn colour_results(object: &Object) -> Vec<&gstnvtl::meta::Classification> {
    object
        .classifications
        .iter()
        .filter(|c| c.unique_id == 2)
        .collect()
}

/// Checks one classifier result's shape: attribute 0, a colour label matching its class id, a
/// probability.
fn check_result(result: &gstnvtl::meta::Classification) {
    assert_eq!(result.attribute_index, 0, "{result:?}");
    assert!((result.class_id as usize) < COLOURS.len(), "{result:?}");
    assert_eq!(
        result.label, COLOURS[result.class_id as usize],
        "{result:?}"
    );
    assert!(
        result.probability > 1.0 / 3.0 && result.probability <= 1.0,
        "{result:?}"
    );
}

#[test]
fn secondary_classifier_attaches_colours_to_the_operated_objects() {
    let config = secondary_config("operated", "batch-size=4\noperate-on-class-ids=16;1");
    let objects = run_dog(&format!("nvtlinfer config-file-path={}", config.display()));
    let (width, height, rgb) = rgb_image(&asset("dog.jpg"));
    assert_eq!((width, height), (768, 576));

    let detections: Vec<&Object> = objects.iter().filter(|o| o.unique_id == Some(1)).collect();
    let classes: Vec<u32> = detections.iter().filter_map(|o| o.class_id).collect();
    for wanted in [DOG, BICYCLE] {
        assert!(classes.contains(&wanted), "class {wanted} in {objects:?}");
    }
    assert!(
        classes.iter().any(|c| ![DOG, BICYCLE].contains(c)),
        "an object of a class not operated on (the car/truck): {objects:?}"
    );
    assert!(
        objects.iter().all(|o| o.unique_id == Some(1)),
        "the classifier adds no objects: {objects:?}"
    );

    let mut checked = Vec::new();
    for object in &detections {
        let results = colour_results(object);
        let operated = matches!(object.class_id, Some(DOG | BICYCLE));
        if !operated {
            assert!(
                object.classifications.is_empty(),
                "{:?} (class {:?}) is not operated on but was classified: {object:?}",
                object.label,
                object.class_id
            );
            continue;
        }
        assert_eq!(results.len(), 1, "one colour result on {object:?}");
        assert_eq!(object.classifications.len(), 1, "{object:?}");
        let result = results[0];
        check_result(result);
        let mean = box_mean(width, &rgb, object.rect);
        let top = mean.iter().copied().fold(f64::MIN, f64::max);
        assert!(
            top - mean[result.class_id as usize] < MARGIN,
            "{:?} at {:?}: {} but mean RGB {mean:?}",
            object.label,
            object.rect,
            result.label
        );
        if let Some(expected) = clear_winner(mean) {
            assert_eq!(
                result.label, COLOURS[expected],
                "{:?} at {:?}: mean RGB {mean:?}",
                object.label, object.rect
            );
            checked.push((object.label.clone(), mean, result.label.clone()));
        }
    }
    eprintln!("clear colours checked: {checked:?}");
    assert!(
        !checked.is_empty(),
        "no operated object has a clear colour: {objects:?}"
    );
}

#[test]
fn batch_size_does_not_change_results() {
    // Every CenterNet object, so that batch-size 2 needs more than one call with a partial last
    // one, and batch-size 4 runs objects together in one call.
    let config = secondary_config("batches", "batch-size=4");
    let runs: Vec<Vec<Object>> = [1u32, 2, 4]
        .iter()
        .map(|batch| {
            run_dog(&format!(
                "nvtlinfer config-file-path={} batch-size={batch}",
                config.display()
            ))
        })
        .collect();
    let base = &runs[0];
    assert!(base.len() >= 3, "{base:?}");
    for object in base {
        let results = colour_results(object);
        assert_eq!(results.len(), 1, "every object classified: {object:?}");
        check_result(results[0]);
    }
    for (batch, run) in [2, 4].iter().zip(&runs[1..]) {
        assert_eq!(run.len(), base.len(), "batch-size={batch}");
        for (a, b) in base.iter().zip(run) {
            assert_eq!(a.rect, b.rect, "batch-size={batch}");
            assert_eq!(a.class_id, b.class_id, "batch-size={batch}");
            let (ra, rb) = (colour_results(a), colour_results(b));
            assert_eq!(ra.len(), rb.len(), "batch-size={batch}: {a:?} vs {b:?}");
            for (x, y) in ra.iter().zip(&rb) {
                assert_eq!(
                    (x.class_id, &x.label),
                    (y.class_id, &y.label),
                    "batch-size={batch}"
                );
                assert!(
                    (x.probability - y.probability).abs() < 1e-5,
                    "batch-size={batch}: {x:?} vs {y:?}"
                );
            }
        }
    }
}

/// Runs the colour classifier in primary mode on `source` (ending in raw RGB video) and
/// returns the objects of the first buffer.
fn run_primary(test: &str, source: &str) -> Vec<Object> {
    let config = classifier_config(test, "process-mode=1");
    let buffers = run_pipeline(&format!(
        "{source} ! nvtlinfer config-file-path={} ! appsink name=sink",
        config.display()
    ))
    .unwrap();
    assert!(!buffers.is_empty());
    objects(&buffers[0])
}

fn frame_result(objects: &[Object], width: u32, height: u32) -> gstnvtl::meta::Classification {
    assert_eq!(objects.len(), 1, "one full-frame object: {objects:?}");
    let frame = &objects[0];
    assert_eq!(frame.roi_type, gstnvtl::meta::FRAME_ROI_TYPE);
    assert_eq!(frame.rect, (0, 0, width, height));
    assert_eq!(frame.class_id, None, "a frame is no detection: {frame:?}");
    let results = colour_results(frame);
    assert_eq!(results.len(), 1, "{frame:?}");
    check_result(results[0]);
    results[0].clone()
}

#[test]
fn primary_classifier_labels_the_whole_frame() {
    // dog.jpg's red and green means are within a few levels of each other, so on it only the
    // clearly losing colour is ruled out; the other photos have a clear winner.
    let mut clear = Vec::new();
    for (name, decoder) in [
        ("dog.jpg", "jpegdec"),
        ("chelsea.png", "pngdec"),
        ("coffee.png", "pngdec"),
        ("astronaut.png", "pngdec"),
    ] {
        let path = asset(name);
        let objects = run_primary(
            &format!("primary-{name}"),
            &format!(
                "filesrc location={} ! {decoder} ! videoconvert ! video/x-raw,format=RGB",
                path.display()
            ),
        );
        let (width, height, rgb) = rgb_image(&path);
        let result = frame_result(&objects, width, height);
        let mean = box_mean(width, &rgb, (0, 0, width, height));
        let top = mean.iter().copied().fold(f64::MIN, f64::max);
        let class = result.class_id as usize;
        assert!(
            top - mean[class] < MARGIN,
            "{name}: {} but mean RGB {mean:?}",
            result.label
        );
        if let Some(expected) = clear_winner(mean) {
            assert_eq!(result.label, COLOURS[expected], "{name}: mean RGB {mean:?}");
            clear.push(name);
        }
    }
    eprintln!("frames with a clear colour: {clear:?}");
    assert!(!clear.is_empty(), "no photo had a clear frame colour");
}

#[test]
fn primary_classifier_on_solid_colours() {
    // videotestsrc's foreground-color is ARGB.
    for (argb, colour) in [
        (0xffc02010u32, "red"),
        (0xff20b040, "green"),
        (0xff1030d0, "blue"),
    ] {
        let objects = run_primary(
            colour,
            &format!(
                "videotestsrc num-buffers=1 pattern=solid-color foreground-color={argb} ! \
                 video/x-raw,format=RGB,width=160,height=120"
            ),
        );
        let result = frame_result(&objects, 160, 120);
        assert_eq!(result.label, colour, "{argb:#x}");
    }
}

/// Adds an upstream object as nvtlinfer would: an ROI with an `nvtl/detection` param.
fn add_object(buffer: &mut gst::BufferRef, id: i32, unique_id: u32, class_id: u32, rect: Rect) {
    let mut meta = VideoRegionOfInterestMeta::add(buffer, "thing", rect);
    meta.set_id(id);
    meta.set_parent_id(-1);
    meta.add_param(
        gst::Structure::builder(gstnvtl::meta::DETECTION)
            .field("class-id", class_id)
            .field("label", "thing")
            .field("confidence", 0.9f64)
            .field("unique-id", unique_id)
            .build(),
    );
}

type Rect = (u32, u32, u32, u32);

#[test]
fn results_go_to_their_own_objects_across_batches() {
    // A grey frame with solid patches; upstream objects on them in an order that mixes colours,
    // seven operated on (two calls at batch-size 4, the second one partial), one of a class not
    // operated on and one from another element.
    let (width, height) = (320u32, 240u32);
    let patches: [(Rect, usize); 9] = [
        ((0, 0, 60, 50), 0),
        ((70, 0, 40, 70), 2),
        ((120, 10, 80, 40), 1),
        ((210, 0, 100, 60), 1),
        ((0, 90, 30, 30), 2),
        ((40, 80, 90, 90), 0),
        ((140, 100, 50, 120), 2),
        ((200, 120, 110, 40), 0),
        ((210, 180, 100, 50), 1),
    ];
    let mut rgb = vec![128u8; (width * height * 3) as usize];
    for ((x, y, w, h), colour) in patches {
        for row in y..y + h {
            for col in x..x + w {
                let at = ((row * width + col) * 3) as usize;
                rgb[at..at + 3].copy_from_slice(&[40, 40, 40]);
                rgb[at + colour] = 220;
            }
        }
    }
    let mut buffer = gst::Buffer::from_mut_slice(rgb);
    {
        let buffer = buffer.get_mut().unwrap();
        for (id, (rect, _)) in patches.iter().enumerate() {
            let (unique_id, class_id) = match id {
                7 => (1, 2),   // a car: not operated on
                8 => (5, DOG), // another detector's dog
                _ => (1, if id % 2 == 0 { DOG } else { BICYCLE }),
            };
            add_object(buffer, id as i32 * 10 + 3, unique_id, class_id, *rect);
        }
    }

    let config = secondary_config("own-objects", "batch-size=4\noperate-on-class-ids=16;1");
    init();
    let mut h = Harness::new_parse(&format!("nvtlinfer config-file-path={}", config.display()));
    h.set_src_caps_str(&format!(
        "video/x-raw,format=RGB,width={width},height={height},framerate=10/1"
    ));
    let out = h.push_and_pull(buffer).unwrap();
    let objects = objects(&out);
    assert_eq!(
        objects.len(),
        patches.len(),
        "no objects added: {objects:?}"
    );
    for (index, (object, (rect, colour))) in objects.iter().zip(patches).enumerate() {
        assert_eq!(object.id, index as i32 * 10 + 3);
        assert_eq!(object.rect, rect);
        let results = colour_results(object);
        if index >= 7 {
            assert!(object.classifications.is_empty(), "{object:?}");
            continue;
        }
        assert_eq!(results.len(), 1, "{object:?}");
        check_result(results[0]);
        assert_eq!(results[0].label, COLOURS[colour], "{object:?}");
        assert!(results[0].probability > 0.9, "{object:?}");
    }
}

/// (batch index, rect, detector label, colour class ids) of every detection.
type Classified = Vec<(Option<u32>, (u32, u32, u32, u32), Option<String>, Vec<u32>)>;

fn classified(buffer: &gst::BufferRef) -> Classified {
    objects(buffer)
        .into_iter()
        .map(|o| {
            let colours = colour_results(&o).iter().map(|c| c.class_id).collect();
            (o.batch_index, o.rect, o.label, colours)
        })
        .collect()
}

/// The colour classifier's batch-size after CenterNet: room for both photos' objects.
const CLASSIFIER_BATCH: usize = 8;

/// CenterNet then the colour classifier on `buffer` with `caps`, in one harness: what they found
/// and the classifier's number of inference calls.
fn detect_then_classify(test: &str, caps: &str, buffer: gst::Buffer) -> (Classified, u64) {
    init();
    let centernet = bundle(CENTERNET);
    let config = secondary_config(test, &format!("batch-size={CLASSIFIER_BATCH}"));
    let mut h = Harness::new_parse(&format!(
        "nvtlinfer config-file-path={} unique-id=1 ! nvtlinfer name=classifier config-file-path={}",
        centernet.config.display(),
        config.display()
    ));
    h.set_src_caps_str(caps);
    let found = classified(&h.push_and_pull(buffer).unwrap());
    let bin = h.element().unwrap().downcast::<gst::Bin>().unwrap();
    let stats = bin
        .by_name("classifier")
        .unwrap()
        .property::<gst::Structure>("stats");
    (found, stats.get::<u64>("inferences").unwrap())
}

#[test]
fn secondary_stage_on_a_batched_nvmm_buffer_classifies_each_frame_s_own_objects() {
    use nvtl_core::nvmm::{Abi, HostFrame, HostSurface, MemType};
    use nvtl_core::preprocess::PixelFormat;

    init();
    let mut frames = Vec::new();
    let mut alone = Vec::new();
    for name in ["dog.jpg", "horses.jpg"] {
        let (w, h, rgb) = rgb_image(&asset(name));
        // Frame by frame in system memory (RGB, GStreamer strides).
        let stride = (w as usize * 3).div_ceil(4) * 4;
        let mut data = vec![0u8; stride * h as usize];
        for y in 0..h as usize {
            data[y * stride..y * stride + w as usize * 3]
                .copy_from_slice(&rgb[y * w as usize * 3..(y + 1) * w as usize * 3]);
        }
        let caps = format!("video/x-raw,format=RGB,width={w},height={h},framerate=10/1");
        alone.push(detect_then_classify(
            &format!("alone-{name}"),
            &caps,
            gst::Buffer::from_mut_slice(data),
        ));
        let rgba: Vec<u8> = rgb
            .chunks(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect();
        frames.push(HostFrame::from_packed(
            PixelFormat::Rgbx,
            w,
            h,
            &[&rgba],
            64,
        ));
    }
    let surface = HostSurface::new(Abi::Ds6, MemType::CudaPinned, 2, frames, false);
    let caps = "video/x-raw(memory:NVMM),format=RGBA,width=768,height=576,framerate=10/1";
    let (batched, calls) =
        detect_then_classify("batched", caps, gst::Buffer::from_mut_slice(surface));

    // The objects of both frames fill the batches together, as nvinfer batches them.
    let per_frame: Vec<usize> = alone.iter().map(|(found, _)| found.len()).collect();
    let total: usize = per_frame.iter().sum();
    assert!(
        total <= CLASSIFIER_BATCH && per_frame.iter().all(|&n| n > 0),
        "{per_frame:?} objects: the photos no longer show what this test needs"
    );
    assert_eq!(
        calls, 1,
        "{per_frame:?} objects in one batch of {CLASSIFIER_BATCH}"
    );
    for (index, (expected, _)) in alone.iter().enumerate() {
        let got: Classified = batched
            .iter()
            .filter(|o| o.0 == Some(index as u32))
            .map(|o| (None, o.1, o.2.clone(), o.3.clone()))
            .collect();
        assert!(!got.is_empty(), "frame {index}");
        assert!(
            got.iter().all(|o| o.3.len() == 1),
            "one colour per object: {got:?}"
        );
        assert_eq!(&got, expected, "frame {index} batched vs alone");
    }
}
