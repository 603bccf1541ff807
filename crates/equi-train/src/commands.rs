//! The three commands of the `equiformer` program: train, evaluate, predict.

use std::path::{Path, PathBuf};

use burn::tensor::backend::AutodiffBackend;

use crate::backend::{dispatch, OnBackend};
use crate::checkpoint::{self, Checkpoint};
use crate::config::{ForceSource, LoadedConfig, ModelChoice, TaskConfig};
use crate::data::{molecule, HostBatch, LabelSpec, Structure};
use crate::error::TrainError;
use crate::evaluate::Predictor;
use crate::io::extxyz::{read_extxyz, write_extxyz, Frame, Value};
use crate::model::Network;
use crate::task::{Prediction, Task};
use crate::train::{train, StepControl, TrainOptions, TrainReport};

/// Trains as the configuration file says, printing progress.
///
/// # Errors
/// See [`train`].
pub fn train_from_file(config: &Path, options: TrainOptions) -> Result<TrainReport, TrainError> {
    let loaded = LoadedConfig::from_file(config)?;
    struct Work<'a>(&'a LoadedConfig, TrainOptions);
    impl OnBackend for Work<'_> {
        type Output = TrainReport;
        fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<TrainReport, TrainError> {
            train::<B>(self.0, &device, self.1, &mut |_| StepControl::Continue)
        }
    }
    dispatch(loaded.config.run.backend, Work(&loaded, options))
}

/// Options shared by evaluation and prediction.
#[derive(Clone, Debug, Default)]
pub struct InferenceOptions {
    /// Forces from the direct head or the energy gradient (default: the task's choice).
    pub forces: Option<ForceSource>,
    /// Structures per batch (default: the run's validation batch size).
    pub batch_size: Option<usize>,
}

/// The metrics of a checkpoint on a labelled file (extended XYZ, or PDB for denoising).
///
/// # Errors
/// An unusable checkpoint, an unreadable data file or one without the task's labels.
pub fn evaluate_file(
    checkpoint_path: &Path,
    data: &Path,
    options: &InferenceOptions,
) -> Result<Vec<(String, f64)>, TrainError> {
    let (path, found, loaded) = open_checkpoint(checkpoint_path)?;
    struct Work<'a> {
        path: PathBuf,
        found: Checkpoint,
        loaded: &'a LoadedConfig,
        data: &'a Path,
        options: &'a InferenceOptions,
    }
    impl OnBackend for Work<'_> {
        type Output = Vec<(String, f64)>;
        fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<Self::Output, TrainError> {
            let (task, network) = restore::<B>(&self.path, self.found, self.loaded, &device)?;
            check_input_kind(&task, self.data)?;
            let structures = Task::load(&task.config, &[self.data.to_path_buf()], &[], true)?;
            let samples = task.evaluation_set(structures, self.loaded.config.run.seed);
            if samples.is_empty() {
                return Err(no_structures(self.data));
            }
            let forces = checked_forces(self.loaded, &task, self.options.forces)?;
            let predictor = Predictor::new(&network, &task, forces, &device);
            predictor.evaluate(&samples, batch_size(self.loaded, self.options))
        }
    }
    let backend = loaded.config.run.backend;
    dispatch(
        backend,
        Work {
            path,
            found,
            loaded: &loaded,
            data,
            options,
        },
    )
}

/// Writes the predictions of a checkpoint for every structure of `input` to `output`
/// (extended XYZ); returns the number of structures written.
///
/// Energies, forces and properties go under the task's names (the input's values of those
/// names are kept as `ref_<name>`). For denoising, `input` is a PDB file and the output holds
/// its backbone atoms moved by minus the predicted noise, with the noise as the per-atom
/// array `predicted_noise`.
///
/// # Errors
/// An unusable checkpoint, an unreadable input, an unwritable output.
pub fn predict_file(
    checkpoint_path: &Path,
    input: &Path,
    output: &Path,
    options: &InferenceOptions,
) -> Result<usize, TrainError> {
    let (path, found, loaded) = open_checkpoint(checkpoint_path)?;
    struct Work<'a> {
        path: PathBuf,
        found: Checkpoint,
        loaded: &'a LoadedConfig,
        input: &'a Path,
        output: &'a Path,
        options: &'a InferenceOptions,
    }
    impl OnBackend for Work<'_> {
        type Output = usize;
        fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<usize, TrainError> {
            let (task, network) = restore::<B>(&self.path, self.found, self.loaded, &device)?;
            check_input_kind(&task, self.input)?;
            let forces = checked_forces(self.loaded, &task, self.options.forces)?;
            let predictor = Predictor::new(&network, &task, forces, &device);
            let size = batch_size(self.loaded, self.options);
            let frames = match &task.config {
                TaskConfig::Denoise(_) => {
                    let structures =
                        Task::load(&task.config, &[self.input.to_path_buf()], &[], false)?;
                    let predictions = predictor.predict_all(&structures, size)?;
                    denoised_frames(&structures, &predictions)
                }
                TaskConfig::Property(p) => {
                    let frames = read_extxyz(self.input)?;
                    let predictions = predict_frames(&predictor, &frames, self.input, size)?;
                    labelled_frames(frames, &predictions, &p.property, None)
                }
                TaskConfig::EnergyForces(e) => {
                    let frames = read_extxyz(self.input)?;
                    let predictions = predict_frames(&predictor, &frames, self.input, size)?;
                    let forces = Some(e.forces_key.as_str());
                    labelled_frames(frames, &predictions, &e.energy_key, forces)
                }
            };
            if frames.is_empty() {
                return Err(no_structures(self.input));
            }
            write_extxyz(self.output, &frames)?;
            Ok(frames.len())
        }
    }
    let backend = loaded.config.run.backend;
    dispatch(
        backend,
        Work {
            path,
            found,
            loaded: &loaded,
            input,
            output,
            options,
        },
    )
}

fn no_structures(path: &Path) -> TrainError {
    TrainError::Dataset(format!("{}: holds no structure", path.display()))
}

fn no_labels() -> LabelSpec<'static> {
    LabelSpec {
        scalar: None,
        vectors: None,
        stress: false,
        required: false,
    }
}

/// The checkpoint at `path` (a `.ckpt` file, or a run folder: its latest readable checkpoint)
/// with the file it was read from and its stored configuration.
///
/// # Errors
/// No readable checkpoint at `path`, or a stored configuration that no longer parses.
pub fn open_checkpoint(path: &Path) -> Result<(PathBuf, Checkpoint, LoadedConfig), TrainError> {
    let (path, found) = checkpoint::locate(path)?;
    let loaded = LoadedConfig::from_text(
        found.meta.config_text.clone(),
        found.meta.config_dir.clone(),
        &format!("{} (stored configuration)", path.display()),
    )
    .map_err(|e| TrainError::checkpoint(&path, e.to_string()))?;
    Ok((path, found, loaded))
}

/// The task (with its fitted normalizer) and the trained network of a checkpoint opened by
/// [`open_checkpoint`], on `device`; `path` names the checkpoint in errors.
///
/// # Errors
/// Weights that do not fit the stored model configuration, or a configuration the model
/// rejects.
pub fn restore<B: AutodiffBackend>(
    path: &Path,
    found: Checkpoint,
    loaded: &LoadedConfig,
    device: &B::Device,
) -> Result<(Task, Network<B>), TrainError> {
    let task = Task {
        config: loaded.config.task.clone(),
        normalizer: found.meta.normalizer,
    };
    let network = loaded.model.init::<B>(device)?;
    let network = checkpoint::load_module(network, found.model, device, path)?;
    Ok((task, network))
}

fn batch_size(loaded: &LoadedConfig, options: &InferenceOptions) -> usize {
    let training = &loaded.config.training;
    options
        .batch_size
        .or(training.valid_batch_size)
        .unwrap_or(training.batch_size)
}

fn check_input_kind(task: &Task, path: &Path) -> Result<(), TrainError> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let (fits, expected) = match task.config {
        TaskConfig::Denoise(_) => (extension == "pdb", "a PDB file (.pdb)"),
        _ => (
            extension == "xyz" || extension == "extxyz",
            "an extended XYZ file (.xyz or .extxyz)",
        ),
    };
    if fits {
        Ok(())
    } else {
        Err(TrainError::Usage(format!(
            "{}: this checkpoint's task reads {expected}",
            path.display()
        )))
    }
}

/// The force source asked for, checked against the task and the model.
fn checked_forces(
    loaded: &LoadedConfig,
    task: &Task,
    asked: Option<ForceSource>,
) -> Result<Option<ForceSource>, TrainError> {
    let Some(asked) = asked else {
        return Ok(task.forces());
    };
    if task.forces().is_none() {
        return Err(TrainError::Usage(
            "--forces applies to energy_forces checkpoints only".into(),
        ));
    }
    match (&loaded.model, asked) {
        (model, ForceSource::Direct) if !model.has_vector_output() => {
            Err(TrainError::Usage(format!(
                "a {} model has no force head: use --forces gradient",
                model.name()
            )))
        }
        (ModelChoice::SchNet(config), ForceSource::Gradient) if config.dropout > 0.0 => {
            Err(TrainError::Usage(
                "gradient forces need model.schnet.dropout = 0 (dropout would be applied)".into(),
            ))
        }
        _ => Ok(Some(asked)),
    }
}

fn denoised_frames(
    structures: &[Structure],
    predictions: &[(HostBatch, Prediction)],
) -> Vec<Frame> {
    let mut frames = Vec::new();
    let mut structures = structures.iter();
    for (host, prediction) in predictions {
        for g in 0..host.graphs {
            let Some(structure) = structures.next() else {
                break;
            };
            let noise = per_atom(host, prediction, g);
            let positions = structure
                .positions
                .iter()
                .zip(&noise)
                .map(|(x, d)| [x[0] - d[0], x[1] - d[1], x[2] - d[2]])
                .collect();
            let mut frame = Frame::new(structure.atomic_numbers.clone(), positions);
            frame.set_vectors("predicted_noise", &noise);
            frame
                .info
                .insert("source".into(), Value::Text(structure.origin.clone()));
            frames.push(frame);
        }
    }
    frames
}

/// Predictions for the molecules of extended XYZ frames (labels not needed).
fn predict_frames<B: AutodiffBackend>(
    predictor: &Predictor<B>,
    frames: &[Frame],
    input: &Path,
    batch_size: usize,
) -> Result<Vec<(HostBatch, Prediction)>, TrainError> {
    let structures = frames
        .iter()
        .enumerate()
        .map(|(i, frame)| {
            let origin = format!("{} frame {}", input.display(), i + 1);
            molecule(frame.clone(), origin, no_labels())
        })
        .collect::<Result<Vec<_>, _>>()?;
    predictor.predict_all(&structures, batch_size)
}

/// The frames with the predictions under `scalar_key` (and `vector_key`); values already
/// under those names are kept as `ref_<name>`.
fn labelled_frames(
    frames: Vec<Frame>,
    predictions: &[(HostBatch, Prediction)],
    scalar_key: &str,
    vector_key: Option<&str>,
) -> Vec<Frame> {
    let graphs = predictions
        .iter()
        .flat_map(|(host, prediction)| (0..host.graphs).map(move |g| (host, prediction, g)));
    frames
        .into_iter()
        .zip(graphs)
        .map(|(mut frame, (host, prediction, g))| {
            if let Some(reference) = frame.info.remove(scalar_key) {
                frame.info.insert(format!("ref_{scalar_key}"), reference);
            }
            frame
                .info
                .insert(scalar_key.to_owned(), Value::Real(prediction.scalars[g]));
            if let (Some(key), Some(_)) = (vector_key, &prediction.vectors) {
                if let Some(reference) = frame.arrays.remove(key) {
                    frame.arrays.insert(format!("ref_{key}"), reference);
                }
                frame.set_vectors(key, &per_atom(host, prediction, g));
            }
            if let Some(stress) = prediction.stress.as_ref().and_then(|s| s[g]) {
                for key in ["stress", "virial"] {
                    if let Some(reference) = frame.info.remove(key) {
                        frame.info.insert(format!("ref_{key}"), reference);
                    }
                }
                frame.set_stress(stress);
            }
            frame
        })
        .collect()
}

fn per_atom(host: &HostBatch, prediction: &Prediction, g: usize) -> Vec<[f64; 3]> {
    let Some(vectors) = &prediction.vectors else {
        return vec![[0.0; 3]; host.counts[g]];
    };
    host.atoms(g)
        .map(|node| {
            [
                vectors[3 * node],
                vectors[3 * node + 1],
                vectors[3 * node + 2],
            ]
        })
        .collect()
}
