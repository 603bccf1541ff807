//! Protein Data Bank files: a fixed-column reader of ATOM/HETATM records and models.
//!
//! Records read: `ATOM`, `HETATM`, `MODEL`, `ENDMDL` and `END` (which stops reading); `TER` and
//! every other record are skipped. A file without `MODEL` records is one model with serial 1.
//! Of alternate locations (column 17), the first location met in each residue is kept (`A` in
//! files that list it first) and the others are dropped. The element is read from columns
//! 77-78 or, when they are blank, inferred from the atom name: a monatomic ion whose atom name
//! is its residue name (`NA`, `CL`, CHARMM's `SOD`, `CLA`, ...), else the first letter after
//! a blank or digit in column 13, else for HETATM a two-letter symbol in columns 13-14 (`FE`)
//! and for ATOM the letter in column 13 (`HG21` is hydrogen). Serial and residue numbers may be
//! decimal or hybrid-36. Records removed by the filters of [`PdbOptions`] are not parsed
//! beyond their record type and residue name.

mod parser;
mod residues;

use std::path::Path;

pub use residues::{
    backbone, residue_token, BackboneResidue, UnknownResidues, AMINO_ACIDS, UNKNOWN_RESIDUE_TOKEN,
};

use super::text::read_text;
use super::IoError;

/// Residue names treated as water by [`PdbOptions::skip_water`].
pub const WATER_RESIDUES: [&str; 11] = [
    "HOH", "WAT", "TIP3", "SOL", "DOD", "H2O", "TIP", "TIP4", "TIP5", "SPC", "T3P",
];

/// Residue names treated as monatomic ions by [`PdbOptions::skip_ions`] (PDB names and the
/// CHARMM names `SOD`, `POT`, `CLA`, `CAL`, `CES`, `LIT`, `ZN2`).
pub const ION_RESIDUES: [&str; 32] = [
    "NA", "CL", "K", "MG", "CA", "ZN", "MN", "FE", "FE2", "CU", "CU1", "CO", "NI", "CD", "LI",
    "CS", "RB", "SR", "BA", "HG", "BR", "IOD", "F", "NA+", "CL-", "SOD", "POT", "CLA", "CAL",
    "CES", "LIT", "ZN2",
];

/// Whether a residue name is one of [`WATER_RESIDUES`].
pub fn is_water(residue_name: &str) -> bool {
    WATER_RESIDUES.contains(&residue_name)
}

/// Whether a residue name is one of [`ION_RESIDUES`].
pub fn is_ion(residue_name: &str) -> bool {
    ION_RESIDUES.contains(&residue_name)
}

/// One ATOM or HETATM record.
#[derive(Debug, Clone, PartialEq)]
pub struct PdbAtom {
    /// Atom serial number (columns 7-11).
    pub serial: u32,
    /// Atom name without surrounding blanks (columns 13-16), e.g. `CA`.
    pub name: String,
    /// Alternate location indicator (column 17), `None` when blank.
    pub alt_loc: Option<char>,
    /// Residue name without surrounding blanks (columns 18-21), e.g. `ALA` or `TIP3`.
    pub residue_name: String,
    /// Chain identifier (column 22), `' '` when blank.
    pub chain_id: char,
    /// Residue sequence number (columns 23-26).
    pub residue_seq: i32,
    /// Insertion code (column 27), `None` when blank.
    pub insertion_code: Option<char>,
    /// Cartesian coordinates in Angstrom (columns 31-54).
    pub position: [f64; 3],
    /// Atomic number of the element; 0 for the massless sites of 4- and 5-site water models
    /// (`MW`, `OM`, `EPW`, `EP1`, `EP2`, `LP1`, `LP2` in a water residue).
    pub element: u8,
    /// Whether the record is HETATM.
    pub is_hetero: bool,
}

/// The atoms of one MODEL (or of the whole file when it has no MODEL records).
#[derive(Debug, Clone, PartialEq)]
pub struct PdbModel {
    /// MODEL serial number; 1 for a file without MODEL records.
    pub serial: u32,
    /// Atoms in file order, after the filters of [`PdbOptions`].
    pub atoms: Vec<PdbAtom>,
}

impl PdbModel {
    /// Coordinates of every atom, in order.
    pub fn positions(&self) -> Vec<[f64; 3]> {
        self.atoms.iter().map(|atom| atom.position).collect()
    }

    /// Atomic numbers of every atom, in order.
    pub fn atomic_numbers(&self) -> Vec<u8> {
        self.atoms.iter().map(|atom| atom.element).collect()
    }

    /// The atoms grouped into residues: runs of consecutive atoms with the same chain, residue
    /// number, insertion code and residue name.
    pub fn residues(&self) -> Vec<&[PdbAtom]> {
        self.atoms
            .chunk_by(|a, b| {
                (a.chain_id, a.residue_seq, a.insertion_code, &a.residue_name)
                    == (b.chain_id, b.residue_seq, b.insertion_code, &b.residue_name)
            })
            .collect()
    }
}

/// A PDB file: its models in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct PdbStructure {
    /// The models; exactly one when the file has no MODEL records or a model was selected.
    pub models: Vec<PdbModel>,
}

/// Which atoms and models [`read_pdb`] keeps. The default keeps everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PdbOptions {
    /// Drop HETATM records.
    pub skip_hetero: bool,
    /// Drop residues named in [`WATER_RESIDUES`].
    pub skip_water: bool,
    /// Drop residues named in [`ION_RESIDUES`].
    pub skip_ions: bool,
    /// Keep only the model with this MODEL serial number (1 for a file without MODEL records);
    /// an absent model is an error.
    pub model: Option<u32>,
}

impl PdbOptions {
    /// Whether an atom of this residue and record type passes the hetero, water and ion
    /// filters.
    pub fn keeps(&self, residue_name: &str, is_hetero: bool) -> bool {
        !(self.skip_hetero && is_hetero
            || self.skip_water && is_water(residue_name)
            || self.skip_ions && is_ion(residue_name))
    }
}

/// Reads a PDB file.
///
/// Errors name the file, the model and the line: a record too short for its coordinates, a
/// field that does not parse, an unknown element, unbalanced MODEL/ENDMDL records, a missing
/// requested model or a file without atoms.
pub fn read_pdb(path: impl AsRef<Path>, options: &PdbOptions) -> Result<PdbStructure, IoError> {
    let path = path.as_ref();
    let text = read_text(path)?;
    parse_pdb(&text, &path.display().to_string(), options)
}

/// Parses PDB text; `file` names the source in errors.
pub fn parse_pdb(text: &str, file: &str, options: &PdbOptions) -> Result<PdbStructure, IoError> {
    let mut models = parser::parse_models(text, file, options)?;
    if let Some(serial) = options.model {
        let available: Vec<String> = models
            .iter()
            .map(|model| model.serial.to_string())
            .collect();
        models.retain(|model| model.serial == serial);
        if models.is_empty() {
            return Err(IoError::ModelNotFound {
                file: file.to_owned(),
                model: serial,
                available: available.join(", "),
            });
        }
    }
    Ok(PdbStructure { models })
}

#[cfg(test)]
mod tests {
    use super::parser::tests::record;
    use super::*;

    fn protein(name: &str, options: &PdbOptions) -> PdbStructure {
        let path = format!("{}/../../data/proteins/{name}", env!("CARGO_MANIFEST_DIR"));
        read_pdb(path, options).expect("readable PDB file")
    }

    fn protein_only() -> PdbOptions {
        PdbOptions {
            skip_hetero: true,
            skip_water: true,
            skip_ions: true,
            model: None,
        }
    }

    #[test]
    fn adenylate_kinase() {
        for name in ["adk_open.pdb", "adk_closed.pdb"] {
            let structure = protein(name, &PdbOptions::default());
            assert_eq!(structure.models.len(), 1);
            let model = &structure.models[0];
            assert_eq!(model.atoms.len(), 3341);
            assert_eq!(model.residues().len(), 214);
            let residues = backbone(model, UnknownResidues::Error).expect("standard residues");
            assert_eq!(residues.len(), 214);
            let mut counts = [0; 19];
            for atom in &model.atoms {
                counts[usize::from(atom.element)] += 1;
            }
            assert_eq!(
                (counts[1], counts[6], counts[7], counts[8], counts[16]),
                (1685, 1040, 289, 320, 7)
            );
        }
        let open = protein("adk_open.pdb", &PdbOptions::default());
        let first = &open.models[0].atoms[0];
        assert_eq!(
            (
                first.serial,
                first.name.as_str(),
                first.residue_name.as_str()
            ),
            (1, "N", "MET")
        );
        assert_eq!(
            (first.chain_id, first.residue_seq, first.position),
            (' ', 1, [-11.921, 26.307, 10.41])
        );
        let histidines = backbone(&open.models[0], UnknownResidues::Error)
            .expect("standard residues")
            .iter()
            .filter(|residue| residue.residue_name == "HSD" && residue.token == 8)
            .count();
        assert!(histidines > 0);
    }

    #[test]
    fn protease_dimer_with_modified_residues_and_ligand() {
        let structure = protein("1hvr.pdb", &PdbOptions::default());
        let model = &structure.models[0];
        assert_eq!(model.atoms.len(), 1890);
        assert_eq!(model.atoms.iter().filter(|atom| atom.is_hetero).count(), 64);
        let residues = backbone(model, UnknownResidues::Token).expect("tokens");
        assert_eq!(residues.len(), 198);
        for chain in ['A', 'B'] {
            assert_eq!(
                residues
                    .iter()
                    .filter(|residue| residue.chain_id == chain)
                    .count(),
                99
            );
        }
        let unknown: Vec<&str> = residues
            .iter()
            .filter(|residue| residue.token == UNKNOWN_RESIDUE_TOKEN)
            .map(|residue| residue.residue_name.as_str())
            .collect();
        assert_eq!(unknown, ["CSO", "CSO"]);
        let error = backbone(model, UnknownResidues::Error).expect_err("CSO has no token");
        assert!(
            error
                .to_string()
                .starts_with("unknown residue CSO at chain 'A'"),
            "{error}"
        );
        let without_hetero = protein("1hvr.pdb", &protein_only());
        assert_eq!(without_hetero.models[0].atoms.len(), 1826);
        assert_eq!(
            backbone(&without_hetero.models[0], UnknownResidues::Error)
                .map(|r| r.len())
                .ok(),
            Some(196)
        );
    }

    #[test]
    fn nmr_ensemble_models() {
        let structure = protein("nmr_neopetrosiamide.pdb", &PdbOptions::default());
        let serials: Vec<u32> = structure.models.iter().map(|model| model.serial).collect();
        assert_eq!(serials, (1..=24).collect::<Vec<_>>());
        assert!(structure
            .models
            .iter()
            .all(|model| model.atoms.len() == 392));
        let residues = backbone(&structure.models[0], UnknownResidues::Token).expect("tokens");
        assert_eq!(residues.len(), 28);
        assert_eq!(residues[23].residue_name, "SME");
        let options = PdbOptions {
            model: Some(5),
            ..protein_only()
        };
        let fifth = protein("nmr_neopetrosiamide.pdb", &options);
        assert_eq!(fifth.models.len(), 1);
        assert_eq!(fifth.models[0].serial, 5);
        assert_eq!(fifth.models[0].atoms.len(), 374);
        assert_eq!(
            backbone(&fifth.models[0], UnknownResidues::Error)
                .map(|r| r.len())
                .ok(),
            Some(27)
        );
        assert_ne!(
            fifth.models[0].positions(),
            structure.models[0].positions()[..374].to_vec()
        );

        let path = format!(
            "{}/../../data/proteins/nmr_neopetrosiamide.pdb",
            env!("CARGO_MANIFEST_DIR")
        );
        let options = PdbOptions {
            model: Some(25),
            ..PdbOptions::default()
        };
        let error = read_pdb(&path, &options).expect_err("no model 25");
        assert!(error.to_string().ends_with("no model 25 (the file holds models 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24)"), "{error}");
    }

    #[test]
    fn crystal_structures() {
        for (name, atoms, backbone_residues) in [
            ("1a28.pdb", 4262, 500),
            ("1osm.pdb", 1431, 185),
            ("1grm_single.pdb", 272, 30),
            ("4E43.pdb", 1843, 204),
        ] {
            let structure = protein(name, &PdbOptions::default());
            let model = &structure.models[0];
            assert_eq!(model.atoms.len(), atoms, "{name}");
            let residues = backbone(model, UnknownResidues::Error).expect("standard residues");
            assert_eq!(residues.len(), backbone_residues, "{name}");
        }
        let gramicidin = protein("1grm_single.pdb", &protein_only());
        assert_eq!(gramicidin.models[0].atoms.len(), 264);
        // 4E43 lists alternate locations A and B for 34 atoms, among them 7 CA atoms.
        let alternates = protein("4E43.pdb", &protein_only());
        let atoms = &alternates.models[0].atoms;
        assert_eq!(
            atoms
                .iter()
                .filter(|atom| atom.alt_loc == Some('A'))
                .count(),
            34
        );
        assert!(atoms.iter().all(|atom| atom.alt_loc != Some('B')));
        assert!(atoms
            .iter()
            .all(|atom| !is_water(&atom.residue_name) && !atom.is_hetero));
    }

    #[test]
    fn solvated_protein_filters() {
        let text = [
            record(false, 1, " N   ", "GLY", 1, [0.0, 0.0, 0.0], ""),
            record(false, 2, " CA  ", "GLY", 1, [1.4, 0.0, 0.0], ""),
            record(false, 3, " C   ", "GLY", 1, [2.0, 1.3, 0.0], ""),
            record(false, 4, " OW  ", "SOL", 2, [5.0, 5.0, 5.0], ""),
            record(false, 5, " MW  ", "SOL", 2, [5.1, 5.0, 5.0], ""),
            record(false, 6, " NA  ", " NA", 3, [9.0, 9.0, 9.0], ""),
            record(true, 7, "CL   ", " CL", 4, [8.0, 9.0, 9.0], ""),
            record(true, 8, " C1  ", "LIG", 5, [7.0, 9.0, 9.0], ""),
        ]
        .join("\n");
        let all = parse_pdb(&text, "box.pdb", &PdbOptions::default()).expect("valid");
        assert_eq!(
            all.models[0].atomic_numbers(),
            vec![7, 6, 6, 8, 0, 11, 17, 6]
        );
        let kept = |options: PdbOptions| {
            let structure = parse_pdb(&text, "box.pdb", &options).expect("valid");
            structure.models[0]
                .atoms
                .iter()
                .map(|atom| atom.serial)
                .collect::<Vec<_>>()
        };
        assert_eq!(kept(protein_only()), vec![1, 2, 3]);
        assert_eq!(
            kept(PdbOptions {
                skip_water: true,
                ..PdbOptions::default()
            }),
            vec![1, 2, 3, 6, 7, 8]
        );
        assert_eq!(
            kept(PdbOptions {
                skip_ions: true,
                ..PdbOptions::default()
            }),
            vec![1, 2, 3, 4, 5, 8]
        );
        assert_eq!(
            kept(PdbOptions {
                skip_hetero: true,
                ..PdbOptions::default()
            }),
            vec![1, 2, 3, 4, 5, 6]
        );
    }
}
