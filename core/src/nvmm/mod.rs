//! DeepStream NVMM input: a `video/x-raw(memory:NVMM)` buffer's memory maps to an
//! `NvBufSurface` (a batch of frames), not to pixels. This module reads that structure and hands
//! out one [`FrameView`] per filled batch entry whose pixels the CPU can read.
//!
//! Layouts are mirrored in [`layout`] for two ABI generations, told apart by the size of the
//! mapped memory (DeepStream's allocator maps an NVMM buffer to exactly one `NvBufSurface`):
//! 64 bytes = [`Abi::Ds6`], 72 bytes = [`Abi::Ds8`]. `NVTL_NVBUFSURFACE_ABI=ds6|ds8` overrides
//! the guess.
//!
//! Host-readable memory types: `NVBUF_MEM_SYSTEM`, `NVBUF_MEM_CUDA_PINNED`,
//! `NVBUF_MEM_CUDA_UNIFIED` (through `dataPtr` + plane offsets), and `NVBUF_MEM_SURFACE_ARRAY` /
//! `NVBUF_MEM_HANDLE` once mapped (`mappedAddr.addr`; [`cpu_map`] maps what upstream did not). `NVBUF_MEM_CUDA_DEVICE` frames come from
//! [`read_surface`] as device plane pointers, which the cuda feature's GPU pre-processing reads
//! in place; [`read_frames`] (CPU only) refuses them with [`NvmmError::DeviceMemory`].

pub mod cpu_map;
pub mod dsmeta;
mod host;
pub mod layout;

use std::ffi::c_void;
use std::fmt;

pub use host::{HostFrame, HostSurface};
use layout::*;

use crate::preprocess::{DeviceFrame, FrameView, PixelFormat};

/// Environment variable that forces the `NvBufSurface` ABI (`ds6` or `ds8`).
pub const ABI_ENV: &str = "NVTL_NVBUFSURFACE_ABI";

/// `NvBufSurface` ABI generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Abi {
    /// DeepStream 6.x headers (and 5.x, whose structs have the same size and offsets).
    Ds6,
    /// DeepStream 8.0 and 9.0 headers.
    Ds8,
}

impl Abi {
    pub const ALL: [Abi; 2] = [Abi::Ds6, Abi::Ds8];

    /// `sizeof(NvBufSurface)`.
    pub fn surface_size(self) -> usize {
        match self {
            Abi::Ds6 => std::mem::size_of::<NvBufSurfaceDs6>(),
            Abi::Ds8 => std::mem::size_of::<NvBufSurfaceDs8>(),
        }
    }

    /// `sizeof(NvBufSurfaceParams)`.
    pub fn params_size(self) -> usize {
        match self {
            Abi::Ds6 => std::mem::size_of::<NvBufSurfaceParamsDs6>(),
            Abi::Ds8 => std::mem::size_of::<NvBufSurfaceParamsDs8>(),
        }
    }

    /// The ABI whose `NvBufSurface` has `size` bytes.
    pub fn from_surface_size(size: usize) -> Option<Abi> {
        Abi::ALL.into_iter().find(|abi| abi.surface_size() == size)
    }

    pub fn name(self) -> &'static str {
        match self {
            Abi::Ds6 => "ds6",
            Abi::Ds8 => "ds8",
        }
    }

    fn from_name(name: &str) -> Option<Abi> {
        Abi::ALL
            .into_iter()
            .find(|abi| abi.name().eq_ignore_ascii_case(name.trim()))
    }
}

impl fmt::Display for Abi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Abi::Ds6 => "DeepStream 6.x NvBufSurface (64 bytes)",
            Abi::Ds8 => "DeepStream 8.x/9.x NvBufSurface (72 bytes)",
        })
    }
}

/// `NvBufSurfaceMemType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemType {
    Default,
    CudaPinned,
    CudaDevice,
    CudaUnified,
    SurfaceArray,
    Handle,
    System,
    /// `NVBUF_MEM_CUDA_ARRAY` (DeepStream 9, Jetson).
    CudaArray,
    Unknown(u32),
}

impl MemType {
    pub fn from_raw(raw: u32) -> MemType {
        match raw {
            0 => MemType::Default,
            1 => MemType::CudaPinned,
            2 => MemType::CudaDevice,
            3 => MemType::CudaUnified,
            4 => MemType::SurfaceArray,
            5 => MemType::Handle,
            6 => MemType::System,
            7 => MemType::CudaArray,
            other => MemType::Unknown(other),
        }
    }

    pub fn raw(self) -> u32 {
        match self {
            MemType::Default => 0,
            MemType::CudaPinned => 1,
            MemType::CudaDevice => 2,
            MemType::CudaUnified => 3,
            MemType::SurfaceArray => 4,
            MemType::Handle => 5,
            MemType::System => 6,
            MemType::CudaArray => 7,
            MemType::Unknown(raw) => raw,
        }
    }

    /// Whether `dataPtr` is a CPU address.
    /// What `NVBUF_MEM_DEFAULT` stands for on this platform (nvbufsurface.h): CUDA device
    /// memory on dGPU machines, a surface array on Jetson. Other types are themselves.
    pub fn resolved(self) -> MemType {
        match self {
            MemType::Default if cfg!(target_arch = "aarch64") => MemType::SurfaceArray,
            MemType::Default => MemType::CudaDevice,
            other => other,
        }
    }

    pub fn data_ptr_is_host(self) -> bool {
        matches!(
            self,
            MemType::System | MemType::CudaPinned | MemType::CudaUnified
        )
    }
}

impl fmt::Display for MemType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemType::Default => f.write_str("NVBUF_MEM_DEFAULT"),
            MemType::CudaPinned => f.write_str("NVBUF_MEM_CUDA_PINNED"),
            MemType::CudaDevice => f.write_str("NVBUF_MEM_CUDA_DEVICE"),
            MemType::CudaUnified => f.write_str("NVBUF_MEM_CUDA_UNIFIED"),
            MemType::SurfaceArray => f.write_str("NVBUF_MEM_SURFACE_ARRAY"),
            MemType::Handle => f.write_str("NVBUF_MEM_HANDLE"),
            MemType::System => f.write_str("NVBUF_MEM_SYSTEM"),
            MemType::CudaArray => f.write_str("NVBUF_MEM_CUDA_ARRAY"),
            MemType::Unknown(raw) => write!(f, "memory type {raw}"),
        }
    }
}

/// `NvBufSurfaceColorFormat` values nvtl reads, as the pixel format of [`FrameView`]. Limited-
/// and extended-range and BT.709/BT.2020 variants share a pixel layout.
pub fn pixel_format(color_format: u32) -> Option<PixelFormat> {
    Some(match color_format {
        1 => PixelFormat::Gray8,
        2 | 4 | 31 | 32 | 35 => PixelFormat::I420,
        6 | 7 | 33 | 34 | 36 => PixelFormat::Nv12,
        19 | 23 => PixelFormat::Rgbx,
        20 | 24 => PixelFormat::Bgrx,
        27 => PixelFormat::Rgb,
        28 => PixelFormat::Bgr,
        _ => return None,
    })
}

/// The `NvBufSurfaceColorFormat` nvtl writes for a pixel format (test surfaces).
pub fn color_format(format: PixelFormat) -> u32 {
    match format {
        PixelFormat::Gray8 => 1,
        PixelFormat::I420 => 2,
        PixelFormat::Nv12 => 6,
        PixelFormat::Rgbx => 19,
        PixelFormat::Bgrx => 20,
        PixelFormat::Rgb => 27,
        PixelFormat::Bgr => 28,
    }
}

/// Planes and their `(width in bytes, height)` for a frame of `format`.
pub(crate) fn plane_extents(
    format: PixelFormat,
    width: usize,
    height: usize,
) -> Vec<(usize, usize)> {
    let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
    match format {
        PixelFormat::Gray8 => vec![(width, height)],
        PixelFormat::Rgb | PixelFormat::Bgr => vec![(width * 3, height)],
        PixelFormat::Rgbx | PixelFormat::Bgrx => vec![(width * 4, height)],
        PixelFormat::Nv12 => vec![(width, height), (cw * 2, ch)],
        PixelFormat::I420 => vec![(width, height), (cw, ch), (cw, ch)],
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NvmmError {
    #[error(
        "the NVMM buffer maps to {size} bytes, which is no NvBufSurface nvtl knows \
         (64 bytes: DeepStream 6.x, 72 bytes: DeepStream 8.x/9.x); set {ABI_ENV}=ds6 or ds8 to choose"
    )]
    UnknownAbi { size: usize },
    #[error("{ABI_ENV}={value} is not ds6 or ds8")]
    BadAbiOverride { value: String },
    #[error("the NVMM buffer maps to {size} bytes, smaller than a {abi}")]
    TooSmall { size: usize, abi: Abi },
    #[error("NvBufSurface: numFilled {num_filled} > batchSize {batch_size}")]
    Overfilled { num_filled: u32, batch_size: u32 },
    #[error("NvBufSurface: numFilled is {0} but surfaceList is null")]
    NoSurfaceList(u32),
    #[error(
        "NvBufSurface frame {index}: {mem_type} is GPU memory, which nvtl reads only as \
         NVBUF_MEM_CUDA_DEVICE in a build with the cuda feature (give nvtlinfer \
         NVBUF_MEM_CUDA_PINNED/UNIFIED or system memory, e.g. nvvideoconvert \
         nvbuf-memory-type=1 or 3)"
    )]
    DeviceMemory { index: usize, mem_type: MemType },
    #[error(
        "NvBufSurface frame {index}: {mem_type} without CPU mapping (mappedAddr.addr is null; \
         NvBufSurfaceMap it upstream or use nvvideoconvert to pinned or system memory)"
    )]
    NotMapped { index: usize, mem_type: MemType },
    #[error(
        "{mem_type} surfaces are read through libnvbufsurface's NvBufSurfaceMap, which could \
         not be loaded ({reason}); install DeepStream or JetPack's multimedia libraries, or \
         convert upstream to pinned or system memory (nvvideoconvert)"
    )]
    NoMapLibrary { mem_type: MemType, reason: String },
    #[error("NvBufSurface frame {index}: {call} failed ({code}) on {mem_type}")]
    MapFailed {
        index: usize,
        mem_type: MemType,
        call: &'static str,
        code: i32,
    },
    #[error("NvBufSurface frame {index}: block-linear layout; nvtl reads pitch-linear surfaces")]
    BlockLinear { index: usize },
    #[error("NvBufSurface frame {index}: colour format {color_format} is not supported (NV12, I420, RGBA, BGRA, RGBx, BGRx, RGB, BGR, GRAY8)")]
    ColorFormat { index: usize, color_format: u32 },
    #[error("NvBufSurface frame {index}: {reason}")]
    Invalid { index: usize, reason: String },
}

/// The batch header of an NvBufSurface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SurfaceInfo {
    pub abi: Abi,
    pub gpu_id: u32,
    pub batch_size: u32,
    pub num_filled: u32,
    pub mem_type: MemType,
}

/// The fields of one `NvBufSurfaceParams` that both ABIs share.
struct Params {
    width: u32,
    height: u32,
    pitch: u32,
    color_format: u32,
    layout: u32,
    data_size: u32,
    data_ptr: *mut c_void,
    planes: NvBufSurfacePlaneParams,
    mapped: [*mut c_void; NVBUF_MAX_PLANES],
}

/// Chooses the ABI for a mapping of `size` bytes, or the one `NVTL_NVBUFSURFACE_ABI` names.
pub fn detect_abi(size: usize) -> Result<Abi, NvmmError> {
    choose_abi(size, std::env::var(ABI_ENV).ok().as_deref())
}

/// [`detect_abi`] with the override given rather than read from the environment.
pub fn choose_abi(size: usize, override_name: Option<&str>) -> Result<Abi, NvmmError> {
    let abi = match override_name.map(str::trim).filter(|v| !v.is_empty()) {
        Some(value) => Abi::from_name(value).ok_or_else(|| NvmmError::BadAbiOverride {
            value: value.to_string(),
        })?,
        None => Abi::from_surface_size(size).ok_or(NvmmError::UnknownAbi { size })?,
    };
    if size < abi.surface_size() {
        return Err(NvmmError::TooSmall { size, abi });
    }
    Ok(abi)
}

/// One filled batch entry of a surface.
#[derive(Clone, Debug)]
pub enum SurfaceFrame<'a> {
    /// Pixels the CPU reads.
    Host(FrameView<'a>),
    /// `NVBUF_MEM_CUDA_DEVICE` planes on the surface's GPU, for the GPU pre-processing of the
    /// cuda feature.
    Device(DeviceFrame),
}

impl SurfaceFrame<'_> {
    /// (width, height) in pixels.
    pub fn size(&self) -> (usize, usize) {
        match self {
            SurfaceFrame::Host(view) => (view.width, view.height),
            SurfaceFrame::Device(device) => (device.width, device.height),
        }
    }
}

/// Reads the NvBufSurface in `mapped` (an NVMM buffer's mapped memory) and returns its header
/// and one frame per filled batch entry, in batch order. CUDA device memory is an error
/// ([`NvmmError::DeviceMemory`]); [`read_surface`] hands it out as [`SurfaceFrame::Device`].
///
/// # Safety
/// `mapped` must be an `NvBufSurface` of the detected ABI whose `surfaceList` holds `numFilled`
/// entries, and whose plane pointers (`dataPtr` + offsets, or `mappedAddr.addr`) point to
/// memory that stays readable and unchanged for `'a` with the sizes its plane parameters state.
/// This is what a mapped GstBuffer from DeepStream's allocators guarantees while the map lives.
pub unsafe fn read_frames(mapped: &[u8]) -> Result<(SurfaceInfo, Vec<FrameView<'_>>), NvmmError> {
    let (info, frames) = read_surface(mapped)?;
    let frames = frames
        .into_iter()
        .enumerate()
        .map(|(index, frame)| match frame {
            SurfaceFrame::Host(view) => Ok(view),
            SurfaceFrame::Device(_) => Err(NvmmError::DeviceMemory {
                index,
                mem_type: info.mem_type,
            }),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((info, frames))
}

/// [`read_frames`], with frames in CUDA device memory given as their device plane pointers
/// instead of refused.
///
/// # Safety
/// As [`read_frames`]; device plane pointers are not dereferenced here.
pub unsafe fn read_surface(
    mapped: &[u8],
) -> Result<(SurfaceInfo, Vec<SurfaceFrame<'_>>), NvmmError> {
    let (info, list) = surface_entries(mapped)?;
    let frames = list
        .iter()
        .enumerate()
        .map(|(index, params)| frame(index, info.mem_type, params))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((info, frames))
}

/// The header and filled entries of the NvBufSurface in `mapped`, in the detected ABI.
///
/// # Safety
/// As [`read_frames`].
unsafe fn surface_entries(mapped: &[u8]) -> Result<(SurfaceInfo, Vec<Params>), NvmmError> {
    let abi = detect_abi(mapped.len())?;
    let base = mapped.as_ptr();
    match abi {
        Abi::Ds6 => read_batch(
            abi,
            std::ptr::read_unaligned(base as *const NvBufSurfaceDs6),
        ),
        Abi::Ds8 => read_batch(
            abi,
            std::ptr::read_unaligned(base as *const NvBufSurfaceDs8),
        ),
    }
}

/// One ABI's `NvBufSurface` and `NvBufSurfaceParams`, seen through the fields both share.
trait SurfaceLayout: Copy {
    type Entry: Copy;
    fn header(&self) -> (u32, u32, u32, u32);
    fn list(&self) -> *const Self::Entry;
    fn params(entry: &Self::Entry) -> Params;
}

macro_rules! surface_layout {
    ($surface:ty, $entry:ty) => {
        impl SurfaceLayout for $surface {
            type Entry = $entry;
            fn header(&self) -> (u32, u32, u32, u32) {
                (self.gpu_id, self.batch_size, self.num_filled, self.mem_type)
            }
            fn list(&self) -> *const $entry {
                self.surface_list
            }
            fn params(p: &$entry) -> Params {
                Params {
                    width: p.width,
                    height: p.height,
                    pitch: p.pitch,
                    color_format: p.color_format,
                    layout: p.layout,
                    data_size: p.data_size,
                    data_ptr: p.data_ptr,
                    planes: p.plane_params,
                    mapped: p.mapped_addr.addr,
                }
            }
        }
    };
}

surface_layout!(NvBufSurfaceDs6, NvBufSurfaceParamsDs6);
surface_layout!(NvBufSurfaceDs8, NvBufSurfaceParamsDs8);

/// The header and the filled entries of a batch.
///
/// # Safety
/// As [`read_frames`]: `surface.list()` holds `numFilled` readable entries.
unsafe fn read_batch<S: SurfaceLayout>(
    abi: Abi,
    surface: S,
) -> Result<(SurfaceInfo, Vec<Params>), NvmmError> {
    let (gpu_id, batch_size, num_filled, mem_type) = surface.header();
    let info = header(abi, gpu_id, batch_size, num_filled, mem_type)?;
    let list = surface.list();
    if info.num_filled > 0 && list.is_null() {
        return Err(NvmmError::NoSurfaceList(info.num_filled));
    }
    let entries = (0..info.num_filled as usize)
        .map(|i| S::params(&std::ptr::read_unaligned(list.add(i))))
        .collect();
    Ok((info, entries))
}

fn header(
    abi: Abi,
    gpu_id: u32,
    batch_size: u32,
    num_filled: u32,
    mem_type: u32,
) -> Result<SurfaceInfo, NvmmError> {
    if num_filled > batch_size {
        return Err(NvmmError::Overfilled {
            num_filled,
            batch_size,
        });
    }
    Ok(SurfaceInfo {
        abi,
        gpu_id,
        batch_size,
        num_filled,
        mem_type: MemType::from_raw(mem_type),
    })
}

/// One batch entry as a frame view, after checking that the CPU can read it and that its plane
/// parameters are consistent.
///
/// # Safety
/// As [`read_frames`].
unsafe fn frame<'a>(
    index: usize,
    mem_type: MemType,
    p: &Params,
) -> Result<SurfaceFrame<'a>, NvmmError> {
    let invalid = |reason: String| NvmmError::Invalid { index, reason };
    if p.layout != 0 {
        return Err(NvmmError::BlockLinear { index });
    }
    let format = pixel_format(p.color_format).ok_or(NvmmError::ColorFormat {
        index,
        color_format: p.color_format,
    })?;
    let (width, height) = (p.width as usize, p.height as usize);
    if width == 0 || height == 0 {
        return Err(invalid(format!("size {width}x{height}")));
    }
    let extents = plane_extents(format, width, height);
    let mapped = extents
        .iter()
        .enumerate()
        .all(|(i, _)| !p.mapped[i].is_null());
    let device = mem_type.resolved() == MemType::CudaDevice;
    let via_data_ptr = match mem_type.resolved() {
        m if m.data_ptr_is_host() || device => true,
        MemType::SurfaceArray | MemType::Handle if mapped => false,
        MemType::SurfaceArray | MemType::Handle => {
            return Err(NvmmError::NotMapped { index, mem_type })
        }
        _ => return Err(NvmmError::DeviceMemory { index, mem_type }),
    };
    if via_data_ptr && p.data_ptr.is_null() {
        return Err(invalid(format!("{mem_type} with a null dataPtr")));
    }
    let declared = p.planes.num_planes as usize;
    if declared != 0 && declared < extents.len() {
        return Err(invalid(format!(
            "{} planes declared, {format:?} has {}",
            declared,
            extents.len()
        )));
    }
    let mut planes = Vec::with_capacity(extents.len());
    let mut strides = Vec::with_capacity(extents.len());
    let mut device_planes = [0u64; 3];
    let mut device_strides = [0usize; 3];
    for (i, &(row_bytes, rows)) in extents.iter().enumerate() {
        let pitch = match (p.planes.pitch[i], i) {
            (0, 0) => p.pitch as usize,
            (pitch, _) => pitch as usize,
        };
        if pitch < row_bytes {
            return Err(invalid(format!(
                "plane {i}: pitch {pitch} < {row_bytes} bytes per row of {width}x{height} {format:?}"
            )));
        }
        let len = pitch * (rows - 1) + row_bytes;
        let start = if via_data_ptr {
            let offset = p.planes.offset[i] as usize;
            if p.data_size != 0 && offset + len > p.data_size as usize {
                return Err(invalid(format!(
                    "plane {i}: offset {offset} + {len} bytes exceeds dataSize {}",
                    p.data_size
                )));
            }
            (p.data_ptr as *const u8).wrapping_add(offset)
        } else {
            p.mapped[i] as *const u8
        };
        if device {
            device_planes[i] = start as u64;
            device_strides[i] = pitch;
        } else {
            planes.push(std::slice::from_raw_parts(start, len));
            strides.push(pitch);
        }
    }
    if device {
        return Ok(SurfaceFrame::Device(DeviceFrame {
            format,
            width,
            height,
            planes: device_planes,
            strides: device_strides,
        }));
    }
    Ok(SurfaceFrame::Host(FrameView {
        format,
        width,
        height,
        planes,
        strides,
    }))
}

#[cfg(test)]
mod tests;
