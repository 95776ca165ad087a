//! nvtlinfer on real models (zoo bundles), real images and real video.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use gst::prelude::*;
use gst_check::Harness;

const CENTERNET: &str = "centernet_mobilenetv3_coco";
const BLAZEFACE: &str = "blazeface_front_128";

fn rgb_buffer(width: u32, height: u32, rgb: &[u8]) -> gst::Buffer {
    // GStreamer's RGB rows are padded to 4 bytes.
    let stride = (width as usize * 3).div_ceil(4) * 4;
    let mut data = vec![0u8; stride * height as usize];
    for y in 0..height as usize {
        let row = &rgb[y * width as usize * 3..(y + 1) * width as usize * 3];
        data[y * stride..y * stride + row.len()].copy_from_slice(row);
    }
    gst::Buffer::from_mut_slice(data)
}

fn harness_with(properties: &str) -> Harness {
    init();
    let mut h = Harness::new_parse(&format!("nvtlinfer name=infer {properties}"));
    h.set_src_caps_str("video/x-raw,format=RGB,width=768,height=576,framerate=10/1");
    h
}

fn infer_element(h: &mut Harness) -> gst::Element {
    h.find_element("nvtlinfer")
        .expect("the nvtlinfer in the harness")
}

fn labels(objects: &[Object]) -> Vec<String> {
    objects.iter().filter_map(|o| o.label.clone()).collect()
}

#[test]
fn properties_have_nvinfer_names_and_defaults() {
    init();
    let element = gst::ElementFactory::make("nvtlinfer").build().unwrap();
    assert_eq!(element.property::<u32>("unique-id"), 15);
    assert_eq!(element.property::<u32>("batch-size"), 1);
    assert_eq!(element.property::<u32>("interval"), 0);
    assert_eq!(element.property::<i32>("infer-on-gie-id"), -1);
    assert!(!element.property::<bool>("output-tensor-meta"));
    assert_eq!(element.property::<Option<String>>("config-file-path"), None);
    assert_eq!(
        element
            .property_value("process-mode")
            .get::<gstnvtl::nvtlinfer::ProcessModeProperty>()
            .unwrap(),
        gstnvtl::nvtlinfer::ProcessModeProperty::Primary
    );
    element.set_property("infer-on-class-ids", "0:2");
    assert_eq!(element.property::<String>("infer-on-class-ids"), "0:2");
    element.set_property("filter-out-class-ids", "1;3");
    assert_eq!(element.property::<String>("filter-out-class-ids"), "1;3");
    element.set_property("unique-id", 4u32);
    assert_eq!(element.property::<u32>("unique-id"), 4);
    for name in [
        "config-file-path",
        "model-engine-file",
        "gpu-id",
        "backend",
        "stats",
    ] {
        assert!(element.find_property(name).is_some(), "property {name}");
    }
}

#[test]
fn backend_blurb_names_the_backends_this_build_has() {
    init();
    let element = gst::ElementFactory::make("nvtlinfer").build().unwrap();
    let pspec = element.find_property("backend").unwrap();
    let blurb = pspec.blurb().unwrap_or_default().to_string();
    assert!(
        blurb.contains(nvtl_core::backend::built_backends_text()),
        "{blurb}"
    );
    assert!(blurb.contains("cpu (tract)"), "{blurb}");
    element.set_property_from_str("backend", "onnxruntime");
    assert_eq!(
        element
            .property_value("backend")
            .get::<gstnvtl::nvtlinfer::BackendProperty>()
            .unwrap(),
        gstnvtl::nvtlinfer::BackendProperty::OnnxRuntime
    );
}

#[test]
fn centernet_finds_dog_bicycle_and_truck_in_dog_jpg() {
    let bundle = bundle(CENTERNET);
    let mut h = harness_with(&format!(
        "config-file-path={} unique-id=3",
        bundle.config.display()
    ));
    let (w, h_px, rgb) = rgb_image(&asset("dog.jpg"));
    assert_eq!((w, h_px), (768, 576));
    let input = rgb_buffer(w, h_px, &rgb);
    let input_bytes = input.map_readable().unwrap().to_vec();
    let out = h.push_and_pull(input).unwrap();
    assert_eq!(
        out.map_readable().unwrap().as_slice(),
        &input_bytes[..],
        "pixels pass through unchanged"
    );
    let objects = objects(&out);
    let found = labels(&objects);
    for wanted in ["dog", "bicycle"] {
        assert!(found.iter().any(|l| l == wanted), "{wanted} in {found:?}");
    }
    assert!(
        found.iter().any(|l| l == "truck" || l == "car"),
        "truck or car in {found:?}"
    );
    let dog = objects
        .iter()
        .find(|o| o.label.as_deref() == Some("dog"))
        .unwrap();
    let (x, y, dw, dh) = dog.rect;
    // The dog sits in the lower left of the photo.
    assert!(
        x < 250 && y > 150 && x + dw < 450 && y + dh <= 576,
        "dog box {:?}",
        dog.rect
    );
    assert!(
        objects.iter().all(|o| o.unique_id == Some(3)),
        "property unique-id beats the config"
    );
    assert!(objects
        .iter()
        .all(|o| o.confidence.unwrap() >= 0.2 && o.confidence.unwrap() <= 1.0));
}

#[test]
fn config_values_apply_unless_a_property_overrides_them() {
    let bundle = bundle(CENTERNET);
    // The config filters out dogs and names unique-id 9 (gie-unique-id, the config key nvinfer
    // reads); no property is set.
    let config = config_for(
        &bundle,
        "precedence",
        "gie-unique-id=9\nfilter-out-class-ids=16",
    );
    let mut h = harness_with(&format!("config-file-path={}", config.display()));
    let (w, hh, rgb) = rgb_image(&asset("dog.jpg"));
    let out = h.push_and_pull(rgb_buffer(w, hh, &rgb)).unwrap();
    let objects = objects(&out);
    assert!(!objects.is_empty());
    assert!(objects.iter().all(|o| o.unique_id == Some(9)));
    assert!(
        !labels(&objects).contains(&"dog".to_string()),
        "filter-out-class-ids from the config"
    );
    assert_eq!(
        infer_element(&mut h).property::<u32>("unique-id"),
        9,
        "getter reports the config's value"
    );

    // The property beats the config: filter only class 99, so the dog is back.
    let mut h = harness_with(&format!(
        "config-file-path={} filter-out-class-ids=99",
        config.display()
    ));
    let out = h.push_and_pull(rgb_buffer(w, hh, &rgb)).unwrap();
    assert!(labels(&objects_of(&out)).contains(&"dog".to_string()));
}

fn objects_of(buffer: &gst::Buffer) -> Vec<Object> {
    objects(buffer)
}

/// A black 128x128 RGBx frame through `nvtlinfer config-file-path=CONFIG ! nvtlosd OSD`.
fn overlaid_black_frame(config: &Path, osd: &str) -> gst::Buffer {
    let mut h = Harness::new_parse(&format!(
        "nvtlinfer config-file-path={} ! nvtlosd {osd}",
        config.display()
    ));
    h.set_src_caps_str("video/x-raw,format=RGBx,width=128,height=128,framerate=10/1");
    h.push_and_pull(gst::Buffer::from_mut_slice(vec![0u8; 128 * 128 * 4]))
        .unwrap()
}

/// The RGB of pixel (`x`, `y`) of an [`overlaid_black_frame`].
fn rgb_at(buffer: &gst::Buffer, x: usize, y: usize) -> [u8; 3] {
    let map = buffer.map_readable().unwrap();
    let at = (y * 128 + x) * 4;
    [map[at], map[at + 1], map[at + 2]]
}

#[test]
fn instance_masks_ride_on_their_objects_and_nvtlosd_shades_them() {
    init();
    let out = overlaid_black_frame(
        &instance_segmenter("instance-masks"),
        "display-mask=true display-text=false border-width=1",
    );
    let objects = objects_of(&out);
    // The rows' boxes, from the 64x64 network to the 128x128 frame.
    let rects: Vec<_> = objects.iter().map(|o| o.rect).collect();
    assert_eq!(rects, [(16, 16, 32, 32), (64, 64, 48, 32)]);
    for (object, row) in objects.iter().zip(INSTANCE_ROWS) {
        let mask = object.mask.as_ref().expect("output-instance-mask=1");
        assert_eq!((mask.width, mask.height, mask.threshold), (4, 2, 0.3));
        let want: Vec<f32> = (0..8).map(|v| row[0] + v as f32 / 8.0).collect();
        assert_eq!(mask.data, want);
    }
    // The first mask's values 0, 1/8 and 2/8 are below 0.3: each covers 8x16 pixels of the
    // 32x32 box, left of the shaded rest.
    let pixel = |x, y| rgb_at(&out, x, y);
    for x in [20, 28, 36] {
        assert_eq!(pixel(x, 24), [0, 0, 0], "x {x}: below the threshold");
    }
    assert_ne!(pixel(44, 24), [0, 0, 0], "above the threshold");
    assert_ne!(pixel(20, 40), [0, 0, 0], "the second mask row");
    assert_ne!(pixel(80, 80), [0, 0, 0], "the second object's mask");
    assert_eq!(pixel(8, 80), [0, 0, 0], "outside the boxes");
}

#[test]
fn a_class_bg_color_rides_on_its_objects_and_nvtlosd_fills_their_boxes() {
    init();
    let out = overlaid_black_frame(
        &instance_segmenter_with_class_1_colours("bg-color"),
        "display-text=false border-width=1",
    );
    let colours: Vec<_> = objects_of(&out)
        .iter()
        .map(|o| (o.class_id, o.border_color, o.bg_color))
        .collect();
    assert_eq!(
        colours,
        [
            (Some(0), None, None),
            (
                Some(1),
                Some([0.0, 1.0, 0.0, 1.0]),
                Some([0.0, 0.0, 1.0, 0.5])
            )
        ]
    );
    // Class 1's box (64, 64, 48, 32) is filled with half-opaque blue over the black frame and
    // framed in green; class 0's box (16, 16, 32, 32) is not filled.
    let pixel = |x, y| rgb_at(&out, x, y);
    assert_eq!(pixel(80, 80), [0, 0, 128], "inside class 1's box");
    assert_eq!(pixel(64, 80), [0, 255, 0], "its border");
    assert_eq!(pixel(24, 24), [0, 0, 0], "inside class 0's box");
    assert_eq!(pixel(8, 80), [0, 0, 0], "outside the boxes");
}

#[test]
fn every_input_format_and_odd_strides_give_the_same_objects() {
    let bundle = bundle(CENTERNET);
    let dog = asset("dog.jpg");
    let mut reference: Option<Vec<String>> = None;
    for (format, size) in [
        ("RGB", "768x576"),
        ("RGBx", "768x576"),
        ("RGBA", "768x576"),
        ("BGR", "768x576"),
        ("BGRx", "768x576"),
        ("BGRA", "768x576"),
        ("NV12", "768x576"),
        ("I420", "768x576"),
        ("GRAY8", "768x576"),
        ("RGB", "767x575"),
        ("I420", "767x575"),
        ("NV12", "766x574"),
    ] {
        let (width, height) = size.split_once('x').unwrap();
        let buffers = run_pipeline(&format!(
            "filesrc location={} ! jpegdec ! videoconvert ! videoscale ! \
             video/x-raw,format={format},width={width},height={height} ! \
             nvtlinfer config-file-path={} ! appsink name=sink",
            dog.display(),
            bundle.config.display()
        ))
        .unwrap_or_else(|e| panic!("{format} {size}: {e}"));
        assert_eq!(buffers.len(), 1);
        let found = labels(&objects(&buffers[0]));
        if format == "GRAY8" {
            // Grey input loses colour, but the dog's shape remains.
            assert!(
                found.contains(&"dog".to_string()),
                "{format} {size}: {found:?}"
            );
            continue;
        }
        for wanted in ["dog", "bicycle"] {
            assert!(
                found.iter().any(|l| l == wanted),
                "{format} {size}: {wanted} in {found:?}"
            );
        }
        let mut sorted = found.clone();
        sorted.sort();
        sorted.dedup();
        match &reference {
            None => reference = Some(sorted),
            Some(r) => assert!(
                r.iter().filter(|l| !sorted.contains(l)).count() <= 1,
                "{format} {size}: {sorted:?} vs RGB {r:?}"
            ),
        }
    }
}

#[test]
fn vtest_frames_have_several_persons() {
    let bundle = bundle(CENTERNET);
    let buffers = run_pipeline(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=RGB ! identity eos-after=10 ! \
         nvtlinfer config-file-path={} ! appsink name=sink",
        asset("vtest.avi").display(),
        bundle.config.display()
    ))
    .unwrap();
    assert!(buffers.len() >= 9, "{} frames", buffers.len());
    let persons: Vec<usize> = buffers
        .iter()
        .map(|b| {
            objects(b)
                .iter()
                .filter(|o| o.label.as_deref() == Some("person"))
                .count()
        })
        .collect();
    let mean = persons.iter().sum::<usize>() as f64 / persons.len() as f64;
    assert!(
        persons.iter().all(|&n| n >= 2) && mean >= 3.0,
        "persons per frame {persons:?}"
    );
}

#[test]
fn interval_skips_frames() {
    let bundle = bundle(CENTERNET);
    let mut h = harness_with(&format!(
        "config-file-path={} interval=2",
        bundle.config.display()
    ));
    let (w, hh, rgb) = rgb_image(&asset("dog.jpg"));
    let mut with_objects = Vec::new();
    for frame in 0..7 {
        let out = h.push_and_pull(rgb_buffer(w, hh, &rgb)).unwrap();
        if !objects(&out).is_empty() {
            with_objects.push(frame);
        }
    }
    assert_eq!(with_objects, vec![0, 3, 6]);
    let stats = infer_element(&mut h).property::<gst::Structure>("stats");
    assert_eq!(stats.get::<u64>("frames").unwrap(), 7);
    assert_eq!(stats.get::<u64>("inferences").unwrap(), 3);
    assert!(stats.get::<f64>("inference-ms").unwrap() > 0.0);
}

#[test]
fn eos_and_flush_pass_through_and_processing_resumes() {
    let bundle = bundle(BLAZEFACE);
    init();
    let mut h = Harness::new_parse(&format!(
        "nvtlinfer config-file-path={}",
        bundle.config.display()
    ));
    h.set_src_caps_str("video/x-raw,format=RGB,width=512,height=512,framerate=10/1");
    let (w, hh, rgb) = rgb_image(&asset("astronaut.png"));
    let out = h.push_and_pull(rgb_buffer(w, hh, &rgb)).unwrap();
    assert_eq!(labels(&objects(&out)), vec!["face".to_string()]);
    assert!(h.push_event(gst::event::FlushStart::new()));
    assert!(h.push_event(gst::event::FlushStop::new(true)));
    h.push_event(gst::event::Segment::new(&gst::FormattedSegment::<
        gst::ClockTime,
    >::new()));
    let out = h.push_and_pull(rgb_buffer(w, hh, &rgb)).unwrap();
    assert_eq!(objects(&out).len(), 1);
    assert!(h.push_event(gst::event::Eos::new()));
    let mut saw_eos = false;
    while let Some(event) = h.try_pull_event() {
        saw_eos |= event.type_() == gst::EventType::Eos;
    }
    assert!(saw_eos);
}

#[test]
fn resolution_change_mid_stream() {
    let bundle = bundle(BLAZEFACE);
    init();
    let mut h = Harness::new_parse(&format!(
        "nvtlinfer config-file-path={}",
        bundle.config.display()
    ));
    let astronaut = image::open(asset("astronaut.png")).unwrap().to_rgb8();
    let mut boxes = Vec::new();
    for size in [512u32, 256, 384] {
        let resized = image::imageops::resize(
            &astronaut,
            size,
            size,
            image::imageops::FilterType::Triangle,
        );
        h.set_src_caps_str(&format!(
            "video/x-raw,format=RGB,width={size},height={size},framerate=10/1"
        ));
        let out = h
            .push_and_pull(rgb_buffer(size, size, resized.as_raw()))
            .unwrap();
        let faces = objects(&out);
        assert_eq!(faces.len(), 1, "one face at {size}x{size}");
        let (x, y, w, hh) = faces[0].rect;
        boxes.push([x, y, w, hh].map(|v| v as f64 * 512.0 / size as f64));
    }
    for b in &boxes[1..] {
        for (a, c) in b.iter().zip(&boxes[0]) {
            assert!((a - c).abs() < 20.0, "face box {b:?} vs {:?}", boxes[0]);
        }
    }
}

#[test]
fn secondary_detector_attaches_faces_to_persons() {
    let centernet = bundle(CENTERNET);
    let blazeface = bundle(BLAZEFACE);
    let buffers = run_pipeline(&format!(
        "filesrc location={} ! pngdec ! videoconvert ! video/x-raw,format=RGBx ! \
         nvtlinfer config-file-path={} unique-id=1 ! \
         nvtlinfer config-file-path={} unique-id=2 process-mode=secondary infer-on-gie-id=1 infer-on-class-ids=0 ! \
         appsink name=sink",
        asset("astronaut.png").display(),
        centernet.config.display(),
        blazeface.config.display()
    ))
    .unwrap();
    let objects = objects(&buffers[0]);
    let person = objects
        .iter()
        .find(|o| o.label.as_deref() == Some("person"))
        .expect("a person");
    let faces: Vec<_> = objects.iter().filter(|o| o.unique_id == Some(2)).collect();
    assert!(!faces.is_empty(), "{objects:?}");
    for face in faces {
        assert_eq!(face.label.as_deref(), Some("face"));
        let parent = objects
            .iter()
            .find(|o| o.id == face.parent_id)
            .expect("parent object");
        assert_eq!(parent.label.as_deref(), Some("person"));
        let (px, py, pw, ph) = parent.rect;
        let (fx, fy, fw, fh) = face.rect;
        assert!(
            fx >= px && fy >= py && fx + fw <= px + pw && fy + fh <= py + ph,
            "face {:?} in person {:?}",
            face.rect,
            person.rect
        );
    }
}

#[test]
fn model_swap_while_playing_switches_between_frames_and_failures_keep_the_old_model() {
    let centernet = bundle(CENTERNET);
    let blazeface = bundle(BLAZEFACE);
    init();
    let pipeline = gst::parse::launch(&format!(
        "appsrc name=src is-live=false format=time caps=video/x-raw,format=RGB,width=512,height=512,framerate=10/1 ! \
         nvtlinfer name=infer config-file-path={} ! appsink name=sink sync=false",
        blazeface.config.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    let infer = pipeline.by_name("infer").unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let (w, hh, rgb) = rgb_image(&asset("astronaut.png"));
    let mut frame = 0u64;
    let mut next = || {
        let mut buffer = rgb_buffer(w, hh, &rgb);
        buffer
            .get_mut()
            .unwrap()
            .set_pts(gst::ClockTime::from_mseconds(frame * 100));
        frame += 1;
        src.push_buffer(buffer).unwrap();
        let sample = sink.pull_sample().expect("a frame");
        labels(&objects(sample.buffer().unwrap()))
    };
    assert_eq!(next(), vec!["face".to_string()]);

    infer.set_property("config-file-path", centernet.config.display().to_string());
    let started = Instant::now();
    let mut switched = false;
    while started.elapsed() < Duration::from_secs(120) {
        let found = next();
        if found.iter().any(|l| l == "person") {
            switched = true;
            break;
        }
        assert_eq!(
            found,
            vec!["face".to_string()],
            "the old model runs until the new one is ready"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(switched, "switched to CenterNet");

    let bus = pipeline.bus().unwrap();
    infer.set_property("config-file-path", "/nonexistent/nvtl/config.txt");
    let warning = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(60),
            &[gst::MessageType::Warning],
        )
        .expect("a warning about the failed switch");
    let text = error_text(&warning);
    assert!(text.contains("/nonexistent/nvtl/config.txt"), "{text}");
    assert!(
        next().iter().any(|l| l == "person"),
        "CenterNet keeps running"
    );
    src.end_of_stream().unwrap();
    pipeline.set_state(gst::State::Null).unwrap();
}

#[test]
fn two_hundred_playing_null_cycles() {
    let bundle = bundle(BLAZEFACE);
    init();
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers=2 ! video/x-raw,format=RGB,width=160,height=120 ! \
         nvtlinfer config-file-path={} ! fakesink",
        bundle.config.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    for cycle in 0..200 {
        wait_for_end(&pipeline).unwrap_or_else(|e| panic!("cycle {cycle}: {e}"));
        pipeline.set_state(gst::State::Null).unwrap();
    }
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn ten_thousand_frames_keep_memory_flat() {
    let bundle = bundle(BLAZEFACE);
    init();
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers=10000 pattern=ball ! video/x-raw,format=RGB,width=160,height=120 ! \
         nvtlinfer name=infer config-file-path={} ! fakesink name=sink",
        bundle.config.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let samples = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let store = samples.clone();
    let pad = pipeline
        .by_name("sink")
        .unwrap()
        .static_pad("sink")
        .unwrap();
    let count = std::sync::atomic::AtomicU64::new(0);
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        let count = count.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if count == 1000 || count == 10000 {
            store.lock().unwrap().push(rss_kib());
        }
        gst::PadProbeReturn::Ok
    });
    wait_for_end(&pipeline).unwrap();
    pipeline.set_state(gst::State::Null).unwrap();
    let samples = samples.lock().unwrap().clone();
    println!(
        "RSS after 1000 frames: {} KiB, after 10000 frames: {} KiB",
        samples[0], samples[1]
    );
    assert_eq!(samples.len(), 2);
    assert!(
        samples[1] < samples[0] + 8 * 1024,
        "RSS grew from {} to {} KiB",
        samples[0],
        samples[1]
    );
}

#[test]
fn output_tensor_meta_carries_raw_outputs() {
    let bundle = bundle(BLAZEFACE);
    init();
    let mut h = Harness::new_parse(&format!(
        "nvtlinfer config-file-path={} output-tensor-meta=true",
        bundle.config.display()
    ));
    h.set_src_caps_str("video/x-raw,format=RGB,width=512,height=512,framerate=10/1");
    let (w, hh, rgb) = rgb_image(&asset("astronaut.png"));
    let out = h.push_and_pull(rgb_buffer(w, hh, &rgb)).unwrap();
    let meta = gst::meta::CustomMeta::from_buffer(&out, "NvtlTensorMeta").expect("tensor meta");
    let s = meta.structure();
    assert_eq!(s.name(), "NvtlTensorMeta");
    assert_eq!(
        s.get::<i32>("object-id").unwrap(),
        -1,
        "the frame's outputs"
    );
    assert!(!s.has_field("batch-index"), "a buffer of one frame");
    let tensors = s.get::<gst::List>("tensors").unwrap();
    let total: usize = tensors
        .iter()
        .map(|t| {
            let t = t.get::<gst::Structure>().unwrap();
            let dims = t.get::<gst::Array>("dims").unwrap();
            let elements: i32 = dims.iter().map(|d| d.get::<i32>().unwrap()).product();
            let data = t.get::<gst::glib::Bytes>("data").unwrap();
            assert_eq!(data.len(), elements as usize * 4);
            elements as usize
        })
        .sum();
    assert_eq!(total, 896 * 16 + 896, "BlazeFace regressors and scores");
}
