//! Thermodynamic observables (temperature, pressure, energies) and thermal initial velocities.

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use crate::error::MdError;
use crate::force_field::Evaluation;
use crate::state::State;
use crate::units::{AMU_A2_PER_FS2_IN_EV, BOLTZMANN_EV_PER_K, FS_PER_PS, GPA_PER_EV_PER_A3};

/// The number of degrees of freedom of `atoms` free atoms: `3N - 3` when the total momentum
/// is fixed (removed at the start and conserved, as in velocity Verlet), else `3N` (Langevin
/// dynamics, whose noise moves the centre of mass). A single atom with fixed momentum has no
/// thermal motion; it counts 3 so that a temperature is still defined.
///
/// ```
/// assert_eq!(md::degrees_of_freedom(32, true), 93);
/// assert_eq!(md::degrees_of_freedom(32, false), 96);
/// ```
pub fn degrees_of_freedom(atoms: usize, momentum_fixed: bool) -> usize {
    if momentum_fixed && atoms > 1 {
        3 * atoms - 3
    } else {
        3 * atoms
    }
}

/// The kinetic temperature `T = 2 K / (f k_B)`, in K, of a kinetic energy `kinetic` (eV)
/// shared by `dof` degrees of freedom (0 for no degrees of freedom).
pub fn kinetic_temperature(kinetic: f64, dof: usize) -> f64 {
    if dof == 0 {
        0.0
    } else {
        2.0 * kinetic / (dof as f64 * BOLTZMANN_EV_PER_K)
    }
}

/// The instantaneous pressure, in eV/A^3: `P = -trace(sigma) / 3 + 2 K / (3 V)`, the virial
/// part from the force field's stress `sigma` (ASE sign, so compression gives `P > 0`) and
/// the kinetic part from the kinetic energy `K` of `state`. The kinetic part equals
/// `N k_B T / V` for `T` measured on `3N` degrees of freedom. `None` without a stress or a
/// cell. Multiply by [`GPA_PER_EV_PER_A3`] for GPa.
pub fn pressure(state: &State, evaluation: &Evaluation) -> Option<f64> {
    let stress = evaluation.stress?;
    let volume = state.volume()?;
    let virial = -(stress[0] + stress[1] + stress[2]) / 3.0;
    Some(virial + 2.0 * state.kinetic_energy() / (3.0 * volume))
}

/// Gives `state` velocities drawn from the Maxwell-Boltzmann distribution at `temperature`
/// (K), with the seed `seed`, and removes the net momentum.
///
/// Each component of `v_i` is normal with variance `k_B T / m_i`. After the momentum is
/// removed, the kinetic energy has on average `(3N - 3) / 2 k_B T`; with `exact`, the
/// velocities are then scaled so that the kinetic temperature on `3N - 3` degrees of freedom
/// ([`degrees_of_freedom`]) is exactly `temperature`. A single atom ends at rest.
///
/// ```
/// use md::{degrees_of_freedom, kinetic_temperature, maxwell_boltzmann, State};
/// let mut state = State::new(vec![18; 8], (0..8).map(|k| [4.0 * k as f64, 0.0, 0.0]).collect())?;
/// maxwell_boltzmann(&mut state, 300.0, 42, true)?;
/// let t = kinetic_temperature(state.kinetic_energy(), degrees_of_freedom(8, true));
/// assert!((t - 300.0).abs() < 1e-9);
/// # Ok::<(), md::MdError>(())
/// ```
///
/// # Errors
/// A temperature that is negative or not finite.
pub fn maxwell_boltzmann(
    state: &mut State,
    temperature: f64,
    seed: u64,
    exact: bool,
) -> Result<(), MdError> {
    MdError::check_non_negative("the temperature (K)", temperature)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let kt = BOLTZMANN_EV_PER_K * temperature / AMU_A2_PER_FS2_IN_EV;
    let (masses, velocities) = state.masses_and_velocities_mut();
    for (v, m) in velocities.iter_mut().zip(masses) {
        let sigma = (kt / m).sqrt();
        for value in v.iter_mut() {
            let xi: f64 = StandardNormal.sample(&mut rng);
            *value = sigma * xi;
        }
    }
    state.remove_net_momentum();
    let kinetic = state.kinetic_energy();
    if exact && kinetic > 0.0 {
        let now = kinetic_temperature(kinetic, degrees_of_freedom(state.atom_count(), true));
        let scale = (temperature / now).sqrt();
        for v in state.velocities_mut() {
            for value in v.iter_mut() {
                *value *= scale;
            }
        }
    }
    Ok(())
}

/// The thermodynamic summary of one step, as a run reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thermo {
    /// Steps taken since the start of the dynamics.
    pub step: u64,
    /// Simulated time since the start, in ps.
    pub time_ps: f64,
    /// Potential energy, in eV.
    pub potential: f64,
    /// Kinetic energy, in eV.
    pub kinetic: f64,
    /// `potential + kinetic`, in eV (conserved by NVE dynamics up to the integration error).
    pub total: f64,
    /// Kinetic temperature, in K, on the integrator's degrees of freedom
    /// ([`degrees_of_freedom`]).
    pub temperature: f64,
    /// Pressure in eV/A^3 ([`pressure`]), when the force field gives a stress and the state
    /// has a cell.
    pub pressure: Option<f64>,
}

impl Thermo {
    /// The columns of [`csv_row`](Self::csv_row), without a line break.
    pub const CSV_HEADER: &'static str =
        "step,time_ps,potential_ev,kinetic_ev,total_ev,temperature_k,pressure_gpa";

    /// The summary of `state` with `evaluation`, after `step` steps and `time_fs` fs, with the
    /// temperature on `3N - 3` degrees of freedom if `momentum_fixed`, else `3N`.
    pub fn measure(
        step: u64,
        time_fs: f64,
        state: &State,
        evaluation: &Evaluation,
        momentum_fixed: bool,
    ) -> Self {
        let kinetic = state.kinetic_energy();
        let dof = degrees_of_freedom(state.atom_count(), momentum_fixed);
        Self {
            step,
            time_ps: time_fs / FS_PER_PS,
            potential: evaluation.energy,
            kinetic,
            total: evaluation.energy + kinetic,
            temperature: kinetic_temperature(kinetic, dof),
            pressure: pressure(state, evaluation),
        }
    }

    /// The pressure in GPa.
    pub fn pressure_gpa(&self) -> Option<f64> {
        self.pressure.map(|p| p * GPA_PER_EV_PER_A3)
    }

    /// One line of comma-separated values in the order of [`CSV_HEADER`](Self::CSV_HEADER)
    /// (an empty pressure field when there is none), without a line break.
    pub fn csv_row(&self) -> String {
        let pressure = self
            .pressure_gpa()
            .map_or_else(String::new, |p| format!("{p:.6}"));
        format!(
            "{},{:.6},{:.8},{:.8},{:.8},{:.4},{}",
            self.step,
            self.time_ps,
            self.potential,
            self.kinetic,
            self.total,
            self.temperature,
            pressure
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atoms::Cell;

    #[test]
    fn thermal_velocities_have_the_temperature_on_average() {
        let n = 4000;
        let mut state = State::new(vec![18; n], vec![[0.0; 3]; n]).unwrap();
        maxwell_boltzmann(&mut state, 250.0, 9, false).unwrap();
        let t = kinetic_temperature(state.kinetic_energy(), degrees_of_freedom(n, true));
        // The relative spread of the temperature of 3N - 3 normal components: sqrt(2 / f).
        let spread = (2.0 / (3.0 * n as f64 - 3.0)).sqrt();
        assert!((t / 250.0 - 1.0).abs() < 4.0 * spread, "T = {t}");
        assert!(state.momentum().iter().all(|p| p.abs() < 1e-9));
    }

    #[test]
    fn thermal_velocities_are_reproducible_and_a_lone_atom_rests() {
        let make = |seed| {
            let mut state = State::new(vec![1, 6], vec![[0.0; 3], [1.2, 0.0, 0.0]]).unwrap();
            maxwell_boltzmann(&mut state, 300.0, seed, true).unwrap();
            state
        };
        assert_eq!(make(5), make(5));
        assert_ne!(make(5), make(6));
        let mut lone = State::new(vec![1], vec![[0.0; 3]]).unwrap();
        maxwell_boltzmann(&mut lone, 300.0, 1, true).unwrap();
        assert_eq!(lone.velocities(), &[[0.0; 3]]);
        assert!(maxwell_boltzmann(&mut lone, -1.0, 1, true).is_err());
    }

    #[test]
    fn an_ideal_gas_has_pressure_n_kt_over_v() {
        let n = 500;
        let side = 20.0;
        let cell = Cell::new([[side, 0.0, 0.0], [0.0, side, 0.0], [0.0, 0.0, side]]).unwrap();
        let mut state = State::new(vec![2; n], vec![[1.0; 3]; n])
            .unwrap()
            .with_cell(Some(cell), [true; 3])
            .unwrap();
        maxwell_boltzmann(&mut state, 300.0, 2, true).unwrap();
        let free = Evaluation {
            energy: 0.0,
            forces: vec![[0.0; 3]; n],
            stress: Some([0.0; 6]),
        };
        let thermo = Thermo::measure(0, 0.0, &state, &free, false);
        let expected = n as f64 * BOLTZMANN_EV_PER_K * thermo.temperature / side.powi(3);
        assert!((thermo.pressure.unwrap() / expected - 1.0).abs() < 1e-12);
        // A compressive stress of -1 GPa on every axis adds 1 GPa.
        let squeeze = -1.0 / GPA_PER_EV_PER_A3;
        let squeezed = Evaluation {
            stress: Some([squeeze, squeeze, squeeze, 0.0, 0.0, 0.0]),
            ..free.clone()
        };
        let more = Thermo::measure(0, 0.0, &state, &squeezed, false);
        let added = more.pressure_gpa().unwrap() - thermo.pressure_gpa().unwrap();
        assert!((added - 1.0).abs() < 1e-12);
        let molecule = State::new(vec![2], vec![[0.0; 3]]).unwrap();
        assert_eq!(pressure(&molecule, &free), None);
    }

    #[test]
    fn a_csv_row_matches_the_header() {
        let state = State::new(vec![1, 1], vec![[0.0; 3], [0.74, 0.0, 0.0]]).unwrap();
        let evaluation = Evaluation {
            energy: -1.5,
            forces: vec![[0.0; 3]; 2],
            stress: None,
        };
        let thermo = Thermo::measure(10, 5.0, &state, &evaluation, true);
        let row = thermo.csv_row();
        assert_eq!(
            row,
            "10,0.005000,-1.50000000,0.00000000,-1.50000000,0.0000,"
        );
        assert_eq!(
            row.split(',').count(),
            Thermo::CSV_HEADER.split(',').count()
        );
    }
}
