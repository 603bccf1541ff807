//! equi-train: data readers, datasets, tasks and the training loop for equivariant models.

pub mod io;
