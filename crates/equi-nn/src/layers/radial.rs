//! The learned radial function: an MLP of invariant edge features.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::activation::silu;
use crate::host_ops;
use kernel::RadialKernel;

mod kernel;

/// Epsilon of the radial network's layer norms (Burn's default, named so
/// that the fused kernel uses the same).
const NORM_EPSILON: f64 = 1e-5;

/// Configuration of a [`RadialMlp`].
#[derive(Config, Debug)]
pub struct RadialMlpConfig {
    /// Invariant edge features in (radial basis, edge embeddings).
    pub d_input: usize,
    /// Hidden width.
    pub d_hidden: usize,
    /// Weights out (one per path and channel).
    pub d_output: usize,
}

/// `Linear -> SiLU -> LayerNorm -> Linear -> SiLU -> LayerNorm -> Linear`,
/// as in the reference's radial network (layer norms without bias).
///
/// On `NdArray` (f32, f64, with or without autodiff) the whole network and
/// its gradients run as one fused host kernel; other backends, or
/// [`crate::set_fused_kernels`]`(false)`, use Burn's layers.
#[derive(Module, Debug)]
pub struct RadialMlp<B: Backend> {
    input: Linear<B>,
    norm_in: LayerNorm<B>,
    hidden: Linear<B>,
    norm_hidden: LayerNorm<B>,
    pub(crate) output: Linear<B>,
}

impl RadialMlpConfig {
    /// Build the network on `device`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> RadialMlp<B> {
        let norm = || {
            LayerNormConfig::new(self.d_hidden)
                .with_epsilon(NORM_EPSILON)
                .with_bias(false)
                .init(device)
        };
        RadialMlp {
            input: LinearConfig::new(self.d_input, self.d_hidden).init(device),
            norm_in: norm(),
            hidden: LinearConfig::new(self.d_hidden, self.d_hidden).init(device),
            norm_hidden: norm(),
            output: LinearConfig::new(self.d_hidden, self.d_output).init(device),
        }
    }
}

impl<B: Backend> RadialMlp<B> {
    /// Weights for every edge.
    ///
    /// # Shapes
    /// - `features`: `[..., d_input]`, output `[..., d_output]`
    pub fn forward<const D: usize>(&self, features: Tensor<B, D>) -> Tensor<B, D> {
        let mut dims = features.dims();
        if let Some(out) = self.fused_forward_flat(&features) {
            dims[D - 1] = self.output.weight.dims()[1];
            return out.reshape(dims);
        }
        self.generic_forward(features)
    }

    /// [`Self::forward`] with the output flattened, row-major: the form the
    /// fused message kernel reads, which the fused network writes without a
    /// copy (on the CPU backends every reshape of an edge-sized tensor is one).
    ///
    /// # Shapes
    /// - `features`: `[..., d_input]`, output `[rows * d_output]`
    pub(crate) fn forward_flat<const D: usize>(&self, features: Tensor<B, D>) -> Tensor<B, 1> {
        if let Some(out) = self.fused_forward_flat(&features) {
            return out;
        }
        let out = self.generic_forward(features);
        let len = out.shape().num_elements();
        out.reshape([len])
    }

    /// [`Self::forward`] by Burn tensor operations (any backend).
    pub(crate) fn generic_forward<const D: usize>(&self, features: Tensor<B, D>) -> Tensor<B, D> {
        let x = self.norm_in.forward(silu(self.input.forward(features)));
        let x = self.norm_hidden.forward(silu(self.hidden.forward(x)));
        self.output.forward(x)
    }

    /// [`Self::forward`] by the fused host kernel, where the backend allows it
    /// ([`host_ops::serves`]).
    #[cfg(test)]
    pub(crate) fn fused_forward<const D: usize>(
        &self,
        features: &Tensor<B, D>,
    ) -> Option<Tensor<B, D>> {
        let mut dims = features.dims();
        let out = self.fused_forward_flat(features)?;
        dims[D - 1] = self.output.weight.dims()[1];
        Some(out.reshape(dims))
    }

    /// [`Self::fused_forward`], flattened as [`Self::forward_flat`].
    fn fused_forward_flat<const D: usize>(&self, features: &Tensor<B, D>) -> Option<Tensor<B, 1>> {
        let [input, hidden, output] = [&self.input, &self.hidden, &self.output];
        let biases = [input, hidden, output].map(|layer| layer.bias.as_ref().map(|b| b.val()));
        let [Some(b1), Some(b2), Some(b3)] = biases else {
            return None;
        };
        let norms_without_bias = self.norm_in.beta.is_none() && self.norm_hidden.beta.is_none();
        let dims = features.dims();
        let d_input = dims[D - 1];
        let rows = dims[..D - 1].iter().product::<usize>();
        let [_, d_hidden] = input.weight.dims();
        let [_, d_output] = output.weight.dims();
        let dtype = features.dtype();
        let params = [&input.weight, &hidden.weight, &output.weight];
        let same_dtype = params.iter().all(|w| w.val().dtype() == dtype)
            && [&b1, &b2, &b3].iter().all(|b| b.dtype() == dtype)
            && [&self.norm_in, &self.norm_hidden]
                .iter()
                .all(|n| n.gamma.val().dtype() == dtype);
        if rows == 0 || !norms_without_bias || !same_dtype || !host_ops::serves::<B>(dtype) {
            return None;
        }
        let kernel = std::sync::Arc::new(RadialKernel {
            rows,
            d_input,
            d_hidden,
            d_output,
            epsilon: NORM_EPSILON,
        });
        let flat2 = |t: Tensor<B, 2>| {
            let len = t.shape().num_elements();
            t.reshape([len])
        };
        let out = host_ops::run(
            &kernel,
            [
                features.clone().reshape([rows * d_input]),
                flat2(input.weight.val()),
                b1,
                self.norm_in.gamma.val(),
                flat2(hidden.weight.val()),
                b2,
                self.norm_hidden.gamma.val(),
                flat2(output.weight.val()),
                b3,
            ],
        );
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::{Autodiff, NdArray};
    use burn::module::{AutodiffModule, Param};
    use burn::tensor::{Distribution, TensorData};

    use super::*;
    use crate::host_ops::tests::FreshLeaves;

    type Grad = Autodiff<NdArray<f64>>;

    /// Every parameter cast to `f64`, still a leaf that requires its gradient.
    struct InF64;

    impl<B: Backend> burn::module::ModuleMapper<B> for InF64 {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            param.map(|t| t.cast(burn::tensor::DType::F64).detach().require_grad())
        }
    }

    fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
        t.into_data().to_vec::<f64>().expect("f64 data")
    }

    /// Output and the gradients of the features and of every parameter.
    fn run(mlp: &RadialMlp<Grad>, features: &Tensor<Grad, 4>, fused: bool) -> Vec<f64> {
        let mlp = &mlp.clone().map(&mut FreshLeaves);
        let features = features.clone().require_grad();
        let out = if fused {
            mlp.fused_forward(&features)
                .expect("the kernel serves Autodiff<NdArray<f64>>")
        } else {
            mlp.generic_forward(features.clone())
        };
        let weights = out.clone().ones_like().cumsum(3).cos().detach();
        let grads = (out.clone() * weights).sum().backward();
        let mut all = values(out);
        all.extend(values(
            features.grad(&grads).expect("features require grad"),
        ));
        let params: [&Param<Tensor<Grad, 2>>; 3] =
            [&mlp.input.weight, &mlp.hidden.weight, &mlp.output.weight];
        for w in params {
            all.extend(values(w.val().grad(&grads).expect("weight gradient")));
        }
        for layer in [&mlp.input, &mlp.hidden, &mlp.output] {
            let bias = layer.bias.as_ref().expect("bias");
            all.extend(values(bias.val().grad(&grads).expect("bias gradient")));
        }
        for norm in [&mlp.norm_in, &mlp.norm_hidden] {
            all.extend(values(
                norm.gamma.val().grad(&grads).expect("scale gradient"),
            ));
        }
        all
    }

    #[test]
    #[cfg_attr(
        not(feature = "ndarray"),
        ignore = "the fused kernels need the ndarray feature"
    )]
    fn fused_kernel_matches_the_tensor_operations_with_all_gradients() {
        let device = Default::default();
        let mut mlp = RadialMlpConfig::new(6, 16, 11).init::<Grad>(&device);
        // Scales away from one, so that their gradients matter.
        for norm in [&mut mlp.norm_in, &mut mlp.norm_hidden] {
            norm.gamma = Param::from_tensor(Tensor::random(
                [16],
                Distribution::Normal(1.0, 0.3),
                &device,
            ));
        }
        // The device's default float type is fixed by the first tensor of the
        // process, which in this test binary may be an f32 test's.
        let mlp = mlp.map(&mut InF64);
        let features = Tensor::<Grad, 4>::from_data(
            TensorData::new(
                (0..2 * 3 * 50 * 6)
                    .map(|i| (i as f64 * 0.37).sin() * 2.0)
                    .collect(),
                [2, 3, 50, 6],
            ),
            &device,
        );
        let (reference, fused) = (run(&mlp, &features, false), run(&mlp, &features, true));
        assert_eq!(reference.len(), fused.len());
        let scale = reference.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let error = reference
            .iter()
            .zip(&fused)
            .map(|(a, b)| {
                if b.is_finite() {
                    (a - b).abs()
                } else {
                    f64::INFINITY
                }
            })
            .fold(0.0, f64::max);
        assert!(error < 1e-12 * scale, "{error} of {scale}");
        // Without autodiff: the same outputs.
        let plain = mlp.valid();
        let inner = features.inner();
        let fused = plain
            .fused_forward(&inner)
            .expect("the kernel serves NdArray<f64>");
        let reference = plain.generic_forward(inner);
        let error = reference.sub(fused).abs().max().into_scalar();
        assert!(error < 1e-13, "{error}");
    }
}
