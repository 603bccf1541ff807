//! The error type of training, evaluation and prediction: one line, naming what is wrong.

use std::path::Path;

use crate::io::IoError;

/// Why a run, an evaluation or a prediction could not proceed.
///
/// Every message is one line that names the offending config key, file or checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The configuration is invalid: `key` is a dotted path such as `optimizer.lr`.
    #[error("{file}: {key}: {message}")]
    Config {
        /// The configuration file.
        file: String,
        /// Dotted path of the offending key (or the line, for syntax errors).
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A data file could not be read or parsed.
    #[error(transparent)]
    Data(#[from] IoError),
    /// A data set does not fit the task (missing labels, no structures, ...).
    #[error("{0}")]
    Dataset(String),
    /// A checkpoint is missing, corrupt or does not fit the run.
    #[error("checkpoint {path}: {problem}")]
    Checkpoint {
        /// The checkpoint file or folder.
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// A file of the run folder could not be written or read.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Operating-system error.
        source: std::io::Error,
    },
    /// The model rejected its configuration or its input.
    #[error("model: {0}")]
    Model(String),
    /// The requested backend is not compiled into this build.
    #[error("backend '{0}' is not part of this build: rebuild with `--features {0}`")]
    BackendUnavailable(String),
    /// A command-line option is invalid.
    #[error("{0}")]
    Usage(String),
}

impl TrainError {
    /// A [`TrainError::File`] for `path`.
    pub fn file(path: &Path, source: std::io::Error) -> Self {
        Self::File {
            path: path.display().to_string(),
            source,
        }
    }

    /// A [`TrainError::Checkpoint`] for `path`.
    pub fn checkpoint(path: &Path, problem: impl Into<String>) -> Self {
        Self::Checkpoint {
            path: path.display().to_string(),
            problem: problem.into(),
        }
    }
}

impl From<equi_nn::ModelError> for TrainError {
    fn from(error: equi_nn::ModelError) -> Self {
        Self::Model(error.to_string())
    }
}

impl From<equi_nn::schnet::SchNetError> for TrainError {
    fn from(error: equi_nn::schnet::SchNetError) -> Self {
        Self::Model(error.to_string())
    }
}
