//! Equiformer and SchNet as potentials: per-atom energies from the first scalar output.

use burn::module::{AutodiffModule, ModuleMapper, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};

use super::derivatives::to_f64;
use super::{AtomisticModel, AtomsGraph, EnergyBackward, PotentialError, TrainableModel};
use crate::geometry::NeighborList;
use crate::schnet::{self, SchNet};
use crate::{Equiformer, EquiformerInput, EquiformerOutput, ModelError};

/// `module` with every parameter a new autodiff leaf (same ids, same values).
///
/// One step of a potential runs several backward passes through the same parameters; a
/// leaf that already went through one can lose its gradient when another thread runs a
/// backward pass meanwhile (tracel-ai/burn#5573), as data-parallel training and parallel
/// tests do. Fresh leaves per pass avoid it, for the cost of a shallow copy.
fn fresh_leaves<B: AutodiffBackend, M: AutodiffModule<B>>(module: &M) -> M {
    module.clone().map(&mut FreshLeaves)
}

struct FreshLeaves;

impl<B: AutodiffBackend> ModuleMapper<B> for FreshLeaves {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        param.map(|t| t.detach().require_grad())
    }
}

/// The per-atom energies `[B, N]` in an Equiformer output: channel 0 of degree 0.
fn first_scalar<B: Backend>(output: &EquiformerOutput<B>) -> Tensor<B, 2> {
    output.type0().narrow(2, 0, 1).squeeze_dim::<2>(2)
}

fn equiformer_input<B: Backend>(graph: AtomsGraph<B>) -> EquiformerInput<B> {
    let neighbors =
        NeighborList::from_displacements(graph.neighbors, graph.slot_mask, graph.displacements);
    EquiformerInput::tokens(graph.tokens, graph.positions)
        .with_mask(graph.mask)
        .with_neighbors(neighbors)
}

/// `[B]` weights on the device of `like`.
fn weights_like<B: Backend>(weights: &[f64], like: &Tensor<B, 1>) -> Tensor<B, 1> {
    Tensor::from_data(
        TensorData::new(weights.to_vec(), [weights.len()]).convert::<B::FloatElem>(),
        &like.device(),
    )
}

fn check_weights(weights: &[f64], batch: usize) -> Result<(), PotentialError> {
    if weights.len() == batch {
        Ok(())
    } else {
        Err(PotentialError::Loss(format!(
            "{} weights for {batch} structures",
            weights.len()
        )))
    }
}

/// The energy is the sum over atoms of the first degree-0 output channel; the cutoff is
/// `valid_radius`.
impl<B: Backend> AtomisticModel<B> for Equiformer<B> {
    fn cutoff(&self) -> f64 {
        self.valid_radius()
    }

    fn atom_energies(&self, graph: AtomsGraph<B>) -> Result<Tensor<B, 2>, PotentialError> {
        Ok(first_scalar(&self.forward(equiformer_input(graph))?))
    }
}

/// Through [`Equiformer::forward_backward`], so reversible blocks keep their flat memory.
impl<B: AutodiffBackend> TrainableModel<B> for Equiformer<B> {
    fn energy_backward(
        &self,
        graph: AtomsGraph<B>,
        weights: &[f64],
    ) -> Result<EnergyBackward<B>, PotentialError> {
        check_weights(weights, graph.tokens.dims()[0])?;
        let mut energies = None;
        let step = fresh_leaves(self).forward_backward(equiformer_input(graph), |output| {
            let per_structure = first_scalar(&output).sum_dim(1).squeeze_dim::<1>(1);
            energies = Some(per_structure.clone().detach());
            let weights = weights_like(weights, &per_structure);
            Ok::<_, ModelError>((per_structure * weights).sum())
        })?;
        let energies = energies.expect("the loss function ran");
        Ok(EnergyBackward {
            energies: to_f64(energies.inner())?,
            parameters: step.gradients,
            displacements: step.displacements,
        })
    }
}

/// The energy is the sum over atoms of output channel 0; tokens are atomic numbers.
impl<B: Backend> AtomisticModel<B> for SchNet<B> {
    fn cutoff(&self) -> f64 {
        self.cutoff
    }

    fn atom_energies(&self, graph: AtomsGraph<B>) -> Result<Tensor<B, 2>, PotentialError> {
        schnet::validate_inputs(&graph.tokens, &graph.positions, &graph.mask)?;
        let neighbors = schnet::NeighborList::from_displacements(
            graph.neighbors,
            graph.slot_mask,
            graph.displacements,
            self.cutoff,
        );
        Ok(self
            .atom_outputs(graph.tokens, graph.mask, &neighbors)
            .narrow(2, 0, 1)
            .squeeze_dim::<2>(2))
    }
}

impl<B: AutodiffBackend> TrainableModel<B> for SchNet<B> {
    fn energy_backward(
        &self,
        graph: AtomsGraph<B>,
        weights: &[f64],
    ) -> Result<EnergyBackward<B>, PotentialError> {
        energy_backward_of(self, graph, weights)
    }
}

/// [`TrainableModel::energy_backward`] for any module: one backward pass of the weighted
/// sum of [`AtomisticModel::atom_energies`].
///
/// # Errors
/// Those of the model's `atom_energies`, and as many weights as structures not given.
pub fn energy_backward_of<B, M>(
    model: &M,
    graph: AtomsGraph<B>,
    weights: &[f64],
) -> Result<EnergyBackward<B>, PotentialError>
where
    B: AutodiffBackend,
    M: AtomisticModel<B> + AutodiffModule<B>,
{
    check_weights(weights, graph.tokens.dims()[0])?;
    let displacements = graph.displacements.clone();
    let fresh = fresh_leaves(model);
    let per_structure = fresh.atom_energies(graph)?.sum_dim(1).squeeze_dim::<1>(1);
    let total = (per_structure.clone() * weights_like(weights, &per_structure)).sum();
    let mut grads = total.backward();
    let displacements = displacements.grad(&grads);
    let parameters = GradientsParams::from_module(&mut grads, &fresh);
    Ok(EnergyBackward {
        energies: to_f64(per_structure.inner())?,
        parameters,
        displacements,
    })
}
