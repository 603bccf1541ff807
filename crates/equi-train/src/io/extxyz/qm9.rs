//! The per-molecule layout of the original QM9 release (`dsgdb9nsd_*.xyz`).
//!
//! ```text
//! 5
//! gdb 1  157.7118  157.70997  157.70699  0.  13.21  -0.3877  ...  -40.498597  6.469
//! C  -0.0126981359  1.0858041578  0.0080009958  -0.535689
//! ...
//! 1341.307  1341.3284  1341.365  ...
//! C  C
//! InChI=1S/CH4/h1H4  InChI=1S/CH4/h1H4
//! ```

use std::collections::BTreeMap;

use super::comment::{Column, ColumnKind};
use super::Value;
use crate::io::text::parse_real;
use crate::io::XyzProblem;

/// Names of the 15 properties of a `gdb` comment line, in file order.
pub(super) const PROPERTY_NAMES: [&str; 15] = [
    "A", "B", "C", "mu", "alpha", "epsHOMO", "epsLUMO", "epsgap", "<R2>", "zpve", "U0", "U", "H",
    "G", "Cv",
];

/// What the three lines after the atoms hold.
pub(super) const TRAILER_LINES: [&str; 3] = ["harmonic frequencies", "SMILES", "InChI"];

/// Atom-line columns: symbol, position and Mulliken partial charge.
pub(super) fn columns() -> Vec<Column> {
    vec![
        Column::new("species", ColumnKind::Text, 1),
        Column::new("pos", ColumnKind::Real, 3),
        Column::new("mulliken_charges", ColumnKind::Real, 1),
    ]
}

/// Reads a `gdb <index> <15 values>` comment line; `None` when the line is something else.
pub(super) fn parse_gdb_comment(line: &str) -> Result<Option<BTreeMap<String, Value>>, XyzProblem> {
    let tokens: Vec<&str> = line.split_whitespace().collect();
    if tokens.first() != Some(&"gdb") {
        return Ok(None);
    }
    if tokens.len() != 2 + PROPERTY_NAMES.len() {
        return Err(XyzProblem::Qm9 {
            reason: format!(
                "a 'gdb' comment line holds the index and {} properties, found {} values",
                PROPERTY_NAMES.len(),
                tokens.len() - 1
            ),
        });
    }
    let index = tokens[1].parse::<i64>().map_err(|_| XyzProblem::Qm9 {
        reason: format!("molecule index '{}' is not an integer", tokens[1]),
    })?;
    let mut info = BTreeMap::from([("index".to_owned(), Value::Integer(index))]);
    for (name, token) in PROPERTY_NAMES.iter().zip(&tokens[2..]) {
        let value = parse_real(token).ok_or_else(|| XyzProblem::Qm9 {
            reason: format!("property {name} '{token}' is not a number"),
        })?;
        info.insert((*name).to_owned(), Value::Real(value));
    }
    Ok(Some(info))
}

/// Reads line `position` (0, 1 or 2) of the three lines after the atoms into `info`.
pub(super) fn parse_trailer_line(
    position: usize,
    line: &str,
    info: &mut BTreeMap<String, Value>,
) -> Result<(), XyzProblem> {
    let tokens: Vec<&str> = line.split_whitespace().collect();
    let names = match position {
        0 => {
            let frequencies: Option<Vec<f64>> =
                tokens.iter().map(|token| parse_real(token)).collect();
            return match frequencies {
                Some(values) if !values.is_empty() => {
                    info.insert("frequencies".to_owned(), Value::RealArray(values));
                    Ok(())
                }
                _ => Err(XyzProblem::Qm9 {
                    reason: format!("expected harmonic frequencies, found '{line}'"),
                }),
            };
        }
        1 => ["smiles_gdb", "smiles_relaxed"],
        _ => ["inchi_gdb", "inchi_relaxed"],
    };
    if tokens.len() != 2 {
        return Err(XyzProblem::Qm9 {
            reason: format!(
                "expected two {} strings (GDB and relaxed), found '{line}'",
                TRAILER_LINES[position.min(2)]
            ),
        });
    }
    for (name, token) in names.iter().zip(tokens) {
        info.insert((*name).to_owned(), Value::Text(token.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gdb_comment_lines() {
        let info = parse_gdb_comment(
            "gdb 1\t157.7118\t157.70997\t157.70699\t0.\t13.21\t-0.3877\t0.1171\t0.5048\t35.3641\t0.044749\t-40.47893\t-40.476062\t-40.475117\t-40.498597\t6.469\t",
        )
        .expect("valid line")
        .expect("a gdb line");
        assert_eq!(info["index"], Value::Integer(1));
        assert_eq!(info["U0"], Value::Real(-40.47893));
        assert_eq!(info["<R2>"], Value::Real(35.3641));
        assert_eq!(info.len(), 16);
        assert_eq!(parse_gdb_comment("energy=1").expect("not gdb"), None);
        let problem = parse_gdb_comment("gdb 1 2 3").expect_err("too few values");
        assert!(problem.to_string().contains("found 3 values"), "{problem}");
    }

    #[test]
    fn trailer_lines() {
        let mut info = BTreeMap::new();
        parse_trailer_line(0, "1341.307\t1562.6731*^0", &mut info).expect("frequencies");
        parse_trailer_line(1, "C\tC", &mut info).expect("smiles");
        parse_trailer_line(2, "InChI=1S/CH4/h1H4\tInChI=1S/CH4/h1H4", &mut info).expect("inchi");
        assert_eq!(
            info["frequencies"],
            Value::RealArray(vec![1341.307, 1562.6731])
        );
        assert_eq!(info["smiles_relaxed"], Value::Text("C".to_owned()));
        assert_eq!(
            info["inchi_gdb"],
            Value::Text("InChI=1S/CH4/h1H4".to_owned())
        );
        assert!(parse_trailer_line(0, "C C", &mut info).is_err());
        assert!(parse_trailer_line(1, "C", &mut info).is_err());
    }
}
