//! The learned radial function: an MLP of invariant edge features.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::silu;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// Configuration of a [`RadialMlp`].
#[derive(Config, Debug)]
pub struct RadialMlpConfig {
    /// Invariant edge features in (radial basis, edge embeddings).
    pub d_input: usize,
    /// Hidden width.
    pub d_hidden: usize,
    /// Weights out (one per path and channel).
    pub d_output: usize,
}

/// `Linear -> SiLU -> LayerNorm -> Linear -> SiLU -> LayerNorm -> Linear`,
/// as in the reference's radial network (layer norms without bias).
#[derive(Module, Debug)]
pub struct RadialMlp<B: Backend> {
    input: Linear<B>,
    norm_in: LayerNorm<B>,
    hidden: Linear<B>,
    norm_hidden: LayerNorm<B>,
    pub(crate) output: Linear<B>,
}

impl RadialMlpConfig {
    /// Build the network on `device`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> RadialMlp<B> {
        let norm = || {
            LayerNormConfig::new(self.d_hidden)
                .with_bias(false)
                .init(device)
        };
        RadialMlp {
            input: LinearConfig::new(self.d_input, self.d_hidden).init(device),
            norm_in: norm(),
            hidden: LinearConfig::new(self.d_hidden, self.d_hidden).init(device),
            norm_hidden: norm(),
            output: LinearConfig::new(self.d_hidden, self.d_output).init(device),
        }
    }
}

impl<B: Backend> RadialMlp<B> {
    /// Weights for every edge.
    ///
    /// # Shapes
    /// - `features`: `[..., d_input]`, output `[..., d_output]`
    pub fn forward<const D: usize>(&self, features: Tensor<B, D>) -> Tensor<B, D> {
        let x = self.norm_in.forward(silu(self.input.forward(features)));
        let x = self.norm_hidden.forward(silu(self.hidden.forward(x)));
        self.output.forward(x)
    }
}
