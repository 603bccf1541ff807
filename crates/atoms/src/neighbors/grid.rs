//! The linked-cell grid: atoms wrapped into the periodic cell and sorted into bins whose side
//! is at least the cutoff, with, per lattice direction, the bins (and image shifts) a search
//! from each bin must visit.
//!
//! Everything is done in fractional coordinates `s = x * inverse` of the search frame (the
//! cell when some axis is periodic, Cartesian axes otherwise). Moving by a Cartesian distance
//! `d` changes `s_a` by at most `d / face_a`, where `face_a` is the distance between the faces
//! of the cell normal to the reciprocal vector `a`; so two atoms closer than the cutoff `c` lie
//! in bins at most `ceil(c / (face_a * width_a))` apart along `a`, `width_a` being the bin
//! width in fractional units.

use super::NeighborError;
use crate::cell::{row_times, Cell, Pbc};

/// Relative margin added to the cutoff when sizing bins and pre-filtering candidates, so that
/// rounding in the fractional coordinates can never hide a pair closer than the cutoff.
pub(super) const MARGIN: f64 = 1e-8;

/// The most image layers (and cell lengths an atom may sit outside the cell), so that every
/// image shift fits an `i32` with room to spare.
pub(super) const MAX_OFFSET: f64 = (1u32 << 29) as f64;

/// The grid never has more bins than this many per atom (plus a few), so that sparse or
/// widely spread structures do not allocate a grid proportional to their extent.
const BINS_PER_ATOM: usize = 2;

/// The coordinate frame of the search: the cell when some axis is periodic, otherwise plain
/// Cartesian axes (a cell given without periodicity plays no part).
#[derive(Clone, Copy)]
pub(super) struct Frame<'a> {
    cell: Option<&'a Cell>,
    pbc: Pbc,
}

impl<'a> Frame<'a> {
    /// The frame for `pbc`; `cell` must be `Some` when any flag is set.
    pub(super) fn new(cell: Option<&'a Cell>, pbc: Pbc) -> Self {
        if pbc.iter().any(|&p| p) {
            Self { cell, pbc }
        } else {
            Self {
                cell: None,
                pbc: [false; 3],
            }
        }
    }

    /// The lattice rows used for image shifts, `None` for the Cartesian frame.
    pub(super) fn rows(&self) -> Option<&'a [[f64; 3]; 3]> {
        self.cell.map(Cell::rows)
    }

    fn fractional(&self, x: [f64; 3]) -> [f64; 3] {
        self.cell.map_or(x, |cell| cell.fractional(x))
    }

    fn face_distances(&self) -> [f64; 3] {
        self.cell.map_or([1.0; 3], Cell::face_distances)
    }

    /// The number of image cells a search with this cutoff visits: the product over the
    /// periodic axes of `2 * ceil(cutoff / face_a) + 1` (in `f64`, as it may be huge).
    pub(super) fn image_count(&self, cutoff: f64) -> f64 {
        let face = self.face_distances();
        (0..3)
            .filter(|&a| self.pbc[a])
            .map(|a| 2.0 * (binning_cutoff(cutoff) / face[a]).ceil() + 1.0)
            .product()
    }
}

/// The cutoff with its safety margin.
pub(super) fn binning_cutoff(cutoff: f64) -> f64 {
    cutoff * (1.0 + MARGIN)
}

/// One lattice direction of the grid.
pub(super) struct Axis {
    bins: usize,
    lo: f64,
    /// Bins per unit of fractional coordinate.
    scale: f64,
    /// For bin `b`, `visits[starts[b]..starts[b + 1]]` are the `(bin, image shift)` pairs a
    /// search from `b` visits, in increasing order of the unwrapped bin.
    visits: Vec<(usize, i32)>,
    starts: Vec<usize>,
}

impl Axis {
    /// A periodic axis: `bins` bins over `[0, 1)`, visited `layers` bins either side.
    fn periodic(bins: usize, layers: usize) -> Self {
        let mut visits = Vec::with_capacity(bins * (2 * layers + 1));
        let mut starts = Vec::with_capacity(bins + 1);
        // Both fit an i64: bins is capped by the atom count, layers by MAX_OFFSET.
        let (n, l) = (bins as i64, layers as i64);
        for b in 0..n {
            starts.push(visits.len());
            for u in b - l..=b + l {
                // The image shift is at most MAX_OFFSET + 1, which fits an i32.
                visits.push((u.rem_euclid(n) as usize, u.div_euclid(n) as i32));
            }
        }
        starts.push(visits.len());
        Self {
            bins,
            lo: 0.0,
            scale: bins as f64,
            visits,
            starts,
        }
    }

    /// A non-periodic axis: `bins` bins of fractional width `width` from `lo`, visited one
    /// bin either side (never across the ends).
    fn open(bins: usize, lo: f64, width: f64) -> Self {
        let mut visits = Vec::with_capacity(3 * bins);
        let mut starts = Vec::with_capacity(bins + 1);
        for b in 0..bins {
            starts.push(visits.len());
            visits.extend((b.saturating_sub(1)..(b + 2).min(bins)).map(|t| (t, 0)));
        }
        starts.push(visits.len());
        Self {
            bins,
            lo,
            scale: 1.0 / width,
            visits,
            starts,
        }
    }

    /// The number of bins along this axis.
    pub(super) fn bins(&self) -> usize {
        self.bins
    }

    /// The bin of fractional coordinate `s` (clamped to the grid, which only matters for
    /// rounding at the upper edge).
    fn bin(&self, s: f64) -> usize {
        // `as` saturates: negative values give 0, overflow gives usize::MAX.
        (((s - self.lo) * self.scale).floor() as usize).min(self.bins - 1)
    }

    /// The `(bin, image shift)` pairs a search from bin `b` visits.
    pub(super) fn visits(&self, b: usize) -> &[(usize, i32)] {
        &self.visits[self.starts[b]..self.starts[b + 1]]
    }

    /// The least and the greatest image shift of any visit.
    pub(super) fn shift_range(&self) -> [i32; 2] {
        self.visits
            .iter()
            .fold([i32::MAX, i32::MIN], |[lo, hi], &(_, k)| {
                [lo.min(k), hi.max(k)]
            })
    }
}

/// The atoms of one structure, wrapped and binned.
pub(super) struct Grid {
    /// The three lattice directions.
    pub(super) axes: [Axis; 3],
    /// Per atom: its bin along each axis.
    pub(super) bin_of: Vec<[usize; 3]>,
    /// Per atom: its position wrapped into the cell along the periodic axes.
    pub(super) wrapped: Vec<[f64; 3]>,
    /// Per atom: the lattice shift `n` with `x = wrapped + n * cell`.
    pub(super) image_of: Vec<[i32; 3]>,
    /// Slots `bin_start[b]..bin_start[b + 1]` hold the atoms of the linear bin `b`, in
    /// increasing atom order.
    pub(super) bin_start: Vec<usize>,
    /// Per slot: the atom.
    pub(super) slot_atom: Vec<usize>,
    /// Per slot: the wrapped position of its atom.
    pub(super) slot_position: Vec<[f64; 3]>,
    /// Per slot: the lattice shift of its atom (as `image_of`).
    pub(super) slot_image: Vec<[i32; 3]>,
    /// The most atoms in one bin.
    pub(super) max_bin_atoms: usize,
}

impl Grid {
    /// Wraps and bins `positions` (all finite, at least one) for neighbours closer than
    /// `cutoff` (finite, positive) in `frame`, whose image count has been checked.
    ///
    /// # Errors
    /// [`NeighborError::FarOutsideCell`] for an atom more than [`MAX_OFFSET`] cell lengths
    /// outside the cell along a periodic axis.
    pub(super) fn new(
        positions: &[[f64; 3]],
        frame: Frame<'_>,
        cutoff: f64,
    ) -> Result<Self, NeighborError> {
        let n = positions.len();
        let mut fractional = Vec::with_capacity(n);
        let mut wrapped = Vec::with_capacity(n);
        let mut image_of = Vec::with_capacity(n);
        for (atom, &x) in positions.iter().enumerate() {
            let mut s = frame.fractional(x);
            let mut image = [0.0; 3];
            for a in (0..3).filter(|&a| frame.pbc[a]) {
                image[a] = s[a].floor();
                if image[a].abs() > MAX_OFFSET {
                    return Err(NeighborError::FarOutsideCell { atom });
                }
                s[a] -= image[a];
            }
            let back = frame.rows().map_or([0.0; 3], |rows| row_times(image, rows));
            fractional.push(s);
            wrapped.push(std::array::from_fn(|c| x[c] - back[c]));
            image_of.push(image.map(|v| v as i32));
        }

        let axes = axes(&fractional, frame, cutoff);
        let nb = axes.each_ref().map(Axis::bins);
        let bin_of: Vec<[usize; 3]> = fractional
            .iter()
            .map(|s| std::array::from_fn(|a| axes[a].bin(s[a])))
            .collect();
        let linear = |b: &[usize; 3]| (b[0] * nb[1] + b[1]) * nb[2] + b[2];

        // A counting sort of the atoms by linear bin, stable so each bin lists its atoms in
        // increasing order.
        let mut bin_start = vec![0usize; nb[0] * nb[1] * nb[2] + 1];
        for b in &bin_of {
            bin_start[linear(b) + 1] += 1;
        }
        for k in 1..bin_start.len() {
            bin_start[k] += bin_start[k - 1];
        }
        let mut fill = bin_start.clone();
        let mut slot_atom = vec![0; n];
        let mut slot_position = vec![[0.0; 3]; n];
        let mut slot_image = vec![[0; 3]; n];
        for (atom, b) in bin_of.iter().enumerate() {
            let slot = &mut fill[linear(b)];
            slot_atom[*slot] = atom;
            slot_position[*slot] = wrapped[atom];
            slot_image[*slot] = image_of[atom];
            *slot += 1;
        }
        let max_bin_atoms = bin_start.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
        Ok(Self {
            axes,
            bin_of,
            wrapped,
            image_of,
            bin_start,
            slot_atom,
            slot_position,
            slot_image,
            max_bin_atoms,
        })
    }
}

/// The grid's axes for the (wrapped) fractional coordinates of the atoms.
fn axes(fractional: &[[f64; 3]], frame: Frame<'_>, cutoff: f64) -> [Axis; 3] {
    let face = frame.face_distances();
    // The least bin width, in fractional units, along each axis.
    let min_width = face.map(|f| binning_cutoff(cutoff) / f);
    let mut lo = [f64::INFINITY; 3];
    let mut extent = [0.0; 3];
    for a in (0..3).filter(|&a| !frame.pbc[a]) {
        let hi = fractional
            .iter()
            .map(|s| s[a])
            .fold(f64::NEG_INFINITY, f64::max);
        lo[a] = fractional
            .iter()
            .map(|s| s[a])
            .fold(f64::INFINITY, f64::min);
        // Coordinates near f64::MAX may overflow the difference; MAX still orders them.
        extent[a] = (hi - lo[a]).min(f64::MAX);
    }
    let wanted = std::array::from_fn(|a| {
        let span = if frame.pbc[a] { 1.0 } else { extent[a] };
        (span / min_width[a]).floor().max(1.0)
    });
    let bins = capped_bins(wanted, BINS_PER_ATOM * fractional.len() + 27);
    std::array::from_fn(|a| {
        if frame.pbc[a] {
            // At least 1 (the frame's image count was checked against MAX_OFFSET).
            let layers = (min_width[a] * bins[a] as f64).ceil() as usize;
            Axis::periodic(bins[a], layers)
        } else {
            Axis::open(
                bins[a],
                lo[a],
                (extent[a] / bins[a] as f64).max(min_width[a]),
            )
        }
    })
}

/// Bin counts no larger than `wanted` (each at least 1) whose product is at most `cap`.
fn capped_bins(wanted: [f64; 3], cap: usize) -> [usize; 3] {
    let cap_f = cap as f64;
    let mut bins = wanted.map(|b| b.min(cap_f));
    let total: f64 = bins.iter().product();
    if total > cap_f {
        let shrink = (total / cap_f).cbrt();
        bins = bins.map(|b| (b / shrink).floor().max(1.0));
    }
    while bins.iter().product::<f64>() > cap_f {
        let largest = (0..3).fold(0, |m, a| if bins[a] > bins[m] { a } else { m });
        bins[largest] = (bins[largest] / 2.0).floor().max(1.0);
    }
    bins.map(|b| b as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periodic_visits_wrap_with_their_image_shift() {
        let axis = Axis::periodic(3, 1);
        assert_eq!(axis.visits(0), &[(2, -1), (0, 0), (1, 0)]);
        assert_eq!(axis.visits(2), &[(1, 0), (2, 0), (0, 1)]);
        let single = Axis::periodic(1, 2);
        assert_eq!(
            single.visits(0),
            &[(0, -2), (0, -1), (0, 0), (0, 1), (0, 2)]
        );
        assert_eq!(axis.shift_range(), [-1, 1]);
        assert_eq!(single.shift_range(), [-2, 2]);
    }

    #[test]
    fn open_visits_stop_at_the_ends() {
        let axis = Axis::open(3, -1.0, 0.5);
        assert_eq!(axis.visits(0), &[(0, 0), (1, 0)]);
        assert_eq!(axis.visits(1), &[(0, 0), (1, 0), (2, 0)]);
        assert_eq!(axis.visits(2), &[(1, 0), (2, 0)]);
        assert_eq!(Axis::open(1, 0.0, 1.0).visits(0), &[(0, 0)]);
        assert_eq!(axis.shift_range(), [0, 0]);
        assert_eq!(axis.bin(-5.0), 0);
        assert_eq!(axis.bin(-0.6), 0);
        assert_eq!(axis.bin(-0.4), 1);
        assert_eq!(axis.bin(1e300), 2);
    }

    #[test]
    fn bin_counts_respect_the_cap() {
        assert_eq!(capped_bins([4.0, 5.0, 6.0], 1000), [4, 5, 6]);
        let capped = capped_bins([1e12, 1e12, 1.0], 100);
        assert!(capped.iter().product::<usize>() <= 100);
        assert!(capped.iter().all(|&b| b >= 1));
        assert_eq!(capped_bins([f64::MAX, 1.0, 1.0], 30), [30, 1, 1]);
    }

    #[test]
    fn atoms_are_wrapped_with_their_lattice_shift() {
        let cell = Cell::new([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0]]).unwrap();
        let frame = Frame::new(Some(&cell), [true, true, false]);
        let grid = Grid::new(&[[-0.5, 4.5, 7.0], [1.0, 1.0, 1.0]], frame, 0.9).unwrap();
        assert_eq!(grid.image_of[0], [-1, 2, 0]);
        assert_eq!(grid.wrapped[0], [1.5, 0.5, 7.0]);
        assert_eq!(grid.image_of[1], [0, 0, 0]);
        assert_eq!(grid.axes[0].bins(), 2);
        assert_eq!(grid.slot_atom.len(), 2);
    }
}
