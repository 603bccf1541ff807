//! The training loop: Burn's optimizers and records, with resumable, atomic checkpoints.
//!
//! Each epoch visits the training structures in an order drawn from the seed and the epoch,
//! one optimizer step per batch, then evaluates the validation set and writes a checkpoint
//! (weights, optimizer state, progress counters, metrics history), `metrics.csv` and
//! `loss.png` in the run folder. `checkpoint_every_steps` adds checkpoints inside epochs. A
//! resumed run restarts from the latest readable checkpoint and draws exactly the batches,
//! crops and noise an uninterrupted run would have drawn.

mod data_parallel;
mod setup;

use std::path::PathBuf;
use std::time::Instant;

use burn::grad_clipping::GradientClippingConfig;
use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, AdamWConfig, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::checkpoint::{self, Checkpoint, CheckpointMeta, Progress};
use crate::config::{LoadedConfig, OptimizerKind};
use crate::error::TrainError;
use crate::evaluate::Predictor;
use crate::history::{write_csv, EpochRecord};
use crate::model::Network;
use crate::plot::write_loss_curve;
use crate::rng::{Rng, Stream};
use crate::schedule::learning_rate;

pub use setup::{load_data, RunData};

/// How [`train`] behaves.
#[derive(Clone, Copy, Debug, Default)]
pub struct TrainOptions {
    /// Continue from the latest checkpoint of the run folder (a new run when there is none).
    pub resume: bool,
    /// Print nothing (no progress bar, no epoch lines).
    pub quiet: bool,
}

/// One finished optimizer step, as reported to the observer of [`train`].
#[derive(Clone, Copy, Debug)]
pub struct StepEvent {
    /// Epoch of the step (0-based).
    pub epoch: usize,
    /// Batch of the step within its epoch (0-based).
    pub batch: usize,
    /// Steps taken since the start of the run, this one included.
    pub step: usize,
    /// Training loss of the step.
    pub loss: f64,
}

/// What the observer of [`train`] asks after a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepControl {
    /// Go on.
    Continue,
    /// Stop at once and save nothing, as if the process had been killed.
    Abort,
}

/// How a call to [`train`] ended.
#[derive(Clone, Debug)]
pub struct TrainReport {
    /// Metrics of every finished epoch of the run (earlier sessions included).
    pub history: Vec<EpochRecord>,
    /// Steps taken since the start of the run.
    pub steps: usize,
    /// The checkpoint the run resumed from.
    pub resumed_from: Option<PathBuf>,
    /// The last checkpoint written.
    pub last_checkpoint: Option<PathBuf>,
    /// Whether the observer aborted the run.
    pub aborted: bool,
}

/// Trains the model of `loaded` on `device`, calling `observer` after every step. With
/// `training.devices`, the model and the optimizer live on the first of those devices and
/// every batch is split across all of them (`device` is not used).
///
/// # Errors
/// Invalid data, devices the backend does not have, a run folder with checkpoints but no
/// `resume`, unreadable checkpoints, a model that rejects its input, a diverging loss, files
/// that cannot be written.
pub fn train<B: AutodiffBackend>(
    loaded: &LoadedConfig,
    device: &B::Device,
    options: TrainOptions,
    observer: &mut dyn FnMut(&StepEvent) -> StepControl,
) -> Result<TrainReport, TrainError> {
    let config = &loaded.config;
    let devices = setup::training_devices::<B>(loaded, device)?;
    let device = &devices[0];
    let folder = setup::checkpoint_folder(config);
    std::fs::create_dir_all(&folder).map_err(|e| TrainError::file(&folder, e))?;
    let resumed = if options.resume {
        let found = setup::find_resume_point(loaded, &folder)?;
        if found.is_none() && !options.quiet {
            println!(
                "--resume: no checkpoint in {}, a new run starts",
                folder.display()
            );
        }
        found
    } else {
        if !checkpoint::list(&folder)?.is_empty() {
            return Err(TrainError::checkpoint(
                &folder,
                "the run folder already holds checkpoints: pass --resume to continue the run, \
                 or set another run.dir",
            ));
        }
        None
    };
    let data = load_data(config, resumed.as_ref().map(|(_, c)| c))?;
    let network = loaded.model.init_seeded::<B>(device, config.run.seed)?;
    check_geometry(&data, &network)?;
    if !options.quiet {
        let atoms = |s: &[crate::data::Structure]| s.iter().map(|s| s.len()).sum::<usize>();
        println!(
            "model {} ({} parameters, all trainable), task {}, backend {}",
            loaded.model.name(),
            network.num_params(),
            task_name(&data.task),
            std::any::type_name::<B::InnerBackend>()
                .rsplit("::")
                .next()
                .unwrap_or("?")
        );
        println!(
            "data: {} training structures ({} atoms), {} validation samples ({} atoms)",
            data.train.len(),
            atoms(&data.train),
            data.valid.len(),
            atoms(&data.valid)
        );
    }
    let o = &config.optimizer;
    let clipping = o.grad_clip_norm.map(GradientClippingConfig::Norm);
    let session = Session {
        loaded,
        device: device.clone(),
        devices,
        data,
        folder,
        options,
    };
    match o.kind {
        OptimizerKind::Adam => {
            let weight_decay =
                (o.weight_decay > 0.0).then(|| WeightDecayConfig::new(o.weight_decay));
            let optimizer = AdamConfig::new()
                .with_beta_1(o.beta_1)
                .with_beta_2(o.beta_2)
                .with_epsilon(o.epsilon)
                .with_weight_decay(weight_decay)
                .with_grad_clipping(clipping)
                .init::<B, Network<B>>();
            session.run(network, optimizer, resumed, observer)
        }
        OptimizerKind::Adamw => {
            let optimizer = AdamWConfig::new()
                .with_beta_1(o.beta_1)
                .with_beta_2(o.beta_2)
                .with_epsilon(o.epsilon)
                .with_weight_decay(o.weight_decay)
                .with_grad_clipping(clipping)
                .init::<B, Network<B>>();
            session.run(network, optimizer, resumed, observer)
        }
    }
}

struct Session<'a, B: AutodiffBackend> {
    loaded: &'a LoadedConfig,
    device: B::Device,
    devices: Vec<B::Device>,
    data: RunData,
    folder: PathBuf,
    options: TrainOptions,
}

impl<B: AutodiffBackend> Session<'_, B> {
    fn run<O: Optimizer<Network<B>, B>>(
        &self,
        mut network: Network<B>,
        mut optimizer: O,
        resumed: Option<(PathBuf, Checkpoint)>,
        observer: &mut dyn FnMut(&StepEvent) -> StepControl,
    ) -> Result<TrainReport, TrainError> {
        let config = &self.loaded.config;
        let seed = config.run.seed;
        let (mut progress, mut history, resumed_from) = match resumed {
            Some((path, found)) => {
                network = checkpoint::load_module(network, found.model, &self.device, &path)?;
                let record =
                    checkpoint::record_from_bytes::<B, O::Record>(found.optimizer, &self.device)
                        .map_err(|e| {
                            TrainError::checkpoint(&path, format!("optimizer state: {e}"))
                        })?;
                optimizer = optimizer.load_record(record);
                self.say(&format!(
                    "resuming from {} (epoch {}, step {})",
                    path.display(),
                    found.meta.progress.epoch + 1,
                    found.meta.progress.step
                ));
                (found.meta.progress, found.meta.history, Some(path))
            }
            None => (setup::fresh_progress(seed), Vec::new(), None),
        };
        let mut report = TrainReport {
            history: Vec::new(),
            steps: progress.step,
            resumed_from,
            last_checkpoint: None,
            aborted: false,
        };
        let train = &self.data.train;
        let task = &self.data.task;
        let training = &config.training;
        if progress.epoch >= training.epochs {
            self.say(&format!(
                "the run has finished its {} epochs; raise training.epochs to train further",
                training.epochs
            ));
        }
        let batches = train.len().div_ceil(training.batch_size);
        let total_steps = batches * training.epochs;
        let session_start = Instant::now();
        let elapsed_before = progress.elapsed_s;
        let mut lr = learning_rate(
            &config.schedule,
            config.optimizer.lr,
            progress.step,
            total_steps,
        );
        while progress.epoch < training.epochs {
            let epoch = progress.epoch;
            let order =
                Rng::derive(seed, Stream::Shuffle, &[epoch as u64]).permutation(train.len());
            let bar = self.progress_bar(epoch, batches, progress.batch);
            let epoch_start = Instant::now();
            let mut structures_seen = 0usize;
            for batch_index in progress.batch..batches {
                let start = batch_index * training.batch_size;
                let end = (start + training.batch_size).min(train.len());
                let items: Vec<_> = order[start..end].iter().map(|&i| &train[i]).collect();
                let mut rng = Rng::derive(seed, Stream::Batch, &[epoch as u64, batch_index as u64]);
                let host = task.training_batch(&items, &mut rng);
                lr = learning_rate(
                    &config.schedule,
                    config.optimizer.lr,
                    progress.step,
                    total_steps,
                );
                B::seed(
                    &self.device,
                    Rng::derive(seed, Stream::Backend, &[progress.step as u64]).next_u64(),
                );
                let step = data_parallel::step_gradients(&network, task, &host, &self.devices)?;
                let loss_value = step.loss;
                if !loss_value.is_finite() {
                    let first = items.first().map_or("", |s| s.origin.as_str());
                    return Err(TrainError::Model(format!(
                        "the training loss is {loss_value} at step {} (epoch {}, batch {} of \
                         {batches}, first structure {first}); the last checkpoint is kept: \
                         lower optimizer.lr or set optimizer.grad_clip_norm",
                        progress.step + 1,
                        epoch + 1,
                        batch_index + 1,
                    )));
                }
                network = optimizer.step(lr, network, step.gradients);
                progress.step += 1;
                progress.batch = batch_index + 1;
                progress.epoch_loss_sum += loss_value;
                structures_seen += items.len();
                let rate = structures_seen as f64 / epoch_start.elapsed().as_secs_f64().max(1e-9);
                bar.set_position(progress.batch as u64);
                bar.set_message(format!(
                    "loss {:.4}  {rate:.1} structures/s",
                    progress.epoch_loss_sum / progress.batch as f64
                ));
                let event = StepEvent {
                    epoch,
                    batch: batch_index,
                    step: progress.step,
                    loss: loss_value,
                };
                if observer(&event) == StepControl::Abort {
                    bar.finish_and_clear();
                    report.aborted = true;
                    report.steps = progress.step;
                    report.history = history;
                    return Ok(report);
                }
                let periodic = training
                    .checkpoint_every_steps
                    .is_some_and(|every| progress.step % every == 0);
                if periodic && progress.batch < batches {
                    progress.elapsed_s = elapsed_before + session_start.elapsed().as_secs_f64();
                    let path = self.save(&network, &optimizer, &progress, &history)?;
                    report.last_checkpoint = Some(path);
                }
            }
            bar.finish_and_clear();
            let predictor = Predictor::new(&network, task, None, &self.device);
            let valid_batch = training.valid_batch_size.unwrap_or(training.batch_size);
            let valid = predictor.evaluate(&self.data.valid, valid_batch)?;
            progress.elapsed_s = elapsed_before + session_start.elapsed().as_secs_f64();
            let record = EpochRecord {
                epoch: epoch + 1,
                step: progress.step,
                lr,
                train_loss: progress.epoch_loss_sum / batches.max(1) as f64,
                valid,
                elapsed_s: progress.elapsed_s,
            };
            let improved = record.valid_loss().is_some_and(|loss| {
                history
                    .iter()
                    .filter_map(EpochRecord::valid_loss)
                    .all(|best| loss < best)
            });
            self.say(&record.summary(training.epochs));
            history.push(record);
            progress.epoch += 1;
            progress.batch = 0;
            progress.epoch_loss_sum = 0.0;
            let path = self.save(&network, &optimizer, &progress, &history)?;
            if improved {
                std::fs::read(&path)
                    .map_err(|e| TrainError::file(&path, e))
                    .and_then(|bytes| {
                        checkpoint::write_atomic(&self.folder.join(checkpoint::BEST), &bytes)
                    })?;
            }
            report.last_checkpoint = Some(path);
            let run_dir = &config.run.dir;
            write_csv(&run_dir.join("metrics.csv"), &history)?;
            write_loss_curve(&run_dir.join("loss.png"), &history)?;
        }
        report.steps = progress.step;
        report.history = history;
        Ok(report)
    }

    fn save<O: Optimizer<Network<B>, B>>(
        &self,
        network: &Network<B>,
        optimizer: &O,
        progress: &Progress,
        history: &[EpochRecord],
    ) -> Result<PathBuf, TrainError> {
        let path = self.folder.join(checkpoint::step_file_name(progress.step));
        let failed = |what: &str, e: String| {
            TrainError::checkpoint(&path, format!("cannot encode the {what}: {e}"))
        };
        let checkpoint = Checkpoint {
            meta: CheckpointMeta {
                config_text: self.loaded.text.clone(),
                config_dir: self.loaded.base_dir.clone(),
                normalizer: self.data.task.normalizer.clone(),
                progress: progress.clone(),
                history: history.to_vec(),
            },
            model: checkpoint::record_bytes::<B, _>(network.clone().into_record())
                .map_err(|e| failed("weights", e))?,
            optimizer: checkpoint::record_bytes::<B, _>(optimizer.to_record())
                .map_err(|e| failed("optimizer state", e))?,
        };
        let bytes = checkpoint.encode().map_err(|e| failed("metadata", e))?;
        checkpoint::write_atomic(&path, &bytes)?;
        checkpoint::prune(&self.folder, self.loaded.config.training.keep_checkpoints)?;
        Ok(path)
    }

    fn progress_bar(&self, epoch: usize, batches: usize, done: usize) -> ProgressBar {
        if self.options.quiet {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(batches as u64), ProgressDrawTarget::stderr());
        let template = format!(
            "epoch {}/{} [{{bar:30}}] {{pos}}/{{len}} {{msg}} (eta {{eta}})",
            epoch + 1,
            self.loaded.config.training.epochs
        );
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_position(done as u64);
        bar
    }

    fn say(&self, line: &str) {
        if !self.options.quiet {
            println!("{line}");
        }
    }
}

/// The task in a few words, for the first line of a run.
fn task_name(task: &crate::task::Task) -> String {
    use crate::config::TaskConfig;
    match &task.config {
        TaskConfig::Denoise(_) => "denoise".into(),
        TaskConfig::Property(p) => format!("property '{}'", p.property),
        TaskConfig::EnergyForces(e) => format!(
            "energy_forces (forces {}, weights energy {} forces {} stress {})",
            e.forces.name(),
            e.energy_weight,
            e.forces_weight,
            e.stress_weight
        ),
    }
}

/// Periodic structures are trained as conservative potentials only, and every structure's
/// neighbour graph must be buildable (named by file and frame otherwise).
fn check_geometry<B: Backend>(data: &RunData, network: &Network<B>) -> Result<(), TrainError> {
    if data.task.is_potential() {
        data.task.check_structures(&data.train, network)?;
        return data.task.check_structures(&data.valid, network);
    }
    if let Some(periodic) = data
        .train
        .iter()
        .chain(&data.valid)
        .find(|s| s.cell.is_some())
    {
        return Err(TrainError::Dataset(format!(
            "{}: a periodic structure (it has a Lattice) needs task.energy_forces with \
             forces = \"conservative\"; other tasks and force sources do not see the cell",
            periodic.origin
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
