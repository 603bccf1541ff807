//! Protein backbones for denoising: crops of contiguous residues and Gaussian noise.

use super::Structure;
use crate::rng::Rng;

/// Backbone atoms per residue (N, CA, C).
pub const ATOMS_PER_RESIDUE: usize = 3;

fn residues(structure: &Structure) -> usize {
    structure.len() / ATOMS_PER_RESIDUE
}

/// A random window of `crop_residues` contiguous residues (the whole structure when it is not
/// longer, or when `crop_residues` is 0).
pub fn random_crop(structure: &Structure, crop_residues: usize, rng: &mut Rng) -> Structure {
    let total = residues(structure);
    if crop_residues == 0 || total <= crop_residues {
        return structure.clone();
    }
    let start = rng.below(total - crop_residues + 1);
    window(structure, start, crop_residues)
}

/// Windows of `crop_residues` contiguous residues that cover the structure: consecutive
/// windows from the start, the last one ending at the last residue.
pub fn covering_windows(structure: &Structure, crop_residues: usize) -> Vec<Structure> {
    let total = residues(structure);
    if crop_residues == 0 || total <= crop_residues {
        return vec![structure.clone()];
    }
    let mut starts: Vec<usize> = (0..total - crop_residues).step_by(crop_residues).collect();
    starts.push(total - crop_residues);
    starts
        .into_iter()
        .map(|start| window(structure, start, crop_residues))
        .collect()
}

fn window(structure: &Structure, start: usize, length: usize) -> Structure {
    let mut crop = structure.slice(ATOMS_PER_RESIDUE * start..ATOMS_PER_RESIDUE * (start + length));
    crop.origin = format!(
        "{} residues {}..{}",
        structure.origin,
        start + 1,
        start + length
    );
    crop
}

/// Adds Gaussian noise of standard deviation `sigma` to every coordinate; the noise becomes
/// the per-atom vector label.
pub fn add_noise(mut structure: Structure, sigma: f64, rng: &mut Rng) -> Structure {
    let noise: Vec<[f64; 3]> = structure
        .positions
        .iter()
        .map(|_| [0; 3].map(|_| sigma * rng.normal()))
        .collect();
    for (position, delta) in structure.positions.iter_mut().zip(&noise) {
        for (x, d) in position.iter_mut().zip(delta) {
            *x += d;
        }
    }
    structure.vectors = Some(noise);
    structure
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(residues: usize) -> Structure {
        let atoms = ATOMS_PER_RESIDUE * residues;
        Structure {
            origin: "chain".into(),
            atomic_numbers: [7, 6, 6].repeat(residues),
            tokens: (0..atoms as i64).collect(),
            positions: (0..atoms).map(|i| [i as f64, 0.0, 0.0]).collect(),
            scalar: None,
            vectors: None,
            cell: None,
            pbc: [false; 3],
            stress: None,
        }
    }

    #[test]
    fn crops_are_whole_contiguous_residues() {
        let protein = chain(10);
        let mut rng = Rng::new(5);
        for _ in 0..20 {
            let crop = random_crop(&protein, 4, &mut rng);
            assert_eq!(crop.len(), 12);
            assert_eq!(crop.tokens[0] % 3, 0);
            assert!(crop.tokens.windows(2).all(|w| w[1] == w[0] + 1));
        }
        assert_eq!(random_crop(&protein, 0, &mut rng), protein);
        assert_eq!(random_crop(&protein, 12, &mut rng), protein);
        let windows = covering_windows(&protein, 4);
        let firsts: Vec<i64> = windows.iter().map(|w| w.tokens[0] / 3).collect();
        assert_eq!(firsts, vec![0, 4, 6]);
        assert_eq!(windows[2].origin, "chain residues 7..10");
    }

    #[test]
    fn noise_is_the_label() {
        let clean = chain(3);
        let noisy = add_noise(clean.clone(), 0.5, &mut Rng::new(1));
        let noise = noisy.vectors.as_ref().expect("noise label");
        for ((x, y), d) in noisy.positions.iter().zip(&clean.positions).zip(noise) {
            for k in 0..3 {
                assert!((x[k] - y[k] - d[k]).abs() < 1e-12);
            }
        }
        assert!(noise.iter().flatten().any(|d| d.abs() > 0.1));
    }
}
