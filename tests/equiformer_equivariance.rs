//! Rotation + translation equivariance of whole Equiformer models, one test per
//! option and the combinations that matter (f64 to 1e-10; f32 runs in its own
//! test binary, `tests/f32.rs`).

use equi_nn::{AttentionKind, EquiformerConfig};
use proptest::prelude::*;

use crate::support::{check, perturbed, F64};

/// A small model; every test varies one or two options.
fn small(num_degrees: usize) -> EquiformerConfig {
    EquiformerConfig::new(vec![8, 4, 4, 2][..num_degrees].to_vec())
        .with_num_degrees(num_degrees)
        .with_num_tokens(Some(5))
        .with_heads(vec![2])
        .with_dim_head(vec![3])
        .with_depth(2)
        .with_radial_hidden_dim(8)
}

fn assert_f64(config: EquiformerConfig, vector_channels: usize, padding: usize) {
    let model = perturbed(
        config
            .init::<F64>(&Default::default())
            .expect("valid config"),
        5,
        0.3,
    );
    let report = check(&model, 7, padding, vector_channels, 11);
    assert!(report.max_relative_error < 1e-10, "{config:?}\n{report:?}");
}

#[test]
fn every_attention_kind_is_equivariant_in_f64() {
    for kind in [
        AttentionKind::Mlp,
        AttentionKind::DotProduct,
        AttentionKind::L2Distance,
    ] {
        for attend_self in [true, false] {
            assert_f64(
                small(3).with_attention(kind).with_attend_self(attend_self),
                0,
                0,
            );
        }
    }
}

#[test]
fn reduced_and_full_outputs_are_equivariant_for_two_to_four_degrees() {
    for num_degrees in 2..=4 {
        for reduce in [true, false] {
            assert_f64(small(num_degrees).with_reduce_dim_out(reduce), 0, 0);
        }
    }
}

#[test]
fn degree_one_inputs_are_equivariant() {
    for kind in [AttentionKind::Mlp, AttentionKind::L2Distance] {
        let config = small(3)
            .with_input_degrees(2)
            .with_dim_in(Some(vec![8, 2]))
            .with_attention(kind);
        assert_f64(config, 2, 0);
    }
}

#[test]
fn padded_batches_are_equivariant_and_padding_is_ignored() {
    for kind in [
        AttentionKind::Mlp,
        AttentionKind::DotProduct,
        AttentionKind::L2Distance,
    ] {
        assert_f64(
            small(3).with_attention(kind).with_reduce_dim_out(true),
            0,
            3,
        );
    }
}

#[test]
fn nearest_neighbour_options_are_equivariant() {
    assert_f64(small(3).with_num_neighbors(Some(3)), 0, 2);
    assert_f64(
        small(2).with_valid_radius(2.0).with_attend_self(false),
        0,
        0,
    );
}

#[test]
fn other_reference_options_are_equivariant() {
    assert_f64(
        small(3)
            .with_single_headed_kv(true)
            .with_attention(AttentionKind::DotProduct),
        0,
        0,
    );
    assert_f64(small(3).with_single_headed_kv(true), 0, 0);
    assert_f64(small(3).with_ff_include_htype_norms(true), 0, 0);
    assert_f64(
        small(3).with_linear_out(false).with_reduce_dim_out(true),
        0,
        0,
    );
    assert_f64(
        small(3)
            .with_gate_attn_head_outputs(false)
            .with_num_positions(Some(16)),
        0,
        0,
    );
    assert_f64(
        small(3)
            .with_heads(vec![1, 2, 3])
            .with_dim_head(vec![2, 3, 4]),
        0,
        0,
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    #[test]
    fn random_options_and_sizes_are_equivariant(
        num_degrees in 2usize..=3,
        kind in prop::sample::select(vec![AttentionKind::Mlp, AttentionKind::DotProduct, AttentionKind::L2Distance]),
        attend_self in any::<bool>(),
        n in 2usize..8,
        padding in 0usize..3,
        seed in 0u64..1000,
    ) {
        let config = small(num_degrees).with_attention(kind).with_attend_self(attend_self).with_depth(1);
        let model = perturbed(config.init::<F64>(&Default::default()).expect("valid config"), seed, 0.3);
        let report = check(&model, n, padding, 0, seed);
        prop_assert!(report.max_relative_error < 1e-10, "{report:?}");
    }
}

#[test]
fn both_message_paths_are_equivariant_for_every_attention_kind() {
    for kind in [
        AttentionKind::Mlp,
        AttentionKind::DotProduct,
        AttentionKind::L2Distance,
    ] {
        for path in [equi_nn::MessagePath::So3, equi_nn::MessagePath::So2] {
            assert_f64(
                small(3).with_attention(kind).with_message_path(Some(path)),
                0,
                2,
            );
        }
    }
}

#[test]
fn truncated_so2_messages_and_degree_one_inputs_are_equivariant() {
    assert_f64(small(4).with_m_max(Some(1)), 0, 2);
    assert_f64(
        small(4)
            .with_m_max(Some(0))
            .with_attention(AttentionKind::L2Distance),
        0,
        0,
    );
    let vectors = small(3)
        .with_message_path(Some(equi_nn::MessagePath::So2))
        .with_input_degrees(2)
        .with_dim_in(Some(vec![8, 2]));
    assert_f64(vectors, 2, 0);
}
