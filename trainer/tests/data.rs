//! Datasets on real images: KITTI / COCO / class folders, errors with file and line, splits,
//! augmentation geometry, batches as nvtlinfer pre-processes them, frames from vtest.avi and
//! CenterNet pseudo-labels.

mod common;

use std::path::{Path, PathBuf};

use nvtl_core::config::InferConfig;
use nvtl_core::preprocess::{self, FrameView, PixelFormat, Rect};
use nvtl_trainer::data::augment::{AugmentPlan, ColorJitter, Zoom};
use nvtl_trainer::data::kitti::{self, KittiImage};
use nvtl_trainer::data::{
    coco, extract_frames, folders, grid_to_folders, pseudo_label, split, Batcher, ClassMapping,
    DataError, Object, Progress,
};
use nvtl_trainer::spec::AugmentSpec;

fn assets_dir() -> PathBuf {
    std::env::var_os("NVTL_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/nvtl/assets")
        })
}

fn asset(name: &str) -> PathBuf {
    let path = assets_dir().join(name);
    assert!(path.is_file(), "test asset {} is missing", path.display());
    path
}

fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nvtl-data-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn close(a: [f32; 4], b: [f32; 4], tolerance: f32) -> bool {
    a.iter().zip(&b).all(|(x, y)| (x - y).abs() <= tolerance)
}

/// A KITTI set of three real photos with hand-placed boxes.
fn kitti_set(dir: &Path) -> Vec<String> {
    let classes = names(&["bicycle", "dog", "person"]);
    kitti::write(
        dir,
        "dog",
        KittiImage::File(&asset("dog.jpg")),
        &[
            Object::new(1, [131.0, 219.0, 309.0, 542.0]),
            Object::new(0, [129.0, 126.0, 563.0, 427.0]),
        ],
        &classes,
        None,
    )
    .unwrap();
    kitti::write(
        dir,
        "person",
        KittiImage::File(&asset("person.jpg")),
        &[Object::new(2, [190.5, 97.25, 275.0, 376.0])],
        &classes,
        Some(&[0.9]),
    )
    .unwrap();
    kitti::write(
        dir,
        "horses",
        KittiImage::File(&asset("horses.jpg")),
        &[],
        &classes,
        None,
    )
    .unwrap();
    classes
}

#[test]
fn kitti_round_trips_and_maps_classes() {
    let dir = temp_dir("kitti");
    kitti_set(&dir);
    assert!(dir.join("image_2/dog.jpg").is_file());
    let label = std::fs::read_to_string(dir.join("label_2/person.txt")).unwrap();
    assert_eq!(
        label.split_whitespace().count(),
        16,
        "score as 16th field: {label}"
    );

    let set = kitti::load(&dir, &ClassMapping::own()).unwrap();
    assert_eq!(set.classes, names(&["bicycle", "dog", "person"]));
    assert_eq!(set.samples.len(), 3);
    let dog = set
        .samples
        .iter()
        .find(|s| s.image.ends_with("dog.jpg"))
        .unwrap();
    assert_eq!(dog.objects.len(), 2);
    assert_eq!(dog.objects[0].class, 1);
    assert!(close(
        dog.objects[0].bbox,
        [131.0, 219.0, 309.0, 542.0],
        0.005
    ));
    let person = set
        .samples
        .iter()
        .find(|s| s.image.ends_with("person.jpg"))
        .unwrap();
    assert!(close(
        person.objects[0].bbox,
        [190.5, 97.25, 275.0, 376.0],
        0.005
    ));
    let horses = set
        .samples
        .iter()
        .find(|s| s.image.ends_with("horses.jpg"))
        .unwrap();
    assert!(horses.objects.is_empty());
    assert_eq!(set.class_counts(), vec![1, 1, 1]);

    // Fixed target classes, a mapped name and ignored unknowns.
    let mapping = ClassMapping {
        classes: Some(names(&["pedestrian", "dog"])),
        class_map: [("person".to_string(), "pedestrian".to_string())].into(),
        ignore_unknown: true,
    };
    let set = kitti::load(&dir, &mapping).unwrap();
    assert_eq!(
        set.class_counts(),
        vec![1, 1],
        "bicycle dropped, person -> pedestrian"
    );

    // Without ignore_unknown, the unknown class is an error naming the file and line.
    let message = kitti::load(&dir, &ClassMapping::fixed(&names(&["dog", "persons"])))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("dog.txt:2: unknown class \"bicycle\""),
        "{message}"
    );
    let message = kitti::load(
        &dir,
        &ClassMapping::fixed(&names(&["dog", "bicycle", "persn"])),
    )
    .unwrap_err()
    .to_string();
    assert!(
        message.contains("person.txt:1: unknown class \"person\" (did you mean \"persn\"?)"),
        "{message}"
    );
}

#[test]
fn malformed_kitti_names_file_and_line() {
    let dir = temp_dir("kitti-bad");
    kitti_set(&dir);
    let label = dir.join("label_2/dog.txt");
    let good = std::fs::read_to_string(&label).unwrap();
    let first = good.lines().next().unwrap();

    let cases = [
        (
            format!("{first}\ndog 0.00 0 0.00 1 2 3\n"),
            "dog.txt:2: expected 15 fields",
        ),
        (
            format!("{first}\n{}\n", first.replace("131.00", "abc")),
            "dog.txt:2: field 5 (x1) is \"abc\", not a number",
        ),
        (
            format!("{}\n", first.replace("309.00", "100.00")),
            "dog.txt:1: box x1=131 y1=219 x2=100 y2=542 is empty",
        ),
        (
            format!("{}\n", first.replace(" 0 0.00", " 7 0.00")),
            "dog.txt:1: field 3 (occluded) is 7",
        ),
    ];
    for (text, want) in cases {
        std::fs::write(&label, text).unwrap();
        let err = kitti::load(&dir, &ClassMapping::own()).unwrap_err();
        assert!(matches!(err, DataError::Kitti { .. }), "{err:?}");
        assert!(
            err.to_string().contains(want),
            "'{want}' missing from {err}"
        );
    }
    std::fs::write(&label, good).unwrap();

    std::fs::remove_file(dir.join("image_2/horses.jpg")).unwrap();
    let err = kitti::load(&dir, &ClassMapping::own()).unwrap_err();
    assert!(
        matches!(err, DataError::MissingImage { .. })
            && err.to_string().contains("horses.txt: image")
            && err.to_string().contains("does not exist"),
        "{err}"
    );
    let err = kitti::load(&temp_dir("kitti-empty"), &ClassMapping::own()).unwrap_err();
    assert!(
        err.to_string().contains("image_2") || err.to_string().contains("label_2"),
        "{err}"
    );
}

fn coco_json(images: &[(i64, &str)], annotations: &str) -> String {
    let images: Vec<String> = images
        .iter()
        .map(|(id, name)| {
            format!("{{\"id\": {id}, \"file_name\": \"{name}\", \"width\": 1, \"height\": 1}}")
        })
        .collect();
    format!(
        "{{\"images\": [{}],\n\"annotations\": [{annotations}],\n\"categories\": [{{\"id\": 18, \"name\": \"dog\"}}, {{\"id\": 2, \"name\": \"bicycle\"}}, {{\"id\": 1, \"name\": \"person\"}}]}}",
        images.join(", ")
    )
}

#[test]
fn coco_loads_boxes_and_reports_json_paths() {
    let dir = temp_dir("coco");
    let json = dir.join("instances.json");
    let images = assets_dir();
    let annotations = "{\"id\": 1, \"image_id\": 7, \"category_id\": 18, \"bbox\": [131, 219, 178, 323]},\n\
         {\"id\": 2, \"image_id\": 7, \"category_id\": 2, \"bbox\": [129.5, 126, 434, 301]},\n\
         {\"id\": 3, \"image_id\": 9, \"category_id\": 1, \"bbox\": [190, 97, 85, 279]},\n\
         {\"id\": 4, \"image_id\": 9, \"category_id\": 1, \"bbox\": [0, 0, 50, 50], \"iscrowd\": 1}";
    std::fs::write(
        &json,
        coco_json(
            &[(7, "dog.jpg"), (9, "person.jpg"), (11, "horses.jpg")],
            annotations,
        ),
    )
    .unwrap();
    let set = coco::load(&json, &images, &ClassMapping::own()).unwrap();
    assert_eq!(
        set.classes,
        names(&["dog", "bicycle", "person"]),
        "category order"
    );
    assert_eq!(set.samples.len(), 3);
    assert_eq!(set.samples[0].image, images.join("dog.jpg"));
    assert_eq!(set.samples[0].objects[0].bbox, [131.0, 219.0, 309.0, 542.0]);
    assert_eq!(set.samples[0].objects[1].bbox, [129.5, 126.0, 563.5, 427.0]);
    assert_eq!(set.samples[0].objects[1].class, 1);
    assert_eq!(set.samples[1].objects.len(), 1, "crowd annotation skipped");
    assert!(set.samples[2].objects.is_empty());

    let bad_box = annotations.replace("[190, 97, 85, 279]", "[190, 97, 85]");
    std::fs::write(
        &json,
        coco_json(&[(7, "dog.jpg"), (9, "person.jpg")], &bad_box),
    )
    .unwrap();
    let message = coco::load(&json, &images, &ClassMapping::own())
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("instances.json at $.annotations[2].bbox: expected [x, y, width, height]"),
        "{message}"
    );
    let bad_ref = annotations.replace(
        "\"image_id\": 9, \"category_id\": 1, \"bbox\": [190",
        "\"image_id\": 10, \"category_id\": 1, \"bbox\": [190",
    );
    std::fs::write(
        &json,
        coco_json(&[(7, "dog.jpg"), (9, "person.jpg")], &bad_ref),
    )
    .unwrap();
    let message = coco::load(&json, &images, &ClassMapping::own())
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("$.annotations[2].image_id: no image has id 10"),
        "{message}"
    );
    std::fs::write(
        &json,
        coco_json(&[(7, "dog.jpg"), (9, "nope.jpg")], annotations),
    )
    .unwrap();
    let err = coco::load(&json, &images, &ClassMapping::own()).unwrap_err();
    assert!(
        matches!(err, DataError::MissingImage { .. })
            && err.to_string().contains("$.images[1].file_name"),
        "{err}"
    );
    std::fs::write(&json, "{\"images\": [\n{\"id\": 1,}\n]}").unwrap();
    let message = coco::load(&json, &images, &ClassMapping::own())
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("line 2") && message.contains("not valid JSON"),
        "{message}"
    );
}

#[test]
fn digits_sheet_becomes_class_folders_and_splits_stratified() {
    let dir = temp_dir("digits");
    let counts = grid_to_folders(&asset("digits.png"), (20, 20), 5, &dir).unwrap();
    assert_eq!(counts, vec![500; 10]);
    let cell = image::open(dir.join("3/015_042.png")).unwrap();
    assert_eq!((cell.width(), cell.height()), (20, 20));
    let sheet = image::open(asset("digits.png")).unwrap().to_luma8();
    let expected = image::imageops::crop_imm(&sheet, 42 * 20, 15 * 20, 20, 20).to_image();
    assert_eq!(
        cell.to_luma8(),
        expected,
        "cell (row 15, column 42) is the sheet's pixels"
    );

    let set = folders::load(&dir, &ClassMapping::own()).unwrap();
    assert_eq!(
        set.classes,
        (0..10).map(|d| d.to_string()).collect::<Vec<_>>()
    );
    assert_eq!(set.samples.len(), 5000);
    assert_eq!(set.class_counts(), vec![500; 10]);
    assert!(set
        .samples
        .iter()
        .all(|s| s.label.is_some() && s.objects.is_empty()));

    let (train, val) = split(&set, 0.2, 7);
    assert_eq!(train.class_counts(), vec![400; 10]);
    assert_eq!(val.class_counts(), vec![100; 10], "stratified");
    let (train_again, val_again) = split(&set, 0.2, 7);
    assert_eq!((&train, &val), (&train_again, &val_again), "deterministic");
    let (_, val_other) = split(&set, 0.2, 8);
    assert_ne!(val, val_other, "another seed, another split");
    assert!(val.samples.iter().all(|s| !train.samples.contains(s)));

    let err =
        grid_to_folders(&asset("digits.png"), (30, 20), 5, &temp_dir("digits-bad")).unwrap_err();
    assert!(
        err.to_string()
            .contains("2000x1000 is not a whole number of 30x20 cells"),
        "{err}"
    );
}

#[test]
fn augmentation_box_geometry_is_exact() {
    let objects = vec![
        Object::new(0, [10.0, 20.0, 60.0, 80.0]),
        Object::new(1, [95.0, 0.0, 100.0, 10.0]),
    ];
    // Crop [20, 10, 70, 60]: shift by (-20, -10), clip to 70x60, drop < 2 px.
    let crop = AugmentPlan {
        crop: Some([20, 10, 70, 60]),
        ..AugmentPlan::identity()
    };
    let out = crop.apply_boxes(100, 80, &objects);
    assert_eq!(out.len(), 1, "the second box lies outside the crop");
    assert_eq!(out[0].bbox, [0.0, 10.0, 40.0, 60.0]);
    assert!((out[0].truncated - (1.0 - 40.0 * 50.0 / (50.0 * 60.0))).abs() < 1e-6);

    // Zoom x2 shifted by (-50, -40) on the 100x80 canvas, then flip.
    let zoom = AugmentPlan {
        zoom: Some(Zoom {
            factor: 2.0,
            tx: -50.0,
            ty: -40.0,
        }),
        flip: true,
        ..AugmentPlan::identity()
    };
    let out = zoom.apply_boxes(100, 80, &objects);
    // [10,20,60,80] -> [-30,0,70,120] -> clip [0,0,70,80] -> flip [30,0,100,80].
    // [95,0,100,10] -> [140,-40,150,-20]: outside the canvas, dropped.
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].bbox, [30.0, 0.0, 100.0, 80.0]);
    let small = AugmentPlan {
        zoom: Some(Zoom {
            factor: 0.5,
            tx: 0.0,
            ty: 0.0,
        }),
        ..AugmentPlan::identity()
    };
    let out = small.apply_boxes(100, 80, &[Object::new(0, [10.0, 10.0, 13.0, 50.0])]);
    assert!(out.is_empty(), "1.5 px wide after zooming out: dropped");
    let flip = AugmentPlan {
        flip: true,
        ..AugmentPlan::identity()
    };
    assert_eq!(
        flip.apply_boxes(100, 80, &objects)[1].bbox,
        [0.0, 0.0, 5.0, 10.0]
    );
}

#[test]
fn augmentation_moves_pixels_with_the_boxes() {
    let image = image::open(asset("chelsea.png")).unwrap().to_rgb8();
    let (w, h) = image.dimensions();
    let boxes = [Object::new(0, [100.0, 50.0, 200.0, 150.0])];

    let crop = AugmentPlan {
        crop: Some([30, 40, 200, 150]),
        ..AugmentPlan::identity()
    };
    let (cropped, out) = crop.apply(image.clone(), &boxes);
    assert_eq!(cropped.dimensions(), (200, 150));
    assert_eq!(cropped.get_pixel(70, 10), image.get_pixel(100, 50));
    assert_eq!(out[0].bbox, [70.0, 10.0, 170.0, 110.0]);

    let flip = AugmentPlan {
        flip: true,
        ..AugmentPlan::identity()
    };
    let (flipped, out) = flip.apply(image.clone(), &boxes);
    assert_eq!(flipped.get_pixel(w - 1 - 100, 50), image.get_pixel(100, 50));
    assert_eq!(
        out[0].bbox,
        [w as f32 - 200.0, 50.0, w as f32 - 100.0, 150.0]
    );

    // Zoom x2 about the origin: pixel (x, y) lands at (2x + 0.5, 2y + 0.5).
    let zoom = AugmentPlan {
        zoom: Some(Zoom {
            factor: 2.0,
            tx: 0.0,
            ty: 0.0,
        }),
        ..AugmentPlan::identity()
    };
    let (zoomed, out) = zoom.apply(image.clone(), &boxes);
    assert_eq!(zoomed.dimensions(), (w, h));
    let p = image.get_pixel(60, 40).0;
    let q = zoomed.get_pixel(120, 80).0;
    assert!(
        p.iter().zip(&q).all(|(a, b)| a.abs_diff(*b) <= 12),
        "{p:?} vs {q:?}"
    );
    assert_eq!(out[0].bbox, [200.0, 100.0, 400.0, 300.0]);
    let (shrunk, _) = AugmentPlan {
        zoom: Some(Zoom {
            factor: 0.5,
            tx: 0.0,
            ty: 0.0,
        }),
        ..AugmentPlan::identity()
    }
    .apply(image.clone(), &boxes);
    assert_eq!(
        shrunk.get_pixel(w - 1, h - 1).0,
        [0, 0, 0],
        "uncovered canvas is black"
    );

    let brighter = AugmentPlan {
        color: Some(ColorJitter {
            brightness: 1.2,
            contrast: 1.0,
            saturation: 1.0,
        }),
        ..AugmentPlan::identity()
    };
    let (bright, out) = brighter.apply(image.clone(), &boxes);
    assert_eq!(out[0].bbox, boxes[0].bbox, "colour leaves boxes alone");
    let mean = |i: &image::RgbImage| {
        i.as_raw().iter().map(|&v| v as f64).sum::<f64>() / i.as_raw().len() as f64
    };
    assert!(
        mean(&bright) > mean(&image) * 1.1,
        "{} vs {}",
        mean(&bright),
        mean(&image)
    );
}

fn centernet_config() -> InferConfig {
    let config = common::bundle("centernet_mobilenetv3_coco").config;
    InferConfig::from_file(&config).unwrap().config
}

#[test]
fn batches_are_what_nvtlinfer_feeds_the_model() {
    let dir = temp_dir("batch");
    kitti_set(&dir);
    let set = kitti::load(&dir, &ClassMapping::own()).unwrap();
    let config = centernet_config();
    let params = nvtl_trainer::data::batch::preprocess_params(&config, 320, 256);
    let batcher = Batcher::new(params.clone(), None, 1, 2);
    let batch = batcher.load(&set, &[0, 1], 0).unwrap();
    assert_eq!(
        batch.shape,
        [2, 256, 320, 3],
        "NHWC, as the CenterNet config says"
    );
    assert_eq!(batch.input.len(), 2 * 256 * 320 * 3);

    // Sample 0 is exactly nvtl_core::preprocess of the decoded image.
    let image = image::open(&set.samples[0].image).unwrap().to_rgb8();
    let (w, h) = (image.width() as usize, image.height() as usize);
    let frame = FrameView {
        format: PixelFormat::Rgb,
        width: w,
        height: h,
        planes: vec![image.as_raw()],
        strides: vec![w * 3],
    };
    let mut expected = vec![0f32; params.tensor_len()];
    let transform =
        preprocess::preprocess(&frame, Rect::full(w, h), &params, &mut expected).unwrap();
    assert_eq!(&batch.input[..params.tensor_len()], &expected[..]);
    let [x1, y1, x2, y2] = set.samples[0].objects[0].bbox;
    let (sx, sy) = (320.0 / w as f32, 256.0 / h as f32);
    assert!(close(
        batch.objects[0][0].bbox,
        [x1 * sx, y1 * sy, x2 * sx, y2 * sy],
        1e-3
    ));
    assert_eq!(transform.scale_x, sx);

    // Augmented batches are the same for the same (seed, epoch), whatever the thread count,
    // and differ between epochs.
    let augment = AugmentSpec {
        crop: 0.5,
        ..AugmentSpec::default()
    };
    let one = Batcher::new(params.clone(), Some(augment.clone()), 5, 1);
    let three = Batcher::new(params.clone(), Some(augment), 5, 3);
    let a: Vec<_> = one.iter(&set, 3, 2, true).map(Result::unwrap).collect();
    let b: Vec<_> = three.iter(&set, 3, 2, true).map(Result::unwrap).collect();
    assert_eq!(a, b);
    assert_eq!(a.iter().map(|b| b.indices.len()).sum::<usize>(), 3);
    let c: Vec<_> = one.iter(&set, 4, 2, true).map(Result::unwrap).collect();
    assert_ne!(a, c);
    for batch in &a {
        for objects in &batch.objects {
            for o in objects {
                let [x1, y1, x2, y2] = o.bbox;
                assert!(
                    0.0 <= x1 && x1 < x2 && x2 <= 320.0 && 0.0 <= y1 && y1 < y2 && y2 <= 256.0,
                    "{o:?}"
                );
            }
        }
    }
}

#[test]
fn frames_come_out_of_vtest_with_their_index() {
    let dir = temp_dir("frames");
    let seen = std::cell::Cell::new(0u64);
    let written = extract_frames(
        &asset("vtest.avi"),
        &dir,
        100,
        Some((50, 400)),
        &|p: Progress| seen.set(p.done),
    )
    .unwrap();
    assert_eq!(written, 4);
    for index in [50, 150, 250, 350] {
        let frame = image::open(dir.join(format!("frame_{index:06}.png"))).unwrap();
        assert_eq!((frame.width(), frame.height()), (768, 576));
    }
    assert_eq!(seen.get(), 401, "stops after the range");
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        4,
        "no temp files left"
    );

    let garbage = dir.join("not_a_video.avi");
    std::fs::write(&garbage, vec![7u8; 100_000]).unwrap();
    let err = extract_frames(&garbage, &dir.join("g"), 1, None, &|_| {}).unwrap_err();
    assert!(
        matches!(err, DataError::Video { .. }) && err.to_string().contains("not_a_video.avi"),
        "{err}"
    );
    let truncated = dir.join("truncated.avi");
    let bytes = std::fs::read(asset("vtest.avi")).unwrap();
    std::fs::write(&truncated, &bytes[..20_000]).unwrap();
    let err = extract_frames(&truncated, &dir.join("t"), 1, None, &|_| {}).unwrap_err();
    assert!(err.to_string().contains("truncated.avi"), "{err}");
}

#[test]
fn centernet_pseudo_labels_vtest_frames_into_kitti() {
    let frames = temp_dir("pseudo-frames");
    extract_frames(&asset("vtest.avi"), &frames, 200, Some((0, 600)), &|_| {}).unwrap();
    let images: Vec<PathBuf> = [0, 200, 400, 600]
        .iter()
        .map(|i| frames.join(format!("frame_{i:06}.png")))
        .collect();
    let out = temp_dir("pseudo-kitti");
    let bundle = common::bundle("centernet_mobilenetv3_coco").dir;
    let classes = names(&["person", "car"]);
    let report = pseudo_label(&bundle, &images, &classes, 0.4, &out, &|_| {}).unwrap();
    println!("{report:?}");
    assert_eq!(report.images, 4);
    assert!(
        report.objects[0] >= 8,
        "at least 2 persons per frame: {report:?}"
    );
    let set = kitti::load(&out, &ClassMapping::fixed(&classes)).unwrap();
    assert_eq!(set.samples.len(), 4);
    assert_eq!(set.class_counts(), report.objects);
    for sample in &set.samples {
        for o in &sample.objects {
            let [x1, y1, x2, y2] = o.bbox;
            assert!(0.0 <= x1 && x1 < x2 && x2 <= 768.0 && 0.0 <= y1 && y1 < y2 && y2 <= 576.0);
        }
    }
    let err = pseudo_label(
        &bundle,
        &images,
        &names(&["persn"]),
        0.4,
        &temp_dir("pseudo-bad"),
        &|_| {},
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("unknown class \"persn\" (did you mean \"person\"?)"),
        "{err}"
    );
}

#[test]
fn spec_datasets_load_with_split_or_val_folder() {
    let dir = temp_dir("from-spec");
    grid_to_folders(&asset("digits.png"), (20, 20), 5, &dir.join("digits")).unwrap();
    let spec_path = dir.join("spec.toml");
    std::fs::write(
        &spec_path,
        "[model]\nzoo = \"centernet_mobilenetv3_coco\"\ntask = \"classifier\"\n\
         [dataset]\nformat = \"folders\"\ntrain = \"digits\"\nval_split = 0.1\n\
         classes = [\"0\", \"1\", \"2\", \"3\", \"4\", \"5\", \"6\", \"7\", \"8\"]\nignore_unknown = true\n",
    )
    .unwrap();
    let spec = nvtl_trainer::spec::Spec::load(&spec_path, &[]).unwrap();
    let (train, val) = nvtl_trainer::data::load_from_spec(&spec.dataset, &dir).unwrap();
    assert_eq!(train.classes.len(), 9, "class 9 left out");
    assert_eq!(train.class_counts(), vec![450; 9]);
    assert_eq!(val.class_counts(), vec![50; 9]);

    // --set paths are relative to the current directory; this one is absolute.
    let val = format!("dataset.val={}", dir.join("digits").display());
    let spec = nvtl_trainer::spec::Spec::load(&spec_path, std::slice::from_ref(&val)).unwrap();
    let (train, val_set) = nvtl_trainer::data::load_from_spec(&spec.dataset, &dir).unwrap();
    assert_eq!(train.class_counts(), vec![500; 9]);
    assert_eq!(
        val_set.class_counts(),
        vec![500; 9],
        "the val folder, train's classes"
    );

    let spec =
        nvtl_trainer::spec::Spec::load(&spec_path, &[val, "dataset.ignore_unknown=false".into()])
            .unwrap();
    let err = nvtl_trainer::data::load_from_spec(&spec.dataset, &dir).unwrap_err();
    assert!(err.to_string().contains("unknown class \"9\""), "{err}");
}
