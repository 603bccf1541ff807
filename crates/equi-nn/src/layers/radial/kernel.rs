//! The radial network as one host pass over blocks of rows:
//! `Linear -> SiLU -> LayerNorm -> Linear -> SiLU -> LayerNorm -> Linear`,
//! with the exact backward of every step (the activations are recomputed
//! per block in the backward pass instead of being kept).
//!
//! Flat inputs, in order: features `[R, d_in]`, then per linear layer its
//! weight `[d_in, d_out]` (row-major, as Burn's `Linear`) and bias, with the
//! scale `[hidden]` of the layer norm after each of the first two.

use rayon::prelude::*;

use crate::host_ops::blocks::{centered_square_sum, dot, sum, task_ranges};
use crate::host_ops::{HostOp, Real};

/// Rows per task.
const ROWS_PER_TASK: usize = 128;

/// Sizes of one radial network call.
#[derive(Clone, Debug)]
pub(crate) struct RadialKernel {
    pub(crate) rows: usize,
    pub(crate) d_input: usize,
    pub(crate) d_hidden: usize,
    pub(crate) d_output: usize,
    pub(crate) epsilon: f64,
}

/// Indices of the flat inputs.
const FEATURES: usize = 0;
const W1: usize = 1;
const B1: usize = 2;
const G1: usize = 3;
const W2: usize = 4;
const B2: usize = 5;
const G2: usize = 6;
const W3: usize = 7;
const B3: usize = 8;

/// One hidden stage of a block of rows: `h = x W + b`, `s = silu(h)`,
/// `xhat = (s - mean) * rstd`, `out = xhat * gamma`.
#[derive(Default)]
struct Stage<F> {
    pre: Vec<F>,
    /// `sigmoid(h)`.
    gate: Vec<F>,
    normalized: Vec<F>,
    rstd: Vec<F>,
    out: Vec<F>,
}

impl RadialKernel {
    fn check<F>(&self, inputs: &[Vec<F>; 9]) {
        let (i, h, o) = (self.d_input, self.d_hidden, self.d_output);
        let expected = [self.rows * i, i * h, h, h, h * h, h, h, h * o, o];
        let lengths = inputs.each_ref().map(Vec::len);
        assert_eq!(
            lengths, expected,
            "flat radial network inputs do not match their sizes"
        );
    }

    fn tasks(&self) -> Vec<(usize, usize)> {
        task_ranges(self.rows, ROWS_PER_TASK)
    }

    /// `x W + b` for `rows` rows of `x: [rows, d_in]`, `W: [d_in, d_out]`.
    fn linear<F: Real>(rows: usize, x: &[F], weight: &[F], bias: &[F], out: &mut Vec<F>) {
        let (d_out, d_in) = (bias.len(), weight.len() / bias.len().max(1));
        out.clear();
        for _ in 0..rows {
            out.extend_from_slice(bias);
        }
        F::gemm(
            [rows, d_in, d_out],
            F::of(1.0),
            (x, [d_in, 1]),
            (weight, [d_out, 1]),
            F::of(1.0),
            (out, d_out),
        );
    }

    /// The hidden stage after `x` (see [`Stage`]).
    fn stage<F: Real>(
        &self,
        rows: usize,
        x: &[F],
        weight: &[F],
        bias: &[F],
        gamma: &[F],
        stage: &mut Stage<F>,
    ) {
        let h = self.d_hidden;
        Self::linear(rows, x, weight, bias, &mut stage.pre);
        stage.gate.resize(rows * h, F::default());
        stage.normalized.resize(rows * h, F::default());
        stage.out.resize(rows * h, F::default());
        stage.rstd.resize(rows, F::default());
        F::sigmoid_slice(&stage.pre, &mut stage.gate);
        let scale = F::of(1.0 / h as f64);
        for r in 0..rows {
            let pre = &stage.pre[r * h..(r + 1) * h];
            let gate = &stage.gate[r * h..(r + 1) * h];
            let normalized = &mut stage.normalized[r * h..(r + 1) * h];
            for ((n, &p), &s) in normalized.iter_mut().zip(pre).zip(gate) {
                *n = p * s;
            }
            let mean = sum(normalized) * scale;
            let var = centered_square_sum(normalized, mean) * scale;
            let rstd = F::of(1.0) / (var + F::of(self.epsilon)).sqrt();
            stage.rstd[r] = rstd;
            let out = &mut stage.out[r * h..(r + 1) * h];
            for ((n, o), &g) in normalized.iter_mut().zip(out.iter_mut()).zip(gamma) {
                *n = (*n - mean) * rstd;
                *o = *n * g;
            }
        }
    }

    /// Gradient of a stage's pre-activation from that of its output; adds the
    /// scale's gradient to `gamma_grad`. Overwrites `grad` with the result.
    fn stage_backward<F: Real>(
        &self,
        rows: usize,
        stage: &Stage<F>,
        gamma: &[F],
        gamma_grad: &mut [F],
        grad: &mut [F],
    ) {
        let h = self.d_hidden;
        let scale = F::of(1.0 / h as f64);
        for r in 0..rows {
            let xhat = &stage.normalized[r * h..(r + 1) * h];
            let pre = &stage.pre[r * h..(r + 1) * h];
            let gate = &stage.gate[r * h..(r + 1) * h];
            let g = &mut grad[r * h..(r + 1) * h];
            for (((g, dgamma), &x), &gamma) in
                g.iter_mut().zip(&mut *gamma_grad).zip(xhat).zip(gamma)
            {
                *dgamma += *g * x;
                *g = *g * gamma;
            }
            let (mean_g, mean_gx) = (sum(g) * scale, dot(g, xhat) * scale);
            let rstd = stage.rstd[r];
            for k in 0..h {
                let ds = rstd * (g[k] - mean_g - xhat[k] * mean_gx);
                let s = gate[k];
                g[k] = ds * s * (F::of(1.0) + pre[k] * (F::of(1.0) - s));
            }
        }
    }
}

/// `out[c] += sum over rows of m[r, c]`.
fn add_column_sums<F: Real>(m: &[F], width: usize, out: &mut [F]) {
    for row in m.chunks_exact(width) {
        for (o, &v) in out.iter_mut().zip(row) {
            *o += v;
        }
    }
}

impl HostOp<9> for RadialKernel {
    fn forward<F: Real>(&self, inputs: &[Vec<F>; 9]) -> Vec<F> {
        self.check(inputs);
        let (i, o) = (self.d_input, self.d_output);
        let mut output = vec![F::default(); self.rows * o];
        let tasks = self.tasks();
        output
            .par_chunks_mut(ROWS_PER_TASK * o)
            .zip(tasks.par_iter())
            .for_each(|(out, &(start, end))| {
                let rows = end - start;
                let x = &inputs[FEATURES][start * i..end * i];
                let (mut first, mut second) = (Stage::default(), Stage::default());
                self.stage(rows, x, &inputs[W1], &inputs[B1], &inputs[G1], &mut first);
                self.stage(
                    rows,
                    &first.out,
                    &inputs[W2],
                    &inputs[B2],
                    &inputs[G2],
                    &mut second,
                );
                let mut y = Vec::new();
                Self::linear(rows, &second.out, &inputs[W3], &inputs[B3], &mut y);
                out.copy_from_slice(&y);
            });
        output
    }

    fn backward<F: Real>(
        &self,
        inputs: &[Vec<F>; 9],
        output_grad: &[F],
        wanted: [bool; 9],
    ) -> [Option<Vec<F>>; 9] {
        self.check(inputs);
        assert_eq!(
            output_grad.len(),
            self.rows * self.d_output,
            "output gradient length"
        );
        let (i, h, o) = (self.d_input, self.d_hidden, self.d_output);
        // Parameter gradients of one task, concatenated in input order (W1..B3).
        let sizes = [0, i * h, h, h, h * h, h, h, h * o, o];
        let offsets: Vec<usize> = sizes
            .iter()
            .scan(0, |at, &s| {
                *at += s;
                Some(*at - s)
            })
            .collect();
        let total: usize = sizes.iter().sum();
        let part = |k: usize| offsets[k]..offsets[k] + sizes[k];
        let want_features = wanted[FEATURES];
        let mut feature_grad = vec![F::default(); if want_features { self.rows * i } else { 0 }];
        let tasks = self.tasks();
        let pieces: Vec<&mut [F]> = if want_features {
            feature_grad.chunks_mut(ROWS_PER_TASK * i).collect()
        } else {
            tasks.iter().map(|_| &mut [][..]).collect()
        };
        let params = pieces
            .into_par_iter()
            .zip(tasks.par_iter())
            .map(|(dx, &(start, end))| {
                let rows = end - start;
                let x = &inputs[FEATURES][start * i..end * i];
                let dy = &output_grad[start * o..end * o];
                let mut grads = vec![F::default(); total];
                let (mut first, mut second) = (Stage::default(), Stage::default());
                self.stage(rows, x, &inputs[W1], &inputs[B1], &inputs[G1], &mut first);
                self.stage(
                    rows,
                    &first.out,
                    &inputs[W2],
                    &inputs[B2],
                    &inputs[G2],
                    &mut second,
                );
                // Output layer.
                F::gemm(
                    [h, rows, o],
                    F::of(1.0),
                    (&second.out, [1, h]),
                    (dy, [o, 1]),
                    F::of(1.0),
                    (&mut grads[part(W3)], o),
                );
                add_column_sums(dy, o, &mut grads[part(B3)]);
                let mut g2 = vec![F::default(); rows * h];
                F::gemm(
                    [rows, o, h],
                    F::of(1.0),
                    (dy, [o, 1]),
                    (&inputs[W3], [1, o]),
                    F::default(),
                    (&mut g2, h),
                );
                // Second stage.
                self.stage_backward(rows, &second, &inputs[G2], &mut grads[part(G2)], &mut g2);
                F::gemm(
                    [h, rows, h],
                    F::of(1.0),
                    (&first.out, [1, h]),
                    (&g2, [h, 1]),
                    F::of(1.0),
                    (&mut grads[part(W2)], h),
                );
                add_column_sums(&g2, h, &mut grads[part(B2)]);
                let mut g1 = vec![F::default(); rows * h];
                F::gemm(
                    [rows, h, h],
                    F::of(1.0),
                    (&g2, [h, 1]),
                    (&inputs[W2], [1, h]),
                    F::default(),
                    (&mut g1, h),
                );
                // First stage.
                self.stage_backward(rows, &first, &inputs[G1], &mut grads[part(G1)], &mut g1);
                F::gemm(
                    [i, rows, h],
                    F::of(1.0),
                    (x, [1, i]),
                    (&g1, [h, 1]),
                    F::of(1.0),
                    (&mut grads[part(W1)], h),
                );
                add_column_sums(&g1, h, &mut grads[part(B1)]);
                if want_features {
                    F::gemm(
                        [rows, h, i],
                        F::of(1.0),
                        (&g1, [h, 1]),
                        (&inputs[W1], [1, h]),
                        F::default(),
                        (dx, i),
                    );
                }
                grads
            })
            .reduce(
                || vec![F::default(); total],
                |mut a, b| {
                    a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
                    a
                },
            );
        std::array::from_fn(|k| {
            if !wanted[k] {
                None
            } else if k == FEATURES {
                Some(std::mem::take(&mut feature_grad))
            } else {
                Some(params[part(k)].to_vec())
            }
        })
    }
}
