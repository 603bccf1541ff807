//! Regression of the QM9 internal energy U0 on the bundled 100 molecules:
//! SchNet and Equiformer trained for the same number of steps, against the
//! mean predictor.
//!
//! - fixed split: every fifth molecule is validation (80 train / 20 validation);
//! - target: U0 in eV minus per-element reference energies fitted by least
//!   squares on the training split, standardised by its training spread;
//! - metric: validation mean absolute error in eV.
//!
//! Run with `cargo run --example qm9` (a few minutes on 2 CPU cores;
//! pass a number of steps as the first argument to change the budget).

use std::time::Instant;

use burn::backend::{Autodiff, NdArray};
use burn::module::AutodiffModule;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Bool, Int, Tensor, TensorData};
use equiformer::nn::schnet::SchNetConfig;
use equiformer::nn::{EquiformerConfig, EquiformerInput};
use equiformer::train::io::extxyz::{read_extxyz, Frame};

type Train = Autodiff<NdArray<f32>>;

const HARTREE_TO_EV: f64 = 27.211386245988;
/// Elements of QM9, in token order.
const ELEMENTS: [u8; 5] = [1, 6, 7, 8, 9];
/// Scale of the summed per-atom Equiformer outputs (about 1 / sqrt(atoms per molecule)).
const ATOM_SUM_SCALE: f64 = 0.25;

/// Padded tensors of a set of molecules.
struct Batch<B: Backend> {
    atomic_numbers: Tensor<B, 2, Int>,
    tokens: Tensor<B, 2, Int>,
    positions: Tensor<B, 3>,
    mask: Tensor<B, 2, Bool>,
    /// Standardised residual energies `[B]`.
    targets: Tensor<B, 1>,
}

struct Molecule {
    atomic_numbers: Vec<u8>,
    positions: Vec<[f64; 3]>,
    energy_ev: f64,
}

fn element_counts(molecule: &Molecule) -> [f64; 5] {
    ELEMENTS.map(|z| molecule.atomic_numbers.iter().filter(|&&a| a == z).count() as f64)
}

/// Least-squares per-element energies: solve `(A^T A) e = A^T y` by Gaussian elimination.
fn fit_reference_energies(molecules: &[&Molecule]) -> [f64; 5] {
    let mut normal = [[0.0; 6]; 5];
    for molecule in molecules {
        let counts = element_counts(molecule);
        for i in 0..5 {
            for j in 0..5 {
                normal[i][j] += counts[i] * counts[j];
            }
            normal[i][5] += counts[i] * molecule.energy_ev;
        }
    }
    // Elements absent from the training split get a tiny ridge so the system stays solvable.
    for (i, row) in normal.iter_mut().enumerate() {
        row[i] += 1e-8;
    }
    for col in 0..5 {
        let pivot = (col..5)
            .max_by(|&a, &b| normal[a][col].abs().total_cmp(&normal[b][col].abs()))
            .unwrap_or(col);
        normal.swap(col, pivot);
        for row in 0..5 {
            if row != col {
                let factor = normal[row][col] / normal[col][col];
                let pivot_row = normal[col];
                for (value, pivot_value) in normal[row].iter_mut().zip(pivot_row).skip(col) {
                    *value -= factor * pivot_value;
                }
            }
        }
    }
    [0, 1, 2, 3, 4].map(|i| normal[i][5] / normal[i][i])
}

fn batch<B: Backend>(molecules: &[&Molecule], targets: &[f64], device: &B::Device) -> Batch<B> {
    let n = molecules
        .iter()
        .map(|m| m.atomic_numbers.len())
        .max()
        .unwrap_or(1);
    let b = molecules.len();
    let (mut numbers, mut tokens, mut positions, mut mask) = (
        vec![0i64; b * n],
        vec![0i64; b * n],
        vec![0.0f32; b * n * 3],
        vec![false; b * n],
    );
    for (i, molecule) in molecules.iter().enumerate() {
        for (a, (&z, p)) in molecule
            .atomic_numbers
            .iter()
            .zip(&molecule.positions)
            .enumerate()
        {
            numbers[i * n + a] = i64::from(z);
            tokens[i * n + a] = ELEMENTS.iter().position(|&e| e == z).unwrap_or(0) as i64;
            for k in 0..3 {
                positions[(i * n + a) * 3 + k] = p[k] as f32;
            }
            mask[i * n + a] = true;
        }
    }
    Batch {
        atomic_numbers: Tensor::from_data(TensorData::new(numbers, [b, n]), device),
        tokens: Tensor::from_data(TensorData::new(tokens, [b, n]), device),
        positions: Tensor::from_data(TensorData::new(positions, [b, n, 3]), device),
        mask: Tensor::from_data(TensorData::new(mask, [b, n]), device),
        targets: Tensor::from_data(
            TensorData::new(targets.iter().map(|&t| t as f32).collect::<Vec<_>>(), [b]),
            device,
        ),
    }
}

/// Train with Adam and a cosine learning-rate decay; returns the trained model.
fn train<B: AutodiffBackend, M: AutodiffModule<B>>(
    name: &str,
    mut model: M,
    batches: &[Batch<B>],
    steps: usize,
    predict: impl Fn(&M, &Batch<B>) -> Tensor<B, 1>,
) -> M {
    let mut optimizer = AdamConfig::new().init();
    let start = Instant::now();
    for step in 0..steps {
        let batch = &batches[step % batches.len()];
        let loss = (predict(&model, batch) - batch.targets.clone())
            .square()
            .mean();
        if step % 100 == 0 || step + 1 == steps {
            let value: f32 = loss.clone().into_scalar().elem();
            println!(
                "  {name} step {step:4}: training loss {value:.4} ({:.0} s)",
                start.elapsed().as_secs_f64()
            );
        }
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let lr = 2e-3 * 0.5 * (1.0 + (std::f64::consts::PI * step as f64 / steps as f64).cos());
        model = optimizer.step(lr.max(1e-5), model, grads);
    }
    model
}

/// Mean absolute error in eV of standardised predictions.
fn mae_ev<B: Backend>(predictions: Tensor<B, 1>, batch: &Batch<B>, scale: f64) -> f64 {
    let error: f32 = (predictions - batch.targets.clone())
        .abs()
        .mean()
        .into_scalar()
        .elem();
    f64::from(error) * scale
}

use burn::tensor::ElementConversion;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let steps: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(600);
    let device = Default::default();
    <Train as Backend>::seed(&device, 0);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/qm9/qm9_reduced_100.xyz");
    let frames: Vec<Frame> = read_extxyz(path)?;
    let molecules: Vec<Molecule> = frames
        .iter()
        .map(|f| {
            let u0 = f.info_f64("U0").ok_or("every QM9 frame has U0")?;
            Ok(Molecule {
                atomic_numbers: f.atomic_numbers.clone(),
                positions: f.positions.clone(),
                energy_ev: u0 * HARTREE_TO_EV,
            })
        })
        .collect::<Result<_, Box<dyn std::error::Error>>>()?;
    let train_set: Vec<&Molecule> = molecules
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 5 != 4)
        .map(|(_, m)| m)
        .collect();
    let valid_set: Vec<&Molecule> = molecules
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 5 == 4)
        .map(|(_, m)| m)
        .collect();

    let references = fit_reference_energies(&train_set);
    let residual = |m: &Molecule| {
        m.energy_ev
            - element_counts(m)
                .iter()
                .zip(&references)
                .map(|(c, e)| c * e)
                .sum::<f64>()
    };
    let train_residuals: Vec<f64> = train_set.iter().map(|m| residual(m)).collect();
    let mean = train_residuals.iter().sum::<f64>() / train_residuals.len() as f64;
    let scale = (train_residuals
        .iter()
        .map(|r| (r - mean).powi(2))
        .sum::<f64>()
        / train_residuals.len() as f64)
        .sqrt();
    let standardise = |set: &[&Molecule]| -> Vec<f64> {
        set.iter().map(|m| (residual(m) - mean) / scale).collect()
    };
    println!(
        "QM9 U0: {} train / {} validation molecules; residual after per-element fit: std {:.3} eV",
        train_set.len(),
        valid_set.len(),
        scale
    );

    let train_targets = standardise(&train_set);
    let batches: Vec<Batch<Train>> = train_set
        .chunks(16)
        .zip(train_targets.chunks(16))
        .map(|(molecules, targets)| batch(molecules, targets, &device))
        .collect();
    let valid = batch::<NdArray<f32>>(&valid_set, &standardise(&valid_set), &device);

    let mean_predictor = mae_ev(valid.targets.zeros_like(), &valid, scale);

    let schnet = SchNetConfig::new()
        .with_hidden_channels(64)
        .with_num_filters(64)
        .with_num_interactions(3)
        .with_num_gaussians(25)
        .try_init::<Train>(&device)?;
    let schnet = train("SchNet", schnet, &batches, steps, |model, batch| {
        let [b, _] = batch.mask.dims();
        model
            .forward(
                batch.atomic_numbers.clone(),
                batch.positions.clone(),
                batch.mask.clone(),
            )
            .reshape([b])
    });
    let schnet = schnet.valid();
    let schnet_mae = mae_ev(
        schnet
            .forward(
                valid.atomic_numbers.clone(),
                valid.positions.clone(),
                valid.mask.clone(),
            )
            .reshape([valid_set.len()]),
        &valid,
        scale,
    );

    let equiformer_config = EquiformerConfig::new(vec![32, 8])
        .with_num_degrees(2)
        .with_num_tokens(Some(ELEMENTS.len()))
        .with_heads(vec![2])
        .with_dim_head(vec![8])
        .with_depth(2)
        .with_num_neighbors(Some(16))
        .with_radial_hidden_dim(32)
        .with_reduce_dim_out(true);
    let equiformer = equiformer_config.init::<Train>(&device)?;
    let predict = |model: &equiformer::nn::Equiformer<Train>, batch: &Batch<Train>| {
        let input = EquiformerInput::tokens(batch.tokens.clone(), batch.positions.clone())
            .with_mask(batch.mask.clone());
        let out = model.forward(input).expect("valid batches");
        let (type0, _) = out.reduced().expect("reduce_dim_out");
        // Padded atoms are zero; the factor keeps the initial sum of
        // per-atom outputs at the scale of the standardised targets.
        type0.sum_dim(1).squeeze_dim::<1>(1) * ATOM_SUM_SCALE
    };
    let equiformer = train("Equiformer", equiformer, &batches, steps, predict);
    let equiformer = equiformer.valid();
    let input = EquiformerInput::tokens(valid.tokens.clone(), valid.positions.clone())
        .with_mask(valid.mask.clone());
    let (type0, _) = equiformer
        .forward(input)?
        .reduced()
        .ok_or("reduce_dim_out")?;
    let equiformer_mae = mae_ev(
        type0.sum_dim(1).squeeze_dim::<1>(1) * ATOM_SUM_SCALE,
        &valid,
        scale,
    );

    println!("\nvalidation MAE of U0 after {steps} steps (eV):");
    println!("  mean predictor  {mean_predictor:.4}");
    println!("  SchNet          {schnet_mae:.4}");
    println!("  Equiformer      {equiformer_mae:.4}");
    Ok(())
}
