//! Shifted softplus, the SchNet non-linearity.

use burn::tensor::{backend::Backend, Tensor};

/// Shifted softplus `ssp(x) = ln(1 + e^x) - ln 2`, so that `ssp(0) = 0`.
///
/// Evaluated as `max(x, 0) + ln(1 + e^{-|x|}) - ln 2`: the exponential never
/// overflows for large `x` and `ln(1 + ·)` keeps full precision for very
/// negative `x`. The split at zero is built so that the gradient is the exact
/// logistic sigmoid everywhere, including `ssp'(0) = 1/2`.
///
/// # Shapes
///
/// - input: `[..., any]`
/// - output: same shape as the input
pub fn shifted_softplus<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let positive = x.clone().greater_elem(0.0);
    // Exactly one branch carries the gradient at x = 0: the negative one.
    let positive_part = x.clone().mask_fill(positive.clone().bool_not(), 0.0);
    let negative_part = x.mask_fill(positive, 0.0);
    let minus_abs = negative_part - positive_part.clone();
    positive_part + minus_abs.exp().log1p() - core::f64::consts::LN_2
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, NdArray};

    type TestBackend = NdArray<f64>;

    fn reference(x: f64) -> f64 {
        if x > 30.0 {
            x - core::f64::consts::LN_2
        } else {
            x.exp().ln_1p() - core::f64::consts::LN_2
        }
    }

    #[test]
    fn matches_reference_and_is_zero_at_origin() {
        let device = Default::default();
        let inputs = [-50.0, -3.0, -1e-3, 0.0, 1e-3, 2.5, 40.0];
        let x = Tensor::<TestBackend, 1>::from_data(inputs, &device);
        let values: Vec<f64> = shifted_softplus(x).into_data().to_vec().expect("f64 data");
        for (input, value) in inputs.iter().zip(values) {
            assert!(
                (value - reference(*input)).abs() < 1e-14,
                "ssp({input}) = {value}, expected {}",
                reference(*input)
            );
        }
    }

    #[test]
    fn finite_for_extreme_inputs() {
        let device = Default::default();
        let x = Tensor::<TestBackend, 1>::from_data([-1e6, 1e6, -800.0, 800.0], &device);
        let values: Vec<f64> = shifted_softplus(x).into_data().to_vec().expect("f64 data");
        assert!(values.iter().all(|v| v.is_finite()));
        assert!((values[1] - (1e6 - core::f64::consts::LN_2)).abs() < 1e-9);
        assert!((values[0] + core::f64::consts::LN_2).abs() < 1e-14);
    }

    #[test]
    fn gradient_is_sigmoid_including_origin() {
        let device = Default::default();
        let inputs: [f64; 5] = [-800.0, -2.0, 0.0, 1.5, 800.0];
        let x = Tensor::<Autodiff<TestBackend>, 1>::from_data(inputs, &device).require_grad();
        let grads = shifted_softplus(x.clone()).sum().backward();
        let gradient: Vec<f64> = x
            .grad(&grads)
            .expect("input requires grad")
            .into_data()
            .to_vec()
            .expect("f64 data");
        for (input, g) in inputs.iter().zip(gradient) {
            let sigmoid = 1.0 / (1.0 + (-input).exp());
            assert!((g - sigmoid).abs() < 1e-14, "ssp'({input}) = {g}");
        }
    }
}
