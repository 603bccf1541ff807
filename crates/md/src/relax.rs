//! Structure relaxation with FIRE, the fast inertial relaxation engine of Bitzek, Koskinen,
//! Gähler, Moseler and Gumbsch (Phys. Rev. Lett. 97, 170201, 2006).
//!
//! Only the positions relax; the cell is held fixed (no stress-driven cell relaxation).

use crate::dynamics::Control;
use crate::error::MdError;
use crate::force_field::{checked_cutoff, evaluate_checked, Evaluation, ForceField};
use crate::neighbors::VerletList;
use crate::state::State;

/// The parameters of FIRE, with the defaults of Bitzek et al. (2006).
///
/// FIRE here is mass-free, as in ASE: the fictitious dynamics is `x'' = F` (unit masses), so
/// the time steps are in the unit `A / sqrt(eV / A)` in which that equation holds, not in fs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FireParameters {
    /// The first time step. Default 0.1.
    pub dt_start: f64,
    /// The largest time step. Default 1.0.
    pub dt_max: f64,
    /// Downhill steps to take after a restart before the time step may grow (`N_min`).
    /// Default 5.
    pub n_min: u32,
    /// The factor the time step grows by on a downhill step (`f_inc`). Default 1.1.
    pub f_inc: f64,
    /// The factor the time step shrinks by on an uphill step (`f_dec`). Default 0.5.
    pub f_dec: f64,
    /// The mixing of the velocity towards the force at a restart (`alpha_start`). Default 0.1.
    pub alpha_start: f64,
    /// The factor the mixing decays by on a downhill step (`f_alpha`). Default 0.99.
    pub f_alpha: f64,
    /// The most any atom may move in one step, in A. Default 0.2.
    pub max_step: f64,
}

impl Default for FireParameters {
    fn default() -> Self {
        Self {
            dt_start: 0.1,
            dt_max: 1.0,
            n_min: 5,
            f_inc: 1.1,
            f_dec: 0.5,
            alpha_start: 0.1,
            f_alpha: 0.99,
            max_step: 0.2,
        }
    }
}

/// When a relaxation stops, and its neighbour list.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RelaxOptions {
    /// Converged when the largest force norm `max_i |F_i|` is below this, in eV/A.
    /// Default 0.05.
    pub fmax: f64,
    /// The most steps to take. Default 1000.
    pub max_steps: u64,
    /// The skin of the Verlet list, in A. Default 0.5.
    pub skin: f64,
    /// The optimizer's parameters.
    pub fire: FireParameters,
}

impl Default for RelaxOptions {
    fn default() -> Self {
        Self {
            fmax: 0.05,
            max_steps: 1000,
            skin: 0.5,
            fire: FireParameters::default(),
        }
    }
}

/// What an observer of [`relax`] sees after each step (and before the first).
#[derive(Debug, Clone, Copy)]
pub struct RelaxSnapshot<'a> {
    /// Steps taken so far.
    pub step: u64,
    /// The potential energy, in eV.
    pub energy: f64,
    /// The largest force norm, in eV/A.
    pub fmax: f64,
    /// The current structure.
    pub state: &'a State,
    /// Its evaluation.
    pub evaluation: &'a Evaluation,
}

/// How a relaxation ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RelaxOutcome {
    /// Whether the largest force fell below [`RelaxOptions::fmax`].
    pub converged: bool,
    /// Whether the observer stopped it.
    pub stopped: bool,
    /// The steps taken.
    pub steps: u64,
    /// The evaluation of the final structure (energy in eV, forces in eV/A).
    pub evaluation: Evaluation,
}

/// Relaxes the positions of `state` with FIRE until the largest force is below
/// `options.fmax`, `options.max_steps` steps have been taken, or `observer` stops it. The
/// cell, the masses and the velocities of `state` are left as they are; positions are wrapped
/// into the cell at neighbour-list rebuilds.
///
/// Each step: with the power `P = F . v` (over all `3N` components), if `P > 0` mix
/// `v = (1 - alpha) v + alpha |v| F / |F|` and, after more than `n_min` such steps in a row,
/// grow `dt` by `f_inc` (up to `dt_max`) and shrink `alpha` by `f_alpha`; if `P <= 0` stop
/// (`v = 0`), shrink `dt` by `f_dec` and reset `alpha`. Then `v += dt F` and `x += dt v`, the
/// displacement scaled down so that no atom moves more than `max_step` (semi-implicit Euler,
/// as in ASE; the first step only takes `v = dt F`).
///
/// # Errors
/// Invalid options, or the neighbour search or the force field failing (with the step).
pub fn relax<F: ForceField>(
    state: &mut State,
    force_field: &mut F,
    options: &RelaxOptions,
    mut observer: impl FnMut(&RelaxSnapshot<'_>) -> Control,
) -> Result<RelaxOutcome, MdError> {
    state.validate()?;
    check_options(options)?;
    let fire = options.fire;
    let mut neighbors = VerletList::new(checked_cutoff(force_field)?, options.skin)?;
    let mut evaluate = |state: &mut State, step: u64| -> Result<Evaluation, MdError> {
        neighbors
            .update(state)
            .map_err(|source| MdError::Neighbors { step, source })?;
        evaluate_checked(force_field, state, neighbors.list(), step)
    };
    let mut evaluation = evaluate(state, 0)?;
    let mut velocities = vec![[0.0f64; 3]; state.atom_count()];
    let (mut dt, mut alpha, mut downhill) = (fire.dt_start, fire.alpha_start, 0u32);
    let mut step = 0;
    loop {
        let fmax = evaluation.max_force();
        let snapshot = RelaxSnapshot {
            step,
            energy: evaluation.energy,
            fmax,
            state,
            evaluation: &evaluation,
        };
        let stopped = observer(&snapshot) == Control::Stop;
        let converged = fmax < options.fmax;
        if stopped || converged || step == options.max_steps {
            return Ok(RelaxOutcome {
                converged,
                stopped: stopped && !converged,
                steps: step,
                evaluation,
            });
        }
        let forces = &evaluation.forces;
        if step > 0 {
            let power: f64 = dot(forces, &velocities);
            if power > 0.0 {
                let v_norm = dot(&velocities, &velocities).sqrt();
                let f_norm = dot(forces, forces).sqrt();
                for (v, f) in velocities.iter_mut().zip(forces) {
                    for c in 0..3 {
                        v[c] = (1.0 - alpha) * v[c] + alpha * v_norm * f[c] / f_norm;
                    }
                }
                if downhill > fire.n_min {
                    dt = (dt * fire.f_inc).min(fire.dt_max);
                    alpha *= fire.f_alpha;
                }
                downhill += 1;
            } else {
                velocities.iter_mut().for_each(|v| *v = [0.0; 3]);
                dt *= fire.f_dec;
                alpha = fire.alpha_start;
                downhill = 0;
            }
        }
        for (v, f) in velocities.iter_mut().zip(forces) {
            for c in 0..3 {
                v[c] += dt * f[c];
            }
        }
        let longest = velocities
            .iter()
            .map(|v| dt * (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt())
            .fold(0.0, f64::max);
        let scale = if longest > fire.max_step {
            fire.max_step / longest
        } else {
            1.0
        };
        for (x, v) in state.positions_mut().iter_mut().zip(&velocities) {
            for c in 0..3 {
                x[c] += scale * dt * v[c];
            }
        }
        step += 1;
        evaluation = evaluate(state, step)?;
    }
}

fn check_options(options: &RelaxOptions) -> Result<(), MdError> {
    let fire = &options.fire;
    MdError::check_positive("fmax (eV/A)", options.fmax)?;
    MdError::check_positive("the FIRE dt_start", fire.dt_start)?;
    MdError::check_positive("the FIRE dt_max", fire.dt_max)?;
    MdError::check_positive("the FIRE max_step (A)", fire.max_step)?;
    for (name, value) in [
        ("the FIRE f_dec", fire.f_dec),
        ("the FIRE alpha_start", fire.alpha_start),
        ("the FIRE f_alpha", fire.f_alpha),
    ] {
        if !(value > 0.0 && value <= 1.0) {
            return Err(MdError::InvalidParameter {
                name,
                requirement: "in (0, 1]",
                value,
            });
        }
    }
    if !(fire.f_inc.is_finite() && fire.f_inc >= 1.0) {
        return Err(MdError::InvalidParameter {
            name: "the FIRE f_inc",
            requirement: "finite and at least 1",
            value: fire.f_inc,
        });
    }
    Ok(())
}

/// `sum_i a_i . b_i` over all `3N` components.
fn dot(a: &[[f64; 3]], b: &[[f64; 3]]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| x[0] * y[0] + x[1] * y[1] + x[2] * y[2])
        .sum()
}

#[cfg(test)]
mod tests;
