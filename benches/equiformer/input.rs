//! Benchmark inputs and the helpers of the measurements: random inputs, the
//! zero-initialised weights redrawn, outputs on the host, rotations of rows.

use burn::module::{ModuleMapper, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor, TensorData};
use equi_nn::{Equiformer, EquiformerInput};
use so3_math::rotation::{RandomRotations, RotationMatrix};

use crate::config::NUM_TOKENS;

/// Re-draws every all-zero weight matrix (the zero-initialised output
/// projections) from `N(0, 1/fan_in)`, so that the equivariance check
/// exercises every layer, as the reference script does for its model.
pub(crate) struct RandomizeZeroWeights {
    pub(crate) draw: RandomRotations,
    pub(crate) count: usize,
}

impl<B: Backend> ModuleMapper<B> for RandomizeZeroWeights {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        if D != 2 {
            return Param::from_mapped_value(id, tensor, mapper);
        }
        let values = tensor
            .clone()
            .into_data()
            .convert::<f64>()
            .to_vec::<f64>()
            .expect("float parameter");
        if values.iter().any(|v| *v != 0.0) {
            return Param::from_mapped_value(id, tensor, mapper);
        }
        self.count += 1;
        let dims = tensor.dims();
        let scale = 1.0 / (dims[0] as f64).sqrt();
        let fresh: Vec<f64> = (0..values.len())
            .map(|_| self.draw.next_normal() * scale)
            .collect();
        let fresh = Tensor::<B, D>::from_data(
            TensorData::new(fresh, dims).convert::<B::FloatElem>(),
            &tensor.device(),
        );
        Param::from_mapped_value(id, fresh.detach().require_grad(), mapper)
    }
}

/// One benchmark input on the host: tokens and coordinates (`N(0, 3^2)`).
pub(crate) struct HostInput {
    tokens: Vec<i64>,
    pub(crate) coords: Vec<[f64; 3]>,
}

impl HostInput {
    pub(crate) fn new(n: usize, seed: u64) -> Self {
        let mut draw = RandomRotations::new(seed);
        let tokens = (0..n)
            .map(|_| ((draw.next_uniform() * NUM_TOKENS as f64) as i64).min(NUM_TOKENS as i64 - 1))
            .collect();
        let coords = (0..n)
            .map(|_| [0; 3].map(|_| 3.0 * draw.next_normal()))
            .collect();
        HostInput { tokens, coords }
    }

    pub(crate) fn to_device<B: Backend>(
        &self,
        coords: &[[f64; 3]],
        device: &B::Device,
    ) -> EquiformerInput<B> {
        let n = self.tokens.len();
        let tokens = Tensor::<B, 2, Int>::from_data(
            TensorData::new(self.tokens.clone(), [1, n]).convert::<B::IntElem>(),
            device,
        );
        let flat: Vec<f64> = coords.iter().flatten().copied().collect();
        let coords = Tensor::<B, 3>::from_data(
            TensorData::new(flat, [1, n, 3]).convert::<B::FloatElem>(),
            device,
        );
        let mask = Tensor::<B, 2, Bool>::from_data(TensorData::new(vec![true; n], [1, n]), device);
        EquiformerInput::tokens(tokens, coords).with_mask(mask)
    }
}

/// `type0 [N]` and `type1 [N, 3]` (flattened) of one inference forward pass.
pub(crate) fn forward_host<B: Backend>(
    model: &Equiformer<B>,
    input: EquiformerInput<B>,
) -> (Vec<f64>, Vec<f64>) {
    let out = model.forward(input).expect("valid benchmark input");
    let (type0, type1) = out.reduced().expect("reduce_dim_out gives one channel");
    let host = |t: TensorData| t.convert::<f64>().to_vec::<f64>().expect("float output");
    let type0 = host(type0.into_data());
    let type1 = type1.map(|t| host(t.into_data())).unwrap_or_default();
    (type0, type1)
}

pub(crate) fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

pub(crate) fn max_abs(a: &[f64]) -> f64 {
    a.iter().map(|x| x.abs()).fold(0.0, f64::max)
}

/// Row vectors times `r`: `x R`, the convention of the reference (`coors @ R`).
pub(crate) fn rotate_rows(rows: &[[f64; 3]], r: &RotationMatrix) -> Vec<[f64; 3]> {
    rows.iter()
        .map(|v| [0, 1, 2].map(|j| (0..3).map(|i| v[i] * r[i][j]).sum()))
        .collect()
}
