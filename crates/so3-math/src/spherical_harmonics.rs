//! Real spherical harmonics in "component" normalization.
//!
//! Conventions (fixed here, pinned by tests):
//! - degree `l` has `2l+1` components, component `m` at index `m + l`;
//! - `sum_m Y_lm(r)^2 = 2l + 1` for every unit vector `r`;
//! - `Y_{l,m}` for `m > 0` goes as `cos(m phi)`, for `m < 0` as `sin(|m| phi)`,
//!   with positive factors (no Condon-Shortley sign), so degree 1 is
//!   `Y_1(r) = sqrt(3) (y, z, x)`;
//! - the input vector is normalised first; the zero vector gives
//!   `Y_0 = 1` and `Y_l = 0` for `l >= 1` (and a finite gradient).
//!
//! ```
//! use so3_math::spherical_harmonics_f64;
//!
//! let y = spherical_harmonics_f64(2, [0.0, 0.0, 2.0]);
//! let s3 = 3f64.sqrt();
//! assert_eq!(y[0], vec![1.0]);
//! assert!((y[1][1] - s3).abs() < 1e-15); // the z component sits in the middle
//! // Y_20 = sqrt(5) (3 z^2 - 1) / 2 at the north pole
//! assert!((y[2][2] - 5f64.sqrt()).abs() < 1e-15);
//! ```

use std::ops::{Add, Mul, Sub};

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use crate::precision::positive_floor;
use crate::So3Error;

/// Squared norms below this are treated as the zero vector.
const TINY_SQUARED_NORM: f64 = 1e-24;

/// Real spherical harmonics of degrees `0..=l_max` of one vector, in `f64`.
///
/// Returns one `Vec` of `2l+1` values per degree. The vector need not be a
/// unit vector; see the [module docs](self) for the conventions.
pub fn spherical_harmonics_f64(l_max: usize, vector: [f64; 3]) -> Vec<Vec<f64>> {
    let squared = vector.iter().map(|v| v * v).sum::<f64>();
    let inverse_norm = 1.0 / squared.max(TINY_SQUARED_NORM).sqrt();
    let [x, y, z] = vector.map(|v| v * inverse_norm);
    let r2 = x * x + y * y + z * z;
    harmonic_polynomials(l_max, x, y, z, r2, 1.0)
}

/// Real spherical harmonics of degrees `0..=l_max` of a batch of vectors.
///
/// Differentiable with respect to `vectors`, including at the zero vector.
///
/// # Shapes
/// - `vectors`: `[..., 3]`
/// - output: one tensor per degree `l`, `[..., 2l+1]`
///
/// # Errors
/// [`So3Error::Shape`] if the last dimension is not 3.
///
/// ```
/// use burn::backend::NdArray;
/// use burn::tensor::Tensor;
/// use so3_math::spherical_harmonics;
///
/// let device = Default::default();
/// let vectors = Tensor::<NdArray, 2>::from_floats([[1.0, 0.0, 0.0], [0.0, 3.0, 4.0]], &device);
/// let y = spherical_harmonics(2, vectors)?;
/// assert_eq!(y[2].dims(), [2, 5]);
/// # Ok::<(), so3_math::So3Error>(())
/// ```
pub fn spherical_harmonics<B: Backend, const D: usize>(
    l_max: usize,
    vectors: Tensor<B, D>,
) -> Result<Vec<Tensor<B, D>>, So3Error> {
    let dims = vectors.dims();
    if D == 0 || dims[D - 1] != 3 {
        return Err(So3Error::Shape(format!(
            "spherical harmonics need vectors of shape [..., 3], got {dims:?}"
        )));
    }
    let squared = vectors.clone().square().sum_dim(D - 1); // [..., 1]
    let floor = positive_floor(TINY_SQUARED_NORM, squared.dtype());
    let unit = vectors / squared.clamp_min(floor).sqrt(); // [..., 3]
    let x = unit.clone().narrow(D - 1, 0, 1);
    let y = unit.clone().narrow(D - 1, 1, 1);
    let z = unit.narrow(D - 1, 2, 1);
    let r2 = x.clone().square() + y.clone().square() + z.clone().square();
    let one = x.ones_like();
    let per_degree = harmonic_polynomials(l_max, x, y, z, r2, one);
    Ok(per_degree
        .into_iter()
        .map(|components| Tensor::cat(components, D - 1))
        .collect())
}

/// Normalization `N_{l,|m|}` for component normalization.
fn normalization(l: usize, m: usize) -> f64 {
    // (l - m)! / (l + m)!
    let ratio = (l - m + 1..=l + m).fold(1.0, |acc, k| acc / k as f64);
    let base = ((2 * l + 1) as f64 * ratio).sqrt();
    if m == 0 {
        base
    } else {
        base * std::f64::consts::SQRT_2
    }
}

/// The harmonic polynomials `Y_lm(x, y, z)` with `r^2` passed in, so that
/// the result is homogeneous of degree `l` (and vanishes at the origin).
///
/// Works for any number-like `T` (plain `f64` or a tensor): with
/// `A_m + i B_m = (x + i y)^m` and the associated-Legendre recursion in `z`,
/// `T_{l,m} = ((2l-1) z T_{l-1,m} - (l+m-1) r^2 T_{l-2,m}) / (l-m)`.
fn harmonic_polynomials<T>(l_max: usize, x: T, y: T, z: T, r2: T, one: T) -> Vec<Vec<T>>
where
    T: Clone + Add<Output = T> + Sub<Output = T> + Mul<Output = T> + Mul<f64, Output = T>,
{
    // cos_sin[m] = (A_m, B_m)
    let mut cos_sin: Vec<(T, Option<T>)> = vec![(one, None)];
    for m in 1..=l_max {
        let (a, b) = &cos_sin[m - 1];
        let next = match b {
            None => (x.clone(), y.clone()),
            Some(b) => (
                a.clone() * x.clone() - b.clone() * y.clone(),
                b.clone() * x.clone() + a.clone() * y.clone(),
            ),
        };
        cos_sin.push((next.0, Some(next.1)));
    }
    // legendre[l][m] holds T_{l,m} for the cosine (and sine) parts.
    let mut cosine: Vec<Vec<Option<T>>> = vec![vec![None; l_max + 1]; l_max + 1];
    let mut sine: Vec<Vec<Option<T>>> = vec![vec![None; l_max + 1]; l_max + 1];
    for m in 0..=l_max {
        let double_factorial = (1..=m).fold(1.0, |acc, k| acc * (2 * k - 1) as f64);
        let (a, b) = &cos_sin[m];
        for (table, seed) in [(&mut cosine, Some(a)), (&mut sine, b.as_ref())] {
            let Some(seed) = seed else { continue };
            table[m][m] = Some(seed.clone() * double_factorial);
            for l in m + 1..=l_max {
                let previous = table[l - 1][m]
                    .clone()
                    .map(|t| z.clone() * t * (2 * l - 1) as f64);
                let before = if l >= m + 2 {
                    table[l - 2][m]
                        .clone()
                        .map(|t| r2.clone() * t * (l + m - 1) as f64)
                } else {
                    None
                };
                let inverse = 1.0 / (l - m) as f64;
                table[l][m] = match (previous, before) {
                    (Some(p), Some(q)) => Some((p - q) * inverse),
                    (Some(p), None) => Some(p * inverse),
                    _ => None,
                };
            }
        }
    }
    (0..=l_max)
        .map(|l| {
            (0..2 * l + 1)
                .map(|index| {
                    let m = index as i64 - l as i64;
                    let k = m.unsigned_abs() as usize;
                    let table = if m < 0 { &sine } else { &cosine };
                    let value = table[l][k].clone().expect("filled for every m <= l");
                    value * normalization(l, k)
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Closed forms from the standard table of real spherical harmonics
    /// (orthonormal, times sqrt(4 pi) for component normalization).
    fn closed_form(l: usize, [x, y, z]: [f64; 3]) -> Vec<f64> {
        let s15 = 15f64.sqrt();
        match l {
            0 => vec![1.0],
            1 => vec![3f64.sqrt() * y, 3f64.sqrt() * z, 3f64.sqrt() * x],
            2 => vec![
                s15 * x * y,
                s15 * y * z,
                5f64.sqrt() / 2.0 * (3.0 * z * z - 1.0),
                s15 * x * z,
                s15 / 2.0 * (x * x - y * y),
            ],
            3 => vec![
                70f64.sqrt() / 4.0 * y * (3.0 * x * x - y * y),
                105f64.sqrt() * x * y * z,
                42f64.sqrt() / 4.0 * y * (5.0 * z * z - 1.0),
                7f64.sqrt() / 2.0 * z * (5.0 * z * z - 3.0),
                42f64.sqrt() / 4.0 * x * (5.0 * z * z - 1.0),
                105f64.sqrt() / 2.0 * z * (x * x - y * y),
                70f64.sqrt() / 4.0 * x * (x * x - 3.0 * y * y),
            ],
            _ => unreachable!("closed forms are tabulated up to l = 3"),
        }
    }

    #[test]
    fn matches_closed_forms_up_to_degree_three() {
        for vector in [
            [0.3, -0.5, 0.8],
            [1.0, 2.0, -2.0],
            [0.0, 0.0, -1.0],
            [-0.2, 0.9, 0.1],
        ] {
            let norm = vector.iter().map(|v: &f64| v * v).sum::<f64>().sqrt();
            let unit = vector.map(|v| v / norm);
            let y = spherical_harmonics_f64(3, vector);
            for (l, computed) in y.iter().enumerate() {
                for (a, b) in computed.iter().zip(closed_form(l, unit)) {
                    assert!((a - b).abs() < 1e-13, "l={l}: {a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn zero_vector_gives_constant_scalar_and_zero_rest() {
        let y = spherical_harmonics_f64(4, [0.0; 3]);
        assert_eq!(y[0], vec![1.0]);
        assert!(y[1..].iter().flatten().all(|v| *v == 0.0));
    }
}
