//! Equivariant graph neural networks for 3D atomistic graphs, on any Burn backend.
//!
//! - [`Equiformer`]: the SE(3)-equivariant graph attention transformer, with
//!   the options of equiformer-pytorch under the same names;
//! - [`schnet`]: the invariant SchNet baseline;
//! - [`potential`]: interatomic potentials (periodic neighbour graphs, energies, forces,
//!   stress, and conservative-force training) for both;
//! - [`layers`], [`attention`], [`tensor_product`]: the equivariant building blocks;
//!   [`so2_convolution`]: the edge-frame (SO(2)) implementation of the messages.
//!
//! Features of degree `l` travel as one tensor per degree ("fiber"); the
//! public layout is `[B, N, C_l, 2l+1]` with degree 1 in Cartesian `(x, y, z)`.

pub mod attention;
pub mod edges;
pub mod equiformer;
pub mod error;
pub mod fiber;
pub mod geometry;
mod host_ops;
pub mod layers;
pub mod linear_attention;
pub mod potential;
pub mod schnet;
pub mod so2_convolution;
pub mod tensor_product;
mod validation;

#[cfg(test)]
mod layer_equivariance;

pub use attention::{AttentionKind, EquivariantAttention, EquivariantAttentionConfig};
pub use equiformer::{
    Equiformer, EquiformerConfig, EquiformerInput, EquiformerOutput, LossGradients, NodeInput,
};
pub use error::ModelError;
pub use host_ops::{fused_kernels, set_fused_kernels};
pub use so2_convolution::{EdgeFrames, MessagePath};
