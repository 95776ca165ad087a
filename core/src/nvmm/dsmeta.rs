//! DeepStream metadata (`NvDsBatchMeta`) when DeepStream is installed: `libnvdsgst_meta.so` and
//! `libnvds_meta.so` are opened at run time (never linked), and objects and classifier results
//! are added to the batch's frame metas the way nvinfer adds them. Without the libraries,
//! [`DsMeta::load`] says why and the element keeps to its GStreamer metadata.
//!
//! The struct prefixes written here are mirrored from DeepStream 9.0's `nvdsmeta.h` and
//! `nvll_osd_struct.h` (NVIDIA/DeepStream on GitHub). Only fields that precede
//! `NvOSD_RectParams`'s tail are written on every version; `text_params` (the on-screen label
//! nvdsosd draws), `mask_params` and `obj_label`, whose offsets moved when DeepStream 9.0 added
//! `rotation_angle` to `NvOSD_RectParams`, are written only when `nvds_version()` reports the
//! major version. None of this has run against DeepStream here.

use std::ffi::{c_char, c_int, c_uint, c_void};

use libloading::Library;

use crate::ClassifierOutput;

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

/// The head of `NvDsFrameMeta` up to `frame_user_meta_list` (the same in the DeepStream 9.0
/// header and the 6.x-era one of hiennguyen9874/deepstream-sources).
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
    pub display_meta_list: *mut GList,
    pub frame_user_meta_list: *mut GList,
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

impl From<[f64; 4]> for NvOsdColorParams {
    /// RGBA, each 0..1.
    fn from([red, green, blue, alpha]: [f64; 4]) -> Self {
        NvOsdColorParams {
            red,
            green,
            blue,
            alpha,
        }
    }
}

/// The part of `NvOSD_RectParams` common to DeepStream 6.x-9.0 (its first 96 bytes; the colour
/// info and, from 9.0, `rotation_angle` follow).
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
    pub reserved: c_uint,
    pub bg_color: NvOsdColorParams,
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

/// `NvOSD_MaskParams` (the same in 6.x-9.0). `data` is g_malloc'd (nvinfer copies the parser's
/// mask into it): DeepStream frees it with the object.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NvOsdMaskParams {
    pub data: *mut f32,
    /// In bytes.
    pub size: c_uint,
    pub threshold: f32,
    pub width: c_uint,
    pub height: c_uint,
}

/// Offset of `mask_params` in `NvDsObjectMeta`, right after `rect_params` at 104, which is 104
/// bytes on 6.x-8.x (`has_color_info`, `color_id` last) and 112 on 9.0 (`rotation_angle` added).
pub fn mask_params_offset(deepstream_major: u32) -> usize {
    let rect = if deepstream_major >= 9 { 112 } else { 104 };
    104 + rect
}

/// Offset of `text_params` in `NvDsObjectMeta`, right after `mask_params`.
pub fn text_params_offset(deepstream_major: u32) -> usize {
    mask_params_offset(deepstream_major) + std::mem::size_of::<NvOsdMaskParams>()
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
        font_color: [1.0, 1.0, 1.0, 1.0].into(),
    };
    t.set_bg_clr = 1;
    t.text_bg_clr = [0.0, 0.0, 0.0, 1.0].into();
}

/// Appends a classifier's description to an object's on-screen text as nvinfer does
/// (`"car" + " " + "red "`); an object without text gets nvinfer's label text (see
/// [`write_label_text`]) at (`left`, `top`), holding `" "` and the description.
///
/// # Safety
/// As [`write_label_text`].
pub unsafe fn append_label_text(
    text: *mut NvOsdTextParams,
    alloc: &GAlloc,
    description: &str,
    left: f32,
    top: f32,
) {
    if description.is_empty() {
        return;
    }
    let t = &mut *text;
    if t.display_text.is_null() {
        write_label_text(text, alloc, "", left, top);
    }
    let old = std::ffi::CStr::from_ptr(t.display_text).to_string_lossy();
    let joined = alloc.strdup(&format!("{old} {description}"));
    (alloc.free)(t.display_text as *mut c_void);
    t.display_text = joined;
}

/// Whether nvinfer attaches a classifier's `output` to DeepStream metadata: only when it has
/// attributes and a description (a result without labels, or whose custom parser left the
/// description empty, is not attached).
pub fn nvinfer_attaches(output: &ClassifierOutput) -> bool {
    !output.attributes.is_empty() && !output.description.is_empty()
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

/// `NvDsUserMeta`.
#[repr(C)]
pub struct NvDsUserMeta {
    pub base_meta: NvDsBaseMeta,
    pub user_meta_data: *mut c_void,
}

impl NvDsUserMeta {
    /// A user meta of `meta_type` holding `data`, in no list and with no copy or release
    /// function.
    pub fn detached(batch: *mut c_void, meta_type: c_int, data: *mut c_void) -> NvDsUserMeta {
        NvDsUserMeta {
            base_meta: NvDsBaseMeta {
                batch_meta: batch,
                meta_type,
                u_context: std::ptr::null_mut(),
                copy_func: std::ptr::null_mut(),
                release_func: std::ptr::null_mut(),
            },
            user_meta_data: data,
        }
    }
}

/// `NVDSINFER_TENSOR_OUTPUT_META` (`NvDsMetaType`).
pub const NVDSINFER_TENSOR_OUTPUT_META: c_int = 12;
/// `NVDSINFER_SEGMENTATION_META`.
pub const NVDSINFER_SEGMENTATION_META: c_int = 13;
/// `NVDSINFER_MAX_DIMS`.
pub const NVDSINFER_MAX_DIMS: usize = 8;

/// `NvDsInferDims`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct NvDsInferDims {
    pub num_dims: c_uint,
    pub d: [c_uint; NVDSINFER_MAX_DIMS],
    pub num_elements: c_uint,
}

/// `NvDsInferLayerInfo` (`dataType` FLOAT = 0 is the only type written here).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NvDsInferLayerInfo {
    pub data_type: c_int,
    pub infer_dims: NvDsInferDims,
    pub binding_index: c_int,
    pub layer_name: *const c_char,
    pub buffer: *mut c_void,
    pub is_input: c_int,
}

impl NvDsInferLayerInfo {
    /// Output layer `index` named `name`: `len` FP32 values at `buffer`, `dims` without the
    /// batch (at most [`NVDSINFER_MAX_DIMS`] kept).
    pub fn fp32_output(
        index: usize,
        name: &std::ffi::CStr,
        dims: &[usize],
        buffer: *const f32,
        len: usize,
    ) -> NvDsInferLayerInfo {
        let mut infer_dims = NvDsInferDims {
            num_dims: dims.len().min(NVDSINFER_MAX_DIMS) as c_uint,
            num_elements: len as c_uint,
            ..Default::default()
        };
        for (d, &n) in infer_dims.d.iter_mut().zip(dims) {
            *d = n as c_uint;
        }
        NvDsInferLayerInfo {
            data_type: 0,
            infer_dims,
            binding_index: index as c_int,
            layer_name: name.as_ptr(),
            buffer: buffer as *mut c_void,
            is_input: 0,
        }
    }
}

/// A layer name as C wants it (a NUL inside the name is dropped).
pub fn layer_name(name: &str) -> std::ffi::CString {
    std::ffi::CString::new(name.replace('\0', "")).unwrap_or_default()
}

/// `NvDsInferNetworkInfo`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct NvDsInferNetworkInfo {
    pub width: c_uint,
    pub height: c_uint,
    pub channels: c_uint,
}

/// `NvDsInferTensorMeta` (gstnvdsinfer.h).
#[repr(C)]
#[derive(Debug)]
pub struct NvDsInferTensorMeta {
    pub unique_id: c_uint,
    pub num_output_layers: c_uint,
    pub output_layers_info: *mut NvDsInferLayerInfo,
    pub out_buf_ptrs_host: *mut *mut c_void,
    pub out_buf_ptrs_dev: *mut *mut c_void,
    pub gpu_id: c_int,
    pub priv_data: *mut c_void,
    pub network_info: NvDsInferNetworkInfo,
    pub maintain_aspect_ratio: c_int,
}

/// `NvDsInferSegmentationMeta` (gstnvdsinfer.h).
#[repr(C)]
#[derive(Debug)]
pub struct NvDsInferSegmentationMeta {
    pub classes: c_uint,
    pub width: c_uint,
    pub height: c_uint,
    pub class_map: *mut c_int,
    pub class_probabilities_map: *mut f32,
    pub priv_data: *mut c_void,
    pub unique_id: c_int,
}

/// What nvinfer's `NvDsInferTensorMeta` describes: one frame's or object's raw outputs.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorOutputs {
    pub unique_id: u32,
    pub gpu_id: i32,
    /// Network width, height, channels.
    pub network: [u32; 3],
    pub maintain_aspect_ratio: bool,
    /// Per output layer: name, dims without the batch, values.
    pub layers: Vec<(String, Vec<usize>, Vec<f32>)>,
}

/// An `NvDsInferTensorMeta` and the memory its pointers point into; `user_meta_data` points at
/// `meta`, the first field, and DeepStream frees it through [`release_tensor_meta`].
#[repr(C)]
struct TensorMetaBlock {
    meta: NvDsInferTensorMeta,
    /// Zeroes for fields a later DeepStream may append to the struct.
    _appended: [u64; 8],
    layers: Vec<NvDsInferLayerInfo>,
    host: Vec<*mut c_void>,
    device: Vec<*mut c_void>,
    names: Vec<std::ffi::CString>,
    outputs: TensorOutputs,
}

impl TensorMetaBlock {
    fn new(mut outputs: TensorOutputs) -> Box<TensorMetaBlock> {
        let names: Vec<std::ffi::CString> = outputs
            .layers
            .iter()
            .map(|(name, _, _)| layer_name(name))
            .collect();
        let host: Vec<*mut c_void> = outputs
            .layers
            .iter_mut()
            .map(|(_, _, data)| data.as_mut_ptr() as *mut c_void)
            .collect();
        let layers = outputs
            .layers
            .iter()
            .zip(&names)
            .enumerate()
            .map(|(index, ((_, dims, data), name))| {
                NvDsInferLayerInfo::fp32_output(index, name, dims, data.as_ptr(), data.len())
            })
            .collect::<Vec<_>>();
        let mut block = Box::new(TensorMetaBlock {
            meta: NvDsInferTensorMeta {
                unique_id: outputs.unique_id,
                num_output_layers: layers.len() as c_uint,
                output_layers_info: std::ptr::null_mut(),
                out_buf_ptrs_host: std::ptr::null_mut(),
                out_buf_ptrs_dev: std::ptr::null_mut(),
                gpu_id: outputs.gpu_id,
                priv_data: std::ptr::null_mut(),
                network_info: NvDsInferNetworkInfo {
                    width: outputs.network[0],
                    height: outputs.network[1],
                    channels: outputs.network[2],
                },
                maintain_aspect_ratio: outputs.maintain_aspect_ratio as c_int,
            },
            _appended: [0; 8],
            device: vec![std::ptr::null_mut(); layers.len()],
            layers,
            host,
            names,
            outputs,
        });
        block.meta.output_layers_info = block.layers.as_mut_ptr();
        block.meta.out_buf_ptrs_host = block.host.as_mut_ptr();
        block.meta.out_buf_ptrs_dev = block.device.as_mut_ptr();
        block
    }
}

/// An `NvDsInferSegmentationMeta` and the maps it points to.
#[repr(C)]
struct SegmentationMetaBlock {
    meta: NvDsInferSegmentationMeta,
    class_map: Vec<c_int>,
    probabilities: Vec<f32>,
}

impl SegmentationMetaBlock {
    fn new(unique_id: i32, map: &crate::SegmentationMap) -> Box<SegmentationMetaBlock> {
        let mut block = Box::new(SegmentationMetaBlock {
            meta: NvDsInferSegmentationMeta {
                classes: map.num_classes as c_uint,
                width: map.width as c_uint,
                height: map.height as c_uint,
                class_map: std::ptr::null_mut(),
                class_probabilities_map: std::ptr::null_mut(),
                priv_data: std::ptr::null_mut(),
                unique_id,
            },
            class_map: map.class_map.clone(),
            probabilities: map.class_probabilities.clone(),
        });
        block.meta.class_map = block.class_map.as_mut_ptr();
        block.meta.class_probabilities_map = block.probabilities.as_mut_ptr();
        block
    }

    fn map(&self) -> crate::SegmentationMap {
        crate::SegmentationMap {
            width: self.meta.width as usize,
            height: self.meta.height as usize,
            num_classes: self.meta.classes as usize,
            class_map: self.class_map.clone(),
            class_probabilities: self.probabilities.clone(),
        }
    }
}

/// `NvDsMetaCopyFunc` of nvtlinfer's tensor meta: `data` is the source `NvDsUserMeta`; returns
/// the copy's `user_meta_data`.
unsafe extern "C" fn copy_tensor_meta(data: *mut c_void, _user_data: *mut c_void) -> *mut c_void {
    let source = &*((*(data as *const NvDsUserMeta)).user_meta_data as *const TensorMetaBlock);
    Box::into_raw(TensorMetaBlock::new(source.outputs.clone())) as *mut c_void
}

/// `NvDsMetaReleaseFunc` of nvtlinfer's tensor meta.
unsafe extern "C" fn release_tensor_meta(data: *mut c_void, _user_data: *mut c_void) {
    let user_meta = &mut *(data as *mut NvDsUserMeta);
    if !user_meta.user_meta_data.is_null() {
        drop(Box::from_raw(
            user_meta.user_meta_data as *mut TensorMetaBlock,
        ));
        user_meta.user_meta_data = std::ptr::null_mut();
    }
}

unsafe extern "C" fn copy_segmentation_meta(
    data: *mut c_void,
    _user_data: *mut c_void,
) -> *mut c_void {
    let source =
        &*((*(data as *const NvDsUserMeta)).user_meta_data as *const SegmentationMetaBlock);
    Box::into_raw(SegmentationMetaBlock::new(
        source.meta.unique_id,
        &source.map(),
    )) as *mut c_void
}

unsafe extern "C" fn release_segmentation_meta(data: *mut c_void, _user_data: *mut c_void) {
    let user_meta = &mut *(data as *mut NvDsUserMeta);
    if !user_meta.user_meta_data.is_null() {
        drop(Box::from_raw(
            user_meta.user_meta_data as *mut SegmentationMetaBlock,
        ));
        user_meta.user_meta_data = std::ptr::null_mut();
    }
}

/// A user meta nvtlinfer attaches the way nvinfer does.
pub enum DsUserMeta<'a> {
    /// `NVDSINFER_TENSOR_OUTPUT_META` (output-tensor-meta=true).
    Tensors(TensorOutputs),
    /// `NVDSINFER_SEGMENTATION_META`.
    Segmentation {
        unique_id: i32,
        map: &'a crate::SegmentationMap,
    },
}

type CopyFunc = unsafe extern "C" fn(*mut c_void, *mut c_void) -> *mut c_void;
type ReleaseFunc = unsafe extern "C" fn(*mut c_void, *mut c_void);

impl DsUserMeta<'_> {
    /// (meta type, `user_meta_data`, copy, release): the data is owned by the release function.
    fn into_raw(self) -> (c_int, *mut c_void, CopyFunc, ReleaseFunc) {
        match self {
            DsUserMeta::Tensors(outputs) => (
                NVDSINFER_TENSOR_OUTPUT_META,
                Box::into_raw(TensorMetaBlock::new(outputs)) as *mut c_void,
                copy_tensor_meta,
                release_tensor_meta,
            ),
            DsUserMeta::Segmentation { unique_id, map } => (
                NVDSINFER_SEGMENTATION_META,
                Box::into_raw(SegmentationMetaBlock::new(unique_id, map)) as *mut c_void,
                copy_segmentation_meta,
                release_segmentation_meta,
            ),
        }
    }
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
    /// The class's `bg-color`, which nvdsosd fills the box with.
    pub bg_color: Option<[f64; 4]>,
    /// nvinfer draws detections 3 px wide, the full-frame object of a primary classifier 6.
    pub border_width: u32,
    /// The `NvDsObjectMeta *` a secondary detector found this object in, or null.
    pub parent: *mut c_void,
    /// Its instance mask (network-type=3 with output-instance-mask).
    pub mask: Option<crate::InstanceMask>,
}

/// An object already in the batch meta (from nvinfer or another nvtlinfer upstream).
#[derive(Clone, Debug, PartialEq)]
pub struct DsUpstream {
    /// The `NvDsObjectMeta *`, valid while the buffer is.
    pub meta: *mut c_void,
    pub unique_component_id: i32,
    pub class_id: i32,
    /// The tracker's id, or [`UNTRACKED_OBJECT_ID`].
    pub object_id: u64,
    /// `rect_params`: left, top, width, height in frame pixels (a tracker's box once one ran).
    pub rect: [f32; 4],
    /// `detector_bbox_info`: the detector's own box, which trackers leave alone.
    pub detector_rect: [f32; 4],
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
    acquire_user: Acquire,
    add_user_to_frame: AddChild,
    add_user_to_obj: AddChild,
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
                acquire_user: sym(&libs, "nvds_acquire_user_meta_from_pool")?,
                add_user_to_frame: sym(&libs, "nvds_add_user_meta_to_frame")?,
                add_user_to_obj: sym(&libs, "nvds_add_user_meta_to_obj")?,
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

    /// Adds `objects` (each with its classifier result) to the frame meta with `batch_id`, and
    /// for a detector's (`detector`) marks the frame inferred (`bInferDone`, which nvtracker
    /// reads), under the batch's meta lock, as nvinfer does. Returns how many objects were
    /// added (0 when no frame meta has that batch id).
    ///
    /// # Safety
    /// `batch` must come from [`DsMeta::batch_meta`] on a buffer the caller may write.
    pub unsafe fn add_objects(
        &self,
        batch: *mut c_void,
        batch_id: u32,
        objects: &[(DsObject, Option<ClassifierOutput>)],
        detector: bool,
        classifier_type: Option<&str>,
    ) -> usize {
        (self.lock)(batch);
        let frame = self.frame(batch, batch_id);
        let mut added = 0;
        if !frame.is_null() {
            if detector {
                (*(frame as *mut NvDsFrameMetaHead)).b_infer_done = 1;
            }
            for (object, classified) in objects {
                let obj = (self.acquire_obj)(batch);
                if obj.is_null() {
                    break;
                }
                self.fill_object(obj, object);
                if let Some(output) = classified {
                    self.add_classification(batch, obj, object.unique_id, output, classifier_type);
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

    /// The source (`source_id`) and that source's frame number (`frame_num`) of frame
    /// `batch_id`, if the batch has it.
    ///
    /// # Safety
    /// As [`DsMeta::add_objects`].
    pub unsafe fn frame_source(&self, batch: *mut c_void, batch_id: u32) -> Option<(u32, i32)> {
        (self.lock)(batch);
        let frame = self.frame(batch, batch_id) as *const NvDsFrameMetaHead;
        let source = (!frame.is_null()).then(|| ((*frame).source_id, (*frame).frame_num));
        (self.unlock)(batch);
        source
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
                    let d = &head.detector_bbox_info;
                    out.push(DsUpstream {
                        meta,
                        unique_component_id: head.unique_component_id,
                        class_id: head.class_id,
                        object_id: head.object_id,
                        rect: [r.left, r.top, r.width, r.height],
                        detector_rect: [d.left, d.top, d.width, d.height],
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
        output: &ClassifierOutput,
        classifier_type: Option<&str>,
    ) {
        (self.lock)(batch);
        self.add_classification(batch, object, unique_id, output, classifier_type);
        (self.unlock)(batch);
    }

    /// Adds `meta` to the frame meta with `batch_id` (primary mode), or to `object` (an
    /// `NvDsObjectMeta` of the batch, secondary mode), under the meta lock. Returns false (and
    /// frees the meta) when there is no such frame or the pool is empty.
    ///
    /// # Safety
    /// As [`DsMeta::add_objects`]; `object`, when given, from [`DsMeta::objects`] on this batch.
    pub unsafe fn add_user_meta(
        &self,
        batch: *mut c_void,
        batch_id: u32,
        object: Option<*mut c_void>,
        meta: DsUserMeta<'_>,
    ) -> bool {
        (self.lock)(batch);
        let target = object.unwrap_or_else(|| self.frame(batch, batch_id));
        let user_meta = if target.is_null() {
            std::ptr::null_mut()
        } else {
            (self.acquire_user)(batch) as *mut NvDsUserMeta
        };
        let (meta_type, data, copy, release) = meta.into_raw();
        let added = !user_meta.is_null();
        if added {
            (*user_meta).user_meta_data = data;
            let base = &mut (*user_meta).base_meta;
            base.meta_type = meta_type;
            base.copy_func = copy as *mut c_void;
            base.release_func = release as *mut c_void;
            if object.is_some() {
                (self.add_user_to_obj)(target, user_meta as *mut c_void);
            } else {
                (self.add_user_to_frame)(target, user_meta as *mut c_void);
            }
        } else {
            let mut orphan = NvDsUserMeta::detached(batch, meta_type, data);
            release(
                &mut orphan as *mut NvDsUserMeta as *mut c_void,
                std::ptr::null_mut(),
            );
        }
        (self.unlock)(batch);
        added
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
        head.rect_params.border_width = object.border_width;
        head.rect_params.border_color = object.border_color.into();
        head.rect_params.has_bg_color = c_uint::from(object.bg_color.is_some());
        head.rect_params.bg_color = object.bg_color.unwrap_or_default().into();
        if let (Some(major), Some(alloc), Some(mask)) = (self.major, &self.alloc, &object.mask) {
            let bytes = std::mem::size_of_val(mask.data.as_slice());
            let data = (alloc.malloc)(bytes.max(1)) as *mut f32;
            std::ptr::copy_nonoverlapping(mask.data.as_ptr(), data, mask.data.len());
            let params = (obj as *mut u8).add(mask_params_offset(major)) as *mut NvOsdMaskParams;
            *params = NvOsdMaskParams {
                data,
                size: bytes as c_uint,
                threshold: mask.threshold,
                width: mask.width,
                height: mask.height,
            };
        }
        if let (Some(major), Some(label)) = (self.major, &object.label) {
            let dst = (obj as *mut u8).add(obj_label_offset(major)) as *mut c_char;
            copy_label(dst, label);
            if let Some(alloc) = &self.alloc {
                let text = (obj as *mut u8).add(text_params_offset(major)) as *mut NvOsdTextParams;
                write_label_text(text, alloc, label, object.left, object.top);
            }
        }
    }

    /// Adds `output` to `obj` as an `NvDsClassifierMeta` and its description to the object's
    /// on-screen text (caller holds the meta lock).
    unsafe fn add_classification(
        &self,
        batch: *mut c_void,
        obj: *mut c_void,
        unique_id: i32,
        output: &ClassifierOutput,
        classifier_type: Option<&str>,
    ) {
        if !nvinfer_attaches(output) {
            return;
        }
        let classifier = (self.acquire_classifier)(batch) as *mut NvDsClassifierMeta;
        if classifier.is_null() {
            return;
        }
        (*classifier).num_labels = output.attributes.len() as c_uint;
        (*classifier).unique_component_id = unique_id;
        (*classifier).classifier_type = classifier_type.map_or(std::ptr::null(), interned);
        for attribute in &output.attributes {
            let info = (self.acquire_label)(batch) as *mut NvDsLabelInfo;
            if info.is_null() {
                break;
            }
            (*info).result_class_id = attribute.class_id;
            (*info).label_id = attribute.attribute_index;
            (*info).result_prob = attribute.probability;
            (*info).p_result_label = std::ptr::null_mut();
            copy_label(
                (*info).result_label.as_mut_ptr(),
                attribute.label.as_deref().unwrap_or(""),
            );
            (self.add_label)(classifier as *mut c_void, info as *mut c_void);
        }
        (self.add_classifier)(obj, classifier as *mut c_void);
        if let (Some(major), Some(alloc)) = (self.major, &self.alloc) {
            let head = &*(obj as *const NvDsObjectMetaHead);
            let text = (obj as *mut u8).add(text_params_offset(major)) as *mut NvOsdTextParams;
            append_label_text(
                text,
                alloc,
                &output.description,
                head.rect_params.left,
                head.rect_params.top,
            );
        }
    }
}

/// `text` as a C string that lives as long as the process: `NvDsClassifierMeta.classifier_type`
/// is not freed with the meta (nvinfer points it at its own copy of the config's value), so each
/// distinct value is allocated once and kept.
fn interned(text: &str) -> *const c_char {
    use std::collections::HashMap;
    use std::ffi::CString;
    use std::sync::Mutex;
    static STRINGS: Mutex<Option<HashMap<String, &'static std::ffi::CStr>>> = Mutex::new(None);
    let mut strings = STRINGS.lock().unwrap_or_else(|p| p.into_inner());
    let kept = strings.get_or_insert_with(HashMap::new);
    if let Some(c) = kept.get(text) {
        return c.as_ptr();
    }
    let c: &'static std::ffi::CStr = Box::leak(
        CString::new(text.replace('\0', ""))
            .unwrap_or_default()
            .into_boxed_c_str(),
    );
    kept.insert(text.to_string(), c);
    c.as_ptr()
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
        assert_eq!(offset_of!(NvOsdRectParamsHead, bg_color), 64);
        assert_eq!(size_of::<NvOsdRectParamsHead>(), 96);
        assert_eq!(obj_label_offset(9), 344);
        assert_eq!(obj_label_offset(7), 336);
        assert_eq!(text_params_offset(9), 240);
        assert_eq!(text_params_offset(8), 232);
        assert_eq!(mask_params_offset(8), 208);
        assert_eq!(size_of::<NvOsdMaskParams>(), 24);
        assert_eq!(offset_of!(NvOsdMaskParams, threshold), 12);
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
        assert_eq!(offset_of!(NvDsFrameMetaHead, frame_user_meta_list), 120);
        assert_eq!(size_of::<NvDsUserMeta>(), 48);
        // gstnvdsinfer.h / nvdsinfer.h
        assert_eq!(size_of::<NvDsInferDims>(), 40);
        assert_eq!(offset_of!(NvDsInferLayerInfo, infer_dims), 4);
        assert_eq!(offset_of!(NvDsInferLayerInfo, binding_index), 44);
        assert_eq!(offset_of!(NvDsInferLayerInfo, layer_name), 48);
        assert_eq!(offset_of!(NvDsInferLayerInfo, buffer), 56);
        assert_eq!(offset_of!(NvDsInferLayerInfo, is_input), 64);
        assert_eq!(size_of::<NvDsInferLayerInfo>(), 72);
        assert_eq!(offset_of!(NvDsInferTensorMeta, output_layers_info), 8);
        assert_eq!(offset_of!(NvDsInferTensorMeta, gpu_id), 32);
        assert_eq!(offset_of!(NvDsInferTensorMeta, priv_data), 40);
        assert_eq!(offset_of!(NvDsInferTensorMeta, network_info), 48);
        assert_eq!(offset_of!(NvDsInferTensorMeta, maintain_aspect_ratio), 60);
        assert_eq!(offset_of!(NvDsInferSegmentationMeta, class_map), 16);
        assert_eq!(offset_of!(NvDsInferSegmentationMeta, unique_id), 40);
    }

    /// The outputs a tensor meta's pointers show.
    unsafe fn read_tensor_meta(meta: &NvDsInferTensorMeta) -> Vec<(String, Vec<u32>, Vec<f32>)> {
        (0..meta.num_output_layers as usize)
            .map(|i| {
                let layer = &*meta.output_layers_info.add(i);
                let dims = layer.infer_dims;
                let host = *meta.out_buf_ptrs_host.add(i);
                assert_eq!(host, layer.buffer, "layer {i}: buffer is the host pointer");
                assert!((*meta.out_buf_ptrs_dev.add(i)).is_null(), "no device copy");
                (
                    std::ffi::CStr::from_ptr(layer.layer_name)
                        .to_string_lossy()
                        .into_owned(),
                    dims.d[..dims.num_dims as usize].to_vec(),
                    std::slice::from_raw_parts(host as *const f32, dims.num_elements as usize)
                        .to_vec(),
                )
            })
            .collect()
    }

    #[test]
    fn tensor_meta_points_at_its_outputs_and_copies_and_frees_itself() {
        let outputs = TensorOutputs {
            unique_id: 3,
            gpu_id: 1,
            network: [224, 160, 3],
            maintain_aspect_ratio: true,
            layers: vec![
                (
                    "scores".into(),
                    vec![2, 3],
                    vec![0.5, 1.0, 1.5, 2.0, 2.5, 3.0],
                ),
                ("boxes".into(), vec![4], vec![-1.0, 0.0, 1.0, 2.0]),
            ],
        };
        let expected = vec![
            (
                "scores".to_string(),
                vec![2, 3],
                vec![0.5, 1.0, 1.5, 2.0, 2.5, 3.0],
            ),
            ("boxes".to_string(), vec![4], vec![-1.0, 0.0, 1.0, 2.0]),
        ];
        let (meta_type, data, copy, release) = DsUserMeta::Tensors(outputs).into_raw();
        assert_eq!(meta_type, NVDSINFER_TENSOR_OUTPUT_META);
        let mut user_meta = NvDsUserMeta::detached(std::ptr::null_mut(), meta_type, data);
        unsafe {
            let meta = &*(data as *const NvDsInferTensorMeta);
            assert_eq!(
                (meta.unique_id, meta.num_output_layers, meta.gpu_id),
                (3, 2, 1)
            );
            let n = meta.network_info;
            assert_eq!((n.width, n.height, n.channels), (224, 160, 3));
            assert_eq!(meta.maintain_aspect_ratio, 1);
            assert_eq!(read_tensor_meta(meta), expected);

            // What DeepStream does when the buffer's metadata is copied, then released.
            let copied = copy(
                &mut user_meta as *mut NvDsUserMeta as *mut c_void,
                std::ptr::null_mut(),
            );
            assert_ne!(copied, data, "a deep copy");
            release(
                &mut user_meta as *mut NvDsUserMeta as *mut c_void,
                std::ptr::null_mut(),
            );
            assert!(user_meta.user_meta_data.is_null());
            let mut copy_meta = NvDsUserMeta {
                user_meta_data: copied,
                ..user_meta
            };
            assert_eq!(
                read_tensor_meta(&*(copied as *const NvDsInferTensorMeta)),
                expected
            );
            release(
                &mut copy_meta as *mut NvDsUserMeta as *mut c_void,
                std::ptr::null_mut(),
            );
        }
    }

    #[test]
    fn segmentation_meta_points_at_its_maps() {
        let map = crate::SegmentationMap {
            width: 2,
            height: 1,
            num_classes: 2,
            class_map: vec![1, -1],
            class_probabilities: vec![0.1, 0.2, 0.9, 0.3],
        };
        let (meta_type, data, copy, release) = DsUserMeta::Segmentation {
            unique_id: 4,
            map: &map,
        }
        .into_raw();
        assert_eq!(meta_type, NVDSINFER_SEGMENTATION_META);
        let read = |data: *mut c_void| unsafe {
            let m = &*(data as *const NvDsInferSegmentationMeta);
            (
                (m.classes, m.width, m.height, m.unique_id),
                std::slice::from_raw_parts(m.class_map, 2).to_vec(),
                std::slice::from_raw_parts(m.class_probabilities_map, 4).to_vec(),
            )
        };
        let expected = ((2, 2, 1, 4), vec![1, -1], vec![0.1, 0.2, 0.9, 0.3]);
        assert_eq!(read(data), expected);
        let mut user_meta = NvDsUserMeta::detached(std::ptr::null_mut(), meta_type, data);
        unsafe {
            let copied = copy(
                &mut user_meta as *mut NvDsUserMeta as *mut c_void,
                std::ptr::null_mut(),
            );
            release(
                &mut user_meta as *mut NvDsUserMeta as *mut c_void,
                std::ptr::null_mut(),
            );
            assert_eq!(read(copied), expected);
            user_meta.user_meta_data = copied;
            release(
                &mut user_meta as *mut NvDsUserMeta as *mut c_void,
                std::ptr::null_mut(),
            );
            assert!(user_meta.user_meta_data.is_null());
        }
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
            append_label_text(&mut text, &alloc, "", 40.5, 4.0);
            assert!(text.display_text.is_null(), "nothing to describe, no text");
            append_label_text(&mut text, &alloc, "red ", 40.5, 24.0);
            assert_eq!(
                read(&text),
                " red ",
                "no text yet: nvinfer's, then the description"
            );
            assert_eq!((text.x_offset, text.y_offset), (40, 14));
            write_label_text(&mut text, &alloc, "car", 40.5, 4.0);
            assert_eq!(read(&text), "car");
            assert_eq!((text.x_offset, text.y_offset), (40, 0));
            assert_eq!(text.font_params.font_size, 11);
            assert_eq!(
                std::ffi::CStr::from_ptr(text.font_params.font_name).to_bytes(),
                b"Serif"
            );
            assert_eq!((text.set_bg_clr, text.text_bg_clr.alpha), (1, 1.0));
            append_label_text(&mut text, &alloc, "red sedan ", 0.0, 0.0);
            assert_eq!(read(&text), "car red sedan ");
            assert_eq!(text.x_offset, 40, "an object's text stays where it was");
            write_label_text(&mut text, &alloc, "person", 10.0, 50.0);
            assert_eq!((read(&text).as_str(), text.y_offset), ("person", 40));
            (alloc.free)(text.display_text as *mut c_void);
        }
    }
}
