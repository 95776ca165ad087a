//! DeepStream metadata (`NvDsBatchMeta`) when DeepStream is installed: `libnvdsgst_meta.so` and
//! `libnvds_meta.so` are opened at run time (never linked), and objects and classifier results
//! are added to the batch's frame metas the way nvinfer adds them. Without the libraries,
//! [`DsMeta::load`] says why and the element keeps to its GStreamer metadata.
//!
//! The struct prefixes written here are mirrored from DeepStream 9.0's `nvdsmeta.h` and
//! `nvll_osd_struct.h` (NVIDIA/DeepStream on GitHub). Only fields that precede
//! `NvOSD_RectParams`'s tail are written on every version; `text_params` (the on-screen label
//! nvdsosd draws) and `obj_label`, whose offsets moved when DeepStream 9.0 added
//! `rotation_angle` to `NvOSD_RectParams`, are written only when `nvds_version()` reports the
//! major version. None of this has run against DeepStream here.

use std::ffi::{c_char, c_int, c_uint, c_void};

use libloading::Library;

/// `NvDsBaseMeta`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NvDsBaseMeta {
    pub batch_meta: *mut c_void,
    pub meta_type: c_int,
    pub u_context: *mut c_void,
    pub copy_func: *mut c_void,
    pub release_func: *mut c_void,
}

/// `GList`.
#[repr(C)]
pub struct GList {
    pub data: *mut c_void,
    pub next: *mut GList,
    pub prev: *mut GList,
}

/// The head of `NvDsBatchMeta` up to `frame_meta_list`.
#[repr(C)]
pub struct NvDsBatchMetaHead {
    pub base_meta: NvDsBaseMeta,
    pub max_frames_in_batch: c_uint,
    pub num_frames_in_batch: c_uint,
    pub pools: [*mut c_void; 6],
    pub frame_meta_list: *mut GList,
}

/// The head of `NvDsFrameMeta` up to `obj_meta_list` (the same in the DeepStream 9.0 header
/// and the 6.x-era one of hiennguyen9874/deepstream-sources).
#[repr(C)]
pub struct NvDsFrameMetaHead {
    pub base_meta: NvDsBaseMeta,
    pub pad_index: c_uint,
    pub batch_id: c_uint,
    pub frame_num: c_int,
    pub buf_pts: u64,
    pub ntp_timestamp: u64,
    pub source_id: c_uint,
    pub num_surfaces_per_frame: c_int,
    pub source_frame_width: c_uint,
    pub source_frame_height: c_uint,
    pub surface_type: c_uint,
    pub surface_index: c_uint,
    pub num_obj_meta: c_uint,
    pub b_infer_done: c_int,
    pub obj_meta_list: *mut GList,
}

/// `NvBbox_Coords` (inside `NvDsComp_BboxInfo`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct NvBboxCoords {
    pub left: f32,
    pub top: f32,
    pub width: f32,
    pub height: f32,
}

/// `NvOSD_ColorParams`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct NvOsdColorParams {
    pub red: f64,
    pub green: f64,
    pub blue: f64,
    pub alpha: f64,
}

/// The part of `NvOSD_RectParams` common to DeepStream 6.x-9.0 (its first 60 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NvOsdRectParamsHead {
    pub left: f32,
    pub top: f32,
    pub width: f32,
    pub height: f32,
    pub border_width: c_uint,
    pub border_color: NvOsdColorParams,
    pub has_bg_color: c_uint,
}

/// The head of `NvDsObjectMeta` up to the start of `rect_params` (identical in 6.x-9.0).
#[repr(C)]
pub struct NvDsObjectMetaHead {
    pub base_meta: NvDsBaseMeta,
    pub parent: *mut c_void,
    pub unique_component_id: c_int,
    pub class_id: c_int,
    pub object_id: u64,
    pub detector_bbox_info: NvBboxCoords,
    pub tracker_bbox_info: NvBboxCoords,
    pub confidence: f32,
    pub tracker_confidence: f32,
    pub rect_params: NvOsdRectParamsHead,
}

/// `MAX_LABEL_SIZE`.
pub const MAX_LABEL_SIZE: usize = 128;
/// `UNTRACKED_OBJECT_ID`.
pub const UNTRACKED_OBJECT_ID: u64 = u64::MAX;

/// `NvOSD_FontParams`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NvOsdFontParams {
    pub font_name: *const c_char,
    pub font_size: c_uint,
    pub font_color: NvOsdColorParams,
}

/// `NvOSD_TextParams` (the same in 6.x-9.0). `display_text` is g_malloc'd: DeepStream g_frees
/// it with the object.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NvOsdTextParams {
    pub display_text: *mut c_char,
    pub x_offset: c_uint,
    pub y_offset: c_uint,
    pub font_params: NvOsdFontParams,
    pub set_bg_clr: c_int,
    pub text_bg_clr: NvOsdColorParams,
}

/// Offset of `text_params` in `NvDsObjectMeta`: rect_params at 104 is 104 bytes on 6.x-8.x
/// (`has_color_info`, `color_id` last) and 112 on 9.0 (`rotation_angle` added), followed by
/// `NvOSD_MaskParams` (24).
pub fn text_params_offset(deepstream_major: u32) -> usize {
    let rect = if deepstream_major >= 9 { 112 } else { 104 };
    104 + rect + 24
}

/// Offset of `obj_label` in `NvDsObjectMeta`, right after `text_params`.
pub fn obj_label_offset(deepstream_major: u32) -> usize {
    text_params_offset(deepstream_major) + std::mem::size_of::<NvOsdTextParams>()
}

/// GLib's allocator, which DeepStream frees `display_text` with.
#[derive(Clone, Copy, Debug)]
pub struct GAlloc {
    pub malloc: unsafe extern "C" fn(usize) -> *mut c_void,
    pub free: unsafe extern "C" fn(*mut c_void),
}

impl GAlloc {
    /// `g_malloc` and `g_free` from the GLib already in the process (GStreamer's).
    pub fn load() -> Result<GAlloc, String> {
        // SAFETY: GLib is loaded by GStreamer already; opening it again runs no initialiser,
        // and the types are GLib's prototypes.
        unsafe {
            let glib = Library::new("libglib-2.0.so.0").map_err(|e| e.to_string())?;
            let sym = |name: &str| format!("libglib-2.0.so.0 has no {name}");
            let alloc = GAlloc {
                malloc: *glib
                    .get::<unsafe extern "C" fn(usize) -> *mut c_void>(b"g_malloc")
                    .map_err(|_| sym("g_malloc"))?,
                free: *glib
                    .get::<unsafe extern "C" fn(*mut c_void)>(b"g_free")
                    .map_err(|_| sym("g_free"))?,
            };
            // GLib stays loaded for the process: its functions must outlive this handle.
            std::mem::forget(glib);
            Ok(alloc)
        }
    }

    /// `text` as a NUL-terminated g_malloc'd string (inner NULs end it).
    unsafe fn strdup(&self, text: &str) -> *mut c_char {
        let bytes = text.as_bytes();
        let bytes = &bytes[..bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len())];
        let dst = (self.malloc)(bytes.len() + 1) as *mut u8;
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len());
        *dst.add(bytes.len()) = 0;
        dst as *mut c_char
    }
}

/// nvinfer's font for object labels.
const LABEL_FONT: &[u8] = b"Serif\0";

/// Writes the on-screen label of a new object as nvinfer does: `label` in white 11-point Serif
/// on black, 10 pixels above the box's top-left corner.
///
/// # Safety
/// `text` must point to an `NvDsObjectMeta`'s `text_params` whose `display_text` is null or
/// g_malloc'd.
pub unsafe fn write_label_text(
    text: *mut NvOsdTextParams,
    alloc: &GAlloc,
    label: &str,
    left: f32,
    top: f32,
) {
    let t = &mut *text;
    if !t.display_text.is_null() {
        (alloc.free)(t.display_text as *mut c_void);
    }
    t.display_text = alloc.strdup(label);
    t.x_offset = left.max(0.0) as c_uint;
    t.y_offset = (top - 10.0).max(0.0) as c_uint;
    t.font_params = NvOsdFontParams {
        font_name: LABEL_FONT.as_ptr() as *const c_char,
        font_size: 11,
        font_color: NvOsdColorParams {
            red: 1.0,
            green: 1.0,
            blue: 1.0,
            alpha: 1.0,
        },
    };
    t.set_bg_clr = 1;
    t.text_bg_clr = NvOsdColorParams {
        red: 0.0,
        green: 0.0,
        blue: 0.0,
        alpha: 1.0,
    };
}

/// Appends classifier labels to an object's on-screen text, as nvinfer's secondary classifiers
/// do (`"car" + " " + "red"`); an object without text gets none.
///
/// # Safety
/// As [`write_label_text`].
pub unsafe fn append_label_text(text: *mut NvOsdTextParams, alloc: &GAlloc, labels: &str) {
    let t = &mut *text;
    if t.display_text.is_null() || labels.is_empty() {
        return;
    }
    let old = std::ffi::CStr::from_ptr(t.display_text).to_string_lossy();
    let joined = alloc.strdup(&format!("{old} {labels}"));
    (alloc.free)(t.display_text as *mut c_void);
    t.display_text = joined;
}

/// `NvDsClassifierMeta`.
#[repr(C)]
pub struct NvDsClassifierMeta {
    pub base_meta: NvDsBaseMeta,
    pub num_labels: c_uint,
    pub unique_component_id: c_int,
    pub label_info_list: *mut GList,
    pub classifier_type: *const c_char,
}

/// `NvDsLabelInfo`.
#[repr(C)]
pub struct NvDsLabelInfo {
    pub base_meta: NvDsBaseMeta,
    pub num_classes: c_uint,
    pub result_label: [c_char; MAX_LABEL_SIZE],
    pub p_result_label: *mut c_char,
    pub result_class_id: c_uint,
    pub label_id: c_uint,
    pub result_prob: f32,
}

type GetBatchMeta = unsafe extern "C" fn(*mut c_void) -> *mut c_void;
type Acquire = unsafe extern "C" fn(*mut c_void) -> *mut c_void;
type AddObject = unsafe extern "C" fn(*mut c_void, *mut c_void, *mut c_void);
type AddChild = unsafe extern "C" fn(*mut c_void, *mut c_void);
type Lock = unsafe extern "C" fn(*mut c_void);
type Version = unsafe extern "C" fn(*mut c_uint, *mut c_uint);

/// An object to add: frame pixels, as nvinfer writes them.
#[derive(Clone, Debug, PartialEq)]
pub struct DsObject {
    pub unique_id: i32,
    pub class_id: i32,
    pub confidence: f32,
    pub left: f32,
    pub top: f32,
    pub width: f32,
    pub height: f32,
    pub label: Option<String>,
    pub border_color: [f64; 4],
    /// The `NvDsObjectMeta *` a secondary detector found this object in, or null.
    pub parent: *mut c_void,
}

/// One classifier attribute to add to an object.
#[derive(Clone, Debug, PartialEq)]
pub struct DsLabel {
    pub attribute_index: u32,
    pub class_id: u32,
    pub probability: f32,
    pub label: Option<String>,
}

/// An object already in the batch meta (from nvinfer or another nvtlinfer upstream).
#[derive(Clone, Debug, PartialEq)]
pub struct DsUpstream {
    /// The `NvDsObjectMeta *`, valid while the buffer is.
    pub meta: *mut c_void,
    pub unique_component_id: i32,
    pub class_id: i32,
    /// `rect_params`: left, top, width, height in frame pixels.
    pub rect: [f32; 4],
}

/// The DeepStream metadata libraries, opened at run time.
pub struct DsMeta {
    get_batch_meta: GetBatchMeta,
    acquire_obj: Acquire,
    add_obj: AddObject,
    acquire_classifier: Acquire,
    add_classifier: AddChild,
    acquire_label: Acquire,
    add_label: AddChild,
    lock: Lock,
    unlock: Lock,
    /// DeepStream major version from `nvds_version()`, when exported.
    pub major: Option<u32>,
    /// For the on-screen text, which is written only when `major` is known.
    alloc: Option<GAlloc>,
    _libraries: Vec<Library>,
}

/// Where DeepStream installs its libraries, tried after the loader's own search path.
const DEEPSTREAM_LIB: &str = "/opt/nvidia/deepstream/deepstream/lib";

/// Opens a DeepStream (or JetPack) library from the loader's path, else DeepStream's folder.
pub(super) fn open(name: &str) -> Result<Library, String> {
    // SAFETY: loading DeepStream's libraries runs their initialisers, which register GLib types
    // and set up their allocators; nothing else in this process depends on them.
    unsafe { Library::new(name) }.or_else(|first| {
        unsafe { Library::new(format!("{DEEPSTREAM_LIB}/{name}")) }
            .map_err(|_| format!("{name}: {first}"))
    })
}

impl DsMeta {
    /// Opens libnvdsgst_meta.so and libnvds_meta.so, or says why not.
    pub fn load() -> Result<DsMeta, String> {
        let gst_meta = open("libnvdsgst_meta.so")?;
        let meta = open("libnvds_meta.so")?;
        // SAFETY: the symbol types are the C prototypes of nvdsmeta.h / gstnvdsmeta.h.
        unsafe {
            fn sym<T: Copy>(libs: &[&Library], name: &str) -> Result<T, String> {
                for lib in libs {
                    if let Ok(symbol) = unsafe { lib.get::<T>(name.as_bytes()) } {
                        return Ok(*symbol);
                    }
                }
                Err(format!("DeepStream metadata libraries lack {name}"))
            }
            let libs = [&gst_meta, &meta];
            let version: Option<Version> = sym(&libs, "nvds_version").ok();
            let major = version.map(|f| {
                let (mut major, mut minor) = (0, 0);
                f(&mut major, &mut minor);
                major
            });
            Ok(DsMeta {
                get_batch_meta: sym(&libs, "gst_buffer_get_nvds_batch_meta")?,
                acquire_obj: sym(&libs, "nvds_acquire_obj_meta_from_pool")?,
                add_obj: sym(&libs, "nvds_add_obj_meta_to_frame")?,
                acquire_classifier: sym(&libs, "nvds_acquire_classifier_meta_from_pool")?,
                add_classifier: sym(&libs, "nvds_add_classifier_meta_to_object")?,
                acquire_label: sym(&libs, "nvds_acquire_label_info_meta_from_pool")?,
                add_label: sym(&libs, "nvds_add_label_info_meta_to_classifier")?,
                lock: sym(&libs, "nvds_acquire_meta_lock")?,
                unlock: sym(&libs, "nvds_release_meta_lock")?,
                major,
                alloc: GAlloc::load().ok(),
                _libraries: vec![gst_meta, meta],
            })
        }
    }

    /// The `NvDsBatchMeta` of a GstBuffer, if it carries one.
    ///
    /// # Safety
    /// `buffer` must be a valid `GstBuffer *`.
    pub unsafe fn batch_meta(&self, buffer: *mut c_void) -> Option<*mut c_void> {
        let batch = (self.get_batch_meta)(buffer);
        (!batch.is_null()).then_some(batch)
    }

    /// Adds a detector's `objects` (each with its classifier labels) to the frame meta with
    /// `batch_id` and marks the frame inferred (`bInferDone`, which nvtracker reads), under the
    /// batch's meta lock, as nvinfer does. Returns how many objects were added (0 when no frame
    /// meta has that batch id).
    ///
    /// # Safety
    /// `batch` must come from [`DsMeta::batch_meta`] on a buffer the caller may write.
    pub unsafe fn add_objects(
        &self,
        batch: *mut c_void,
        batch_id: u32,
        objects: &[(DsObject, Vec<DsLabel>)],
    ) -> usize {
        (self.lock)(batch);
        let frame = self.frame(batch, batch_id);
        let mut added = 0;
        if !frame.is_null() {
            (*(frame as *mut NvDsFrameMetaHead)).b_infer_done = 1;
            for (object, labels) in objects {
                let obj = (self.acquire_obj)(batch);
                if obj.is_null() {
                    break;
                }
                self.fill_object(obj, object);
                if !labels.is_empty() {
                    self.add_labels(batch, obj, object.unique_id, labels);
                    self.append_text(obj, labels);
                }
                (self.add_obj)(frame, obj, object.parent);
                added += 1;
            }
        }
        (self.unlock)(batch);
        added
    }

    /// The frame meta with `batch_id` (caller holds the meta lock).
    unsafe fn frame(&self, batch: *mut c_void, batch_id: u32) -> *mut c_void {
        let head = &*(batch as *const NvDsBatchMetaHead);
        let mut node = head.frame_meta_list;
        while !node.is_null() {
            let meta = (*node).data;
            if !meta.is_null() && (*(meta as *const NvDsFrameMetaHead)).batch_id == batch_id {
                return meta;
            }
            node = (*node).next;
        }
        std::ptr::null_mut()
    }

    /// The objects of frame `batch_id`, for a secondary stage.
    ///
    /// # Safety
    /// As [`DsMeta::add_objects`].
    pub unsafe fn objects(&self, batch: *mut c_void, batch_id: u32) -> Vec<DsUpstream> {
        (self.lock)(batch);
        let frame = self.frame(batch, batch_id);
        let mut out = Vec::new();
        if !frame.is_null() {
            let mut node = (*(frame as *const NvDsFrameMetaHead)).obj_meta_list;
            while !node.is_null() {
                let meta = (*node).data;
                if !meta.is_null() {
                    let head = &*(meta as *const NvDsObjectMetaHead);
                    let r = &head.rect_params;
                    out.push(DsUpstream {
                        meta,
                        unique_component_id: head.unique_component_id,
                        class_id: head.class_id,
                        rect: [r.left, r.top, r.width, r.height],
                    });
                }
                node = (*node).next;
            }
        }
        (self.unlock)(batch);
        out
    }

    /// Adds classifier results to an object from [`DsMeta::objects`], as nvinfer's secondary
    /// classifiers do (one `NvDsClassifierMeta` with one `NvDsLabelInfo` per attribute).
    ///
    /// # Safety
    /// `batch` and `object` as returned by [`DsMeta::batch_meta`] and [`DsMeta::objects`] for a
    /// buffer the caller may write.
    pub unsafe fn classify(
        &self,
        batch: *mut c_void,
        object: *mut c_void,
        unique_id: i32,
        labels: &[DsLabel],
    ) {
        (self.lock)(batch);
        self.add_labels(batch, object, unique_id, labels);
        self.append_text(object, labels);
        (self.unlock)(batch);
    }

    unsafe fn fill_object(&self, obj: *mut c_void, object: &DsObject) {
        let head = &mut *(obj as *mut NvDsObjectMetaHead);
        head.unique_component_id = object.unique_id;
        head.class_id = object.class_id;
        head.object_id = UNTRACKED_OBJECT_ID;
        head.confidence = object.confidence;
        let coords = NvBboxCoords {
            left: object.left,
            top: object.top,
            width: object.width,
            height: object.height,
        };
        head.detector_bbox_info = coords;
        head.rect_params.left = object.left;
        head.rect_params.top = object.top;
        head.rect_params.width = object.width;
        head.rect_params.height = object.height;
        head.rect_params.border_width = 3;
        let [red, green, blue, alpha] = object.border_color;
        head.rect_params.border_color = NvOsdColorParams {
            red,
            green,
            blue,
            alpha,
        };
        head.rect_params.has_bg_color = 0;
        if let (Some(major), Some(label)) = (self.major, &object.label) {
            let dst = (obj as *mut u8).add(obj_label_offset(major)) as *mut c_char;
            copy_label(dst, label);
            if let Some(alloc) = &self.alloc {
                let text = (obj as *mut u8).add(text_params_offset(major)) as *mut NvOsdTextParams;
                write_label_text(text, alloc, label, object.left, object.top);
            }
        }
    }

    /// Adds the labels to the object's on-screen text (caller holds the meta lock).
    unsafe fn append_text(&self, obj: *mut c_void, labels: &[DsLabel]) {
        let (Some(major), Some(alloc)) = (self.major, &self.alloc) else {
            return;
        };
        let joined: Vec<&str> = labels
            .iter()
            .filter_map(|l| l.label.as_deref())
            .filter(|l| !l.is_empty())
            .collect();
        let text = (obj as *mut u8).add(text_params_offset(major)) as *mut NvOsdTextParams;
        append_label_text(text, alloc, &joined.join(" "));
    }

    unsafe fn add_labels(
        &self,
        batch: *mut c_void,
        obj: *mut c_void,
        unique_id: i32,
        labels: &[DsLabel],
    ) {
        let classifier = (self.acquire_classifier)(batch) as *mut NvDsClassifierMeta;
        if classifier.is_null() {
            return;
        }
        (*classifier).num_labels = labels.len() as c_uint;
        (*classifier).unique_component_id = unique_id;
        for label in labels {
            let info = (self.acquire_label)(batch) as *mut NvDsLabelInfo;
            if info.is_null() {
                break;
            }
            (*info).result_class_id = label.class_id;
            (*info).label_id = label.attribute_index;
            (*info).result_prob = label.probability;
            (*info).p_result_label = std::ptr::null_mut();
            copy_label(
                (*info).result_label.as_mut_ptr(),
                label.label.as_deref().unwrap_or(""),
            );
            (self.add_label)(classifier as *mut c_void, info as *mut c_void);
        }
        (self.add_classifier)(obj, classifier as *mut c_void);
    }
}

/// Writes `text` NUL-terminated into a `MAX_LABEL_SIZE` buffer, truncated.
unsafe fn copy_label(dst: *mut c_char, text: &str) {
    let bytes = &text.as_bytes()[..text.len().min(MAX_LABEL_SIZE - 1)];
    std::ptr::copy_nonoverlapping(bytes.as_ptr() as *const c_char, dst, bytes.len());
    *dst.add(bytes.len()) = 0;
}

#[cfg(all(test, target_pointer_width = "64"))]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn struct_prefixes_follow_the_deepstream_9_headers() {
        assert_eq!(size_of::<NvDsBaseMeta>(), 40);
        assert_eq!(offset_of!(NvDsBatchMetaHead, num_frames_in_batch), 44);
        assert_eq!(offset_of!(NvDsBatchMetaHead, frame_meta_list), 96);
        assert_eq!(offset_of!(NvDsFrameMetaHead, batch_id), 44);
        assert_eq!(offset_of!(NvDsFrameMetaHead, buf_pts), 56);
        assert_eq!(offset_of!(NvDsFrameMetaHead, num_obj_meta), 96);
        assert_eq!(offset_of!(NvDsFrameMetaHead, obj_meta_list), 104);
        assert_eq!(offset_of!(NvDsObjectMetaHead, unique_component_id), 48);
        assert_eq!(offset_of!(NvDsObjectMetaHead, object_id), 56);
        assert_eq!(offset_of!(NvDsObjectMetaHead, detector_bbox_info), 64);
        assert_eq!(offset_of!(NvDsObjectMetaHead, confidence), 96);
        assert_eq!(offset_of!(NvDsObjectMetaHead, rect_params), 104);
        assert_eq!(offset_of!(NvOsdRectParamsHead, border_color), 24);
        assert_eq!(offset_of!(NvOsdRectParamsHead, has_bg_color), 56);
        assert_eq!(obj_label_offset(9), 344);
        assert_eq!(obj_label_offset(7), 336);
        assert_eq!(text_params_offset(9), 240);
        assert_eq!(text_params_offset(8), 232);
        assert_eq!(size_of::<NvOsdTextParams>(), 104);
        assert_eq!(offset_of!(NvOsdTextParams, x_offset), 8);
        assert_eq!(offset_of!(NvOsdTextParams, font_params), 16);
        assert_eq!(offset_of!(NvOsdFontParams, font_size), 8);
        assert_eq!(offset_of!(NvOsdFontParams, font_color), 16);
        assert_eq!(offset_of!(NvOsdTextParams, set_bg_clr), 64);
        assert_eq!(offset_of!(NvOsdTextParams, text_bg_clr), 72);
        assert_eq!(size_of::<NvDsClassifierMeta>(), 64);
        assert_eq!(offset_of!(NvDsLabelInfo, result_label), 44);
        assert_eq!(offset_of!(NvDsLabelInfo, p_result_label), 176);
        assert_eq!(offset_of!(NvDsLabelInfo, result_prob), 192);
    }

    #[test]
    fn without_deepstream_loading_fails_with_the_library_name() {
        if std::path::Path::new(DEEPSTREAM_LIB).exists() {
            eprintln!("DeepStream is installed here; the absent-library path is not checked");
            return;
        }
        let err = DsMeta::load().err().expect("no DeepStream on this machine");
        assert!(err.contains("libnvdsgst_meta.so"), "{err}");
    }

    #[test]
    fn labels_are_truncated_and_terminated() {
        let mut buf = [1 as c_char; MAX_LABEL_SIZE];
        unsafe { copy_label(buf.as_mut_ptr(), &"x".repeat(300)) };
        assert_eq!(buf[MAX_LABEL_SIZE - 1], 0);
        assert_eq!(buf[0], b'x' as c_char);
        unsafe { copy_label(buf.as_mut_ptr(), "car") };
        assert_eq!(
            &buf[..4],
            &[b'c' as c_char, b'a' as c_char, b'r' as c_char, 0]
        );
    }

    #[test]
    fn on_screen_text_is_written_and_extended_with_glib_strings() {
        let alloc = GAlloc::load().expect("GLib is installed with GStreamer");
        // SAFETY: all-zero is a valid NvOSD_TextParams (null text).
        let mut text: NvOsdTextParams = unsafe { std::mem::zeroed() };
        let read = |t: &NvOsdTextParams| {
            unsafe { std::ffi::CStr::from_ptr(t.display_text) }
                .to_string_lossy()
                .into_owned()
        };
        unsafe {
            append_label_text(&mut text, &alloc, "red");
            assert!(text.display_text.is_null(), "no text, nothing to extend");
            write_label_text(&mut text, &alloc, "car", 40.5, 4.0);
            assert_eq!(read(&text), "car");
            assert_eq!((text.x_offset, text.y_offset), (40, 0));
            assert_eq!(text.font_params.font_size, 11);
            assert_eq!(
                std::ffi::CStr::from_ptr(text.font_params.font_name).to_bytes(),
                b"Serif"
            );
            assert_eq!((text.set_bg_clr, text.text_bg_clr.alpha), (1, 1.0));
            append_label_text(&mut text, &alloc, "red sedan");
            assert_eq!(read(&text), "car red sedan");
            write_label_text(&mut text, &alloc, "person", 10.0, 50.0);
            assert_eq!((read(&text).as_str(), text.y_offset), ("person", 40));
            (alloc.free)(text.display_text as *mut c_void);
        }
    }
}
