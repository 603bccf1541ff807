//! equi-train
