//! Python bindings of equiformer-rs, built by maturin into the module `equiformer._native`:
//!
//! - [`potential::Potential`]: a trained `energy_forces` checkpoint (conservative forces) that
//!   returns the energy, forces and stress of a structure given as NumPy arrays; the ASE
//!   calculator `equiformer.EquiformerCalculator` (Python) is written on it;
//! - [`train`]: runs a TOML configuration, as `equiformer train` does.
//!
//! Everything runs on Burn's CPU backend (ndarray); inputs are checked before the model sees
//! them, and every error reaches Python as an exception (`ValueError` for bad inputs).

mod error;
mod potential;
mod structure;

use std::path::PathBuf;

use equi_train::commands::train_from_file;
use equi_train::train::TrainOptions;
use pyo3::prelude::*;

/// Trains as the TOML configuration `config` says (what `equiformer train --config` does)
/// and returns the last checkpoint written (`None` when no step was taken).
///
/// `resume` continues from the run folder's latest checkpoint; `quiet` prints nothing.
/// Training computes in float32: a process that built a float64 potential cannot train.
#[pyfunction]
#[pyo3(signature = (config, resume = false, quiet = true))]
fn train(py: Python<'_>, config: PathBuf, resume: bool, quiet: bool) -> PyResult<Option<PathBuf>> {
    let report = py
        .detach(|| {
            potential::claim_precision("float32")?;
            train_from_file(&config, TrainOptions { resume, quiet })
        })
        .map_err(error::to_python)?;
    Ok(report.last_checkpoint)
}

/// The compiled part of the `equiformer` package.
#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<potential::Potential>()?;
    module.add_function(wrap_pyfunction!(train, module)?)?;
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
