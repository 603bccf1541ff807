//! Cross-crate tests: whole-model equivariance, masking, gradients, errors, records.

mod support;

mod cli;
mod cli_robustness;
mod equiformer_equivariance;
mod equiformer_options;
mod equiformer_reversible;
mod equiformer_robustness;
