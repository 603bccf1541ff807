//! Equivariant graph attention over neighbours: MLP, dot-product and L2-distance logits.
//!
//! Every kind builds per-edge messages with a [`DepthwiseTensorProduct`]
//! (not pooled; with `attend_self` the node itself is neighbour slot 0),
//! attends per degree with its own heads, gates each head's output by a
//! sigmoid of the receiving node's scalars, and projects back to the fiber.

use std::sync::Arc;

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::{leaky_relu, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, DType, Tensor};
use serde::{Deserialize, Serialize};

use crate::geometry::{by_node_chunks, EdgeGeometry};
use crate::host_ops;
use crate::layers::activation::sigmoid;
use crate::layers::{
    EquivariantLinear, EquivariantLinearConfig, EquivariantNorm, EquivariantNormConfig, Gate,
};
use crate::linear_attention::{LinearAttention, LinearAttentionConfig};
use crate::so2_convolution::MessagePath;
use crate::tensor_product::{DepthwiseTensorProduct, DepthwiseTensorProductConfig, EdgeMessages};
use so3_math::precision::{masked_logit, positive_floor};

#[cfg_attr(not(feature = "ndarray"), allow(dead_code))]
mod kernel;
#[cfg_attr(not(feature = "ndarray"), allow(dead_code))]
mod query_kernel;

use kernel::{AttentionReadout, AttentionSizes};
use query_kernel::{QueryLogits, QueryReadout};

/// How attention logits are formed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttentionKind {
    /// GATv2-style: a leaky-ReLU MLP of the invariant part of each message (the paper's choice).
    #[default]
    Mlp,
    /// Scaled dot product of node queries with per-edge keys.
    DotProduct,
    /// Negative L2 distance between queries and keys (the reference's default).
    L2Distance,
}

/// Configuration of an [`EquivariantAttention`] block.
#[derive(Config, Debug)]
pub struct EquivariantAttentionConfig {
    /// Channels per degree of the fiber.
    pub dims: Vec<usize>,
    /// Heads per degree.
    pub heads: Vec<usize>,
    /// Channels per head, per degree.
    pub dim_head: Vec<usize>,
    /// Width of the invariant edge features.
    pub edge_features: usize,
    /// Logit kind.
    #[config(default = "AttentionKind::Mlp")]
    pub kind: AttentionKind,
    /// Let each node attend to itself as well as its neighbours.
    #[config(default = true)]
    pub attend_self: bool,
    /// Share one key/value head across all query heads.
    #[config(default = false)]
    pub single_headed_kv: bool,
    /// Hidden width of the radial networks.
    #[config(default = 64)]
    pub radial_hidden: usize,
    /// MLP attention: hidden logits per head.
    #[config(default = 4)]
    pub attn_hidden_dim_mult: usize,
    /// MLP attention: negative slope of the leaky ReLU.
    #[config(default = 0.1)]
    pub attn_leakyrelu_slope: f64,
    /// Gate every head's output by a sigmoid of the node's scalars (lets a node attend to nothing).
    #[config(default = true)]
    pub gate_attn_head_outputs: bool,
    /// Start the output projection at zero.
    #[config(default = true)]
    pub init_out_zero: bool,
    /// The message implementation (`None`: see [`MessagePath::resolve`]).
    #[config(default = "None")]
    pub message_path: Option<MessagePath>,
    /// SO(2) message path: keep the edge-frame orders `|m| <= m_max` (`None`: all).
    #[config(default = "None")]
    pub m_max: Option<usize>,
    /// Global linear attention heads on the scalars, seeing every node (0: off).
    #[config(default = 0)]
    pub num_linear_attn_heads: usize,
    /// Channels per global linear attention head.
    #[config(default = 8)]
    pub linear_attn_dim_head: usize,
}

/// Per-kind learned parts.
#[derive(Module, Debug)]
enum Logits<B: Backend> {
    /// Per degree: leaky ReLU then a bias-free linear to the heads.
    Mlp(Vec<Linear<B>>),
    /// Node queries for dot-product or L2 logits.
    Query(EquivariantLinear<B>),
}

/// Multi-head equivariant graph attention; see the [module docs](self).
#[derive(Module, Debug)]
pub struct EquivariantAttention<B: Backend> {
    prenorm: EquivariantNorm<B>,
    messages: DepthwiseTensorProduct<B>,
    logits: Logits<B>,
    value_gate: Option<Gate>,
    value_projection: Option<EquivariantLinear<B>>,
    head_gates: Option<Linear<B>>,
    linear_attention: Option<LinearAttention<B>>,
    to_out: EquivariantLinear<B>,
    heads: Vec<usize>,
    dim_head: Vec<usize>,
    attn_hidden: Vec<usize>,
    value_dims: Vec<usize>,
    kind: AttentionKind,
    single_headed_kv: bool,
    leaky_slope: f64,
}

impl EquivariantAttentionConfig {
    /// Build the block on `device`.
    ///
    /// # Panics
    /// If `heads` or `dim_head` do not have one entry per degree (the model
    /// config validates this before).
    pub fn init<B: Backend>(&self, device: &B::Device) -> EquivariantAttention<B> {
        let degrees = self.dims.len();
        assert!(self.heads.len() == degrees && self.dim_head.len() == degrees);
        let hidden: Vec<usize> = self
            .heads
            .iter()
            .zip(&self.dim_head)
            .map(|(h, d)| h * d)
            .collect();
        let value_dims = if self.single_headed_kv {
            self.dim_head.clone()
        } else {
            hidden.clone()
        };
        let tensor_product = |dims_out: Vec<usize>| {
            DepthwiseTensorProductConfig::new(self.dims.clone(), dims_out, self.edge_features)
                .with_radial_hidden(self.radial_hidden)
                .with_pool(false)
                .with_self_interaction(self.attend_self)
                .with_message_path(self.message_path)
                .with_m_max(self.m_max)
                .init(device)
        };
        let attn_hidden: Vec<usize> = self
            .heads
            .iter()
            .map(|h| h * self.attn_hidden_dim_mult)
            .collect();
        let (messages, logits, value_gate, value_projection) = match self.kind {
            AttentionKind::Mlp => {
                let gated: usize = value_dims[1..].iter().sum();
                let mut intermediate = value_dims.clone();
                intermediate[0] = attn_hidden.iter().sum::<usize>() + value_dims[0] + gated;
                let logits = attn_hidden
                    .iter()
                    .zip(&self.heads)
                    .map(|(&a, &h)| LinearConfig::new(a, h).with_bias(false).init(device))
                    .collect();
                (
                    tensor_product(intermediate),
                    Logits::Mlp(logits),
                    Some(Gate::new(value_dims[1..].to_vec())),
                    Some(
                        EquivariantLinearConfig::new(value_dims.clone(), value_dims.clone())
                            .init(device),
                    ),
                )
            }
            AttentionKind::DotProduct | AttentionKind::L2Distance => (
                tensor_product(value_dims.iter().map(|d| 2 * d).collect()),
                Logits::Query(
                    EquivariantLinearConfig::new(self.dims.clone(), hidden.clone()).init(device),
                ),
                None,
                None,
            ),
        };
        let mut out_dims_in = hidden.clone();
        out_dims_in[0] += self.num_linear_attn_heads * self.linear_attn_dim_head;
        EquivariantAttention {
            prenorm: EquivariantNormConfig::new(self.dims.clone()).init(device),
            messages,
            logits,
            value_gate,
            value_projection,
            head_gates: self
                .gate_attn_head_outputs
                .then(|| LinearConfig::new(self.dims[0], self.heads.iter().sum()).init(device)),
            linear_attention: (self.num_linear_attn_heads > 0).then(|| {
                LinearAttentionConfig::new(self.dims[0], self.num_linear_attn_heads)
                    .with_dim_head(self.linear_attn_dim_head)
                    .with_gate_value_heads(self.kind == AttentionKind::L2Distance)
                    .init(device)
            }),
            to_out: EquivariantLinearConfig::new(out_dims_in, self.dims.clone())
                .with_init_zero(self.init_out_zero)
                .init(device),
            heads: self.heads.clone(),
            dim_head: self.dim_head.clone(),
            attn_hidden,
            value_dims,
            kind: self.kind,
            single_headed_kv: self.single_headed_kv,
            leaky_slope: self.attn_leakyrelu_slope,
        }
    }
}

impl<B: Backend> EquivariantAttention<B> {
    /// Attend and project (without the residual).
    ///
    /// # Shapes
    /// - `fiber[l]`: `[B, N, 2l+1, C_l]`, output the same
    pub fn forward(
        &self,
        fiber: Vec<Tensor<B, 4>>,
        geometry: &EdgeGeometry<B>,
    ) -> Vec<Tensor<B, 4>> {
        self.forward_chunked(fiber, geometry, None)
    }

    /// [`Self::forward`], attending for at most `nodes_per_chunk` receiving
    /// nodes at a time (`None`: all at once).
    ///
    /// The per-edge messages, logits and values, `O(N K)` memory, then exist
    /// for one chunk of `nodes_per_chunk * K` edges at a time; the output is
    /// the same. This bounds the peak memory of inference when `K` is large;
    /// under autodiff the graph keeps every chunk's activations for the
    /// backward pass (use reversible blocks for flat training memory).
    ///
    /// # Shapes
    /// - `fiber[l]`: `[B, N, 2l+1, C_l]`, output the same
    pub fn forward_chunked(
        &self,
        fiber: Vec<Tensor<B, 4>>,
        geometry: &EdgeGeometry<B>,
        nodes_per_chunk: Option<usize>,
    ) -> Vec<Tensor<B, 4>> {
        let fiber = self.prenorm.forward(fiber);
        let n = fiber[0].dims()[1];
        let mut outputs = by_node_chunks(n, nodes_per_chunk, |start, len| {
            if len == n {
                return self.attend(&fiber, &fiber, geometry);
            }
            let receivers: Vec<Tensor<B, 4>> = fiber
                .iter()
                .map(|t| t.clone().narrow(1, start, len))
                .collect();
            self.attend(&receivers, &fiber, &geometry.narrow_nodes(start, len))
        });
        if let Some(linear_attention) = &self.linear_attention {
            let scalars = fiber[0].clone().squeeze_dim::<3>(2); // [B, N, C0]
            let global = linear_attention.forward(scalars, geometry.node_mask.clone()); // [B, N, H*D]
            outputs[0] = Tensor::cat(vec![outputs[0].clone(), global.unsqueeze_dim::<4>(2)], 3);
        }
        self.to_out.forward(outputs)
    }

    /// Neighbour attention of the `receivers` (a chunk of rows, or all nodes)
    /// over messages from all `senders`, per degree, heads concatenated.
    ///
    /// # Shapes
    /// - `receivers[l]`: `[B, R, 2l+1, C_l]`, `senders[l]`: `[B, N, 2l+1, C_l]`
    /// - `geometry`: the receivers' rows
    /// - output `[l]`: `[B, R, 2l+1, H_l * D_l]`
    fn attend(
        &self,
        receivers: &[Tensor<B, 4>],
        senders: &[Tensor<B, 4>],
        geometry: &EdgeGeometry<B>,
    ) -> Vec<Tensor<B, 4>> {
        let mut slot_mask = geometry.neighbors.mask.clone(); // [B, R, K]
                                                             // With the cutoff envelope, ln u on the logits: weight u in the softmax.
        let mut slot_bias = geometry.envelope.as_ref().map(|u| {
            let floor = positive_floor(1e-30, u.dtype());
            u.clone().clamp_min(floor).log()
        });
        if self.messages.has_self_interaction() {
            let [batch, n, _] = slot_mask.dims();
            let own = Tensor::<B, 3, Bool>::full([batch, n, 1], true, &slot_mask.device());
            slot_mask = Tensor::cat(vec![own, slot_mask], 2);
            slot_bias = slot_bias.map(|bias| {
                let own = Tensor::zeros([batch, n, 1], (&bias.device(), bias.dtype()));
                Tensor::cat(vec![own, bias], 2)
            });
        }
        let weighted = slot_bias.is_some();
        let slot_mask = SlotWeights {
            mask: slot_mask,
            bias: slot_bias,
        };
        let (edges, own) = self.messages.parts_to(receivers, senders, geometry);
        let gates = self.head_gates.as_ref().map(|linear| {
            let scalars = receivers[0].clone().squeeze_dim::<3>(2); // [B, R, C0]
            sigmoid(linear.forward(scalars)) // [B, R, sum(heads)]
        });
        let edges = match &self.logits {
            // The fused readouts take unweighted slots.
            _ if weighted => edges,
            Logits::Mlp(layers) => {
                let mask = &geometry.neighbors.mask;
                match self.fused_mlp_readout(layers, edges, own.as_deref(), mask, gates.as_ref()) {
                    Ok(outputs) => return outputs,
                    Err(edges) => edges,
                }
            }
            Logits::Query(to_query) => {
                let mask = &geometry.neighbors.mask;
                let gates = gates.as_ref();
                match self.fused_query_readout(
                    to_query,
                    receivers,
                    edges,
                    own.as_deref(),
                    mask,
                    gates,
                ) {
                    Ok(outputs) => return outputs,
                    Err(edges) => edges,
                }
            }
        };
        let edge_fiber = self.messages.join_parts(edges.split(), own); // [B, R, K', 2l+1, C]
        let (attention, values) = match &self.logits {
            Logits::Mlp(layers) => self.mlp_logits(layers, edge_fiber, &slot_mask),
            Logits::Query(to_query) => {
                self.query_logits(to_query, receivers, edge_fiber, &slot_mask)
            }
        };
        let mut head_offset = 0;
        let mut outputs = Vec::with_capacity(self.heads.len());
        for (l, (attn, value)) in attention.into_iter().zip(values).enumerate() {
            let (h, d) = (self.heads[l], self.dim_head[l]);
            let [batch, n, _, m, _] = value.dims();
            let mut out = aggregate_heads(attn, value, h, d, self.single_headed_kv); // [B, R, m, H, D]
            if let Some(gates) = &gates {
                let gate = gates
                    .clone()
                    .narrow(2, head_offset, h)
                    .reshape([batch, n, 1, h, 1]);
                out = out * gate;
            }
            head_offset += h;
            outputs.push(out.reshape([batch, n, m, h * d]));
        }
        outputs
    }

    /// Everything after the messages of MLP attention (logits, softmax, value
    /// gate and projection, weighted sum, head gates) by the fused host kernel,
    /// where the backend and the sizes allow it ([`host_ops::serves`]; else
    /// `Err` with the messages, unused).
    ///
    /// # Shapes
    /// - `edges[l]`: `[B, R, K, 2l+1, C_l]` (packed as the fused message
    ///   kernel wrote them, or split), `own[l]`: `[B, R, 2l+1, C_l]`
    /// - `mask`: `[B, R, K]`, `head_gates`: `[B, R, sum(heads)]`
    /// - output `[l]`: `[B, R, 2l+1, H_l * D_l]`
    fn fused_mlp_readout(
        &self,
        layers: &[Linear<B>],
        edges: EdgeMessages<B>,
        own: Option<&[Tensor<B, 4>]>,
        mask: &Tensor<B, 3, Bool>,
        head_gates: Option<&Tensor<B, 3>>,
    ) -> Result<Vec<Tensor<B, 4>>, EdgeMessages<B>> {
        let shapes = edges.shapes();
        let (Some(projection), Some(&[batch, n, slots, _, _])) =
            (self.value_projection.as_ref(), shapes.first())
        else {
            return Err(edges);
        };
        let degrees = self.heads.len();
        let sizes = AttentionSizes {
            heads: self.heads.clone(),
            dim_head: self.dim_head.clone(),
            attn_hidden: self.attn_hidden.clone(),
            shared_head: self.single_headed_kv,
            leaky_slope: self.leaky_slope,
        };
        let layout = Arc::new(AttentionReadout::new(
            sizes,
            batch * n,
            slots,
            own.is_some(),
        ));
        let logit_weights: Vec<Tensor<B, 2>> = layers.iter().map(|l| l.weight.val()).collect();
        let projections: Vec<Tensor<B, 2>> = projection.weights.iter().map(|w| w.val()).collect();
        let message_shape = |l: usize| [2 * l + 1, layout.channels(l)];
        let fits = batch * n > 0
            && slots > 0
            && shapes.len() == degrees
            && shapes
                .iter()
                .enumerate()
                .all(|(l, e)| e[..3] == [batch, n, slots] && e[3..] == message_shape(l))
            && own.is_none_or(|own| {
                own.len() == degrees
                    && own
                        .iter()
                        .enumerate()
                        .all(|(l, o)| o.dims()[2..] == message_shape(l))
            })
            && layers.iter().all(|l| l.bias.is_none())
            && (0..degrees).all(|l| {
                let v = layout.values(l);
                logit_weights.get(l).map(Tensor::dims) == Some([self.attn_hidden[l], self.heads[l]])
                    && projections.get(l).map(Tensor::dims) == Some([v, v])
            });
        let dtypes = edges.dtypes();
        let dtype = dtypes[0];
        let same_dtype = dtypes
            .into_iter()
            .chain(own.into_iter().flatten().map(Tensor::dtype))
            .chain(logit_weights.iter().chain(&projections).map(Tensor::dtype))
            .chain(head_gates.map(Tensor::dtype))
            .all(|d| d == dtype);
        if !fits || !same_dtype || !host_ops::serves::<B>(dtype) {
            return Err(edges);
        }
        let (own, head_gates) =
            self.flat_own_and_gates(own, head_gates, batch * n, &mask.device(), dtype);
        let output = host_ops::run(
            &layout,
            [
                own,
                edges.packed(),
                flat(mask.clone().float().cast(dtype)),
                Tensor::cat(logit_weights.into_iter().map(flat).collect(), 0),
                Tensor::cat(projections.into_iter().map(flat).collect(), 0),
                head_gates,
            ],
        );
        Ok((0..degrees)
            .map(|l| {
                let (at, len) = layout.output_block(l);
                let width = self.heads[l] * self.dim_head[l];
                output
                    .clone()
                    .narrow(0, at, len)
                    .reshape([batch, n, 2 * l + 1, width])
            })
            .collect())
    }

    /// Everything after the messages of dot-product or L2-distance attention
    /// (queries against keys, softmax, weighted sum of the values, head
    /// gates) by the fused host kernel, where the backend and the sizes allow
    /// it ([`host_ops::serves`]; else `Err` with the messages, unused).
    ///
    /// # Shapes
    /// - `receivers[l]`: `[B, R, 2l+1, C_l]`
    /// - `edges[l]`: `[B, R, K, 2l+1, 2 V_l]` (keys then values), `own[l]`: `[B, R, 2l+1, 2 V_l]`
    /// - `mask`: `[B, R, K]`, `head_gates`: `[B, R, sum(heads)]`
    /// - output `[l]`: `[B, R, 2l+1, H_l * D_l]`
    fn fused_query_readout(
        &self,
        to_query: &EquivariantLinear<B>,
        receivers: &[Tensor<B, 4>],
        edges: EdgeMessages<B>,
        own: Option<&[Tensor<B, 4>]>,
        mask: &Tensor<B, 3, Bool>,
        head_gates: Option<&Tensor<B, 3>>,
    ) -> Result<Vec<Tensor<B, 4>>, EdgeMessages<B>> {
        let logits = match self.kind {
            AttentionKind::DotProduct => QueryLogits::DotProduct,
            AttentionKind::L2Distance => QueryLogits::L2Distance,
            AttentionKind::Mlp => return Err(edges),
        };
        let shapes = edges.shapes();
        let dtypes = edges.dtypes();
        let (Some(&[batch, n, slots, _, _]), Some(&dtype)) = (shapes.first(), dtypes.first())
        else {
            return Err(edges);
        };
        let degrees = self.heads.len();
        let layout = Arc::new(QueryReadout::new(
            logits,
            &self.heads,
            &self.dim_head,
            self.single_headed_kv,
            positive_floor(1e-24, dtype),
            batch * n,
            slots,
            own.is_some(),
        ));
        let message_shape = |l: usize| [2 * l + 1, layout.message_channels(l)];
        let fits = batch * n > 0
            && slots > 0
            && receivers.len() == degrees
            && shapes.len() == degrees
            && shapes
                .iter()
                .enumerate()
                .all(|(l, e)| e[..3] == [batch, n, slots] && e[3..] == message_shape(l))
            && own.is_none_or(|own| {
                own.len() == degrees
                    && own.iter().enumerate().all(|(l, o)| {
                        o.dims()[..2] == [batch, n] && o.dims()[2..] == message_shape(l)
                    })
            });
        let same_dtype = dtypes
            .into_iter()
            .chain(own.into_iter().flatten().map(Tensor::dtype))
            .chain(receivers.iter().map(Tensor::dtype))
            .chain(head_gates.map(Tensor::dtype))
            .all(|d| d == dtype);
        if !fits || !same_dtype || !host_ops::serves::<B>(dtype) {
            return Err(edges);
        }
        let queries = to_query.forward(receivers.to_vec());
        let query_shape = |l: usize| [batch, n, 2 * l + 1, self.heads[l] * self.dim_head[l]];
        if queries
            .iter()
            .enumerate()
            .any(|(l, q)| q.dims() != query_shape(l) || q.dtype() != dtype)
        {
            return Err(edges);
        }
        let (own, head_gates) =
            self.flat_own_and_gates(own, head_gates, batch * n, &mask.device(), dtype);
        let output = host_ops::run(
            &layout,
            [
                Tensor::cat(queries.into_iter().map(flat).collect(), 0),
                own,
                edges.packed(),
                flat(mask.clone().float().cast(dtype)),
                head_gates,
            ],
        );
        Ok((0..degrees)
            .map(|l| {
                let (at, len) = layout.output_block(l);
                output.clone().narrow(0, at, len).reshape(query_shape(l))
            })
            .collect())
    }

    /// The own messages and the head gates as the fused readouts read them:
    /// flattened and concatenated, one unused element without own messages,
    /// gates of one without head gates (`rows` receiving nodes).
    fn flat_own_and_gates(
        &self,
        own: Option<&[Tensor<B, 4>]>,
        head_gates: Option<&Tensor<B, 3>>,
        rows: usize,
        device: &B::Device,
        dtype: DType,
    ) -> (Tensor<B, 1>, Tensor<B, 1>) {
        let own = match own {
            Some(own) => Tensor::cat(own.iter().map(|t| flat(t.clone())).collect(), 0),
            None => Tensor::<B, 1>::zeros([1], device).cast(dtype),
        };
        let head_gates = match head_gates {
            Some(gates) => flat(gates.clone()),
            None => {
                let count = rows * self.heads.iter().sum::<usize>();
                Tensor::<B, 1>::ones([count], device).cast(dtype)
            }
        };
        (own, head_gates)
    }

    /// MLP logits from the invariant part of the messages; values gated then projected.
    fn mlp_logits(
        &self,
        layers: &[Linear<B>],
        mut edge_fiber: Vec<Tensor<B, 5>>,
        slot_mask: &SlotWeights<B>,
    ) -> (Vec<Tensor<B, 4>>, Vec<Tensor<B, 5>>) {
        let scalars = edge_fiber[0].clone(); // [B, N, K', 1, C]
        let total = scalars.dims()[4];
        let mut offset = 0;
        let mut attention = Vec::with_capacity(layers.len());
        for (l, linear) in layers.iter().enumerate() {
            let width = self.attn_hidden[l];
            let branch = scalars.clone().narrow(4, offset, width).squeeze_dim::<4>(3); // [B, N, K', A]
            offset += width;
            let logits = linear.forward(leaky_relu(branch, self.leaky_slope))
                * (self.dim_head[l] as f64).powf(-0.5);
            attention.push(slot_mask.softmax(logits));
        }
        edge_fiber[0] = scalars.narrow(4, offset, total - offset);
        let gate = self
            .value_gate
            .as_ref()
            .expect("MLP attention has a value gate");
        let projection = self
            .value_projection
            .as_ref()
            .expect("MLP attention has a value projection");
        let values = projection.forward(gate.forward(edge_fiber));
        (attention, values)
    }

    /// Dot-product or L2-distance logits between node queries and edge keys.
    fn query_logits(
        &self,
        to_query: &EquivariantLinear<B>,
        fiber: &[Tensor<B, 4>],
        edge_fiber: Vec<Tensor<B, 5>>,
        slot_mask: &SlotWeights<B>,
    ) -> (Vec<Tensor<B, 4>>, Vec<Tensor<B, 5>>) {
        let queries = to_query.forward(fiber.to_vec());
        let mut attention = Vec::with_capacity(queries.len());
        let mut values = Vec::with_capacity(queries.len());
        for (l, (query, key_value)) in queries.into_iter().zip(edge_fiber).enumerate() {
            let (h, d) = (self.heads[l], self.dim_head[l]);
            let kv_heads = if self.single_headed_kv { 1 } else { h };
            let width = self.value_dims[l];
            let [batch, n, k, m, _] = key_value.dims();
            let key = key_value
                .clone()
                .narrow(4, 0, width)
                .reshape([batch, n, k, m, kv_heads, d]);
            values.push(key_value.narrow(4, width, width));
            let query = query.reshape([batch, n, 1, m, h, d]);
            let scale = (d as f64).powf(-0.5);
            let logits = match self.kind {
                AttentionKind::DotProduct => {
                    (query * key)
                        .sum_dim(5)
                        .sum_dim(3)
                        .reshape([batch, n, k, h])
                        * scale
                }
                _ => {
                    let squared = (query - key).square(); // [B, N, K', m, H, D]
                    let floor = positive_floor(1e-24, squared.dtype());
                    let distance = if l == 0 {
                        squared.sum_dim(5).clamp_min(floor).sqrt()
                    } else {
                        squared.sum_dim(3).clamp_min(floor).sqrt().sum_dim(5)
                    };
                    distance.reshape([batch, n, k, h]) * (-scale)
                }
            };
            attention.push(slot_mask.softmax(logits));
        }
        (attention, values)
    }
}

/// `tensor` as one axis.
fn flat<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> Tensor<B, 1> {
    let len = tensor.shape().num_elements();
    tensor.reshape([len])
}

/// Attention-weighted sum of values over neighbour slots, as one batched
/// matrix product per (node, head) rather than a broadcast and a reduction.
///
/// # Shapes
/// - `attention`: `[B, N, K, H]`
/// - `values`: `[B, N, K, m, H*D]` (or `[B, N, K, m, D]` with one shared head)
/// - output: `[B, N, m, H, D]`
fn aggregate_heads<B: Backend>(
    attention: Tensor<B, 4>,
    values: Tensor<B, 5>,
    heads: usize,
    dim_head: usize,
    shared_head: bool,
) -> Tensor<B, 5> {
    let [batch, n, k, m, _] = values.dims();
    let rows = batch * n;
    let weights = attention.reshape([rows, k, heads]).swap_dims(1, 2); // [BN, H, K]
    if shared_head {
        let values = values.reshape([rows, k, m * dim_head]);
        return weights
            .matmul(values) // [BN, H, m*D]
            .reshape([batch, n, heads, m, dim_head])
            .swap_dims(2, 3);
    }
    let values = values
        .reshape([rows, k, m, heads, dim_head])
        .permute([0, 3, 1, 2, 4]) // [BN, H, K, m, D]
        .reshape([rows * heads, k, m * dim_head]);
    weights
        .reshape([rows * heads, 1, k])
        .matmul(values) // [BN*H, 1, m*D]
        .reshape([batch, n, heads, m, dim_head])
        .swap_dims(2, 3)
}

/// Which neighbour slots (the own one included) take part in the softmax, and an optional
/// bias of their logits (`ln u` of the cutoff envelope).
struct SlotWeights<B: Backend> {
    /// `[B, R, K']`.
    mask: Tensor<B, 3, Bool>,
    /// `[B, R, K']`.
    bias: Option<Tensor<B, 3>>,
}

impl<B: Backend> SlotWeights<B> {
    /// The masked softmax over slots of `logits` `[B, R, K', H]`, biased.
    fn softmax(&self, logits: Tensor<B, 4>) -> Tensor<B, 4> {
        let logits = match &self.bias {
            Some(bias) => logits + bias.clone().unsqueeze_dim::<4>(3),
            None => logits,
        };
        masked_softmax(logits, &self.mask)
    }
}

/// Softmax over neighbour slots that ignores masked slots; all-masked rows give zeros.
///
/// # Shapes
/// - `logits`: `[B, N, K, H]`, `mask`: `[B, N, K]`, output `[B, N, K, H]`
pub(crate) fn masked_softmax<B: Backend>(
    logits: Tensor<B, 4>,
    mask: &Tensor<B, 3, Bool>,
) -> Tensor<B, 4> {
    let [batch, n, k, h] = logits.dims();
    let mask = mask.clone().unsqueeze_dim::<4>(3).expand([batch, n, k, h]);
    let fill = masked_logit(logits.dtype());
    let attention = softmax(logits.mask_fill(mask.clone().bool_not(), fill), 2);
    attention * mask.float()
}

#[cfg(test)]
mod tests;
