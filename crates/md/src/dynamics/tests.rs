use super::*;
use crate::force_field::ForceFieldError;
use crate::integrators::{Langevin, VelocityVerlet};
use crate::neighbors::NeighborList;
use crate::state::StateError;
use crate::test_support::{
    argon_crystal, block_mean_and_error, Harmonic, LennardJones, ARGON_EPSILON, ARGON_SIGMA,
};
use crate::thermo::maxwell_boltzmann;
use crate::units::AMU_A2_PER_FS2_IN_EV;

/// Argon's fcc lattice constant near the minimum of the cut potential, in A.
const ARGON_LATTICE: f64 = 5.30;
/// Between the fourth (7.50 A) and fifth (8.38 A) neighbour shells of that lattice.
const ARGON_CUTOFF: f64 = 8.0;

fn argon_potential() -> LennardJones {
    LennardJones::shifted(ARGON_EPSILON, ARGON_SIGMA, ARGON_CUTOFF)
}

#[test]
fn velocity_verlet_follows_the_exact_discrete_map_of_a_harmonic_well() {
    // Three atoms of different masses in one harmonic well each: every Cartesian component is
    // an oscillator of frequency w = sqrt(k / m), and n velocity Verlet steps of length dt are
    // the n-th power of the linear map M of (x - a, v / w). With h = w dt and
    // q = sqrt(1 - h^2 / 4): M = [[1 - h^2/2, h], [-h q^2, 1 - h^2/2]], whose eigenvalues are
    // exp(+-i theta) with sin(theta / 2) = h / 2, so
    // M^n = [[cos n theta, sin n theta / q], [-q sin n theta, cos n theta]].
    let anchors = vec![[0.0; 3], [10.0, 0.0, 0.0], [0.0, 10.0, 0.0]];
    let start = vec![[0.3, -0.1, 0.2], [10.5, 0.0, -0.4], [0.1, 9.2, 0.0]];
    let velocities = vec![[0.01, 0.0, -0.02], [0.0, 0.015, 0.003], [-0.004, 0.0, 0.0]];
    let masses = vec![1.008, 12.011, 39.948];
    let (stiffness, dt) = (2.0, 1.0);
    let state = State::new_with_masses(vec![1, 6, 18], start.clone(), masses.clone())
        .unwrap()
        .with_velocities(velocities.clone())
        .unwrap();
    let harmonic = Harmonic {
        stiffness,
        anchors: anchors.clone(),
    };
    let mut md = Dynamics::new(state, harmonic, VelocityVerlet::new(dt).unwrap(), 0.5).unwrap();
    let mut worst: f64 = 0.0;
    for n in 1..=2000 {
        md.step().unwrap();
        for atom in 0..3 {
            let w = (stiffness / (masses[atom] * AMU_A2_PER_FS2_IN_EV)).sqrt();
            let h = w * dt;
            let theta = 2.0 * (0.5 * h).asin();
            let q = (1.0 - 0.25 * h * h).sqrt();
            let (cos, sin) = ((n as f64 * theta).cos(), (n as f64 * theta).sin());
            for c in 0..3 {
                let (x0, u0) = (start[atom][c] - anchors[atom][c], velocities[atom][c] / w);
                let x = anchors[atom][c] + cos * x0 + sin / q * u0;
                let v = w * (-q * sin * x0 + cos * u0);
                worst = worst
                    .max((md.state().positions()[atom][c] - x).abs())
                    .max((md.state().velocities()[atom][c] - v).abs());
            }
        }
    }
    eprintln!("velocity Verlet vs its exact map, 2000 steps: largest deviation {worst:e}");
    assert!(worst < 1e-10, "largest deviation {worst:e}");
}

/// A periodic argon crystal with thermal velocities.
fn hot_argon(temperature: f64, seed: u64) -> State {
    let mut state = argon_crystal(ARGON_LATTICE);
    maxwell_boltzmann(&mut state, temperature, seed, true).unwrap();
    state
}

#[test]
fn nve_conserves_the_energy_of_a_periodic_lennard_jones_crystal() {
    let dt = 2.0;
    let integrator = VelocityVerlet::new(dt).unwrap();
    let mut md = Dynamics::new(hot_argon(80.0, 1), argon_potential(), integrator, 1.0).unwrap();
    let (mut times, mut totals, mut kinetic) = (Vec::new(), Vec::new(), 0.0);
    md.run(10_000, 10, |snapshot| {
        times.push(snapshot.thermo.time_ps);
        totals.push(snapshot.thermo.total);
        kinetic += snapshot.thermo.kinetic;
        Control::Continue
    })
    .unwrap();
    let samples = totals.len() as f64;
    kinetic /= samples;
    // Least-squares slope of the total energy against time, per atom.
    let (mean_t, mean_e) = (
        times.iter().sum::<f64>() / samples,
        totals.iter().sum::<f64>() / samples,
    );
    let covariance: f64 = times
        .iter()
        .zip(&totals)
        .map(|(t, e)| (t - mean_t) * (e - mean_e))
        .sum();
    let spread: f64 = times.iter().map(|t| (t - mean_t).powi(2)).sum();
    let drift = covariance / spread / 32.0; // eV / atom / ps
    let excursion = totals
        .iter()
        .map(|e| (e - totals[0]).abs())
        .fold(0.0, f64::max);
    eprintln!(
        "NVE argon, 20 ps at dt = {dt} fs: drift {drift:.3e} eV/atom/ps, largest excursion \
         {excursion:.3e} eV (mean kinetic energy {kinetic:.3e} eV, T = {:.1} K)",
        md.thermo().temperature
    );
    assert!(drift.abs() < 1e-6, "drift {drift:e} eV/atom/ps");
    assert!(excursion < 1e-3 * kinetic, "excursion {excursion:e} eV");
}

#[test]
fn the_skin_list_gives_the_forces_of_a_fresh_list_at_every_step() {
    // Hot enough to melt, so that atoms diffuse, leave the cell and force rebuilds.
    let steps = 2000;
    let integrator = VelocityVerlet::new(2.0).unwrap();
    let mut md = Dynamics::new(hot_argon(400.0, 2), argon_potential(), integrator, 0.5).unwrap();
    let mut reference = argon_potential();
    let mut worst: f64 = 0.0;
    md.run(steps, 1, |snapshot| {
        let fresh = NeighborList::new(snapshot.state, ARGON_CUTOFF).unwrap();
        let expected = reference.evaluate(snapshot.state, &fresh).unwrap();
        assert!((expected.energy - snapshot.evaluation.energy).abs() < 1e-12);
        for (f, g) in expected.forces.iter().zip(&snapshot.evaluation.forces) {
            for c in 0..3 {
                worst = worst.max((f[c] - g[c]).abs());
            }
        }
        Control::Continue
    })
    .unwrap();
    let rebuilds = md.neighbors().rebuilds();
    eprintln!("skin list: {rebuilds} builds in {steps} steps, largest force difference {worst:e}");
    assert!(worst < 1e-12, "largest force difference {worst:e} eV/A");
    assert!(
        rebuilds > 5,
        "{rebuilds} builds: the test should exercise rebuilding"
    );
    assert!(
        rebuilds < steps as usize / 10,
        "{rebuilds} builds in {steps} steps"
    );
}

#[test]
fn langevin_reaches_the_bath_temperature() {
    let (temperature, dt) = (50.0, 4.0);
    let integrator = Langevin::new(dt, temperature, 0.01, 11).unwrap();
    let mut md = Dynamics::new(hot_argon(10.0, 3), argon_potential(), integrator, 1.0).unwrap();
    md.run(1000, 1000, |_| Control::Continue).unwrap();
    let mut samples = Vec::new();
    md.run(40_000, 1, |snapshot| {
        samples.push(snapshot.thermo.temperature);
        Control::Continue
    })
    .unwrap();
    // 20 blocks of 80 ps, far longer than the ~50 fs relaxation time 1 / (2 friction).
    let (mean, error) = block_mean_and_error(&samples, 20);
    eprintln!("Langevin argon at {temperature} K: T = {mean:.3} +- {error:.3} K");
    assert!(
        (mean - temperature).abs() < 3.0 * error,
        "T = {mean} +- {error}"
    );
    assert!(
        error < 0.02 * temperature,
        "the error {error} is too large to test anything"
    );
}

#[test]
fn observations_continue_across_runs() {
    let state = State::new(vec![1], vec![[0.0; 3]]).unwrap();
    let harmonic = Harmonic {
        stiffness: 1.0,
        anchors: vec![[0.1, 0.0, 0.0]],
    };
    let mut md = Dynamics::new(state, harmonic, VelocityVerlet::new(0.5).unwrap(), 0.1).unwrap();
    let mut seen = Vec::new();
    for _ in 0..2 {
        let outcome = md
            .run(5, 2, |snapshot| {
                seen.push(snapshot.thermo.step);
                Control::Continue
            })
            .unwrap();
        assert_eq!(
            outcome,
            RunOutcome {
                steps: 5,
                stopped: false
            }
        );
    }
    assert_eq!(seen, [0, 2, 4, 6, 8, 10]);
    assert_eq!(md.step_count(), 10);
    assert!((md.time_fs() - 5.0).abs() < 1e-12);
    assert!(matches!(
        md.run(1, 0, |_| Control::Continue),
        Err(MdError::InvalidParameter { .. })
    ));
}

/// What a faulty force field does at its chosen call.
#[derive(Debug, Clone, Copy)]
enum Fault {
    NanEnergy,
    InfiniteForce,
    MissingForce,
    Refuses,
}

/// A harmonic well that misbehaves on its `at`-th evaluation (0 = the first).
struct Faulty {
    well: Harmonic,
    calls: u64,
    at: u64,
    fault: Fault,
}

impl ForceField for Faulty {
    fn cutoff(&self) -> f64 {
        self.well.cutoff()
    }

    fn evaluate(
        &mut self,
        state: &State,
        neighbors: &NeighborList,
    ) -> Result<Evaluation, ForceFieldError> {
        let mut evaluation = self.well.evaluate(state, neighbors)?;
        let call = self.calls;
        self.calls += 1;
        if call == self.at {
            match self.fault {
                Fault::NanEnergy => evaluation.energy = f64::NAN,
                Fault::InfiniteForce => evaluation.forces[1][2] = f64::INFINITY,
                Fault::MissingForce => {
                    evaluation.forces.pop();
                }
                Fault::Refuses => return Err(ForceFieldError::new("no parameters for Og")),
            }
        }
        Ok(evaluation)
    }
}

#[test]
fn a_bad_evaluation_is_an_error_naming_its_step_and_is_never_integrated() {
    let state = State::new(vec![1, 1], vec![[0.0; 3], [2.0, 0.0, 0.0]]).unwrap();
    let well = Harmonic {
        stiffness: 1.0,
        anchors: vec![[0.1, 0.0, 0.0], [2.0, 0.1, 0.0]],
    };
    for fault in [
        Fault::NanEnergy,
        Fault::InfiniteForce,
        Fault::MissingForce,
        Fault::Refuses,
    ] {
        let faulty = Faulty {
            well: well.clone(),
            calls: 0,
            at: 7,
            fault,
        };
        let mut md = Dynamics::new(
            state.clone(),
            faulty,
            VelocityVerlet::new(1.0).unwrap(),
            0.5,
        )
        .unwrap();
        let error = md.run(20, 1, |_| Control::Continue).unwrap_err();
        match (fault, &error) {
            (Fault::NanEnergy, MdError::NonFiniteEnergy { step: 7, .. })
            | (Fault::InfiniteForce, MdError::NonFiniteForce { step: 7, atom: 1 })
            | (
                Fault::MissingForce,
                MdError::ForceCount {
                    step: 7,
                    atoms: 2,
                    got: 1,
                },
            )
            | (Fault::Refuses, MdError::ForceField { step: 7, .. }) => {}
            _ => panic!("{fault:?} gave {error:?}"),
        }
        assert!(error.to_string().contains("step 7"), "{error}");
        // The failed step's second half kick did not happen: velocities stay finite.
        assert!(md.state().validate().is_ok());
        assert_eq!(md.step_count(), 6);
    }
    let faulty = Faulty {
        well,
        calls: 0,
        at: 0,
        fault: Fault::NanEnergy,
    };
    assert!(matches!(
        Dynamics::new(
            state.clone(),
            faulty,
            VelocityVerlet::new(1.0).unwrap(),
            0.5
        ),
        Err(MdError::NonFiniteEnergy { step: 0, .. })
    ));
    let mut broken = state;
    broken.positions_mut()[0][1] = f64::NAN;
    let harmonic = Harmonic {
        stiffness: 1.0,
        anchors: vec![[0.0; 3]; 2],
    };
    assert!(matches!(
        Dynamics::new(broken, harmonic, VelocityVerlet::new(1.0).unwrap(), 0.5),
        Err(MdError::State(StateError::NonFinitePosition { atom: 0 }))
    ));
}
