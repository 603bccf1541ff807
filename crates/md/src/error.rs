//! The error type of dynamics and relaxation runs: one line, naming the step and what is wrong.

use atoms::NeighborError;

use crate::force_field::ForceFieldError;
use crate::state::StateError;

/// Why a run (or its set-up) could not proceed.
///
/// `step` counts evaluations of the force field within a run: 0 is the evaluation of the
/// starting structure, `n` the one after the `n`-th step.
#[derive(Debug, thiserror::Error)]
pub enum MdError {
    /// The state is invalid (see [`StateError`]).
    #[error(transparent)]
    State(#[from] StateError),
    /// A parameter (time step, temperature, friction, skin, ...) is outside its range.
    #[error("{name} must be {requirement}, got {value}")]
    InvalidParameter {
        /// The parameter, as documented (`time step`, `friction`, ...).
        name: &'static str,
        /// The range it must lie in, in words.
        requirement: &'static str,
        /// The value given.
        value: f64,
    },
    /// The neighbour search refused the structure (a cell too small for the cutoff, an atom
    /// far outside the cell, ...).
    #[error("neighbour list at step {step}: {source}")]
    Neighbors {
        /// The step whose positions were refused.
        step: u64,
        /// What the search reported.
        source: NeighborError,
    },
    /// The force field reported an error of its own.
    #[error("force field at step {step}: {source}")]
    ForceField {
        /// The step of the failed evaluation.
        step: u64,
        /// What the force field reported.
        source: ForceFieldError,
    },
    /// The force field returned a NaN or infinite energy; nothing was integrated with it.
    #[error("the force field returned the non-finite energy {energy} at step {step}")]
    NonFiniteEnergy {
        /// The step of the evaluation.
        step: u64,
        /// The energy returned.
        energy: f64,
    },
    /// The force field returned a NaN or infinite force; nothing was integrated with it.
    #[error("the force field returned a non-finite force on atom {atom} at step {step}")]
    NonFiniteForce {
        /// The step of the evaluation.
        step: u64,
        /// The first atom with such a force.
        atom: usize,
    },
    /// The force field returned a stress with a NaN or infinite component.
    #[error("the force field returned a non-finite stress at step {step}")]
    NonFiniteStress {
        /// The step of the evaluation.
        step: u64,
    },
    /// The force field returned a number of forces other than the number of atoms.
    #[error("the force field returned {got} forces for {atoms} atoms at step {step}")]
    ForceCount {
        /// The step of the evaluation.
        step: u64,
        /// The number of atoms.
        atoms: usize,
        /// The number of forces returned.
        got: usize,
    },
}

impl MdError {
    /// An [`MdError::InvalidParameter`] unless `value` is finite and positive.
    pub(crate) fn check_positive(name: &'static str, value: f64) -> Result<f64, Self> {
        if value.is_finite() && value > 0.0 {
            Ok(value)
        } else {
            Err(Self::InvalidParameter {
                name,
                requirement: "finite and positive",
                value,
            })
        }
    }

    /// An [`MdError::InvalidParameter`] unless `value` is finite and not negative.
    pub(crate) fn check_non_negative(name: &'static str, value: f64) -> Result<f64, Self> {
        if value.is_finite() && value >= 0.0 {
            Ok(value)
        } else {
            Err(Self::InvalidParameter {
                name,
                requirement: "finite and not negative",
                value,
            })
        }
    }
}
