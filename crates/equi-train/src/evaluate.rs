//! Predictions and metrics of a trained network on labelled or unlabelled structures.

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;

use crate::config::ForceSource;
use crate::data::batch::to_f64;
use crate::data::{HostBatch, Structure};
use crate::error::TrainError;
use crate::model::Network;
use crate::task::{Metrics, Potential, Prediction, Task};
use equi_nn::potential::evaluate;

/// A trained network ready for inference: the differentiable copy (for gradient forces) and
/// the plain one (no dropout, no graph).
pub struct Predictor<'a, B: AutodiffBackend> {
    network: &'a Network<B>,
    plain: Network<B::InnerBackend>,
    task: &'a Task,
    forces: Option<ForceSource>,
    device: B::Device,
}

impl<'a, B: AutodiffBackend> Predictor<'a, B> {
    /// A predictor of `task` with `network`; `forces` chooses how forces are predicted
    /// (`None`: the task's default).
    pub fn new(
        network: &'a Network<B>,
        task: &'a Task,
        forces: Option<ForceSource>,
        device: &B::Device,
    ) -> Self {
        Self {
            network,
            plain: network.valid(),
            task,
            forces: forces.or(task.forces()),
            device: device.clone(),
        }
    }

    /// Physical predictions for one batch.
    ///
    /// # Errors
    /// Inputs the model rejects.
    pub fn predict(&self, host: &HostBatch) -> Result<Prediction, TrainError> {
        if self.forces == Some(ForceSource::Conservative) {
            let batch = self.task.potential_batch(host, self.network)?;
            let potential = Potential::new(self.network, self.task.normalizer.scale);
            let found = evaluate(&potential, &batch, &self.device)
                .map_err(|e| TrainError::Model(e.to_string()))?;
            return Ok(self.task.potential_prediction(host, &found));
        }
        if host.cells.iter().any(Option::is_some) {
            return Err(TrainError::Usage(
                "periodic structures need forces = \"conservative\" (the other force \
                 sources do not see the cell)"
                    .into(),
            ));
        }
        let readout = self.task.readout();
        let from_gradient = self.forces == Some(ForceSource::Gradient);
        let (scalars, vectors) = if from_gradient {
            let mut batch = host.to_device::<B>(&self.device);
            batch.positions = batch.positions.require_grad();
            let output = self.network.forward(&batch, readout)?;
            let gradients = output.per_structure.clone().sum().backward();
            let gradient = batch.positions.grad(&gradients).ok_or_else(|| {
                TrainError::Model("the energy does not depend on positions".into())
            })?;
            let forces = to_f64(gradient.neg());
            (to_f64(output.per_structure.inner()), Some(forces))
        } else {
            let batch = host.to_device::<B::InnerBackend>(&self.device);
            let output = self.plain.forward(&batch, readout)?;
            (to_f64(output.per_structure), output.vectors.map(to_f64))
        };
        let vectors = vectors.map(|mut values| {
            for (chunk, &real) in values.chunks_exact_mut(3).zip(&host.mask) {
                if !real {
                    chunk.fill(0.0);
                }
            }
            values
        });
        Ok(self
            .task
            .to_physical(host, &scalars, vectors, from_gradient))
    }

    /// Predictions for every structure, in batches of `batch_size`.
    ///
    /// # Errors
    /// Inputs the model rejects; a prediction that is not finite (named by its structure).
    pub fn predict_all(
        &self,
        structures: &[Structure],
        batch_size: usize,
    ) -> Result<Vec<(HostBatch, Prediction)>, TrainError> {
        structures
            .chunks(batch_size.max(1))
            .map(|chunk| {
                let host = HostBatch::new(&chunk.iter().collect::<Vec<_>>());
                let prediction = self.predict(&host)?;
                check_finite(chunk, &host, &prediction)?;
                Ok((host, prediction))
            })
            .collect()
    }

    /// The metrics of the task on labelled structures.
    ///
    /// # Errors
    /// Inputs the model rejects; a prediction that is not finite (named by its structure), so
    /// that no metric ever averages a NaN.
    pub fn evaluate(
        &self,
        structures: &[Structure],
        batch_size: usize,
    ) -> Result<Vec<(String, f64)>, TrainError> {
        let mut metrics = Metrics::default();
        for chunk in structures.chunks(batch_size.max(1)) {
            let host = HostBatch::new(&chunk.iter().collect::<Vec<_>>());
            let prediction = self.predict(&host)?;
            check_finite(chunk, &host, &prediction)?;
            self.task.accumulate(&host, &prediction, &mut metrics);
        }
        Ok(self.task.summarize(&metrics))
    }
}

/// Fails on the first structure of `chunk` (batched as `host`) with a non-finite predicted
/// value: a NaN or infinity is never written or averaged.
fn check_finite(
    chunk: &[Structure],
    host: &HostBatch,
    prediction: &Prediction,
) -> Result<(), TrainError> {
    let per_graph = |values: &[f64], graph: usize| {
        let width = values.len() / host.graphs.max(1);
        values[graph * width..(graph + 1) * width]
            .iter()
            .all(|v| v.is_finite())
    };
    for (graph, structure) in chunk.iter().enumerate() {
        let scalar = prediction.scalars.get(graph).is_none_or(|v| v.is_finite());
        let vectors = prediction
            .vectors
            .as_ref()
            .is_none_or(|v| per_graph(v, graph));
        let stress = prediction
            .stress
            .as_ref()
            .and_then(|s| s.get(graph).copied().flatten())
            .is_none_or(|s| s.iter().flatten().all(|v| v.is_finite()));
        if !(scalar && vectors && stress) {
            return Err(TrainError::Model(format!(
                "{}: the model's prediction is not finite (NaN or infinite); nothing was \
                 written",
                structure.origin
            )));
        }
    }
    Ok(())
}
