//! The fused SO(2) kernel ([`super::kernel`]) as one operation of the CPU
//! backends, with its backward registered in Burn's autodiff graph.
//!
//! The layers stay generic over the backend: at run time,
//! [`serves`] recognises the backends whose tensors live in host memory
//! (`NdArray<f32>`, `NdArray<f64>` and their `Autodiff` wrappers) and
//! [`run`] hands their flat tensors to the kernel. Every other backend keeps
//! the tensor-operation path, which computes the same function.

use std::any::{Any, TypeId};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Element, Tensor, TensorData, TensorPrimitive};

use super::kernel::{self, Real, So2Inputs, So2Layout};

/// Whether the host kernel is used where it can be (see [`set_fused_kernels`]).
static FUSED: AtomicBool = AtomicBool::new(true);

/// Turns the fused CPU kernel of the SO(2) messages on or off, for the whole
/// process (on by default).
///
/// With `NdArray<f32>`, `NdArray<f64>` and their `Autodiff` wrappers, the
/// SO(2) messages of every edge (rotation into the edge frame, products with
/// the radial coefficients, channel mixing, rotation back) and their gradients
/// run as one multi-threaded pass per layer; off, they run as Burn tensor
/// operations like on every other backend. Both compute the same function (to
/// rounding); the switch exists to compare them.
pub fn set_fused_kernels(enabled: bool) {
    FUSED.store(enabled, Ordering::Relaxed);
}

/// Whether the fused CPU kernel is on (see [`set_fused_kernels`]).
pub fn fused_kernels() -> bool {
    FUSED.load(Ordering::Relaxed)
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
        let is = |other: TypeId| id == other;
        if dtype == DType::F32 {
            return is(TypeId::of::<NdArray<f32>>()) || is(TypeId::of::<Autodiff<NdArray<f32>>>());
        }
        if dtype == DType::F64 {
            return is(TypeId::of::<NdArray<f64>>()) || is(TypeId::of::<Autodiff<NdArray<f64>>>());
        }
    }
    let _ = dtype;
    false
}

/// The flat tensors of one call: inputs, coefficients, frames, weights (see [`kernel`]).
pub(crate) type Flat<B> = [Tensor<B, 1>; 4];

/// The messages of every edge, flat, for a backend that [`serves`] accepted.
///
/// # Panics
/// If `B` is not served (a caller's bug: check [`serves`] first).
pub(crate) fn run<B: Backend>(layout: &Arc<So2Layout>, flat: Flat<B>) -> Tensor<B, 1> {
    #[cfg(feature = "ndarray")]
    {
        use burn::backend::NdArray;
        macro_rules! dispatch {
            ($($backend:ty => $function:ident::<$inner:ty, $float:ty>),* $(,)?) => {
                $(
                    if TypeId::of::<B>() == TypeId::of::<$backend>() {
                        let flat: Flat<$backend> = cast(flat);
                        return cast($function::<$inner, $float>(layout, flat));
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
    let _ = (layout, flat);
    unreachable!("the fused SO(2) kernel was called on a backend it does not serve")
}

/// `value` as the type it is (the caller compared the `TypeId`s).
fn cast<T: 'static, U: 'static>(value: T) -> U {
    let boxed: Box<dyn Any> = Box::new(value);
    *boxed.downcast::<U>().expect("the types were compared")
}

fn host<B: Backend, F: Real + Element>(tensor: Tensor<B, 1>) -> Vec<F> {
    tensor
        .into_data()
        .into_vec::<F>()
        .expect("the element type was checked")
}

fn on_device<B: Backend, F: Real + Element>(values: Vec<F>, device: &B::Device) -> Tensor<B, 1> {
    let len = values.len();
    Tensor::from_data(TensorData::new(values, [len]), device)
}

/// Forward only, on a backend without autodiff.
fn untracked<B: Backend, F: Real + Element>(
    layout: &Arc<So2Layout>,
    flat: Flat<B>,
) -> Tensor<B, 1> {
    let device = flat[0].device();
    let [inputs, coefficients, frames, weights] = flat.map(host::<B, F>);
    let data = So2Inputs {
        inputs,
        coefficients,
        frames,
        weights,
    };
    on_device::<B, F>(kernel::forward(layout, &data), &device)
}

/// Forward, and the backward step registered in the autodiff graph.
fn tracked<B: Backend, F: Real + Element>(
    layout: &Arc<So2Layout>,
    flat: Flat<Autodiff<B>>,
) -> Tensor<Autodiff<B>, 1> {
    let device = flat[0].device();
    let primitives = flat.map(|t| t.into_primitive().tensor());
    let nodes = primitives.each_ref().map(|p| p.node.clone());
    let [inputs, coefficients, frames, weights] = primitives
        .map(|p| host::<B, F>(Tensor::from_primitive(TensorPrimitive::Float(p.primitive))));
    let data = So2Inputs {
        inputs,
        coefficients,
        frames,
        weights,
    };
    let output = on_device::<B, F>(kernel::forward(layout, &data), &device)
        .into_primitive()
        .tensor();
    let step = So2Backward::<F>(PhantomData)
        .prepare::<NoCheckpointing>(nodes)
        .compute_bound()
        .stateful();
    let output = match step {
        OpsKind::Tracked(prep) => prep.finish(
            So2State {
                layout: Arc::clone(layout),
                data: Arc::new(data),
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
struct So2Backward<F>(PhantomData<F>);

/// What the backward step keeps: the layout and the host copies of the inputs.
#[derive(Clone, Debug)]
struct So2State<F, D> {
    layout: Arc<So2Layout>,
    data: Arc<So2Inputs<F>>,
    device: D,
}

impl<B: Backend, F: Real + Element> Backward<B, 4> for So2Backward<F> {
    type State = So2State<F, B::Device>;

    fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, _: &mut Checkpointer) {
        let state = ops.state;
        let output_grad = host::<B, F>(Tensor::from_primitive(TensorPrimitive::Float(
            grads.consume::<B>(&ops.node),
        )));
        let wanted = ops.parents.each_ref().map(Option::is_some);
        let gradients = kernel::backward(&state.layout, &state.data, &output_grad, wanted);
        let values = [
            gradients.inputs,
            gradients.coefficients,
            gradients.frames,
            gradients.weights,
        ];
        for (parent, values) in ops.parents.into_iter().zip(values) {
            if let (Some(node), Some(values)) = (parent, values) {
                let grad = on_device::<B, F>(values, &state.device)
                    .into_primitive()
                    .tensor();
                grads.register::<B>(node.id, grad);
            }
        }
    }
}
