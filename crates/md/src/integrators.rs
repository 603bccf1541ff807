//! Time integrators of the kick-drift-kick family: velocity Verlet (NVE) and Langevin
//! dynamics with the BAOAB splitting (NVT).
//!
//! One step of length `dt` is: a half kick `v += dt/2 * F(x) / m` (the "B" part), the
//! integrator's [`drift`](Integrator::drift), a new force evaluation, and a second half kick
//! with the new forces. [`Dynamics`](crate::Dynamics) does the kicks and the evaluation; an
//! integrator supplies the middle.

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use crate::error::MdError;
use crate::state::State;
use crate::units::{AMU_A2_PER_FS2_IN_EV, BOLTZMANN_EV_PER_K};

/// The part of a kick-drift-kick step between the two half kicks.
pub trait Integrator {
    /// The time step, in fs.
    fn timestep(&self) -> f64;

    /// Advances positions (and, for a thermostat, velocities) by one step, after the first
    /// half kick and before the force evaluation.
    fn drift(&mut self, state: &mut State);

    /// Whether the dynamics conserves the total momentum (for a force field whose forces
    /// sum to zero). It then has `3N - 3` degrees of freedom instead of `3N`
    /// ([`degrees_of_freedom`](crate::degrees_of_freedom)).
    fn conserves_momentum(&self) -> bool;
}

/// `v += dt * F / m` for every atom, with `dt` in fs (usually half a step).
pub(crate) fn kick(state: &mut State, forces: &[[f64; 3]], dt: f64) {
    let scale = dt / AMU_A2_PER_FS2_IN_EV;
    let (masses, velocities) = state.masses_and_velocities_mut();
    for ((v, f), m) in velocities.iter_mut().zip(forces).zip(masses) {
        let factor = scale / m;
        for c in 0..3 {
            v[c] += factor * f[c];
        }
    }
}

/// `x += dt * v` for every atom, with `dt` in fs.
fn advance_positions(state: &mut State, dt: f64) {
    let (positions, velocities) = state.positions_mut_and_velocities();
    for (x, v) in positions.iter_mut().zip(velocities) {
        for c in 0..3 {
            x[c] += dt * v[c];
        }
    }
}

/// Velocity Verlet: microcanonical (NVE), time reversible and symplectic.
///
/// With `a = F / m`: `v' = v + dt/2 a(x)`, `x_new = x + dt v'`, `v_new = v' + dt/2 a(x_new)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VelocityVerlet {
    timestep: f64,
}

impl VelocityVerlet {
    /// Velocity Verlet with the time step `timestep`, in fs (typically 0.5 fs with hydrogen,
    /// 1 to 5 fs for heavier atoms).
    ///
    /// # Errors
    /// A time step that is not finite and positive.
    pub fn new(timestep: f64) -> Result<Self, MdError> {
        Ok(Self {
            timestep: MdError::check_positive("the time step (fs)", timestep)?,
        })
    }
}

impl Integrator for VelocityVerlet {
    fn timestep(&self) -> f64 {
        self.timestep
    }

    fn drift(&mut self, state: &mut State) {
        advance_positions(state, self.timestep);
    }

    fn conserves_momentum(&self) -> bool {
        true
    }
}

/// Langevin dynamics, canonical (NVT), with the BAOAB splitting of Leimkuhler and Matthews
/// (2013).
///
/// `dv = F/m dt - gamma v dt + sqrt(2 gamma k_B T / m) dW`, split as B (half kick), A (half
/// drift `x += dt/2 v`), O (the exact Ornstein-Uhlenbeck step
/// `v = c v + sqrt(1 - c^2) sqrt(k_B T / m) xi`, `c = exp(-gamma dt)`, `xi` standard normal
/// per component), A, B. Configurations are sampled with an error of `O(dt^2)` and exactly for
/// a harmonic potential; the friction `gamma` (1/fs) sets how quickly the temperature relaxes,
/// in about `1 / (2 gamma)`. The noise comes from a seeded generator, so a run is reproducible
/// (for this build: `StdRng` may change between `rand` releases).
#[derive(Debug, Clone)]
pub struct Langevin {
    timestep: f64,
    temperature: f64,
    friction: f64,
    rng: StdRng,
}

impl Langevin {
    /// BAOAB with the time step `timestep` (fs), the bath temperature `temperature` (K), the
    /// friction `friction` (1/fs; 0.001 to 0.01 are usual, 0 is velocity Verlet) and the seed
    /// of the noise.
    ///
    /// # Errors
    /// A time step that is not finite and positive, or a temperature or friction that is
    /// negative or not finite.
    pub fn new(timestep: f64, temperature: f64, friction: f64, seed: u64) -> Result<Self, MdError> {
        Ok(Self {
            timestep: MdError::check_positive("the time step (fs)", timestep)?,
            temperature: MdError::check_non_negative("the temperature (K)", temperature)?,
            friction: MdError::check_non_negative("the friction (1/fs)", friction)?,
            rng: StdRng::seed_from_u64(seed),
        })
    }

    /// The bath temperature, in K.
    pub fn temperature(&self) -> f64 {
        self.temperature
    }

    /// Changes the bath temperature (K), e.g. for annealing.
    ///
    /// # Errors
    /// A temperature that is negative or not finite.
    pub fn set_temperature(&mut self, temperature: f64) -> Result<(), MdError> {
        self.temperature = MdError::check_non_negative("the temperature (K)", temperature)?;
        Ok(())
    }

    /// The friction, in 1/fs.
    pub fn friction(&self) -> f64 {
        self.friction
    }

    /// The "O" part: the exact solution of the Ornstein-Uhlenbeck process over `dt`.
    fn thermostat(&mut self, state: &mut State) {
        let decay = (-self.friction * self.timestep).exp();
        // sqrt(1 - c^2), accurate also for a small friction times time step.
        let spread = (-(-2.0 * self.friction * self.timestep).exp_m1()).sqrt();
        let kt = BOLTZMANN_EV_PER_K * self.temperature / AMU_A2_PER_FS2_IN_EV;
        let (masses, velocities) = state.masses_and_velocities_mut();
        for (v, m) in velocities.iter_mut().zip(masses) {
            let sigma = spread * (kt / m).sqrt();
            for value in v.iter_mut() {
                let xi: f64 = StandardNormal.sample(&mut self.rng);
                *value = decay * *value + sigma * xi;
            }
        }
    }
}

impl Integrator for Langevin {
    fn timestep(&self) -> f64 {
        self.timestep
    }

    fn drift(&mut self, state: &mut State) {
        let half = 0.5 * self.timestep;
        advance_positions(state, half);
        self.thermostat(state);
        advance_positions(state, half);
    }

    fn conserves_momentum(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_parameters_are_refused() {
        for dt in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                VelocityVerlet::new(dt),
                Err(MdError::InvalidParameter { .. })
            ));
            assert!(Langevin::new(dt, 300.0, 0.01, 0).is_err());
        }
        assert!(Langevin::new(1.0, -1.0, 0.01, 0).is_err());
        assert!(Langevin::new(1.0, 300.0, f64::NAN, 0).is_err());
        let mut langevin = Langevin::new(1.0, 0.0, 0.0, 0).unwrap();
        assert!(langevin.set_temperature(f64::INFINITY).is_err());
        assert_eq!(langevin.temperature(), 0.0);
    }

    #[test]
    fn without_friction_langevin_drifts_like_verlet() {
        let state = State::new(vec![1, 8], vec![[0.0; 3], [1.0, 0.0, 0.0]])
            .unwrap()
            .with_velocities(vec![[0.01, 0.0, -0.02], [0.0, 0.003, 0.0]])
            .unwrap();
        let (mut a, mut b) = (state.clone(), state);
        VelocityVerlet::new(0.5).unwrap().drift(&mut a);
        Langevin::new(0.5, 300.0, 0.0, 1).unwrap().drift(&mut b);
        for (x, y) in a.positions().iter().zip(b.positions()) {
            for c in 0..3 {
                assert!((x[c] - y[c]).abs() < 1e-15);
            }
        }
        assert_eq!(a.velocities(), b.velocities());
    }

    #[test]
    fn the_thermostat_step_samples_the_bath_velocities() {
        // A long friction time step forgets the old velocities: each component becomes
        // normal with variance k_B T / m.
        let mut state = State::new(vec![18; 2000], vec![[0.0; 3]; 2000]).unwrap();
        let mut langevin = Langevin::new(1.0, 300.0, 50.0, 3).unwrap();
        langevin.thermostat(&mut state);
        let variance = BOLTZMANN_EV_PER_K * 300.0 / (39.948 * AMU_A2_PER_FS2_IN_EV);
        let mean_square: f64 = state
            .velocities()
            .iter()
            .flatten()
            .map(|v| v * v)
            .sum::<f64>()
            / 6000.0;
        // 6000 samples: the relative standard error of the mean square is sqrt(2 / 6000).
        assert!((mean_square / variance - 1.0).abs() < 4.0 * (2.0f64 / 6000.0).sqrt());
    }
}
