//! nvtlinfer on NVMM buffers that carry an `NvDsBatchMeta`, with DeepStream's metadata libraries
//! replaced by stand-ins (`tests/deepstream/nvds_standin.c`, compiled here with the C compiler):
//! the NvDsObjectMeta, NvDsClassifierMeta and on-screen text nvtlinfer adds must describe what
//! its GStreamer metadata says, and DeepStream objects from upstream must be classified.
//!
//! The stand-ins are loaded by path before the element opens `libnvdsgst_meta.so` and
//! `libnvds_meta.so` by name; the dynamic loader then hands out the already loaded libraries,
//! whose sonames are those names. This test binary is its own process, so no other test sees them.

mod common;

use std::ffi::{c_char, c_int, c_void, CStr};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};

use common::*;
use gst::prelude::*;
use gst_check::Harness;
use nvtl_core::nvmm::dsmeta::{
    obj_label_offset, text_params_offset, GList, NvDsBatchMetaHead, NvDsClassifierMeta,
    NvDsFrameMetaHead, NvDsLabelInfo, NvDsObjectMetaHead, NvOsdTextParams, UNTRACKED_OBJECT_ID,
};
use nvtl_core::nvmm::{Abi, HostFrame, HostSurface, MemType};
use nvtl_core::preprocess::PixelFormat;

const CENTERNET: &str = "centernet_mobilenetv3_coco";
const BLAZEFACE: &str = "blazeface_front_128";
const MOBILENET: &str = "mobilenet_v2_imagenet";
/// The major version the stand-in's `nvds_version` reports.
const DEEPSTREAM_MAJOR: u32 = 9;

/// The stand-in libraries and the calls these tests make into them.
struct Standins {
    set_batch_meta: unsafe extern "C" fn(*mut c_void),
    lock_depth: unsafe extern "C" fn() -> c_int,
    unlocked_calls: unsafe extern "C" fn() -> c_int,
    classifier_metas: unsafe extern "C" fn(*mut c_void) -> *mut GList,
    lock: unsafe extern "C" fn(*mut c_void),
    unlock: unsafe extern "C" fn(*mut c_void),
    acquire_object: unsafe extern "C" fn(*mut c_void) -> *mut c_void,
    add_object: unsafe extern "C" fn(*mut c_void, *mut c_void, *mut c_void),
    layout: unsafe extern "C" fn(*mut usize),
    _libraries: [libloading::Library; 2],
}

fn compile(out: &std::path::Path, soname: &str, defines: &[&str]) {
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/deepstream/nvds_standin.c");
    let glib = Command::new("pkg-config")
        .args(["--cflags", "--libs", "glib-2.0"])
        .output()
        .expect("pkg-config runs");
    assert!(glib.status.success(), "pkg-config glib-2.0");
    let glib = String::from_utf8(glib.stdout).unwrap();
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&compiler)
        .args(["-shared", "-fPIC", "-O1", "-Wall", "-Werror"])
        .arg(format!("-Wl,-soname,{soname}"))
        .args(defines)
        .arg("-o")
        .arg(out)
        .arg(&source)
        .args(glib.split_whitespace())
        .status()
        .unwrap_or_else(|e| panic!("{compiler}: {e}"));
    assert!(status.success(), "{compiler} {}", source.display());
}

fn standins() -> &'static Standins {
    static STANDINS: OnceLock<Standins> = OnceLock::new();
    STANDINS.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("nvtl-nvds-standin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let gst_meta = dir.join("libnvdsgst_meta.so");
        let meta = dir.join("libnvds_meta.so");
        compile(&gst_meta, "libnvdsgst_meta.so", &["-DGST_META"]);
        compile(&meta, "libnvds_meta.so", &[]);
        // SAFETY: the stand-ins have no initialisers; the symbol types are their C prototypes.
        unsafe {
            let gst_meta = libloading::Library::new(&gst_meta).unwrap();
            let meta = libloading::Library::new(&meta).unwrap();
            let standins = Standins {
                set_batch_meta: *gst_meta.get(b"nvds_standin_set_batch_meta").unwrap(),
                lock_depth: *meta.get(b"nvds_standin_lock_depth").unwrap(),
                unlocked_calls: *meta.get(b"nvds_standin_unlocked_calls").unwrap(),
                classifier_metas: *meta.get(b"nvds_standin_classifier_metas").unwrap(),
                lock: *meta.get(b"nvds_acquire_meta_lock").unwrap(),
                unlock: *meta.get(b"nvds_release_meta_lock").unwrap(),
                acquire_object: *meta.get(b"nvds_acquire_obj_meta_from_pool").unwrap(),
                add_object: *meta.get(b"nvds_add_obj_meta_to_frame").unwrap(),
                layout: *meta.get(b"nvds_standin_layout").unwrap(),
                _libraries: [gst_meta, meta],
            };
            let mut offsets = [0usize; 4];
            (standins.layout)(offsets.as_mut_ptr());
            assert_eq!(
                offsets,
                [
                    std::mem::offset_of!(NvDsFrameMetaHead, batch_id),
                    std::mem::offset_of!(NvDsFrameMetaHead, num_obj_meta),
                    std::mem::offset_of!(NvDsFrameMetaHead, obj_meta_list),
                    std::mem::offset_of!(NvDsObjectMetaHead, parent),
                ],
                "the stand-in's structs are nvtl_core's"
            );
            std::fs::remove_dir_all(&dir).ok();
            standins
        }
    })
}

/// The stand-in hands its one batch meta to every buffer, so these tests run one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    let guard = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    unsafe { (standins().set_batch_meta)(std::ptr::null_mut()) };
    guard
}

/// A test-built `NvDsBatchMeta` with one frame meta per batch slot, as nvstreammux makes it.
/// Its memory is leaked: the objects hanging in it are the stand-in's, never freed either.
struct Batch {
    head: *mut NvDsBatchMetaHead,
    frames: Vec<*mut NvDsFrameMetaHead>,
}

impl Batch {
    fn new(frames: u32) -> Batch {
        // SAFETY: all-zero is a valid value of these C structs (null pointers, zero counts).
        let head: *mut NvDsBatchMetaHead = Box::into_raw(Box::new(unsafe { std::mem::zeroed() }));
        let mut list: *mut GList = std::ptr::null_mut();
        let mut metas = Vec::new();
        for batch_id in (0..frames).rev() {
            let mut frame: NvDsFrameMetaHead = unsafe { std::mem::zeroed() };
            frame.batch_id = batch_id;
            frame.base_meta.batch_meta = head as *mut c_void;
            let frame = Box::into_raw(Box::new(frame));
            metas.insert(0, frame);
            list = Box::into_raw(Box::new(GList {
                data: frame as *mut c_void,
                next: list,
                prev: std::ptr::null_mut(),
            }));
        }
        unsafe {
            (*head).max_frames_in_batch = frames;
            (*head).num_frames_in_batch = frames;
            (*head).frame_meta_list = list;
        }
        unsafe { (standins().set_batch_meta)(head as *mut c_void) };
        Batch {
            head,
            frames: metas,
        }
    }

    /// The object metas on frame `batch_id`, in list order.
    fn objects(&self, batch_id: usize) -> Vec<*mut NvDsObjectMetaHead> {
        let frame = unsafe { &*self.frames[batch_id] };
        let objects = list(frame.obj_meta_list);
        assert_eq!(objects.len(), frame.num_obj_meta as usize);
        objects.into_iter().map(|o| o as _).collect()
    }

    /// The frame's `bInferDone`.
    fn infer_done(&self, batch_id: usize) -> i32 {
        unsafe { (*self.frames[batch_id]).b_infer_done }
    }

    /// Adds an object the way an upstream nvinfer does.
    fn add_upstream(&self, batch_id: usize, unique_id: i32, class_id: i32, rect: [f32; 4]) {
        let s = standins();
        unsafe {
            (s.lock)(self.head as *mut c_void);
            let obj = (s.acquire_object)(self.head as *mut c_void) as *mut NvDsObjectMetaHead;
            (*obj).unique_component_id = unique_id;
            (*obj).class_id = class_id;
            (*obj).object_id = UNTRACKED_OBJECT_ID;
            let r = &mut (*obj).rect_params;
            [r.left, r.top, r.width, r.height] = rect;
            (s.add_object)(
                self.frames[batch_id] as *mut c_void,
                obj as *mut c_void,
                std::ptr::null_mut(),
            );
            (s.unlock)(self.head as *mut c_void);
        }
    }
}

fn list(mut node: *mut GList) -> Vec<*mut c_void> {
    let mut out = Vec::new();
    while !node.is_null() {
        unsafe {
            out.push((*node).data);
            node = (*node).next;
        }
    }
    out
}

fn c_text(text: *const c_char) -> String {
    assert!(!text.is_null());
    unsafe { CStr::from_ptr(text) }
        .to_string_lossy()
        .into_owned()
}

/// What nvdsosd would draw for an object, and the label nvinfer stores in `obj_label`.
fn on_screen(obj: *mut NvDsObjectMetaHead) -> (String, String) {
    unsafe {
        let base = obj as *const u8;
        let text = &*(base.add(text_params_offset(DEEPSTREAM_MAJOR)) as *const NvOsdTextParams);
        let label = base.add(obj_label_offset(DEEPSTREAM_MAJOR)) as *const c_char;
        (c_text(text.display_text), c_text(label))
    }
}

/// The (unique id, labels) of each classifier meta on a DeepStream object.
fn classifier_results(obj: *mut NvDsObjectMetaHead) -> Vec<(i32, Vec<String>)> {
    list(unsafe { (standins().classifier_metas)(obj as *mut c_void) })
        .into_iter()
        .map(|c| {
            let c = unsafe { &*(c as *const NvDsClassifierMeta) };
            let labels: Vec<String> = list(c.label_info_list)
                .into_iter()
                .map(|l| {
                    let l = unsafe { &*(l as *const NvDsLabelInfo) };
                    c_text(l.result_label.as_ptr())
                })
                .collect();
            assert_eq!(labels.len(), c.num_labels as usize);
            (c.unique_component_id, labels)
        })
        .collect()
}

fn assert_lock_released() {
    let s = standins();
    unsafe {
        assert_eq!((s.lock_depth)(), 0, "every meta lock is released");
        assert_eq!(
            (s.unlocked_calls)(),
            0,
            "metas are only added under the lock"
        );
    }
}

/// `rect` (frame pixels, float) as the GStreamer ROI nvtlinfer attaches for the same detection.
fn near(ds: &NvDsObjectMetaHead, roi: (u32, u32, u32, u32)) -> bool {
    let r = &ds.rect_params;
    let (x, y, w, h) = roi;
    (r.left - x as f32).abs() <= 1.0
        && (r.top - y as f32).abs() <= 1.0
        && (r.left + r.width - (x + w) as f32).abs() <= 1.0
        && (r.top + r.height - (y + h) as f32).abs() <= 1.0
}

fn rgba_frame(name: &str) -> HostFrame {
    let (w, h, rgb) = rgb_image(&asset(name));
    let rgba: Vec<u8> = rgb
        .chunks(3)
        .flat_map(|p| [p[0], p[1], p[2], 255])
        .collect();
    HostFrame::from_packed(PixelFormat::Rgbx, w, h, &[&rgba], 64)
}

fn nvmm_caps(frame: &HostFrame) -> String {
    format!(
        "video/x-raw(memory:NVMM),format=RGBA,width={},height={},framerate=10/1",
        frame.width, frame.height
    )
}

/// Pushes `surface` through `pipeline` and returns the output buffer and the inference calls of
/// the element named `last`.
fn run(pipeline: &str, surface: HostSurface) -> (gst::Buffer, u64) {
    init();
    let caps = nvmm_caps(&surface.frames()[0]);
    let mut h = Harness::new_parse(pipeline);
    h.set_src_caps_str(&caps);
    let out = h
        .push_and_pull(gst::Buffer::from_mut_slice(surface))
        .unwrap();
    let bin = h.element().unwrap().downcast::<gst::Bin>().unwrap();
    let stats = bin
        .by_name("last")
        .unwrap()
        .property::<gst::Structure>("stats");
    (out, stats.get::<u64>("inferences").unwrap())
}

#[test]
fn detections_and_classifications_become_deepstream_metadata_per_frame() {
    let _serial = serial();
    let batch = Batch::new(2);
    let frames = vec![rgba_frame("dog.jpg"), rgba_frame("horses.jpg")];
    let surface = HostSurface::new(Abi::Ds6, MemType::CudaPinned, 2, frames, false);
    let (out, classifier_calls) = run(
        &format!(
            "nvtlinfer config-file-path={} unique-id=1 ! \
             nvtlinfer name=last config-file-path={} unique-id=2 process-mode=secondary \
             infer-on-gie-id=1",
            bundle(CENTERNET).config.display(),
            bundle(MOBILENET).config.display()
        ),
        surface,
    );
    assert_lock_released();
    let rois = objects(&out);
    let detections = rois.iter().filter(|o| o.unique_id == Some(1)).count();
    assert_eq!(
        classifier_calls, detections as u64,
        "one classification per object: DeepStream's copy of a GStreamer ROI is not classified \
         again"
    );

    for batch_id in 0..2 {
        assert_eq!(
            batch.infer_done(batch_id),
            1,
            "frame {batch_id} is marked inferred"
        );
        let expected: Vec<_> = rois
            .iter()
            .filter(|o| o.unique_id == Some(1) && o.batch_index == Some(batch_id as u32))
            .collect();
        assert!(!expected.is_empty(), "frame {batch_id} has detections");
        let ds = batch.objects(batch_id);
        assert_eq!(ds.len(), expected.len(), "frame {batch_id}");
        for (&obj, roi) in ds.iter().zip(&expected) {
            let o = unsafe { &*obj };
            assert_eq!(o.unique_component_id, 1);
            assert_eq!(Some(o.class_id as u32), roi.class_id);
            assert_eq!(o.object_id, UNTRACKED_OBJECT_ID);
            assert!(o.parent.is_null());
            assert!(near(o, roi.rect), "{:?} vs {:?}", o.rect_params, roi.rect);
            assert!((o.confidence as f64 - roi.confidence.unwrap()).abs() < 1e-6);
            let d = o.detector_bbox_info;
            assert_eq!(
                [d.left, d.top, d.width, d.height],
                [
                    o.rect_params.left,
                    o.rect_params.top,
                    o.rect_params.width,
                    o.rect_params.height
                ]
            );

            // The secondary classifier's result, on the DeepStream object and the ROI alike.
            let label = roi.label.clone().unwrap();
            let classified: Vec<&str> = roi
                .classifications
                .iter()
                .filter(|c| c.unique_id == 2)
                .map(|c| c.label.as_str())
                .collect();
            assert_eq!(classified.len(), 1, "{roi:?}");
            assert_eq!(
                classifier_results(obj),
                [(2, vec![classified[0].to_string()])]
            );
            assert_eq!(
                on_screen(obj),
                (format!("{label} {}", classified[0]), label)
            );
        }
    }
}

#[test]
fn upstream_deepstream_objects_are_classified_in_place() {
    let _serial = serial();
    // dog.jpg through CenterNet and MobileNetV2 without DeepStream metadata: where the dog is
    // and what the classifier calls it.
    let frame = rgba_frame("dog.jpg");
    let classifier = format!(
        "nvtlinfer name=last config-file-path={} unique-id=2 process-mode=secondary \
         infer-on-gie-id=1",
        bundle(MOBILENET).config.display()
    );
    let (reference, _) = run(
        &format!(
            "nvtlinfer config-file-path={} unique-id=1 ! {classifier}",
            bundle(CENTERNET).config.display()
        ),
        HostSurface::new(Abi::Ds6, MemType::System, 1, vec![frame.clone()], false),
    );
    let dog = objects(&reference)
        .into_iter()
        .find(|o| o.label.as_deref() == Some("dog"))
        .expect("CenterNet finds the dog");
    let breed = dog.classifications[0].label.clone();

    // The same dog found by a DeepStream primary stage: the buffer has no GStreamer ROI, only
    // the NvDsObjectMeta; beside it an object of another gie.
    let batch = Batch::new(1);
    let (x, y, w, h) = dog.rect;
    batch.add_upstream(0, 1, 16, [x as f32, y as f32, w as f32, h as f32]);
    batch.add_upstream(0, 7, 16, [0.0, 0.0, 64.0, 64.0]);
    let (out, calls) = run(
        &classifier,
        HostSurface::new(Abi::Ds6, MemType::System, 1, vec![frame], false),
    );
    assert_lock_released();
    assert_eq!(calls, 1, "only the object of gie 1");
    assert!(objects(&out).is_empty(), "no GStreamer ROI appears");
    let ds = batch.objects(0);
    assert_eq!(
        classifier_results(ds[0]),
        [(2, vec![breed])],
        "what the classifier says of the same box as a GStreamer ROI"
    );
    assert!(
        classifier_results(ds[1]).is_empty(),
        "gie 7 is not operated on"
    );
    assert_eq!(
        batch.infer_done(0),
        0,
        "a classifier leaves bInferDone to detectors"
    );
}

#[test]
fn secondary_detections_hang_under_their_deepstream_parent() {
    let _serial = serial();
    let batch = Batch::new(1);
    let frame = rgba_frame("astronaut.png");
    let (out, _) = run(
        &format!(
            "nvtlinfer config-file-path={} unique-id=1 ! \
             nvtlinfer name=last config-file-path={} unique-id=2 process-mode=secondary \
             infer-on-gie-id=1 infer-on-class-ids=0",
            bundle(CENTERNET).config.display(),
            bundle(BLAZEFACE).config.display()
        ),
        HostSurface::new(Abi::Ds8, MemType::CudaUnified, 1, vec![frame], false),
    );
    assert_lock_released();
    let rois = objects(&out);
    let faces: Vec<_> = rois.iter().filter(|o| o.unique_id == Some(2)).collect();
    assert!(!faces.is_empty(), "{rois:?}");
    let ds = batch.objects(0);
    let ds_faces: Vec<_> = ds
        .iter()
        .map(|&o| unsafe { &*o })
        .filter(|o| o.unique_component_id == 2)
        .collect();
    assert_eq!(ds_faces.len(), faces.len());
    for (ds_face, face) in ds_faces.iter().zip(&faces) {
        assert!(near(ds_face, face.rect), "frame coordinates");
        let person_roi = rois.iter().find(|o| o.id == face.parent_id).unwrap();
        assert!(!ds_face.parent.is_null(), "the face has a parent");
        let parent = unsafe { &*(ds_face.parent as *const NvDsObjectMetaHead) };
        assert_eq!(parent.unique_component_id, 1);
        assert!(near(parent, person_roi.rect), "the person it was found in");
        assert!(ds.contains(&(ds_face.parent as *mut NvDsObjectMetaHead)));
    }
}

#[test]
fn frames_the_detector_ran_on_are_marked_inferred_even_without_objects() {
    let _serial = serial();
    init();
    // interval=1: the detector runs on every other buffer, as nvinfer's interval property says.
    let mut h = Harness::new_parse(&format!(
        "nvtlinfer config-file-path={} interval=1",
        bundle(CENTERNET).config.display()
    ));
    let grey = HostFrame::from_packed(
        PixelFormat::Rgbx,
        320,
        240,
        &[&vec![128; 320 * 240 * 4]],
        64,
    );
    h.set_src_caps_str(&nvmm_caps(&grey));
    let mut marks = Vec::new();
    for _ in 0..3 {
        let batch = Batch::new(1);
        let surface = HostSurface::new(Abi::Ds6, MemType::CudaPinned, 1, vec![grey.clone()], false);
        let out = h
            .push_and_pull(gst::Buffer::from_mut_slice(surface))
            .unwrap();
        assert!(objects(&out).is_empty(), "nothing to find in grey");
        assert!(batch.objects(0).is_empty());
        marks.push(batch.infer_done(0));
    }
    assert_lock_released();
    assert_eq!(marks, [1, 0, 1]);
}
