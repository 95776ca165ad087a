//! [`super::preprocess`] on the GPU: `preprocess.cu` compiled at run time with NVRTC and launched
//! through cudarc (libcuda and libnvrtc are loaded when first used, nothing CUDA is needed at
//! build time). Frames already in device memory (NVMM surfaces of CUDA memory types) are read
//! where they are, so only the network-sized tensor leaves the GPU.

use std::sync::Arc;

use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig, PushKernelArg,
};

use super::{
    check, check_geometry, DeviceFrame, FrameView, PreprocessError, PreprocessParams, Rect,
    Transform,
};

/// The kernel's source; `core/tests/preprocess_cuda_source.rs` runs it on the host.
pub const KERNEL_SOURCE: &str = include_str!("preprocess.cu");

#[derive(Debug, thiserror::Error)]
pub enum GpuPreprocessError {
    #[error(transparent)]
    Frame(#[from] PreprocessError),
    #[error("CUDA is unavailable: {0}")]
    Unavailable(String),
    #[error("NVRTC could not compile the pre-processing kernel: {0}")]
    Compile(String),
    #[error("CUDA error in pre-processing: {0}")]
    Cuda(String),
}

fn cuda(e: impl std::fmt::Display) -> GpuPreprocessError {
    GpuPreprocessError::Cuda(e.to_string())
}

/// A host frame's planes in GPU memory (freed with it), as [`GpuPreprocessor::run_device`] reads
/// them.
pub struct UploadedFrame {
    _planes: Vec<CudaSlice<u8>>,
    frame: DeviceFrame,
}

impl UploadedFrame {
    pub fn frame(&self) -> &DeviceFrame {
        &self.frame
    }
}

/// The compiled kernel on one GPU.
pub struct GpuPreprocessor {
    gpu_id: usize,
    stream: Arc<CudaStream>,
    function: CudaFunction,
    /// The network input of [`GpuPreprocessor::run_device_to_host`], kept between frames.
    scratch: Option<CudaSlice<f32>>,
}

impl GpuPreprocessor {
    /// Creates a context on GPU `gpu_id` (its primary context, the one DeepStream's CUDA
    /// runtime calls use) and compiles the kernel.
    pub fn new(gpu_id: usize) -> Result<Self, GpuPreprocessError> {
        // cudarc panics when a library it dlopens is missing; probe first.
        // SAFETY: dlopen probes without side effects beyond the library handle cache.
        let driver = unsafe { cudarc::driver::sys::is_culib_present() };
        let nvrtc = unsafe { cudarc::nvrtc::sys::is_culib_present() };
        if !driver || !nvrtc {
            return Err(GpuPreprocessError::Unavailable(format!(
                "{} could not be loaded (set LD_LIBRARY_PATH to the CUDA libraries)",
                if driver { "libnvrtc" } else { "libcuda" }
            )));
        }
        let context = CudaContext::new(gpu_id)
            .map_err(|e| GpuPreprocessError::Unavailable(format!("GPU {gpu_id}: {e}")))?;
        let ptx = cudarc::nvrtc::compile_ptx(KERNEL_SOURCE)
            .map_err(|e| GpuPreprocessError::Compile(e.to_string()))?;
        let module = context.load_module(ptx).map_err(cuda)?;
        let function = module.load_function("nvtl_preprocess").map_err(cuda)?;
        Ok(GpuPreprocessor {
            gpu_id,
            stream: context.default_stream(),
            function,
            scratch: None,
        })
    }

    /// The GPU this pre-processor runs on.
    pub fn gpu_id(&self) -> usize {
        self.gpu_id
    }

    /// Pre-processes a frame in device memory; only the network input comes back to `out`.
    pub fn run_device_to_host(
        &mut self,
        frame: &DeviceFrame,
        roi: Rect,
        params: &PreprocessParams,
        out: &mut [f32],
    ) -> Result<Transform, GpuPreprocessError> {
        let mut scratch = match self.scratch.take() {
            Some(s) if s.len() == out.len() => s,
            _ => self.stream.alloc_zeros::<f32>(out.len()).map_err(cuda)?,
        };
        let result = self
            .run_device(frame, roi, params, &mut scratch)
            .and_then(|t| {
                self.stream.memcpy_dtoh(&scratch, out).map_err(cuda)?;
                self.stream.synchronize().map_err(cuda)?;
                Ok(t)
            });
        self.scratch = Some(scratch);
        result
    }

    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// Copies a host frame's planes to the GPU.
    pub fn upload(&self, frame: &FrameView) -> Result<UploadedFrame, GpuPreprocessError> {
        frame.validate()?;
        let planes: Vec<CudaSlice<u8>> = frame
            .planes
            .iter()
            .map(|p| self.stream.clone_htod(*p))
            .collect::<Result<_, _>>()
            .map_err(cuda)?;
        let mut device = DeviceFrame {
            format: frame.format,
            width: frame.width,
            height: frame.height,
            planes: [0; 3],
            strides: [0; 3],
        };
        for (i, plane) in planes.iter().enumerate() {
            // Everything runs on this one stream, which orders the kernels after the copies.
            let (ptr, _sync) = cudarc::driver::DevicePtr::device_ptr(plane, &self.stream);
            device.planes[i] = ptr;
            device.strides[i] = frame.strides[i];
        }
        Ok(UploadedFrame {
            _planes: planes,
            frame: device,
        })
    }

    /// Pre-processes a frame in host memory: its planes are uploaded, the tensor comes back.
    pub fn run_host(
        &self,
        frame: &FrameView,
        roi: Rect,
        params: &PreprocessParams,
        out: &mut [f32],
    ) -> Result<Transform, GpuPreprocessError> {
        let placement = check(frame, roi, params, out.len())?;
        let uploaded = self.upload(frame)?;
        let mut tensor = self.stream.alloc_zeros::<f32>(out.len()).map_err(cuda)?;
        self.launch_into_slice(uploaded.frame(), roi, params, placement, &mut tensor)?;
        self.stream.memcpy_dtoh(&tensor, out).map_err(cuda)?;
        self.stream.synchronize().map_err(cuda)?;
        Ok(Transform::of_placement(roi, placement))
    }

    /// Pre-processes a frame already in device memory into `out` (device memory).
    pub fn run_device(
        &self,
        frame: &DeviceFrame,
        roi: Rect,
        params: &PreprocessParams,
        out: &mut CudaSlice<f32>,
    ) -> Result<Transform, GpuPreprocessError> {
        check_device_planes(frame)?;
        let placement = device_check(frame, roi, params, out.len())?;
        self.launch_into_slice(frame, roi, params, placement, out)?;
        Ok(Transform::of_placement(roi, placement))
    }

    /// Pre-processes a frame in device memory into a model's device input (see
    /// `Session::device_input`), queued on that input's `stream`.
    ///
    /// # Safety
    /// `out` must be the device address of `out_len` writable f32 on this pre-processor's GPU,
    /// valid until the work queued on `stream` has run.
    pub unsafe fn run_device_into(
        &self,
        stream: &CudaStream,
        frame: &DeviceFrame,
        roi: Rect,
        params: &PreprocessParams,
        out: u64,
        out_len: usize,
    ) -> Result<Transform, GpuPreprocessError> {
        check_device_planes(frame)?;
        let placement = device_check(frame, roi, params, out_len)?;
        self.launch(stream, frame, roi, params, placement, out)?;
        Ok(Transform::of_placement(roi, placement))
    }

    /// [`Self::launch`] on this pre-processor's stream into a buffer of its own.
    fn launch_into_slice(
        &self,
        frame: &DeviceFrame,
        roi: Rect,
        params: &PreprocessParams,
        placement: (usize, usize, usize, usize),
        out: &mut CudaSlice<f32>,
    ) -> Result<(), GpuPreprocessError> {
        let (ptr, _sync) = cudarc::driver::DevicePtrMut::device_ptr_mut(out, &self.stream);
        self.launch(&self.stream, frame, roi, params, placement, ptr)
    }

    /// Queues the kernel on `stream`, writing the tensor at device address `out`.
    fn launch(
        &self,
        stream: &CudaStream,
        frame: &DeviceFrame,
        roi: Rect,
        params: &PreprocessParams,
        (px, py, sw, sh): (usize, usize, usize, usize),
        out: u64,
    ) -> Result<(), GpuPreprocessError> {
        let int = |v: usize| i32::try_from(v).unwrap_or(i32::MAX);
        let format = frame.format.kernel_code();
        let [s0, s1, s2] = frame.strides.map(int);
        let [p0, p1, p2] = frame.planes;
        let (roi_x, roi_y, roi_w, roi_h) =
            (int(roi.x), int(roi.y), int(roi.width), int(roi.height));
        let (px, py, sw, sh) = (int(px), int(py), int(sw), int(sh));
        let (nw, nh) = (int(params.network_width), int(params.network_height));
        // preprocess.cu takes the config enums' own values (nvinfer's).
        let color = params.color_format as i32;
        let filter = params.filter as i32;
        let order = params.order as i32;
        let (mul, adds) = params.affine();
        let [add0, add1, add2] = adds;
        let config = LaunchConfig {
            grid_dim: (
                params.network_width.div_ceil(16) as u32,
                params.network_height.div_ceil(16) as u32,
                1,
            ),
            block_dim: (16, 16, 1),
            shared_mem_bytes: 0,
        };
        let mut launch = stream.launch_builder(&self.function);
        launch
            .arg(&p0)
            .arg(&p1)
            .arg(&p2)
            .arg(&s0)
            .arg(&s1)
            .arg(&s2)
            .arg(&format)
            .arg(&roi_x)
            .arg(&roi_y)
            .arg(&roi_w)
            .arg(&roi_h)
            .arg(&px)
            .arg(&py)
            .arg(&sw)
            .arg(&sh)
            .arg(&nw)
            .arg(&nh)
            .arg(&color)
            .arg(&filter)
            .arg(&order)
            .arg(&mul)
            .arg(&add0)
            .arg(&add1)
            .arg(&add2)
            .arg(&out);
        // SAFETY: the argument list matches nvtl_preprocess's signature; every plane pointer
        // covers the rows the checks above validated, and `out` holds the whole tensor (the
        // callers' contract).
        unsafe { launch.launch(config) }.map_err(cuda)?;
        Ok(())
    }
}

fn check_device_planes(frame: &DeviceFrame) -> Result<(), GpuPreprocessError> {
    if frame.planes[..frame.format.plane_count()].contains(&0) {
        return Err(GpuPreprocessError::Cuda(
            "a plane of the device frame has a null pointer".into(),
        ));
    }
    Ok(())
}

/// [`check`] for a frame whose planes cannot be read from the host: strides, the ROI and sizes.
fn device_check(
    frame: &DeviceFrame,
    roi: Rect,
    params: &PreprocessParams,
    out_len: usize,
) -> Result<(usize, usize, usize, usize), PreprocessError> {
    for plane in 0..frame.format.plane_count() {
        let (row_bytes, _) = frame.format.plane_size(plane, frame.width, frame.height);
        if frame.strides[plane] < row_bytes {
            return Err(PreprocessError::StrideTooSmall {
                plane,
                stride: frame.strides[plane],
                row_bytes,
            });
        }
    }
    check_geometry(frame.width, frame.height, roi, params, out_len)
}
