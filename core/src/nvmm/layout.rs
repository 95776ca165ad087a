//! `#[repr(C)]` mirrors of DeepStream's `nvbufsurface.h` (64-bit Linux, x86_64 and aarch64).
//!
//! Two ABI generations exist among the headers we checked (see `docs` in `super`):
//!
//! - **Ds6** (`NvBufSurface` 64 bytes, `NvBufSurfaceParams` 384): DeepStream 6.x headers, where
//!   `NvBufSurfaceParams` ends in `paramex` + `_reserved[3]` (older 5.x/6.0 headers have
//!   `_reserved[4]` in that place: same size and offsets), and `NvBufSurfaceMappedAddr` is
//!   `addr[4]`, `eglImage`, `_reserved[4]`.
//! - **Ds8** (`NvBufSurface` 72 bytes, `NvBufSurfaceParams` 416): DeepStream 8.0 and 9.0.
//!   `NvBufSurfaceMappedAddr` gains `nvmmPtr` and `cudaPtr`, `NvBufSurfaceParams` gains
//!   `cudaBuffer` before a full `_reserved[4]`, `NvBufSurface` gains `isImportedBuf` after
//!   `surfaceList`, `NvBufSurfaceChromaSubsamplingParams` grows to 8 bytes and
//!   `NvBufSurfacePlaneParamsEx` gains `drmModifier[4]`.
//!
//! An unlabelled 2019-2024 JetPack header (probably the DeepStream 7.x generation) is Ds6 in
//! everything read here; its `NvBufSurfacePlaneParamsEx` already has `drmModifier` with a
//! shorter `_reserved`, keeping the 6.x size (224 bytes).
//!
//! `NvBufSurfacePlaneParams` (232 bytes) and the first fields of `NvBufSurface` and
//! `NvBufSurfaceParams` are the same in both. Enums are C `int`s (4 bytes).

use std::ffi::c_void;

pub const NVBUF_MAX_PLANES: usize = 4;
pub const STRUCTURE_PADDING: usize = 4;

/// `NvBufSurfacePlaneParams`: identical in every checked version.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NvBufSurfacePlaneParams {
    pub num_planes: u32,
    pub width: [u32; NVBUF_MAX_PLANES],
    pub height: [u32; NVBUF_MAX_PLANES],
    /// Bytes per row.
    pub pitch: [u32; NVBUF_MAX_PLANES],
    /// Bytes from `dataPtr` to the plane's first byte.
    pub offset: [u32; NVBUF_MAX_PLANES],
    pub psize: [u32; NVBUF_MAX_PLANES],
    pub bytes_per_pix: [u32; NVBUF_MAX_PLANES],
    pub _reserved: [*mut c_void; STRUCTURE_PADDING * NVBUF_MAX_PLANES],
}

/// DeepStream 6.x: `NvBufSurfaceChromaSubsamplingParams` is two bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ChromaSubsamplingDs6 {
    pub chroma_loc_horiz: u8,
    pub chroma_loc_vert: u8,
}

/// DeepStream 8/9: two bytes plus `_reserved[6]`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ChromaSubsamplingDs8 {
    pub chroma_loc_horiz: u8,
    pub chroma_loc_vert: u8,
    pub _reserved: [u8; 6],
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NvBufSurfacePlaneParamsExDs6 {
    pub scanformat: [i32; NVBUF_MAX_PLANES],
    pub secondfieldoffset: [u32; NVBUF_MAX_PLANES],
    pub blockheightlog2: [u32; NVBUF_MAX_PLANES],
    pub physicaladdress: [u32; NVBUF_MAX_PLANES],
    pub flags: [u64; NVBUF_MAX_PLANES],
    pub _reserved: [*mut c_void; STRUCTURE_PADDING * NVBUF_MAX_PLANES],
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NvBufSurfacePlaneParamsExDs8 {
    pub scanformat: [i32; NVBUF_MAX_PLANES],
    pub secondfieldoffset: [u32; NVBUF_MAX_PLANES],
    pub blockheightlog2: [u32; NVBUF_MAX_PLANES],
    pub physicaladdress: [u32; NVBUF_MAX_PLANES],
    pub flags: [u64; NVBUF_MAX_PLANES],
    pub drm_modifier: [u64; NVBUF_MAX_PLANES],
    pub _reserved: [*mut c_void; STRUCTURE_PADDING * NVBUF_MAX_PLANES],
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NvBufSurfaceParamsExDs6 {
    pub startofvaliddata: i32,
    pub sizeofvaliddatainbytes: i32,
    pub chroma_subsampling: ChromaSubsamplingDs6,
    pub is_protected: bool,
    pub plane_params_ex: NvBufSurfacePlaneParamsExDs6,
    pub _reserved: [*mut c_void; STRUCTURE_PADDING],
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NvBufSurfaceParamsExDs8 {
    pub startofvaliddata: i32,
    pub sizeofvaliddatainbytes: i32,
    pub chroma_subsampling: ChromaSubsamplingDs8,
    pub is_protected: bool,
    pub plane_params_ex: NvBufSurfacePlaneParamsExDs8,
    pub _reserved: [*mut c_void; STRUCTURE_PADDING],
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NvBufSurfaceMappedAddrDs6 {
    /// CPU addresses of the planes after `NvBufSurfaceMap`; null when not mapped.
    pub addr: [*mut c_void; NVBUF_MAX_PLANES],
    pub egl_image: *mut c_void,
    pub _reserved: [*mut c_void; STRUCTURE_PADDING],
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NvBufSurfaceMappedAddrDs8 {
    pub addr: [*mut c_void; NVBUF_MAX_PLANES],
    pub egl_image: *mut c_void,
    pub nvmm_ptr: *mut c_void,
    pub cuda_ptr: *mut c_void,
    pub _reserved: [*mut c_void; STRUCTURE_PADDING],
}

/// One buffer of a batch, DeepStream 6.x.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NvBufSurfaceParamsDs6 {
    pub width: u32,
    pub height: u32,
    pub pitch: u32,
    pub color_format: u32,
    pub layout: u32,
    pub buffer_desc: u64,
    pub data_size: u32,
    pub data_ptr: *mut c_void,
    pub plane_params: NvBufSurfacePlaneParams,
    pub mapped_addr: NvBufSurfaceMappedAddrDs6,
    pub paramex: *mut NvBufSurfaceParamsExDs6,
    pub _reserved: [*mut c_void; STRUCTURE_PADDING - 1],
}

/// One buffer of a batch, DeepStream 8.0 / 9.0.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NvBufSurfaceParamsDs8 {
    pub width: u32,
    pub height: u32,
    pub pitch: u32,
    pub color_format: u32,
    pub layout: u32,
    pub buffer_desc: u64,
    pub data_size: u32,
    pub data_ptr: *mut c_void,
    pub plane_params: NvBufSurfacePlaneParams,
    pub mapped_addr: NvBufSurfaceMappedAddrDs8,
    pub paramex: *mut NvBufSurfaceParamsExDs8,
    /// `NvBufSurfaceCudaBuffer *` (Tegra OpenRM only); opaque here.
    pub cuda_buffer: *mut c_void,
    pub _reserved: [*mut c_void; STRUCTURE_PADDING],
}

/// The batch, DeepStream 6.x.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NvBufSurfaceDs6 {
    pub gpu_id: u32,
    pub batch_size: u32,
    pub num_filled: u32,
    pub is_contiguous: bool,
    pub mem_type: u32,
    pub surface_list: *mut NvBufSurfaceParamsDs6,
    pub _reserved: [*mut c_void; STRUCTURE_PADDING],
}

/// The batch, DeepStream 8.0 / 9.0.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NvBufSurfaceDs8 {
    pub gpu_id: u32,
    pub batch_size: u32,
    pub num_filled: u32,
    pub is_contiguous: bool,
    pub mem_type: u32,
    pub surface_list: *mut NvBufSurfaceParamsDs8,
    pub is_imported_buf: bool,
    pub _reserved: [*mut c_void; STRUCTURE_PADDING],
}

#[cfg(all(test, target_pointer_width = "64"))]
mod tests {
    //! Sizes and offsets computed by hand from the headers with the C rules for 64-bit Linux
    //! (LP64: pointers and uint64_t 8-byte aligned, enums 4 bytes, bool 1 byte).
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn plane_params_match_every_header() {
        assert_eq!(offset_of!(NvBufSurfacePlaneParams, num_planes), 0);
        assert_eq!(offset_of!(NvBufSurfacePlaneParams, width), 4);
        assert_eq!(offset_of!(NvBufSurfacePlaneParams, height), 20);
        assert_eq!(offset_of!(NvBufSurfacePlaneParams, pitch), 36);
        assert_eq!(offset_of!(NvBufSurfacePlaneParams, offset), 52);
        assert_eq!(offset_of!(NvBufSurfacePlaneParams, psize), 68);
        assert_eq!(offset_of!(NvBufSurfacePlaneParams, bytes_per_pix), 84);
        // 100 bytes of u32, padded to 104 for the pointer array of 16.
        assert_eq!(offset_of!(NvBufSurfacePlaneParams, _reserved), 104);
        assert_eq!(size_of::<NvBufSurfacePlaneParams>(), 232);
    }

    #[test]
    fn deepstream6_layout() {
        assert_eq!(size_of::<NvBufSurfaceMappedAddrDs6>(), 72);
        assert_eq!(offset_of!(NvBufSurfaceParamsDs6, width), 0);
        assert_eq!(offset_of!(NvBufSurfaceParamsDs6, pitch), 8);
        assert_eq!(offset_of!(NvBufSurfaceParamsDs6, color_format), 12);
        assert_eq!(offset_of!(NvBufSurfaceParamsDs6, layout), 16);
        assert_eq!(offset_of!(NvBufSurfaceParamsDs6, buffer_desc), 24);
        assert_eq!(offset_of!(NvBufSurfaceParamsDs6, data_size), 32);
        assert_eq!(offset_of!(NvBufSurfaceParamsDs6, data_ptr), 40);
        assert_eq!(offset_of!(NvBufSurfaceParamsDs6, plane_params), 48);
        assert_eq!(offset_of!(NvBufSurfaceParamsDs6, mapped_addr), 280);
        assert_eq!(offset_of!(NvBufSurfaceParamsDs6, paramex), 352);
        assert_eq!(size_of::<NvBufSurfaceParamsDs6>(), 384);
        assert_eq!(offset_of!(NvBufSurfaceDs6, num_filled), 8);
        assert_eq!(offset_of!(NvBufSurfaceDs6, is_contiguous), 12);
        assert_eq!(offset_of!(NvBufSurfaceDs6, mem_type), 16);
        assert_eq!(offset_of!(NvBufSurfaceDs6, surface_list), 24);
        assert_eq!(size_of::<NvBufSurfaceDs6>(), 64);
        assert_eq!(size_of::<ChromaSubsamplingDs6>(), 2);
        assert_eq!(size_of::<NvBufSurfacePlaneParamsExDs6>(), 224);
        assert_eq!(offset_of!(NvBufSurfaceParamsExDs6, is_protected), 10);
        assert_eq!(offset_of!(NvBufSurfaceParamsExDs6, plane_params_ex), 16);
        assert_eq!(size_of::<NvBufSurfaceParamsExDs6>(), 272);
    }

    #[test]
    fn deepstream8_and_9_layout() {
        assert_eq!(size_of::<NvBufSurfaceMappedAddrDs8>(), 88);
        assert_eq!(offset_of!(NvBufSurfaceMappedAddrDs8, cuda_ptr), 48);
        assert_eq!(offset_of!(NvBufSurfaceParamsDs8, data_ptr), 40);
        assert_eq!(offset_of!(NvBufSurfaceParamsDs8, plane_params), 48);
        assert_eq!(offset_of!(NvBufSurfaceParamsDs8, mapped_addr), 280);
        assert_eq!(offset_of!(NvBufSurfaceParamsDs8, paramex), 368);
        assert_eq!(offset_of!(NvBufSurfaceParamsDs8, cuda_buffer), 376);
        assert_eq!(size_of::<NvBufSurfaceParamsDs8>(), 416);
        assert_eq!(offset_of!(NvBufSurfaceDs8, surface_list), 24);
        assert_eq!(offset_of!(NvBufSurfaceDs8, is_imported_buf), 32);
        assert_eq!(size_of::<NvBufSurfaceDs8>(), 72);
        assert_eq!(size_of::<ChromaSubsamplingDs8>(), 8);
        assert_eq!(size_of::<NvBufSurfacePlaneParamsExDs8>(), 256);
        assert_eq!(offset_of!(NvBufSurfaceParamsExDs8, is_protected), 16);
        assert_eq!(offset_of!(NvBufSurfaceParamsExDs8, plane_params_ex), 24);
        assert_eq!(size_of::<NvBufSurfaceParamsExDs8>(), 312);
    }
}
