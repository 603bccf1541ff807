//! The same Equiformer on every backend compiled into the build: weights saved once
//! on the CPU reference (ndarray, f32) and loaded on each backend give the same
//! outputs and gradients, and every backend is equivariant on its own.
//!
//! Float32 only, in its own process (Burn 0.21's ndarray device fixes one float
//! type per process). Every device is named explicitly: ndarray's
//! `NdArrayDevice::Cpu`, `WgpuDevice::DefaultDevice` (a GPU, or Mesa's software
//! Vulkan driver on machines without one) and `CudaDevice::new(0)`.
//!
//! `cargo test --test backends` checks the CPU backend against itself (the
//! record round trip is exact); `--features wgpu` or `--features cuda` adds the
//! GPU backends, `--features wgpu` also the half-precision measurements.

#[allow(dead_code)]
mod support;

mod backends {
    pub mod agreement;
    #[cfg(feature = "wgpu")]
    pub mod half_precision;
    pub mod harness;
}

use backends::agreement::{assert_agreement, assert_equivariant};
use burn::backend::ndarray::NdArrayDevice;

/// The CPU backend against itself: a record round trip changes nothing, and the
/// model is equivariant.
#[test]
fn ndarray_loads_the_reference_exactly() {
    assert_agreement::<burn::backend::NdArray>(&NdArrayDevice::Cpu, "ndarray", 0.0, 0.0);
    assert_equivariant::<burn::backend::NdArray>(&NdArrayDevice::Cpu, "ndarray");
}

#[cfg(feature = "wgpu")]
mod wgpu {
    use burn::backend::wgpu::WgpuDevice;
    use burn::backend::Wgpu;

    use crate::backends::agreement::{
        assert_agreement, assert_equivariant, GRADIENT_TOLERANCE, OUTPUT_TOLERANCE,
    };

    #[test]
    fn wgpu_agrees_with_the_cpu_reference() {
        let device = WgpuDevice::DefaultDevice;
        assert_agreement::<Wgpu>(&device, "wgpu", OUTPUT_TOLERANCE, GRADIENT_TOLERANCE);
    }

    #[test]
    fn wgpu_is_equivariant() {
        assert_equivariant::<Wgpu>(&WgpuDevice::DefaultDevice, "wgpu");
    }
}

#[cfg(feature = "cuda")]
mod cuda {
    use burn::backend::cuda::CudaDevice;
    use burn::backend::Cuda;

    use crate::backends::agreement::{
        assert_agreement, assert_equivariant, GRADIENT_TOLERANCE, OUTPUT_TOLERANCE,
    };

    #[test]
    fn cuda_agrees_with_the_cpu_reference() {
        let device = CudaDevice::new(0);
        assert_agreement::<Cuda>(&device, "cuda", OUTPUT_TOLERANCE, GRADIENT_TOLERANCE);
    }

    #[test]
    fn cuda_is_equivariant() {
        assert_equivariant::<Cuda>(&CudaDevice::new(0), "cuda");
    }
}
