//! The SO(2) messages as one pass per edge on the host: rotate into the edge
//! frame, multiply matching orders by the radial coefficients, mix channels,
//! rotate back, and the exact backward of all four steps.
//!
//! The generic path ([`super::So2Convolution::edge_messages`]) expresses the
//! same computation as about a dozen tensor operations per order and degree,
//! each a pass over an edge-sized tensor with a short last axis; here each
//! edge's small matrices stay in cache and the edges are split among threads.
//!
//! All tensors are flat, edge-major within blocks (see [`So2Layout`]):
//! - inputs: per input degree `l`, a block `[E, 2l+1, C_in(l)]`; or, when
//!   the kernel gathers the edge inputs itself ([`Gather`]), per degree a
//!   block of sender features `[S, 2l+1, C_in(l)]`, then per degree a block
//!   of receiver features `[R, 2l+1, C_in(l)]` if they are added;
//! - coefficients: `[E, W]` in the layout of [`super::So2Convolution`];
//! - frames: per degree `l = 1..=L`, a block `[E, 2l+1, 2l+1]` (rows by order
//!   `0, +1, -1, ...`, columns `m + l`);
//! - weights: per output degree `l`, the mixing matrix `[C_total, C_out(l)]`;
//! - outputs: per output degree `l`, a block `[E, 2l+1, C_out(l)]`.

use rayon::prelude::*;

use crate::host_ops::blocks::{axpy, dot, offsets, split_tasks, task_ranges, RowBlocks};
use crate::host_ops::{HostOp, Real};

/// Edges per task: large enough to amortise the scratch buffers, small
/// enough that two threads share the work evenly.
const EDGES_PER_TASK: usize = 64;

/// Sizes and offsets of the flat tensors of one SO(2) message layer.
#[derive(Clone, Debug)]
pub(crate) struct So2Layout {
    edges: usize,
    dims_in: Vec<usize>,
    dims_out: Vec<usize>,
    /// Orders `|m| <= orders` kept in the edge frame.
    orders: usize,
    /// Frames are given for degrees `1..=frame_degrees`.
    frame_degrees: usize,
    /// First concatenated channel of degree `l` (and of order `m = l`); last entry the total.
    channel_start: Vec<usize>,
    /// Offset of the radial coefficients of order `m` within an edge's row.
    order_base: Vec<usize>,
    coefficients: usize,
    /// Where the edge inputs come from (`None`: an edge-sized input per degree).
    gather: Option<Gather>,
    /// Offsets of the degrees within one edge's concatenated inputs; last entry their width.
    edge_input_at: Vec<usize>,
    input_blocks: Vec<usize>,
    frame_blocks: Vec<usize>,
    weight_blocks: Vec<usize>,
    output_blocks: Vec<usize>,
}

/// Edge inputs read from node features by the kernel, in place of an
/// edge-sized tensor: edge `e`'s input is row `sender[e]` of the senders'
/// features, plus row `e / slots` of the receivers' features when those are
/// given (the edges of one receiver are consecutive).
#[derive(Clone, Debug)]
pub(crate) struct Gather {
    sender: Vec<usize>,
    senders: usize,
    slots: usize,
    with_receivers: bool,
    /// The edges of sender `s` are `edges_by_sender[sender_start[s]..sender_start[s + 1]]`,
    /// in increasing order (so that the backward sums in a fixed order).
    sender_start: Vec<usize>,
    edges_by_sender: Vec<usize>,
}

impl Gather {
    /// Edges reading the sender rows `sender` (each below `senders`), in
    /// groups of `slots` per receiver; `None` if a row is out of range or
    /// the edges do not fill whole groups.
    pub(crate) fn new(
        sender: Vec<usize>,
        senders: usize,
        slots: usize,
        with_receivers: bool,
    ) -> Option<Self> {
        if slots == 0 || !sender.len().is_multiple_of(slots) || sender.iter().any(|&s| s >= senders)
        {
            return None;
        }
        let mut counts = vec![0; senders];
        sender.iter().for_each(|&s| counts[s] += 1);
        let sender_start = offsets(counts.into_iter());
        let mut next = sender_start.clone();
        let mut edges_by_sender = vec![0; sender.len()];
        for (e, &s) in sender.iter().enumerate() {
            edges_by_sender[next[s]] = e;
            next[s] += 1;
        }
        Some(Gather {
            sender,
            senders,
            slots,
            with_receivers,
            sender_start,
            edges_by_sender,
        })
    }

    fn edges_of_sender(&self, s: usize) -> &[usize] {
        &self.edges_by_sender[self.sender_start[s]..self.sender_start[s + 1]]
    }
}

impl So2Layout {
    /// The layout for `edges` edges, `dims_in -> dims_out` channels, orders
    /// up to `orders`, frames up to degree `frame_degrees` and `coefficients`
    /// radial coefficients per edge (as [`super::So2Convolution::radial_outputs`]).
    pub(crate) fn new(
        edges: usize,
        dims_in: &[usize],
        dims_out: &[usize],
        orders: usize,
        frame_degrees: usize,
    ) -> Self {
        let channel_start = offsets(dims_in.iter().copied());
        let total = *channel_start.last().unwrap_or(&0);
        let order_width =
            |m: usize| (1 + usize::from(m > 0)) * (dims_out.len() - m) * (total - channel_start[m]);
        let order_base = offsets((0..=orders).map(order_width));
        let coefficients = *order_base.last().unwrap_or(&0);
        let edge_input_at = offsets(dims_in.iter().enumerate().map(|(l, c)| (2 * l + 1) * c));
        let input_blocks = offsets(
            dims_in
                .iter()
                .enumerate()
                .map(|(l, c)| edges * (2 * l + 1) * c),
        );
        let frame_blocks = offsets((0..=frame_degrees).map(|l| {
            if l == 0 {
                0
            } else {
                edges * (2 * l + 1) * (2 * l + 1)
            }
        }));
        let weight_blocks = offsets(dims_out.iter().map(|c| total * c));
        let output_blocks = offsets(
            dims_out
                .iter()
                .enumerate()
                .map(|(l, c)| edges * (2 * l + 1) * c),
        );
        So2Layout {
            edges,
            dims_in: dims_in.to_vec(),
            dims_out: dims_out.to_vec(),
            orders,
            frame_degrees,
            channel_start,
            order_base,
            coefficients,
            gather: None,
            edge_input_at,
            input_blocks,
            frame_blocks,
            weight_blocks,
            output_blocks,
        }
    }

    /// The layout with edge inputs gathered from node features by `gather`
    /// (its edge count must be this layout's).
    pub(crate) fn gathering(mut self, gather: Gather) -> Self {
        assert_eq!(gather.sender.len(), self.edges, "one sender per edge");
        let degree_blocks = |rows: usize| {
            self.dims_in
                .iter()
                .enumerate()
                .map(move |(l, c)| rows * (2 * l + 1) * c)
        };
        let receivers = gather.with_receivers.then(|| self.edges / gather.slots);
        let blocks: Vec<usize> = degree_blocks(gather.senders)
            .chain(receivers.into_iter().flat_map(degree_blocks))
            .collect();
        self.input_blocks = offsets(blocks.into_iter());
        self.gather = Some(gather);
        self
    }

    /// Length of the flat inputs.
    pub(crate) fn input_len(&self) -> usize {
        *self.input_blocks.last().unwrap_or(&0)
    }

    /// Length of the flat coefficients.
    pub(crate) fn coefficient_len(&self) -> usize {
        self.edges * self.coefficients
    }

    /// Length of the flat frames.
    pub(crate) fn frame_len(&self) -> usize {
        *self.frame_blocks.last().unwrap_or(&0)
    }

    /// Length of the flat mixing weights.
    pub(crate) fn weight_len(&self) -> usize {
        *self.weight_blocks.last().unwrap_or(&0)
    }

    /// Length of the flat outputs.
    pub(crate) fn output_len(&self) -> usize {
        *self.output_blocks.last().unwrap_or(&0)
    }

    fn channels(&self) -> usize {
        *self.channel_start.last().unwrap_or(&0)
    }

    /// Rows kept in the edge frame for degree `l`: orders up to `min(l, orders)`.
    fn rows(&self, l: usize) -> usize {
        2 * l.min(self.orders) + 1
    }

    /// Per-row sizes of the input blocks (rows of edges, or of senders then
    /// receivers when gathering), of the frame and of the output blocks.
    fn input_strides(&self) -> Vec<usize> {
        let per_degree = self.edge_input_at.windows(2).map(|w| w[1] - w[0]);
        match &self.gather {
            Some(gather) if gather.with_receivers => per_degree.clone().chain(per_degree).collect(),
            _ => per_degree.collect(),
        }
    }

    /// Width of one edge's concatenated inputs.
    fn edge_input_width(&self) -> usize {
        *self.edge_input_at.last().unwrap_or(&0)
    }

    /// Writes edge `e`'s inputs, concatenated over degrees, into `out`.
    fn edge_input<F: Real>(&self, inputs: &RowBlocks<'_, F>, e: usize, out: &mut [F]) {
        let degrees = self.dims_in.len();
        for l in 0..degrees {
            let x = &mut out[self.edge_input_at[l]..self.edge_input_at[l + 1]];
            match &self.gather {
                None => x.copy_from_slice(inputs.at(l, e)),
                Some(gather) => {
                    x.copy_from_slice(inputs.at(l, gather.sender[e]));
                    if gather.with_receivers {
                        let receiver = inputs.at(degrees + l, e / gather.slots);
                        x.iter_mut().zip(receiver).for_each(|(x, &r)| *x += r);
                    }
                }
            }
        }
    }

    fn frame_strides(&self) -> Vec<usize> {
        (0..=self.frame_degrees)
            .map(|l| if l == 0 { 0 } else { (2 * l + 1) * (2 * l + 1) })
            .collect()
    }

    fn output_strides(&self) -> Vec<usize> {
        self.dims_out
            .iter()
            .enumerate()
            .map(|(l, c)| (2 * l + 1) * c)
            .collect()
    }

    /// Index of `a_m` (or `b_m` with `sine`) of output degree `l_out` at
    /// channel `t` (counted from the first channel of order `m`).
    fn coefficient(&self, m: usize, sine: bool, l_out: usize, t: usize) -> usize {
        let width = self.channels() - self.channel_start[m];
        let degrees = self.dims_out.len() - m;
        self.order_base[m] + (usize::from(sine) * degrees + l_out - m) * width + t
    }

    /// Edge ranges of the parallel tasks.
    fn tasks(&self) -> Vec<(usize, usize)> {
        task_ranges(self.edges, EDGES_PER_TASK)
    }
}

impl So2Layout {
    /// Panics unless the flat inputs have the lengths of this layout.
    fn check<F>(&self, [inputs, coefficients, frames, weights]: &[Vec<F>; 4]) {
        let lengths = [
            inputs.len(),
            coefficients.len(),
            frames.len(),
            weights.len(),
        ];
        let expected = [
            self.input_len(),
            self.coefficient_len(),
            self.frame_len(),
            self.weight_len(),
        ];
        assert_eq!(
            lengths, expected,
            "flat SO(2) inputs do not match their layout"
        );
    }
}

/// The flat inputs are, in order: edge inputs, radial coefficients, frames, mixing weights.
impl HostOp<4> for So2Layout {
    fn forward<F: Real>(&self, inputs: &[Vec<F>; 4]) -> Vec<F> {
        forward(self, inputs)
    }

    fn backward<F: Real>(
        &self,
        inputs: &[Vec<F>; 4],
        output_grad: &[F],
        wanted: [bool; 4],
    ) -> [Option<Vec<F>>; 4] {
        backward(self, inputs, output_grad, wanted)
    }
}

/// Scratch space of one task (a block of `n` edges).
struct Block<F> {
    /// The edges' inputs, concatenated over degrees `[n, width]`.
    inputs: Vec<F>,
    /// Their gradient.
    inputs_grad: Vec<F>,
    /// Edge-frame inputs `[n, 2M+1, C_total]` (rows by order; zero where a degree has no such row).
    frame: Vec<F>,
    /// Their gradient.
    frame_grad: Vec<F>,
    /// Products of one output degree `[n, rows, C_total]` (zero before the first channel of a row's order).
    products: Vec<F>,
    /// Their gradient.
    products_grad: Vec<F>,
    /// Mixed messages of one output degree in the edge frame `[n, rows, C_out]`.
    mixed: Vec<F>,
    /// Their gradient.
    mixed_grad: Vec<F>,
}

impl<F: Real> Block<F> {
    fn new(layout: &So2Layout, n: usize) -> Self {
        let frame = vec![F::default(); n * layout.frame_width()];
        let widest = layout.dims_out.iter().copied().max().unwrap_or(0);
        let mixed = vec![F::default(); n * (2 * layout.orders + 1) * widest];
        let inputs = vec![F::default(); n * layout.edge_input_width()];
        Block {
            inputs_grad: inputs.clone(),
            inputs,
            frame_grad: frame.clone(),
            products: frame.clone(),
            products_grad: frame.clone(),
            frame,
            mixed_grad: mixed.clone(),
            mixed,
        }
    }
}

impl So2Layout {
    /// Size of one edge's frame inputs, `(2M+1) C_total`.
    fn frame_width(&self) -> usize {
        (2 * self.orders + 1) * self.channels()
    }
}

/// Rotates edge `e`'s inputs `x` (concatenated over degrees) into its frame:
/// `frame[r, start_l + c] = sum_j D_l[r, j] x_l[j, c]`.
fn rotate_in<F: Real>(
    layout: &So2Layout,
    x: &[F],
    frames: &RowBlocks<'_, F>,
    e: usize,
    frame: &mut [F],
) {
    let total = layout.channels();
    frame.iter_mut().for_each(|v| *v = F::default());
    for (l, &c) in layout.dims_in.iter().enumerate() {
        let x = &x[layout.edge_input_at[l]..layout.edge_input_at[l + 1]];
        let start = layout.channel_start[l];
        if l == 0 {
            frame[start..start + c].copy_from_slice(x);
            continue;
        }
        let d = frames.at(l, e);
        let width = 2 * l + 1;
        for r in 0..layout.rows(l) {
            let row = &mut frame[r * total + start..r * total + start + c];
            for j in 0..width {
                axpy(row, d[r * width + j], &x[j * c..(j + 1) * c]);
            }
        }
    }
}

/// The backward of [`rotate_in`] for edge `e` (the `local`-th of its task):
/// writes the gradient of its inputs `x` to `dx` (concatenated like `x`,
/// when wanted) and adds that of its frames to `dframes` (when wanted).
#[allow(clippy::too_many_arguments)]
fn rotate_in_backward<F: Real>(
    layout: &So2Layout,
    x: &[F],
    frames: &RowBlocks<'_, F>,
    e: usize,
    frame_grad: &[F],
    mut dx: Option<&mut [F]>,
    mut dframes: Option<&mut [&mut [F]]>,
    local: usize,
) {
    let total = layout.channels();
    if let Some(dx) = dx.as_deref_mut() {
        dx.iter_mut().for_each(|v| *v = F::default());
    }
    for (l, &c) in layout.dims_in.iter().enumerate() {
        let first = layout.channel_start[l];
        let (at, end) = (layout.edge_input_at[l], layout.edge_input_at[l + 1]);
        if l == 0 {
            if let Some(dx) = dx.as_deref_mut() {
                dx[at..end].copy_from_slice(&frame_grad[first..first + c]);
            }
            continue;
        }
        let d = frames.at(l, e);
        let width = 2 * l + 1;
        let x = &x[at..end];
        for r in 0..layout.rows(l) {
            let df = &frame_grad[r * total + first..r * total + first + c];
            if let Some(dx) = dx.as_deref_mut() {
                let dxl = &mut dx[at..end];
                for j in 0..width {
                    axpy(&mut dxl[j * c..(j + 1) * c], d[r * width + j], df);
                }
            }
            if let Some(dframes) = dframes.as_deref_mut() {
                let dd = &mut dframes[l][local * width * width..(local + 1) * width * width];
                for j in 0..width {
                    dd[r * width + j] += dot(df, &x[j * c..(j + 1) * c]);
                }
            }
        }
    }
}

/// Products of output degree `l_out` with one edge's radial coefficients,
/// row by row of the edge frame: `out[r, t]` for the channels `t` of row
/// `r`'s order, zero before them.
fn products<F: Real>(
    layout: &So2Layout,
    l_out: usize,
    coefficients: &[F],
    frame: &[F],
    out: &mut [F],
) {
    let total = layout.channels();
    for r in 0..layout.rows(l_out) {
        let m = order_of_row(r);
        let start = layout.channel_start[m];
        let width = total - start;
        let (zeros, row) = out[r * total..(r + 1) * total].split_at_mut(start);
        zeros.iter_mut().for_each(|v| *v = F::default());
        let a = &coefficients[layout.coefficient(m, false, l_out, 0)..][..width];
        if m == 0 {
            let x = &frame[start..total];
            for t in 0..width {
                row[t] = a[t] * x[t];
            }
            continue;
        }
        let b = &coefficients[layout.coefficient(m, true, l_out, 0)..][..width];
        let plus = &frame[(2 * m - 1) * total + start..2 * m * total];
        let minus = &frame[2 * m * total + start..(2 * m + 1) * total];
        if r % 2 == 1 {
            for t in 0..width {
                row[t] = a[t] * plus[t] - b[t] * minus[t];
            }
        } else {
            for t in 0..width {
                row[t] = b[t] * plus[t] + a[t] * minus[t];
            }
        }
    }
}

/// The backward of [`products`] for one edge: adds the gradient of the
/// frame inputs to `frame_grad` and of the coefficients to `coefficient_grad`
/// (when given), from the products' gradient `grad`.
fn products_backward<F: Real>(
    layout: &So2Layout,
    l_out: usize,
    coefficients: &[F],
    frame: &[F],
    grad: &[F],
    frame_grad: &mut [F],
    mut coefficient_grad: Option<&mut [F]>,
) {
    let total = layout.channels();
    for m in 0..=l_out.min(layout.orders) {
        let first = layout.channel_start[m];
        let width = total - first;
        let a_at = layout.coefficient(m, false, l_out, 0);
        let a = &coefficients[a_at..a_at + width];
        if m == 0 {
            let (x, g) = (&frame[first..total], &grad[first..total]);
            if let Some(dc) = coefficient_grad.as_deref_mut() {
                for t in 0..width {
                    dc[a_at + t] += x[t] * g[t];
                }
            }
            let df = &mut frame_grad[first..total];
            for t in 0..width {
                df[t] += a[t] * g[t];
            }
            continue;
        }
        let b_at = layout.coefficient(m, true, l_out, 0);
        let b = &coefficients[b_at..b_at + width];
        let (rp, rm) = ((2 * m - 1) * total + first, 2 * m * total + first);
        for t in 0..width {
            let (p, q) = (frame[rp + t], frame[rm + t]);
            let (gp, gq) = (grad[rp + t], grad[rm + t]);
            if let Some(dc) = coefficient_grad.as_deref_mut() {
                dc[a_at + t] += gp * p + gq * q;
                dc[b_at + t] += gq * p - gp * q;
            }
            frame_grad[rp + t] += a[t] * gp + b[t] * gq;
            frame_grad[rm + t] += a[t] * gq - b[t] * gp;
        }
    }
}

/// `out[j, :] = sum_r D[r, j] mixed[r, :]` (the rotation back, `D^T`), for
/// `D: [rows of 2l+1, 2l+1]` of which the first `rows` are used.
fn rotate_back<F: Real>(d: &[F], width: usize, rows: usize, mixed: &[F], out: &mut [F]) {
    let c = out.len() / width;
    out.iter_mut().for_each(|v| *v = F::default());
    for r in 0..rows {
        let row = &mixed[r * c..(r + 1) * c];
        for j in 0..width {
            axpy(&mut out[j * c..(j + 1) * c], d[r * width + j], row);
        }
    }
}

/// `dmixed[r, :] = sum_j D[r, j] g[j, :]`, the backward of [`rotate_back`].
fn rotate_back_grad<F: Real>(d: &[F], width: usize, rows: usize, g: &[F], dmixed: &mut [F]) {
    let c = g.len() / width;
    dmixed.iter_mut().for_each(|v| *v = F::default());
    for r in 0..rows {
        let row = &mut dmixed[r * c..(r + 1) * c];
        for j in 0..width {
            axpy(row, d[r * width + j], &g[j * c..(j + 1) * c]);
        }
    }
}

/// `mixed = products W` for a block of `n` edges (`[n rows, C_total] x [C_total, C_out]`).
fn mix<F: Real>(
    layout: &So2Layout,
    l_out: usize,
    n: usize,
    weight: &[F],
    products: &[F],
    mixed: &mut [F],
) {
    let (total, c_out, rows) = (
        layout.channels(),
        layout.dims_out[l_out],
        layout.rows(l_out),
    );
    F::gemm(
        [n * rows, total, c_out],
        F::of(1.0),
        (products, [total, 1]),
        (weight, [c_out, 1]),
        F::default(),
        (mixed, c_out),
    );
}

/// The messages of every edge.
fn forward<F: Real>(layout: &So2Layout, data: &[Vec<F>; 4]) -> Vec<F> {
    layout.check(data);
    let [inputs, coefficients, frames, weights] = data;
    let mut output = vec![F::default(); layout.output_len()];
    let tasks = layout.tasks();
    let (in_strides, frame_strides, out_strides) = (
        layout.input_strides(),
        layout.frame_strides(),
        layout.output_strides(),
    );
    let inputs = RowBlocks::new(inputs, &layout.input_blocks, &in_strides);
    let frames = RowBlocks::new(frames, &layout.frame_blocks, &frame_strides);
    let pieces = split_tasks(&mut output, &layout.output_blocks, &out_strides, &tasks);
    let (total, frame_width, w) = (layout.channels(), layout.frame_width(), layout.coefficients);
    let edge_width = layout.edge_input_width();
    pieces
        .into_par_iter()
        .zip(tasks.par_iter())
        .for_each(|(mut outputs, &(start, end))| {
            let n = end - start;
            let mut block = Block::new(layout, n);
            for (i, e) in (start..end).enumerate() {
                let x = &mut block.inputs[i * edge_width..(i + 1) * edge_width];
                layout.edge_input(&inputs, e, x);
                let frame = &mut block.frame[i * frame_width..(i + 1) * frame_width];
                rotate_in(layout, x, &frames, e, frame);
            }
            for (l_out, &c_out) in layout.dims_out.iter().enumerate() {
                let (rows, width) = (layout.rows(l_out), 2 * l_out + 1);
                let weight = &weights[layout.weight_blocks[l_out]..layout.weight_blocks[l_out + 1]];
                for (i, e) in (start..end).enumerate() {
                    products(
                        layout,
                        l_out,
                        &coefficients[e * w..(e + 1) * w],
                        &block.frame[i * frame_width..(i + 1) * frame_width],
                        &mut block.products[i * rows * total..(i + 1) * rows * total],
                    );
                }
                mix(layout, l_out, n, weight, &block.products, &mut block.mixed);
                for (i, e) in (start..end).enumerate() {
                    let mixed = &block.mixed[i * rows * c_out..(i + 1) * rows * c_out];
                    let out = &mut outputs[l_out][i * width * c_out..(i + 1) * width * c_out];
                    if l_out == 0 {
                        out.copy_from_slice(mixed);
                    } else {
                        rotate_back(frames.at(l_out, e), width, rows, mixed, out);
                    }
                }
            }
        });
    output
}

/// Gradients of the flat inputs given the gradient of the flat outputs.
fn backward<F: Real>(
    layout: &So2Layout,
    data: &[Vec<F>; 4],
    output_grad: &[F],
    wanted: [bool; 4],
) -> [Option<Vec<F>>; 4] {
    layout.check(data);
    let [inputs, coefficients, frames, weights] = data;
    assert_eq!(
        output_grad.len(),
        layout.output_len(),
        "output gradient length"
    );
    let [want_inputs, want_coefficients, want_frames, want_weights] = wanted;
    let tasks = layout.tasks();
    let (in_strides, frame_strides, out_strides) = (
        layout.input_strides(),
        layout.frame_strides(),
        layout.output_strides(),
    );
    let inputs = RowBlocks::new(inputs, &layout.input_blocks, &in_strides);
    let frames = RowBlocks::new(frames, &layout.frame_blocks, &frame_strides);
    let grads_out = RowBlocks::new(output_grad, &layout.output_blocks, &out_strides);
    let (total, frame_width, w) = (layout.channels(), layout.frame_width(), layout.coefficients);
    let edge_width = layout.edge_input_width();

    // Unwanted gradients get empty buffers, split into empty pieces.
    let blocks = |wanted: bool, offsets: &[usize], strides: &[usize]| {
        if wanted {
            (offsets.to_vec(), strides.to_vec())
        } else {
            (vec![0; offsets.len()], vec![0; strides.len()])
        }
    };
    // The inputs' gradient per edge: in the layout of the inputs, or, when
    // gathering, concatenated over degrees `[E, width]` (summed per node below).
    let (input_offsets, input_strides) = match layout.gather {
        None => blocks(want_inputs, &layout.input_blocks, &in_strides),
        Some(_) => blocks(want_inputs, &[0, layout.edges * edge_width], &[edge_width]),
    };
    let (coefficient_offsets, coefficient_strides) = blocks(
        want_coefficients,
        &[0, layout.coefficient_len()],
        &[layout.coefficients],
    );
    let (frame_offsets, frame_grad_strides) =
        blocks(want_frames, &layout.frame_blocks, &frame_strides);
    let zeros = |offsets: &[usize]| vec![F::default(); offsets.last().copied().unwrap_or(0)];
    let mut input_grad = zeros(&input_offsets);
    let mut coefficient_grad = zeros(&coefficient_offsets);
    let mut frame_grad = zeros(&frame_offsets);
    let input_pieces = split_tasks(&mut input_grad, &input_offsets, &input_strides, &tasks);
    let coefficient_pieces = split_tasks(
        &mut coefficient_grad,
        &coefficient_offsets,
        &coefficient_strides,
        &tasks,
    );
    let frame_pieces = split_tasks(&mut frame_grad, &frame_offsets, &frame_grad_strides, &tasks);
    let weight_len = if want_weights { layout.weight_len() } else { 0 };

    let weight_grad = input_pieces
        .into_par_iter()
        .zip(coefficient_pieces)
        .zip(frame_pieces)
        .zip(tasks.par_iter())
        .map(|(((mut dx, mut dcoef), mut dframes), &(start, end))| {
            let n = end - start;
            let mut block = Block::new(layout, n);
            let mut dweights = vec![F::default(); weight_len];
            for (i, e) in (start..end).enumerate() {
                let x = &mut block.inputs[i * edge_width..(i + 1) * edge_width];
                layout.edge_input(&inputs, e, x);
                let frame = &mut block.frame[i * frame_width..(i + 1) * frame_width];
                rotate_in(layout, x, &frames, e, frame);
            }
            block.frame_grad.iter_mut().for_each(|v| *v = F::default());
            for (l_out, &c_out) in layout.dims_out.iter().enumerate() {
                let (rows, width) = (layout.rows(l_out), 2 * l_out + 1);
                let weight_range = layout.weight_blocks[l_out]..layout.weight_blocks[l_out + 1];
                let weight = &weights[weight_range.clone()];
                let (products_len, mixed_len) = (rows * total, rows * c_out);
                for (i, e) in (start..end).enumerate() {
                    products(
                        layout,
                        l_out,
                        &coefficients[e * w..(e + 1) * w],
                        &block.frame[i * frame_width..(i + 1) * frame_width],
                        &mut block.products[i * products_len..(i + 1) * products_len],
                    );
                    let g = grads_out.at(l_out, e);
                    let dmixed = &mut block.mixed_grad[i * mixed_len..(i + 1) * mixed_len];
                    if l_out == 0 {
                        dmixed.copy_from_slice(g);
                    } else {
                        rotate_back_grad(frames.at(l_out, e), width, rows, g, dmixed);
                    }
                }
                if want_frames && l_out > 0 {
                    // dD[r, j] = mixed[r, :] . g[j, :]
                    mix(layout, l_out, n, weight, &block.products, &mut block.mixed);
                    for (i, e) in (start..end).enumerate() {
                        let (mixed, g) = (
                            &block.mixed[i * mixed_len..(i + 1) * mixed_len],
                            grads_out.at(l_out, e),
                        );
                        let dd = &mut dframes[l_out][i * width * width..(i + 1) * width * width];
                        for r in 0..rows {
                            for j in 0..width {
                                dd[r * width + j] += dot(
                                    &mixed[r * c_out..(r + 1) * c_out],
                                    &g[j * c_out..(j + 1) * c_out],
                                );
                            }
                        }
                    }
                }
                let block_rows = n * rows;
                // dproducts = dmixed W^T; dW += products^T dmixed.
                F::gemm(
                    [block_rows, c_out, total],
                    F::of(1.0),
                    (&block.mixed_grad, [c_out, 1]),
                    (weight, [1, c_out]),
                    F::default(),
                    (&mut block.products_grad, total),
                );
                if want_weights {
                    F::gemm(
                        [total, block_rows, c_out],
                        F::of(1.0),
                        (&block.products, [1, total]),
                        (&block.mixed_grad, [c_out, 1]),
                        F::of(1.0),
                        (&mut dweights[weight_range], c_out),
                    );
                }
                for (i, e) in (start..end).enumerate() {
                    products_backward(
                        layout,
                        l_out,
                        &coefficients[e * w..(e + 1) * w],
                        &block.frame[i * frame_width..(i + 1) * frame_width],
                        &block.products_grad[i * products_len..(i + 1) * products_len],
                        &mut block.frame_grad[i * frame_width..(i + 1) * frame_width],
                        want_coefficients.then(|| &mut dcoef[0][i * w..(i + 1) * w]),
                    );
                }
            }
            for (i, e) in (start..end).enumerate() {
                let edge = i * edge_width..(i + 1) * edge_width;
                rotate_in_backward(
                    layout,
                    &block.inputs[edge.clone()],
                    &frames,
                    e,
                    &block.frame_grad[i * frame_width..(i + 1) * frame_width],
                    want_inputs.then_some(&mut block.inputs_grad[edge]),
                    want_frames.then_some(&mut dframes[..]),
                    i,
                );
            }
            if want_inputs {
                let edge_grads = &block.inputs_grad[..n * edge_width];
                if layout.gather.is_some() {
                    dx[0].copy_from_slice(edge_grads);
                } else {
                    for (i, edge) in edge_grads.chunks_exact(edge_width).enumerate() {
                        for (l, dx) in dx.iter_mut().enumerate() {
                            let (at, end) = (layout.edge_input_at[l], layout.edge_input_at[l + 1]);
                            dx[i * (end - at)..(i + 1) * (end - at)]
                                .copy_from_slice(&edge[at..end]);
                        }
                    }
                }
            }
            dweights
        })
        .reduce(
            || vec![F::default(); weight_len],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
                a
            },
        );

    let input_grad = match &layout.gather {
        Some(gather) if want_inputs => gather_backward(layout, gather, &input_grad),
        _ => input_grad,
    };
    [
        want_inputs.then_some(input_grad),
        want_coefficients.then_some(coefficient_grad),
        want_frames.then_some(frame_grad),
        want_weights.then_some(weight_grad),
    ]
}

/// Sender rows per task of [`gather_backward`].
const NODES_PER_TASK: usize = 16;

/// The gradient of the gathered inputs (senders, then receivers if added,
/// in the layout of the flat inputs) from that of each edge's inputs,
/// `edge_grad: [E, width]` (concatenated over degrees): per node, the sum
/// over the edges that read it.
fn gather_backward<F: Real>(layout: &So2Layout, gather: &Gather, edge_grad: &[F]) -> Vec<F> {
    let degrees = layout.dims_in.len();
    let edge_width = layout.edge_input_width();
    let strides = layout.input_strides();
    let mut grad = vec![F::default(); layout.input_len()];
    let (sender_grad, receiver_grad) = grad.split_at_mut(layout.input_blocks[degrees]);
    let add_edges = |out: &mut [&mut [F]], row: usize, edges: &mut dyn Iterator<Item = usize>| {
        for e in edges {
            let edge = &edge_grad[e * edge_width..(e + 1) * edge_width];
            for (l, out) in out.iter_mut().enumerate() {
                let (at, end) = (layout.edge_input_at[l], layout.edge_input_at[l + 1]);
                let out = &mut out[row * (end - at)..(row + 1) * (end - at)];
                out.iter_mut()
                    .zip(&edge[at..end])
                    .for_each(|(o, &g)| *o += g);
            }
        }
    };
    let tasks = task_ranges(gather.senders, NODES_PER_TASK);
    split_tasks(
        sender_grad,
        &layout.input_blocks[..=degrees],
        &strides[..degrees],
        &tasks,
    )
    .into_par_iter()
    .zip(&tasks)
    .for_each(|(mut out, &(start, end))| {
        for (row, s) in (start..end).enumerate() {
            add_edges(
                &mut out,
                row,
                &mut gather.edges_of_sender(s).iter().copied(),
            );
        }
    });
    if gather.with_receivers {
        let slots = gather.slots;
        let tasks = task_ranges(layout.edges / slots, NODES_PER_TASK);
        let base = layout.input_blocks[degrees];
        let receiver_blocks: Vec<usize> = layout.input_blocks[degrees..]
            .iter()
            .map(|at| at - base)
            .collect();
        split_tasks(receiver_grad, &receiver_blocks, &strides[degrees..], &tasks)
            .into_par_iter()
            .zip(&tasks)
            .for_each(|(mut out, &(start, end))| {
                for (row, r) in (start..end).enumerate() {
                    add_edges(&mut out, row, &mut (r * slots..(r + 1) * slots));
                }
            });
    }
    grad
}

/// The order `m` of edge-frame row `r` (rows `0, +1, -1, +2, -2, ...`).
#[inline]
fn order_of_row(r: usize) -> usize {
    r.div_ceil(2)
}
