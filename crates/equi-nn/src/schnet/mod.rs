//! SchNet, the invariant continuous-filter convolution network of
//! Schütt et al., "SchNet: A continuous-filter convolutional neural network
//! for modeling quantum interactions" (NeurIPS 2017), structured like the
//! torch_geometric `SchNet`.
//!
//! Molecules come as padded batches: atomic numbers `[B, N]`, positions
//! `[B, N, 3]` and a mask `[B, N]` that is true for real atoms. Each atom is
//! embedded from its atomic number (1..=100; row 0 of the table is reserved
//! for padding), connected to at most `max_num_neighbors` nearest atoms of
//! its own molecule within `cutoff` (atoms at distance exactly zero are not
//! connected), refined by residual interaction blocks and read out into one
//! vector per molecule by summing over real atoms. The prediction is
//! invariant to rotations, translations and permutations of the atoms.
//!
//! # Example
//!
//! ```
//! use burn::backend::NdArray;
//! use burn::tensor::{Bool, Int, Tensor};
//! use equi_nn::schnet::{SchNetConfig, SchNetError};
//!
//! let device = Default::default();
//! let model = SchNetConfig::new()
//!     .with_num_interactions(3)
//!     .init::<NdArray>(&device);
//!
//! // Water and a hydrogen molecule, padded to three atoms.
//! let atomic_numbers = Tensor::<NdArray, 2, Int>::from_ints([[8, 1, 1], [1, 1, 0]], &device);
//! let positions = Tensor::<NdArray, 3>::from_floats(
//!     [
//!         [[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]],
//!         [[0.0, 0.0, 0.0], [0.74, 0.0, 0.0], [0.0, 0.0, 0.0]],
//!     ],
//!     &device,
//! );
//! let mask = Tensor::<NdArray, 2, Bool>::from_data(
//!     [[true, true, true], [true, true, false]],
//!     &device,
//! );
//!
//! let energies = model.forward_checked(atomic_numbers, positions, mask)?;
//! assert_eq!(energies.dims(), [2, 1]);
//! # Ok::<(), SchNetError>(())
//! ```

mod activation;
mod error;
mod graph;
mod interaction;
mod model;

pub use activation::shifted_softplus;
pub use error::{validate_inputs, SchNetError, MAX_ATOMIC_NUMBER};
pub use graph::{gather_neighbors, radius_graph, NeighborList};
pub use interaction::{cosine_cutoff, CfConv, FilterNetwork, GaussianSmearing, InteractionBlock};
pub use model::{SchNet, SchNetConfig, SchNetRecord, PADDING_ATOMIC_NUMBER};

#[cfg(test)]
mod tests;
