//! The `equiformer` program end to end: train, resume, eval and predict on a tiny denoising
//! run, and one-line errors for bad configurations, missing files and damaged checkpoints.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use equi_train::io::extxyz::read_extxyz;

fn proteins() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/proteins")
}

/// A fresh folder under the system's temporary folder, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("equiformer-cli-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create scratch folder");
        Scratch(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn equiformer(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_equiformer"))
        .args(arguments)
        .output()
        .expect("the equiformer program runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn denoise_config(folder: &Path) -> PathBuf {
    let proteins = proteins();
    let config = format!(
        r#"
[run]
dir = "run"
seed = 5

[model.equiformer]
dim = 4
heads = 1
dim_head = 4
depth = 1
num_neighbors = 6
radial_hidden_dim = 8
num_radial_basis = 8

[task.denoise]
crop_residues = 8

[data]
train = ["{peptide}"]
train_trajectories = [{{ dcd = "{dcd}", topology = "{topology}", stride = 49 }}]
valid = ["{peptide}"]

[training]
epochs = 1
batch_size = 2
"#,
        peptide = proteins.join("1grm_single.pdb").display(),
        dcd = proteins.join("adk_dims.dcd").display(),
        topology = proteins.join("adk_open.pdb").display(),
    );
    let path = folder.join("denoise.toml");
    std::fs::write(&path, config).expect("write config");
    path
}

/// Asserts a failed run whose standard error is one line naming `fragment`.
fn assert_one_line_error(output: &Output, fragment: &str) {
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: ") && stderr.contains(fragment),
        "{stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
}

#[test]
fn denoising_train_resume_eval_predict() {
    let scratch = Scratch::new("denoise");
    let config = denoise_config(&scratch.0);
    let config = config.to_string_lossy();
    let trained = equiformer(&["train", "--config", &config]);
    assert!(trained.status.success(), "{}", text(&trained.stderr));
    assert!(
        text(&trained.stdout).contains("epoch 1/1"),
        "{}",
        text(&trained.stdout)
    );
    let run = scratch.0.join("run");
    for file in ["metrics.csv", "loss.png", "checkpoints/best.ckpt"] {
        assert!(run.join(file).is_file(), "{file}");
    }

    let again = equiformer(&["train", "--config", &config]);
    assert_one_line_error(&again, "--resume");
    let resumed = equiformer(&["train", "--config", &config, "--resume"]);
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    assert!(
        text(&resumed.stdout).contains("finished"),
        "{}",
        text(&resumed.stdout)
    );

    let peptide = proteins().join("1grm_single.pdb");
    let peptide = peptide.to_string_lossy();
    let run_dir = run.to_string_lossy();
    let evaluated = equiformer(&["eval", "--checkpoint", &run_dir, "--data", &peptide]);
    assert!(evaluated.status.success(), "{}", text(&evaluated.stderr));
    let metrics = text(&evaluated.stdout);
    let names: Vec<&str> = metrics
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names, ["loss", "rmsd"], "{metrics}");

    let output = scratch.0.join("denoised.extxyz");
    let best = run.join("checkpoints/best.ckpt");
    let predicted = equiformer(&[
        "predict",
        "--checkpoint",
        &best.to_string_lossy(),
        "--input",
        &peptide,
        "--output",
        &output.to_string_lossy(),
    ]);
    assert!(predicted.status.success(), "{}", text(&predicted.stderr));
    let frames = read_extxyz(&output).expect("predictions read back");
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].len(), 90);
    assert_eq!(
        frames[0].vectors("predicted_noise").map(|v| v.len()),
        Some(90)
    );

    let wrong = equiformer(&[
        "predict",
        "--checkpoint",
        &run_dir,
        "--input",
        &config,
        "--output",
        "x.extxyz",
    ]);
    assert_one_line_error(&wrong, "PDB file");
    let forces = equiformer(&[
        "eval",
        "--checkpoint",
        &run_dir,
        "--data",
        &peptide,
        "--forces",
        "gradient",
    ]);
    assert_one_line_error(&forces, "energy_forces");
}

#[test]
fn errors_are_one_line_and_name_the_culprit() {
    let scratch = Scratch::new("errors");
    let good = std::fs::read_to_string(denoise_config(&scratch.0)).expect("config text");
    let cases = [
        (
            good.replace("depth = 1", "depth = 1\nwidth = 3"),
            "model.equiformer.width",
        ),
        (
            good.replace("batch_size = 2", "batch_size = \"two\""),
            "training.batch_size",
        ),
        (
            good.replace("1grm_single.pdb\"]\ntrain_", "missing.pdb\"]\ntrain_"),
            "data.train[0]",
        ),
        (good.replace("epochs = 1\n", ""), "epochs"),
        (good.replace("[run]", "[run]\n[run]"), "line 3"),
    ];
    for (i, (config, fragment)) in cases.iter().enumerate() {
        let path = scratch.0.join(format!("bad{i}.toml"));
        std::fs::write(&path, config).expect("write config");
        let output = equiformer(&["train", "--config", &path.to_string_lossy()]);
        assert_one_line_error(&output, fragment);
    }
    let absent = scratch.0.join("absent.toml");
    assert_one_line_error(
        &equiformer(&["train", "--config", &absent.to_string_lossy()]),
        "absent.toml",
    );

    let damaged = scratch.0.join("damaged.ckpt");
    std::fs::write(&damaged, b"not a checkpoint at all, just text").expect("write");
    let peptide = proteins().join("1grm_single.pdb");
    let output = equiformer(&[
        "eval",
        "--checkpoint",
        &damaged.to_string_lossy(),
        "--data",
        &peptide.to_string_lossy(),
    ]);
    assert_one_line_error(&output, "damaged.ckpt");
}
