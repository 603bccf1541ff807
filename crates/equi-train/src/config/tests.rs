use std::path::{Path, PathBuf};

use super::*;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const VALID: &str = r#"
[run]
dir = "runs/x"

[model.equiformer]
dim = [8, 4]
heads = 2
dim_head = 4
depth = 1

[task.energy_forces]
forces = "direct"

[data]
train = ["data/md/ethanol_xtb_train.extxyz"]

[training]
epochs = 1
batch_size = 4
"#;

fn parse(text: &str) -> Result<LoadedConfig, TrainError> {
    LoadedConfig::from_text(text.to_owned(), repository(), "run.toml")
}

/// The `(key, message)` of a configuration error.
fn key_error(text: &str) -> (String, String) {
    match parse(text) {
        Err(TrainError::Config { key, message, .. }) => (key, message),
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[test]
fn a_valid_configuration_with_defaults() {
    let loaded = parse(VALID).expect("valid");
    let config = &loaded.config;
    assert_eq!(config.optimizer, OptimizerConfig::default());
    assert_eq!(config.schedule, ScheduleConfig::default());
    assert_eq!(config.run.backend, BackendKind::Ndarray);
    assert!(config.run.dir.is_absolute() && config.run.dir.ends_with("runs/x"));
    assert!(!config.data.train[0].to_string_lossy().contains(".."));
    let TaskConfig::EnergyForces(task) = &config.task else {
        panic!("energy_forces task");
    };
    assert_eq!((task.energy_weight, task.forces_weight), (1.0, 1.0));
    let ModelChoice::Equiformer(model) = &loaded.model else {
        panic!("equiformer");
    };
    assert_eq!(model.heads, vec![2]);
    assert_eq!(model.num_tokens, Some(crate::data::MOLECULE_TOKENS));
    assert!(model.reduce_dim_out);
}

#[test]
fn errors_name_the_offending_key() {
    let cases = [
        (
            VALID.replace("[training]", "[training]\nlearning_rate = 3"),
            "training.learning_rate",
            "unknown field",
        ),
        (
            VALID.replace("depth = 1", "depth = 1\ndepht = 2"),
            "model.equiformer.depht",
            "unknown key",
        ),
        (
            VALID.replace("[training]", "[optimizer]\nlr = \"fast\"\n[training]"),
            "optimizer.lr",
            "invalid type",
        ),
        (
            VALID.replace("dim_head = 4", "dim_head = \"4\""),
            "model.equiformer.dim_head",
            "invalid type",
        ),
        (VALID.replace("epochs = 1\n", ""), "training", "epochs"),
        (
            VALID.replace("dim = [8, 4]\n", ""),
            "model.equiformer.dim",
            "missing",
        ),
        (
            VALID.replace("[task.energy_forces]", "[task.energies]"),
            "task",
            "energies",
        ),
        (
            VALID.replace("batch_size = 4", "batch_size = 0"),
            "training.batch_size",
            "at least 1",
        ),
        (
            VALID.replace("forces = \"direct\"", "forces = \"gradient\""),
            "task.energy_forces.forces_weight",
            "double backward",
        ),
        (
            VALID.replace("ethanol_xtb_train.extxyz", "ethanol.pdb"),
            "data.train[0]",
            "extended XYZ",
        ),
        (
            VALID.replace(
                "forces = \"direct\"",
                "stress_weight = 1.0\nforces = \"direct\"",
            ),
            "task.energy_forces.stress_weight",
            "conservative",
        ),
        (
            VALID.replace("forces = \"direct\"", "max_images = 0"),
            "task.energy_forces.max_images",
            "positive",
        ),
        (
            VALID.replace("[model.equiformer]", "[model.equiformer]\nnum_degrees = 1"),
            "model.equiformer.num_degrees",
            "at least 2",
        ),
        (
            VALID.replace("[model.equiformer]", "[model.equiformer]\nnum_tokens = 10"),
            "model.equiformer.num_tokens",
            "at least 119",
        ),
        (
            VALID.replace("[run]", "[run]\nbackend = \"tpu\""),
            "run.backend",
            "unknown variant",
        ),
    ];
    for (text, key, fragment) in cases {
        let (found_key, message) = key_error(&text);
        assert_eq!(found_key, key, "{message}");
        assert!(
            message.contains(fragment) || found_key.contains(fragment),
            "{key}: {message}"
        );
        assert!(!message.contains('\n'), "one line: {message}");
    }
}

#[test]
fn syntax_errors_give_the_line() {
    let (key, message) = key_error("[run]\ndir = \"x\"\nseed = = 3\n");
    assert!(key.starts_with("line 3"), "{key}: {message}");
    assert!(!message.contains('\n'));
}

#[test]
fn schnet_is_for_invariant_targets() {
    let schnet = VALID.replace(
        "[model.equiformer]\ndim = [8, 4]\nheads = 2\ndim_head = 4\ndepth = 1",
        "[model.schnet]\nhidden_channels = 8",
    );
    let (key, message) = key_error(&schnet);
    assert_eq!(key, "task.energy_forces.forces", "{message}");
    let energy_only = schnet.replace(
        "forces = \"direct\"",
        "forces = \"gradient\"\nforces_weight = 0.0",
    );
    let loaded = parse(&energy_only).expect("SchNet energies with gradient forces");
    assert!(!loaded.model.has_vector_output());
    let (key, _) = key_error(&schnet.replace("[model.schnet]", "[model.schnet]\nnum_filter = 3"));
    assert_eq!(key, "model.schnet.num_filter");
}

#[test]
fn missing_files_are_reported_by_key() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let path = folder.path().join("run.toml");
    let text = VALID.replace("data/md/ethanol_xtb_train.extxyz", "missing.extxyz");
    std::fs::write(&path, text).expect("write config");
    match LoadedConfig::from_file(&path) {
        Err(TrainError::Config { key, message, .. }) => {
            assert_eq!(key, "data.train[0]");
            assert!(message.contains("not found"), "{message}");
        }
        other => panic!("expected a missing-file error, got {other:?}"),
    }
    let error = LoadedConfig::from_file(&folder.path().join("absent.toml")).expect_err("no file");
    assert!(error.to_string().contains("absent.toml"));
}

#[test]
fn bundled_configurations_are_valid() {
    let folder = repository().join("configs");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&folder).expect("configs folder") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            LoadedConfig::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
            names.push(path.file_name().map(|n| n.to_string_lossy().into_owned()));
        }
    }
    names.sort();
    let expected = [
        "denoise.toml",
        "ethanol_forces.toml",
        "qm9_equiformer.toml",
        "qm9_schnet.toml",
    ];
    for name in expected {
        assert!(names.iter().flatten().any(|n| n == name), "configs/{name}");
    }
}
