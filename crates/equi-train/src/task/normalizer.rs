//! Target normalisation: a baseline (mean or per-element references) and a scale, fitted on
//! the training split and stored in checkpoints.

use serde::{Deserialize, Serialize};

use crate::config::Baseline;
use crate::data::Structure;

/// Maps a physical target `y` of a structure to the model's units and back:
/// `y = baseline(structure) + scale * model_output`, with
/// `baseline = offset + sum over atoms of element_refs[Z]`. Vector labels (forces, noise) are
/// `vector_scale * vector_output`; forces taken as minus the gradient of the predicted
/// energy are `scale` times the gradient of the model output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalizer {
    /// Constant part of the baseline.
    pub offset: f64,
    /// Reference value per element `(Z, value)`; elements not listed count 0.
    pub element_refs: Vec<(u8, f64)>,
    /// Unit of the per-structure output in target units.
    pub scale: f64,
    /// Unit of the per-atom vector output in label units.
    pub vector_scale: f64,
}

impl Normalizer {
    /// No baseline, unit scale.
    pub fn identity() -> Self {
        Self::scaled(1.0)
    }

    /// No baseline, the given scale for scalars and vectors.
    pub fn scaled(scale: f64) -> Self {
        Self {
            offset: 0.0,
            element_refs: Vec::new(),
            scale,
            vector_scale: scale,
        }
    }

    /// The baseline of a structure with these atomic numbers (padding zeros count nothing).
    pub fn baseline(&self, atomic_numbers: &[i64]) -> f64 {
        let refs = atomic_numbers.iter().map(|&z| {
            self.element_refs
                .iter()
                .find(|(element, _)| i64::from(*element) == z)
                .map_or(0.0, |(_, value)| *value)
        });
        self.offset + refs.sum::<f64>()
    }
}

/// Fits the baseline of `structures`' scalar labels; returns it with the residuals.
pub fn fit_baseline(baseline: Baseline, structures: &[Structure]) -> (Normalizer, Vec<f64>) {
    let targets: Vec<f64> = structures.iter().filter_map(|s| s.scalar).collect();
    let mut normalizer = Normalizer::identity();
    match baseline {
        Baseline::None => {}
        Baseline::Mean => {
            normalizer.offset = targets.iter().sum::<f64>() / targets.len().max(1) as f64;
        }
        Baseline::Elements => normalizer.element_refs = element_references(structures),
    }
    let residuals = structures
        .iter()
        .filter_map(|s| {
            let numbers: Vec<i64> = s.atomic_numbers.iter().map(|&z| i64::from(z)).collect();
            s.scalar.map(|y| y - normalizer.baseline(&numbers))
        })
        .collect();
    (normalizer, residuals)
}

/// Population standard deviation, or 1 when the values do not vary.
pub fn spread(values: &[f64]) -> f64 {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    if std > 1e-12 {
        std
    } else {
        1.0
    }
}

/// Root mean square, or 1 when every value is zero.
pub fn root_mean_square(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, count) = values.fold((0.0, 0usize), |(s, c), v| (s + v * v, c + 1));
    let rms = (sum / count.max(1) as f64).sqrt();
    if rms > 1e-12 {
        rms
    } else {
        1.0
    }
}

/// Per-element references by least squares: minimise `sum (y - counts . refs)^2` over the
/// labelled structures. A tiny ridge term picks the smallest solution when the compositions
/// do not determine every element (for instance frames of one molecule).
fn element_references(structures: &[Structure]) -> Vec<(u8, f64)> {
    let mut elements: Vec<u8> = structures
        .iter()
        .flat_map(|s| s.atomic_numbers.iter().copied())
        .collect();
    elements.sort_unstable();
    elements.dedup();
    let k = elements.len();
    let mut normal = vec![vec![0.0; k]; k];
    let mut rhs = vec![0.0; k];
    for structure in structures {
        let Some(y) = structure.scalar else { continue };
        let mut counts = vec![0.0; k];
        for z in &structure.atomic_numbers {
            if let Ok(i) = elements.binary_search(z) {
                counts[i] += 1.0;
            }
        }
        for i in 0..k {
            rhs[i] += counts[i] * y;
            for j in 0..k {
                normal[i][j] += counts[i] * counts[j];
            }
        }
    }
    let largest = (0..k).map(|i| normal[i][i]).fold(0.0, f64::max);
    for (i, row) in normal.iter_mut().enumerate() {
        row[i] += 1e-10 * largest.max(1.0);
    }
    let solution = solve(normal, rhs);
    elements.into_iter().zip(solution).collect()
}

/// Solves a small symmetric positive definite system by Gaussian elimination with partial
/// pivoting.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for column in 0..n {
        let pivot = (column..n)
            .max_by(|&i, &j| a[i][column].abs().total_cmp(&a[j][column].abs()))
            .unwrap_or(column);
        a.swap(column, pivot);
        b.swap(column, pivot);
        let diagonal = a[column][column];
        if diagonal.abs() < f64::MIN_POSITIVE {
            continue;
        }
        let (upper, lower) = a.split_at_mut(column + 1);
        let pivot_row = &upper[column];
        for (offset, row) in lower.iter_mut().enumerate() {
            let factor = row[column] / diagonal;
            for (value, pivot_value) in row[column..].iter_mut().zip(&pivot_row[column..]) {
                *value -= factor * pivot_value;
            }
            b[column + 1 + offset] -= factor * b[column];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let tail: f64 = (row + 1..n).map(|j| a[row][j] * x[j]).sum();
        if a[row][row].abs() >= f64::MIN_POSITIVE {
            x[row] = (b[row] - tail) / a[row][row];
        }
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn molecule(numbers: &[u8], y: f64) -> Structure {
        Structure {
            origin: "m".into(),
            atomic_numbers: numbers.to_vec(),
            tokens: numbers.iter().map(|&z| i64::from(z)).collect(),
            positions: vec![[0.0; 3]; numbers.len()],
            scalar: Some(y),
            vectors: None,
            cell: None,
            pbc: [false; 3],
            stress: None,
        }
    }

    #[test]
    fn element_references_recover_exact_linear_energies() {
        let (h, c, o) = (-0.5, -38.0, -75.0);
        let data = [
            molecule(&[6, 1, 1, 1, 1], c + 4.0 * h),
            molecule(&[8, 1, 1], o + 2.0 * h),
            molecule(&[6, 8], c + o),
            molecule(&[1, 1], 2.0 * h),
        ];
        let (normalizer, residuals) = fit_baseline(Baseline::Elements, &data);
        let refs: Vec<(u8, f64)> = normalizer.element_refs.clone();
        for ((z, value), expected) in refs.iter().zip([(1, h), (6, c), (8, o)]) {
            assert_eq!(*z, expected.0);
            assert!((value - expected.1).abs() < 1e-6, "{z}: {value}");
        }
        assert!(residuals.iter().all(|r| r.abs() < 1e-5), "{residuals:?}");
        assert!((normalizer.baseline(&[8, 1, 1, 0, 0]) - (o + 2.0 * h)).abs() < 1e-6);
    }

    #[test]
    fn one_composition_gets_the_mean() {
        let data = [molecule(&[6, 6, 8], -10.0), molecule(&[6, 6, 8], -12.0)];
        let (normalizer, residuals) = fit_baseline(Baseline::Elements, &data);
        assert!((normalizer.baseline(&[6, 6, 8]) + 11.0).abs() < 1e-6);
        assert!((residuals[0] - 1.0).abs() < 1e-6);
        let (mean, _) = fit_baseline(Baseline::Mean, &data);
        assert_eq!(mean.offset, -11.0);
        assert_eq!(spread(&[2.0, 2.0]), 1.0);
        assert_eq!(spread(&[1.0, 3.0]), 1.0);
        assert_eq!(spread(&[0.0, 4.0]), 2.0);
    }
}
