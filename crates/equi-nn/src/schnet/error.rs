//! Errors reported by SchNet and validation of its inputs.

use burn::tensor::{backend::Backend, Bool, Int, Tensor};

/// Largest atomic number accepted by the embedding.
pub const MAX_ATOMIC_NUMBER: i64 = 100;

/// Errors from [`SchNetConfig::try_init`](super::SchNetConfig::try_init)
/// and [`SchNet::forward_checked`](super::SchNet::forward_checked).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SchNetError {
    /// A configuration value is outside its valid range.
    #[error("invalid SchNet configuration: {field} {requirement}, got {value}")]
    InvalidConfig {
        /// Name of the offending field.
        field: &'static str,
        /// What the field must satisfy.
        requirement: &'static str,
        /// The rejected value, formatted.
        value: String,
    },
    /// Positions are not `[B, N, 3]` for atomic numbers of shape `[B, N]`.
    #[error("positions have shape {found:?}, expected {expected:?}")]
    PositionsShape {
        /// `[B, N, 3]` from the atomic numbers.
        expected: [usize; 3],
        /// The shape received.
        found: [usize; 3],
    },
    /// The mask does not have the shape `[B, N]` of the atomic numbers.
    #[error("mask has shape {found:?}, expected {expected:?}")]
    MaskShape {
        /// `[B, N]` from the atomic numbers.
        expected: [usize; 2],
        /// The shape received.
        found: [usize; 2],
    },
    /// A real atom has a NaN or infinite coordinate.
    #[error("atom {atom} of molecule {molecule} has a non-finite position")]
    NonFinitePosition {
        /// Index along the batch axis.
        molecule: usize,
        /// Index along the atom axis.
        atom: usize,
    },
    /// A real atom has an atomic number outside `1..=100`.
    #[error(
        "atom {atom} of molecule {molecule} has atomic number {atomic_number}, expected 1..=100"
    )]
    AtomicNumberOutOfRange {
        /// Index along the batch axis.
        molecule: usize,
        /// Index along the atom axis.
        atom: usize,
        /// The rejected value.
        atomic_number: i64,
    },
}

/// Checks shapes, atomic numbers and positions of a padded batch.
///
/// Padding atoms (`mask` false) are not inspected: their atomic numbers and
/// coordinates may hold anything.
///
/// # Shapes
///
/// - atomic_numbers: `[B, N]`
/// - positions: `[B, N, 3]`
/// - mask: `[B, N]`
pub fn validate_inputs<B: Backend>(
    atomic_numbers: &Tensor<B, 2, Int>,
    positions: &Tensor<B, 3>,
    mask: &Tensor<B, 2, Bool>,
) -> Result<(), SchNetError> {
    let [batch, atoms] = atomic_numbers.dims();
    let expected = [batch, atoms, 3];
    let found = positions.dims();
    if found != expected {
        return Err(SchNetError::PositionsShape { expected, found });
    }
    let found = mask.dims();
    if found != [batch, atoms] {
        return Err(SchNetError::MaskShape {
            expected: [batch, atoms],
            found,
        });
    }
    if batch == 0 || atoms == 0 {
        return Ok(());
    }

    let out_of_range = atomic_numbers
        .clone()
        .lower_elem(1)
        .bool_or(atomic_numbers.clone().greater_elem(MAX_ATOMIC_NUMBER))
        .bool_and(mask.clone()); // [B, N]
    if let Some((molecule, atom)) = first_true(out_of_range) {
        let atomic_number = atomic_numbers
            .clone()
            .slice([molecule..molecule + 1, atom..atom + 1])
            .into_data()
            .iter::<i64>()
            .next()
            .unwrap_or_default();
        return Err(SchNetError::AtomicNumberOutOfRange {
            molecule,
            atom,
            atomic_number,
        });
    }

    let all_finite: Tensor<B, 2, Bool> = positions.clone().is_finite().all_dim(2).squeeze_dim(2); // [B, N]
    let non_finite = all_finite.bool_not().bool_and(mask.clone());
    if let Some((molecule, atom)) = first_true(non_finite) {
        return Err(SchNetError::NonFinitePosition { molecule, atom });
    }
    Ok(())
}

/// Row-major first `(molecule, atom)` where `flags` is true.
fn first_true<B: Backend>(flags: Tensor<B, 2, Bool>) -> Option<(usize, usize)> {
    let [_, atoms] = flags.dims();
    let position = flags.into_data().iter::<bool>().position(|flag| flag)?;
    Some((position / atoms, position % atoms))
}
