use std::path::Path;
use std::sync::Mutex;

use burn::backend::{Autodiff, NdArray};

use super::*;
use crate::commands::{evaluate_file, predict_file, train_from_file, InferenceOptions};
use crate::config::ForceSource;
use crate::io::extxyz::{read_extxyz, write_extxyz};

type B = Autodiff<NdArray>;

/// Runs that compare losses seed Burn's process-wide random generator: one at a time.
pub(super) static SEEDED: Mutex<()> = Mutex::new(());

pub(super) const CONFIG: &str = r#"
[run]
dir = "run"
seed = 3

[model.equiformer]
dim = 4
heads = 1
dim_head = 4
depth = 1
radial_hidden_dim = 8
num_radial_basis = 8
ff_mult = 1

[task.energy_forces]
forces = "direct"

[data]
train = ["train.extxyz"]
valid = ["valid.extxyz"]

[schedule]
kind = "cosine"
warmup_steps = 2

[training]
epochs = 3
batch_size = 2
"#;

/// A folder with 8 training and 4 validation frames of ethanol and `run.toml`.
pub(super) fn workspace(config: &str) -> tempfile::TempDir {
    let folder = tempfile::tempdir().expect("temporary folder");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/md");
    for (name, source, count) in [
        ("train", "ethanol_xtb_train", 8),
        ("valid", "ethanol_xtb_valid", 4),
    ] {
        let frames = read_extxyz(data.join(format!("{source}.extxyz"))).expect("ethanol frames");
        let path = folder.path().join(format!("{name}.extxyz"));
        write_extxyz(path, &frames[..count]).expect("write frames");
    }
    std::fs::write(folder.path().join("run.toml"), config).expect("write config");
    folder
}

pub(super) fn load(folder: &Path) -> LoadedConfig {
    LoadedConfig::from_file(&folder.join("run.toml")).expect("valid configuration")
}

/// Trains, recording `(epoch, batch, step, loss)` of every step; aborts after `abort_at`.
fn run(
    loaded: &LoadedConfig,
    resume: bool,
    abort_at: Option<usize>,
) -> (TrainReport, Vec<(usize, usize, usize, f64)>) {
    let mut steps = Vec::new();
    let options = TrainOptions {
        resume,
        quiet: true,
    };
    let report = train::<B>(loaded, &Default::default(), options, &mut |event| {
        steps.push((event.epoch, event.batch, event.step, event.loss));
        if Some(event.step) == abort_at {
            StepControl::Abort
        } else {
            StepControl::Continue
        }
    })
    .expect("training runs");
    (report, steps)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-5 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn interrupted_runs_resume_where_they_stopped() {
    let _guard = SEEDED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let reference = workspace(CONFIG);
    let (full, full_steps) = run(&load(reference.path()), false, None);
    assert_eq!(
        (full.steps, full.history.len(), full_steps.len()),
        (12, 3, 12)
    );
    assert!(!full.aborted);

    // Killed in the middle of epoch 2: the finished epoch's checkpoint is intact.
    let killed = workspace(CONFIG);
    let loaded = load(killed.path());
    let (report, _) = run(&loaded, false, Some(6));
    assert!(report.aborted);
    let folder = killed.path().join("run/checkpoints");
    let saved = checkpoint::list(&folder).expect("list");
    assert_eq!(saved.iter().map(|(s, _)| *s).collect::<Vec<_>>(), vec![4]);
    let stored = Checkpoint::read(&saved[0].1).expect("intact checkpoint");
    let progress = &stored.meta.progress;
    assert_eq!((progress.epoch, progress.batch, progress.step), (1, 0, 4));
    assert_eq!(stored.meta.history.len(), 1);
    assert!(folder.join(checkpoint::BEST).is_file());

    // Resuming repeats epoch 2 from its start and draws the same batches: same losses.
    let (resumed, steps) = run(&loaded, true, None);
    assert_eq!(resumed.resumed_from.as_deref(), Some(saved[0].1.as_path()));
    assert_eq!((steps[0].0, steps[0].1, steps[0].2), (1, 0, 5));
    assert_eq!(resumed.steps, 12);
    for (found, expected) in steps.iter().zip(&full_steps[4..]) {
        assert_eq!(found.2, expected.2);
        assert!(
            close(found.3, expected.3),
            "step {}: {} vs {}",
            found.2,
            found.3,
            expected.3
        );
    }
    let (a, b) = (&resumed.history[2], &full.history[2]);
    assert!(close(a.train_loss, b.train_loss) && close(a.valid[0].1, b.valid[0].1));
    let csv = std::fs::read_to_string(killed.path().join("run/metrics.csv")).expect("csv");
    assert_eq!(csv.lines().count(), 4);
    assert!(killed.path().join("run/loss.png").is_file());

    // With checkpoints inside epochs, a run killed at step 7 resumes at step 7.
    let periodic = workspace(&CONFIG.replace(
        "batch_size = 2",
        "batch_size = 2\ncheckpoint_every_steps = 3",
    ));
    let loaded = load(periodic.path());
    run(&loaded, false, Some(7));
    let (_, steps) = run(&loaded, true, None);
    assert_eq!((steps[0].0, steps[0].1, steps[0].2), (1, 2, 7));
    for (found, expected) in steps.iter().zip(&full_steps[6..]) {
        assert!(
            close(found.3, expected.3),
            "step {}: {} vs {}",
            found.2,
            found.3,
            expected.3
        );
    }
}

#[test]
fn train_resume_evaluate_predict() {
    let _guard = SEEDED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let folder = workspace(&CONFIG.replace("epochs = 3", "epochs = 1"));
    let config = folder.path().join("run.toml");
    let quiet = TrainOptions {
        resume: false,
        quiet: true,
    };
    let first = train_from_file(&config, quiet).expect("first epoch");
    assert_eq!((first.steps, first.history.len()), (4, 1));
    let again = train_from_file(&config, quiet).expect_err("checkpoints exist");
    assert!(again.to_string().contains("--resume"), "{again}");

    // A longer schedule continues the same run.
    std::fs::write(&config, CONFIG.replace("epochs = 3", "epochs = 2")).expect("edit config");
    let resume = TrainOptions {
        resume: true,
        quiet: true,
    };
    let second = train_from_file(&config, resume).expect("second epoch");
    assert_eq!((second.steps, second.history.len()), (8, 2));
    assert!(second.resumed_from.is_some());

    let run_dir = folder.path().join("run");
    let valid = folder.path().join("valid.extxyz");
    let metrics = evaluate_file(&run_dir, &valid, &InferenceOptions::default()).expect("eval");
    let names: Vec<&str> = metrics.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["loss", "energy_mae_meV_per_atom", "forces_mae_meV_per_A"]
    );
    let recorded = &second.history[1].valid;
    assert!(
        close(metrics[0].1, recorded[0].1),
        "{metrics:?} vs {recorded:?}"
    );
    let gradient = InferenceOptions {
        forces: Some(ForceSource::Gradient),
        batch_size: Some(3),
    };
    let with_gradient = evaluate_file(&run_dir, &valid, &gradient).expect("gradient forces");
    assert!(close(with_gradient[1].1, metrics[1].1));
    assert!(with_gradient[2].1.is_finite() && with_gradient[2].1 != metrics[2].1);

    let output = folder.path().join("predicted.extxyz");
    let count =
        predict_file(&run_dir, &valid, &output, &InferenceOptions::default()).expect("predict");
    assert_eq!(count, 4);
    let frames = read_extxyz(&output).expect("predictions read back");
    let reference = read_extxyz(&valid).expect("inputs");
    for (predicted, input) in frames.iter().zip(&reference) {
        assert_eq!(predicted.positions, input.positions);
        assert_eq!(predicted.info_f64("ref_energy"), input.energy());
        assert!(predicted
            .energy()
            .is_some_and(|e| e.is_finite() && e != input.energy().unwrap_or(0.0)));
        assert_eq!(predicted.vectors("ref_forces"), input.forces());
        assert_eq!(predicted.forces().map(|f| f.len()), Some(9));
    }

    // Damaged checkpoints are reported, not panicked on.
    for (_, path) in checkpoint::list(&run_dir.join("checkpoints")).expect("list") {
        std::fs::write(&path, b"EQFCKPT\0 cut short").expect("damage");
    }
    std::fs::remove_file(run_dir.join("checkpoints").join(checkpoint::BEST)).expect("remove best");
    let error = evaluate_file(&run_dir, &valid, &InferenceOptions::default()).expect_err("damaged");
    assert!(error.to_string().starts_with("checkpoint "), "{error}");
    let error = train_from_file(&config, resume).expect_err("damaged");
    assert!(error.to_string().contains("can be read"), "{error}");
}

#[test]
fn resuming_with_another_model_is_refused() {
    let _guard = SEEDED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let folder = workspace(&CONFIG.replace("epochs = 3", "epochs = 1"));
    let quiet = TrainOptions {
        resume: false,
        quiet: true,
    };
    train_from_file(&folder.path().join("run.toml"), quiet).expect("train");
    std::fs::write(
        folder.path().join("run.toml"),
        CONFIG.replace("depth = 1", "depth = 2"),
    )
    .expect("edit config");
    let resume = TrainOptions {
        resume: true,
        quiet: true,
    };
    let error = train_from_file(&folder.path().join("run.toml"), resume).expect_err("changed");
    assert!(error.to_string().contains("[model]"), "{error}");
}

/// A conservative potential on a few periodic Cu frames: energies, forces and stress are
/// trained, evaluated and written, and the validation metrics are those `eval` finds.
#[test]
fn periodic_potential_trains_evaluates_and_predicts_stress() {
    let _guard = SEEDED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let folder = tempfile::tempdir().expect("temporary folder");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/bulk");
    for (name, source, count) in [
        ("train", "cu_emt_train", 4),
        ("valid", "cu_emt_small_cells", 6),
    ] {
        let frames = read_extxyz(data.join(format!("{source}.extxyz"))).expect("Cu frames");
        write_extxyz(
            folder.path().join(format!("{name}.extxyz")),
            &frames[..count],
        )
        .expect("write frames");
    }
    let config = CONFIG
        .replace("forces = \"direct\"", "stress_weight = 1.0")
        .replace(
            "depth = 1",
            "depth = 1\nvalid_radius = 3.0\nradial_basis_cutoff = 3.0",
        )
        .replace("epochs = 3", "epochs = 2");
    std::fs::write(folder.path().join("run.toml"), config).expect("write config");
    let quiet = TrainOptions {
        resume: false,
        quiet: true,
    };
    let report = train_from_file(&folder.path().join("run.toml"), quiet).expect("training");
    assert_eq!(report.steps, 4);
    let last = &report.history[1].valid;
    let names: Vec<&str> = last.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "loss",
            "energy_mae_meV_per_atom",
            "forces_mae_meV_per_A",
            "stress_mae_meV_per_A3",
            "stress_mae_GPa"
        ]
    );
    assert!(last.iter().all(|(_, v)| v.is_finite()), "{last:?}");

    let run_dir = folder.path().join("run");
    let valid = folder.path().join("valid.extxyz");
    let metrics = evaluate_file(&run_dir, &valid, &InferenceOptions::default()).expect("eval");
    for ((name, found), (_, recorded)) in metrics.iter().zip(last).skip(1) {
        assert!(close(*found, *recorded), "{name}: {found} vs {recorded}");
    }
    let direct = InferenceOptions {
        forces: Some(ForceSource::Gradient),
        batch_size: None,
    };
    let error = evaluate_file(&run_dir, &valid, &direct).expect_err("cells need conservative");
    assert!(error.to_string().contains("conservative"), "{error}");

    let output = folder.path().join("predicted.extxyz");
    predict_file(&run_dir, &valid, &output, &InferenceOptions::default()).expect("predict");
    let frames = read_extxyz(&output).expect("predictions read back");
    let reference = read_extxyz(&valid).expect("inputs");
    for (predicted, input) in frames.iter().zip(&reference) {
        assert_eq!(
            predicted.cell().expect("valid"),
            input.cell().expect("valid")
        );
        assert!(predicted.info.contains_key("ref_stress"));
        let stress = predicted
            .stress()
            .expect("valid")
            .expect("a predicted stress");
        assert!(stress.iter().flatten().all(|x| x.is_finite()));
        assert_ne!(Some(stress), input.stress().expect("valid"));
        assert_eq!(predicted.forces().map(|f| f.len()), Some(input.len()));
    }

    // Structures the neighbour search refuses are named before training starts.
    let mut frames = read_extxyz(folder.path().join("train.extxyz")).expect("frames");
    frames[2].positions[1] = frames[2].positions[0];
    write_extxyz(folder.path().join("train.extxyz"), &frames).expect("write frames");
    std::fs::remove_dir_all(&run_dir).expect("remove run");
    let error = train_from_file(&folder.path().join("run.toml"), quiet).expect_err("coincident");
    assert!(error.to_string().contains("frame 3"), "{error}");
    assert!(error.to_string().contains("coincident"), "{error}");
}
