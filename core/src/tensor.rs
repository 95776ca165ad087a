//! A dense, row-major f32 tensor: the only tensor type that crosses module boundaries, so no
//! backend's own types leak into the element or the decoders.

#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// The ONNX tensor name (output blob name), or empty for anonymous tensors.
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Tensor {
    /// Panics if `data.len()` is not the product of `shape`: callers build tensors from shapes
    /// they computed, so a mismatch is a programming error.
    pub fn new(name: impl Into<String>, shape: Vec<usize>, data: Vec<f32>) -> Self {
        let expected: usize = shape.iter().product();
        assert_eq!(
            expected,
            data.len(),
            "tensor data does not match shape {shape:?}"
        );
        Tensor {
            name: name.into(),
            shape,
            data,
        }
    }

    pub fn zeros(name: impl Into<String>, shape: Vec<usize>) -> Self {
        let len = shape.iter().product();
        Tensor {
            name: name.into(),
            shape,
            data: vec![0.0; len],
        }
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The slice of batch element `index` (first dimension).
    pub fn batch_item(&self, index: usize) -> &[f32] {
        let per_item = if self.shape.is_empty() {
            1
        } else {
            self.data.len() / self.shape[0].max(1)
        };
        &self.data[index * per_item..(index + 1) * per_item]
    }

    /// Shape without the leading batch dimension.
    pub fn item_shape(&self) -> &[usize] {
        if self.shape.is_empty() {
            &self.shape
        } else {
            &self.shape[1..]
        }
    }
}
