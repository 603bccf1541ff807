//! Equivariant RMS norm: each degree is scaled by the root mean square of its channel norms.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use crate::fiber::broadcast_last;
use so3_math::precision::positive_floor;

/// Configuration of an [`EquivariantNorm`].
#[derive(Config, Debug)]
pub struct EquivariantNormConfig {
    /// Channels per degree.
    pub dims: Vec<usize>,
    /// Floor of the RMS, so an all-zero feature stays zero.
    #[config(default = 1e-12)]
    pub epsilon: f64,
}

/// `x_l / rms_l * g_l` with `rms_l = sqrt(mean_c |x_lc|^2)` and a learned
/// per-channel scale `g_l` (no centring, no bias: both would break
/// equivariance for `l > 0`).
#[derive(Module, Debug)]
pub struct EquivariantNorm<B: Backend> {
    /// One `[C_l]` scale per degree.
    pub scales: Vec<Param<Tensor<B, 1>>>,
    epsilon: f64,
}

impl EquivariantNormConfig {
    /// Build the layer on `device`, scales at one.
    pub fn init<B: Backend>(&self, device: &B::Device) -> EquivariantNorm<B> {
        EquivariantNorm {
            scales: self
                .dims
                .iter()
                .map(|&c| Param::from_tensor(Tensor::ones([c], device)))
                .collect(),
            epsilon: self.epsilon,
        }
    }
}

impl<B: Backend> EquivariantNorm<B> {
    /// Normalise every degree of a fiber.
    ///
    /// # Shapes
    /// - `fiber[l]`: `[..., 2l+1, C_l]`, output the same
    pub fn forward<const D: usize>(&self, fiber: Vec<Tensor<B, D>>) -> Vec<Tensor<B, D>> {
        fiber
            .into_iter()
            .zip(&self.scales)
            .map(|(x, scale)| {
                // Sum over components and channels at once (one contiguous
                // reduction), then divide by the channels: mean_c |x_c|^2.
                let mut dims = x.dims();
                let channels = dims[D - 1];
                dims[D - 2] = 1;
                dims[D - 1] = 1;
                let mut flat = x.dims();
                flat[D - 2] = 1;
                flat[D - 1] = x.dims()[D - 2] * channels;
                let mean_square = x
                    .clone()
                    .square()
                    .reshape(flat)
                    .sum_dim(D - 1)
                    .reshape(dims)
                    / channels as f64; // [..., 1, 1]
                let floor = positive_floor(self.epsilon * self.epsilon, x.dtype());
                let rms = mean_square.clamp_min(floor).sqrt();
                x / rms * broadcast_last::<B, D>(scale.val())
            })
            .collect()
    }
}
