//! equi-train: data readers, datasets, tasks and the training loop for equivariant models.
//!
//! - [`io`]: extended XYZ, PDB and DCD files;
//! - [`config`]: the TOML run configuration;
//! - [`data`]: structures, splits and padded batches;
//! - [`task`]: backbone denoising, property regression, energies and forces;
//! - [`train`]: the training loop with atomic, resumable [`checkpoint`]s;
//! - [`evaluate`]: metrics and predictions of a trained network;
//! - [`commands`]: what the `equiformer` program runs.
//!
//! The loop is written on Burn's optimizers (`AdamConfig`, `AdamWConfig`, `GradientsParams`,
//! `Optimizer`) and records rather than on burn-train's `Learner`, whose file checkpointer
//! writes in place (a crash mid-write leaves a damaged checkpoint), stores model, optimizer
//! and scheduler in three separately written files without progress counters or random
//! state, resumes only at epoch boundaries chosen by the caller, and panics on an unreadable
//! checkpoint.

pub mod backend;
pub mod checkpoint;
pub mod commands;
pub mod config;
pub mod data;
pub mod error;
pub mod evaluate;
pub mod history;
pub mod io;
pub mod model;
pub mod plot;
pub mod rng;
pub mod schedule;
pub mod task;
pub mod train;

pub use error::TrainError;
