//! Structures in memory, their loading from files, splitting and padded batches.
//!
//! A [`Structure`] is one graph: atoms with tokens and positions, optionally a periodic cell,
//! plus optional labels (one number per structure, one vector per atom, a stress).
//! Variable-size structures are batched into padded tensors with a node mask by [`batch`].

pub mod batch;
mod load;
pub mod protein;

use atoms::{Cell, Pbc};

use crate::rng::{Rng, Stream};

pub use batch::{Batch, HostBatch};
pub(crate) use load::molecule;
pub use load::{load_backbones, load_molecules, LabelSpec};

/// The largest absolute Cartesian coordinate (Angstrom) a loaded structure may have. Beyond
/// it, f32 positions resolve no better than 1e-3 A, so distances (and everything computed
/// from them) lose their meaning long before they overflow; such structures are refused at
/// load with the file, frame and atom named. The PDB format's own columns end at the same
/// size (9999.999).
pub const MAX_COORDINATE: f64 = 1e4;

/// Token vocabulary of molecules: the atomic number (`0..=118`).
pub const MOLECULE_TOKENS: usize = 119;

/// Token vocabulary of protein backbones: `3 * residue + role`, with the residue token
/// `0..=20` of [`crate::io::pdb::residue_token`] (20: unknown) and the role 0 (N), 1 (CA),
/// 2 (C).
pub const PROTEIN_TOKENS: usize = 63;

/// One structure: atoms, positions and labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Structure {
    /// Where it comes from (`file`, `file frame 3`), for messages and outputs.
    pub origin: String,
    /// Atomic number of every atom.
    pub atomic_numbers: Vec<u8>,
    /// Model token of every atom (`< MOLECULE_TOKENS` or `< PROTEIN_TOKENS`).
    pub tokens: Vec<i64>,
    /// Positions in Angstrom.
    pub positions: Vec<[f64; 3]>,
    /// A per-structure label (a property or the energy).
    pub scalar: Option<f64>,
    /// A per-atom vector label (forces, or the noise of a denoising sample).
    pub vectors: Option<Vec<[f64; 3]>>,
    /// The lattice vectors (rows, Angstrom) of a periodic structure; `None` for a molecule.
    pub cell: Option<Cell>,
    /// Periodic boundary conditions along the three lattice vectors; all `false` without a
    /// cell.
    pub pbc: Pbc,
    /// The stress label `[3, 3]` in eV/A^3, ASE's sign: `(1/V) dE/d(strain)`, negative for a
    /// compressed cell.
    pub stress: Option<[[f64; 3]; 3]>,
}

impl Structure {
    /// Number of atoms.
    pub fn len(&self) -> usize {
        self.atomic_numbers.len()
    }

    /// Whether the structure has no atoms.
    pub fn is_empty(&self) -> bool {
        self.atomic_numbers.is_empty()
    }

    /// The atoms `range`, with their per-atom labels, cell and pbc; the per-structure labels
    /// (scalar and stress) are dropped.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Structure {
        Structure {
            origin: format!("{} atoms {}..{}", self.origin, range.start, range.end),
            atomic_numbers: self.atomic_numbers[range.clone()].to_vec(),
            tokens: self.tokens[range.clone()].to_vec(),
            positions: self.positions[range.clone()].to_vec(),
            scalar: None,
            vectors: self.vectors.as_ref().map(|v| v[range].to_vec()),
            cell: self.cell,
            pbc: self.pbc,
            stress: None,
        }
    }
}

/// Splits `structures` into training and validation sets: a random `fraction` (at least one
/// structure, and at least one left for training) is held out, drawn with `seed`.
///
/// Returns `None` when there are fewer than two structures.
pub fn split(
    structures: Vec<Structure>,
    fraction: f64,
    seed: u64,
) -> Option<(Vec<Structure>, Vec<Structure>)> {
    let n = structures.len();
    if n < 2 {
        return None;
    }
    let held_out = ((n as f64 * fraction).round() as usize).clamp(1, n - 1);
    let order = Rng::derive(seed, Stream::Split, &[]).permutation(n);
    let mut is_valid = vec![false; n];
    order[..held_out].iter().for_each(|&i| is_valid[i] = true);
    let (mut train, mut valid) = (Vec::new(), Vec::new());
    for (structure, valid_flag) in structures.into_iter().zip(is_valid) {
        if valid_flag {
            valid.push(structure);
        } else {
            train.push(structure);
        }
    }
    Some((train, valid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(i: usize) -> Structure {
        Structure {
            origin: format!("s{i}"),
            atomic_numbers: vec![1; i + 1],
            tokens: vec![1; i + 1],
            positions: vec![[i as f64, 0.0, 0.0]; i + 1],
            scalar: Some(i as f64),
            vectors: None,
            cell: None,
            pbc: [false; 3],
            stress: None,
        }
    }

    #[test]
    fn split_is_seeded_and_disjoint() {
        let all: Vec<Structure> = (0..20).map(tiny).collect();
        let (train, valid) = split(all.clone(), 0.25, 3).expect("enough structures");
        assert_eq!((train.len(), valid.len()), (15, 5));
        let (train_again, valid_again) = split(all.clone(), 0.25, 3).expect("same split");
        assert_eq!((train.clone(), valid.clone()), (train_again, valid_again));
        let (_, other) = split(all, 0.25, 4).expect("other seed");
        assert_ne!(valid, other);
        assert!(valid.iter().all(|v| !train.contains(v)));
        assert!(split(vec![tiny(0)], 0.5, 0).is_none());
        let (train, valid) = split((0..2).map(tiny).collect(), 0.9, 0).expect("two");
        assert_eq!((train.len(), valid.len()), (1, 1));
    }
}
