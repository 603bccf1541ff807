//! Messages in the edge frame: the SO(2) path (as in eSCN and EquiformerV2).
//!
//! The SO(3) path of [`DepthwiseTensorProduct`] contracts each edge input
//! with the edge's spherical harmonics through Clebsch-Gordan tensors. This
//! module computes the same family of functions another way. Let `R` be the
//! rotation taking the edge to `+z` ([`so3_math::rotation_to_z`]). Then
//!
//! `m_out = D_out(R)^T Φ(D_in(R) x)`
//!
//! where `Φ` only couples the components with the same `|m|`: for each
//! `(l_in, l_out)` and `0 < m <= min(l_in, l_out)`, one learned 2x2 block per
//! channel acting on the pair `(+m, -m)`,
//!
//! `out(+m) = a x(+m) - b x(-m)`, `out(-m) = b x(+m) + a x(-m)`,
//!
//! and one scalar `a` for `m = 0`, each a radial function of the edge (the
//! radial network outputs `a` and `b` per edge and channel). In this basis a
//! rotation about z by `t` acts on `(+m, -m)` as `[[cos mt, -sin mt], [sin mt, cos mt]]`,
//! and the blocks `[[a, -b], [b, a]]` are exactly the maps that commute with
//! it, so the result does not depend on which rotation to `+z` is chosen and
//! the layer is exactly equivariant. In the edge frame `Y_J(z)` is nonzero
//! only at `m = 0`, so each Clebsch-Gordan path is itself such a map, and
//! [`DepthwiseTensorProduct::to_so2_path`] converts SO(3)-path weights into
//! SO(2)-path weights with the same output. Orders can be truncated to
//! `|m| <= m_max`, which stays equivariant.
//!
//! As on the SO(3) path the products are depthwise (per channel), the
//! messages of all input degrees are concatenated along channels and mixed by
//! one linear map per output degree; the mixing is applied in the edge frame,
//! before the rotation back, which is the same function at a lower cost.
//!
//! Per edge and channel the rotations cost `O(L^3)` and the mixing `O(L^3)`,
//! against `O(L^5)` for the SO(3) contraction with precomputed coupling
//! matrices (themselves `O(L^7)` to build per forward pass). The Wigner-D
//! matrices are computed once per forward pass in [`EdgeFrames`], batched
//! over all edges. Measured crossover: see [`MessagePath::fastest_for`].
//!
//! On `NdArray` (f32, f64, with or without autodiff) the messages of all
//! edges and their gradients run as one fused, multi-threaded host kernel
//! (`kernel.rs`); other backends, or [`crate::set_fused_kernels`]`(false)`,
//! use the tensor operations of the same computation.
//!
//! # Example
//!
//! A layer on the SO(2) path with one channel per degree, on a graph with
//! edges along both poles, checked for equivariance in `f32` (one layer:
//! below `1e-5` relative to the output):
//!
//! ```
//! use burn::backend::NdArray;
//! use burn::tensor::{Bool, Tensor, TensorData};
//! use equi_nn::geometry::{radial_basis, EdgeGeometry, NeighborList, NeighborOptions};
//! use equi_nn::tensor_product::DepthwiseTensorProductConfig;
//! use equi_nn::{EdgeFrames, MessagePath};
//! use so3_math::{EquivarianceChecker, Irreps};
//!
//! type B = NdArray<f32>;
//! let device = Default::default();
//! let layer = DepthwiseTensorProductConfig::new(vec![1, 1, 1], vec![1, 1, 1], 7)
//!     .with_message_path(Some(MessagePath::So2))
//!     .init::<B>(&device);
//! let tensor = |values: Vec<f64>, shape: [usize; 4]| {
//!     Tensor::<B, 4>::from_data(TensorData::new(values, shape).convert::<f32>(), &device)
//! };
//! // Rows of 9 values per node: degrees 0, 1 and 2 at offsets l^2.
//! let run = |points: &[[f64; 3]], rows: &[f64]| -> Vec<f64> {
//!     let n = points.len();
//!     let coords = tensor(points.concat(), [1, 1, n, 3]).squeeze_dim::<3>(0);
//!     let mask = Tensor::<B, 2, Bool>::full([1, n], true, &device);
//!     let options = NeighborOptions { num_neighbors: None, valid_radius: f64::INFINITY };
//!     let neighbors = NeighborList::nearest(coords, mask.clone(), None, 0, &options);
//!     let distance = neighbors.relative.clone().square().sum_dim(3).sqrt();
//!     let geometry = EdgeGeometry {
//!         node_mask: mask,
//!         radial_features: radial_basis(distance.clone(), 6, 3.0),
//!         couplings: Vec::new(),
//!         frames: Some(EdgeFrames::new(&neighbors, 2)),
//!         envelope: None,
//!         distance,
//!         neighbors,
//!     };
//!     let fiber: Vec<Tensor<B, 4>> = (0..3)
//!         .map(|l| {
//!             let values = rows.chunks(9).flat_map(|row| row[l * l..(l + 1) * (l + 1)].to_vec());
//!             tensor(values.collect(), [1, n, 2 * l + 1, 1])
//!         })
//!         .collect();
//!     let out: Vec<Vec<f64>> = layer
//!         .forward(&fiber, &geometry) // pooled: [1, N, 1, 2l+1, 1]
//!         .into_iter()
//!         .map(|t| t.into_data().convert::<f64>().to_vec().expect("float data"))
//!         .collect();
//!     let out = &out;
//!     (0..n)
//!         .flat_map(|i| (0..3).flat_map(move |l| out[l][i * (2 * l + 1)..(i + 1) * (2 * l + 1)].to_vec()))
//!         .collect()
//! };
//! let points = [[0.0, 0.0, 0.0], [0.0, 0.0, 1.3], [1e-9, 0.0, -0.9], [0.7, -0.4, 0.2]];
//! let rows: Vec<f64> = (0..36).map(|i| (i as f64 * 0.7).sin()).collect();
//! let irreps = Irreps::from_channels(&[1, 1, 1]);
//! let report = EquivarianceChecker::default().check(&points, &rows, &irreps, &irreps, run)?;
//! assert!(report.max_relative_error < 1e-5, "{report:?}");
//! # Ok::<(), so3_math::So3Error>(())
//! ```

use std::borrow::Cow;
use std::sync::Arc;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use so3_math::{clebsch_gordan, rotation_to_z, spherical_harmonics_f64, wigner_d};

use crate::geometry::{path_degrees, EdgeGeometry, NeighborList};
use crate::tensor_product::{DepthwiseTensorProduct, EdgeMessages};

mod kernel;

use crate::host_ops;
use kernel::{Gather, So2Layout};

/// Which implementation builds the messages of a layer.
///
/// Both compute the same family of equivariant functions with the same
/// number of radial weights (unless the SO(2) path truncates `m`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessagePath {
    /// Clebsch-Gordan contraction with the edge spherical harmonics.
    So3,
    /// Rotation into the edge frame, mixing of matching `|m|`, rotation back.
    So2,
}

impl MessagePath {
    /// The lowest maximum degree from which the SO(2) path is the default.
    pub const SO2_FROM_DEGREE: usize = 1;

    /// The faster path for features of degrees `0..=l_max`.
    ///
    /// Measured on one message block (16 channels per degree in and out, 64
    /// nodes, 16 neighbours, f32 on the ndarray backend; `cargo bench -p
    /// equi-nn --bench message_block`, table in `docs/BENCHMARKS.md`): the
    /// SO(2) block is faster at every measured maximum degree, by 1.1x at
    /// `L = 1`, 1.7x at `L = 3` and 3.7x at `L = 8`, and grows more slowly
    /// (least-squares exponent about 1.9 against 2.5 over `L = 2..=8`); its
    /// per-forward geometry (the edge frames, exponent about 2.8) costs a
    /// fraction of a millisecond more than the coupling matrices at `L <= 2`
    /// and 12x less at `L = 8` (exponent about 4.9). So the crossover is
    /// `L = 1`: the SO(2) path from there on. With scalars only (`L = 0`) both
    /// paths are the same scalar filter, and the SO(3) path, which needs no
    /// edge frames, is kept.
    pub fn fastest_for(l_max: usize) -> Self {
        if l_max >= Self::SO2_FROM_DEGREE {
            MessagePath::So2
        } else {
            MessagePath::So3
        }
    }

    /// The path a layer uses: `explicit` if given, else SO(2) when `m_max`
    /// is given, else [`Self::fastest_for`] `l_max`.
    pub fn resolve(explicit: Option<MessagePath>, m_max: Option<usize>, l_max: usize) -> Self {
        match (explicit, m_max) {
            (Some(path), _) => path,
            (None, Some(_)) => MessagePath::So2,
            (None, None) => Self::fastest_for(l_max),
        }
    }
}

/// Wigner-D matrices of the rotations taking each edge to `+z`, shared by
/// every SO(2) block of a forward pass.
///
/// Rows are stored by order, `m = 0, +1, -1, +2, -2, ...` (so that the rows
/// of the orders up to `k` are the first `2k+1`); columns keep the standard
/// order `m + l`.
#[derive(Clone, Debug)]
pub struct EdgeFrames<B: Backend> {
    wigner: Vec<Tensor<B, 3>>,
    /// Degrees `1..=l_max` flattened and concatenated once for the fused
    /// kernel (`None` where it does not serve the backend, or for scalars only).
    packed: Option<Tensor<B, 1>>,
}

impl<B: Backend> EdgeFrames<B> {
    /// Frames of every neighbour slot, for degrees `0..=l_max` (differentiable
    /// in the edge vectors, exact at both poles).
    pub fn new(neighbors: &NeighborList<B>, l_max: usize) -> Self {
        let [batch, n, k, _] = neighbors.relative.dims();
        let device = neighbors.relative.device();
        let vectors = neighbors.relative.clone().reshape([batch * n * k, 3]);
        let rotations = rotation_to_z(vectors).expect("edge vectors are [E, 3]");
        let wigner = wigner_d(l_max, rotations)
            .expect("rotations are [E, 3, 3]")
            .into_iter()
            .enumerate()
            .map(|(l, d)| {
                // Index m + l of the orders 0, +1, -1, +2, -2, ...
                let rows: Vec<i64> = (0..=l as i64)
                    .flat_map(|m| [l as i64 + m, l as i64 - m])
                    .skip(1)
                    .collect();
                let rows = Tensor::<B, 1, Int>::from_data(
                    TensorData::new(rows, [2 * l + 1]).convert::<B::IntElem>(),
                    &device,
                );
                d.select(1, rows)
            })
            .collect();
        Self::from_wigner(wigner)
    }

    /// Frames from their Wigner-D matrices (as returned by [`Self::wigner`]).
    pub(crate) fn from_wigner(wigner: Vec<Tensor<B, 3>>) -> Self {
        let dtype = wigner[0].dtype();
        let packed = (wigner.len() > 1 && host_ops::serves::<B>(dtype)).then(|| {
            let flat = |d: &Tensor<B, 3>| {
                let len = d.shape().num_elements();
                d.clone().reshape([len])
            };
            Tensor::cat(wigner[1..].iter().map(flat).collect(), 0)
        });
        EdgeFrames { wigner, packed }
    }

    /// Frames from their Wigner-D matrices, never packed: for leaves that go
    /// through several separate backward passes (reversible blocks), where a
    /// packed tensor shared by the passes would pass gradients on only once.
    pub(crate) fn from_wigner_unpacked(wigner: Vec<Tensor<B, 3>>) -> Self {
        EdgeFrames {
            wigner,
            packed: None,
        }
    }

    /// Degrees `1..=degrees` flattened and concatenated, in the fused
    /// kernel's layout, where they were packed at construction.
    fn packed(&self, degrees: usize) -> Option<Tensor<B, 1>> {
        let packed = self.packed.as_ref()?;
        let len: usize = self.wigner[1..=degrees.min(self.l_max())]
            .iter()
            .map(|d| d.shape().num_elements())
            .sum();
        if len == packed.dims()[0] {
            return Some(packed.clone());
        }
        Some(packed.clone().narrow(0, 0, len))
    }

    /// Highest degree covered.
    pub fn l_max(&self) -> usize {
        self.wigner.len() - 1
    }

    /// `D_l(R)` per edge, rows by order `m = 0, +1, -1, +2, -2, ...`.
    ///
    /// # Shapes
    /// - output `[l]`: `[E, 2l+1, 2l+1]`, edges flattened from `[B, N, K]`
    pub fn wigner(&self) -> &[Tensor<B, 3>] {
        &self.wigner
    }
}

/// The SO(2) message kernel of a [`DepthwiseTensorProduct`]: the layout of
/// its radial coefficients and the edge-frame products.
///
/// The products are grouped by order `m`: the input channels that have an
/// order `m` (degrees `l_in >= m`) are the last `T_m` of the concatenation,
/// and the output degrees with an order `m` are `l_out >= m`. The radial
/// outputs are, for each `m <= m_max`, `a_m` as `[l_out >= m, T_m]` and, for
/// `m > 0`, `b_m` of the same shape.
#[derive(Clone, Debug)]
pub(crate) struct So2Convolution {
    dims_in: Vec<usize>,
    degrees_out: usize,
    /// Orders `|m| <= orders` kept in the edge frame.
    orders: usize,
}

impl So2Convolution {
    /// The kernel for `dims_in -> dims_out` channels, keeping `|m| <= m_max`.
    pub(crate) fn new(dims_in: &[usize], dims_out: &[usize], m_max: Option<usize>) -> Self {
        let orders = m_max
            .unwrap_or(usize::MAX)
            .min(dims_in.len().saturating_sub(1))
            .min(dims_out.len().saturating_sub(1));
        So2Convolution {
            dims_in: dims_in.to_vec(),
            degrees_out: dims_out.len(),
            orders,
        }
    }

    /// First concatenated channel of order `m` and the count `T_m` from there on.
    fn channels_of_order(&self, m: usize) -> (usize, usize) {
        let start = self.dims_in[..m].iter().sum();
        (start, self.dims_in[m..].iter().sum())
    }

    /// Radial coefficients of order `m` (`a_m`, and `b_m` for `m > 0`).
    fn coefficients_of_order(&self, m: usize) -> usize {
        (1 + usize::from(m > 0)) * (self.degrees_out - m) * self.channels_of_order(m).1
    }

    /// Radial coefficients per edge.
    pub(crate) fn radial_outputs(&self) -> usize {
        (0..=self.orders)
            .map(|m| self.coefficients_of_order(m))
            .sum()
    }

    /// Position of `a_m` (or `b_m`) of `(l_in, l_out)`, channel `c`, among the radial outputs.
    fn coefficient_index(
        &self,
        m: usize,
        sine: bool,
        l_in: usize,
        l_out: usize,
        c: usize,
    ) -> usize {
        let base: usize = (0..m).map(|o| self.coefficients_of_order(o)).sum();
        let (start, width) = self.channels_of_order(m);
        let channel = self.dims_in[..l_in].iter().sum::<usize>() - start + c;
        base + usize::from(sine) * (self.degrees_out - m) * width + (l_out - m) * width + channel
    }

    /// Messages for every edge: rotate in, mix matching `|m|`, mix channels, rotate back.
    ///
    /// Uses `geometry.frames`, or computes the frames when they are missing.
    /// The channel mixing `mix` is applied in the edge frame, per order.
    ///
    /// # Shapes
    /// - `inputs[l]`: `[B, N, K, 2l+1, C_in(l)]`
    /// - `coefficients`: `[B, N, K, radial_outputs]`
    /// - output `[l]`: `[B, N, K, 2l+1, C_out(l)]`
    pub(crate) fn edge_messages<B: Backend>(
        &self,
        inputs: &[Tensor<B, 5>],
        coefficients: Tensor<B, 4>,
        geometry: &EdgeGeometry<B>,
        mix: &[Tensor<B, 2>],
    ) -> Vec<Tensor<B, 5>> {
        let [batch, n, k, width] = coefficients.dims();
        let frames = self.frames_of(geometry);
        let flat = coefficients.reshape([batch * n * k * width]);
        let coefficients = match self.fused_messages(inputs, flat, &frames, mix, [batch, n, k]) {
            Ok(messages) => return messages.split(),
            Err(unused) => unused.reshape([batch * n * k, width]),
        };
        self.generic_messages(inputs, coefficients, &frames, mix, [batch, n, k])
    }

    /// [`Self::edge_messages`] with the edge inputs gathered inside the fused
    /// host kernel: sender features at each neighbour, plus the receiver's
    /// features when given, without an edge-sized input tensor; the messages
    /// come packed as the kernel wrote them. `Err` gives the coefficients
    /// back, unused, where the fused kernel does not serve the backend or the
    /// sizes.
    ///
    /// # Shapes
    /// - `senders[l]`: `[B, N, 2l+1, C_in(l)]`, `receivers[l]`: `[B, R, 2l+1, C_in(l)]`
    /// - `geometry`: the receivers' edges, neighbour indices into the senders' `N`
    /// - `coefficients`: `[B * R * K * radial_outputs]` (`[B, R, K, radial_outputs]` flattened)
    /// - output `[l]`: `[B, R, K, 2l+1, C_out(l)]`
    pub(crate) fn node_messages<B: Backend>(
        &self,
        senders: &[Tensor<B, 4>],
        receivers: Option<&[Tensor<B, 4>]>,
        coefficients: Tensor<B, 1>,
        geometry: &EdgeGeometry<B>,
        mix: &[Tensor<B, 2>],
    ) -> Result<EdgeMessages<B>, Tensor<B, 1>> {
        let [batch, r, k] = geometry.neighbors.index.dims();
        let Some(n) = senders.first().map(|x| x.dims()[1]) else {
            return Err(coefficients);
        };
        let node_shape = |l: usize| [2 * l + 1, self.dims_in[l]];
        let fits = senders.len() == self.dims_in.len()
            && senders
                .iter()
                .enumerate()
                .all(|(l, x)| x.dims() == [batch, n, 2 * l + 1, self.dims_in[l]])
            && receivers.is_none_or(|receivers| {
                receivers.len() == self.dims_in.len()
                    && receivers
                        .iter()
                        .enumerate()
                        .all(|(l, x)| x.dims()[..2] == [batch, r] && x.dims()[2..] == node_shape(l))
            })
            && coefficients.dims() == [batch * r * k * self.radial_outputs()];
        let dtype = coefficients.dtype();
        let same_dtype = senders
            .iter()
            .chain(receivers.into_iter().flatten())
            .all(|x| x.dtype() == dtype);
        if !fits || !same_dtype || !host_ops::serves::<B>(dtype) {
            return Err(coefficients);
        }
        // Sender row of each edge in the flattened `[B * N]` node axis.
        let index = geometry.neighbors.index.clone().into_data();
        let sender: Vec<usize> = index
            .iter::<i64>()
            .enumerate()
            .map(|(e, i)| usize::try_from(i).map_or(usize::MAX, |i| (e / (r * k)) * n + i))
            .collect();
        let Some(gather) = Gather::new(sender, batch * n, k, receivers.is_some()) else {
            return Err(coefficients);
        };
        let flat_nodes = |x: &Tensor<B, 4>| {
            let len = x.shape().num_elements();
            x.clone().reshape([len])
        };
        let packed = senders
            .iter()
            .chain(receivers.into_iter().flatten())
            .map(flat_nodes)
            .collect();
        let frames = self.frames_of(geometry);
        self.run_fused(
            Tensor::cat(packed, 0),
            Some(gather),
            coefficients,
            &frames,
            mix,
            [batch, r, k],
        )
    }

    /// The geometry's frames, or frames computed here when it has none up to
    /// the degrees this kernel needs.
    fn frames_of<'a, B: Backend>(&self, geometry: &'a EdgeGeometry<B>) -> Cow<'a, EdgeFrames<B>> {
        let needed = self.frame_degrees();
        match geometry.frames.as_ref().filter(|f| f.l_max() >= needed) {
            Some(frames) => Cow::Borrowed(frames),
            None => Cow::Owned(EdgeFrames::new(&geometry.neighbors, needed)),
        }
    }

    /// Highest degree of the frames this kernel uses.
    fn frame_degrees(&self) -> usize {
        self.dims_in.len().max(self.degrees_out).saturating_sub(1)
    }

    /// [`Self::edge_messages`] by the fused host kernel, where the backend
    /// and the layer's sizes allow it ([`host_ops::serves`]; else `Err` with
    /// the flat coefficients, unused).
    fn fused_messages<B: Backend>(
        &self,
        inputs: &[Tensor<B, 5>],
        coefficients: Tensor<B, 1>,
        frames: &EdgeFrames<B>,
        mix: &[Tensor<B, 2>],
        [batch, n, k]: [usize; 3],
    ) -> Result<EdgeMessages<B>, Tensor<B, 1>> {
        let edges = batch * n * k;
        let dtype = coefficients.dtype();
        if inputs.len() != self.dims_in.len()
            || !inputs.iter().all(|x| x.dtype() == dtype)
            || !host_ops::serves::<B>(dtype)
        {
            return Err(coefficients);
        }
        let packed = inputs
            .iter()
            .enumerate()
            .map(|(l, x)| {
                let len = edges * (2 * l + 1) * self.dims_in[l];
                x.clone().reshape([len])
            })
            .collect();
        self.run_fused(
            Tensor::cat(packed, 0),
            None,
            coefficients,
            frames,
            mix,
            [batch, n, k],
        )
    }

    /// Runs the fused kernel on the packed edge inputs (or node features,
    /// with `gather`) and the flat coefficients `[E * radial_outputs]`; `Err`
    /// with the coefficients, unused, where the sizes or types do not fit it.
    fn run_fused<B: Backend>(
        &self,
        packed_inputs: Tensor<B, 1>,
        gather: Option<Gather>,
        coefficients: Tensor<B, 1>,
        frames: &EdgeFrames<B>,
        mix: &[Tensor<B, 2>],
        [batch, n, k]: [usize; 3],
    ) -> Result<EdgeMessages<B>, Tensor<B, 1>> {
        let edges = batch * n * k;
        let total: usize = self.dims_in.iter().sum();
        let dims_out: Vec<usize> = mix.iter().map(|w| w.dims()[1]).collect();
        let frame_degrees = self.frame_degrees();
        let fits = edges > 0
            && frame_degrees >= 1
            && coefficients.dims() == [edges * self.radial_outputs()]
            && dims_out.len() == self.degrees_out
            && mix.iter().all(|w| w.dims()[0] == total)
            && self.dims_in.iter().chain(&dims_out).all(|&c| c > 0);
        let dtype = coefficients.dtype();
        let same_dtype = packed_inputs.dtype() == dtype
            && frames.wigner.iter().all(|d| d.dtype() == dtype)
            && mix.iter().all(|w| w.dtype() == dtype);
        if !fits || !same_dtype || !host_ops::serves::<B>(dtype) {
            return Err(coefficients);
        }
        let layout = So2Layout::new(edges, &self.dims_in, &dims_out, self.orders, frame_degrees);
        let layout = Arc::new(match gather {
            Some(gather) => layout.gathering(gather),
            None => layout,
        });
        if packed_inputs.dims()[0] != layout.input_len() {
            return Err(coefficients);
        }
        let flat = |t: Tensor<B, 3>| {
            let len = t.shape().num_elements();
            t.reshape([len])
        };
        let packed_frames = frames.packed(frame_degrees).unwrap_or_else(|| {
            let degrees = (1..=frame_degrees).map(|l| flat(frames.wigner[l].clone()));
            Tensor::cat(degrees.collect(), 0)
        });
        let packed_weights = mix.iter().map(|w| flat(w.clone().unsqueeze())).collect();
        let output = host_ops::run(
            &layout,
            [
                packed_inputs,
                coefficients,
                packed_frames,
                Tensor::cat(packed_weights, 0),
            ],
        );
        let shapes = dims_out
            .iter()
            .enumerate()
            .map(|(l, &c_out)| [batch, n, k, 2 * l + 1, c_out])
            .collect();
        Ok(EdgeMessages::Packed {
            values: output,
            shapes,
        })
    }

    /// [`Self::edge_messages`] by Burn tensor operations (any backend).
    ///
    /// # Shapes
    /// - `coefficients`: `[E, radial_outputs]`, edges flattened from `[B, N, K]`
    pub(crate) fn generic_messages<B: Backend>(
        &self,
        inputs: &[Tensor<B, 5>],
        coefficients: Tensor<B, 2>,
        frames: &EdgeFrames<B>,
        mix: &[Tensor<B, 2>],
        [batch, n, k]: [usize; 3],
    ) -> Vec<Tensor<B, 5>> {
        let edges = batch * n * k;
        let device = coefficients.device();
        let orders = self.orders;
        // Edge-frame inputs: rows by order (0, +1, -1, ...), all input channels concatenated.
        let frame_inputs: Vec<Tensor<B, 3>> = inputs
            .iter()
            .enumerate()
            .map(|(l, x)| {
                let c = self.dims_in[l];
                let x = x.clone().reshape([edges, 2 * l + 1, c]);
                let rows = 2 * l.min(orders) + 1;
                let rotated = if l == 0 {
                    x
                } else {
                    frames.wigner[l].clone().narrow(1, 0, rows).matmul(x)
                };
                if rows == 2 * orders + 1 {
                    return rotated;
                }
                let zeros = Tensor::<B, 3>::zeros(
                    [edges, 2 * orders + 1 - rows, c],
                    (&device, rotated.dtype()),
                );
                Tensor::cat(vec![rotated, zeros], 1)
            })
            .collect();
        let frame_inputs = Tensor::cat(frame_inputs, 2); // [E, 2M+1, C_total]

        // Per order m and output degree l_out >= m: the rows (+m, -m) of the mixed message.
        let weights = mix;
        let mut frame_messages: Vec<Vec<Tensor<B, 3>>> = vec![Vec::new(); self.degrees_out];
        let mut offset = 0;
        for m in 0..=orders {
            let (start, channels) = self.channels_of_order(m);
            let degrees = self.degrees_out - m;
            let mut take = |count: usize| {
                let part = coefficients.clone().narrow(1, offset, count * channels);
                offset += count * channels;
                part.reshape([edges, count, channels])
            };
            let row = |r: usize| {
                frame_inputs
                    .clone()
                    .narrow(1, r, 1)
                    .narrow(2, start, channels)
            };
            let products = if m == 0 {
                (take(degrees) * row(0)).reshape([edges, degrees, 1, channels])
            } else {
                let (a, b) = (take(degrees), take(degrees));
                let (plus, minus) = (row(2 * m - 1), row(2 * m));
                let out_plus = a.clone() * plus.clone() - b.clone() * minus.clone();
                let out_minus = b * plus + a * minus;
                Tensor::stack(vec![out_plus, out_minus], 2) // [E, degrees, 2, T]
            };
            let rows = products.dims()[2];
            for (i, messages) in frame_messages[m..].iter_mut().enumerate() {
                let weight = weights[m + i].clone().narrow(0, start, channels);
                let block = products
                    .clone()
                    .narrow(1, i, 1)
                    .reshape([edges * rows, channels]);
                let c_out = weight.dims()[1];
                messages.push(block.matmul(weight).reshape([edges, rows, c_out]));
            }
        }
        frame_messages
            .into_iter()
            .enumerate()
            .map(|(l, parts)| {
                let message = Tensor::cat(parts, 1); // [E, 2 min(l, M) + 1, C_out]
                let [_, rows, c_out] = message.dims();
                let back = if l == 0 {
                    message
                } else {
                    let d = frames.wigner[l].clone().narrow(1, 0, rows);
                    d.swap_dims(1, 2).matmul(message) // [E, 2l+1, C_out]
                };
                back.reshape([batch, n, k, 2 * l + 1, c_out])
            })
            .collect()
    }
}

/// The edge-frame coefficients `[a_0, a_1..a_mm, b_1..b_mm]` of each
/// Clebsch-Gordan path `J` of `(l_in, l_out)`, contracted with `Y_J(z)`.
///
/// Row-major `[P, 2mm+1]` with `P = 2mm+1` paths and `mm = min(l_in, l_out)`.
fn path_frame_coefficients(l_in: usize, l_out: usize) -> Vec<f64> {
    let mm = l_in.min(l_out);
    let width = 2 * mm + 1;
    let mut table = vec![0.0; path_degrees(l_in, l_out).count() * width];
    for (p, j) in path_degrees(l_in, l_out).enumerate() {
        let frame = path_frame_matrix(l_in, j, l_out);
        let at = |i_out: usize, i_in: usize| frame[i_out * (2 * l_in + 1) + i_in];
        table[p * width] = at(l_out, l_in);
        for m in 1..=mm {
            table[p * width + m] = at(l_out + m, l_in + m);
            table[p * width + mm + m] = at(l_out - m, l_in + m);
        }
    }
    table
}

/// `C(l_in, j -> l_out)` contracted with `Y_j(z)`: row-major `[2l_out+1, 2l_in+1]`.
fn path_frame_matrix(l_in: usize, j: usize, l_out: usize) -> Vec<f64> {
    let pole = &spherical_harmonics_f64(j, [0.0, 0.0, 1.0])[j];
    let cg = clebsch_gordan(l_in, j, l_out).expect("path degrees couple");
    let (d_out, d_in) = (2 * l_out + 1, 2 * l_in + 1);
    (0..d_out * d_in)
        .map(|i| {
            (0..2 * j + 1)
                .map(|mj| cg.get(i / d_in, i % d_in, mj) * pole[mj])
                .sum()
        })
        .collect()
}

/// Radial weights of the SO(3) layout (per path) mapped to the SO(2) layout
/// (per order), for the last radial layer's `[H, W]` weight (or `[1, W]` bias).
fn so3_to_so2_weights<B: Backend>(weight: Tensor<B, 2>, kernel: &So2Convolution) -> Tensor<B, 2> {
    let [rows, _] = weight.dims();
    let device = weight.device();
    let mut offset = 0;
    let mut blocks = Vec::new();
    // Where each per-pair coefficient goes in the kernel's layout.
    let mut source = vec![0i64; kernel.radial_outputs()];
    for l_out in 0..kernel.degrees_out {
        for (l_in, &c) in kernel.dims_in.iter().enumerate() {
            let paths = path_degrees(l_in, l_out).count();
            let table = Tensor::<B, 2>::from_data(
                TensorData::new(path_frame_coefficients(l_in, l_out), [paths, paths])
                    .convert::<B::FloatElem>(),
                &device,
            );
            let block = weight
                .clone()
                .narrow(1, offset, paths * c)
                .reshape([rows, paths, c])
                .swap_dims(1, 2)
                .reshape([rows * c, paths])
                .matmul(table)
                .reshape([rows, c, paths])
                .swap_dims(1, 2)
                .reshape([rows, paths * c]);
            let mm = l_in.min(l_out);
            for (i, slot) in (offset..offset + paths * c).enumerate() {
                let (k, channel) = (i / c, i % c);
                let (m, sine) = if k <= mm { (k, false) } else { (k - mm, true) };
                source[kernel.coefficient_index(m, sine, l_in, l_out, channel)] = slot as i64;
            }
            blocks.push(block);
            offset += paths * c;
        }
    }
    let source = Tensor::<B, 1, Int>::from_data(
        TensorData::new(source, [offset]).convert::<B::IntElem>(),
        &device,
    );
    Tensor::cat(blocks, 1).select(1, source)
}

/// Forces lazily initialised parameters to draw their values.
struct Materialize;

impl<B: Backend> ModuleVisitor<B> for Materialize {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        param.val();
    }
}

impl<B: Backend> DepthwiseTensorProduct<B> {
    /// The SO(2)-path layer (all orders kept) that computes the same function
    /// as this SO(3)-path layer: every weight is shared except the last radial
    /// layer, whose outputs are mapped from per-path weights to edge-frame
    /// coefficients. An SO(2)-path layer is returned unchanged.
    pub fn to_so2_path(&self) -> Self {
        self.visit(&mut Materialize);
        let mut layer = self.clone();
        if layer.so2.is_some() {
            return layer;
        }
        let kernel = So2Convolution::new(&self.dims_in, &self.dims_out, None);
        let output = &self.radial.output;
        let weight = so3_to_so2_weights(output.weight.val(), &kernel);
        layer.radial.output.weight = Param::from_tensor(weight.detach());
        layer.radial.output.bias = output.bias.as_ref().map(|bias| {
            let row = so3_to_so2_weights(bias.val().unsqueeze::<2>(), &kernel);
            Param::from_tensor(row.squeeze_dim::<1>(0).detach())
        });
        layer.so2 = Some(kernel);
        layer
    }
}

#[cfg(test)]
mod tests;
