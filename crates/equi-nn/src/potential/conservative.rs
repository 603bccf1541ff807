//! Parameter gradients of a loss on energies, forces and stress, without a double backward.
//!
//! With `F = -dE/dx` and `sigma = (1/V) dE/d(strain)`, the gradient of a loss
//! `L(E, F, sigma)` with respect to the parameters is
//!
//! ```text
//! dL/dtheta = sum_b a_b dE_b/dtheta + d/dh [ sum_b dE_b/dtheta (x - h v, strain = h s_b / V_b) ] at h = 0
//! ```
//!
//! where `a = dL/dE`, `v = dL/dF` and `s = sym(dL/dsigma)` are held fixed: the force and
//! stress terms are one Hessian-vector product, a directional derivative of the parameter
//! gradient of the energy along the configuration change `(-v, s / V)`. It is taken as a
//! central difference: one backward pass of `sum_b (a_b / 2 + 1 / (2h)) E_b` at `+h` and of
//! `sum_b (a_b / 2 - 1 / (2h)) E_b` at `-h`, stacked into one batch of twice the size (the
//! mean of the two energy gradients is the one at `h = 0` up to `O(h^2)`). So the step costs
//! the forward and backward pass of the predictions and one of a doubled batch, and works
//! with every kernel and reversible blocks unchanged; its error is `O(h^2)` from the
//! difference and `O(eps / h)` from rounding, balanced by `h ~ eps^(1/3)` Angstrom per unit
//! of the largest displacement change ([`StepSize::Auto`]).

use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{DType, Element};

use super::derivatives::evaluate;
use super::{Derivatives, PeriodicBatch, PotentialError, TrainableModel};

/// The derivatives of a loss with respect to the predictions, and its value.
#[derive(Clone, Debug, PartialEq)]
pub struct LossSensitivities {
    /// The loss.
    pub loss: f64,
    /// `dL/dE_b`, one per structure.
    pub energies: Vec<f64>,
    /// `dL/dF_i`, one per atom of every structure.
    pub forces: Vec<Vec<[f64; 3]>>,
    /// `dL/dsigma_b` for the structures whose stress enters the loss (`None`: no term).
    pub stress: Vec<Option<[[f64; 3]; 3]>>,
}

/// How the step `h` of the central difference is chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StepSize {
    /// The largest displacement of an edge changes by `eps^(1/3)` Angstrom, `eps` the
    /// machine epsilon of the backend's float type (4.9e-3 A in f32, 6.1e-6 A in f64).
    Auto,
    /// The largest displacement of an edge changes by this many Angstrom.
    Displacement(f64),
}

/// What [`conservative_gradients`] returns.
#[derive(Debug)]
pub struct ConservativeStep {
    /// The loss of the predictions.
    pub loss: f64,
    /// The predictions the loss was taken of.
    pub predictions: Vec<Derivatives>,
    /// The gradient of the loss for every parameter, ready for an optimizer step.
    pub gradients: GradientsParams,
    /// The step `h` of the central difference (0 when the loss has no force or stress
    /// term).
    pub step: f64,
}

/// The loss and its parameter gradient for a batch: predictions first, `loss` on them,
/// then the energy, force and stress terms of the gradient in one backward pass of a
/// doubled batch (see the [module docs](self)).
///
/// # Errors
/// The model's input errors, non-finite predictions, and sensitivities that do not match
/// the batch or are not finite.
pub fn conservative_gradients<B, M>(
    model: &M,
    batch: &PeriodicBatch,
    device: &B::Device,
    loss: impl FnOnce(&[Derivatives]) -> Result<LossSensitivities, PotentialError>,
    step: StepSize,
) -> Result<ConservativeStep, PotentialError>
where
    B: AutodiffBackend,
    M: TrainableModel<B>,
{
    let predictions = evaluate(model, batch, device)?;
    let sensitivities = loss(&predictions)?;
    check_sensitivities(batch, &sensitivities)?;
    let moves: Vec<Vec<[f64; 3]>> = sensitivities
        .forces
        .iter()
        .map(|v| v.iter().map(|f| f.map(|x| -x)).collect())
        .collect();
    let strains: Vec<[[f64; 3]; 3]> = sensitivities
        .stress
        .iter()
        .enumerate()
        .map(|(b, s)| match (s, batch.cell(b)) {
            (Some(s), Some(cell)) => {
                let v = cell.volume();
                std::array::from_fn(|a| std::array::from_fn(|c| 0.5 * (s[a][c] + s[c][a]) / v))
            }
            _ => [[0.0; 3]; 3],
        })
        .collect();
    // The change of the displacements per unit h (exact: they are quadratic in h).
    let ahead = batch.displaced(&moves, &strains, 1.0);
    let behind = batch.displaced(&moves, &strains, -1.0);
    let largest = ahead
        .iter()
        .zip(&behind)
        .map(|(p, m)| {
            let d: [f64; 3] = std::array::from_fn(|a| 0.5 * (p[a] - m[a]));
            (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt()
        })
        .fold(0.0, f64::max);
    let change = match step {
        StepSize::Auto => epsilon::<B>().cbrt(),
        StepSize::Displacement(d) => d,
    };
    let h = if largest > 0.0 { change / largest } else { 0.0 };
    let (graph, weights) = if h > 0.0 {
        let plus = batch.displaced(&moves, &strains, h);
        let minus = batch.displaced(&moves, &strains, -h);
        let half = sensitivities.energies.iter().map(|a| 0.5 * a);
        let weights = half
            .clone()
            .map(|a| a + 0.5 / h)
            .chain(half.map(|a| a - 0.5 / h))
            .collect();
        (batch.graph::<B>(&[&plus, &minus], device), weights)
    } else {
        let graph = batch.graph::<B>(&[batch.displacements()], device);
        (graph, sensitivities.energies.clone())
    };
    let pass = model.energy_backward(graph, &weights)?;
    Ok(ConservativeStep {
        loss: sensitivities.loss,
        predictions,
        gradients: pass.parameters,
        step: h,
    })
}

/// The machine epsilon of the backend's float type.
fn epsilon<B: AutodiffBackend>() -> f64 {
    match <B::FloatElem as Element>::dtype() {
        DType::F64 => f64::EPSILON,
        DType::F16 => 9.77e-4,
        DType::BF16 => 7.81e-3,
        _ => f64::from(f32::EPSILON),
    }
}

fn check_sensitivities(
    batch: &PeriodicBatch,
    sensitivities: &LossSensitivities,
) -> Result<(), PotentialError> {
    let fail = |reason: String| Err(PotentialError::Loss(reason));
    let b = batch.len();
    if sensitivities.energies.len() != b
        || sensitivities.forces.len() != b
        || sensitivities.stress.len() != b
    {
        return fail(format!(
            "{b} structures, but sensitivities for {} energies, {} force sets and {} stresses",
            sensitivities.energies.len(),
            sensitivities.forces.len(),
            sensitivities.stress.len()
        ));
    }
    for (index, (forces, &atoms)) in sensitivities.forces.iter().zip(batch.atoms()).enumerate() {
        if forces.len() != atoms {
            return fail(format!(
                "structure {index} has {atoms} atoms, but {} force sensitivities",
                forces.len()
            ));
        }
    }
    let finite = sensitivities.loss.is_finite()
        && sensitivities.energies.iter().all(|x| x.is_finite())
        && sensitivities
            .forces
            .iter()
            .flatten()
            .flatten()
            .all(|x| x.is_finite())
        && sensitivities
            .stress
            .iter()
            .flatten()
            .flatten()
            .flatten()
            .all(|x| x.is_finite());
    if !finite {
        return fail(format!(
            "the loss or its derivatives are not finite (loss {})",
            sensitivities.loss
        ));
    }
    Ok(())
}
