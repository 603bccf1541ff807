//! Bonds, adjacency, bond-distance embeddings and global linear attention:
//! each option's equivariance (f64 < 1e-10, f32 < 1e-4) on chains and a real
//! protein backbone, and their input checks.

use burn::tensor::backend::Backend;
use equi_nn::{AttentionKind, Equiformer, EquiformerConfig, EquiformerInput, ModelError};
use equi_train::io::pdb::{backbone, read_pdb, PdbOptions, UnknownResidues};
use so3_math::{EquivarianceChecker, Irreps};

use crate::support::{
    bool_tensor, coords, int_tensor, output_irreps, perturbed, rows_for_checker, Draw, F32, F64,
};

/// One graph with bonds: tokens, bond tokens per pair and an adjacency matrix.
struct BondedGraph {
    points: Vec<[f64; 3]>,
    tokens: Vec<i64>,
    bonds: Vec<(usize, usize)>,
    bond_tokens: usize,
}

impl BondedGraph {
    /// A zig-zag chain with random bond lengths.
    fn chain(n: usize, seed: u64) -> Self {
        let mut draw = Draw::new(seed);
        let mut points = vec![[0.0; 3]];
        for i in 1..n {
            let previous = points[i - 1];
            let step = [
                1.2 + 0.1 * draw.normal(),
                0.6 * draw.normal(),
                0.6 * draw.normal(),
            ];
            points.push([0, 1, 2].map(|k| previous[k] + step[k]));
        }
        BondedGraph {
            tokens: (0..n).map(|i| (i % 5) as i64).collect(),
            bonds: (1..n).map(|i| (i - 1, i)).collect(),
            points,
            bond_tokens: 3,
        }
    }

    /// N, CA and C atoms of the first `residues` residues of a real protein, bonded along the backbone.
    fn backbone_of(file: &str, residues: usize) -> Self {
        let path = format!("{}/data/proteins/{file}", env!("CARGO_MANIFEST_DIR"));
        let structure = read_pdb(&path, &PdbOptions::default()).expect("bundled PDB file");
        let chain = backbone(&structure.models[0], UnknownResidues::Token).expect("backbone atoms");
        let mut points = Vec::new();
        let mut tokens = Vec::new();
        for residue in chain.iter().take(residues) {
            points.extend([residue.n, residue.ca, residue.c]);
            tokens.extend([i64::from(residue.token) % 5; 3]);
        }
        let n = points.len();
        BondedGraph {
            bonds: (1..n).map(|i| (i - 1, i)).collect(),
            points,
            tokens,
            bond_tokens: 3,
        }
    }

    fn len(&self) -> usize {
        self.points.len()
    }

    fn adjacency(&self) -> Vec<bool> {
        let n = self.len();
        let mut adjacency = vec![false; n * n];
        for &(i, j) in &self.bonds {
            adjacency[i * n + j] = true;
            adjacency[j * n + i] = true;
        }
        adjacency
    }

    fn bond_token_matrix(&self) -> Vec<i64> {
        let n = self.len();
        let mut tokens = vec![0; n * n];
        for (b, &(i, j)) in self.bonds.iter().enumerate() {
            let token = 1 + (b % (self.bond_tokens - 1)) as i64;
            tokens[i * n + j] = token;
            tokens[j * n + i] = token;
        }
        tokens
    }

    fn input<B: Backend>(
        &self,
        points: &[[f64; 3]],
        edges: bool,
        adjacency: bool,
    ) -> EquiformerInput<B> {
        let n = self.len();
        let mut input =
            EquiformerInput::tokens(int_tensor(self.tokens.clone(), [1, n]), coords(points));
        if edges {
            input = input.with_edges(int_tensor(self.bond_token_matrix(), [1, n, n]));
        }
        if adjacency {
            input = input.with_adjacency(bool_tensor(self.adjacency(), [1, n, n]));
        }
        input
    }
}

fn relative_error<B: Backend>(
    model: &Equiformer<B>,
    graph: &BondedGraph,
    edges: bool,
    adjacency: bool,
) -> f64 {
    let probe = model
        .forward(graph.input(&graph.points, edges, adjacency))
        .expect("valid input");
    let output = output_irreps(&probe);
    let run = |points: &[[f64; 3]], _: &[f64]| {
        let out = model
            .forward(graph.input(points, edges, adjacency))
            .expect("valid input");
        rows_for_checker(&out)
    };
    EquivarianceChecker::default()
        .with_trials(3)
        .check(&graph.points, &[], &Irreps::default(), &output, run)
        .expect("layouts fit")
        .max_relative_error
}

fn base() -> EquiformerConfig {
    EquiformerConfig::new(vec![8, 4, 2])
        .with_num_degrees(3)
        .with_num_tokens(Some(5))
        .with_heads(vec![2])
        .with_dim_head(vec![3])
        .with_depth(2)
        .with_radial_hidden_dim(8)
        .with_reduce_dim_out(true)
}

fn assert_equivariant(config: EquiformerConfig, graph: &BondedGraph, edges: bool, adjacency: bool) {
    let model = perturbed(
        config.clone().init::<F64>(&Default::default()).unwrap(),
        3,
        0.3,
    );
    let error = relative_error(&model, graph, edges, adjacency);
    assert!(error < 1e-10, "f64 {error}: {config:?}");
    let model = perturbed(
        config.clone().init::<F32>(&Default::default()).unwrap(),
        3,
        0.3,
    );
    let error = relative_error(&model, graph, edges, adjacency);
    assert!(error < 1e-4, "f32 {error}: {config:?}");
}

#[test]
fn bond_tokens_are_equivariant() {
    let chain = BondedGraph::chain(8, 1);
    for kind in [AttentionKind::Mlp, AttentionKind::L2Distance] {
        let config = base()
            .with_attention(kind)
            .with_num_edge_tokens(Some(3))
            .with_edge_dim(Some(4));
        assert_equivariant(config, &chain, true, false);
    }
}

#[test]
fn sparse_neighbours_are_equivariant_on_a_chain() {
    let chain = BondedGraph::chain(10, 2);
    // Bonded only, bonded plus the 3 nearest others, and capped bonded neighbours.
    let bonded_only = base()
        .with_attend_sparse_neighbors(true)
        .with_num_neighbors(Some(0));
    assert_equivariant(bonded_only, &chain, false, true);
    let mixed = base()
        .with_attend_sparse_neighbors(true)
        .with_num_neighbors(Some(3));
    assert_equivariant(mixed, &chain, false, true);
    let capped = base()
        .with_attend_sparse_neighbors(true)
        .with_num_neighbors(Some(0))
        .with_num_adj_degrees_embed(Some(3))
        .with_adj_dim(4)
        .with_max_sparse_neighbors(Some(2));
    assert_equivariant(capped, &chain, false, true);
}

#[test]
fn bond_distance_embeddings_are_equivariant_on_a_protein_backbone() {
    let protein = BondedGraph::backbone_of("1grm_single.pdb", 12);
    assert_eq!(protein.len(), 36);
    let config = base()
        .with_attend_sparse_neighbors(true)
        .with_num_neighbors(Some(4))
        .with_num_adj_degrees_embed(Some(2))
        .with_adj_dim(4)
        .with_num_edge_tokens(Some(3))
        .with_edge_dim(Some(2));
    assert_equivariant(config, &protein, true, true);
}

#[test]
fn global_linear_attention_is_equivariant_and_ignores_padding() {
    let chain = BondedGraph::chain(7, 4);
    for kind in [
        AttentionKind::Mlp,
        AttentionKind::DotProduct,
        AttentionKind::L2Distance,
    ] {
        let config = base()
            .with_attention(kind)
            .with_num_linear_attn_heads(2)
            .with_linear_attn_dim_head(4);
        assert_equivariant(config, &chain, false, false);
    }
    // Padding: a far-away padded node must not change real outputs.
    let config = base()
        .with_num_linear_attn_heads(2)
        .with_num_neighbors(Some(3));
    let model = perturbed(config.init::<F64>(&Default::default()).unwrap(), 5, 0.3);
    let alone = rows_for_checker(
        &model
            .forward(chain.input(&chain.points, false, false))
            .unwrap(),
    );
    let n = chain.len();
    let mut points = chain.points.clone();
    points.push([50.0, 0.0, 0.0]);
    let mut tokens = chain.tokens.clone();
    tokens.push(1);
    let mask: Vec<bool> = (0..=n).map(|i| i < n).collect();
    let input = EquiformerInput::tokens(int_tensor(tokens, [1, n + 1]), coords(&points))
        .with_mask(bool_tensor(mask, [1, n + 1]));
    let padded = rows_for_checker(&model.forward(input).unwrap());
    let width = alone.len() / n;
    let difference = alone
        .iter()
        .zip(&padded[..n * width])
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    assert!(difference < 1e-12, "{difference}");
}

#[test]
fn bond_inputs_are_checked() {
    let device = Default::default();
    let chain = BondedGraph::chain(4, 5);
    let model = base()
        .with_num_edge_tokens(Some(3))
        .with_edge_dim(Some(2))
        .init::<F64>(&device)
        .unwrap();
    let missing = model
        .forward(chain.input(&chain.points, false, false))
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(missing, ModelError::Input(_)), "{missing}");
    let n = chain.len();
    let bad = EquiformerInput::tokens(
        int_tensor(chain.tokens.clone(), [1, n]),
        coords(&chain.points),
    )
    .with_edges(int_tensor(vec![7; n * n], [1, n, n]));
    assert!(matches!(
        model.forward(bad).map(|_| ()).unwrap_err(),
        ModelError::TokenOutOfRange(_)
    ));

    let sparse = base()
        .with_attend_sparse_neighbors(true)
        .init::<F64>(&device)
        .unwrap();
    let missing = sparse
        .forward(chain.input(&chain.points, false, false))
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(missing, ModelError::Input(_)), "{missing}");
    let wrong = EquiformerInput::tokens(
        int_tensor(chain.tokens.clone(), [1, n]),
        coords(&chain.points),
    )
    .with_adjacency(bool_tensor(vec![false; 9], [1, 3, 3]));
    assert!(matches!(
        sparse.forward(wrong).map(|_| ()).unwrap_err(),
        ModelError::Shape(_)
    ));

    let rejected = base()
        .with_num_neighbors(Some(0))
        .init::<F64>(&device)
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(rejected, ModelError::Config(_)));
    let rejected = base()
        .with_num_edge_tokens(Some(3))
        .init::<F64>(&device)
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(rejected, ModelError::Config(_)));
}

#[test]
fn bonded_neighbours_come_first_and_num_neighbors_zero_keeps_only_them() {
    use equi_nn::geometry::{NeighborList, NeighborOptions};
    let chain = BondedGraph::chain(6, 7);
    let n = chain.len();
    let mask = bool_tensor::<F64, 2>(vec![true; n], [1, n]);
    let adjacency = bool_tensor::<F64, 3>(chain.adjacency(), [1, n, n]);
    let only_bonded = NeighborOptions {
        num_neighbors: Some(0),
        valid_radius: f64::INFINITY,
    };
    let list = NeighborList::nearest(
        coords::<F64>(&chain.points),
        mask.clone(),
        Some(adjacency.clone()),
        2,
        &only_bonded,
    );
    let index: Vec<i64> = list.index.into_data().convert::<i64>().to_vec().unwrap();
    let valid: Vec<bool> = list.mask.into_data().to_vec().unwrap();
    for node in 0..n {
        let mut bonded: Vec<i64> = (0..2)
            .filter(|&s| valid[node * 2 + s])
            .map(|s| index[node * 2 + s])
            .collect();
        bonded.sort();
        let mut expected: Vec<i64> = chain
            .bonds
            .iter()
            .filter_map(|&(i, j)| {
                if i == node {
                    Some(j as i64)
                } else if j == node {
                    Some(i as i64)
                } else {
                    None
                }
            })
            .collect();
        expected.sort();
        assert_eq!(bonded, expected, "node {node}");
    }
    // With two extra distance neighbours, the bonded ones still come first.
    let mixed = NeighborOptions {
        num_neighbors: Some(2),
        valid_radius: f64::INFINITY,
    };
    let list = NeighborList::nearest(
        coords::<F64>(&chain.points),
        mask,
        Some(adjacency),
        2,
        &mixed,
    );
    assert_eq!(list.index.dims(), [1, n, 4]);
    let index: Vec<i64> = list.index.into_data().convert::<i64>().to_vec().unwrap();
    assert!(
        index[4 * 2..4 * 2 + 2].contains(&1) && index[4 * 2..4 * 2 + 2].contains(&3),
        "node 2's bonds first"
    );
}
