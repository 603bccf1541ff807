//! Distance expansion, continuous-filter convolution and interaction block.

use burn::module::{Initializer, Module};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::{backend::Backend, Int, Tensor};

use super::activation::shifted_softplus;
use super::graph::{gather_neighbors, NeighborList};

/// Linear layer with Xavier-uniform weights and, if present, a zero bias.
pub(crate) fn xavier_linear<B: Backend>(
    d_input: usize,
    d_output: usize,
    bias: bool,
    device: &B::Device,
) -> Linear<B> {
    let mut linear = LinearConfig::new(d_input, d_output)
        .with_bias(bias)
        .with_initializer(Initializer::XavierUniform { gain: 1.0 })
        .init(device);
    linear.bias = linear
        .bias
        .map(|_| Initializer::Zeros.init([d_output], device));
    linear
}

/// Expands distances on `num_gaussians` Gaussians `exp(γ (d - μ_g)^2)` with
/// centres `μ_g` evenly spaced from 0 to `cutoff` and `γ = -0.5 / Δ^2`,
/// `Δ` being the spacing between centres.
///
/// The centres are fixed (not trained) and rebuilt from the two fields.
#[derive(Module, Debug, Clone)]
pub struct GaussianSmearing {
    /// Position of the last centre (the first one is at zero).
    pub cutoff: f64,
    /// Number of centres; at least 2.
    pub num_gaussians: usize,
}

impl GaussianSmearing {
    /// Evaluates every Gaussian at every distance.
    ///
    /// # Shapes
    ///
    /// - distances: `[B, N, K]`
    /// - output: `[B, N, K, num_gaussians]`
    pub fn forward<B: Backend>(&self, distances: Tensor<B, 3>) -> Tensor<B, 4> {
        let spacing = self.cutoff / (self.num_gaussians - 1) as f64;
        let coefficient = -0.5 / (spacing * spacing);
        let centres =
            Tensor::<B, 1, Int>::arange(0..self.num_gaussians as i64, &distances.device())
                .float()
                .mul_scalar(spacing)
                .reshape([1, 1, 1, self.num_gaussians]);
        let offsets = distances.unsqueeze_dim::<4>(3) - centres; // [B, N, K, G]
        offsets.square().mul_scalar(coefficient).exp()
    }
}

/// Cosine cutoff `0.5 (cos(π d / cutoff) + 1)` for `d < cutoff`, zero beyond.
///
/// # Shapes
///
/// - distances: `[..., any]`
/// - output: same shape as `distances`
pub fn cosine_cutoff<B: Backend, const D: usize>(
    distances: Tensor<B, D>,
    cutoff: f64,
) -> Tensor<B, D> {
    let beyond = distances.clone().greater_equal_elem(cutoff);
    let envelope = distances
        .mul_scalar(core::f64::consts::PI / cutoff)
        .cos()
        .add_scalar(1.0)
        .mul_scalar(0.5);
    envelope.mask_fill(beyond, 0.0)
}

/// Filter-generating network: `Linear -> shifted softplus -> Linear` applied
/// to the Gaussian expansion of each edge distance.
#[derive(Module, Debug)]
pub struct FilterNetwork<B: Backend> {
    /// `num_gaussians -> num_filters`.
    pub lin1: Linear<B>,
    /// `num_filters -> num_filters`.
    pub lin2: Linear<B>,
}

impl<B: Backend> FilterNetwork<B> {
    /// Creates the network with Xavier-uniform weights and zero biases.
    pub fn new(num_gaussians: usize, num_filters: usize, device: &B::Device) -> Self {
        Self {
            lin1: xavier_linear(num_gaussians, num_filters, true, device),
            lin2: xavier_linear(num_filters, num_filters, true, device),
        }
    }

    /// Computes one filter per edge.
    ///
    /// # Shapes
    ///
    /// - expansion: `[B, N, K, num_gaussians]`
    /// - output: `[B, N, K, num_filters]`
    pub fn forward(&self, expansion: Tensor<B, 4>) -> Tensor<B, 4> {
        self.lin2
            .forward(shifted_softplus(self.lin1.forward(expansion)))
    }
}

/// Continuous-filter convolution
/// `x_i' = lin2( Σ_j lin1(x_j) ⊙ W(d_ij) · C(d_ij) )` over the incoming edges
/// `j -> i`, where `W` is the [`FilterNetwork`] and `C` the [`cosine_cutoff`].
#[derive(Module, Debug)]
pub struct CfConv<B: Backend> {
    /// `hidden_channels -> num_filters`, without bias.
    pub lin1: Linear<B>,
    /// Generates the edge filters.
    pub filter: FilterNetwork<B>,
    /// `num_filters -> hidden_channels`.
    pub lin2: Linear<B>,
    /// Radius beyond which filters vanish.
    pub cutoff: f64,
}

impl<B: Backend> CfConv<B> {
    /// Creates the convolution with Xavier-uniform weights and zero biases.
    pub fn new(
        hidden_channels: usize,
        num_gaussians: usize,
        num_filters: usize,
        cutoff: f64,
        device: &B::Device,
    ) -> Self {
        Self {
            lin1: xavier_linear(hidden_channels, num_filters, false, device),
            filter: FilterNetwork::new(num_gaussians, num_filters, device),
            lin2: xavier_linear(num_filters, hidden_channels, true, device),
            cutoff,
        }
    }

    /// Convolves node features over the neighbour lists.
    ///
    /// # Shapes
    ///
    /// - features: `[B, N, hidden_channels]`
    /// - graph: tensors `[B, N, K]`
    /// - expansion: `[B, N, K, num_gaussians]`, the Gaussian expansion of `graph.distances`
    /// - output: `[B, N, hidden_channels]`
    pub fn forward(
        &self,
        features: Tensor<B, 3>,
        graph: &NeighborList<B>,
        expansion: Tensor<B, 4>,
    ) -> Tensor<B, 3> {
        let envelope = cosine_cutoff(graph.distances.clone(), self.cutoff)
            .mask_fill(graph.edge_mask.clone().bool_not(), 0.0)
            .unsqueeze_dim::<4>(3); // [B, N, K, 1]
        let filters = self.filter.forward(expansion) * envelope; // [B, N, K, F]
        let projected = self.lin1.forward(features); // [B, N, F]
        let messages = gather_neighbors(projected, graph.neighbors.clone()) * filters; // [B, N, K, F]
        let aggregated: Tensor<B, 3> = messages.sum_dim(2).squeeze_dim(2); // [B, N, F]
        self.lin2.forward(aggregated)
    }
}

/// SchNet interaction block: `CfConv -> shifted softplus -> dropout -> Linear`.
///
/// Its output is the residual update added to the node features.
#[derive(Module, Debug)]
pub struct InteractionBlock<B: Backend> {
    /// Continuous-filter convolution.
    pub conv: CfConv<B>,
    /// Dropout after the activation (active only on autodiff backends).
    pub dropout: Dropout,
    /// `hidden_channels -> hidden_channels`.
    pub lin: Linear<B>,
}

impl<B: Backend> InteractionBlock<B> {
    /// Creates the block with Xavier-uniform weights and zero biases.
    ///
    /// # Panics
    ///
    /// If `dropout` is outside `[0, 1]`.
    pub fn new(
        hidden_channels: usize,
        num_gaussians: usize,
        num_filters: usize,
        cutoff: f64,
        dropout: f64,
        device: &B::Device,
    ) -> Self {
        Self {
            conv: CfConv::new(hidden_channels, num_gaussians, num_filters, cutoff, device),
            dropout: DropoutConfig::new(dropout).init(),
            lin: xavier_linear(hidden_channels, hidden_channels, true, device),
        }
    }

    /// Computes the residual update of the node features.
    ///
    /// # Shapes
    ///
    /// - features: `[B, N, hidden_channels]`
    /// - graph: tensors `[B, N, K]`
    /// - expansion: `[B, N, K, num_gaussians]`
    /// - output: `[B, N, hidden_channels]`
    pub fn forward(
        &self,
        features: Tensor<B, 3>,
        graph: &NeighborList<B>,
        expansion: Tensor<B, 4>,
    ) -> Tensor<B, 3> {
        let convolved = self.conv.forward(features, graph, expansion);
        self.lin
            .forward(self.dropout.forward(shifted_softplus(convolved)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    type TestBackend = NdArray<f64>;

    #[test]
    fn gaussians_peak_at_evenly_spaced_centres() {
        let device = Default::default();
        let smearing = GaussianSmearing {
            cutoff: 5.0,
            num_gaussians: 6,
        };
        let distances = Tensor::<TestBackend, 3>::from_data([[[2.0, 1.5]]], &device);
        let values: Vec<f64> = smearing
            .forward(distances)
            .to_data()
            .iter::<f64>()
            .collect();
        // Centres 0, 1, ..., 5, coefficient -0.5.
        for (g, value) in values[..6].iter().enumerate() {
            let expected = (-0.5 * (2.0 - g as f64).powi(2)).exp();
            assert!((value - expected).abs() < 1e-15);
        }
        assert!((values[6 + 1] - (-0.125f64).exp()).abs() < 1e-15);
    }

    #[test]
    fn cosine_cutoff_is_smooth_and_vanishes_beyond() {
        let device = Default::default();
        let distances = Tensor::<TestBackend, 1>::from_data([0.0, 2.5, 5.0, 7.0], &device);
        let values: Vec<f64> = cosine_cutoff(distances, 5.0)
            .to_data()
            .iter::<f64>()
            .collect();
        assert!((values[0] - 1.0).abs() < 1e-15);
        assert!((values[1] - 0.5).abs() < 1e-15);
        assert_eq!(values[2], 0.0);
        assert_eq!(values[3], 0.0);
    }

    #[test]
    fn linear_layers_have_zero_bias_and_bounded_weights() {
        let device = Default::default();
        let linear = xavier_linear::<TestBackend>(50, 128, true, &device);
        let bias: Vec<f64> = linear
            .bias
            .expect("bias requested")
            .val()
            .to_data()
            .iter::<f64>()
            .collect();
        assert!(bias.iter().all(|b| *b == 0.0));
        let bound = (6.0f64 / (50.0 + 128.0)).sqrt();
        let weights: Vec<f64> = linear.weight.val().to_data().iter::<f64>().collect();
        assert!(weights.iter().all(|w| w.abs() <= bound));
        assert!(xavier_linear::<TestBackend>(4, 4, false, &device)
            .bias
            .is_none());
    }
}
