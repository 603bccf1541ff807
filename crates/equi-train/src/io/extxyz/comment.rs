//! The comment line of extended XYZ: `key=value` pairs and the `Properties` column spec.

use std::collections::BTreeMap;

use super::qm9;
use super::Value;
use crate::io::text::{parse_logical, parse_real};
use crate::io::XyzProblem;

/// Type of an atom-line column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ColumnKind {
    Text,
    Real,
    Integer,
    Logical,
}

impl ColumnKind {
    /// The type letter of the `Properties` spec.
    pub(super) fn letter(self) -> char {
        match self {
            Self::Text => 'S',
            Self::Real => 'R',
            Self::Integer => 'I',
            Self::Logical => 'L',
        }
    }
}

/// One `name:type:columns` entry of the `Properties` spec.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Column {
    pub(super) name: String,
    pub(super) kind: ColumnKind,
    pub(super) count: usize,
}

impl Column {
    pub(super) fn new(name: &str, kind: ColumnKind, count: usize) -> Self {
        Self {
            name: name.to_owned(),
            kind,
            count,
        }
    }
}

/// What the comment line says about its frame.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Header {
    pub(super) columns: Vec<Column>,
    pub(super) info: BTreeMap<String, Value>,
    /// The frame is in the layout of the original QM9 release (three lines follow the atoms).
    pub(super) qm9: bool,
}

/// The columns of plain XYZ: `symbol x y z`.
pub(super) fn default_columns() -> Vec<Column> {
    vec![
        Column::new("species", ColumnKind::Text, 1),
        Column::new("pos", ColumnKind::Real, 3),
    ]
}

/// Parses a comment line.
///
/// A line with `Properties=` must be valid `key=value` pairs. Otherwise a QM9 `gdb` line is
/// read as such, a line that parses as `key=value` pairs gives them, and any other line is kept
/// whole as the text value `comment` (nothing for an empty line).
pub(super) fn parse_header(line: &str) -> Result<Header, XyzProblem> {
    if let Some(info) = qm9::parse_gdb_comment(line)? {
        return Ok(Header {
            columns: qm9::columns(),
            info,
            qm9: true,
        });
    }
    let strict = line.contains("Properties=");
    let pairs = match split_pairs(line) {
        Ok(pairs) if strict || line.contains('=') => pairs,
        Err(reason) if strict => return Err(XyzProblem::KeyValue { reason }),
        _ => return Ok(plain_header(line)),
    };
    let mut columns = None;
    let mut info = BTreeMap::new();
    for pair in pairs {
        if info.contains_key(&pair.key) || (pair.key == "Properties" && columns.is_some()) {
            return Err(XyzProblem::KeyValue {
                reason: format!("key '{}' appears twice", pair.key),
            });
        }
        match (pair.key.as_str(), pair.value) {
            ("Properties", Some((spec, _))) => columns = Some(parse_columns(&spec)?),
            ("Properties", None) => {
                return Err(XyzProblem::KeyValue {
                    reason: "Properties has no value".to_owned(),
                })
            }
            (_, Some((text, delimiter))) => {
                let value = convert_value(&pair.key, &text, delimiter);
                info.insert(pair.key, value);
            }
            (_, None) => {
                info.insert(pair.key, Value::Logical(true));
            }
        }
    }
    Ok(Header {
        columns: columns.unwrap_or_else(default_columns),
        info,
        qm9: false,
    })
}

fn plain_header(line: &str) -> Header {
    let mut info = BTreeMap::new();
    let text = line.trim();
    if !text.is_empty() {
        info.insert("comment".to_owned(), Value::Text(text.to_owned()));
    }
    Header {
        columns: default_columns(),
        info,
        qm9: false,
    }
}

/// How a value was written on the comment line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Delimiter {
    /// A bare word.
    Bare,
    /// `"..."`, with `\"` and `\\` escapes.
    Quoted,
    /// `{...}`.
    Braces,
    /// `[...]`, always an array; elements separated by commas or whitespace.
    Brackets,
}

/// A `key` or `key=value` of the comment line, before typing.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct RawPair {
    pub(super) key: String,
    pub(super) value: Option<(String, Delimiter)>,
}

/// Splits a comment line into keys and untyped values.
pub(super) fn split_pairs(line: &str) -> Result<Vec<RawPair>, String> {
    let chars: Vec<char> = line.chars().collect();
    let skip_space = |mut at: usize| {
        while at < chars.len() && chars[at].is_whitespace() {
            at += 1;
        }
        at
    };
    let mut pairs = Vec::new();
    let mut at = skip_space(0);
    while at < chars.len() {
        let start = at;
        while at < chars.len() && !chars[at].is_whitespace() && chars[at] != '=' {
            at += 1;
        }
        let key: String = chars[start..at].iter().collect();
        if key.is_empty() {
            return Err(format!("'=' without a key at character {}", at + 1));
        }
        let after_key = skip_space(at);
        if chars.get(after_key) != Some(&'=') {
            pairs.push(RawPair { key, value: None });
            at = after_key;
            continue;
        }
        at = skip_space(after_key + 1);
        let (value, end) = match chars.get(at) {
            None => return Err(format!("key '{key}' has no value after '='")),
            Some('"') => read_quoted(&chars, at + 1)
                .ok_or_else(|| format!("the quoted value of key '{key}' has no closing '\"'"))?,
            Some(&open @ ('{' | '[')) => {
                let close = if open == '{' { '}' } else { ']' };
                let length = chars[at + 1..]
                    .iter()
                    .position(|&c| c == close)
                    .ok_or_else(|| format!("the value of key '{key}' has no closing '{close}'"))?;
                let text: String = chars[at + 1..at + 1 + length].iter().collect();
                let delimiter = if open == '{' {
                    Delimiter::Braces
                } else {
                    Delimiter::Brackets
                };
                ((text, delimiter), at + length + 2)
            }
            Some(_) => {
                let start = at;
                let mut end = at;
                while end < chars.len() && !chars[end].is_whitespace() {
                    end += 1;
                }
                let text: String = chars[start..end].iter().collect();
                ((text, Delimiter::Bare), end)
            }
        };
        pairs.push(RawPair {
            key,
            value: Some(value),
        });
        at = skip_space(end);
    }
    Ok(pairs)
}

/// Reads a quoted value starting after its opening quote; returns it and the index after the
/// closing quote.
fn read_quoted(chars: &[char], start: usize) -> Option<((String, Delimiter), usize)> {
    let mut text = String::new();
    let mut at = start;
    while let Some(&c) = chars.get(at) {
        match (c, chars.get(at + 1)) {
            ('\\', Some(&next @ ('"' | '\\'))) => {
                text.push(next);
                at += 2;
            }
            ('"', _) => return Some(((text, Delimiter::Quoted), at + 1)),
            _ => {
                text.push(c);
                at += 1;
            }
        }
    }
    None
}

/// Types a value: integer, real, logical, arrays of them, or else text. `Lattice` is always
/// an array of reals.
pub(super) fn convert_value(key: &str, text: &str, delimiter: Delimiter) -> Value {
    let tokens: Vec<&str> = if delimiter == Delimiter::Brackets {
        text.split(|c: char| c == ',' || c.is_whitespace())
            .filter(|token| !token.is_empty())
            .collect()
    } else {
        text.split_whitespace().collect()
    };
    let value = if delimiter == Delimiter::Brackets || tokens.len() > 1 {
        convert_array(&tokens)
    } else {
        tokens.first().and_then(|token| convert_scalar(token))
    };
    match value {
        Some(Value::IntegerArray(values)) if key == "Lattice" => {
            Value::RealArray(values.into_iter().map(|value| value as f64).collect())
        }
        Some(value) => value,
        None => Value::Text(text.to_owned()),
    }
}

fn convert_scalar(token: &str) -> Option<Value> {
    if let Ok(value) = token.parse::<i64>() {
        Some(Value::Integer(value))
    } else if let Some(value) = parse_real(token) {
        Some(Value::Real(value))
    } else {
        parse_logical(token).map(Value::Logical)
    }
}

fn convert_array(tokens: &[&str]) -> Option<Value> {
    if let Ok(values) = tokens.iter().map(|token| token.parse::<i64>()).collect() {
        Some(Value::IntegerArray(values))
    } else if let Some(values) = tokens.iter().map(|token| parse_real(token)).collect() {
        Some(Value::RealArray(values))
    } else {
        let values: Option<Vec<bool>> = tokens.iter().map(|token| parse_logical(token)).collect();
        values.map(Value::LogicalArray)
    }
}

/// Parses a `Properties` spec such as `species:S:1:pos:R:3:forces:R:3`.
pub(super) fn parse_columns(spec: &str) -> Result<Vec<Column>, XyzProblem> {
    let invalid = |reason: String| XyzProblem::PropertiesSpec {
        spec: spec.to_owned(),
        reason,
    };
    let fields: Vec<&str> = spec.split(':').collect();
    if !fields.len().is_multiple_of(3) {
        return Err(invalid(format!(
            "expected name:type:columns triples, found {} fields",
            fields.len()
        )));
    }
    let mut columns: Vec<Column> = Vec::with_capacity(fields.len() / 3);
    for triple in fields.chunks_exact(3) {
        let (name, letter, count) = (triple[0], triple[1], triple[2]);
        if name.is_empty() {
            return Err(invalid("a column has an empty name".to_owned()));
        }
        let kind = match letter {
            "S" => ColumnKind::Text,
            "R" => ColumnKind::Real,
            "I" => ColumnKind::Integer,
            "L" => ColumnKind::Logical,
            _ => {
                return Err(invalid(format!(
                    "column '{name}' has type '{letter}', expected S, R, I or L"
                )))
            }
        };
        let count = match count.parse::<usize>() {
            Ok(count) if count > 0 => count,
            _ => {
                return Err(invalid(format!(
                    "column '{name}' has '{count}' columns, expected a positive integer"
                )))
            }
        };
        if columns.iter().any(|column| column.name == name) {
            return Err(invalid(format!("column '{name}' appears twice")));
        }
        columns.push(Column::new(name, kind, count));
    }
    let shape = |name: &str| {
        columns
            .iter()
            .find(|column| column.name == name)
            .map(|column| (column.kind, column.count))
    };
    match shape("species") {
        Some((ColumnKind::Text, 1)) => {}
        Some(_) => return Err(invalid("'species' must be S:1".to_owned())),
        None => match shape("Z") {
            Some((ColumnKind::Integer, 1)) => {}
            Some(_) => return Err(invalid("'Z' must be I:1".to_owned())),
            None => return Err(invalid("no 'species' (or 'Z') column".to_owned())),
        },
    }
    match shape("pos") {
        Some((ColumnKind::Real, 3)) => Ok(columns),
        Some(_) => Err(invalid("'pos' must be R:3".to_owned())),
        None => Err(invalid("no 'pos' column".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_values_of_an_ase_comment_line() {
        let header = parse_header(
            r#"Properties=species:S:1:pos:R:3:forces:R:3 energy=-309.47 pbc="F F F" step=10 config_type=bulk converged Lattice="10 0 0 0 10 0 0 0 10" name="a \"b\" c" tags=[1, 2] s={x y}"#,
        )
        .expect("valid comment line");
        assert_eq!(header.columns.len(), 3);
        assert_eq!(
            header.columns[2],
            Column::new("forces", ColumnKind::Real, 3)
        );
        let info = &header.info;
        assert_eq!(info["energy"], Value::Real(-309.47));
        assert_eq!(info["pbc"], Value::LogicalArray(vec![false; 3]));
        assert_eq!(info["step"], Value::Integer(10));
        assert_eq!(info["config_type"], Value::Text("bulk".to_owned()));
        assert_eq!(info["converged"], Value::Logical(true));
        assert_eq!(
            info["Lattice"],
            Value::RealArray(vec![10.0, 0.0, 0.0, 0.0, 10.0, 0.0, 0.0, 0.0, 10.0])
        );
        assert_eq!(info["name"], Value::Text("a \"b\" c".to_owned()));
        assert_eq!(info["tags"], Value::IntegerArray(vec![1, 2]));
        assert_eq!(info["s"], Value::Text("x y".to_owned()));
    }

    #[test]
    fn plain_comments_are_kept_whole() {
        let header = parse_header("ethanol, frame 3").expect("plain comment");
        assert_eq!(header.columns, default_columns());
        assert_eq!(
            header.info["comment"],
            Value::Text("ethanol, frame 3".to_owned())
        );
        assert!(parse_header("").expect("empty comment").info.is_empty());
        let unbalanced = parse_header("note: E = \"unfinished").expect("free text with '='");
        assert!(unbalanced.info.contains_key("comment"));
    }

    #[test]
    fn bad_properties_specs() {
        for (spec, reason) in [
            ("species:S:1:pos:R", "triples"),
            ("species:S:1:pos:X:3", "expected S, R, I or L"),
            ("species:S:1:pos:R:0", "positive integer"),
            ("species:S:1:pos:R:three", "positive integer"),
            ("species:S:1:pos:R:3:pos:R:3", "appears twice"),
            ("species:S:1", "no 'pos'"),
            ("pos:R:3", "no 'species'"),
            ("species:S:1:pos:R:2", "'pos' must be R:3"),
            ("species:R:1:pos:R:3", "'species' must be S:1"),
        ] {
            let problem = parse_columns(spec).expect_err(spec);
            assert!(problem.to_string().contains(reason), "{spec}: {problem}");
        }
        assert!(parse_columns("Z:I:1:pos:R:3").is_ok());
    }

    #[test]
    fn malformed_key_value_lines() {
        for (line, reason) in [
            (
                "Properties=species:S:1:pos:R:3 name=\"open",
                "no closing '\"'",
            ),
            ("Properties=species:S:1:pos:R:3 a=[1 2", "no closing ']'"),
            ("Properties=species:S:1:pos:R:3 a=", "no value"),
            ("Properties=species:S:1:pos:R:3 =5", "without a key"),
            ("Properties=species:S:1:pos:R:3 a=1 a=2", "appears twice"),
        ] {
            let problem = parse_header(line).expect_err(line);
            assert!(problem.to_string().contains(reason), "{line}: {problem}");
        }
    }

    #[test]
    fn scalars_and_arrays() {
        assert_eq!(
            convert_value("k", "1.5*^-3", Delimiter::Bare),
            Value::Real(1.5e-3)
        );
        assert_eq!(
            convert_value("k", "1", Delimiter::Brackets),
            Value::IntegerArray(vec![1])
        );
        assert_eq!(
            convert_value("k", "1 2.5", Delimiter::Quoted),
            Value::RealArray(vec![1.0, 2.5])
        );
        assert_eq!(
            convert_value("k", "", Delimiter::Quoted),
            Value::Text(String::new())
        );
        assert_eq!(
            convert_value("k", "1 x", Delimiter::Quoted),
            Value::Text("1 x".to_owned())
        );
    }
}
