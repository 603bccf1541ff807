//! so3-math
