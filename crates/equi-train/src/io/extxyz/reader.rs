//! Frame-by-frame parsing of extended XYZ text.

use std::collections::BTreeMap;

use super::comment::{parse_header, Column, ColumnKind};
use super::{periodic, qm9, ArrayValues, AtomArray, Frame, Value};
use crate::io::elements::{atomic_number, MAX_ATOMIC_NUMBER};
use crate::io::text::{parse_logical, parse_real};
use crate::io::{IoError, XyzProblem};

/// Lines of the text with their 1-based numbers.
struct Lines<'a> {
    lines: Vec<&'a str>,
    next: usize,
}

impl<'a> Lines<'a> {
    fn take(&mut self) -> Option<(usize, &'a str)> {
        let line = self.lines.get(self.next)?;
        self.next += 1;
        Some((self.next, line))
    }

    fn rest_is_blank(&self) -> bool {
        self.lines[self.next..]
            .iter()
            .all(|line| line.trim().is_empty())
    }

    fn remaining(&self) -> usize {
        self.lines.len() - self.next
    }

    /// Number of the line after the last one, where a truncated file is reported.
    fn end_line(&self) -> usize {
        self.lines.len() + 1
    }
}

pub(super) fn parse_frames(text: &str, file: &str) -> Result<Vec<Frame>, IoError> {
    let mut lines = Lines {
        lines: text.lines().collect(),
        next: 0,
    };
    let mut frames = Vec::new();
    while !lines.rest_is_blank() {
        let frame_number = frames.len() + 1;
        let fail = |line: usize, problem: XyzProblem| IoError::Xyz {
            file: file.to_owned(),
            frame: frame_number,
            line,
            problem,
        };
        let Some((count_line, count_text)) = lines.take() else {
            break;
        };
        let atom_count = parse_atom_count(count_text, frame_number > 1)
            .map_err(|problem| fail(count_line, problem))?;
        let (comment_line, comment) = lines
            .take()
            .ok_or_else(|| fail(count_line + 1, XyzProblem::MissingComment))?;
        let header = parse_header(comment).map_err(|problem| fail(comment_line, problem))?;
        let mut builder = FrameBuilder::new(&header.columns, atom_count.min(lines.remaining()));
        for atom in 0..atom_count {
            let (line, text) = lines.take().ok_or_else(|| {
                let problem = XyzProblem::Truncated {
                    expected: atom_count,
                    found: atom,
                };
                fail(lines.end_line(), problem)
            })?;
            builder
                .push_atom(text, atom, atom_count)
                .map_err(|problem| fail(line, problem))?;
        }
        let mut frame = builder.finish(header.info);
        periodic::check(&frame)
            .map_err(|problem| fail(comment_line, XyzProblem::Periodic(problem)))?;
        if header.qm9 {
            for (position, what) in qm9::TRAILER_LINES.iter().enumerate() {
                let (line, text) = lines.take().ok_or_else(|| {
                    let reason = format!("the file ends before the {what} line");
                    fail(lines.end_line(), XyzProblem::Qm9 { reason })
                })?;
                qm9::parse_trailer_line(position, text, &mut frame.info)
                    .map_err(|problem| fail(line, problem))?;
            }
        }
        frames.push(frame);
    }
    Ok(frames)
}

/// Parses the atom count line; after a frame, an atom line there means that frame's count
/// was too small.
fn parse_atom_count(line: &str, after_frame: bool) -> Result<usize, XyzProblem> {
    let text = line.trim();
    text.parse::<usize>().map_err(|_| {
        let found = text.to_owned();
        if after_frame && text.split_whitespace().count() >= 4 {
            XyzProblem::ExtraAtomLine { found }
        } else {
            XyzProblem::AtomCount { found }
        }
    })
}

/// Where the values of one column go.
enum Sink {
    Species,
    AtomicNumbers,
    Positions,
    Array(ArrayValues),
}

struct ColumnSink<'a> {
    column: &'a Column,
    first_field: usize,
    sink: Sink,
}

struct FrameBuilder<'a> {
    sinks: Vec<ColumnSink<'a>>,
    field_count: usize,
    atomic_numbers: Vec<u8>,
    positions: Vec<[f64; 3]>,
}

impl<'a> FrameBuilder<'a> {
    fn new(columns: &'a [Column], capacity: usize) -> Self {
        let has_species = columns.iter().any(|column| column.name == "species");
        let mut first_field = 0;
        let sinks = columns
            .iter()
            .map(|column| {
                let sink = match (column.name.as_str(), column.kind) {
                    ("species", _) => Sink::Species,
                    ("Z", _) if !has_species => Sink::AtomicNumbers,
                    ("pos", _) => Sink::Positions,
                    (_, ColumnKind::Real) => Sink::Array(ArrayValues::Real(Vec::new())),
                    (_, ColumnKind::Integer) => Sink::Array(ArrayValues::Integer(Vec::new())),
                    (_, ColumnKind::Logical) => Sink::Array(ArrayValues::Logical(Vec::new())),
                    (_, ColumnKind::Text) => Sink::Array(ArrayValues::Text(Vec::new())),
                };
                let entry = ColumnSink {
                    column,
                    first_field,
                    sink,
                };
                first_field += column.count;
                entry
            })
            .collect();
        Self {
            sinks,
            field_count: first_field,
            atomic_numbers: Vec::with_capacity(capacity),
            positions: Vec::with_capacity(capacity),
        }
    }

    /// Parses the line of atom `atom` (0-based) of a frame of `atom_count` atoms.
    fn push_atom(&mut self, line: &str, atom: usize, atom_count: usize) -> Result<(), XyzProblem> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() != self.field_count {
            if fields.len() == 1 && fields[0].parse::<usize>().is_ok() {
                return Err(XyzProblem::MissingAtomLines {
                    atom: atom + 1,
                    expected: atom_count,
                    found: fields[0].to_owned(),
                });
            }
            return Err(XyzProblem::FieldCount {
                expected: self.field_count,
                found: fields.len(),
            });
        }
        for entry in &mut self.sinks {
            let first = entry.first_field;
            let values = &fields[first..first + entry.column.count];
            let bad_field = |offset: usize, expected: &'static str| XyzProblem::BadField {
                column: entry.column.name.clone(),
                field: first + offset + 1,
                expected,
                found: values[offset].to_owned(),
            };
            match &mut entry.sink {
                Sink::Species => self.atomic_numbers.push(parse_species(values[0])?),
                Sink::AtomicNumbers => {
                    let number = values[0]
                        .parse::<u8>()
                        .ok()
                        .filter(|number| (1..=MAX_ATOMIC_NUMBER).contains(number))
                        .ok_or_else(|| bad_field(0, "an atomic number in 1..=118"))?;
                    self.atomic_numbers.push(number);
                }
                Sink::Positions => {
                    let mut position = [0.0; 3];
                    for (axis, slot) in position.iter_mut().enumerate() {
                        *slot = parse_real(values[axis])
                            .ok_or_else(|| bad_field(axis, "a real number"))?;
                    }
                    if position.iter().any(|value| !value.is_finite()) {
                        return Err(XyzProblem::NonFinitePosition { atom: atom + 1 });
                    }
                    self.positions.push(position);
                }
                Sink::Array(ArrayValues::Real(target)) => {
                    for (offset, value) in values.iter().enumerate() {
                        target.push(
                            parse_real(value).ok_or_else(|| bad_field(offset, "a real number"))?,
                        );
                    }
                }
                Sink::Array(ArrayValues::Integer(target)) => {
                    for (offset, value) in values.iter().enumerate() {
                        target.push(value.parse().map_err(|_| bad_field(offset, "an integer"))?);
                    }
                }
                Sink::Array(ArrayValues::Logical(target)) => {
                    for (offset, value) in values.iter().enumerate() {
                        target.push(
                            parse_logical(value)
                                .ok_or_else(|| bad_field(offset, "a logical (T or F)"))?,
                        );
                    }
                }
                Sink::Array(ArrayValues::Text(target)) => {
                    target.extend(values.iter().map(|value| (*value).to_owned()));
                }
            }
        }
        Ok(())
    }

    fn finish(self, info: BTreeMap<String, Value>) -> Frame {
        let arrays = self
            .sinks
            .into_iter()
            .filter_map(|entry| match entry.sink {
                Sink::Array(values) => Some((
                    entry.column.name.clone(),
                    AtomArray {
                        columns: entry.column.count,
                        values,
                    },
                )),
                _ => None,
            })
            .collect();
        Frame {
            atomic_numbers: self.atomic_numbers,
            positions: self.positions,
            arrays,
            info,
        }
    }
}

/// An element symbol in any ASCII case, or an atomic number.
fn parse_species(token: &str) -> Result<u8, XyzProblem> {
    let number = if token.bytes().all(|byte| byte.is_ascii_digit()) {
        token
            .parse::<u8>()
            .ok()
            .filter(|number| (1..=MAX_ATOMIC_NUMBER).contains(number))
    } else {
        atomic_number(token)
    };
    number.ok_or_else(|| XyzProblem::UnknownElement {
        symbol: token.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ETHANOL_HEAD: &str = "3\nProperties=species:S:1:pos:R:3:forces:R:3 energy=-309.47 pbc=\"F F F\"\nC 1.0 0.0 0.0 -0.5 0.25 0.0\nO 0.0 1.5 0.0 0.5 -0.25 0.0\nH 0.0 0.0 1.0 0.0 0.0 0.0\n";

    fn xyz_error(text: &str) -> (usize, usize, XyzProblem, String) {
        match parse_frames(text, "broken.xyz") {
            Err(error @ IoError::Xyz { .. }) => {
                let message = error.to_string();
                let IoError::Xyz {
                    frame,
                    line,
                    problem,
                    ..
                } = error
                else {
                    unreachable!("matched above")
                };
                (frame, line, problem, message)
            }
            other => panic!("expected an extended XYZ error, got {other:?}"),
        }
    }

    #[test]
    fn frames_with_arrays_and_properties() {
        let text = format!("{ETHANOL_HEAD}{ETHANOL_HEAD}\n\n");
        let frames = parse_frames(&text, "two.xyz").expect("valid file");
        assert_eq!(frames.len(), 2);
        let frame = &frames[1];
        assert_eq!(frame.atomic_numbers, vec![6, 8, 1]);
        assert_eq!(frame.positions[1], [0.0, 1.5, 0.0]);
        assert_eq!(frame.energy(), Some(-309.47));
        assert_eq!(frame.info["pbc"], Value::LogicalArray(vec![false; 3]));
        let forces = frame.forces().expect("forces");
        assert_eq!(forces[0], [-0.5, 0.25, 0.0]);
        assert_eq!(frame.arrays.len(), 1);
    }

    #[test]
    fn general_columns_and_species_forms() {
        let text = "2\nProperties=Z:I:1:pos:R:3:tag:I:1:fixed:L:1:label:S:2:charge:R:1\n\
                    8 0 0 0 4 T a b -0.8\n1 0 0 1 5 F c d 0.4D0\n\
                    2\nplain water-ish comment\ncl 0 0 0\n17 1 1 1\n";
        let frames = parse_frames(text, "mixed.xyz").expect("valid file");
        let first = &frames[0];
        assert_eq!(first.atomic_numbers, vec![8, 1]);
        assert_eq!(first.arrays["tag"].values, ArrayValues::Integer(vec![4, 5]));
        assert_eq!(
            first.arrays["fixed"].values,
            ArrayValues::Logical(vec![true, false])
        );
        let label = &first.arrays["label"];
        assert_eq!(label.columns, 2);
        assert_eq!(
            label.values,
            ArrayValues::Text(["a", "b", "c", "d"].map(String::from).to_vec())
        );
        assert_eq!(
            first.arrays["charge"].values,
            ArrayValues::Real(vec![-0.8, 0.4])
        );
        assert!(!first.arrays.contains_key("Z"));
        assert_eq!(frames[1].atomic_numbers, vec![17, 17]);
        assert_eq!(
            frames[1].info["comment"].as_str(),
            Some("plain water-ish comment")
        );
    }

    #[test]
    fn qm9_release_layout() {
        let text = "5\n\
            gdb 1\t157.7118\t157.70997\t157.70699\t0.\t13.21\t-0.3877\t0.1171\t0.5048\t35.3641\t0.044749\t-40.47893\t-40.476062\t-40.475117\t-40.498597\t6.469\t\n\
            C\t-0.0126981359\t 1.0858041578\t 0.0080009958\t-0.535689\n\
            H\t 0.002150416\t-0.0060313176\t 0.0019761204\t 0.133921\n\
            H\t 1.0117308433\t 1.4637511618\t 0.0002765748\t 0.133922\n\
            H\t-0.540815069\t 1.4475266138\t-0.8766437152\t 0.133923\n\
            H\t-0.5238136345\t 1.4379326443\t 2.1997*^-6\t 0.133923\n\
            1341.307\t1341.3284\t1341.365\t1562.6731\t1562.7453\t3038.3205\t3151.6034\t3151.6788\t3151.7078\n\
            C\tC\t\n\
            InChI=1S/CH4/h1H4\tInChI=1S/CH4/h1H4\n";
        let frames = parse_frames(text, "dsgdb9nsd_000001.xyz").expect("valid QM9 record");
        let frame = &frames[0];
        assert_eq!(frame.atomic_numbers, vec![6, 1, 1, 1, 1]);
        assert_eq!(frame.positions[4][2], 2.1997e-6);
        assert_eq!(frame.info_f64("U0"), Some(-40.47893));
        assert_eq!(frame.info_f64("mu"), Some(0.0));
        assert_eq!(frame.info["smiles_gdb"].as_str(), Some("C"));
        let charges = &frame.arrays["mulliken_charges"];
        assert_eq!(charges.value_count(), 5);
        let (_, line, _, message) = xyz_error(&text[..text.len() - 36]);
        assert_eq!(line, 10);
        assert!(message.contains("InChI"), "{message}");
    }

    #[test]
    fn truncated_file() {
        let text = format!("{ETHANOL_HEAD}{}", &ETHANOL_HEAD[..ETHANOL_HEAD.len() - 26]);
        let (frame, line, problem, message) = xyz_error(&text);
        assert_eq!((frame, line), (2, 10));
        assert_eq!(
            problem,
            XyzProblem::Truncated {
                expected: 3,
                found: 2
            }
        );
        assert!(
            message.starts_with("broken.xyz: frame 2, line 10:"),
            "{message}"
        );
        let (_, line, problem, _) = xyz_error("1\n");
        assert_eq!((line, problem), (2, XyzProblem::MissingComment));
    }

    #[test]
    fn atom_count_does_not_match_the_atom_lines() {
        let too_small = ETHANOL_HEAD.replacen('3', "2", 1);
        let (frame, line, problem, message) = xyz_error(&format!("{too_small}{ETHANOL_HEAD}"));
        assert_eq!((frame, line), (2, 5));
        assert!(
            matches!(problem, XyzProblem::ExtraAtomLine { .. }),
            "{message}"
        );
        assert!(
            message.contains("more atom lines than its atom count"),
            "{message}"
        );

        let too_large = ETHANOL_HEAD.replacen('3', "4", 1);
        let (frame, line, problem, _) = xyz_error(&format!("{too_large}{ETHANOL_HEAD}"));
        assert_eq!((frame, line), (1, 6));
        assert_eq!(
            problem,
            XyzProblem::MissingAtomLines {
                atom: 4,
                expected: 4,
                found: "3".to_owned()
            }
        );
        let (_, _, problem, _) = xyz_error("H 0 0 0\n");
        assert_eq!(
            problem,
            XyzProblem::AtomCount {
                found: "H 0 0 0".to_owned()
            }
        );
        let (_, line, problem, _) = xyz_error(&ETHANOL_HEAD.replacen('3', "three", 1));
        assert_eq!(
            (line, problem),
            (
                1,
                XyzProblem::AtomCount {
                    found: "three".to_owned()
                }
            )
        );
    }

    #[test]
    fn unknown_element() {
        let text = ETHANOL_HEAD.replacen("O 0.0", "Xx 0.0", 1);
        let (frame, line, problem, message) = xyz_error(&text);
        assert_eq!((frame, line), (1, 4));
        assert_eq!(
            problem,
            XyzProblem::UnknownElement {
                symbol: "Xx".to_owned()
            }
        );
        assert!(message.contains("unknown element 'Xx'"), "{message}");
    }

    #[test]
    fn non_numeric_and_missing_fields() {
        let text = ETHANOL_HEAD.replacen("0.25", "0.2.5", 1);
        let (_, line, problem, message) = xyz_error(&text);
        assert_eq!(line, 3);
        assert_eq!(
            problem,
            XyzProblem::BadField {
                column: "forces".to_owned(),
                field: 6,
                expected: "a real number",
                found: "0.2.5".to_owned()
            }
        );
        assert!(message.contains("field 6 (column 'forces')"), "{message}");
        let (_, line, problem, _) =
            xyz_error(&ETHANOL_HEAD.replacen(" 0.0 0.0 0.0\n", " 0.0\n", 1));
        assert_eq!(
            (line, problem),
            (
                5,
                XyzProblem::FieldCount {
                    expected: 7,
                    found: 5
                }
            )
        );
        let (_, _, problem, _) = xyz_error("1\n\nH nan 0 0\n");
        assert_eq!(problem, XyzProblem::NonFinitePosition { atom: 1 });
    }

    #[test]
    fn bad_properties_spec_in_a_file() {
        let text = ETHANOL_HEAD.replacen("forces:R:3", "forces:Q:3", 1);
        let (frame, line, problem, message) = xyz_error(&text);
        assert_eq!((frame, line), (1, 2));
        assert!(matches!(problem, XyzProblem::PropertiesSpec { .. }));
        assert!(message.contains("type 'Q'"), "{message}");
    }

    #[test]
    fn empty_text_has_no_frames() {
        assert!(parse_frames("", "empty.xyz").expect("empty").is_empty());
        assert!(parse_frames("\n  \n", "blank.xyz")
            .expect("blank")
            .is_empty());
        let frames = parse_frames("0\n\n", "no_atoms.xyz").expect("zero atoms");
        assert!(frames[0].is_empty());
    }
}
