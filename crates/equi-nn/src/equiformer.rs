//! The Equiformer model: an SE(3)-equivariant graph attention transformer.
//!
//! Options follow equiformer-pytorch (0.5.4) under the same names and
//! meanings, with documented defaults. The forward pass validates its input
//! and returns a typed error instead of panicking.
//!
//! ```
//! use burn::backend::NdArray;
//! use burn::tensor::{Bool, Int, Tensor};
//! use equi_nn::{EquiformerConfig, EquiformerInput};
//!
//! let device = Default::default();
//! let model = EquiformerConfig::new(vec![16, 8, 4])
//!     .with_num_degrees(3)
//!     .with_num_tokens(Some(24))
//!     .with_heads(vec![2])
//!     .with_dim_head(vec![4])
//!     .with_depth(1)
//!     .with_reduce_dim_out(true)
//!     .init::<NdArray>(&device)?;
//!
//! let tokens = Tensor::<NdArray, 2, Int>::from_ints([[0, 5, 9, 23]], &device);
//! let coords = Tensor::<NdArray, 3>::random([1, 4, 3], burn::tensor::Distribution::Default, &device);
//! let mask = Tensor::<NdArray, 2, Bool>::from_bool([[true, true, true, false]].into(), &device);
//! let out = model.forward(EquiformerInput::tokens(tokens, coords).with_mask(mask))?;
//! let (type0, type1) = out.reduced().expect("reduce_dim_out gives one channel");
//! assert_eq!(type0.dims(), [1, 4]);
//! assert_eq!(type1.expect("degree 1 output").dims(), [1, 4, 3]);
//! # Ok::<(), equi_nn::ModelError>(())
//! ```
//!
//! Long chains (proteins): global linear attention heads see every residue
//! besides the nearest neighbours, messages are built for 64 receiving nodes
//! at a time, and reversible blocks keep training memory flat in depth
//! ([`Equiformer::forward_backward`]):
//!
//! ```
//! use burn::backend::NdArray;
//! use burn::tensor::{Distribution, Int, Tensor};
//! use equi_nn::{EquiformerConfig, EquiformerInput};
//!
//! let device = Default::default();
//! let model = EquiformerConfig::new(vec![8, 4])
//!     .with_num_tokens(Some(21))
//!     .with_heads(vec![2])
//!     .with_dim_head(vec![4])
//!     .with_depth(2)
//!     .with_num_neighbors(Some(8))
//!     .with_num_linear_attn_heads(1)
//!     .with_attention_chunk_size(Some(64))
//!     .with_reversible(true)
//!     .init::<NdArray>(&device)?;
//! let residues = Tensor::<NdArray, 2, Int>::random([1, 150], Distribution::Uniform(0.0, 21.0), &device);
//! let coords = Tensor::<NdArray, 3>::random([1, 150, 3], Distribution::Normal(0.0, 8.0), &device);
//! let out = model.forward(EquiformerInput::tokens(residues, coords))?;
//! assert_eq!(out.type1().expect("degree 1").dims(), [1, 150, 4, 3]);
//! # Ok::<(), equi_nn::ModelError>(())
//! ```

mod reversible;

use std::sync::Arc;

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Initializer};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, ElementConversion, Int, Tensor};

use crate::attention::{AttentionKind, EquivariantAttention, EquivariantAttentionConfig};
use crate::edges::{EdgeEmbedding, EdgeEmbeddingConfig};
use crate::error::ModelError;
use crate::fiber::{from_public, to_public};
use crate::geometry::{
    by_node_chunks, polynomial_envelope, radial_basis, CouplingTables, EdgeGeometry, NeighborList,
    NeighborOptions,
};
use crate::layers::{
    EquivariantLinear, EquivariantLinearConfig, EquivariantNorm, EquivariantNormConfig,
    FeedForward, FeedForwardConfig,
};
use crate::so2_convolution::{EdgeFrames, MessagePath};
use crate::tensor_product::{DepthwiseTensorProduct, DepthwiseTensorProductConfig};
use so3_math::precision::positive_floor;

pub use reversible::LossGradients;

/// Configuration of an [`Equiformer`], with the reference's option names.
#[derive(Config, Debug)]
pub struct EquiformerConfig {
    /// Hidden channels per degree: one number for all degrees, or one per degree.
    pub dim: Vec<usize>,
    /// Input channels per input degree (default: `dim[0]` scalars only).
    #[config(default = "None")]
    pub dim_in: Option<Vec<usize>>,
    /// Number of degrees `0..num_degrees` of the hidden features.
    #[config(default = 2)]
    pub num_degrees: usize,
    /// Number of input degrees: 1 (scalars) or 2 (scalars and vectors per node).
    #[config(default = 1)]
    pub input_degrees: usize,
    /// Attention heads: one number for all degrees, or one per degree.
    #[config(default = "vec![8]")]
    pub heads: Vec<usize>,
    /// Channels per head: one number for all degrees, or one per degree.
    #[config(default = "vec![24]")]
    pub dim_head: Vec<usize>,
    /// Number of attention + feed-forward blocks.
    #[config(default = 2)]
    pub depth: usize,
    /// Only nodes within this distance are neighbours.
    #[config(default = 1e5)]
    pub valid_radius: f64,
    /// Keep the `k` nearest neighbours (`None`: every other node).
    #[config(default = "None")]
    pub num_neighbors: Option<usize>,
    /// Project the output to one channel per degree: `type0 [B, N]`, `type1 [B, N, 3]`.
    #[config(default = false)]
    pub reduce_dim_out: bool,
    /// Hidden width of the radial networks.
    #[config(default = 64)]
    pub radial_hidden_dim: usize,
    /// Size of the token vocabulary (`None`: continuous input features).
    #[config(default = "None")]
    pub num_tokens: Option<usize>,
    /// Learned absolute position embedding for sequences up to this length.
    #[config(default = "None")]
    pub num_positions: Option<usize>,
    /// Let each node attend to itself.
    #[config(default = true)]
    pub attend_self: bool,
    /// Output projection: linear (true) or an equivariant feed-forward (false).
    #[config(default = true)]
    pub linear_out: bool,
    /// Fraction of the gradient that reaches the embeddings (a stabilising trick).
    #[config(default = 0.5)]
    pub embedding_grad_frac: f64,
    /// One key/value head shared by all query heads.
    #[config(default = false)]
    pub single_headed_kv: bool,
    /// Feed-forward: let degree 0 see the norms of the higher degrees.
    #[config(default = false)]
    pub ff_include_htype_norms: bool,
    /// Attention logits: MLP (default), dot product or L2 distance.
    #[config(default = "AttentionKind::Mlp")]
    pub attention: AttentionKind,
    /// Gate each attention head's output (lets a node attend to nothing).
    #[config(default = true)]
    pub gate_attn_head_outputs: bool,
    /// MLP attention: hidden logits per head.
    #[config(default = 4)]
    pub attn_hidden_dim_mult: usize,
    /// MLP attention: negative slope of the leaky ReLU.
    #[config(default = 0.1)]
    pub attn_leakyrelu_slope: f64,
    /// Feed-forward hidden width multiple.
    #[config(default = 4)]
    pub ff_mult: usize,
    /// Gaussians in the radial basis of edge lengths.
    #[config(default = 16)]
    pub num_radial_basis: usize,
    /// Distance (Angstrom) of the last Gaussian centre.
    #[config(default = 10.0)]
    pub radial_basis_cutoff: f64,
    /// Message implementation: `So3` (Clebsch-Gordan paths) or `So2` (edge
    /// frame, `O(L^3)` instead of `O(L^5)` per edge); `None` takes SO(2) when
    /// `m_max` is set, else the faster one for `num_degrees - 1`
    /// ([`MessagePath::fastest_for`]: SO(2) from degree 1 on).
    #[config(default = "None")]
    pub message_path: Option<MessagePath>,
    /// SO(2) message path: keep the edge-frame orders `|m| <= m_max` (`None`: all).
    #[config(default = "None")]
    pub m_max: Option<usize>,
    /// Vocabulary of bond tokens given per node pair (`None`: no bond tokens).
    #[config(default = "None")]
    pub num_edge_tokens: Option<usize>,
    /// Width of the bond-token embedding fed to the radial networks.
    #[config(default = "None")]
    pub edge_dim: Option<usize>,
    /// Attend to the neighbours of an adjacency matrix first (bonded atoms),
    /// then to up to `num_neighbors` nearest others (0: bonded only).
    #[config(default = false)]
    pub attend_sparse_neighbors: bool,
    /// Derive 2nd, 3rd, ... bond-distance connections up to this many bonds,
    /// embed the bond distance as an edge feature, and (with
    /// `attend_sparse_neighbors`) attend to all pairs that close.
    #[config(default = "None")]
    pub num_adj_degrees_embed: Option<usize>,
    /// Width of the bond-distance embedding.
    #[config(default = 0)]
    pub adj_dim: usize,
    /// At most this many adjacency neighbours per node (the nearest ones).
    #[config(default = "None")]
    pub max_sparse_neighbors: Option<usize>,
    /// Global linear attention heads on the scalars, seeing all nodes (0: off).
    #[config(default = 0)]
    pub num_linear_attn_heads: usize,
    /// Channels per global linear attention head.
    #[config(default = 8)]
    pub linear_attn_dim_head: usize,
    /// Reversible blocks: the fiber travels as two streams, `y1 = x1 +
    /// attention(x2)`, `y2 = x2 + feed_forward(y1)`, averaged after the last
    /// block. [`Equiformer::forward_backward`] then recomputes each block's
    /// activations from its outputs during the backward pass, so that
    /// training memory does not grow with `depth`.
    #[config(default = false)]
    pub reversible: bool,
    /// Build messages (input projection and every attention block) for at
    /// most this many receiving nodes at a time (`None`: all): bounds the
    /// memory of the per-edge tensors when `N K` is large; the output is the
    /// same.
    #[config(default = "None")]
    pub attention_chunk_size: Option<usize>,
    /// Make the outputs smooth in the positions where an edge crosses `valid_radius`: every
    /// neighbour slot is weighted by a polynomial envelope `u(r)` that falls from 1 at
    /// `r = 0` to 0 (with zero slope and curvature) at `valid_radius`. Attention logits
    /// get `ln u` added (a neighbour enters the softmax with weight 0) and the input
    /// projection's mean over neighbours is weighted by `u`. Needed for energies whose
    /// forces are integrated (molecular dynamics) and for fitting forces; off by default,
    /// as in equiformer-pytorch. The attention readouts then run on tensor operations
    /// (their fused kernels take unweighted slots).
    #[config(default = false)]
    pub cutoff_envelope: bool,
}

/// Channel counts resolved from a config.
#[derive(Clone, Debug)]
struct Dims {
    hidden: Vec<usize>,
    input: Vec<usize>,
    heads: Vec<usize>,
    dim_head: Vec<usize>,
}

fn per_degree(name: &str, values: &[usize], degrees: usize) -> Result<Vec<usize>, ModelError> {
    match values.len() {
        1 => Ok(vec![values[0]; degrees]),
        n if n == degrees => Ok(values.to_vec()),
        n => Err(ModelError::Config(format!(
            "{name} has {n} entries; give one for all degrees or one per degree ({degrees})"
        ))),
    }
}

impl EquiformerConfig {
    fn dims(&self) -> Result<Dims, ModelError> {
        if self.num_degrees == 0 {
            return Err(ModelError::Config("num_degrees must be at least 1".into()));
        }
        if self.cutoff_envelope && !self.attend_self {
            return Err(ModelError::Config(
                "cutoff_envelope needs attend_self: without the own slot, the softmax over \
                 neighbours gives a lone neighbour full weight however far it is"
                    .into(),
            ));
        }
        if !(1..=2).contains(&self.input_degrees) {
            return Err(ModelError::Config(format!(
                "input_degrees must be 1 or 2, got {}",
                self.input_degrees
            )));
        }
        if self.input_degrees > self.num_degrees {
            return Err(ModelError::Config(
                "input_degrees cannot exceed num_degrees".into(),
            ));
        }
        let hidden = per_degree("dim", &self.dim, self.num_degrees)?;
        let input = match &self.dim_in {
            None => {
                let mut input = vec![hidden[0]];
                input.extend(hidden.get(1).copied().filter(|_| self.input_degrees == 2));
                input
            }
            Some(values) => per_degree("dim_in", values, self.input_degrees)?,
        };
        let dims = Dims {
            heads: per_degree("heads", &self.heads, self.num_degrees)?,
            dim_head: per_degree("dim_head", &self.dim_head, self.num_degrees)?,
            hidden,
            input,
        };
        let all = dims
            .hidden
            .iter()
            .chain(&dims.input)
            .chain(&dims.heads)
            .chain(&dims.dim_head);
        if all.into_iter().any(|&c| c == 0) {
            return Err(ModelError::Config(
                "dim, dim_in, heads and dim_head must be positive".into(),
            ));
        }
        if self.num_tokens == Some(0) {
            return Err(ModelError::Config("num_tokens must be positive".into()));
        }
        if !(0.0..=1.0).contains(&self.embedding_grad_frac) {
            return Err(ModelError::Config(
                "embedding_grad_frac must lie in [0, 1]".into(),
            ));
        }
        if self.message_path == Some(MessagePath::So3) && self.m_max.is_some() {
            return Err(ModelError::Config(
                "m_max truncates the SO(2) message path; it does not apply to message_path So3"
                    .into(),
            ));
        }
        if self.num_edge_tokens.is_some() && self.edge_dim.is_none_or(|d| d == 0) {
            return Err(ModelError::Config(
                "num_edge_tokens needs a positive edge_dim (the width of the bond embedding)"
                    .into(),
            ));
        }
        if self.num_edge_tokens == Some(0) || self.num_adj_degrees_embed == Some(0) {
            return Err(ModelError::Config(
                "num_edge_tokens and num_adj_degrees_embed must be at least 1".into(),
            ));
        }
        if self.max_sparse_neighbors.is_some() && !self.attend_sparse_neighbors {
            return Err(ModelError::Config(
                "max_sparse_neighbors applies only with attend_sparse_neighbors".into(),
            ));
        }
        if self.num_neighbors == Some(0) && !self.attend_sparse_neighbors {
            return Err(ModelError::Config(
                "num_neighbors = 0 means bonded neighbours only and needs attend_sparse_neighbors"
                    .into(),
            ));
        }
        if self.attention_chunk_size == Some(0) {
            return Err(ModelError::Config(
                "attention_chunk_size must be positive (None attends to all nodes at once)".into(),
            ));
        }
        if self.valid_radius.is_nan()
            || self.valid_radius <= 0.0
            || self.radial_basis_cutoff.is_nan()
            || self.radial_basis_cutoff <= 0.0
            || self.num_radial_basis == 0
        {
            return Err(ModelError::Config(
                "valid_radius, radial_basis_cutoff and num_radial_basis must be positive".into(),
            ));
        }
        Ok(dims)
    }

    fn edge_embedding_config(&self) -> EdgeEmbeddingConfig {
        EdgeEmbeddingConfig::new()
            .with_num_edge_tokens(self.num_edge_tokens)
            .with_edge_dim(self.edge_dim.unwrap_or(0))
            .with_num_adj_degrees_embed(self.num_adj_degrees_embed)
            .with_adj_dim(self.adj_dim)
    }

    /// Build the model on `device`, after checking the configuration.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<Equiformer<B>, ModelError> {
        let dims = self.dims()?;
        let edge_embedding = self.edge_embedding_config();
        let edge_features = self.num_radial_basis + 1 + edge_embedding.width();
        let message_path =
            MessagePath::resolve(self.message_path, self.m_max, self.num_degrees - 1);
        let embedding = |size: usize| {
            EmbeddingConfig::new(size, dims.input[0])
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: 1e-2,
                })
                .init(device)
        };
        let blocks = (0..self.depth)
            .map(|_| EquiformerBlock {
                attention: EquivariantAttentionConfig::new(
                    dims.hidden.clone(),
                    dims.heads.clone(),
                    dims.dim_head.clone(),
                    edge_features,
                )
                .with_kind(self.attention)
                .with_attend_self(self.attend_self)
                .with_single_headed_kv(self.single_headed_kv)
                .with_radial_hidden(self.radial_hidden_dim)
                .with_attn_hidden_dim_mult(self.attn_hidden_dim_mult)
                .with_attn_leakyrelu_slope(self.attn_leakyrelu_slope)
                .with_gate_attn_head_outputs(self.gate_attn_head_outputs)
                .with_num_linear_attn_heads(self.num_linear_attn_heads)
                .with_linear_attn_dim_head(self.linear_attn_dim_head)
                .with_message_path(Some(message_path))
                .with_m_max(self.m_max)
                .init(device),
                feed_forward: FeedForwardConfig::new(dims.hidden.clone())
                    .with_mult(self.ff_mult)
                    .with_include_htype_norms(self.ff_include_htype_norms)
                    .init(device),
            })
            .collect();
        let ones = vec![1; self.num_degrees];
        let output = if !self.reduce_dim_out {
            None
        } else if self.linear_out {
            Some(OutputProjection::Linear(
                EquivariantLinearConfig::new(dims.hidden.clone(), ones).init(device),
            ))
        } else {
            Some(OutputProjection::FeedForward(
                FeedForwardConfig::new(dims.hidden.clone())
                    .with_dims_out(Some(ones))
                    .with_mult(self.ff_mult)
                    .init(device),
            ))
        };
        let model = Equiformer {
            token_embedding: self.num_tokens.map(embedding),
            position_embedding: self.num_positions.map(embedding),
            input_projection: DepthwiseTensorProductConfig::new(
                dims.input.clone(),
                dims.hidden.clone(),
                edge_features,
            )
            .with_radial_hidden(self.radial_hidden_dim)
            .with_message_path(Some(message_path))
            .with_m_max(self.m_max)
            .init(device),
            blocks,
            reversible: self.reversible,
            attention_chunk_size: self.attention_chunk_size,
            norm: EquivariantNormConfig::new(dims.hidden.clone()).init(device),
            output,
            couplings: Arc::new(CouplingTables::new(self.num_degrees - 1)),
            message_path,
            edge_embedding: edge_embedding.init(device),
            attend_sparse_neighbors: self.attend_sparse_neighbors,
            max_sparse_neighbors: self.max_sparse_neighbors,
            dims_in: dims.input,
            num_tokens: self.num_tokens,
            num_positions: self.num_positions,
            neighbor_options: NeighborOptions {
                num_neighbors: self.num_neighbors,
                valid_radius: self.valid_radius,
            },
            embedding_grad_frac: self.embedding_grad_frac,
            num_radial_basis: self.num_radial_basis,
            radial_basis_cutoff: self.radial_basis_cutoff,
            cutoff_envelope: self.cutoff_envelope,
        };
        // Draw every lazily initialised weight now, so that clones share them.
        Ok(model.map(&mut Materialize))
    }
}

/// A mapper that leaves parameters unchanged but forces their initialisation.
struct Materialize;

impl<B: Backend> burn::module::ModuleMapper<B> for Materialize {}

/// One pre-norm attention block and one pre-norm feed-forward block, each residual.
#[derive(Module, Debug)]
pub struct EquiformerBlock<B: Backend> {
    attention: EquivariantAttention<B>,
    feed_forward: FeedForward<B>,
}

impl<B: Backend> EquiformerBlock<B> {
    /// `x + attention(x)`, then `x + feed_forward(x)`.
    ///
    /// `nodes_per_chunk` bounds the receiving nodes attended at once
    /// ([`EquivariantAttention::forward_chunked`]).
    ///
    /// # Shapes
    /// - `fiber[l]`: `[B, N, 2l+1, C_l]`, output the same
    pub fn forward(
        &self,
        fiber: Vec<Tensor<B, 4>>,
        geometry: &EdgeGeometry<B>,
        nodes_per_chunk: Option<usize>,
    ) -> Vec<Tensor<B, 4>> {
        let attended = self
            .attention
            .forward_chunked(fiber.clone(), geometry, nodes_per_chunk);
        let fiber = add(fiber, attended);
        add(fiber.clone(), self.feed_forward.forward(fiber))
    }

    /// The reversible form: `y1 = x1 + attention(x2)`, `y2 = x2 + feed_forward(y1)`.
    ///
    /// # Shapes
    /// - `x1[l]`, `x2[l]`: `[B, N, 2l+1, C_l]`, outputs the same
    pub fn forward_reversible(
        &self,
        (x1, x2): (Vec<Tensor<B, 4>>, Vec<Tensor<B, 4>>),
        geometry: &EdgeGeometry<B>,
        nodes_per_chunk: Option<usize>,
    ) -> (Vec<Tensor<B, 4>>, Vec<Tensor<B, 4>>) {
        let y1 = add(
            x1,
            self.attention
                .forward_chunked(x2.clone(), geometry, nodes_per_chunk),
        );
        let y2 = add(x2, self.feed_forward.forward(y1.clone()));
        (y1, y2)
    }
}

fn add<B: Backend>(a: Vec<Tensor<B, 4>>, b: Vec<Tensor<B, 4>>) -> Vec<Tensor<B, 4>> {
    a.into_iter().zip(b).map(|(x, y)| x + y).collect()
}

/// The optional output projection of `reduce_dim_out`.
#[derive(Module, Debug)]
enum OutputProjection<B: Backend> {
    Linear(EquivariantLinear<B>),
    FeedForward(FeedForward<B>),
}

/// The Equiformer model; see the [module docs](self).
#[derive(Module, Debug)]
pub struct Equiformer<B: Backend> {
    token_embedding: Option<Embedding<B>>,
    position_embedding: Option<Embedding<B>>,
    input_projection: DepthwiseTensorProduct<B>,
    blocks: Vec<EquiformerBlock<B>>,
    reversible: bool,
    attention_chunk_size: Option<usize>,
    norm: EquivariantNorm<B>,
    output: Option<OutputProjection<B>>,
    couplings: Arc<CouplingTables>,
    message_path: MessagePath,
    edge_embedding: EdgeEmbedding<B>,
    attend_sparse_neighbors: bool,
    max_sparse_neighbors: Option<usize>,
    dims_in: Vec<usize>,
    num_tokens: Option<usize>,
    num_positions: Option<usize>,
    neighbor_options: NeighborOptions,
    embedding_grad_frac: f64,
    num_radial_basis: usize,
    radial_basis_cutoff: f64,
    cutoff_envelope: bool,
}

/// Node inputs: integer tokens or continuous features.
#[derive(Clone, Debug)]
pub enum NodeInput<B: Backend> {
    /// Token ids `[B, N]`, embedded (needs `num_tokens`).
    Tokens(Tensor<B, 2, Int>),
    /// Scalar features `[B, N, dim_in[0]]`.
    Features(Tensor<B, 3>),
}

/// Everything one forward pass takes.
#[derive(Clone, Debug)]
pub struct EquiformerInput<B: Backend> {
    /// Tokens or scalar features per node.
    pub nodes: NodeInput<B>,
    /// Degree-1 input features `[B, N, dim_in[1], 3]`, Cartesian (with `input_degrees = 2`).
    pub vectors: Option<Tensor<B, 4>>,
    /// Coordinates `[B, N, 3]`.
    pub coords: Tensor<B, 3>,
    /// Which nodes are real, `[B, N]` (default: all).
    pub mask: Option<Tensor<B, 2, Bool>>,
    /// Return node outputs averaged over the real nodes of each graph (`[B, ...]` as `N = 1`).
    pub return_pooled: bool,
    /// Bond tokens per node pair `[B, N, N]` (with `num_edge_tokens`).
    pub edges: Option<Tensor<B, 3, Int>>,
    /// Adjacency `[B, N, N]` (with `attend_sparse_neighbors` or `num_adj_degrees_embed`).
    pub adjacency: Option<Tensor<B, 3, Bool>>,
    /// Neighbours chosen by the caller (a periodic neighbour list, see
    /// [`NeighborList::from_displacements`]); `None`: the nearest within `valid_radius`,
    /// chosen from `coords`. Given neighbours take the place of the choice and of the edge
    /// vectors: `coords` are then only checked, and gradients reach the displacements.
    pub neighbors: Option<NeighborList<B>>,
}

impl<B: Backend> EquiformerInput<B> {
    /// Token input with coordinates.
    pub fn tokens(tokens: Tensor<B, 2, Int>, coords: Tensor<B, 3>) -> Self {
        Self::new(NodeInput::Tokens(tokens), coords)
    }

    /// Continuous scalar input with coordinates.
    pub fn features(features: Tensor<B, 3>, coords: Tensor<B, 3>) -> Self {
        Self::new(NodeInput::Features(features), coords)
    }

    fn new(nodes: NodeInput<B>, coords: Tensor<B, 3>) -> Self {
        EquiformerInput {
            nodes,
            vectors: None,
            coords,
            mask: None,
            return_pooled: false,
            edges: None,
            adjacency: None,
            neighbors: None,
        }
    }

    /// Set the node mask `[B, N]`.
    pub fn with_mask(mut self, mask: Tensor<B, 2, Bool>) -> Self {
        self.mask = Some(mask);
        self
    }

    /// Add degree-1 input features `[B, N, C, 3]` (Cartesian).
    pub fn with_vectors(mut self, vectors: Tensor<B, 4>) -> Self {
        self.vectors = Some(vectors);
        self
    }

    /// Bond tokens per node pair `[B, N, N]`.
    pub fn with_edges(mut self, edges: Tensor<B, 3, Int>) -> Self {
        self.edges = Some(edges);
        self
    }

    /// Adjacency matrix `[B, N, N]` (bonds).
    pub fn with_adjacency(mut self, adjacency: Tensor<B, 3, Bool>) -> Self {
        self.adjacency = Some(adjacency);
        self
    }

    /// Use these neighbours and edge vectors instead of choosing them from `coords`
    /// (`[B, N, K]` slots, see [`NeighborList::from_displacements`]).
    pub fn with_neighbors(mut self, neighbors: NeighborList<B>) -> Self {
        self.neighbors = Some(neighbors);
        self
    }

    /// Average the outputs over the real nodes of each graph.
    pub fn with_return_pooled(mut self, pooled: bool) -> Self {
        self.return_pooled = pooled;
        self
    }
}

/// Model outputs in the public layout.
#[derive(Clone, Debug)]
pub struct EquiformerOutput<B: Backend> {
    /// One tensor per degree, `[B, N, C_l, 2l+1]`, degree 1 in Cartesian order.
    /// Padded nodes are zero. With `return_pooled`, `N = 1`.
    pub fiber: Vec<Tensor<B, 4>>,
}

impl<B: Backend> EquiformerOutput<B> {
    /// Degree-0 output `[B, N, C_0]`.
    pub fn type0(&self) -> Tensor<B, 3> {
        self.fiber[0].clone().squeeze_dim::<3>(3)
    }

    /// Degree-1 output `[B, N, C_1, 3]`, Cartesian; `None` with one degree.
    pub fn type1(&self) -> Option<Tensor<B, 4>> {
        self.fiber.get(1).cloned()
    }

    /// With one channel per degree (`reduce_dim_out`): `type0 [B, N]` and `type1 [B, N, 3]`.
    pub fn reduced(&self) -> Option<(Tensor<B, 2>, Option<Tensor<B, 3>>)> {
        if self.fiber.iter().any(|t| t.dims()[2] != 1) {
            return None;
        }
        let type0 = self.fiber[0].clone().squeeze_dims::<2>(&[2, 3]);
        let type1 = self.type1().map(|t| t.squeeze_dim::<3>(2));
        Some((type0, type1))
    }
}

impl<B: Backend> Equiformer<B> {
    /// Run the model after validating the input.
    ///
    /// # Shapes
    /// - tokens `[B, N]` or features `[B, N, dim_in[0]]`; optional vectors `[B, N, dim_in[1], 3]`
    /// - coords `[B, N, 3]`, mask `[B, N]`
    /// - output fiber `[l]`: `[B, N, C_l, 2l+1]` (`C_l = 1` with `reduce_dim_out`)
    ///
    /// # Errors
    /// Shape mismatches, non-finite coordinates or features of real nodes,
    /// tokens outside `0..num_tokens`, graphs with no real node, and inputs
    /// the configuration does not expect.
    pub fn forward(&self, input: EquiformerInput<B>) -> Result<EquiformerOutput<B>, ModelError> {
        let mask = self.validate(&input)?;
        Ok(self.forward_valid(input, mask))
    }

    fn validate(&self, input: &EquiformerInput<B>) -> Result<Tensor<B, 2, Bool>, ModelError> {
        crate::validation::validate_input(self, input)
    }

    pub(crate) fn input_spec(&self) -> crate::validation::InputSpec {
        crate::validation::InputSpec {
            dims_in: self.dims_in.clone(),
            num_tokens: self.num_tokens,
            num_positions: self.num_positions,
            num_edge_tokens: self.edge_embedding.num_edge_tokens(),
            needs_adjacency: self.attend_sparse_neighbors || self.edge_embedding.uses_adjacency(),
            attends_bonds: self.attend_sparse_neighbors,
        }
    }

    /// The radius within which nodes are neighbours (Angstrom, or the unit of the
    /// coordinates): the cutoff of a neighbour list handed in with
    /// [`EquiformerInput::with_neighbors`].
    pub fn valid_radius(&self) -> f64 {
        self.neighbor_options.valid_radius
    }

    /// The edge geometry shared by every block.
    fn geometry(
        &self,
        coords: Tensor<B, 3>,
        mask: Tensor<B, 2, Bool>,
        edges: Option<Tensor<B, 3, Int>>,
        adjacency: Option<Tensor<B, 3, Bool>>,
        given: Option<NeighborList<B>>,
    ) -> EdgeGeometry<B> {
        let dtype = coords.dtype();
        let neighbors = match given {
            Some(given) => given,
            None => self.nearest_neighbors(coords, mask.clone(), adjacency.clone()),
        };
        let distance = neighbors
            .relative
            .clone()
            .square()
            .sum_dim(3)
            .clamp_min(positive_floor(1e-24, dtype))
            .sqrt(); // [B, N, K, 1]
        let radial_features = radial_basis(
            distance.clone(),
            self.num_radial_basis,
            self.radial_basis_cutoff,
        );
        let radial_features = match self
            .edge_embedding
            .forward(edges, adjacency, &neighbors.index)
        {
            Some(edge_features) => Tensor::cat(vec![radial_features, edge_features], 3),
            None => radial_features,
        };
        let couplings = match self.message_path {
            MessagePath::So3 => self.couplings.couplings(neighbors.relative.clone()),
            MessagePath::So2 => Vec::new(),
        };
        let frames = (self.message_path == MessagePath::So2)
            .then(|| EdgeFrames::new(&neighbors, self.couplings.l_max()));
        let envelope = self.cutoff_envelope.then(|| {
            polynomial_envelope(distance.clone(), self.neighbor_options.valid_radius)
                * neighbors.mask.clone().float()
        });
        EdgeGeometry {
            envelope,
            node_mask: mask,
            neighbors,
            distance,
            radial_features,
            couplings,
            frames,
        }
    }

    /// The neighbours chosen from the coordinates: the nearest within `valid_radius`, and
    /// the bonded ones first with `attend_sparse_neighbors`.
    fn nearest_neighbors(
        &self,
        coords: Tensor<B, 3>,
        mask: Tensor<B, 2, Bool>,
        adjacency: Option<Tensor<B, 3, Bool>>,
    ) -> NeighborList<B> {
        let bonded = adjacency
            .filter(|_| self.attend_sparse_neighbors)
            .map(|adjacency| self.edge_embedding.reachable(adjacency));
        let sparse_slots = bonded.as_ref().map_or(0, |bonded| {
            let most: i64 = bonded.clone().int().sum_dim(2).max().into_scalar().elem();
            let most = most.max(0) as usize;
            self.max_sparse_neighbors.map_or(most, |cap| most.min(cap))
        });
        NeighborList::nearest(coords, mask, bonded, sparse_slots, &self.neighbor_options)
    }

    fn forward_valid(
        &self,
        input: EquiformerInput<B>,
        mask: Tensor<B, 2, Bool>,
    ) -> EquiformerOutput<B> {
        let return_pooled = input.return_pooled;
        let (fiber, geometry) = self.embed(input, mask.clone());
        let fiber = if self.reversible {
            let mut streams = (fiber.clone(), fiber);
            for block in &self.blocks {
                streams = block.forward_reversible(streams, &geometry, self.attention_chunk_size);
            }
            merge_streams(streams)
        } else {
            let mut fiber = fiber;
            for block in &self.blocks {
                fiber = block.forward(fiber, &geometry, self.attention_chunk_size);
            }
            fiber
        };
        self.head(fiber, mask, return_pooled)
    }

    /// Node embedding, edge geometry and the input projection: everything
    /// before the first block.
    ///
    /// # Shapes
    /// - output fiber `[l]`: `[B, N, 2l+1, C_l]`
    fn embed(
        &self,
        input: EquiformerInput<B>,
        mask: Tensor<B, 2, Bool>,
    ) -> (Vec<Tensor<B, 4>>, EdgeGeometry<B>) {
        let scalars = match input.nodes {
            NodeInput::Tokens(tokens) => {
                let embedding = self
                    .token_embedding
                    .as_ref()
                    .expect("validated: tokens need num_tokens");
                // Padded nodes may carry any token; give them a valid one.
                embedding.forward(tokens.mask_fill(mask.clone().bool_not(), 0))
            }
            NodeInput::Features(features) => features,
        }; // [B, N, C0]
        let [_, n, _] = scalars.dims();
        let scalars = match &self.position_embedding {
            Some(embedding) => {
                let positions =
                    Tensor::<B, 1, Int>::arange(0..n as i64, &scalars.device()).reshape([1, n]);
                scalars + embedding.forward(positions)
            }
            None => scalars,
        };
        let frac = self.embedding_grad_frac;
        let scalars = scalars.clone() * frac + scalars.detach() * (1.0 - frac);
        let mut fiber = vec![scalars.unsqueeze_dim::<4>(2)]; // [B, N, 1, C0]
        if let Some(vectors) = input.vectors {
            fiber.push(from_public(1, vectors)); // [B, N, 3, C1]
        }
        let geometry = self.geometry(
            input.coords,
            mask,
            input.edges,
            input.adjacency,
            input.neighbors,
        );
        let projected = by_node_chunks(n, self.attention_chunk_size, |start, len| {
            if len == n {
                return self.input_projection.forward(&fiber, &geometry);
            }
            let receivers: Vec<Tensor<B, 4>> = fiber
                .iter()
                .map(|t| t.clone().narrow(1, start, len))
                .collect();
            self.input_projection
                .forward_to(&receivers, &fiber, &geometry.narrow_nodes(start, len))
        });
        let fiber = projected
            .into_iter()
            .map(|t| t.squeeze_dim::<4>(2))
            .collect();
        (fiber, geometry)
    }

    /// Final norm, output projection, padding zeroed, optional pooling, public layout.
    fn head(
        &self,
        fiber: Vec<Tensor<B, 4>>,
        mask: Tensor<B, 2, Bool>,
        return_pooled: bool,
    ) -> EquiformerOutput<B> {
        let [batch, n] = mask.dims();
        let fiber = self.norm.forward(fiber);
        let fiber = match &self.output {
            Some(OutputProjection::Linear(linear)) => linear.forward(fiber),
            Some(OutputProjection::FeedForward(feed_forward)) => feed_forward.forward(fiber),
            None => fiber,
        };
        let node_weight = mask.float().reshape([batch, n, 1, 1]);
        let fiber = fiber.into_iter().map(|t| t * node_weight.clone());
        let fiber: Vec<Tensor<B, 4>> = if return_pooled {
            let count = node_weight.clone().sum_dim(1).clamp_min(1.0); // [B, 1, 1, 1]
            fiber.map(|t| t.sum_dim(1) / count.clone()).collect()
        } else {
            fiber.collect()
        };
        EquiformerOutput {
            fiber: fiber
                .into_iter()
                .enumerate()
                .map(|(l, t)| to_public(l, t))
                .collect(),
        }
    }
}

/// The two streams of the reversible blocks, averaged into one fiber.
fn merge_streams<B: Backend>(
    (x1, x2): (Vec<Tensor<B, 4>>, Vec<Tensor<B, 4>>),
) -> Vec<Tensor<B, 4>> {
    x1.into_iter().zip(x2).map(|(a, b)| (a + b) * 0.5).collect()
}
