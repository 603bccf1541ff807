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

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use burn::backend::Autodiff;
use burn::module::{AutodiffModule, Module, ModuleMapper, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor, TensorData};
use equi_nn::{AttentionKind, Equiformer, EquiformerConfig, EquiformerInput, MessagePath};
use serde_json::{json, Map, Value};
use so3_math::rotation::{RandomRotations, RotationMatrix};

/// Benchmark configurations, named as in the reference script.
const CONFIG_NAMES: [&str; 3] = ["readme", "mid", "mid_deg4"];
/// Neighbour modes: every other node, or the 32 nearest.
const NEIGHBOR_MODES: [&str; 2] = ["full", "knn32"];
/// Default sizes; `full` stops at 512 (O(N^2) edges), `knn32` goes on to 2048.
const DEFAULT_NS: [usize; 4] = [32, 128, 512, 2048];
/// Vocabulary of the token embedding in every configuration.
const NUM_TOKENS: usize = 24;
/// Prefix of the machine-readable result lines a child prints.
const RESULT_PREFIX: &str = "RESULT ";

/// The model configuration called `name`, with the neighbour mode applied.
///
/// - `readme`: the reference README's usage example (MLP attention);
/// - `mid`: mid-size, the reference constructor's default attention (L2 distance);
/// - `mid_deg4`: `mid` with degrees 0..=3.
fn model_config(
    name: &str,
    neighbors: &str,
    message_path: Option<MessagePath>,
) -> EquiformerConfig {
    let config = match name {
        "readme" => EquiformerConfig::new(vec![4, 4, 2])
            .with_dim_head(vec![4, 4, 4])
            .with_heads(vec![2, 2, 2])
            .with_num_degrees(3)
            .with_depth(4)
            .with_attend_self(true)
            .with_attention(AttentionKind::Mlp),
        "mid" => EquiformerConfig::new(vec![64, 32, 16])
            .with_dim_head(vec![16, 16, 16])
            .with_heads(vec![4, 4, 4])
            .with_num_degrees(3)
            .with_depth(2)
            .with_attention(AttentionKind::L2Distance),
        "mid_deg4" => EquiformerConfig::new(vec![64, 32, 16, 16])
            .with_dim_head(vec![16, 16, 16, 16])
            .with_heads(vec![4, 4, 4, 4])
            .with_num_degrees(4)
            .with_depth(2)
            .with_attention(AttentionKind::L2Distance),
        other => panic!("unknown config {other:?}; expected one of {CONFIG_NAMES:?}"),
    };
    let num_neighbors = match neighbors {
        "full" => None,
        "knn32" => Some(32),
        other => panic!("unknown neighbour mode {other:?}; expected one of {NEIGHBOR_MODES:?}"),
    };
    config
        .with_num_tokens(Some(NUM_TOKENS))
        .with_reduce_dim_out(true)
        .with_num_neighbors(num_neighbors)
        .with_message_path(message_path)
}

/// The CPU backends compiled into this binary.
fn compiled_backends() -> Vec<&'static str> {
    let mut backends = Vec::new();
    if cfg!(feature = "ndarray") {
        backends.push("ndarray");
    }
    if cfg!(feature = "flex") {
        backends.push("flex");
    }
    backends
}

/// Command-line options (parent and child share them).
#[derive(Clone, Debug)]
struct Options {
    configs: Vec<String>,
    ns: Vec<usize>,
    neighbors: Vec<String>,
    backends: Vec<String>,
    reps: usize,
    budget_s: f64,
    rotations: usize,
    skip_bwd: bool,
    message_path: Option<MessagePath>,
    timeout: Duration,
    rss_limit_mb: f64,
    json: Option<String>,
    csv: Option<String>,
    child: bool,
}

const USAGE: &str = "\
equiformer benchmark: forward, forward+backward, peak memory, equivariance error

options (lists are comma-separated):
  --only NAMES          configs: readme,mid,mid_deg4 (default: all)
  --ns SIZES            node counts (default: 32,128,512,2048; full stops at 512,
                        knn32 starts above 33 nodes); --n is a synonym
  --neighbors MODES     full,knn32 (default: both)
  --backend NAMES       ndarray,flex (default: every compiled one)
  --reps R              timed repetitions after the warm-up (default 7; at most 5 from N=512)
  --budget S            fewer repetitions (at least 3) where R would take over S seconds
                        (default 120)
  --rotations K         random rotations in the equivariance check (default 3)
  --skip-bwd            forward only
  --message-path P      auto (default), so3 or so2
  --timeout S           wall-clock limit of one case in seconds (default 600)
  --rss-limit-gib G     kill a case whose resident memory exceeds G GiB (default 16)
  --json PATH           write all results as JSON
  --csv PATH            write all results as CSV
  --child               run exactly one case in this process (internal)
";

fn parse_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn parse_args() -> Options {
    let mut options = Options {
        configs: CONFIG_NAMES.iter().map(|s| s.to_string()).collect(),
        ns: DEFAULT_NS.to_vec(),
        neighbors: NEIGHBOR_MODES.iter().map(|s| s.to_string()).collect(),
        backends: compiled_backends().iter().map(|s| s.to_string()).collect(),
        reps: 7,
        budget_s: 120.0,
        rotations: 3,
        skip_bwd: false,
        message_path: None,
        timeout: Duration::from_secs(600),
        rss_limit_mb: 16.0 * 1024.0,
        json: None,
        csv: None,
        child: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .unwrap_or_else(|| fail(&format!("{name} needs a value")))
        };
        match arg.as_str() {
            "--only" | "--config" => options.configs = parse_list(&value(&arg)),
            "--ns" | "--n" => {
                options.ns = parse_list(&value(&arg))
                    .iter()
                    .map(|s| {
                        s.parse()
                            .unwrap_or_else(|_| fail(&format!("bad size {s:?}")))
                    })
                    .collect()
            }
            "--neighbors" => options.neighbors = parse_list(&value(&arg)),
            "--backend" | "--backends" => options.backends = parse_list(&value(&arg)),
            "--reps" => options.reps = parse_number(&value(&arg)),
            "--budget" => options.budget_s = parse_number(&value(&arg)),
            "--rotations" => options.rotations = parse_number(&value(&arg)),
            "--skip-bwd" => options.skip_bwd = true,
            "--message-path" => {
                options.message_path = match value(&arg).as_str() {
                    "auto" => None,
                    "so3" => Some(MessagePath::So3),
                    "so2" => Some(MessagePath::So2),
                    other => fail(&format!("bad message path {other:?}")),
                }
            }
            "--timeout" => options.timeout = Duration::from_secs_f64(parse_number(&value(&arg))),
            "--rss-limit-gib" => options.rss_limit_mb = parse_number::<f64>(&value(&arg)) * 1024.0,
            "--json" => options.json = Some(value(&arg)),
            "--csv" => options.csv = Some(value(&arg)),
            "--child" => options.child = true,
            // `cargo bench` passes `--bench`; a bare word is a cargo bench filter.
            "--bench" => {}
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other if !other.starts_with('-') => {}
            other => fail(&format!("unknown option {other:?}")),
        }
    }
    for config in &options.configs {
        if !CONFIG_NAMES.contains(&config.as_str()) {
            fail(&format!(
                "unknown config {config:?}; expected {CONFIG_NAMES:?}"
            ));
        }
    }
    for mode in &options.neighbors {
        if !NEIGHBOR_MODES.contains(&mode.as_str()) {
            fail(&format!(
                "unknown neighbour mode {mode:?}; expected {NEIGHBOR_MODES:?}"
            ));
        }
    }
    let compiled = compiled_backends();
    for backend in &options.backends {
        if !compiled.contains(&backend.as_str()) {
            fail(&format!(
                "backend {backend:?} is not compiled in (compiled: {compiled:?}; \
                 enable it with the cargo feature of the same name)"
            ));
        }
    }
    options
}

fn parse_number<T: std::str::FromStr>(value: &str) -> T {
    value
        .parse()
        .unwrap_or_else(|_| fail(&format!("bad number {value:?}")))
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}\n\n{USAGE}");
    std::process::exit(2);
}

// ------------------------------------------------------------------ child

/// Resident-memory figures of this process from `/proc/self/status`, in MiB.
fn proc_status_mb(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Re-draws every all-zero weight matrix (the zero-initialised output
/// projections) from `N(0, 1/fan_in)`, so that the equivariance check
/// exercises every layer, as the reference script does for its model.
struct RandomizeZeroWeights {
    draw: RandomRotations,
    count: usize,
}

impl<B: Backend> ModuleMapper<B> for RandomizeZeroWeights {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        if D != 2 {
            return Param::from_mapped_value(id, tensor, mapper);
        }
        let values = tensor
            .clone()
            .into_data()
            .convert::<f64>()
            .to_vec::<f64>()
            .expect("float parameter");
        if values.iter().any(|v| *v != 0.0) {
            return Param::from_mapped_value(id, tensor, mapper);
        }
        self.count += 1;
        let dims = tensor.dims();
        let scale = 1.0 / (dims[0] as f64).sqrt();
        let fresh: Vec<f64> = (0..values.len())
            .map(|_| self.draw.next_normal() * scale)
            .collect();
        let fresh = Tensor::<B, D>::from_data(
            TensorData::new(fresh, dims).convert::<B::FloatElem>(),
            &tensor.device(),
        );
        Param::from_mapped_value(id, fresh.detach().require_grad(), mapper)
    }
}

/// One benchmark input on the host: tokens and coordinates (`N(0, 3^2)`).
struct HostInput {
    tokens: Vec<i64>,
    coords: Vec<[f64; 3]>,
}

impl HostInput {
    fn new(n: usize, seed: u64) -> Self {
        let mut draw = RandomRotations::new(seed);
        let tokens = (0..n)
            .map(|_| ((draw.next_uniform() * NUM_TOKENS as f64) as i64).min(NUM_TOKENS as i64 - 1))
            .collect();
        let coords = (0..n)
            .map(|_| [0; 3].map(|_| 3.0 * draw.next_normal()))
            .collect();
        HostInput { tokens, coords }
    }

    fn to_device<B: Backend>(&self, coords: &[[f64; 3]], device: &B::Device) -> EquiformerInput<B> {
        let n = self.tokens.len();
        let tokens = Tensor::<B, 2, Int>::from_data(
            TensorData::new(self.tokens.clone(), [1, n]).convert::<B::IntElem>(),
            device,
        );
        let flat: Vec<f64> = coords.iter().flatten().copied().collect();
        let coords = Tensor::<B, 3>::from_data(
            TensorData::new(flat, [1, n, 3]).convert::<B::FloatElem>(),
            device,
        );
        let mask = Tensor::<B, 2, Bool>::from_data(TensorData::new(vec![true; n], [1, n]), device);
        EquiformerInput::tokens(tokens, coords).with_mask(mask)
    }
}

/// `type0 [N]` and `type1 [N, 3]` (flattened) of one inference forward pass.
fn forward_host<B: Backend>(
    model: &Equiformer<B>,
    input: EquiformerInput<B>,
) -> (Vec<f64>, Vec<f64>) {
    let out = model.forward(input).expect("valid benchmark input");
    let (type0, type1) = out.reduced().expect("reduce_dim_out gives one channel");
    let host = |t: TensorData| t.convert::<f64>().to_vec::<f64>().expect("float output");
    let type0 = host(type0.into_data());
    let type1 = type1.map(|t| host(t.into_data())).unwrap_or_default();
    (type0, type1)
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn max_abs(a: &[f64]) -> f64 {
    a.iter().map(|x| x.abs()).fold(0.0, f64::max)
}

/// Row vectors times `r`: `x R`, the convention of the reference (`coors @ R`).
fn rotate_rows(rows: &[[f64; 3]], r: &RotationMatrix) -> Vec<[f64; 3]> {
    rows.iter()
        .map(|v| [0, 1, 2].map(|j| (0..3).map(|i| v[i] * r[i][j]).sum()))
        .collect()
}

fn emit(result: &Map<String, Value>) {
    println!("{RESULT_PREFIX}{}", Value::Object(result.clone()));
}

/// Timed repetitions after a warm-up run of `warm_up` seconds: `--reps` (at most 5
/// from N = 512, as in the reference script), fewer when they would take longer
/// than `--budget` seconds, but at least 3.
fn repetitions(options: &Options, n: usize, warm_up: f64) -> usize {
    let reps = if n >= 512 {
        options.reps.min(5)
    } else {
        options.reps
    };
    let affordable = (options.budget_s / warm_up.max(1e-9)).floor() as usize;
    reps.min(affordable.max(3)).max(1)
}

/// Run one case in this process, printing a result line after every phase.
fn run_child<B: Backend>(options: &Options, backend: &str) {
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
fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&t: &usize| t > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn child_main(options: &Options) {
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

// ------------------------------------------------------------------ parent

/// Resident memory of another process in MiB (`VmRSS` of `/proc/<pid>/status`).
fn rss_of_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<f64>().ok()? / 1024.0)
}

/// Run one case in a child process and return its last result line, with a
/// `status` of `ok`, a timeout, the memory guard or an error.
fn run_case(
    options: &Options,
    backend: &str,
    config: &str,
    neighbors: &str,
    n: usize,
) -> Map<String, Value> {
    let exe = std::env::current_exe().expect("path of this benchmark binary");
    let mut command = Command::new(exe);
    command.args([
        "--child",
        "--backend",
        backend,
        "--only",
        config,
        "--neighbors",
        neighbors,
        "--ns",
        &n.to_string(),
        "--reps",
        &options.reps.to_string(),
        "--budget",
        &options.budget_s.to_string(),
        "--rotations",
        &options.rotations.to_string(),
    ]);
    if options.skip_bwd {
        command.arg("--skip-bwd");
    }
    if let Some(path) = options.message_path {
        command.args([
            "--message-path",
            if path == MessagePath::So3 {
                "so3"
            } else {
                "so2"
            },
        ]);
    }
    let start = Instant::now();
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a child benchmark process");
    let pid = child.id();
    let (sender, receiver) = mpsc::channel();
    let stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(json) = line.strip_prefix(RESULT_PREFIX) {
                if let Ok(Value::Object(map)) = serde_json::from_str(json) {
                    let _ = sender.send(map);
                }
            }
        }
    });
    let stderr = child.stderr.take().expect("piped stderr");
    let stderr_reader = std::thread::spawn(move || {
        let lines: Vec<String> = BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect();
        lines
    });
    let mut status = None;
    let mut watchdog_peak: f64 = 0.0;
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("poll the child") {
            break Some(exit);
        }
        let rss = rss_of_mb(pid).unwrap_or(0.0);
        watchdog_peak = watchdog_peak.max(rss);
        if rss > options.rss_limit_mb {
            status = Some(format!(
                "killed: RSS > {:.0} GiB guard",
                options.rss_limit_mb / 1024.0
            ));
        } else if start.elapsed() > options.timeout {
            status = Some(format!(
                "killed: timeout > {:.0}s",
                options.timeout.as_secs_f64()
            ));
        }
        if status.is_some() {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    reader.join().expect("stdout reader");
    let stderr_lines = stderr_reader.join().expect("stderr reader");
    let mut result = receiver.try_iter().last().unwrap_or_else(|| {
        let mut map = Map::new();
        map.insert("config".into(), json!(config));
        map.insert("neighbors".into(), json!(neighbors));
        map.insert("n".into(), json!(n));
        map.insert("dtype".into(), json!("float32"));
        map.insert("backend".into(), json!(backend));
        map
    });
    let status = match (status, exit) {
        (Some(status), _) => status,
        (None, Some(exit)) if exit.success() => "ok".to_string(),
        (None, exit) => {
            let last = stderr_lines
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(|l| l.chars().take(300).collect::<String>())
                .unwrap_or_default();
            format!(
                "error {}: {last}",
                exit.map_or("?".into(), |e| e.to_string())
            )
        }
    };
    result.insert("status".into(), json!(status));
    result.insert("case_wall_s".into(), json!(start.elapsed().as_secs_f64()));
    result.insert("watchdog_peak_rss_mb".into(), json!(watchdog_peak));
    result
}

/// The columns of the reference script, with the backend in front.
const COLUMNS: [(&str, &str); 14] = [
    ("backend", "backend"),
    ("config", "config"),
    ("neighbors", "nbrs"),
    ("n", "N"),
    ("dtype", "dtype"),
    ("fwd_median_s", "fwd med s"),
    ("fwdbwd_median_s", "f+b med s"),
    ("peak_rss_fwd_mb", "RSS fwd MB"),
    ("peak_rss_fwdbwd_mb", "RSS f+b MB"),
    ("first_forward_s", "1st fwd s"),
    ("equiv_err_type0_max", "eq0 abs"),
    ("equiv_err_type1_max", "eq1 abs"),
    ("equiv_relerr_type1_max", "eq1 rel"),
    ("status", "status"),
];

fn cell(result: &Map<String, Value>, key: &str) -> String {
    match result.get(key) {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(number)) => {
            let v = number.as_f64().unwrap_or(f64::NAN);
            match key {
                "n" => format!("{v:.0}"),
                k if k.starts_with("peak_rss") => format!("{v:.0}"),
                "first_forward_s" => format!("{v:.2}"),
                k if k.starts_with("equiv") => format!("{v:.1e}"),
                _ => format!("{v:.3}"),
            }
        }
        Some(other) => other.to_string(),
    }
}

fn print_table(results: &[Map<String, Value>]) {
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| COLUMNS.iter().map(|(key, _)| cell(r, key)).collect())
        .collect();
    let widths: Vec<usize> = COLUMNS
        .iter()
        .enumerate()
        .map(|(i, (_, title))| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([title.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join(" | ")
    };
    println!(
        "{}",
        line(COLUMNS.iter().map(|(_, t)| t.to_string()).collect())
    );
    println!(
        "{}",
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("-+-")
    );
    for row in rows {
        println!("{}", line(row));
    }
}

/// The machine and build, recorded next to the results.
fn meta(options: &Options) -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_default();
    let features: Vec<&str> = [
        ("ndarray", cfg!(feature = "ndarray")),
        ("flex", cfg!(feature = "flex")),
        ("cpu-parallel", cfg!(feature = "cpu-parallel")),
        ("openblas", cfg!(feature = "openblas")),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect();
    json!({
        "cpu": cpu,
        "nproc": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "rayon_threads": rayon_threads(),
        "features": features,
        "backends": options.backends,
        "reps": options.reps,
        "budget_s": options.budget_s,
        "rotations": options.rotations,
        "timestamp_unix": SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        "loss": "sum of all outputs",
        "peak_memory": "VmHWM of a fresh process per case, after the forward phase and at the end",
    })
}

fn write_outputs(options: &Options, results: &[Map<String, Value>]) {
    if let Some(path) = &options.json {
        let document = json!({ "meta": meta(options), "results": results });
        let text = serde_json::to_string_pretty(&document).expect("serialise results");
        std::fs::write(path, text).unwrap_or_else(|e| fail(&format!("cannot write {path}: {e}")));
    }
    if let Some(path) = &options.csv {
        let keys = [
            "backend",
            "config",
            "neighbors",
            "n",
            "dtype",
            "threads",
            "message_path",
            "params",
            "fwd_median_s",
            "fwd_min_s",
            "fwdbwd_median_s",
            "fwdbwd_min_s",
            "first_forward_s",
            "first_fwdbwd_s",
            "peak_rss_fwd_mb",
            "peak_rss_fwdbwd_mb",
            "peak_rss_mb",
            "rss_after_construct_mb",
            "equiv_err_type0_max",
            "equiv_err_type1_max",
            "equiv_relerr_type1_max",
            "translation_err_type0",
            "translation_err_type1",
            "status",
        ];
        let mut text = keys.join(",") + "\n";
        for result in results {
            let row: Vec<String> = keys
                .iter()
                .map(|k| match result.get(*k) {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(s)) => format!("\"{}\"", s.replace('"', "'")),
                    Some(v) => v.to_string(),
                })
                .collect();
            let _ = writeln!(text, "{}", row.join(","));
        }
        std::fs::write(path, text).unwrap_or_else(|e| fail(&format!("cannot write {path}: {e}")));
    }
}

fn parent_main(options: &Options) {
    let mut results = Vec::new();
    for backend in &options.backends {
        for config in &options.configs {
            for neighbors in &options.neighbors {
                let mut failed_at: Option<usize> = None;
                for &n in &options.ns {
                    // knn32 on 33 nodes or fewer is the full graph; full stops at 512.
                    if (neighbors == "knn32" && n <= 33) || (neighbors == "full" && n > 512) {
                        continue;
                    }
                    let result = if let Some(smaller) = failed_at {
                        let mut map = Map::new();
                        for (key, value) in [
                            ("backend", json!(backend)),
                            ("config", json!(config)),
                            ("neighbors", json!(neighbors)),
                            ("n", json!(n)),
                            ("dtype", json!("float32")),
                            (
                                "status",
                                json!(format!("skipped: N={smaller} already failed")),
                            ),
                        ] {
                            map.insert(key.into(), value);
                        }
                        map
                    } else {
                        eprintln!(">>> {backend} {config} {neighbors} N={n}");
                        run_case(options, backend, config, neighbors, n)
                    };
                    if result.get("status").and_then(Value::as_str) != Some("ok")
                        && failed_at.is_none()
                    {
                        failed_at = Some(n);
                    }
                    print_table(std::slice::from_ref(&result));
                    results.push(result);
                    write_outputs(options, &results);
                }
            }
        }
    }
    println!();
    print_table(&results);
    let by_status: BTreeMap<String, usize> = results.iter().fold(BTreeMap::new(), |mut m, r| {
        let status = r.get("status").and_then(Value::as_str).unwrap_or("?");
        *m.entry(status.split(':').next().unwrap_or(status).to_string())
            .or_default() += 1;
        m
    });
    eprintln!("cases by status: {by_status:?}");
}

fn main() {
    let options = parse_args();
    if options.child {
        child_main(&options);
    } else {
        parent_main(&options);
    }
}
