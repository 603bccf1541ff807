//! Record-by-record parsing of PDB text.

use std::collections::HashMap;

use super::{is_water, PdbAtom, PdbModel, PdbOptions};
use crate::io::elements::atomic_number;
use crate::io::{IoError, PdbProblem};

/// CHARMM names of monatomic ions and their elements.
const CHARMM_IONS: [(&str, &str); 7] = [
    ("SOD", "Na"),
    ("POT", "K"),
    ("CLA", "Cl"),
    ("CAL", "Ca"),
    ("CES", "Cs"),
    ("LIT", "Li"),
    ("ZN2", "Zn"),
];

/// Names of the massless sites of 4- and 5-site water models, which get element 0.
const WATER_VIRTUAL_SITES: [&str; 7] = ["MW", "OM", "EPW", "EP1", "EP2", "LP1", "LP2"];

/// The model atoms are added to.
enum OpenModel {
    /// No model is open.
    None,
    /// Atoms before any MODEL record, in a file that may have none.
    Implicit,
    /// Inside MODEL ... ENDMDL.
    Explicit,
}

pub(super) fn parse_models(
    text: &str,
    file: &str,
    options: &PdbOptions,
) -> Result<Vec<PdbModel>, IoError> {
    let mut models: Vec<PdbModel> = Vec::new();
    let mut open = OpenModel::None;
    let mut saw_model_record = false;
    let mut saw_atom = false;
    // Alternate location kept for each residue (chain, number, insertion code) of the model.
    let mut kept_alt_loc: HashMap<(char, i32, Option<char>), char> = HashMap::new();
    let mut last_line = 0;
    for (index, line) in text.lines().enumerate() {
        last_line = index + 1;
        let fail = |model: Option<u32>, problem: PdbProblem| IoError::Pdb {
            file: file.to_owned(),
            model,
            line: index + 1,
            problem,
        };
        let current_serial = match open {
            OpenModel::Explicit => models.last().map(|model| model.serial),
            _ => None,
        };
        let record = line.get(..6).unwrap_or(line).trim_end();
        match record {
            "MODEL" => {
                match open {
                    OpenModel::Explicit => {
                        let open = current_serial.unwrap_or_default();
                        return Err(fail(current_serial, PdbProblem::NestedModel { open }));
                    }
                    OpenModel::Implicit => return Err(fail(None, PdbProblem::AtomOutsideModel)),
                    OpenModel::None => {}
                }
                let serial = parse_model_serial(line, models.len())
                    .map_err(|problem| fail(None, problem))?;
                if models.iter().any(|model| model.serial == serial) {
                    return Err(fail(Some(serial), PdbProblem::DuplicateModel { serial }));
                }
                models.push(PdbModel {
                    serial,
                    atoms: Vec::new(),
                });
                open = OpenModel::Explicit;
                saw_model_record = true;
                kept_alt_loc.clear();
            }
            "ENDMDL" => match open {
                OpenModel::Explicit => open = OpenModel::None,
                _ => return Err(fail(None, PdbProblem::UnmatchedEndmdl)),
            },
            "ATOM" | "HETATM" => {
                match open {
                    OpenModel::None if saw_model_record => {
                        return Err(fail(None, PdbProblem::AtomOutsideModel))
                    }
                    OpenModel::None => {
                        models.push(PdbModel {
                            serial: 1,
                            atoms: Vec::new(),
                        });
                        open = OpenModel::Implicit;
                    }
                    OpenModel::Implicit | OpenModel::Explicit => {}
                }
                saw_atom = true;
                let is_hetero = record == "HETATM";
                if !options.keeps(columns(line, 18, 21).trim(), is_hetero) {
                    continue;
                }
                let atom =
                    parse_atom(line, is_hetero).map_err(|problem| fail(current_serial, problem))?;
                if let Some(alt_loc) = atom.alt_loc {
                    let key = (atom.chain_id, atom.residue_seq, atom.insertion_code);
                    if *kept_alt_loc.entry(key).or_insert(alt_loc) != alt_loc {
                        continue;
                    }
                }
                if let Some(model) = models.last_mut() {
                    model.atoms.push(atom);
                }
            }
            "END" => break,
            _ => {}
        }
    }
    if saw_atom {
        Ok(models)
    } else {
        Err(IoError::Pdb {
            file: file.to_owned(),
            model: None,
            line: last_line.max(1),
            problem: PdbProblem::NoAtoms,
        })
    }
}

/// The serial of a MODEL record (nominally columns 11-14); `count + 1` when blank.
fn parse_model_serial(line: &str, count: usize) -> Result<u32, PdbProblem> {
    let text = line.get(6..).unwrap_or("").trim();
    if text.is_empty() {
        return u32::try_from(count + 1).map_err(|_| bad_field("model serial", "11-14", text));
    }
    text.parse()
        .map_err(|_| bad_field("model serial", "11-14", text))
}

fn bad_field(field: &'static str, columns: &'static str, found: &str) -> PdbProblem {
    PdbProblem::BadField {
        field,
        columns,
        found: found.to_owned(),
    }
}

/// Columns `first..=last` (1-based) of an ASCII line, shorter or empty past its end.
fn columns(line: &str, first: usize, last: usize) -> &str {
    let end = last.min(line.len());
    line.get(first - 1..end).unwrap_or("")
}

/// The character in column `at` (1-based), `None` when blank or past the end.
fn column_char(line: &str, at: usize) -> Option<char> {
    line.as_bytes()
        .get(at - 1)
        .map(|&byte| char::from(byte))
        .filter(|c| *c != ' ')
}

fn parse_atom(line: &str, is_hetero: bool) -> Result<PdbAtom, PdbProblem> {
    if !line.is_ascii() {
        return Err(PdbProblem::NonAscii);
    }
    if line.len() < 54 {
        return Err(PdbProblem::ShortRecord {
            record: if is_hetero { "HETATM" } else { "ATOM" },
            length: line.len(),
        });
    }
    let serial_field = columns(line, 7, 11);
    let serial = decode_hybrid36(serial_field, 5)
        .and_then(|serial| u32::try_from(serial).ok())
        .ok_or_else(|| bad_field("atom serial", "7-11", serial_field))?;
    let raw_name = columns(line, 13, 16);
    let residue_name = columns(line, 18, 21).trim().to_owned();
    let seq_field = columns(line, 23, 26);
    let residue_seq = decode_hybrid36(seq_field, 4)
        .and_then(|seq| i32::try_from(seq).ok())
        .ok_or_else(|| bad_field("residue sequence number", "23-26", seq_field))?;
    let mut position = [0.0; 3];
    for (axis, (first, field)) in [(31, "x"), (39, "y"), (47, "z")].into_iter().enumerate() {
        let text = columns(line, first, first + 7);
        let ranges = ["31-38", "39-46", "47-54"];
        position[axis] = text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|value| value.is_finite())
            .ok_or_else(|| bad_field(field, ranges[axis], text))?;
    }
    let element_field = columns(line, 77, 78).trim();
    let element = if element_field.is_empty() {
        infer_element(raw_name, &residue_name, is_hetero).ok_or_else(|| {
            PdbProblem::ElementNotInferred {
                atom_name: raw_name.trim().to_owned(),
            }
        })?
    } else {
        atomic_number(element_field).ok_or_else(|| PdbProblem::UnknownElement {
            symbol: element_field.to_owned(),
        })?
    };
    Ok(PdbAtom {
        serial,
        name: raw_name.trim().to_owned(),
        alt_loc: column_char(line, 17),
        residue_name,
        chain_id: column_char(line, 22).unwrap_or(' '),
        residue_seq,
        insertion_code: column_char(line, 27),
        position,
        element,
        is_hetero,
    })
}

/// The element of an atom whose record leaves columns 77-78 blank (rules in the module doc).
fn infer_element(raw_name: &str, residue_name: &str, is_hetero: bool) -> Option<u8> {
    let name = raw_name.trim();
    if is_water(residue_name) && WATER_VIRTUAL_SITES.contains(&name) {
        return Some(0);
    }
    if name.eq_ignore_ascii_case(residue_name) {
        let ion = CHARMM_IONS
            .iter()
            .find(|(charmm, _)| charmm.eq_ignore_ascii_case(name))
            .map_or(name, |(_, element)| element);
        if let Some(number) = atomic_number(ion) {
            return Some(number);
        }
    }
    let bytes = raw_name.as_bytes();
    let first = *bytes.first()?;
    let symbol = if first == b' ' || first.is_ascii_digit() {
        let letter = bytes[1..].iter().find(|byte| byte.is_ascii_alphabetic())?;
        char::from(*letter).to_string()
    } else if is_hetero && raw_name.len() >= 2 && atomic_number(&raw_name[..2]).is_some() {
        raw_name[..2].to_owned()
    } else {
        char::from(first).to_string()
    };
    atomic_number(&symbol)
}

/// Decodes a decimal or hybrid-36 number of `width` columns (`A0000` is 100000 for width 5).
fn decode_hybrid36(field: &str, width: u32) -> Option<i64> {
    let text = field.trim();
    let first = *text.as_bytes().first()?;
    if first.is_ascii_digit() || first == b'-' || first == b'+' {
        return text.parse().ok();
    }
    let upper = first.is_ascii_uppercase();
    let valid_digit = |byte: &u8| {
        byte.is_ascii_digit()
            || (upper && byte.is_ascii_uppercase())
            || (!upper && byte.is_ascii_lowercase())
    };
    if text.len() != width as usize || !text.bytes().all(|byte| valid_digit(&byte)) {
        return None;
    }
    let value = i64::from_str_radix(text, 36).ok()?;
    let block = 36_i64.pow(width - 1);
    let offset = 10_i64.pow(width) - 10 * block;
    Some(if upper {
        value + offset
    } else {
        value + offset + 26 * block
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    #[test]
    fn hybrid36_numbers() {
        assert_eq!(decode_hybrid36("   42", 5), Some(42));
        assert_eq!(decode_hybrid36("  -3", 4), Some(-3));
        assert_eq!(decode_hybrid36("99999", 5), Some(99_999));
        assert_eq!(decode_hybrid36("A0000", 5), Some(100_000));
        assert_eq!(decode_hybrid36("A0001", 5), Some(100_001));
        assert_eq!(
            decode_hybrid36("a0000", 5),
            Some(100_000 + 26 * 36_i64.pow(4))
        );
        assert_eq!(decode_hybrid36("A000", 4), Some(10_000));
        assert_eq!(decode_hybrid36("*****", 5), None);
        assert_eq!(decode_hybrid36("Ab000", 5), None);
        assert_eq!(decode_hybrid36("", 5), None);
    }

    #[test]
    fn element_inference() {
        let infer = |name: &str, residue: &str, hetero: bool| {
            infer_element(name, residue, hetero).and_then(crate::io::elements::element_symbol)
        };
        assert_eq!(infer(" CA ", "ALA", false), Some("C"));
        assert_eq!(infer("HG21", "THR", false), Some("H"));
        assert_eq!(infer("HT1 ", "MET", false), Some("H"));
        assert_eq!(infer("1HG1", "VAL", false), Some("H"));
        assert_eq!(infer(" OW ", "SOL", false), Some("O"));
        assert_eq!(infer_element(" MW ", "SOL", false), Some(0));
        assert_eq!(infer(" NA ", "NA", false), Some("Na"));
        assert_eq!(infer("CA  ", "CA", true), Some("Ca"));
        assert_eq!(infer("SOD ", "SOD", false), Some("Na"));
        assert_eq!(infer("FE  ", "HEM", true), Some("Fe"));
        assert_eq!(infer("C1  ", "LIG", true), Some("C"));
        assert_eq!(infer(" XX ", "LIG", true), None);
        assert_eq!(infer("    ", "LIG", true), None);
    }

    /// An ATOM/HETATM record in the fixed columns of the PDB format; `name` covers columns
    /// 13-17 (atom name and alternate location).
    pub(in crate::io::pdb) fn record(
        hetero: bool,
        serial: u32,
        name: &str,
        residue: &str,
        seq: i32,
        position: [f64; 3],
        element: &str,
    ) -> String {
        let kind = if hetero { "HETATM" } else { "ATOM" };
        let [x, y, z] = position;
        format!(
            "{kind:<6}{serial:>5} {name:<5}{residue:>3} A{seq:>4}    \
             {x:>8.3}{y:>8.3}{z:>8.3}  1.00  0.00          {element:>2}"
        )
    }

    fn pdb_error(text: &str) -> (Option<u32>, usize, PdbProblem, String) {
        match parse_models(text, "broken.pdb", &PdbOptions::default()) {
            Err(error) => {
                let message = error.to_string();
                match error {
                    IoError::Pdb {
                        model,
                        line,
                        problem,
                        ..
                    } => (model, line, problem, message),
                    other => panic!("expected a PDB error, got {other}"),
                }
            }
            Ok(models) => panic!("expected an error, got {models:?}"),
        }
    }

    #[test]
    fn alternate_locations_keep_the_first() {
        let text = [
            record(false, 1, " N   ", "SER", 5, [0.0; 3], "N"),
            record(false, 2, " CB A", "SER", 5, [1.0, 0.0, 0.0], "C"),
            record(false, 3, " CB B", "SER", 5, [2.0, 0.0, 0.0], "C"),
            record(false, 4, " OG A", "SER", 5, [1.5, 0.0, 0.0], "O"),
            record(false, 5, " OG B", "SER", 5, [2.5, 0.0, 0.0], "O"),
            record(false, 6, " CB B", "THR", 6, [3.0, 0.0, 0.0], "C"),
            record(false, 7, " CB C", "THR", 6, [4.0, 0.0, 0.0], "C"),
        ]
        .join("\n");
        let models = parse_models(&text, "alt.pdb", &PdbOptions::default()).expect("valid");
        let kept: Vec<(u32, Option<char>)> = models[0]
            .atoms
            .iter()
            .map(|atom| (atom.serial, atom.alt_loc))
            .collect();
        assert_eq!(
            kept,
            vec![(1, None), (2, Some('A')), (4, Some('A')), (6, Some('B'))]
        );
    }

    #[test]
    fn broken_atom_records() {
        let good = record(false, 1, " CA  ", "ALA", 1, [1.0, 2.0, 3.0], "C");
        let (_, line, problem, message) = pdb_error(&format!("{good}\n{}", &good[..50]));
        assert_eq!(
            (line, problem),
            (
                2,
                PdbProblem::ShortRecord {
                    record: "ATOM",
                    length: 50
                }
            )
        );
        assert!(
            message.starts_with("broken.pdb: line 2: ATOM record is 50"),
            "{message}"
        );
        let (_, _, problem, message) = pdb_error(&good.replace("   2.000", "   2.0x0"));
        assert!(
            matches!(problem, PdbProblem::BadField { field: "y", .. }),
            "{message}"
        );
        assert!(
            message.contains("y (columns 39-46): cannot parse '   2.0x0'"),
            "{message}"
        );
        let (_, _, problem, _) = pdb_error(&good.replace("    1 ", "12a45 "));
        assert!(matches!(
            problem,
            PdbProblem::BadField {
                field: "atom serial",
                ..
            }
        ));
        let (_, _, problem, _) = pdb_error(&good.replace(" A   1 ", " A   x "));
        assert!(matches!(
            problem,
            PdbProblem::BadField {
                field: "residue sequence number",
                ..
            }
        ));
        let (_, _, problem, _) = pdb_error(&format!("{}Xx", &good[..76]));
        assert_eq!(
            problem,
            PdbProblem::UnknownElement {
                symbol: "Xx".to_owned()
            }
        );
        let (_, _, problem, _) = pdb_error(&record(true, 1, " QZ  ", "LIG", 1, [0.0; 3], ""));
        assert_eq!(
            problem,
            PdbProblem::ElementNotInferred {
                atom_name: "QZ".to_owned()
            }
        );
        let (_, _, problem, _) = pdb_error(&good.replace("ALA", "ALÄ"));
        assert_eq!(problem, PdbProblem::NonAscii);
    }

    #[test]
    fn unbalanced_models() {
        let atom = record(false, 1, " CA  ", "ALA", 1, [0.0; 3], "C");
        let (model, line, problem, message) = pdb_error(&format!(
            "MODEL        1\n{atom}\nENDMDL\nMODEL        2\n{atom}\nMODEL        3\n"
        ));
        assert_eq!(
            (model, line, problem),
            (Some(2), 6, PdbProblem::NestedModel { open: 2 })
        );
        assert!(
            message.starts_with("broken.pdb: model 2, line 6: MODEL record"),
            "{message}"
        );
        let (_, line, problem, _) = pdb_error(&format!("{atom}\nENDMDL\n"));
        assert_eq!((line, problem), (2, PdbProblem::UnmatchedEndmdl));
        let (_, line, problem, _) = pdb_error(&format!("MODEL 1\n{atom}\nENDMDL\n{atom}\n"));
        assert_eq!((line, problem), (4, PdbProblem::AtomOutsideModel));
        let (_, line, problem, _) = pdb_error(&format!("{atom}\nMODEL 1\n"));
        assert_eq!((line, problem), (2, PdbProblem::AtomOutsideModel));
        let (_, _, problem, _) = pdb_error(&format!("MODEL 1\n{atom}\nENDMDL\nMODEL 1\n"));
        assert_eq!(problem, PdbProblem::DuplicateModel { serial: 1 });
        let (_, _, problem, _) = pdb_error("MODEL one\n");
        assert!(matches!(
            problem,
            PdbProblem::BadField {
                field: "model serial",
                ..
            }
        ));
        let (_, line, problem, _) = pdb_error("HEADER    EMPTY\nEND\n");
        assert_eq!((line, problem), (2, PdbProblem::NoAtoms));
        let (_, line, problem, _) = pdb_error("");
        assert_eq!((line, problem), (1, PdbProblem::NoAtoms));
    }
}
