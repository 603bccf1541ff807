//! Amino-acid tokens and backbone (N, CA, C) extraction for protein tasks.

use super::{PdbAtom, PdbModel};
use crate::io::IoError;

/// The 20 standard amino acids; the token of `AMINO_ACIDS[i]` is `i` (alphabetical by
/// three-letter code: ALA 0, ARG 1, ASN 2, ASP 3, CYS 4, GLN 5, GLU 6, GLY 7, HIS 8, ILE 9,
/// LEU 10, LYS 11, MET 12, PHE 13, PRO 14, SER 15, THR 16, TRP 17, TYR 18, VAL 19).
pub const AMINO_ACIDS: [&str; 20] = [
    "ALA", "ARG", "ASN", "ASP", "CYS", "GLN", "GLU", "GLY", "HIS", "ILE", "LEU", "LYS", "MET",
    "PHE", "PRO", "SER", "THR", "TRP", "TYR", "VAL",
];

/// Token of a residue that is none of [`AMINO_ACIDS`] (nor one of their variant names).
pub const UNKNOWN_RESIDUE_TOKEN: u8 = 20;

/// Variant names of standard amino acids: protonation states (CHARMM `HSD`, `HSE`, `HSP`;
/// Amber `HID`, `HIE`, `HIP`, `CYX`, `CYM`, `ASH`, `GLH`, `LYN`) and selenomethionine (`MSE`).
const VARIANTS: [(&str, &str); 12] = [
    ("HSD", "HIS"),
    ("HSE", "HIS"),
    ("HSP", "HIS"),
    ("HID", "HIS"),
    ("HIE", "HIS"),
    ("HIP", "HIS"),
    ("CYX", "CYS"),
    ("CYM", "CYS"),
    ("ASH", "ASP"),
    ("GLH", "GLU"),
    ("LYN", "LYS"),
    ("MSE", "MET"),
];

/// Token `0..=19` of a standard amino acid or of one of its variant names (`HSD` is HIS, 8;
/// `MSE` is MET, 12); `None` for any other residue name.
///
/// ```
/// use equi_train::io::pdb::residue_token;
/// assert_eq!(residue_token("ALA"), Some(0));
/// assert_eq!(residue_token("HSD"), Some(8));
/// assert_eq!(residue_token("HOH"), None);
/// ```
pub fn residue_token(residue_name: &str) -> Option<u8> {
    let name = VARIANTS
        .iter()
        .find(|(variant, _)| *variant == residue_name)
        .map_or(residue_name, |(_, standard)| standard);
    AMINO_ACIDS
        .iter()
        .position(|amino_acid| *amino_acid == name)
        .and_then(|token| u8::try_from(token).ok())
}

/// What [`backbone`] does with a residue that has no amino-acid token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UnknownResidues {
    /// Give it [`UNKNOWN_RESIDUE_TOKEN`].
    #[default]
    Token,
    /// Fail with [`IoError::UnknownResidue`].
    Error,
}

/// The backbone atoms of one residue.
#[derive(Debug, Clone, PartialEq)]
pub struct BackboneResidue {
    /// Chain identifier, `' '` when blank.
    pub chain_id: char,
    /// Residue sequence number.
    pub residue_seq: i32,
    /// Insertion code.
    pub insertion_code: Option<char>,
    /// Residue name as written in the file.
    pub residue_name: String,
    /// Amino-acid token (see [`AMINO_ACIDS`]) or [`UNKNOWN_RESIDUE_TOKEN`].
    pub token: u8,
    /// Position of the amide nitrogen N.
    pub n: [f64; 3],
    /// Position of the alpha carbon CA.
    pub ca: [f64; 3],
    /// Position of the carbonyl carbon C.
    pub c: [f64; 3],
}

/// The N, CA and C atoms of every residue of a model that has all three, in file order.
///
/// Residues are the runs of [`PdbModel::residues`]; the first atom of each name counts.
/// Residues missing any of the three atoms (waters, ions, most ligands, truncated termini) are
/// skipped; a residue with the three atoms and a name without token gets
/// [`UNKNOWN_RESIDUE_TOKEN`] or an error, as `unknown` says.
pub fn backbone(
    model: &PdbModel,
    unknown: UnknownResidues,
) -> Result<Vec<BackboneResidue>, IoError> {
    let mut residues = Vec::new();
    for atoms in model.residues() {
        let find = |name: &str| {
            atoms
                .iter()
                .find(|atom| atom.name == name)
                .map(|atom| atom.position)
        };
        let (Some(n), Some(ca), Some(c)) = (find("N"), find("CA"), find("C")) else {
            continue;
        };
        let first: &PdbAtom = &atoms[0];
        let token = match (residue_token(&first.residue_name), unknown) {
            (Some(token), _) => token,
            (None, UnknownResidues::Token) => UNKNOWN_RESIDUE_TOKEN,
            (None, UnknownResidues::Error) => {
                return Err(IoError::UnknownResidue {
                    residue_name: first.residue_name.clone(),
                    chain_id: first.chain_id,
                    residue_seq: first.residue_seq,
                    insertion_code: first.insertion_code,
                })
            }
        };
        residues.push(BackboneResidue {
            chain_id: first.chain_id,
            residue_seq: first.residue_seq,
            insertion_code: first.insertion_code,
            residue_name: first.residue_name.clone(),
            token,
            n,
            ca,
            c,
        });
    }
    Ok(residues)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::pdb::{parse_pdb, PdbOptions};

    const PEPTIDE: &str = "\
ATOM      1  N   ALA A   1      11.104   6.134  -6.504  1.00  0.00           N
ATOM      2  CA  ALA A   1      11.639   6.071  -5.147  1.00  0.00           C
ATOM      3  C   ALA A   1      13.149   6.197  -5.087  1.00  0.00           C
ATOM      4  O   ALA A   1      13.741   6.931  -5.875  1.00  0.00           O
ATOM      5  N   HSD A   2      13.766   5.456  -4.169  1.00  0.00           N
ATOM      6  CA  HSD A   2      15.211   5.470  -4.022  1.00  0.00           C
ATOM      7  C   HSD A   2      15.780   6.809  -3.558  1.00  0.00           C
ATOM      8  N   ORN A   2A     16.111   7.201  -2.999  1.00  0.00           N
ATOM      9  CA  ORN A   2A     17.000   8.000  -2.000  1.00  0.00           C
ATOM     10  C   ORN A   2A     18.000   8.500  -1.000  1.00  0.00           C
ATOM     11  N   GLY B   1      20.000   9.000   0.000  1.00  0.00           N
ATOM     12  CA  GLY B   1      21.000   9.500   0.500  1.00  0.00           C
HETATM   13  O   HOH B 101      25.000  10.000   1.000  1.00  0.00           O
";

    fn model() -> PdbModel {
        let structure =
            parse_pdb(PEPTIDE, "peptide.pdb", &PdbOptions::default()).expect("valid records");
        structure.models[0].clone()
    }

    #[test]
    fn tokens_of_standard_and_variant_names() {
        for (token, name) in AMINO_ACIDS.iter().enumerate() {
            assert_eq!(residue_token(name), u8::try_from(token).ok());
        }
        assert_eq!(residue_token("HIE"), Some(8));
        assert_eq!(residue_token("MSE"), Some(12));
        assert_eq!(residue_token("ala"), None);
        assert_eq!(residue_token("SME"), None);
    }

    #[test]
    fn backbone_of_complete_residues_in_order() {
        let model = model();
        assert_eq!(model.residues().len(), 5);
        let residues = backbone(&model, UnknownResidues::Token).expect("tokens for all");
        let summary: Vec<(char, i32, Option<char>, u8)> = residues
            .iter()
            .map(|r| (r.chain_id, r.residue_seq, r.insertion_code, r.token))
            .collect();
        assert_eq!(
            summary,
            vec![
                ('A', 1, None, 0),
                ('A', 2, None, 8),
                ('A', 2, Some('A'), UNKNOWN_RESIDUE_TOKEN)
            ]
        );
        assert_eq!(residues[1].n, [13.766, 5.456, -4.169]);
        assert_eq!(residues[1].ca, [15.211, 5.47, -4.022]);
        assert_eq!(residues[1].c, [15.78, 6.809, -3.558]);
    }

    #[test]
    fn unknown_residues_on_request() {
        let error = backbone(&model(), UnknownResidues::Error).expect_err("ORN has no token");
        assert!(matches!(
            error,
            IoError::UnknownResidue { residue_seq: 2, .. }
        ));
        assert_eq!(
            error.to_string(),
            "unknown residue ORN at chain 'A', residue 2A"
        );
    }
}
