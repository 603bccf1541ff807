//! Equivariant feed-forward block: norm, linear, gate, linear.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use so3_math::precision::positive_floor;

use super::{
    EquivariantLinear, EquivariantLinearConfig, EquivariantNorm, EquivariantNormConfig, Gate,
};

/// Configuration of a [`FeedForward`] block.
#[derive(Config, Debug)]
pub struct FeedForwardConfig {
    /// Channels per degree of the input.
    pub dims: Vec<usize>,
    /// Channels per degree of the output (default: same as input).
    #[config(default = "None")]
    pub dims_out: Option<Vec<usize>>,
    /// Hidden width as a multiple of the input width, per degree.
    #[config(default = 4)]
    pub mult: usize,
    /// Feed the norms of the higher degrees into the degree-0 projection.
    #[config(default = false)]
    pub include_htype_norms: bool,
    /// Start the output projection at zero (the block starts as identity in a residual).
    #[config(default = true)]
    pub init_out_zero: bool,
}

/// Pre-norm, project in (degree 0 also produces the gates), gate, project out.
#[derive(Module, Debug)]
pub struct FeedForward<B: Backend> {
    prenorm: EquivariantNorm<B>,
    project_in: EquivariantLinear<B>,
    gate: Gate,
    project_out: EquivariantLinear<B>,
    include_htype_norms: bool,
}

impl FeedForwardConfig {
    /// Build the block on `device`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> FeedForward<B> {
        let hidden: Vec<usize> = self.dims.iter().map(|d| d * self.mult).collect();
        let gate = Gate::new(hidden[1..].to_vec());
        let mut hidden_in = hidden.clone();
        hidden_in[0] += gate.gate_channels();
        let mut dims_in = self.dims.clone();
        if self.include_htype_norms {
            dims_in[0] = self.dims.iter().sum();
        }
        FeedForward {
            prenorm: EquivariantNormConfig::new(self.dims.clone()).init(device),
            project_in: EquivariantLinearConfig::new(dims_in, hidden_in).init(device),
            gate,
            project_out: EquivariantLinearConfig::new(
                hidden,
                self.dims_out.clone().unwrap_or(self.dims.clone()),
            )
            .with_init_zero(self.init_out_zero)
            .init(device),
            include_htype_norms: self.include_htype_norms,
        }
    }
}

impl<B: Backend> FeedForward<B> {
    /// Apply the block (without the residual).
    ///
    /// # Shapes
    /// - `fiber[l]`: `[..., 2l+1, C_l]`, output `[..., 2l+1, C_out(l)]`
    pub fn forward<const D: usize>(&self, fiber: Vec<Tensor<B, D>>) -> Vec<Tensor<B, D>> {
        let mut x = self.prenorm.forward(fiber);
        if self.include_htype_norms {
            let mut scalars = vec![x[0].clone()];
            for higher in &x[1..] {
                // Channel norms are invariant: sqrt of the sum over m, kept finite at zero.
                scalars.push(
                    higher
                        .clone()
                        .square()
                        .sum_dim(D - 2)
                        .clamp_min(positive_floor(1e-24, higher.dtype()))
                        .sqrt(),
                );
            }
            x[0] = Tensor::cat(scalars, D - 1);
        }
        let x = self.project_in.forward(x);
        let x = self.gate.forward(x);
        self.project_out.forward(x)
    }
}
