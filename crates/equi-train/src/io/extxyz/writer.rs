//! Writing frames as extended XYZ that the reader reads back unchanged.

use super::comment::{parse_header, ColumnKind};
use super::{periodic, ArrayValues, AtomArray, Frame, Value};
use crate::io::elements::element_symbol;
use crate::io::{IoError, XyzWriteProblem};

pub(super) fn format_frames(frames: &[Frame], file: &str) -> Result<String, IoError> {
    let mut text = String::new();
    for (index, frame) in frames.iter().enumerate() {
        format_frame(&mut text, frame).map_err(|problem| IoError::XyzWrite {
            file: file.to_owned(),
            frame: index + 1,
            problem,
        })?;
    }
    Ok(text)
}

fn format_frame(text: &mut String, frame: &Frame) -> Result<(), XyzWriteProblem> {
    let atom_count = frame.len();
    check_length("positions", atom_count, frame.positions.len())?;
    if let Some(position) = frame
        .positions
        .iter()
        .flatten()
        .find(|value| !value.is_finite())
    {
        return Err(XyzWriteProblem::Value {
            name: "pos".to_owned(),
            value: format!("{position:?}"),
            reason: "positions must be finite",
        });
    }
    let symbols = frame
        .atomic_numbers
        .iter()
        .map(|&number| element_symbol(number).ok_or(XyzWriteProblem::AtomicNumber(number)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut comment = String::from("Properties=species:S:1:pos:R:3");
    for (name, array) in &frame.arrays {
        check_array(name, array, atom_count)?;
        comment.push_str(&format!(
            ":{name}:{}:{}",
            kind(array).letter(),
            array.columns
        ));
    }
    for (key, value) in &frame.info {
        check_name(key)?;
        if key == "Properties" {
            return Err(name_problem(key, "it is reserved for the column spec"));
        }
        comment.push(' ');
        comment.push_str(key);
        comment.push('=');
        comment.push_str(&format_value(key, value)?);
    }
    check_comment_reads_back(&comment, frame)?;
    periodic::check(frame).map_err(XyzWriteProblem::Periodic)?;
    text.push_str(&format!("{atom_count}\n{comment}\n"));
    for (atom, symbol) in symbols.iter().enumerate() {
        let [x, y, z] = frame.positions[atom];
        let mut fields = vec![
            (*symbol).to_owned(),
            format!("{x:?}"),
            format!("{y:?}"),
            format!("{z:?}"),
        ];
        for array in frame.arrays.values() {
            // `check_array` made every array hold `columns` values per atom.
            let range = atom * array.columns..(atom + 1) * array.columns;
            match &array.values {
                ArrayValues::Real(values) => {
                    fields.extend(values[range].iter().map(|value| format!("{value:?}")))
                }
                ArrayValues::Integer(values) => {
                    fields.extend(values[range].iter().map(i64::to_string))
                }
                ArrayValues::Logical(values) => fields.extend(
                    values[range]
                        .iter()
                        .map(|&value| if value { "T" } else { "F" }.to_owned()),
                ),
                ArrayValues::Text(values) => fields.extend(values[range].iter().cloned()),
            }
        }
        text.push_str(&fields.join(" "));
        text.push('\n');
    }
    Ok(())
}

fn kind(array: &AtomArray) -> ColumnKind {
    match array.values {
        ArrayValues::Real(_) => ColumnKind::Real,
        ArrayValues::Integer(_) => ColumnKind::Integer,
        ArrayValues::Logical(_) => ColumnKind::Logical,
        ArrayValues::Text(_) => ColumnKind::Text,
    }
}

fn check_length(name: &str, expected: usize, found: usize) -> Result<(), XyzWriteProblem> {
    if expected == found {
        Ok(())
    } else {
        Err(XyzWriteProblem::Length {
            name: name.to_owned(),
            expected,
            found,
        })
    }
}

fn name_problem(name: &str, reason: &'static str) -> XyzWriteProblem {
    XyzWriteProblem::Name {
        name: name.to_owned(),
        reason,
    }
}

fn check_name(name: &str) -> Result<(), XyzWriteProblem> {
    if name.is_empty() {
        Err(name_problem(name, "it is empty"))
    } else if name
        .chars()
        .any(|c| c.is_whitespace() || matches!(c, '=' | '"' | ':' | '{' | '[' | '\\'))
    {
        Err(name_problem(
            name,
            "it holds whitespace or one of = \" : { [ \\",
        ))
    } else {
        Ok(())
    }
}

fn check_array(name: &str, array: &AtomArray, atom_count: usize) -> Result<(), XyzWriteProblem> {
    check_name(name)?;
    if matches!(name, "species" | "pos") {
        return Err(name_problem(
            name,
            "it is reserved for the species and positions",
        ));
    }
    if array.columns == 0 {
        return Err(name_problem(name, "the array has no columns"));
    }
    check_length(name, atom_count * array.columns, array.value_count())?;
    if let ArrayValues::Text(values) = &array.values {
        if let Some(value) = values
            .iter()
            .find(|value| value.is_empty() || value.chars().any(char::is_whitespace))
        {
            return Err(XyzWriteProblem::Value {
                name: name.to_owned(),
                value: value.clone(),
                reason: "per-atom text must be one non-empty word",
            });
        }
    }
    Ok(())
}

/// Formats a comment-line value: reals in their shortest exact form, arrays quoted (or in
/// brackets when they hold fewer than two values), text bare when it is one plain word.
fn format_value(key: &str, value: &Value) -> Result<String, XyzWriteProblem> {
    fn joined<T>(values: &[T], format: impl Fn(&T) -> String) -> String {
        let items: Vec<String> = values.iter().map(format).collect();
        if items.len() < 2 {
            format!("[{}]", items.join(", "))
        } else {
            format!("\"{}\"", items.join(" "))
        }
    }
    let logical = |value: &bool| if *value { "T" } else { "F" }.to_owned();
    Ok(match value {
        Value::Integer(value) => value.to_string(),
        Value::Real(value) => format!("{value:?}"),
        Value::Logical(value) => logical(value),
        Value::IntegerArray(values) => joined(values, i64::to_string),
        Value::RealArray(values) => joined(values, |value| format!("{value:?}")),
        Value::LogicalArray(values) => joined(values, logical),
        Value::Text(text) => {
            if text.contains(['\n', '\r']) {
                return Err(XyzWriteProblem::Value {
                    name: key.to_owned(),
                    value: text.clone(),
                    reason: "it holds a line break",
                });
            }
            let plain = !text.is_empty()
                && !text.starts_with(['"', '{', '['])
                && !text.contains(char::is_whitespace);
            if plain {
                text.clone()
            } else {
                format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
            }
        }
    })
}

/// Parses the written comment line again and compares every property with the frame's.
fn check_comment_reads_back(comment: &str, frame: &Frame) -> Result<(), XyzWriteProblem> {
    let read_back = parse_header(comment).ok().map(|header| header.info);
    for (key, value) in &frame.info {
        let same = read_back
            .as_ref()
            .and_then(|info| info.get(key))
            .is_some_and(|read| same_value(read, value));
        if !same {
            return Err(XyzWriteProblem::Value {
                name: key.clone(),
                value: format_value(key, value)?,
                reason: "it reads back as a different type or value",
            });
        }
    }
    Ok(())
}

/// Equality that counts NaN as equal to NaN.
fn same_value(left: &Value, right: &Value) -> bool {
    let same_real = |a: &f64, b: &f64| a == b || (a.is_nan() && b.is_nan());
    match (left, right) {
        (Value::Real(a), Value::Real(b)) => same_real(a, b),
        (Value::RealArray(a), Value::RealArray(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same_real(a, b))
        }
        _ => left == right,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::extxyz::parse_extxyz;

    fn sample_frame() -> Frame {
        let mut frame = Frame::new(
            vec![6, 8, 1, 118],
            vec![
                [1.1768897998, -0.3809914582, 0.006505012],
                [0.0, 1e-12, -2.5e17],
                [1.0 / 3.0, -0.0, 12.0],
                [f64::MIN_POSITIVE, 7.0, -7.125],
            ],
        );
        frame.set_vectors(
            "forces",
            &[
                [0.1, -0.2, 0.3],
                [1.0, 2.0, 3.0],
                [0.0; 3],
                [-1e-9, 0.0, 5.0],
            ],
        );
        frame.arrays.insert(
            "tag".to_owned(),
            AtomArray {
                columns: 1,
                values: ArrayValues::Integer(vec![1, -2, 3, 4]),
            },
        );
        frame.arrays.insert(
            "fixed".to_owned(),
            AtomArray {
                columns: 2,
                values: ArrayValues::Logical(vec![
                    true, false, false, true, true, true, false, false,
                ]),
            },
        );
        frame.arrays.insert(
            "label".to_owned(),
            AtomArray {
                columns: 1,
                values: ArrayValues::Text(["a", "b1", "C=O", "x"].map(String::from).to_vec()),
            },
        );
        let info = [
            ("energy", Value::Real(-309.4711397718)),
            ("whole", Value::Real(2.0)),
            ("step", Value::Integer(-12)),
            ("converged", Value::Logical(false)),
            ("pbc", Value::LogicalArray(vec![false, false, true])),
            (
                "Lattice",
                Value::RealArray(vec![10.0, 0.0, 0.0, 0.0, 10.0, 0.0, 0.0, 0.0, 10.0]),
            ),
            ("single", Value::RealArray(vec![0.5])),
            ("one_int", Value::IntegerArray(vec![7])),
            ("no_ints", Value::IntegerArray(Vec::new())),
            ("ints", Value::IntegerArray(vec![1, 2, 3])),
            ("nan", Value::Real(f64::NAN)),
            ("config_type", Value::Text("bulk".to_owned())),
            (
                "comment",
                Value::Text("a \"quoted\" \\ comment, x=1".to_owned()),
            ),
            ("empty", Value::Text(String::new())),
            ("inchi", Value::Text("InChI=1S/CH4/h1H4".to_owned())),
            ("<R2>", Value::Real(35.3641)),
        ];
        for (key, value) in info {
            frame.info.insert(key.to_owned(), value);
        }
        frame
    }

    #[test]
    fn frames_round_trip_through_the_reader() {
        let frames = vec![sample_frame(), Frame::new(vec![1], vec![[0.0, 0.0, 0.0]])];
        let text = format_frames(&frames, "out.xyz").expect("writable frames");
        let read = parse_extxyz(&text, "out.xyz").expect("readable output");
        assert_eq!(read.len(), 2);
        for (written, read) in frames.iter().zip(&read) {
            assert_eq!(read.atomic_numbers, written.atomic_numbers);
            assert_eq!(read.positions, written.positions);
            assert_eq!(read.arrays, written.arrays);
            assert_eq!(read.info.len(), written.info.len());
            for (key, value) in &written.info {
                assert!(
                    same_value(&read.info[key], value),
                    "{key}: {:?}",
                    read.info[key]
                );
            }
        }
    }

    #[test]
    fn unwritable_frames_are_refused() {
        let write = |frame: &Frame| {
            format_frames(std::slice::from_ref(frame), "out.xyz")
                .expect_err("unwritable")
                .to_string()
        };
        let mut frame = sample_frame();
        frame.positions.pop();
        assert!(write(&frame).contains("'positions' holds 3 values, expected 4"));
        let mut frame = sample_frame();
        frame.atomic_numbers[0] = 0;
        assert!(write(&frame).contains("atomic number 0"));
        let mut frame = sample_frame();
        frame.set_vectors("forces", &[[0.0; 3]]);
        assert!(write(&frame).contains("'forces' holds 3 values, expected 12"));
        let mut frame = sample_frame();
        frame
            .info
            .insert("T_text".to_owned(), Value::Text("T".to_owned()));
        assert!(write(&frame).contains("reads back as a different type"));
        let mut frame = sample_frame();
        frame.info.insert("bad key".to_owned(), Value::Integer(1));
        assert!(write(&frame).contains("name 'bad key'"));
        let mut frame = sample_frame();
        frame
            .info
            .insert("no_reals".to_owned(), Value::RealArray(Vec::new()));
        assert!(write(&frame).contains("'no_reals'"));
        let mut frame = sample_frame();
        frame.positions[0][0] = f64::INFINITY;
        assert!(write(&frame).starts_with("out.xyz: frame 1: cannot write"));
    }
}
