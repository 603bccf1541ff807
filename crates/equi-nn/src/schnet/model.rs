//! The SchNet model and its configuration.

use burn::config::Config;
use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::{Embedding, EmbeddingConfig, Linear};
use burn::tensor::{backend::Backend, Bool, Int, Tensor};

use super::activation::shifted_softplus;
use super::error::{validate_inputs, SchNetError, MAX_ATOMIC_NUMBER};
use super::graph::{radius_graph, NeighborList};
use super::interaction::{xavier_linear, GaussianSmearing, InteractionBlock};

/// Atomic number given to padding atoms before the embedding lookup.
///
/// Row 0 of the embedding table is reserved for padding; since padding atoms
/// have no edges and are left out of the readout, that row never influences
/// the output of real molecules.
pub const PADDING_ATOMIC_NUMBER: i64 = 0;

/// Hyper-parameters of [`SchNet`]; defaults follow Schütt et al. (2017) and
/// the torch_geometric implementation.
#[derive(Config, Debug)]
pub struct SchNetConfig {
    /// Interaction radius in the units of the positions (ångström), default 5.0.
    #[config(default = 5.0)]
    pub cutoff: f64,
    /// Number of Gaussians of the distance expansion, default 50 (at least 2).
    #[config(default = 50)]
    pub num_gaussians: usize,
    /// Width of the atom features, default 128 (at least 2).
    #[config(default = 128)]
    pub hidden_channels: usize,
    /// Width of the continuous filters, default 128.
    #[config(default = 128)]
    pub num_filters: usize,
    /// Number of interaction blocks, default 6.
    #[config(default = 6)]
    pub num_interactions: usize,
    /// Largest number of neighbours kept per atom (the nearest ones), default 32.
    #[config(default = 32)]
    pub max_num_neighbors: usize,
    /// Dropout probability inside the interaction blocks, default 0.0.
    #[config(default = 0.0)]
    pub dropout: f64,
    /// Number of predicted properties per molecule, default 1.
    #[config(default = 1)]
    pub out_channels: usize,
}

impl SchNetConfig {
    /// Checks every field against its valid range.
    pub fn validate(&self) -> Result<(), SchNetError> {
        let invalid = |field, requirement, value: String| {
            Err(SchNetError::InvalidConfig {
                field,
                requirement,
                value,
            })
        };
        if !(self.cutoff.is_finite() && self.cutoff > 0.0) {
            return invalid(
                "cutoff",
                "must be finite and positive",
                self.cutoff.to_string(),
            );
        }
        if !(0.0..=1.0).contains(&self.dropout) {
            return invalid("dropout", "must lie in [0, 1]", self.dropout.to_string());
        }
        let counts = [
            ("num_gaussians", self.num_gaussians, 2, "must be at least 2"),
            (
                "hidden_channels",
                self.hidden_channels,
                2,
                "must be at least 2",
            ),
            ("num_filters", self.num_filters, 1, "must be at least 1"),
            (
                "max_num_neighbors",
                self.max_num_neighbors,
                1,
                "must be at least 1",
            ),
            ("out_channels", self.out_channels, 1, "must be at least 1"),
        ];
        for (field, value, minimum, requirement) in counts {
            if value < minimum {
                return invalid(field, requirement, value.to_string());
            }
        }
        Ok(())
    }

    /// Creates the model after [`validate`](Self::validate).
    ///
    /// Linear weights are Xavier-uniform with zero biases; the atom embedding
    /// is drawn from `N(0, 1)`, as in torch_geometric. Parameters are drawn
    /// here rather than lazily on first use, so clones of a fresh model share
    /// the same weights.
    pub fn try_init<B: Backend>(&self, device: &B::Device) -> Result<SchNet<B>, SchNetError> {
        self.validate()?;
        let interactions = (0..self.num_interactions)
            .map(|_| {
                InteractionBlock::new(
                    self.hidden_channels,
                    self.num_gaussians,
                    self.num_filters,
                    self.cutoff,
                    self.dropout,
                    device,
                )
            })
            .collect();
        let half = self.hidden_channels / 2;
        let model = SchNet {
            embedding: EmbeddingConfig::new(MAX_ATOMIC_NUMBER as usize + 1, self.hidden_channels)
                .init(device),
            smearing: GaussianSmearing {
                cutoff: self.cutoff,
                num_gaussians: self.num_gaussians,
            },
            interactions,
            lin1: xavier_linear(self.hidden_channels, half, true, device),
            lin2: xavier_linear(half, self.out_channels, true, device),
            cutoff: self.cutoff,
            max_num_neighbors: self.max_num_neighbors,
            out_channels: self.out_channels,
        };
        model.visit(&mut Materialize);
        Ok(model)
    }

    /// Creates the model; see [`try_init`](Self::try_init).
    ///
    /// # Panics
    ///
    /// If the configuration is invalid (see [`validate`](Self::validate)).
    pub fn init<B: Backend>(&self, device: &B::Device) -> SchNet<B> {
        match self.try_init(device) {
            Ok(model) => model,
            Err(error) => panic!("{error}"),
        }
    }
}

/// Draws every lazily initialised parameter of a module.
struct Materialize;

impl<B: Backend> ModuleVisitor<B> for Materialize {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        param.val();
    }
}

/// SchNet (Schütt et al., 2017): an invariant message-passing network on
/// interatomic distances, predicting one vector of properties per molecule.
#[derive(Module, Debug)]
pub struct SchNet<B: Backend> {
    /// Atom-type embedding, `[101, hidden_channels]`; row 0 is padding.
    pub embedding: Embedding<B>,
    /// Gaussian expansion of the edge distances.
    pub smearing: GaussianSmearing,
    /// Residual interaction blocks.
    pub interactions: Vec<InteractionBlock<B>>,
    /// Readout `hidden_channels -> hidden_channels / 2`.
    pub lin1: Linear<B>,
    /// Readout `hidden_channels / 2 -> out_channels`.
    pub lin2: Linear<B>,
    /// Interaction radius.
    pub cutoff: f64,
    /// Largest number of neighbours per atom.
    pub max_num_neighbors: usize,
    /// Width of the output.
    pub out_channels: usize,
}

impl<B: Backend> SchNet<B> {
    /// Predicts the properties of a padded batch of molecules, after
    /// [`validate_inputs`](super::validate_inputs).
    ///
    /// # Shapes
    ///
    /// - atomic_numbers: `[B, N]`, in `1..=100` for real atoms
    /// - positions: `[B, N, 3]`, finite for real atoms
    /// - mask: `[B, N]`, true for real atoms
    /// - output: `[B, out_channels]`
    ///
    /// # Errors
    ///
    /// [`SchNetError`] for mismatched shapes, out-of-range atomic numbers or
    /// non-finite positions of real atoms.
    pub fn forward_checked(
        &self,
        atomic_numbers: Tensor<B, 2, Int>,
        positions: Tensor<B, 3>,
        mask: Tensor<B, 2, Bool>,
    ) -> Result<Tensor<B, 2>, SchNetError> {
        validate_inputs(&atomic_numbers, &positions, &mask)?;
        Ok(self.forward(atomic_numbers, positions, mask))
    }

    /// Predicts the properties of a padded batch of molecules, without
    /// validation.
    ///
    /// Padding atoms (`mask` false) may carry any atomic number and any
    /// coordinates, NaN included: both are replaced before use, padding atoms
    /// receive no edges and are left out of the per-molecule sum. Real atoms
    /// at exactly the same position are not connected to each other.
    ///
    /// # Shapes
    ///
    /// - atomic_numbers: `[B, N]`
    /// - positions: `[B, N, 3]`
    /// - mask: `[B, N]`
    /// - output: `[B, out_channels]`
    ///
    /// # Panics
    ///
    /// If the shapes disagree. A real atom with an atomic number outside
    /// `1..=100` is a backend-dependent failure (panic or meaningless output);
    /// use [`forward_checked`](Self::forward_checked) for untrusted input.
    pub fn forward(
        &self,
        atomic_numbers: Tensor<B, 2, Int>,
        positions: Tensor<B, 3>,
        mask: Tensor<B, 2, Bool>,
    ) -> Tensor<B, 2> {
        let [batch, atoms] = atomic_numbers.dims();
        let device = positions.device();
        if batch == 0 || atoms == 0 {
            return Tensor::zeros([batch, self.out_channels], &device);
        }
        let padding = mask.clone().bool_not(); // [B, N]
        let atomic_numbers = atomic_numbers.mask_fill(padding.clone(), PADDING_ATOMIC_NUMBER);
        let positions = positions.mask_fill(
            padding
                .clone()
                .unsqueeze_dim::<3>(2)
                .expand([batch, atoms, 3]),
            0.0,
        );

        let graph = radius_graph(positions, mask.clone(), self.cutoff, self.max_num_neighbors);
        self.atom_outputs(atomic_numbers, mask, &graph)
            .sum_dim(1)
            .squeeze_dim(1)
    }

    /// The per-atom outputs on a given neighbour list, whose sum over the atoms of a
    /// molecule is [`forward`](Self::forward)'s result: the entry point of periodic
    /// structures, whose neighbour list ([`NeighborList::from_displacements`]) joins
    /// images of atoms.
    ///
    /// # Shapes
    ///
    /// - atomic_numbers: `[B, N]`, in `1..=100` for real atoms
    /// - mask: `[B, N]`
    /// - graph: tensors `[B, N, K]`
    /// - output: `[B, N, out_channels]`, zero on padding
    pub fn atom_outputs(
        &self,
        atomic_numbers: Tensor<B, 2, Int>,
        mask: Tensor<B, 2, Bool>,
        graph: &NeighborList<B>,
    ) -> Tensor<B, 3> {
        let [batch, atoms] = atomic_numbers.dims();
        let padding = mask.bool_not(); // [B, N]
        let atomic_numbers = atomic_numbers.mask_fill(padding.clone(), PADDING_ATOMIC_NUMBER);
        let expansion = self.smearing.forward(graph.distances.clone()); // [B, N, K, G]

        let mut features = self.embedding.forward(atomic_numbers); // [B, N, H]
        for block in &self.interactions {
            let update = block.forward(features.clone(), graph, expansion.clone());
            features = features + update;
        }

        let per_atom = self
            .lin2
            .forward(shifted_softplus(self.lin1.forward(features))); // [B, N, out]
        let padding = padding
            .unsqueeze_dim::<3>(2)
            .expand([batch, atoms, self.out_channels]);
        per_atom.mask_fill(padding, 0.0)
    }
}
