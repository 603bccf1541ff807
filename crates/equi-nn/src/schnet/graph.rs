//! Radius graph on padded batches of molecules, built with tensor operations.

use burn::tensor::{backend::Backend, Bool, Int, Tensor};

/// Neighbour lists of a padded batch: for every atom `i`, the slots
/// `k = 0..K` hold its neighbours `j` sorted by increasing distance.
///
/// Messages flow along the edge `j -> i` and are summed at `i`. Slots beyond
/// the real neighbours of an atom are switched off by [`edge_mask`](Self::edge_mask);
/// their `neighbors` entries are arbitrary valid atom indices and their
/// `distances` are zero.
#[derive(Debug, Clone)]
pub struct NeighborList<B: Backend> {
    /// Index of neighbour `j` inside its own molecule, `[B, N, K]`.
    pub neighbors: Tensor<B, 3, Int>,
    /// Distance `|r_i - r_j|` in the units of the positions, `[B, N, K]`
    /// (zero on masked slots, differentiable with respect to the positions).
    pub distances: Tensor<B, 3>,
    /// Whether slot `k` of atom `i` is a real edge, `[B, N, K]`.
    pub edge_mask: Tensor<B, 3, Bool>,
}

impl<B: Backend> NeighborList<B> {
    /// A neighbour list from given displacement vectors (a periodic neighbour list, where
    /// an atom may neighbour images of itself and of others).
    ///
    /// Slots are real edges where `edge_mask` is true and `0 < |r| < cutoff`; the distances
    /// are differentiable with respect to `displacements`. Masked slots point at atom 0.
    ///
    /// # Shapes
    ///
    /// - neighbors: `[B, N, K]` (index inside its own structure), edge_mask: `[B, N, K]`
    /// - displacements: `[B, N, K, 3]`, from the atom to its neighbour
    pub fn from_displacements(
        neighbors: Tensor<B, 3, Int>,
        edge_mask: Tensor<B, 3, Bool>,
        displacements: Tensor<B, 4>,
        cutoff: f64,
    ) -> Self {
        let squared: Tensor<B, 3> = displacements.square().sum_dim(3).squeeze_dim(3); // [B, N, K]
        let frozen = squared.clone().detach();
        let edge_mask = edge_mask
            .bool_and(frozen.clone().greater_elem(0.0))
            .bool_and(frozen.lower_elem(cutoff * cutoff));
        let off = edge_mask.clone().bool_not();
        // Masked slots take the square root of 1, so their (zero) gradient stays finite.
        let distances = squared
            .mask_fill(off.clone(), 1.0)
            .sqrt()
            .mask_fill(off.clone(), 0.0);
        NeighborList {
            neighbors: neighbors.mask_fill(off, 0),
            distances,
            edge_mask,
        }
    }
}

/// Builds the radius graph of every molecule in a padded batch.
///
/// Atom `j` is a neighbour of atom `i` when both are real atoms (`mask` is
/// true), they belong to the same molecule, and `0 < |r_i - r_j| < cutoff`.
/// Each atom keeps at most `max_num_neighbors` neighbours, the nearest ones;
/// which atoms are kept among several at exactly the same distance is left
/// to the backend's sort.
///
/// Coincident atoms (distance exactly zero, which includes the atom itself)
/// are never connected, so no distance used downstream is zero and the
/// gradient of `|r_i - r_j|` is never evaluated at its singularity.
///
/// The candidate search is dense: it costs `O(N^2)` memory per molecule.
/// Neighbour selection uses detached positions; the returned distances are
/// recomputed from `positions` so that gradients flow through them.
///
/// # Shapes
///
/// - positions: `[B, N, 3]`
/// - mask: `[B, N]`
/// - output: [`NeighborList`] with tensors `[B, N, K]`, `K = min(max_num_neighbors, N)`
pub fn radius_graph<B: Backend>(
    positions: Tensor<B, 3>,
    mask: Tensor<B, 2, Bool>,
    cutoff: f64,
    max_num_neighbors: usize,
) -> NeighborList<B> {
    let [batch, atoms, _] = positions.dims();
    let slots = max_num_neighbors.min(atoms);
    let cutoff_squared = cutoff * cutoff;

    let frozen = positions.clone().detach();
    let displacement = frozen.clone().unsqueeze_dim::<4>(2) - frozen.unsqueeze_dim::<4>(1); // [B, N, N, 3]
    let squared: Tensor<B, 3> = displacement.square().sum_dim(3).squeeze_dim(3); // [B, N, N]

    let pair_shape = [batch, atoms, atoms];
    let both_real = mask
        .clone()
        .unsqueeze_dim::<3>(2)
        .expand(pair_shape)
        .bool_and(mask.unsqueeze_dim::<3>(1).expand(pair_shape)); // [B, N, N]
    let candidate = both_real
        .bool_and(squared.clone().greater_elem(0.0))
        .bool_and(squared.clone().lower_elem(cutoff_squared));

    let key = squared.mask_fill(candidate.bool_not(), f64::INFINITY); // [B, N, N]
    let (sorted_key, order) = key.sort_with_indices(2);
    let neighbors = order.narrow(2, 0, slots); // [B, N, K]
    let edge_mask = sorted_key.narrow(2, 0, slots).lower_elem(cutoff_squared); // [B, N, K]

    let neighbor_positions = gather_neighbors(positions.clone(), neighbors.clone()); // [B, N, K, 3]
    let edge_vectors = positions.unsqueeze_dim::<4>(2) - neighbor_positions; // [B, N, K, 3]
    let edge_squared: Tensor<B, 3> = edge_vectors.square().sum_dim(3).squeeze_dim(3); // [B, N, K]
    let off = edge_mask.clone().bool_not();
    // Masked slots take the square root of 1, so their (zero) gradient stays finite.
    let distances = edge_squared
        .mask_fill(off.clone(), 1.0)
        .sqrt()
        .mask_fill(off, 0.0);

    NeighborList {
        neighbors,
        distances,
        edge_mask,
    }
}

/// Gathers per-atom features at the neighbour slots of every atom.
///
/// # Shapes
///
/// - features: `[B, N, F]`
/// - neighbors: `[B, N, K]` (indices into the `N` axis of the same molecule)
/// - output: `[B, N, K, F]`
pub fn gather_neighbors<B: Backend>(
    features: Tensor<B, 3>,
    neighbors: Tensor<B, 3, Int>,
) -> Tensor<B, 4> {
    let [batch, atoms, channels] = features.dims();
    let [_, _, slots] = neighbors.dims();
    let index =
        neighbors
            .reshape([batch, atoms * slots, 1])
            .expand([batch, atoms * slots, channels]); // [B, N * K, F]
    features
        .gather(1, index)
        .reshape([batch, atoms, slots, channels])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, NdArray};
    use burn::tensor::TensorData;

    type TestBackend = NdArray<f64>;

    fn graph_of(
        points: Vec<[f64; 3]>,
        real: Vec<bool>,
        cutoff: f64,
        max_num_neighbors: usize,
    ) -> NeighborList<TestBackend> {
        let device = Default::default();
        let atoms = points.len();
        let flat: Vec<f64> = points.into_iter().flatten().collect();
        let positions =
            Tensor::<TestBackend, 3>::from_data(TensorData::new(flat, [1, atoms, 3]), &device);
        let mask =
            Tensor::<TestBackend, 2, Bool>::from_data(TensorData::new(real, [1, atoms]), &device);
        radius_graph(positions, mask, cutoff, max_num_neighbors)
    }

    /// Sorted `(i, j, distance)` triples of the real edges.
    fn edges(graph: &NeighborList<TestBackend>) -> Vec<(usize, usize, f64)> {
        let [_, atoms, slots] = graph.neighbors.dims();
        let neighbors: Vec<i64> = graph.neighbors.to_data().iter::<i64>().collect();
        let distances: Vec<f64> = graph.distances.to_data().iter::<f64>().collect();
        let mask: Vec<bool> = graph.edge_mask.to_data().iter::<bool>().collect();
        let mut out = Vec::new();
        for i in 0..atoms {
            for k in 0..slots {
                let slot = i * slots + k;
                if mask[slot] {
                    let j = usize::try_from(neighbors[slot]).expect("non-negative index");
                    out.push((i, j, distances[slot]));
                }
            }
        }
        out.sort_by_key(|e| (e.0, e.1));
        out
    }

    #[test]
    fn connects_pairs_within_cutoff_only() {
        let points = vec![[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 3.0, 0.0]];
        let graph = graph_of(points, vec![true; 3], 2.5, 8);
        assert_eq!(graph.neighbors.dims(), [1, 3, 3]);
        let found = edges(&graph);
        assert_eq!(found.len(), 2);
        assert_eq!((found[0].0, found[0].1), (0, 1));
        assert_eq!((found[1].0, found[1].1), (1, 0));
        assert!(found.iter().all(|e| (e.2 - 1.0).abs() < 1e-15));
    }

    #[test]
    fn keeps_the_nearest_neighbours() {
        let points = vec![
            [0.0, 0.0, 0.0],
            [3.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, 0.0, 2.0],
        ];
        let graph = graph_of(points, vec![true; 4], 10.0, 2);
        assert_eq!(graph.neighbors.dims(), [1, 4, 2]);
        let of_first: Vec<usize> = edges(&graph)
            .into_iter()
            .filter(|e| e.0 == 0)
            .map(|e| e.1)
            .collect();
        assert_eq!(of_first, vec![2, 3]);
    }

    #[test]
    fn excludes_padding_and_coincident_atoms() {
        let points = vec![
            [0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0],
            [1.5, 0.0, 0.0],
            [0.5, 0.0, 0.0],
        ];
        let graph = graph_of(points, vec![true, true, true, false], 5.0, 8);
        let found: Vec<(usize, usize)> = edges(&graph).into_iter().map(|e| (e.0, e.1)).collect();
        assert_eq!(found, vec![(0, 2), (1, 2), (2, 0), (2, 1)]);
        let masked: Vec<f64> = graph
            .distances
            .to_data()
            .iter::<f64>()
            .zip(graph.edge_mask.to_data().iter::<bool>())
            .filter(|(_, on)| !on)
            .map(|(d, _)| d)
            .collect();
        assert!(masked.iter().all(|d| *d == 0.0));
    }

    #[test]
    fn distance_gradients_are_finite_for_coincident_atoms() {
        let device = Default::default();
        let positions = Tensor::<Autodiff<TestBackend>, 3>::from_data(
            [[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 1.0, 0.0]]],
            &device,
        )
        .require_grad();
        let mask =
            Tensor::<Autodiff<TestBackend>, 2, Bool>::from_data([[true, true, true]], &device);
        let graph = radius_graph(positions.clone(), mask, 5.0, 8);
        let grads = graph.distances.sum().backward();
        let gradient = positions.grad(&grads).expect("positions require grad");
        let values: Vec<f64> = gradient.to_data().iter::<f64>().collect();
        assert!(values.iter().all(|v| v.is_finite()));
        // d/dr_2 of 2 * (|r_2 - r_0| + |r_2 - r_1|) = 4 (1, 1, 0) / sqrt(2)
        let expected = 4.0 / 2f64.sqrt();
        assert!((values[6] - expected).abs() < 1e-12);
        assert!((values[7] - expected).abs() < 1e-12);
    }

    #[test]
    fn gathers_features_of_neighbours() {
        let device = Default::default();
        let features =
            Tensor::<TestBackend, 3>::from_data([[[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]]], &device);
        let neighbors = Tensor::<TestBackend, 3, Int>::from_ints([[[2], [0], [1]]], &device);
        let gathered = gather_neighbors(features, neighbors);
        assert_eq!(gathered.dims(), [1, 3, 1, 2]);
        let values: Vec<f64> = gathered.to_data().iter::<f64>().collect();
        assert_eq!(values, vec![3.0, 30.0, 1.0, 10.0, 2.0, 20.0]);
    }
}
