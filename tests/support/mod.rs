//! Helpers shared by the integration tests: tensors from plain data and back,
//! small random graphs, and the equivariance harness wired to the model.

use burn::backend::NdArray;
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor, TensorData};
use equi_nn::{Equiformer, EquiformerInput, EquiformerOutput};
use so3_math::rotation::RandomRotations;
use so3_math::{EquivarianceChecker, EquivarianceReport, Irreps};

pub type F64 = NdArray<f64>;
pub type F32 = NdArray<f32>;

/// Deterministic pseudo-random numbers for test inputs.
pub struct Draw(RandomRotations);

impl Draw {
    pub fn new(seed: u64) -> Self {
        Draw(RandomRotations::new(seed))
    }

    pub fn normal(&mut self) -> f64 {
        self.0.next_normal()
    }

    pub fn points(&mut self, n: usize, spread: f64) -> Vec<[f64; 3]> {
        (0..n)
            .map(|_| [0; 3].map(|_| spread * self.normal()))
            .collect()
    }

    pub fn values(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.normal()).collect()
    }

    pub fn below(&mut self, n: usize) -> usize {
        ((self.0.next_uniform() * n as f64) as usize).min(n - 1)
    }
}

pub fn float_tensor<B: Backend, const D: usize>(
    values: Vec<f64>,
    shape: [usize; D],
) -> Tensor<B, D> {
    Tensor::from_data(
        TensorData::new(values, shape).convert::<B::FloatElem>(),
        &Default::default(),
    )
}

pub fn int_tensor<B: Backend, const D: usize>(
    values: Vec<i64>,
    shape: [usize; D],
) -> Tensor<B, D, Int> {
    Tensor::from_data(
        TensorData::new(values, shape).convert::<B::IntElem>(),
        &Default::default(),
    )
}

pub fn bool_tensor<B: Backend, const D: usize>(
    values: Vec<bool>,
    shape: [usize; D],
) -> Tensor<B, D, Bool> {
    Tensor::from_data(TensorData::new(values, shape), &Default::default())
}

pub fn to_vec<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.into_data()
        .convert::<f64>()
        .to_vec::<f64>()
        .expect("float data")
}

pub fn coords<B: Backend>(points: &[[f64; 3]]) -> Tensor<B, 3> {
    float_tensor(
        points.iter().flatten().copied().collect(),
        [1, points.len(), 3],
    )
}

/// Flatten a model output per node into rows laid out as the irreps
/// `C0 x 0 + C1 x 1 + ...`, with degree 1 in `(y, z, x)` order as the checker expects.
pub fn rows_for_checker<B: Backend>(out: &EquiformerOutput<B>) -> Vec<f64> {
    let per_degree: Vec<(usize, usize, Vec<f64>)> = out
        .fiber
        .iter()
        .enumerate()
        .map(|(l, t)| {
            let [_, _, c, _] = t.dims();
            let t = if l == 1 {
                equi_nn::fiber::cartesian_to_degree_one(t.clone())
            } else {
                t.clone()
            };
            (l, c, to_vec(t))
        })
        .collect();
    let n = out.fiber[0].dims()[1];
    let mut rows = Vec::new();
    for node in 0..n {
        for (l, c, values) in &per_degree {
            let width = c * (2 * l + 1);
            rows.extend_from_slice(&values[node * width..(node + 1) * width]);
        }
    }
    rows
}

/// The irreps string of an output fiber, e.g. `"4x0 + 2x1"`.
pub fn output_irreps<B: Backend>(out: &EquiformerOutput<B>) -> so3_math::Irreps {
    so3_math::Irreps::from_channels(&out.fiber.iter().map(|t| t.dims()[2]).collect::<Vec<_>>())
}

/// Run a token model on one graph.
pub fn run_tokens<B: Backend>(
    model: &Equiformer<B>,
    tokens: &[i64],
    points: &[[f64; 3]],
    mask: Option<&[bool]>,
    vectors: Option<(&[f64], usize)>,
) -> EquiformerOutput<B> {
    let n = points.len();
    let mut input = EquiformerInput::tokens(int_tensor(tokens.to_vec(), [1, n]), coords(points));
    if let Some(mask) = mask {
        input = input.with_mask(bool_tensor(mask.to_vec(), [1, n]));
    }
    if let Some((values, channels)) = vectors {
        input = input.with_vectors(float_tensor(values.to_vec(), [1, n, channels, 3]));
    }
    model.forward(input).expect("valid input")
}

/// Adds deterministic noise to every float parameter, so that layers
/// initialised at zero (residual outputs) are exercised by the tests.
pub struct Perturb {
    draw: Draw,
    scale: f64,
}

impl<B: Backend> burn::module::ModuleMapper<B> for Perturb {
    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<Tensor<B, D>>,
    ) -> burn::module::Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let dims = tensor.dims();
        let count = tensor.shape().num_elements();
        let noise = self
            .draw
            .values(count)
            .into_iter()
            .map(|v| v * self.scale)
            .collect();
        let noise: Tensor<B, D> = Tensor::from_data(
            TensorData::new(noise, dims).convert::<B::FloatElem>(),
            &tensor.device(),
        );
        burn::module::Param::from_mapped_value(id, (tensor + noise).detach().require_grad(), mapper)
    }
}

/// `module` with noise of standard deviation `scale` added to every float parameter.
pub fn perturbed<B: Backend, M: burn::module::Module<B>>(module: M, seed: u64, scale: f64) -> M {
    module.map(&mut Perturb {
        draw: Draw::new(seed),
        scale,
    })
}

/// Equivariance error of a token model on a random graph, with optional
/// padding (the last `padding` nodes masked, with garbage coordinates that
/// are not transformed) and optional degree-1 input vectors.
pub fn check<B: Backend>(
    model: &Equiformer<B>,
    n: usize,
    padding: usize,
    vector_channels: usize,
    seed: u64,
) -> EquivarianceReport {
    let mut draw = Draw::new(seed);
    let points = draw.points(n, 1.5);
    let tokens: Vec<i64> = (0..n + padding).map(|_| draw.below(5) as i64).collect();
    let garbage = draw.points(padding, 40.0);
    let mask: Vec<bool> = (0..n + padding).map(|i| i < n).collect();
    let vectors = draw.values((n + padding) * vector_channels * 3);
    let input_irreps = if vector_channels > 0 {
        Irreps::from_channels(&[0, vector_channels])
    } else {
        Irreps::default()
    };
    // The checker rotates the degree-1 inputs in (y, z, x) order; the model takes Cartesian.
    let as_features: Vec<f64> = vectors[..n * vector_channels * 3]
        .chunks(3)
        .flat_map(|v| [v[1], v[2], v[0]])
        .collect();
    let run = |pts: &[[f64; 3]], features: &[f64]| {
        let mut all_points = pts.to_vec();
        all_points.extend_from_slice(&garbage);
        let mut cartesian: Vec<f64> = features
            .chunks(3)
            .flat_map(|v| [v[2], v[0], v[1]])
            .collect();
        cartesian.extend_from_slice(&vectors[n * vector_channels * 3..]);
        let out = run_tokens(
            model,
            &tokens,
            &all_points,
            Some(&mask),
            (vector_channels > 0).then_some((&cartesian[..], vector_channels)),
        );
        let rows = rows_for_checker(&out);
        let width = rows.len() / (n + padding);
        rows[..n * width].to_vec()
    };
    let probe = run_tokens(
        model,
        &tokens,
        &[points.clone(), garbage.clone()].concat(),
        Some(&mask),
        (vector_channels > 0).then_some((&vectors[..], vector_channels)),
    );
    let output = output_irreps(&probe);
    EquivarianceChecker::default()
        .with_trials(3)
        .with_seed(seed)
        .check(&points, &as_features, &input_irreps, &output, run)
        .expect("layouts fit")
}

/// A chain of `n` atoms: bonds between neighbours, bond tokens cycling 1, 2.
pub struct Chain {
    pub tokens: Vec<i64>,
    pub points: Vec<[f64; 3]>,
    pub mask: Vec<bool>,
    pub adjacency: Vec<bool>,
    pub bonds: Vec<i64>,
}

pub fn chain(n: usize, padding: usize, seed: u64) -> Chain {
    let mut draw = Draw::new(seed);
    let total = n + padding;
    let mut adjacency = vec![false; total * total];
    let mut bonds = vec![0; total * total];
    for i in 1..n {
        for (a, b) in [(i - 1, i), (i, i - 1)] {
            adjacency[a * total + b] = true;
            bonds[a * total + b] = 1 + (i % 2) as i64;
        }
    }
    Chain {
        tokens: (0..total).map(|_| draw.below(5) as i64).collect(),
        points: draw.points(total, 1.5),
        mask: (0..total).map(|i| i < n).collect(),
        adjacency,
        bonds,
    }
}

impl Chain {
    /// The model input; `bonds`: with the adjacency and the bond tokens.
    pub fn input<B: Backend>(&self, coords: Tensor<B, 3>, bonds: bool) -> EquiformerInput<B> {
        let n = self.tokens.len();
        let input = EquiformerInput::tokens(int_tensor(self.tokens.clone(), [1, n]), coords)
            .with_mask(bool_tensor(self.mask.clone(), [1, n]));
        if !bonds {
            return input;
        }
        input
            .with_adjacency(bool_tensor(self.adjacency.clone(), [1, n, n]))
            .with_edges(int_tensor(self.bonds.clone(), [1, n, n]))
    }
}
