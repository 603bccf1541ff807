//! A trained checkpoint as an interatomic potential: energy, forces and stress of one
//! structure at a time, in f32 or f64.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use burn::backend::{Autodiff, NdArray};
use burn::tensor::backend::AutodiffBackend;
use equi_train::commands::{open_checkpoint, restore};
use equi_train::config::ForceSource;
use equi_train::data::{HostBatch, Structure};
use equi_train::evaluate::Predictor;
use equi_train::model::Network;
use equi_train::task::Task;
use equi_train::TrainError;
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray2, PyReadonlyArrayDyn};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use crate::error::to_python;
use crate::structure::{structure, Known};

/// Energy (eV), forces `[n, 3]` (eV/A) and, with a cell, stress `[3, 3]` (eV/A^3).
type Results = (f64, Vec<f64>, Option<[[f64; 3]; 3]>);

/// The float type of Burn's CPU device in this process, fixed by the first model built.
static PROCESS_PRECISION: OnceLock<&'static str> = OnceLock::new();

/// Fixes this process's float type to `precision` (`"float32"` or `"float64"`), or fails if
/// the other one is already in use.
///
/// Burn 0.21 keeps the default float type per device type, and `NdArray<f32>` and
/// `NdArray<f64>` share one device type: whichever creates a tensor first fixes it for both,
/// and a model of the other precision would silently compute in the first one's.
///
/// # Errors
/// The other precision was claimed before.
pub fn claim_precision(precision: &'static str) -> Result<(), TrainError> {
    let held = *PROCESS_PRECISION.get_or_init(|| precision);
    if held == precision {
        return Ok(());
    }
    Err(TrainError::Usage(format!(
        "this process already computes in {held} (Burn 0.21 has one float type per CPU \
         device and process): {precision} needs a separate process"
    )))
}

/// What [`Potential::compute`] returns to Python.
type Computed<'py> = (
    f64,
    Bound<'py, PyArray2<f64>>,
    Option<Bound<'py, PyArray2<f64>>>,
);

/// A checkpoint restored on the CPU backend of precision `B`.
struct Restored<B: AutodiffBackend> {
    task: Task,
    network: Network<B>,
    device: B::Device,
}

impl<B: AutodiffBackend> Restored<B> {
    fn open(path: &Path) -> Result<(PathBuf, String, Self), TrainError> {
        let (file, found, loaded) = open_checkpoint(path)?;
        let device = B::Device::default();
        let (task, network) = restore::<B>(&file, found, &loaded, &device)?;
        if !task.is_potential() {
            return Err(TrainError::Usage(format!(
                "{}: not an interatomic potential: the calculator needs a [task.energy_forces] \
                 checkpoint with forces = \"conservative\"",
                file.display()
            )));
        }
        let model = loaded.model.name().to_owned();
        Ok((
            file,
            model,
            Self {
                task,
                network,
                device,
            },
        ))
    }

    /// The same conservative prediction as `equiformer predict`, for one structure.
    fn compute(&self, structure: &Structure) -> Result<Results, TrainError> {
        let predictor = Predictor::new(
            &self.network,
            &self.task,
            Some(ForceSource::Conservative),
            &self.device,
        );
        let host = HostBatch::new(&[structure]);
        let prediction = predictor.predict(&host)?;
        let energy = prediction.scalars[0];
        let mut forces = prediction.vectors.unwrap_or_default();
        forces.truncate(3 * structure.len());
        let stress = prediction.stress.and_then(|s| s[0]);
        Ok((energy, forces, stress))
    }
}

/// The network in one of the two precisions.
enum Precision {
    Single(Restored<Autodiff<NdArray<f32>>>),
    Double(Restored<Autodiff<NdArray<f64>>>),
}

/// A trained interatomic potential (an `energy_forces` checkpoint with conservative forces),
/// evaluated on the CPU.
///
/// `Potential(checkpoint, precision="float32")`: `checkpoint` is a `.ckpt` file or a run
/// folder (its latest checkpoint); `precision` is `"float32"` (what training and
/// `equiformer predict` use) or `"float64"` (the same weights in double precision). One
/// process computes in one precision only (see [`claim_precision`]): the first potential
/// built (or [`crate::train`], float32) fixes it, and the other raises `ValueError`.
#[pyclass(frozen, module = "equiformer._native")]
pub struct Potential {
    network: Precision,
    elements: Vec<u8>,
    cutoff: f64,
    checkpoint: PathBuf,
    model: String,
}

#[pymethods]
impl Potential {
    #[new]
    #[pyo3(signature = (checkpoint, precision = "float32"))]
    fn new(py: Python<'_>, checkpoint: PathBuf, precision: &str) -> PyResult<Self> {
        let opened = py.detach(|| match precision {
            "float32" => claim_precision("float32").and_then(|()| {
                Restored::open(&checkpoint)
                    .map(|(file, model, r)| (file, model, Precision::Single(r)))
            }),
            "float64" => claim_precision("float64").and_then(|()| {
                Restored::open(&checkpoint)
                    .map(|(file, model, r)| (file, model, Precision::Double(r)))
            }),
            other => Err(TrainError::Usage(format!(
                "precision must be \"float32\" or \"float64\", not {other:?}"
            ))),
        });
        let (file, model, network) = opened.map_err(to_python)?;
        let (task, cutoff) = match &network {
            Precision::Single(r) => (&r.task, r.network.cutoff()),
            Precision::Double(r) => (&r.task, r.network.cutoff()),
        };
        let mut elements: Vec<u8> = task
            .normalizer
            .element_refs
            .iter()
            .map(|(z, _)| *z)
            .collect();
        elements.sort_unstable();
        Ok(Self {
            network,
            elements,
            cutoff,
            checkpoint: file,
            model,
        })
    }

    /// Energy (eV), forces `(n, 3)` (eV/A) and stress `(3, 3)` (eV/A^3, `(1/V) dE/d(strain)`,
    /// ASE's sign) of one structure; the stress is `None` without a periodic axis.
    ///
    /// `numbers` `(n,)` int64, `positions` `(n, 3)` float64 (Angstrom), `cell` `(3, 3)`
    /// float64 (lattice vectors as rows), `pbc` `(3,)` bool; the arrays are read in place.
    /// Raises `ValueError` for inputs the potential cannot take.
    #[pyo3(signature = (numbers, positions, cell = None, pbc = None))]
    fn compute<'py>(
        &self,
        py: Python<'py>,
        numbers: PyReadonlyArrayDyn<'py, i64>,
        positions: PyReadonlyArrayDyn<'py, f64>,
        cell: Option<PyReadonlyArrayDyn<'py, f64>>,
        pbc: Option<PyReadonlyArrayDyn<'py, bool>>,
    ) -> PyResult<Computed<'py>> {
        let known = Known {
            elements: &self.elements,
        };
        let input = structure(
            numbers.as_array(),
            positions.as_array(),
            cell.as_ref().map(|c| c.as_array()),
            pbc.as_ref().map(|p| p.as_array()),
            &known,
        )
        .map_err(PyValueError::new_err)?;
        let (energy, forces, stress) = py
            .detach(|| {
                catch_unwind(AssertUnwindSafe(|| match &self.network {
                    Precision::Single(r) => r.compute(&input),
                    Precision::Double(r) => r.compute(&input),
                }))
            })
            .map_err(|_| PyRuntimeError::new_err("internal error: the potential panicked"))?
            .map_err(to_python)?;
        let forces = Array2::from_shape_vec((input.len(), 3), forces)
            .map_err(|e| PyRuntimeError::new_err(format!("forces: {e}")))?
            .into_pyarray(py);
        let stress =
            stress.map(|s| Array2::from_shape_fn((3, 3), |(a, c)| s[a][c]).into_pyarray(py));
        Ok((energy, forces, stress))
    }

    /// Radius of the neighbour graph (Angstrom).
    #[getter]
    fn cutoff(&self) -> f64 {
        self.cutoff
    }

    /// Atomic numbers with a fitted reference energy (the training set's elements), sorted;
    /// empty when the checkpoint's baseline is not per element.
    #[getter]
    fn elements(&self) -> Vec<u32> {
        self.elements.iter().map(|&z| u32::from(z)).collect()
    }

    /// The checkpoint file the weights were read from.
    #[getter]
    fn checkpoint(&self) -> PathBuf {
        self.checkpoint.clone()
    }

    /// The model family (`"equiformer"` or `"schnet"`).
    #[getter]
    fn model(&self) -> &str {
        &self.model
    }

    /// `"float32"` or `"float64"`.
    #[getter]
    fn precision(&self) -> &'static str {
        match self.network {
            Precision::Single(_) => "float32",
            Precision::Double(_) => "float64",
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "Potential({:?}, precision={:?})",
            self.checkpoint.display().to_string(),
            self.precision()
        )
    }
}
