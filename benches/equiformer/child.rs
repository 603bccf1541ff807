//! One case in this process: construction, forward, equivariance, forward+backward.

use std::time::Instant;

use burn::backend::Autodiff;
use burn::module::{AutodiffModule, Module};
use burn::tensor::backend::Backend;
use equi_nn::MessagePath;
use serde_json::{json, Map, Value};
use so3_math::rotation::RandomRotations;

use crate::config::model_config;
use crate::input::{
    forward_host, max_abs, max_abs_diff, rotate_rows, HostInput, RandomizeZeroWeights,
};
use crate::options::{fail, Options};

/// Prefix of the machine-readable result lines a child prints.
pub(crate) const RESULT_PREFIX: &str = "RESULT ";

/// Resident-memory figures of this process from `/proc/self/status`, in MiB.
pub(crate) fn proc_status_mb(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}
pub(crate) fn emit(result: &Map<String, Value>) {
    println!("{RESULT_PREFIX}{}", Value::Object(result.clone()));
}

/// Timed repetitions after a warm-up run of `warm_up` seconds: `--reps` (at most 5
/// from N = 512, as in the reference script), fewer when they would take longer
/// than `--budget` seconds, but at least 3.
pub(crate) fn repetitions(options: &Options, n: usize, warm_up: f64) -> usize {
    let reps = if n >= 512 {
        options.reps.min(5)
    } else {
        options.reps
    };
    let affordable = (options.budget_s / warm_up.max(1e-9)).floor() as usize;
    reps.min(affordable.max(3)).max(1)
}

/// Run one case in this process, printing a result line after every phase.
pub(crate) fn run_child<B: Backend>(options: &Options, backend: &str) {
    let config_name = &options.configs[0];
    let neighbors = &options.neighbors[0];
    let n = options.ns[0];
    let device = B::Device::default();
    let mut result = Map::new();
    result.insert("config".into(), json!(config_name));
    result.insert("neighbors".into(), json!(neighbors));
    result.insert("n".into(), json!(n));
    result.insert("dtype".into(), json!("float32"));
    result.insert("backend".into(), json!(backend));
    result.insert("threads".into(), json!(rayon_threads()));
    result.insert("rss_start_mb".into(), json!(proc_status_mb("VmRSS:")));

    let config = model_config(config_name, neighbors, options.message_path);
    let start = Instant::now();
    let model = config
        .init::<Autodiff<B>>(&device)
        .expect("valid benchmark config");
    let mut randomize = RandomizeZeroWeights {
        draw: RandomRotations::new(7),
        count: 0,
    };
    let model = model.map(&mut randomize);
    result.insert("construct_s".into(), json!(start.elapsed().as_secs_f64()));
    result.insert("n_randomized_zero_weights".into(), json!(randomize.count));
    result.insert("params".into(), json!(model.num_params()));
    let path = MessagePath::resolve(options.message_path, None, config.num_degrees - 1);
    result.insert("message_path".into(), json!(format!("{path:?}")));
    result.insert("fused_kernels".into(), json!(equi_nn::fused_kernels()));
    result.insert(
        "edges_per_node".into(),
        json!(config.num_neighbors.unwrap_or(n - 1).min(n - 1)),
    );
    let inference = model.valid();
    result.insert(
        "rss_after_construct_mb".into(),
        json!(proc_status_mb("VmRSS:")),
    );

    let host = HostInput::new(n, 1);
    let input = host.to_device::<B>(&host.coords, &device);

    // Forward: warm-up, then timed repetitions.
    let start = Instant::now();
    let (type0, type1) = forward_host(&inference, input.clone());
    let first_forward = start.elapsed().as_secs_f64();
    result.insert("first_forward_s".into(), json!(first_forward));
    result.insert("out_type0_maxabs".into(), json!(max_abs(&type0)));
    result.insert("out_type1_maxabs".into(), json!(max_abs(&type1)));
    emit(&result);
    let reps = repetitions(options, n, first_forward);
    let times: Vec<f64> = (0..reps)
        .map(|_| {
            let start = Instant::now();
            forward_host(&inference, input.clone());
            start.elapsed().as_secs_f64()
        })
        .collect();
    result.insert("fwd_times_s".into(), json!(times));
    result.insert(
        "fwd_min_s".into(),
        json!(times.iter().copied().fold(f64::INFINITY, f64::min)),
    );
    result.insert("fwd_median_s".into(), json!(median(times)));
    emit(&result);

    // Equivariance: rotated input against rotated output, then a translation.
    let mut rotations = RandomRotations::new(100);
    let (mut e0, mut e1) = (0.0f64, 0.0f64);
    for _ in 0..options.rotations {
        let r = rotations.next_rotation();
        let rotated = host.to_device::<B>(&rotate_rows(&host.coords, &r), &device);
        let (o0, o1) = forward_host(&inference, rotated);
        let expected: Vec<f64> = type1
            .chunks(3)
            .flat_map(|v| rotate_rows(&[[v[0], v[1], v[2]]], &r)[0])
            .collect();
        e0 = e0.max(max_abs_diff(&o0, &type0));
        e1 = e1.max(max_abs_diff(&o1, &expected));
    }
    let shift = [0; 3].map(|_| 10.0 * rotations.next_normal());
    let shifted: Vec<[f64; 3]> = host
        .coords
        .iter()
        .map(|p| [0, 1, 2].map(|i| p[i] + shift[i]))
        .collect();
    let (t0, t1) = forward_host(&inference, host.to_device::<B>(&shifted, &device));
    result.insert("equiv_err_type0_max".into(), json!(e0));
    result.insert("equiv_err_type1_max".into(), json!(e1));
    result.insert(
        "equiv_relerr_type0_max".into(),
        json!(e0 / max_abs(&type0).max(1e-30)),
    );
    result.insert(
        "equiv_relerr_type1_max".into(),
        json!(e1 / max_abs(&type1).max(1e-30)),
    );
    result.insert(
        "translation_err_type0".into(),
        json!(max_abs_diff(&t0, &type0)),
    );
    result.insert(
        "translation_err_type1".into(),
        json!(max_abs_diff(&t1, &type1)),
    );
    result.insert("peak_rss_fwd_mb".into(), json!(proc_status_mb("VmHWM:")));
    emit(&result);
    drop(inference);

    if !options.skip_bwd {
        let input = host.to_device::<Autodiff<B>>(&host.coords, &device);
        let forward_backward = || {
            let out = model.forward(input.clone()).expect("valid benchmark input");
            let loss = out
                .fiber
                .iter()
                .map(|t| t.clone().sum())
                .reduce(|a, b| a + b)
                .expect("at least one degree");
            let grads = loss.backward();
            drop(grads);
        };
        let start = Instant::now();
        forward_backward();
        let first = start.elapsed().as_secs_f64();
        result.insert("first_fwdbwd_s".into(), json!(first));
        emit(&result);
        let reps = repetitions(options, n, first);
        let times: Vec<f64> = (0..reps)
            .map(|_| {
                let start = Instant::now();
                forward_backward();
                start.elapsed().as_secs_f64()
            })
            .collect();
        result.insert("fwdbwd_times_s".into(), json!(times));
        result.insert(
            "fwdbwd_min_s".into(),
            json!(times.iter().copied().fold(f64::INFINITY, f64::min)),
        );
        result.insert("fwdbwd_median_s".into(), json!(median(times)));
    }
    result.insert("peak_rss_mb".into(), json!(proc_status_mb("VmHWM:")));
    if !options.skip_bwd {
        result.insert("peak_rss_fwdbwd_mb".into(), json!(proc_status_mb("VmHWM:")));
    }
    result.insert("status".into(), json!("ok"));
    emit(&result);
}

/// The rayon thread count the backends will use (`RAYON_NUM_THREADS` or all cores).
pub(crate) fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&t: &usize| t > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

pub(crate) fn child_main(options: &Options) {
    if options.configs.len() != 1
        || options.ns.len() != 1
        || options.neighbors.len() != 1
        || options.backends.len() != 1
    {
        fail("--child runs exactly one config, size, neighbour mode and backend");
    }
    match options.backends[0].as_str() {
        #[cfg(feature = "ndarray")]
        "ndarray" => run_child::<burn::backend::NdArray<f32>>(options, "ndarray"),
        #[cfg(feature = "flex")]
        "flex" => run_child::<burn::backend::Flex>(options, "flex"),
        other => fail(&format!("backend {other:?} is not compiled in")),
    }
}
