//! The energy/forces task with conservative forces: the network as an interatomic
//! potential, its periodic neighbour graphs, and the loss on energies, forces and stress.

use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;
use equi_nn::potential::{
    AtomisticModel, AtomsGraph, Derivatives, EnergyBackward, LossSensitivities, PeriodicBatch,
    PotentialError, Stress, System, TrainableModel,
};

use super::{Prediction, Task};
use crate::config::{ForceSource, TaskConfig};
use crate::data::{HostBatch, Structure};
use crate::error::TrainError;
use crate::model::Network;

/// The network as a potential in physical units: per-atom energies are its per-atom scalar
/// outputs times the task's energy scale (the per-element references are added outside,
/// they do not move any derivative).
pub struct Potential<'a, B: Backend> {
    network: &'a Network<B>,
    scale: f64,
}

impl<'a, B: Backend> Potential<'a, B> {
    /// `network` with per-atom energies in eV (`scale` eV per output unit).
    pub fn new(network: &'a Network<B>, scale: f64) -> Self {
        Self { network, scale }
    }
}

impl<B: Backend> AtomisticModel<B> for Potential<'_, B> {
    fn cutoff(&self) -> f64 {
        self.network.cutoff()
    }

    fn atom_energies(&self, graph: AtomsGraph<B>) -> Result<Tensor<B, 2>, PotentialError> {
        let raw = match self.network {
            Network::Equiformer(model) => model.atom_energies(graph)?,
            Network::SchNet(model) => model.atom_energies(graph)?,
        };
        Ok(raw * self.scale)
    }
}

impl<B: AutodiffBackend> TrainableModel<B> for Potential<'_, B> {
    fn energy_backward(
        &self,
        graph: AtomsGraph<B>,
        weights: &[f64],
    ) -> Result<EnergyBackward<B>, PotentialError> {
        let scaled: Vec<f64> = weights.iter().map(|w| w * self.scale).collect();
        let pass = match self.network {
            Network::Equiformer(model) => model.energy_backward(graph, &scaled)?,
            Network::SchNet(model) => model.energy_backward(graph, &scaled)?,
        };
        Ok(EnergyBackward {
            energies: pass.energies.iter().map(|e| e * self.scale).collect(),
            parameters: pass.parameters,
            displacements: pass.displacements,
        })
    }
}

impl Task {
    /// Whether forces (and stress) are derivatives of the energy, in training and inference.
    pub fn is_potential(&self) -> bool {
        matches!(&self.config, TaskConfig::EnergyForces(e) if e.forces == ForceSource::Conservative)
    }

    fn max_images(&self) -> usize {
        match &self.config {
            TaskConfig::EnergyForces(e) => e.max_images,
            _ => 100_000,
        }
    }

    /// The structures of `host` as a potential reads them (SchNet embeds atomic numbers,
    /// Equiformer the task's tokens).
    fn systems<B: Backend>(&self, host: &HostBatch, network: &Network<B>) -> Vec<System> {
        (0..host.graphs)
            .map(|g| {
                let atoms = host.atoms(g);
                let tokens = match network {
                    Network::SchNet(_) => host.atomic_numbers[atoms.clone()].to_vec(),
                    Network::Equiformer(_) => host.tokens[atoms.clone()].to_vec(),
                };
                System {
                    tokens,
                    positions: host.positions[atoms.start * 3..atoms.end * 3]
                        .chunks_exact(3)
                        .map(|x| [x[0], x[1], x[2]])
                        .collect(),
                    cell: host.cells[g],
                    pbc: host.pbc[g],
                }
            })
            .collect()
    }

    /// The periodic neighbour graph of `host` at the network's cutoff.
    ///
    /// # Errors
    /// Structures the neighbour search refuses (see [`check_structures`](Self::check_structures)).
    pub fn potential_batch<B: Backend>(
        &self,
        host: &HostBatch,
        network: &Network<B>,
    ) -> Result<PeriodicBatch, TrainError> {
        PeriodicBatch::new(
            &self.systems(host, network),
            network.cutoff(),
            self.max_images(),
        )
        .map_err(|e| TrainError::Dataset(e.to_string()))
    }

    /// Every structure's neighbour graph can be built: a clear error naming the structure
    /// (file and frame) otherwise, before any training starts.
    ///
    /// # Errors
    /// Coincident atoms, periodicity without a cell, a cell that needs more than
    /// `max_images` images within the cutoff.
    pub fn check_structures<B: Backend>(
        &self,
        structures: &[Structure],
        network: &Network<B>,
    ) -> Result<(), TrainError> {
        for structure in structures {
            let host = HostBatch::new(&[structure]);
            PeriodicBatch::new(
                &self.systems(&host, network),
                network.cutoff(),
                self.max_images(),
            )
            .map_err(|e| {
                let reason = match e {
                    PotentialError::Structure { reason, .. } => reason,
                    other => other.to_string(),
                };
                TrainError::Dataset(format!("{}: {reason}", structure.origin))
            })?;
        }
        Ok(())
    }

    /// The training loss of a batch in normalised units, and its derivatives with respect to
    /// the predicted energies, forces and stress: the mean squared per-atom energy error
    /// over the energy scale, the mean squared force component over the force scale, and the
    /// mean squared stress component times `V / n` (an energy per atom) over the energy
    /// scale, weighted by the task's weights.
    ///
    /// # Errors
    /// A batch without energy labels, or without force labels when forces are weighted.
    pub fn potential_sensitivities(
        &self,
        host: &HostBatch,
        predictions: &[Derivatives],
    ) -> Result<LossSensitivities, TrainError> {
        let TaskConfig::EnergyForces(e) = &self.config else {
            return Err(TrainError::Model("not an energy/forces task".into()));
        };
        let n = &self.normalizer;
        let missing = |what: &str| TrainError::Dataset(format!("the batch has no {what}"));
        let energies = host
            .scalars
            .as_ref()
            .ok_or_else(|| missing("energy labels"))?;
        let structures = host.graphs as f64;
        let atoms: usize = host.counts.iter().sum();
        let mut loss = 0.0;
        let mut out = LossSensitivities {
            loss: 0.0,
            energies: vec![0.0; host.graphs],
            forces: host.counts.iter().map(|&c| vec![[0.0; 3]; c]).collect(),
            stress: vec![None; host.graphs],
        };
        for (g, p) in predictions.iter().enumerate() {
            let count = host.counts[g] as f64;
            let predicted = p.energy + n.baseline(&host.atomic_numbers[host.atoms(g)]);
            let error = (predicted - energies[g]) / (count * n.scale);
            loss += e.energy_weight * error * error / structures;
            out.energies[g] = 2.0 * e.energy_weight * error / (count * n.scale) / structures;
        }
        if e.forces_weight > 0.0 {
            let labels = host
                .vectors
                .as_ref()
                .ok_or_else(|| missing("force labels"))?;
            let unit = n.vector_scale;
            let norm = (3 * atoms) as f64;
            for (g, p) in predictions.iter().enumerate() {
                let first = host.atoms(g).start;
                for (i, f) in p.forces.iter().enumerate() {
                    for a in 0..3 {
                        let error = (f[a] - labels[(first + i) * 3 + a]) / unit;
                        loss += e.forces_weight * error * error / norm;
                        out.forces[g][i][a] = 2.0 * e.forces_weight * error / unit / norm;
                    }
                }
            }
        }
        if e.stress_weight > 0.0 {
            let labels = host
                .stress
                .as_ref()
                .ok_or_else(|| missing("stress labels"))?;
            for (g, p) in predictions.iter().enumerate() {
                let (Some(stress), Some(cell)) = (p.stress, host.cells[g]) else {
                    continue;
                };
                // A stress error times V / n is an energy per atom.
                let unit = n.scale * host.counts[g] as f64 / cell.volume();
                let norm = 9.0 * structures;
                let mut sensitivity: Stress = [[0.0; 3]; 3];
                for a in 0..3 {
                    for c in 0..3 {
                        let error = (stress[a][c] - labels[g][a][c]) / unit;
                        loss += e.stress_weight * error * error / norm;
                        sensitivity[a][c] = 2.0 * e.stress_weight * error / unit / norm;
                    }
                }
                out.stress[g] = Some(sensitivity);
            }
        }
        out.loss = loss;
        Ok(out)
    }

    /// Physical predictions of a batch from the potential's derivatives: energies with
    /// their per-element references, forces `[B, N, 3]` (zero on padding), stress where the
    /// structure has a cell.
    pub fn potential_prediction(
        &self,
        host: &HostBatch,
        predictions: &[Derivatives],
    ) -> Prediction {
        let mut vectors = vec![0.0; host.graphs * host.nodes * 3];
        for (g, p) in predictions.iter().enumerate() {
            let first = host.atoms(g).start;
            for (i, f) in p.forces.iter().enumerate() {
                vectors[(first + i) * 3..(first + i) * 3 + 3].copy_from_slice(f);
            }
        }
        Prediction {
            scalars: predictions
                .iter()
                .enumerate()
                .map(|(g, p)| {
                    p.energy
                        + self
                            .normalizer
                            .baseline(&host.atomic_numbers[host.atoms(g)])
                })
                .collect(),
            vectors: Some(vectors),
            stress: Some(predictions.iter().map(|p| p.stress).collect()),
        }
    }
}
