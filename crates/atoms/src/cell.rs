//! The periodic cell: three lattice vectors and which of them are periodic.

/// Periodic boundary conditions along the three lattice vectors `a`, `b`, `c`.
pub type Pbc = [bool; 3];

/// Cells whose volume is below this (in cubic Angstrom) are rejected as degenerate.
pub const MIN_VOLUME: f64 = 1e-6;

/// Why a cell is not usable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CellError {
    /// A lattice component is NaN or infinite.
    #[error("the cell has a non-finite component")]
    NonFinite,
    /// The lattice vectors are (nearly) linearly dependent.
    #[error("the cell is degenerate: its volume {volume:.3e} A^3 is below {MIN_VOLUME:e}")]
    Degenerate {
        /// The absolute volume of the three vectors.
        volume: f64,
    },
}

/// Three lattice vectors, the rows of a 3x3 matrix, in Angstrom.
///
/// The vectors may be left- or right-handed; [`volume`](Self::volume) is the absolute value
/// of the determinant.
///
/// ```
/// use atoms::Cell;
/// let cell = Cell::new([[3.6, 0.0, 0.0], [0.0, 3.6, 0.0], [1.8, 0.0, 3.6]])?;
/// assert!((cell.volume() - 3.6f64.powi(3)).abs() < 1e-12);
/// let x = cell.cartesian([0.5, 0.5, 0.5]);
/// let back = cell.fractional(x);
/// assert!((back[2] - 0.5).abs() < 1e-12);
/// # Ok::<(), atoms::CellError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    rows: [[f64; 3]; 3],
    inverse: [[f64; 3]; 3],
}

impl Cell {
    /// A cell from its lattice vectors (rows).
    ///
    /// # Errors
    /// A non-finite component, or a volume below [`MIN_VOLUME`].
    pub fn new(rows: [[f64; 3]; 3]) -> Result<Self, CellError> {
        if rows.iter().flatten().any(|v| !v.is_finite()) {
            return Err(CellError::NonFinite);
        }
        let det = determinant(&rows);
        if det.is_nan() || det.abs() < MIN_VOLUME {
            return Err(CellError::Degenerate { volume: det.abs() });
        }
        Ok(Self {
            rows,
            inverse: inverse(&rows, det),
        })
    }

    /// The lattice vectors `a`, `b`, `c` as rows.
    pub fn rows(&self) -> &[[f64; 3]; 3] {
        &self.rows
    }

    /// The inverse matrix: `fractional = cartesian * inverse` for row vectors.
    pub fn inverse(&self) -> &[[f64; 3]; 3] {
        &self.inverse
    }

    /// The volume, `|det(rows)|`, in cubic Angstrom.
    pub fn volume(&self) -> f64 {
        determinant(&self.rows).abs()
    }

    /// Cartesian position of fractional coordinates `s` (`x = s * rows`).
    pub fn cartesian(&self, s: [f64; 3]) -> [f64; 3] {
        row_times(s, &self.rows)
    }

    /// Fractional coordinates of a Cartesian position (`s = x * inverse`).
    pub fn fractional(&self, x: [f64; 3]) -> [f64; 3] {
        row_times(x, &self.inverse)
    }

    /// The Cartesian offset of the integer image shift `shift` (`shift * rows`).
    pub fn shift_vector(&self, shift: [i32; 3]) -> [f64; 3] {
        self.cartesian(shift.map(f64::from))
    }

    /// Distances between opposite faces of the cell, one per lattice vector:
    /// `V / |b x c|`, `V / |c x a|`, `V / |a x b|`.
    pub fn face_distances(&self) -> [f64; 3] {
        let [a, b, c] = self.rows;
        let volume = self.volume();
        [cross(b, c), cross(c, a), cross(a, b)].map(|n| volume / norm(n))
    }
}

/// `v * m` for a row vector `v`.
pub(crate) fn row_times(v: [f64; 3], m: &[[f64; 3]; 3]) -> [f64; 3] {
    std::array::from_fn(|c| v[0] * m[0][c] + v[1] * m[1][c] + v[2] * m[2][c])
}

pub(crate) fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

pub(crate) fn norm(v: [f64; 3]) -> f64 {
    (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt()
}

fn determinant(m: &[[f64; 3]; 3]) -> f64 {
    let [a, b, c] = *m;
    let bc = cross(b, c);
    a[0] * bc[0] + a[1] * bc[1] + a[2] * bc[2]
}

fn inverse(m: &[[f64; 3]; 3], det: f64) -> [[f64; 3]; 3] {
    let [a, b, c] = *m;
    // The columns of the inverse are the reciprocal vectors.
    let columns = [cross(b, c), cross(c, a), cross(a, b)];
    std::array::from_fn(|r| std::array::from_fn(|col| columns[col][r] / det))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_undoes_the_cell() {
        let cell = Cell::new([[2.0, 0.3, -0.1], [0.4, 3.0, 0.2], [-0.5, 0.1, 4.0]]).unwrap();
        for x in [[0.3, -1.2, 2.5], [10.0, 0.0, -3.0]] {
            let back = cell.cartesian(cell.fractional(x));
            for c in 0..3 {
                assert!((back[c] - x[c]).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn rejects_degenerate_and_non_finite_cells() {
        let flat = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0]];
        assert!(matches!(Cell::new(flat), Err(CellError::Degenerate { .. })));
        let nan = [[f64::NAN, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        assert_eq!(Cell::new(nan), Err(CellError::NonFinite));
    }

    #[test]
    fn face_distances_of_a_sheared_cell() {
        let cell = Cell::new([[3.0, 0.0, 0.0], [1.5, 2.0, 0.0], [0.0, 0.0, 5.0]]).unwrap();
        let d = cell.face_distances();
        assert!((d[0] - 2.0 * 3.0 / 2.5).abs() < 1e-12);
        assert!((d[1] - 2.0).abs() < 1e-12);
        assert!((d[2] - 5.0).abs() < 1e-12);
    }
}
