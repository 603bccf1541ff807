//! The compute backends compiled into this build, chosen at run time by `run.backend`, and
//! their devices, chosen by `training.devices`.

use burn::tensor::backend::{AutodiffBackend, Backend, Device, DeviceId};

use crate::config::BackendKind;
use crate::error::TrainError;

/// Work that runs on any autodiff backend.
pub trait OnBackend {
    /// What the work returns.
    type Output;

    /// Runs the work on backend `B` and its default device.
    ///
    /// # Errors
    /// Whatever the work reports.
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<Self::Output, TrainError>;
}

/// Runs `work` on the backend `kind` (f32 precision, default device).
///
/// # Errors
/// A backend that is not compiled in (cargo features `ndarray`, `wgpu`, `cuda`), or the
/// work's own errors.
pub fn dispatch<W: OnBackend>(kind: BackendKind, work: W) -> Result<W::Output, TrainError> {
    match kind {
        #[cfg(feature = "ndarray")]
        BackendKind::Ndarray => {
            work.run::<burn::backend::Autodiff<burn::backend::NdArray>>(Default::default())
        }
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => {
            work.run::<burn::backend::Autodiff<burn::backend::Wgpu>>(Default::default())
        }
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => {
            work.run::<burn::backend::Autodiff<burn::backend::Cuda>>(Default::default())
        }
        #[allow(unreachable_patterns)]
        other => Err(TrainError::BackendUnavailable(other.name().into())),
    }
}

/// The devices of backend `B` (compiled for `kind`) that `training.devices` names by index.
///
/// - `ndarray`: one device, index 0 (the CPU);
/// - `wgpu`: index `i` is the `i`-th discrete GPU; on a machine without one, index 0 is the
///   default adapter (an integrated GPU, or Mesa's software driver);
/// - `cuda`: index `i` is the `i`-th CUDA device.
///
/// An index may repeat: the batch is then split between two workers on the same device
/// (no faster, but it exercises the data-parallel step on a single device).
///
/// # Errors
/// An index the backend does not have, with the indices it has.
pub fn devices<B: Backend>(kind: BackendKind, indices: &[usize]) -> Result<Vec<B::Device>, String> {
    // Every backend numbers its GPUs (the CPU, for ndarray) as device type 0.
    let count = B::device_count(0);
    let by_index = |index: usize| B::Device::from_id(DeviceId::new(0, index as u16));
    let default_only = kind == BackendKind::Wgpu && count == 0;
    let available = if default_only { 1 } else { count };
    indices
        .iter()
        .map(|&index| {
            if index >= available {
                let have = match available {
                    0 => "no device".to_owned(),
                    1 => "one device, index 0".to_owned(),
                    n => format!("{n} devices, indices 0 to {}", n - 1),
                };
                let what = if default_only {
                    " (no discrete GPU: the default adapter only)"
                } else {
                    ""
                };
                Err(format!(
                    "device {index} does not exist: backend {} has {have} here{what}",
                    kind.name()
                ))
            } else if default_only {
                Ok(B::Device::default())
            } else {
                Ok(by_index(index))
            }
        })
        .collect()
}
