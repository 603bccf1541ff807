//! Float32 tests, in their own process: Burn 0.21's ndarray backends share one
//! device whose float type is fixed by the first tensor a process creates, so
//! f32 checks must not share a test binary with f64 ones.

#[allow(dead_code)]
mod support;

use std::sync::Mutex;

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorData};
use equi_nn::{AttentionKind, Equiformer, EquiformerConfig, MessagePath};
use so3_math::rotation::{rotation_from_quaternion, RandomRotations};
use so3_math::{spherical_harmonics, spherical_harmonics_f64, wigner_d, wigner_d_f64};

use support::{check, perturbed, run_tokens, F32};

fn readme(path: MessagePath, kind: AttentionKind) -> EquiformerConfig {
    EquiformerConfig::new(vec![4, 4, 2])
        .with_num_degrees(3)
        .with_num_tokens(Some(5))
        .with_dim_head(vec![4])
        .with_heads(vec![2])
        .with_depth(4)
        .with_reduce_dim_out(true)
        .with_attention(kind)
        .with_message_path(Some(path))
}

/// Builds a model from a fixed seed: the backend's random generator is
/// global and the tests run in parallel threads, so without the lock and the
/// seed the initial weights would depend on the order the tests draw them.
fn init(config: EquiformerConfig) -> Equiformer<F32> {
    static DRAWS: Mutex<()> = Mutex::new(());
    let _guard = DRAWS.lock().unwrap_or_else(|e| e.into_inner());
    let device = Default::default();
    F32::seed(&device, 7);
    config.init::<F32>(&device).unwrap()
}

/// Whole models of depth 4 stay below 1e-4 relative error in f32 (DESIGN's tolerance).
#[test]
fn models_are_equivariant_in_f32() {
    for path in [MessagePath::So3, MessagePath::So2] {
        for kind in [
            AttentionKind::Mlp,
            AttentionKind::DotProduct,
            AttentionKind::L2Distance,
        ] {
            let model = perturbed(init(readme(path, kind)), 5, 0.3);
            let out = run_tokens(
                &model,
                &[0, 1, 2],
                &[[0.0; 3], [1.0, 0.0, 0.0], [0.0, 1.0, 0.5]],
                None,
                None,
            );
            assert_eq!(
                out.fiber[0].dtype(),
                DType::F32,
                "the test must really run in f32"
            );
            let report = check(&model, 12, 2, 0, 3);
            assert!(
                report.max_relative_error < 1e-4,
                "{path:?} {kind:?}: {report:?}"
            );
        }
    }
}

/// Reversible blocks and chunked attention keep the f32 tolerance too.
#[test]
fn reversible_and_chunked_models_are_equivariant_in_f32() {
    let configs = [
        readme(MessagePath::So2, AttentionKind::Mlp).with_reversible(true),
        readme(MessagePath::So2, AttentionKind::Mlp).with_attention_chunk_size(Some(5)),
        readme(MessagePath::So3, AttentionKind::DotProduct)
            .with_reversible(true)
            .with_attention_chunk_size(Some(3)),
    ];
    for config in configs {
        let model = perturbed(init(config.clone()), 5, 0.3);
        let report = check(&model, 12, 2, 0, 3);
        assert!(report.max_relative_error < 1e-4, "{config:?}: {report:?}");
    }
}

/// Bond tokens, adjacency (sparse neighbours, bond distances) and global
/// linear attention keep the f32 tolerance on a bonded chain.
#[test]
fn bonded_models_are_equivariant_in_f32() {
    for kind in [AttentionKind::Mlp, AttentionKind::L2Distance] {
        let config = readme(MessagePath::So2, kind)
            .with_num_edge_tokens(Some(3))
            .with_edge_dim(Some(4))
            .with_attend_sparse_neighbors(true)
            .with_num_neighbors(Some(3))
            .with_num_adj_degrees_embed(Some(3))
            .with_adj_dim(2)
            .with_num_linear_attn_heads(2);
        let model = perturbed(init(config), 5, 0.3);
        let graph = support::chain(10, 0, 17);
        let run = |points: &[[f64; 3]], _: &[f64]| {
            support::rows_for_checker(
                &model
                    .forward(graph.input(support::coords(points), true))
                    .unwrap(),
            )
        };
        let probe = model
            .forward(graph.input(support::coords(&graph.points), true))
            .unwrap();
        assert_eq!(probe.fiber[0].dtype(), DType::F32);
        let report = so3_math::EquivarianceChecker::default()
            .with_trials(3)
            .with_seed(5)
            .check(
                &graph.points,
                &[],
                &so3_math::Irreps::default(),
                &support::output_irreps(&probe),
                run,
            )
            .unwrap();
        assert!(report.max_relative_error < 1e-4, "{kind:?}: {report:?}");
    }
}

/// The tensor spherical harmonics and Wigner-D match the f64 reference to 1e-5 in f32.
#[test]
fn so3_tensor_paths_match_the_reference_in_f32() {
    let device = Default::default();
    let mut random = RandomRotations::new(4);
    for _ in 0..20 {
        let q = [0; 4].map(|_| random.next_normal());
        let r = rotation_from_quaternion(q);
        let v = [0; 3].map(|_| random.next_normal());
        let vectors = Tensor::<F32, 2>::from_data(
            TensorData::new(v.map(|x| x as f32).to_vec(), [1, 3]),
            &device,
        );
        let y = spherical_harmonics(8, vectors).unwrap();
        assert_eq!(y[0].dtype(), DType::F32);
        let flat: Vec<f32> = r.iter().flatten().map(|&x| x as f32).collect();
        let d = wigner_d(
            8,
            Tensor::<F32, 3>::from_data(TensorData::new(flat, [1, 3, 3]), &device),
        )
        .unwrap();
        let reference_y = spherical_harmonics_f64(8, v);
        let reference_d = wigner_d_f64(8, &r);
        for l in 0..=8 {
            let got: Vec<f32> = y[l].clone().into_data().to_vec().unwrap();
            let error = got
                .iter()
                .zip(&reference_y[l])
                .fold(0.0f64, |m, (a, b)| m.max((f64::from(*a) - b).abs()));
            assert!(error / ((2 * l + 1) as f64).sqrt() < 1e-5, "Y_{l}: {error}");
            let got: Vec<f32> = d[l].clone().into_data().to_vec().unwrap();
            let error = got
                .iter()
                .zip(reference_d[l].as_slice())
                .fold(0.0f64, |m, (a, b)| m.max((f64::from(*a) - b).abs()));
            assert!(error < 1e-5, "D_{l}: {error}");
        }
    }
}
