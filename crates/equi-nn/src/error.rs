//! Errors returned by the checked entry points of the models.

/// Why a model could not be built or run on the given input.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// The configuration is inconsistent.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// An input tensor has the wrong shape.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// Coordinates or features contain NaN or infinity.
    #[error("non-finite input: {0}")]
    NonFinite(String),
    /// A token index is outside the embedding table.
    #[error("token out of range: {0}")]
    TokenOutOfRange(String),
    /// The graph has no nodes, or no valid node.
    #[error("empty graph: {0}")]
    EmptyGraph(String),
    /// An input the configuration requires was not given, or one it cannot use was.
    #[error("missing or unexpected input: {0}")]
    Input(String),
}
