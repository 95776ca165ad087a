//! `NVBUF_MEM_SURFACE_ARRAY` and `NVBUF_MEM_HANDLE` surfaces (Jetson's NVMM memory) are not
//! addressable by the CPU until `NvBufSurfaceMap` publishes their planes in `mappedAddr.addr`.
//! nvtlinfer maps the entries that upstream left unmapped, for reading, through
//! libnvbufsurface (opened at run time, never linked), syncs them for the CPU, and unmaps them
//! when the frame has been read: the same three calls nvinfer's CPU paths make.

use std::ffi::{c_int, c_void};
use std::marker::PhantomData;
use std::sync::OnceLock;

use libloading::Library;

use super::{surface_entries, MemType, NvmmError};

/// `int NvBufSurfaceMap(NvBufSurface *surf, int index, int plane, NvBufSurfaceMemMapFlags type)`.
pub type MapFn = unsafe extern "C" fn(*mut c_void, c_int, c_int, c_int) -> c_int;
/// `int NvBufSurfaceSyncForCpu(NvBufSurface *surf, int index, int plane)`, and the same
/// prototype for `NvBufSurfaceUnMap`.
pub type PlaneFn = unsafe extern "C" fn(*mut c_void, c_int, c_int) -> c_int;

/// `NVBUF_MAP_READ`.
const MAP_READ: c_int = 0;
/// Every plane of an entry.
const ALL_PLANES: c_int = -1;

/// The library names tried, in order: Jetson's (in the tegra folder on the loader's path) and
/// DeepStream's (also looked for in DeepStream's lib folder).
const LIBRARY_NAMES: [&str; 2] = ["libnvbufsurface.so.1.0.0", "libnvbufsurface.so"];

/// The three libnvbufsurface entry points a CPU read needs.
#[derive(Clone, Copy, Debug)]
pub struct NvBufSurfaceApi {
    pub map: MapFn,
    pub sync_for_cpu: PlaneFn,
    pub unmap: PlaneFn,
}

impl NvBufSurfaceApi {
    /// libnvbufsurface's functions, opened once per process; the error says what was tried.
    pub fn load() -> Result<NvBufSurfaceApi, String> {
        static API: OnceLock<Result<(NvBufSurfaceApi, Library), String>> = OnceLock::new();
        API.get_or_init(|| {
            let mut tried = Vec::new();
            for name in LIBRARY_NAMES {
                match super::dsmeta::open(name) {
                    Ok(library) => {
                        // SAFETY: the types are the C prototypes of nvbufsurface.h.
                        let api = unsafe {
                            let sym = |symbol: &str| format!("{name} has no {symbol}");
                            NvBufSurfaceApi {
                                map: *library
                                    .get::<MapFn>(b"NvBufSurfaceMap")
                                    .map_err(|_| sym("NvBufSurfaceMap"))?,
                                sync_for_cpu: *library
                                    .get::<PlaneFn>(b"NvBufSurfaceSyncForCpu")
                                    .map_err(|_| sym("NvBufSurfaceSyncForCpu"))?,
                                unmap: *library
                                    .get::<PlaneFn>(b"NvBufSurfaceUnMap")
                                    .map_err(|_| sym("NvBufSurfaceUnMap"))?,
                            }
                        };
                        return Ok((api, library));
                    }
                    Err(why) => tried.push(why),
                }
            }
            Err(tried.join("; "))
        })
        .as_ref()
        .map(|(api, _)| *api)
        .map_err(Clone::clone)
    }
}

/// Entries mapped by [`map_for_cpu`]; dropping it unmaps them. It borrows the surface's bytes, so
/// it cannot outlive the buffer map they come from.
pub struct CpuMapping<'s> {
    api: NvBufSurfaceApi,
    surface: *mut c_void,
    indices: Vec<c_int>,
    _surface: PhantomData<&'s [u8]>,
}

impl CpuMapping<'_> {
    /// The batch entries this mapping mapped.
    pub fn indices(&self) -> &[c_int] {
        &self.indices
    }
}

impl Drop for CpuMapping<'_> {
    fn drop(&mut self) {
        for &index in &self.indices {
            // SAFETY: `surface` is the NvBufSurface these entries were mapped in, still alive
            // (borrowed for 's). An unmap failure leaves nothing to undo.
            unsafe { (self.api.unmap)(self.surface, index, ALL_PLANES) };
        }
    }
}

/// Maps for reading, and syncs for the CPU, every filled entry of the `NVBUF_MEM_SURFACE_ARRAY`
/// or `NVBUF_MEM_HANDLE` surface in `mapped` whose planes upstream did not map; `None` for other
/// memory types and for surfaces already mapped. `api` is asked for libnvbufsurface only when
/// something needs mapping.
///
/// # Safety
/// As [`super::read_frames`]; besides, `mapped` must be the `NvBufSurface` libnvbufsurface
/// created (its entries are written to by `NvBufSurfaceMap`).
pub unsafe fn map_for_cpu(
    mapped: &[u8],
    api: impl FnOnce() -> Result<NvBufSurfaceApi, String>,
) -> Result<Option<CpuMapping<'_>>, NvmmError> {
    let (info, entries) = surface_entries(mapped)?;
    if !matches!(
        info.mem_type.resolved(),
        MemType::SurfaceArray | MemType::Handle
    ) {
        return Ok(None);
    }
    let unmapped: Vec<c_int> = entries
        .iter()
        .enumerate()
        .filter(|(_, entry)| entry.mapped[0].is_null())
        .map(|(index, _)| index as c_int)
        .collect();
    if unmapped.is_empty() {
        return Ok(None);
    }
    let api = api().map_err(|reason| NvmmError::NoMapLibrary {
        mem_type: info.mem_type,
        reason,
    })?;
    let mut mapping = CpuMapping {
        api,
        surface: mapped.as_ptr() as *mut c_void,
        indices: Vec::with_capacity(unmapped.len()),
        _surface: PhantomData,
    };
    for index in unmapped {
        let failed = |call: &'static str, code: c_int| NvmmError::MapFailed {
            index: index as usize,
            mem_type: info.mem_type,
            call,
            code,
        };
        let code = (api.map)(mapping.surface, index, ALL_PLANES, MAP_READ);
        if code != 0 {
            // `mapping` unmaps the entries mapped so far.
            return Err(failed("NvBufSurfaceMap", code));
        }
        mapping.indices.push(index);
        let code = (api.sync_for_cpu)(mapping.surface, index, ALL_PLANES);
        if code != 0 {
            return Err(failed("NvBufSurfaceSyncForCpu", code));
        }
    }
    Ok(Some(mapping))
}
