//! Fused operations of the CPU backends: a layer's whole computation as one
//! pass over host memory, with its backward registered in Burn's autodiff graph.
//!
//! The layers stay generic over the backend. At run time, [`serves`]
//! recognises the backends whose tensors live in host memory (`NdArray<f32>`,
//! `NdArray<f64>` and their `Autodiff` wrappers) and [`run`] hands the flat
//! inputs of a [`HostOp`] to its host code; every other backend keeps the
//! layer's tensor-operation path, which computes the same function.

// Without `ndarray` no backend is served: the kernels are compiled but never called.
#![cfg_attr(not(feature = "ndarray"), allow(dead_code))]

use std::any::Any;
#[cfg(feature = "ndarray")]
use std::any::TypeId;
use std::fmt::Debug;
use std::marker::PhantomData;
use std::ops::{Add, AddAssign, Div, Mul, Neg, Sub};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Element, Tensor, TensorData, TensorPrimitive};

/// Whether the fused kernels are used where they can be (see [`set_fused_kernels`]).
static FUSED: AtomicBool = AtomicBool::new(true);

/// Turns the fused CPU kernels on or off, for the whole process (on by default).
///
/// With `NdArray<f32>`, `NdArray<f64>` and their `Autodiff` wrappers, the
/// SO(2) messages of every edge (rotation into the edge frame, products with
/// the radial coefficients, channel mixing, rotation back), the radial
/// networks and the attention after the messages (MLP: logits, softmax over
/// the neighbours, value gate and projection, weighted sum, head gates; dot
/// product and L2 distance: logits of queries against keys, softmax,
/// weighted sum, head gates) run, with their gradients, as one
/// multi-threaded pass each, handing their edge-sized results to each other
/// as flat buffers; off, they run as Burn tensor operations like on every
/// other backend. Both compute the same function (to rounding); the switch
/// exists to compare them.
pub fn set_fused_kernels(enabled: bool) {
    FUSED.store(enabled, Ordering::Relaxed);
}

/// Whether the fused CPU kernels are on (see [`set_fused_kernels`]).
pub fn fused_kernels() -> bool {
    #[cfg(test)]
    if let Some(enabled) = tests::THIS_THREAD.with(std::cell::Cell::get) {
        return enabled;
    }
    FUSED.load(Ordering::Relaxed)
}

/// The float types of the host kernels.
pub(crate) trait Real:
    Copy
    + Default
    + Debug
    + PartialOrd
    + Send
    + Sync
    + Element
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
{
    /// The value of `x` in this type.
    fn of(x: f64) -> Self;
    fn exp(self) -> Self;
    fn sqrt(self) -> Self;

    /// `out[i] = 1 / (1 + exp(-x[i]))`.
    fn sigmoid_slice(x: &[Self], out: &mut [Self]);

    /// `C = alpha A B + beta C` for row-major `A: [m, k]`, `B: [k, n]`,
    /// `C: [m, n]`, each read through its `(row, column)` strides.
    fn gemm(
        dims: [usize; 3],
        alpha: Self,
        a: (&[Self], [usize; 2]),
        b: (&[Self], [usize; 2]),
        beta: Self,
        c: (&mut [Self], usize),
    );
}

/// Checks that a strided `rows x cols` matrix fits in `len` elements.
fn fits(len: usize, [rows, cols]: [usize; 2], [rs, cs]: [usize; 2]) -> bool {
    rows == 0 || cols == 0 || (rows - 1) * rs + (cols - 1) * cs < len
}

macro_rules! real {
    ($float:ty, $sigmoid:path) => {
        impl Real for $float {
            fn of(x: f64) -> Self {
                x as $float
            }
            fn exp(self) -> Self {
                <$float>::exp(self)
            }
            fn sqrt(self) -> Self {
                <$float>::sqrt(self)
            }
            fn sigmoid_slice(x: &[Self], out: &mut [Self]) {
                $sigmoid(x, out)
            }
            fn gemm(
                dims: [usize; 3],
                alpha: Self,
                a: (&[Self], [usize; 2]),
                b: (&[Self], [usize; 2]),
                beta: Self,
                c: (&mut [Self], usize),
            ) {
                if narrow::gemm(dims, alpha, a, b, beta, (&mut *c.0, c.1)) {
                    return;
                }
                blocked_gemm(dims, alpha, a, b, beta, c);
            }
        }
    };
}

real!(f32, sigmoid_f32);
real!(f64, sigmoid_f64);

/// [`Real::gemm`] by the blocked kernels of the `gemm` crate, on the calling
/// thread: the fused kernels already spread their blocks of rows over the
/// threads, and a product that started threads of its own inside one of
/// them would compete with the others for the cores (Burn's CPU backend
/// switches `matrixmultiply`'s threads on, process-wide).
fn blocked_gemm<F: Real>(
    [m, k, n]: [usize; 3],
    alpha: F,
    (a, [rsa, csa]): (&[F], [usize; 2]),
    (b, [rsb, csb]): (&[F], [usize; 2]),
    beta: F,
    (c, rsc): (&mut [F], usize),
) {
    assert!(
        fits(a.len(), [m, k], [rsa, csa])
            && fits(b.len(), [k, n], [rsb, csb])
            && fits(c.len(), [m, n], [rsc, 1]),
        "gemm operands out of bounds"
    );
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: every element read or written lies within the slices (checked
    // above), and `c` does not alias `a` or `b` (borrows). The crate computes
    // `dst = alpha dst + beta lhs rhs`, reading `dst` only when asked to.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            rsc as isize,
            beta != F::default(),
            a.as_ptr(),
            csa as isize,
            rsa as isize,
            b.as_ptr(),
            csb as isize,
            rsb as isize,
            beta,
            alpha,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

fn sigmoid_f64(x: &[f64], out: &mut [f64]) {
    for (o, &x) in out.iter_mut().zip(x) {
        *o = 1.0 / (1.0 + (-x).exp());
    }
}

/// [`Real::sigmoid_slice`] for `f32`, compiled for AVX2 where the processor
/// has it (checked at run time; see [`sigmoid_f32_body`]).
fn sigmoid_f32(x: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the processor supports AVX2 (checked just above).
        unsafe { sigmoid_f32_avx2(x, out) };
        return;
    }
    sigmoid_f32_body(x, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn sigmoid_f32_avx2(x: &[f32], out: &mut [f32]) {
    sigmoid_f32_body(x, out);
}

/// The sigmoid by an exponential that the compiler vectorises:
/// `e^t = 2^k e^r` with `k = round(t / ln 2)`, `|r| <= ln 2 / 2`, and a
/// degree-6 polynomial for `e^r` (relative error below `2^-22`).
#[inline(always)]
fn sigmoid_f32_body(x: &[f32], out: &mut [f32]) {
    // Rounds to the nearest integer by float addition (for |t| < 2^22).
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    for (o, &x) in out.iter_mut().zip(x) {
        // exp(-x), with -x kept where 2^k is a normal float.
        let t = (-x).clamp(-87.0, 88.0);
        let shifted = t * std::f32::consts::LOG2_E + ROUND;
        let k = shifted - ROUND;
        let r = t - k * LN2_HI - k * LN2_LO;
        let p = 1.0
            + r * (1.0
                + r * (0.5
                    + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
        // 2^k from the integer k in the low mantissa bits of `shifted`, by
        // integer arithmetic only (a float-to-int cast would not vectorise).
        let k_bits = shifted.to_bits().wrapping_sub(ROUND.to_bits());
        let scale = f32::from_bits(k_bits.wrapping_add(127) << 23);
        *o = 1.0 / (1.0 + p * scale);
    }
}

/// A computation with `N` flat inputs and one flat output, run on the host.
pub(crate) trait HostOp<const N: usize>: Debug + Send + Sync + 'static {
    /// The output.
    fn forward<F: Real>(&self, inputs: &[Vec<F>; N]) -> Vec<F>;

    /// The gradients of the inputs marked in `wanted` (`None` for the others).
    fn backward<F: Real>(
        &self,
        inputs: &[Vec<F>; N],
        output_grad: &[F],
        wanted: [bool; N],
    ) -> [Option<Vec<F>>; N];
}

/// Whether [`run`] serves backend `B` for tensors of `dtype`.
pub(crate) fn serves<B: Backend>(dtype: DType) -> bool {
    if !fused_kernels() {
        return false;
    }
    #[cfg(feature = "ndarray")]
    {
        use burn::backend::NdArray;
        let id = TypeId::of::<B>();
        if dtype == DType::F32 {
            return id == TypeId::of::<NdArray<f32>>()
                || id == TypeId::of::<Autodiff<NdArray<f32>>>();
        }
        if dtype == DType::F64 {
            return id == TypeId::of::<NdArray<f64>>()
                || id == TypeId::of::<Autodiff<NdArray<f64>>>();
        }
    }
    let _ = dtype;
    false
}

/// `op` on flat tensors, for a backend that [`serves`] accepted.
///
/// # Panics
/// If `B` is not served (a caller's bug: check [`serves`] first).
pub(crate) fn run<B: Backend, O: HostOp<N>, const N: usize>(
    op: &Arc<O>,
    flat: [Tensor<B, 1>; N],
) -> Tensor<B, 1> {
    #[cfg(feature = "ndarray")]
    {
        use burn::backend::NdArray;
        macro_rules! dispatch {
            ($($backend:ty => $function:ident::<$inner:ty, $float:ty>),* $(,)?) => {
                $(
                    if TypeId::of::<B>() == TypeId::of::<$backend>() {
                        let flat: [Tensor<$backend, 1>; N] = cast(flat);
                        return cast($function::<$inner, $float, O, N>(op, flat));
                    }
                )*
            };
        }
        dispatch!(
            NdArray<f32> => untracked::<NdArray<f32>, f32>,
            NdArray<f64> => untracked::<NdArray<f64>, f64>,
            Autodiff<NdArray<f32>> => tracked::<NdArray<f32>, f32>,
            Autodiff<NdArray<f64>> => tracked::<NdArray<f64>, f64>,
        );
    }
    let _ = (op, flat);
    unreachable!("a fused kernel was called on a backend it does not serve")
}

/// `value` as the type it is (the caller compared the `TypeId`s).
fn cast<T: 'static, U: 'static>(value: T) -> U {
    let boxed: Box<dyn Any> = Box::new(value);
    *boxed.downcast::<U>().expect("the types were compared")
}

/// The values of a tensor of a served (inner) backend: moved out where the
/// tensor holds the only reference to its buffer, else copied as one slice
/// (Burn's own conversion walks a shared buffer element by element, which
/// costs more than the kernels on edge-sized inputs such as the edge frames
/// that every layer reads).
fn host<B: Backend, F: Real>(tensor: Tensor<B, 1>) -> Vec<F> {
    #[cfg(feature = "ndarray")]
    {
        use burn::backend::ndarray::NdArrayTensor;
        use burn::backend::NdArray;
        let primitive: Box<dyn Any> = Box::new(tensor.into_primitive().tensor());
        let primitive = *primitive
            .downcast::<NdArrayTensor>()
            .expect("served backends keep NdArray tensors");
        macro_rules! values {
            ($storage:ident, $variant:ident, $float:ty) => {{
                if $storage.is_unique() {
                    let tensor = Tensor::<NdArray<$float>, 1>::from_primitive(
                        TensorPrimitive::Float(NdArrayTensor::$variant($storage)),
                    );
                    cast::<Vec<$float>, Vec<F>>(
                        tensor
                            .into_data()
                            .into_vec::<$float>()
                            .expect("the element type was checked"),
                    )
                } else {
                    let view = $storage.view();
                    let values: Vec<$float> = match view.as_slice() {
                        Some(slice) => slice.to_vec(),
                        None => view.iter().copied().collect(),
                    };
                    cast::<Vec<$float>, Vec<F>>(values)
                }
            }};
        }
        match primitive {
            NdArrayTensor::F32(storage) => values!(storage, F32, f32),
            NdArrayTensor::F64(storage) => values!(storage, F64, f64),
            _ => panic!("a fused kernel got a tensor that is neither f32 nor f64"),
        }
    }
    #[cfg(not(feature = "ndarray"))]
    {
        let _ = tensor;
        unreachable!("no backend is served without the ndarray feature")
    }
}

fn on_device<B: Backend, F: Real>(values: Vec<F>, device: &B::Device) -> Tensor<B, 1> {
    let len = values.len();
    Tensor::from_data(TensorData::new(values, [len]), device)
}

/// Forward only, on a backend without autodiff.
fn untracked<B: Backend, F: Real, O: HostOp<N>, const N: usize>(
    op: &Arc<O>,
    flat: [Tensor<B, 1>; N],
) -> Tensor<B, 1> {
    let device = flat[0].device();
    let inputs = flat.map(host::<B, F>);
    on_device::<B, F>(op.forward(&inputs), &device)
}

/// Forward, and the backward step registered in the autodiff graph.
fn tracked<B: Backend, F: Real, O: HostOp<N>, const N: usize>(
    op: &Arc<O>,
    flat: [Tensor<Autodiff<B>, 1>; N],
) -> Tensor<Autodiff<B>, 1> {
    let device = flat[0].device();
    let primitives = flat.map(|t| t.into_primitive().tensor());
    let nodes = primitives.each_ref().map(|p| p.node.clone());
    let inputs = primitives
        .map(|p| host::<B, F>(Tensor::from_primitive(TensorPrimitive::Float(p.primitive))));
    let output = on_device::<B, F>(op.forward(&inputs), &device)
        .into_primitive()
        .tensor();
    let step = HostBackward::<F, O, N>(PhantomData)
        .prepare::<NoCheckpointing>(nodes)
        .compute_bound()
        .stateful();
    let output = match step {
        OpsKind::Tracked(prep) => prep.finish(
            HostState {
                op: Arc::clone(op),
                inputs: Arc::new(inputs),
                device,
            },
            output,
        ),
        OpsKind::UnTracked(prep) => prep.finish(output),
    };
    Tensor::from_primitive(TensorPrimitive::Float(output))
}

/// The backward step of [`tracked`].
#[derive(Debug)]
struct HostBackward<F, O, const N: usize>(PhantomData<(F, O)>);

/// What the backward step keeps: the operation and the host copies of its inputs.
#[derive(Debug)]
struct HostState<F, O, D, const N: usize> {
    op: Arc<O>,
    inputs: Arc<[Vec<F>; N]>,
    device: D,
}

impl<F, O, D: Clone, const N: usize> Clone for HostState<F, O, D, N> {
    fn clone(&self) -> Self {
        HostState {
            op: Arc::clone(&self.op),
            inputs: Arc::clone(&self.inputs),
            device: self.device.clone(),
        }
    }
}

impl<B: Backend, F: Real, O: HostOp<N>, const N: usize> Backward<B, N> for HostBackward<F, O, N> {
    type State = HostState<F, O, B::Device, N>;

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let state = ops.state;
        let output_grad = host::<B, F>(Tensor::from_primitive(TensorPrimitive::Float(
            grads.consume::<B>(&ops.node),
        )));
        let wanted = ops.parents.each_ref().map(Option::is_some);
        let gradients = state.op.backward(&state.inputs, &output_grad, wanted);
        for (parent, values) in ops.parents.into_iter().zip(gradients) {
            if let (Some(node), Some(values)) = (parent, values) {
                let grad = on_device::<B, F>(values, &state.device)
                    .into_primitive()
                    .tensor();
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

pub(crate) mod blocks;
mod narrow;

#[cfg(test)]
pub(crate) mod tests;
