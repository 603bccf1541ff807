//! The trained network: an Equiformer or SchNet behind one forward pass on a padded batch.

use std::sync::Mutex;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;
use equi_nn::schnet::SchNet;
use equi_nn::{Equiformer, EquiformerInput, EquiformerOutput};

use crate::config::{ModelChoice, Readout};
use crate::data::Batch;
use crate::error::TrainError;

/// The network of a run.
// One network exists per run: the size difference of the variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Network<B: Backend> {
    /// An Equiformer with one scalar and one vector output per atom.
    Equiformer(Equiformer<B>),
    /// SchNet with one output per structure.
    SchNet(SchNet<B>),
}

/// What the network predicts for a batch, in normalised units.
#[derive(Clone, Debug)]
pub struct NetworkOutput<B: Backend> {
    /// One value per structure `[B]`: the readout of the per-atom scalars.
    pub per_structure: Tensor<B, 1>,
    /// One vector per atom `[B, N, 3]` (zero on padding), for models with vector outputs.
    pub vectors: Option<Tensor<B, 3>>,
}

/// Held while weights are drawn from the backend's random generator, which is one per
/// process: seeding and drawing must not interleave with another thread's draws, or the
/// same seed gives other weights.
static BACKEND_RNG: Mutex<()> = Mutex::new(());

impl ModelChoice {
    /// Builds the network on `device`, every weight drawn now from the backend's generator
    /// as it stands.
    ///
    /// # Errors
    /// An inconsistent model configuration.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<Network<B>, TrainError> {
        let _drawing = BACKEND_RNG.lock().unwrap_or_else(|p| p.into_inner());
        self.draw(device)
    }

    /// Builds the network on `device` with the backend's generator seeded with `seed` first:
    /// the same seed gives the same weights, whatever other threads draw meanwhile.
    ///
    /// # Errors
    /// An inconsistent model configuration.
    pub fn init_seeded<B: Backend>(
        &self,
        device: &B::Device,
        seed: u64,
    ) -> Result<Network<B>, TrainError> {
        let _drawing = BACKEND_RNG.lock().unwrap_or_else(|p| p.into_inner());
        B::seed(device, seed);
        self.draw(device)
    }

    fn draw<B: Backend>(&self, device: &B::Device) -> Result<Network<B>, TrainError> {
        Ok(match self {
            Self::Equiformer(config) => Network::Equiformer(config.init(device)?),
            Self::SchNet(config) => Network::SchNet(config.try_init(device)?),
        })
    }
}

impl<B: Backend> Network<B> {
    /// The radius of the neighbour graph (Angstrom): Equiformer's `valid_radius`,
    /// SchNet's `cutoff`.
    pub fn cutoff(&self) -> f64 {
        match self {
            Self::Equiformer(model) => model.valid_radius(),
            Self::SchNet(model) => model.cutoff,
        }
    }

    /// Runs the network on a batch; the per-structure value is the sum or the mean of the
    /// per-atom scalars.
    ///
    /// # Errors
    /// Inputs the model rejects (non-finite positions, tokens out of range, empty graphs).
    pub fn forward(
        &self,
        batch: &Batch<B>,
        readout: Readout,
    ) -> Result<NetworkOutput<B>, TrainError> {
        match self {
            Self::Equiformer(model) => {
                let out = model.forward(equiformer_input(batch))?;
                equiformer_output(out, batch, readout)
            }
            Self::SchNet(model) => {
                let [graphs, _] = batch.mask.dims();
                let out = model.forward_checked(
                    batch.atomic_numbers.clone(),
                    batch.positions.clone(),
                    batch.mask.clone(),
                )?;
                Ok(NetworkOutput {
                    per_structure: read_out(out.reshape([graphs]), batch, readout),
                    vectors: None,
                })
            }
        }
    }
}

impl<B: AutodiffBackend> Network<B> {
    /// Forward pass, `loss` on the output, and backward pass: the loss value
    /// and the gradients of the parameters. An Equiformer with reversible
    /// blocks recomputes its activations in the backward pass
    /// ([`Equiformer::forward_backward`]), so memory stays flat in depth.
    ///
    /// # Errors
    /// Inputs the model rejects, and the errors of `loss`.
    pub fn forward_backward(
        &self,
        batch: &Batch<B>,
        readout: Readout,
        loss: impl FnOnce(&NetworkOutput<B>) -> Result<Tensor<B, 1>, TrainError>,
    ) -> Result<(Tensor<B::InnerBackend, 1>, GradientsParams), TrainError> {
        match self {
            Self::Equiformer(model) => {
                let step = model.forward_backward(equiformer_input(batch), |out| {
                    loss(&equiformer_output(out, batch, readout)?)
                })?;
                Ok((step.loss, step.gradients))
            }
            Self::SchNet(_) => {
                let value = loss(&self.forward(batch, readout)?)?;
                let gradients = GradientsParams::from_grads(value.backward(), self);
                Ok((value.inner(), gradients))
            }
        }
    }
}

fn equiformer_input<B: Backend>(batch: &Batch<B>) -> EquiformerInput<B> {
    EquiformerInput::tokens(batch.tokens.clone(), batch.positions.clone())
        .with_mask(batch.mask.clone())
}

fn equiformer_output<B: Backend>(
    out: EquiformerOutput<B>,
    batch: &Batch<B>,
    readout: Readout,
) -> Result<NetworkOutput<B>, TrainError> {
    let [graphs, _] = batch.mask.dims();
    let Some((scalars, vectors)) = out.reduced() else {
        return Err(TrainError::Model(
            "the Equiformer must have reduce_dim_out = true".into(),
        ));
    };
    Ok(NetworkOutput {
        per_structure: read_out(scalars.sum_dim(1).reshape([graphs]), batch, readout),
        vectors,
    })
}

/// The per-structure value from the sum of the per-atom scalars `[B]`.
fn read_out<B: Backend>(total: Tensor<B, 1>, batch: &Batch<B>, readout: Readout) -> Tensor<B, 1> {
    match readout {
        Readout::Sum => total,
        Readout::Mean => total / batch.counts.clone(),
    }
}
