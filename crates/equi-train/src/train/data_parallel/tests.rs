use std::path::Path;

use burn::backend::ndarray::NdArrayDevice;
use burn::backend::{Autodiff, NdArray};
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;

use super::*;
use crate::checkpoint::{self, Checkpoint};
use crate::config::LoadedConfig;
use crate::data::Structure;
use crate::train::tests::{load, workspace, CONFIG, SEEDED};
use crate::train::{train, StepControl, TrainOptions, TrainReport};

type B = Autodiff<NdArray>;

const CPU: NdArrayDevice = NdArrayDevice::Cpu;

/// The values of every float parameter's gradient, in the module's visiting order.
struct Collect<'a> {
    gradients: &'a GradientsParams,
    found: Vec<Vec<f64>>,
}

impl ModuleVisitor<B> for Collect<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let gradient = self.gradients.get::<NdArray, D>(param.id);
        self.found.push(gradient.map(to_f64).unwrap_or_default());
    }
}

fn gradient_values(network: &Network<B>, gradients: &GradientsParams) -> Vec<Vec<f64>> {
    let mut collect = Collect {
        gradients,
        found: Vec::new(),
    };
    network.visit(&mut collect);
    collect.found
}

/// The float parameters of `network`, in the module's visiting order.
struct Values(Vec<Vec<f64>>);

impl ModuleVisitor<B> for Values {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.0.push(to_f64(param.val()));
    }
}

/// Largest `|a - b|` relative to the largest `|b|`, per tensor.
fn worst_relative(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            assert_eq!(x.len(), y.len());
            let scale = y.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let error = x
                .iter()
                .zip(y)
                .fold(0.0f64, |m, (p, q)| m.max((p - q).abs()));
            if error == 0.0 {
                0.0
            } else {
                error / scale.max(f64::MIN_POSITIVE)
            }
        })
        .fold(0.0, f64::max)
}

const MIXED: &str = r#"
[run]
dir = "run"

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
train = ["data/md/ethanol_xtb_valid.extxyz", "data/md/aspirin_xtb_valid.extxyz"]

[training]
epochs = 1
batch_size = 3
"#;

/// Two ethanol frames (9 atoms) around an aspirin frame (21 atoms): shards of different
/// numbers of structures and atoms, so that both normalisations of the loss matter.
fn mixed_batch() -> (Network<B>, Task, HostBatch) {
    let repository = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let loaded = LoadedConfig::from_text(MIXED.into(), repository, "run.toml").expect("valid");
    let config = &loaded.config;
    let all = Task::load(&config.task, &config.data.train, &[], true).expect("md frames");
    let (ethanol, aspirin): (Vec<&Structure>, Vec<&Structure>) =
        all.iter().partition(|s| s.len() == 9);
    let chosen = [ethanol[0], aspirin[0], ethanol[1]];
    assert_eq!(chosen.map(Structure::len), [9, 21, 9]);
    let task = Task::fit(&config.task, &chosen.map(Clone::clone));
    let network = loaded.model.init::<B>(&CPU).expect("network");
    (network, task, HostBatch::new(&chosen))
}

#[test]
fn split_batches_give_the_gradients_of_the_whole_batch() {
    let (network, task, host) = mixed_batch();
    let whole = step_gradients(&network, &task, &host, &[CPU]).expect("whole batch");
    let expected = gradient_values(&network, &whole.gradients);
    assert!(expected.iter().filter(|g| !g.is_empty()).count() > 10);
    // Two shards (2 structures with 30 atoms, 1 with 9), then one structure per shard.
    for copies in [2, 3] {
        let split = step_gradients(&network, &task, &host, &vec![CPU; copies]).expect("split");
        let found = gradient_values(&network, &split.gradients);
        let error = worst_relative(&found, &expected);
        println!("{copies} shards: gradients within {error:.2e} of the whole batch's");
        // f32 sums over differently padded shards in another order: rounding only.
        assert!(
            error < 1e-5,
            "{copies} shards: gradients differ by {error:.2e}"
        );
        assert!(
            (split.loss - whole.loss).abs() < 1e-6 * whole.loss.abs(),
            "{copies} shards: loss {} vs {}",
            split.loss,
            whole.loss
        );
    }
}

fn train_with_devices(devices: &str) -> (TrainReport, Vec<f64>, Vec<Vec<f64>>) {
    let config = CONFIG
        .replace("epochs = 3", "epochs = 1")
        .replace("batch_size = 2", &format!("batch_size = 2\n{devices}"));
    let folder = workspace(&config);
    let loaded = load(folder.path());
    let mut losses = Vec::new();
    let options = TrainOptions {
        resume: false,
        quiet: true,
    };
    let report = train::<B>(&loaded, &CPU, options, &mut |event| {
        losses.push(event.loss);
        StepControl::Continue
    })
    .expect("training runs");
    let path = report.last_checkpoint.clone().expect("a checkpoint");
    let stored = Checkpoint::read(&path).expect("checkpoint");
    let network = loaded.model.init::<B>(&CPU).expect("network");
    let network = checkpoint::load_module(network, stored.model, &CPU, &path).expect("weights");
    let mut values = Values(Vec::new());
    network.visit(&mut values);
    (report, losses, values.0)
}

#[test]
fn listed_devices_train_like_the_default_device() {
    let _guard = SEEDED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let (default, default_losses, default_weights) = train_with_devices("");
    let (listed, listed_losses, listed_weights) = train_with_devices("devices = [0]");
    assert_eq!(default.steps, 4);
    assert_eq!(listed.steps, 4);
    assert_eq!(
        listed_losses, default_losses,
        "devices = [0] is the default device"
    );
    assert_eq!(listed_weights, default_weights);

    let (split, split_losses, split_weights) = train_with_devices("devices = [0, 0]");
    assert_eq!(split.steps, 4);
    for (step, (a, b)) in split_losses.iter().zip(&default_losses).enumerate() {
        assert!((a - b).abs() <= 1e-5 * b.abs(), "step {step}: {a} vs {b}");
    }
    // Four Adam steps of at most lr = 1e-3 each from the same start: rounding differences
    // of the gradients move the weights by far less than one step.
    let moved = split_weights
        .iter()
        .flatten()
        .zip(default_weights.iter().flatten())
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    assert!(moved < 1e-5, "weights differ by {moved:.2e}");
}

#[test]
fn unknown_devices_are_configuration_errors() {
    let config = CONFIG.replace("batch_size = 2", "batch_size = 2\ndevices = [0, 1]");
    let folder = workspace(&config);
    let loaded = load(folder.path());
    let options = TrainOptions {
        resume: false,
        quiet: true,
    };
    let error = train::<B>(&loaded, &CPU, options, &mut |_| StepControl::Continue)
        .expect_err("the CPU backend has one device");
    let TrainError::Config { key, message, .. } = &error else {
        panic!("expected a configuration error, got {error:?}");
    };
    assert_eq!(key, "training.devices");
    assert!(message.contains("device 1 does not exist"), "{message}");
    assert!(message.contains("one device, index 0"), "{message}");

    let empty = CONFIG.replace("batch_size = 2", "batch_size = 2\ndevices = []");
    let repository = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    match LoadedConfig::from_text(empty, repository, "run.toml") {
        Err(TrainError::Config { key, .. }) => assert_eq!(key, "training.devices"),
        other => panic!("expected a configuration error, got {other:?}"),
    }
}
