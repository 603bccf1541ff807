//! The periodic radius graph: every ordered pair of atoms (and periodic images) closer than a
//! cutoff, found with linked cells in `O(N)`.
//!
//! The semantics are those of ASE's `neighbor_list("ijS", atoms, cutoff)` without
//! self-interaction: all `(i, j, S)` with `|x_j - x_i + S * cell| < cutoff`, `S` an integer
//! image shift that is zero along non-periodic axes, except `(i, i, [0, 0, 0])`. An atom does
//! neighbour its own images, and distinct atoms at the same place are neighbours at distance
//! zero.

mod edges;
mod grid;
mod search;

pub use edges::Edges;

use crate::cell::{Cell, Pbc};
use grid::{Frame, Grid, MAX_OFFSET};

/// Options of [`neighbor_list`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NeighborOptions {
    /// Pairs closer than this (strictly), in Angstrom, are neighbours. Finite and positive.
    pub cutoff: f64,
    /// The most periodic image cells the search may visit: the product over periodic axes of
    /// `2 * ceil(cutoff / face_distance_a) + 1` ([`Cell::face_distances`]; the cutoff here
    /// enlarged by a relative 1e-8 against rounding, which adds a layer only where the ratio
    /// is a whole number). Beyond it (or
    /// beyond 2^29, so that every shift fits an `i32`) the list is refused, which catches
    /// near-degenerate cells and cutoffs far larger than the cell. Default 100 000.
    pub max_images: usize,
}

impl NeighborOptions {
    /// The options for `cutoff`, with the default image limit.
    pub fn new(cutoff: f64) -> Self {
        Self {
            cutoff,
            ..Self::default()
        }
    }
}

impl Default for NeighborOptions {
    /// A cutoff of 5 A, at most 100 000 image cells.
    fn default() -> Self {
        Self {
            cutoff: 5.0,
            max_images: 100_000,
        }
    }
}

/// Why a neighbour list was refused.
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
pub enum NeighborError {
    /// The cutoff is NaN, infinite, zero or negative.
    #[error("the cutoff must be finite and positive, got {cutoff}")]
    InvalidCutoff {
        /// The cutoff given.
        cutoff: f64,
    },
    /// Some axis is periodic but no cell was given.
    #[error("periodic boundary conditions {pbc:?} need a cell, but none was given")]
    MissingCell {
        /// The flags given.
        pbc: Pbc,
    },
    /// A position has a NaN or infinite component.
    #[error("the position of atom {atom} is not finite")]
    NonFinitePosition {
        /// The index of the first such atom.
        atom: usize,
    },
    /// An atom lies so far outside the cell along a periodic axis (more than 2^29 lattice
    /// vectors) that its image shift would not fit an `i32`.
    #[error("atom {atom} lies more than 2^29 cell lengths outside the cell")]
    FarOutsideCell {
        /// The index of the first such atom.
        atom: usize,
    },
    /// The search would visit more periodic image cells than allowed.
    #[error(
        "the search would visit {images} periodic image cells, more than the limit of {limit} \
         (is the cell nearly degenerate, or the cutoff much larger than the cell?)"
    )]
    TooManyImages {
        /// The number of image cells needed (saturated at `u64::MAX`).
        images: u64,
        /// The limit in force: [`NeighborOptions::max_images`], or 2^29 if that is larger.
        limit: u64,
    },
}

/// All ordered pairs `(i, j, S)` with `|x_j - x_i + S * cell| < cutoff`, sorted.
///
/// `positions` are Cartesian, in Angstrom, and need not be wrapped into the cell: the shifts
/// refer to them as given. `cell` is required when any `pbc` flag is set and ignored
/// otherwise (then every shift is zero and this is a plain radius graph). The edges are sorted
/// by `first`, then `second`, then `shift`, and contain the reverse `(j, i, -S)` of every edge;
/// see the [module documentation](self) for what counts as a neighbour.
///
/// The search bins the wrapped atoms into cells of side at least the cutoff along each lattice
/// direction (over the atoms' bounding box along non-periodic ones) and compares each atom
/// with the atoms of the surrounding bins and their images: `O(N)` time and memory for a
/// structure of fixed density.
///
/// ```
/// use atoms::{neighbor_list, Cell, NeighborOptions};
/// // One atom in a 3 A cubic cell, periodic along x and y only: with a cutoff of 3.5 A it
/// // neighbours its four images at 3 A (the diagonal ones are at 4.24 A).
/// let cell = Cell::new([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 3.0]])?;
/// let positions = [[0.5, 0.5, 0.5]];
/// let edges = neighbor_list(&positions, Some(&cell), [true, true, false], &NeighborOptions::new(3.5))?;
/// assert_eq!(edges.first, vec![0; 4]);
/// assert_eq!(edges.second, vec![0; 4]);
/// assert_eq!(edges.shifts, vec![[-1, 0, 0], [0, -1, 0], [0, 1, 0], [1, 0, 0]]);
/// assert_eq!(edges.distances(&positions, Some(&cell)), vec![3.0; 4]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// See [`NeighborError`]: an invalid cutoff, periodicity without a cell, a non-finite
/// position, an atom too far outside the cell, or too many image cells.
pub fn neighbor_list(
    positions: &[[f64; 3]],
    cell: Option<&Cell>,
    pbc: Pbc,
    options: &NeighborOptions,
) -> Result<Edges, NeighborError> {
    let cutoff = options.cutoff;
    if !(cutoff.is_finite() && cutoff > 0.0) {
        return Err(NeighborError::InvalidCutoff { cutoff });
    }
    if pbc.iter().any(|&p| p) && cell.is_none() {
        return Err(NeighborError::MissingCell { pbc });
    }
    let frame = Frame::new(cell, pbc);
    let images = frame.image_count(cutoff);
    let limit = (options.max_images as f64).min(MAX_OFFSET);
    if images > limit {
        return Err(NeighborError::TooManyImages {
            // `as` saturates.
            images: images as u64,
            limit: limit as u64,
        });
    }
    if let Some(atom) = positions
        .iter()
        .position(|x| x.iter().any(|v| !v.is_finite()))
    {
        return Err(NeighborError::NonFinitePosition { atom });
    }
    if positions.is_empty() {
        return Ok(Edges::default());
    }
    let grid = Grid::new(positions, frame, cutoff)?;
    Ok(search::search(positions, &grid, frame.rows(), cutoff))
}
