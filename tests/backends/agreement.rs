//! Backend agreement and per-backend equivariance, for the README model and the
//! same model with degrees up to 3.
//!
//! Tolerances, in f32 (unit roundoff 6e-8), relative to the largest entry of the
//! reference tensor:
//! - outputs agree to [`OUTPUT_TOLERANCE`], DESIGN's whole-model f32 budget: the backends
//!   sum in different orders and have their own `exp`, `sqrt` and trigonometry, and each
//!   f32 implementation is itself some 1e-5 away from the exact (f64) outputs (measured:
//!   ndarray 6e-6 and 1e-5, Mesa's software Vulkan driver 2e-5, on the two models);
//! - gradients agree to [`GRADIENT_TOLERANCE`] per tensor (each parameter's, and the
//!   coordinates'): a small tensor has no large entries to hide rounding behind, and the
//!   backward pass goes through the softmax and norm divisions twice; measured against
//!   f64, ndarray's own f32 gradients are off by up to 1.7e-4 and the software Vulkan
//!   driver's by up to 2.8e-4, so two f32 backends may differ by their sum;
//! - every backend is equivariant to DESIGN's f32 budget on its own.

use burn::backend::ndarray::NdArrayDevice;
use burn::backend::{Autodiff, NdArray};
use burn::tensor::backend::Backend;
use equi_nn::EquiformerConfig;
use so3_math::{EquivarianceChecker, Irreps};

use super::harness::{
    degree_three, forward_seconds, gradients, load, outputs, readme, reference_weights,
    relative_error, Graphs,
};

/// Outputs of a backend against the CPU reference, relative to the largest output.
#[cfg_attr(not(any(feature = "wgpu", feature = "cuda")), allow(dead_code))]
pub const OUTPUT_TOLERANCE: f64 = 1e-4;
/// Gradients of a backend against the CPU reference, relative per tensor.
#[cfg_attr(not(any(feature = "wgpu", feature = "cuda")), allow(dead_code))]
pub const GRADIENT_TOLERANCE: f64 = 1e-3;
/// DESIGN's f32 equivariance budget for a whole model of depth <= 6.
pub const EQUIVARIANCE_TOLERANCE: f64 = 1e-4;

/// The configurations every backend is checked on, with a name and a seed.
pub fn configurations() -> [(&'static str, EquiformerConfig, u64); 2] {
    [
        ("readme", readme(), 7),
        ("degrees 0..=3", degree_three(), 8),
    ]
}

/// Worst errors of one backend against the reference on one configuration.
#[derive(Clone, Copy, Debug)]
pub struct Agreement {
    pub type0: f64,
    pub type1: f64,
    pub parameter_gradients: f64,
    pub coordinate_gradients: f64,
    /// Median forward time on the backend, seconds.
    pub seconds: f64,
    /// Median forward time on the CPU reference, seconds.
    pub reference_seconds: f64,
}

/// Loads the recorded reference weights of `config` on the CPU backend and on `B`
/// and compares outputs and gradients.
pub fn agreement<B: Backend>(
    config: &EquiformerConfig,
    seed: u64,
    device: &B::Device,
) -> Agreement {
    let weights = reference_weights(config, seed);
    let graphs = Graphs::new(24, seed);
    let cpu = NdArrayDevice::Cpu;
    let reference_model = load::<NdArray>(config, &weights, &cpu);
    let reference = outputs(&reference_model, &graphs, &cpu);
    let reference_gradients = gradients(
        &load::<Autodiff<NdArray>>(config, &weights, &cpu),
        &graphs,
        &cpu,
    );
    let model = load::<B>(config, &weights, device);
    let got = outputs(&model, &graphs, device);
    let got_gradients = gradients(
        &load::<Autodiff<B>>(config, &weights, device),
        &graphs,
        device,
    );
    assert_eq!(
        got_gradients.parameters.len(),
        reference_gradients.parameters.len(),
        "the same parameters on both backends"
    );
    let parameter_gradients = got_gradients
        .parameters
        .iter()
        .zip(&reference_gradients.parameters)
        .map(|(a, b)| relative_error(a, b))
        .fold(0.0, f64::max);
    Agreement {
        type0: relative_error(&got.type0, &reference.type0),
        type1: relative_error(&got.type1, &reference.type1),
        parameter_gradients,
        coordinate_gradients: relative_error(&got_gradients.coords, &reference_gradients.coords),
        seconds: forward_seconds(&model, &graphs, device, 3),
        reference_seconds: forward_seconds(&reference_model, &graphs, &cpu, 3),
    }
}

/// Asserts that backend `B` (named `name` in messages) agrees with the CPU
/// reference on every configuration; prints the measured errors.
pub fn assert_agreement<B: Backend>(
    device: &B::Device,
    name: &str,
    output_tolerance: f64,
    gradient_tolerance: f64,
) {
    for (config_name, config, seed) in configurations() {
        let a = agreement::<B>(&config, seed, device);
        println!(
            "{name} vs ndarray, {config_name}: type0 {:.2e}, type1 {:.2e}, parameter gradients \
             {:.2e}, coordinate gradients {:.2e}; forward {:.1} ms (ndarray {:.1} ms)",
            a.type0,
            a.type1,
            a.parameter_gradients,
            a.coordinate_gradients,
            1e3 * a.seconds,
            1e3 * a.reference_seconds,
        );
        assert!(
            a.type0 <= output_tolerance && a.type1 <= output_tolerance,
            "{name}, {config_name}: outputs differ from the CPU reference: {a:?}"
        );
        assert!(
            a.parameter_gradients <= gradient_tolerance
                && a.coordinate_gradients <= gradient_tolerance,
            "{name}, {config_name}: gradients differ from the CPU reference: {a:?}"
        );
    }
}

/// The worst relative equivariance error of the recorded model `config` on
/// backend `B`: rotations and translations of the real atoms (the padded slots
/// keep their garbage positions), outputs `type0` and `type1` per real atom.
pub fn equivariance_error<B: Backend>(
    config: &EquiformerConfig,
    seed: u64,
    device: &B::Device,
) -> f64 {
    let weights = reference_weights(config, seed);
    let model = load::<B>(config, &weights, device);
    let graphs = Graphs::new(24, seed);
    let real: Vec<usize> = (0..graphs.mask.len()).filter(|&i| graphs.mask[i]).collect();
    let run = |points: &[[f64; 3]], _: &[f64]| {
        let out = outputs(&model, &graphs.with_real_points(points), device);
        // Rows of "1x0 + 1x1", degree 1 in (y, z, x) order as the checker rotates it.
        real.iter()
            .flat_map(|&i| {
                let v = &out.type1[3 * i..3 * i + 3];
                [out.type0[i], v[1], v[2], v[0]]
            })
            .collect()
    };
    EquivarianceChecker::default()
        .with_trials(3)
        .with_seed(seed)
        .check(
            &graphs.real_points(),
            &[],
            &Irreps::default(),
            &Irreps::from_channels(&[1, 1]),
            run,
        )
        .expect("layouts fit")
        .max_relative_error
}

/// Asserts DESIGN's f32 equivariance budget on backend `B` for every configuration.
pub fn assert_equivariant<B: Backend>(device: &B::Device, name: &str) {
    for (config_name, config, seed) in configurations() {
        let error = equivariance_error::<B>(&config, seed, device);
        println!("{name}, {config_name}: equivariance error {error:.2e}");
        assert!(
            error < EQUIVARIANCE_TOLERANCE,
            "{name}, {config_name}: equivariance error {error:.2e}"
        );
    }
}
