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
    /// keeps only them. Ties go to the lower node index.
    ///
    /// The choice is made on the host, from a copy of the positions (`O(N^2)`
    /// scalar work per graph, no `[B, N, N, 3]` tensor; on a GPU backend one
    /// read-back of `[B, N, 3]`); `relative` is gathered from `coords` for the
    /// chosen pairs only and carries their gradient.
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
        // The choice of neighbours is discrete (no gradient flows through it):
        // made on the host from a copy of the positions, `O(N^2)` scalar work
        // without any `[B, N, N, 3]` tensor. Only the chosen edge vectors are
        // built from `coords`, so gradients reach the positions through them.
        let host = HostGraph {
            n,
            points: coords.clone().detach().into_data().iter::<f64>().collect(),
            valid: node_mask
                .int()
                .into_data()
                .iter::<i64>()
                .map(|v| v != 0)
                .collect(),
            priority: priority.map(|p| p.int().into_data().iter::<i64>().map(|v| v != 0).collect()),
        };
        let wanted = options.num_neighbors.unwrap_or(n).min(n.saturating_sub(1));
        let slots = wanted
            + if host.priority.is_some() {
                extra_slots
            } else {
                0
            };
        let k = slots.clamp(1, n.saturating_sub(1).max(1));
        let (index, mask) = host.select(batch, k, wanted, options.valid_radius);
        let edges = batch * n * k;
        // Rows of the flattened `[B * N]` node axis.
        let rows: Vec<i64> = index
            .iter()
            .enumerate()
            .map(|(e, &j)| (e / (n * k) * n) as i64 + j)
            .collect();
        let int_tensor = |values: Vec<i64>| {
            Tensor::<B, 1, Int>::from_data(
                TensorData::new(values, [edges]).convert::<B::IntElem>(),
                &device,
            )
        };
        let (index, rows) = (int_tensor(index), int_tensor(rows));
        let mask = Tensor::<B, 1, Bool>::from_data(TensorData::new(mask, [edges]), &device);
        let relative = if edges == 0 {
            Tensor::zeros([batch, n, k, 3], (&device, coords.dtype()))
        } else {
            let flat = coords.reshape([batch * n, 3]);
            let own = flat.clone().unsqueeze_dim::<3>(1).expand([batch * n, k, 3]);
            let neighbour = flat.select(0, rows).reshape([batch * n, k, 3]);
            (neighbour - own).reshape([batch, n, k, 3])
        };
        NeighborList {
            index: index.reshape([batch, n, k]),
            mask: mask.reshape([batch, n, k]),
            relative,
        }
    }
}

impl<B: Backend> NeighborList<B> {
    /// Neighbours given by the caller, as displacement vectors: a periodic neighbour list,
    /// where an atom may neighbour its own images and two slots may join the same pair
    /// with different lattice shifts.
    ///
    /// `relative` is kept as given (a leaf that requires gradients stays one, so the
    /// derivatives of the outputs along every edge can be read from it). Slots that `mask`
    /// leaves out, and coincident ones (shorter than [`COINCIDENT_DISTANCE`]), are masked
    /// and point at node 0, so that a masked slot never reads outside the graph.
    ///
    /// # Shapes
    /// - `index`: `[B, N, K]` (neighbour node within its graph), `mask`: `[B, N, K]`,
    ///   `relative`: `[B, N, K, 3]`, Cartesian, from the node to its neighbour
    pub fn from_displacements(
        index: Tensor<B, 3, Int>,
        mask: Tensor<B, 3, Bool>,
        relative: Tensor<B, 4>,
    ) -> Self {
        let length2 = relative
            .clone()
            .detach()
            .square()
            .sum_dim(3)
            .squeeze_dim::<3>(3);
        let mask = mask.bool_and(length2.greater_elem(COINCIDENT_DISTANCE * COINCIDENT_DISTANCE));
        let index = index.mask_fill(mask.clone().bool_not(), 0);
        NeighborList {
            index,
            mask,
            relative,
        }
    }
}

/// Host copies of what the neighbour choice reads.
struct HostGraph {
    n: usize,
    /// `[B, N, 3]`, padded nodes at the origin.
    points: Vec<f64>,
    /// `[B, N]`.
    valid: Vec<bool>,
    /// `[B, N, N]`: pairs taken first (bonds).
    priority: Option<Vec<bool>>,
}

impl HostGraph {
    /// The `k <= N` slots of every node, nearest first: neighbour indices
    /// (within the graph) and whether each slot is a real edge, both `[B, N, k]`.
    ///
    /// A pair is a candidate edge when both nodes are valid, distinct and not
    /// coincident; it is taken when within `radius` (and `wanted > 0`) or
    /// bonded. Bonded pairs sort before all others (keys in `(-2, -1)`,
    /// increasing with distance), then distance neighbours by distance, then
    /// the masked filler slots; ties go to the lower index.
    fn select(&self, batch: usize, k: usize, wanted: usize, radius: f64) -> (Vec<i64>, Vec<bool>) {
        const FAR: f64 = 1e30;
        let n = self.n;
        let mut index = Vec::with_capacity(batch * n * k);
        let mut mask = Vec::with_capacity(batch * n * k);
        let mut keys: Vec<(f64, usize, bool)> = Vec::with_capacity(n);
        for b in 0..batch {
            let point = |i: usize| &self.points[(b * n + i) * 3..(b * n + i) * 3 + 3];
            for i in 0..n {
                keys.clear();
                let (x, valid_i) = (point(i), self.valid[b * n + i]);
                for j in 0..n {
                    let y = point(j);
                    let distance =
                        ((y[0] - x[0]).powi(2) + (y[1] - x[1]).powi(2) + (y[2] - x[2]).powi(2))
                            .sqrt();
                    let pair = valid_i
                        && self.valid[b * n + j]
                        && j != i
                        && distance > COINCIDENT_DISTANCE;
                    let bonded = pair
                        && self
                            .priority
                            .as_ref()
                            .is_some_and(|p| p[(b * n + i) * n + j]);
                    let within = pair && wanted > 0 && distance <= radius;
                    let key = if bonded {
                        distance / (distance + 1.0) - 2.0
                    } else if within {
                        distance
                    } else {
                        FAR
                    };
                    keys.push((key, j, bonded || within));
                }
                let by_key = |a: &(f64, usize, bool), b: &(f64, usize, bool)| {
                    a.0.total_cmp(&b.0).then(a.1.cmp(&b.1))
                };
                if k < n {
                    keys.select_nth_unstable_by(k - 1, by_key);
                }
                keys[..k].sort_unstable_by(by_key);
                for &(_, j, edge) in &keys[..k] {
                    index.push(j as i64);
                    mask.push(edge);
                }
            }
        }
        (index, mask)
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
    /// Smooth weight of every slot, `[B, N, K]` (zero on masked slots), falling to zero at
    /// the cutoff ([`polynomial_envelope`]); `None` without `cutoff_envelope`.
    pub envelope: Option<Tensor<B, 3>>,
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
            envelope: self
                .envelope
                .as_ref()
                .map(|u| u.clone().narrow(1, start, len)),
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

/// The polynomial envelope of DimeNet (exponent 5) on `distance / cutoff`:
/// `u(x) = 1 - 21 x^5 + 35 x^6 - 15 x^7` for `x < 1`, zero beyond; `u(1) = u'(1) = u''(1) = 0`.
///
/// # Shapes
/// - `distance`: `[B, N, K, 1]`, output `[B, N, K]`
pub fn polynomial_envelope<B: Backend>(distance: Tensor<B, 4>, cutoff: f64) -> Tensor<B, 3> {
    let x = (distance / cutoff).clamp(0.0, 1.0).squeeze_dim::<3>(3);
    let x5 = x.clone().powi_scalar(5);
    let polynomial = (x.clone() * 35.0 - x.clone().square() * 15.0 - 21.0) * x5;
    polynomial + 1.0
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

#[cfg(test)]
mod tests {
    use burn::backend::{Autodiff, NdArray};
    use proptest::prelude::*;

    use super::*;

    type Grad = Autodiff<NdArray<f64>>;

    /// A batch of graphs: positions `[B, N, 3]` (with coincident pairs and
    /// NaN at padded nodes) and which nodes are real `[B, N]`.
    fn graphs() -> impl Strategy<Value = (usize, usize, Vec<f64>, Vec<bool>)> {
        (1usize..3, 1usize..9).prop_flat_map(|(batch, n)| {
            let count = batch * n;
            (
                Just(batch),
                Just(n),
                prop::collection::vec(-2.0f64..2.0, count * 3),
                prop::collection::vec(prop::bool::weighted(0.8), count),
                prop::collection::vec(0usize..count, 0..3),
            )
                .prop_map(|(batch, n, mut points, valid, copies)| {
                    // Coincident atoms: some nodes on top of the next one.
                    for i in copies {
                        if (i + 1) % n != 0 {
                            let next: Vec<f64> = points[(i + 1) * 3..(i + 2) * 3].to_vec();
                            points[i * 3..(i + 1) * 3].copy_from_slice(&next);
                        }
                    }
                    for (i, &v) in valid.iter().enumerate() {
                        if !v {
                            points[i * 3] = f64::NAN;
                        }
                    }
                    (batch, n, points, valid)
                })
        })
    }

    fn distance(a: &[f64], b: &[f64]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f64>()
            .sqrt()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Every node gets its nearest valid neighbours first (self, padded
        /// and coincident nodes excluded, within the radius), the rest of its
        /// slots masked; the edge vectors are neighbour minus node, and their
        /// gradient reaches the positions of both ends.
        #[test]
        fn nearest_neighbours_match_a_brute_force_search(
            (batch, n, points, valid) in graphs(),
            wanted in 0usize..10,
            radius in prop::sample::select(vec![0.8, 2.5, f64::INFINITY]),
        ) {
            let device = Default::default();
            let coords = Tensor::<Grad, 3>::from_data(
                TensorData::new(points.clone(), [batch, n, 3]),
                &device,
            )
            .require_grad();
            let mask = Tensor::<Grad, 2, Bool>::from_data(
                TensorData::new(valid.clone(), [batch, n]),
                &device,
            );
            let options = NeighborOptions { num_neighbors: Some(wanted), valid_radius: radius };
            let list = NeighborList::nearest(coords.clone(), mask, None, 0, &options);
            let k = wanted.min(n - 1).clamp(1, (n - 1).max(1));
            prop_assert_eq!(list.index.dims(), [batch, n, k]);
            let index: Vec<i64> = list.index.into_data().convert::<i64>().to_vec().unwrap();
            let slot_valid: Vec<bool> = list.mask.into_data().to_vec().unwrap();
            let relative: Vec<f64> = list.relative.clone().into_data().to_vec().unwrap();
            let at = |b: usize, i: usize| -> Vec<f64> {
                if valid[b * n + i] { points[(b * n + i) * 3..(b * n + i + 1) * 3].to_vec() } else { vec![0.0; 3] }
            };
            for b in 0..batch {
                for i in 0..n {
                    let mut expected: Vec<(f64, usize)> = (0..n)
                        .filter(|&j| j != i && valid[b * n + i] && valid[b * n + j])
                        .map(|j| (distance(&at(b, i), &at(b, j)), j))
                        .filter(|&(d, _)| d > COINCIDENT_DISTANCE && d <= radius && wanted > 0)
                        .collect();
                    expected.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
                    expected.truncate(k);
                    for s in 0..k {
                        let e = (b * n + i) * k + s;
                        let j = index[e] as usize;
                        prop_assert!(j < n);
                        match expected.get(s) {
                            Some(&(_, want)) => {
                                prop_assert!(slot_valid[e], "slot {} of node {}", s, i);
                                prop_assert_eq!(j, want);
                            }
                            None => prop_assert!(!slot_valid[e], "slot {} of node {}", s, i),
                        }
                        for c in 0..3 {
                            let vector = at(b, j)[c] - at(b, i)[c];
                            prop_assert!((relative[e * 3 + c] - vector).abs() < 1e-12);
                        }
                    }
                }
            }
            // d(sum of the valid edge vectors' x components)/d(positions).
            let weights = Tensor::<Grad, 4>::from_data(
                TensorData::new(
                    slot_valid.iter().flat_map(|&v| [f64::from(u8::from(v)), 0.0, 0.0]).collect::<Vec<f64>>(),
                    [batch, n, k, 3],
                ),
                &device,
            );
            let grads = (list.relative * weights).sum().backward();
            let gradient: Vec<f64> = coords.grad(&grads).unwrap().into_data().to_vec().unwrap();
            for b in 0..batch {
                for node in 0..n {
                    let mut expected = 0.0;
                    for i in 0..n {
                        for s in 0..k {
                            let e = (b * n + i) * k + s;
                            if slot_valid[e] {
                                expected += f64::from(u8::from(index[e] as usize == node));
                                expected -= f64::from(u8::from(i == node));
                            }
                        }
                    }
                    prop_assert!((gradient[(b * n + node) * 3] - expected).abs() < 1e-12);
                }
            }
        }
    }
}
