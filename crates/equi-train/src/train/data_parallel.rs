//! The gradients of one optimizer step, on one device or split across several (data
//! parallelism).
//!
//! With several devices this is the scheme of burn-train's multi-device strategy
//! (`MultiDeviceOptim::OptimMainDevice`), on Burn's own machinery: the batch is cut into
//! one shard per device; each device runs a copy of the network (`Module::fork`) on its
//! shard in its own thread; the gradients come back to the first device
//! (`GradientsParams::to_device`), are summed there (`GradientsAccumulator`), and the
//! optimizer steps there once. Forward and backward go through
//! [`Network::forward_backward`], so reversible models recompute their activations on every
//! device. Each shard's loss is its share of the whole batch's loss
//! ([`Task::loss_share`]: its terms divided by the whole batch's numbers of structures
//! and atoms), so the summed gradients are those of the unsplit batch, whatever the sizes
//! of the shards.

use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;

use crate::data::batch::to_f64;
use crate::data::HostBatch;
use crate::error::TrainError;
use crate::model::Network;
use crate::task::{BatchSize, Potential, Task};
use equi_nn::potential::{conservative_gradients, PotentialError, StepSize};

/// The loss of a batch and the gradients of the network's parameters, on the first device.
pub(super) struct StepGradients {
    /// The training loss of the whole batch.
    pub loss: f64,
    /// Gradients of the loss, on the first device.
    pub gradients: GradientsParams,
}

/// The loss and gradients of `network` (on `devices[0]`) on the batch `host`, split across
/// `devices` when there are several.
///
/// # Errors
/// A model that rejects its input, a batch without the labels the task needs.
pub(super) fn step_gradients<B: AutodiffBackend>(
    network: &Network<B>,
    task: &Task,
    host: &HostBatch,
    devices: &[B::Device],
) -> Result<StepGradients, TrainError> {
    let [main, others @ ..] = devices else {
        return Err(TrainError::Model("no training device".into()));
    };
    if task.is_potential() {
        if !others.is_empty() {
            return Err(TrainError::Model(
                "conservative forces train on one device: data parallelism over several \
                 training.devices is not implemented for them"
                    .into(),
            ));
        }
        return potential_gradients(network, task, host, main);
    }
    if others.is_empty() {
        let batch = host.to_device::<B>(main);
        let targets = task.targets::<B>(host, main);
        let (loss, gradients) = network.forward_backward(&batch, task.readout(), |output| {
            task.loss(output, &targets, &batch)
        })?;
        return Ok(StepGradients {
            loss: scalar(loss),
            gradients,
        });
    }
    let whole = BatchSize::of(host);
    let shards = host.shards(devices.len());
    let results: Vec<Result<(f64, GradientsParams), TrainError>> = std::thread::scope(|scope| {
        let workers: Vec<_> = shards
            .iter()
            .zip(devices)
            .map(|(shard, device)| {
                let replica = network.clone().fork(device);
                scope.spawn(move || shard_gradients(replica, task, shard, device, whole))
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut accumulator = GradientsAccumulator::<Network<B>>::new();
    let mut loss = 0.0;
    for result in results {
        let (share, gradients) = result?;
        loss += share;
        accumulator.accumulate(network, gradients.to_device(main, network));
    }
    Ok(StepGradients {
        loss,
        gradients: accumulator.grads(),
    })
}

/// The loss and gradients of a conservative potential on `host`: forces and stress as
/// derivatives of the energy, their loss terms through a Hessian-vector product
/// ([`conservative_gradients`]).
fn potential_gradients<B: AutodiffBackend>(
    network: &Network<B>,
    task: &Task,
    host: &HostBatch,
    device: &B::Device,
) -> Result<StepGradients, TrainError> {
    let batch = task.potential_batch(host, network)?;
    let potential = Potential::new(network, task.normalizer.scale);
    let step = conservative_gradients(
        &potential,
        &batch,
        device,
        |predictions| {
            task.potential_sensitivities(host, predictions)
                .map_err(|e| PotentialError::Loss(e.to_string()))
        },
        StepSize::Auto,
    )
    .map_err(|e| TrainError::Model(e.to_string()))?;
    Ok(StepGradients {
        loss: step.loss,
        gradients: step.gradients,
    })
}

/// The share of `shard` in the loss of a batch of size `whole`, and its gradients on
/// `device`.
fn shard_gradients<B: AutodiffBackend>(
    replica: Network<B>,
    task: &Task,
    shard: &HostBatch,
    device: &B::Device,
    whole: BatchSize,
) -> Result<(f64, GradientsParams), TrainError> {
    let batch = shard.to_device::<B>(device);
    let targets = task.targets::<B>(shard, device);
    let (share, gradients) = replica.forward_backward(&batch, task.readout(), |output| {
        task.loss_share(output, &targets, &batch, whole)
    })?;
    Ok((scalar(share), gradients))
}

/// The value of a one-element tensor.
fn scalar<B: Backend>(loss: Tensor<B, 1>) -> f64 {
    to_f64(loss).first().copied().unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests;
