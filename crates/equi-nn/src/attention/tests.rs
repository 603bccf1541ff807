//! The fused attention kernels (MLP, dot product, L2 distance) against their
//! tensor operations: the same outputs and the same gradients (input fiber,
//! coordinates, every parameter), in f64, over the layer's options, with
//! padded nodes and empty slots.

use burn::backend::{Autodiff, NdArray};
use burn::module::Module;
use burn::tensor::TensorData;
use so3_math::rotation::RandomRotations;

use super::*;
use crate::geometry::{radial_basis, NeighborList, NeighborOptions};
use crate::host_ops::tests::{
    outputs_and_gradients, with_fused_kernels, FreshLeaves, PerturbedF64,
};
use crate::so2_convolution::EdgeFrames;

type Grad = Autodiff<NdArray<f64>>;

/// Six radial features per edge; two graphs of 7 nodes, the second padded after 4, each node with its 5
/// nearest neighbours: nodes of the second graph have empty slots, its
/// padded nodes none valid.
fn geometry(coords: Tensor<Grad, 3>) -> EdgeGeometry<Grad> {
    let [graphs, n, _] = coords.dims();
    let mask: Vec<bool> = (0..graphs * n).map(|i| i < n || i % n < 4).collect();
    let mask =
        Tensor::<Grad, 2, Bool>::from_data(TensorData::new(mask, [graphs, n]), &coords.device());
    let options = NeighborOptions {
        num_neighbors: Some(5),
        valid_radius: f64::INFINITY,
    };
    let neighbors = NeighborList::nearest(coords, mask.clone(), None, 0, &options);
    let distance = neighbors
        .relative
        .clone()
        .square()
        .sum_dim(3)
        .clamp_min(1e-24)
        .sqrt();
    EdgeGeometry {
        node_mask: mask,
        radial_features: radial_basis(distance.clone(), 5, 4.0),
        couplings: Vec::new(),
        frames: Some(EdgeFrames::new(&neighbors, 2)),
        envelope: None,
        distance,
        neighbors,
    }
}

/// Outputs, then the gradients of the fiber, the coordinates and every
/// parameter, of one forward pass.
fn attention_call(layer: &EquivariantAttention<Grad>, dims: &[usize], fused: bool) -> Vec<f64> {
    let layer = layer.clone().map(&mut FreshLeaves);
    with_fused_kernels(fused, || {
        let device = Default::default();
        let (graphs, n) = (2, 7);
        let mut draw = RandomRotations::new(5);
        let mut normal =
            |count: usize| -> Vec<f64> { (0..count).map(|_| draw.next_normal()).collect() };
        let coords = Tensor::<Grad, 3>::from_data(
            TensorData::new(normal(graphs * n * 3), [graphs, n, 3]),
            &device,
        )
        .require_grad();
        let fiber: Vec<Tensor<Grad, 4>> = dims
            .iter()
            .enumerate()
            .map(|(l, &c)| {
                let shape = [graphs, n, 2 * l + 1, c];
                Tensor::from_data(
                    TensorData::new(normal(shape.iter().product()), shape),
                    &device,
                )
                .require_grad()
            })
            .collect();
        let out = layer.forward(fiber.clone(), &geometry(coords.clone()));
        outputs_and_gradients(&layer, out, &fiber, &coords)
    })
}

/// Largest difference between the fused and the tensor-operation pass of
/// `layer`, relative to the largest output or gradient.
fn fused_error(layer: &EquivariantAttention<Grad>, dims: &[usize]) -> f64 {
    let reference = attention_call(layer, dims, false);
    let fused = attention_call(layer, dims, true);
    assert_eq!(reference.len(), fused.len());
    let scale = reference.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    reference
        .iter()
        .zip(&fused)
        .map(|(a, b)| {
            if b.is_finite() {
                (a - b).abs()
            } else {
                f64::INFINITY
            }
        })
        .fold(0.0, f64::max)
        / scale
}

#[test]
#[cfg_attr(
    not(feature = "ndarray"),
    ignore = "the fused kernels need the ndarray feature"
)]
fn fused_attention_matches_the_tensor_operations_with_all_gradients() {
    let dims = [5, 3, 2];
    for kind in [
        AttentionKind::Mlp,
        AttentionKind::DotProduct,
        AttentionKind::L2Distance,
    ] {
        for attend_self in [true, false] {
            for single_headed_kv in [false, true] {
                for gate_heads in [true, false] {
                    let layer = EquivariantAttentionConfig::new(
                        dims.to_vec(),
                        vec![2, 3, 1],
                        vec![3, 2, 4],
                        6,
                    )
                    .with_kind(kind)
                    .with_attend_self(attend_self)
                    .with_single_headed_kv(single_headed_kv)
                    .with_gate_attn_head_outputs(gate_heads)
                    .with_attn_hidden_dim_mult(2)
                    .with_radial_hidden(8)
                    .with_message_path(Some(MessagePath::So2))
                    .init::<Grad>(&Default::default())
                    .map(&mut PerturbedF64(RandomRotations::new(9)));
                    let error = fused_error(&layer, &dims);
                    assert!(
                        error < 1e-12,
                        "{kind:?}, attend_self {attend_self}, single_headed_kv \
                         {single_headed_kv}, gate_attn_head_outputs {gate_heads}: {error}"
                    );
                }
            }
        }
    }
}
