//! Training with activations recomputed in the backward pass (reversible blocks).
//!
//! A reversible block maps two streams `(x1, x2)` to
//! `y1 = x1 + F(x2)`, `y2 = x2 + G(y1)` (`F` the attention, `G` the
//! feed-forward), so its inputs follow from its outputs:
//! `x2 = y2 - G(y1)`, `x1 = y1 - F(x2)`. [`Equiformer::forward_backward`]
//! runs the blocks without an autodiff graph, keeps only the last outputs,
//! and walks back block by block: it rebuilds each block's inputs, runs the
//! two halves once more with a graph and back-propagates the incoming
//! gradient through them. At any time one half-block's activations are held,
//! so peak memory does not grow with the depth; the price is about one more
//! forward pass of the blocks.

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Tensor;

use super::{merge_streams, Equiformer, EquiformerInput, EquiformerOutput};
use crate::error::ModelError;
use crate::geometry::{EdgeGeometry, NeighborList};
use crate::so2_convolution::EdgeFrames;

/// What [`Equiformer::forward_backward`] returns.
#[derive(Debug)]
pub struct LossGradients<B: AutodiffBackend> {
    /// The loss, `[1]`.
    pub loss: Tensor<B::InnerBackend, 1>,
    /// The gradient of the loss for every parameter it depends on, ready for
    /// an optimizer step.
    pub gradients: GradientsParams,
    /// The gradient of the loss with respect to the coordinates `[B, N, 3]`,
    /// when the input coordinates require gradients.
    pub coords: Option<Tensor<B::InnerBackend, 3>>,
    /// The gradient of the loss with respect to given neighbour displacements
    /// `[B, N, K, 3]` ([`EquiformerInput::with_neighbors`]), when they are a leaf that
    /// requires gradients: the derivative along every edge, from which forces and stress
    /// follow.
    pub displacements: Option<Tensor<B::InnerBackend, 4>>,
}

type Fiber<B> = Vec<Tensor<B, 4>>;

impl<B: AutodiffBackend> Equiformer<B> {
    /// Forward pass, `loss_fn` on the output, and backward pass, in one call.
    ///
    /// With `reversible = true` the blocks' activations are recomputed during
    /// the backward pass (see the [module docs](self)), so the memory of a
    /// training step stays flat in `depth`; the gradients are those of
    /// `loss_fn(self.forward(input)).backward()` up to rounding. Without
    /// reversible blocks this is exactly that call.
    ///
    /// `loss_fn` must depend on the model only through the output it is
    /// given (no gradients of gradients, such as forces from the
    /// coordinate gradient of an energy, through reversible blocks).
    /// Coordinate gradients are returned when the input coordinates are a
    /// leaf that requires them (`coords.require_grad()`).
    ///
    /// # Errors
    /// The input errors of [`Equiformer::forward`], and `loss_fn`'s errors.
    ///
    /// # Example
    /// ```
    /// use burn::backend::{Autodiff, NdArray};
    /// use burn::tensor::{Distribution, Int, Tensor};
    /// use equi_nn::{EquiformerConfig, EquiformerInput, ModelError};
    ///
    /// type B = Autodiff<NdArray>;
    /// let device = Default::default();
    /// let model = EquiformerConfig::new(vec![8, 4])
    ///     .with_num_tokens(Some(5))
    ///     .with_heads(vec![2])
    ///     .with_dim_head(vec![4])
    ///     .with_depth(3)
    ///     .with_reversible(true)
    ///     .with_reduce_dim_out(true)
    ///     .init::<B>(&device)?;
    /// let tokens = Tensor::<B, 2, Int>::from_ints([[0, 1, 2, 3]], &device);
    /// let coords = Tensor::<B, 3>::random([1, 4, 3], Distribution::Default, &device);
    /// let step = model.forward_backward(EquiformerInput::tokens(tokens, coords), |out| {
    ///     Ok::<_, ModelError>(out.type0().sum())
    /// })?;
    /// assert!(step.gradients.len() > 0);
    /// # Ok::<(), ModelError>(())
    /// ```
    pub fn forward_backward<E: From<ModelError>>(
        &self,
        input: EquiformerInput<B>,
        loss_fn: impl FnOnce(EquiformerOutput<B>) -> Result<Tensor<B, 1>, E>,
    ) -> Result<LossGradients<B>, E> {
        let mask = self.validate(&input)?;
        let coords = input.coords.clone();
        let displacements = input.neighbors.as_ref().map(|n| n.relative.clone());
        let displacements_grad = displacements
            .as_ref()
            .is_some_and(|relative| relative.is_require_grad());
        if !self.reversible {
            let loss = loss_fn(self.forward_valid(input, mask))?;
            let mut grads = loss.backward();
            return Ok(LossGradients {
                coords: coords.grad(&grads),
                displacements: displacements.and_then(|d| d.grad(&grads)),
                gradients: GradientsParams::from_module(&mut grads, self),
                loss: loss.inner(),
            });
        }
        let return_pooled = input.return_pooled;
        let chunk = self.attention_chunk_size;
        // Which edge tensors the loss can be differentiated through: all of
        // them for coordinate gradients, the edge features for bond embeddings.
        let coords_grad = coords.is_require_grad() || displacements_grad;
        let learned_edges =
            self.edge_embedding.num_edge_tokens().is_some() || self.edge_embedding.uses_adjacency();
        let needs_grad = GeometryNeeds {
            positions: coords_grad,
            features: coords_grad || learned_edges,
        };
        let (embedded, geometry) = self.embed(input, mask.clone());
        let inner_geometry = geometry_inner(&geometry);

        // Forward through the blocks without a graph; keep only the last streams.
        let start: Fiber<B::InnerBackend> = embedded.iter().map(|t| t.clone().inner()).collect();
        let mut streams = (start.clone(), start);
        for block in &self.blocks {
            streams = block
                .valid()
                .forward_reversible(streams, &inner_geometry, chunk);
        }
        let (mut y1, mut y2) = streams;

        // The head and the loss, with a graph from the last streams on.
        let (y1_leaf, y2_leaf) = (leaves::<B>(&y1), leaves::<B>(&y2));
        let output = self.head(
            merge_streams((y1_leaf.clone(), y2_leaf.clone())),
            mask,
            return_pooled,
        );
        let loss = loss_fn(output)?;
        let mut grads = loss.backward();
        let mut gradients = GradientsParams::new();
        collect_gradients(&mut gradients, &mut grads, self);
        let mut dy1 = gradients_of(&y1_leaf, &y1, &grads);
        let mut dy2 = gradients_of(&y2_leaf, &y2, &grads);

        // Back through the blocks, rebuilding each one's inputs from its outputs.
        let geometry_leaf = geometry_leaves::<B>(&inner_geometry, needs_grad);
        let mut geometry_grads = GeometryGradients::default();
        for block in self.blocks.iter().rev() {
            // Feed-forward half: x2 = y2 - G(y1).
            let y1_leaf = leaves::<B>(&y1);
            let g = block.feed_forward.forward(y1_leaf.clone());
            let mut grads = inner_product(&g, &dy2).backward();
            collect_gradients(&mut gradients, &mut grads, block);
            let dy1_total = add(dy1, gradients_of(&y1_leaf, &y1, &grads));
            let x2 = subtract(y2, &g);

            // Attention half: x1 = y1 - F(x2).
            let x2_leaf = leaves::<B>(&x2);
            let f = block
                .attention
                .forward_chunked(x2_leaf.clone(), &geometry_leaf, chunk);
            let mut grads = inner_product(&f, &dy1_total).backward();
            collect_gradients(&mut gradients, &mut grads, block);
            geometry_grads.accumulate(&geometry_leaf, &grads);
            dy2 = add(dy2, gradients_of(&x2_leaf, &x2, &grads));
            dy1 = dy1_total;
            y1 = subtract(y1, &f);
            y2 = x2;
        }

        // Before the blocks: both streams started as the embedded fiber.
        let seed = add(dy1, dy2);
        let mut surrogate = inner_product(&embedded, &seed);
        if let Some(term) = geometry_grads.inner_product(&geometry) {
            surrogate = surrogate + term;
        }
        let mut grads = surrogate.backward();
        collect_gradients(&mut gradients, &mut grads, self);
        Ok(LossGradients {
            loss: loss.inner(),
            gradients,
            coords: coords.grad(&grads),
            displacements: displacements.and_then(|d| d.grad(&grads)),
        })
    }
}

/// Fresh autodiff leaves (requiring gradients) holding `fiber`'s values.
fn leaves<B: AutodiffBackend>(fiber: &[Tensor<B::InnerBackend, 4>]) -> Fiber<B> {
    fiber
        .iter()
        .map(|t| Tensor::from_inner(t.clone()).require_grad())
        .collect()
}

/// The gradients reaching `leaves`, zero for a degree the loss does not see.
fn gradients_of<B: AutodiffBackend>(
    leaves: &[Tensor<B, 4>],
    values: &[Tensor<B::InnerBackend, 4>],
    grads: &B::Gradients,
) -> Fiber<B::InnerBackend> {
    leaves
        .iter()
        .zip(values)
        .map(|(leaf, value)| leaf.grad(grads).unwrap_or_else(|| value.zeros_like()))
        .collect()
}

/// `sum_l <a_l, b_l>`, whose gradient in `a` is `b` (`[1]`).
fn inner_product<B: AutodiffBackend>(
    a: &[Tensor<B, 4>],
    b: &[Tensor<B::InnerBackend, 4>],
) -> Tensor<B, 1> {
    a.iter()
        .zip(b)
        .map(|(a, b)| (a.clone() * Tensor::from_inner(b.clone())).sum())
        .reduce(|x, y| x + y)
        .expect("a fiber has degree 0")
}

fn add<B: burn::tensor::backend::Backend>(a: Fiber<B>, b: Fiber<B>) -> Fiber<B> {
    a.into_iter().zip(b).map(|(x, y)| x + y).collect()
}

/// `a - b`, with `b` taken out of its graph.
fn subtract<B: AutodiffBackend>(
    a: Fiber<B::InnerBackend>,
    b: &[Tensor<B, 4>],
) -> Fiber<B::InnerBackend> {
    a.into_iter()
        .zip(b)
        .map(|(x, y)| x - y.clone().inner())
        .collect()
}

/// Moves the gradients of `module`'s parameters from `grads` into
/// `gradients`, adding to what is there already.
fn collect_gradients<B: AutodiffBackend, M: AutodiffModule<B>>(
    gradients: &mut GradientsParams,
    grads: &mut B::Gradients,
    module: &M,
) {
    struct Collect<'a, B: AutodiffBackend> {
        gradients: &'a mut GradientsParams,
        grads: &'a mut B::Gradients,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Collect<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let Some(grad) = param.val().grad_remove(self.grads) else {
                return;
            };
            let total = match self.gradients.remove::<B::InnerBackend, D>(param.id) {
                Some(earlier) => earlier + grad,
                None => grad,
            };
            self.gradients.register(param.id, total);
        }
    }
    module.visit(&mut Collect::<B> { gradients, grads });
}

/// The geometry's values without their graph.
fn geometry_inner<B: AutodiffBackend>(g: &EdgeGeometry<B>) -> EdgeGeometry<B::InnerBackend> {
    EdgeGeometry {
        node_mask: g.node_mask.clone().inner(),
        neighbors: NeighborList {
            index: g.neighbors.index.clone().inner(),
            mask: g.neighbors.mask.clone().inner(),
            relative: g.neighbors.relative.clone().inner(),
        },
        distance: g.distance.clone().inner(),
        envelope: g.envelope.as_ref().map(|u| u.clone().inner()),
        radial_features: g.radial_features.clone().inner(),
        couplings: g
            .couplings
            .iter()
            .map(|row| row.iter().map(|c| c.clone().inner()).collect())
            .collect(),
        frames: g.frames.as_ref().map(|frames| {
            EdgeFrames::from_wigner(frames.wigner().iter().map(|d| d.clone().inner()).collect())
        }),
    }
}

/// Which geometry tensors need gradients.
#[derive(Clone, Copy)]
struct GeometryNeeds {
    /// Everything computed from the coordinates.
    positions: bool,
    /// The invariant edge features of the radial networks.
    features: bool,
}

/// A leaf holding `value`, requiring gradients when `grad`.
fn leaf<B: AutodiffBackend, const D: usize>(
    value: &Tensor<B::InnerBackend, D>,
    grad: bool,
) -> Tensor<B, D> {
    let leaf = Tensor::from_inner(value.clone());
    if grad {
        leaf.require_grad()
    } else {
        leaf
    }
}

/// The geometry as autodiff leaves: gradients with respect to it are
/// gathered over the blocks and sent through its graph once at the end.
fn geometry_leaves<B: AutodiffBackend>(
    inner: &EdgeGeometry<B::InnerBackend>,
    needs: GeometryNeeds,
) -> EdgeGeometry<B> {
    let positions = needs.positions;
    EdgeGeometry {
        node_mask: Tensor::from_inner(inner.node_mask.clone()),
        neighbors: NeighborList {
            index: Tensor::from_inner(inner.neighbors.index.clone()),
            mask: Tensor::from_inner(inner.neighbors.mask.clone()),
            relative: leaf::<B, 4>(&inner.neighbors.relative, positions),
        },
        distance: leaf::<B, 4>(&inner.distance, positions),
        envelope: inner.envelope.as_ref().map(|u| leaf::<B, 3>(u, positions)),
        radial_features: leaf::<B, 4>(&inner.radial_features, needs.features),
        couplings: inner
            .couplings
            .iter()
            .map(|row| row.iter().map(|c| leaf::<B, 5>(c, positions)).collect())
            .collect(),
        frames: inner.frames.as_ref().map(|frames| {
            EdgeFrames::from_wigner_unpacked(
                frames
                    .wigner()
                    .iter()
                    .map(|d| leaf::<B, 3>(d, positions))
                    .collect(),
            )
        }),
    }
}

/// Gradients with respect to the geometry's float tensors, summed over blocks
/// (`None` where no block's graph reached the tensor).
struct GeometryGradients<B: AutodiffBackend> {
    relative: Option<Tensor<B::InnerBackend, 4>>,
    distance: Option<Tensor<B::InnerBackend, 4>>,
    envelope: Option<Tensor<B::InnerBackend, 3>>,
    radial_features: Option<Tensor<B::InnerBackend, 4>>,
    couplings: Vec<Vec<Option<Tensor<B::InnerBackend, 5>>>>,
    wigner: Vec<Option<Tensor<B::InnerBackend, 3>>>,
}

impl<B: AutodiffBackend> Default for GeometryGradients<B> {
    fn default() -> Self {
        GeometryGradients {
            relative: None,
            distance: None,
            envelope: None,
            radial_features: None,
            couplings: Vec::new(),
            wigner: Vec::new(),
        }
    }
}

fn accumulate<B: AutodiffBackend, const D: usize>(
    total: &mut Option<Tensor<B::InnerBackend, D>>,
    leaf: &Tensor<B, D>,
    grads: &B::Gradients,
) {
    if let Some(grad) = leaf.grad(grads) {
        *total = Some(match total.take() {
            Some(earlier) => earlier + grad,
            None => grad,
        });
    }
}

fn weighted<B: AutodiffBackend, const D: usize>(
    tensor: &Tensor<B, D>,
    grad: &Option<Tensor<B::InnerBackend, D>>,
) -> Option<Tensor<B, 1>> {
    grad.as_ref()
        .map(|grad| (tensor.clone() * Tensor::from_inner(grad.clone())).sum())
}

impl<B: AutodiffBackend> GeometryGradients<B> {
    fn accumulate(&mut self, leaf: &EdgeGeometry<B>, grads: &B::Gradients) {
        accumulate(&mut self.relative, &leaf.neighbors.relative, grads);
        accumulate(&mut self.distance, &leaf.distance, grads);
        if let Some(u) = &leaf.envelope {
            accumulate(&mut self.envelope, u, grads);
        }
        accumulate(&mut self.radial_features, &leaf.radial_features, grads);
        self.couplings.resize_with(leaf.couplings.len(), Vec::new);
        for (totals, row) in self.couplings.iter_mut().zip(&leaf.couplings) {
            totals.resize_with(row.len(), || None);
            for (total, c) in totals.iter_mut().zip(row) {
                accumulate(total, c, grads);
            }
        }
        if let Some(frames) = &leaf.frames {
            self.wigner.resize_with(frames.wigner().len(), || None);
            for (total, d) in self.wigner.iter_mut().zip(frames.wigner()) {
                accumulate(total, d, grads);
            }
        }
    }

    /// `sum <tensor, gradient>` over the geometry of the forward graph, whose
    /// backward pass sends the gathered gradients on to the coordinates and
    /// the edge embeddings; `None` when no gradient was gathered.
    fn inner_product(&self, geometry: &EdgeGeometry<B>) -> Option<Tensor<B, 1>> {
        let mut terms = vec![
            weighted(&geometry.neighbors.relative, &self.relative),
            weighted(&geometry.distance, &self.distance),
            weighted(&geometry.radial_features, &self.radial_features),
        ];
        if let Some(u) = &geometry.envelope {
            terms.push(weighted(u, &self.envelope));
        }
        for (row, totals) in geometry.couplings.iter().zip(&self.couplings) {
            for (c, total) in row.iter().zip(totals) {
                terms.push(weighted(c, total));
            }
        }
        if let Some(frames) = &geometry.frames {
            for (d, total) in frames.wigner().iter().zip(&self.wigner) {
                terms.push(weighted(d, total));
            }
        }
        terms.into_iter().flatten().reduce(|a, b| a + b)
    }
}
