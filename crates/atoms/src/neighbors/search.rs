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
    let loose = binning_cutoff(cutoff).powi(2);
    // Below `sure` the squared length is surely under the cutoff, above `loose` surely not;
    // in between the square root decides, as `Edges::distances` would.
    let sure = cutoff * cutoff * (1.0 - 1e-12);
    let lattice = rows.copied().unwrap_or([[0.0; 3]; 3]);
    let nb = grid.axes.each_ref().map(|axis| axis.bins());
    let mut edges = Edges::default();
    // Per atom: candidates (slot, wrapped-frame image shift), then confirmed (j, S).
    let mut candidates: Vec<(usize, [i32; 3])> = Vec::new();
    let mut found: Vec<(usize, [i32; 3])> = Vec::new();

    for (i, &xi) in positions.iter().enumerate() {
        let [b0, b1, b2] = grid.bin_of[i];
        let wi = grid.wrapped[i];
        candidates.clear();
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
                    let slots = grid.bin_start[bin]..grid.bin_start[bin + 1];
                    for (slot, p) in grid.slot_position[slots.clone()].iter().enumerate() {
                        let r = [p[0] + d[0], p[1] + d[1], p[2] + d[2]];
                        if r[0] * r[0] + r[1] * r[1] + r[2] * r[2] < loose {
                            candidates.push((slots.start + slot, [k0, k1, k2]));
                        }
                    }
                }
            }
        }

        found.clear();
        let ni = grid.image_of[i];
        for &(slot, k) in &candidates {
            let j = grid.slot_atom[slot];
            if j == i && k == [0, 0, 0] {
                continue;
            }
            let nj = grid.image_of[j];
            let shift = std::array::from_fn(|a| k[a] + ni[a] - nj[a]);
            let r = displacement(xi, positions[j], shift, rows);
            let r2 = r[0] * r[0] + r[1] * r[1] + r[2] * r[2];
            if r2 < sure || (r2 < loose && length(r) < cutoff) {
                found.push((j, shift));
            }
        }
        found.sort_unstable();
        edges.first.extend(std::iter::repeat_n(i, found.len()));
        edges.second.extend(found.iter().map(|&(j, _)| j));
        edges.shifts.extend(found.iter().map(|&(_, s)| s));
    }
    edges
}

fn scaled(v: [f64; 3], k: i32) -> [f64; 3] {
    let k = f64::from(k);
    [v[0] * k, v[1] * k, v[2] * k]
}

fn add(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}
