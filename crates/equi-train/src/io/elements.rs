//! The periodic table: element symbols and atomic numbers, hydrogen (1) to oganesson (118).

/// Largest atomic number known to [`atomic_number`] and [`element_symbol`] (oganesson).
pub const MAX_ATOMIC_NUMBER: u8 = 118;

/// Element symbols in order of atomic number; `SYMBOLS[z - 1]` is the symbol of element `z`.
const SYMBOLS: [&str; MAX_ATOMIC_NUMBER as usize] = [
    "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S", "Cl",
    "Ar", "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As",
    "Se", "Br", "Kr", "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In",
    "Sn", "Sb", "Te", "I", "Xe", "Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb",
    "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W", "Re", "Os", "Ir", "Pt", "Au", "Hg", "Tl",
    "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th", "Pa", "U", "Np", "Pu", "Am", "Cm", "Bk",
    "Cf", "Es", "Fm", "Md", "No", "Lr", "Rf", "Db", "Sg", "Bh", "Hs", "Mt", "Ds", "Rg", "Cn", "Nh",
    "Fl", "Mc", "Lv", "Ts", "Og",
];

/// Atomic number of an element symbol, ignoring ASCII case and surrounding whitespace
/// (`"C"`, `"cl"` and `"FE"` are carbon, chlorine and iron); `None` for anything else.
///
/// ```
/// use equi_train::io::elements::atomic_number;
/// assert_eq!(atomic_number("Cl"), Some(17));
/// assert_eq!(atomic_number("FE"), Some(26));
/// assert_eq!(atomic_number("Xx"), None);
/// ```
pub fn atomic_number(symbol: &str) -> Option<u8> {
    let symbol = symbol.trim();
    SYMBOLS
        .iter()
        .position(|candidate| candidate.eq_ignore_ascii_case(symbol))
        .and_then(|index| u8::try_from(index + 1).ok())
}

/// Element symbol of an atomic number in `1..=118` (`6` is `"C"`); `None` outside that range.
///
/// ```
/// use equi_train::io::elements::element_symbol;
/// assert_eq!(element_symbol(8), Some("O"));
/// assert_eq!(element_symbol(0), None);
/// ```
pub fn element_symbol(atomic_number: u8) -> Option<&'static str> {
    usize::from(atomic_number)
        .checked_sub(1)
        .and_then(|index| SYMBOLS.get(index))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_and_numbers_round_trip() {
        for z in 1..=MAX_ATOMIC_NUMBER {
            let symbol = element_symbol(z).expect("every number in range has a symbol");
            assert_eq!(atomic_number(symbol), Some(z));
            assert_eq!(atomic_number(&symbol.to_ascii_uppercase()), Some(z));
            assert_eq!(atomic_number(&symbol.to_ascii_lowercase()), Some(z));
        }
        assert_eq!(element_symbol(MAX_ATOMIC_NUMBER + 1), None);
    }

    #[test]
    fn known_elements() {
        assert_eq!(atomic_number("H"), Some(1));
        assert_eq!(atomic_number(" o "), Some(8));
        assert_eq!(atomic_number("Og"), Some(118));
        assert_eq!(element_symbol(79), Some("Au"));
        assert_eq!(atomic_number(""), None);
        assert_eq!(atomic_number("D"), None);
        assert_eq!(atomic_number("Carbon"), None);
    }
}
