//! The result table (the reference script's columns) and the JSON and CSV files.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::child::rayon_threads;
use crate::options::{fail, Options};

/// The columns of the reference script, with the backend in front.
pub(crate) const COLUMNS: [(&str, &str); 14] = [
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

pub(crate) fn cell(result: &Map<String, Value>, key: &str) -> String {
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

pub(crate) fn print_table(results: &[Map<String, Value>]) {
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
pub(crate) fn meta(options: &Options) -> Value {
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
        ("mimalloc", cfg!(feature = "mimalloc")),
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

pub(crate) fn write_outputs(options: &Options, results: &[Map<String, Value>]) {
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
