//! Flat tensors as consecutive row-major blocks, and the small vector
//! routines the host kernels share.

/// Offsets of consecutive blocks of the given sizes; the last entry is their total.
pub(crate) fn offsets(sizes: impl Iterator<Item = usize>) -> Vec<usize> {
    let mut at = vec![0];
    for size in sizes {
        at.push(at.last().copied().unwrap_or(0) + size);
    }
    at
}

/// Read access to one row of each of a set of consecutive blocks: block `b`
/// spans `offsets[b]..offsets[b + 1]` and has rows of `strides[b]` elements.
pub(crate) struct RowBlocks<'a, F> {
    blocks: Vec<&'a [F]>,
    strides: &'a [usize],
}

impl<'a, F> RowBlocks<'a, F> {
    pub(crate) fn new(data: &'a [F], offsets: &[usize], strides: &'a [usize]) -> Self {
        let blocks = (0..strides.len())
            .map(|b| &data[offsets[b]..offsets[b + 1]])
            .collect();
        RowBlocks { blocks, strides }
    }

    /// Row `row` of block `b`.
    pub(crate) fn at(&self, b: usize, row: usize) -> &'a [F] {
        let s = self.strides[b];
        &self.blocks[b][row * s..(row + 1) * s]
    }
}

/// Splits the row-major blocks of `data` (as [`RowBlocks`]) into per-task
/// mutable pieces: entry `task` holds, for every block, the rows
/// `start..end` of that task.
pub(crate) fn split_tasks<'a, F>(
    mut data: &'a mut [F],
    offsets: &[usize],
    strides: &[usize],
    tasks: &[(usize, usize)],
) -> Vec<Vec<&'a mut [F]>> {
    let mut per_task: Vec<Vec<&'a mut [F]>> = tasks.iter().map(|_| Vec::new()).collect();
    for (b, &stride) in strides.iter().enumerate() {
        let (block, rest) = std::mem::take(&mut data).split_at_mut(offsets[b + 1] - offsets[b]);
        data = rest;
        let mut block = block;
        for (task, &(start, end)) in tasks.iter().enumerate() {
            let (piece, rest) = std::mem::take(&mut block).split_at_mut((end - start) * stride);
            block = rest;
            per_task[task].push(piece);
        }
    }
    per_task
}

/// Consecutive ranges of at most `per_task` of `0..rows`.
pub(crate) fn task_ranges(rows: usize, per_task: usize) -> Vec<(usize, usize)> {
    (0..rows)
        .step_by(per_task.max(1))
        .map(|start| (start, (start + per_task).min(rows)))
        .collect()
}

/// `y += a * x`, elementwise.
#[inline]
pub(crate) fn axpy<F: super::Real>(y: &mut [F], a: F, x: &[F]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

/// `sum x * y`, in eight interleaved partial sums (so that it vectorises).
#[inline]
pub(crate) fn dot<F: super::Real>(x: &[F], y: &[F]) -> F {
    lane_sum(x, y, |x, y| x * y)
}

/// `sum x`, in eight interleaved partial sums.
#[inline]
pub(crate) fn sum<F: super::Real>(x: &[F]) -> F {
    lane_sum(x, x, |x, _| x)
}

/// `sum (x - center)^2`, in eight interleaved partial sums.
#[inline]
pub(crate) fn centered_square_sum<F: super::Real>(x: &[F], center: F) -> F {
    lane_sum(x, x, |x, _| (x - center) * (x - center))
}

/// `sum term(x[i], y[i])` over the common length, in eight interleaved
/// partial sums: a float fold in one accumulator cannot be reordered by the
/// compiler, eight can be kept in vector registers.
#[inline(always)]
fn lane_sum<F: super::Real>(x: &[F], y: &[F], term: impl Fn(F, F) -> F) -> F {
    let n = x.len().min(y.len());
    let mut lanes = [F::default(); 8];
    let split = n - n % 8;
    for (x, y) in x[..split].chunks_exact(8).zip(y[..split].chunks_exact(8)) {
        for k in 0..8 {
            lanes[k] += term(x[k], y[k]);
        }
    }
    let mut sum = lanes.iter().fold(F::default(), |acc, &v| acc + v);
    for k in split..n {
        sum += term(x[k], y[k]);
    }
    sum
}
