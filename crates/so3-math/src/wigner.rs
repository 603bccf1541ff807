//! Wigner-D matrices: how features of degree `l` rotate.
//!
//! `D_l(R)` is the real orthogonal `(2l+1) x (2l+1)` matrix with
//! `Y_l(R r) = D_l(R) Y_l(r)` and `D_l(R1 R2) = D_l(R1) D_l(R2)`. For degree 1
//! it is `P R P^T` with `P` the permutation `(x, y, z) -> (y, z, x)`.
//!
//! Higher degrees follow exactly from degree 1 and the Clebsch-Gordan tensor
//! `C = C(l-1, 1 -> l)`, whose rows are orthonormal and which intertwines:
//! `D_l = C (D_{l-1} ⊗ D_1) C^T`. On tensors this is two batched matrix
//! products per degree for a whole batch of rotations, differentiable, and
//! with no Euler-angle singularity.
//!
//! ```
//! use so3_math::{rotation::rotation_from_euler_zyz, spherical_harmonics_f64, wigner_d_f64};
//!
//! let r = rotation_from_euler_zyz(0.3, 1.2, -0.7);
//! let v = [0.2, -0.5, 0.9];
//! let d = wigner_d_f64(3, &r);
//! let rotated = spherical_harmonics_f64(3, so3_math::rotation::apply(&r, v));
//! let transformed = d[3].apply(&spherical_harmonics_f64(3, v)[3]);
//! for (a, b) in rotated[3].iter().zip(&transformed) {
//!     assert!((a - b).abs() < 1e-12);
//! }
//! ```

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use crate::clebsch_gordan::clebsch_gordan;
use crate::precision::positive_floor;
use crate::rotation::{rotation_from_euler_zyz, RotationMatrix};
use crate::So3Error;

/// Cartesian axis feeding each component of degree 1: `(y, z, x)`.
const DEGREE_ONE_AXES: [usize; 3] = [1, 2, 0];

/// A real Wigner-D matrix of one degree, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct WignerD {
    l: usize,
    data: Vec<f64>,
}

impl WignerD {
    /// The degree.
    pub fn degree(&self) -> usize {
        self.l
    }

    /// Side length `2l + 1`.
    pub fn dim(&self) -> usize {
        2 * self.l + 1
    }

    /// Entry `(i, j)`, indices `m + l`.
    pub fn get(&self, i: usize, j: usize) -> f64 {
        self.data[i * self.dim() + j]
    }

    /// Row-major entries.
    pub fn as_slice(&self) -> &[f64] {
        &self.data
    }

    /// `D v` for a vector of `2l+1` components.
    ///
    /// # Panics
    /// If `v` does not have `2l+1` entries.
    pub fn apply(&self, v: &[f64]) -> Vec<f64> {
        let n = self.dim();
        assert_eq!(v.len(), n, "vector of degree {} needs {n} entries", self.l);
        (0..n)
            .map(|i| (0..n).map(|j| self.get(i, j) * v[j]).sum())
            .collect()
    }

    /// The product `self * other` of two matrices of the same degree.
    ///
    /// # Panics
    /// If the degrees differ.
    pub fn matmul(&self, other: &WignerD) -> WignerD {
        assert_eq!(self.l, other.l, "degrees differ");
        let n = self.dim();
        let mut data = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                data[i * n + j] = (0..n).map(|k| self.get(i, k) * other.get(k, j)).sum();
            }
        }
        WignerD { l: self.l, data }
    }

    /// The transpose (which is the inverse).
    pub fn transpose(&self) -> WignerD {
        let n = self.dim();
        let mut data = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                data[j * n + i] = self.get(i, j);
            }
        }
        WignerD { l: self.l, data }
    }
}

/// Wigner-D matrices of degrees `0..=l_max` for one rotation matrix, in `f64`.
///
/// The matrix is trusted to be a rotation (orthogonal, determinant +1).
pub fn wigner_d_f64(l_max: usize, rotation: &RotationMatrix) -> Vec<WignerD> {
    let mut out = vec![WignerD {
        l: 0,
        data: vec![1.0],
    }];
    if l_max == 0 {
        return out;
    }
    let degree_one = WignerD {
        l: 1,
        data: (0..9)
            .map(|k| rotation[DEGREE_ONE_AXES[k / 3]][DEGREE_ONE_AXES[k % 3]])
            .collect(),
    };
    out.push(degree_one.clone());
    for l in 2..=l_max {
        let coupling = clebsch_gordan(l - 1, 1, l).expect("l-1 and 1 couple to l");
        let previous = &out[l - 1];
        let (a, n) = (2 * l - 1, 2 * l + 1);
        // kron[(i, p), (j, q)] = D_{l-1}[i, j] D_1[p, q]
        let kron = |row: usize, col: usize| {
            previous.get(row / 3, col / 3) * degree_one.get(row % 3, col % 3)
        };
        let c = coupling.values(); // [n, a * 3]
                                   // half = C kron: [n, 3a]
        let mut half = vec![0.0; n * 3 * a];
        for i in 0..n {
            for col in 0..3 * a {
                half[i * 3 * a + col] = (0..3 * a)
                    .filter(|&k| c[i * 3 * a + k] != 0.0)
                    .map(|k| c[i * 3 * a + k] * kron(k, col))
                    .sum();
            }
        }
        let mut data = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                data[i * n + j] = (0..3 * a)
                    .map(|k| half[i * 3 * a + k] * c[j * 3 * a + k])
                    .sum();
            }
        }
        out.push(WignerD { l, data });
    }
    out
}

/// Wigner-D matrices of degrees `0..=l_max` from ZYZ Euler angles, in `f64`.
pub fn wigner_d_from_euler_f64(l_max: usize, alpha: f64, beta: f64, gamma: f64) -> Vec<WignerD> {
    wigner_d_f64(l_max, &rotation_from_euler_zyz(alpha, beta, gamma))
}

/// Wigner-D matrices of degrees `0..=l_max` for a batch of rotation matrices.
///
/// Differentiable with respect to `rotations`.
///
/// # Shapes
/// - `rotations`: `[E, 3, 3]`, each a rotation matrix acting on column vectors
/// - output: one tensor per degree `l`, `[E, 2l+1, 2l+1]`
///
/// # Errors
/// [`So3Error::Shape`] unless the input is `[E, 3, 3]`.
///
/// ```
/// use burn::backend::NdArray;
/// use burn::tensor::Tensor;
/// use so3_math::wigner_d;
///
/// let device = Default::default();
/// let identity = Tensor::<NdArray, 2>::eye(3, &device).unsqueeze::<3>();
/// let d = wigner_d(2, identity)?;
/// assert_eq!(d[2].dims(), [1, 5, 5]);
/// # Ok::<(), so3_math::So3Error>(())
/// ```
pub fn wigner_d<B: Backend>(
    l_max: usize,
    rotations: Tensor<B, 3>,
) -> Result<Vec<Tensor<B, 3>>, So3Error> {
    let [count, rows, cols] = rotations.dims();
    if rows != 3 || cols != 3 {
        return Err(So3Error::Shape(format!(
            "Wigner-D needs rotation matrices of shape [E, 3, 3], got {:?}",
            rotations.dims()
        )));
    }
    let device = rotations.device();
    let mut out = vec![Tensor::<B, 3>::ones([count, 1, 1], &device)];
    if l_max == 0 {
        return Ok(out);
    }
    let axes = Tensor::<B, 1, Int>::from_data(
        TensorData::new(DEGREE_ONE_AXES.map(|a| a as i64).to_vec(), [3]),
        &device,
    );
    let degree_one = rotations.select(1, axes.clone()).select(2, axes); // [E, 3, 3]
    out.push(degree_one.clone());
    for l in 2..=l_max {
        let (a, n) = (2 * l - 1, 2 * l + 1);
        let coupling = clebsch_gordan_matrix::<B>(l - 1, 1, l, &device)?; // [n, 3a]
        let previous = out[l - 1].clone().reshape([count, a, 1, a, 1]);
        let kron = (previous * degree_one.clone().reshape([count, 1, 3, 1, 3])).reshape([
            count,
            3 * a,
            3 * a,
        ]);
        // M = kron C^T: [E, 3a, n]
        let m = kron
            .reshape([count * 3 * a, 3 * a])
            .matmul(coupling.clone().transpose())
            .reshape([count, 3 * a, n]);
        // D^T = M^T C^T: [E, n, n]
        let d_transposed = m
            .swap_dims(1, 2)
            .reshape([count * n, 3 * a])
            .matmul(coupling.transpose())
            .reshape([count, n, n]);
        out.push(d_transposed.swap_dims(1, 2));
    }
    Ok(out)
}

/// Rotation matrices `Rz(alpha) Ry(beta) Rz(gamma)` for batches of ZYZ Euler angles.
///
/// # Shapes
/// - `alpha`, `beta`, `gamma`: `[E]`
/// - output: `[E, 3, 3]`
pub fn rotation_from_euler_zyz_tensor<B: Backend>(
    alpha: Tensor<B, 1>,
    beta: Tensor<B, 1>,
    gamma: Tensor<B, 1>,
) -> Tensor<B, 3> {
    let rz = |angle: Tensor<B, 1>| {
        let (c, s) = (angle.clone().cos(), angle.sin());
        let zero = c.zeros_like();
        let one = c.ones_like();
        stack_matrix([
            [c.clone(), -s.clone(), zero.clone()],
            [s, c, zero.clone()],
            [zero.clone(), zero, one],
        ])
    };
    let ry = {
        let (c, s) = (beta.clone().cos(), beta.sin());
        let zero = c.zeros_like();
        let one = c.ones_like();
        stack_matrix([
            [c.clone(), zero.clone(), s.clone()],
            [zero.clone(), one, zero.clone()],
            [-s, zero, c],
        ])
    };
    rz(alpha).matmul(ry).matmul(rz(gamma))
}

/// Wigner-D matrices of degrees `0..=l_max` for batches of ZYZ Euler angles.
///
/// # Shapes
/// - `alpha`, `beta`, `gamma`: `[E]`
/// - output: one tensor per degree `l`, `[E, 2l+1, 2l+1]`
pub fn wigner_d_from_euler<B: Backend>(
    l_max: usize,
    alpha: Tensor<B, 1>,
    beta: Tensor<B, 1>,
    gamma: Tensor<B, 1>,
) -> Result<Vec<Tensor<B, 3>>, So3Error> {
    wigner_d(l_max, rotation_from_euler_zyz_tensor(alpha, beta, gamma))
}

/// Rotation matrices taking each vector to the positive z axis.
///
/// Vectors with `z >= 0` use the shortest rotation; the others use a half
/// turn about x after the shortest rotation of the negated vector, so both
/// poles are exact and every denominator stays >= 1 (finite values and
/// gradients everywhere; the zero vector gives the identity). Matches
/// [`crate::rotation::rotation_to_z_f64`].
///
/// # Shapes
/// - `vectors`: `[E, 3]`, any nonzero length
/// - output: `[E, 3, 3]`
pub fn rotation_to_z<B: Backend>(vectors: Tensor<B, 2>) -> Result<Tensor<B, 3>, So3Error> {
    let [count, width] = vectors.dims();
    if width != 3 {
        return Err(So3Error::Shape(format!(
            "rotation_to_z needs vectors of shape [E, 3], got [{count}, {width}]"
        )));
    }
    let squared = vectors.clone().square().sum_dim(1); // [E, 1]
    let floor = positive_floor(1e-24, squared.dtype());
    let unit = vectors / squared.clamp_min(floor).sqrt(); // [E, 3]
    let z = unit.clone().narrow(1, 2, 1); // [E, 1]
    let upper = z.clone().greater_equal_elem(0.0); // [E, 1]
                                                   // Flip the lower half space to the upper one; undo with a half turn about x.
    let sign = z.ones_like().mask_fill(upper.clone().bool_not(), -1.0); // [E, 1]
    let flipped = unit * sign.clone(); // [E, 3], z >= 0
    let x = flipped.clone().narrow(1, 0, 1).squeeze_dim::<1>(1);
    let y = flipped.clone().narrow(1, 1, 1).squeeze_dim::<1>(1);
    let z = flipped.narrow(1, 2, 1).squeeze_dim::<1>(1);
    let s = (z.clone().clamp_min(0.0) + 1.0).recip();
    let xy = x.clone() * y.clone() * s.clone();
    let shortest = stack_matrix([
        [
            -(x.clone() * x.clone() * s.clone()) + 1.0,
            -xy.clone(),
            -x.clone(),
        ],
        [-xy, -(y.clone() * y.clone() * s) + 1.0, -y.clone()],
        [x, y, z],
    ]); // [E, 3, 3]
        // Rows 2 and 3 change sign for the flipped vectors.
    let row_sign =
        Tensor::cat(vec![sign.ones_like(), sign.clone(), sign], 1).reshape([count, 3, 1]);
    Ok(shortest * row_sign)
}

/// Stack nine `[E]` tensors into `[E, 3, 3]`.
fn stack_matrix<B: Backend>(rows: [[Tensor<B, 1>; 3]; 3]) -> Tensor<B, 3> {
    let rows: Vec<Tensor<B, 2>> = rows
        .into_iter()
        .map(|row| Tensor::stack(row.to_vec(), 1))
        .collect();
    Tensor::stack(rows, 1)
}

/// The Clebsch-Gordan tensor `(l1, l2) -> l3` as a `[2l3+1, (2l1+1)(2l2+1)]` matrix on `device`.
pub fn clebsch_gordan_matrix<B: Backend>(
    l1: usize,
    l2: usize,
    l3: usize,
    device: &B::Device,
) -> Result<Tensor<B, 2>, So3Error> {
    let coupling = clebsch_gordan(l1, l2, l3)?;
    let [n3, n1, n2] = coupling.shape();
    Ok(Tensor::from_data(
        TensorData::new(coupling.values().to_vec(), [n3, n1 * n2]).convert::<B::FloatElem>(),
        device,
    ))
}
