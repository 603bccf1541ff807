//! Depthwise tensor product messages (the SO(3) path).
//!
//! For an edge `i <- j`, the message of output degree `l_out` is built from
//! the edge input `x = W_j h_j + W_i h_i` of every input degree `l_in`:
//!
//! `m_out[c] = sum_J w_{l_in, J, l_out}[c](edge) * C_{l_in, J -> l_out}(x_{l_in}[c] ⊗ Y_J(r_ij))`
//!
//! one learned radial weight per path and channel ("depthwise"); the
//! messages of all input degrees are then concatenated along channels and
//! mixed by one linear map per output degree.
//!
//! The same layer can build its messages on the SO(2) edge-frame path
//! instead ([`MessagePath`], [`crate::so2_convolution`]), with the same outer
//! structure and the same family of functions.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor};

use crate::fiber::{gather_neighbors, matmul_last};
use crate::geometry::{path_degrees, EdgeGeometry};
use crate::layers::{EquivariantLinear, EquivariantLinearConfig, RadialMlp, RadialMlpConfig};
use crate::so2_convolution::{MessagePath, So2Convolution};

/// Configuration of a [`DepthwiseTensorProduct`].
#[derive(Config, Debug)]
pub struct DepthwiseTensorProductConfig {
    /// Input channels per degree.
    pub dims_in: Vec<usize>,
    /// Output channels per degree.
    pub dims_out: Vec<usize>,
    /// Width of the invariant edge features fed to the radial network.
    pub edge_features: usize,
    /// Hidden width of the radial network.
    #[config(default = 64)]
    pub radial_hidden: usize,
    /// Pool messages over neighbours (masked mean) instead of returning them per edge.
    #[config(default = true)]
    pub pool: bool,
    /// Add a linear map of the node's own features: to the pooled result, or
    /// as an extra first neighbour slot when not pooling.
    #[config(default = true)]
    pub self_interaction: bool,
    /// Project the receiving and sending nodes separately and add them (as in the reference).
    #[config(default = true)]
    pub project_xi_xj: bool,
    /// A linear map after the message mixing.
    #[config(default = true)]
    pub project_out: bool,
    /// The message implementation (`None`: see [`MessagePath::resolve`]).
    #[config(default = "None")]
    pub message_path: Option<MessagePath>,
    /// SO(2) path: keep the edge-frame orders `|m| <= m_max` (`None`: all;
    /// ignored by the SO(3) path).
    #[config(default = "None")]
    pub m_max: Option<usize>,
}

/// Messages from neighbours through Clebsch-Gordan paths; see the [module docs](self).
#[derive(Module, Debug)]
pub struct DepthwiseTensorProduct<B: Backend> {
    to_receiver: Option<EquivariantLinear<B>>,
    to_sender: Option<EquivariantLinear<B>>,
    pub(crate) radial: RadialMlp<B>,
    pub(crate) mix: EquivariantLinear<B>,
    self_interact: Option<EquivariantLinear<B>>,
    pub(crate) to_out: Option<EquivariantLinear<B>>,
    pub(crate) dims_in: Vec<usize>,
    pub(crate) dims_out: Vec<usize>,
    pool: bool,
    /// The SO(2)-path kernel; `None` on the SO(3) path.
    pub(crate) so2: Option<So2Convolution>,
}

impl DepthwiseTensorProductConfig {
    /// The SO(2)-path kernel, when this layer uses that path.
    fn so2_convolution(&self) -> Option<So2Convolution> {
        let l_max = self
            .dims_in
            .len()
            .max(self.dims_out.len())
            .saturating_sub(1);
        (MessagePath::resolve(self.message_path, self.m_max, l_max) == MessagePath::So2)
            .then(|| So2Convolution::new(&self.dims_in, &self.dims_out, self.m_max))
    }

    /// Radial weights per edge that the layer's radial network produces, on the
    /// message path this configuration resolves to.
    pub fn radial_weights(&self) -> usize {
        self.so2_convolution()
            .map_or_else(|| self.so3_radial_weights(), |so2| so2.radial_outputs())
    }

    /// Radial weights needed on the SO(3) path: one per path and input channel.
    fn so3_radial_weights(&self) -> usize {
        let mut total = 0;
        for l_out in 0..self.dims_out.len() {
            for (l_in, &c_in) in self.dims_in.iter().enumerate() {
                total += path_degrees(l_in, l_out).count() * c_in;
            }
        }
        total
    }

    /// Build the layer on `device`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> DepthwiseTensorProduct<B> {
        let linear = |a: &Vec<usize>, b: &Vec<usize>| {
            EquivariantLinearConfig::new(a.clone(), b.clone()).init(device)
        };
        let concatenated = vec![self.dims_in.iter().sum::<usize>(); self.dims_out.len()];
        let so2 = self.so2_convolution();
        let radial_outputs = self.radial_weights();
        DepthwiseTensorProduct {
            to_receiver: self
                .project_xi_xj
                .then(|| linear(&self.dims_in, &self.dims_in)),
            to_sender: self
                .project_xi_xj
                .then(|| linear(&self.dims_in, &self.dims_in)),
            radial: RadialMlpConfig::new(self.edge_features, self.radial_hidden, radial_outputs)
                .init(device),
            mix: linear(&concatenated, &self.dims_out),
            self_interact: self
                .self_interaction
                .then(|| linear(&self.dims_in, &self.dims_out)),
            to_out: self
                .project_out
                .then(|| linear(&self.dims_out, &self.dims_out)),
            dims_in: self.dims_in.clone(),
            dims_out: self.dims_out.clone(),
            pool: self.pool,
            so2,
        }
    }
}

impl<B: Backend> DepthwiseTensorProduct<B> {
    /// The implementation that builds this layer's messages.
    pub fn message_path(&self) -> MessagePath {
        if self.so2.is_some() {
            MessagePath::So2
        } else {
            MessagePath::So3
        }
    }

    /// Whether the layer adds the node's own features (as slot 0 when not pooling).
    pub fn has_self_interaction(&self) -> bool {
        self.self_interact.is_some()
    }

    /// Messages for every edge, mixed, before pooling.
    ///
    /// # Shapes
    /// - `fiber[l]`: `[B, N, 2l+1, C_in(l)]`
    /// - output `[l]`: `[B, N, K, 2l+1, C_out(l)]`
    pub fn edge_messages(
        &self,
        fiber: &[Tensor<B, 4>],
        geometry: &EdgeGeometry<B>,
    ) -> Vec<Tensor<B, 5>> {
        self.edge_messages_to(fiber, fiber, geometry)
    }

    /// Messages to a subset of receiving nodes (a chunk of rows) from all nodes.
    ///
    /// `geometry` describes the receivers' edges ([`EdgeGeometry::narrow_nodes`]);
    /// its neighbour indices point into the senders' node axis.
    ///
    /// # Shapes
    /// - `receivers[l]`: `[B, R, 2l+1, C_in(l)]`, `senders[l]`: `[B, N, 2l+1, C_in(l)]`
    /// - output `[l]`: `[B, R, K, 2l+1, C_out(l)]`
    pub fn edge_messages_to(
        &self,
        receivers: &[Tensor<B, 4>],
        senders: &[Tensor<B, 4>],
        geometry: &EdgeGeometry<B>,
    ) -> Vec<Tensor<B, 5>> {
        self.mixed_messages_to(receivers, senders, geometry, &self.mix_weights())
            .split()
    }

    /// The mixing weights, one `[C_total, C_out(l)]` per output degree.
    fn mix_weights(&self) -> Vec<Tensor<B, 2>> {
        self.mix.weights.iter().map(|w| w.val()).collect()
    }

    /// The mixing followed by `to_out`, as one linear map per degree, when the
    /// layer has `to_out` and both keep every degree (`None` otherwise).
    ///
    /// Both are channel maps, which commute with rotations and with the mean
    /// over slots, so mixing with `W_mix W_out` gives the layer's output with
    /// one pass over the edges instead of two.
    fn mix_then_out(&self) -> Option<Vec<Tensor<B, 2>>> {
        let to_out = self.to_out.as_ref()?;
        if to_out.weights.len() != self.mix.weights.len() {
            return None;
        }
        let weights = self
            .mix
            .weights
            .iter()
            .zip(&to_out.weights)
            .map(|(mix, out)| mix.val().matmul(out.val()))
            .collect();
        Some(weights)
    }

    /// [`Self::edge_messages_to`] with the channel mixing `mix`.
    fn mixed_messages_to(
        &self,
        receivers: &[Tensor<B, 4>],
        senders: &[Tensor<B, 4>],
        geometry: &EdgeGeometry<B>,
        mix: &[Tensor<B, 2>],
    ) -> EdgeMessages<B> {
        let (receivers, senders) = match (&self.to_receiver, &self.to_sender) {
            (Some(receiver), Some(sender)) => (
                Some(receiver.forward(receivers.to_vec())),
                sender.forward(senders.to_vec()),
            ),
            _ => (None, senders.to_vec()),
        };
        let [batch, n, k, _] = geometry.radial_features.dims();
        let weights = match &self.so2 {
            Some(so2) => {
                // Flat, as the fused kernel reads them: `[B*N*K*W]`.
                let coefficients = self.radial.forward_flat(geometry.radial_features.clone());
                match so2.node_messages(&senders, receivers.as_deref(), coefficients, geometry, mix)
                {
                    Ok(messages) => return messages,
                    Err(unused) => {
                        let width = self.radial.output.weight.dims()[1];
                        unused.reshape([batch, n, k, width])
                    }
                }
            }
            None => self.radial.forward(geometry.radial_features.clone()), // [B, N, K, W]
        };
        // Edge input per degree: sender features at the neighbour plus receiver features.
        let inputs: Vec<Tensor<B, 5>> = senders
            .into_iter()
            .enumerate()
            .map(|(l, sender)| {
                let gathered = gather_neighbors(sender, geometry.neighbors.index.clone()); // [B, N, K, 2l+1, C]
                match &receivers {
                    Some(receivers) => gathered + receivers[l].clone().unsqueeze_dim::<5>(2),
                    None => gathered,
                }
            })
            .collect();
        if let Some(so2) = &self.so2 {
            return EdgeMessages::Split(so2.edge_messages(&inputs, weights, geometry, mix));
        }
        let mut offset = 0;
        let mut messages = Vec::with_capacity(self.dims_out.len());
        for l_out in 0..self.dims_out.len() {
            let mut parts = Vec::with_capacity(self.dims_in.len());
            for (l_in, input) in inputs.iter().enumerate() {
                let c_in = self.dims_in[l_in];
                let paths = path_degrees(l_in, l_out).count();
                let coupling = geometry.couplings[l_in][l_out].clone(); // [B, N, K, P*(2lo+1), 2li+1]
                let per_path = coupling.matmul(input.clone()).reshape([
                    batch,
                    n,
                    k,
                    paths,
                    2 * l_out + 1,
                    c_in,
                ]);
                let w = weights
                    .clone()
                    .narrow(3, offset, paths * c_in)
                    .reshape([batch, n, k, paths, 1, c_in]);
                offset += paths * c_in;
                parts.push((per_path * w).sum_dim(3).squeeze_dim::<5>(3)); // [B, N, K, 2lo+1, C_in]
            }
            messages.push(Tensor::cat(parts, 4));
        }
        EdgeMessages::Split(
            messages
                .into_iter()
                .zip(mix)
                .map(|(m, w)| matmul_last(m, w.clone()))
                .collect(),
        )
    }

    /// The full layer.
    ///
    /// Pooling: masked mean over the neighbour slots. Without pooling, and with
    /// self-interaction, the node's own linear term becomes neighbour slot 0
    /// (so `K' = K + 1`).
    ///
    /// # Shapes
    /// - `fiber[l]`: `[B, N, 2l+1, C_in(l)]`
    /// - pooled output `[l]`: `[B, N, 1, 2l+1, C_out(l)]` (slot axis of size 1);
    ///   per-edge output `[l]`: `[B, N, K', 2l+1, C_out(l)]`
    pub fn forward(&self, fiber: &[Tensor<B, 4>], geometry: &EdgeGeometry<B>) -> Vec<Tensor<B, 5>> {
        self.forward_to(fiber, fiber, geometry)
    }

    /// The full layer for a subset of receiving nodes (see [`Self::edge_messages_to`]).
    ///
    /// # Shapes
    /// - `receivers[l]`: `[B, R, 2l+1, C_in(l)]`, `senders[l]`: `[B, N, 2l+1, C_in(l)]`
    /// - output as [`Self::forward`] with `R` nodes
    pub fn forward_to(
        &self,
        receivers: &[Tensor<B, 4>],
        senders: &[Tensor<B, 4>],
        geometry: &EdgeGeometry<B>,
    ) -> Vec<Tensor<B, 5>> {
        let (outputs, own) = self.parts_to(receivers, senders, geometry);
        self.join_parts(outputs.split(), own)
    }

    /// Adds the own term of [`Self::parts_to`] to the pooled messages, or
    /// places it in slot 0 before the edge slots, as [`Self::forward_to`] does.
    pub(crate) fn join_parts(
        &self,
        outputs: Vec<Tensor<B, 5>>,
        own: Option<Vec<Tensor<B, 4>>>,
    ) -> Vec<Tensor<B, 5>> {
        let Some(own) = own else {
            return outputs;
        };
        let mut own = own.into_iter().map(|t| t.unsqueeze_dim::<5>(2)); // [B, N, 1, 2l+1, C]
        outputs
            .into_iter()
            .map(|edges| match own.next() {
                Some(own) if self.pool => edges + own,
                Some(own) => Tensor::cat(vec![own, edges], 2),
                // Degrees the input lacks: a zero self slot keeps the slot axis aligned.
                None if self.pool => edges,
                None => {
                    let [batch, n, _, m, c] = edges.dims();
                    let zeros = Tensor::zeros([batch, n, 1, m, c], &edges.device());
                    Tensor::cat(vec![zeros, edges], 2)
                }
            })
            .collect()
    }

    /// [`Self::forward_to`] in its two parts: the messages (pooled, or per
    /// edge slot without the own slot) and the node's own term, for the
    /// degrees both fibers have (`None` without self-interaction).
    ///
    /// The messages stay packed as the fused kernel wrote them where nothing
    /// between it and the caller needs them per degree.
    ///
    /// # Shapes
    /// - first `[l]`: `[B, R, K, 2l+1, C_out(l)]` (`K = 1` when pooling)
    /// - second `[l]`: `[B, R, 2l+1, C_out(l)]`
    pub(crate) fn parts_to(
        &self,
        receivers: &[Tensor<B, 4>],
        senders: &[Tensor<B, 4>],
        geometry: &EdgeGeometry<B>,
    ) -> (EdgeMessages<B>, Option<Vec<Tensor<B, 4>>>) {
        let folded = self.mix_then_out();
        let mix = folded.clone().unwrap_or_else(|| self.mix_weights());
        let mut outputs = self.mixed_messages_to(receivers, senders, geometry, &mix);
        if self.pool {
            let weights = match &geometry.envelope {
                Some(u) => u.clone(),
                None => geometry.neighbors.mask.clone().float(),
            };
            let smooth = geometry.envelope.is_some();
            let pooled = outputs.split().into_iter();
            outputs = EdgeMessages::Split(
                pooled
                    .map(|m| weighted_mean_over_slots(m, weights.clone(), smooth))
                    .collect(),
            );
        }
        if let (Some(to_out), None) = (&self.to_out, &folded) {
            outputs = EdgeMessages::Split(to_out.forward(outputs.split()));
        }
        let own = self
            .self_interact
            .as_ref()
            .map(|self_interact| self_interact.forward(receivers.to_vec()));
        (outputs, own)
    }
}

/// Per-edge messages of every output degree: one tensor per degree, or
/// packed into one flat tensor as the fused kernels write and read them
/// (degree blocks `[B, R, K, 2l+1, C_out(l)]`, row-major, one after another).
///
/// Kept packed, messages pass from one fused kernel to the next without a
/// copy; on the CPU backends every reshape, slice or concatenation of an
/// edge-sized tensor is one (and its gradient another).
#[derive(Clone, Debug)]
pub(crate) enum EdgeMessages<B: Backend> {
    /// `[l]`: `[B, R, K, 2l+1, C_out(l)]`.
    Split(Vec<Tensor<B, 5>>),
    /// The degree blocks of `shapes`, flattened and concatenated.
    Packed {
        values: Tensor<B, 1>,
        shapes: Vec<[usize; 5]>,
    },
}

impl<B: Backend> EdgeMessages<B> {
    /// `[B, R, K, 2l+1, C_out(l)]` per degree.
    pub(crate) fn shapes(&self) -> Vec<[usize; 5]> {
        match self {
            EdgeMessages::Split(messages) => messages.iter().map(Tensor::dims).collect(),
            EdgeMessages::Packed { shapes, .. } => shapes.clone(),
        }
    }

    /// The float type of every degree.
    pub(crate) fn dtypes(&self) -> Vec<DType> {
        match self {
            EdgeMessages::Split(messages) => messages.iter().map(Tensor::dtype).collect(),
            EdgeMessages::Packed { values, .. } => vec![values.dtype()],
        }
    }

    /// One tensor per degree.
    pub(crate) fn split(self) -> Vec<Tensor<B, 5>> {
        match self {
            EdgeMessages::Split(messages) => messages,
            EdgeMessages::Packed { values, shapes } => {
                let mut at = 0;
                shapes
                    .into_iter()
                    .map(|shape| {
                        let len = shape.iter().product();
                        let block = values.clone().narrow(0, at, len).reshape(shape);
                        at += len;
                        block
                    })
                    .collect()
            }
        }
    }

    /// Every degree flattened and concatenated.
    pub(crate) fn packed(self) -> Tensor<B, 1> {
        match self {
            EdgeMessages::Packed { values, .. } => values,
            EdgeMessages::Split(messages) => Tensor::cat(
                messages
                    .into_iter()
                    .map(|m| {
                        let len = m.shape().num_elements();
                        m.reshape([len])
                    })
                    .collect(),
                0,
            ),
        }
    }
}

/// The mean of `messages` over the slots, weighted by `weights` `[B, N, K]`.
///
/// The weights are divided by their sum, at least 1; with `smooth`, by `S + exp(-S)` for
/// the sum `S` instead, which is as smooth as the weights are (the envelope's mean has no
/// kink where the sum passes 1, and falls to zero with the last weight). Zero where a node
/// has no neighbour.
///
/// # Shapes
/// - `messages`: `[B, N, K, M, C]`, `weights`: `[B, N, K]`, output `[B, N, 1, M, C]`
pub(crate) fn weighted_mean_over_slots<B: Backend>(
    messages: Tensor<B, 5>,
    weights: Tensor<B, 3>,
    smooth: bool,
) -> Tensor<B, 5> {
    let [batch, n, k, m, c] = messages.dims();
    let weights = weights.reshape([batch * n, 1, k]); // [BN, 1, K]
    let sum = weights.clone().sum_dim(2); // [BN, 1, 1]
    let count = if smooth {
        sum.clone() + sum.neg().exp()
    } else {
        sum.clamp_min(1.0)
    };
    // A batched matrix product sums over the slots without a broadcast.
    (weights / count)
        .matmul(messages.reshape([batch * n, k, m * c]))
        .reshape([batch, n, 1, m, c])
}
