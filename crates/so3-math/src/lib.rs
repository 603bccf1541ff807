//! Exact SO(3) math for equivariant networks, on plain `f64` and on any Burn backend.
//!
//! - [`Irreps`]: feature layouts such as `"64x0e + 32x1o + 16x2e"`;
//! - [`spherical_harmonics`]: real spherical harmonics, component normalization,
//!   degree 1 ordered `(y, z, x)`;
//! - [`wigner_d`]: Wigner-D matrices of batches of rotations, and
//!   [`rotation_to_z`], the rotation taking an edge onto the z axis;
//! - [`clebsch_gordan`]: real Clebsch-Gordan tensors computed exactly, cached;
//! - [`EquivarianceChecker`]: the test harness every layer uses.
//!
//! Each tensor function has an `f64` twin (`*_f64`) used as reference in tests.
//! The conventions are written out in `docs/conventions.md` and pinned by tests.
//!
//! ```
//! use so3_math::{rotation::RandomRotations, spherical_harmonics_f64, wigner_d_f64};
//!
//! // Y_l(R r) = D_l(R) Y_l(r)
//! let r = RandomRotations::new(1).next_rotation();
//! let v = [0.3, -1.0, 0.5];
//! let d = wigner_d_f64(4, &r);
//! let lhs = spherical_harmonics_f64(4, so3_math::rotation::apply(&r, v));
//! let rhs = d[4].apply(&spherical_harmonics_f64(4, v)[4]);
//! assert!(lhs[4].iter().zip(&rhs).all(|(a, b)| (a - b).abs() < 1e-12));
//! ```

pub mod clebsch_gordan;
pub mod equivariance;
pub mod irreps;
pub mod precision;
pub mod rotation;
pub mod spherical_harmonics;
pub mod wigner;

#[cfg(test)]
mod property_tests;

pub use clebsch_gordan::{clebsch_gordan, ClebschGordan};
pub use equivariance::{EquivarianceChecker, EquivarianceReport, EuclideanTransform};
pub use irreps::{Irrep, Irreps, IrrepsError, MulIrrep, Parity};
pub use spherical_harmonics::{spherical_harmonics, spherical_harmonics_f64};
pub use wigner::{
    clebsch_gordan_matrix, rotation_from_euler_zyz_tensor, rotation_to_z, wigner_d, wigner_d_f64,
    wigner_d_from_euler, wigner_d_from_euler_f64, WignerD,
};

/// Errors of the SO(3) functions.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum So3Error {
    /// Degrees that do not satisfy `|l1 - l2| <= l3 <= l1 + l2`.
    #[error("degrees {l1} and {l2} do not couple to degree {l3} (need |l1-l2| <= l3 <= l1+l2)")]
    InvalidCoupling {
        /// First input degree.
        l1: usize,
        /// Second input degree.
        l2: usize,
        /// Output degree.
        l3: usize,
    },
    /// A tensor or slice of the wrong shape.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// An inversion was applied to a layout that has no parities.
    #[error("layout {0} has no parities, so its behaviour under inversion is undefined")]
    MissingParity(String),
    /// The process-wide table cache was poisoned by a panic in another thread.
    #[error("the Clebsch-Gordan cache was poisoned by a panic in another thread")]
    Poisoned,
}

/// The conventions of this crate, with worked examples (from `docs/conventions.md`).
#[doc = include_str!("../../../docs/conventions.md")]
pub mod conventions {}
