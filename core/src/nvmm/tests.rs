use super::*;

/// A 5x3 RGBA frame and a 6x4 NV12 frame with distinct bytes everywhere.
fn rgba_frame(seed: u8) -> HostFrame {
    let pixels: Vec<u8> = (0..5 * 3 * 4)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect();
    HostFrame::from_packed(PixelFormat::Rgbx, 5, 3, &[&pixels], 64)
}

fn nv12_frame() -> HostFrame {
    let y: Vec<u8> = (0..24).map(|i| 100 + i as u8).collect();
    let uv: Vec<u8> = (0..12).map(|i| 10 + i as u8).collect();
    HostFrame::from_packed(PixelFormat::Nv12, 6, 4, &[&y, &uv], 32)
}

fn rows(view: &FrameView, plane: usize, row_bytes: usize, rows: usize) -> Vec<u8> {
    (0..rows)
        .flat_map(|r| view.planes[plane][r * view.strides[plane]..][..row_bytes].to_vec())
        .collect()
}

#[test]
fn abi_follows_the_mapped_size_or_the_override() {
    assert_eq!(choose_abi(64, None), Ok(Abi::Ds6));
    assert_eq!(choose_abi(72, None), Ok(Abi::Ds8));
    assert_eq!(
        choose_abi(80, None),
        Err(NvmmError::UnknownAbi { size: 80 })
    );
    assert_eq!(choose_abi(80, Some("ds8")), Ok(Abi::Ds8));
    assert_eq!(
        choose_abi(64, Some("ds8")),
        Err(NvmmError::TooSmall {
            size: 64,
            abi: Abi::Ds8
        })
    );
    assert!(matches!(
        choose_abi(64, Some("ds7")),
        Err(NvmmError::BadAbiOverride { .. })
    ));
    let message = NvmmError::UnknownAbi { size: 80 }.to_string();
    assert!(
        message.contains("80 bytes") && message.contains(ABI_ENV),
        "{message}"
    );
}

#[test]
fn host_surfaces_read_back_pixel_for_pixel_in_both_abis() {
    for abi in Abi::ALL {
        let surface = HostSurface::new(
            abi,
            MemType::System,
            4,
            vec![rgba_frame(1), nv12_frame()],
            false,
        );
        assert_eq!(surface.as_ref().len(), abi.surface_size());
        let (info, frames) = unsafe { read_frames(surface.as_ref()) }.unwrap();
        assert_eq!(info.abi, abi);
        assert_eq!((info.batch_size, info.num_filled), (4, 2));
        assert_eq!(info.mem_type, MemType::System);
        assert_eq!(frames.len(), 2, "one frame per filled entry");

        let rgba = &frames[0];
        assert_eq!(
            (rgba.format, rgba.width, rgba.height),
            (PixelFormat::Rgbx, 5, 3)
        );
        assert_eq!(rgba.strides, vec![64], "pitch from the plane params");
        let expected: Vec<u8> = (0..60)
            .map(|i| (i as u8).wrapping_mul(7).wrapping_add(1))
            .collect();
        assert_eq!(rows(rgba, 0, 20, 3), expected);

        let nv12 = &frames[1];
        assert_eq!(
            (nv12.format, nv12.width, nv12.height),
            (PixelFormat::Nv12, 6, 4)
        );
        assert_eq!(nv12.strides, vec![32, 32]);
        assert_eq!(rows(nv12, 0, 6, 4), (100..124).collect::<Vec<u8>>());
        assert_eq!(rows(nv12, 1, 6, 2), (10..22).collect::<Vec<u8>>());
    }
}

#[test]
fn host_visible_memory_types_are_read_and_device_memory_is_refused() {
    for mem_type in [MemType::System, MemType::CudaPinned, MemType::CudaUnified] {
        let surface = HostSurface::new(Abi::Ds8, mem_type, 1, vec![rgba_frame(3)], false);
        let (_, frames) = unsafe { read_frames(surface.as_ref()) }.unwrap();
        assert_eq!(frames.len(), 1, "{mem_type}");
    }
    for mem_type in [MemType::CudaDevice, MemType::CudaArray] {
        let surface = HostSurface::new(Abi::Ds6, mem_type, 1, vec![rgba_frame(3)], false);
        let err = unsafe { read_frames(surface.as_ref()) }.unwrap_err();
        assert_eq!(err, NvmmError::DeviceMemory { index: 0, mem_type });
        assert!(err.to_string().contains("cuda feature"), "{err}");
    }
}

/// nvbufsurface.h: NVBUF_MEM_DEFAULT is CUDA device memory on dGPU machines.
#[cfg(not(target_arch = "aarch64"))]
#[test]
fn default_memory_is_cuda_device_memory_off_jetson() {
    let surface = HostSurface::new(Abi::Ds8, MemType::Default, 1, vec![nv12_frame()], false);
    let (info, frames) = unsafe { read_surface(surface.as_ref()) }.unwrap();
    assert_eq!(info.mem_type, MemType::Default);
    assert!(
        matches!(frames[0], SurfaceFrame::Device(_)),
        "read as device memory"
    );
    let err = unsafe { read_frames(surface.as_ref()) }.unwrap_err();
    assert_eq!(
        err,
        NvmmError::DeviceMemory {
            index: 0,
            mem_type: MemType::Default
        },
        "the CPU cannot read it, and the error names the type the surface gives"
    );
    let no_library =
        || -> Result<cpu_map::NvBufSurfaceApi, String> { panic!("libnvbufsurface asked for") };
    assert!(
        unsafe { cpu_map::map_for_cpu(surface.as_ref(), no_library) }
            .unwrap()
            .is_none()
    );
}

#[test]
fn cuda_device_frames_come_out_as_device_plane_pointers() {
    for abi in Abi::ALL {
        let frames = vec![rgba_frame(3), nv12_frame()];
        let surface = HostSurface::new(abi, MemType::CudaDevice, 2, frames, false);
        let (info, out) = unsafe { read_surface(surface.as_ref()) }.unwrap();
        assert_eq!(info.mem_type, MemType::CudaDevice);
        assert_eq!(out.len(), 2);
        for (built, read) in surface.frames().iter().zip(&out) {
            let SurfaceFrame::Device(device) = read else {
                panic!("{abi}: a CUDA device frame read as host memory")
            };
            let base = built.data.as_ptr() as u64;
            let planes = built.offsets.len();
            assert_eq!(
                (device.format, device.width, device.height),
                (built.format, built.width as usize, built.height as usize)
            );
            for i in 0..3 {
                let (ptr, stride) = if i < planes {
                    (base + built.offsets[i] as u64, built.pitches[i] as usize)
                } else {
                    (0, 0)
                };
                assert_eq!(
                    (device.planes[i], device.strides[i]),
                    (ptr, stride),
                    "{abi} plane {i}"
                );
            }
        }
    }
    // CUDA arrays are not linear memory: still refused.
    let array = HostSurface::new(Abi::Ds8, MemType::CudaArray, 1, vec![nv12_frame()], false);
    assert_eq!(
        unsafe { read_surface(array.as_ref()) }.unwrap_err(),
        NvmmError::DeviceMemory {
            index: 0,
            mem_type: MemType::CudaArray
        }
    );
}

#[test]
fn surface_arrays_are_read_through_their_cpu_mapping_only() {
    let unmapped = HostSurface::new(
        Abi::Ds6,
        MemType::SurfaceArray,
        1,
        vec![nv12_frame()],
        false,
    );
    assert_eq!(
        unsafe { read_frames(unmapped.as_ref()) }.unwrap_err(),
        NvmmError::NotMapped {
            index: 0,
            mem_type: MemType::SurfaceArray
        }
    );
    for mem_type in [MemType::SurfaceArray, MemType::Handle] {
        let mapped = HostSurface::new(Abi::Ds8, mem_type, 1, vec![nv12_frame()], true);
        let (_, frames) = unsafe { read_frames(mapped.as_ref()) }.unwrap();
        assert_eq!(rows(&frames[0], 1, 6, 2), (10..22).collect::<Vec<u8>>());
    }
}

#[test]
fn malformed_headers_and_planes_are_errors_not_crashes() {
    let mut surface = HostSurface::new(Abi::Ds8, MemType::System, 2, vec![rgba_frame(0)], false);
    surface.set_header(1, 2, MemType::System.raw());
    assert_eq!(
        unsafe { read_frames(surface.as_ref()) }.unwrap_err(),
        NvmmError::Overfilled {
            num_filled: 2,
            batch_size: 1
        }
    );
    surface.set_header(2, 0, MemType::System.raw());
    let (info, frames) = unsafe { read_frames(surface.as_ref()) }.unwrap();
    assert_eq!(
        (info.num_filled, frames.len()),
        (0, 0),
        "an empty batch has no frames"
    );

    let mut narrow = rgba_frame(0);
    narrow.pitches[0] = 8; // less than 5 pixels * 4 bytes
    let surface = HostSurface::new(Abi::Ds6, MemType::System, 1, vec![narrow], false);
    let err = unsafe { read_frames(surface.as_ref()) }.unwrap_err();
    assert!(err.to_string().contains("pitch 8 < 20"), "{err}");

    let mut short = rgba_frame(0);
    short.data.truncate(100);
    let surface = HostSurface::new(Abi::Ds6, MemType::System, 1, vec![short], false);
    let err = unsafe { read_frames(surface.as_ref()) }.unwrap_err();
    assert!(err.to_string().contains("exceeds dataSize 100"), "{err}");

    assert_eq!(pixel_format(55), None);
    assert_eq!(
        pixel_format(color_format(PixelFormat::Bgrx)),
        Some(PixelFormat::Bgrx)
    );
}

/// Stand-ins for libnvbufsurface's map calls (which exist only on NVIDIA machines), acting on
/// the DeepStream 8 surfaces these tests build: map publishes `dataPtr` + plane offsets in
/// `mappedAddr.addr` as the real call does for memory the CPU can reach; unmap clears it. Calls
/// are logged per test thread, since parallel tests may build surfaces at the same address.
mod standin {
    use super::*;
    use std::cell::RefCell;
    use std::ffi::c_int;

    thread_local! {
        static CALLS: RefCell<Vec<(&'static str, c_int)>> = const { RefCell::new(Vec::new()) };
    }

    fn log(call: &'static str, index: c_int) {
        CALLS.with(|calls| calls.borrow_mut().push((call, index)));
    }

    /// The calls this thread made since the last `take_calls`.
    pub fn take_calls() -> Vec<(&'static str, c_int)> {
        CALLS.with(|calls| calls.take())
    }

    unsafe fn entry(surface: *mut c_void, index: c_int) -> *mut NvBufSurfaceParamsDs8 {
        let head = surface as *const NvBufSurfaceDs8;
        (*head).surface_list.add(index as usize)
    }

    pub unsafe extern "C" fn map(
        surface: *mut c_void,
        index: c_int,
        plane: c_int,
        flags: c_int,
    ) -> c_int {
        assert_eq!((plane, flags), (-1, 0), "all planes, NVBUF_MAP_READ");
        log("map", index);
        let p = entry(surface, index);
        for i in 0..(*p).plane_params.num_planes as usize {
            let offset = (*p).plane_params.offset[i] as usize;
            (*p).mapped_addr.addr[i] = ((*p).data_ptr as *mut u8).add(offset) as *mut c_void;
        }
        0
    }

    /// Fails on entry 1, as the real call does on a surface it cannot map.
    pub unsafe extern "C" fn map_failing_on_1(
        surface: *mut c_void,
        index: c_int,
        plane: c_int,
        flags: c_int,
    ) -> c_int {
        if index == 1 {
            log("map", index);
            return -1;
        }
        map(surface, index, plane, flags)
    }

    pub unsafe extern "C" fn sync_for_cpu(
        _surface: *mut c_void,
        index: c_int,
        plane: c_int,
    ) -> c_int {
        assert_eq!(plane, -1);
        log("sync", index);
        0
    }

    pub unsafe extern "C" fn unmap(surface: *mut c_void, index: c_int, plane: c_int) -> c_int {
        assert_eq!(plane, -1);
        log("unmap", index);
        (*entry(surface, index)).mapped_addr.addr = [std::ptr::null_mut(); NVBUF_MAX_PLANES];
        0
    }

    pub fn api() -> Result<cpu_map::NvBufSurfaceApi, String> {
        Ok(cpu_map::NvBufSurfaceApi {
            map,
            sync_for_cpu,
            unmap,
        })
    }
}

#[test]
fn unmapped_surface_arrays_are_mapped_read_and_unmapped() {
    for mem_type in [MemType::SurfaceArray, MemType::Handle] {
        let surface = HostSurface::new(
            Abi::Ds8,
            mem_type,
            4,
            vec![nv12_frame(), rgba_frame(3)],
            false,
        );
        let bytes = surface.as_ref();
        let mapping = unsafe { cpu_map::map_for_cpu(bytes, standin::api) }
            .unwrap()
            .expect("unmapped entries get mapped");
        assert_eq!(mapping.indices(), &[0, 1]);
        let (_, frames) = unsafe { read_frames(bytes) }.unwrap();
        assert_eq!(rows(&frames[0], 1, 6, 2), (10..22).collect::<Vec<u8>>());
        assert_eq!(
            rows(&frames[1], 0, 20, 1),
            rgba_frame(3).data[..20].to_vec(),
            "first row of the RGBA entry"
        );
        drop(frames);
        drop(mapping);
        assert_eq!(
            standin::take_calls(),
            [
                ("map", 0),
                ("sync", 0),
                ("map", 1),
                ("sync", 1),
                ("unmap", 0),
                ("unmap", 1)
            ]
        );
        assert_eq!(
            unsafe { read_frames(surface.as_ref()) }.unwrap_err(),
            NvmmError::NotMapped { index: 0, mem_type },
            "unmapped again once the mapping is dropped"
        );
    }
}

#[test]
fn surfaces_that_need_no_mapping_never_load_the_library() {
    let no_library =
        || -> Result<cpu_map::NvBufSurfaceApi, String> { panic!("libnvbufsurface asked for") };
    let mapped = HostSurface::new(Abi::Ds8, MemType::SurfaceArray, 1, vec![nv12_frame()], true);
    let system = HostSurface::new(Abi::Ds6, MemType::System, 1, vec![nv12_frame()], false);
    for surface in [&mapped, &system] {
        assert!(
            unsafe { cpu_map::map_for_cpu(surface.as_ref(), no_library) }
                .unwrap()
                .is_none()
        );
    }
}

#[test]
fn a_failed_map_is_an_error_and_unmaps_what_was_mapped() {
    let surface = HostSurface::new(
        Abi::Ds8,
        MemType::SurfaceArray,
        2,
        vec![nv12_frame(), nv12_frame()],
        false,
    );
    let api = || {
        Ok(cpu_map::NvBufSurfaceApi {
            map: standin::map_failing_on_1,
            ..standin::api()?
        })
    };
    let err = unsafe { cpu_map::map_for_cpu(surface.as_ref(), api) }
        .err()
        .expect("entry 1 cannot be mapped");
    assert_eq!(
        err.to_string(),
        "NvBufSurface frame 1: NvBufSurfaceMap failed (-1) on NVBUF_MEM_SURFACE_ARRAY"
    );
    assert_eq!(
        standin::take_calls(),
        [("map", 0), ("sync", 0), ("map", 1), ("unmap", 0)]
    );
}

#[test]
fn without_libnvbufsurface_surface_arrays_name_the_library() {
    let surface = HostSurface::new(
        Abi::Ds6,
        MemType::SurfaceArray,
        1,
        vec![nv12_frame()],
        false,
    );
    // The real loader: this machine has no libnvbufsurface unless DeepStream or JetPack is here.
    let loaded = cpu_map::NvBufSurfaceApi::load();
    if loaded.is_ok() {
        return;
    }
    let err = unsafe { cpu_map::map_for_cpu(surface.as_ref(), cpu_map::NvBufSurfaceApi::load) }
        .err()
        .expect("no library, no mapping");
    let text = err.to_string();
    assert!(
        text.contains("NVBUF_MEM_SURFACE_ARRAY surfaces are read through libnvbufsurface")
            && text.contains("libnvbufsurface.so.1.0.0")
            && text.contains("libnvbufsurface.so:"),
        "{text}"
    );
}
