//! Model-level tests: symmetries, batching, padding, gradients, records and
//! input validation.

use burn::backend::{Autodiff, NdArray};
use burn::module::Module;
use burn::record::{BinBytesRecorder, DoublePrecisionSettings, Recorder};
use burn::tensor::{backend::Backend, Bool, Int, Tensor, TensorData};

use super::*;

type TestBackend = NdArray<f64>;
type TestAutodiffBackend = Autodiff<TestBackend>;

const TOLERANCE: f64 = 1e-10;

/// SplitMix64: small deterministic generator for test geometries.
struct SplitMix(u64);

impl SplitMix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let radius = (-2.0 * (1.0 - self.uniform()).ln()).sqrt();
        radius * (2.0 * core::f64::consts::PI * self.uniform()).cos()
    }
}

#[derive(Clone, Debug)]
struct Molecule {
    atomic_numbers: Vec<i64>,
    positions: Vec<[f64; 3]>,
}

impl Molecule {
    /// `atoms` atoms of random elements in a cube of side `2 * half_side` Å.
    fn random(rng: &mut SplitMix, atoms: usize, half_side: f64) -> Self {
        let elements = [1, 6, 7, 8, 9, 16, 17, 35, 53, 100];
        let atomic_numbers = (0..atoms)
            .map(|_| elements[(rng.next_u64() % elements.len() as u64) as usize])
            .collect();
        let positions = (0..atoms)
            .map(|_| [0; 3].map(|_| half_side * (2.0 * rng.uniform() - 1.0)))
            .collect();
        Self {
            atomic_numbers,
            positions,
        }
    }

    fn map_positions(&self, f: impl Fn([f64; 3]) -> [f64; 3]) -> Self {
        Self {
            atomic_numbers: self.atomic_numbers.clone(),
            positions: self.positions.iter().map(|p| f(*p)).collect(),
        }
    }
}

/// Rotation matrix of a random unit quaternion.
fn random_rotation(rng: &mut SplitMix) -> [[f64; 3]; 3] {
    let q = [0; 4].map(|_| rng.normal());
    let norm = q.iter().map(|c| c * c).sum::<f64>().sqrt();
    let [w, x, y, z] = q.map(|c| c / norm);
    [
        [
            1.0 - 2.0 * (y * y + z * z),
            2.0 * (x * y - w * z),
            2.0 * (x * z + w * y),
        ],
        [
            2.0 * (x * y + w * z),
            1.0 - 2.0 * (x * x + z * z),
            2.0 * (y * z - w * x),
        ],
        [
            2.0 * (x * z - w * y),
            2.0 * (y * z + w * x),
            1.0 - 2.0 * (x * x + y * y),
        ],
    ]
}

fn rotate(rotation: &[[f64; 3]; 3], p: [f64; 3]) -> [f64; 3] {
    rotation.map(|row| row[0] * p[0] + row[1] * p[1] + row[2] * p[2])
}

/// Padded tensors of `molecules`, `atoms` slots each; slot `s` of a padding
/// atom gets `padding(s)` as atomic number and position.
fn padded_batch<B: Backend>(
    molecules: &[Molecule],
    atoms: usize,
    padding: impl Fn(usize) -> (i64, [f64; 3]),
    device: &B::Device,
) -> (Tensor<B, 2, Int>, Tensor<B, 3>, Tensor<B, 2, Bool>) {
    let mut numbers = Vec::new();
    let mut coordinates = Vec::new();
    let mut mask = Vec::new();
    for molecule in molecules {
        for slot in 0..atoms {
            let (number, position, real) = match molecule.atomic_numbers.get(slot) {
                Some(number) => (*number, molecule.positions[slot], true),
                None => {
                    let (number, position) = padding(slot);
                    (number, position, false)
                }
            };
            numbers.push(number);
            coordinates.extend(position);
            mask.push(real);
        }
    }
    let batch = molecules.len();
    (
        Tensor::from_data(TensorData::new(numbers, [batch, atoms]), device),
        Tensor::from_data(TensorData::new(coordinates, [batch, atoms, 3]), device),
        Tensor::from_data(TensorData::new(mask, [batch, atoms]), device),
    )
}

fn predict(model: &SchNet<TestBackend>, molecules: &[Molecule], atoms: usize) -> Vec<f64> {
    let (numbers, positions, mask) =
        padded_batch::<TestBackend>(molecules, atoms, |_| (0, [0.0; 3]), &Default::default());
    model
        .forward_checked(numbers, positions, mask)
        .expect("valid input")
        .into_data()
        .iter::<f64>()
        .collect()
}

fn predict_one(model: &SchNet<TestBackend>, molecule: &Molecule) -> Vec<f64> {
    predict(
        model,
        core::slice::from_ref(molecule),
        molecule.atomic_numbers.len(),
    )
}

fn assert_close(actual: &[f64], expected: &[f64], what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: lengths differ");
    for (a, e) in actual.iter().zip(expected) {
        assert!(a.is_finite(), "{what}: non-finite output {a}");
        assert!((a - e).abs() < TOLERANCE, "{what}: {a} vs {e}");
    }
}

fn default_model() -> SchNet<TestBackend> {
    SchNetConfig::new().init(&Default::default())
}

#[test]
fn invariant_to_rotation_and_translation() {
    let model = default_model();
    let mut rng = SplitMix(7);
    let molecule = Molecule::random(&mut rng, 20, 4.0);
    let reference = predict_one(&model, &molecule);
    for _ in 0..3 {
        let rotation = random_rotation(&mut rng);
        let shift = [0; 3].map(|_| 10.0 * rng.normal());
        let moved = molecule.map_positions(|p| {
            let r = rotate(&rotation, p);
            [r[0] + shift[0], r[1] + shift[1], r[2] + shift[2]]
        });
        assert_close(&predict_one(&model, &moved), &reference, "rigid motion");
    }
}

#[test]
fn invariant_to_atom_permutation() {
    let mut rng = SplitMix(11);
    let molecule = Molecule::random(&mut rng, 20, 4.0);
    let mut order: Vec<usize> = (0..20).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
    }
    let permuted = Molecule {
        atomic_numbers: order.iter().map(|&i| molecule.atomic_numbers[i]).collect(),
        positions: order.iter().map(|&i| molecule.positions[i]).collect(),
    };
    // A small neighbour budget also exercises the nearest-neighbour truncation.
    for max_num_neighbors in [32, 5] {
        let model = SchNetConfig::new()
            .with_num_interactions(3)
            .with_max_num_neighbors(max_num_neighbors)
            .init(&Default::default());
        assert_close(
            &predict_one(&model, &permuted),
            &predict_one(&model, &molecule),
            "permutation",
        );
    }
}

#[test]
fn molecules_do_not_influence_each_other() {
    let model = default_model();
    let mut rng = SplitMix(3);
    let small = Molecule::random(&mut rng, 7, 2.0);
    let large = Molecule::random(&mut rng, 12, 3.0);
    let together = predict(&model, &[small.clone(), large.clone()], 12);
    assert_eq!(together.len(), 2);
    assert_close(
        &together[..1],
        &predict_one(&model, &small),
        "small molecule",
    );
    assert_close(
        &together[1..],
        &predict_one(&model, &large),
        "large molecule",
    );
}

#[test]
fn garbage_in_padding_atoms_is_ignored() {
    let model = default_model();
    let mut rng = SplitMix(5);
    let molecule = Molecule::random(&mut rng, 9, 2.5);
    let first = molecule.positions[0];
    let garbage = |slot: usize| match slot % 5 {
        0 => (-3, [f64::NAN, 0.0, 1.0]),
        1 => (999, [f64::INFINITY, f64::NEG_INFINITY, 0.0]),
        2 => (6, first),
        3 => (1, [first[0] + 0.5, first[1], first[2]]),
        _ => (0, [1e300, -1e300, 0.0]),
    };
    let (numbers, positions, mask) = padded_batch::<TestBackend>(
        core::slice::from_ref(&molecule),
        15,
        garbage,
        &Default::default(),
    );
    let padded: Vec<f64> = model
        .forward_checked(numbers, positions, mask)
        .expect("padding atoms are not validated")
        .into_data()
        .iter::<f64>()
        .collect();
    assert_close(&padded, &predict_one(&model, &molecule), "padded molecule");
}

#[test]
fn position_gradients_are_finite_for_coincident_atoms() {
    let device = Default::default();
    let model: SchNet<TestAutodiffBackend> =
        SchNetConfig::new().with_num_interactions(3).init(&device);
    let mut rng = SplitMix(13);
    let mut molecule = Molecule::random(&mut rng, 6, 1.5);
    molecule.positions[1] = molecule.positions[0];
    molecule.positions[4] = molecule.positions[3];
    let (numbers, positions, mask) = padded_batch::<TestAutodiffBackend>(
        core::slice::from_ref(&molecule),
        8,
        |_| (1, molecule.positions[0]),
        &device,
    );
    let positions = positions.require_grad();
    let energy = model
        .forward_checked(numbers, positions.clone(), mask)
        .expect("valid input");
    let grads = energy.sum().backward();
    let gradient: Vec<f64> = positions
        .grad(&grads)
        .expect("positions require grad")
        .into_data()
        .iter::<f64>()
        .collect();
    assert!(gradient.iter().all(|g| g.is_finite()), "{gradient:?}");
    assert!(gradient.iter().any(|g| *g != 0.0));
    assert!(
        gradient[6 * 3..].iter().all(|g| *g == 0.0),
        "padding gradient"
    );
    // Translation invariance: the forces sum to zero.
    for axis in 0..3 {
        let total: f64 = gradient.iter().skip(axis).step_by(3).sum();
        assert!(
            total.abs() < TOLERANCE,
            "net force {total} along axis {axis}"
        );
    }
}

#[test]
fn record_round_trip_preserves_predictions() {
    let device = Default::default();
    let config = SchNetConfig::new().with_num_interactions(2);
    let model: SchNet<TestBackend> = config.init(&device);
    let mut rng = SplitMix(17);
    let molecule = Molecule::random(&mut rng, 10, 2.5);

    // A fresh model and its clone hold the same weights.
    assert_eq!(
        predict_one(&model.clone(), &molecule),
        predict_one(&model, &molecule)
    );

    let recorder = BinBytesRecorder::<DoublePrecisionSettings>::default();
    let bytes = recorder
        .record(model.clone().into_record(), ())
        .expect("record serialises");
    let record = Recorder::<TestBackend>::load(&recorder, bytes, &device).expect("record loads");
    let reloaded = config.init::<TestBackend>(&device).load_record(record);

    let before = predict_one(&model, &molecule);
    let after = predict_one(&reloaded, &molecule);
    assert_eq!(before, after);
}

#[test]
fn validation_rejects_bad_inputs() {
    let device = Default::default();
    let model: SchNet<TestBackend> = SchNetConfig::new().with_num_interactions(1).init(&device);
    let mut rng = SplitMix(19);
    let molecule = Molecule::random(&mut rng, 4, 2.0);
    let inputs = |molecule: &Molecule| {
        padded_batch::<TestBackend>(
            core::slice::from_ref(molecule),
            5,
            |_| (0, [0.0; 3]),
            &device,
        )
    };

    let mut nan = molecule.clone();
    nan.positions[2][1] = f64::NAN;
    let (numbers, positions, mask) = inputs(&nan);
    let error = model.forward_checked(numbers, positions, mask).err();
    assert_eq!(
        error,
        Some(SchNetError::NonFinitePosition {
            molecule: 0,
            atom: 2
        })
    );

    for bad in [0, 101, -1] {
        let mut wrong = molecule.clone();
        wrong.atomic_numbers[3] = bad;
        let (numbers, positions, mask) = inputs(&wrong);
        let error = model.forward_checked(numbers, positions, mask).err();
        assert_eq!(
            error,
            Some(SchNetError::AtomicNumberOutOfRange {
                molecule: 0,
                atom: 3,
                atomic_number: bad
            })
        );
    }

    let (numbers, positions, mask) = inputs(&molecule);
    let error = model
        .forward_checked(
            numbers.clone(),
            positions.clone().narrow(1, 0, 4),
            mask.clone(),
        )
        .err();
    assert_eq!(
        error,
        Some(SchNetError::PositionsShape {
            expected: [1, 5, 3],
            found: [1, 4, 3]
        })
    );
    let error = model
        .forward_checked(
            numbers.clone(),
            positions.clone(),
            mask.clone().repeat_dim(0, 2),
        )
        .err();
    assert_eq!(
        error,
        Some(SchNetError::MaskShape {
            expected: [1, 5],
            found: [2, 5]
        })
    );
    assert!(model.forward_checked(numbers, positions, mask).is_ok());
}

#[test]
fn config_defaults_and_validation() {
    let config = SchNetConfig::new();
    assert_eq!(config.cutoff, 5.0);
    assert_eq!(config.num_gaussians, 50);
    assert_eq!(config.hidden_channels, 128);
    assert_eq!(config.num_filters, 128);
    assert_eq!(config.num_interactions, 6);
    assert_eq!(config.max_num_neighbors, 32);
    assert_eq!(config.dropout, 0.0);
    assert_eq!(config.out_channels, 1);
    assert!(config.validate().is_ok());

    let rejected = [
        ("cutoff", SchNetConfig::new().with_cutoff(0.0)),
        ("cutoff", SchNetConfig::new().with_cutoff(f64::NAN)),
        ("dropout", SchNetConfig::new().with_dropout(1.5)),
        ("num_gaussians", SchNetConfig::new().with_num_gaussians(1)),
        (
            "hidden_channels",
            SchNetConfig::new().with_hidden_channels(1),
        ),
        (
            "max_num_neighbors",
            SchNetConfig::new().with_max_num_neighbors(0),
        ),
    ];
    for (expected, config) in rejected {
        match config.try_init::<TestBackend>(&Default::default()) {
            Err(SchNetError::InvalidConfig { field, .. }) => assert_eq!(field, expected),
            other => panic!("{expected}: expected a config error, got {other:?}"),
        }
    }
}

#[test]
fn output_shape_and_empty_batches() {
    let device = Default::default();
    let model: SchNet<TestBackend> = SchNetConfig::new()
        .with_num_interactions(1)
        .with_out_channels(3)
        .init(&device);
    let mut rng = SplitMix(23);
    let molecules = [
        Molecule::random(&mut rng, 3, 1.0),
        Molecule::random(&mut rng, 1, 1.0),
    ];
    assert_eq!(predict(&model, &molecules, 4).len(), 2 * 3);

    let numbers = Tensor::<TestBackend, 2, Int>::zeros([2, 0], &device);
    let positions = Tensor::<TestBackend, 3>::zeros([2, 0, 3], &device);
    let mask = Tensor::<TestBackend, 2, Bool>::empty([2, 0], &device);
    let output = model
        .forward_checked(numbers, positions, mask)
        .expect("empty molecules are valid");
    assert_eq!(output.dims(), [2, 3]);
    assert!(output.into_data().iter::<f64>().all(|v| v == 0.0));
}
