//! The edges of a neighbour list and the displacement along each of them.

use crate::cell::{row_times, Cell};

/// The directed edges `(first[e], second[e], shifts[e])` of a neighbour list.
///
/// Edge `e` goes from atom `i = first[e]` to the image of atom `j = second[e]` shifted by the
/// integer lattice vector `S = shifts[e]`; its displacement is `r_ij = x_j - x_i + S * cell`
/// ([`displacement`](Self::displacement)). Built by [`neighbor_list`](super::neighbor_list),
/// the edges are sorted by `first`, then `second`, then `shift`, and every edge `(i, j, S)` has
/// its reverse `(j, i, -S)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edges {
    /// The atom each edge starts at, `i`.
    pub first: Vec<usize>,
    /// The atom each edge ends at, `j`.
    pub second: Vec<usize>,
    /// The integer image shift `S` of the second atom, in units of the lattice vectors;
    /// zero along non-periodic axes and for lists built without a cell.
    pub shifts: Vec<[i32; 3]>,
}

impl Edges {
    /// The number of edges.
    pub fn len(&self) -> usize {
        self.first.len()
    }

    /// Whether there are no edges.
    pub fn is_empty(&self) -> bool {
        self.first.is_empty()
    }

    /// The displacement `r_ij = x_j - x_i + S * cell` of edge `e`, in Angstrom.
    ///
    /// `positions` and `cell` must be those the list was built from (`cell` may be `None` when
    /// no axis was periodic, since every shift is then zero). The value is bit-for-bit the one
    /// the search compared with the cutoff.
    ///
    /// # Panics
    /// If `e` is not an edge, an atom index is outside `positions`, or `cell` is `None` while
    /// the edge has a nonzero shift.
    pub fn displacement(&self, e: usize, positions: &[[f64; 3]], cell: Option<&Cell>) -> [f64; 3] {
        let shift = self.shifts[e];
        let rows = match cell {
            Some(cell) => Some(cell.rows()),
            None => {
                assert!(
                    shift == [0, 0, 0],
                    "edge {e} has the shift {shift:?} but no cell was given"
                );
                None
            }
        };
        displacement(
            positions[self.first[e]],
            positions[self.second[e]],
            shift,
            rows,
        )
    }

    /// The length `|r_ij|` of every edge, in Angstrom, in edge order.
    ///
    /// # Panics
    /// As [`displacement`](Self::displacement).
    pub fn distances(&self, positions: &[[f64; 3]], cell: Option<&Cell>) -> Vec<f64> {
        (0..self.len())
            .map(|e| length(self.displacement(e, positions, cell)))
            .collect()
    }
}

/// `x_j - x_i + shift * rows`, evaluated in one fixed order so that the search and
/// [`Edges::displacement`] agree exactly and the reverse edge gives exactly `-r_ij`.
pub(super) fn displacement(
    xi: [f64; 3],
    xj: [f64; 3],
    shift: [i32; 3],
    rows: Option<&[[f64; 3]; 3]>,
) -> [f64; 3] {
    let offset = match rows {
        Some(rows) => row_times(shift.map(f64::from), rows),
        None => [0.0; 3],
    };
    std::array::from_fn(|c| (xj[c] - xi[c]) + offset[c])
}

/// The Euclidean length of a displacement.
pub(super) fn length(r: [f64; 3]) -> f64 {
    (r[0] * r[0] + r[1] * r[1] + r[2] * r[2]).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displacement_adds_the_lattice_shift() {
        let cell = Cell::new([[2.0, 0.0, 0.0], [1.0, 3.0, 0.0], [0.0, 0.0, 4.0]]).unwrap();
        let edges = Edges {
            first: vec![0],
            second: vec![1],
            shifts: vec![[1, -1, 2]],
        };
        let positions = [[0.5, 0.5, 0.5], [1.0, 0.0, 0.0]];
        let r = edges.displacement(0, &positions, Some(&cell));
        // x_j - x_i = (0.5, -0.5, -0.5); S * cell = (2 - 1, -3, 8).
        assert_eq!(r, [1.5, -3.5, 7.5]);
        assert_eq!(edges.distances(&positions, Some(&cell)), vec![length(r)]);
    }

    #[test]
    fn the_reverse_edge_has_exactly_the_opposite_displacement() {
        let rows = [[2.1, 0.3, 0.0], [0.7, 3.3, 0.1], [-0.4, 0.2, 4.9]];
        let xi = [0.123, -4.56, 7.89];
        let xj = [1.11, 0.017, -2.5];
        let forward = displacement(xi, xj, [1, -2, 3], Some(&rows));
        let backward = displacement(xj, xi, [-1, 2, -3], Some(&rows));
        assert_eq!(forward, backward.map(|v| -v));
    }

    #[test]
    #[should_panic(expected = "no cell was given")]
    fn a_shifted_edge_needs_the_cell() {
        let edges = Edges {
            first: vec![0],
            second: vec![0],
            shifts: vec![[0, 0, 1]],
        };
        edges.displacement(0, &[[0.0; 3]], None);
    }
}
