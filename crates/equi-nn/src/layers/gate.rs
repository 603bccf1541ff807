//! Gate non-linearity: SiLU on scalars, sigmoid gates from scalars on higher degrees.

use crate::layers::activation::{sigmoid, silu};
use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// Splits the degree-0 channels into `[C_1, C_2, ..., rest]`: the first
/// groups gate degrees 1, 2, ... (sigmoid, one gate per channel, shared over
/// `m`), the rest pass through SiLU and form the degree-0 output.
#[derive(Module, Clone, Debug)]
pub struct Gate {
    /// Channels of each degree `l >= 1` (the number of gates it takes).
    gated_dims: Vec<usize>,
}

impl Gate {
    /// A gate for higher degrees with `gated_dims[l - 1]` channels of degree `l`.
    pub fn new(gated_dims: Vec<usize>) -> Self {
        Gate { gated_dims }
    }

    /// Degree-0 channels the input needs on top of `scalars_out` outputs.
    pub fn gate_channels(&self) -> usize {
        self.gated_dims.iter().sum()
    }

    /// Apply the gate.
    ///
    /// # Shapes
    /// - `fiber[0]`: `[..., 1, sum(C_l, l >= 1) + C_0_out]`
    /// - `fiber[l]`: `[..., 2l+1, C_l]` for `l >= 1`
    /// - output: `[..., 1, C_0_out]` and the gated higher degrees
    pub fn forward<B: Backend, const D: usize>(
        &self,
        fiber: Vec<Tensor<B, D>>,
    ) -> Vec<Tensor<B, D>> {
        let mut degrees = fiber.into_iter();
        let scalars = degrees.next().expect("a fiber has degree 0");
        let total = scalars.dims()[D - 1];
        let mut offset = 0;
        let mut gated = Vec::with_capacity(self.gated_dims.len() + 1);
        for (x, &width) in degrees.zip(&self.gated_dims) {
            let gate = sigmoid(scalars.clone().narrow(D - 1, offset, width)); // [..., 1, C_l]
            gated.push(x * gate);
            offset += width;
        }
        let mut out = vec![silu(scalars.narrow(D - 1, offset, total - offset))];
        out.extend(gated);
        out
    }
}
