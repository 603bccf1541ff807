//! One structure from NumPy arrays, checked: shapes, finite values, known elements, a valid
//! cell where any axis is periodic.

use atoms::{Cell, Pbc};
use equi_train::data::Structure;
use equi_train::io::elements::{element_symbol, MAX_ATOMIC_NUMBER};
use numpy::ndarray::ArrayViewD;

/// What the model was trained on, for checking inputs.
pub struct Known<'a> {
    /// Elements with a fitted reference energy; empty when the baseline has none (every
    /// element `1..=118` is then accepted).
    pub elements: &'a [u8],
}

/// The structure of `numbers` `[n]`, `positions` `[n, 3]` (Angstrom), `cell` `[3, 3]` (lattice
/// vectors as rows, Angstrom) and `pbc` `[3]`. Without a periodic axis the structure is a
/// molecule and the cell is not read.
///
/// The arrays are read in place (any strides); the structure owns its copy.
///
/// # Errors
/// A message naming the array and what is wrong with it.
pub fn structure(
    numbers: ArrayViewD<'_, i64>,
    positions: ArrayViewD<'_, f64>,
    cell: Option<ArrayViewD<'_, f64>>,
    pbc: Option<ArrayViewD<'_, bool>>,
    known: &Known,
) -> Result<Structure, String> {
    let count = match positions.shape() {
        [n, 3] => *n,
        shape => return Err(format!("positions must have shape (n, 3), not {shape:?}")),
    };
    if count == 0 {
        return Err("the structure has no atoms".into());
    }
    if numbers.shape() != [count] {
        return Err(format!(
            "numbers must have shape ({count},) for {count} positions, not {:?}",
            numbers.shape()
        ));
    }
    let atomic_numbers = numbers
        .iter()
        .enumerate()
        .map(|(i, &z)| element(i, z, known))
        .collect::<Result<Vec<u8>, String>>()?;
    let positions = positions
        .rows()
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            let x = [row[0], row[1], row[2]];
            if x.iter().all(|v| v.is_finite()) {
                Ok(x)
            } else {
                Err(format!("the position of atom {i} is not finite: {x:?}"))
            }
        })
        .collect::<Result<Vec<_>, String>>()?;
    let pbc = periodicity(pbc)?;
    let cell = if pbc.iter().any(|&p| p) {
        Some(lattice(cell, pbc)?)
    } else {
        None
    };
    Ok(Structure {
        origin: "the input structure".into(),
        tokens: atomic_numbers.iter().map(|&z| i64::from(z)).collect(),
        atomic_numbers,
        positions,
        scalar: None,
        vectors: None,
        cell,
        pbc,
        stress: None,
    })
}

/// The atomic number `z` of atom `index`, if it is an element the model knows.
fn element(index: usize, z: i64, known: &Known) -> Result<u8, String> {
    let Some(z) = u8::try_from(z)
        .ok()
        .filter(|&z| (1..=MAX_ATOMIC_NUMBER).contains(&z))
    else {
        return Err(format!(
            "atom {index} has atomic number {z}, which is no element (1 to {MAX_ATOMIC_NUMBER})"
        ));
    };
    if known.elements.is_empty() || known.elements.contains(&z) {
        return Ok(z);
    }
    let symbols: Vec<&str> = known
        .elements
        .iter()
        .map(|&e| element_symbol(e).unwrap_or("?"))
        .collect();
    Err(format!(
        "atom {index} is {} (Z = {z}), an element the model was not trained on (it knows {})",
        element_symbol(z).unwrap_or("?"),
        symbols.join(", ")
    ))
}

fn periodicity(pbc: Option<ArrayViewD<'_, bool>>) -> Result<Pbc, String> {
    let Some(pbc) = pbc else {
        return Ok([false; 3]);
    };
    if pbc.shape() != [3] {
        return Err(format!("pbc must have shape (3,), not {:?}", pbc.shape()));
    }
    Ok([pbc[[0]], pbc[[1]], pbc[[2]]])
}

fn lattice(cell: Option<ArrayViewD<'_, f64>>, pbc: Pbc) -> Result<Cell, String> {
    let Some(cell) = cell else {
        return Err(format!("pbc is {pbc:?} but no cell is given"));
    };
    if cell.shape() != [3, 3] {
        return Err(format!(
            "cell must have shape (3, 3), not {:?}",
            cell.shape()
        ));
    }
    let mut rows = [[0.0; 3]; 3];
    for (a, row) in rows.iter_mut().enumerate() {
        for (c, value) in row.iter_mut().enumerate() {
            *value = cell[[a, c]];
        }
    }
    Cell::new(rows).map_err(|e| format!("pbc is {pbc:?} but the cell {rows:?} is unusable: {e}"))
}
