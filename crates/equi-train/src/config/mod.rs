//! The TOML run configuration: model, task, data, optimizer, schedule and training length.
//!
//! Every table rejects unknown keys, and every error names the offending key as a dotted
//! path (`optimizer.lr`, `task.property.readout`, `data.train[1]`). Relative paths are taken
//! relative to the folder of the configuration file. See `docs/training.md` for a reference of
//! every key.

mod checks;
mod model;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use model::ModelChoice;

use crate::error::TrainError;

/// A complete run configuration, as read from a TOML file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Where the run lives, its seed and its backend.
    pub run: RunSection,
    /// The model: `[model.equiformer]` or `[model.schnet]` with the model's options.
    pub model: ModelSpec,
    /// The task: `[task.denoise]`, `[task.property]` or `[task.energy_forces]`.
    pub task: TaskConfig,
    /// Training and validation files.
    pub data: DataConfig,
    /// The optimizer (default: Adam, learning rate 1e-3).
    #[serde(default)]
    pub optimizer: OptimizerConfig,
    /// The learning-rate schedule (default: constant).
    #[serde(default)]
    pub schedule: ScheduleConfig,
    /// Epochs, batch size and checkpointing.
    pub training: TrainingConfig,
}

/// `[run]`: the run folder, the seed and the backend.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    /// Folder for checkpoints, metrics and plots (created if needed).
    pub dir: PathBuf,
    /// Seed of every random choice: initial weights, shuffling, crops, noise, splits.
    #[serde(default)]
    pub seed: u64,
    /// Backend: `ndarray` (CPU, default), `wgpu` or `cuda` (when compiled in).
    #[serde(default)]
    pub backend: BackendKind,
}

/// A compute backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// The CPU backend (feature `ndarray`).
    #[default]
    Ndarray,
    /// GPUs through WebGPU (feature `wgpu`).
    Wgpu,
    /// NVIDIA GPUs (feature `cuda`).
    Cuda,
}

impl BackendKind {
    /// The name used in configs and cargo features.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ndarray => "ndarray",
            Self::Wgpu => "wgpu",
            Self::Cuda => "cuda",
        }
    }
}

/// `[model.<kind>]`: the model and its options, as written in the file.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum ModelSpec {
    /// An Equiformer; the table holds options of `equi_nn::EquiformerConfig`.
    Equiformer(toml::Table),
    /// SchNet; the table holds options of `equi_nn::schnet::SchNetConfig`.
    Schnet(toml::Table),
}

/// `[task.<kind>]`: what is learned.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum TaskConfig {
    /// Predict the Gaussian noise added to protein backbone coordinates.
    Denoise(DenoiseConfig),
    /// Regress one per-structure property of an extended XYZ file.
    Property(PropertyConfig),
    /// Learn energies (sum of per-atom outputs) and forces.
    EnergyForces(EnergyForcesConfig),
}

/// `[task.denoise]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DenoiseConfig {
    /// Standard deviation of the noise on every coordinate, in Angstrom.
    #[serde(default = "default_noise_sigma")]
    pub noise_sigma: f64,
    /// Residues per random crop of contiguous residues; 0 keeps whole structures.
    #[serde(default = "default_crop_residues")]
    pub crop_residues: usize,
}

/// How per-atom outputs become one value per structure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Readout {
    /// Sum over atoms (extensive properties such as energies).
    #[default]
    Sum,
    /// Mean over atoms (intensive properties).
    Mean,
}

/// What is subtracted from a target before the model sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Baseline {
    /// Nothing.
    None,
    /// The mean of the training targets.
    Mean,
    /// A reference value per element, fitted by least squares on the training split.
    Elements,
}

/// `[task.property]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PropertyConfig {
    /// Name of the per-frame property on the extended XYZ comment line, e.g. `U0`.
    pub property: String,
    /// Sum (default) or mean of the per-atom outputs.
    #[serde(default)]
    pub readout: Readout,
    /// What to subtract before learning (default `mean`).
    #[serde(default = "default_property_baseline")]
    pub baseline: Baseline,
    /// Divide targets by their standard deviation after the baseline (default true).
    #[serde(default = "default_true")]
    pub standardize: bool,
}

/// Where predicted forces come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ForceSource {
    /// Minus the gradient of the predicted energy (and the stress as its strain
    /// derivative), in training too: an energy-conserving potential.
    #[default]
    Conservative,
    /// The degree-1 (vector) output of the model, trained on the force labels.
    Direct,
    /// Minus the gradient of the predicted energy, at inference; training uses energies only.
    Gradient,
}

impl ForceSource {
    /// The name used in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Conservative => "conservative",
            Self::Direct => "direct",
            Self::Gradient => "gradient",
        }
    }
}

/// `[task.energy_forces]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EnergyForcesConfig {
    /// Name of the energy on the comment line (default `energy`), in eV.
    #[serde(default = "default_energy_key")]
    pub energy_key: String,
    /// Name of the per-atom force array (default `forces`), in eV/Angstrom.
    #[serde(default = "default_forces_key")]
    pub forces_key: String,
    /// `conservative` (default): forces `-dE/dx` and stress `(1/V) dE/d(strain)`, trained
    /// as such; `direct`: a force head trained on forces; `gradient`: -dE/dx at inference
    /// only, trained on energies.
    #[serde(default)]
    pub forces: ForceSource,
    /// Weight of the per-atom energy error in the loss (default 1).
    #[serde(default = "default_one")]
    pub energy_weight: f64,
    /// Weight of the force error in the loss (default 1; must be 0 with `gradient`).
    #[serde(default = "default_forces_weight")]
    pub forces_weight: f64,
    /// Weight of the stress error in the loss (default 0; needs `conservative` forces).
    /// Stress labels are read from `stress` (eV/A^3) or `virial` (eV) on the comment line.
    #[serde(default)]
    pub stress_weight: f64,
    /// What to subtract from energies before learning (default `elements`: per-element
    /// reference energies fitted by least squares on the training split).
    #[serde(default = "default_energy_baseline")]
    pub baseline: Baseline,
    /// The most periodic images of the cell the neighbour search of one structure may
    /// visit (default 100000): a nearly degenerate cell is refused, not searched forever.
    #[serde(default = "default_max_images")]
    pub max_images: usize,
}

fn default_max_images() -> usize {
    100_000
}

/// A DCD trajectory and the PDB file that gives its atoms.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrajectoryConfig {
    /// The DCD file.
    pub dcd: PathBuf,
    /// The PDB file with the same atoms in the same order.
    pub topology: PathBuf,
    /// Keep every `stride`-th frame (default 1).
    #[serde(default = "default_stride")]
    pub stride: usize,
}

/// `[data]`: training and validation files.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Training files: extended XYZ (`.xyz`, `.extxyz`) or PDB (`.pdb`).
    #[serde(default)]
    pub train: Vec<PathBuf>,
    /// Training trajectories (denoising).
    #[serde(default)]
    pub train_trajectories: Vec<TrajectoryConfig>,
    /// Validation files; when there are none, `valid_fraction` of the training data is held out.
    #[serde(default)]
    pub valid: Vec<PathBuf>,
    /// Validation trajectories (denoising).
    #[serde(default)]
    pub valid_trajectories: Vec<TrajectoryConfig>,
    /// Fraction of the training structures held out for validation when no validation file
    /// is given (default 0.1).
    #[serde(default = "default_valid_fraction")]
    pub valid_fraction: f64,
}

/// Which first-order optimizer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// Adam, with optional L2 weight decay.
    #[default]
    Adam,
    /// AdamW (decoupled weight decay).
    Adamw,
}

/// `[optimizer]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OptimizerConfig {
    /// `adam` (default) or `adamw`.
    #[serde(default)]
    pub kind: OptimizerKind,
    /// Peak learning rate (default 1e-3).
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// First-moment decay (default 0.9).
    #[serde(default = "default_beta_1")]
    pub beta_1: f32,
    /// Second-moment decay (default 0.999).
    #[serde(default = "default_beta_2")]
    pub beta_2: f32,
    /// Numerical-stability term (default 1e-8).
    #[serde(default = "default_epsilon")]
    pub epsilon: f32,
    /// Weight decay (default 0).
    #[serde(default)]
    pub weight_decay: f32,
    /// Clip the gradient norm of every parameter tensor to this value (default: no clipping).
    #[serde(default)]
    pub grad_clip_norm: Option<f32>,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        Self {
            kind: OptimizerKind::Adam,
            lr: default_lr(),
            beta_1: default_beta_1(),
            beta_2: default_beta_2(),
            epsilon: default_epsilon(),
            weight_decay: 0.0,
            grad_clip_norm: None,
        }
    }
}

/// Shape of the learning-rate schedule after the warm-up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    /// Constant at `optimizer.lr`.
    #[default]
    Constant,
    /// Half a cosine from `optimizer.lr` down to `min_lr` at the last step.
    Cosine,
    /// A straight line from `optimizer.lr` down to `min_lr` at the last step.
    Linear,
}

/// `[schedule]`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// `constant` (default), `cosine` or `linear`.
    #[serde(default)]
    pub kind: ScheduleKind,
    /// Steps of linear warm-up from 0 to `optimizer.lr` (default 0).
    #[serde(default)]
    pub warmup_steps: usize,
    /// Final learning rate of `cosine` and `linear` (default 0).
    #[serde(default)]
    pub min_lr: f64,
}

/// `[training]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainingConfig {
    /// Number of passes over the training data.
    pub epochs: usize,
    /// Structures per step.
    pub batch_size: usize,
    /// Structures per validation batch (default: `batch_size`).
    #[serde(default)]
    pub valid_batch_size: Option<usize>,
    /// Also write a checkpoint every this many steps inside an epoch (default: only at the
    /// end of each epoch).
    #[serde(default)]
    pub checkpoint_every_steps: Option<usize>,
    /// How many of the latest checkpoints to keep (default 2); `best.ckpt` is kept apart.
    #[serde(default = "default_keep_checkpoints")]
    pub keep_checkpoints: usize,
    /// Devices of the backend that share each batch (data parallelism), by index; the first
    /// holds the model and the optimizer. Default: the backend's default device alone.
    #[serde(default)]
    pub devices: Option<Vec<usize>>,
}

fn default_noise_sigma() -> f64 {
    1.0
}
fn default_crop_residues() -> usize {
    64
}
fn default_property_baseline() -> Baseline {
    Baseline::Mean
}
fn default_energy_baseline() -> Baseline {
    Baseline::Elements
}
fn default_true() -> bool {
    true
}
fn default_energy_key() -> String {
    "energy".into()
}
fn default_forces_key() -> String {
    "forces".into()
}
fn default_one() -> f64 {
    1.0
}
fn default_forces_weight() -> f64 {
    1.0
}
fn default_stride() -> usize {
    1
}
fn default_valid_fraction() -> f64 {
    0.1
}
fn default_lr() -> f64 {
    1e-3
}
fn default_beta_1() -> f32 {
    0.9
}
fn default_beta_2() -> f32 {
    0.999
}
fn default_epsilon() -> f32 {
    1e-8
}
fn default_keep_checkpoints() -> usize {
    2
}

/// A configuration read from a file, with its paths resolved and its model built.
#[derive(Clone, Debug)]
pub struct LoadedConfig {
    /// The configuration, paths absolute.
    pub config: RunConfig,
    /// The model configuration, completed for the task.
    pub model: ModelChoice,
    /// The file text, stored in checkpoints.
    pub text: String,
    /// Folder relative paths were resolved against.
    pub base_dir: PathBuf,
    /// Name of the source, for messages.
    pub source: String,
}

impl LoadedConfig {
    /// Reads and checks a configuration file.
    ///
    /// # Errors
    /// A missing or unreadable file, a TOML syntax error, an unknown key, a value of the wrong
    /// type, a value out of range or a data file that does not exist: each names the key.
    pub fn from_file(path: &Path) -> Result<Self, TrainError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| TrainError::file(path, source))?;
        let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let base_dir = if base_dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base_dir
        };
        let base_dir =
            std::fs::canonicalize(&base_dir).map_err(|e| TrainError::file(&base_dir, e))?;
        let source = path.display().to_string();
        let loaded = Self::from_text(text, base_dir, &source)?;
        loaded
            .config
            .check_files()
            .map_err(|(key, message)| TrainError::Config {
                file: source,
                key,
                message,
            })?;
        Ok(loaded)
    }

    /// Parses configuration text; relative paths are resolved against `base_dir`. Unlike
    /// [`from_file`](Self::from_file), data files need not exist (a checkpoint's stored
    /// configuration is read where its data may be absent).
    ///
    /// # Errors
    /// As [`from_file`](Self::from_file), except missing data files.
    pub fn from_text(text: String, base_dir: PathBuf, source: &str) -> Result<Self, TrainError> {
        let error = |key: String, message: String| TrainError::Config {
            file: source.to_owned(),
            key,
            message,
        };
        let deserializer = toml::de::Deserializer::parse(&text)
            .map_err(|e| error(location(&text, e.span()), e.message().to_owned()))?;
        let mut config: RunConfig =
            serde_path_to_error::deserialize(deserializer).map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                let key = if path == "." {
                    location(&text, inner.span())
                } else {
                    path
                };
                error(key, inner.message().to_owned())
            })?;
        config.resolve_paths(&base_dir);
        config
            .check()
            .map_err(|(key, message)| error(key, message))?;
        let model = ModelChoice::from_spec(&config.model, &config.task)
            .map_err(|(key, message)| error(key, message))?;
        Ok(Self {
            config,
            model,
            text,
            base_dir,
            source: source.to_owned(),
        })
    }
}

/// `line N, column M` of a byte offset, for syntax errors.
fn location(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    let Some(span) = span else {
        return "document".into();
    };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    format!("line {line}, column {column}")
}

type KeyError = (String, String);

#[cfg(test)]
mod tests;
