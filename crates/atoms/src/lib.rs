//! Periodic atomic structures and their neighbour lists, in plain Rust (no tensor library).
//!
//! A [`Cell`] holds the three lattice vectors of a periodic structure as the rows of a 3x3
//! matrix, in Angstrom; periodic boundary conditions are three flags, one per lattice vector
//! ([`Pbc`]). The displacement along an edge `(i, j, S)` with the integer image shift `S` is
//! `r_ij = x_j - x_i + S * cell` (`S` a row vector), the convention of ASE.

mod cell;

pub use cell::{Cell, CellError, Pbc, MIN_VOLUME};
