//! `equiformer`: SE(3)/E(3)-equivariant graph attention transformers for 3D
//! atomistic graphs (molecules, proteins, materials), in pure Rust on Burn.
//!
//! This crate gathers the workspace under one name:
//! - [`so3`]: exact SO(3) math (irreps, spherical harmonics, Wigner-D, Clebsch-Gordan);
//! - [`nn`]: layers and models (Equiformer, SchNet);
//! - [`train`]: data readers, tasks and training;
//! - [`allocator`]: allocation settings for programs on the CPU backends.
//!
//! Choose the backend at compile time with the cargo features `ndarray`
//! (default, CPU), `wgpu` or `cuda`.

pub mod allocator;

pub use equi_nn as nn;
pub use equi_train as train;
pub use so3_math as so3;

/// The README's usage example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
