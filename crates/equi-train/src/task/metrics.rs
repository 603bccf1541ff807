//! Evaluation metrics in physical units, accumulated over batches on the host.

use std::collections::BTreeMap;

use super::{Prediction, Task};
use crate::config::{ForceSource, TaskConfig};
use crate::data::HostBatch;

/// One eV/A^3 in GPa.
pub const EV_PER_A3_IN_GPA: f64 = 160.217_663_4;

/// Running sums of errors over the batches of an evaluation.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    sums: BTreeMap<&'static str, f64>,
}

impl Metrics {
    fn add(&mut self, key: &'static str, value: f64) {
        *self.sums.entry(key).or_default() += value;
    }

    fn get(&self, key: &str) -> f64 {
        self.sums.get(key).copied().unwrap_or(0.0)
    }

    fn ratio(&self, key: &str, count: &str) -> f64 {
        self.get(key) / self.get(count).max(1.0)
    }
}

impl Task {
    /// Adds the errors of one labelled batch to `metrics`.
    pub fn accumulate(&self, host: &HostBatch, prediction: &Prediction, metrics: &mut Metrics) {
        let (scale, vector_scale) = (self.normalizer.scale, self.normalizer.vector_scale);
        if let (Some(targets), Some(predicted)) = (&host.vectors, &prediction.vectors) {
            let (mut squared, mut absolute) = (0.0, 0.0);
            for (&mask, (target, predicted)) in host
                .mask
                .iter()
                .zip(targets.chunks_exact(3).zip(predicted.chunks_exact(3)))
            {
                if mask {
                    for (t, p) in target.iter().zip(predicted) {
                        squared += (t - p).powi(2);
                        absolute += (t - p).abs();
                    }
                }
            }
            let atoms: usize = host.counts.iter().sum();
            metrics.add("vector_squared", squared / (vector_scale * vector_scale));
            metrics.add("vector_squared_physical", squared);
            metrics.add("vector_absolute", absolute);
            metrics.add("atoms", atoms as f64);
        }
        if let (Some(targets), Some(predicted)) = (&host.stress, &prediction.stress) {
            for (target, predicted) in targets.iter().zip(predicted) {
                if let Some(predicted) = predicted {
                    let absolute: f64 = target
                        .iter()
                        .flatten()
                        .zip(predicted.iter().flatten())
                        .map(|(t, p)| (t - p).abs())
                        .sum();
                    metrics.add("stress_absolute", absolute / 9.0);
                    metrics.add("stressed", 1.0);
                }
            }
        }
        if let Some(targets) = &host.scalars {
            for ((target, predicted), &count) in
                targets.iter().zip(&prediction.scalars).zip(&host.counts)
            {
                let error = target - predicted;
                metrics.add("scalar_squared", (error / scale).powi(2));
                metrics.add("scalar_absolute", error.abs());
                metrics.add("scalar_squared_physical", error.powi(2));
                metrics.add("per_atom_squared", (error / scale / count as f64).powi(2));
                metrics.add("per_atom_absolute", error.abs() / count as f64);
            }
            metrics.add("structures", host.graphs as f64);
        }
    }

    /// The metrics of an evaluation, by name; `loss` is the training loss in normalised units.
    pub fn summarize(&self, metrics: &Metrics) -> Vec<(String, f64)> {
        let vector_mse = metrics.ratio("vector_squared", "atoms") / 3.0;
        let mut summary = Vec::new();
        match &self.config {
            TaskConfig::Denoise(_) => {
                summary.push(("loss", vector_mse));
                let rmsd = metrics.ratio("vector_squared_physical", "atoms").sqrt();
                summary.push(("rmsd", rmsd));
            }
            TaskConfig::Property(_) => {
                summary.push(("loss", metrics.ratio("scalar_squared", "structures")));
                summary.push(("mae", metrics.ratio("scalar_absolute", "structures")));
                let mse = metrics.ratio("scalar_squared_physical", "structures");
                summary.push(("rmse", mse.sqrt()));
            }
            TaskConfig::EnergyForces(e) => {
                let mut loss = e.energy_weight * metrics.ratio("per_atom_squared", "structures");
                if e.forces != ForceSource::Gradient && e.forces_weight > 0.0 {
                    loss += e.forces_weight * vector_mse;
                }
                summary.push(("loss", loss));
                let energy_mae = 1000.0 * metrics.ratio("per_atom_absolute", "structures");
                summary.push(("energy_mae_meV_per_atom", energy_mae));
                if metrics.get("atoms") > 0.0 {
                    let forces_mae = 1000.0 * metrics.ratio("vector_absolute", "atoms") / 3.0;
                    summary.push(("forces_mae_meV_per_A", forces_mae));
                }
                if metrics.get("stressed") > 0.0 {
                    let stress_mae = metrics.ratio("stress_absolute", "stressed");
                    summary.push(("stress_mae_meV_per_A3", 1000.0 * stress_mae));
                    summary.push(("stress_mae_GPa", EV_PER_A3_IN_GPA * stress_mae));
                }
            }
        }
        summary
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect()
    }
}
