//! Cost of one message block against the maximum degree, for both message paths.
//!
//! One `DepthwiseTensorProduct` forward (16 channels per degree in and out,
//! 64 nodes, 16 neighbours each, f32 on the ndarray backend) for maximum
//! degrees `L = 1..=8`, on the SO(3) path (Clebsch-Gordan contraction with
//! precomputed coupling matrices) and the SO(2) path (edge frames). The
//! per-forward geometry each path needs (coupling matrices, or the edge
//! frames' Wigner-D matrices) is computed once per forward pass and shared by
//! every block, so it is timed separately. Prints the median of repeated runs
//! after a warm-up, the growth exponent of each path (least squares of
//! `ln t` against `ln L` over `L = 2..=8`) and the crossover degree.
//!
//! Run with `cargo bench -p equi-nn --bench message_block`.

use std::time::{Duration, Instant};

use burn::backend::NdArray;
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Tensor, TensorData};
use equi_nn::geometry::{
    radial_basis, CouplingTables, EdgeGeometry, NeighborList, NeighborOptions,
};
use equi_nn::tensor_product::DepthwiseTensorProductConfig;
use equi_nn::{EdgeFrames, MessagePath};
use so3_math::rotation::RandomRotations;

type Cpu = NdArray<f32>;

const CHANNELS: usize = 16;
const NODES: usize = 64;
const NEIGHBORS: usize = 16;
const MAX_DEGREE: usize = 8;
const RADIAL_BASIS: usize = 16;
/// Degrees of the exponent fits: the whole range (degree 1 is dominated by
/// fixed costs), and its upper half, closer to the asymptotic regime.
const FITS: [(usize, usize); 2] = [(2, MAX_DEGREE), (5, MAX_DEGREE)];
/// Time spent on the repeats of the measurements of one degree, beyond the warm-up.
const BUDGET: Duration = Duration::from_secs(8);

/// Median wall time in milliseconds of each of `runs`, after one warm-up run
/// of each. The runs are interleaved within every repeat, so that a change in
/// the load of the machine affects them alike; at least five and at most 21
/// repeats, as many as fit in [`BUDGET`].
fn interleaved_medians_ms(runs: &mut [&mut dyn FnMut()]) -> Vec<f64> {
    let start = Instant::now();
    runs.iter_mut().for_each(|run| run());
    let warm_up = start.elapsed().as_secs_f64();
    let repeats = ((BUDGET.as_secs_f64() / warm_up.max(1e-6)) as usize).clamp(5, 21);
    let mut times = vec![Vec::with_capacity(repeats); runs.len()];
    for _ in 0..repeats {
        for (run, times) in runs.iter_mut().zip(&mut times) {
            let start = Instant::now();
            run();
            times.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    times
        .into_iter()
        .map(|mut t| {
            t.sort_by(f64::total_cmp);
            t[repeats / 2]
        })
        .collect()
}

/// Slope of the least-squares line through `(ln L, ln t)` for `from <= L <= to`
/// (`times[i]` is the time at `L = i + 1`).
fn growth_exponent(times: &[f64], (from, to): (usize, usize)) -> f64 {
    let points: Vec<(f64, f64)> = times
        .iter()
        .enumerate()
        .map(|(i, t)| (i + 1, t))
        .filter(|(l, _)| (from..=to).contains(l))
        .map(|(l, t)| ((l as f64).ln(), t.ln()))
        .collect();
    let count = points.len() as f64;
    let (mean_x, mean_y) = points
        .iter()
        .fold((0.0, 0.0), |(x, y), p| (x + p.0 / count, y + p.1 / count));
    let covariance: f64 = points
        .iter()
        .map(|(x, y)| (x - mean_x) * (y - mean_y))
        .sum();
    let variance: f64 = points.iter().map(|(x, _)| (x - mean_x).powi(2)).sum();
    covariance / variance
}

/// The smallest degree from which the SO(2) time stays below the SO(3) time.
fn crossover(so3: &[f64], so2: &[f64]) -> Option<usize> {
    let mut first = None;
    for (i, (a, b)) in so3.iter().zip(so2).enumerate() {
        first = match (b < a, first) {
            (true, None) => Some(i + 1),
            (true, found) => found,
            (false, _) => None,
        };
    }
    first
}

fn random_tensor<const D: usize>(draw: &mut RandomRotations, shape: [usize; D]) -> Tensor<Cpu, D> {
    let count = shape.iter().product();
    let values: Vec<f64> = (0..count).map(|_| draw.next_normal()).collect();
    Tensor::from_data(
        TensorData::new(values, shape).convert::<f32>(),
        &Default::default(),
    )
}

fn main() {
    let device = Default::default();
    let mut draw = RandomRotations::new(7);
    let coords = random_tensor(&mut draw, [1, NODES, 3]) * 3.0;
    let mask = Tensor::<Cpu, 2, Bool>::full([1, NODES], true, &device);
    let options = NeighborOptions {
        num_neighbors: Some(NEIGHBORS),
        valid_radius: f64::INFINITY,
    };
    let neighbors = NeighborList::nearest(coords, mask.clone(), None, 0, &options);
    let distance = neighbors
        .relative
        .clone()
        .square()
        .sum_dim(3)
        .clamp_min(1e-24)
        .sqrt();
    let radial_features = radial_basis(distance.clone(), RADIAL_BASIS, 10.0);
    println!(
        "message block: {CHANNELS} channels per degree, {NODES} nodes, {NEIGHBORS} neighbours, f32 ndarray, \
         {} cores, RAYON_NUM_THREADS={}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "unset".into())
    );
    println!("| L | SO(3) block (ms) | SO(2) block (ms) | SO(3)/SO(2) | SO(3) couplings (ms) | SO(2) frames (ms) |");
    println!("|---|---|---|---|---|---|");
    let mut rows: Vec<[f64; 4]> = Vec::new();
    for l_max in 1..=MAX_DEGREE {
        let dims = vec![CHANNELS; l_max + 1];
        let fiber: Vec<Tensor<Cpu, 4>> = (0..=l_max)
            .map(|l| random_tensor(&mut draw, [1, NODES, 2 * l + 1, CHANNELS]))
            .collect();
        let tables = CouplingTables::new(l_max);
        let geometry = EdgeGeometry {
            node_mask: mask.clone(),
            neighbors: neighbors.clone(),
            distance: distance.clone(),
            radial_features: radial_features.clone(),
            couplings: tables.couplings(neighbors.relative.clone()),
            frames: Some(EdgeFrames::new(&neighbors, l_max)),
            envelope: None,
        };
        let layer = |path: MessagePath| {
            DepthwiseTensorProductConfig::new(dims.clone(), dims.clone(), RADIAL_BASIS + 1)
                .with_message_path(Some(path))
                .init::<Cpu>(&device)
        };
        let (so3_layer, so2_layer) = (layer(MessagePath::So3), layer(MessagePath::So2));
        let sync = || Cpu::sync(&device).expect("the ndarray backend syncs");
        let medians = interleaved_medians_ms(&mut [
            &mut || {
                so3_layer.forward(&fiber, &geometry);
                sync();
            },
            &mut || {
                so2_layer.forward(&fiber, &geometry);
                sync();
            },
            &mut || {
                tables.couplings(neighbors.relative.clone());
                sync();
            },
            &mut || {
                EdgeFrames::new(&neighbors, l_max);
                sync();
            },
        ]);
        let [so3, so2, couplings_ms, frames_ms] = [medians[0], medians[1], medians[2], medians[3]];
        println!(
            "| {l_max} | {so3:.2} | {so2:.2} | {:.2} | {couplings_ms:.2} | {frames_ms:.2} |",
            so3 / so2
        );
        rows.push([so3, so2, couplings_ms, frames_ms]);
    }
    let column = |i: usize| rows.iter().map(|r| r[i]).collect::<Vec<f64>>();
    println!();
    println!("growth exponents (least squares of ln t on ln L):");
    for (name, i) in [
        ("SO(3) block", 0),
        ("SO(2) block", 1),
        ("SO(3) couplings", 2),
        ("SO(2) frames", 3),
    ] {
        let fits: Vec<String> = FITS
            .iter()
            .map(|&(from, to)| {
                format!(
                    "L = {from}..={to}: {:.2}",
                    growth_exponent(&column(i), (from, to))
                )
            })
            .collect();
        println!("  {name}: {}", fits.join(", "));
    }
    let with_geometry = |i: usize, g: usize| rows.iter().map(|r| r[i] + r[g]).collect::<Vec<f64>>();
    let describe = |found: Option<usize>| {
        found.map_or_else(
            || format!("none up to L = {MAX_DEGREE}"),
            |l| format!("L = {l}"),
        )
    };
    println!(
        "crossover, SO(2) faster from: block alone {}; block plus its geometry {}",
        describe(crossover(&column(0), &column(1))),
        describe(crossover(&with_geometry(0, 2), &with_geometry(1, 3)))
    );
}
