//! Every layer, one equivariance check each: random rotations (and
//! translations where positions enter) through `so3_math::EquivarianceChecker`.
//! f64 to 1e-10; f32 to 1e-5 relative for one layer.

use burn::backend::NdArray;
use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Tensor, TensorData};
use so3_math::rotation::RandomRotations;
use so3_math::{EquivarianceChecker, Irreps};

use crate::attention::{AttentionKind, EquivariantAttentionConfig};
use crate::geometry::{radial_basis, CouplingTables, EdgeGeometry, NeighborList, NeighborOptions};
use crate::layers::{EquivariantLinearConfig, EquivariantNormConfig, FeedForwardConfig, Gate};
use crate::so2_convolution::{EdgeFrames, MessagePath};
use crate::tensor_product::DepthwiseTensorProductConfig;

type F64 = NdArray<f64>;
type F32 = NdArray<f32>;

/// Adds noise to every parameter so zero-initialised outputs are exercised.
struct Perturb(RandomRotations);

impl<B: Backend> ModuleMapper<B> for Perturb {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let dims = tensor.dims();
        let noise: Vec<f64> = (0..tensor.shape().num_elements())
            .map(|_| 0.3 * self.0.next_normal())
            .collect();
        let noise = Tensor::from_data(
            TensorData::new(noise, dims).convert::<B::FloatElem>(),
            &tensor.device(),
        );
        Param::from_mapped_value(id, (tensor + noise).detach().require_grad(), mapper)
    }
}

fn perturbed<B: Backend, M: Module<B>>(module: M) -> M {
    module.map(&mut Perturb(RandomRotations::new(3)))
}

/// Checker rows (per node: degree by degree, channel-major) to a fiber `[1, N, 2l+1, C]`.
fn to_fiber<B: Backend>(dims: &[usize], rows: &[f64], n: usize) -> Vec<Tensor<B, 4>> {
    let width = Irreps::from_channels(dims).dim();
    let mut offset = 0;
    dims.iter()
        .enumerate()
        .map(|(l, &c)| {
            let m = 2 * l + 1;
            let mut values = vec![0.0; n * m * c];
            for node in 0..n {
                for channel in 0..c {
                    for k in 0..m {
                        values[(node * m + k) * c + channel] =
                            rows[node * width + offset + channel * m + k];
                    }
                }
            }
            offset += c * m;
            Tensor::from_data(
                TensorData::new(values, [1, n, m, c]).convert::<B::FloatElem>(),
                &Default::default(),
            )
        })
        .collect()
}

/// A fiber `[1, N, 2l+1, C]` back to checker rows.
fn to_rows<B: Backend>(fiber: &[Tensor<B, 4>]) -> Vec<f64> {
    let n = fiber[0].dims()[1];
    let per_degree: Vec<(usize, usize, Vec<f64>)> = fiber
        .iter()
        .map(|t| {
            let [_, _, m, c] = t.dims();
            (
                m,
                c,
                t.clone()
                    .into_data()
                    .convert::<f64>()
                    .to_vec::<f64>()
                    .expect("floats"),
            )
        })
        .collect();
    let mut rows = Vec::new();
    for node in 0..n {
        for (m, c, values) in &per_degree {
            for channel in 0..*c {
                for k in 0..*m {
                    rows.push(values[(node * m + k) * c + channel]);
                }
            }
        }
    }
    rows
}

fn geometry<B: Backend>(points: &[[f64; 3]], l_max: usize, path: MessagePath) -> EdgeGeometry<B> {
    let n = points.len();
    let flat: Vec<f64> = points.iter().flatten().copied().collect();
    let coords = Tensor::<B, 3>::from_data(
        TensorData::new(flat, [1, n, 3]).convert::<B::FloatElem>(),
        &Default::default(),
    );
    let mask = Tensor::<B, 2, Bool>::full([1, n], true, &Default::default());
    let options = NeighborOptions {
        num_neighbors: Some(4),
        valid_radius: f64::INFINITY,
    };
    let neighbors = NeighborList::nearest(coords, mask.clone(), None, 0, &options);
    let distance = neighbors
        .relative
        .clone()
        .square()
        .sum_dim(3)
        .clamp_min(1e-24)
        .sqrt();
    EdgeGeometry {
        node_mask: mask,
        radial_features: radial_basis(distance.clone(), 6, 4.0),
        couplings: CouplingTables::new(l_max).couplings(neighbors.relative.clone()),
        frames: (path == MessagePath::So2).then(|| EdgeFrames::new(&neighbors, l_max)),
        envelope: None,
        distance,
        neighbors,
    }
}

/// Relative equivariance error of a fiber-to-fiber function of the points.
fn error_of<B: Backend>(
    dims_in: &[usize],
    dims_out: &[usize],
    f: impl Fn(&[[f64; 3]], Vec<Tensor<B, 4>>) -> Vec<Tensor<B, 4>>,
) -> f64 {
    let n = 6;
    let mut draw = RandomRotations::new(11);
    let points: Vec<[f64; 3]> = (0..n)
        .map(|_| [0; 3].map(|_| 1.5 * draw.next_normal()))
        .collect();
    let input = Irreps::from_channels(dims_in);
    let features: Vec<f64> = (0..n * input.dim()).map(|_| draw.next_normal()).collect();
    let output = Irreps::from_channels(dims_out);
    EquivarianceChecker::default()
        .with_trials(3)
        .check(&points, &features, &input, &output, |p, x| {
            to_rows(&f(p, to_fiber(dims_in, x, p.len())))
        })
        .expect("layouts fit")
        .max_relative_error
}

fn both_precisions(check: impl Fn(bool) -> f64) {
    let f64_error = check(true);
    assert!(f64_error < 1e-10, "f64: {f64_error}");
    let f32_error = check(false);
    assert!(f32_error < 1e-5, "f32: {f32_error}");
}

#[test]
fn linear_norm_gate_and_feed_forward_are_equivariant() {
    let dims = [5, 3, 2];
    both_precisions(|double| {
        let run = |name: &str| -> f64 {
            macro_rules! on {
                ($b:ty) => {{
                    let device = Default::default();
                    match name {
                        "linear" => {
                            let layer = EquivariantLinearConfig::new(dims.to_vec(), vec![4, 2, 3])
                                .init::<$b>(&device);
                            return error_of::<$b>(&dims, &[4, 2, 3], |_, x| layer.forward(x));
                        }
                        "norm" => {
                            let layer = perturbed(
                                EquivariantNormConfig::new(dims.to_vec()).init::<$b>(&device),
                            );
                            return error_of::<$b>(&dims, &dims, |_, x| layer.forward(x));
                        }
                        "gate" => {
                            let gate = Gate::new(vec![1, 1]);
                            return error_of::<$b>(&[4, 1, 1], &[2, 1, 1], |_, x| gate.forward(x));
                        }
                        _ => {
                            let layer = perturbed(
                                FeedForwardConfig::new(dims.to_vec())
                                    .with_include_htype_norms(true)
                                    .init::<$b>(&device),
                            );
                            return error_of::<$b>(&dims, &dims, |_, x| layer.forward(x));
                        }
                    }
                }};
            }
            if double {
                on!(F64)
            } else {
                on!(F32)
            }
        };
        ["linear", "norm", "gate", "feed_forward"]
            .iter()
            .map(|name| run(name))
            .fold(0.0, f64::max)
    });
}

#[test]
fn tensor_product_messages_are_equivariant() {
    let dims = [4, 3, 2];
    for path in [MessagePath::So3, MessagePath::So2] {
        for pool in [true, false] {
            both_precisions(|double| {
                macro_rules! on {
                    ($b:ty) => {{
                        let layer = perturbed(
                            DepthwiseTensorProductConfig::new(dims.to_vec(), vec![3, 2, 2], 7)
                                .with_radial_hidden(8)
                                .with_pool(pool)
                                .with_message_path(Some(path))
                                .init::<$b>(&Default::default()),
                        );
                        error_of::<$b>(&dims, &[3, 2, 2], |p, x| {
                            let g = geometry::<$b>(p, 2, path);
                            // Per-edge outputs: sum over slots keeps equivariance observable per node.
                            layer.forward(&x, &g).into_iter().map(|t| t.sum_dim(2).squeeze_dim::<4>(2)).collect()
                        })
                    }};
                }
                if double {
                    on!(F64)
                } else {
                    on!(F32)
                }
            });
        }
    }
}

#[test]
fn attention_blocks_are_equivariant() {
    let dims = [6, 3, 2];
    for kind in [
        AttentionKind::Mlp,
        AttentionKind::DotProduct,
        AttentionKind::L2Distance,
    ] {
        for attend_self in [true, false] {
            both_precisions(|double| {
                macro_rules! on {
                    ($b:ty) => {{
                        let layer = perturbed(
                            EquivariantAttentionConfig::new(
                                dims.to_vec(),
                                vec![2, 1, 2],
                                vec![2, 3, 2],
                                7,
                            )
                            .with_kind(kind)
                            .with_attend_self(attend_self)
                            .with_radial_hidden(8)
                            .with_num_linear_attn_heads(1)
                            .with_linear_attn_dim_head(3)
                            .init::<$b>(&Default::default()),
                        );
                        error_of::<$b>(&dims, &dims, |p, x| {
                            layer.forward(x, &geometry::<$b>(p, 2, MessagePath::So3))
                        })
                    }};
                }
                if double {
                    on!(F64)
                } else {
                    on!(F32)
                }
            });
        }
    }
}
