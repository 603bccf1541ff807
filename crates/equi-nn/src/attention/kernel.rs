//! MLP attention after the messages as one host pass per receiving node: the
//! logits and their masked softmax over the slots, the value gate, the
//! attention-weighted sum, the value projection and the head gates, with the
//! exact backward of every step.
//!
//! The projection is a channel map and the weighted sum is linear, so the
//! kernel sums the gated values of each head first and projects the `H` sums
//! instead of the `K` values (the same function, `K / H` times less work).
//!
//! Flat inputs, in order (`R` receiving nodes, `K` edge slots; the node's own
//! message, when the layer has one, is slot 0 before them):
//! - own messages: per degree `l`, a block `[R, 2l+1, C_l]` (one unused
//!   element when the layer has no own slot);
//! - edge messages: per degree `l`, a block `[R, K, 2l+1, C_l]`;
//! - slot mask `[R, K]`: 1 for a valid edge slot, 0 otherwise;
//! - logit weights: per degree, `[A_l, H_l]` (row-major, as Burn's `Linear`);
//! - value projections: per degree, `[V_l, V_l]`;
//! - head gates `[R, sum H_l]`.
//!
//! Output: per degree `l`, a block `[R, 2l+1, H_l D_l]`.
//!
//! Channels of degree 0: the logit features of every degree (`A_0, A_1,
//! ...`), then the gates of the values of degrees `1, 2, ...` (`V_1, V_2,
//! ...`), then the scalar values (`V_0`). Degree `l >= 1` carries its `V_l`
//! values. `V_l = H_l D_l`, or `D_l` when all heads share one value head.

use rayon::prelude::*;

use crate::host_ops::blocks::{axpy, dot, offsets, split_tasks, task_ranges, RowBlocks};
use crate::host_ops::{HostOp, Real};

/// Receiving nodes per task.
const ROWS_PER_TASK: usize = 16;

/// Indices of the flat inputs.
const OWN: usize = 0;
const EDGES: usize = 1;
const MASK: usize = 2;
const LOGIT_WEIGHTS: usize = 3;
const PROJECTIONS: usize = 4;
const HEAD_GATES: usize = 5;

/// The per-degree sizes of an MLP attention layer.
#[derive(Clone, Debug)]
pub(crate) struct AttentionSizes {
    /// Heads per degree.
    pub(crate) heads: Vec<usize>,
    /// Channels per head.
    pub(crate) dim_head: Vec<usize>,
    /// Logit features per degree.
    pub(crate) attn_hidden: Vec<usize>,
    /// All heads share one value head.
    pub(crate) shared_head: bool,
    /// Negative slope of the leaky ReLU of the logits.
    pub(crate) leaky_slope: f64,
}

/// Sizes and offsets of the flat tensors of one call.
#[derive(Clone, Debug)]
pub(crate) struct AttentionReadout {
    sizes: AttentionSizes,
    rows: usize,
    slots: usize,
    own_slot: bool,
    /// Value channels per degree.
    values: Vec<usize>,
    /// Channels of the messages per degree.
    channels: Vec<usize>,
    /// First logit feature of degree `l` among the scalars.
    logit_start: Vec<usize>,
    /// First gate of the values of degree `l >= 1` among the scalars (entry 0 unused).
    gate_start: Vec<usize>,
    /// First scalar value.
    value_start: usize,
    /// First head gate of degree `l`; last entry the total.
    head_start: Vec<usize>,
    own_blocks: Vec<usize>,
    edge_blocks: Vec<usize>,
    weight_blocks: Vec<usize>,
    projection_blocks: Vec<usize>,
    output_blocks: Vec<usize>,
}

impl AttentionReadout {
    /// The layout for `rows` receiving nodes with `slots` edge slots each,
    /// preceded by the own slot when `own_slot`.
    pub(crate) fn new(sizes: AttentionSizes, rows: usize, slots: usize, own_slot: bool) -> Self {
        let degrees = sizes.heads.len();
        let values: Vec<usize> = (0..degrees)
            .map(|l| sizes.dim_head[l] * if sizes.shared_head { 1 } else { sizes.heads[l] })
            .collect();
        let logit_start = offsets(sizes.attn_hidden.iter().copied());
        let gates = offsets(values.iter().skip(1).copied());
        let logits_total = logit_start[degrees];
        let mut gate_start = vec![0];
        gate_start.extend(gates[..degrees - 1].iter().map(|g| logits_total + g));
        let value_start = logits_total + gates[degrees - 1];
        let mut channels = values.clone();
        channels[0] = value_start + values[0];
        let width = |l: usize| (2 * l + 1) * channels[l];
        let own_blocks = if own_slot {
            offsets((0..degrees).map(|l| rows * width(l)))
        } else {
            vec![0, 1]
        };
        AttentionReadout {
            rows,
            slots,
            own_slot,
            logit_start,
            gate_start,
            value_start,
            head_start: offsets(sizes.heads.iter().copied()),
            own_blocks,
            edge_blocks: offsets((0..degrees).map(|l| rows * slots * width(l))),
            weight_blocks: offsets((0..degrees).map(|l| sizes.attn_hidden[l] * sizes.heads[l])),
            projection_blocks: offsets(values.iter().map(|v| v * v)),
            output_blocks: offsets(
                (0..degrees).map(|l| rows * (2 * l + 1) * sizes.heads[l] * sizes.dim_head[l]),
            ),
            values,
            channels,
            sizes,
        }
    }

    fn degrees(&self) -> usize {
        self.values.len()
    }

    /// Slots per receiving node, the own slot included.
    fn all_slots(&self) -> usize {
        self.slots + usize::from(self.own_slot)
    }

    /// Channels of the messages of degree `l`.
    pub(crate) fn channels(&self, l: usize) -> usize {
        self.channels[l]
    }

    /// Value channels of degree `l`.
    pub(crate) fn values(&self, l: usize) -> usize {
        self.values[l]
    }

    /// Length of the flat edge-message input.
    fn edge_len(&self) -> usize {
        *self.edge_blocks.last().unwrap_or(&0)
    }

    /// Offset and length of degree `l`'s block in the flat output.
    pub(crate) fn output_block(&self, l: usize) -> (usize, usize) {
        let (start, end) = (self.output_blocks[l], self.output_blocks[l + 1]);
        (start, end - start)
    }

    /// Panics unless the flat inputs have the lengths of this layout.
    fn check<F>(&self, inputs: &[Vec<F>; 6]) {
        let lengths = inputs.each_ref().map(Vec::len);
        let expected = [
            *self.own_blocks.last().unwrap_or(&0),
            self.edge_len(),
            self.rows * self.slots,
            *self.weight_blocks.last().unwrap_or(&0),
            *self.projection_blocks.last().unwrap_or(&0),
            self.rows * self.head_start[self.degrees()],
        ];
        assert_eq!(
            lengths, expected,
            "flat attention inputs do not match their sizes"
        );
    }

    /// Row strides of the own blocks, the edge blocks (one row per receiving
    /// node) and the output blocks.
    fn strides(&self) -> [Vec<usize>; 3] {
        let degrees = 0..self.degrees();
        let width = |l: usize| (2 * l + 1) * self.channels[l];
        let own = if self.own_slot {
            degrees.clone().map(width).collect()
        } else {
            vec![0]
        };
        [
            own,
            degrees.clone().map(|l| self.slots * width(l)).collect(),
            degrees
                .map(|l| (2 * l + 1) * self.sizes.heads[l] * self.sizes.dim_head[l])
                .collect(),
        ]
    }
}

/// One receiving node's inputs.
struct Node<'a, F> {
    own: Vec<&'a [F]>,
    edges: Vec<&'a [F]>,
    mask: &'a [F],
}

impl<'a, F: Real> Node<'a, F> {
    fn new(
        layout: &AttentionReadout,
        [own, edges]: [&RowBlocks<'a, F>; 2],
        mask: &'a [F],
        r: usize,
    ) -> Self {
        let degrees = 0..layout.degrees();
        Node {
            own: if layout.own_slot {
                degrees.clone().map(|l| own.at(l, r)).collect()
            } else {
                Vec::new()
            },
            edges: degrees.map(|l| edges.at(l, r)).collect(),
            mask: &mask[r * layout.slots..(r + 1) * layout.slots],
        }
    }

    /// The message of degree `l` in slot `k` (own slot first), `[2l+1, C_l]`.
    fn slot(&self, layout: &AttentionReadout, l: usize, k: usize) -> &'a [F] {
        match k.checked_sub(usize::from(layout.own_slot)) {
            None => self.own[l],
            Some(j) => {
                let width = self.edges[l].len() / layout.slots;
                &self.edges[l][j * width..(j + 1) * width]
            }
        }
    }

    fn valid(&self, layout: &AttentionReadout, k: usize) -> bool {
        match k.checked_sub(usize::from(layout.own_slot)) {
            None => true,
            Some(j) => self.mask[j] != F::default(),
        }
    }
}

/// One degree of one receiving node, the forward pass.
#[derive(Default)]
struct Degree<F> {
    /// Attention `[K', H]` (zero in invalid slots).
    attention: Vec<F>,
    /// Sigmoids of the value gates `[K', V]` (degree 0: of the scalar values).
    gates: Vec<F>,
    /// Gated values `[K', 2l+1, V]`.
    values: Vec<F>,
    /// Attention-weighted sums `[H, 2l+1, V]`.
    sums: Vec<F>,
    /// Projected sums `[2l+1, H, D]`, before the head gates.
    projected: Vec<F>,
}

/// Gradients of one degree's intermediates.
#[derive(Default)]
struct DegreeGrad<F> {
    projected: Vec<F>,
    sums: Vec<F>,
    attention: Vec<F>,
    /// Of one slot's values.
    values: Vec<F>,
    /// Of one slot's value gates.
    gates: Vec<F>,
}

/// The softmax over the valid slots of each head, in place: `attention`
/// holds logits `[K', H]` (slot-major) on entry, the attention on return,
/// zero in invalid slots.
pub(super) fn softmax_over_slots<F: Real>(
    attention: &mut [F],
    heads: usize,
    valid: impl Fn(usize) -> bool,
) {
    let slots = attention.len() / heads.max(1);
    for h in 0..heads {
        let valid_slots = || (0..slots).filter(|&k| valid(k));
        let Some(max) = valid_slots()
            .map(|k| attention[k * heads + h])
            .reduce(|a, b| if b > a { b } else { a })
        else {
            continue;
        };
        let mut total = F::default();
        for k in valid_slots() {
            let e = (attention[k * heads + h] - max).exp();
            attention[k * heads + h] = e;
            total += e;
        }
        for k in valid_slots() {
            attention[k * heads + h] = attention[k * heads + h] / total;
        }
    }
}

/// The backward pass of [`softmax_over_slots`]: `grad` holds the gradient
/// of the attention `[K', H]` on entry, that of the logits on return (zero
/// attention in invalid slots gives them zero gradient).
pub(super) fn softmax_backward<F: Real>(attention: &[F], grad: &mut [F], heads: usize) {
    let slots = attention.len() / heads.max(1);
    for h in 0..heads {
        let inner = (0..slots)
            .map(|k| attention[k * heads + h] * grad[k * heads + h])
            .fold(F::default(), |a, b| a + b);
        for k in 0..slots {
            let at = k * heads + h;
            grad[at] = attention[at] * (grad[at] - inner);
        }
    }
}

fn leaky<F: Real>(x: F, slope: F) -> F {
    if x < F::default() {
        x * slope
    } else {
        x
    }
}

fn leaky_slope_at<F: Real>(x: F, slope: F) -> F {
    if x < F::default() {
        slope
    } else {
        F::of(1.0)
    }
}

impl AttentionReadout {
    /// The forward pass of degree `l` for one receiving node.
    fn degree_forward<F: Real>(
        &self,
        l: usize,
        node: &Node<'_, F>,
        [logit_weights, projections]: [&[F]; 2],
        out: &mut Degree<F>,
    ) {
        let (heads, dim_head, hidden) = (
            self.sizes.heads[l],
            self.sizes.dim_head[l],
            self.sizes.attn_hidden[l],
        );
        let (slots, width, v) = (self.all_slots(), 2 * l + 1, self.values[l]);
        let scale = F::of((dim_head as f64).powf(-0.5));
        let slope = F::of(self.sizes.leaky_slope);
        let weight = &logit_weights[self.weight_blocks[l]..self.weight_blocks[l + 1]];
        let projection = &projections[self.projection_blocks[l]..self.projection_blocks[l + 1]];

        // Logits, then the softmax over the valid slots.
        out.attention.clear();
        out.attention.resize(slots * heads, F::default());
        for k in (0..slots).filter(|&k| node.valid(self, k)) {
            let features = &node.slot(self, 0, k)[self.logit_start[l]..][..hidden];
            let logits = &mut out.attention[k * heads..(k + 1) * heads];
            for (a, &x) in features.iter().enumerate() {
                axpy(
                    logits,
                    leaky(x, slope) * scale,
                    &weight[a * heads..(a + 1) * heads],
                );
            }
        }
        softmax_over_slots(&mut out.attention, heads, |k| node.valid(self, k));

        // Gated values (zero in invalid slots), their weighted sums per head.
        out.gates.clear();
        out.gates.resize(slots * v, F::default());
        out.values.clear();
        out.values.resize(slots * width * v, F::default());
        out.sums.clear();
        out.sums.resize(heads * width * v, F::default());
        for k in (0..slots).filter(|&k| node.valid(self, k)) {
            let scalars = node.slot(self, 0, k);
            let gates = &mut out.gates[k * v..(k + 1) * v];
            let value = &mut out.values[k * width * v..(k + 1) * width * v];
            if l == 0 {
                let x = &scalars[self.value_start..][..v];
                F::sigmoid_slice(x, gates);
                for ((y, &x), &s) in value.iter_mut().zip(x).zip(gates.iter()) {
                    *y = x * s;
                }
            } else {
                F::sigmoid_slice(&scalars[self.gate_start[l]..][..v], gates);
                let x = node.slot(self, l, k);
                for (y, x) in value.chunks_exact_mut(v).zip(x.chunks_exact(v)) {
                    for ((y, &x), &s) in y.iter_mut().zip(x).zip(gates.iter()) {
                        *y = x * s;
                    }
                }
            }
            for h in 0..heads {
                let sum = &mut out.sums[h * width * v..(h + 1) * width * v];
                axpy(sum, out.attention[k * heads + h], value);
            }
        }

        // Projection of each head's sum onto that head's output channels.
        let row = heads * dim_head;
        out.projected.clear();
        out.projected.resize(width * row, F::default());
        for h in 0..heads {
            let column = self.column(h, dim_head);
            for m in 0..width {
                let sum = &out.sums[(h * width + m) * v..][..v];
                let y = &mut out.projected[m * row + h * dim_head..][..dim_head];
                for (c, &s) in sum.iter().enumerate() {
                    axpy(y, s, &projection[c * v + column..][..dim_head]);
                }
            }
        }
    }

    /// First column of head `h`'s output channels in the value projection.
    fn column(&self, h: usize, dim_head: usize) -> usize {
        if self.sizes.shared_head {
            0
        } else {
            h * dim_head
        }
    }

    /// The forward pass of one task's receiving nodes into `outputs` (per degree, their rows).
    fn forward_rows<F: Real>(
        &self,
        inputs: &[Vec<F>; 6],
        blocks: [&RowBlocks<'_, F>; 2],
        (start, end): (usize, usize),
        outputs: &mut [&mut [F]],
    ) {
        let gate_width = self.head_start[self.degrees()];
        let mut degree = Degree::default();
        for (i, r) in (start..end).enumerate() {
            let node = Node::new(self, blocks, &inputs[MASK], r);
            let gates = &inputs[HEAD_GATES][r * gate_width..(r + 1) * gate_width];
            for l in 0..self.degrees() {
                let params = [&inputs[LOGIT_WEIGHTS][..], &inputs[PROJECTIONS][..]];
                self.degree_forward(l, &node, params, &mut degree);
                let dim_head = self.sizes.dim_head[l];
                let out = &mut outputs[l];
                let row = degree.projected.len();
                let out = &mut out[i * row..(i + 1) * row];
                for (j, (o, &y)) in out.iter_mut().zip(&degree.projected).enumerate() {
                    let h = (j % (self.sizes.heads[l] * dim_head)) / dim_head;
                    *o = y * gates[self.head_start[l] + h];
                }
            }
        }
    }
}

/// Gradients of one task: the inputs' rows (own, edges, head gates) and
/// the parameters (summed over the task's rows).
struct TaskGrads<'a, F> {
    own: Vec<&'a mut [F]>,
    edges: Vec<&'a mut [F]>,
    head_gates: &'a mut [F],
    logit_weights: Vec<F>,
    projections: Vec<F>,
}

/// The gradient of the message of degree `l` in slot `k` (own slot first) of
/// the task's `i`-th receiving node.
fn slot_grad<'b, F>(
    layout: &AttentionReadout,
    [own, edges]: [&'b mut [&mut [F]]; 2],
    l: usize,
    i: usize,
    k: usize,
) -> &'b mut [F] {
    let width = (2 * l + 1) * layout.channels[l];
    match k.checked_sub(usize::from(layout.own_slot)) {
        None => &mut own[l][i * width..(i + 1) * width],
        Some(j) => {
            let at = (i * layout.slots + j) * width;
            &mut edges[l][at..at + width]
        }
    }
}

impl AttentionReadout {
    /// The backward pass of one task's receiving nodes.
    fn backward_rows<F: Real>(
        &self,
        inputs: &[Vec<F>; 6],
        blocks: [&RowBlocks<'_, F>; 2],
        output_grad: &RowBlocks<'_, F>,
        (start, end): (usize, usize),
        grads: &mut TaskGrads<'_, F>,
    ) {
        let TaskGrads {
            own,
            edges,
            head_gates,
            logit_weights,
            projections,
        } = grads;
        let gate_width = self.head_start[self.degrees()];
        let slope = F::of(self.sizes.leaky_slope);
        let (mut degree, mut grad) = (Degree::default(), DegreeGrad::default());
        for (i, r) in (start..end).enumerate() {
            let node = Node::new(self, blocks, &inputs[MASK], r);
            let gates = &inputs[HEAD_GATES][r * gate_width..(r + 1) * gate_width];
            let gates_grad = &mut head_gates[i * gate_width..(i + 1) * gate_width];
            for l in 0..self.degrees() {
                let params = [&inputs[LOGIT_WEIGHTS][..], &inputs[PROJECTIONS][..]];
                self.degree_forward(l, &node, params, &mut degree);
                let (heads, dim_head) = (self.sizes.heads[l], self.sizes.dim_head[l]);
                let (slots, width, v) = (self.all_slots(), 2 * l + 1, self.values[l]);
                let row = heads * dim_head;
                let weights = self.weight_blocks[l]..self.weight_blocks[l + 1];
                let projection_range = self.projection_blocks[l]..self.projection_blocks[l + 1];
                let projection = &inputs[PROJECTIONS][projection_range.clone()];
                let projection_grad = &mut projections[projection_range];

                // Head gates.
                let dout = output_grad.at(l, r);
                grad.projected.clear();
                grad.projected.resize(width * row, F::default());
                for (j, (&g, &y)) in dout.iter().zip(&degree.projected).enumerate() {
                    let h = self.head_start[l] + (j % row) / dim_head;
                    gates_grad[h] += g * y;
                    grad.projected[j] = g * gates[h];
                }

                // Projection.
                grad.sums.clear();
                grad.sums.resize(heads * width * v, F::default());
                for h in 0..heads {
                    let column = self.column(h, dim_head);
                    for m in 0..width {
                        let dy = &grad.projected[m * row + h * dim_head..][..dim_head];
                        let at = (h * width + m) * v;
                        for c in 0..v {
                            let weight_row = c * v + column..c * v + column + dim_head;
                            axpy(
                                &mut projection_grad[weight_row.clone()],
                                degree.sums[at + c],
                                dy,
                            );
                            grad.sums[at + c] = dot(dy, &projection[weight_row]);
                        }
                    }
                }

                // Weighted sums, then the value gate, per valid slot.
                grad.attention.clear();
                grad.attention.resize(slots * heads, F::default());
                grad.values.clear();
                grad.values.resize(width * v, F::default());
                grad.gates.clear();
                grad.gates.resize(v, F::default());
                for k in (0..slots).filter(|&k| node.valid(self, k)) {
                    let value = &degree.values[k * width * v..(k + 1) * width * v];
                    grad.values.fill(F::default());
                    for h in 0..heads {
                        let dsum = &grad.sums[h * width * v..(h + 1) * width * v];
                        grad.attention[k * heads + h] = dot(dsum, value);
                        axpy(&mut grad.values, degree.attention[k * heads + h], dsum);
                    }
                    let gates = &degree.gates[k * v..(k + 1) * v];
                    if l == 0 {
                        let x = &node.slot(self, 0, k)[self.value_start..][..v];
                        let dx = slot_grad(self, [own, edges], 0, i, k);
                        let dx = &mut dx[self.value_start..][..v];
                        for (((d, &x), &g), &s) in dx.iter_mut().zip(x).zip(&grad.values).zip(gates)
                        {
                            *d += g * s * (F::of(1.0) + x * (F::of(1.0) - s));
                        }
                        continue;
                    }
                    let x = node.slot(self, l, k);
                    grad.gates.fill(F::default());
                    let dx = slot_grad(self, [own, edges], l, i, k);
                    for m in 0..width {
                        for c in 0..v {
                            let s = gates[c];
                            let g = grad.values[m * v + c];
                            dx[m * v + c] += g * s;
                            grad.gates[c] += g * x[m * v + c] * s * (F::of(1.0) - s);
                        }
                    }
                    let dx = slot_grad(self, [own, edges], 0, i, k);
                    for (d, &g) in dx[self.gate_start[l]..][..v].iter_mut().zip(&grad.gates) {
                        *d += g;
                    }
                }

                // Softmax (zero attention in invalid slots gives them zero gradient).
                softmax_backward(&degree.attention, &mut grad.attention, heads);

                // Logits.
                let hidden = self.sizes.attn_hidden[l];
                let scale = F::of((dim_head as f64).powf(-0.5));
                let weight = &inputs[LOGIT_WEIGHTS][weights.clone()];
                let weight_grad = &mut logit_weights[weights];
                for k in (0..slots).filter(|&k| node.valid(self, k)) {
                    let features = &node.slot(self, 0, k)[self.logit_start[l]..][..hidden];
                    let dlogits = &grad.attention[k * heads..(k + 1) * heads];
                    let dx = slot_grad(self, [own, edges], 0, i, k);
                    let dx = &mut dx[self.logit_start[l]..][..hidden];
                    for (a, (&x, d)) in features.iter().zip(dx.iter_mut()).enumerate() {
                        let at = a * heads..(a + 1) * heads;
                        axpy(
                            &mut weight_grad[at.clone()],
                            leaky(x, slope) * scale,
                            dlogits,
                        );
                        *d += dot(dlogits, &weight[at]) * scale * leaky_slope_at(x, slope);
                    }
                }
            }
        }
    }
}

impl HostOp<6> for AttentionReadout {
    fn forward<F: Real>(&self, inputs: &[Vec<F>; 6]) -> Vec<F> {
        self.check(inputs);
        let [own_strides, edge_strides, out_strides] = self.strides();
        let own = RowBlocks::new(&inputs[OWN], &self.own_blocks, &own_strides);
        let edges = RowBlocks::new(&inputs[EDGES], &self.edge_blocks, &edge_strides);
        let mut output = vec![F::default(); *self.output_blocks.last().unwrap_or(&0)];
        let tasks = task_ranges(self.rows, ROWS_PER_TASK);
        split_tasks(&mut output, &self.output_blocks, &out_strides, &tasks)
            .into_par_iter()
            .zip(tasks.par_iter())
            .for_each(|(mut pieces, &range)| {
                self.forward_rows(inputs, [&own, &edges], range, &mut pieces);
            });
        output
    }

    fn backward<F: Real>(
        &self,
        inputs: &[Vec<F>; 6],
        output_grad: &[F],
        wanted: [bool; 6],
    ) -> [Option<Vec<F>>; 6] {
        self.check(inputs);
        let [own_strides, edge_strides, out_strides] = self.strides();
        assert_eq!(
            output_grad.len(),
            *self.output_blocks.last().unwrap_or(&0),
            "output gradient length"
        );
        let own = RowBlocks::new(&inputs[OWN], &self.own_blocks, &own_strides);
        let edges = RowBlocks::new(&inputs[EDGES], &self.edge_blocks, &edge_strides);
        let output_grad = RowBlocks::new(output_grad, &self.output_blocks, &out_strides);
        let gate_width = self.head_start[self.degrees()];
        let tasks = task_ranges(self.rows, ROWS_PER_TASK);
        let mut own_grad = vec![F::default(); inputs[OWN].len()];
        let mut edge_grad = vec![F::default(); inputs[EDGES].len()];
        let mut gate_grad = vec![F::default(); inputs[HEAD_GATES].len()];
        let own_pieces: Vec<Vec<&mut [F]>> = if self.own_slot {
            split_tasks(&mut own_grad, &self.own_blocks, &own_strides, &tasks)
        } else {
            tasks.iter().map(|_| Vec::new()).collect()
        };
        let edge_pieces = split_tasks(&mut edge_grad, &self.edge_blocks, &edge_strides, &tasks);
        let gate_pieces = gate_grad.chunks_mut(ROWS_PER_TASK * gate_width.max(1));
        let (logit_len, projection_len) = (inputs[LOGIT_WEIGHTS].len(), inputs[PROJECTIONS].len());
        let task_grads: Vec<TaskGrads<'_, F>> = own_pieces
            .into_iter()
            .zip(edge_pieces)
            .zip(gate_pieces.chain(std::iter::repeat_with(|| &mut [][..])))
            .map(|((own, edges), head_gates)| TaskGrads {
                own,
                edges,
                head_gates,
                logit_weights: vec![F::default(); logit_len],
                projections: vec![F::default(); projection_len],
            })
            .collect();
        let params = task_grads
            .into_par_iter()
            .zip(tasks.par_iter())
            .map(|(mut grads, &range)| {
                self.backward_rows(inputs, [&own, &edges], &output_grad, range, &mut grads);
                (grads.logit_weights, grads.projections)
            })
            .reduce(
                || {
                    (
                        vec![F::default(); logit_len],
                        vec![F::default(); projection_len],
                    )
                },
                |(mut a, mut b), (c, d)| {
                    a.iter_mut().zip(c).for_each(|(a, c)| *a += c);
                    b.iter_mut().zip(d).for_each(|(b, d)| *b += d);
                    (a, b)
                },
            );
        let mut results = [
            Some(own_grad),
            Some(edge_grad),
            None,
            Some(params.0),
            Some(params.1),
            Some(gate_grad),
        ];
        for (result, wanted) in results.iter_mut().zip(wanted) {
            if !wanted {
                *result = None;
            }
        }
        results
    }
}
