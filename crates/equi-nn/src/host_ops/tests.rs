//! The whole model with and without the fused kernels: the same outputs and
//! the same gradient for every parameter and the coordinates.

use std::cell::Cell;

use burn::backend::{Autodiff, NdArray};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Bool, DType, Int, Tensor, TensorData};

use so3_math::rotation::RandomRotations;

use crate::{EquiformerConfig, EquiformerInput};

thread_local! {
    /// Overrides [`super::fused_kernels`] on this thread (tests run in parallel).
    pub(crate) static THIS_THREAD: Cell<Option<bool>> = const { Cell::new(None) };
}

/// Runs `f` with the fused kernels on or off on this thread.
pub(crate) fn with_fused_kernels<R>(enabled: bool, f: impl FnOnce() -> R) -> R {
    THIS_THREAD.with(|cell| cell.set(Some(enabled)));
    let result = f();
    THIS_THREAD.with(|cell| cell.set(None));
    result
}

/// Every parameter in `f64` plus normal noise, so that zero-initialised
/// weights (the output projection) pass gradients on.
pub(crate) struct PerturbedF64(pub(crate) RandomRotations);

impl<B: Backend> ModuleMapper<B> for PerturbedF64 {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let dims = tensor.dims();
        let noise: Vec<f64> = (0..tensor.shape().num_elements())
            .map(|_| 0.5 * self.0.next_normal())
            .collect();
        let noise = Tensor::from_data(TensorData::new(noise, dims), &tensor.device());
        let tensor = tensor.cast(DType::F64) + noise;
        Param::from_mapped_value(id, tensor.detach().require_grad(), mapper)
    }
}

/// Every parameter as a fresh leaf that requires its gradient.
///
/// Burn 0.21 can lose a gradient when another thread calls `backward` while
/// this one concatenates a leaf that already went through a backward pass
/// (tracel-ai/burn#5573); tests that run a layer twice, in parallel with
/// other tests, start each run from fresh leaves.
pub(crate) struct FreshLeaves;

impl<B: Backend> ModuleMapper<B> for FreshLeaves {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        param.map(|t| t.detach().require_grad())
    }
}

/// The outputs of a layer call, then the gradients of its `inputs`, of the
/// coordinates and of every parameter of `layer` (zeros where the loss does
/// not reach one), for the loss `sum_t sum(t * sin(cumsum of ones along the
/// last axis))`, which weighs every entry differently.
pub(crate) fn outputs_and_gradients<M: Module<Grad>, const D: usize>(
    layer: &M,
    outputs: Vec<Tensor<Grad, D>>,
    inputs: &[Tensor<Grad, 4>],
    coords: &Tensor<Grad, 3>,
) -> Vec<f64> {
    let mut all = Vec::new();
    let mut loss = Tensor::<Grad, 1>::zeros([1], &Default::default());
    for t in outputs {
        let weights = t.clone().ones_like().cumsum(D - 1).sin().detach();
        loss = loss + (t.clone() * weights).sum();
        all.extend(values(t));
    }
    let gradients = loss.backward();
    for x in inputs {
        all.extend(values(x.grad(&gradients).expect("the inputs require grad")));
    }
    all.extend(values(
        coords.grad(&gradients).expect("coordinates require grad"),
    ));
    let mut visitor = ParameterGradients::<Grad> {
        gradients: &gradients,
        found: Vec::new(),
    };
    layer.visit(&mut visitor);
    all.extend(visitor.found.into_iter().flatten());
    all
}

/// The entries of `t` as `f64`.
pub(crate) fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.into_data().convert::<f64>().to_vec().expect("f64 data")
}

type Grad = Autodiff<NdArray<f64>>;

/// Every parameter cast to `f64` (the device's default float type is fixed
/// by the first tensor of the process, possibly an `f32` test's).
struct InF64;

impl<B: Backend> ModuleMapper<B> for InF64 {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        param.map(|t| t.cast(DType::F64).detach().require_grad())
    }
}

/// Each parameter's gradient, flattened (zeros when it has none).
pub(crate) struct ParameterGradients<'a, B: AutodiffBackend> {
    pub(crate) gradients: &'a B::Gradients,
    pub(crate) found: Vec<Vec<f64>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for ParameterGradients<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        // A parameter the loss does not reach has no gradient in Burn's graph,
        // or a zero one when a fused operation couples it with others.
        let value = param.val();
        let size = value.shape().num_elements();
        let grad = value.grad(self.gradients);
        self.found
            .push(grad.map_or_else(|| vec![0.0; size], values));
    }
}

#[test]
#[cfg_attr(
    not(feature = "ndarray"),
    ignore = "the fused kernels need the ndarray feature"
)]
fn the_fused_kernels_give_the_tensor_operations_outputs_and_gradients() {
    let device = Default::default();
    let config = EquiformerConfig::new(vec![4, 4, 2])
        .with_num_degrees(3)
        .with_num_tokens(Some(5))
        .with_dim_head(vec![4])
        .with_heads(vec![2])
        .with_depth(2)
        .with_reduce_dim_out(true);
    let model = config
        .init::<Grad>(&device)
        .expect("valid config")
        .map(&mut InF64);
    // Two graphs of 7 atoms, the second padded after 5.
    let (graphs, n) = (2, 7);
    let points: Vec<f64> = (0..graphs * n * 3)
        .map(|i| (i as f64 * 1.37).sin() * 2.0)
        .collect();
    let tokens: Vec<i64> = (0..graphs * n).map(|i| (i % 5) as i64).collect();
    let mask: Vec<bool> = (0..graphs * n).map(|i| i < n || i % n < 5).collect();
    let run = |fused: bool| {
        let model = model.clone().map(&mut FreshLeaves);
        with_fused_kernels(fused, || {
            let coords = Tensor::<Grad, 3>::from_data(
                TensorData::new(points.clone(), [graphs, n, 3]),
                &device,
            )
            .require_grad();
            let input = EquiformerInput::tokens(
                Tensor::<Grad, 2, Int>::from_data(
                    TensorData::new(tokens.clone(), [graphs, n]),
                    &device,
                ),
                coords.clone(),
            )
            .with_mask(Tensor::<Grad, 2, Bool>::from_data(
                TensorData::new(mask.clone(), [graphs, n]),
                &device,
            ));
            let out = model.forward(input).expect("valid input");
            let (type0, type1) = out.reduced().expect("reduce_dim_out");
            let type1 = type1.expect("a degree-1 output");
            let objective = (type0.clone() * type0.clone().ones_like().cumsum(1).sin()).sum()
                + (type1.clone() * type1.clone().ones_like().cumsum(2).cos()).sum();
            let gradients = objective.backward();
            let mut visitor = ParameterGradients::<Grad> {
                gradients: &gradients,
                found: Vec::new(),
            };
            model.visit(&mut visitor);
            let mut outputs = values(type0);
            outputs.extend(values(type1));
            outputs.extend(values(
                coords.grad(&gradients).expect("coordinates require grad"),
            ));
            (outputs, visitor.found)
        })
    };
    let (reference, reference_params) = run(false);
    let (fused, fused_params) = run(true);
    let relative = |a: &[f64], b: &[f64]| {
        assert_eq!(a.len(), b.len(), "sizes");
        let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
            / scale
    };
    let error = relative(&fused, &reference);
    assert!(error < 1e-10, "outputs and coordinate gradients: {error}");
    assert_eq!(fused_params.len(), reference_params.len());
    for (i, (a, b)) in fused_params.iter().zip(&reference_params).enumerate() {
        assert_eq!(
            a.len(),
            b.len(),
            "parameter {i}: gradient sizes (fused, tensor operations)"
        );
        let error = relative(a, b);
        assert!(error < 1e-10, "parameter {i}: {error}");
    }
}

#[test]
fn the_vectorised_f32_sigmoid_is_accurate_to_a_few_ulps_or_below_1e_minus_37() {
    let inputs: Vec<f32> = (-2000..=2000)
        .map(|i| i as f32 * 0.0517)
        .chain([
            0.0,
            -0.0,
            1e-30,
            -1e-30,
            88.5,
            -88.5,
            150.0,
            -150.0,
            f32::MAX,
            f32::MIN,
        ])
        .collect();
    let mut got = vec![0.0f32; inputs.len()];
    <f32 as super::Real>::sigmoid_slice(&inputs, &mut got);
    for (&x, &y) in inputs.iter().zip(&got) {
        let exact = 1.0 / (1.0 + (-(x as f64)).exp());
        let error = (y as f64 - exact).abs();
        assert!(
            error <= 4.0 * f32::EPSILON as f64 * exact || error < 1e-37,
            "sigmoid({x}) = {y}, exact {exact}"
        );
    }
}

#[test]
fn narrow_products_by_loops_match_the_blocked_kernel() {
    let mut draw = RandomRotations::new(12);
    let mut normal =
        |count: usize| -> Vec<f64> { (0..count).map(|_| draw.next_normal()).collect() };
    // [m, k, n], with A and B each plain or transposed, beta 0 or not.
    for dims in [[7, 5, 3], [40, 9, 16], [12, 300, 8], [1, 1, 1]] {
        let [m, k, n] = dims;
        for (transpose_a, transpose_b, beta) in [
            (false, false, 0.0),
            (true, false, 0.5),
            (false, true, 1.0),
            (true, true, 0.0),
        ] {
            let (a, b) = (normal(m * k), normal(k * n));
            let sa = if transpose_a { [1, m] } else { [k, 1] };
            let sb = if transpose_b { [1, k] } else { [n, 1] };
            let c0 = normal(m * n);
            let mut narrow = c0.clone();
            assert!(super::narrow::gemm(
                dims,
                0.7,
                (&a, sa),
                (&b, sb),
                beta,
                (&mut narrow, n)
            ));
            let mut blocked = c0.clone();
            super::blocked_gemm(dims, 0.7, (&a, sa), (&b, sb), beta, (&mut blocked, n));
            let error = narrow
                .iter()
                .zip(&blocked)
                .fold(0.0f64, |e, (x, y)| e.max((x - y).abs()));
            assert!(
                error < 1e-12,
                "{dims:?} {transpose_a} {transpose_b} {beta}: {error}"
            );
        }
    }
}
