//! Fibers: features of every degree, and the few tensor moves they need.
//!
//! Inside the library a fiber keeps channels last, one tensor per degree `l`
//! shaped `[..., 2l+1, C_l]`, so that every channel mixing is one plain
//! matrix product on the last axis. The public layout (model inputs and
//! outputs) is `[B, N, C_l, 2l+1]`, with degree 1 in Cartesian `(x, y, z)`
//! order; [`to_public`] and [`from_public`] convert at the boundary.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

/// Component order of degree 1 inside the library: `(y, z, x)` as Cartesian axes.
const SPHERICAL_FROM_CARTESIAN: [i64; 3] = [1, 2, 0];
/// Inverse permutation: Cartesian `(x, y, z)` from `(y, z, x)`.
const CARTESIAN_FROM_SPHERICAL: [i64; 3] = [2, 0, 1];

/// `x W` over the last axis for any rank: `[..., C_in] x [C_in, C_out] -> [..., C_out]`.
pub(crate) fn matmul_last<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    weight: Tensor<B, 2>,
) -> Tensor<B, D> {
    let mut dims = x.dims();
    let c_in = dims[D - 1];
    let rows = x.shape().num_elements() / c_in.max(1);
    let [_, c_out] = weight.dims();
    dims[D - 1] = c_out;
    x.reshape([rows, c_in]).matmul(weight).reshape(dims)
}

/// A `[C]` vector reshaped to broadcast over the last axis of a rank-`D` tensor.
pub(crate) fn broadcast_last<B: Backend, const D: usize>(v: Tensor<B, 1>) -> Tensor<B, D> {
    let mut dims = [1usize; D];
    dims[D - 1] = v.dims()[0];
    v.reshape(dims)
}

/// Gather node rows for every neighbour slot.
///
/// # Shapes
/// - `nodes`: `[B, N, M, C]`
/// - `neighbors`: `[B, N, K]` indices into the node axis
/// - output: `[B, N, K, M, C]`
pub(crate) fn gather_neighbors<B: Backend>(
    nodes: Tensor<B, 4>,
    neighbors: Tensor<B, 3, Int>,
) -> Tensor<B, 5> {
    let [batch, n, m, c] = nodes.dims();
    let [_, rows, k] = neighbors.dims();
    let device = nodes.device();
    let offsets = Tensor::<B, 1, Int>::arange(0..batch as i64, &device)
        .mul_scalar(n as i64)
        .reshape([batch, 1, 1]);
    let flat_index = (neighbors + offsets).reshape([batch * rows * k]);
    nodes
        .reshape([batch * n, m * c])
        .select(0, flat_index)
        .reshape([batch, rows, k, m, c])
}

fn permutation<B: Backend>(order: [i64; 3], device: &B::Device) -> Tensor<B, 1, Int> {
    Tensor::from_data(TensorData::new(order.to_vec(), [3]), device)
}

/// Public layout `[B, N, C, 2l+1]` (degree 1 Cartesian) to internal `[B, N, 2l+1, C]`.
pub fn from_public<B: Backend>(l: usize, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let x = if l == 1 {
        let device = x.device();
        x.select(3, permutation::<B>(SPHERICAL_FROM_CARTESIAN, &device))
    } else {
        x
    };
    x.swap_dims(2, 3)
}

/// Internal layout `[B, N, 2l+1, C]` to public `[B, N, C, 2l+1]` (degree 1 Cartesian).
pub fn to_public<B: Backend>(l: usize, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let x = x.swap_dims(2, 3);
    if l == 1 {
        let device = x.device();
        x.select(3, permutation::<B>(CARTESIAN_FROM_SPHERICAL, &device))
    } else {
        x
    }
}

/// Cartesian `(x, y, z)` vectors `[..., 3]` reordered to degree-1 components `(y, z, x)`.
pub fn cartesian_to_degree_one<B: Backend, const D: usize>(v: Tensor<B, D>) -> Tensor<B, D> {
    let device = v.device();
    v.select(D - 1, permutation::<B>(SPHERICAL_FROM_CARTESIAN, &device))
}

/// Degree-1 components `(y, z, x)` `[..., 3]` reordered to Cartesian `(x, y, z)`.
pub fn degree_one_to_cartesian<B: Backend, const D: usize>(v: Tensor<B, D>) -> Tensor<B, D> {
    let device = v.device();
    v.select(D - 1, permutation::<B>(CARTESIAN_FROM_SPHERICAL, &device))
}
