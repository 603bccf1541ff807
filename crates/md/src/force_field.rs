//! The interface a potential implements: energy, forces and (optionally) stress of a state.

use crate::error::MdError;
use crate::neighbors::NeighborList;
use crate::state::State;

/// What a force field computes for one state.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// The potential energy, in eV.
    pub energy: f64,
    /// The forces `F_i = -dE/dx_i`, `[n][3]` in eV/A, in the order of the atoms.
    pub forces: Vec<[f64; 3]>,
    /// The stress in Voigt order `[xx, yy, zz, yz, xz, xy]`, in eV/A^3, with ASE's sign:
    /// `sigma = (1/V) dE/d(epsilon)` for a symmetric strain `epsilon` applied to positions
    /// and cell (negative under compression). `None` when the force field does not compute
    /// it (molecules, or a potential without a stress head).
    pub stress: Option<[f64; 6]>,
}

impl Evaluation {
    /// The largest force norm `max_i |F_i|`, in eV/A (0 for no atoms).
    pub fn max_force(&self) -> f64 {
        self.forces
            .iter()
            .map(|f| (f[0] * f[0] + f[1] * f[1] + f[2] * f[2]).sqrt())
            .fold(0.0, f64::max)
    }
}

/// An error reported by a force field (a model that failed, a species it does not know, ...).
///
/// ```
/// let error = md::ForceFieldError::new("no parameters for element 92");
/// assert_eq!(error.to_string(), "no parameters for element 92");
/// ```
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ForceFieldError(Box<dyn std::error::Error + Send + Sync + 'static>);

impl ForceFieldError {
    /// Wraps any error, or a message (`&str`, `String`).
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        Self(error.into())
    }
}

/// A potential-energy surface: energy, forces and optionally stress of a [`State`].
///
/// The neighbour list it receives holds every pair closer than at least
/// [`cutoff`](Self::cutoff), usually more (the list's own cutoff includes a skin, see
/// [`VerletList`](crate::VerletList)): a force field must skip the edges longer than its
/// cutoff itself. Each unordered pair appears in both directions, `(i, j, S)` and
/// `(j, i, -S)`, with displacement vectors `x_j - x_i + S * cell` of the current positions.
///
/// The drivers reject (with an error naming the step) an evaluation with a non-finite energy,
/// force or stress, or with a wrong number of forces, before anything is integrated with it.
pub trait ForceField {
    /// The interaction range, in A: pairs at or beyond it do not interact. Finite and
    /// positive.
    fn cutoff(&self) -> f64;

    /// Energy, forces (one per atom of `state`) and optionally stress of `state`.
    ///
    /// # Errors
    /// Whatever stops the force field from evaluating this state.
    fn evaluate(
        &mut self,
        state: &State,
        neighbors: &NeighborList,
    ) -> Result<Evaluation, ForceFieldError>;
}

impl<F: ForceField + ?Sized> ForceField for &mut F {
    fn cutoff(&self) -> f64 {
        (**self).cutoff()
    }

    fn evaluate(
        &mut self,
        state: &State,
        neighbors: &NeighborList,
    ) -> Result<Evaluation, ForceFieldError> {
        (**self).evaluate(state, neighbors)
    }
}

impl<F: ForceField + ?Sized> ForceField for Box<F> {
    fn cutoff(&self) -> f64 {
        (**self).cutoff()
    }

    fn evaluate(
        &mut self,
        state: &State,
        neighbors: &NeighborList,
    ) -> Result<Evaluation, ForceFieldError> {
        (**self).evaluate(state, neighbors)
    }
}

/// The force field's cutoff, checked to be finite and positive.
pub(crate) fn checked_cutoff(force_field: &impl ForceField) -> Result<f64, MdError> {
    MdError::check_positive("the force field's cutoff (A)", force_field.cutoff())
}

/// Evaluates `force_field` and checks the result: the right number of forces, and a finite
/// energy, forces and stress.
pub(crate) fn evaluate_checked(
    force_field: &mut impl ForceField,
    state: &State,
    neighbors: &NeighborList,
    step: u64,
) -> Result<Evaluation, MdError> {
    let evaluation = force_field
        .evaluate(state, neighbors)
        .map_err(|source| MdError::ForceField { step, source })?;
    let atoms = state.atom_count();
    if evaluation.forces.len() != atoms {
        return Err(MdError::ForceCount {
            step,
            atoms,
            got: evaluation.forces.len(),
        });
    }
    if !evaluation.energy.is_finite() {
        return Err(MdError::NonFiniteEnergy {
            step,
            energy: evaluation.energy,
        });
    }
    if let Some(atom) = evaluation
        .forces
        .iter()
        .position(|f| f.iter().any(|v| !v.is_finite()))
    {
        return Err(MdError::NonFiniteForce { step, atom });
    }
    if evaluation
        .stress
        .is_some_and(|s| s.iter().any(|v| !v.is_finite()))
    {
        return Err(MdError::NonFiniteStress { step });
    }
    Ok(evaluation)
}
