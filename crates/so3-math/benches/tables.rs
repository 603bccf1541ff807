//! Time to build every Clebsch-Gordan table and a batch of Wigner-D matrices.
//!
//! Run with `cargo bench -p so3-math --bench tables`.

use std::time::Instant;

use so3_math::rotation::RandomRotations;
use so3_math::{clebsch_gordan, wigner_d_f64};

fn main() {
    let l_max = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or(8);
    let start = Instant::now();
    let mut tables = 0;
    let mut entries = 0;
    for l1 in 0..=l_max {
        for l2 in 0..=l_max {
            for l3 in l1.abs_diff(l2)..=(l1 + l2) {
                let c = clebsch_gordan(l1, l2, l3).expect("valid coupling");
                tables += 1;
                entries += c.values().len();
            }
        }
    }
    let cold = start.elapsed();
    let start = Instant::now();
    for l1 in 0..=l_max {
        for l2 in 0..=l_max {
            for l3 in l1.abs_diff(l2)..=(l1 + l2) {
                clebsch_gordan(l1, l2, l3).expect("valid coupling");
            }
        }
    }
    let warm = start.elapsed();
    let mut rotations = RandomRotations::new(0);
    let start = Instant::now();
    let count = 1000;
    for _ in 0..count {
        std::hint::black_box(wigner_d_f64(l_max, &rotations.next_rotation()));
    }
    let wigner = start.elapsed();
    println!("clebsch-gordan l1, l2 <= {l_max}: {tables} tables, {entries} entries");
    println!("  cold build: {:.3} s", cold.as_secs_f64());
    println!("  cached lookup of all: {:.6} s", warm.as_secs_f64());
    println!(
        "wigner-d f64 degrees 0..={l_max}: {:.1} us per rotation",
        wigner.as_secs_f64() * 1e6 / count as f64
    );
}
