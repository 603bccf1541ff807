//! Reversible blocks and chunked neighbour attention (f64): equivariance,
//! gradients of the recomputing backward pass equal to plain autodiff for the
//! same weights, chunked outputs equal to unchunked ones.

use burn::backend::Autodiff;
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use equi_nn::{AttentionKind, Equiformer, EquiformerConfig, EquiformerInput, MessagePath};
use equi_nn::{EquiformerOutput, ModelError};

use so3_math::{EquivarianceChecker, Irreps};

use crate::support::{
    chain, check, coords, float_tensor, int_tensor, output_irreps, perturbed, rows_for_checker,
    run_tokens, to_vec, Draw, F64,
};

type Ad = Autodiff<F64>;

fn small() -> EquiformerConfig {
    EquiformerConfig::new(vec![8, 4, 2])
        .with_num_degrees(3)
        .with_num_tokens(Some(5))
        .with_heads(vec![2])
        .with_dim_head(vec![3])
        .with_depth(3)
        .with_radial_hidden_dim(8)
}

/// The configurations every test runs: both message paths, every attention
/// kind, bonds and adjacency, global linear attention, chunking.
fn configs() -> Vec<EquiformerConfig> {
    vec![
        small().with_reversible(true),
        small()
            .with_reversible(true)
            .with_message_path(Some(MessagePath::So3))
            .with_attention(AttentionKind::DotProduct)
            .with_attention_chunk_size(Some(3)),
        small()
            .with_reversible(true)
            .with_attention(AttentionKind::L2Distance)
            .with_num_edge_tokens(Some(3))
            .with_edge_dim(Some(4))
            .with_attend_sparse_neighbors(true)
            .with_num_neighbors(Some(2))
            .with_num_adj_degrees_embed(Some(2))
            .with_adj_dim(3)
            .with_num_linear_attn_heads(1)
            .with_reduce_dim_out(true),
    ]
}

#[test]
fn reversible_and_chunked_models_are_equivariant_in_f64() {
    let chunked = small().with_attention_chunk_size(Some(2));
    for config in configs().into_iter().chain([chunked]) {
        let model = perturbed(config.init::<F64>(&Default::default()).unwrap(), 5, 0.3);
        let bonds = config.num_edge_tokens.is_some();
        if !bonds {
            for padding in [0, 2] {
                let report = check(&model, 7, padding, 0, 11);
                assert!(report.max_relative_error < 1e-10, "{config:?}\n{report:?}");
            }
        }
        // On a bonded chain, with every input the configuration takes.
        let graph = chain(7, 0, 13);
        let run = |points: &[[f64; 3]], _: &[f64]| {
            rows_for_checker(&model.forward(graph.input(coords(points), bonds)).unwrap())
        };
        let probe = model
            .forward(graph.input(coords(&graph.points), bonds))
            .unwrap();
        let report = EquivarianceChecker::default()
            .with_trials(3)
            .with_seed(5)
            .check(
                &graph.points,
                &[],
                &Irreps::default(),
                &output_irreps(&probe),
                run,
            )
            .unwrap();
        assert!(report.max_relative_error < 1e-10, "{config:?}\n{report:?}");
    }
}

/// A loss that weighs every output entry differently: `sum_l <out_l, w_l>`.
fn weighted_loss<B: Backend>(out: EquiformerOutput<B>, seed: u64) -> Tensor<B, 1> {
    let mut draw = Draw::new(seed);
    out.fiber
        .into_iter()
        .map(|t| {
            let weights = float_tensor::<B, 4>(draw.values(t.shape().num_elements()), t.dims());
            (t * weights).sum()
        })
        .reduce(|a, b| a + b)
        .unwrap()
}

/// Largest difference between two gradient sets, relative to the largest
/// gradient of each parameter; and the number of parameters compared.
struct Compare<'a> {
    plain: &'a GradientsParams,
    recomputed: &'a GradientsParams,
    worst: f64,
    compared: usize,
    missing: Vec<String>,
}

impl ModuleVisitor<Ad> for Compare<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<Ad, D>>) {
        let a = self.plain.get::<F64, D>(param.id);
        let b = self.recomputed.get::<F64, D>(param.id);
        match (a, b) {
            (Some(a), Some(b)) => {
                let (a, b) = (to_vec(a), to_vec(b));
                let scale = a.iter().fold(1e-30f64, |m, v| m.max(v.abs()));
                let diff = a
                    .iter()
                    .zip(&b)
                    .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
                self.worst = self.worst.max(diff / scale);
                self.compared += 1;
            }
            (None, None) => {}
            (a, b) => self.missing.push(format!(
                "{:?}: plain {} recomputed {}",
                param.id,
                a.is_some(),
                b.is_some()
            )),
        }
    }
}

#[test]
fn recomputing_backward_matches_autodiff_in_f64() {
    let device = Default::default();
    for (i, config) in configs().into_iter().enumerate() {
        let model: Equiformer<Ad> = perturbed(config.init::<Ad>(&device).unwrap(), 7, 0.3);
        let graph = chain(6, 2, 20 + i as u64);
        let bonds = config.num_edge_tokens.is_some();
        let positions = || coords::<Ad>(&graph.points).require_grad();

        let plain_coords = positions();
        let output = model
            .forward(graph.input(plain_coords.clone(), bonds))
            .unwrap();
        let mut grads = weighted_loss(output, 3).backward();
        let plain_coords_grad = to_vec(plain_coords.grad(&grads).unwrap());
        let plain = GradientsParams::from_module(&mut grads, &model);

        let step = model
            .forward_backward(graph.input(positions(), bonds), |out| {
                Ok::<_, ModelError>(weighted_loss(out, 3))
            })
            .unwrap();
        let mut compare = Compare {
            plain: &plain,
            recomputed: &step.gradients,
            worst: 0.0,
            compared: 0,
            missing: Vec::new(),
        };
        model.visit(&mut compare);
        assert!(compare.missing.is_empty(), "{:?}", compare.missing);
        assert!(compare.compared > 20, "only {} gradients", compare.compared);
        assert!(compare.worst < 1e-10, "config {i}: {}", compare.worst);

        let coords_grad = to_vec(step.coords.expect("coordinates require gradients"));
        let scale = plain_coords_grad
            .iter()
            .fold(1e-30f64, |m, v| m.max(v.abs()));
        let diff = plain_coords_grad
            .iter()
            .zip(&coords_grad)
            .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
        assert!(
            diff / scale < 1e-10,
            "config {i}: coordinates {}",
            diff / scale
        );
        // Padded atoms get no gradient, real ones do.
        assert!(coords_grad[18..].iter().all(|g| *g == 0.0));
        assert!(coords_grad[..18].iter().any(|g| *g != 0.0));
    }
}

#[test]
fn forward_backward_without_reversible_blocks_is_plain_autodiff() {
    let device = Default::default();
    let model: Equiformer<Ad> = perturbed(small().init::<Ad>(&device).unwrap(), 7, 0.3);
    let graph = chain(5, 0, 4);
    let input = || {
        let n = graph.tokens.len();
        EquiformerInput::tokens(
            int_tensor(graph.tokens.clone(), [1, n]),
            coords(&graph.points),
        )
    };
    let mut grads = weighted_loss(model.forward(input()).unwrap(), 1).backward();
    let plain = GradientsParams::from_module(&mut grads, &model);
    let step = model
        .forward_backward(input(), |out| Ok::<_, ModelError>(weighted_loss(out, 1)))
        .unwrap();
    let mut compare = Compare {
        plain: &plain,
        recomputed: &step.gradients,
        worst: 0.0,
        compared: 0,
        missing: Vec::new(),
    };
    model.visit(&mut compare);
    assert!(compare.missing.is_empty() && compare.compared > 20);
    assert_eq!(compare.worst, 0.0);
    assert!(step.coords.is_none());
}

#[test]
fn chunked_attention_gives_the_unchunked_output() {
    let device = Default::default();
    for config in configs() {
        let whole = perturbed(
            config
                .clone()
                .with_attention_chunk_size(None)
                .init::<F64>(&device)
                .unwrap(),
            5,
            0.3,
        );
        for chunk in [1, 2, 4, 100] {
            let chunked = config
                .clone()
                .with_attention_chunk_size(Some(chunk))
                .init::<F64>(&device)
                .unwrap()
                .load_record(whole.clone().into_record());
            let graph = chain(7, 2, 9);
            let bonds = config.num_edge_tokens.is_some();
            let a = whole
                .forward(graph.input(coords(&graph.points), bonds))
                .unwrap();
            let b = chunked
                .forward(graph.input(coords(&graph.points), bonds))
                .unwrap();
            for (x, y) in a.fiber.into_iter().zip(b.fiber) {
                let (x, y) = (to_vec(x), to_vec(y));
                let diff = x
                    .iter()
                    .zip(&y)
                    .fold(0.0f64, |m, (p, q)| m.max((p - q).abs()));
                assert!(diff < 1e-12, "chunk {chunk}: {diff}");
            }
        }
    }
}

#[test]
fn reversible_streams_differ_from_the_sequential_model() {
    // Same weights, different architecture: the option is not a no-op.
    let device = Default::default();
    let sequential = perturbed(small().init::<F64>(&device).unwrap(), 5, 0.3);
    let reversible = small()
        .with_reversible(true)
        .init::<F64>(&device)
        .unwrap()
        .load_record(sequential.clone().into_record());
    let mut draw = Draw::new(2);
    let points = draw.points(6, 1.5);
    let tokens = [0, 1, 2, 3, 4, 0];
    let a = to_vec(run_tokens(&sequential, &tokens, &points, None, None).fiber[0].clone());
    let b = to_vec(run_tokens(&reversible, &tokens, &points, None, None).fiber[0].clone());
    let diff = a
        .iter()
        .zip(&b)
        .fold(0.0f64, |m, (p, q)| m.max((p - q).abs()));
    assert!(diff > 1e-6, "{diff}");
}

#[test]
fn a_zero_chunk_size_is_a_config_error() {
    let error = small()
        .with_attention_chunk_size(Some(0))
        .init::<F64>(&Default::default())
        .unwrap_err();
    assert!(matches!(error, ModelError::Config(_)), "{error}");
}
