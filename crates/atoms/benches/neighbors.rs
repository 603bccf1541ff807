//! Timing of `atoms::neighbor_list` on rattled fcc Cu supercells (a = 3.61 A, cutoff 5 A) of
//! about 100 to 1,000,000 atoms, single-threaded.
//!
//! `cargo bench -p atoms --bench neighbors [-- --json] [--max-atoms N]` prints a table (atoms,
//! edges, ms, edges/s), or with `--json` one JSON object per line (`repeat`, `atoms`, `edges`,
//! `seconds`: the median, `reps`). The structures are those of
//! `scripts/atoms/bench_neighbors.py`, which times ASE and matscipy on them and runs this.
//!
//! Structure: the 4-atom conventional cell repeated `n x n x n` in ASE's order (outer loop over
//! the first lattice vector, the basis innermost), every coordinate then moved by
//! `(u - 0.5) * 0.1` A with `u` uniform in [0, 1) from splitmix64 seeded with 2024, drawn atom
//! by atom, x, y, z.

use std::time::{Duration, Instant};

use atoms::{neighbor_list, Cell, NeighborOptions};

const A: f64 = 3.61;
const CUTOFF: f64 = 5.0;
/// Repetitions `n` of the conventional cell: 108, 864, 10 976, 97 556 and 1 000 188 atoms.
const REPEATS: [usize; 5] = [3, 6, 14, 29, 63];

/// The splitmix64 generator (Steele, Lea and Flood 2014).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The rattled `n x n x n` supercell: its cell and positions.
fn supercell(n: usize) -> (Cell, Vec<[f64; 3]>) {
    let basis = [
        [0.0, 0.0, 0.0],
        [0.0, 0.5, 0.5],
        [0.5, 0.0, 0.5],
        [0.5, 0.5, 0.0],
    ];
    let side = A * n as f64;
    let cell =
        Cell::new([[side, 0.0, 0.0], [0.0, side, 0.0], [0.0, 0.0, side]]).expect("a cubic cell");
    let mut rng = SplitMix64(2024);
    let mut positions = Vec::with_capacity(4 * n * n * n);
    for i0 in 0..n {
        for i1 in 0..n {
            for i2 in 0..n {
                let origin = [i0, i1, i2].map(|i| i as f64 * A);
                for b in &basis {
                    positions.push(std::array::from_fn(|c| origin[c] + b[c] * A));
                }
            }
        }
    }
    for x in &mut positions {
        for v in x.iter_mut() {
            *v += (rng.next_unit() - 0.5) * 0.1;
        }
    }
    (cell, positions)
}

/// The median wall time of the list over repetitions filling about a second (at least 3).
fn time(cell: &Cell, positions: &[[f64; 3]]) -> (usize, Duration, usize) {
    let options = NeighborOptions::new(CUTOFF);
    let mut times = Vec::new();
    let mut edges = 0;
    let started = Instant::now();
    while times.len() < 3 || (started.elapsed() < Duration::from_secs(1) && times.len() < 200) {
        let t = Instant::now();
        let list =
            neighbor_list(positions, Some(cell), [true; 3], &options).expect("a valid structure");
        times.push(t.elapsed());
        edges = std::hint::black_box(list).len();
    }
    times.sort();
    (edges, times[times.len() / 2], times.len())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let max_atoms = args
        .iter()
        .position(|a| a == "--max-atoms")
        .and_then(|k| args.get(k + 1))
        .map(|v| v.parse::<usize>().expect("--max-atoms takes a number"))
        .unwrap_or(usize::MAX);
    if !json {
        println!("| atoms | edges | ms | edges/s |");
        println!("| ---: | ---: | ---: | ---: |");
    }
    for n in REPEATS {
        if 4 * n * n * n > max_atoms {
            break;
        }
        let (cell, positions) = supercell(n);
        let (edges, median, reps) = time(&cell, &positions);
        let seconds = median.as_secs_f64();
        let ms = seconds * 1e3;
        let rate = edges as f64 / seconds;
        if json {
            println!(
                "{{\"repeat\": {n}, \"atoms\": {}, \"edges\": {edges}, \"seconds\": {seconds:.9}, \"reps\": {reps}}}",
                positions.len()
            );
        } else {
            println!("| {} | {edges} | {ms:.3} | {rate:.3e} |", positions.len());
        }
    }
}
