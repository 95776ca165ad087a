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
use std::time::{Duration, Instant};

use common::*;
use gst::prelude::*;
use gst_check::Harness;
use nvtl_core::nvmm::dsmeta::{
    mask_params_offset, obj_label_offset, text_params_offset, GList, NvDsBatchMetaHead,
    NvDsClassifierMeta, NvDsFrameMetaHead, NvDsInferSegmentationMeta, NvDsInferTensorMeta,
    NvDsLabelInfo, NvDsObjectMetaHead, NvDsUserMeta, NvOsdColorParams, NvOsdMaskParams,
    NvOsdTextParams, NVDSINFER_SEGMENTATION_META, NVDSINFER_TENSOR_OUTPUT_META,
    UNTRACKED_OBJECT_ID,
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
    object_user_metas: unsafe extern "C" fn(*mut c_void) -> *mut GList,
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
                object_user_metas: *meta.get(b"nvds_standin_object_user_metas").unwrap(),
                lock: *meta.get(b"nvds_acquire_meta_lock").unwrap(),
                unlock: *meta.get(b"nvds_release_meta_lock").unwrap(),
                acquire_object: *meta.get(b"nvds_acquire_obj_meta_from_pool").unwrap(),
                add_object: *meta.get(b"nvds_add_obj_meta_to_frame").unwrap(),
                layout: *meta.get(b"nvds_standin_layout").unwrap(),
                _libraries: [gst_meta, meta],
            };
            let mut offsets = [0usize; 5];
            (standins.layout)(offsets.as_mut_ptr());
            assert_eq!(
                offsets,
                [
                    std::mem::offset_of!(NvDsFrameMetaHead, batch_id),
                    std::mem::offset_of!(NvDsFrameMetaHead, num_obj_meta),
                    std::mem::offset_of!(NvDsFrameMetaHead, obj_meta_list),
                    std::mem::offset_of!(NvDsFrameMetaHead, frame_user_meta_list),
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
        let batch = Batch {
            head,
            frames: metas,
        };
        batch.carry(true);
        batch
    }

    /// Whether buffers carry this batch meta (the stand-in hands it out for every buffer).
    fn carry(&self, carried: bool) {
        let head = if carried {
            self.head as *mut c_void
        } else {
            std::ptr::null_mut()
        };
        unsafe { (standins().set_batch_meta)(head) };
    }

    /// The object metas on frame `batch_id`, in list order.
    fn objects(&self, batch_id: usize) -> Vec<*mut NvDsObjectMetaHead> {
        let frame = unsafe { &*self.frames[batch_id] };
        let objects = list(frame.obj_meta_list);
        assert_eq!(objects.len(), frame.num_obj_meta as usize);
        objects.into_iter().map(|o| o as _).collect()
    }

    /// Sets the source and that source's frame number of frame `batch_id`, as nvstreammux does.
    fn set_source(&self, batch_id: usize, source_id: u32, frame_num: i32) {
        let frame = self.frames[batch_id];
        unsafe {
            (*frame).source_id = source_id;
            (*frame).frame_num = frame_num;
        }
    }

    /// The frame's `bInferDone`.
    fn infer_done(&self, batch_id: usize) -> i32 {
        unsafe { (*self.frames[batch_id]).b_infer_done }
    }

    /// Adds an object the way an upstream nvinfer does.
    fn add_upstream(&self, batch_id: usize, unique_id: i32, class_id: i32, rect: [f32; 4]) {
        self.add_tracked(batch_id, unique_id, class_id, rect, UNTRACKED_OBJECT_ID);
    }

    /// Adds an object the way an upstream nvinfer and nvtracker leave it.
    fn add_tracked(
        &self,
        batch_id: usize,
        unique_id: i32,
        class_id: i32,
        rect: [f32; 4],
        object_id: u64,
    ) {
        let s = standins();
        unsafe {
            (s.lock)(self.head as *mut c_void);
            let obj = (s.acquire_object)(self.head as *mut c_void) as *mut NvDsObjectMetaHead;
            (*obj).unique_component_id = unique_id;
            (*obj).class_id = class_id;
            (*obj).object_id = object_id;
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

/// The user metas of a frame (`object` None) or DeepStream object.
fn user_metas(
    batch: &Batch,
    batch_id: usize,
    object: Option<*mut NvDsObjectMetaHead>,
) -> Vec<*mut NvDsUserMeta> {
    let list_head = match object {
        Some(o) => unsafe { (standins().object_user_metas)(o as *mut c_void) },
        None => unsafe { (*batch.frames[batch_id]).frame_user_meta_list },
    };
    list(list_head)
        .into_iter()
        .map(|m| m as *mut NvDsUserMeta)
        .collect()
}

/// A tensor meta as a DeepStream probe reads it: (unique id, per layer name, dims, values).
type TensorMetaView = (u32, Vec<(String, Vec<u32>, Vec<f32>)>);

fn tensor_meta(user_meta: *mut NvDsUserMeta) -> TensorMetaView {
    unsafe {
        assert_eq!(
            (*user_meta).base_meta.meta_type,
            NVDSINFER_TENSOR_OUTPUT_META
        );
        assert!(
            !(*user_meta).base_meta.release_func.is_null(),
            "DeepStream frees it"
        );
        assert!(!(*user_meta).base_meta.copy_func.is_null(), "and copies it");
        let meta = &*((*user_meta).user_meta_data as *const NvDsInferTensorMeta);
        let layers = (0..meta.num_output_layers as usize)
            .map(|i| {
                let layer = &*meta.output_layers_info.add(i);
                let dims = layer.infer_dims;
                let values = std::slice::from_raw_parts(
                    layer.buffer as *const f32,
                    dims.num_elements as usize,
                );
                (
                    c_text(layer.layer_name),
                    dims.d[..dims.num_dims as usize].to_vec(),
                    values.to_vec(),
                )
            })
            .collect();
        (meta.unique_id, layers)
    }
}

/// The `NvtlTensorMeta`s of a buffer as [`TensorMetaView`]s, with their (object id, batch index).
fn gst_tensor_metas(buffer: &gst::BufferRef) -> Vec<((i32, Option<u32>), TensorMetaView)> {
    buffer
        .iter_meta::<gst::Meta>()
        .filter_map(|m| m.try_as_custom_meta().cloned())
        .filter(|m| m.has_name("NvtlTensorMeta"))
        .map(|m| {
            let s = m.structure();
            let layers = s
                .get::<gst::List>("tensors")
                .unwrap()
                .iter()
                .map(|t| {
                    let t = t.get::<gst::Structure>().unwrap();
                    let dims: Vec<u32> = t
                        .get::<gst::Array>("dims")
                        .unwrap()
                        .iter()
                        .map(|d| d.get::<i32>().unwrap() as u32)
                        .collect();
                    let data = t.get::<gst::glib::Bytes>("data").unwrap();
                    let values = data
                        .chunks(4)
                        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                        .collect();
                    assert_eq!(dims[0], 1, "a batch of one");
                    (t.get::<String>("name").unwrap(), dims[1..].to_vec(), values)
                })
                .collect();
            (
                (
                    s.get::<i32>("object-id").unwrap(),
                    s.get::<u32>("batch-index").ok(),
                ),
                (s.get::<u32>("unique-id").unwrap(), layers),
            )
        })
        .collect()
}

/// The `classifier_type` of each classifier meta on a DeepStream object.
fn classifier_types(obj: *mut NvDsObjectMetaHead) -> Vec<Option<String>> {
    list(unsafe { (standins().classifier_metas)(obj as *mut c_void) })
        .into_iter()
        .map(|c| {
            let c = unsafe { &*(c as *const NvDsClassifierMeta) };
            (!c.classifier_type.is_null()).then(|| c_text(c.classifier_type))
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
    (out, inferences(&h))
}

/// [`run`] on dog.jpg as a DeepStream 6 surface in pinned memory.
fn run_on_dog_jpg(pipeline: &str) -> (gst::Buffer, u64) {
    run(
        pipeline,
        HostSurface::new(
            Abi::Ds6,
            MemType::CudaPinned,
            1,
            vec![rgba_frame("dog.jpg")],
            false,
        ),
    )
}

/// The dog CenterNet finds in `frame` (dog.jpg) in `pipeline`, run without DeepStream metadata.
fn dog_in(pipeline: &str, frame: &HostFrame) -> Object {
    let (out, _) = run(
        pipeline,
        HostSurface::new(Abi::Ds6, MemType::System, 1, vec![frame.clone()], false),
    );
    objects(&out)
        .into_iter()
        .find(|o| o.label.as_deref() == Some("dog"))
        .expect("CenterNet finds the dog")
}

/// The box of the dog CenterNet alone finds in `frame` (dog.jpg).
fn dog_box_in(frame: &HostFrame) -> (u32, u32, u32, u32) {
    let centernet = format!(
        "nvtlinfer name=last config-file-path={}",
        bundle(CENTERNET).config.display()
    );
    dog_in(&centernet, frame).rect
}

/// Frame `frame_num` of source 3 as a batch of one, with the dog (class 16 of unique-id 1)
/// twice: the object nvtracker follows (id 42) in `tracked_box`, then untracked in
/// `untracked_box`.
fn tracked_dog(frame_num: usize, tracked_box: [f32; 4], untracked_box: [f32; 4]) -> Batch {
    let batch = Batch::new(1);
    batch.set_source(0, 3, frame_num as i32);
    batch.add_tracked(0, 1, 16, tracked_box, 42);
    batch.add_upstream(0, 1, 16, untracked_box);
    batch
}

/// The inference calls so far of the harness's element named `last`.
fn inferences(h: &Harness) -> u64 {
    h.element()
        .unwrap()
        .downcast::<gst::Bin>()
        .unwrap()
        .by_name("last")
        .unwrap()
        .property::<gst::Structure>("stats")
        .get::<u64>("inferences")
        .unwrap()
}

#[test]
fn detections_and_classifications_become_deepstream_metadata_per_frame() {
    let _serial = serial();
    let batch = Batch::new(2);
    let frames = vec![rgba_frame("dog.jpg"), rgba_frame("horses.jpg")];
    let surface = HostSurface::new(Abi::Ds6, MemType::CudaPinned, 2, frames, false);
    let (out, classifier_calls) = run(
        &format!(
            "nvtlinfer config-file-path={} unique-id=1 output-tensor-meta=true ! \
             nvtlinfer name=last config-file-path={} unique-id=2 process-mode=secondary \
             infer-on-gie-id=1 output-tensor-meta=true",
            bundle(CENTERNET).config.display(),
            config_for(&bundle(MOBILENET), "ds-per-frame", "classifier-type=breed").display()
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

    let gst_tensors = gst_tensor_metas(&out);
    assert_eq!(
        gst_tensors.len(),
        2 + detections,
        "one per frame and one per object"
    );
    let gst_tensors_of = |object_id: i32, batch_index: Option<u32>| {
        let found: Vec<_> = gst_tensors
            .iter()
            .filter(|(owner, _)| *owner == (object_id, batch_index))
            .map(|(_, view)| view.clone())
            .collect();
        assert_eq!(
            found.len(),
            1,
            "NvtlTensorMeta of {object_id} in frame {batch_index:?}"
        );
        found.into_iter().next().unwrap()
    };

    for batch_id in 0..2 {
        assert_eq!(
            batch.infer_done(batch_id),
            1,
            "frame {batch_id} is marked inferred"
        );
        // The detector's raw outputs for this frame, as a DeepStream probe reads them.
        let frame_metas = user_metas(&batch, batch_id, None);
        assert_eq!(frame_metas.len(), 1);
        let (unique_id, layers) = tensor_meta(frame_metas[0]);
        assert_eq!(unique_id, 1);
        let mut dims: Vec<Vec<u32>> = layers.iter().map(|l| l.1.clone()).collect();
        dims.sort();
        assert_eq!(
            dims,
            [vec![4, 128, 128], vec![80, 128, 128]],
            "CenterNet's outputs"
        );
        assert_eq!(
            (unique_id, layers),
            gst_tensors_of(-1, Some(batch_id as u32)),
            "the values of NvtlTensorMeta"
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
            assert_eq!(classifier_types(obj), [Some("breed".to_string())]);
            assert_eq!(
                on_screen(obj),
                (format!("{label} {} ", classified[0]), label),
                "nvinfer's text: the detector's label, a space, the classifier's description"
            );
            // The classifier's raw output for this object, on the object.
            let object_metas = user_metas(&batch, batch_id, Some(obj));
            assert_eq!(object_metas.len(), 1);
            let (unique_id, layers) = tensor_meta(object_metas[0]);
            assert_eq!(
                (unique_id, layers.len(), layers[0].1.as_slice()),
                (2, 1, &[1000][..])
            );
            let best = (0..1000)
                .max_by(|&a, &b| layers[0].2[a].total_cmp(&layers[0].2[b]))
                .unwrap();
            let class_id = roi
                .classifications
                .iter()
                .find(|c| c.unique_id == 2)
                .unwrap()
                .class_id;
            assert_eq!(best as u32, class_id, "the winning class is the label's");
            assert_eq!(
                (unique_id, layers),
                gst_tensors_of(roi.id, Some(batch_id as u32))
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
    let dog = dog_in(
        &format!(
            "nvtlinfer config-file-path={} unique-id=1 ! {classifier}",
            bundle(CENTERNET).config.display()
        ),
        &frame,
    );
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

/// A segmentation network whose output is its input: with net-scale-factor 1/255 each pixel's
/// class is its strongest colour channel (0 red, 1 green, 2 blue).
fn channel_segmenter(test: &str) -> PathBuf {
    use nvtl_core::model::builder::OnnxBuilder;
    let mut b = OnnxBuilder::default();
    b.input("image", &[1, 3, 32, 32]);
    b.node("Identity", "identity", &["image"], &["classes"], vec![]);
    b.output("classes", &[1, 3, 32, 32]);
    let onnx = temp_file(
        test,
        "segmenter.onnx",
        &b.to_bytes("nvtl deepstream_meta test"),
    );
    let config = format!(
        "[property]\n\
         onnx-file={}\n\
         network-type=2\n\
         num-detected-classes=3\n\
         net-scale-factor=0.00392156862745098\n\
         model-color-format=0\n\
         segmentation-threshold=0.5\n\
         gie-unique-id=5\n",
        onnx.display()
    );
    temp_file(test, "segmenter.txt", config.as_bytes())
}

#[test]
fn segmentation_maps_become_deepstream_segmentation_meta() {
    let _serial = serial();
    // 96x32: a red, a green and a blue third; the network sees 32x32.
    let (width, height) = (96u32, 32u32);
    let mut rgba = Vec::new();
    for _ in 0..height {
        for x in 0..width {
            let mut pixel = [0, 0, 0, 255];
            pixel[(x / 32) as usize] = 255;
            rgba.extend(pixel);
        }
    }
    let frame = HostFrame::from_packed(PixelFormat::Rgbx, width, height, &[&rgba], 64);
    let batch = Batch::new(1);
    let (out, _) = run(
        &format!(
            "nvtlinfer name=last config-file-path={}",
            channel_segmenter("ds-segmentation").display()
        ),
        HostSurface::new(Abi::Ds6, MemType::CudaPinned, 1, vec![frame], false),
    );
    assert_lock_released();

    let gst_meta = out
        .iter_meta::<gst::Meta>()
        .filter_map(|m| m.try_as_custom_meta().cloned())
        .find(|m| m.has_name("NvtlSegmentationMeta"))
        .expect("NvtlSegmentationMeta");
    let gst_map: Vec<i32> = gst_meta
        .structure()
        .get::<gst::glib::Bytes>("class-map")
        .unwrap()
        .chunks(4)
        .map(|b| i32::from_le_bytes(b.try_into().unwrap()))
        .collect();

    let metas = user_metas(&batch, 0, None);
    assert_eq!(metas.len(), 1);
    let (shape, class_map, probabilities) = unsafe {
        let user_meta = &*metas[0];
        assert_eq!(user_meta.base_meta.meta_type, NVDSINFER_SEGMENTATION_META);
        assert!(!user_meta.base_meta.release_func.is_null());
        let m = &*(user_meta.user_meta_data as *const NvDsInferSegmentationMeta);
        let plane = (m.width * m.height) as usize;
        (
            (m.classes, m.width, m.height, m.unique_id),
            std::slice::from_raw_parts(m.class_map, plane).to_vec(),
            std::slice::from_raw_parts(m.class_probabilities_map, plane * m.classes as usize)
                .to_vec(),
        )
    };
    assert_eq!(shape, (3, 32, 32, 5));
    assert_eq!(class_map, gst_map, "the map of NvtlSegmentationMeta");
    for y in 0..32 {
        for x in (0..32).filter(|x| x % 11 != 10 && x % 11 != 0 || *x == 0) {
            let expected = (x * 3 / 32) as i32;
            assert_eq!(class_map[y * 32 + x], expected, "pixel {x},{y}");
            let value = |c: usize| probabilities[c * 32 * 32 + y * 32 + x];
            assert!(
                value(expected as usize) > 0.99 && value((expected as usize + 1) % 3) < 0.01,
                "class planes at {x},{y}"
            );
        }
    }
}

#[test]
fn tracked_objects_keep_their_classification_until_it_is_due_again() {
    let _serial = serial();
    init();
    let frame = rgba_frame("dog.jpg");
    let (x, y, w, h) = dog_box_in(&frame);
    // Most of the dog's box, then all of it: an area grown by over a half.
    let dog_box = [x as f32, y as f32, w as f32 * 0.8, h as f32 * 0.8];
    let grown = [x as f32, y as f32, w as f32, h as f32];

    let config = config_for(
        &bundle(MOBILENET),
        "ds-history",
        "secondary-reinfer-interval=2",
    );
    let mut h = Harness::new_parse(&format!(
        "nvtlinfer name=last config-file-path={} unique-id=2 process-mode=secondary \
         infer-on-gie-id=1",
        config.display()
    ));
    h.set_src_caps_str(&nvmm_caps(&frame));
    let mut calls = Vec::new();
    let mut labels = Vec::new();
    for (frame_num, tracked_box) in [dog_box, dog_box, dog_box, dog_box, grown]
        .into_iter()
        .enumerate()
    {
        let batch = tracked_dog(frame_num, tracked_box, dog_box);
        let before = inferences(&h);
        let surface =
            HostSurface::new(Abi::Ds6, MemType::CudaPinned, 1, vec![frame.clone()], false);
        h.push_and_pull(gst::Buffer::from_mut_slice(surface))
            .unwrap();
        calls.push(inferences(&h) - before);
        let ds = batch.objects(0);
        let tracked = classifier_results(ds[0]);
        let untracked = classifier_results(ds[1]);
        assert_eq!(
            tracked.len(),
            1,
            "frame {frame_num}: the tracked dog has its label"
        );
        assert_eq!(untracked.len(), 1, "frame {frame_num}");
        labels.push(tracked[0].1.clone());
        if frame_num < 4 {
            assert_eq!(
                tracked, untracked,
                "frame {frame_num}: the same box, the same label"
            );
        }
    }
    assert_lock_released();
    // Frame 0 classifies both; 1 and 2 only the untracked one (the tracked one keeps its label);
    // 3 is more than secondary-reinfer-interval=2 frames after 0; 4 has grown by over 20%.
    assert_eq!(calls, [2, 1, 1, 2, 2]);
    assert!(labels[..4].iter().all(|l| *l == labels[0]), "{labels:?}");
}

#[test]
fn a_secondary_detector_looks_into_a_tracked_object_again_only_after_the_interval() {
    let _serial = serial();
    init();
    let frame = rgba_frame("astronaut.png");
    let (out, _) = run(
        &format!(
            "nvtlinfer name=last config-file-path={}",
            bundle(CENTERNET).config.display()
        ),
        HostSurface::new(Abi::Ds6, MemType::System, 1, vec![frame.clone()], false),
    );
    let (x, y, w, h) = objects(&out)
        .into_iter()
        .find(|o| o.label.as_deref() == Some("person"))
        .expect("CenterNet finds the astronaut")
        .rect;
    let person = [x as f32, y as f32, w as f32, h as f32];

    let config = config_for(
        &bundle(BLAZEFACE),
        "ds-detector-history",
        "secondary-reinfer-interval=2",
    );
    let mut h = Harness::new_parse(&format!(
        "nvtlinfer name=last config-file-path={} unique-id=2 process-mode=secondary \
         infer-on-gie-id=1",
        config.display()
    ));
    h.set_src_caps_str(&nvmm_caps(&frame));
    let mut calls = Vec::new();
    let mut faces = Vec::new();
    for frame_num in 0..5 {
        // The astronaut twice: followed by a tracker (id 42), and untracked.
        let batch = Batch::new(1);
        batch.set_source(0, 3, frame_num);
        batch.add_tracked(0, 1, 0, person, 42);
        batch.add_upstream(0, 1, 0, person);
        let before = inferences(&h);
        let surface =
            HostSurface::new(Abi::Ds6, MemType::CudaPinned, 1, vec![frame.clone()], false);
        h.push_and_pull(gst::Buffer::from_mut_slice(surface))
            .unwrap();
        calls.push(inferences(&h) - before);
        let ds = batch.objects(0);
        let faces_under = |parent: *mut NvDsObjectMetaHead| {
            ds.iter()
                .filter(|&&o| unsafe { &*o }.parent == parent as *mut c_void)
                .count()
        };
        faces.push((faces_under(ds[0]), faces_under(ds[1])));
    }
    assert_lock_released();
    // nvinfer's rule for secondary detectors: a tracked object again only when more than
    // secondary-reinfer-interval frames have passed (frames 0 and 3); nothing is attached in
    // between. The untracked twin is looked into on every frame.
    assert_eq!(calls, [2, 1, 1, 2, 1]);
    let found = faces[0].1;
    assert!(found > 0, "BlazeFace finds the astronaut's face");
    assert_eq!(
        faces,
        [
            (found, found),
            (0, found),
            (0, found),
            (found, found),
            (0, found)
        ]
    );
}

/// Waits (a minute at most) until the harness's element named `last` has run `calls`
/// inferences, some of them on a thread of its own.
fn wait_for_inferences(h: &Harness, calls: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while inferences(h) < calls {
        assert!(
            Instant::now() < deadline,
            "{calls} inferences within a minute"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(inferences(h), calls);
}

#[test]
fn in_classifier_async_mode_buffers_go_on_and_results_come_with_later_frames() {
    let _serial = serial();
    init();
    let frame = rgba_frame("dog.jpg");
    let (x, y, w, h) = dog_box_in(&frame);
    let dog_box = [x as f32, y as f32, w as f32, h as f32];
    let secondary = |config: PathBuf| {
        let mut h = Harness::new_parse(&format!(
            "nvtlinfer name=last config-file-path={} unique-id=2 process-mode=secondary \
             infer-on-gie-id=1",
            config.display()
        ));
        h.set_src_caps_str(&nvmm_caps(&frame));
        h
    };
    let push = |h: &mut Harness, batch: &Batch| {
        let surface =
            HostSurface::new(Abi::Ds6, MemType::CudaPinned, 1, vec![frame.clone()], false);
        h.push_and_pull(gst::Buffer::from_mut_slice(surface))
            .unwrap();
        assert_lock_released();
        let ds = batch.objects(0);
        (classifier_results(ds[0]), classifier_results(ds[1]))
    };
    // The dog's label, classified synchronously.
    let batch = Batch::new(1);
    batch.add_upstream(0, 1, 16, dog_box);
    batch.add_upstream(0, 1, 16, dog_box);
    let (label, _) = push(&mut secondary(bundle(MOBILENET).config), &batch);
    assert_eq!(label.len(), 1);

    let mut h = secondary(config_for(
        &bundle(MOBILENET),
        "ds-async",
        "classifier-async-mode=1\nsecondary-reinfer-interval=2",
    ));
    // Per frame: inferences so far, once the worker is done.
    let calls = [1, 1, 1, 2, 2];
    for (frame_num, calls) in calls.into_iter().enumerate() {
        let batch = tracked_dog(frame_num, dog_box, dog_box);
        let (tracked, untracked) = push(&mut h, &batch);
        if frame_num == 0 {
            assert!(
                tracked.is_empty(),
                "the first frame is not held for its result"
            );
        } else {
            assert_eq!(
                tracked, label,
                "frame {frame_num}: the result of an earlier frame"
            );
        }
        assert!(
            untracked.is_empty(),
            "frame {frame_num}: untracked objects are skipped"
        );
        wait_for_inferences(&h, calls);
    }
}

#[test]
fn instance_masks_become_the_objects_mask_params() {
    let _serial = serial();
    let batch = Batch::new(1);
    let (out, _) = run_on_dog_jpg(&format!(
        "nvtlinfer name=last config-file-path={}",
        instance_segmenter("ds-instance-masks").display()
    ));
    assert_lock_released();
    let rois = objects(&out);
    let ds = batch.objects(0);
    assert_eq!((rois.len(), ds.len()), (2, 2));
    for (&obj, roi) in ds.iter().zip(&rois) {
        assert!(near(unsafe { &*obj }, roi.rect));
        let mask = roi.mask.as_ref().expect("the ROI carries the mask");
        // SAFETY: `obj` is an NvDsObjectMeta of the stand-in's DeepStream version.
        let params = unsafe {
            *((obj as *const u8).add(mask_params_offset(DEEPSTREAM_MAJOR))
                as *const NvOsdMaskParams)
        };
        assert_eq!(
            (params.width, params.height, params.size, params.threshold),
            (4, 2, 32, 0.3)
        );
        // SAFETY: `data` holds `size` bytes.
        let data = unsafe { std::slice::from_raw_parts(params.data, 8) };
        assert_eq!(data, mask.data.as_slice());
    }
}

#[test]
fn a_class_bg_color_becomes_the_objects_background_as_nvinfer_writes_it() {
    let _serial = serial();
    let batch = Batch::new(1);
    let (out, _) = run_on_dog_jpg(&format!(
        "nvtlinfer name=last config-file-path={}",
        instance_segmenter_with_class_1_colours("ds-bg-color").display()
    ));
    assert_lock_released();
    assert_eq!(objects(&out).len(), 2);
    let colours: Vec<_> = batch
        .objects(0)
        .iter()
        .map(|&obj| {
            let r = unsafe { &*obj }.rect_params;
            let c = |c: NvOsdColorParams| [c.red, c.green, c.blue, c.alpha];
            (r.has_bg_color, c(r.bg_color), c(r.border_color))
        })
        .collect();
    assert_eq!(
        colours,
        [
            (0, [0.0; 4], [1.0, 0.0, 0.0, 1.0]),
            (1, [0.0, 0.0, 1.0, 0.5], [0.0, 1.0, 0.0, 1.0])
        ],
        "class 0: nvinfer's red border, no background; class 1: the config's colours"
    );
}

#[test]
fn a_primary_classifier_adds_a_full_frame_object_as_nvinfer_does() {
    let _serial = serial();
    let batch = Batch::new(1);
    let frame = rgba_frame("dog.jpg");
    let (width, height) = (frame.width as f32, frame.height as f32);
    let (out, _) = run(
        &format!(
            "nvtlinfer name=last config-file-path={} unique-id=4",
            bundle(MOBILENET).config.display()
        ),
        HostSurface::new(Abi::Ds6, MemType::CudaPinned, 1, vec![frame], false),
    );
    assert_lock_released();
    let frame_roi = objects(&out)
        .into_iter()
        .find(|o| o.roi_type == "frame")
        .expect("the GStreamer full-frame ROI");
    let label = frame_roi.classifications[0].label.clone();
    assert_eq!(frame_description(&out), format!("{label} "));

    let ds = batch.objects(0);
    assert_eq!(ds.len(), 1, "one full-frame object");
    let o = unsafe { &*ds[0] };
    let r = &o.rect_params;
    assert_eq!(
        [r.left, r.top, r.width, r.height],
        [0.0, 0.0, width, height]
    );
    assert_eq!(
        (o.class_id, o.object_id, r.border_width),
        (-1, UNTRACKED_OBJECT_ID, 6)
    );
    assert_eq!(classifier_results(ds[0]), [(4, vec![label.clone()])]);
    assert_eq!(
        classifier_types(ds[0]),
        [None],
        "no classifier-type in the config"
    );
    assert_eq!(
        on_screen(ds[0]).0,
        format!(" {label} "),
        "nvinfer's text: a space, the description (the label and a space)"
    );
    assert_eq!(batch.infer_done(0), 0, "bInferDone is a detector's");
}

/// The `description` of the primary classifier's result on the GStreamer full-frame ROI.
fn frame_description(buffer: &gst::BufferRef) -> String {
    buffer
        .iter_meta::<gst_video::VideoRegionOfInterestMeta>()
        .find(|roi| roi.roi_type() == "frame")
        .and_then(|roi| {
            roi.param("nvtl/classification")
                .and_then(|param| param.get::<String>("description").ok())
        })
        .expect("a full-frame ROI with a described classification")
}

#[test]
fn a_classification_nvinfer_cannot_describe_is_not_attached_to_deepstream_metadata() {
    let _serial = serial();
    // MobileNetV2 without its label file: the result has attributes but no labels, so nvinfer's
    // description is empty and nvinfer attaches nothing.
    let mobilenet = bundle(MOBILENET);
    let config: String = std::fs::read_to_string(&mobilenet.config)
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with("labelfile-path"))
        .map(|line| match line.strip_prefix("onnx-file=") {
            Some(_) => format!("onnx-file={}\n", mobilenet.onnx.display()),
            None => format!("{line}\n"),
        })
        .collect();
    let config = temp_file("undescribed", "config.txt", config.as_bytes());
    let batch = Batch::new(1);
    let (out, calls) = run_on_dog_jpg(&format!(
        "nvtlinfer name=last config-file-path={} unique-id=4",
        config.display()
    ));
    assert_lock_released();
    assert_eq!(calls, 1);
    let frame_roi = objects(&out)
        .into_iter()
        .find(|o| o.roi_type == "frame")
        .expect("the GStreamer full-frame ROI still carries the result");
    assert!(frame_roi.classifications[0].label.starts_with("class"));
    assert_eq!(frame_description(&out), "");
    assert!(
        batch.objects(0).is_empty(),
        "no full-frame NvDsObjectMeta for a result nvinfer would not describe"
    );
}

/// dog.jpg through CenterNet (unique-id 1) on an NVMM buffer, with `batch`'s DeepStream
/// metadata: the output buffer, which carries both forms of every detection, and its caps.
fn detected_in_dog_jpg(batch: &Batch) -> (gst::Buffer, String) {
    batch.carry(true);
    let frame = rgba_frame("dog.jpg");
    let caps = nvmm_caps(&frame);
    let (detected, _) = run(
        &format!(
            "nvtlinfer name=last config-file-path={} unique-id=1",
            bundle(CENTERNET).config.display()
        ),
        HostSurface::new(Abi::Ds6, MemType::CudaPinned, 1, vec![frame], false),
    );
    assert!(objects(&detected).len() > 1, "dog.jpg has several objects");
    assert_eq!(batch.objects(0).len(), objects(&detected).len());
    (detected, caps)
}

/// MobileNetV2 as a secondary classifier (unique-id 2) of the detections of unique-id 1 in
/// `detected`: the output buffer and the inference calls.
fn classify_detections(detected: gst::Buffer, caps: &str) -> (gst::Buffer, u64) {
    let mut h = Harness::new_parse(&format!(
        "nvtlinfer name=last config-file-path={} unique-id=2 process-mode=secondary \
         infer-on-gie-id=1",
        bundle(MOBILENET).config.display()
    ));
    h.set_src_caps_str(caps);
    let out = h.push_and_pull(detected).unwrap();
    assert_lock_released();
    (out, inferences(&h))
}

/// The label unique-id 2 gave each ROI of `buffer`.
fn classifier_labels(buffer: &gst::BufferRef) -> Vec<String> {
    objects(buffer)
        .iter()
        .map(|roi| {
            roi.classifications
                .iter()
                .find(|c| c.unique_id == 2)
                .map(|c| c.label.clone())
                .expect("the ROI is classified")
        })
        .collect()
}

#[test]
fn after_a_tracker_moved_the_boxes_each_object_is_still_classified_once() {
    let _serial = serial();
    init();
    let batch = Batch::new(1);
    let (detected, caps) = detected_in_dog_jpg(&batch);
    let detections = objects(&detected).len();
    // What nvtracker does between the stages: ids, and its own boxes in rect_params.
    for (i, &obj) in batch.objects(0).iter().enumerate() {
        unsafe {
            (*obj).object_id = 100 + i as u64;
            (*obj).rect_params.left += 4.0;
            (*obj).rect_params.top += 3.0;
        }
    }

    let (out, inferences) = classify_detections(detected, &caps);
    assert_eq!(
        inferences, detections as u64,
        "each object once, not once per form"
    );
    for (&obj, label) in batch.objects(0).iter().zip(classifier_labels(&out)) {
        assert_eq!(classifier_results(obj), [(2, vec![label])], "and its twin");
    }
}

#[test]
fn a_tracked_object_is_classified_in_the_tracker_s_box_as_nvinfer_does() {
    let _serial = serial();
    init();
    let batch = Batch::new(1);
    let (detected, caps) = detected_in_dog_jpg(&batch);
    let rois = objects(&detected);
    // Each object classified in its detector box: the buffer seen without its batch meta.
    batch.carry(false);
    let (out, _) = classify_detections(detected.copy(), &caps);
    let in_own_box = classifier_labels(&out);
    let dog = rois
        .iter()
        .position(|o| o.label.as_deref() == Some("dog"))
        .expect("CenterNet finds the dog");
    let moved = (0..rois.len())
        .find(|&i| in_own_box[i] != in_own_box[dog])
        .expect("an object that does not look like the dog");

    // nvtracker moves that object's rect_params onto the dog.
    batch.carry(true);
    let ds_objects = batch.objects(0);
    assert!(near(unsafe { &*ds_objects[moved] }, rois[moved].rect));
    let (dog_object, moved_object) = (ds_objects[dog], ds_objects[moved]);
    unsafe { (*moved_object).rect_params = (*dog_object).rect_params };
    let (out, inferences) = classify_detections(detected, &caps);
    assert_eq!(inferences, rois.len() as u64);
    let labels = classifier_labels(&out);
    assert_eq!(
        labels[moved], in_own_box[dog],
        "cropped where the tracker put it, not where it was detected ({})",
        in_own_box[moved]
    );
    assert_eq!(
        classifier_results(ds_objects[moved]),
        [(2, vec![labels[moved].clone()])]
    );
    for i in (0..rois.len()).filter(|&i| i != moved) {
        assert_eq!(labels[i], in_own_box[i], "object {i} did not move");
    }
}
