//! equi-nn
