//! Values flowing along graph edges: float tensors of any rank up to [`MAX_RANK`] on the burn
//! device, and integer tensors on the host (shapes, indices, axes).

use burn::tensor::{Device, Tensor, TensorData};

use super::node::{HostData, HostTensor};
use super::GraphError;

/// The highest tensor rank the executor handles.
pub const MAX_RANK: usize = 6;

/// A value produced by a node, a graph input or an initializer.
///
/// Float tensors of rank `r` are stored as `Tensor<MAX_RANK>` whose first `MAX_RANK - r`
/// dimensions are 1: numpy broadcasting then comes from burn's same-rank broadcasting, and
/// axis `a` of the ONNX tensor is axis `a + MAX_RANK - r` of the stored one.
#[derive(Clone, Debug)]
// Float values are the common case; boxing their tensor would cost an allocation per node.
#[allow(clippy::large_enum_variant)]
pub enum Value {
    Float {
        tensor: Tensor<MAX_RANK>,
        rank: usize,
    },
    /// An integer tensor computed on the host (int64 shapes and indices; bools as 0/1).
    Int { dims: Vec<usize>, data: Vec<i64> },
}

impl Value {
    /// The ONNX shape of the value.
    pub fn dims(&self) -> Vec<usize> {
        match self {
            Value::Float { tensor, rank } => tensor.dims()[MAX_RANK - rank..].to_vec(),
            Value::Int { dims, .. } => dims.clone(),
        }
    }

    pub fn rank(&self) -> usize {
        match self {
            Value::Float { rank, .. } => *rank,
            Value::Int { dims, .. } => dims.len(),
        }
    }

    /// A float value from a burn tensor of rank `D` (`D <= MAX_RANK`).
    pub fn from_tensor<const D: usize>(tensor: Tensor<D>) -> Self {
        let dims = tensor.dims();
        Value::Float {
            tensor: tensor.reshape(pad_dims(&dims)),
            rank: D,
        }
    }

    /// The value as a float burn tensor of rank `D`. Integer (host) values and other ranks
    /// are errors.
    pub fn into_rank<const D: usize>(self) -> Result<Tensor<D>, GraphError> {
        match self {
            Value::Float { tensor, rank } if rank == D => {
                let dims = tensor.dims();
                let mut out = [0usize; D];
                out.copy_from_slice(&dims[MAX_RANK - D..]);
                Ok(tensor.reshape(out))
            }
            Value::Float { rank, .. } => Err(GraphError::Graph(format!(
                "a rank-{rank} float value was asked for as rank {D}"
            ))),
            Value::Int { dims, .. } => Err(GraphError::Graph(format!(
                "an integer value of shape {dims:?} was asked for as a float tensor"
            ))),
        }
    }

    /// The elements in row-major order as f32 (float values read back from the device).
    pub fn to_f32_vec(&self) -> Vec<f32> {
        self.to_host().to_f32()
    }

    /// The value as a padded float tensor and its rank; integer values are uploaded.
    pub(crate) fn into_float(self, device: &Device) -> (Tensor<MAX_RANK>, usize) {
        match self {
            Value::Float { tensor, rank } => (tensor, rank),
            Value::Int { dims, data } => {
                let values: Vec<f32> = data.iter().map(|&x| x as f32).collect();
                (
                    Tensor::from_data(TensorData::new(values, pad_dims(&dims)), device),
                    dims.len(),
                )
            }
        }
    }

    /// The value read back to the host (floats detached from autodiff).
    pub(crate) fn to_host(&self) -> HostTensor {
        match self {
            Value::Float { tensor, .. } => {
                let values = tensor
                    .to_data()
                    .try_into_vec_as::<f32>()
                    .unwrap_or_default();
                HostTensor {
                    dims: self.dims(),
                    data: HostData::F32(values),
                }
            }
            Value::Int { dims, data } => HostTensor {
                dims: dims.clone(),
                data: HostData::I64(data.clone()),
            },
        }
    }

    /// A host tensor as a value: int data stays on the host, float data goes to `device`.
    pub(crate) fn from_host(host: &HostTensor, device: &Device) -> Self {
        match &host.data {
            HostData::I64(data) => Value::Int {
                dims: host.dims.clone(),
                data: data.clone(),
            },
            HostData::F32(data) => Value::Float {
                tensor: Tensor::from_data(
                    TensorData::new(data.clone(), pad_dims(&host.dims)),
                    device,
                ),
                rank: host.dims.len(),
            },
        }
    }
}

/// `dims` with leading 1s up to `MAX_RANK` (callers check `dims.len() <= MAX_RANK`).
pub(crate) fn pad_dims(dims: &[usize]) -> [usize; MAX_RANK] {
    let mut out = [1usize; MAX_RANK];
    let skip = MAX_RANK.saturating_sub(dims.len());
    for (slot, &d) in out[skip..]
        .iter_mut()
        .zip(dims.iter().rev().take(MAX_RANK).rev())
    {
        *slot = d;
    }
    out
}
