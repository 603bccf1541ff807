//! The compute backends compiled into this build, chosen at run time by `run.backend`.

use burn::tensor::backend::AutodiffBackend;

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
