//! The dynamical state of a set of atoms: species, masses, positions, velocities, and the
//! periodic cell.

use atoms::{Cell, Pbc};

use crate::elements::{atomic_mass, MAX_ATOMIC_NUMBER};
use crate::units::AMU_A2_PER_FS2_IN_EV;

/// Why a [`State`] is invalid.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StateError {
    /// There are no atoms.
    #[error("the system has no atoms")]
    Empty,
    /// A per-atom array does not have one entry per atom.
    #[error("{field} has {got} entries but there are {atoms} atoms")]
    LengthMismatch {
        /// The array: `positions`, `velocities` or `masses`.
        field: &'static str,
        /// The number of atoms (of atomic numbers).
        atoms: usize,
        /// The number of entries given.
        got: usize,
    },
    /// An atomic number is outside the mass table (and no masses were given).
    #[error(
        "atom {atom} has the atomic number {number}, outside 1..={MAX_ATOMIC_NUMBER} \
         (give its mass explicitly)"
    )]
    UnknownElement {
        /// The first such atom.
        atom: usize,
        /// Its atomic number.
        number: u8,
    },
    /// A position has a NaN or infinite component.
    #[error("the position of atom {atom} is not finite")]
    NonFinitePosition {
        /// The first such atom.
        atom: usize,
    },
    /// A velocity has a NaN or infinite component.
    #[error("the velocity of atom {atom} is not finite")]
    NonFiniteVelocity {
        /// The first such atom.
        atom: usize,
    },
    /// A mass is zero, negative, NaN or infinite.
    #[error("the mass of atom {atom} is {mass} amu; masses must be finite and positive")]
    NonPositiveMass {
        /// The first such atom.
        atom: usize,
        /// Its mass.
        mass: f64,
    },
    /// Some axis is periodic but there is no cell.
    #[error("periodic boundary conditions {pbc:?} need a cell, but none was given")]
    PeriodicWithoutCell {
        /// The flags given.
        pbc: Pbc,
    },
}

/// Atoms with positions, velocities and masses, optionally in a periodic cell.
///
/// Every per-atom array has one entry per atom, in the same order: atomic numbers, positions
/// `[n][3]` in A, velocities `[n][3]` in A/fs, masses `[n]` in amu. The cell's lattice
/// vectors are its rows, in A; `pbc[k]` says whether lattice vector `k` is periodic. A cell
/// without periodic axes is allowed (it gives a volume, for the pressure) and then plays no
/// part in the neighbour search.
///
/// Constructors and setters validate; the `*_mut` views allow any value, so a caller that
/// writes through them can check with [`validate`](Self::validate).
///
/// ```
/// use atoms::Cell;
/// use md::State;
/// let cell = Cell::new([[4.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 4.0]])?;
/// let state = State::new(vec![29, 29], vec![[0.0; 3], [2.0, 2.0, 0.0]])?
///     .with_cell(Some(cell), [true; 3])?;
/// assert_eq!(state.masses(), &[63.546, 63.546]);
/// assert_eq!(state.velocities(), &[[0.0; 3]; 2]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    numbers: Vec<u8>,
    positions: Vec<[f64; 3]>,
    velocities: Vec<[f64; 3]>,
    masses: Vec<f64>,
    cell: Option<Cell>,
    pbc: Pbc,
}

impl State {
    /// Atoms at rest and without a cell, with the standard masses of their elements
    /// ([`atomic_mass`]).
    ///
    /// # Errors
    /// No atoms, a length mismatch, a non-finite position, or an atomic number outside the
    /// mass table.
    pub fn new(numbers: Vec<u8>, positions: Vec<[f64; 3]>) -> Result<Self, StateError> {
        let masses = numbers
            .iter()
            .enumerate()
            .map(|(atom, &number)| {
                atomic_mass(number).ok_or(StateError::UnknownElement { atom, number })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new_with_masses(numbers, positions, masses)
    }

    /// Atoms at rest and without a cell, with the masses given (in amu) rather than those of
    /// the table: for isotopes, or atomic numbers the table lacks.
    ///
    /// # Errors
    /// No atoms, a length mismatch, a non-finite position, or a mass that is not finite and
    /// positive.
    pub fn new_with_masses(
        numbers: Vec<u8>,
        positions: Vec<[f64; 3]>,
        masses: Vec<f64>,
    ) -> Result<Self, StateError> {
        let atoms = numbers.len();
        if atoms == 0 {
            return Err(StateError::Empty);
        }
        let mut state = Self {
            numbers,
            positions: vec![[0.0; 3]; atoms],
            velocities: vec![[0.0; 3]; atoms],
            masses: vec![1.0; atoms],
            cell: None,
            pbc: [false; 3],
        };
        state.set_positions(positions)?;
        state.with_masses(masses)
    }

    /// The same atoms with other masses, in amu.
    ///
    /// # Errors
    /// A length mismatch or a mass that is not finite and positive.
    pub fn with_masses(mut self, masses: Vec<f64>) -> Result<Self, StateError> {
        self.check_len("masses", masses.len())?;
        if let Some((atom, &mass)) = masses
            .iter()
            .enumerate()
            .find(|(_, m)| !(m.is_finite() && **m > 0.0))
        {
            return Err(StateError::NonPositiveMass { atom, mass });
        }
        self.masses = masses;
        Ok(self)
    }

    /// The same atoms with these velocities, in A/fs.
    ///
    /// # Errors
    /// A length mismatch or a non-finite velocity.
    pub fn with_velocities(mut self, velocities: Vec<[f64; 3]>) -> Result<Self, StateError> {
        self.set_velocities(velocities)?;
        Ok(self)
    }

    /// The same atoms in a cell (or none) with periodic boundary conditions `pbc`.
    ///
    /// # Errors
    /// [`StateError::PeriodicWithoutCell`] when some flag is set and `cell` is `None`.
    pub fn with_cell(mut self, cell: Option<Cell>, pbc: Pbc) -> Result<Self, StateError> {
        if cell.is_none() && pbc.iter().any(|&p| p) {
            return Err(StateError::PeriodicWithoutCell { pbc });
        }
        self.cell = cell;
        self.pbc = pbc;
        Ok(self)
    }

    /// Replaces the positions, in A.
    ///
    /// # Errors
    /// A length mismatch or a non-finite position.
    pub fn set_positions(&mut self, positions: Vec<[f64; 3]>) -> Result<(), StateError> {
        self.check_len("positions", positions.len())?;
        if let Some(atom) = first_non_finite(&positions) {
            return Err(StateError::NonFinitePosition { atom });
        }
        self.positions = positions;
        Ok(())
    }

    /// Replaces the velocities, in A/fs.
    ///
    /// # Errors
    /// A length mismatch or a non-finite velocity.
    pub fn set_velocities(&mut self, velocities: Vec<[f64; 3]>) -> Result<(), StateError> {
        self.check_len("velocities", velocities.len())?;
        if let Some(atom) = first_non_finite(&velocities) {
            return Err(StateError::NonFiniteVelocity { atom });
        }
        self.velocities = velocities;
        Ok(())
    }

    fn check_len(&self, field: &'static str, got: usize) -> Result<(), StateError> {
        let atoms = self.numbers.len();
        if got == atoms {
            Ok(())
        } else {
            Err(StateError::LengthMismatch { field, atoms, got })
        }
    }

    /// Checks what the `*_mut` views may have broken: finite positions and velocities.
    ///
    /// # Errors
    /// The first non-finite position or velocity.
    pub fn validate(&self) -> Result<(), StateError> {
        if let Some(atom) = first_non_finite(&self.positions) {
            return Err(StateError::NonFinitePosition { atom });
        }
        if let Some(atom) = first_non_finite(&self.velocities) {
            return Err(StateError::NonFiniteVelocity { atom });
        }
        Ok(())
    }

    /// The number of atoms (at least one).
    pub fn atom_count(&self) -> usize {
        self.numbers.len()
    }

    /// The atomic numbers, `[n]`.
    pub fn numbers(&self) -> &[u8] {
        &self.numbers
    }

    /// The positions, `[n][3]` in A; not wrapped into the cell unless a neighbour list with
    /// wrapping moved them ([`VerletList`](crate::VerletList)).
    pub fn positions(&self) -> &[[f64; 3]] {
        &self.positions
    }

    /// The positions, `[n][3]` in A, for writing in place.
    pub fn positions_mut(&mut self) -> &mut [[f64; 3]] {
        &mut self.positions
    }

    /// The velocities, `[n][3]` in A/fs.
    pub fn velocities(&self) -> &[[f64; 3]] {
        &self.velocities
    }

    /// The velocities, `[n][3]` in A/fs, for writing in place.
    pub fn velocities_mut(&mut self) -> &mut [[f64; 3]] {
        &mut self.velocities
    }

    /// The masses `[n]` (amu) next to the velocities `[n][3]` (A/fs) for writing, for the
    /// kicks and the thermostat.
    pub(crate) fn masses_and_velocities_mut(&mut self) -> (&[f64], &mut [[f64; 3]]) {
        (&self.masses, &mut self.velocities)
    }

    /// The positions `[n][3]` (A) for writing next to the velocities `[n][3]` (A/fs), for
    /// the drifts.
    pub(crate) fn positions_mut_and_velocities(&mut self) -> (&mut [[f64; 3]], &[[f64; 3]]) {
        (&mut self.positions, &self.velocities)
    }

    /// The masses, `[n]` in amu.
    pub fn masses(&self) -> &[f64] {
        &self.masses
    }

    /// The cell, if any.
    pub fn cell(&self) -> Option<&Cell> {
        self.cell.as_ref()
    }

    /// Which lattice vectors are periodic.
    pub fn pbc(&self) -> Pbc {
        self.pbc
    }

    /// The cell volume in A^3, if there is a cell.
    pub fn volume(&self) -> Option<f64> {
        self.cell.as_ref().map(Cell::volume)
    }

    /// The total momentum `sum_i m_i v_i`, in amu A/fs.
    pub fn momentum(&self) -> [f64; 3] {
        let mut total = [0.0; 3];
        for (m, v) in self.masses.iter().zip(&self.velocities) {
            for c in 0..3 {
                total[c] += m * v[c];
            }
        }
        total
    }

    /// Subtracts the centre-of-mass velocity `P / M` from every velocity, so that the total
    /// momentum is zero (up to rounding).
    pub fn remove_net_momentum(&mut self) {
        let total_mass: f64 = self.masses.iter().sum();
        let centre = self.momentum().map(|p| p / total_mass);
        for v in &mut self.velocities {
            for c in 0..3 {
                v[c] -= centre[c];
            }
        }
    }

    /// The kinetic energy `1/2 sum_i m_i |v_i|^2`, in eV (see [`crate::units`]).
    pub fn kinetic_energy(&self) -> f64 {
        let twice: f64 = self
            .masses
            .iter()
            .zip(&self.velocities)
            .map(|(m, v)| m * (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]))
            .sum();
        0.5 * twice * AMU_A2_PER_FS2_IN_EV
    }
}

fn first_non_finite(vectors: &[[f64; 3]]) -> Option<usize> {
    vectors
        .iter()
        .position(|x| x.iter().any(|v| !v.is_finite()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bad_inputs_give_typed_errors() {
        assert_eq!(State::new(vec![], vec![]), Err(StateError::Empty));
        assert_eq!(
            State::new(vec![1, 1], vec![[0.0; 3]]),
            Err(StateError::LengthMismatch {
                field: "positions",
                atoms: 2,
                got: 1
            })
        );
        assert_eq!(
            State::new(vec![1, 1], vec![[0.0; 3], [0.0, f64::NAN, 0.0]]),
            Err(StateError::NonFinitePosition { atom: 1 })
        );
        assert_eq!(
            State::new(vec![1, 0], vec![[0.0; 3]; 2]),
            Err(StateError::UnknownElement { atom: 1, number: 0 })
        );
        let state = State::new(vec![1, 8], vec![[0.0; 3], [1.0, 0.0, 0.0]]).unwrap();
        assert_eq!(
            state.clone().with_masses(vec![1.0, -2.0]),
            Err(StateError::NonPositiveMass {
                atom: 1,
                mass: -2.0
            })
        );
        assert!(matches!(
            state.clone().with_masses(vec![f64::NAN, 1.0]),
            Err(StateError::NonPositiveMass { atom: 0, .. })
        ));
        assert_eq!(
            state.clone().with_masses(vec![1.0]),
            Err(StateError::LengthMismatch {
                field: "masses",
                atoms: 2,
                got: 1
            })
        );
        assert_eq!(
            state
                .clone()
                .with_velocities(vec![[0.0; 3], [f64::INFINITY, 0.0, 0.0]]),
            Err(StateError::NonFiniteVelocity { atom: 1 })
        );
        assert_eq!(
            state.clone().with_cell(None, [true, false, false]),
            Err(StateError::PeriodicWithoutCell {
                pbc: [true, false, false]
            })
        );
        let mut broken = state;
        broken.velocities_mut()[0][2] = f64::NAN;
        assert_eq!(
            broken.validate(),
            Err(StateError::NonFiniteVelocity { atom: 0 })
        );
    }

    #[test]
    fn an_element_outside_the_table_needs_its_mass() {
        let state = State::new_with_masses(vec![0, 118], vec![[0.0; 3]; 2], vec![1.0, 294.0]);
        assert_eq!(state.unwrap().masses(), &[1.0, 294.0]);
        let deuterium = State::new(vec![1], vec![[0.0; 3]])
            .unwrap()
            .with_masses(vec![2.014])
            .unwrap();
        assert_eq!(deuterium.masses(), &[2.014]);
    }

    #[test]
    fn kinetic_energy_is_in_ev() {
        // One amu at 1 A/fs carries 103.64 / 2 eV.
        let state = State::new_with_masses(vec![1], vec![[0.0; 3]], vec![1.0])
            .unwrap()
            .with_velocities(vec![[0.0, 1.0, 0.0]])
            .unwrap();
        assert!((state.kinetic_energy() - 0.5 * AMU_A2_PER_FS2_IN_EV).abs() < 1e-12);
    }

    proptest! {
        #[test]
        fn removing_the_net_momentum_leaves_none(
            atoms in prop::collection::vec(
                (0.5f64..250.0, prop::array::uniform3(-1.0f64..1.0)),
                1..40,
            )
        ) {
            let (masses, velocities): (Vec<f64>, Vec<[f64; 3]>) = atoms.into_iter().unzip();
            let n = masses.len();
            let mut state = State::new_with_masses(vec![1; n], vec![[0.0; 3]; n], masses)
                .unwrap()
                .with_velocities(velocities)
                .unwrap();
            let scale: f64 = state
                .masses()
                .iter()
                .zip(state.velocities())
                .map(|(m, v)| m * v.iter().map(|x| x.abs()).sum::<f64>())
                .sum();
            state.remove_net_momentum();
            for p in state.momentum() {
                // Rounding of n terms of size up to `scale`.
                prop_assert!(p.abs() <= 1e-14 * scale.max(1.0) * n as f64, "p = {p}");
            }
        }
    }
}
