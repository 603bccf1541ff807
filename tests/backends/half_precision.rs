//! Half precision on the WGPU backend: the README model in f16 (`Wgpu<f16>`), loaded
//! from the f32 reference weights, against the CPU reference (outputs, and the gradients
//! of `Autodiff<Wgpu<f16>>`: training in f16), and its equivariance error.
//!
//! Burn 0.21 fixes the float type of a device at the first tensor a process creates on
//! it, for the whole process, so `Wgpu<f16>` cannot share a process with the f32 tests
//! of the same device: [`half_precision_on_wgpu`] runs the measurement in a child
//! process of this test binary. A device whose WGPU adapter lacks the `SHADER_F16`
//! feature reports f16 as unsupported and is skipped, with a message; bf16 is not
//! available through WGPU (WGSL has no bf16 type).

use std::process::Command;

use burn::backend::wgpu::WgpuDevice;
use burn::backend::Wgpu;
use burn::tensor::backend::Backend;
use burn::tensor::{f16, DType};

use super::agreement::{agreement, equivariance_error};
use super::harness::readme;

/// Set in the child process that measures.
const CHILD: &str = "EQUIFORMER_HALF_PRECISION_CHILD";

/// f16 keeps 11 significant bits (unit roundoff 4.9e-4, 8000 times f32's). In f32 the README
/// model ends some 300 unit roundoffs from the exact outputs (2e-5), so f16 lands at a few
/// percent: measured on Mesa's software Vulkan driver, 2.6e-2 (type 0) and 2.3e-2 (type 1)
/// from the f32 outputs, 3.3e-2 equivariance error; its gradients (training in f16) are
/// printed, not bounded: 0.42 for the worst parameter tensor, 0.12 for the coordinates.
/// The bound is what f16 can promise, an order of magnitude under the outputs themselves.
const HALF_TOLERANCE: f64 = 0.1;

#[test]
fn half_precision_on_wgpu() {
    let exe = std::env::current_exe().expect("the test binary");
    let output = Command::new(exe)
        .args([
            "--exact",
            "backends::half_precision::measure_in_this_process",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    for line in stdout.lines().filter(|l| l.starts_with("wgpu")) {
        println!("{line}");
    }
    assert!(
        output.status.success(),
        "the half-precision measurement failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("1 passed"),
        "the measurement did not run:\n{stdout}"
    );
}

#[test]
#[ignore = "run by half_precision_on_wgpu, in a process of its own"]
fn measure_in_this_process() {
    if std::env::var_os(CHILD).is_none() {
        println!("skipped: run it through half_precision_on_wgpu");
        return;
    }
    let device = WgpuDevice::DefaultDevice;
    for dtype in [DType::F16, DType::BF16, DType::F64] {
        println!(
            "wgpu adapter supports {dtype:?}: {}",
            Wgpu::<f32>::supports_dtype(&device, dtype)
        );
    }
    if !Wgpu::<f32>::supports_dtype(&device, DType::F16) {
        println!("wgpu f16: skipped, the adapter lacks the SHADER_F16 feature");
        return;
    }
    let config = readme();
    let a = agreement::<Wgpu<f16>>(&config, 7, &device);
    println!("wgpu f16 vs ndarray f32, readme: {a:?}");
    let equivariance = equivariance_error::<Wgpu<f16>>(&config, 7, &device);
    println!("wgpu f16, readme: equivariance error {equivariance:.2e}");
    assert!(
        a.type0 < HALF_TOLERANCE && a.type1 < HALF_TOLERANCE,
        "{a:?}"
    );
    assert!(equivariance < HALF_TOLERANCE, "{equivariance:.2e}");
}
