//! Edge inputs: bond tokens per node pair and adjacency-derived bond distances.
//!
//! Both become invariant features of each neighbour slot, appended to the
//! radial basis that feeds every radial network.
//!
//! A molecule with its bonds (the reference's atoms, bonds, coords, mask):
//!
//! ```
//! use burn::backend::NdArray;
//! use burn::tensor::{Bool, Distribution, Int, Tensor, TensorData};
//! use equi_nn::{EquiformerConfig, EquiformerInput};
//!
//! let device = Default::default();
//! let model = EquiformerConfig::new(vec![8, 4])
//!     .with_num_tokens(Some(10))
//!     .with_heads(vec![2])
//!     .with_dim_head(vec![4])
//!     .with_depth(1)
//!     .with_num_edge_tokens(Some(3)) // no bond, single, double
//!     .with_edge_dim(Some(4))
//!     .with_attend_sparse_neighbors(true) // bonded atoms first ...
//!     .with_num_neighbors(Some(1)) // ... then the nearest other one
//!     .with_num_adj_degrees_embed(Some(2)) // embed "1 bond" / "2 bonds" apart
//!     .with_adj_dim(2)
//!     .init::<NdArray>(&device)?;
//!
//! // A chain of four atoms: 0-1 single, 1=2 double, 2-3 single.
//! let (mut bonds, mut adjacency) = (vec![0i64; 16], vec![false; 16]);
//! for (i, j, kind) in [(0, 1, 1), (1, 2, 2), (2, 3, 1)] {
//!     for (a, b) in [(i, j), (j, i)] {
//!         bonds[a * 4 + b] = kind;
//!         adjacency[a * 4 + b] = true;
//!     }
//! }
//! let bonds = Tensor::<NdArray, 3, Int>::from_data(TensorData::new(bonds, [1, 4, 4]), &device);
//! let adjacency =
//!     Tensor::<NdArray, 3, Bool>::from_data(TensorData::new(adjacency, [1, 4, 4]), &device);
//! let atoms = Tensor::<NdArray, 2, Int>::from_ints([[6, 6, 8, 7]], &device);
//! let coords = Tensor::<NdArray, 3>::random([1, 4, 3], Distribution::Default, &device);
//! let input = EquiformerInput::tokens(atoms, coords)
//!     .with_edges(bonds)
//!     .with_adjacency(adjacency);
//! assert_eq!(model.forward(input)?.type0().dims(), [1, 4, 8]);
//! # Ok::<(), equi_nn::ModelError>(())
//! ```

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor};

/// Configuration of an [`EdgeEmbedding`].
#[derive(Config, Debug)]
pub struct EdgeEmbeddingConfig {
    /// Vocabulary of bond tokens (`None`: no bond tokens).
    #[config(default = "None")]
    pub num_edge_tokens: Option<usize>,
    /// Width of the bond-token embedding.
    #[config(default = 0)]
    pub edge_dim: usize,
    /// Embed how many bonds apart two nodes are, up to this many (`None`: off).
    #[config(default = "None")]
    pub num_adj_degrees_embed: Option<usize>,
    /// Width of the bond-distance embedding.
    #[config(default = 0)]
    pub adj_dim: usize,
}

/// Embeddings of bond tokens and bond distances, gathered per neighbour slot.
#[derive(Module, Debug)]
pub struct EdgeEmbedding<B: Backend> {
    tokens: Option<Embedding<B>>,
    bond_distance: Option<Embedding<B>>,
    num_edge_tokens: Option<usize>,
    num_adj_degrees: Option<usize>,
}

impl EdgeEmbeddingConfig {
    /// Width of the features this adds to every edge.
    pub fn width(&self) -> usize {
        let tokens = if self.num_edge_tokens.is_some() {
            self.edge_dim
        } else {
            0
        };
        let degrees = if self.num_adj_degrees_embed.is_some() {
            self.adj_dim
        } else {
            0
        };
        tokens + degrees
    }

    /// Build the embeddings on `device`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> EdgeEmbedding<B> {
        EdgeEmbedding {
            tokens: self
                .num_edge_tokens
                .filter(|_| self.edge_dim > 0)
                .map(|n| EmbeddingConfig::new(n, self.edge_dim).init(device)),
            bond_distance: self
                .num_adj_degrees_embed
                .filter(|_| self.adj_dim > 0)
                .map(|d| EmbeddingConfig::new(d + 1, self.adj_dim).init(device)),
            num_edge_tokens: self.num_edge_tokens,
            num_adj_degrees: self.num_adj_degrees_embed,
        }
    }
}

impl<B: Backend> EdgeEmbedding<B> {
    /// The bond-token vocabulary, when the model takes bond tokens.
    pub fn num_edge_tokens(&self) -> Option<usize> {
        self.num_edge_tokens
    }

    /// Whether bond distances are derived from an adjacency matrix.
    pub fn uses_adjacency(&self) -> bool {
        self.num_adj_degrees.is_some()
    }

    /// Pairs within `num_adj_degrees_embed` bonds (or the adjacency itself when that is off).
    ///
    /// # Shapes
    /// - `adjacency`: `[B, N, N]`, output `[B, N, N]`
    pub fn reachable(&self, adjacency: Tensor<B, 3, Bool>) -> Tensor<B, 3, Bool> {
        match self.num_adj_degrees {
            Some(degrees) => bond_distances(adjacency, degrees).greater_elem(0),
            None => adjacency,
        }
    }

    /// Invariant features per neighbour slot, `None` when there are none.
    ///
    /// # Shapes
    /// - `edge_tokens`: `[B, N, N]`, `adjacency`: `[B, N, N]`, `neighbors`: `[B, N, K]`
    /// - output: `[B, N, K, width]`
    pub fn forward(
        &self,
        edge_tokens: Option<Tensor<B, 3, Int>>,
        adjacency: Option<Tensor<B, 3, Bool>>,
        neighbors: &Tensor<B, 3, Int>,
    ) -> Option<Tensor<B, 4>> {
        let mut features = Vec::new();
        if let (Some(embedding), Some(tokens)) = (&self.tokens, edge_tokens) {
            features.push(
                embedding
                    .forward(gather_pairs(tokens, neighbors))
                    .unsqueeze_dim::<4>(2),
            );
        }
        if let (Some(embedding), Some(degrees), Some(adjacency)) =
            (&self.bond_distance, self.num_adj_degrees, adjacency)
        {
            let distances = bond_distances(adjacency, degrees);
            features.push(
                embedding
                    .forward(gather_pairs(distances, neighbors))
                    .unsqueeze_dim::<4>(2),
            );
        }
        if features.is_empty() {
            return None;
        }
        // Each embedding gave [B, N*K, 1, D]; restore the slot axis.
        let [batch, n, k] = neighbors.dims();
        let joined = Tensor::cat(features, 3); // [B, N*K, 1, width]
        let width = joined.dims()[3];
        Some(joined.reshape([batch, n, k, width]))
    }
}

/// For each pair, the number of bonds on the shortest path, or 0 when it is
/// more than `max_degree` bonds (or the pair is a node with itself).
///
/// # Shapes
/// - `adjacency`: `[B, N, N]`, output `[B, N, N]`
pub fn bond_distances<B: Backend>(
    adjacency: Tensor<B, 3, Bool>,
    max_degree: usize,
) -> Tensor<B, 3, Int> {
    let [_, n, _] = adjacency.dims();
    let device = adjacency.device();
    let not_self = Tensor::<B, 2, Int>::eye(n, &device)
        .equal_elem(0)
        .unsqueeze::<3>();
    let step = adjacency.float(); // [B, N, N]
    let mut reached = step.clone().greater_elem(0.0).bool_and(not_self.clone());
    let mut distances = reached.clone().int(); // 1 for direct bonds
    let mut frontier = step.clone();
    for degree in 2..=max_degree {
        frontier = frontier.matmul(step.clone()).clamp_max(1.0); // paths of `degree` bonds
        let new = frontier
            .clone()
            .greater_elem(0.0)
            .bool_and(reached.clone().bool_not())
            .bool_and(not_self.clone());
        distances = distances.mask_fill(new.clone(), degree as i64);
        reached = reached.bool_or(new);
    }
    distances
}

/// Values of node pairs `(i, j)` at the neighbour slots of each node.
///
/// # Shapes
/// - `pairs`: `[B, N, N]`, `neighbors`: `[B, N, K]`, output `[B, N * K]`
fn gather_pairs<B: Backend>(
    pairs: Tensor<B, 3, Int>,
    neighbors: &Tensor<B, 3, Int>,
) -> Tensor<B, 2, Int> {
    let [batch, n, k] = neighbors.dims();
    pairs.gather(2, neighbors.clone()).reshape([batch, n * k])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use burn::tensor::TensorData;

    #[test]
    fn bond_distances_of_a_chain() {
        let device = Default::default();
        // 0 - 1 - 2 - 3 - 4
        let mut adjacency = vec![false; 25];
        for i in 0..4 {
            adjacency[i * 5 + i + 1] = true;
            adjacency[(i + 1) * 5 + i] = true;
        }
        let adjacency = Tensor::<NdArray<f64>, 3, Bool>::from_data(
            TensorData::new(adjacency, [1, 5, 5]),
            &device,
        );
        let distances: Vec<i64> = bond_distances(adjacency, 3)
            .into_data()
            .convert::<i64>()
            .to_vec()
            .unwrap();
        assert_eq!(&distances[..5], &[0, 1, 2, 3, 0]);
        assert_eq!(&distances[10..15], &[2, 1, 0, 1, 2]);
    }
}
