//! Peak memory of a training step against depth (reversible blocks or not),
//! and of inference against the attention chunk size.
//!
//! Memory is the peak of the bytes the process holds on the heap during the
//! measured call, above what it held before (the model's weights and the
//! inputs are allocated before): a counting global allocator tracks every
//! allocation, so the figures do not depend on the load of the machine. Burn's
//! ndarray backend allocates its tensors on the Rust heap.
//!
//! 1. Training step (`Equiformer::forward_backward`, forward + backward, f32,
//!    `Autodiff<NdArray>`), the shared "readme" configuration (degrees 0-2,
//!    channels 4/4/2, 2 heads of 4, MLP attention) on `N` atoms with the 32
//!    nearest neighbours, at several depths, with and without reversible blocks.
//! 2. Inference (`Equiformer::forward`, f32, `NdArray`), the same
//!    configuration at depth 4 on `N` atoms with every other atom as neighbour
//!    (`K = N - 1`), with the attention over all receiving nodes at once and in
//!    chunks.
//!
//! Run with `cargo bench -p equi-nn --bench memory` (options:
//! `--depths 4,12,48 --train-n 128 --infer-n 256 --chunks 0,64,16`, chunk 0
//! meaning unchunked).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use burn::backend::{Autodiff, NdArray};
use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use equi_nn::{EquiformerConfig, EquiformerInput, ModelError};
use so3_math::rotation::RandomRotations;

/// The system allocator, counting the bytes in use and their peak.
struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let now = IN_USE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counters only observe the sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result, the peak heap bytes above the level
/// before the call, and the wall time in seconds.
fn measure<R>(f: impl FnOnce() -> R) -> (R, usize, f64) {
    let before = IN_USE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let start = Instant::now();
    let result = f();
    let seconds = start.elapsed().as_secs_f64();
    (result, PEAK.load(Ordering::Relaxed) - before, seconds)
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The shared benchmark's "readme" configuration.
fn readme(depth: usize) -> EquiformerConfig {
    EquiformerConfig::new(vec![4, 4, 2])
        .with_num_degrees(3)
        .with_num_tokens(Some(24))
        .with_heads(vec![2])
        .with_dim_head(vec![4])
        .with_depth(depth)
        .with_reduce_dim_out(true)
}

/// Random tokens and coordinates of `n` atoms at about liquid density.
fn input<B: Backend>(n: usize, seed: u64, device: &B::Device) -> EquiformerInput<B> {
    let mut draw = RandomRotations::new(seed);
    let side = 1.5 * (n as f64).cbrt();
    let coords: Vec<f64> = (0..3 * n).map(|_| side * draw.next_uniform()).collect();
    let tokens: Vec<i64> = (0..n)
        .map(|_| (24.0 * draw.next_uniform()) as i64 % 24)
        .collect();
    let coords = Tensor::<B, 3>::from_data(
        TensorData::new(coords, [1, n, 3]).convert::<B::FloatElem>(),
        device,
    );
    let tokens = Tensor::<B, 2, Int>::from_data(
        TensorData::new(tokens, [1, n]).convert::<B::IntElem>(),
        device,
    );
    EquiformerInput::tokens(tokens, coords)
}

fn training_memory(depths: &[usize], n: usize) -> Result<(), ModelError> {
    type B = Autodiff<NdArray<f32>>;
    let device = Default::default();
    println!(
        "\n### Training step (forward + backward), readme config, N = {n}, 32 nearest neighbours\n"
    );
    println!("| depth | plain peak (MiB) | reversible peak (MiB) | plain / reversible | plain time (s) | reversible time (s) |");
    println!("|---|---|---|---|---|---|");
    // Warm-up: the first step of a process allocates caches that later steps reuse.
    let warm = readme(1).with_num_neighbors(Some(32)).init::<B>(&device)?;
    warm.forward_backward(input::<B>(n, 1, &device), |out| {
        Ok::<_, ModelError>(out.type0().sum())
    })?;
    for &depth in depths {
        let mut row = Vec::new();
        for reversible in [false, true] {
            let model = readme(depth)
                .with_num_neighbors(Some(32))
                .with_reversible(reversible)
                .init::<B>(&device)?;
            let x = input::<B>(n, 7, &device);
            let (step, peak, seconds) = measure(|| {
                model.forward_backward(x, |out| {
                    let type1 = out.type1().expect("degree 1 output");
                    Ok::<_, ModelError>(out.type0().sum() + type1.sum())
                })
            });
            drop(step?);
            row.push((peak, seconds));
        }
        let [(plain, plain_s), (rev, rev_s)] = [row[0], row[1]];
        println!(
            "| {depth} | {:.1} | {:.1} | {:.2} | {plain_s:.2} | {rev_s:.2} |",
            mib(plain),
            mib(rev),
            plain as f64 / rev as f64
        );
    }
    Ok(())
}

fn inference_memory(chunks: &[usize], n: usize) -> Result<(), ModelError> {
    type B = NdArray<f32>;
    let device = Default::default();
    println!(
        "\n### Inference (forward), readme config, depth 4, N = {n}, all pairs (K = {})\n",
        n - 1
    );
    println!("| nodes per chunk | peak (MiB) | time (s) | max output difference |");
    println!("|---|---|---|---|");
    let base = readme(4).init::<B>(&device)?;
    base.forward(input::<B>(n.min(64), 1, &device))?; // warm-up
    let mut reference: Option<Vec<f32>> = None;
    for &chunk in chunks {
        let chunk = (chunk > 0).then_some(chunk);
        let model = readme(4)
            .with_attention_chunk_size(chunk)
            .init::<B>(&device)?
            .load_record(base.clone().into_record());
        let x = input::<B>(n, 7, &device);
        let (out, peak, seconds) = measure(|| model.forward(x));
        let values: Vec<f32> = out?
            .type0()
            .into_data()
            .convert::<f32>()
            .to_vec()
            .expect("f32 data");
        let difference = reference
            .get_or_insert_with(|| values.clone())
            .iter()
            .zip(&values)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        let label = chunk.map_or("all".to_string(), |c| c.to_string());
        println!(
            "| {label} | {:.1} | {seconds:.2} | {difference:.1e} |",
            mib(peak)
        );
    }
    Ok(())
}

fn list(value: &str) -> Vec<usize> {
    value
        .split(',')
        .map(|v| {
            v.trim()
                .parse()
                .expect("a comma-separated list of integers")
        })
        .collect()
}

fn main() -> Result<(), ModelError> {
    let mut depths = vec![4, 12, 48];
    let mut train_n = 128;
    let mut infer_n = 256;
    let mut chunks = vec![0, 64, 16];
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let mut value = || args.next().map(String::as_str).unwrap_or("");
        match flag.as_str() {
            "--depths" => depths = list(value()),
            "--train-n" => train_n = list(value())[0],
            "--infer-n" => infer_n = list(value())[0],
            "--chunks" => chunks = list(value()),
            "--bench" => {} // passed by `cargo bench`
            other => panic!("unknown option {other}; see the file's docs"),
        }
    }
    training_memory(&depths, train_n)?;
    inference_memory(&chunks, infer_n)?;
    Ok(())
}
