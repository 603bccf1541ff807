//! A reusable equivariance checker for layers and models.
//!
//! Give it a function from points and per-point features to outputs, and the
//! layouts ([`Irreps`]) of its input features and outputs. It draws random
//! rotations (and translations, and inversions where the layouts carry
//! parities), runs the function on the transformed input and compares with
//! the transformed output.
//!
//! ```
//! use so3_math::{EquivarianceChecker, Irreps};
//!
//! // The centroid-relative vector of each point is an odd vector feature:
//! // in (y, z, x) order, as a degree-1 feature.
//! let output: Irreps = "1x1o".parse()?;
//! let input = Irreps::default();
//! let points = [[0.1, 0.2, 0.3], [1.0, -0.5, 0.2], [0.4, 0.4, -1.0]];
//! let relative = |points: &[[f64; 3]], _features: &[f64]| {
//!     let n = points.len() as f64;
//!     let centre = [0, 1, 2].map(|k| points.iter().map(|p| p[k]).sum::<f64>() / n);
//!     points
//!         .iter()
//!         .flat_map(|p| [p[1] - centre[1], p[2] - centre[2], p[0] - centre[0]])
//!         .collect::<Vec<f64>>()
//! };
//! let report = EquivarianceChecker::default()
//!     .with_reflections(true)
//!     .check(&points, &[], &input, &output, relative)?;
//! assert!(report.max_relative_error < 1e-12);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::irreps::Irreps;
use crate::rotation::{apply, RandomRotations, RotationMatrix};
use crate::wigner::{wigner_d_f64, WignerD};
use crate::So3Error;

/// A rigid motion `x -> s R x + t` with `s = -1` when `inversion` is set.
#[derive(Clone, Debug, PartialEq)]
pub struct EuclideanTransform {
    /// The proper rotation `R`.
    pub rotation: RotationMatrix,
    /// The translation `t`, applied to points only.
    pub translation: [f64; 3],
    /// Whether the motion also inverts space (`s = -1`).
    pub inversion: bool,
}

impl EuclideanTransform {
    fn spatial_sign(&self) -> f64 {
        if self.inversion {
            -1.0
        } else {
            1.0
        }
    }

    /// `s R p + t` for every point.
    pub fn apply_to_points(&self, points: &[[f64; 3]]) -> Vec<[f64; 3]> {
        let s = self.spatial_sign();
        points
            .iter()
            .map(|p| {
                let r = apply(&self.rotation, *p);
                [0, 1, 2].map(|k| s * r[k] + self.translation[k])
            })
            .collect()
    }

    /// `s R v` for Cartesian `(x, y, z)` vectors (no translation).
    pub fn apply_to_vectors(&self, vectors: &[[f64; 3]]) -> Vec<[f64; 3]> {
        let s = self.spatial_sign();
        vectors
            .iter()
            .map(|v| apply(&self.rotation, *v).map(|x| s * x))
            .collect()
    }

    /// Transform rows of features laid out by `irreps` (`features.len()` a
    /// multiple of `irreps.dim()`): each degree-`l` block is multiplied by
    /// `D_l(R)`, and by its parity's sign under inversion.
    ///
    /// # Errors
    /// [`So3Error::Shape`] if the length does not fit the layout, and
    /// [`So3Error::MissingParity`] for an inversion of a layout without parities.
    pub fn apply_to_features(
        &self,
        irreps: &Irreps,
        features: &[f64],
    ) -> Result<Vec<f64>, So3Error> {
        let width = irreps.dim();
        if width == 0 {
            return if features.is_empty() {
                Ok(Vec::new())
            } else {
                Err(So3Error::Shape("features given for an empty layout".into()))
            };
        }
        if !features.len().is_multiple_of(width) {
            return Err(So3Error::Shape(format!(
                "{} feature values do not fill rows of the {width}-wide layout {irreps}",
                features.len()
            )));
        }
        if self.inversion && !irreps.has_parity() {
            return Err(So3Error::MissingParity(irreps.to_string()));
        }
        let wigner: Vec<WignerD> = wigner_d_f64(irreps.lmax().unwrap_or(0), &self.rotation);
        let mut out = Vec::with_capacity(features.len());
        for row in features.chunks(width) {
            let mut offset = 0;
            for entry in irreps.entries() {
                let l = entry.irrep.l;
                let sign = match (self.inversion, entry.irrep.parity) {
                    (true, Some(parity)) => parity.sign(),
                    _ => 1.0,
                };
                for _ in 0..entry.mul {
                    let block = &row[offset..offset + 2 * l + 1];
                    out.extend(wigner[l].apply(block).into_iter().map(|v| sign * v));
                    offset += 2 * l + 1;
                }
            }
        }
        Ok(out)
    }
}

/// The worst errors seen over all trials.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EquivarianceReport {
    /// Largest `|f(g x) - g f(x)|` over all entries and trials; infinite when
    /// an output holds a NaN or an infinity (a broken function never passes).
    pub max_abs_error: f64,
    /// `max_abs_error` relative to the largest `|f(x)|` entry (for scale-free tolerances).
    pub max_relative_error: f64,
    /// Number of random transforms tried.
    pub trials: usize,
}

/// Draws random transforms and measures equivariance errors; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct EquivarianceChecker {
    trials: usize,
    seed: u64,
    translations: bool,
    reflections: bool,
}

impl Default for EquivarianceChecker {
    /// Five trials, seed 0, with translations, without reflections.
    fn default() -> Self {
        EquivarianceChecker {
            trials: 5,
            seed: 0,
            translations: true,
            reflections: false,
        }
    }
}

impl EquivarianceChecker {
    /// Number of random transforms to try.
    pub fn with_trials(mut self, trials: usize) -> Self {
        self.trials = trials;
        self
    }

    /// Seed of the random transforms.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Whether to translate the points too (for translation-invariant functions).
    pub fn with_translations(mut self, translations: bool) -> Self {
        self.translations = translations;
        self
    }

    /// Whether every other trial also inverts space (needs parities in both layouts).
    pub fn with_reflections(mut self, reflections: bool) -> Self {
        self.reflections = reflections;
        self
    }

    /// The transforms [`check`](Self::check) uses, in order.
    pub fn transforms(&self) -> Vec<EuclideanTransform> {
        let mut random = RandomRotations::new(self.seed);
        (0..self.trials)
            .map(|trial| {
                let rotation = random.next_rotation();
                let translation = if self.translations {
                    [0; 3].map(|_| 3.0 * random.next_normal())
                } else {
                    [0.0; 3]
                };
                EuclideanTransform {
                    rotation,
                    translation,
                    inversion: self.reflections && trial % 2 == 1,
                }
            })
            .collect()
    }

    /// Compare `f(g points, g features)` with `g f(points, features)` for random `g`.
    ///
    /// `features` holds one row of `input.dim()` values per point; `f`
    /// returns rows of `output.dim()` values (per point, per graph, ...).
    ///
    /// # Errors
    /// If the features or outputs do not fit their layouts, or reflections are
    /// asked for with a layout without parities.
    pub fn check<F>(
        &self,
        points: &[[f64; 3]],
        features: &[f64],
        input: &Irreps,
        output: &Irreps,
        mut f: F,
    ) -> Result<EquivarianceReport, So3Error>
    where
        F: FnMut(&[[f64; 3]], &[f64]) -> Vec<f64>,
    {
        if input.dim() * points.len() != features.len() {
            return Err(So3Error::Shape(format!(
                "{} feature values for {} points of layout {input} (width {})",
                features.len(),
                points.len(),
                input.dim()
            )));
        }
        let reference = f(points, features);
        let scale = reference
            .iter()
            .fold(0.0f64, |m, v| m.max(v.abs()))
            .max(f64::MIN_POSITIVE);
        let mut report = EquivarianceReport {
            trials: self.trials,
            ..Default::default()
        };
        for transform in self.transforms() {
            let expected = transform.apply_to_features(output, &reference)?;
            let moved_points = transform.apply_to_points(points);
            let moved_features = transform.apply_to_features(input, features)?;
            let got = f(&moved_points, &moved_features);
            if got.len() != expected.len() {
                return Err(So3Error::Shape(format!(
                    "the function returned {} values for transformed input but {} before",
                    got.len(),
                    expected.len()
                )));
            }
            let error = if got.iter().chain(&expected).all(|v| v.is_finite()) {
                got.iter()
                    .zip(&expected)
                    .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()))
            } else {
                f64::INFINITY
            };
            report.max_abs_error = report.max_abs_error.max(error);
        }
        report.max_relative_error = report.max_abs_error / scale;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_a_function_that_is_not_equivariant() {
        let output: Irreps = "1x1".parse().unwrap();
        let fixed_direction = |points: &[[f64; 3]], _: &[f64]| -> Vec<f64> {
            points.iter().flat_map(|_| [0.0, 0.0, 1.0]).collect()
        };
        let report = EquivarianceChecker::default()
            .check(
                &[[0.0; 3]],
                &[],
                &Irreps::default(),
                &output,
                fixed_direction,
            )
            .unwrap();
        assert!(report.max_relative_error > 0.1, "{report:?}");
    }

    #[test]
    fn non_finite_outputs_never_pass() {
        let output: Irreps = "1x0".parse().unwrap();
        let report = EquivarianceChecker::default()
            .check(
                &[[1.0, 2.0, 3.0]],
                &[],
                &Irreps::default(),
                &output,
                |_, _| vec![f64::NAN],
            )
            .unwrap();
        assert_eq!(report.max_relative_error, f64::INFINITY, "{report:?}");
    }

    #[test]
    fn rejects_reflections_without_parities() {
        let output: Irreps = "1x1".parse().unwrap();
        let result = EquivarianceChecker::default().with_reflections(true).check(
            &[[0.0; 3]],
            &[],
            &Irreps::default(),
            &output,
            |_, _| vec![0.0; 3],
        );
        assert!(matches!(result, Err(So3Error::MissingParity(_))));
    }
}
