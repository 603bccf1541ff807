//! Dot-product and L2-distance attention after the messages as one host pass
//! per receiving node: the logits between the node's queries and the keys of
//! its slots, their masked softmax, the attention-weighted sum of the values
//! and the head gates, with the exact backward of every step.
//!
//! Flat inputs, in order (`R` receiving nodes, `K` edge slots; the node's own
//! message, when the layer has one, is slot 0 before them):
//! - queries: per degree `l`, a block `[R, 2l+1, H_l D_l]`;
//! - own messages: per degree `l`, a block `[R, 2l+1, 2 V_l]` (one unused
//!   element when the layer has no own slot);
//! - edge messages: per degree `l`, a block `[R, K, 2l+1, 2 V_l]`;
//! - slot mask `[R, K]`: 1 for a valid edge slot, 0 otherwise;
//! - head gates `[R, sum H_l]`.
//!
//! Output: per degree `l`, a block `[R, 2l+1, H_l D_l]`.
//!
//! Each message carries the keys (`V_l` channels, `[heads, D_l]`) then the
//! values (`V_l` more); `V_l = H_l D_l`, or `D_l` when all heads share one
//! key and value head. Logits of head `h`, with `s = D_l^{-1/2}`:
//! - dot product: `s sum_{m,d} q[m,h,d] k[m,h,d]`;
//! - L2 distance: `-s sum_d sqrt(max(sum_m (q[m,h,d] - k[m,h,d])^2, floor))`
//!   for `l >= 1` (a norm over `m` per channel, summed over channels), and
//!   `-s sqrt(max(sum_d (q[0,h,d] - k[0,h,d])^2, floor))` for `l = 0`.

use rayon::prelude::*;

use super::kernel::{softmax_backward, softmax_over_slots};
use crate::host_ops::blocks::{axpy, dot, offsets, split_tasks, task_ranges, RowBlocks};
use crate::host_ops::{HostOp, Real};

/// Receiving nodes per task.
const ROWS_PER_TASK: usize = 16;

/// Indices of the flat inputs.
const QUERIES: usize = 0;
const OWN: usize = 1;
const EDGES: usize = 2;
const MASK: usize = 3;
const HEAD_GATES: usize = 4;

/// How logits are formed from a query and a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum QueryLogits {
    DotProduct,
    L2Distance,
}

/// Sizes and offsets of the flat tensors of one call.
#[derive(Clone, Debug)]
pub(crate) struct QueryReadout {
    logits: QueryLogits,
    heads: Vec<usize>,
    dim_head: Vec<usize>,
    shared_head: bool,
    /// Floor of the squared distances before their square roots.
    floor: f64,
    /// Logit scale `D_l^{-1/2}` per degree.
    scale: Vec<f64>,
    rows: usize,
    slots: usize,
    own_slot: bool,
    /// Key (and value) channels per degree, `V_l`.
    values: Vec<usize>,
    /// First head gate of degree `l`; last entry the total.
    head_start: Vec<usize>,
    query_blocks: Vec<usize>,
    own_blocks: Vec<usize>,
    edge_blocks: Vec<usize>,
}

impl QueryReadout {
    /// The layout for `rows` receiving nodes with `slots` edge slots each,
    /// preceded by the own slot when `own_slot`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        logits: QueryLogits,
        heads: &[usize],
        dim_head: &[usize],
        shared_head: bool,
        floor: f64,
        rows: usize,
        slots: usize,
        own_slot: bool,
    ) -> Self {
        let degrees = heads.len();
        let values: Vec<usize> = (0..degrees)
            .map(|l| dim_head[l] * if shared_head { 1 } else { heads[l] })
            .collect();
        let message = |l: usize| (2 * l + 1) * 2 * values[l];
        let query = |l: usize| (2 * l + 1) * heads[l] * dim_head[l];
        QueryReadout {
            logits,
            heads: heads.to_vec(),
            dim_head: dim_head.to_vec(),
            shared_head,
            floor,
            scale: dim_head.iter().map(|&d| (d as f64).powf(-0.5)).collect(),
            rows,
            slots,
            own_slot,
            head_start: offsets(heads.iter().copied()),
            query_blocks: offsets((0..degrees).map(|l| rows * query(l))),
            own_blocks: if own_slot {
                offsets((0..degrees).map(|l| rows * message(l)))
            } else {
                vec![0, 1]
            },
            edge_blocks: offsets((0..degrees).map(|l| rows * slots * message(l))),
            values,
        }
    }

    fn degrees(&self) -> usize {
        self.values.len()
    }

    /// Slots per receiving node, the own slot included.
    fn all_slots(&self) -> usize {
        self.slots + usize::from(self.own_slot)
    }

    /// Key and value channels of the messages of degree `l` (`2 V_l`).
    pub(crate) fn message_channels(&self, l: usize) -> usize {
        2 * self.values[l]
    }

    /// Offset and length of degree `l`'s block in the flat output (and in the
    /// flat queries, which have the same layout).
    pub(crate) fn output_block(&self, l: usize) -> (usize, usize) {
        let (start, end) = (self.query_blocks[l], self.query_blocks[l + 1]);
        (start, end - start)
    }

    /// The key and value head that head `h` reads.
    fn key_head(&self, h: usize) -> usize {
        if self.shared_head {
            0
        } else {
            h
        }
    }

    /// Panics unless the flat inputs have the lengths of this layout.
    fn check<F>(&self, inputs: &[Vec<F>; 5]) {
        let lengths = inputs.each_ref().map(Vec::len);
        let expected = [
            *self.query_blocks.last().unwrap_or(&0),
            *self.own_blocks.last().unwrap_or(&0),
            *self.edge_blocks.last().unwrap_or(&0),
            self.rows * self.slots,
            self.rows * self.head_start[self.degrees()],
        ];
        assert_eq!(
            lengths, expected,
            "flat attention inputs do not match their sizes"
        );
    }

    /// Row strides of the query (and output) blocks, the own blocks and the
    /// edge blocks (one row per receiving node).
    fn strides(&self) -> [Vec<usize>; 3] {
        let degrees = 0..self.degrees();
        let message = |l: usize| (2 * l + 1) * 2 * self.values[l];
        let own = if self.own_slot {
            degrees.clone().map(message).collect()
        } else {
            vec![0]
        };
        [
            degrees
                .clone()
                .map(|l| (2 * l + 1) * self.heads[l] * self.dim_head[l])
                .collect(),
            own,
            degrees.map(|l| self.slots * message(l)).collect(),
        ]
    }
}

/// One receiving node's inputs.
struct Node<'a, F> {
    queries: Vec<&'a [F]>,
    own: Vec<&'a [F]>,
    edges: Vec<&'a [F]>,
    mask: &'a [F],
}

impl<'a, F: Real> Node<'a, F> {
    fn new(
        layout: &QueryReadout,
        [queries, own, edges]: [&RowBlocks<'a, F>; 3],
        mask: &'a [F],
        r: usize,
    ) -> Self {
        let degrees = 0..layout.degrees();
        Node {
            queries: degrees.clone().map(|l| queries.at(l, r)).collect(),
            own: if layout.own_slot {
                degrees.clone().map(|l| own.at(l, r)).collect()
            } else {
                Vec::new()
            },
            edges: degrees.map(|l| edges.at(l, r)).collect(),
            mask: &mask[r * layout.slots..(r + 1) * layout.slots],
        }
    }

    /// The message of degree `l` in slot `k` (own slot first), `[2l+1, 2 V_l]`.
    fn slot(&self, layout: &QueryReadout, l: usize, k: usize) -> &'a [F] {
        match k.checked_sub(usize::from(layout.own_slot)) {
            None => self.own[l],
            Some(j) => {
                let width = self.edges[l].len() / layout.slots;
                &self.edges[l][j * width..(j + 1) * width]
            }
        }
    }

    fn valid(&self, layout: &QueryReadout, k: usize) -> bool {
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
    /// Attention-weighted sums of the values `[2l+1, H, D]`, before the head gates.
    sums: Vec<F>,
    /// Scratch space of the logits.
    squares: Vec<F>,
}

impl QueryReadout {
    /// The logit of head `h` between `query` `[2l+1, H D]` and the keys of
    /// `message` `[2l+1, 2 V]` (keys first), and, when `grad` is given, the
    /// gradients of both scaled by `dlogit`, added to `grad`'s query and
    /// message rows. `squares` is scratch space.
    #[allow(clippy::too_many_arguments)]
    fn logit<F: Real>(
        &self,
        l: usize,
        h: usize,
        query: &[F],
        message: &[F],
        squares: &mut Vec<F>,
        grad: Option<(F, &mut [F], &mut [F])>,
    ) -> F {
        let (d, width) = (self.dim_head[l], 2 * l + 1);
        let (row, key_row) = (self.heads[l] * d, 2 * self.values[l]);
        let (q_at, k_at) = (h * d, self.key_head(h) * d);
        let scale = F::of(self.scale[l]);
        let floor = F::of(self.floor);
        let q = |m: usize| &query[m * row + q_at..][..d];
        let k = |m: usize| &message[m * key_row + k_at..][..d];
        if self.logits == QueryLogits::DotProduct {
            if let Some((dlogit, dq, dk)) = grad {
                for m in 0..width {
                    axpy(&mut dq[m * row + q_at..][..d], dlogit * scale, k(m));
                    axpy(&mut dk[m * key_row + k_at..][..d], dlogit * scale, q(m));
                }
            }
            return (0..width)
                .map(|m| dot(q(m), k(m)))
                .fold(F::default(), |a, b| a + b)
                * scale;
        }
        // L2 distance: squared differences summed over `m` per channel
        // (degree 0: over the channels too), floored, square-rooted.
        squares.clear();
        squares.resize(d, F::default());
        for m in 0..width {
            for ((s, &a), &b) in squares.iter_mut().zip(q(m)).zip(k(m)) {
                *s += (a - b) * (a - b);
            }
        }
        if l == 0 {
            let total = squares.iter().fold(F::default(), |a, &b| a + b);
            squares.clear();
            squares.push(total);
        }
        let norm = |s: F| if s < floor { floor } else { s }.sqrt();
        let total = squares.iter().fold(F::default(), |a, &s| a + norm(s));
        if let Some((dlogit, dq, dk)) = grad {
            for m in 0..width {
                let (dq, dk) = (
                    &mut dq[m * row + q_at..][..d],
                    &mut dk[m * key_row + k_at..][..d],
                );
                for (j, (&a, &b)) in q(m).iter().zip(k(m)).enumerate() {
                    let s = squares[if l == 0 { 0 } else { j }];
                    if s >= floor {
                        let g = -(scale * dlogit) / norm(s) * (a - b);
                        dq[j] += g;
                        dk[j] += -g;
                    }
                }
            }
        }
        -(scale * total)
    }

    /// The forward pass of degree `l` for one receiving node.
    fn degree_forward<F: Real>(&self, l: usize, node: &Node<'_, F>, out: &mut Degree<F>) {
        let (heads, d) = (self.heads[l], self.dim_head[l]);
        let (slots, width, v) = (self.all_slots(), 2 * l + 1, self.values[l]);
        let query = node.queries[l];

        // Logits, then the softmax over the valid slots.
        out.attention.clear();
        out.attention.resize(slots * heads, F::default());
        for k in (0..slots).filter(|&k| node.valid(self, k)) {
            let message = node.slot(self, l, k);
            for h in 0..heads {
                out.attention[k * heads + h] =
                    self.logit(l, h, query, message, &mut out.squares, None);
            }
        }
        softmax_over_slots(&mut out.attention, heads, |k| node.valid(self, k));

        // Attention-weighted sums of the values, per head.
        let row = heads * d;
        out.sums.clear();
        out.sums.resize(width * row, F::default());
        for k in (0..slots).filter(|&k| node.valid(self, k)) {
            let message = node.slot(self, l, k);
            for h in 0..heads {
                let a = out.attention[k * heads + h];
                let at = v + self.key_head(h) * d;
                for m in 0..width {
                    axpy(
                        &mut out.sums[m * row + h * d..][..d],
                        a,
                        &message[m * 2 * v + at..][..d],
                    );
                }
            }
        }
    }

    /// The forward pass of one task's receiving nodes into `outputs` (per degree, their rows).
    fn forward_rows<F: Real>(
        &self,
        inputs: &[Vec<F>; 5],
        blocks: [&RowBlocks<'_, F>; 3],
        (start, end): (usize, usize),
        outputs: &mut [&mut [F]],
    ) {
        let gate_width = self.head_start[self.degrees()];
        let mut degree = Degree::default();
        for (i, r) in (start..end).enumerate() {
            let node = Node::new(self, blocks, &inputs[MASK], r);
            let gates = &inputs[HEAD_GATES][r * gate_width..(r + 1) * gate_width];
            for l in 0..self.degrees() {
                self.degree_forward(l, &node, &mut degree);
                let (row, d) = (self.heads[l] * self.dim_head[l], self.dim_head[l]);
                let out = &mut outputs[l][i * degree.sums.len()..(i + 1) * degree.sums.len()];
                for (j, (o, &y)) in out.iter_mut().zip(&degree.sums).enumerate() {
                    *o = y * gates[self.head_start[l] + (j % row) / d];
                }
            }
        }
    }
}

/// Gradients of one task: the rows of its receiving nodes.
struct TaskGrads<'a, F> {
    queries: Vec<&'a mut [F]>,
    own: Vec<&'a mut [F]>,
    edges: Vec<&'a mut [F]>,
    head_gates: &'a mut [F],
}

impl<F> TaskGrads<'_, F> {
    /// The gradients of the query of degree `l` and of the message of degree
    /// `l` in slot `k` (own slot first), of the task's `i`-th receiving node.
    fn rows(
        &mut self,
        layout: &QueryReadout,
        l: usize,
        i: usize,
        k: usize,
    ) -> (&mut [F], &mut [F]) {
        let query = layout.heads[l] * layout.dim_head[l] * (2 * l + 1);
        let message = (2 * l + 1) * 2 * layout.values[l];
        let dq = &mut self.queries[l][i * query..(i + 1) * query];
        let dm = match k.checked_sub(usize::from(layout.own_slot)) {
            None => &mut self.own[l][i * message..(i + 1) * message],
            Some(j) => {
                let at = (i * layout.slots + j) * message;
                &mut self.edges[l][at..at + message]
            }
        };
        (dq, dm)
    }
}

impl QueryReadout {
    /// The backward pass of one task's receiving nodes.
    fn backward_rows<F: Real>(
        &self,
        inputs: &[Vec<F>; 5],
        blocks: [&RowBlocks<'_, F>; 3],
        output_grad: &RowBlocks<'_, F>,
        (start, end): (usize, usize),
        grads: &mut TaskGrads<'_, F>,
    ) {
        let gate_width = self.head_start[self.degrees()];
        let mut degree = Degree::default();
        let (mut dsums, mut dattention) = (Vec::new(), Vec::new());
        for (i, r) in (start..end).enumerate() {
            let node = Node::new(self, blocks, &inputs[MASK], r);
            let gates = &inputs[HEAD_GATES][r * gate_width..(r + 1) * gate_width];
            for l in 0..self.degrees() {
                self.degree_forward(l, &node, &mut degree);
                let (heads, d) = (self.heads[l], self.dim_head[l]);
                let (slots, width, v) = (self.all_slots(), 2 * l + 1, self.values[l]);
                let row = heads * d;

                // Head gates.
                let dout = output_grad.at(l, r);
                dsums.clear();
                dsums.resize(width * row, F::default());
                let gates_grad = &mut grads.head_gates[i * gate_width..(i + 1) * gate_width];
                for (j, (&g, &y)) in dout.iter().zip(&degree.sums).enumerate() {
                    let h = self.head_start[l] + (j % row) / d;
                    gates_grad[h] += g * y;
                    dsums[j] = g * gates[h];
                }

                // Weighted sums: the attention and the values of each valid slot.
                dattention.clear();
                dattention.resize(slots * heads, F::default());
                for k in (0..slots).filter(|&k| node.valid(self, k)) {
                    let message = node.slot(self, l, k);
                    let (_, dmessage) = grads.rows(self, l, i, k);
                    for h in 0..heads {
                        let a = degree.attention[k * heads + h];
                        let at = v + self.key_head(h) * d;
                        let mut da = F::default();
                        for m in 0..width {
                            let dsum = &dsums[m * row + h * d..][..d];
                            da += dot(dsum, &message[m * 2 * v + at..][..d]);
                            axpy(&mut dmessage[m * 2 * v + at..][..d], a, dsum);
                        }
                        dattention[k * heads + h] = da;
                    }
                }

                // Softmax (zero attention in invalid slots gives them zero gradient).
                softmax_backward(&degree.attention, &mut dattention, heads);

                // Logits.
                let query = node.queries[l];
                for k in (0..slots).filter(|&k| node.valid(self, k)) {
                    let message = node.slot(self, l, k);
                    let (dq, dmessage) = grads.rows(self, l, i, k);
                    for h in 0..heads {
                        let dlogit = dattention[k * heads + h];
                        self.logit(
                            l,
                            h,
                            query,
                            message,
                            &mut degree.squares,
                            Some((dlogit, &mut *dq, &mut *dmessage)),
                        );
                    }
                }
            }
        }
    }
}

impl HostOp<5> for QueryReadout {
    fn forward<F: Real>(&self, inputs: &[Vec<F>; 5]) -> Vec<F> {
        self.check(inputs);
        let [query_strides, own_strides, edge_strides] = self.strides();
        let queries = RowBlocks::new(&inputs[QUERIES], &self.query_blocks, &query_strides);
        let own = RowBlocks::new(&inputs[OWN], &self.own_blocks, &own_strides);
        let edges = RowBlocks::new(&inputs[EDGES], &self.edge_blocks, &edge_strides);
        let mut output = vec![F::default(); *self.query_blocks.last().unwrap_or(&0)];
        let tasks = task_ranges(self.rows, ROWS_PER_TASK);
        split_tasks(&mut output, &self.query_blocks, &query_strides, &tasks)
            .into_par_iter()
            .zip(tasks.par_iter())
            .for_each(|(mut pieces, &range)| {
                self.forward_rows(inputs, [&queries, &own, &edges], range, &mut pieces);
            });
        output
    }

    fn backward<F: Real>(
        &self,
        inputs: &[Vec<F>; 5],
        output_grad: &[F],
        wanted: [bool; 5],
    ) -> [Option<Vec<F>>; 5] {
        self.check(inputs);
        let [query_strides, own_strides, edge_strides] = self.strides();
        assert_eq!(
            output_grad.len(),
            *self.query_blocks.last().unwrap_or(&0),
            "output gradient length"
        );
        let queries = RowBlocks::new(&inputs[QUERIES], &self.query_blocks, &query_strides);
        let own = RowBlocks::new(&inputs[OWN], &self.own_blocks, &own_strides);
        let edges = RowBlocks::new(&inputs[EDGES], &self.edge_blocks, &edge_strides);
        let output_grad = RowBlocks::new(output_grad, &self.query_blocks, &query_strides);
        let gate_width = self.head_start[self.degrees()];
        let tasks = task_ranges(self.rows, ROWS_PER_TASK);
        let mut query_grad = vec![F::default(); inputs[QUERIES].len()];
        let mut own_grad = vec![F::default(); inputs[OWN].len()];
        let mut edge_grad = vec![F::default(); inputs[EDGES].len()];
        let mut gate_grad = vec![F::default(); inputs[HEAD_GATES].len()];
        let query_pieces = split_tasks(&mut query_grad, &self.query_blocks, &query_strides, &tasks);
        let own_pieces: Vec<Vec<&mut [F]>> = if self.own_slot {
            split_tasks(&mut own_grad, &self.own_blocks, &own_strides, &tasks)
        } else {
            tasks.iter().map(|_| Vec::new()).collect()
        };
        let edge_pieces = split_tasks(&mut edge_grad, &self.edge_blocks, &edge_strides, &tasks);
        let gate_pieces = gate_grad.chunks_mut(ROWS_PER_TASK * gate_width.max(1));
        let task_grads: Vec<TaskGrads<'_, F>> = query_pieces
            .into_iter()
            .zip(own_pieces)
            .zip(edge_pieces)
            .zip(gate_pieces.chain(std::iter::repeat_with(|| &mut [][..])))
            .map(|(((queries, own), edges), head_gates)| TaskGrads {
                queries,
                own,
                edges,
                head_gates,
            })
            .collect();
        task_grads
            .into_par_iter()
            .zip(tasks.par_iter())
            .for_each(|(mut grads, &range)| {
                let blocks = [&queries, &own, &edges];
                self.backward_rows(inputs, blocks, &output_grad, range, &mut grads);
            });
        let mut results = [
            Some(query_grad),
            Some(own_grad),
            Some(edge_grad),
            None,
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
