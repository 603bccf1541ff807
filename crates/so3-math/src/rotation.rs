//! Plain `f64` rotations: matrices, ZYZ Euler angles, quaternions.
//!
//! A rotation is a row-major `[[f64; 3]; 3]` acting on column vectors,
//! `r' = R r`. ZYZ Euler angles mean `R = Rz(alpha) Ry(beta) Rz(gamma)`.
//!
//! ```
//! use so3_math::rotation::{apply, rotation_from_euler_zyz};
//! use std::f64::consts::FRAC_PI_2;
//!
//! // A quarter turn about z takes x to y.
//! let r = rotation_from_euler_zyz(FRAC_PI_2, 0.0, 0.0);
//! let y = apply(&r, [1.0, 0.0, 0.0]);
//! assert!((y[1] - 1.0).abs() < 1e-15 && y[0].abs() < 1e-15);
//! ```

/// A 3x3 rotation matrix, row-major, acting on column vectors.
pub type RotationMatrix = [[f64; 3]; 3];

/// The identity rotation.
pub const IDENTITY: RotationMatrix = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];

/// Rotation by `angle` about the z axis.
pub fn rotation_z(angle: f64) -> RotationMatrix {
    let (s, c) = angle.sin_cos();
    [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]
}

/// Rotation by `angle` about the y axis.
pub fn rotation_y(angle: f64) -> RotationMatrix {
    let (s, c) = angle.sin_cos();
    [[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]]
}

/// `Rz(alpha) Ry(beta) Rz(gamma)`.
pub fn rotation_from_euler_zyz(alpha: f64, beta: f64, gamma: f64) -> RotationMatrix {
    compose(
        &compose(&rotation_z(alpha), &rotation_y(beta)),
        &rotation_z(gamma),
    )
}

/// The rotation of a quaternion `[w, x, y, z]`, which need not be normalised
/// (it must not be zero).
pub fn rotation_from_quaternion(q: [f64; 4]) -> RotationMatrix {
    let norm = q.iter().map(|v| v * v).sum::<f64>().sqrt();
    let [w, x, y, z] = q.map(|v| v / norm);
    [
        [
            1.0 - 2.0 * (y * y + z * z),
            2.0 * (x * y - w * z),
            2.0 * (x * z + w * y),
        ],
        [
            2.0 * (x * y + w * z),
            1.0 - 2.0 * (x * x + z * z),
            2.0 * (y * z - w * x),
        ],
        [
            2.0 * (x * z - w * y),
            2.0 * (y * z + w * x),
            1.0 - 2.0 * (x * x + y * y),
        ],
    ]
}

/// The product `a b` (apply `b` first).
pub fn compose(a: &RotationMatrix, b: &RotationMatrix) -> RotationMatrix {
    let mut out = [[0.0; 3]; 3];
    for (i, row) in out.iter_mut().enumerate() {
        for (j, entry) in row.iter_mut().enumerate() {
            *entry = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    out
}

/// The inverse (transpose) of a rotation.
pub fn transpose(r: &RotationMatrix) -> RotationMatrix {
    let mut out = [[0.0; 3]; 3];
    for (i, row) in out.iter_mut().enumerate() {
        for (j, entry) in row.iter_mut().enumerate() {
            *entry = r[j][i];
        }
    }
    out
}

/// `R v`.
pub fn apply(r: &RotationMatrix, v: [f64; 3]) -> [f64; 3] {
    [0, 1, 2].map(|i| (0..3).map(|k| r[i][k] * v[k]).sum())
}

/// Determinant of a 3x3 matrix.
pub fn determinant(r: &RotationMatrix) -> f64 {
    r[0][0] * (r[1][1] * r[2][2] - r[1][2] * r[2][1])
        - r[0][1] * (r[1][0] * r[2][2] - r[1][2] * r[2][0])
        + r[0][2] * (r[1][0] * r[2][1] - r[1][1] * r[2][0])
}

/// A rotation that takes `vector` to the positive z axis, in `f64`.
///
/// Uses the shortest rotation for vectors in the upper half space and a half
/// turn about x after the shortest rotation of `-vector` otherwise, so it is
/// exact at both poles. The zero vector gives the identity.
///
/// ```
/// use so3_math::rotation::{apply, rotation_to_z_f64};
/// let r = rotation_to_z_f64([0.0, 0.0, -2.0]);
/// let z = apply(&r, [0.0, 0.0, -1.0]);
/// assert!((z[2] - 1.0).abs() < 1e-15);
/// ```
pub fn rotation_to_z_f64(vector: [f64; 3]) -> RotationMatrix {
    let norm = vector.iter().map(|v| v * v).sum::<f64>().sqrt();
    if norm == 0.0 {
        return IDENTITY;
    }
    let u = vector.map(|v| v / norm);
    if u[2] >= 0.0 {
        shortest_rotation_to_z(u)
    } else {
        let r = shortest_rotation_to_z(u.map(|v| -v));
        [r[0], r[1].map(|v| -v), r[2].map(|v| -v)]
    }
}

/// Rodrigues rotation about `u x z` taking unit `u` (with `u_z >= 0`) to z.
fn shortest_rotation_to_z([x, y, z]: [f64; 3]) -> RotationMatrix {
    let s = 1.0 / (1.0 + z);
    [
        [1.0 - x * x * s, -x * y * s, -x],
        [-x * y * s, 1.0 - y * y * s, -y],
        [x, y, z],
    ]
}

/// A deterministic stream of uniformly distributed random rotations, for tests.
///
/// Each rotation comes from a quaternion with four standard normal entries
/// (Box-Muller over a SplitMix64 stream), which is uniform on SO(3).
#[derive(Clone, Debug)]
pub struct RandomRotations {
    state: u64,
}

impl RandomRotations {
    /// A stream seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        RandomRotations { state: seed }
    }

    /// A uniform number in `(0, 1)`.
    pub fn next_uniform(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// A standard normal number.
    pub fn next_normal(&mut self) -> f64 {
        let u1 = self.next_uniform();
        let u2 = self.next_uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// The next rotation.
    pub fn next_rotation(&mut self) -> RotationMatrix {
        let q = [0; 4].map(|_| self.next_normal());
        rotation_from_quaternion(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn euler_and_quaternion_agree_on_a_known_rotation() {
        // A half turn about y: quaternion (0, 0, 1, 0).
        let from_euler = rotation_from_euler_zyz(0.0, std::f64::consts::PI, 0.0);
        let from_quaternion = rotation_from_quaternion([0.0, 0.0, 1.0, 0.0]);
        for i in 0..3 {
            for j in 0..3 {
                assert!((from_euler[i][j] - from_quaternion[i][j]).abs() < 1e-15);
            }
        }
    }

    #[test]
    fn random_rotations_are_proper_and_orthogonal() {
        let mut rotations = RandomRotations::new(7);
        for _ in 0..100 {
            let r = rotations.next_rotation();
            assert!((determinant(&r) - 1.0).abs() < 1e-12);
            let identity = compose(&r, &transpose(&r));
            for (i, row) in identity.iter().enumerate() {
                for (j, value) in row.iter().enumerate() {
                    let expected = if i == j { 1.0 } else { 0.0 };
                    assert!((value - expected).abs() < 1e-12);
                }
            }
        }
    }

    #[test]
    fn rotation_to_z_is_exact_at_and_near_the_poles() {
        for v in [
            [0.0, 0.0, 1.0],
            [0.0, 0.0, -1.0],
            [1e-12, 0.0, -1.0],
            [0.0, -1e-9, 1.0],
            [1.0, 0.0, 0.0],
            [0.3, -0.4, -0.2],
        ] {
            let r = rotation_to_z_f64(v);
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            let z = apply(&r, v.map(|x| x / norm));
            assert!(
                z[0].abs() < 1e-14 && z[1].abs() < 1e-14 && (z[2] - 1.0).abs() < 1e-14,
                "{v:?}"
            );
            assert!((determinant(&r) - 1.0).abs() < 1e-14);
        }
    }
}
