//! Integer tensor arithmetic on the host: the shape sub-graphs (Shape -> Gather -> Concat ->
//! Reshape ...) that ONNX exporters emit are folded here instead of on the device.

/// Row-major strides of `dims`.
pub(crate) fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

/// Numpy broadcast of two shapes, or `None` where they are incompatible.
pub(crate) fn broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for (i, slot) in out.iter_mut().enumerate() {
        let da = if i + a.len() >= rank {
            a[i + a.len() - rank]
        } else {
            1
        };
        let db = if i + b.len() >= rank {
            b[i + b.len() - rank]
        } else {
            1
        };
        *slot = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

/// Builds a tensor of shape `out_dims` whose element at each multi-index is
/// `src[index(multi_index)]`.
pub(crate) fn map_indices<T: Copy>(
    out_dims: &[usize],
    src: &[T],
    index: impl Fn(&[usize]) -> usize,
) -> Vec<T> {
    let numel: usize = out_dims.iter().product();
    let mut out = Vec::with_capacity(numel);
    let mut idx = vec![0usize; out_dims.len()];
    for _ in 0..numel {
        out.push(src[index(&idx)]);
        for axis in (0..out_dims.len()).rev() {
            idx[axis] += 1;
            if idx[axis] < out_dims[axis] {
                break;
            }
            idx[axis] = 0;
        }
    }
    out
}

/// `src` (shape `dims`) broadcast to `out_dims` (which `broadcast_shape` produced).
pub(crate) fn broadcast_to<T: Copy>(src: &[T], dims: &[usize], out_dims: &[usize]) -> Vec<T> {
    let st = strides(dims);
    let offset = out_dims.len() - dims.len();
    map_indices(out_dims, src, |idx| {
        dims.iter()
            .enumerate()
            .map(|(i, &d)| if d == 1 { 0 } else { idx[i + offset] * st[i] })
            .sum()
    })
}

/// Picks `indices[a]` along every axis `a` (Slice with any steps).
pub(crate) fn select_per_axis<T: Copy>(
    src: &[T],
    dims: &[usize],
    indices: &[Vec<usize>],
) -> Vec<T> {
    let st = strides(dims);
    let out_dims: Vec<usize> = indices.iter().map(Vec::len).collect();
    map_indices(&out_dims, src, |idx| {
        idx.iter()
            .enumerate()
            .map(|(a, &i)| indices[a][i] * st[a])
            .sum()
    })
}

/// Axes permuted: output axis `i` is input axis `perm[i]`.
pub(crate) fn transpose<T: Copy>(src: &[T], dims: &[usize], perm: &[usize]) -> Vec<T> {
    let st = strides(dims);
    let out_dims: Vec<usize> = perm.iter().map(|&p| dims[p]).collect();
    map_indices(&out_dims, src, |idx| {
        idx.iter().enumerate().map(|(i, &v)| v * st[perm[i]]).sum()
    })
}

/// Gather along `axis` with already-normalised `indices` of shape `index_dims`.
pub(crate) fn gather<T: Copy>(
    src: &[T],
    dims: &[usize],
    axis: usize,
    indices: &[usize],
    index_dims: &[usize],
) -> (Vec<usize>, Vec<T>) {
    let st = strides(dims);
    let ist = strides(index_dims);
    let mut out_dims = dims[..axis].to_vec();
    out_dims.extend_from_slice(index_dims);
    out_dims.extend_from_slice(&dims[axis + 1..]);
    let ni = index_dims.len();
    let data = map_indices(&out_dims, src, |idx| {
        let mut flat = 0;
        for a in 0..axis {
            flat += idx[a] * st[a];
        }
        let k: usize = (0..ni).map(|j| idx[axis + j] * ist[j]).sum();
        flat += indices[k] * st[axis];
        for a in axis + 1..dims.len() {
            flat += idx[a + ni - 1] * st[a];
        }
        flat
    });
    (out_dims, data)
}

/// Concatenation along `axis` of tensors whose other dimensions agree.
pub(crate) fn concat<T: Copy>(parts: &[(Vec<usize>, Vec<T>)], axis: usize) -> (Vec<usize>, Vec<T>) {
    let mut out_dims = parts[0].0.clone();
    out_dims[axis] = parts.iter().map(|(d, _)| d[axis]).sum();
    let outer: usize = out_dims[..axis].iter().product();
    let mut data = Vec::with_capacity(out_dims.iter().product());
    for o in 0..outer {
        for (dims, values) in parts {
            let block: usize = dims[axis..].iter().product();
            data.extend_from_slice(&values[o * block..(o + 1) * block]);
        }
    }
    (out_dims, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_and_concat_fold_shape_arithmetic() {
        let (dims, data) = gather(&[1i64, 3, 224, 224], &[4], 0, &[0, 2], &[2]);
        assert_eq!((dims, data), (vec![2], vec![1, 224]));
        let (dims, data) = concat(&[(vec![2], vec![1i64, 224]), (vec![1], vec![-1])], 0);
        assert_eq!((dims, data), (vec![3], vec![1, 224, -1]));
        let (dims, data) = gather(&[0i64, 1, 2, 3, 4, 5], &[2, 3], 1, &[2, 0], &[2]);
        assert_eq!((dims, data), (vec![2, 2], vec![2, 0, 5, 3]));
    }

    #[test]
    fn broadcast_and_transpose_follow_numpy() {
        assert_eq!(broadcast_shape(&[2, 1, 3], &[4, 1]), Some(vec![2, 4, 3]));
        assert_eq!(broadcast_shape(&[2, 3], &[4]), None);
        assert_eq!(
            broadcast_to(&[1, 2], &[2, 1], &[2, 3]),
            vec![1, 1, 1, 2, 2, 2]
        );
        assert_eq!(
            transpose(&[1, 2, 3, 4, 5, 6], &[2, 3], &[1, 0]),
            vec![1, 4, 2, 5, 3, 6]
        );
        assert_eq!(
            select_per_axis(&[1, 2, 3, 4, 5, 6], &[2, 3], &[vec![1], vec![2, 0]]),
            vec![6, 4]
        );
    }
}
