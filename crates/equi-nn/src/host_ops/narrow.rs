//! Matrix products too narrow for the blocked kernel: `n <= 16` columns and
//! `m` or `k` at most 32, as they occur per block of edges in the fused
//! kernels (channel mixing per degree, value projections, attention logits).
//! There packing the operands for the blocked kernel costs about as much as
//! the arithmetic; here each output row is accumulated in registers, with the
//! width a compile-time constant, and compiled for AVX2 where the processor
//! has it (checked at run time).

use super::Real;

/// Widest product served (`n`).
const MAX_WIDTH: usize = 16;

/// Longest short side served (`min(m, k)`).
const MAX_SHORT_SIDE: usize = 32;

/// Operands of one product, row-major with the strides checked by the caller.
struct Operands<'a, F> {
    m: usize,
    k: usize,
    alpha: F,
    a: &'a [F],
    a_strides: [usize; 2],
    /// `B` with unit column stride; its row stride.
    b: &'a [F],
    b_row: usize,
    beta: F,
    c: &'a mut [F],
    c_row: usize,
}

/// `C = alpha A B + beta C` for `A: [m, k]`, `B: [k, n]`, `C: [m, n]` where
/// the product is narrow; returns whether it computed `C`.
pub(super) fn gemm<F: Real>(
    [m, k, n]: [usize; 3],
    alpha: F,
    (a, a_strides): (&[F], [usize; 2]),
    (b, [rb, cb]): (&[F], [usize; 2]),
    beta: F,
    (c, c_row): (&mut [F], usize),
) -> bool {
    if n > MAX_WIDTH || m.min(k) > MAX_SHORT_SIDE {
        return false;
    }
    if m == 0 || n == 0 {
        return true;
    }
    // A transposed `B` is copied into a contiguous `[k, n]` panel first.
    let panel: Vec<F>;
    let (b, b_row) = if cb == 1 {
        (b, rb)
    } else {
        panel = (0..k)
            .flat_map(|p| (0..n).map(move |j| b[p * rb + j * cb]))
            .collect();
        (&panel[..], n)
    };
    let operands = Operands {
        m,
        k,
        alpha,
        a,
        a_strides,
        b,
        b_row,
        beta,
        c,
        c_row,
    };
    macro_rules! by_width {
        ($($width:literal)*) => {
            match n {
                $($width => dispatch::<F, $width>(operands),)*
                _ => unreachable!("widths up to MAX_WIDTH"),
            }
        };
    }
    by_width!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16);
    true
}

/// [`rows`], compiled for AVX2 where the processor has it.
fn dispatch<F: Real, const N: usize>(operands: Operands<'_, F>) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the processor supports AVX2 (checked just above).
        unsafe { rows_avx2::<F, N>(operands) };
        return;
    }
    rows::<F, N>(operands);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn rows_avx2<F: Real, const N: usize>(operands: Operands<'_, F>) {
    rows::<F, N>(operands);
}

/// Every row of `C`, accumulated in `N` registers over `k`.
#[inline(always)]
fn rows<F: Real, const N: usize>(operands: Operands<'_, F>) {
    let Operands {
        m,
        k,
        alpha,
        a,
        a_strides: [ra, ca],
        b,
        b_row,
        beta,
        c,
        c_row,
    } = operands;
    for i in 0..m {
        let mut acc = [F::default(); N];
        for p in 0..k {
            let x = a[i * ra + p * ca];
            let row: &[F; N] = b[p * b_row..p * b_row + N].try_into().expect("N columns");
            for j in 0..N {
                acc[j] += x * row[j];
            }
        }
        let out: &mut [F; N] = (&mut c[i * c_row..i * c_row + N])
            .try_into()
            .expect("N columns");
        if beta == F::default() {
            for j in 0..N {
                out[j] = alpha * acc[j];
            }
        } else {
            for j in 0..N {
                out[j] = beta * out[j] + alpha * acc[j];
            }
        }
    }
}
