//! NvBufSurfaces built in system memory, laid out as DeepStream lays them out: what tests (and
//! tools without DeepStream) feed to the NVMM path.

use std::ffi::c_void;
use std::ptr::null_mut;

use super::layout::*;
use super::{color_format, plane_extents, Abi, MemType};
use crate::preprocess::PixelFormat;

/// One frame of a host surface: all planes in one allocation, as `dataPtr` + plane offsets.
#[derive(Clone, Debug)]
pub struct HostFrame {
    pub format: PixelFormat,
    pub width: u32,
    pub height: u32,
    pub pitches: Vec<u32>,
    pub offsets: Vec<u32>,
    pub data: Vec<u8>,
}

impl HostFrame {
    /// Copies tightly packed planes (`planes[i]` has `rows x row_bytes` of plane `i`) into one
    /// allocation where every row starts `pitch_align`-aligned, as NVMM allocators do.
    pub fn from_packed(
        format: PixelFormat,
        width: u32,
        height: u32,
        planes: &[&[u8]],
        pitch_align: usize,
    ) -> HostFrame {
        let extents = plane_extents(format, width as usize, height as usize);
        assert_eq!(planes.len(), extents.len(), "planes for {format:?}");
        let mut data = Vec::new();
        let (mut pitches, mut offsets) = (Vec::new(), Vec::new());
        for (plane, &(row_bytes, rows)) in planes.iter().zip(&extents) {
            assert_eq!(plane.len(), row_bytes * rows, "packed plane size");
            let pitch = row_bytes.div_ceil(pitch_align.max(1)) * pitch_align.max(1);
            offsets.push(data.len() as u32);
            pitches.push(pitch as u32);
            for row in plane.chunks(row_bytes) {
                data.extend_from_slice(row);
                data.resize(data.len() + pitch - row_bytes, 0);
            }
        }
        HostFrame {
            format,
            width,
            height,
            pitches,
            offsets,
            data,
        }
    }

    fn plane_params(&self) -> NvBufSurfacePlaneParams {
        let extents = plane_extents(self.format, self.width as usize, self.height as usize);
        let bytes_per_pix: u32 = match self.format {
            PixelFormat::Rgbx | PixelFormat::Bgrx => 4,
            PixelFormat::Rgb | PixelFormat::Bgr => 3,
            _ => 1,
        };
        let mut p = NvBufSurfacePlaneParams {
            num_planes: extents.len() as u32,
            width: [0; NVBUF_MAX_PLANES],
            height: [0; NVBUF_MAX_PLANES],
            pitch: [0; NVBUF_MAX_PLANES],
            offset: [0; NVBUF_MAX_PLANES],
            psize: [0; NVBUF_MAX_PLANES],
            bytes_per_pix: [0; NVBUF_MAX_PLANES],
            _reserved: [null_mut(); STRUCTURE_PADDING * NVBUF_MAX_PLANES],
        };
        for (i, &(row_bytes, rows)) in extents.iter().enumerate() {
            let bpp = if i > 0 && self.format == PixelFormat::Nv12 {
                2
            } else {
                bytes_per_pix
            };
            p.width[i] = (row_bytes as u32) / bpp;
            p.height[i] = rows as u32;
            p.pitch[i] = self.pitches[i];
            p.offset[i] = self.offsets[i];
            p.psize[i] = self.pitches[i] * rows as u32;
            p.bytes_per_pix[i] = bpp;
        }
        p
    }
}

/// An `NvBufSurface` of the chosen ABI and its frames, all owned. `as_ref()` is the struct's
/// bytes, i.e. what DeepStream's NVMM memory maps to; wrap it in a GstBuffer with
/// `gst::Buffer::from_mut_slice` to make an NVMM buffer.
pub struct HostSurface {
    abi: Abi,
    /// The `NvBufSurface`, in zeroed 8-byte-aligned storage so that its padding bytes are
    /// initialised (it is exposed as bytes); fields are written one by one.
    head: Box<[u64; 9]>,
    _list_ds6: Vec<NvBufSurfaceParamsDs6>,
    _list_ds8: Vec<NvBufSurfaceParamsDs8>,
    frames: Vec<HostFrame>,
}

// SAFETY: the raw pointers inside point into `head`, the lists and `frames`, which this value
// owns; their heap addresses do not change when it moves, and nothing else aliases them.
unsafe impl Send for HostSurface {}

impl HostSurface {
    /// `frames` as a batch of `batch_size` (>= frames.len(); numFilled = frames.len()).
    /// `mem_type` is written as the surface's memory type (the pixels are host memory either
    /// way; tests use this to check how each type is treated). With `mapped`, planes are also
    /// published in `mappedAddr.addr`, as after `NvBufSurfaceMap`.
    pub fn new(
        abi: Abi,
        mem_type: MemType,
        batch_size: u32,
        frames: Vec<HostFrame>,
        mapped: bool,
    ) -> HostSurface {
        assert!(batch_size as usize >= frames.len());
        let mut frames = frames;
        let mut common = Vec::new();
        for frame in &mut frames {
            let data_ptr = frame.data.as_mut_ptr() as *mut c_void;
            let mut addr = [null_mut::<c_void>(); NVBUF_MAX_PLANES];
            if mapped {
                for (i, offset) in frame.offsets.iter().enumerate() {
                    // SAFETY: offsets are within `data` by construction.
                    addr[i] = unsafe { (data_ptr as *mut u8).add(*offset as usize) } as *mut c_void;
                }
            }
            common.push((frame.plane_params(), data_ptr, addr));
        }
        let mut surface = HostSurface {
            abi,
            head: Box::new([0u64; 9]),
            _list_ds6: Vec::new(),
            _list_ds8: Vec::new(),
            frames: Vec::new(),
        };
        // The entries of either ABI: zeroed (valid for these plain C structs: integers, bools,
        // null pointers), then the fields both ABIs share.
        macro_rules! entries {
            ($entry:ty) => {
                frames
                    .iter()
                    .zip(&common)
                    .map(|(f, (planes, data_ptr, addr))| {
                        // SAFETY: all-zero is a valid value of the entry struct (see above).
                        let mut p: $entry = unsafe { std::mem::zeroed() };
                        p.width = f.width;
                        p.height = f.height;
                        p.pitch = f.pitches[0];
                        p.color_format = color_format(f.format);
                        p.data_size = f.data.len() as u32;
                        p.data_ptr = *data_ptr;
                        p.plane_params = *planes;
                        p.mapped_addr.addr = *addr;
                        p
                    })
                    .collect::<Vec<$entry>>()
            };
        }
        let surface_list: *mut c_void = match abi {
            Abi::Ds6 => {
                surface._list_ds6 = entries!(NvBufSurfaceParamsDs6);
                surface._list_ds6.as_mut_ptr() as *mut c_void
            }
            Abi::Ds8 => {
                surface._list_ds8 = entries!(NvBufSurfaceParamsDs8);
                surface._list_ds8.as_mut_ptr() as *mut c_void
            }
        };
        surface.write_header(
            batch_size,
            frames.len() as u32,
            mem_type.raw(),
            surface_list,
        );
        surface.frames = frames;
        surface
    }

    pub fn abi(&self) -> Abi {
        self.abi
    }

    pub fn frames(&self) -> &[HostFrame] {
        &self.frames
    }

    /// Rewrites batchSize, numFilled and memType (tests build malformed surfaces with it).
    pub fn set_header(&mut self, batch_size: u32, num_filled: u32, mem_type: u32) {
        let list = match self.abi {
            Abi::Ds6 => self._list_ds6.as_mut_ptr() as *mut c_void,
            Abi::Ds8 => self._list_ds8.as_mut_ptr() as *mut c_void,
        };
        self.write_header(batch_size, num_filled, mem_type, list);
    }

    fn write_header(&mut self, batch_size: u32, num_filled: u32, mem_type: u32, list: *mut c_void) {
        let base = self.head.as_mut_ptr() as *mut u8;
        // SAFETY: `head` is 72 zeroed bytes, 8-aligned, large enough for either header; fields
        // are written in place through their own types, leaving padding zero.
        unsafe {
            match self.abi {
                Abi::Ds6 => {
                    let h = base as *mut NvBufSurfaceDs6;
                    std::ptr::addr_of_mut!((*h).gpu_id).write(0);
                    std::ptr::addr_of_mut!((*h).batch_size).write(batch_size);
                    std::ptr::addr_of_mut!((*h).num_filled).write(num_filled);
                    std::ptr::addr_of_mut!((*h).is_contiguous).write(false);
                    std::ptr::addr_of_mut!((*h).mem_type).write(mem_type);
                    std::ptr::addr_of_mut!((*h).surface_list)
                        .write(list as *mut NvBufSurfaceParamsDs6);
                }
                Abi::Ds8 => {
                    let h = base as *mut NvBufSurfaceDs8;
                    std::ptr::addr_of_mut!((*h).gpu_id).write(0);
                    std::ptr::addr_of_mut!((*h).batch_size).write(batch_size);
                    std::ptr::addr_of_mut!((*h).num_filled).write(num_filled);
                    std::ptr::addr_of_mut!((*h).is_contiguous).write(false);
                    std::ptr::addr_of_mut!((*h).mem_type).write(mem_type);
                    std::ptr::addr_of_mut!((*h).surface_list)
                        .write(list as *mut NvBufSurfaceParamsDs8);
                    std::ptr::addr_of_mut!((*h).is_imported_buf).write(false);
                }
            }
        }
    }
}

impl AsRef<[u8]> for HostSurface {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `head` is 72 initialised bytes; the header is its first surface_size().
        unsafe {
            std::slice::from_raw_parts(self.head.as_ptr() as *const u8, self.abi.surface_size())
        }
    }
}

impl AsMut<[u8]> for HostSurface {
    fn as_mut(&mut self) -> &mut [u8] {
        let len = self.abi.surface_size();
        // SAFETY: as `as_ref`, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.head.as_mut_ptr() as *mut u8, len) }
    }
}
