//! Molecular dynamics and structure relaxation over any force field, in plain Rust.
//!
//! A [`State`] holds atoms (positions `[n][3]` in A, velocities in A/fs, masses in amu,
//! optionally a periodic [`atoms::Cell`]); a [`ForceField`] turns it, with a
//! [`NeighborList`] of displacement vectors, into an [`Evaluation`] (energy in eV, forces in
//! eV/A, stress in eV/A^3 with ASE's sign). The crate knows nothing of tensors: a neural
//! potential implements [`ForceField`] in its own crate.
//!
//! - [`Dynamics`] steps a state with an [`Integrator`]: [`VelocityVerlet`] (NVE) or
//!   [`Langevin`] (NVT, BAOAB splitting), keeps a [`VerletList`] with a skin, and reports a
//!   [`Thermo`] (energies, temperature, pressure) to an observer every few steps.
//! - [`maxwell_boltzmann`] draws thermal initial velocities without net momentum.
//! - [`relax`] minimizes the energy over the positions with FIRE (the cell stays fixed).
//!
//! Units and their conversions are in [`units`]; the one non-trivial factor is
//! `1 amu A^2/fs^2 = 103.6427 eV` ([`units::AMU_A2_PER_FS2_IN_EV`]).
//!
//! A force field of harmonic bonds between atoms closer than a cutoff, relaxed and then run
//! at 300 K:
//!
//! ```
//! use md::{
//!     maxwell_boltzmann, relax, Control, Dynamics, Evaluation, ForceField, ForceFieldError,
//!     NeighborList, RelaxOptions, State, VelocityVerlet,
//! };
//!
//! /// E = sum over the pairs closer than the cutoff of k/2 (r - r0)^2.
//! struct Springs {
//!     k: f64,      // eV/A^2
//!     r0: f64,     // A
//!     cutoff: f64, // A
//! }
//!
//! impl ForceField for Springs {
//!     fn cutoff(&self) -> f64 {
//!         self.cutoff
//!     }
//!
//!     fn evaluate(&mut self, state: &State, neighbors: &NeighborList) -> Result<Evaluation, ForceFieldError> {
//!         let mut energy = 0.0;
//!         let mut forces = vec![[0.0; 3]; state.atom_count()];
//!         // The list may hold longer edges than the cutoff, and has each pair both ways.
//!         for edge in neighbors.iter().filter(|e| e.distance() < self.cutoff) {
//!             let r = edge.distance();
//!             energy += 0.25 * self.k * (r - self.r0).powi(2);
//!             let g = 0.5 * self.k * (r - self.r0) / r; // dE/d(x_j - x_i), per component of r_ij
//!             for c in 0..3 {
//!                 forces[edge.i][c] += g * edge.vector[c];
//!                 forces[edge.j][c] -= g * edge.vector[c];
//!             }
//!         }
//!         Ok(Evaluation { energy, forces, stress: None })
//!     }
//! }
//!
//! let mut springs = Springs { k: 36.0, r0: 0.74, cutoff: 1.5 };
//! let mut state = State::new(vec![1, 1], vec![[0.0; 3], [0.9, 0.0, 0.0]])?;
//!
//! let options = RelaxOptions { fmax: 1e-6, ..RelaxOptions::default() };
//! let relaxed = relax(&mut state, &mut springs, &options, |_| Control::Continue)?;
//! assert!(relaxed.converged);
//! let [a, b] = [state.positions()[0], state.positions()[1]];
//! assert!(((b[0] - a[0]) - 0.74).abs() < 1e-6);
//!
//! maxwell_boltzmann(&mut state, 300.0, 7, true)?;
//! let mut md = Dynamics::new(state, springs, VelocityVerlet::new(0.1)?, 0.3)?;
//! let start = md.thermo().total;
//! let mut worst: f64 = 0.0;
//! md.run(2000, 10, |snapshot| {
//!     worst = worst.max((snapshot.thermo.total - start).abs());
//!     Control::Continue
//! })?;
//! assert!(worst < 1e-4, "energy drifted by {worst} eV");
//! # Ok::<(), md::MdError>(())
//! ```

#![warn(missing_docs)]

mod dynamics;
mod elements;
mod error;
mod force_field;
mod integrators;
mod neighbors;
mod relax;
mod state;
mod thermo;
pub mod units;

#[cfg(test)]
mod test_support;

pub use dynamics::{Control, Dynamics, RunOutcome, Snapshot};
pub use elements::{atomic_mass, MAX_ATOMIC_NUMBER};
pub use error::MdError;
pub use force_field::{Evaluation, ForceField, ForceFieldError};
pub use integrators::{Integrator, Langevin, VelocityVerlet};
pub use neighbors::{Neighbor, NeighborList, VerletList};
pub use relax::{relax, FireParameters, RelaxOptions, RelaxOutcome, RelaxSnapshot};
pub use state::{State, StateError};
pub use thermo::{degrees_of_freedom, kinetic_temperature, maxwell_boltzmann, pressure, Thermo};
