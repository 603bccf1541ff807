//! Interatomic potentials: energies of periodic or finite structures, and their exact
//! derivatives (forces and stress), for any model that gives per-atom energies.
//!
//! A model implements [`AtomisticModel`]: per-atom energies from an [`AtomsGraph`], the
//! padded neighbour list of a batch with one displacement vector per edge. Everything else
//! is written once, here:
//!
//! - [`PeriodicBatch`] builds the graph of a batch of [`System`]s with the periodic
//!   neighbour list of the `atoms` crate (an atom may neighbour its own images, and two
//!   edges may join the same pair with different lattice shifts);
//! - [`evaluate`] gives the energy, the forces `F = -dE/dx` and, for structures with a
//!   cell, the stress `sigma = (1/V) dE/d(strain)` (eV/A^3, ASE's sign), all from one
//!   backward pass to the displacements;
//! - [`conservative_gradients`] gives the parameter gradient of a loss on energies,
//!   forces and stress without a double backward: the force and stress terms are a
//!   Hessian-vector product, taken as a central difference of energy gradients at two
//!   displaced configurations ([`TrainableModel`]).
//!
//! Conventions: displacements `r_ij = x_j - x_i + S * cell` (rows of the cell are the
//! lattice vectors, `S` the integer image shift), a symmetric strain `eps` maps every
//! displacement to `r (I + eps)`; so `dE/dx_i = -sum_j dE/dr_ij + sum_j dE/dr_ji` and
//! `sigma = sym(sum_e r_e (x) dE/dr_e) / V`.

mod batch;
mod conservative;
mod derivatives;
mod models;
#[cfg(test)]
mod tests;

use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Bool, Int, Tensor};

pub use batch::{PeriodicBatch, Stress, System, MIN_DISTANCE};
pub use conservative::{conservative_gradients, ConservativeStep, LossSensitivities, StepSize};
pub use derivatives::{evaluate, Derivatives};
pub use models::energy_backward_of;

/// The neighbour graph of a padded batch of structures, as a model reads it.
#[derive(Clone, Debug)]
pub struct AtomsGraph<B: Backend> {
    /// The model's token of every atom `[B, N]` (what it embeds: an index into its
    /// vocabulary, or the atomic number for SchNet); padding holds 0.
    pub tokens: Tensor<B, 2, Int>,
    /// Which atoms are real `[B, N]`.
    pub mask: Tensor<B, 2, Bool>,
    /// Positions `[B, N, 3]` (the model reads geometry from `displacements` only; these are
    /// for models that check their input).
    pub positions: Tensor<B, 3>,
    /// Neighbour of every slot `[B, N, K]`, an atom index within its structure.
    pub neighbors: Tensor<B, 3, Int>,
    /// Which slots are edges `[B, N, K]`.
    pub slot_mask: Tensor<B, 3, Bool>,
    /// Displacement from the atom to the neighbour of each slot `[B, N, K, 3]`, image shift
    /// included; zero on masked slots.
    pub displacements: Tensor<B, 4>,
}

/// A model of per-atom energies on a neighbour graph: the one thing a potential needs.
pub trait AtomisticModel<B: Backend> {
    /// The radius of the neighbour graph the model expects (Angstrom): edges are all pairs
    /// closer than this.
    fn cutoff(&self) -> f64;

    /// Per-atom energies `[B, N]`, zero on padding. The structure's energy is their sum;
    /// it must depend on the geometry only through `graph.displacements`.
    ///
    /// # Errors
    /// Input the model rejects (tokens out of range, shapes).
    fn atom_energies(&self, graph: AtomsGraph<B>) -> Result<Tensor<B, 2>, PotentialError>;
}

/// What a backward pass of weighted structure energies gives.
#[derive(Debug)]
pub struct EnergyBackward<B: AutodiffBackend> {
    /// The energy of every structure `[B]`, as the model gives it.
    pub energies: Vec<f64>,
    /// The gradient of `sum_b w_b E_b` for every parameter.
    pub parameters: GradientsParams,
    /// Its gradient with respect to the displacements `[B, N, K, 3]`, when they require
    /// gradients.
    pub displacements: Option<Tensor<B::InnerBackend, 4>>,
}

/// A model whose parameters can be trained on energies, forces and stress.
pub trait TrainableModel<B: AutodiffBackend>: AtomisticModel<B> {
    /// The backward pass of `sum_b weights[b] * E_b`. A model may take it its own way
    /// (Equiformer's reversible blocks recompute their activations).
    ///
    /// # Errors
    /// Those of [`AtomisticModel::atom_energies`].
    fn energy_backward(
        &self,
        graph: AtomsGraph<B>,
        weights: &[f64],
    ) -> Result<EnergyBackward<B>, PotentialError>;
}

/// Why a potential could not be evaluated.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PotentialError {
    /// A structure is unusable (named by its index in the batch).
    #[error("structure {index}: {reason}")]
    Structure {
        /// Its index in the batch.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// The model rejected its input.
    #[error("{0}")]
    Model(String),
    /// The loss gave sensitivities of the wrong shape, or a non-finite value.
    #[error("loss: {0}")]
    Loss(String),
}

impl From<crate::ModelError> for PotentialError {
    fn from(error: crate::ModelError) -> Self {
        Self::Model(error.to_string())
    }
}

impl From<crate::schnet::SchNetError> for PotentialError {
    fn from(error: crate::schnet::SchNetError) -> Self {
        Self::Model(error.to_string())
    }
}
