//! Padded batches: structures of different sizes in `[B, N, ...]` tensors with a node mask.

use atoms::{Cell, Pbc};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor, TensorData};

use super::Structure;

/// A batch on the host: structures padded to the largest one, flattened row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct HostBatch {
    /// Number of structures `B`.
    pub graphs: usize,
    /// Atoms of the largest structure `N`.
    pub nodes: usize,
    /// Tokens `[B, N]`, 0 on padding.
    pub tokens: Vec<i64>,
    /// Atomic numbers `[B, N]`, 0 on padding.
    pub atomic_numbers: Vec<i64>,
    /// Positions `[B, N, 3]`, 0 on padding.
    pub positions: Vec<f64>,
    /// Real atoms `[B, N]`.
    pub mask: Vec<bool>,
    /// Atoms per structure `[B]`.
    pub counts: Vec<usize>,
    /// Per-structure labels `[B]`, when every structure has one.
    pub scalars: Option<Vec<f64>>,
    /// Per-atom vector labels `[B, N, 3]` (0 on padding), when every structure has them.
    pub vectors: Option<Vec<f64>>,
    /// The cell of every structure `[B]` (lattice vectors as rows, Angstrom); `None` for a
    /// molecule.
    pub cells: Vec<Option<Cell>>,
    /// Periodic boundary conditions of every structure `[B]`.
    pub pbc: Vec<Pbc>,
    /// Stress labels `[B, 3, 3]` in eV/A^3 (ASE's sign), when every structure has one.
    pub stress: Option<Vec<[[f64; 3]; 3]>>,
}

impl HostBatch {
    /// Pads `structures` into one batch.
    pub fn new(structures: &[&Structure]) -> Self {
        let graphs = structures.len();
        let nodes = structures.iter().map(|s| s.len()).max().unwrap_or(0);
        let mut batch = HostBatch {
            graphs,
            nodes,
            tokens: vec![0; graphs * nodes],
            atomic_numbers: vec![0; graphs * nodes],
            positions: vec![0.0; graphs * nodes * 3],
            mask: vec![false; graphs * nodes],
            counts: structures.iter().map(|s| s.len()).collect(),
            scalars: structures.iter().map(|s| s.scalar).collect(),
            vectors: structures
                .iter()
                .all(|s| s.vectors.is_some())
                .then(|| vec![0.0; graphs * nodes * 3]),
            cells: structures.iter().map(|s| s.cell).collect(),
            pbc: structures.iter().map(|s| s.pbc).collect(),
            stress: structures.iter().map(|s| s.stress).collect(),
        };
        for (g, structure) in structures.iter().enumerate() {
            for i in 0..structure.len() {
                let node = g * nodes + i;
                batch.tokens[node] = structure.tokens[i];
                batch.atomic_numbers[node] = i64::from(structure.atomic_numbers[i]);
                batch.mask[node] = true;
                batch.positions[3 * node..3 * node + 3].copy_from_slice(&structure.positions[i]);
                if let (Some(vectors), Some(labels)) = (&mut batch.vectors, &structure.vectors) {
                    vectors[3 * node..3 * node + 3].copy_from_slice(&labels[i]);
                }
            }
        }
        batch
    }

    /// The atoms of structure `g` as index range into the node axis.
    pub fn atoms(&self, g: usize) -> std::ops::Range<usize> {
        g * self.nodes..g * self.nodes + self.counts[g]
    }

    /// The batch cut into at most `parts` batches of consecutive structures, as even in
    /// size as can be (the first ones take one more), each padded to its own largest
    /// structure. Fewer parts when there are fewer structures; none of them is empty.
    pub fn shards(&self, parts: usize) -> Vec<HostBatch> {
        let parts = parts.clamp(1, self.graphs.max(1));
        let (size, extra) = (self.graphs / parts, self.graphs % parts);
        let mut start = 0;
        (0..parts)
            .map(|part| {
                let end = start + size + usize::from(part < extra);
                let shard = self.graph_range(start..end);
                start = end;
                shard
            })
            .filter(|shard| shard.graphs > 0)
            .collect()
    }

    /// The structures `graphs`, padded to the largest of them.
    fn graph_range(&self, graphs: std::ops::Range<usize>) -> HostBatch {
        let counts = self.counts[graphs.clone()].to_vec();
        let nodes = counts.iter().copied().max().unwrap_or(0);
        let rows = |values: &[i64]| node_rows(values, &graphs, self.nodes, nodes, 1);
        let vectors = |values: &[f64]| node_rows(values, &graphs, self.nodes, nodes, 3);
        HostBatch {
            graphs: graphs.len(),
            nodes,
            tokens: rows(&self.tokens),
            atomic_numbers: rows(&self.atomic_numbers),
            positions: vectors(&self.positions),
            mask: node_rows(&self.mask, &graphs, self.nodes, nodes, 1),
            counts,
            scalars: self.scalars.as_ref().map(|s| s[graphs.clone()].to_vec()),
            vectors: self.vectors.as_deref().map(vectors),
            cells: self.cells[graphs.clone()].to_vec(),
            pbc: self.pbc[graphs.clone()].to_vec(),
            stress: self.stress.as_ref().map(|s| s[graphs].to_vec()),
        }
    }

    /// The tensors of this batch on `device`.
    pub fn to_device<B: Backend>(&self, device: &B::Device) -> Batch<B> {
        let (b, n) = (self.graphs, self.nodes);
        Batch {
            tokens: int_tensor(self.tokens.clone(), [b, n], device),
            atomic_numbers: int_tensor(self.atomic_numbers.clone(), [b, n], device),
            positions: float_tensor(self.positions.clone(), [b, n, 3], device),
            mask: Tensor::from_data(TensorData::new(self.mask.clone(), [b, n]), device),
            counts: float_tensor(self.counts.iter().map(|&c| c as f64).collect(), [b], device),
        }
    }
}

/// The inputs of a batch on a device.
#[derive(Clone, Debug)]
pub struct Batch<B: Backend> {
    /// Tokens `[B, N]`.
    pub tokens: Tensor<B, 2, Int>,
    /// Atomic numbers `[B, N]`.
    pub atomic_numbers: Tensor<B, 2, Int>,
    /// Positions `[B, N, 3]`.
    pub positions: Tensor<B, 3>,
    /// Real atoms `[B, N]`.
    pub mask: Tensor<B, 2, Bool>,
    /// Atoms per structure `[B]`.
    pub counts: Tensor<B, 1>,
}

/// A float tensor from `f64` values, converted once to the backend's float type.
pub fn float_tensor<B: Backend, const D: usize>(
    values: Vec<f64>,
    shape: [usize; D],
    device: &B::Device,
) -> Tensor<B, D> {
    Tensor::from_data(
        TensorData::new(values, shape).convert::<B::FloatElem>(),
        device,
    )
}

fn int_tensor<B: Backend, const D: usize>(
    values: Vec<i64>,
    shape: [usize; D],
    device: &B::Device,
) -> Tensor<B, D, Int> {
    Tensor::from_data(
        TensorData::new(values, shape).convert::<B::IntElem>(),
        device,
    )
}

/// The values of a float tensor as `f64`.
pub fn to_f64<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> Vec<f64> {
    tensor
        .into_data()
        .convert::<f64>()
        .into_vec::<f64>()
        .unwrap_or_default()
}

/// The first `nodes` nodes of each structure of `graphs`, from per-node values laid out
/// `stride` nodes per structure and `width` values per node.
fn node_rows<T: Copy>(
    values: &[T],
    graphs: &std::ops::Range<usize>,
    stride: usize,
    nodes: usize,
    width: usize,
) -> Vec<T> {
    graphs
        .clone()
        .flat_map(|g| &values[width * g * stride..width * (g * stride + nodes)])
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    fn molecule(n: usize, label: Option<f64>) -> Structure {
        Structure {
            origin: "m".into(),
            atomic_numbers: vec![6; n],
            tokens: (1..=n as i64).collect(),
            positions: (0..n).map(|i| [i as f64, 1.0, 2.0]).collect(),
            scalar: label,
            vectors: Some(vec![[1.0, 2.0, 3.0]; n]),
            cell: None,
            pbc: [false; 3],
            stress: None,
        }
    }

    /// A structure of `n` atoms in a cubic cell of edge `edge`, with a diagonal stress.
    fn crystal(n: usize, edge: f64) -> Structure {
        let cell = Cell::new([[edge, 0.0, 0.0], [0.0, edge, 0.0], [0.0, 0.0, edge]]);
        Structure {
            cell: Some(cell.expect("cubic cell")),
            pbc: [true, true, false],
            stress: Some([[edge, 0.0, 0.0], [0.0, -edge, 0.0], [0.0, 0.0, 1.0]]),
            ..molecule(n, Some(edge))
        }
    }

    #[test]
    fn padding_and_masks() {
        let (a, b) = (molecule(2, Some(1.0)), molecule(3, Some(2.0)));
        let batch = HostBatch::new(&[&a, &b]);
        assert_eq!((batch.graphs, batch.nodes), (2, 3));
        assert_eq!(batch.tokens, vec![1, 2, 0, 1, 2, 3]);
        assert_eq!(batch.mask, vec![true, true, false, true, true, true]);
        assert_eq!(batch.scalars, Some(vec![1.0, 2.0]));
        assert_eq!(batch.atoms(1), 3..6);
        let vectors = batch.vectors.as_ref().expect("all have vectors");
        assert_eq!(&vectors[6..9], &[0.0; 3]);
        let device = Default::default();
        let tensors = batch.to_device::<NdArray>(&device);
        assert_eq!(tensors.positions.dims(), [2, 3, 3]);
        assert_eq!(to_f64(tensors.counts), vec![2.0, 3.0]);
        let unlabelled = molecule(1, None);
        assert_eq!(HostBatch::new(&[&a, &unlabelled]).scalars, None);
    }

    #[test]
    fn shards_are_the_batches_of_their_structures() {
        let molecules = [
            molecule(2, Some(1.0)),
            molecule(3, Some(2.0)),
            molecule(1, Some(3.0)),
        ];
        let all: Vec<&Structure> = molecules.iter().collect();
        let batch = HostBatch::new(&all);
        assert_eq!(
            batch.shards(2),
            vec![HostBatch::new(&all[..2]), HostBatch::new(&all[2..])]
        );
        assert_eq!(
            batch.shards(3),
            all.iter().map(|m| HostBatch::new(&[m])).collect::<Vec<_>>()
        );
        assert_eq!(batch.shards(5).len(), 3);
        assert_eq!(batch.shards(1), vec![batch]);
    }

    #[test]
    fn cells_and_stress_follow_their_structures() {
        let crystals = [crystal(2, 3.0), crystal(3, 4.0), crystal(1, 5.0)];
        let all: Vec<&Structure> = crystals.iter().collect();
        let batch = HostBatch::new(&all);
        assert_eq!(
            batch.cells,
            crystals.iter().map(|c| c.cell).collect::<Vec<_>>()
        );
        assert_eq!(batch.pbc, vec![[true, true, false]; 3]);
        let stress = batch.stress.as_ref().expect("every crystal has a stress");
        assert_eq!(stress[1][1][1], -4.0);
        let shards = batch.shards(2);
        assert_eq!(
            shards,
            vec![HostBatch::new(&all[..2]), HostBatch::new(&all[2..])]
        );
        assert_eq!(shards[1].cells, vec![crystals[2].cell]);
        assert_eq!(
            shards[1].stress,
            Some(vec![crystals[2].stress.expect("stress")])
        );
        let gas = molecule(2, Some(1.0));
        let mixed = HostBatch::new(&[&crystals[0], &gas]);
        assert_eq!(mixed.cells, vec![crystals[0].cell, None]);
        assert_eq!(mixed.pbc, vec![[true, true, false], [false; 3]]);
        assert_eq!(mixed.stress, None);
    }
}
