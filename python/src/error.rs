//! Errors of the library as Python exceptions.

use equi_train::TrainError;
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::PyErr;

/// `ValueError` for what the caller can fix (configuration, data, checkpoint, inputs),
/// `OSError` for files that cannot be read or written, `RuntimeError` for the rest.
pub fn to_python(error: TrainError) -> PyErr {
    let message = error.to_string();
    match error {
        TrainError::Config { .. }
        | TrainError::Data(_)
        | TrainError::Dataset(_)
        | TrainError::Checkpoint { .. }
        | TrainError::Usage(_) => PyValueError::new_err(message),
        TrainError::File { .. } => PyOSError::new_err(message),
        TrainError::Model(_) | TrainError::BackendUnavailable(_) => {
            PyRuntimeError::new_err(message)
        }
    }
}
