//! Everything a run needs before its first step: data, task, and the state to resume.

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;

use crate::backend;
use crate::checkpoint::{self, Checkpoint, Progress};
use crate::config::{LoadedConfig, RunConfig};
use crate::data::{split, Structure};
use crate::error::TrainError;
use crate::task::Task;

/// The data of a run.
pub struct RunData {
    /// Training structures.
    pub train: Vec<Structure>,
    /// Fixed validation samples (noised windows for denoising).
    pub valid: Vec<Structure>,
    /// The task with its normalisation.
    pub task: Task,
}

/// Reads the training and validation data; fits the task on the training split unless a
/// checkpoint gives its normalisation.
///
/// # Errors
/// Unreadable data, missing labels, too few structures to split.
pub fn load_data(config: &RunConfig, resumed: Option<&Checkpoint>) -> Result<RunData, TrainError> {
    let data = &config.data;
    let train = Task::load(&config.task, &data.train, &data.train_trajectories, true)?;
    let (train, valid) = if data.valid.is_empty() && data.valid_trajectories.is_empty() {
        let count = train.len();
        split(train, data.valid_fraction, config.run.seed).ok_or_else(|| {
            TrainError::Dataset(format!(
                "data.train holds {count} structure(s): at least 2 are needed to hold some \
                 out for validation (or give data.valid)"
            ))
        })?
    } else {
        let valid = Task::load(&config.task, &data.valid, &data.valid_trajectories, true)?;
        (train, valid)
    };
    if train.is_empty() || valid.is_empty() {
        return Err(TrainError::Dataset(
            "no training or no validation structure".into(),
        ));
    }
    let task = match resumed {
        Some(checkpoint) => Task {
            config: config.task.clone(),
            normalizer: checkpoint.meta.normalizer.clone(),
        },
        None => Task::fit(&config.task, &train),
    };
    let valid = task.evaluation_set(valid, config.run.seed);
    Ok(RunData { train, valid, task })
}

/// The run folder's checkpoint folder.
pub fn checkpoint_folder(config: &RunConfig) -> PathBuf {
    config.run.dir.join("checkpoints")
}

/// The checkpoint to resume from: the latest one of the run folder that decodes, checked
/// against the configuration. `None` when the folder has none.
///
/// # Errors
/// Checkpoints exist but none decodes, or the configuration changed in a way that makes
/// resuming meaningless.
pub fn find_resume_point(
    loaded: &LoadedConfig,
    folder: &Path,
) -> Result<Option<(PathBuf, Checkpoint)>, TrainError> {
    checkpoint::remove_leftovers(folder);
    let candidates = checkpoint::list(folder)?;
    let mut failures = Vec::new();
    for (_, path) in candidates {
        match Checkpoint::read(&path) {
            Ok(found) => {
                check_compatible(loaded, &found, &path)?;
                for failure in &failures {
                    eprintln!("warning: skipped {failure}");
                }
                return Ok(Some((path, found)));
            }
            Err(error) => failures.push(error.to_string()),
        }
    }
    match failures.pop() {
        Some(last) => Err(TrainError::checkpoint(
            folder,
            format!("no checkpoint here can be read; the last one tried: {last}"),
        )),
        None => Ok(None),
    }
}

fn check_compatible(
    loaded: &LoadedConfig,
    found: &Checkpoint,
    path: &Path,
) -> Result<(), TrainError> {
    let stored = LoadedConfig::from_text(
        found.meta.config_text.clone(),
        found.meta.config_dir.clone(),
        &path.display().to_string(),
    );
    let current = &loaded.config;
    let changed = match &stored {
        Ok(stored) => {
            let stored = &stored.config;
            if stored.model != current.model {
                Some("[model]")
            } else if stored.task != current.task {
                Some("[task]")
            } else if stored.run.seed != current.run.seed {
                Some("run.seed")
            } else if stored.data != current.data {
                Some("[data]")
            } else if stored.training.batch_size != current.training.batch_size {
                Some("training.batch_size")
            } else {
                None
            }
        }
        Err(_) => None,
    };
    if let Some(section) = changed {
        return Err(TrainError::checkpoint(
            path,
            format!(
                "{section} of {} differs from the run's checkpoint; resume with the original \
                 configuration or choose a new run.dir",
                loaded.source
            ),
        ));
    }
    if found.meta.progress.seed != current.run.seed {
        return Err(TrainError::checkpoint(
            path,
            "written by a run with another seed",
        ));
    }
    Ok(())
}

/// A fresh progress record.
pub fn fresh_progress(seed: u64) -> Progress {
    Progress {
        seed,
        ..Progress::default()
    }
}

/// The devices of a run: those `training.devices` names (checked against the backend), or
/// `default` alone.
///
/// # Errors
/// A device index the backend does not have, as a configuration error.
pub(super) fn training_devices<B: Backend>(
    loaded: &LoadedConfig,
    default: &B::Device,
) -> Result<Vec<B::Device>, TrainError> {
    let config = &loaded.config;
    match &config.training.devices {
        None => Ok(vec![default.clone()]),
        Some(indices) => backend::devices::<B>(config.run.backend, indices).map_err(|message| {
            TrainError::Config {
                file: loaded.source.clone(),
                key: "training.devices".into(),
                message,
            }
        }),
    }
}
