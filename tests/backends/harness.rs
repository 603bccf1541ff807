//! Device-explicit plumbing of the backend tests: the two model configurations,
//! the reference weights (drawn once on the CPU and recorded), a padded batch of
//! two graphs, and the outputs and gradients of a model on any backend as plain
//! numbers.

use burn::backend::ndarray::NdArrayDevice;
use burn::backend::NdArray;
use burn::module::{Module, ModuleVisitor, Param};
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Bool, Int, Tensor, TensorData};
use equi_nn::{Equiformer, EquiformerConfig, EquiformerInput, EquiformerOutput};

use crate::support::{perturbed, to_vec, Draw};

/// The record format of the shared weights: full precision, so that loading on a
/// backend rounds each weight once, to that backend's float type.
pub type WeightRecorder = BinBytesRecorder<FullPrecisionSettings>;

/// The model of the README: degrees 0..=2, depth 4, one output channel per degree.
pub fn readme() -> EquiformerConfig {
    EquiformerConfig::new(vec![4, 4, 2])
        .with_num_degrees(3)
        .with_num_tokens(Some(24))
        .with_dim_head(vec![4])
        .with_heads(vec![2])
        .with_depth(4)
        .with_reduce_dim_out(true)
}

/// The README model with degrees up to 3.
pub fn degree_three() -> EquiformerConfig {
    EquiformerConfig::new(vec![4, 4, 2, 2])
        .with_num_degrees(4)
        .with_num_tokens(Some(24))
        .with_dim_head(vec![4])
        .with_heads(vec![2])
        .with_depth(2)
        .with_reduce_dim_out(true)
}

/// The reference weights of `config`: drawn on the CPU backend in f32 (seeded),
/// perturbed, and recorded once.
pub fn reference_weights(config: &EquiformerConfig, seed: u64) -> Vec<u8> {
    let device = NdArrayDevice::Cpu;
    NdArray::<f32>::seed(&device, seed);
    let model = config
        .init::<NdArray<f32>>(&device)
        .expect("valid configuration");
    let model = perturbed(model, seed, 0.3);
    WeightRecorder::default()
        .record(model.into_record(), ())
        .expect("the record encodes")
}

/// `config` on `device` with the recorded `weights`.
pub fn load<B: Backend>(
    config: &EquiformerConfig,
    weights: &[u8],
    device: &B::Device,
) -> Equiformer<B> {
    let record = Recorder::<B>::load(&WeightRecorder::default(), weights.to_vec(), device)
        .expect("the record decodes");
    config
        .init::<B>(device)
        .expect("valid configuration")
        .load_record(record)
}

/// A padded batch of two graphs: 10 atoms, and 8 atoms with 2 padded slots
/// holding far-away garbage positions.
#[derive(Clone, Debug)]
pub struct Graphs {
    pub tokens: Vec<i64>,
    pub points: Vec<f64>,
    pub mask: Vec<bool>,
    pub graphs: usize,
    pub nodes: usize,
}

impl Graphs {
    pub fn new(num_tokens: usize, seed: u64) -> Self {
        let mut draw = Draw::new(seed);
        let (graphs, nodes) = (2, 10);
        let mask: Vec<bool> = (0..graphs * nodes).map(|i| i < 18).collect();
        let points = mask
            .iter()
            .flat_map(|&real| {
                let spread = if real { 1.5 } else { 40.0 };
                [0; 3].map(|_| spread * draw.normal())
            })
            .collect();
        let tokens = (0..graphs * nodes)
            .map(|_| draw.below(num_tokens) as i64)
            .collect();
        Graphs {
            tokens,
            points,
            mask,
            graphs,
            nodes,
        }
    }

    /// The graphs with every point of real atoms replaced by `points` (per real
    /// atom, in order); padded slots keep their garbage.
    pub fn with_real_points(&self, points: &[[f64; 3]]) -> Self {
        let mut moved = self.clone();
        let real = (0..self.mask.len()).filter(|&i| self.mask[i]);
        for (i, p) in real.zip(points) {
            moved.points[3 * i..3 * i + 3].copy_from_slice(p);
        }
        moved
    }

    /// The points of the real atoms, in order.
    pub fn real_points(&self) -> Vec<[f64; 3]> {
        (0..self.mask.len())
            .filter(|&i| self.mask[i])
            .map(|i| [0, 1, 2].map(|k| self.points[3 * i + k]))
            .collect()
    }

    pub fn coords<B: Backend>(&self, device: &B::Device) -> Tensor<B, 3> {
        let data = TensorData::new(self.points.clone(), [self.graphs, self.nodes, 3]);
        Tensor::from_data(data.convert::<B::FloatElem>(), device)
    }

    pub fn input<B: Backend>(
        &self,
        coords: Tensor<B, 3>,
        device: &B::Device,
    ) -> EquiformerInput<B> {
        let shape = [self.graphs, self.nodes];
        let tokens = Tensor::<B, 2, Int>::from_data(
            TensorData::new(self.tokens.clone(), shape).convert::<B::IntElem>(),
            device,
        );
        let mask =
            Tensor::<B, 2, Bool>::from_data(TensorData::new(self.mask.clone(), shape), device);
        EquiformerInput::tokens(tokens, coords).with_mask(mask)
    }
}

/// The reduced outputs of a model: `type0 [B, N]` and `type1 [B, N, 3]`, flattened.
#[derive(Clone, Debug)]
pub struct Outputs {
    pub type0: Vec<f64>,
    pub type1: Vec<f64>,
}

fn reduced<B: Backend>(out: &EquiformerOutput<B>) -> (Tensor<B, 2>, Tensor<B, 3>) {
    let (type0, type1) = out.reduced().expect("reduce_dim_out");
    (type0, type1.expect("a degree-1 output"))
}

pub fn outputs<B: Backend>(model: &Equiformer<B>, graphs: &Graphs, device: &B::Device) -> Outputs {
    let out = model
        .forward(graphs.input(graphs.coords(device), device))
        .expect("valid input");
    let (type0, type1) = reduced(&out);
    Outputs {
        type0: to_vec(type0),
        type1: to_vec(type1),
    }
}

/// Gradients of a fixed random linear function of both outputs, with respect to
/// every float parameter (in the module's visiting order) and to the coordinates.
#[derive(Clone, Debug)]
pub struct Gradients {
    pub parameters: Vec<Vec<f64>>,
    pub coords: Vec<f64>,
}

struct ParameterGradients<'a, B: AutodiffBackend> {
    gradients: &'a B::Gradients,
    found: Vec<Vec<f64>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for ParameterGradients<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        // A parameter the loss does not reach has no gradient in Burn's graph on
        // one backend and a zero one on another (where a fused operation couples
        // it with parameters the loss does reach): both are zeros.
        let value = param.val();
        let size = value.shape().num_elements();
        self.found.push(
            value
                .grad(self.gradients)
                .map(to_vec)
                .unwrap_or_else(|| vec![0.0; size]),
        );
    }
}

pub fn gradients<B: AutodiffBackend>(
    model: &Equiformer<B>,
    graphs: &Graphs,
    device: &B::Device,
) -> Gradients {
    let coords = graphs.coords::<B>(device).require_grad();
    let out = model
        .forward(graphs.input(coords.clone(), device))
        .expect("valid input");
    let (type0, type1) = reduced(&out);
    let mut draw = Draw::new(99);
    let [b, n] = type0.dims();
    let weights0 = Tensor::<B, 2>::from_data(
        TensorData::new(draw.values(b * n), [b, n]).convert::<B::FloatElem>(),
        device,
    );
    let weights1 = Tensor::<B, 3>::from_data(
        TensorData::new(draw.values(b * n * 3), [b, n, 3]).convert::<B::FloatElem>(),
        device,
    );
    let objective = (type0 * weights0).sum() + (type1 * weights1).sum();
    let found = objective.backward();
    let mut visitor = ParameterGradients::<B> {
        gradients: &found,
        found: Vec::new(),
    };
    model.visit(&mut visitor);
    Gradients {
        parameters: visitor.found,
        coords: coords.grad(&found).map(to_vec).unwrap_or_default(),
    }
}

/// `max |a - b| / max |b|`: the error of `a` relative to the largest entry of the
/// reference `b` (0 when both are empty; infinite when either holds a NaN or an
/// infinity, which `f64::max` would otherwise skip).
pub fn relative_error(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "compared tensors differ in size");
    if a.iter().chain(b).any(|v| !v.is_finite()) {
        return f64::INFINITY;
    }
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let error = a
        .iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
    if error == 0.0 {
        0.0
    } else {
        error / scale.max(f64::MIN_POSITIVE)
    }
}

/// Median wall time, in seconds, of `runs` forward passes after one warm-up pass (which
/// compiles the GPU kernels), outputs read back to the host.
pub fn forward_seconds<B: Backend>(
    model: &Equiformer<B>,
    graphs: &Graphs,
    device: &B::Device,
    runs: usize,
) -> f64 {
    outputs(model, graphs, device);
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = std::time::Instant::now();
            outputs(model, graphs, device);
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[runs / 2]
}
