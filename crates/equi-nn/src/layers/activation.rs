//! Sigmoid and SiLU that keep the precision of the tensor's float type.
//!
//! Burn 0.21's `sigmoid` (and so `silu`) evaluates in `f32` whatever the
//! tensor's type, which caps an `f64` model at single precision (about
//! `1e-7` relative). In `f64` these use `sigmoid(x) = (1 + tanh(x / 2)) / 2`,
//! exact to rounding and with a bounded derivative; other types keep Burn's.

use burn::tensor::backend::Backend;
use burn::tensor::{activation, DType, Tensor};

/// `1 / (1 + exp(-x))`, elementwise.
pub(crate) fn sigmoid<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    if x.dtype() == DType::F64 {
        (x.mul_scalar(0.5).tanh() + 1.0).mul_scalar(0.5)
    } else {
        activation::sigmoid(x)
    }
}

/// `x sigmoid(x)`, elementwise.
pub(crate) fn silu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    x.clone() * sigmoid(x)
}

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;
    use burn::tensor::TensorData;

    use super::*;

    #[test]
    fn sigmoid_is_exact_to_rounding_in_f64_over_the_whole_range() {
        let xs: [f64; 9] = [-800.0, -40.0, -3.5, -1e-9, 0.0, 0.3, 7.25, 40.0, 800.0];
        let t = Tensor::<NdArray<f64>, 1>::from_data(
            TensorData::new(xs.to_vec(), [xs.len()]),
            &Default::default(),
        );
        let got = sigmoid(t).into_data().to_vec::<f64>().expect("f64 data");
        for (x, s) in xs.iter().zip(got) {
            let exact = if *x >= 0.0 {
                1.0 / (1.0 + (-x).exp())
            } else {
                x.exp() / (1.0 + x.exp())
            };
            // Absolute accuracy (far in the lower tail the value rounds to 0).
            assert!((s - exact).abs() <= 2e-16, "{x}: {s} vs {exact}");
        }
    }
}
