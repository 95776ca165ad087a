//! The `cuda` backend: the CPU backend's tract model, decluttered, rewritten by tract-cuda, which
//! runs the ops it has kernels for on the GPU (through cudarc: libcuda, libcudart, libnvrtc,
//! libcublas and libcudnn are loaded at run time) and the rest on the CPU. Any ONNX model the
//! CPU backend runs, runs here.

use std::sync::Arc;

use tract_gpu::tensor::{DeviceTensor, LazyHostStorage};
use tract_onnx::prelude::{tvec, DatumType, IntoTValue, TValue, TractError};
use tract_onnx::tract_core::runtime::{runtime_for_name, Runnable, State};

use super::tract_cpu::{host_outputs, tract_input, typed_model, Lowering};
use super::{
    Backend, BackendError, BackendKind, DeviceInput, ModelSpec, Plan, Session, TensorInfo,
};
use crate::tensor::Tensor;

// Linking tract-cuda registers its runtime with tract-core.
use tract_cuda as _;

pub struct TractCuda;

/// Whether tract-cuda can run here; the error names the first CUDA library or check that fails.
pub fn available() -> Result<(), String> {
    match runtime_for_name("cuda") {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err("tract-cuda is not linked into this build".into()),
        Err(e) => Err(format!("{e:#}")),
    }
}

impl Backend for TractCuda {
    fn kind(&self) -> BackendKind {
        BackendKind::Cuda
    }

    fn load(&self, spec: &ModelSpec) -> Result<Arc<dyn Plan>, BackendError> {
        let unavailable = |reason: String| BackendError::Unavailable {
            backend: BackendKind::Cuda,
            reason,
        };
        if spec.gpu_id != 0 {
            // tract-cuda drives the first visible GPU.
            return Err(unavailable(format!(
                "tract-cuda runs on the first visible GPU; for gpu-id={} start the pipeline \
                 with CUDA_VISIBLE_DEVICES={}",
                spec.gpu_id, spec.gpu_id
            )));
        }
        available().map_err(unavailable)?;
        let runtime = runtime_for_name("cuda")
            .ok()
            .flatten()
            .ok_or_else(|| unavailable("tract-cuda is not linked into this build".into()))?;
        // tract-cuda maps decluttered ops (Conv, matmul, ...) to GPU kernels; CPU-optimised
        // ones (im2col + packed matmul) it would leave on the CPU.
        let onnx = crate::model::read_onnx(&spec.onnx_path)?;
        let (typed, input, outputs) = typed_model(&onnx, spec, Lowering::Decluttered)?;
        let runnable = runtime
            .prepare(typed)
            .map_err(|e: TractError| BackendError::Prepare {
                path: spec.onnx_path.clone(),
                reason: format!("tract-cuda: {e:#}"),
            })?;
        Ok(Arc::new(CudaPlan {
            spec: spec.clone(),
            runnable: Arc::from(runnable),
            input,
            outputs,
        }))
    }
}

struct CudaPlan {
    spec: ModelSpec,
    runnable: Arc<dyn Runnable>,
    input: TensorInfo,
    outputs: Vec<TensorInfo>,
}

impl Plan for CudaPlan {
    fn backend(&self) -> BackendKind {
        BackendKind::Cuda
    }

    fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    fn input(&self) -> &TensorInfo {
        &self.input
    }

    fn outputs(&self) -> &[TensorInfo] {
        &self.outputs
    }

    fn new_session(&self) -> Result<Box<dyn Session>, BackendError> {
        let state = self
            .runnable
            .spawn()
            .map_err(|e| BackendError::Run(format!("cannot start a tract-cuda session: {e:#}")))?;
        Ok(Box::new(CudaSession {
            state,
            input_shape: self.input.shape.clone(),
            output_names: self.outputs.iter().map(|o| o.name.clone()).collect(),
            device_input: None,
        }))
    }
}

struct CudaSession {
    state: Box<dyn State>,
    input_shape: Vec<usize>,
    output_names: Vec<String>,
    /// The buffer the last `device_input` handed out.
    device_input: Option<DeviceTensor>,
}

fn cuda_error(e: TractError) -> BackendError {
    BackendError::Run(format!("tract-cuda: {e:#}"))
}

impl Session for CudaSession {
    fn run(&mut self, input: &Tensor) -> Result<Vec<Tensor>, BackendError> {
        let tensor = tract_input(input, &self.input_shape)?;
        let outputs = self
            .state
            .run(tvec![TValue::from(tensor)])
            .map_err(cuda_error)?;
        host_outputs(outputs, &self.output_names)
    }

    fn device_input_gpu(&self) -> Option<usize> {
        Some(0)
    }

    fn device_input(&mut self) -> Result<DeviceInput, BackendError> {
        // Allocated on this thread's tract-cuda stream, the one the model runs on, so that work
        // queued there to fill it is ordered before the model's kernels.
        let tensor = DeviceTensor::uninitialized_dt(DatumType::F32, &self.input_shape)
            .map_err(cuda_error)?;
        let stream =
            tract_cuda::with_cuda_stream(|stream| Ok(Arc::clone(stream))).map_err(cuda_error)?;
        let input = DeviceInput {
            stream,
            ptr: tensor.device_buffer_ptr() as u64,
            len: tensor.len(),
        };
        self.device_input = Some(tensor);
        Ok(input)
    }

    fn run_device_input(&mut self) -> Result<Vec<Tensor>, BackendError> {
        let tensor = self.device_input.take().ok_or_else(|| {
            BackendError::Run("run_device_input without a device_input to run on".into())
        })?;
        // tract-cuda's input sync takes the device tensor out of the lazy host tensor as it is.
        let input = LazyHostStorage::new(tensor)
            .map_err(cuda_error)?
            .into_tensor()
            .into_tvalue();
        let outputs = self.state.run(tvec![input]).map_err(cuda_error)?;
        host_outputs(outputs, &self.output_names)
    }
}
