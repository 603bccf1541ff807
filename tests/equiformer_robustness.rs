//! Permutations, padding, gradients, degenerate geometry, bad input and records.

use burn::backend::Autodiff;
use burn::module::{Module, ModuleVisitor, Param};
use burn::record::{BinBytesRecorder, DoublePrecisionSettings, Recorder};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, TensorData};
use equi_nn::{AttentionKind, EquiformerConfig, EquiformerInput, ModelError};

use crate::support::{
    bool_tensor, coords, float_tensor, int_tensor, perturbed, rows_for_checker, run_tokens, to_vec,
    Draw, F64,
};

fn config() -> EquiformerConfig {
    EquiformerConfig::new(vec![8, 4, 4])
        .with_num_degrees(3)
        .with_num_tokens(Some(5))
        .with_heads(vec![2])
        .with_dim_head(vec![3])
        .with_depth(2)
        .with_radial_hidden_dim(8)
        .with_reduce_dim_out(true)
}

fn max_difference(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

#[test]
fn permuting_nodes_permutes_outputs() {
    for kind in [
        AttentionKind::Mlp,
        AttentionKind::DotProduct,
        AttentionKind::L2Distance,
    ] {
        let model = perturbed(
            config()
                .with_attention(kind)
                .init::<F64>(&Default::default())
                .unwrap(),
            1,
            0.3,
        );
        let mut draw = Draw::new(2);
        let points = draw.points(6, 1.5);
        let tokens: Vec<i64> = (0..6).map(|_| draw.below(5) as i64).collect();
        let order = [3, 0, 5, 1, 4, 2];
        let permuted_points: Vec<[f64; 3]> = order.iter().map(|&i| points[i]).collect();
        let permuted_tokens: Vec<i64> = order.iter().map(|&i| tokens[i]).collect();
        let original = rows_for_checker(&run_tokens(&model, &tokens, &points, None, None));
        let permuted = rows_for_checker(&run_tokens(
            &model,
            &permuted_tokens,
            &permuted_points,
            None,
            None,
        ));
        let width = original.len() / 6;
        let expected: Vec<f64> = order
            .iter()
            .flat_map(|&i| original[i * width..(i + 1) * width].to_vec())
            .collect();
        assert!(max_difference(&permuted, &expected) < 1e-12, "{kind:?}");
    }
}

#[test]
fn padding_never_reaches_real_nodes() {
    for kind in [
        AttentionKind::Mlp,
        AttentionKind::DotProduct,
        AttentionKind::L2Distance,
    ] {
        let model = perturbed(
            config()
                .with_attention(kind)
                .init::<F64>(&Default::default())
                .unwrap(),
            3,
            0.3,
        );
        let mut draw = Draw::new(4);
        let points = draw.points(5, 1.5);
        let tokens: Vec<i64> = (0..5).map(|_| draw.below(5) as i64).collect();
        let alone = rows_for_checker(&run_tokens(&model, &tokens, &points, None, None));
        // Padding right on top of real atoms, far away, and with out-of-range tokens.
        let mut padded_points = points.clone();
        padded_points.extend([points[0], [100.0, 0.0, 0.0], points[2]]);
        let mut padded_tokens = tokens.clone();
        padded_tokens.extend([4, 99, -7]);
        let mask: Vec<bool> = (0..8).map(|i| i < 5).collect();
        let out = run_tokens(&model, &padded_tokens, &padded_points, Some(&mask), None);
        let padded = rows_for_checker(&out);
        let width = alone.len() / 5;
        assert!(
            max_difference(&padded[..5 * width], &alone) < 1e-12,
            "{kind:?}"
        );
        assert!(
            padded[5 * width..].iter().all(|v| *v == 0.0),
            "padded outputs are zero"
        );
    }
}

#[test]
fn outputs_move_with_the_atoms() {
    let model = perturbed(config().init::<F64>(&Default::default()).unwrap(), 3, 0.3);
    let mut draw = Draw::new(9);
    let points = draw.points(5, 1.5);
    let mut moved = points.clone();
    moved[1][0] += 0.3;
    let a = rows_for_checker(&run_tokens(&model, &[0, 1, 2, 3, 4], &points, None, None));
    let b = rows_for_checker(&run_tokens(&model, &[0, 1, 2, 3, 4], &moved, None, None));
    assert!(
        max_difference(&a, &b) > 1e-3,
        "the model must depend on the geometry"
    );
    assert!(a.iter().any(|v| v.abs() > 1e-3), "non-trivial output");
}

type Grad = Autodiff<F64>;

/// Names of float parameters whose gradient is missing or exactly zero.
struct ZeroGradients<'a, B: AutodiffBackend> {
    grads: &'a B::Gradients,
    path: Vec<String>,
    zero: Vec<String>,
    count: usize,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for ZeroGradients<'_, B> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.count += 1;
        let nonzero = param
            .val()
            .grad(self.grads)
            .map(|g| to_vec(g).iter().any(|v| *v != 0.0 && v.is_finite()))
            .unwrap_or(false);
        if !nonzero {
            self.zero.push(self.path.join("."));
        }
    }
}

fn zero_gradient_parameters(config: EquiformerConfig, vectors: bool) -> (Vec<String>, usize) {
    let model = perturbed(config.init::<Grad>(&Default::default()).unwrap(), 7, 0.3);
    let mut draw = Draw::new(8);
    let n = 6;
    let points = draw.points(n, 1.5);
    let mut input = EquiformerInput::tokens(
        int_tensor((0..n as i64).map(|i| i % 5).collect(), [1, n]),
        coords(&points),
    );
    if vectors {
        input = input.with_vectors(float_tensor(draw.values(n * 2 * 3), [1, n, 2, 3]));
    }
    let out = model.forward(input).unwrap();
    let loss = out
        .fiber
        .iter()
        .map(|t| t.clone().square().sum())
        .reduce(|a, b| a + b)
        .unwrap();
    let grads = loss.backward();
    let mut visitor = ZeroGradients::<Grad> {
        grads: &grads,
        path: Vec::new(),
        zero: Vec::new(),
        count: 0,
    };
    model.visit(&mut visitor);
    (visitor.zero, visitor.count)
}

#[test]
fn gradients_reach_every_parameter() {
    for kind in [
        AttentionKind::Mlp,
        AttentionKind::DotProduct,
        AttentionKind::L2Distance,
    ] {
        let (zero, count) = zero_gradient_parameters(config().with_attention(kind), false);
        assert!(
            zero.is_empty(),
            "{kind:?}: {} of {count} parameters get no gradient: {zero:?}",
            zero.len()
        );
    }
    let (zero, _) = zero_gradient_parameters(
        config()
            .with_input_degrees(2)
            .with_dim_in(Some(vec![8, 2]))
            .with_num_positions(Some(8))
            .with_linear_out(false),
        true,
    );
    assert!(zero.is_empty(), "{zero:?}");
}

fn finite_outputs_and_gradients(points: &[[f64; 3]], mask: Option<Vec<bool>>) {
    for kind in [
        AttentionKind::Mlp,
        AttentionKind::DotProduct,
        AttentionKind::L2Distance,
    ] {
        let model = perturbed(
            config()
                .with_attention(kind)
                .init::<Grad>(&Default::default())
                .unwrap(),
            1,
            0.3,
        );
        let n = points.len();
        let positions = coords::<Grad>(points).require_grad();
        let mut input = EquiformerInput::tokens(
            int_tensor((0..n as i64).map(|i| i % 5).collect(), [1, n]),
            positions.clone(),
        );
        if let Some(mask) = &mask {
            input = input.with_mask(bool_tensor(mask.clone(), [1, n]));
        }
        let out = model.forward(input).unwrap();
        let values: Vec<f64> = out.fiber.iter().flat_map(|t| to_vec(t.clone())).collect();
        assert!(
            values.iter().all(|v| v.is_finite()),
            "{kind:?}: non-finite output for {points:?}"
        );
        let loss = out
            .fiber
            .iter()
            .map(|t| t.clone().sum())
            .reduce(|a, b| a + b)
            .unwrap();
        let grads = loss.backward();
        let g = to_vec(positions.grad(&grads).expect("coords require grad"));
        assert!(
            g.iter().all(|v| v.is_finite()),
            "{kind:?}: non-finite gradient for {points:?}"
        );
    }
}

#[test]
fn degenerate_geometry_stays_finite() {
    finite_outputs_and_gradients(&[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]], None);
    finite_outputs_and_gradients(&[[0.5, -0.2, 0.1]], None);
    finite_outputs_and_gradients(
        &[[0.0; 3], [1.0, 1.0, 1.0], [2.0, 2.0, 2.0], [3.0, 3.0, 3.0]],
        None,
    );
    finite_outputs_and_gradients(&[[0.0, 0.0, 1.0], [0.0, 0.0, -1.0], [0.0, 0.0, 0.0]], None);
    finite_outputs_and_gradients(
        &[[0.0; 3], [1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0; 3]],
        Some(vec![false, true, false, false]),
    );
}

#[test]
fn bad_input_gives_typed_errors() {
    let device = Default::default();
    let model = config().init::<F64>(&device).unwrap();
    let points = [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]];
    let tokens = || int_tensor::<F64, 2>(vec![0, 1, 2], [1, 3]);
    let forward = |input| model.forward(input).map(|_| ()).unwrap_err();

    let nan = [[0.0, 0.0, 0.0], [f64::NAN, 0.0, 0.0], [0.0, 1.0, 0.0]];
    assert!(matches!(
        forward(EquiformerInput::tokens(tokens(), coords(&nan))),
        ModelError::NonFinite(_)
    ));
    let inf = [[0.0, 0.0, f64::INFINITY], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]];
    assert!(matches!(
        forward(EquiformerInput::tokens(tokens(), coords(&inf))),
        ModelError::NonFinite(_)
    ));

    let wide = float_tensor::<F64, 3>(vec![0.0; 12], [1, 3, 4]);
    assert!(matches!(
        forward(EquiformerInput::tokens(tokens(), wide)),
        ModelError::Shape(_)
    ));

    let out_of_range = int_tensor::<F64, 2>(vec![0, 5, 1], [1, 3]);
    assert!(matches!(
        forward(EquiformerInput::tokens(out_of_range, coords(&points))),
        ModelError::TokenOutOfRange(_)
    ));
    let negative = int_tensor::<F64, 2>(vec![0, -1, 1], [1, 3]);
    assert!(matches!(
        forward(EquiformerInput::tokens(negative, coords(&points))),
        ModelError::TokenOutOfRange(_)
    ));

    let short_tokens = int_tensor::<F64, 2>(vec![0, 1], [1, 2]);
    assert!(matches!(
        forward(EquiformerInput::tokens(short_tokens, coords(&points))),
        ModelError::Shape(_)
    ));

    let mask = bool_tensor::<F64, 2>(vec![true, true], [1, 2]);
    assert!(matches!(
        forward(EquiformerInput::tokens(tokens(), coords(&points)).with_mask(mask)),
        ModelError::Shape(_)
    ));
    let none = bool_tensor::<F64, 2>(vec![false; 3], [1, 3]);
    assert!(matches!(
        forward(EquiformerInput::tokens(tokens(), coords(&points)).with_mask(none)),
        ModelError::EmptyGraph(_)
    ));
    let empty = float_tensor::<F64, 3>(vec![], [1, 0, 3]);
    assert!(matches!(
        forward(EquiformerInput::tokens(int_tensor(vec![], [1, 0]), empty)),
        ModelError::EmptyGraph(_)
    ));
    let features = float_tensor::<F64, 3>(vec![0.0; 24], [1, 3, 8]);
    assert!(matches!(
        forward(EquiformerInput::features(features, coords(&points))),
        ModelError::Input(_)
    ));
    let vectors = float_tensor::<F64, 4>(vec![0.0; 9], [1, 3, 1, 3]);
    assert!(matches!(
        forward(EquiformerInput::tokens(tokens(), coords(&points)).with_vectors(vectors)),
        ModelError::Input(_)
    ));

    let message = forward(EquiformerInput::tokens(tokens(), coords(&nan))).to_string();
    assert!(message.contains("NaN"), "{message}");
}

#[test]
fn bad_configurations_are_rejected() {
    let device = Default::default();
    let init = |c: EquiformerConfig| c.init::<F64>(&device).map(|_| ()).unwrap_err();
    assert!(matches!(
        init(config().with_heads(vec![1, 2])),
        ModelError::Config(_)
    ));
    assert!(matches!(
        init(config().with_num_degrees(0)),
        ModelError::Config(_)
    ));
    assert!(matches!(
        init(config().with_input_degrees(3)),
        ModelError::Config(_)
    ));
    assert!(matches!(
        init({
            let mut c = config();
            c.dim = vec![8, 0, 4];
            c
        }),
        ModelError::Config(_)
    ));
    assert!(matches!(
        init(config().with_num_neighbors(Some(0))),
        ModelError::Config(_)
    ));
}

#[test]
fn records_round_trip() {
    let device = Default::default();
    let model = perturbed(config().init::<F64>(&device).unwrap(), 4, 0.3);
    let points = Draw::new(5).points(4, 1.0);
    let before = rows_for_checker(&run_tokens(&model, &[0, 1, 2, 3], &points, None, None));
    let recorder = BinBytesRecorder::<DoublePrecisionSettings>::default();
    let bytes = recorder.record(model.clone().into_record(), ()).unwrap();
    let fresh = config().init::<F64>(&device).unwrap();
    let loaded = fresh.load_record(recorder.load(bytes, &device).unwrap());
    let after = rows_for_checker(&run_tokens(&loaded, &[0, 1, 2, 3], &points, None, None));
    assert_eq!(before, after);
}

#[test]
fn batches_match_single_graphs() {
    let device = Default::default();
    let model = perturbed(config().init::<F64>(&device).unwrap(), 6, 0.3);
    let mut draw = Draw::new(6);
    let (a, b) = (draw.points(4, 1.0), draw.points(3, 1.0));
    let single_a = rows_for_checker(&run_tokens(&model, &[0, 1, 2, 3], &a, None, None));
    let single_b = rows_for_checker(&run_tokens(&model, &[4, 3, 2], &b, None, None));
    let mut both: Vec<f64> = a.iter().flatten().copied().collect();
    both.extend(b.iter().flatten());
    both.extend([9.0, 9.0, 9.0]);
    let input = EquiformerInput::tokens(
        int_tensor(vec![0, 1, 2, 3, 4, 3, 2, 0], [2, 4]),
        Tensor::<F64, 3>::from_data(TensorData::new(both, [2, 4, 3]), &device),
    )
    .with_mask(bool_tensor(
        vec![true, true, true, true, true, true, true, false],
        [2, 4],
    ));
    let out = model.forward(input).unwrap();
    let (type0, type1) = out.reduced().unwrap();
    let type0 = to_vec(type0);
    let type1 = to_vec(type1.unwrap());
    // rows_for_checker orders per node: [type0, type1 (y, z, x), type2 (5)].
    let width = 9;
    for node in 0..4 {
        assert!((type0[node] - single_a[node * width]).abs() < 1e-12);
        let v = &type1[node * 3..node * 3 + 3];
        let expected = &single_a[node * width + 1..node * width + 4];
        assert!(max_difference(&[v[1], v[2], v[0]], expected) < 1e-12);
    }
    for node in 0..3 {
        assert!((type0[4 + node] - single_b[node * width]).abs() < 1e-12);
    }
}
