//! Channel mixing per degree, with no bias (a bias would break equivariance for l > 0).

use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};

use crate::fiber::matmul_last;

/// Configuration of an [`EquivariantLinear`].
#[derive(Config, Debug)]
pub struct EquivariantLinearConfig {
    /// Input channels per degree.
    pub dims_in: Vec<usize>,
    /// Output channels per degree; degrees missing on either side are dropped.
    pub dims_out: Vec<usize>,
    /// Start from zero weights (for residual branches that begin as identity).
    #[config(default = false)]
    pub init_zero: bool,
}

/// `y_l = x_l W_l` for each degree present in both fibers.
///
/// Weights start as standard normal over `sqrt(C_in)`, like the reference.
#[derive(Module, Debug)]
pub struct EquivariantLinear<B: Backend> {
    /// One `[C_in, C_out]` weight per degree.
    pub weights: Vec<Param<Tensor<B, 2>>>,
}

impl EquivariantLinearConfig {
    /// Build the layer on `device`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> EquivariantLinear<B> {
        let degrees = self.dims_in.len().min(self.dims_out.len());
        let weights = (0..degrees)
            .map(|l| {
                let (c_in, c_out) = (self.dims_in[l], self.dims_out[l]);
                let tensor = if self.init_zero {
                    Tensor::zeros([c_in, c_out], device)
                } else {
                    Tensor::random([c_in, c_out], Distribution::Normal(0.0, 1.0), device)
                        / (c_in.max(1) as f64).sqrt()
                };
                Param::from_tensor(tensor)
            })
            .collect();
        EquivariantLinear { weights }
    }
}

impl<B: Backend> EquivariantLinear<B> {
    /// Apply to a fiber of any rank.
    ///
    /// # Shapes
    /// - `fiber[l]`: `[..., 2l+1, C_in(l)]`
    /// - output `[l]`: `[..., 2l+1, C_out(l)]`, for the degrees both sides have
    pub fn forward<const D: usize>(&self, fiber: Vec<Tensor<B, D>>) -> Vec<Tensor<B, D>> {
        fiber
            .into_iter()
            .zip(&self.weights)
            .map(|(x, w)| matmul_last(x, w.val()))
            .collect()
    }
}
