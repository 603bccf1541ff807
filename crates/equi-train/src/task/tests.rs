use burn::backend::NdArray;

use super::*;
use crate::config::{Baseline, DenoiseConfig, EnergyForcesConfig, PropertyConfig};
use crate::data::batch::to_f64;

// f32, like every other test of this crate: Burn chooses the float type of `from_data` per
// device for the whole process, so mixing f32 and f64 NdArray backends in one test binary
// makes the precision depend on which test ran first.
type B = NdArray;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(1.0)
}

fn water(energy: f64, shift: f64) -> Structure {
    Structure {
        origin: "water".into(),
        atomic_numbers: vec![8, 1, 1],
        tokens: vec![8, 1, 1],
        positions: vec![[0.0, 0.0, shift], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]],
        scalar: Some(energy),
        vectors: Some(vec![[0.5, 0.0, -0.5], [1.0, 2.0, 0.0], [-1.5, -2.0, 0.5]]),
        cell: None,
        pbc: [false; 3],
        stress: None,
    }
}

fn energy_task(baseline: Baseline) -> TaskConfig {
    TaskConfig::EnergyForces(EnergyForcesConfig {
        energy_key: "energy".into(),
        forces_key: "forces".into(),
        forces: ForceSource::Direct,
        energy_weight: 1.0,
        forces_weight: 1.0,
        stress_weight: 0.0,
        baseline,
        max_images: 100_000,
    })
}

#[test]
fn targets_and_predictions_are_inverse() {
    let train = [water(-10.0, 0.0), water(-10.3, 0.1), water(-9.9, 0.2)];
    let task = Task::fit(&energy_task(Baseline::Mean), &train);
    let n = &task.normalizer;
    assert!((n.offset + 10.0666666).abs() < 1e-6);
    assert!(n.vector_scale > 0.9 && n.vector_scale < 1.5);
    let host = HostBatch::new(&[&train[0], &train[1]]);
    let device = Default::default();
    let targets = task.targets::<B>(&host, &device);
    let scalars = to_f64(targets.scalars.clone().expect("energies"));
    let vectors = to_f64(targets.vectors.clone().expect("forces"));
    let back = task.to_physical(&host, &scalars, Some(vectors), false);
    assert!(
        close(back.scalars[0], -10.0) && close(back.scalars[1], -10.3),
        "{back:?}"
    );
    let expected = host.vectors.clone().expect("labels");
    let found = back.vectors.clone().expect("forces");
    assert!(expected.iter().zip(&found).all(|(a, b)| close(*a, *b)));
    let mut metrics = Metrics::default();
    task.accumulate(&host, &back, &mut metrics);
    let summary = task.summarize(&metrics);
    assert!(
        summary.iter().all(|(_, value)| value.abs() < 1e-3),
        "{summary:?}"
    );

    let batch = host.to_device::<B>(&device);
    let perfect = NetworkOutput {
        per_structure: targets.scalars.clone().expect("energies"),
        vectors: targets.vectors.clone(),
    };
    let loss = task.loss(&perfect, &targets, &batch).expect("loss");
    assert!(to_f64(loss)[0].abs() < 1e-10);
    let off = NetworkOutput {
        per_structure: perfect.per_structure.clone() + 3.0,
        vectors: perfect.vectors.clone(),
    };
    let loss = to_f64(task.loss(&off, &targets, &batch).expect("loss"))[0];
    assert!(close(loss, 1.0), "(3 / 3 atoms)^2 = {loss}");
}

#[test]
fn energy_metrics_are_in_mev() {
    let train = [water(-10.0, 0.0), water(-10.3, 0.1)];
    let task = Task::fit(&energy_task(Baseline::Elements), &train);
    let host = HostBatch::new(&[&train[0]]);
    let mut prediction = Prediction {
        scalars: vec![-10.0 + 0.03],
        vectors: host.vectors.clone(),
        stress: None,
    };
    if let Some(v) = prediction.vectors.as_mut() {
        v[0] += 0.009;
    }
    let mut metrics = Metrics::default();
    task.accumulate(&host, &prediction, &mut metrics);
    let summary: std::collections::BTreeMap<String, f64> =
        task.summarize(&metrics).into_iter().collect();
    assert!((summary["energy_mae_meV_per_atom"] - 10.0).abs() < 1e-9);
    assert!((summary["forces_mae_meV_per_A"] - 1.0).abs() < 1e-9);
}

#[test]
fn property_with_element_references() {
    let molecules = [water(-76.4, 0.0), water(-76.5, 0.1), water(-76.3, 0.2)];
    let config = TaskConfig::Property(PropertyConfig {
        property: "U0".into(),
        readout: Readout::Sum,
        baseline: Baseline::Elements,
        standardize: true,
    });
    let task = Task::fit(&config, &molecules);
    let baseline = task.normalizer.baseline(&[8, 1, 1]);
    assert!((baseline + 76.4).abs() < 1e-6, "{baseline}");
    assert!((task.normalizer.scale - (0.02f64 / 3.0).sqrt()).abs() < 1e-6);
}

#[test]
fn denoising_batches_and_evaluation_sets() {
    let chain = Structure {
        origin: "chain".into(),
        atomic_numbers: [7, 6, 6].repeat(10),
        tokens: (0..30).map(|i| i % 63).collect(),
        positions: (0..30).map(|i| [1.5 * i as f64, 0.0, 0.0]).collect(),
        scalar: None,
        vectors: None,
        cell: None,
        pbc: [false; 3],
        stress: None,
    };
    let config = TaskConfig::Denoise(DenoiseConfig {
        noise_sigma: 0.5,
        crop_residues: 4,
    });
    let task = Task::fit(&config, std::slice::from_ref(&chain));
    assert_eq!(task.normalizer.vector_scale, 0.5);
    let batch = task.training_batch(&[&chain, &chain], &mut Rng::new(3));
    assert_eq!((batch.graphs, batch.nodes), (2, 12));
    assert!(batch.vectors.is_some());
    let samples = task.evaluation_set(vec![chain.clone()], 9);
    assert_eq!(samples.len(), 3);
    assert_eq!(samples, task.evaluation_set(vec![chain], 9));
}
