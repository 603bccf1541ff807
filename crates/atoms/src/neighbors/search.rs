//! The linked-cell search: for each atom in turn, the atoms of the bins around its own
//! (with their image shifts) are compared with the cutoff.

use super::edges::{displacement, length, Edges};
use super::grid::{binning_cutoff, Grid};

/// The edges closer than `cutoff` among `positions`, binned in `grid`, with image shifts
/// along the lattice `rows` (`None` when no axis is periodic).
///
/// Candidates are first compared, in the wrapped frame, with the cutoff plus a small margin;
/// those that pass are checked exactly with [`displacement`] of the positions as given,
/// `|r_ij| < cutoff`, so that every edge's [`Edges::displacement`] is shorter than the cutoff.
pub(super) fn search(
    positions: &[[f64; 3]],
    grid: &Grid,
    rows: Option<&[[f64; 3]; 3]>,
    cutoff: f64,
) -> Edges {
    match Packed::new(grid) {
        Some(packed) => search_in_order(positions, grid, rows, cutoff, &packed),
        None => search_in_order(positions, grid, rows, cutoff, &Plain),
    }
}

/// [`search`], sorting each atom's neighbours by the keys of `order`.
fn search_in_order<O: NeighborOrder>(
    positions: &[[f64; 3]],
    grid: &Grid,
    rows: Option<&[[f64; 3]; 3]>,
    cutoff: f64,
    order: &O,
) -> Edges {
    let loose = binning_cutoff(cutoff).powi(2);
    // Below `sure` the squared length is surely under the cutoff, above `loose` surely not;
    // in between the square root decides, as `Edges::distances` would.
    let sure = cutoff * cutoff * (1.0 - 1e-12);
    let lattice = rows.copied().unwrap_or([[0.0; 3]; 3]);
    let nb = grid.axes.each_ref().map(|axis| axis.bins());
    let mut edges = Edges::default();
    // Per visited bin: the slots (relative to the bin's first) that pass the loose test.
    let mut passed = vec![0usize; grid.max_bin_atoms];
    // Per atom: the keys of its confirmed neighbours `(j, S)`.
    let mut found: Vec<O::Key> = Vec::new();

    for (i, &xi) in positions.iter().enumerate() {
        let [b0, b1, b2] = grid.bin_of[i];
        let wi = grid.wrapped[i];
        let ni = grid.image_of[i];
        found.clear();
        for &(t0, k0) in grid.axes[0].visits(b0) {
            let v0 = scaled(lattice[0], k0);
            for &(t1, k1) in grid.axes[1].visits(b1) {
                let v01 = add(v0, scaled(lattice[1], k1));
                let row = (t0 * nb[1] + t1) * nb[2];
                for &(t2, k2) in grid.axes[2].visits(b2) {
                    let v = add(v01, scaled(lattice[2], k2));
                    // r = slot_position + v - wi = slot_position + d.
                    let d = [v[0] - wi[0], v[1] - wi[1], v[2] - wi[2]];
                    let bin = row + t2;
                    let start = grid.bin_start[bin];
                    let bin_positions = &grid.slot_position[start..grid.bin_start[bin + 1]];
                    // Branch-free: every slot is written, the count only moves on a pass.
                    let mut count = 0;
                    for (slot, p) in bin_positions.iter().enumerate() {
                        let r = [p[0] + d[0], p[1] + d[1], p[2] + d[2]];
                        passed[count] = slot;
                        count += usize::from(r[0] * r[0] + r[1] * r[1] + r[2] * r[2] < loose);
                    }
                    let k = [k0, k1, k2];
                    for &slot in &passed[..count] {
                        let slot = start + slot;
                        let j = grid.slot_atom[slot];
                        if j == i && k == [0, 0, 0] {
                            continue;
                        }
                        let nj = grid.slot_image[slot];
                        let shift = std::array::from_fn(|a| k[a] + ni[a] - nj[a]);
                        let r = displacement(xi, positions[j], shift, rows);
                        let r2 = r[0] * r[0] + r[1] * r[1] + r[2] * r[2];
                        if r2 < sure || (r2 < loose && length(r) < cutoff) {
                            found.push(order.key(j, shift));
                        }
                    }
                }
            }
        }
        found.sort_unstable();
        edges.first.extend(std::iter::repeat_n(i, found.len()));
        edges
            .second
            .extend(found.iter().map(|&key| order.neighbor(key).0));
        edges
            .shifts
            .extend(found.iter().map(|&key| order.neighbor(key).1));
    }
    edges
}

/// Sort keys for the neighbours `(j, S)` of one atom whose order is that of `(j, S)`,
/// lexicographically.
trait NeighborOrder {
    type Key: Ord + Copy;
    /// The key of neighbour `j` with image shift `shift`.
    fn key(&self, j: usize, shift: [i32; 3]) -> Self::Key;
    /// The neighbour `(j, shift)` of a key.
    fn neighbor(&self, key: Self::Key) -> (usize, [i32; 3]);
}

/// The pair `(j, S)` itself as its key: always applicable.
struct Plain;

impl NeighborOrder for Plain {
    type Key = (usize, [i32; 3]);

    fn key(&self, j: usize, shift: [i32; 3]) -> Self::Key {
        (j, shift)
    }

    fn neighbor(&self, key: Self::Key) -> (usize, [i32; 3]) {
        key
    }
}

/// `(j, S)` packed into one `u64`, which sorts faster: `j` in the top bits, then each shift
/// component less its least possible value, in as many bits as its range needs.
///
/// The range follows from the grid: `S = k + n_i - n_j`, `k` the image shift of a visit and
/// `n` the lattice shift of an atom's wrapping; for wrapped atoms and a cutoff below the
/// cell's face distances that is `-1..=1`, two bits per component.
#[derive(Debug, PartialEq)]
struct Packed {
    /// Per component: its least possible value.
    low: [i64; 3],
    /// Per component: how far its bits lie above the lowest bit of the key.
    offset: [u32; 3],
    /// Per component: the mask of its bits (after shifting down by its offset).
    mask: [u64; 3],
    /// How far `j` lies above the lowest bit.
    atom_offset: u32,
}

impl Packed {
    /// The packing for the atoms and visits of `grid`, `None` if it needs over 64 bits.
    fn new(grid: &Grid) -> Option<Self> {
        let atoms = grid.image_of.len();
        let mut low = [0i64; 3];
        let mut bits = [0u32; 3];
        for a in 0..3 {
            let [k_lo, k_hi] = grid.axes[a].shift_range();
            let (n_lo, n_hi) = grid
                .image_of
                .iter()
                .fold((i32::MAX, i32::MIN), |(lo, hi), n| {
                    (lo.min(n[a]), hi.max(n[a]))
                });
            let spread = i64::from(n_hi) - i64::from(n_lo);
            low[a] = i64::from(k_lo) - spread;
            // Both ends are within a few times 2^29 (MAX_OFFSET), far inside an i64.
            let values = (i64::from(k_hi) + spread - low[a]) as u64;
            bits[a] = u64::BITS - values.leading_zeros();
        }
        let shift_bits: u32 = bits.iter().sum();
        let atom_bits = usize::BITS - atoms.saturating_sub(1).leading_zeros();
        if shift_bits >= u64::BITS || atom_bits + shift_bits > u64::BITS {
            return None;
        }
        Some(Self {
            low,
            offset: [bits[1] + bits[2], bits[2], 0],
            mask: bits.map(|b| (1u64 << b) - 1),
            atom_offset: shift_bits,
        })
    }
}

impl NeighborOrder for Packed {
    type Key = u64;

    fn key(&self, j: usize, shift: [i32; 3]) -> u64 {
        (0..3).fold((j as u64) << self.atom_offset, |key, a| {
            key | (((i64::from(shift[a]) - self.low[a]) as u64) << self.offset[a])
        })
    }

    fn neighbor(&self, key: u64) -> (usize, [i32; 3]) {
        let shift = std::array::from_fn(|a| {
            (((key >> self.offset[a]) & self.mask[a]) as i64 + self.low[a]) as i32
        });
        ((key >> self.atom_offset) as usize, shift)
    }
}

fn scaled(v: [f64; 3], k: i32) -> [f64; 3] {
    let k = f64::from(k);
    [v[0] * k, v[1] * k, v[2] * k]
}

fn add(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

#[cfg(test)]
mod tests {
    use super::super::grid::Frame;
    use super::*;
    use crate::cell::Cell;

    fn cell() -> Cell {
        Cell::new([[4.0, 0.2, 0.0], [0.5, 3.8, 0.1], [-0.3, 0.4, 4.2]]).unwrap()
    }

    /// Eight atoms, some outside the cell by a lattice vector or two.
    fn positions() -> Vec<[f64; 3]> {
        let cell = cell();
        [
            [0.1, 0.2, 0.3],
            [0.6, 0.1, 0.9],
            [-0.4, 0.5, 0.5],
            [1.7, 0.3, -0.2],
            [0.5, 0.5, 0.0],
            [0.9, -1.1, 0.4],
            [0.25, 0.75, 2.5],
            [0.0, 0.0, 0.0],
        ]
        .iter()
        .map(|&s| cell.cartesian(s))
        .collect()
    }

    #[test]
    fn packed_keys_sort_as_their_neighbours() {
        let cell = cell();
        let grid = Grid::new(&positions(), Frame::new(Some(&cell), [true; 3]), 5.0).unwrap();
        let packed = Packed::new(&grid).unwrap();
        let mut pairs = Vec::new();
        for j in 0..8 {
            for s0 in -3..=2 {
                for s1 in -3..=3 {
                    for s2 in -2..=3 {
                        pairs.push((j, [s0, s1, s2]));
                    }
                }
            }
        }
        let mut keys: Vec<u64> = pairs.iter().map(|&(j, s)| packed.key(j, s)).collect();
        keys.sort_unstable();
        pairs.sort_unstable();
        let back: Vec<_> = keys.iter().map(|&key| packed.neighbor(key)).collect();
        assert_eq!(back, pairs);
    }

    #[test]
    fn both_orders_give_the_same_edges() {
        let cell = cell();
        let positions = positions();
        for pbc in [[true; 3], [true, false, true], [false; 3]] {
            let frame = Frame::new(Some(&cell), pbc);
            let grid = Grid::new(&positions, frame, 5.0).unwrap();
            let packed = Packed::new(&grid).unwrap();
            let plain = search_in_order(&positions, &grid, frame.rows(), 5.0, &Plain);
            assert!(!plain.is_empty());
            assert_eq!(
                search_in_order(&positions, &grid, frame.rows(), 5.0, &packed),
                plain
            );
            assert_eq!(search(&positions, &grid, frame.rows(), 5.0), plain);
        }
    }

    #[test]
    fn atoms_far_outside_the_cell_fall_back_to_plain_keys() {
        let cell = cell();
        let near = positions();
        // Atom 3 moved by 2^28 lattice vectors along each axis: the shifts of its edges then
        // span over 2^29 values per component, too many for one u64 key.
        let far_shift = 1 << 28;
        let mut far = near.clone();
        let t = cell.shift_vector([far_shift; 3]);
        far[3] = std::array::from_fn(|c| near[3][c] + t[c]);
        let frame = Frame::new(Some(&cell), [true; 3]);
        let grid = Grid::new(&far, frame, 4.0).unwrap();
        assert_eq!(Packed::new(&grid), None);
        let edges = search(&far, &grid, frame.rows(), 4.0);

        let near_grid = Grid::new(&near, frame, 4.0).unwrap();
        let expected = search(&near, &near_grid, frame.rows(), 4.0);
        let moved = |atom: usize| if atom == 3 { far_shift } else { 0 };
        let mut mapped: Vec<_> = (0..expected.len())
            .map(|e| {
                let (i, j, s) = (expected.first[e], expected.second[e], expected.shifts[e]);
                (i, j, s.map(|v| v + moved(i) - moved(j)))
            })
            .collect();
        mapped.sort_unstable();
        let found: Vec<_> = (0..edges.len())
            .map(|e| (edges.first[e], edges.second[e], edges.shifts[e]))
            .collect();
        assert_eq!(found, mapped);
    }
}
