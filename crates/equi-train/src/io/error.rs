//! The error type of the readers and writers, with the location of every problem.

/// Error of the file readers and writers of [`crate::io`].
///
/// Every message starts with the file name (or the label given to an in-memory parser) and,
/// where it applies, the 1-based frame or model number and the 1-based line number (text
/// formats) or byte offset (DCD), followed by what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// The file could not be opened or read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// File name.
        file: String,
        /// Operating-system error.
        source: std::io::Error,
    },
    /// The file could not be created or written.
    #[error("{file}: cannot write: {source}")]
    Write {
        /// File name.
        file: String,
        /// Operating-system error.
        source: std::io::Error,
    },
    /// A text file holds bytes that are not UTF-8.
    #[error("{file}: line {line}: text is not valid UTF-8")]
    NotUtf8 {
        /// File name.
        file: String,
        /// 1-based line of the first invalid byte.
        line: usize,
    },
    /// An extended XYZ file is malformed.
    #[error("{file}: frame {frame}, line {line}: {problem}")]
    Xyz {
        /// File name.
        file: String,
        /// 1-based frame number.
        frame: usize,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        problem: XyzProblem,
    },
    /// A frame cannot be written as extended XYZ that reads back unchanged.
    #[error("{file}: frame {frame}: cannot write extended XYZ: {problem}")]
    XyzWrite {
        /// File name.
        file: String,
        /// 1-based frame number.
        frame: usize,
        /// What is wrong.
        problem: XyzWriteProblem,
    },
    /// A PDB file is malformed.
    #[error("{file}: {}line {line}: {problem}", model_prefix(.model))]
    Pdb {
        /// File name.
        file: String,
        /// MODEL serial number of the record, when the file has MODEL records.
        model: Option<u32>,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        problem: PdbProblem,
    },
    /// The requested model is not in the PDB file.
    #[error("{file}: no model {model} (the file holds models {available})")]
    ModelNotFound {
        /// File name.
        file: String,
        /// Requested MODEL serial number.
        model: u32,
        /// Serial numbers of the models in the file, comma-separated.
        available: String,
    },
    /// A DCD trajectory is malformed or unsupported.
    #[error("{file}: {}byte offset {offset}: {problem}", frame_prefix(.frame))]
    Dcd {
        /// File name.
        file: String,
        /// 1-based frame number, for problems inside a frame.
        frame: Option<usize>,
        /// Byte offset of the record where the problem was found.
        offset: u64,
        /// What is wrong.
        problem: DcdProblem,
    },
    /// A residue name has no amino-acid token and unknown residues were refused.
    #[error(
        "unknown residue {residue_name} at chain '{chain_id}', residue {residue_seq}{}",
        insertion_suffix(.insertion_code)
    )]
    UnknownResidue {
        /// Residue name as written in the file.
        residue_name: String,
        /// Chain identifier.
        chain_id: char,
        /// Residue sequence number.
        residue_seq: i32,
        /// Insertion code.
        insertion_code: Option<char>,
    },
}

fn model_prefix(model: &Option<u32>) -> String {
    model.map_or_else(String::new, |serial| format!("model {serial}, "))
}

fn frame_prefix(frame: &Option<usize>) -> String {
    frame.map_or_else(String::new, |number| format!("frame {number}, "))
}

fn insertion_suffix(code: &Option<char>) -> String {
    code.map_or_else(String::new, String::from)
}

/// What is wrong in an extended XYZ file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum XyzProblem {
    /// The first line of a frame is not an atom count.
    #[error("expected the atom count (one non-negative integer), found '{found}'")]
    AtomCount {
        /// The line as found.
        found: String,
    },
    /// An atom line stands where the next frame's atom count should be.
    #[error(
        "expected the atom count of a new frame, found the atom line '{found}': \
         the previous frame has more atom lines than its atom count says"
    )]
    ExtraAtomLine {
        /// The line as found.
        found: String,
    },
    /// The file ends after the atom count line.
    #[error("the file ends before the comment line")]
    MissingComment,
    /// The file ends inside the atom lines of a frame.
    #[error("the file ends after {found} of {expected} atom lines")]
    Truncated {
        /// Atom count of the frame.
        expected: usize,
        /// Atom lines present.
        found: usize,
    },
    /// A lone integer stands where an atom line should be.
    #[error(
        "expected atom line {atom} of {expected}, found the lone integer '{found}': \
         the atom count is larger than the number of atom lines"
    )]
    MissingAtomLines {
        /// 1-based index of the expected atom.
        atom: usize,
        /// Atom count of the frame.
        expected: usize,
        /// The line as found.
        found: String,
    },
    /// The `Properties=` specification cannot be used.
    #[error("invalid Properties spec '{spec}': {reason}")]
    PropertiesSpec {
        /// The specification as written.
        spec: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The `key=value` pairs of the comment line cannot be parsed.
    #[error("invalid key=value comment line: {reason}")]
    KeyValue {
        /// Why it is invalid.
        reason: String,
    },
    /// An element symbol is not in the periodic table.
    #[error("unknown element '{symbol}'")]
    UnknownElement {
        /// The symbol as found.
        symbol: String,
    },
    /// An atom line has the wrong number of whitespace-separated fields.
    #[error("atom line has {found} fields, the Properties spec needs {expected}")]
    FieldCount {
        /// Fields required by the Properties spec.
        expected: usize,
        /// Fields present.
        found: usize,
    },
    /// A field of an atom line does not parse as the type of its column.
    #[error("field {field} (column '{column}'): expected {expected}, found '{found}'")]
    BadField {
        /// Column name from the Properties spec.
        column: String,
        /// 1-based field position on the line.
        field: usize,
        /// Expected kind of value.
        expected: &'static str,
        /// The field as found.
        found: String,
    },
    /// A position is NaN or infinite.
    #[error("the position of atom {atom} is not finite")]
    NonFinitePosition {
        /// 1-based atom index in the frame.
        atom: usize,
    },
    /// A record in the layout of the original QM9 release is malformed.
    #[error("invalid QM9 record: {reason}")]
    Qm9 {
        /// Why it is invalid.
        reason: String,
    },
    /// The cell, the periodic boundary conditions or the stress of the frame are invalid.
    #[error("{0}")]
    Periodic(PeriodicProblem),
}

/// What is wrong with the periodic data of an extended XYZ frame: `Lattice`, `pbc`,
/// `stress` or `virial` (see [`crate::io::extxyz`] for the conventions).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PeriodicProblem {
    /// `Lattice` is not nine numbers.
    #[error(
        "'Lattice' must be 9 real numbers (the lattice vectors a, b, c as rows), found {found}"
    )]
    LatticeShape {
        /// What the value is instead (e.g. `6 numbers`).
        found: String,
    },
    /// `Lattice` has a non-finite component or (nearly) no volume.
    #[error("'Lattice' is not a usable cell: {0}")]
    Cell(atoms::CellError),
    /// `pbc` is not one or three logicals.
    #[error("'pbc' must be 1 or 3 logicals (T or F), found {found}")]
    PbcShape {
        /// What the value is instead.
        found: String,
    },
    /// A direction is periodic but there are no lattice vectors.
    #[error("'pbc' is \"{pbc}\" but the frame has no 'Lattice'")]
    PbcWithoutLattice {
        /// The flags as written by the writer (e.g. `T T F`).
        pbc: String,
    },
    /// `stress` or `virial` is not nine or six numbers.
    #[error(
        "'{key}' must be 9 (3x3, row-major) or 6 (Voigt order xx yy zz yz xz xy) real \
         numbers, found {found}"
    )]
    StressShape {
        /// `stress` or `virial`.
        key: &'static str,
        /// What the value is instead.
        found: String,
    },
    /// `stress` or `virial` has a NaN or infinite component.
    #[error("'{key}' has a non-finite component")]
    NonFiniteStress {
        /// `stress` or `virial`.
        key: &'static str,
    },
    /// A nine-component `stress` or `virial` is not symmetric.
    #[error(
        "'{key}' is not symmetric: component ({row}, {column}) is {upper:e}, \
         ({column}, {row}) is {lower:e}"
    )]
    AsymmetricStress {
        /// `stress` or `virial`.
        key: &'static str,
        /// 1-based row of the upper component.
        row: usize,
        /// 1-based column of the upper component.
        column: usize,
        /// The component `(row, column)`.
        upper: f64,
        /// The component `(column, row)`.
        lower: f64,
    },
    /// A `virial` without lattice vectors, so without the volume that turns it into a stress.
    #[error("'virial' needs a 'Lattice': the stress is -virial / volume")]
    VirialWithoutLattice,
}

/// Why a frame cannot be written as extended XYZ.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum XyzWriteProblem {
    /// Positions or a per-atom array do not match the atom count.
    #[error("'{name}' holds {found} values, expected {expected}")]
    Length {
        /// Name of the positions or of the array.
        name: String,
        /// Values expected from the atom count.
        expected: usize,
        /// Values present.
        found: usize,
    },
    /// An atomic number has no element symbol.
    #[error("atomic number {0} is not an element (1..=118)")]
    AtomicNumber(u8),
    /// A key or array name cannot be written.
    #[error("name '{name}' cannot be written: {reason}")]
    Name {
        /// The name.
        name: String,
        /// Why not.
        reason: &'static str,
    },
    /// A value would read back as something else.
    #[error("value '{value}' of '{name}' would not read back unchanged: {reason}")]
    Value {
        /// Key or array name.
        name: String,
        /// The value.
        value: String,
        /// Why not.
        reason: &'static str,
    },
    /// The cell, the periodic boundary conditions or the stress would not read back.
    #[error("{0}")]
    Periodic(PeriodicProblem),
}

/// What is wrong in a PDB file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PdbProblem {
    /// An ATOM or HETATM record is too short to hold its coordinates.
    #[error("{record} record is {length} characters long; coordinates need columns 31-54")]
    ShortRecord {
        /// Record name.
        record: &'static str,
        /// Length of the line.
        length: usize,
    },
    /// An ATOM or HETATM record holds a non-ASCII character.
    #[error("record holds a non-ASCII character")]
    NonAscii,
    /// A fixed-column field does not parse.
    #[error("{field} (columns {columns}): cannot parse '{found}'")]
    BadField {
        /// Field name.
        field: &'static str,
        /// 1-based column range.
        columns: &'static str,
        /// The field as found.
        found: String,
    },
    /// The element field (columns 77-78) is not an element symbol.
    #[error("unknown element '{symbol}' in columns 77-78")]
    UnknownElement {
        /// The field as found.
        symbol: String,
    },
    /// No element in columns 77-78 and none can be inferred from the atom name.
    #[error("no element in columns 77-78 and none can be inferred from atom name '{atom_name}'")]
    ElementNotInferred {
        /// Atom name (columns 13-16).
        atom_name: String,
    },
    /// A MODEL record opens a model while another one is open.
    #[error("MODEL record while model {open} is still open (missing ENDMDL)")]
    NestedModel {
        /// Serial number of the open model.
        open: u32,
    },
    /// Two models share a serial number.
    #[error("model {serial} appears twice")]
    DuplicateModel {
        /// The repeated serial number.
        serial: u32,
    },
    /// An ENDMDL record closes no model.
    #[error("ENDMDL record without an open MODEL")]
    UnmatchedEndmdl,
    /// Atoms stand outside the MODEL/ENDMDL blocks of a file that has them.
    #[error("atom record outside MODEL/ENDMDL in a file with MODEL records")]
    AtomOutsideModel,
    /// The file holds no ATOM or HETATM record.
    #[error("no ATOM or HETATM records")]
    NoAtoms,
}

/// What is wrong in a DCD trajectory.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DcdProblem {
    /// The file does not start with the marker of the 84-byte header record.
    #[error(
        "not a DCD file: the first bytes are no 84-byte header record marker \
         (4- or 8-byte, little- or big-endian)"
    )]
    UnknownMarker,
    /// The header record does not start with `CORD`.
    #[error("header record starts with {found:?}, expected \"CORD\"")]
    NotCord {
        /// The first four bytes of the header record.
        found: String,
    },
    /// The file ends inside a record.
    #[error("the file ends inside the {record} record: {needed} bytes needed, {available} left")]
    Truncated {
        /// Which record.
        record: &'static str,
        /// Bytes the record needs, markers included.
        needed: u64,
        /// Bytes left in the file.
        available: u64,
    },
    /// The markers before and after a record differ.
    #[error("{record} record markers differ: {leading} before, {trailing} after")]
    MarkerMismatch {
        /// Which record.
        record: &'static str,
        /// Length stored before the record.
        leading: u64,
        /// Length stored after the record.
        trailing: u64,
    },
    /// A record has the wrong length.
    #[error("{record} record is {found} bytes long, expected {expected}")]
    RecordLength {
        /// Which record.
        record: &'static str,
        /// Expected length in bytes.
        expected: u64,
        /// Length found.
        found: u64,
    },
    /// The header announces fixed atoms.
    #[error("{count} fixed atoms: DCD files with fixed atoms are not supported")]
    FixedAtoms {
        /// Number of fixed atoms in the header.
        count: i32,
    },
    /// The atom count record holds no positive count.
    #[error("invalid atom count {found}")]
    AtomCount {
        /// The count as stored.
        found: i64,
    },
    /// The trajectory and the structure it is read with differ in atom count.
    #[error("the trajectory holds {trajectory} atoms, the structure {structure}")]
    StructureMismatch {
        /// Atoms per frame in the trajectory.
        trajectory: usize,
        /// Atoms in the structure.
        structure: usize,
    },
}
