//! The learning tasks: backbone denoising, property regression, energies and forces.
//!
//! A [`Task`] knows which files and labels it reads, how a training batch is drawn (random
//! crops and noise for denoising), how targets are normalised, the training loss and the
//! metrics reported in physical units.

mod metrics;
pub mod normalizer;
mod potential;

use std::path::PathBuf;

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

pub use metrics::Metrics;
pub use normalizer::Normalizer;
pub use potential::Potential;

use crate::config::{ForceSource, Readout, TaskConfig, TrajectoryConfig};
use crate::data::batch::float_tensor;
use crate::data::protein::{add_noise, covering_windows, random_crop};
use crate::data::{load_backbones, load_molecules, Batch, HostBatch, LabelSpec, Structure};
use crate::error::TrainError;
use crate::model::NetworkOutput;
use crate::rng::{Rng, Stream};

use normalizer::{fit_baseline, root_mean_square, spread};

/// A task with its fitted normalisation.
#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    /// What is learned.
    pub config: TaskConfig,
    /// Target normalisation fitted on the training split.
    pub normalizer: Normalizer,
}

/// Normalised targets of a batch on a device.
#[derive(Clone, Debug)]
pub struct Targets<B: Backend> {
    /// Per-structure targets `[B]`.
    pub scalars: Option<Tensor<B, 1>>,
    /// Per-atom vector targets `[B, N, 3]`.
    pub vectors: Option<Tensor<B, 3>>,
}

/// The numbers of structures and of real atoms of a batch, which its loss is divided by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchSize {
    /// Structures.
    pub structures: usize,
    /// Real atoms of all structures.
    pub atoms: usize,
}

impl BatchSize {
    /// The size of `host`.
    pub fn of(host: &HostBatch) -> Self {
        Self {
            structures: host.graphs,
            atoms: host.counts.iter().sum(),
        }
    }
}

/// Predictions of a batch in physical units.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// Per-structure values `[B]` (property or energy).
    pub scalars: Vec<f64>,
    /// Per-atom vectors `[B, N, 3]` (forces, or the noise of denoising), zero on padding.
    pub vectors: Option<Vec<f64>>,
    /// Per-structure stress (eV/A^3, ASE's sign) from a conservative potential, for the
    /// structures with a cell.
    pub stress: Option<Vec<Option<[[f64; 3]; 3]>>>,
}

impl Task {
    /// Fits the normalisation of `config` on the training structures.
    pub fn fit(config: &TaskConfig, train: &[Structure]) -> Self {
        let normalizer = match config {
            TaskConfig::Denoise(d) => Normalizer::scaled(d.noise_sigma),
            TaskConfig::Property(p) => {
                let (mut normalizer, residuals) = fit_baseline(p.baseline, train);
                if p.standardize {
                    normalizer.scale = spread(&residuals);
                }
                normalizer
            }
            TaskConfig::EnergyForces(e) => {
                let (mut normalizer, residuals) = fit_baseline(e.baseline, train);
                let atoms = train
                    .iter()
                    .filter(|s| s.scalar.is_some())
                    .map(Structure::len);
                let per_atom: Vec<f64> = residuals
                    .iter()
                    .zip(atoms)
                    .map(|(r, n)| r / n as f64)
                    .collect();
                normalizer.scale = spread(&per_atom);
                let forces = train.iter().filter_map(|s| s.vectors.as_ref());
                let force_rms = root_mean_square(forces.flatten().flatten().copied());
                normalizer.vector_scale =
                    if e.forces != ForceSource::Gradient && e.forces_weight > 0.0 {
                        force_rms
                    } else {
                        normalizer.scale
                    };
                // A conservative potential's forces are the energy's slopes: with the energy in
                // units of the force RMS (times 1 A) they start at the labels' size. In units
                // of the per-atom energy spread, which is 40-90x smaller on MD data, the
                // initial forces are that much too small and training stalls for epochs.
                let has_forces = train.iter().any(|s| s.vectors.is_some());
                if e.forces == ForceSource::Conservative && e.forces_weight > 0.0 && has_forces {
                    normalizer.scale = force_rms;
                }
                normalizer
            }
        };
        Self {
            config: config.clone(),
            normalizer,
        }
    }

    /// How per-atom outputs become one value per structure.
    pub fn readout(&self) -> Readout {
        match &self.config {
            TaskConfig::Property(p) => p.readout,
            _ => Readout::Sum,
        }
    }

    /// Where forces come from by default.
    pub fn forces(&self) -> Option<ForceSource> {
        match &self.config {
            TaskConfig::EnergyForces(e) => Some(e.forces),
            _ => None,
        }
    }

    /// Reads the structures of `files` and `trajectories`; with `required`, every structure
    /// must carry the task's labels.
    ///
    /// # Errors
    /// Unreadable files and missing labels.
    pub fn load(
        config: &TaskConfig,
        files: &[PathBuf],
        trajectories: &[TrajectoryConfig],
        required: bool,
    ) -> Result<Vec<Structure>, TrainError> {
        let labels = match config {
            TaskConfig::Denoise(_) => return load_backbones(files, trajectories),
            TaskConfig::Property(p) => LabelSpec {
                scalar: Some(&p.property),
                vectors: None,
                stress: false,
                required,
            },
            TaskConfig::EnergyForces(e) => LabelSpec {
                scalar: Some(&e.energy_key),
                vectors: (e.forces != ForceSource::Gradient && e.forces_weight > 0.0 || !required)
                    .then_some(e.forces_key.as_str()),
                stress: e.stress_weight > 0.0
                    || (!required && e.forces == ForceSource::Conservative),
                required,
            },
        };
        load_molecules(files, labels)
    }

    /// Draws a training batch: random crops and fresh noise for denoising.
    pub fn training_batch(&self, items: &[&Structure], rng: &mut Rng) -> HostBatch {
        match &self.config {
            TaskConfig::Denoise(d) => {
                let noisy: Vec<Structure> = items
                    .iter()
                    .map(|s| add_noise(random_crop(s, d.crop_residues, rng), d.noise_sigma, rng))
                    .collect();
                HostBatch::new(&noisy.iter().collect::<Vec<_>>())
            }
            _ => HostBatch::new(items),
        }
    }

    /// The fixed evaluation samples of `structures`: for denoising, windows covering each
    /// structure with noise drawn once from `seed`; otherwise the structures themselves.
    pub fn evaluation_set(&self, structures: Vec<Structure>, seed: u64) -> Vec<Structure> {
        let TaskConfig::Denoise(d) = &self.config else {
            return structures;
        };
        let mut samples = Vec::new();
        for (i, structure) in structures.iter().enumerate() {
            for (w, window) in covering_windows(structure, d.crop_residues)
                .into_iter()
                .enumerate()
            {
                let mut rng = Rng::derive(seed, Stream::Validation, &[i as u64, w as u64]);
                samples.push(add_noise(window, d.noise_sigma, &mut rng));
            }
        }
        samples
    }

    /// The normalised targets of a labelled batch.
    pub fn targets<B: Backend>(&self, host: &HostBatch, device: &B::Device) -> Targets<B> {
        let n = &self.normalizer;
        let scalars = host.scalars.as_ref().map(|values| {
            let normalised = values
                .iter()
                .enumerate()
                .map(|(g, y)| (y - n.baseline(&host.atomic_numbers[host.atoms(g)])) / n.scale)
                .collect();
            float_tensor(normalised, [host.graphs], device)
        });
        let vectors = host.vectors.as_ref().map(|values| {
            let normalised = values.iter().map(|v| v / n.vector_scale).collect();
            float_tensor(normalised, [host.graphs, host.nodes, 3], device)
        });
        Targets { scalars, vectors }
    }

    /// The training loss of a batch, in normalised units.
    ///
    /// # Errors
    /// A batch without the labels the task needs, or a model without the outputs it needs.
    pub fn loss<B: Backend>(
        &self,
        output: &NetworkOutput<B>,
        targets: &Targets<B>,
        batch: &Batch<B>,
    ) -> Result<Tensor<B, 1>, TrainError> {
        self.loss_terms(output, targets, batch, None)
    }

    /// The share of a shard of a batch in the loss of the whole batch: the loss terms of the
    /// shard's structures divided by the sizes of the `whole` batch, so that the shares of
    /// all shards (and their gradients) add up to the loss of the whole batch.
    ///
    /// # Errors
    /// As [`loss`](Self::loss).
    pub fn loss_share<B: Backend>(
        &self,
        output: &NetworkOutput<B>,
        targets: &Targets<B>,
        batch: &Batch<B>,
        whole: BatchSize,
    ) -> Result<Tensor<B, 1>, TrainError> {
        self.loss_terms(output, targets, batch, Some(whole))
    }

    /// Mean errors over the structures and atoms of `batch`, or sums divided by the sizes
    /// of `whole`.
    fn loss_terms<B: Backend>(
        &self,
        output: &NetworkOutput<B>,
        targets: &Targets<B>,
        batch: &Batch<B>,
        whole: Option<BatchSize>,
    ) -> Result<Tensor<B, 1>, TrainError> {
        let missing = |what: &str| TrainError::Dataset(format!("the batch has no {what}"));
        let vector_loss = || -> Result<Tensor<B, 1>, TrainError> {
            let predicted = output
                .vectors
                .clone()
                .ok_or_else(|| TrainError::Model("the model has no vector output".into()))?;
            let target = targets
                .vectors
                .clone()
                .ok_or_else(|| missing("vector labels"))?;
            let squares = (predicted - target).square().sum();
            Ok(match whole {
                None => squares / (batch.counts.clone().sum() * 3.0),
                Some(whole) => squares / (3 * whole.atoms) as f64,
            })
        };
        let mean_square = |errors: Tensor<B, 1>| match whole {
            None => errors.square().mean(),
            Some(whole) => errors.square().sum() / whole.structures as f64,
        };
        let scalar_error = || -> Result<Tensor<B, 1>, TrainError> {
            let target = targets.scalars.clone().ok_or_else(|| missing("labels"))?;
            Ok(output.per_structure.clone() - target)
        };
        match &self.config {
            TaskConfig::Denoise(_) => vector_loss(),
            TaskConfig::Property(_) => Ok(mean_square(scalar_error()?)),
            TaskConfig::EnergyForces(e) => {
                let per_atom = scalar_error()? / batch.counts.clone();
                let mut loss = mean_square(per_atom) * e.energy_weight;
                if e.forces == ForceSource::Direct && e.forces_weight > 0.0 {
                    loss = loss + vector_loss()? * e.forces_weight;
                }
                Ok(loss)
            }
        }
    }

    /// Physical predictions from normalised network outputs of a batch; `vectors` are the
    /// vector outputs, or minus the gradient of the per-structure output with `from_gradient`.
    pub fn to_physical(
        &self,
        host: &HostBatch,
        scalars: &[f64],
        vectors: Option<Vec<f64>>,
        from_gradient: bool,
    ) -> Prediction {
        let n = &self.normalizer;
        let scalars = scalars
            .iter()
            .enumerate()
            .map(|(g, out)| n.baseline(&host.atomic_numbers[host.atoms(g)]) + n.scale * out)
            .collect();
        Prediction {
            scalars,
            stress: None,
            vectors: vectors.map(|v| {
                let unit = if from_gradient {
                    n.scale
                } else {
                    n.vector_scale
                };
                v.into_iter().map(|x| unit * x).collect()
            }),
        }
    }
}

#[cfg(test)]
mod tests;
