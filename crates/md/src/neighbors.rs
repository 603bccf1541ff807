//! Neighbour lists for a moving structure: a Verlet list with a skin, rebuilt only when some
//! atom has moved far enough to matter.

use atoms::{neighbor_list, Cell, NeighborError, NeighborOptions, Pbc};

use crate::error::MdError;
use crate::state::State;

/// One directed edge of a [`NeighborList`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbor {
    /// The atom the edge starts at.
    pub i: usize,
    /// The atom it ends at (an image of it, shifted by `shift`).
    pub j: usize,
    /// The integer image shift `S`, in lattice vectors; zero along non-periodic axes.
    pub shift: [i32; 3],
    /// The displacement `x_j - x_i + S * cell` of the current positions, in A.
    pub vector: [f64; 3],
}

impl Neighbor {
    /// The length of the displacement, in A.
    pub fn distance(&self) -> f64 {
        let r = self.vector;
        (r[0] * r[0] + r[1] * r[1] + r[2] * r[2]).sqrt()
    }
}

/// The directed edges `(i, j, S)` a force field receives, with the current displacements.
///
/// It contains every ordered pair (and periodic image) closer than
/// [`cutoff`](Self::cutoff), and possibly pairs farther away; each pair in both directions,
/// `(i, j, S)` and `(j, i, -S)`, never `(i, i, 0)`. The displacement of edge `e` is
/// `vectors()[e] = x_j - x_i + S * cell` (`S` a row vector times the cell rows), of the
/// positions of the state it was last updated for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NeighborList {
    cutoff: f64,
    first: Vec<usize>,
    second: Vec<usize>,
    shifts: Vec<[i32; 3]>,
    offsets: Vec<[f64; 3]>,
    vectors: Vec<[f64; 3]>,
}

impl NeighborList {
    /// A fresh list of the pairs of `state` closer than `cutoff` (A), by the linked-cell search
    /// of [`atoms::neighbor_list`].
    ///
    /// # Errors
    /// What the search refuses: an invalid cutoff, too many periodic images, ...
    pub fn new(state: &State, cutoff: f64) -> Result<Self, NeighborError> {
        let edges = neighbor_list(
            state.positions(),
            state.cell(),
            state.pbc(),
            &NeighborOptions::new(cutoff),
        )?;
        let offsets = match state.cell() {
            Some(cell) => edges.shifts.iter().map(|&s| cell.shift_vector(s)).collect(),
            None => vec![[0.0; 3]; edges.len()],
        };
        let mut list = Self {
            cutoff,
            first: edges.first,
            second: edges.second,
            shifts: edges.shifts,
            offsets,
            vectors: Vec::new(),
        };
        list.refresh(state.positions());
        Ok(list)
    }

    /// Recomputes every displacement from `positions` and the stored `(i, j, S)`; the cell
    /// must be the one the list was built with.
    fn refresh(&mut self, positions: &[[f64; 3]]) {
        self.vectors.clear();
        self.vectors
            .extend(self.first.iter().zip(&self.second).zip(&self.offsets).map(
                |((&i, &j), offset)| {
                    let (xi, xj) = (positions[i], positions[j]);
                    std::array::from_fn(|c| (xj[c] - xi[c]) + offset[c])
                },
            ));
    }

    /// Every pair closer than this (A) is in the list.
    pub fn cutoff(&self) -> f64 {
        self.cutoff
    }

    /// The number of directed edges.
    pub fn len(&self) -> usize {
        self.first.len()
    }

    /// Whether there are no edges.
    pub fn is_empty(&self) -> bool {
        self.first.is_empty()
    }

    /// The first atom `i` of every edge, `[E]`.
    pub fn first(&self) -> &[usize] {
        &self.first
    }

    /// The second atom `j` of every edge, `[E]`.
    pub fn second(&self) -> &[usize] {
        &self.second
    }

    /// The image shift `S` of every edge, `[E][3]`.
    pub fn shifts(&self) -> &[[i32; 3]] {
        &self.shifts
    }

    /// The displacement `x_j - x_i + S * cell` of every edge, `[E][3]` in A.
    pub fn vectors(&self) -> &[[f64; 3]] {
        &self.vectors
    }

    /// The edges one by one.
    pub fn iter(&self) -> impl Iterator<Item = Neighbor> + '_ {
        (0..self.len()).map(|e| Neighbor {
            i: self.first[e],
            j: self.second[e],
            shift: self.shifts[e],
            vector: self.vectors[e],
        })
    }
}

/// A neighbour list with a skin, for a structure that moves a little at a time.
///
/// It is built at `cutoff + skin` and then reused, with displacements recomputed from the
/// current positions, until some atom has moved more than `skin / 2` from where it was at the
/// last build (measured on the unwrapped positions): until then no pair can have come closer
/// than `cutoff` without already being in the list. It is also rebuilt when the cell, the
/// periodicity or the number of atoms changes.
///
/// With wrapping (the default), each rebuild first moves every atom back into the cell along
/// the periodic axes (by whole lattice vectors) and then searches, so the stored shifts always
/// refer to the positions as they are; between rebuilds positions are never wrapped.
///
/// ```
/// use md::{State, VerletList};
/// let mut state = State::new(vec![18, 18], vec![[0.0; 3], [3.75, 0.0, 0.0]])?;
/// let mut list = VerletList::new(4.0, 1.0)?;
/// list.update(&mut state)?;
/// assert_eq!((list.list().len(), list.rebuilds()), (2, 1));
/// state.positions_mut()[1][0] += 0.25; // less than skin / 2: reused
/// list.update(&mut state)?;
/// assert_eq!((list.list().vectors()[0], list.rebuilds()), ([4.0, 0.0, 0.0], 1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct VerletList {
    cutoff: f64,
    skin: f64,
    wrap: bool,
    list: NeighborList,
    /// The positions at the last build, `[n][3]`, and the cell and periodicity then.
    reference: Vec<[f64; 3]>,
    built_for: Option<(Option<Cell>, Pbc)>,
    rebuilds: usize,
}

impl VerletList {
    /// A list for a force field of range `cutoff` with a margin `skin`, both in A; empty
    /// until the first [`update`](Self::update).
    ///
    /// A skin of zero rebuilds at every step in which anything moved. Typical skins are
    /// 0.3 to 2 A: larger skins mean fewer rebuilds but more edges at every evaluation.
    ///
    /// # Errors
    /// A cutoff that is not finite and positive, or a skin that is negative or not finite.
    pub fn new(cutoff: f64, skin: f64) -> Result<Self, MdError> {
        Ok(Self {
            cutoff: MdError::check_positive("the neighbour cutoff (A)", cutoff)?,
            skin: MdError::check_non_negative("the neighbour skin (A)", skin)?,
            wrap: true,
            list: NeighborList::default(),
            reference: Vec::new(),
            built_for: None,
            rebuilds: 0,
        })
    }

    /// The same list, but never moving atoms into the cell (for unwrapped trajectories, e.g.
    /// diffusion). The neighbour search accepts atoms outside the cell.
    pub fn without_wrapping(mut self) -> Self {
        self.wrap = false;
        self
    }

    /// Brings the list up to date with `state`, rebuilding it (and wrapping `state`'s
    /// positions, unless disabled) when needed; returns whether it was rebuilt.
    ///
    /// # Errors
    /// What the neighbour search refuses, at a rebuild.
    pub fn update(&mut self, state: &mut State) -> Result<bool, NeighborError> {
        if self.needs_rebuild(state) {
            self.rebuild(state)?;
            Ok(true)
        } else {
            self.list.refresh(state.positions());
            Ok(false)
        }
    }

    fn needs_rebuild(&self, state: &State) -> bool {
        let Some((cell, pbc)) = &self.built_for else {
            return true;
        };
        if cell.as_ref() != state.cell() || *pbc != state.pbc() {
            return true;
        }
        if self.reference.len() != state.atom_count() {
            return true;
        }
        let limit = 0.5 * self.skin;
        let limit_squared = limit * limit;
        self.reference
            .iter()
            .zip(state.positions())
            .any(|(old, new)| {
                let d: [f64; 3] = std::array::from_fn(|c| new[c] - old[c]);
                d[0] * d[0] + d[1] * d[1] + d[2] * d[2] > limit_squared
            })
    }

    fn rebuild(&mut self, state: &mut State) -> Result<(), NeighborError> {
        if self.wrap {
            wrap_into_cell(state);
        }
        self.list = NeighborList::new(state, self.cutoff + self.skin)?;
        self.reference.clear();
        self.reference.extend_from_slice(state.positions());
        self.built_for = Some((state.cell().copied(), state.pbc()));
        self.rebuilds += 1;
        Ok(())
    }

    /// The current list (empty before the first update).
    pub fn list(&self) -> &NeighborList {
        &self.list
    }

    /// How many times the list has been built.
    pub fn rebuilds(&self) -> usize {
        self.rebuilds
    }

    /// The force field's cutoff the list serves, in A.
    pub fn cutoff(&self) -> f64 {
        self.cutoff
    }

    /// The margin added to the cutoff at each build, in A.
    pub fn skin(&self) -> f64 {
        self.skin
    }
}

/// Moves every atom by whole lattice vectors so that its fractional coordinates along the
/// periodic axes lie in `[0, 1)` (up to rounding); atoms already inside are not touched.
fn wrap_into_cell(state: &mut State) {
    let (Some(cell), pbc) = (state.cell().copied(), state.pbc()) else {
        return;
    };
    for x in state.positions_mut() {
        let s = cell.fractional(*x);
        let shift: [i32; 3] = std::array::from_fn(|k| if pbc[k] { s[k].floor() as i32 } else { 0 });
        if shift != [0, 0, 0] {
            let offset = cell.shift_vector(shift);
            for c in 0..3 {
                x[c] -= offset[c];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::fcc;
    use rand::{Rng, SeedableRng};

    /// The edges shorter than `cutoff`, as sorted `(i, j, S)` triples.
    fn pairs_within(list: &NeighborList, cutoff: f64) -> Vec<(usize, usize, [i32; 3])> {
        let mut pairs: Vec<_> = list
            .iter()
            .filter(|n| n.distance() < cutoff)
            .map(|n| (n.i, n.j, n.shift))
            .collect();
        pairs.sort_unstable();
        pairs
    }

    #[test]
    fn a_reused_list_holds_every_pair_within_the_cutoff() {
        let (positions, cell) = fcc(3.6, [2, 2, 2]);
        let n = positions.len();
        let mut state = State::new(vec![29; n], positions)
            .unwrap()
            .with_cell(Some(cell), [true; 3])
            .unwrap();
        let (cutoff, skin) = (3.0, 0.6);
        let mut verlet = VerletList::new(cutoff, skin).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut rebuilt_steps = 0;
        for _ in 0..200 {
            for x in state.positions_mut() {
                for v in x.iter_mut() {
                    *v += rng.random_range(-0.04..0.04);
                }
            }
            rebuilt_steps += usize::from(verlet.update(&mut state).unwrap());
            // The same positions (wrapped at the last rebuild, never since) searched afresh.
            let fresh = NeighborList::new(&state, cutoff).unwrap();
            assert_eq!(
                pairs_within(verlet.list(), cutoff),
                pairs_within(&fresh, cutoff)
            );
        }
        assert_eq!(rebuilt_steps, verlet.rebuilds());
        assert!(verlet.rebuilds() > 1 && verlet.rebuilds() < 50);
    }

    #[test]
    fn wrapping_moves_atoms_by_lattice_vectors_only() {
        let cell = Cell::new([[3.0, 0.0, 0.0], [1.0, 3.0, 0.0], [0.0, 0.0, 3.0]]).unwrap();
        let positions = vec![[-0.5, 0.2, 7.0], [1.0, 1.0, 1.0], [4.5, -0.1, -0.2]];
        let mut state = State::new(vec![1; 3], positions.clone())
            .unwrap()
            .with_cell(Some(cell), [true, true, false])
            .unwrap();
        let mut verlet = VerletList::new(2.0, 0.5).unwrap();
        verlet.update(&mut state).unwrap();
        for (k, (old, new)) in positions.iter().zip(state.positions()).enumerate() {
            let s = cell.fractional(*new);
            for axis in 0..2 {
                assert!((-1e-12..1.0).contains(&s[axis]), "atom {k}: {s:?}");
            }
            let moved = cell.fractional(std::array::from_fn(|c| new[c] - old[c]));
            for value in moved {
                assert!((value - value.round()).abs() < 1e-12);
            }
            // The non-periodic axis is left alone.
            assert!((moved[2]).abs() < 1e-12);
        }
        assert_eq!(state.positions()[1], [1.0, 1.0, 1.0]);
        let unwrapped = State::new(vec![1; 3], positions.clone())
            .unwrap()
            .with_cell(Some(cell), [true, true, false])
            .unwrap();
        let mut kept = unwrapped.clone();
        VerletList::new(2.0, 0.5)
            .unwrap()
            .without_wrapping()
            .update(&mut kept)
            .unwrap();
        assert_eq!(kept, unwrapped);
    }

    #[test]
    fn invalid_cutoff_or_skin_is_refused() {
        assert!(matches!(
            VerletList::new(0.0, 1.0),
            Err(MdError::InvalidParameter { .. })
        ));
        assert!(matches!(
            VerletList::new(5.0, -0.1),
            Err(MdError::InvalidParameter { .. })
        ));
        assert!(matches!(
            VerletList::new(5.0, f64::NAN),
            Err(MdError::InvalidParameter { .. })
        ));
    }
}
