//! Neighbour selection and edge geometry, computed once per forward pass.

use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor, TensorData};
use so3_math::{clebsch_gordan, spherical_harmonics};

use crate::so2_convolution::EdgeFrames;

/// Edges shorter than this (coincident atoms) are masked out.
pub const COINCIDENT_DISTANCE: f64 = 1e-8;

/// How neighbours are chosen.
#[derive(Clone, Debug)]
pub struct NeighborOptions {
    /// Keep at most this many nearest valid nodes per node (`None`: all).
    pub num_neighbors: Option<usize>,
    /// Only nodes within this distance count as neighbours.
    pub valid_radius: f64,
}

/// The neighbours of every node.
#[derive(Clone, Debug)]
pub struct NeighborList<B: Backend> {
    /// Node index of each neighbour slot, `[B, N, K]`.
    pub index: Tensor<B, 3, Int>,
    /// Whether each slot is a real edge, `[B, N, K]`.
    pub mask: Tensor<B, 3, Bool>,
    /// Vector from the node to its neighbour, `[B, N, K, 3]` (Cartesian).
    pub relative: Tensor<B, 4>,
}

impl<B: Backend> NeighborList<B> {
    /// The `K` nearest valid neighbours of each node (self excluded).
    ///
    /// Padded nodes, coincident atoms and nodes beyond `valid_radius` are
    /// masked; `K = min(num_neighbors + extra_slots, N - 1)`, at least 1 (an
    /// all-masked slot when `N = 1`). Padded nodes may hold any position,
    /// even NaN: they are placed at the origin first, so that their masked
    /// edges stay finite in every float type (far-away garbage would overflow
    /// half precision's squared distances, NaN would reach real nodes through
    /// masked products). `priority` (bonded pairs) are taken
    /// first, nearest first, whatever their distance; `num_neighbors = 0`
    /// keeps only them.
    ///
    /// # Shapes
    /// - `coords`: `[B, N, 3]`, `node_mask`: `[B, N]`, `priority`: `[B, N, N]`
    pub fn nearest(
        coords: Tensor<B, 3>,
        node_mask: Tensor<B, 2, Bool>,
        priority: Option<Tensor<B, 3, Bool>>,
        extra_slots: usize,
        options: &NeighborOptions,
    ) -> Self {
        let [batch, n, _] = coords.dims();
        let device = coords.device();
        let padded = node_mask
            .clone()
            .bool_not()
            .unsqueeze_dim::<3>(2)
            .expand([batch, n, 3]);
        let coords = coords.mask_fill(padded, 0.0);
        let relative_all = coords.clone().unsqueeze_dim::<4>(1) - coords.unsqueeze_dim::<4>(2); // [B, N, N, 3]: x_j - x_i
        let distance = relative_all
            .clone()
            .detach()
            .square()
            .sum_dim(3)
            .squeeze_dim::<3>(3)
            .sqrt(); // [B, N, N], no gradient
        let not_self = Tensor::<B, 2, Int>::eye(n, &device)
            .equal_elem(0)
            .unsqueeze::<3>(); // [1, N, N]
        let pair_valid = node_mask
            .clone()
            .unsqueeze_dim::<3>(2)
            .bool_and(node_mask.unsqueeze_dim::<3>(1)) // [B, N, N]
            .bool_and(not_self.expand([batch, n, n]))
            .bool_and(distance.clone().greater_elem(COINCIDENT_DISTANCE));
        // Distance neighbours: within the radius, unless switched off (num_neighbors = 0).
        let mut within = pair_valid.clone();
        if options.valid_radius.is_finite() {
            within = within.bool_and(distance.clone().lower_equal_elem(options.valid_radius));
        }
        let wanted = options.num_neighbors.unwrap_or(n).min(n.saturating_sub(1));
        if wanted == 0 {
            within = within.bool_and(pair_valid.clone().bool_not());
        }
        let far = 1e30;
        let mut key = distance.clone().mask_fill(within.clone().bool_not(), far); // [B, N, N]
        let mut slots = wanted;
        if let Some(priority) = priority {
            // Bonded pairs first, nearest bonded first: keys in (-2, -1) increase with distance.
            let priority = priority.bool_and(pair_valid.clone());
            let bonded_key = (distance.clone() / (distance + 1.0)) - 2.0;
            key = key.mask_where(priority.clone(), bonded_key);
            within = within.bool_or(priority);
            slots += extra_slots;
        }
        let k = slots.clamp(1, n.saturating_sub(1).max(1));
        let (_, index) = key.neg().topk_with_indices(k, 2); // [B, N, K]
        let mask = within.int().gather(2, index.clone()).equal_elem(1); // [B, N, K]
        let relative = relative_all.gather(2, index.clone().unsqueeze_dim::<4>(3).repeat_dim(3, 3)); // [B, N, K, 3]
        NeighborList {
            index,
            mask,
            relative,
        }
    }
}

/// Invariant and equivariant edge features shared by every block.
#[derive(Clone, Debug)]
pub struct EdgeGeometry<B: Backend> {
    /// Which nodes are real, `[B, N]`.
    pub node_mask: Tensor<B, 2, Bool>,
    /// The neighbour list.
    pub neighbors: NeighborList<B>,
    /// Edge lengths, `[B, N, K, 1]`.
    pub distance: Tensor<B, 4>,
    /// Invariant features for the radial networks, `[B, N, K, R]`.
    pub radial_features: Tensor<B, 4>,
    /// Per `(l_in, l_out)`: Clebsch-Gordan contracted with the edge harmonics,
    /// `[B, N, K, P*(2l_out+1), 2l_in+1]` for the `P` paths `J` of that pair.
    /// Empty when no layer uses the SO(3) message path.
    pub couplings: Vec<Vec<Tensor<B, 5>>>,
    /// Wigner-D matrices of the edge frames, for the SO(2) message path;
    /// `None` when no layer uses it.
    pub frames: Option<EdgeFrames<B>>,
}

impl<B: Backend> EdgeGeometry<B> {
    /// The geometry of the receiving nodes `start..start + len` only: every
    /// per-node and per-edge tensor cut to those rows. Neighbour indices keep
    /// pointing into the full node axis, so messages still come from all nodes.
    ///
    /// # Shapes
    /// - output tensors as the input's with `N` replaced by `len`
    pub fn narrow_nodes(&self, start: usize, len: usize) -> Self {
        let [batch, n, k] = self.neighbors.index.dims();
        let frames = self.frames.as_ref().map(|frames| {
            let wigner = frames
                .wigner()
                .iter()
                .map(|d| {
                    let [_, rows, cols] = d.dims();
                    d.clone()
                        .reshape([batch, n, k * rows * cols])
                        .narrow(1, start, len)
                        .reshape([batch * len * k, rows, cols])
                })
                .collect();
            EdgeFrames::from_wigner(wigner)
        });
        EdgeGeometry {
            node_mask: self.node_mask.clone().narrow(1, start, len),
            neighbors: NeighborList {
                index: self.neighbors.index.clone().narrow(1, start, len),
                mask: self.neighbors.mask.clone().narrow(1, start, len),
                relative: self.neighbors.relative.clone().narrow(1, start, len),
            },
            distance: self.distance.clone().narrow(1, start, len),
            radial_features: self.radial_features.clone().narrow(1, start, len),
            couplings: self
                .couplings
                .iter()
                .map(|row| {
                    row.iter()
                        .map(|c| c.clone().narrow(1, start, len))
                        .collect()
                })
                .collect(),
            frames,
        }
    }
}

/// Runs `f(start, len)` on consecutive chunks of at most `nodes_per_chunk`
/// receiving nodes (all `n` at once for `None`) and concatenates the
/// per-degree results along the node axis (axis 1).
pub(crate) fn by_node_chunks<B: Backend, const D: usize>(
    n: usize,
    nodes_per_chunk: Option<usize>,
    mut f: impl FnMut(usize, usize) -> Vec<Tensor<B, D>>,
) -> Vec<Tensor<B, D>> {
    let chunk = nodes_per_chunk.unwrap_or(n).max(1);
    if chunk >= n {
        return f(0, n);
    }
    let mut parts: Vec<Vec<Tensor<B, D>>> = Vec::new();
    for start in (0..n).step_by(chunk) {
        for (l, t) in f(start, chunk.min(n - start)).into_iter().enumerate() {
            if parts.len() <= l {
                parts.push(Vec::new());
            }
            parts[l].push(t);
        }
    }
    parts.into_iter().map(|p| Tensor::cat(p, 1)).collect()
}

/// The filter degrees `J` coupling `l_in` to `l_out`.
pub fn path_degrees(l_in: usize, l_out: usize) -> std::ops::RangeInclusive<usize> {
    l_in.abs_diff(l_out)..=l_in + l_out
}

/// Constant tables turning edge harmonics into coupling matrices, kept in
/// `f64` on the host and uploaded (a few kilobytes) at each forward pass.
#[derive(Clone, Debug)]
pub struct CouplingTables {
    l_max: usize,
    /// Per `(l_in, l_out)`: row-major `[(2l_max+1)^2, P*(2l_out+1)*(2l_in+1)]`.
    tables: Vec<Vec<Vec<f64>>>,
}

impl CouplingTables {
    /// Tables for all degree pairs up to `l_max`, built once in `f64`.
    pub fn new(l_max: usize) -> Self {
        let sh_dim = (2 * l_max + 1) * (2 * l_max + 1);
        let tables = (0..=l_max)
            .map(|l_in| {
                (0..=l_max)
                    .map(|l_out| {
                        let (d_in, d_out) = (2 * l_in + 1, 2 * l_out + 1);
                        let paths: Vec<usize> = path_degrees(l_in, l_out).collect();
                        let width = paths.len() * d_out * d_in;
                        let mut data = vec![0.0f64; sh_dim * width];
                        for (p, &j) in paths.iter().enumerate() {
                            let c = clebsch_gordan(l_in, j, l_out).expect("path degrees couple");
                            for m_j in 0..2 * j + 1 {
                                let row = j * j + m_j;
                                for m_out in 0..d_out {
                                    for m_in in 0..d_in {
                                        let col = (p * d_out + m_out) * d_in + m_in;
                                        data[row * width + col] = c.get(m_out, m_in, m_j);
                                    }
                                }
                            }
                        }
                        data
                    })
                    .collect()
            })
            .collect();
        CouplingTables { l_max, tables }
    }

    /// Highest degree covered.
    pub fn l_max(&self) -> usize {
        self.l_max
    }

    /// Coupling matrices for every degree pair from edge vectors.
    ///
    /// # Shapes
    /// - `relative`: `[B, N, K, 3]`
    /// - output `[l_in][l_out]`: `[B, N, K, P*(2l_out+1), 2l_in+1]`
    pub fn couplings<B: Backend>(&self, relative: Tensor<B, 4>) -> Vec<Vec<Tensor<B, 5>>> {
        let [batch, n, k, _] = relative.dims();
        let device = relative.device();
        let sh_dim = (2 * self.l_max + 1) * (2 * self.l_max + 1);
        let harmonics =
            spherical_harmonics(2 * self.l_max, relative).expect("edge vectors are [..., 3]");
        let harmonics = Tensor::cat(harmonics, 3); // [B, N, K, (2L+1)^2]
        (0..=self.l_max)
            .map(|l_in| {
                (0..=self.l_max)
                    .map(|l_out| {
                        let data = &self.tables[l_in][l_out];
                        let table = Tensor::<B, 2>::from_data(
                            TensorData::new(data.clone(), [sh_dim, data.len() / sh_dim])
                                .convert::<B::FloatElem>(),
                            &device,
                        );
                        let rows = path_degrees(l_in, l_out).count() * (2 * l_out + 1);
                        crate::fiber::matmul_last(harmonics.clone(), table).reshape([
                            batch,
                            n,
                            k,
                            rows,
                            2 * l_in + 1,
                        ])
                    })
                    .collect()
            })
            .collect()
    }
}

/// Gaussian radial basis of edge lengths plus the scaled length itself.
///
/// # Shapes
/// - `distance`: `[B, N, K, 1]`, output `[B, N, K, num_basis + 1]`
pub fn radial_basis<B: Backend>(
    distance: Tensor<B, 4>,
    num_basis: usize,
    cutoff: f64,
) -> Tensor<B, 4> {
    let device = distance.device();
    let spacing = cutoff / (num_basis.max(2) - 1) as f64;
    let centres: Vec<f64> = (0..num_basis).map(|i| i as f64 * spacing).collect();
    let centres = Tensor::<B, 1>::from_data(
        TensorData::new(centres, [num_basis]).convert::<B::FloatElem>(),
        &device,
    )
    .reshape([1, 1, 1, num_basis]);
    let gaussians = (distance.clone() - centres)
        .square()
        .mul_scalar(-0.5 / (spacing * spacing))
        .exp();
    Tensor::cat(vec![gaussians, distance / cutoff], 3)
}
