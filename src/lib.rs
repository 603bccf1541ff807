//! equiformer
