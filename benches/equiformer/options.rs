//! Command-line options, shared by the parent and its child processes.

use std::time::Duration;

use equi_nn::MessagePath;

use crate::config::{compiled_backends, CONFIG_NAMES, NEIGHBOR_MODES};

/// Default sizes; `full` stops at 512 (O(N^2) edges), `knn32` goes on to 2048.
pub(crate) const DEFAULT_NS: [usize; 4] = [32, 128, 512, 2048];

/// Command-line options (parent and child share them).
#[derive(Clone, Debug)]
pub(crate) struct Options {
    pub(crate) configs: Vec<String>,
    pub(crate) ns: Vec<usize>,
    pub(crate) neighbors: Vec<String>,
    pub(crate) backends: Vec<String>,
    pub(crate) reps: usize,
    pub(crate) budget_s: f64,
    pub(crate) rotations: usize,
    pub(crate) skip_bwd: bool,
    pub(crate) message_path: Option<MessagePath>,
    pub(crate) generic_kernels: bool,
    pub(crate) timeout: Duration,
    pub(crate) rss_limit_mb: f64,
    pub(crate) json: Option<String>,
    pub(crate) csv: Option<String>,
    pub(crate) child: bool,
    pub(crate) breakdown: bool,
    pub(crate) ops: bool,
    pub(crate) components: Vec<String>,
}

pub(crate) const USAGE: &str = "\
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
  --generic-kernels     SO(2) messages by Burn tensor operations, not the fused CPU kernel
  --timeout S           wall-clock limit of one case in seconds (default 600)
  --rss-limit-gib G     kill a case whose resident memory exceeds G GiB (default 16)
  --json PATH           write all results as JSON
  --csv PATH            write all results as CSV
  --breakdown           time each model component alone on the case's edge geometry,
                        forward and forward+backward, interleaved, in this process
  --components NAMES    with --breakdown: only the components whose names contain one of
                        these words (e.g. radial,block)
  --ops                 time single tensor ops at the edge count of each case (forward
                        and forward+backward, in this process) instead
  --child               run exactly one case in this process (internal)
";

pub(crate) fn parse_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

pub(crate) fn parse_args() -> Options {
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
        generic_kernels: false,
        timeout: Duration::from_secs(600),
        rss_limit_mb: 16.0 * 1024.0,
        json: None,
        csv: None,
        child: false,
        breakdown: false,
        ops: false,
        components: Vec::new(),
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
            "--generic-kernels" => options.generic_kernels = true,
            "--timeout" => options.timeout = Duration::from_secs_f64(parse_number(&value(&arg))),
            "--rss-limit-gib" => options.rss_limit_mb = parse_number::<f64>(&value(&arg)) * 1024.0,
            "--json" => options.json = Some(value(&arg)),
            "--csv" => options.csv = Some(value(&arg)),
            "--child" => options.child = true,
            "--breakdown" => options.breakdown = true,
            "--ops" => options.ops = true,
            "--components" => options.components = parse_list(&value(&arg)),
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

pub(crate) fn parse_number<T: std::str::FromStr>(value: &str) -> T {
    value
        .parse()
        .unwrap_or_else(|_| fail(&format!("bad number {value:?}")))
}

pub(crate) fn fail(message: &str) -> ! {
    eprintln!("error: {message}\n\n{USAGE}");
    std::process::exit(2);
}
