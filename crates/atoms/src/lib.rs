//! Periodic atomic structures and their neighbour lists, in plain Rust (no tensor library).
//!
//! A [`Cell`] holds the three lattice vectors of a periodic structure as the rows of a 3x3
//! matrix, in Angstrom; periodic boundary conditions are three flags, one per lattice vector
//! ([`Pbc`]). The displacement along an edge `(i, j, S)` with the integer image shift `S` is
//! `r_ij = x_j - x_i + S * cell` (`S` a row vector), the convention of ASE.
//!
//! [`neighbor_list`] finds every such edge shorter than a cutoff (a periodic radius graph):
//!
//! ```
//! use atoms::{neighbor_list, Cell, NeighborOptions};
//! let a = 3.61;
//! let cell = Cell::new([[0.0, a / 2.0, a / 2.0], [a / 2.0, 0.0, a / 2.0], [a / 2.0, a / 2.0, 0.0]])?;
//! // Primitive fcc copper: one atom and the 12 images at a / sqrt(2).
//! let edges = neighbor_list(&[[0.0; 3]], Some(&cell), [true; 3], &NeighborOptions::new(3.0))?;
//! assert_eq!(edges.len(), 12);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod cell;
mod neighbors;

pub use cell::{Cell, CellError, Pbc, MIN_VOLUME};
pub use neighbors::{neighbor_list, Edges, NeighborError, NeighborOptions};
