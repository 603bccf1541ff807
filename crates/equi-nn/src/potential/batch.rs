//! A batch of structures and its periodic neighbour graph, kept on the host in f64.

use atoms::{neighbor_list, Cell, NeighborOptions, Pbc};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor, TensorData};

use super::{AtomsGraph, PotentialError};

/// A 3x3 stress (eV/A^3).
pub type Stress = [[f64; 3]; 3];

/// Atoms closer than this (Angstrom) are refused as coincident.
pub const MIN_DISTANCE: f64 = 1e-3;

/// One structure: atoms, and optionally a cell with periodic boundary conditions.
#[derive(Clone, Debug, PartialEq)]
pub struct System {
    /// The model's token of every atom (see [`AtomsGraph::tokens`]).
    pub tokens: Vec<i64>,
    /// Cartesian positions (Angstrom); they need not lie inside the cell.
    pub positions: Vec<[f64; 3]>,
    /// The cell, needed when any axis is periodic; with a cell, the stress is defined.
    pub cell: Option<Cell>,
    /// Periodicity along each lattice vector.
    pub pbc: Pbc,
}

impl System {
    /// A finite structure (a molecule): no cell, no periodicity.
    pub fn molecule(tokens: Vec<i64>, positions: Vec<[f64; 3]>) -> Self {
        Self {
            tokens,
            positions,
            cell: None,
            pbc: [false; 3],
        }
    }
}

/// The neighbour graph of a batch of [`System`]s, padded to `N` atoms and `K` neighbour
/// slots: every edge `(i, j, S)` closer than the cutoff (atoms' images included) is one slot
/// of atom `i`, in the order of [`atoms::neighbor_list`].
#[derive(Clone, Debug)]
pub struct PeriodicBatch {
    atoms: Vec<usize>,
    n: usize,
    k: usize,
    /// `[B * N]`, padding 0.
    tokens: Vec<i64>,
    /// `[B * N]`, padding at the origin.
    positions: Vec<[f64; 3]>,
    /// `[B * N * K]`: the neighbour of each slot (0 on masked slots).
    neighbors: Vec<i64>,
    /// `[B * N * K]`.
    slot_mask: Vec<bool>,
    /// `[B * N * K]`: displacements of the slots (zero on masked ones).
    displacements: Vec<[f64; 3]>,
    cells: Vec<Option<Cell>>,
    edges: usize,
}

impl PeriodicBatch {
    /// The graph of `systems` with every edge shorter than `cutoff`.
    ///
    /// An atom without neighbours is allowed (its energy is the model's energy of an
    /// isolated atom, its force zero).
    ///
    /// # Errors
    /// No structure, a structure without atoms, as many tokens as positions not given,
    /// non-finite positions, periodicity without a cell, a cell that would need more than
    /// `max_images` periodic images within the cutoff (a near-degenerate cell), and atoms
    /// closer than [`MIN_DISTANCE`] (coincident), each naming the structure.
    pub fn new(systems: &[System], cutoff: f64, max_images: usize) -> Result<Self, PotentialError> {
        if systems.is_empty() {
            return Err(PotentialError::Model("the batch holds no structure".into()));
        }
        let fail = |index: usize, reason: String| PotentialError::Structure { index, reason };
        let options = NeighborOptions { cutoff, max_images };
        let mut lists = Vec::with_capacity(systems.len());
        for (index, system) in systems.iter().enumerate() {
            let count = system.positions.len();
            if count == 0 {
                return Err(fail(index, "it has no atoms".into()));
            }
            if system.tokens.len() != count {
                return Err(fail(
                    index,
                    format!("{} tokens for {count} atoms", system.tokens.len()),
                ));
            }
            let edges = neighbor_list(
                &system.positions,
                system.cell.as_ref(),
                system.pbc,
                &options,
            )
            .map_err(|error| fail(index, error.to_string()))?;
            let displacements: Vec<[f64; 3]> = (0..edges.len())
                .map(|e| edges.displacement(e, &system.positions, system.cell.as_ref()))
                .collect();
            if let Some(e) = displacements.iter().position(|r| norm(*r) < MIN_DISTANCE) {
                return Err(fail(
                    index,
                    format!(
                        "atoms {} and {} (shift {:?}) are {:.1e} A apart: coincident atoms",
                        edges.first[e],
                        edges.second[e],
                        edges.shifts[e],
                        norm(displacements[e])
                    ),
                ));
            }
            lists.push((edges, displacements));
        }
        let n = systems.iter().map(|s| s.positions.len()).max().unwrap_or(0);
        let k = lists
            .iter()
            .zip(systems)
            .map(|((edges, _), system)| {
                let mut degree = vec![0usize; system.positions.len()];
                for &i in &edges.first {
                    degree[i] += 1;
                }
                degree.into_iter().max().unwrap_or(0)
            })
            .max()
            .unwrap_or(0)
            .max(1);
        let b = systems.len();
        let mut batch = Self {
            atoms: systems.iter().map(|s| s.positions.len()).collect(),
            n,
            k,
            tokens: vec![0; b * n],
            positions: vec![[0.0; 3]; b * n],
            neighbors: vec![0; b * n * k],
            slot_mask: vec![false; b * n * k],
            displacements: vec![[0.0; 3]; b * n * k],
            cells: systems.iter().map(|s| s.cell).collect(),
            edges: lists.iter().map(|(edges, _)| edges.len()).sum(),
        };
        for (s, (system, (edges, displacements))) in systems.iter().zip(&lists).enumerate() {
            let atoms = s * n..s * n + system.positions.len();
            batch.tokens[atoms.clone()].copy_from_slice(&system.tokens);
            batch.positions[atoms].copy_from_slice(&system.positions);
            let mut filled = vec![0usize; system.positions.len()];
            for (e, (&i, &j)) in edges.first.iter().zip(&edges.second).enumerate() {
                let slot = (s * n + i) * k + filled[i];
                filled[i] += 1;
                batch.neighbors[slot] = j as i64;
                batch.slot_mask[slot] = true;
                batch.displacements[slot] = displacements[e];
            }
        }
        Ok(batch)
    }

    /// The number of structures `B`.
    pub fn len(&self) -> usize {
        self.atoms.len()
    }

    /// Whether the batch is empty (never, once built).
    pub fn is_empty(&self) -> bool {
        self.atoms.is_empty()
    }

    /// The number of atoms of every structure.
    pub fn atoms(&self) -> &[usize] {
        &self.atoms
    }

    /// The number of edges of the whole batch (both directions of every pair counted).
    pub fn edges(&self) -> usize {
        self.edges
    }

    /// The padded sizes `[B, N, K]`: structures, atoms, neighbour slots.
    pub fn dims(&self) -> [usize; 3] {
        [self.len(), self.n, self.k]
    }

    /// The cell of structure `b`.
    pub fn cell(&self, b: usize) -> Option<&Cell> {
        self.cells[b].as_ref()
    }

    /// The displacements of the slots `[B * N * K]`, as found.
    pub fn displacements(&self) -> &[[f64; 3]] {
        &self.displacements
    }

    /// The displacements after moving every atom by `scale * moves` (`[B][n_b]`) and
    /// straining every structure by `scale * strains[b]` (symmetric; the displacement `r`
    /// becomes `r (I + scale * strain)`): the neighbour graph of a nearby configuration,
    /// with the same edges.
    ///
    /// # Panics
    /// If `moves` or `strains` do not match the batch.
    pub fn displaced(
        &self,
        moves: &[Vec<[f64; 3]>],
        strains: &[[[f64; 3]; 3]],
        scale: f64,
    ) -> Vec<[f64; 3]> {
        assert_eq!(moves.len(), self.len(), "one list of moves per structure");
        assert_eq!(strains.len(), self.len(), "one strain per structure");
        let (n, k) = (self.n, self.k);
        let mut out = self.displacements.clone();
        for (b, (moves, strain)) in moves.iter().zip(strains).enumerate() {
            assert_eq!(moves.len(), self.atoms[b], "one move per atom");
            for i in 0..self.atoms[b] {
                let slots = (b * n + i) * k..(b * n + i + 1) * k;
                for (slot, value) in slots.clone().zip(&mut out[slots]) {
                    if !self.slot_mask[slot] {
                        continue;
                    }
                    let j = self.neighbors[slot] as usize;
                    let r: [f64; 3] =
                        std::array::from_fn(|a| value[a] + scale * (moves[j][a] - moves[i][a]));
                    *value = std::array::from_fn(|c| {
                        r[c] + scale * (0..3).map(|a| r[a] * strain[a][c]).sum::<f64>()
                    });
                }
            }
        }
        out
    }

    /// The graph on `device` of one or more copies of the batch stacked along the batch
    /// axis (`[copies * B, N, K]`), copy `c` with the slot displacements `sets[c]`.
    ///
    /// # Panics
    /// If a set does not hold `B * N * K` displacements.
    pub fn graph<B: Backend>(&self, sets: &[&[[f64; 3]]], device: &B::Device) -> AtomsGraph<B> {
        let copies = sets.len();
        let [b, n, k] = self.dims();
        let ints = |values: Vec<i64>| {
            let len = values.len();
            Tensor::<B, 1, Int>::from_data(
                TensorData::new(values, [len]).convert::<B::IntElem>(),
                device,
            )
        };
        let flags = |values: Vec<bool>| {
            let len = values.len();
            Tensor::<B, 1, Bool>::from_data(TensorData::new(values, [len]), device)
        };
        let floats = |values: Vec<f64>| {
            let len = values.len();
            Tensor::<B, 1>::from_data(
                TensorData::new(values, [len]).convert::<B::FloatElem>(),
                device,
            )
        };
        let mut flat = Vec::with_capacity(copies * b * n * k * 3);
        for set in sets {
            assert_eq!(set.len(), b * n * k, "one displacement per slot");
            flat.extend(set.iter().flatten());
        }
        let mask: Vec<bool> = (0..b * n).map(|a| a % n < self.atoms[a / n]).collect();
        let positions: Vec<f64> = self.positions.iter().flatten().copied().collect();
        let rows = copies * b;
        AtomsGraph {
            tokens: ints(self.tokens.repeat(copies)).reshape([rows, n]),
            mask: flags(mask.repeat(copies)).reshape([rows, n]),
            positions: floats(positions.repeat(copies)).reshape([rows, n, 3]),
            neighbors: ints(self.neighbors.repeat(copies)).reshape([rows, n, k]),
            slot_mask: flags(self.slot_mask.repeat(copies)).reshape([rows, n, k]),
            displacements: floats(flat).reshape([rows, n, k, 3]),
        }
    }

    /// Forces and stress from the gradient of the energies with respect to the slot
    /// displacements (`[B * N * K * 3]`, one batch copy): `F_i = sum_slots(i) g -
    /// sum_slots(j = i) g`, and for a structure with a cell `sigma = sym(sum r (x) g) / V`.
    ///
    /// # Panics
    /// If `gradient` does not hold `B * N * K * 3` values.
    pub fn chain_rule(&self, gradient: &[f64]) -> (Vec<Vec<[f64; 3]>>, Vec<Option<Stress>>) {
        let [b, n, k] = self.dims();
        assert_eq!(gradient.len(), b * n * k * 3, "one gradient per slot");
        let mut forces = Vec::with_capacity(b);
        let mut stresses = Vec::with_capacity(b);
        for s in 0..b {
            let mut f = vec![[0.0; 3]; self.atoms[s]];
            let mut virial = [[0.0; 3]; 3];
            for i in 0..self.atoms[s] {
                for slot in (s * n + i) * k..(s * n + i + 1) * k {
                    if !self.slot_mask[slot] {
                        continue;
                    }
                    let g = &gradient[slot * 3..slot * 3 + 3];
                    let j = self.neighbors[slot] as usize;
                    let r = self.displacements[slot];
                    for a in 0..3 {
                        f[i][a] += g[a];
                        f[j][a] -= g[a];
                        for c in 0..3 {
                            virial[a][c] += r[a] * g[c];
                        }
                    }
                }
            }
            forces.push(f);
            stresses.push(self.cells[s].as_ref().map(|cell| {
                let v = cell.volume();
                std::array::from_fn(|a| {
                    std::array::from_fn(|c| 0.5 * (virial[a][c] + virial[c][a]) / v)
                })
            }));
        }
        (forces, stresses)
    }
}

fn norm(r: [f64; 3]) -> f64 {
    (r[0] * r[0] + r[1] * r[1] + r[2] * r[2]).sqrt()
}
