//! Real Clebsch-Gordan tensors, computed exactly and cached per process.
//!
//! For degrees `l1`, `l2`, `l3` with `|l1 - l2| <= l3 <= l1 + l2`, the tensor
//! `C[m3, m1, m2]` (shape `[2l3+1, 2l1+1, 2l2+1]`, indices `m + l`) couples two
//! features into a third:
//!
//! `D_l3(R) C (u ⊗ v) = C (D_l1(R) u ⊗ D_l2(R) v)` for every rotation `R`,
//!
//! and its `2l3+1` rows, each flattened over `(m1, m2)`, are orthonormal.
//!
//! The complex (Condon-Shortley) coefficients come from Racah's formula
//! evaluated in exact integer arithmetic: each squared coefficient is an
//! exact ratio of integers, rounded to `f64` only at the end. They are then
//! moved into the real basis of [`crate::spherical_harmonics`]; for odd
//! `l1 + l2 + l3` the result is purely imaginary and its imaginary part is
//! kept (a global phase, which changes neither property above).
//!
//! ```
//! use so3_math::clebsch_gordan;
//!
//! // Coupling two vectors to a scalar is the dot product, normalised.
//! let c = clebsch_gordan(1, 1, 0)?;
//! let third = 1.0 / 3f64.sqrt();
//! assert!((c.get(0, 0, 0).abs() - third).abs() < 1e-15);
//! assert_eq!(c.get(0, 0, 1), 0.0);
//! # Ok::<(), so3_math::So3Error>(())
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use num_bigint::BigInt;
use num_traits::{One, Signed, ToPrimitive, Zero};

use crate::So3Error;

/// A real Clebsch-Gordan tensor `C[m3, m1, m2]`; see the [module docs](self).
#[derive(Clone, Debug, PartialEq)]
pub struct ClebschGordan {
    l1: usize,
    l2: usize,
    l3: usize,
    /// Row-major `[2l3+1, 2l1+1, 2l2+1]`.
    values: Vec<f64>,
}

impl ClebschGordan {
    /// The degrees `(l1, l2, l3)`.
    pub fn degrees(&self) -> (usize, usize, usize) {
        (self.l1, self.l2, self.l3)
    }

    /// The shape `[2l3+1, 2l1+1, 2l2+1]`.
    pub fn shape(&self) -> [usize; 3] {
        [2 * self.l3 + 1, 2 * self.l1 + 1, 2 * self.l2 + 1]
    }

    /// Entry `C[i3, i1, i2]` with indices `m + l` (each in `0..2l+1`).
    ///
    /// # Panics
    /// If an index is out of range.
    pub fn get(&self, i3: usize, i1: usize, i2: usize) -> f64 {
        let [d3, d1, d2] = self.shape();
        assert!(i3 < d3 && i1 < d1 && i2 < d2, "index out of range");
        self.values[(i3 * d1 + i1) * d2 + i2]
    }

    /// All entries, row-major over `[2l3+1, 2l1+1, 2l2+1]`.
    pub fn values(&self) -> &[f64] {
        &self.values
    }
}

type Cache = Mutex<HashMap<(usize, usize, usize), Arc<ClebschGordan>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The real Clebsch-Gordan tensor for `(l1, l2) -> l3`, computed once per process.
///
/// Fails with [`So3Error::InvalidCoupling`] unless `|l1 - l2| <= l3 <= l1 + l2`.
pub fn clebsch_gordan(l1: usize, l2: usize, l3: usize) -> Result<Arc<ClebschGordan>, So3Error> {
    if l3 < l1.abs_diff(l2) || l3 > l1 + l2 {
        return Err(So3Error::InvalidCoupling { l1, l2, l3 });
    }
    let key = (l1, l2, l3);
    if let Some(found) = cache().lock().map_err(|_| So3Error::Poisoned)?.get(&key) {
        return Ok(Arc::clone(found));
    }
    let computed = Arc::new(real_clebsch_gordan(l1, l2, l3));
    let mut table = cache().lock().map_err(|_| So3Error::Poisoned)?;
    Ok(Arc::clone(table.entry(key).or_insert(computed)))
}

/// A complex number, just enough for the change of basis.
#[derive(Clone, Copy, Debug, Default)]
struct Complex {
    re: f64,
    im: f64,
}

impl Complex {
    fn mul(self, other: Complex) -> Complex {
        Complex {
            re: self.re * other.re - self.im * other.im,
            im: self.re * other.im + self.im * other.re,
        }
    }

    fn conj(self) -> Complex {
        Complex {
            re: self.re,
            im: -self.im,
        }
    }
}

/// Nonzero entries of row `m` (real basis) of the unitary `U_l` with
/// `Y_real = U_l Y_complex`, as `(complex m, coefficient)` pairs.
///
/// For `k > 0`: `Y_{l,k} = (Y^{-k} + (-1)^k Y^k) / sqrt2` and
/// `Y_{l,-k} = i (Y^{-k} - (-1)^k Y^k) / sqrt2`.
fn real_from_complex_row(m: i64) -> Vec<(i64, Complex)> {
    let h = std::f64::consts::FRAC_1_SQRT_2;
    let sign = if m.rem_euclid(2) == 0 { 1.0 } else { -1.0 };
    match m {
        0 => vec![(0, Complex { re: 1.0, im: 0.0 })],
        k if k > 0 => vec![
            (-k, Complex { re: h, im: 0.0 }),
            (
                k,
                Complex {
                    re: sign * h,
                    im: 0.0,
                },
            ),
        ],
        negative => {
            let k = -negative;
            vec![
                (-k, Complex { re: 0.0, im: h }),
                (
                    k,
                    Complex {
                        re: 0.0,
                        im: -sign * h,
                    },
                ),
            ]
        }
    }
}

fn real_clebsch_gordan(l1: usize, l2: usize, l3: usize) -> ClebschGordan {
    let (d1, d2, d3) = (2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1);
    let (j1, j2, j3) = (l1 as i64, l2 as i64, l3 as i64);
    let mut complex = vec![0.0; d3 * d1 * d2];
    for m1 in -j1..=j1 {
        for m2 in -j2..=j2 {
            let m3 = m1 + m2;
            if m3.abs() <= j3 {
                let index =
                    (((m3 + j3) as usize) * d1 + (m1 + j1) as usize) * d2 + (m2 + j2) as usize;
                complex[index] = complex_clebsch_gordan(j1, m1, j2, m2, j3, m3);
            }
        }
    }
    let mut real = vec![Complex::default(); d3 * d1 * d2];
    for a in -j3..=j3 {
        for b in -j1..=j1 {
            for c in -j2..=j2 {
                let mut sum = Complex::default();
                for (m3, u3) in real_from_complex_row(a) {
                    for (m1, u1) in real_from_complex_row(b) {
                        for (m2, u2) in real_from_complex_row(c) {
                            if m3 != m1 + m2 {
                                continue;
                            }
                            let coefficient =
                                complex[(((m3 + j3) as usize) * d1 + (m1 + j1) as usize) * d2
                                    + (m2 + j2) as usize];
                            let factor = u3.mul(u1.conj()).mul(u2.conj());
                            sum.re += factor.re * coefficient;
                            sum.im += factor.im * coefficient;
                        }
                    }
                }
                real[(((a + j3) as usize) * d1 + (b + j1) as usize) * d2 + (c + j2) as usize] = sum;
            }
        }
    }
    let keep_imaginary = (l1 + l2 + l3) % 2 == 1;
    let values = real
        .iter()
        .map(|z| if keep_imaginary { z.im } else { z.re })
        .collect();
    ClebschGordan { l1, l2, l3, values }
}

/// `n!`, from a table built once (the largest needed is `(2 l1 + 2 l2 + 1)!`).
fn factorial(n: i64) -> BigInt {
    static TABLE: OnceLock<Vec<BigInt>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut table = vec![BigInt::one()];
        for k in 1..=80i64 {
            let next = table[table.len() - 1].clone() * k;
            table.push(next);
        }
        table
    });
    match table.get(n as usize) {
        Some(value) => value.clone(),
        None => (2..=n).fold(BigInt::one(), |acc, k| acc * k),
    }
}

/// `n! / k!` for `k <= n`, the product `(k+1) (k+2) ... n`.
fn factorial_ratio(n: i64, k: i64) -> BigInt {
    (k + 1..=n).fold(BigInt::one(), |acc, i| acc * i)
}

/// `<j1 m1 j2 m2 | j3 m3>` in the Condon-Shortley convention, by Racah's
/// formula in exact integer arithmetic, rounded to `f64` once.
fn complex_clebsch_gordan(j1: i64, m1: i64, j2: i64, m2: i64, j3: i64, m3: i64) -> f64 {
    // Racah: C = sqrt(T * F) * S with
    //   T = (2j3+1) (j3+j1-j2)! (j3-j1+j2)! (j1+j2-j3)! / (j1+j2+j3+1)!,
    //   F = (j3+m3)! (j3-m3)! (j1-m1)! (j1+m1)! (j2-m2)! (j2+m2)!,
    //   S = sum_k (-1)^k / [k! (j1+j2-j3-k)! (j1-m1-k)! (j2+m2-k)! (j3-j2+m1+k)! (j3-j1-m2+k)!].
    let a = j1 + j2 - j3;
    let b = j1 - m1;
    let c = j2 + m2;
    let d = j3 - j2 + m1;
    let e = j3 - j1 - m2;
    let k_min = 0.max(-d).max(-e);
    let k_max = a.min(b).min(c);
    if k_min > k_max {
        return 0.0;
    }
    // Every denominator of S divides L = k_max! (a-k_min)! (b-k_min)! (c-k_min)! (d+k_max)! (e+k_max)!,
    // so S * L is the integer sum of L / denominator_k.
    let mut sum = BigInt::zero();
    for k in k_min..=k_max {
        let term = factorial_ratio(k_max, k)
            * factorial_ratio(a - k_min, a - k)
            * factorial_ratio(b - k_min, b - k)
            * factorial_ratio(c - k_min, c - k)
            * factorial_ratio(d + k_max, d + k)
            * factorial_ratio(e + k_max, e + k);
        if k % 2 == 0 {
            sum += term;
        } else {
            sum -= term;
        }
    }
    if sum.is_zero() {
        return 0.0;
    }
    let common = factorial(k_max)
        * factorial(a - k_min)
        * factorial(b - k_min)
        * factorial(c - k_min)
        * factorial(d + k_max)
        * factorial(e + k_max);
    let numerator = BigInt::from(2 * j3 + 1)
        * factorial(j3 + j1 - j2)
        * factorial(j3 - j1 + j2)
        * factorial(j1 + j2 - j3)
        * factorial(j3 + m3)
        * factorial(j3 - m3)
        * factorial(j1 - m1)
        * factorial(j1 + m1)
        * factorial(j2 - m2)
        * factorial(j2 + m2)
        * &sum
        * &sum;
    let denominator = factorial(j1 + j2 + j3 + 1) * &common * &common;
    let sign = if sum.is_negative() { -1.0 } else { 1.0 };
    sign * rational_to_f64(numerator, denominator).sqrt()
}

/// `p / q` for positive integers: each rounded to 53 bits, then divided
/// (relative error below 2^-51).
fn rational_to_f64(p: BigInt, q: BigInt) -> f64 {
    // Scale so both fit in f64 with full precision before dividing.
    let shift = (p.bits().max(q.bits()) as i64 - 900).max(0) as usize;
    let p = (p >> shift).to_f64().unwrap_or(f64::NAN);
    let q = (q >> shift).to_f64().unwrap_or(f64::NAN);
    p / q
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complex(j1: i64, m1: i64, j2: i64, m2: i64, j3: i64, m3: i64) -> f64 {
        complex_clebsch_gordan(j1, m1, j2, m2, j3, m3)
    }

    /// Values from published Clebsch-Gordan tables (Condon-Shortley phase),
    /// e.g. the j1 x 1 tables in the Particle Data Group's Review.
    #[test]
    fn complex_coefficients_match_published_tables() {
        let cases = [
            ((1, 1, 1, -1, 0, 0), (1.0f64 / 3.0).sqrt()),
            ((1, 0, 1, 0, 0, 0), -(1.0f64 / 3.0).sqrt()),
            ((1, 0, 1, 0, 2, 0), (2.0f64 / 3.0).sqrt()),
            ((1, 1, 1, 0, 2, 1), (0.5f64).sqrt()),
            ((1, 1, 1, 0, 1, 1), (0.5f64).sqrt()),
            ((1, 0, 1, 1, 1, 1), -(0.5f64).sqrt()),
            ((1, 0, 1, 0, 1, 0), 0.0),
            ((2, 1, 1, -1, 1, 0), (3.0f64 / 10.0).sqrt()),
            ((2, 0, 1, 0, 1, 0), -(2.0f64 / 5.0).sqrt()),
            ((2, 2, 1, -1, 2, 1), (1.0f64 / 3.0).sqrt()),
            ((2, 0, 1, 0, 3, 0), (3.0f64 / 5.0).sqrt()),
            ((2, -1, 1, 1, 3, 0), (1.0f64 / 5.0).sqrt()),
        ];
        for ((j1, m1, j2, m2, j3, m3), expected) in cases {
            let got = complex(j1, m1, j2, m2, j3, m3);
            assert!(
                (got - expected).abs() < 1e-15,
                "<{j1} {m1} {j2} {m2}|{j3} {m3}> = {got}, expected {expected}"
            );
        }
    }

    #[test]
    fn rejects_couplings_outside_the_triangle() {
        assert!(matches!(
            clebsch_gordan(1, 1, 3),
            Err(So3Error::InvalidCoupling { .. })
        ));
        assert!(clebsch_gordan(3, 1, 1).is_err());
    }

    #[test]
    fn cached_tensors_are_shared() {
        let first = clebsch_gordan(2, 3, 4).unwrap();
        let second = clebsch_gordan(2, 3, 4).unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(first.shape(), [9, 5, 7]);
    }
}
