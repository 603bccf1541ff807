//! Where the time of one forward (and forward+backward) pass goes, by model
//! component: each layer kind is built with the case's configuration, run
//! alone on the case's edge geometry, and timed forward (inference backend)
//! and forward+backward (`Autodiff`, loss = sum of its outputs); the
//! components are interleaved in every repetition, so that their ratios come
//! from the same stretch of machine load. `calls` is how often the model runs
//! the component per forward pass; `share` is `calls * time` over the whole
//! model's time measured in the same repetitions.

use std::time::Instant;

use burn::backend::Autodiff;
use burn::module::AutodiffModule;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use equi_nn::attention::{EquivariantAttention, EquivariantAttentionConfig};
use equi_nn::geometry::{radial_basis, EdgeGeometry, NeighborList, NeighborOptions};
use equi_nn::layers::{FeedForward, FeedForwardConfig, RadialMlp, RadialMlpConfig};
use equi_nn::tensor_product::{DepthwiseTensorProduct, DepthwiseTensorProductConfig};
use equi_nn::{EdgeFrames, Equiformer, EquiformerConfig, MessagePath};

use crate::child::median;
use crate::config::model_config;
use crate::input::{HostInput, RandomizeZeroWeights};
use crate::options::Options;
use so3_math::rotation::RandomRotations;

/// Every component on one backend (the inference model and its autodiff twin).
struct Components<B: Backend> {
    radial: RadialMlp<B>,
    messages: DepthwiseTensorProduct<B>,
    attention: EquivariantAttention<B>,
    feed_forward: FeedForward<B>,
    input_projection: DepthwiseTensorProduct<B>,
    model: Equiformer<B>,
}

/// The edge geometry of the model's forward pass, built from the public parts.
fn geometry<B: Backend>(
    config: &EquiformerConfig,
    host: &HostInput,
    device: &B::Device,
) -> EdgeGeometry<B> {
    let input = host.to_device::<B>(&host.coords, device);
    let mask = input.mask.expect("benchmark inputs carry a mask");
    let options = NeighborOptions {
        num_neighbors: config.num_neighbors,
        valid_radius: config.valid_radius,
    };
    let neighbors = NeighborList::nearest(input.coords, mask.clone(), None, 0, &options);
    let distance = neighbors
        .relative
        .clone()
        .square()
        .sum_dim(3)
        .clamp_min(1e-24)
        .sqrt(); // [B, N, K, 1]
    let l_max = config.num_degrees - 1;
    let path = MessagePath::resolve(config.message_path, config.m_max, l_max);
    let couplings = match path {
        MessagePath::So3 => {
            equi_nn::geometry::CouplingTables::new(l_max).couplings(neighbors.relative.clone())
        }
        MessagePath::So2 => Vec::new(),
    };
    EdgeGeometry {
        node_mask: mask,
        radial_features: radial_basis(
            distance.clone(),
            config.num_radial_basis,
            config.radial_basis_cutoff,
        ),
        couplings,
        frames: (path == MessagePath::So2).then(|| EdgeFrames::new(&neighbors, l_max)),
        envelope: None,
        distance,
        neighbors,
    }
}

/// `values` for each of `degrees` degrees: one value is shared by all.
fn per_degree(values: &[usize], degrees: usize) -> Vec<usize> {
    if values.len() == 1 {
        vec![values[0]; degrees]
    } else {
        values.to_vec()
    }
}

fn attention_config(config: &EquiformerConfig, edge_features: usize) -> EquivariantAttentionConfig {
    let degrees = config.num_degrees;
    EquivariantAttentionConfig::new(
        per_degree(&config.dim, degrees),
        per_degree(&config.heads, degrees),
        per_degree(&config.dim_head, degrees),
        edge_features,
    )
    .with_kind(config.attention)
    .with_attend_self(config.attend_self)
    .with_radial_hidden(config.radial_hidden_dim)
    .with_message_path(config.message_path)
    .with_init_out_zero(false)
}

/// Channels per degree of the attention messages before the value heads
/// (what the attention block's tensor product produces).
fn message_dims(config: &EquiformerConfig) -> Vec<usize> {
    let degrees = config.num_degrees;
    let (heads, dim_head) = (
        per_degree(&config.heads, degrees),
        per_degree(&config.dim_head, degrees),
    );
    let values: Vec<usize> = heads.iter().zip(&dim_head).map(|(h, d)| h * d).collect();
    match config.attention {
        equi_nn::AttentionKind::Mlp => {
            let mut dims = values.clone();
            let logits: usize = heads.iter().map(|h| h * config.attn_hidden_dim_mult).sum();
            dims[0] = logits + values[0] + values[1..].iter().sum::<usize>();
            dims
        }
        _ => values.iter().map(|v| 2 * v).collect(),
    }
}

impl<B: Backend> Components<B> {
    fn new(config: &EquiformerConfig, device: &B::Device) -> Self {
        let hidden = per_degree(&config.dim, config.num_degrees);
        let edge_features = config.num_radial_basis + 1;
        let attention = attention_config(config, edge_features);
        let messages =
            DepthwiseTensorProductConfig::new(hidden.clone(), message_dims(config), edge_features)
                .with_radial_hidden(config.radial_hidden_dim)
                .with_pool(false)
                .with_self_interaction(config.attend_self)
                .with_message_path(config.message_path);
        let radial_outputs = messages.radial_weights();
        let mut randomize = RandomizeZeroWeights {
            draw: RandomRotations::new(7),
            count: 0,
        };
        Components {
            radial: RadialMlpConfig::new(edge_features, config.radial_hidden_dim, radial_outputs)
                .init(device),
            messages: messages.init(device),
            attention: attention.init(device),
            feed_forward: burn::module::Module::map(
                FeedForwardConfig::new(hidden.clone())
                    .with_mult(config.ff_mult)
                    .init(device),
                &mut randomize,
            ),
            input_projection: DepthwiseTensorProductConfig::new(
                vec![hidden[0]],
                hidden,
                edge_features,
            )
            .with_radial_hidden(config.radial_hidden_dim)
            .with_message_path(config.message_path)
            .init(device),
            model: burn::module::Module::map(
                config.init::<B>(device).expect("valid benchmark config"),
                &mut randomize,
            ),
        }
    }
}

/// A random fiber `[1, N, 2l+1, C_l]`, channels from the config.
fn random_fiber<B: Backend>(
    config: &EquiformerConfig,
    n: usize,
    device: &B::Device,
) -> Vec<Tensor<B, 4>> {
    let degrees = config.num_degrees;
    let hidden = if config.dim.len() == 1 {
        vec![config.dim[0]; degrees]
    } else {
        config.dim.clone()
    };
    hidden
        .iter()
        .enumerate()
        .map(|(l, &c)| Tensor::random([1, n, 2 * l + 1, c], Distribution::Normal(0.0, 1.0), device))
        .collect()
}

/// The sum of every element of every tensor (a scalar loss).
fn total<B: Backend, const D: usize>(tensors: Vec<Tensor<B, D>>) -> Tensor<B, 1> {
    tensors
        .into_iter()
        .map(|t| t.sum())
        .reduce(|a, b| a + b)
        .expect("at least one tensor")
}

/// CPU time of every thread of this process so far, in seconds
/// (`clock_gettime(CLOCK_PROCESS_CPUTIME_ID)`): unlike wall-clock time it
/// does not grow while other processes hold the cores.
pub(crate) fn process_cpu_s() -> f64 {
    #[repr(C)]
    struct Timespec {
        seconds: i64,
        nanos: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, time: *mut Timespec) -> i32;
    }
    const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
    let mut time = Timespec {
        seconds: 0,
        nanos: 0,
    };
    // SAFETY: `time` is a valid, writable timespec for the duration of the call.
    let status = unsafe { clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &mut time) };
    if status != 0 {
        return f64::NAN;
    }
    time.seconds as f64 + time.nanos as f64 * 1e-9
}

/// Wall-clock and CPU seconds of `f`, waiting for its result on the host.
#[derive(Clone, Copy)]
pub(crate) struct Cost {
    pub(crate) wall: f64,
    pub(crate) cpu: f64,
}

pub(crate) fn timed_with<B: Backend>(f: impl FnOnce() -> Tensor<B, 1>) -> Cost {
    let (start, cpu) = (Instant::now(), process_cpu_s());
    let value = f();
    let _ = value.into_data();
    Cost {
        wall: start.elapsed().as_secs_f64(),
        cpu: process_cpu_s() - cpu,
    }
}

const NO_COST: Cost = Cost {
    wall: f64::NAN,
    cpu: f64::NAN,
};

/// A forward pass to time; `inline(never)` keeps it a symbol of its own, so
/// that `valgrind --tool=callgrind --toggle-collect='*measured_*'` counts the
/// instructions of exactly the timed calls (scripts/bench/instructions.sh).
#[inline(never)]
fn measured_forward<B: Backend>(f: impl FnOnce() -> Tensor<B, 1>) -> Cost {
    timed_with::<B>(f)
}

/// A forward+backward pass to time (see [`measured_forward`]).
#[inline(never)]
fn measured_forward_backward<B: Backend>(f: impl FnOnce() -> Tensor<B, 1>) -> Cost {
    timed_with::<B>(f)
}

/// How often the model runs a component per forward pass, from its configuration.
type CallsPerPass = fn(&EquiformerConfig) -> usize;

/// The components, in table order: name and calls per model forward pass.
const COMPONENTS: [(&str, CallsPerPass); 8] = [
    ("edge geometry", |_| 1),
    ("radial MLP (attention messages)", |c| c.depth),
    ("attention messages: edge_messages", |c| c.depth),
    ("attention messages: whole layer", |c| c.depth),
    ("attention block", |c| c.depth),
    ("feed-forward block", |c| c.depth),
    ("input projection", |_| 1),
    ("whole model", |_| 1),
];

/// Whether `--components` (substrings, default all) selects `name`.
fn selected(options: &Options, name: &str) -> bool {
    options.components.is_empty() || options.components.iter().any(|c| name.contains(c.as_str()))
}

/// One repetition of the selected components, forward then forward+backward.
/// Returns `(name, calls per model forward, forward, forward+backward)`.
fn repetition<B: Backend>(
    options: &Options,
    config: &EquiformerConfig,
    host: &HostInput,
    inference: &Components<B>,
    training: &Components<Autodiff<B>>,
    device: &B::Device,
) -> Vec<(&'static str, usize, Cost, Cost)> {
    let n = host.coords.len();
    let geo = geometry::<B>(config, host, device);
    let geo_ad = geometry::<Autodiff<B>>(config, host, device);
    let fiber = random_fiber::<B>(config, n, device);
    let fiber_ad: Vec<Tensor<Autodiff<B>, 4>> = fiber
        .iter()
        .map(|t| Tensor::from_inner(t.clone()).require_grad())
        .collect();
    let scalars = vec![fiber[0].clone()];
    let scalars_ad = vec![fiber_ad[0].clone()];
    let backward = |loss: Tensor<Autodiff<B>, 1>| {
        let grads = loss.backward();
        drop(grads);
        Tensor::<B, 1>::zeros([1], device)
    };
    let input = host.to_device::<B>(&host.coords, device);
    let input_ad = host.to_device::<Autodiff<B>>(&host.coords, device);
    let mut rows = Vec::new();
    for (i, (name, calls)) in COMPONENTS.iter().enumerate() {
        if !selected(options, name) {
            continue;
        }
        let (fwd, both) = match i {
            0 => (
                measured_forward::<B>(|| {
                    let g = geometry::<B>(config, host, device);
                    let frames = g.frames.map_or(Vec::new(), |f| f.wigner().to_vec());
                    frames
                        .into_iter()
                        .fold(total(vec![g.radial_features]), |sum, d| sum + d.sum())
                }),
                NO_COST,
            ),
            1 => (
                measured_forward::<B>(|| {
                    total(vec![inference.radial.forward(geo.radial_features.clone())])
                }),
                measured_forward_backward::<B>(|| {
                    let features = geo_ad.radial_features.clone();
                    backward(total(vec![training.radial.forward(features)]))
                }),
            ),
            2 => (
                measured_forward::<B>(|| total(inference.messages.edge_messages(&fiber, &geo))),
                measured_forward_backward::<B>(|| {
                    backward(total(training.messages.edge_messages(&fiber_ad, &geo_ad)))
                }),
            ),
            3 => (
                measured_forward::<B>(|| total(inference.messages.forward(&fiber, &geo))),
                measured_forward_backward::<B>(|| {
                    backward(total(training.messages.forward(&fiber_ad, &geo_ad)))
                }),
            ),
            4 => (
                measured_forward::<B>(|| total(inference.attention.forward(fiber.clone(), &geo))),
                measured_forward_backward::<B>(|| {
                    backward(total(training.attention.forward(fiber_ad.clone(), &geo_ad)))
                }),
            ),
            5 => (
                measured_forward::<B>(|| total(inference.feed_forward.forward(fiber.clone()))),
                measured_forward_backward::<B>(|| {
                    backward(total(training.feed_forward.forward(fiber_ad.clone())))
                }),
            ),
            6 => (
                measured_forward::<B>(|| total(inference.input_projection.forward(&scalars, &geo))),
                measured_forward_backward::<B>(|| {
                    backward(total(
                        training.input_projection.forward(&scalars_ad, &geo_ad),
                    ))
                }),
            ),
            _ => (
                measured_forward::<B>(|| {
                    total(
                        inference
                            .model
                            .forward(input.clone())
                            .expect("valid input")
                            .fiber,
                    )
                }),
                measured_forward_backward::<B>(|| {
                    let out = training
                        .model
                        .forward(input_ad.clone())
                        .expect("valid input");
                    backward(total(out.fiber))
                }),
            ),
        };
        rows.push((*name, calls(config), fwd, both));
    }
    rows
}

/// Time every component of one case and print the table.
pub(crate) fn run_breakdown<B: Backend>(
    options: &Options,
    backend: &str,
    config_name: &str,
    neighbors: &str,
    n: usize,
) {
    let device = B::Device::default();
    let config = model_config(config_name, neighbors, options.message_path);
    let training = Components::<Autodiff<B>>::new(&config, &device);
    let inference = Components::<B> {
        radial: training.radial.valid(),
        messages: training.messages.valid(),
        attention: training.attention.valid(),
        feed_forward: training.feed_forward.valid(),
        input_projection: training.input_projection.valid(),
        model: training.model.valid(),
    };
    let host = HostInput::new(n, 1);
    repetition(options, &config, &host, &inference, &training, &device); // warm-up
    let reps = options.reps.max(1);
    let runs: Vec<Vec<(&str, usize, Cost, Cost)>> = (0..reps)
        .map(|_| repetition(options, &config, &host, &inference, &training, &device))
        .collect();
    let whole = runs[0].iter().position(|row| row.0 == "whole model");
    let column = |i: usize, backward: bool, cpu: bool| {
        median(
            runs.iter()
                .map(|r| {
                    let cost = if backward { r[i].3 } else { r[i].2 };
                    if cpu {
                        cost.cpu
                    } else {
                        cost.wall
                    }
                })
                .collect(),
        )
    };
    println!(
        "\n{backend} {config_name} {neighbors} N={n}: medians of {reps} interleaved repetitions, \
         ms per call (wall-clock, and CPU time of all threads); share = calls x CPU time / \
         whole model's"
    );
    println!(
        "{:<34} | {:>5} | {:>8} | {:>8} | {:>8} | {:>8} | {:>8} | {:>6} | {:>6}",
        "component", "calls", "fwd", "f+b", "fwd cpu", "f+b cpu", "bwd cpu", "fwd %", "f+b %"
    );
    println!("{}", "-".repeat(34 + 5 + 8 * 5 + 6 * 2 + 24));
    for (i, &(name, calls, _, _)) in runs[0].iter().enumerate() {
        let share = |t: f64, whole: f64| 100.0 * calls as f64 * t / whole;
        let (fwd_cpu, both_cpu) = (column(i, false, true), column(i, true, true));
        println!(
            "{name:<34} | {calls:>5} | {:>8.2} | {:>8.2} | {:>8.2} | {:>8.2} | {:>8.2} | {:>6.1} | {:>6.1}",
            1e3 * column(i, false, false),
            1e3 * column(i, true, false),
            1e3 * fwd_cpu,
            1e3 * both_cpu,
            1e3 * (both_cpu - fwd_cpu),
            whole.map_or(f64::NAN, |w| share(fwd_cpu, column(w, false, true))),
            whole.map_or(f64::NAN, |w| share(both_cpu, column(w, true, true))),
        );
    }
}

/// `--breakdown`: every case of the grid, in this process.
pub(crate) fn breakdown_main(options: &Options) {
    for backend in &options.backends {
        for config in &options.configs {
            for neighbors in &options.neighbors {
                for &n in &options.ns {
                    if (neighbors == "knn32" && n <= 33) || (neighbors == "full" && n > 512) {
                        continue;
                    }
                    match backend.as_str() {
                        #[cfg(feature = "ndarray")]
                        "ndarray" => run_breakdown::<burn::backend::NdArray<f32>>(
                            options, backend, config, neighbors, n,
                        ),
                        #[cfg(feature = "flex")]
                        "flex" => run_breakdown::<burn::backend::Flex>(
                            options, backend, config, neighbors, n,
                        ),
                        other => {
                            crate::options::fail(&format!("backend {other:?} is not compiled in"))
                        }
                    }
                }
            }
        }
    }
}
