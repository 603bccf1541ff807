//! Input checks run before a forward pass, so bad input fails with a clear error.

use burn::tensor::backend::Backend;
use burn::tensor::{Bool, ElementConversion, Tensor};

use crate::equiformer::{Equiformer, EquiformerInput, NodeInput};
use crate::error::ModelError;
use crate::geometry::NeighborList;

/// What a model expects of its input.
#[derive(Clone, Debug)]
pub(crate) struct InputSpec {
    pub dims_in: Vec<usize>,
    pub num_tokens: Option<usize>,
    pub num_positions: Option<usize>,
    pub num_edge_tokens: Option<usize>,
    pub needs_adjacency: bool,
    pub attends_bonds: bool,
}

/// Check shapes, finiteness, token range and mask; return the mask to use.
pub(crate) fn validate_input<B: Backend>(
    model: &Equiformer<B>,
    input: &EquiformerInput<B>,
) -> Result<Tensor<B, 2, Bool>, ModelError> {
    let spec = model.input_spec();
    let [batch, n, axes] = input.coords.dims();
    if axes != 3 {
        return Err(ModelError::Shape(format!(
            "coords must be [B, N, 3], got [{batch}, {n}, {axes}]"
        )));
    }
    if batch == 0 || n == 0 {
        return Err(ModelError::EmptyGraph(format!(
            "coords have shape [{batch}, {n}, 3]"
        )));
    }
    let device = input.coords.device();
    let mask = match &input.mask {
        Some(mask) if mask.dims() != [batch, n] => {
            return Err(ModelError::Shape(format!(
                "mask must be [B, N] = [{batch}, {n}], got {:?}",
                mask.dims()
            )))
        }
        Some(mask) => mask.clone(),
        None => Tensor::full([batch, n], true, &device),
    };
    let real_per_graph: i64 = mask.clone().int().sum_dim(1).min().into_scalar().elem();
    if real_per_graph < 1 {
        return Err(ModelError::EmptyGraph(
            "a graph of the batch has no real (unmasked) node".into(),
        ));
    }
    let node_mask = mask.clone().unsqueeze_dim::<3>(2); // [B, N, 1]
    check_finite(input.coords.clone(), node_mask.clone(), "coords")?;
    match (&input.nodes, spec.num_tokens) {
        (NodeInput::Tokens(tokens), Some(num_tokens)) => {
            if tokens.dims() != [batch, n] {
                return Err(ModelError::Shape(format!(
                    "tokens must be [B, N] = [{batch}, {n}], got {:?}",
                    tokens.dims()
                )));
            }
            // Padded nodes may hold any token; clamp them into range before checking.
            let checked = tokens.clone().mask_fill(mask.clone().bool_not(), 0);
            let low: i64 = checked.clone().min().into_scalar().elem();
            let high: i64 = checked.max().into_scalar().elem();
            if low < 0 || high >= num_tokens as i64 {
                return Err(ModelError::TokenOutOfRange(format!(
                    "tokens of real nodes span {low}..={high}, the vocabulary is 0..{num_tokens}"
                )));
            }
        }
        (NodeInput::Tokens(_), None) => {
            return Err(ModelError::Input(
                "tokens given but the model has no num_tokens".into(),
            ))
        }
        (NodeInput::Features(_), Some(_)) => {
            return Err(ModelError::Input(
                "the model embeds tokens (num_tokens is set); pass tokens".into(),
            ))
        }
        (NodeInput::Features(features), None) => {
            let expected = [batch, n, spec.dims_in[0]];
            if features.dims() != expected {
                return Err(ModelError::Shape(format!(
                    "features must be {expected:?}, got {:?}",
                    features.dims()
                )));
            }
            check_finite(features.clone(), node_mask.clone(), "features")?;
        }
    }
    match (&input.vectors, spec.dims_in.get(1)) {
        (Some(vectors), Some(&channels)) => {
            let expected = [batch, n, channels, 3];
            if vectors.dims() != expected {
                return Err(ModelError::Shape(format!(
                    "vectors must be {expected:?}, got {:?}",
                    vectors.dims()
                )));
            }
            check_finite(
                vectors.clone().reshape([batch, n, channels * 3]),
                node_mask,
                "vectors",
            )?;
        }
        (None, Some(_)) => {
            return Err(ModelError::Input(
                "input_degrees = 2 needs degree-1 vectors [B, N, C, 3]".into(),
            ))
        }
        (Some(_), None) => {
            return Err(ModelError::Input(
                "vectors given but input_degrees = 1".into(),
            ))
        }
        (None, None) => {}
    }
    match (&input.edges, spec.num_edge_tokens) {
        (Some(edges), Some(num_edge_tokens)) => {
            if edges.dims() != [batch, n, n] {
                return Err(ModelError::Shape(format!(
                    "edges must be [B, N, N] = [{batch}, {n}, {n}], got {:?}",
                    edges.dims()
                )));
            }
            let pair_mask = mask
                .clone()
                .unsqueeze_dim::<3>(2)
                .bool_and(mask.clone().unsqueeze_dim::<3>(1));
            let checked = edges.clone().mask_fill(pair_mask.bool_not(), 0);
            let low: i64 = checked.clone().min().into_scalar().elem();
            let high: i64 = checked.max().into_scalar().elem();
            if low < 0 || high >= num_edge_tokens as i64 {
                return Err(ModelError::TokenOutOfRange(format!(
                    "edge tokens of real pairs span {low}..={high}, the vocabulary is 0..{num_edge_tokens}"
                )));
            }
        }
        (None, Some(_)) => {
            return Err(ModelError::Input(
                "the model embeds bond tokens (num_edge_tokens); pass edges [B, N, N]".into(),
            ))
        }
        (Some(_), None) => {
            return Err(ModelError::Input(
                "edges given but the model has no num_edge_tokens".into(),
            ))
        }
        (None, None) => {}
    }
    match (&input.adjacency, spec.needs_adjacency) {
        (Some(adjacency), true) if adjacency.dims() != [batch, n, n] => {
            return Err(ModelError::Shape(format!(
                "adjacency must be [B, N, N] = [{batch}, {n}, {n}], got {:?}",
                adjacency.dims()
            )))
        }
        (Some(_), true) | (None, false) => {}
        (None, true) => {
            return Err(ModelError::Input(
                "attend_sparse_neighbors / num_adj_degrees_embed need an adjacency matrix [B, N, N]".into(),
            ))
        }
        (Some(_), false) => {
            return Err(ModelError::Input(
                "adjacency given but the model uses neither attend_sparse_neighbors nor num_adj_degrees_embed".into(),
            ))
        }
    }
    if let Some(neighbors) = &input.neighbors {
        if spec.attends_bonds {
            return Err(ModelError::Input(
                "given neighbours cannot be combined with attend_sparse_neighbors (which \
                 chooses bonded neighbours itself)"
                    .into(),
            ));
        }
        check_neighbors(neighbors, batch, n)?;
    }
    if let Some(limit) = spec.num_positions {
        if n > limit {
            return Err(ModelError::Shape(format!(
                "{n} nodes exceed num_positions = {limit}"
            )));
        }
    }
    Ok(mask)
}

/// Given neighbours: `[B, N, K]` slots pointing inside their graph, finite displacements.
fn check_neighbors<B: Backend>(
    neighbors: &NeighborList<B>,
    batch: usize,
    n: usize,
) -> Result<(), ModelError> {
    let [b, m, k] = neighbors.index.dims();
    if [b, m] != [batch, n] || neighbors.mask.dims() != [b, m, k] {
        return Err(ModelError::Shape(format!(
            "neighbour index and mask must both be [B, N, K] with [B, N] = [{batch}, {n}], got \
             {:?} and {:?}",
            neighbors.index.dims(),
            neighbors.mask.dims()
        )));
    }
    if neighbors.relative.dims() != [b, m, k, 3] {
        return Err(ModelError::Shape(format!(
            "neighbour displacements must be [B, N, K, 3] = [{b}, {m}, {k}, 3], got {:?}",
            neighbors.relative.dims()
        )));
    }
    if k == 0 {
        return Ok(());
    }
    let index = neighbors.index.clone();
    let low: i64 = index.clone().min().into_scalar().elem();
    let high: i64 = index.max().into_scalar().elem();
    if low < 0 || high >= n as i64 {
        return Err(ModelError::Shape(format!(
            "neighbour indices span {low}..={high}, the graphs have {n} nodes"
        )));
    }
    let finite = neighbors
        .relative
        .clone()
        .detach()
        .reshape([b * m * k, 3])
        .is_finite()
        .all();
    if !all_true(finite) {
        return Err(ModelError::NonFinite(
            "neighbour displacements contain NaN or infinity".into(),
        ));
    }
    Ok(())
}

fn check_finite<B: Backend>(
    values: Tensor<B, 3>,
    node_mask: Tensor<B, 3, Bool>,
    name: &str,
) -> Result<(), ModelError> {
    let [batch, n, c] = values.dims();
    let ok = values
        .is_finite()
        .bool_or(node_mask.bool_not().expand([batch, n, c]))
        .all();
    if all_true(ok) {
        Ok(())
    } else {
        Err(ModelError::NonFinite(format!(
            "{name} of a real node contain NaN or infinity"
        )))
    }
}

/// Whether a one-element result of `all()` is true. Read as an integer: the GPU
/// backends store booleans as integers, whose text is not `true`/`false`.
fn all_true<B: Backend>(all: Tensor<B, 1, Bool>) -> bool {
    all.int().into_scalar().elem::<i64>() != 0
}
