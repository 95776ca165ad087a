//! The machine facts a TensorRT engine depends on (engine cache key), read through the NVIDIA
//! driver and TensorRT libraries opened at run time: GPU name and compute capability from
//! libcuda, TensorRT's version from libnvinfer. Without them, each call says which library is
//! missing. Nothing here has run on a machine with a GPU.

use std::ffi::{c_char, c_int, c_uint};

use libloading::Library;

/// GPU name and compute capability (SM).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GpuInfo {
    pub name: String,
    pub sm: (u32, u32),
}

const CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: c_int = 75;
const CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: c_int = 76;

fn open_first(names: &[&str]) -> Result<Library, String> {
    let mut errors = Vec::new();
    for name in names {
        // SAFETY: opening NVIDIA's driver/TensorRT libraries runs only their own initialisers.
        match unsafe { Library::new(name) } {
            Ok(lib) => return Ok(lib),
            Err(e) => errors.push(e.to_string()),
        }
    }
    Err(errors.join("; "))
}

/// Name and compute capability of CUDA device `ordinal` (the config's gpu-id).
pub fn gpu_info(ordinal: u32) -> Result<GpuInfo, String> {
    let lib = open_first(&["libcuda.so.1", "libcuda.so"])?;
    type Init = unsafe extern "C" fn(c_uint) -> c_int;
    type DeviceGet = unsafe extern "C" fn(*mut c_int, c_int) -> c_int;
    type GetName = unsafe extern "C" fn(*mut c_char, c_int, c_int) -> c_int;
    type GetAttribute = unsafe extern "C" fn(*mut c_int, c_int, c_int) -> c_int;
    // SAFETY: the CUDA driver API prototypes (cuda.h); every out-pointer is valid.
    unsafe {
        let symbol = |name: &str| format!("libcuda lacks {name}");
        let init: libloading::Symbol<Init> = lib.get(b"cuInit").map_err(|_| symbol("cuInit"))?;
        let device_get: libloading::Symbol<DeviceGet> =
            lib.get(b"cuDeviceGet").map_err(|_| symbol("cuDeviceGet"))?;
        let get_name: libloading::Symbol<GetName> = lib
            .get(b"cuDeviceGetName")
            .map_err(|_| symbol("cuDeviceGetName"))?;
        let get_attribute: libloading::Symbol<GetAttribute> = lib
            .get(b"cuDeviceGetAttribute")
            .map_err(|_| symbol("cuDeviceGetAttribute"))?;
        let check = |what: &str, code: c_int| {
            if code == 0 {
                Ok(())
            } else {
                Err(format!("{what} failed with CUDA error {code}"))
            }
        };
        check("cuInit", init(0))?;
        let mut device: c_int = 0;
        check("cuDeviceGet", device_get(&mut device, ordinal as c_int))?;
        let mut name = [0 as c_char; 256];
        check(
            "cuDeviceGetName",
            get_name(name.as_mut_ptr(), name.len() as c_int, device),
        )?;
        let (mut major, mut minor) = (0, 0);
        check(
            "cuDeviceGetAttribute",
            get_attribute(
                &mut major,
                CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
                device,
            ),
        )?;
        check(
            "cuDeviceGetAttribute",
            get_attribute(
                &mut minor,
                CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR,
                device,
            ),
        )?;
        Ok(GpuInfo {
            name: std::ffi::CStr::from_ptr(name.as_ptr())
                .to_string_lossy()
                .into_owned(),
            sm: (major as u32, minor as u32),
        })
    }
}

/// TensorRT's version ("10.3.0") from `getInferLibVersion()` of the installed libnvinfer.
pub fn tensorrt_version() -> Result<String, String> {
    let lib = open_first(&["libnvinfer.so.10", "libnvinfer.so.8", "libnvinfer.so"])?;
    type Version = unsafe extern "C" fn() -> i32;
    // SAFETY: `int32_t getInferLibVersion()` (NvInferRuntime.h).
    let version = unsafe {
        let f: libloading::Symbol<Version> = lib
            .get(b"getInferLibVersion")
            .map_err(|_| "libnvinfer lacks getInferLibVersion".to_string())?;
        f()
    };
    Ok(tensorrt_version_text(version))
}

/// `NV_TENSORRT_VERSION` as text: TensorRT 10 encodes major*10000 + minor*100 + patch,
/// TensorRT 8 major*1000 + minor*100 + patch.
pub fn tensorrt_version_text(version: i32) -> String {
    let v = version.max(0);
    if v >= 10_000 {
        format!("{}.{}.{}", v / 10_000, (v / 100) % 100, v % 100)
    } else {
        format!("{}.{}.{}", v / 1000, (v / 100) % 10, v % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensorrt_versions_decode_for_8_and_10() {
        assert_eq!(tensorrt_version_text(100300), "10.3.0");
        assert_eq!(tensorrt_version_text(101301), "10.13.1");
        assert_eq!(tensorrt_version_text(8601), "8.6.1");
    }

    #[test]
    fn without_the_driver_the_error_names_the_library() {
        if std::path::Path::new("/dev/nvidiactl").exists() {
            eprintln!("an NVIDIA driver is present; the absent-driver path is not checked");
            return;
        }
        let err = gpu_info(0).unwrap_err();
        assert!(
            err.contains("libcuda") || err.contains("CUDA error"),
            "{err}"
        );
    }
}
