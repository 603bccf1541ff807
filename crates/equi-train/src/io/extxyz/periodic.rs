//! Typed access to the periodic data of a frame: `Lattice`, `pbc`, `stress` and `virial`.
//!
//! Conventions (those of ASE's extended XYZ reader and writer):
//! - `Lattice="ax ay az bx by bz cx cy cz"`: the lattice vectors `a`, `b`, `c` as the rows of
//!   the cell, in Angstrom.
//! - `pbc="T T F"`: one flag per lattice vector; a single logical (`pbc=T`) sets all three.
//!   Without `pbc`, a frame with a `Lattice` is periodic in all three directions, one without
//!   is not periodic. A periodic direction without a `Lattice` is an error.
//! - `stress`: 9 components (the 3x3 matrix, row-major) or 6 in ASE's Voigt order
//!   `xx yy zz yz xz xy`, in eV/A^3, with ASE's sign: `stress = (1/V) dE/d(strain)`, so a
//!   compressed cell has a negative stress. A 9-component stress must be symmetric: every
//!   pair `(i, j)`, `(j, i)` may differ by at most [`SYMMETRY_TOLERANCE`] times the largest
//!   absolute component.
//! - `virial` (9 or 6 components, eV), read when there is no `stress`: `stress = -virial / V`
//!   with the cell volume `V`, so a virial needs a `Lattice`.

use atoms::{Cell, Pbc};

use super::{Frame, Value};
use crate::io::PeriodicProblem;

/// Largest asymmetry of a 9-component stress or virial, relative to its largest absolute
/// component.
pub const SYMMETRY_TOLERANCE: f64 = 1e-6;

impl Frame {
    /// The cell of the `Lattice` property, or `None` when the frame has none.
    ///
    /// # Errors
    /// A `Lattice` that is not nine numbers, has a non-finite component or (nearly) no volume.
    pub fn cell(&self) -> Result<Option<Cell>, PeriodicProblem> {
        let Some(value) = self.info.get("Lattice") else {
            return Ok(None);
        };
        let rows = numbers(value)
            .and_then(|values| matrix(&values))
            .ok_or_else(|| PeriodicProblem::LatticeShape {
                found: describe(value),
            })?;
        Cell::new(rows).map(Some).map_err(PeriodicProblem::Cell)
    }

    /// The periodic boundary conditions along `a`, `b`, `c`: the `pbc` property, or by default
    /// all periodic when the frame has a `Lattice` and none periodic when it has not.
    ///
    /// # Errors
    /// A `pbc` that is not one or three logicals, or a periodic direction without `Lattice`.
    pub fn pbc(&self) -> Result<Pbc, PeriodicProblem> {
        let has_lattice = self.info.contains_key("Lattice");
        let pbc = match self.info.get("pbc") {
            None => [has_lattice; 3],
            Some(Value::Logical(flag)) => [*flag; 3],
            Some(Value::LogicalArray(flags)) => match flags.as_slice() {
                [flag] => [*flag; 3],
                [a, b, c] => [*a, *b, *c],
                _ => return Err(pbc_shape(&self.info["pbc"])),
            },
            Some(other) => return Err(pbc_shape(other)),
        };
        if pbc.contains(&true) && !has_lattice {
            return Err(PeriodicProblem::PbcWithoutLattice { pbc: pbc_text(pbc) });
        }
        Ok(pbc)
    }

    /// The stress in eV/A^3 (ASE's sign, see [`crate::io::extxyz`]): the `stress`
    /// property, else `-virial / V` from the `virial` property, else `None`.
    ///
    /// # Errors
    /// A stress or virial that is not nine or six numbers, has a non-finite component or is
    /// not symmetric; a virial without a valid `Lattice`.
    pub fn stress(&self) -> Result<Option<[[f64; 3]; 3]>, PeriodicProblem> {
        if let Some(value) = self.info.get("stress") {
            return symmetric_matrix("stress", value).map(Some);
        }
        let Some(value) = self.info.get("virial") else {
            return Ok(None);
        };
        let virial = symmetric_matrix("virial", value)?;
        let volume = self
            .cell()?
            .ok_or(PeriodicProblem::VirialWithoutLattice)?
            .volume();
        Ok(Some(virial.map(|row| row.map(|w| -w / volume))))
    }

    /// Stores the cell as `Lattice` and the flags as `pbc`, replacing any earlier ones.
    pub fn set_cell(&mut self, cell: &Cell, pbc: Pbc) {
        let lattice = cell.rows().iter().flatten().copied().collect();
        self.info
            .insert("Lattice".to_owned(), Value::RealArray(lattice));
        self.info
            .insert("pbc".to_owned(), Value::LogicalArray(pbc.to_vec()));
    }

    /// Stores the stress (eV/A^3, ASE's sign) as the 9-component `stress`, row-major, and
    /// removes any `virial`. The writer refuses a stress that is not finite and symmetric.
    pub fn set_stress(&mut self, stress: [[f64; 3]; 3]) {
        let components = stress.iter().flatten().copied().collect();
        self.info
            .insert("stress".to_owned(), Value::RealArray(components));
        self.info.remove("virial");
    }
}

/// Checks every periodic property of a frame, as the reader and the writer do.
pub(super) fn check(frame: &Frame) -> Result<(), PeriodicProblem> {
    frame.cell()?;
    frame.pbc()?;
    frame.stress()?;
    Ok(())
}

/// The numbers of an integer or real value or array.
fn numbers(value: &Value) -> Option<Vec<f64>> {
    match value {
        Value::RealArray(values) => Some(values.clone()),
        Value::IntegerArray(values) => Some(values.iter().map(|&v| v as f64).collect()),
        Value::Integer(_) | Value::Real(_) => value.as_f64().map(|v| vec![v]),
        _ => None,
    }
}

/// Nine values as a 3x3 matrix, row-major.
fn matrix(values: &[f64]) -> Option<[[f64; 3]; 3]> {
    (values.len() == 9).then(|| std::array::from_fn(|r| std::array::from_fn(|c| values[3 * r + c])))
}

/// Six values in ASE's Voigt order `xx yy zz yz xz xy` as a symmetric 3x3 matrix.
fn from_voigt(v: &[f64]) -> Option<[[f64; 3]; 3]> {
    match *v {
        [xx, yy, zz, yz, xz, xy] => Some([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]]),
        _ => None,
    }
}

/// A stress-like property as a finite symmetric 3x3 matrix.
fn symmetric_matrix(key: &'static str, value: &Value) -> Result<[[f64; 3]; 3], PeriodicProblem> {
    let values = numbers(value).unwrap_or_default();
    let shape_problem = || PeriodicProblem::StressShape {
        key,
        found: describe(value),
    };
    let m = match values.len() {
        9 => matrix(&values),
        6 => from_voigt(&values),
        _ => None,
    }
    .ok_or_else(shape_problem)?;
    if values.iter().any(|v| !v.is_finite()) {
        return Err(PeriodicProblem::NonFiniteStress { key });
    }
    let largest = values.iter().fold(0.0f64, |max, v| max.max(v.abs()));
    for (row, column) in [(0, 1), (0, 2), (1, 2)] {
        let (upper, lower) = (m[row][column], m[column][row]);
        if (upper - lower).abs() > SYMMETRY_TOLERANCE * largest {
            return Err(PeriodicProblem::AsymmetricStress {
                key,
                row: row + 1,
                column: column + 1,
                upper,
                lower,
            });
        }
    }
    Ok(m)
}

fn pbc_shape(value: &Value) -> PeriodicProblem {
    PeriodicProblem::PbcShape {
        found: describe(value),
    }
}

/// The flags as the writer writes them, e.g. `T T F`.
fn pbc_text(pbc: Pbc) -> String {
    pbc.map(|flag| if flag { "T" } else { "F" }).join(" ")
}

/// What a value is, for messages: `6 numbers`, `2 logicals`, `the text 'x'`.
fn describe(value: &Value) -> String {
    let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    match value {
        Value::Integer(_) | Value::Real(_) => count(1, "number"),
        Value::Logical(_) => count(1, "logical"),
        Value::Text(text) => format!("the text '{text}'"),
        Value::IntegerArray(values) => count(values.len(), "number"),
        Value::RealArray(values) => count(values.len(), "number"),
        Value::LogicalArray(values) => count(values.len(), "logical"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::extxyz::{format_extxyz, parse_extxyz};
    use crate::io::{IoError, XyzProblem, XyzWriteProblem};

    /// The bundled `data/bulk/cu_emt_small_cells.extxyz`, written by ASE 3.29: triclinic
    /// one-atom cells and conventional four-atom cells with energies, forces and stress.
    fn ase_frames() -> Vec<Frame> {
        let path = format!(
            "{}/../../data/bulk/cu_emt_small_cells.extxyz",
            env!("CARGO_MANIFEST_DIR")
        );
        crate::io::extxyz::read_extxyz(path).expect("bundled ASE frames")
    }

    fn frame_with(info: &str) -> Result<Vec<Frame>, IoError> {
        parse_extxyz(&format!("1\n{info}\nCu 0 0 0\n"), "cell.xyz")
    }

    fn problem(info: &str) -> PeriodicProblem {
        match frame_with(info) {
            Err(IoError::Xyz {
                problem: XyzProblem::Periodic(problem),
                frame: 1,
                line: 2,
                ..
            }) => problem,
            other => panic!("{info}: expected a periodic problem, got {other:?}"),
        }
    }

    #[test]
    fn ase_frames_give_cells_pbc_and_stress() {
        let frames = ase_frames();
        assert_eq!(frames.len(), 20);
        let cell = frames[0].cell().expect("valid").expect("a cell");
        assert_eq!(
            cell.rows()[1],
            [
                1.7984296886266762,
                -0.030159463976657676,
                1.8479139412964958
            ]
        );
        assert_eq!(frames[0].pbc(), Ok([true; 3]));
        let stress = frames[0].stress().expect("valid").expect("a stress");
        assert_eq!(
            stress[0],
            [
                0.006905699083832946,
                -0.023488894987410712,
                0.0011562062925548854
            ]
        );
        assert_eq!(stress[2][2], 0.0210996851761079);
        assert!(frames.iter().all(|f| f.stress().is_ok_and(|s| s.is_some())));
        let text = format_extxyz(&frames).expect("writable");
        assert_eq!(parse_extxyz(&text, "copy.xyz").expect("read back"), frames);
    }

    #[test]
    fn set_values_are_written_and_read_back() {
        let cell = Cell::new([[3.6, 0.0, 0.1], [1.8, 3.1, 0.0], [0.0, 0.2, 5.0]]).expect("cell");
        let stress = [
            [0.1, 1.0 / 3.0, -2e-5],
            [1.0 / 3.0, -0.2, 0.0],
            [-2e-5, 0.0, 0.7],
        ];
        let mut frame = Frame::new(vec![29], vec![[0.5, 0.25, 1.0]]);
        frame.set_cell(&cell, [true, true, false]);
        frame.set_stress(stress);
        let text = format_extxyz(std::slice::from_ref(&frame)).expect("writable");
        assert!(text.contains("pbc=\"T T F\""), "{text}");
        let read = parse_extxyz(&text, "written.xyz").expect("readable");
        assert_eq!(read, vec![frame]);
        assert_eq!(read[0].cell(), Ok(Some(cell)));
        assert_eq!(read[0].pbc(), Ok([true, true, false]));
        assert_eq!(read[0].stress(), Ok(Some(stress)));
    }

    #[test]
    fn defaults_single_flags_voigt_and_virial() {
        let lattice = "Lattice=\"2 0 0 0 2 0 0 0 2\"";
        let plain = &frame_with("energy=1.0").expect("no cell")[0];
        assert_eq!(
            (plain.cell(), plain.pbc(), plain.stress()),
            (Ok(None), Ok([false; 3]), Ok(None))
        );
        let periodic = &frame_with(lattice).expect("cell")[0];
        assert_eq!(periodic.pbc(), Ok([true; 3]));
        let slab = &frame_with(&format!("{lattice} pbc=F")).expect("slab")[0];
        assert_eq!(slab.pbc(), Ok([false; 3]));
        let voigt = &frame_with("stress=\"1 2 3 4 5 6\"").expect("Voigt")[0];
        let expected = [[1.0, 6.0, 5.0], [6.0, 2.0, 4.0], [5.0, 4.0, 3.0]];
        assert_eq!(voigt.stress(), Ok(Some(expected)));
        let virial =
            &frame_with(&format!("{lattice} virial=\"8 0 0 0 -16 0 0 0 4\"")).expect("virial")[0];
        let stress = virial.stress().expect("valid").expect("from the virial");
        assert_eq!(
            stress,
            [[-1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, -0.5]]
        );
    }

    #[test]
    fn invalid_periodic_data_is_named() {
        let lattice = "Lattice=\"2 0 0 0 2 0 0 0 2\"";
        assert!(matches!(
            problem("pbc=\"T F T\""),
            PeriodicProblem::PbcWithoutLattice { .. }
        ));
        assert!(matches!(
            problem("pbc=T"),
            PeriodicProblem::PbcWithoutLattice { .. }
        ));
        assert!(matches!(
            problem(&format!("{lattice} pbc=\"T F\"")),
            PeriodicProblem::PbcShape { .. }
        ));
        let shape = problem("Lattice=\"1 0 0 0 1 0\"");
        assert_eq!(shape.to_string(), "'Lattice' must be 9 real numbers (the lattice vectors a, b, c as rows), found 6 numbers");
        assert!(matches!(
            problem("Lattice=cubic"),
            PeriodicProblem::LatticeShape { .. }
        ));
        assert!(matches!(
            problem("Lattice=\"1 0 0 0 1 0 1 1 0\""),
            PeriodicProblem::Cell(atoms::CellError::Degenerate { .. })
        ));
        assert_eq!(
            problem("Lattice=\"nan 0 0 0 1 0 0 0 1\""),
            PeriodicProblem::Cell(atoms::CellError::NonFinite)
        );
        assert!(matches!(
            problem("stress=\"1 2 3 4\""),
            PeriodicProblem::StressShape { key: "stress", .. }
        ));
        assert_eq!(
            problem("stress=\"1 2 inf 4 5 6\""),
            PeriodicProblem::NonFiniteStress { key: "stress" }
        );
        let asymmetric = problem("stress=\"1 2 0 2.001 1 0 0 0 1\"");
        assert!(
            asymmetric
                .to_string()
                .contains("(1, 2) is 2e0, (2, 1) is 2.001e0"),
            "{asymmetric}"
        );
        assert_eq!(
            problem("virial=\"1 0 0 0 1 0 0 0 1\""),
            PeriodicProblem::VirialWithoutLattice
        );
        assert!(frame_with("stress=\"1 2 0 2.0000001 1 0 0 0 1\"").is_ok());
        let error = frame_with("Lattice=\"1 0 0\"")
            .expect_err("bad lattice")
            .to_string();
        assert!(
            error.starts_with("cell.xyz: frame 1, line 2: 'Lattice' must be"),
            "{error}"
        );
    }

    #[test]
    fn the_writer_refuses_invalid_periodic_data() {
        let mut frame = Frame::new(vec![29], vec![[0.0; 3]]);
        frame.set_stress([[1.0, 2.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]);
        let error = format_extxyz(std::slice::from_ref(&frame)).expect_err("asymmetric");
        assert!(matches!(
            error,
            IoError::XyzWrite {
                frame: 1,
                problem: XyzWriteProblem::Periodic(PeriodicProblem::AsymmetricStress { .. }),
                ..
            }
        ));
        let mut frame = Frame::new(vec![29], vec![[0.0; 3]]);
        frame
            .info
            .insert("pbc".to_owned(), Value::LogicalArray(vec![true; 3]));
        assert!(format_extxyz(&[frame]).is_err());
    }
}
