//! Helpers shared by the text readers: file loading and number parsing.

use std::path::Path;

use super::IoError;

/// Reads a whole file, naming it by its path in errors.
pub(crate) fn read_bytes(path: &Path) -> Result<Vec<u8>, IoError> {
    std::fs::read(path).map_err(|source| IoError::Read {
        file: path.display().to_string(),
        source,
    })
}

/// Reads a whole text file; invalid UTF-8 is reported with its 1-based line.
pub(crate) fn read_text(path: &Path) -> Result<String, IoError> {
    let bytes = read_bytes(path)?;
    String::from_utf8(bytes).map_err(|error| {
        let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
        IoError::NotUtf8 {
            file: path.display().to_string(),
            line: 1 + valid.iter().filter(|&&byte| byte == b'\n').count(),
        }
    })
}

/// Parses a real number, also accepting Fortran exponents: `1.5D-3`, `1.5d-3` and the
/// `1.5*^-3` notation of some QM9 files.
pub(crate) fn parse_real(text: &str) -> Option<f64> {
    if let Ok(value) = text.parse::<f64>() {
        return Some(value);
    }
    if let Some((mantissa, exponent)) = text.split_once("*^") {
        return format!("{mantissa}e{exponent}").parse().ok();
    }
    let exponent_at = text.find(['D', 'd'])?;
    let (mantissa, exponent) = (&text[..exponent_at], &text[exponent_at + 1..]);
    let digit_before = mantissa.ends_with(|c: char| c.is_ascii_digit() || c == '.');
    let digit_after = exponent
        .trim_start_matches(['+', '-'])
        .starts_with(|c: char| c.is_ascii_digit());
    if digit_before && digit_after {
        format!("{mantissa}e{exponent}").parse().ok()
    } else {
        None
    }
}

/// Parses a logical value: `T`, `F`, `True`, `False` in any ASCII case.
pub(crate) fn parse_logical(text: &str) -> Option<bool> {
    if text.eq_ignore_ascii_case("t") || text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("f") || text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reals_with_fortran_exponents() {
        assert_eq!(parse_real("-1.25"), Some(-1.25));
        assert_eq!(parse_real("2.1997*^-6"), Some(2.1997e-6));
        assert_eq!(parse_real("1.5D-03"), Some(1.5e-3));
        assert_eq!(parse_real("3d2"), Some(300.0));
        assert_eq!(parse_real("1.0E+2"), Some(100.0));
        assert_eq!(parse_real("D"), None);
        assert_eq!(parse_real("1.0D"), None);
        assert_eq!(parse_real("abc"), None);
        assert_eq!(parse_real("1*^x"), None);
    }

    #[test]
    fn logicals() {
        assert_eq!(parse_logical("T"), Some(true));
        assert_eq!(parse_logical("false"), Some(false));
        assert_eq!(parse_logical("yes"), None);
    }
}
