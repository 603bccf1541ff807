//! Readers of atomistic data files: extended XYZ (with a writer), PDB and DCD, plus the
//! periodic table.
//!
//! The readers never panic on malformed input: they return an [`IoError`] whose message names
//! the file, the frame or model where it applies, and the 1-based line (or, for DCD, the byte
//! offset) of the problem.
//!
//! ```
//! use equi_train::io::extxyz::{format_extxyz, parse_extxyz};
//! use equi_train::io::pdb::{backbone, parse_pdb, PdbOptions, UnknownResidues};
//!
//! let text = "2\nProperties=species:S:1:pos:R:3:forces:R:3 energy=-1.5 pbc=\"F F F\"\n\
//!             O 0.0 0.0 0.0 0.1 0.0 0.0\nH 0.0 0.0 0.96 -0.1 0.0 0.0\n";
//! let frames = parse_extxyz(text, "water.xyz")?;
//! assert_eq!(frames[0].atomic_numbers, vec![8, 1]);
//! assert_eq!(frames[0].energy(), Some(-1.5));
//! assert_eq!(frames[0].forces().map(|forces| forces[1]), Some([-0.1, 0.0, 0.0]));
//! assert_eq!(parse_extxyz(&format_extxyz(&frames)?, "copy.xyz")?, frames);
//!
//! let error = parse_extxyz("2\n\nO 0 0 0\nQq 0 0 1\n", "bad.xyz").unwrap_err();
//! assert_eq!(error.to_string(), "bad.xyz: frame 1, line 4: unknown element 'Qq'");
//!
//! let pdb = "\
//! ATOM      1  N   GLY A   1      -1.195   0.740   0.000  1.00  0.00           N
//! ATOM      2  CA  GLY A   1       0.000   0.000   0.000  1.00  0.00           C
//! ATOM      3  C   GLY A   1       1.225   0.870   0.000  1.00  0.00           C
//! HETATM    4  O   HOH A   2       5.000   5.000   5.000  1.00  0.00           O
//! END
//! ";
//! let options = PdbOptions { skip_water: true, ..PdbOptions::default() };
//! let structure = parse_pdb(pdb, "gly.pdb", &options)?;
//! assert_eq!(structure.models[0].atoms.len(), 3);
//! let residues = backbone(&structure.models[0], UnknownResidues::Token)?;
//! assert_eq!((residues[0].token, residues[0].ca), (7, [0.0, 0.0, 0.0]));
//! # Ok::<(), equi_train::io::IoError>(())
//! ```

pub mod dcd;
pub mod elements;
mod error;
pub mod extxyz;
pub mod pdb;
mod text;

pub use error::{DcdProblem, IoError, PdbProblem, PeriodicProblem, XyzProblem, XyzWriteProblem};
