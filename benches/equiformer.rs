//! Whole-model benchmark of [`equi_nn::Equiformer`] on the compiled CPU backends.
//!
//! Runs the shared benchmark configurations (the same names, options and
//! neighbour modes as the equiformer-pytorch comparison script in
//! `scripts/bench/`), batch 1, float32, and measures per case:
//!
//! - forward time (inference backend, no autodiff graph), median of repeated
//!   runs after one warm-up run, whose time is reported separately;
//! - forward+backward time on the `Autodiff` backend, loss = sum of all
//!   outputs (`type0.sum() + type1.sum()`), median after one warm-up;
//! - peak memory: the peak resident set (`VmHWM` of `/proc/self/status`) of a
//!   fresh child process that runs only this case, read once after the
//!   forward phase and once at the end (forward+backward);
//! - equivariance error: the output for rotated coordinates against the
//!   rotated output (type 0 invariant, type 1 rotated), max over random
//!   rotations, plus the error under a translation.
//!
//! Every case runs in its own child process (this binary with `--child`), so
//! that peak memory is per case; the parent enforces a wall-clock limit and a
//! resident-memory guard, and skips larger sizes of a configuration once a
//! smaller one failed. Results are printed as a table with the columns of the
//! reference script, and optionally written as JSON (`--json`) and CSV (`--csv`).
//!
//! ```text
//! cargo bench --bench equiformer -- --only readme --ns 32,128 --neighbors full
//! cargo bench --bench equiformer --features flex -- --backend ndarray,flex --json out.json
//! ```
//!
//! Threads: the CPU backends use rayon; set `RAYON_NUM_THREADS` to fix the
//! thread count (the comparison script uses 2, as for the reference).

#[path = "equiformer/breakdown.rs"]
mod breakdown;
#[path = "equiformer/child.rs"]
mod child;
#[path = "equiformer/config.rs"]
mod config;
#[path = "equiformer/input.rs"]
mod input;
#[path = "equiformer/ops.rs"]
mod ops;
#[path = "equiformer/options.rs"]
mod options;
#[path = "equiformer/parent.rs"]
mod parent;
#[path = "equiformer/report.rs"]
mod report;

use child::child_main;
use options::parse_args;
use parent::parent_main;

/// Edge-sized buffers are allocated and freed at every tensor operation; see
/// [`equiformer::allocator`].
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    equiformer::allocator::keep_freed_memory();
    let options = parse_args();
    equi_nn::set_fused_kernels(!options.generic_kernels);
    if options.ops {
        ops::ops_main(&options);
    } else if options.breakdown {
        breakdown::breakdown_main(&options);
    } else if options.child {
        child_main(&options);
    } else {
        parent_main(&options);
    }
}
