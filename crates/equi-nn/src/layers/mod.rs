//! Equivariant building blocks: linear maps, norms, gates, feed-forward, radial networks.

pub(crate) mod activation;
mod feed_forward;
mod gate;
mod linear;
mod norm;
mod radial;

pub use feed_forward::{FeedForward, FeedForwardConfig};
pub use gate::Gate;
pub use linear::{EquivariantLinear, EquivariantLinearConfig};
pub use norm::{EquivariantNorm, EquivariantNormConfig};
pub use radial::{RadialMlp, RadialMlpConfig};
