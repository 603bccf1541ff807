//! Energies, forces and stress of a batch, from one backward pass to the displacements.

use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Tensor;

use super::{PeriodicBatch, PotentialError, TrainableModel};

/// The energy of one structure and its exact derivatives.
#[derive(Clone, Debug, PartialEq)]
pub struct Derivatives {
    /// Energy (eV, or the unit of the model).
    pub energy: f64,
    /// `F = -dE/dx`, one per atom (eV/A).
    pub forces: Vec<[f64; 3]>,
    /// `sigma = (1/V) dE/d(strain)` (eV/A^3, ASE's sign: positive under tension), for a
    /// structure with a cell.
    pub stress: Option<[[f64; 3]; 3]>,
}

/// The energies, forces and stress of every structure of `batch`.
///
/// # Errors
/// The model's input errors, and a non-finite energy or derivative (naming the structure).
pub fn evaluate<B: AutodiffBackend, M: TrainableModel<B>>(
    model: &M,
    batch: &PeriodicBatch,
    device: &B::Device,
) -> Result<Vec<Derivatives>, PotentialError> {
    let mut graph = batch.graph::<B>(&[batch.displacements()], device);
    graph.displacements = graph.displacements.require_grad();
    let pass = model.energy_backward(graph, &vec![1.0; batch.len()])?;
    let [b, n, k] = batch.dims();
    let gradient: Vec<f64> = match pass.displacements {
        Some(gradient) => gradient
            .into_data()
            .convert::<f64>()
            .to_vec()
            .map_err(|e| {
                PotentialError::Model(format!("reading the displacement gradient: {e:?}"))
            })?,
        // No edge reached the energy: the derivatives are zero.
        None => vec![0.0; b * n * k * 3],
    };
    let (forces, stresses) = batch.chain_rule(&gradient);
    let out: Vec<Derivatives> = pass
        .energies
        .into_iter()
        .zip(forces.into_iter().zip(stresses))
        .map(|(energy, (forces, stress))| Derivatives {
            energy,
            forces,
            stress,
        })
        .collect();
    check_finite(&out)?;
    Ok(out)
}

/// A non-finite energy, force or stress is an error naming its structure.
pub(super) fn check_finite(all: &[Derivatives]) -> Result<(), PotentialError> {
    for (index, d) in all.iter().enumerate() {
        let finite = d.energy.is_finite()
            && d.forces.iter().flatten().all(|x| x.is_finite())
            && d.stress.iter().flatten().flatten().all(|x| x.is_finite());
        if !finite {
            return Err(PotentialError::Structure {
                index,
                reason: "the model's energy or its derivatives are not finite".into(),
            });
        }
    }
    Ok(())
}

/// A `[B]` tensor's values in f64.
pub(super) fn to_f64<B: burn::tensor::backend::Backend>(
    values: Tensor<B, 1>,
) -> Result<Vec<f64>, PotentialError> {
    values
        .into_data()
        .convert::<f64>()
        .to_vec()
        .map_err(|e| PotentialError::Model(format!("reading energies: {e:?}")))
}
