//! Global linear attention over all nodes on the invariant (degree-0) features.
//!
//! Each head scores query `q_i` against key `k_j` with the second-order
//! Taylor expansion of the exponential, `1 + q.k + (q.k)^2 / 2`, which is
//! positive for every `q.k` and factorises through the feature map
//! `phi(x) = [1, x, vec(x x^T) / sqrt 2]`, so the cost is linear in the number
//! of nodes: `out_i = phi(q_i) S / phi(q_i) z` with `S = sum_j phi(k_j) v_j^T`
//! and `z = sum_j phi(k_j)` over the real nodes `j`.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::sigmoid;
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Tensor};

use so3_math::precision::positive_floor;

/// Configuration of a [`LinearAttention`].
#[derive(Config, Debug)]
pub struct LinearAttentionConfig {
    /// Scalar channels in.
    pub dim: usize,
    /// Number of heads.
    pub heads: usize,
    /// Channels per head.
    #[config(default = 8)]
    pub dim_head: usize,
    /// Gate each head's values by a sigmoid of the input.
    #[config(default = false)]
    pub gate_value_heads: bool,
}

/// Linear-cost attention of every node to every real node; see the [module docs](self).
#[derive(Module, Debug)]
pub struct LinearAttention<B: Backend> {
    to_qkv: Linear<B>,
    value_gates: Option<Linear<B>>,
    heads: usize,
    dim_head: usize,
}

impl LinearAttentionConfig {
    /// Build the layer on `device`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> LinearAttention<B> {
        let inner = self.heads * self.dim_head;
        LinearAttention {
            to_qkv: LinearConfig::new(self.dim, 3 * inner)
                .with_bias(false)
                .init(device),
            value_gates: self
                .gate_value_heads
                .then(|| LinearConfig::new(self.dim, self.heads).init(device)),
            heads: self.heads,
            dim_head: self.dim_head,
        }
    }
}

/// `[1, x, vec(x x^T) / sqrt 2]` along the last axis: `[..., d] -> [..., 1 + d + d^2]`.
fn taylor_features<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [b, h, n, d] = x.dims();
    let outer = (x.clone().unsqueeze_dim::<5>(4) * x.clone().unsqueeze_dim::<5>(3)).reshape([
        b,
        h,
        n,
        d * d,
    ]);
    Tensor::cat(
        vec![
            x.ones_like().narrow(3, 0, 1),
            x,
            outer * std::f64::consts::FRAC_1_SQRT_2,
        ],
        3,
    )
}

impl<B: Backend> LinearAttention<B> {
    /// Output width: `heads * dim_head`.
    pub fn output_dim(&self) -> usize {
        self.heads * self.dim_head
    }

    /// Attend from every node to every real node.
    ///
    /// # Shapes
    /// - `x`: `[B, N, dim]`, `mask`: `[B, N]`
    /// - output: `[B, N, heads * dim_head]`
    pub fn forward(&self, x: Tensor<B, 3>, mask: Tensor<B, 2, Bool>) -> Tensor<B, 3> {
        let [batch, n, _] = x.dims();
        let (h, d) = (self.heads, self.dim_head);
        let split = |t: Tensor<B, 3>| t.reshape([batch, n, h, d]).swap_dims(1, 2); // [B, H, N, D]
        let qkv = self.to_qkv.forward(x.clone()).chunk(3, 2);
        let scale = (d as f64).powf(-0.25);
        let q = taylor_features(split(qkv[0].clone()) * scale); // [B, H, N, F]
        let k = taylor_features(split(qkv[1].clone()) * scale); // [B, H, N, F]
        let mut v = split(qkv[2].clone()); // [B, H, N, D]
        if let Some(gates) = &self.value_gates {
            let gate = sigmoid(gates.forward(x))
                .swap_dims(1, 2)
                .unsqueeze_dim::<4>(3); // [B, H, N, 1]
            v = v * gate;
        }
        let real = mask.float().reshape([batch, 1, n, 1]); // [B, 1, N, 1]
        let k = k * real;
        let summary = k.clone().swap_dims(2, 3).matmul(v); // [B, H, F, D]
        let normaliser = k.sum_dim(2); // [B, H, 1, F]
        let numerator = q.clone().matmul(summary); // [B, H, N, D]
        let denominator = (q * normaliser).sum_dim(3); // [B, H, N, 1]
        let floor = positive_floor(1e-12, denominator.dtype());
        let denominator = denominator.clamp_min(floor);
        (numerator / denominator)
            .swap_dims(1, 2)
            .reshape([batch, n, h * d])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use burn::tensor::{Distribution, TensorData};

    type B = NdArray<f64>;

    /// The factorised form equals the explicit `softmax-like` weighting `1 + s + s^2/2`.
    #[test]
    fn matches_the_quadratic_form_and_ignores_padding() {
        let device = Default::default();
        <B as burn::tensor::backend::Backend>::seed(&device, 7);
        let layer = LinearAttentionConfig::new(6, 2)
            .with_dim_head(3)
            .init::<B>(&device);
        let x = Tensor::<B, 3>::random([1, 5, 6], Distribution::Normal(0.0, 1.0), &device);
        let mask = Tensor::<B, 2, Bool>::from_data(
            TensorData::new(vec![true, true, true, true, false], [1, 5]),
            &device,
        );
        let out = layer.forward(x.clone(), mask.clone());
        let qkv = layer.to_qkv.forward(x.clone()).chunk(3, 2);
        let scale = 3f64.powf(-0.25);
        for head in 0..2 {
            let q = qkv[0].clone().narrow(2, head * 3, 3) * scale;
            let k = qkv[1].clone().narrow(2, head * 3, 3) * scale;
            let v = qkv[2].clone().narrow(2, head * 3, 3);
            let s = q.matmul(k.swap_dims(1, 2)); // [1, 5, 5]
            let w = (s.clone() + s.square() * 0.5 + 1.0).narrow(2, 0, 4); // real keys only
            let expected = w.clone().matmul(v.narrow(1, 0, 4)) / w.sum_dim(2);
            let got = out.clone().narrow(2, head * 3, 3);
            let scale: f64 = expected.clone().abs().max().into_scalar();
            let error: f64 = (got - expected).abs().max().into_scalar();
            assert!(error < 1e-12 * scale.max(1.0), "head {head}: {error}");
        }
        // Changing the padded node's features changes nothing for the real nodes.
        let other = x
            .clone()
            .slice_assign([0..1, 4..5, 0..6], Tensor::ones([1, 1, 6], &device) * 9.0);
        let moved = layer.forward(other, mask);
        let error: f64 = (moved.narrow(1, 0, 4) - out.narrow(1, 0, 4))
            .abs()
            .max()
            .into_scalar();
        assert!(error < 1e-12);
    }
}
