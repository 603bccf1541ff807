//! Forces and stress against finite differences of the energy, their symmetries, and the
//! conservative training gradient against finite differences of the whole loss.

use atoms::Cell;
use burn::backend::{Autodiff, NdArray};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use proptest::prelude::*;
use so3_math::rotation::{apply, RandomRotations, RotationMatrix};

use super::*;
use crate::host_ops::tests::{with_fused_kernels, PerturbedF64};
use crate::schnet::SchNetConfig;
use crate::{AttentionKind, Equiformer, EquiformerConfig, MessagePath};

type Grad = Autodiff<NdArray<f64>>;
type Grad32 = Autodiff<NdArray<f32>>;

const CUTOFF: f64 = 3.2;

/// A small triclinic cell (smaller than the cutoff along every axis: atoms neighbour
/// their own images) with three atoms of two kinds, one outside the cell.
fn triclinic() -> System {
    System {
        tokens: vec![0, 1, 1],
        positions: vec![[0.1, 0.2, 0.05], [1.3, 0.9, 1.1], [2.2, 2.6, -0.4]],
        cell: Some(
            Cell::new([[2.6, 0.2, 0.1], [0.3, 2.8, 0.0], [0.1, 0.25, 2.7]]).expect("a cell"),
        ),
        pbc: [true; 3],
    }
}

/// A slab: periodic along the first two lattice vectors only.
fn slab() -> System {
    System {
        tokens: vec![1, 0, 2, 1],
        positions: vec![
            [0.0, 0.0, 0.0],
            [1.4, 1.2, 0.3],
            [0.5, 1.9, 1.5],
            [2.1, 0.4, 2.2],
        ],
        cell: Some(
            Cell::new([[2.9, 0.0, 0.0], [0.4, 3.1, 0.0], [0.0, 0.0, 12.0]]).expect("a cell"),
        ),
        pbc: [true, true, false],
    }
}

fn molecule() -> System {
    System::molecule(
        vec![2, 0, 1, 1],
        vec![
            [0.0, 0.0, 0.0],
            [1.1, 0.2, -0.3],
            [-0.4, 1.2, 0.5],
            [0.6, -0.8, 1.3],
        ],
    )
}

/// A small Equiformer whose weights are all perturbed (zero-initialised ones too), by
/// about a trained model's size: much larger weights make the energy so wiggly that the
/// finite differences it is checked against lose their digits.
fn equiformer<B: Backend>(
    kind: AttentionKind,
    path: MessagePath,
    reversible: bool,
    device: &B::Device,
) -> Equiformer<B> {
    unperturbed(kind, path, reversible, device).map(&mut Noise(RandomRotations::new(3), 0.1))
}

fn unperturbed<B: Backend>(
    kind: AttentionKind,
    path: MessagePath,
    reversible: bool,
    device: &B::Device,
) -> Equiformer<B> {
    config(kind, path, reversible)
        .init::<B>(device)
        .expect("a valid configuration")
}

fn config(kind: AttentionKind, path: MessagePath, reversible: bool) -> EquiformerConfig {
    EquiformerConfig::new(vec![8, 4])
        .with_num_tokens(Some(3))
        .with_heads(vec![2])
        .with_dim_head(vec![4])
        .with_depth(2)
        .with_valid_radius(CUTOFF)
        .with_radial_basis_cutoff(CUTOFF)
        .with_num_neighbors(None)
        .with_attention(kind)
        .with_message_path(Some(path))
        .with_reversible(reversible)
        .with_embedding_grad_frac(1.0)
        // MLP attention's leaky ReLU has a kink: its energy is not differentiable where a
        // pre-activation crosses zero, and a finite difference across one is off. A slope
        // of 1 keeps the path and makes the energy smooth.
        .with_attn_leakyrelu_slope(1.0)
}

fn schnet<B: Backend>(device: &B::Device) -> crate::schnet::SchNet<B> {
    SchNetConfig::new()
        .with_cutoff(CUTOFF)
        .with_hidden_channels(8)
        .with_num_filters(8)
        .with_num_gaussians(6)
        .with_num_interactions(2)
        .init::<B>(device)
        .map(&mut PerturbedF64(RandomRotations::new(4)))
}

/// SchNet embeds atomic numbers: tokens 0, 1, 2 become H, C, O.
fn as_atomic_numbers(mut system: System) -> System {
    system.tokens = system
        .tokens
        .iter()
        .map(|t| [1, 6, 8][*t as usize])
        .collect();
    system
}

fn derivatives<M: TrainableModel<Grad>>(model: &M, systems: &[System]) -> Vec<Derivatives> {
    let batch = PeriodicBatch::new(systems, model.cutoff(), 10_000).expect("a batch");
    evaluate(model, &batch, &Default::default()).expect("derivatives")
}

fn energy<M: TrainableModel<Grad>>(model: &M, system: &System) -> f64 {
    derivatives(model, std::slice::from_ref(system))[0].energy
}

/// `system` with positions and cell strained by the symmetric `strain` (`x -> x (I + e)`).
fn strained(system: &System, strain: [[f64; 3]; 3]) -> System {
    let map = |x: [f64; 3]| -> [f64; 3] {
        std::array::from_fn(|c| x[c] + (0..3).map(|a| x[a] * strain[a][c]).sum::<f64>())
    };
    System {
        positions: system.positions.iter().map(|&x| map(x)).collect(),
        cell: system
            .cell
            .as_ref()
            .map(|cell| Cell::new(cell.rows().map(map)).expect("a strained cell")),
        ..system.clone()
    }
}

/// The derivative of `f` at 0 by the five-point stencil (truncation `O(h^4)`).
///
/// The step is small because the energy of Equiformer is not smooth where an edge crosses
/// the cutoff (the attention renormalises over the neighbours within it): a larger step
/// could move an edge across it. Rounding (`eps |E| / h`) stays below 1e-8 relative.
fn derivative(f: impl Fn(f64) -> f64, h: f64) -> f64 {
    (8.0 * (f(h) - f(-h)) - (f(2.0 * h) - f(-2.0 * h))) / (12.0 * h)
}

/// How far the pair distances of `system` (periodic images included) keep from `cutoff`:
/// the energy of a model without the cutoff envelope jumps where one crosses it, so a finite
/// difference must not move one across.
fn clearance(system: &System, cutoff: f64) -> f64 {
    let options = atoms::NeighborOptions::new(cutoff + 0.1);
    let edges = atoms::neighbor_list(
        &system.positions,
        system.cell.as_ref(),
        system.pbc,
        &options,
    )
    .expect("edges");
    edges
        .distances(&system.positions, system.cell.as_ref())
        .into_iter()
        .map(|d| (d - cutoff).abs())
        .fold(f64::INFINITY, f64::min)
}

/// Forces and stress against finite differences of the energy, relative to the largest.
fn finite_difference_error<M: TrainableModel<Grad>>(model: &M, system: &System) -> f64 {
    assert!(
        clearance(system, model.cutoff()) > 1e-3,
        "a pair lies within 1e-3 A of the cutoff: {:.1e}",
        clearance(system, model.cutoff())
    );
    let found = &derivatives(model, std::slice::from_ref(system))[0];
    let h = 1e-5;
    let mut worst: f64 = 0.0;
    let scale = found
        .forces
        .iter()
        .flatten()
        .fold(1e-3f64, |m, x| m.max(x.abs()));
    for atom in 0..system.positions.len() {
        for axis in 0..3 {
            let moved = |delta: f64| {
                let mut s = system.clone();
                s.positions[atom][axis] += delta;
                energy(model, &s)
            };
            let force = -derivative(moved, h);
            worst = worst.max((force - found.forces[atom][axis]).abs() / scale);
        }
    }
    if let (Some(stress), Some(cell)) = (found.stress, &system.cell) {
        let volume = cell.volume();
        let stress_scale = stress.iter().flatten().fold(1e-3f64, |m, x| m.max(x.abs()));
        for a in 0..3 {
            for c in 0..3 {
                let energy_at = |e: f64| {
                    let mut strain = [[0.0; 3]; 3];
                    strain[a][c] += 0.5 * e;
                    strain[c][a] += 0.5 * e;
                    energy(model, &strained(system, strain))
                };
                let expected = derivative(energy_at, h) / volume;
                worst = worst.max((expected - stress[a][c]).abs() / stress_scale);
            }
        }
    }
    worst
}

#[test]
fn forces_and_stress_are_the_derivatives_of_the_energy() {
    let device = Default::default();
    for fused in [false, true] {
        with_fused_kernels(fused, || {
            for (kind, path, reversible) in [
                (AttentionKind::Mlp, MessagePath::So3, false),
                (AttentionKind::L2Distance, MessagePath::So2, false),
                (AttentionKind::DotProduct, MessagePath::So2, false),
                (AttentionKind::Mlp, MessagePath::So3, true),
                (AttentionKind::DotProduct, MessagePath::So2, true),
            ] {
                let model = equiformer::<Grad>(kind, path, reversible, &device);
                for system in [triclinic(), slab(), molecule()] {
                    let error = finite_difference_error(&model, &system);
                    assert!(
                        error < 1e-7,
                        "{kind:?} {path:?} reversible {reversible} fused {fused} pbc {:?}: {error:.2e}",
                        system.pbc
                    );
                }
            }
        });
    }
    let model = schnet::<Grad>(&device);
    for system in [triclinic(), slab(), molecule()] {
        let error = finite_difference_error(&model, &as_atomic_numbers(system));
        assert!(error < 1e-7, "SchNet: {error:.2e}");
    }
}

fn rotate(r: &RotationMatrix, system: &System) -> System {
    System {
        positions: system.positions.iter().map(|&x| apply(r, x)).collect(),
        cell: system
            .cell
            .as_ref()
            .map(|cell| Cell::new(cell.rows().map(|row| apply(r, row))).expect("a cell")),
        ..system.clone()
    }
}

/// The largest difference of energies, forces and stress, relative to the largest value.
fn difference(a: &Derivatives, b: &Derivatives) -> f64 {
    let values = |d: &Derivatives| {
        let mut v = vec![d.energy];
        v.extend(d.forces.iter().flatten());
        v.extend(d.stress.iter().flatten().flatten());
        v
    };
    let (a, b) = (values(a), values(b));
    let scale = a.iter().fold(1e-3f64, |m, x| m.max(x.abs()));
    a.iter()
        .zip(&b)
        .fold(0.0, |m, (x, y)| m.max((x - y).abs() / scale))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    /// Rotating positions and cell rotates forces and stress and keeps the energy;
    /// translating every atom, or moving one atom by a lattice vector, changes nothing.
    #[test]
    fn energy_forces_and_stress_transform_with_the_structure(
        seed in 0u64..1000,
        shift in prop::array::uniform3(-2i32..=2),
        offset in prop::array::uniform3(-3.0f64..3.0),
        so2 in any::<bool>(),
    ) {
        let device = Default::default();
        let path = if so2 { MessagePath::So2 } else { MessagePath::So3 };
        let model = equiformer::<Grad>(AttentionKind::DotProduct, path, false, &device);
        let system = triclinic();
        let base = derivatives(&model, std::slice::from_ref(&system)).remove(0);
        let r = RandomRotations::new(seed).next_rotation();
        let rotated = derivatives(&model, &[rotate(&r, &system)]).remove(0);
        let expected = Derivatives {
            energy: base.energy,
            forces: base.forces.iter().map(|&f| apply(&r, f)).collect(),
            stress: base.stress.map(|s| {
                std::array::from_fn(|a| std::array::from_fn(|c| {
                    (0..3).map(|p| (0..3).map(|q| r[a][p] * s[p][q] * r[c][q]).sum::<f64>()).sum()
                }))
            }),
        };
        prop_assert!(difference(&rotated, &expected) < 1e-10, "rotation: {:.2e}", difference(&rotated, &expected));

        let mut moved = system.clone();
        let lattice = system.cell.as_ref().expect("a cell").shift_vector(shift);
        for (atom, x) in moved.positions.iter_mut().enumerate() {
            for a in 0..3 {
                x[a] += offset[a] + if atom == 1 { lattice[a] } else { 0.0 };
            }
        }
        let moved = derivatives(&model, &[moved]).remove(0);
        prop_assert!(difference(&moved, &base) < 1e-10, "translation: {:.2e}", difference(&moved, &base));
    }
}

#[test]
fn a_supercell_has_the_energy_of_its_images_and_the_same_forces() {
    let device = Default::default();
    let model = equiformer::<Grad>(AttentionKind::Mlp, MessagePath::So2, false, &device);
    let system = triclinic();
    let cell = system.cell.expect("a cell");
    let mut supercell = System {
        tokens: Vec::new(),
        positions: Vec::new(),
        cell: Some(Cell::new(cell.rows().map(|row| row.map(|x| 2.0 * x))).expect("a cell")),
        pbc: [true; 3],
    };
    for shift in (0..8).map(|c| [c & 1, (c >> 1) & 1, (c >> 2) & 1]) {
        let offset = cell.shift_vector(shift);
        supercell.tokens.extend(&system.tokens);
        supercell.positions.extend(
            system
                .positions
                .iter()
                .map(|x| std::array::from_fn(|a| x[a] + offset[a])),
        );
    }
    let [small, large] = <[Derivatives; 2]>::try_from(derivatives(&model, &[system, supercell]))
        .expect("two structures");
    let scale = small.energy.abs().max(1.0);
    assert!((large.energy - 8.0 * small.energy).abs() < 1e-10 * 8.0 * scale);
    for (copy, forces) in large.forces.chunks(3).enumerate() {
        for (f, g) in forces.iter().zip(&small.forces) {
            for a in 0..3 {
                assert!((f[a] - g[a]).abs() < 1e-10, "copy {copy}: {f:?} vs {g:?}");
            }
        }
    }
    let (s, t) = (
        small.stress.expect("a stress"),
        large.stress.expect("a stress"),
    );
    for a in 0..3 {
        for c in 0..3 {
            assert!((s[a][c] - t[a][c]).abs() < 1e-10, "stress {s:?} vs {t:?}");
        }
    }
}

/// A loss on energies, forces and stress against fixed targets, with its sensitivities.
fn loss_of(predictions: &[Derivatives]) -> LossSensitivities {
    let target = |k: usize| 0.3 * (k as f64 * 0.7).sin();
    let mut loss = 0.0;
    let mut out = LossSensitivities {
        loss: 0.0,
        energies: Vec::new(),
        forces: Vec::new(),
        stress: Vec::new(),
    };
    for (b, p) in predictions.iter().enumerate() {
        let de = p.energy - target(b);
        loss += 0.5 * de * de;
        out.energies.push(de);
        let mut forces = Vec::new();
        for (i, f) in p.forces.iter().enumerate() {
            let d: [f64; 3] = std::array::from_fn(|a| f[a] - target(10 * b + 3 * i + a));
            loss += 2.0 * d.iter().map(|x| x * x).sum::<f64>();
            forces.push(d.map(|x| 4.0 * x));
        }
        out.forces.push(forces);
        out.stress.push(p.stress.map(|s| {
            std::array::from_fn(|a| {
                std::array::from_fn(|c| {
                    let d = s[a][c] - target(100 + 3 * a + c);
                    loss += 5.0 * d * d;
                    10.0 * d
                })
            })
        }));
    }
    out.loss = loss;
    out
}

/// Every parameter with its id and its number of entries.
struct Parameters(Vec<(ParamId, usize)>);

impl<B: Backend> ModuleVisitor<B> for Parameters {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.0.push((param.id, param.val().shape().num_elements()));
    }
}

/// The gradient of one parameter, flat (zeros where none was recorded).
struct GradientOf<'a> {
    id: ParamId,
    gradients: &'a GradientsParams,
    found: Vec<f64>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for GradientOf<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if param.id == self.id {
            let n = param.val().shape().num_elements();
            self.found = match self.gradients.get::<B::InnerBackend, D>(param.id) {
                Some(g) => g.into_data().convert::<f64>().to_vec().expect("f64 values"),
                None => vec![0.0; n],
            };
        }
    }
}

/// Entry `index` of parameter `id` moved by `delta`.
struct Nudge {
    id: ParamId,
    index: usize,
    delta: f64,
}

impl<B: Backend> ModuleMapper<B> for Nudge {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        if param.id != self.id {
            return param;
        }
        let (id, tensor, mapper) = param.consume();
        let dims = tensor.dims();
        let mut values: Vec<f64> = tensor
            .into_data()
            .convert::<f64>()
            .to_vec()
            .expect("values");
        values[self.index] += self.delta;
        let device = Default::default();
        let tensor = Tensor::from_data(
            TensorData::new(values, dims).convert::<B::FloatElem>(),
            &device,
        );
        Param::from_mapped_value(id, tensor.require_grad(), mapper)
    }
}

/// The largest error of the conservative parameter gradient against central differences
/// of the whole loss, over a few entries of several parameter tensors, relative to the
/// largest of those derivatives.
fn conservative_error<M>(model: M, systems: &[System]) -> f64
where
    M: TrainableModel<Grad> + Module<Grad> + Clone,
{
    let device = Default::default();
    let batch = PeriodicBatch::new(systems, model.cutoff(), 10_000).expect("a batch");
    let step = conservative_gradients(&model, &batch, &device, |p| Ok(loss_of(p)), StepSize::Auto)
        .expect("a step");
    assert!(step.step > 0.0);
    let mut parameters = Parameters(Vec::new());
    model.visit(&mut parameters);
    let count = parameters.0.len();
    let (mut worst, mut scale) = (0.0f64, 0.0f64);
    for &(id, n) in [0, count / 3, 2 * count / 3, count - 1]
        .iter()
        .map(|&p| &parameters.0[p])
    {
        let mut reader = GradientOf {
            id,
            gradients: &step.gradients,
            found: Vec::new(),
        };
        model.visit(&mut reader);
        for index in [0, n / 2, n - 1] {
            let loss = |delta: f64| {
                let nudged = model.clone().map(&mut Nudge { id, index, delta });
                loss_of(&evaluate(&nudged, &batch, &device).expect("predictions")).loss
            };
            let h = 1e-5;
            let expected = (loss(h) - loss(-h)) / (2.0 * h);
            worst = worst.max((expected - reader.found[index]).abs());
            scale = scale.max(expected.abs());
        }
    }
    worst / scale
}

#[test]
fn conservative_gradients_are_those_of_the_whole_loss() {
    let device = Default::default();
    let systems = [triclinic(), molecule()];
    let so2 = equiformer::<Grad>(AttentionKind::L2Distance, MessagePath::So2, false, &device);
    let error = conservative_error(so2, &systems);
    eprintln!("SO(2): relative error {error:.2e}");
    assert!(error < 1e-6, "SO(2): {error:.2e}");
    let reversible = equiformer::<Grad>(AttentionKind::Mlp, MessagePath::So3, true, &device);
    let error = conservative_error(reversible, &systems);
    eprintln!("reversible SO(3): relative error {error:.2e}");
    assert!(error < 1e-6, "reversible SO(3): {error:.2e}");
    let schnet_systems = systems.map(as_atomic_numbers);
    let error = conservative_error(schnet::<Grad>(&device), &schnet_systems);
    eprintln!("SchNet: relative error {error:.2e}");
    assert!(error < 1e-6, "SchNet: {error:.2e}");
}

#[test]
fn conservative_gradients_in_f32_follow_those_in_f64() {
    let device = Default::default();
    let systems = [triclinic(), slab()];
    // Weights of a trained model's size (the strongly perturbed ones of the other tests
    // make the energy so stiff that no f32 difference resolves its curvature).
    let wide = unperturbed::<Grad>(AttentionKind::DotProduct, MessagePath::So2, false, &device)
        .map(&mut Noise(RandomRotations::new(5), 0.05));
    let record = wide.clone().into_record();
    let narrow = unperturbed::<Grad32>(AttentionKind::DotProduct, MessagePath::So2, false, &device)
        .load_record(convert_record(record));
    let gradient_of = |gradients: &GradientsParams, model: &dyn Fn(&mut GradientOfAll)| {
        let mut all = GradientOfAll {
            gradients,
            found: Vec::new(),
        };
        model(&mut all);
        all.found
    };
    let batch = PeriodicBatch::new(&systems, CUTOFF, 10_000).expect("a batch");
    let step64 = conservative_gradients(&wide, &batch, &device, |p| Ok(loss_of(p)), StepSize::Auto)
        .expect("f64 step");
    let step32 =
        conservative_gradients(&narrow, &batch, &device, |p| Ok(loss_of(p)), StepSize::Auto)
            .expect("f32 step");
    let g64 = gradient_of(&step64.gradients, &|v| wide.visit(v));
    let g32 = gradient_of(&step32.gradients, &|v| narrow.visit(v));
    let scale = g64.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let error = g64
        .iter()
        .zip(&g32)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()))
        / scale;
    eprintln!("f32 against f64: {error:.2e}");
    assert!(error < 5e-3, "f32 against f64: {error:.2e}");
}

/// Every parameter drawn again from a seeded stream, so that the same seed gives the same
/// model on every run whatever other test threads draw from the backend's shared generator.
/// A tensor initialised to an integer constant (zeros, ones) keeps that constant; any other is drawn
/// normal with mean zero and the spread of Burn's default Kaiming-uniform initialisation for
/// its fan-in (its first dimension; its length for a vector). Both get normal noise of the
/// given size on top (so that zero-initialised weights pass gradients on).
struct Noise(RandomRotations, f64);

impl<B: Backend> ModuleMapper<B> for Noise {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let dims = tensor.dims();
        let initial: Vec<f64> = tensor.to_data().convert::<f64>().to_vec().expect("values");
        // A random draw is never an exact integer; a constant initialisation (0, 1) is.
        let constant = initial.iter().all(|&x| x == initial[0] && x.fract() == 0.0);
        let (mean, spread) = if constant {
            (initial.first().copied().unwrap_or(0.0), 0.0)
        } else {
            let fan_in = dims.first().copied().unwrap_or(1).max(1) as f64;
            (0.0, (3.0 * fan_in).sqrt().recip())
        };
        let values: Vec<f64> = initial
            .iter()
            .map(|_| mean + spread * self.0.next_normal() + self.1 * self.0.next_normal())
            .collect();
        let values = Tensor::from_data(
            TensorData::new(values, dims).convert::<B::FloatElem>(),
            &tensor.device(),
        );
        Param::from_mapped_value(id, values.detach().require_grad(), mapper)
    }
}

/// Every parameter's gradient, flattened in visiting order.
struct GradientOfAll<'a> {
    gradients: &'a GradientsParams,
    found: Vec<f64>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for GradientOfAll<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let n = param.val().shape().num_elements();
        match self.gradients.get::<B::InnerBackend, D>(param.id) {
            Some(g) => self
                .found
                .extend(g.into_data().convert::<f64>().iter::<f64>()),
            None => self.found.extend(std::iter::repeat_n(0.0, n)),
        }
    }
}

/// A record of f64 weights as one of f32 weights (through the full-precision recorder).
fn convert_record(
    record: <Equiformer<Grad> as Module<Grad>>::Record,
) -> <Equiformer<Grad32> as Module<Grad32>>::Record {
    use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
    let recorder = BinBytesRecorder::<FullPrecisionSettings>::default();
    let bytes = recorder.record(record, ()).expect("recorded");
    recorder.load(bytes, &Default::default()).expect("loaded")
}

#[test]
fn bad_structures_are_errors_naming_them() {
    let model = equiformer::<Grad>(
        AttentionKind::Mlp,
        MessagePath::So3,
        false,
        &Default::default(),
    );
    let refused = |systems: &[System], max_images: usize| {
        PeriodicBatch::new(systems, model.cutoff(), max_images)
            .expect_err("refused")
            .to_string()
    };
    assert!(refused(&[], 10).contains("no structure"));
    let mut empty = molecule();
    empty.positions.clear();
    empty.tokens.clear();
    assert!(refused(&[molecule(), empty], 10).starts_with("structure 1: "));
    let mut coincident = molecule();
    coincident.positions[2] = coincident.positions[1];
    assert!(refused(&[coincident], 10).contains("coincident"));
    let mut nan = triclinic();
    nan.positions[0][1] = f64::NAN;
    assert!(refused(&[nan], 10_000).contains("not finite"));
    let mut no_cell = triclinic();
    no_cell.cell = None;
    assert!(refused(&[no_cell], 10_000).contains("need a cell"));
    // A cell far smaller than the cutoff needs more images than allowed.
    assert!(refused(&[triclinic()], 10).contains("image"));
    let mut tokens = molecule();
    tokens.tokens.pop();
    assert!(refused(&[tokens], 10).contains("tokens"));
    // A token outside the vocabulary is the model's error, not a panic.
    let mut unknown = molecule();
    unknown.tokens[0] = 7;
    let batch = PeriodicBatch::new(&[unknown], model.cutoff(), 10).expect("a batch");
    assert!(evaluate(&model, &batch, &Default::default()).is_err());
    // An isolated atom has the energy of the model's lone atom and no force.
    let lone = System::molecule(vec![1, 0], vec![[0.0; 3], [20.0, 0.0, 0.0]]);
    let found = derivatives(&model, &[lone]).remove(0);
    assert!(found.energy.is_finite());
    assert!(found.forces.iter().flatten().all(|&f| f == 0.0));
}

/// With the cutoff envelope, the energy is smooth where an edge crosses the cutoff (and
/// without it, it jumps); forces and stress stay the exact derivatives, on every path.
///
/// The weights here are of a trained model's size: a neighbour leaves the softmax once
/// `ln u` outweighs the spread of the logits, so with the huge logits of strongly
/// perturbed weights the switch, smooth still, happens within a hair of the cutoff.
#[test]
fn the_cutoff_envelope_makes_the_energy_smooth_at_the_cutoff() {
    let device = Default::default();
    // Atom 1 neighbours atom 0 only, so that moving it along x moves one edge across.
    let pair = |r: f64| {
        System::molecule(
            vec![0, 1, 2],
            vec![[0.0; 3], [r, 0.0, 0.0], [-1.0, 1.1, 0.0]],
        )
    };
    let smooth = |kind, path, reversible| {
        config(kind, path, reversible)
            .with_cutoff_envelope(true)
            .init::<Grad>(&device)
            .expect("a valid configuration")
            .map(&mut Noise(RandomRotations::new(8), 0.1))
    };
    for (kind, path, reversible) in [
        (AttentionKind::Mlp, MessagePath::So3, false),
        (AttentionKind::DotProduct, MessagePath::So2, true),
        (AttentionKind::L2Distance, MessagePath::So2, false),
    ] {
        let model = smooth(kind, path, reversible);
        let inside = derivatives(&model, &[pair(CUTOFF - 1e-6)]).remove(0);
        let outside = derivatives(&model, &[pair(CUTOFF + 1e-6)]).remove(0);
        assert!(
            (inside.energy - outside.energy).abs() < 1e-9,
            "{kind:?}: {} vs {}",
            inside.energy,
            outside.energy
        );
        assert!(
            difference(&inside, &outside) < 1e-8,
            "{kind:?}: forces jump"
        );
        for fused in [false, true] {
            with_fused_kernels(fused, || {
                for system in [triclinic(), slab()] {
                    let error = finite_difference_error(&model, &system);
                    assert!(error < 1e-7, "{kind:?} {path:?} fused {fused}: {error:.2e}");
                }
            });
        }
    }
    let sharp = equiformer::<Grad>(AttentionKind::Mlp, MessagePath::So3, false, &device);
    let inside = energy(&sharp, &pair(CUTOFF - 1e-6));
    let outside = energy(&sharp, &pair(CUTOFF + 1e-6));
    assert!((inside - outside).abs() > 1e-6, "no envelope, no jump?");
}
