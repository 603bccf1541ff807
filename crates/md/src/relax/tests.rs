use super::*;
use crate::neighbors::NeighborList;
use crate::test_support::{argon_crystal, icosahedron, LennardJones, ARGON_EPSILON, ARGON_SIGMA};
use rand::{Rng, SeedableRng};

/// Lennard-Jones in reduced units (epsilon = 1 eV, sigma = 1 A), uncut for clusters.
fn reduced() -> LennardJones {
    LennardJones::unshifted(1.0, 1.0, 10.0)
}

fn tight(fmax: f64) -> RelaxOptions {
    RelaxOptions {
        fmax,
        max_steps: 5000,
        ..RelaxOptions::default()
    }
}

fn distance(a: [f64; 3], b: [f64; 3]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

#[test]
fn fire_relaxes_a_dimer_to_the_minimum_of_the_pair_potential() {
    let mut state = State::new(vec![18, 18], vec![[0.0; 3], [1.5, 0.2, -0.1]]).unwrap();
    let outcome = relax(&mut state, &mut reduced(), &tight(1e-8), |_| {
        Control::Continue
    })
    .unwrap();
    let r = distance(state.positions()[0], state.positions()[1]);
    eprintln!(
        "FIRE dimer: r = {r:.12} after {} steps, E = {:.12}",
        outcome.steps, outcome.evaluation.energy
    );
    assert!(outcome.converged && !outcome.stopped);
    assert!((r - 2f64.powf(1.0 / 6.0)).abs() < 1e-9, "r = {r}");
    assert!((outcome.evaluation.energy + 1.0).abs() < 1e-12);
}

#[test]
fn fire_finds_the_icosahedral_minimum_of_lj13() {
    // The global minimum of the 13-atom Lennard-Jones cluster (Wales and Doye, 1997).
    const LJ13_MINIMUM: f64 = -44.326_801;
    let mut rng = rand::rngs::StdRng::seed_from_u64(13);
    let start: Vec<[f64; 3]> = icosahedron(1.15)
        .into_iter()
        .map(|x| x.map(|v| v + rng.random_range(-0.08..0.08)))
        .collect();
    let mut state = State::new(vec![18; 13], start).unwrap();
    let mut energies = Vec::new();
    let outcome = relax(&mut state, &mut reduced(), &tight(1e-6), |snapshot| {
        energies.push(snapshot.energy);
        Control::Continue
    })
    .unwrap();
    let energy = outcome.evaluation.energy;
    eprintln!(
        "FIRE LJ13: E = {energy:.7} after {} steps (from {:.4})",
        outcome.steps, energies[0]
    );
    assert!(outcome.converged);
    assert!((energy - LJ13_MINIMUM).abs() < 1e-6, "E = {energy}");
    assert_eq!(energies.len() as u64, outcome.steps + 1);
}

#[test]
fn fire_relaxes_a_shaken_crystal_back_to_the_lattice() {
    let mut potential = LennardJones::shifted(ARGON_EPSILON, ARGON_SIGMA, 8.0);
    let perfect = argon_crystal(5.3);
    let lattice_energy = potential
        .evaluate(&perfect, &NeighborList::new(&perfect, 8.0).unwrap())
        .unwrap()
        .energy;
    let mut state = perfect.clone();
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    for x in state.positions_mut() {
        for v in x.iter_mut() {
            *v += rng.random_range(-0.15..0.15);
        }
    }
    let outcome = relax(&mut state, &mut potential, &tight(1e-6), |_| {
        Control::Continue
    })
    .unwrap();
    eprintln!(
        "FIRE argon crystal: E = {:.10} eV, lattice {lattice_energy:.10} eV, {} steps",
        outcome.evaluation.energy, outcome.steps
    );
    assert!(outcome.converged);
    assert!((outcome.evaluation.energy - lattice_energy).abs() < 1e-9);
    assert_eq!(state.cell(), perfect.cell());
    assert_eq!(state.velocities(), perfect.velocities());
}

#[test]
fn a_relaxation_stops_at_max_steps_or_when_asked() {
    let start = State::new(vec![18, 18], vec![[0.0; 3], [1.5, 0.0, 0.0]]).unwrap();
    let few = RelaxOptions {
        fmax: 1e-10,
        max_steps: 3,
        ..RelaxOptions::default()
    };
    let mut state = start.clone();
    let outcome = relax(&mut state, &mut reduced(), &few, |_| Control::Continue).unwrap();
    assert_eq!(
        (outcome.converged, outcome.stopped, outcome.steps),
        (false, false, 3)
    );
    let mut state = start.clone();
    let outcome = relax(&mut state, &mut reduced(), &tight(1e-10), |snapshot| {
        if snapshot.step == 2 {
            Control::Stop
        } else {
            Control::Continue
        }
    })
    .unwrap();
    assert_eq!(
        (outcome.converged, outcome.stopped, outcome.steps),
        (false, true, 2)
    );
}

#[test]
fn invalid_options_are_refused() {
    let start = State::new(vec![18, 18], vec![[0.0; 3], [1.5, 0.0, 0.0]]).unwrap();
    let bad = [
        RelaxOptions {
            fmax: 0.0,
            ..RelaxOptions::default()
        },
        RelaxOptions {
            skin: -1.0,
            ..RelaxOptions::default()
        },
        RelaxOptions {
            fire: FireParameters {
                f_dec: 1.5,
                ..FireParameters::default()
            },
            ..RelaxOptions::default()
        },
        RelaxOptions {
            fire: FireParameters {
                f_inc: 0.9,
                ..FireParameters::default()
            },
            ..RelaxOptions::default()
        },
        RelaxOptions {
            fire: FireParameters {
                max_step: f64::NAN,
                ..FireParameters::default()
            },
            ..RelaxOptions::default()
        },
    ];
    for options in bad {
        let mut state = start.clone();
        let result = relax(&mut state, &mut reduced(), &options, |_| Control::Continue);
        assert!(
            matches!(result, Err(MdError::InvalidParameter { .. })),
            "{options:?}"
        );
        assert_eq!(state, start);
    }
}
