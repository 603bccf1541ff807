//! The benchmark configurations, shared by name with the reference script.

use equi_nn::{AttentionKind, EquiformerConfig, MessagePath};

/// Benchmark configurations, named as in the reference script.
pub(crate) const CONFIG_NAMES: [&str; 3] = ["readme", "mid", "mid_deg4"];
/// Neighbour modes: every other node, or the 32 nearest.
pub(crate) const NEIGHBOR_MODES: [&str; 2] = ["full", "knn32"];
/// Vocabulary of the token embedding in every configuration.
pub(crate) const NUM_TOKENS: usize = 24;

/// The model configuration called `name`, with the neighbour mode applied.
///
/// - `readme`: the reference README's usage example (MLP attention);
/// - `mid`: mid-size, the reference constructor's default attention (L2 distance);
/// - `mid_deg4`: `mid` with degrees 0..=3.
pub(crate) fn model_config(
    name: &str,
    neighbors: &str,
    message_path: Option<MessagePath>,
) -> EquiformerConfig {
    let config = match name {
        "readme" => EquiformerConfig::new(vec![4, 4, 2])
            .with_dim_head(vec![4, 4, 4])
            .with_heads(vec![2, 2, 2])
            .with_num_degrees(3)
            .with_depth(4)
            .with_attend_self(true)
            .with_attention(AttentionKind::Mlp),
        "mid" => EquiformerConfig::new(vec![64, 32, 16])
            .with_dim_head(vec![16, 16, 16])
            .with_heads(vec![4, 4, 4])
            .with_num_degrees(3)
            .with_depth(2)
            .with_attention(AttentionKind::L2Distance),
        "mid_deg4" => EquiformerConfig::new(vec![64, 32, 16, 16])
            .with_dim_head(vec![16, 16, 16, 16])
            .with_heads(vec![4, 4, 4, 4])
            .with_num_degrees(4)
            .with_depth(2)
            .with_attention(AttentionKind::L2Distance),
        other => panic!("unknown config {other:?}; expected one of {CONFIG_NAMES:?}"),
    };
    let num_neighbors = match neighbors {
        "full" => None,
        "knn32" => Some(32),
        other => panic!("unknown neighbour mode {other:?}; expected one of {NEIGHBOR_MODES:?}"),
    };
    config
        .with_num_tokens(Some(NUM_TOKENS))
        .with_reduce_dim_out(true)
        .with_num_neighbors(num_neighbors)
        .with_message_path(message_path)
}

/// The CPU backends compiled into this binary.
pub(crate) fn compiled_backends() -> Vec<&'static str> {
    let mut backends = Vec::new();
    if cfg!(feature = "ndarray") {
        backends.push("ndarray");
    }
    if cfg!(feature = "flex") {
        backends.push("flex");
    }
    backends
}
