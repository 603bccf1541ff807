//! Extended XYZ files (ASE convention), multi-frame, and the comment-line layout of QM9.
//!
//! A frame is an atom count line, a comment line and one line per atom. The comment line holds
//! `key=value` pairs; `Properties=name:type:columns:...` describes the columns of the atom lines
//! (types `S` text, `R` real, `I` integer, `L` logical). Without `Properties`, the atom lines are
//! `symbol x y z`. Values are numbers, logicals (`T`, `F`, `True`, `False`), bare words or quoted
//! strings (`pbc="F F F"`); a quoted, `{...}` or `[...]` value of several numbers or logicals
//! becomes an array; a key without `=` is the logical `T`. A line with `Properties=` must be
//! valid `key=value` pairs; any other comment line that is not (for instance free text without
//! `=`) is kept whole as the text value `comment`. Real numbers may use Fortran exponents
//! (`1.5D-3`, `1.5*^-3`). Blank lines may follow the last frame.
//!
//! Periodic data follow ASE: `Lattice="ax ay az bx by bz cx cy cz"` holds the lattice vectors
//! as rows (Angstrom), `pbc="T T T"` the periodic directions (all of them by default when
//! there is a `Lattice`), `stress` the stress in eV/A^3 (9 components row-major, or 6 in the
//! Voigt order `xx yy zz yz xz xy`; `stress = (1/V) dE/d(strain)`) and `virial` the
//! alternative `-V * stress`. The reader checks them in every frame and the writer before it
//! writes; [`Frame::cell`], [`Frame::pbc`] and [`Frame::stress`] return them typed and
//! [`Frame::set_cell`] and [`Frame::set_stress`] store them.
//!
//! ```
//! use equi_train::io::extxyz::{format_extxyz, parse_extxyz};
//!
//! let text = "1\nLattice=\"0 1.8 1.8 1.8 0 1.8 1.8 1.8 0\" energy=-0.1 \
//!             stress=\"-0.01 -0.01 -0.01 0 0 0\"\nCu 0 0 0\n";
//! let frames = parse_extxyz(text, "cu.xyz")?;
//! let cell = frames[0].cell()?.expect("a Lattice");
//! assert!((cell.volume() - 2.0 * 1.8f64.powi(3)).abs() < 1e-12);
//! assert_eq!(frames[0].pbc()?, [true; 3]);
//! assert_eq!(frames[0].stress()?.map(|s| s[0]), Some([-0.01, 0.0, 0.0]));
//! let written = format_extxyz(&frames)?;
//! assert!(written.contains(" Lattice=\"0.0 1.8 1.8 1.8 0.0 1.8 1.8 1.8 0.0\" "));
//! assert_eq!(parse_extxyz(&written, "copy.xyz")?, frames);
//!
//! let error = parse_extxyz("1\npbc=\"T T T\"\nCu 0 0 0\n", "gas.xyz").unwrap_err();
//! assert_eq!(
//!     error.to_string(),
//!     "gas.xyz: frame 1, line 2: 'pbc' is \"T T T\" but the frame has no 'Lattice'"
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The layout of the original QM9 release is read as well: a comment line
//! `gdb <index> <15 values>` gives the properties `index`, `A`, `B`, `C`, `mu`, `alpha`,
//! `epsHOMO`, `epsLUMO`, `epsgap`, `<R2>`, `zpve`, `U0`, `U`, `H`, `G`, `Cv` (the names of the
//! extended XYZ version of QM9), the fifth atom column is the array `mulliken_charges`, and
//! the three lines after the atoms give `frequencies`, `smiles_gdb`, `smiles_relaxed`,
//! `inchi_gdb` and `inchi_relaxed`.

mod comment;
mod periodic;
mod qm9;
mod reader;
mod writer;

use std::collections::BTreeMap;
use std::path::Path;

use super::text::read_text;
use super::IoError;

pub use periodic::SYMMETRY_TOLERANCE;

/// One structure of an extended XYZ file.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Atomic number of every atom.
    pub atomic_numbers: Vec<u8>,
    /// Cartesian position of every atom, in the unit of the file (Angstrom by convention).
    pub positions: Vec<[f64; 3]>,
    /// Per-atom arrays other than the species and positions, by column name (e.g. `forces`).
    pub arrays: BTreeMap<String, AtomArray>,
    /// Per-frame properties from the comment line, by key (e.g. `energy`, `pbc`), without
    /// `Properties`.
    pub info: BTreeMap<String, Value>,
}

impl Frame {
    /// A frame with the given atoms and no arrays or properties.
    pub fn new(atomic_numbers: Vec<u8>, positions: Vec<[f64; 3]>) -> Self {
        Self {
            atomic_numbers,
            positions,
            arrays: BTreeMap::new(),
            info: BTreeMap::new(),
        }
    }

    /// Number of atoms.
    pub fn len(&self) -> usize {
        self.atomic_numbers.len()
    }

    /// Whether the frame has no atoms.
    pub fn is_empty(&self) -> bool {
        self.atomic_numbers.is_empty()
    }

    /// A numeric property (integer or real) of the frame, e.g. `"energy"` or `"U0"`.
    pub fn info_f64(&self, key: &str) -> Option<f64> {
        self.info.get(key).and_then(Value::as_f64)
    }

    /// The `energy` property.
    pub fn energy(&self) -> Option<f64> {
        self.info_f64("energy")
    }

    /// A real per-atom array of three columns as vectors, e.g. `"forces"`.
    pub fn vectors(&self, name: &str) -> Option<Vec<[f64; 3]>> {
        self.arrays.get(name).and_then(AtomArray::vectors)
    }

    /// The `forces` array.
    pub fn forces(&self) -> Option<Vec<[f64; 3]>> {
        self.vectors("forces")
    }

    /// Stores a real three-column per-atom array, replacing any array of that name.
    pub fn set_vectors(&mut self, name: &str, vectors: &[[f64; 3]]) {
        self.arrays
            .insert(name.to_owned(), AtomArray::from_vectors(vectors));
    }
}

/// A per-atom array: `columns` values per atom, atom after atom.
#[derive(Debug, Clone, PartialEq)]
pub struct AtomArray {
    /// Values per atom.
    pub columns: usize,
    /// The values, `columns` per atom in atom order.
    pub values: ArrayValues,
}

impl AtomArray {
    /// A real three-column array from vectors.
    pub fn from_vectors(vectors: &[[f64; 3]]) -> Self {
        Self {
            columns: 3,
            values: ArrayValues::Real(vectors.iter().flatten().copied().collect()),
        }
    }

    /// The rows of a real three-column array; `None` for other arrays.
    pub fn vectors(&self) -> Option<Vec<[f64; 3]>> {
        match (&self.values, self.columns) {
            (ArrayValues::Real(values), 3) => Some(
                values
                    .chunks_exact(3)
                    .map(|row| [row[0], row[1], row[2]])
                    .collect(),
            ),
            _ => None,
        }
    }

    /// Number of stored values (atoms times columns).
    pub fn value_count(&self) -> usize {
        match &self.values {
            ArrayValues::Real(values) => values.len(),
            ArrayValues::Integer(values) => values.len(),
            ArrayValues::Logical(values) => values.len(),
            ArrayValues::Text(values) => values.len(),
        }
    }
}

/// The typed values of a per-atom array.
#[derive(Debug, Clone, PartialEq)]
pub enum ArrayValues {
    /// Type `R`.
    Real(Vec<f64>),
    /// Type `I`.
    Integer(Vec<i64>),
    /// Type `L`.
    Logical(Vec<bool>),
    /// Type `S`.
    Text(Vec<String>),
}

/// A per-frame property from the comment line.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// An integer, e.g. `step=10`.
    Integer(i64),
    /// A real number, e.g. `energy=-309.47`.
    Real(f64),
    /// A logical, e.g. `converged=T`.
    Logical(bool),
    /// Text, e.g. `config_type=bulk` or `comment="relaxed geometry"`.
    Text(String),
    /// Several integers, e.g. `cell_shape="2 2 2"`.
    IntegerArray(Vec<i64>),
    /// Several real numbers, e.g. `Lattice="10 0 0 0 10 0 0 0 10"`.
    RealArray(Vec<f64>),
    /// Several logicals, e.g. `pbc="F F F"`.
    LogicalArray(Vec<bool>),
}

impl Value {
    /// The value as a real number, for integers and reals.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Integer(value) => Some(*value as f64),
            Self::Real(value) => Some(*value),
            _ => None,
        }
    }

    /// The value as text, for text values.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Text(text) => Some(text),
            _ => None,
        }
    }
}

/// Reads every frame of an extended XYZ file.
///
/// Errors name the file, the frame and the line: a truncated file, an atom count that does
/// not match the atom lines, an unknown element, a field that does not parse, a bad
/// `Properties` spec or comment line.
pub fn read_extxyz(path: impl AsRef<Path>) -> Result<Vec<Frame>, IoError> {
    let path = path.as_ref();
    let text = read_text(path)?;
    parse_extxyz(&text, &path.display().to_string())
}

/// Parses extended XYZ text; `file` names the source in errors.
pub fn parse_extxyz(text: &str, file: &str) -> Result<Vec<Frame>, IoError> {
    reader::parse_frames(text, file)
}

/// Writes frames as extended XYZ that [`read_extxyz`] reads back unchanged.
///
/// Real numbers are written in their shortest form that parses back to the same value. A frame
/// whose arrays do not match its atom count, with an atomic number outside `1..=118`, or with a
/// name or text value that would read back differently is refused before the file is created.
pub fn write_extxyz(path: impl AsRef<Path>, frames: &[Frame]) -> Result<(), IoError> {
    let path = path.as_ref();
    let file = path.display().to_string();
    let text = writer::format_frames(frames, &file)?;
    std::fs::write(path, text).map_err(|source| IoError::Write { file, source })
}

/// Formats frames as extended XYZ text, as [`write_extxyz`] writes them.
pub fn format_extxyz(frames: &[Frame]) -> Result<String, IoError> {
    writer::format_frames(frames, "extended XYZ text")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(path: &str) -> String {
        format!("{}/../../data/{path}", env!("CARGO_MANIFEST_DIR"))
    }

    fn temp_path(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("equi-train-{}-{name}", std::process::id()))
    }

    #[test]
    fn ethanol_and_aspirin_md_frames() {
        let frames = read_extxyz(data("md/ethanol_xtb_train.extxyz")).expect("ethanol train");
        assert_eq!(frames.len(), 800);
        assert!(frames
            .iter()
            .all(|frame| frame.atomic_numbers == [6, 6, 8, 1, 1, 1, 1, 1, 1]));
        let first = &frames[0];
        assert_eq!(first.energy(), Some(-309.4711397718));
        assert_eq!(
            first.positions[0],
            [1.1768897998, -0.3809914582, 0.006505012]
        );
        let forces = first.forces().expect("forces");
        assert_eq!(forces[0], [-0.791456855, -1.2601519094, 0.5998095974]);
        assert_eq!(first.info["pbc"], Value::LogicalArray(vec![false; 3]));
        let energies: Vec<f64> = frames.iter().filter_map(Frame::energy).collect();
        assert_eq!(energies.len(), 800);
        let mean = energies.iter().sum::<f64>() / 800.0;
        assert!((mean - -309.524878).abs() < 1e-6, "mean energy {mean}");
        let components: Vec<f64> = frames
            .iter()
            .flat_map(|frame| frame.forces().unwrap_or_default())
            .flatten()
            .collect();
        assert_eq!(components.len(), 800 * 9 * 3);
        let rms = (components.iter().map(|f| f * f).sum::<f64>() / components.len() as f64).sqrt();
        assert!((rms - 1.027347).abs() < 1e-6, "RMS force {rms}");

        let valid = read_extxyz(data("md/ethanol_xtb_valid.extxyz")).expect("ethanol valid");
        assert_eq!(valid.len(), 200);
        for (file, count) in [("train", 800), ("valid", 200)] {
            let aspirin =
                read_extxyz(data(&format!("md/aspirin_xtb_{file}.extxyz"))).expect("aspirin");
            assert_eq!(aspirin.len(), count);
            assert!(aspirin
                .iter()
                .all(|frame| frame.len() == 21 && frame.forces().is_some()));
        }
    }

    #[test]
    fn qm9_molecules_with_their_properties() {
        let molecules = read_extxyz(data("qm9/qm9_reduced_100.xyz")).expect("qm9");
        assert_eq!(molecules.len(), 100);
        let names = [
            "A", "B", "C", "mu", "alpha", "epsHOMO", "epsLUMO", "epsgap", "<R2>", "zpve", "U0",
            "U", "H", "G", "Cv",
        ];
        for molecule in &molecules {
            assert!(names.iter().all(|name| molecule.info_f64(name).is_some()));
            assert!(molecule.info_f64("U0").is_some_and(|u0| u0 < 0.0));
        }
        let methane = &molecules[0];
        assert_eq!(methane.atomic_numbers, vec![6, 1, 1, 1, 1]);
        assert_eq!(methane.info_f64("U0"), Some(-40.47893));
        assert_eq!(methane.info["mu"], Value::Integer(0));
        assert_eq!(molecules[99].info_f64("U0"), Some(-232.334436));
        assert_eq!(molecules[99].info_f64("<R2>"), Some(432.2224));
    }

    #[test]
    fn written_files_read_back() {
        let mut frame = Frame::new(
            vec![8, 1, 1],
            vec![[0.0; 3], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]],
        );
        frame.set_vectors(
            "forces",
            &[[0.5, -0.25, 0.0], [1e-3, 0.0, 2.0], [-0.501, 0.249, -2.0]],
        );
        frame.info.insert("energy".to_owned(), Value::Real(-2079.8));
        let path = temp_path("written.extxyz");
        write_extxyz(&path, &[frame.clone(), frame.clone()]).expect("write");
        let read = read_extxyz(&path).expect("read back");
        std::fs::remove_file(&path).expect("remove temporary file");
        assert_eq!(read, vec![frame.clone(), frame]);
    }

    #[test]
    fn unreadable_files() {
        let missing = temp_path("missing.xyz");
        let error = read_extxyz(&missing).expect_err("missing file");
        assert!(matches!(error, IoError::Read { .. }));
        assert!(error
            .to_string()
            .starts_with(&missing.display().to_string()));

        let path = temp_path("latin1.xyz");
        std::fs::write(&path, b"1\ncaf\xe9\nH 0 0 0\n").expect("write temporary file");
        let error = read_extxyz(&path).expect_err("not UTF-8");
        std::fs::remove_file(&path).expect("remove temporary file");
        assert!(matches!(error, IoError::NotUtf8 { line: 2, .. }), "{error}");
    }
}
