//! The parent process: one child per case, with a time limit and a memory guard.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use equi_nn::MessagePath;
use serde_json::{json, Map, Value};

use crate::child::RESULT_PREFIX;
use crate::options::Options;
use crate::report::{print_table, write_outputs};

/// Resident memory of another process in MiB (`VmRSS` of `/proc/<pid>/status`).
pub(crate) fn rss_of_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<f64>().ok()? / 1024.0)
}

/// Run one case in a child process and return its last result line, with a
/// `status` of `ok`, a timeout, the memory guard or an error.
pub(crate) fn run_case(
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
    if options.generic_kernels {
        command.arg("--generic-kernels");
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

pub(crate) fn parent_main(options: &Options) {
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
