//! Tests of the SO(2) message path: equivariance at the poles, equality with
//! the SO(3) path after converting the weights, gradients.

use burn::backend::{Autodiff, NdArray};
use burn::tensor::{Bool, Tensor, TensorData};
use so3_math::rotation::{rotation_from_euler_zyz, RandomRotations};
use so3_math::{EquivarianceChecker, EuclideanTransform, Irreps};

use super::*;
use crate::geometry::{radial_basis, CouplingTables, NeighborOptions};
use crate::host_ops::tests::{
    outputs_and_gradients, with_fused_kernels, FreshLeaves, PerturbedF64,
};
use crate::tensor_product::DepthwiseTensorProductConfig;

type F64 = NdArray<f64>;
type Grad = Autodiff<NdArray<f64>>;

/// Edges along +z and -z, within 1e-9 of both poles, on the equator, and generic.
const POLES: [[f64; 3]; 6] = [
    [0.0, 0.0, 0.0],
    [0.0, 0.0, 1.3],
    [1e-9, -1e-9, -0.9],
    [0.7, -0.4, 0.2],
    [0.7 + 1e-9, -0.4, 1.3],
    [-0.5, 0.8, -0.3],
];

/// Layers `(dims_in, dims_out, m_max)`: hidden to hidden, scalars in, truncated orders.
const LAYERS: [(&[usize], &[usize], Option<usize>); 3] = [
    (&[3, 2, 2], &[2, 3, 2], None),
    (&[4], &[3, 2, 2, 1], None),
    (&[2, 2, 1, 2], &[2, 1, 2, 2], Some(1)),
];

fn tensor<B: Backend, const D: usize>(values: Vec<f64>, shape: [usize; D]) -> Tensor<B, D> {
    Tensor::from_data(
        TensorData::new(values, shape).convert::<B::FloatElem>(),
        &Default::default(),
    )
}

fn to_vec<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.into_data()
        .convert::<f64>()
        .to_vec::<f64>()
        .expect("float data")
}

fn layer<B: Backend>(
    dims_in: &[usize],
    dims_out: &[usize],
    path: MessagePath,
    m_max: Option<usize>,
) -> DepthwiseTensorProduct<B> {
    DepthwiseTensorProductConfig::new(dims_in.to_vec(), dims_out.to_vec(), 7)
        .with_radial_hidden(8)
        .with_message_path(Some(path))
        .with_m_max(m_max)
        .init(&Default::default())
}

/// Edge geometry for both paths, every other node a neighbour.
fn geometry<B: Backend>(coords: Tensor<B, 3>, l_max: usize) -> EdgeGeometry<B> {
    let [batch, n, _] = coords.dims();
    let mask = Tensor::<B, 2, Bool>::full([batch, n], true, &coords.device());
    let options = NeighborOptions {
        num_neighbors: None,
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
        radial_features: radial_basis(distance.clone(), 6, 3.0),
        couplings: CouplingTables::new(l_max).couplings(neighbors.relative.clone()),
        frames: Some(EdgeFrames::new(&neighbors, l_max)),
        envelope: None,
        distance,
        neighbors,
    }
}

/// Checker rows (channel-major per degree) to an internal fiber `[1, N, 2l+1, C]`.
fn fiber<B: Backend>(dims: &[usize], rows: &[f64], n: usize) -> Vec<Tensor<B, 4>> {
    let width = Irreps::from_channels(dims).dim();
    let mut offset = 0;
    dims.iter()
        .enumerate()
        .map(|(l, &c)| {
            let d = 2 * l + 1;
            let values = (0..n * d * c)
                .map(|i| rows[(i / (d * c)) * width + offset + (i % c) * d + (i / c) % d])
                .collect();
            offset += c * d;
            tensor(values, [1, n, d, c])
        })
        .collect()
}

/// Layer outputs `[1, N, S, 2l+1, C]` as checker rows, one per node.
fn rows<B: Backend>(out: Vec<Tensor<B, 5>>) -> Vec<f64> {
    let blocks: Vec<(usize, usize, usize, Vec<f64>)> = out
        .into_iter()
        .map(|t| {
            let [_, _, s, d, c] = t.dims();
            (s, d, c, to_vec(t))
        })
        .collect();
    let n = blocks.first().map_or(0, |b| b.3.len() / (b.0 * b.1 * b.2));
    let mut rows = Vec::new();
    for node in 0..n {
        for (s, d, c, values) in &blocks {
            let base = node * s * d * c;
            rows.extend(
                (0..s * c * d)
                    .map(|i| values[base + (i / (c * d)) * d * c + (i % d) * c + (i / d) % c]),
            );
        }
    }
    rows
}

fn run<B: Backend>(
    layer: &DepthwiseTensorProduct<B>,
    points: &[[f64; 3]],
    features: &[f64],
) -> Vec<f64> {
    let n = points.len();
    let coords = tensor::<B, 3>(points.iter().flatten().copied().collect(), [1, n, 3]);
    let l_max = layer.dims_in.len().max(layer.dims_out.len()) - 1;
    rows(layer.forward(
        &fiber(&layer.dims_in, features, n),
        &geometry(coords, l_max),
    ))
}

fn normals(count: usize, seed: u64) -> Vec<f64> {
    let mut draw = RandomRotations::new(seed);
    (0..count).map(|_| draw.next_normal()).collect()
}

/// Largest relative equivariance error over random rotations and
/// rotations that keep the polar edges on the z axis or move them off it.
fn equivariance_error<B: Backend>(layer: &DepthwiseTensorProduct<B>, points: &[[f64; 3]]) -> f64 {
    let (input, output) = (
        Irreps::from_channels(&layer.dims_in),
        Irreps::from_channels(&layer.dims_out),
    );
    let features = normals(points.len() * input.dim(), 3);
    let f = |p: &[[f64; 3]], x: &[f64]| run(layer, p, x);
    let random = EquivarianceChecker::default()
        .with_trials(4)
        .check(points, &features, &input, &output, f)
        .expect("layouts fit");
    let reference = f(points, &features);
    let scale = reference.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let polar = [
        (0.0, std::f64::consts::PI, 0.0),
        (0.7, 0.0, 0.0),
        (0.0, std::f64::consts::FRAC_PI_2, 0.3),
    ];
    let worst = polar
        .into_iter()
        .fold(0.0f64, |worst, (alpha, beta, gamma)| {
            let transform = EuclideanTransform {
                rotation: rotation_from_euler_zyz(alpha, beta, gamma),
                translation: [0.0; 3],
                inversion: false,
            };
            let moved = transform
                .apply_to_features(&input, &features)
                .expect("layout fits");
            let expected = transform
                .apply_to_features(&output, &reference)
                .expect("layout fits");
            let got = f(&transform.apply_to_points(points), &moved);
            got.iter()
                .zip(&expected)
                .fold(worst, |m, (a, b)| m.max((a - b).abs() / scale))
        });
    worst.max(random.max_relative_error)
}

#[test]
fn edge_frame_paths_preserve_m_and_commute_with_rotations_about_z() {
    for (l_in, l_out) in (0..=4).flat_map(|a| (0..=4).map(move |b| (a, b))) {
        for j in path_degrees(l_in, l_out) {
            let frame = path_frame_matrix(l_in, j, l_out);
            let (li, lo) = (l_in as i64, l_out as i64);
            let at = |m_out: i64, m_in: i64| {
                frame[(lo + m_out) as usize * (2 * l_in + 1) + (li + m_in) as usize]
            };
            for (m_out, m_in) in (-lo..=lo).flat_map(|a| (-li..=li).map(move |b| (a, b))) {
                if m_out.abs() != m_in.abs() {
                    assert!(
                        at(m_out, m_in).abs() < 1e-14,
                        "{l_in} {j} -> {l_out}: ({m_out}, {m_in})"
                    );
                }
            }
            // The (+m, -m) block is [[a, -b], [b, a]].
            for m in 1..=li.min(lo) {
                assert!(
                    (at(m, m) - at(-m, -m)).abs() < 1e-14,
                    "{l_in} {j} -> {l_out}: a_{m}"
                );
                assert!(
                    (at(-m, m) + at(m, -m)).abs() < 1e-14,
                    "{l_in} {j} -> {l_out}: b_{m}"
                );
            }
        }
    }
}

#[test]
fn both_paths_take_as_many_radial_weights_unless_truncated() {
    let (dims_in, dims_out) = (&[3, 2, 2, 1][..], &[2, 3, 2, 2][..]);
    let width = |l: &DepthwiseTensorProduct<F64>| l.radial.output.weight.val().dims()[1];
    let so3 = width(&layer(dims_in, dims_out, MessagePath::So3, None));
    assert_eq!(
        so3,
        width(&layer(dims_in, dims_out, MessagePath::So2, None))
    );
    assert!(width(&layer(dims_in, dims_out, MessagePath::So2, Some(1))) < so3);
}

#[test]
fn converted_so3_layer_computes_the_same_messages() {
    let mut points = POLES.to_vec();
    points.extend((0..3).map(|i| {
        let v = normals(3, 20 + i);
        [v[0], v[1], v[2]]
    }));
    for (dims_in, dims_out, _) in LAYERS {
        for pool in [true, false] {
            let so3: DepthwiseTensorProduct<F64> =
                DepthwiseTensorProductConfig::new(dims_in.to_vec(), dims_out.to_vec(), 7)
                    .with_radial_hidden(8)
                    .with_pool(pool)
                    .with_message_path(Some(MessagePath::So3))
                    .init(&Default::default());
            let so2 = so3.to_so2_path();
            assert_eq!(so2.message_path(), MessagePath::So2);
            let features = normals(points.len() * Irreps::from_channels(dims_in).dim(), 5);
            let (a, b) = (run(&so3, &points, &features), run(&so2, &points, &features));
            let scale = a.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let error = a
                .iter()
                .zip(&b)
                .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
            assert!(
                scale > 1e-3 && error < 1e-12 * scale,
                "{dims_in:?} -> {dims_out:?}: {error} of {scale}"
            );
        }
    }
}

#[test]
fn so2_layer_is_equivariant_in_f64_at_and_near_the_poles() {
    for (dims_in, dims_out, m_max) in LAYERS {
        let error = equivariance_error(
            &layer::<F64>(dims_in, dims_out, MessagePath::So2, m_max),
            &POLES,
        );
        assert!(
            error < 1e-10,
            "{dims_in:?} -> {dims_out:?}, m_max {m_max:?}: {error}"
        );
    }
}

#[test]
fn gradients_are_finite_at_the_poles_and_match_the_so3_path() {
    // A coincident atom adds a masked zero-length edge.
    let points: Vec<[f64; 3]> = POLES.iter().copied().chain([[0.0, 0.0, 1.3]]).collect();
    let n = points.len();
    let (dims_in, dims_out) = ([2, 2, 1], [2, 1, 2]);
    let so3 = layer::<Grad>(&dims_in, &dims_out, MessagePath::So3, None);
    let so2 = so3.to_so2_path();
    let features = normals(n * Irreps::from_channels(&dims_in).dim(), 9);
    let gradients = |layer: &DepthwiseTensorProduct<Grad>| {
        let coords =
            tensor::<Grad, 3>(points.iter().flatten().copied().collect(), [1, n, 3]).require_grad();
        let inputs: Vec<Tensor<Grad, 4>> = fiber(&dims_in, &features, n)
            .into_iter()
            .map(|t| t.require_grad())
            .collect();
        let out = layer.forward(&inputs, &geometry(coords.clone(), 2));
        let loss = out.into_iter().fold(
            Tensor::<Grad, 1>::zeros([1], &Default::default()),
            |acc, t| {
                let weights = t.clone().ones_like().cumsum(4).sin().detach();
                acc + (t * weights).sum()
            },
        );
        let grads = loss.backward();
        let mut all = to_vec(coords.grad(&grads).expect("coordinates require grad"));
        for input in &inputs {
            all.extend(to_vec(input.grad(&grads).expect("features require grad")));
        }
        all
    };
    let (reference, got) = (gradients(&so3), gradients(&so2));
    assert!(got.iter().all(|g| g.is_finite()), "{got:?}");
    let scale = reference.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let error = reference
        .iter()
        .zip(&got)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    assert!(error < 1e-9 * scale, "{error} of {scale}");
}

#[test]
fn message_path_resolves_serialises_and_rejects_m_max_on_so3() {
    use burn::config::Config;

    use crate::EquiformerConfig;

    assert_eq!(MessagePath::resolve(None, None, 0), MessagePath::So3);
    assert_eq!(MessagePath::resolve(None, None, 1), MessagePath::So2);
    assert_eq!(MessagePath::resolve(None, Some(1), 0), MessagePath::So2);
    assert_eq!(
        MessagePath::resolve(Some(MessagePath::So3), None, 8),
        MessagePath::So3
    );
    let config = EquiformerConfig::new(vec![4])
        .with_num_degrees(3)
        .with_num_tokens(Some(3))
        .with_message_path(Some(MessagePath::So2))
        .with_m_max(Some(1));
    let back = EquiformerConfig::load_binary(burn::config::config_to_json(&config).as_bytes())
        .expect("the config round-trips through JSON");
    assert_eq!(
        (back.message_path, back.m_max),
        (Some(MessagePath::So2), Some(1))
    );
    assert!(config.init::<F64>(&Default::default()).is_ok());
    let so3 = config.with_message_path(Some(MessagePath::So3));
    assert!(so3.init::<F64>(&Default::default()).is_err());
}

/// Outputs and every gradient (coordinates through the frames, edge inputs,
/// radial coefficients, mixing weights) of one SO(2) message call, fused or
/// by tensor operations, flattened in that order.
fn message_call<B: burn::tensor::backend::AutodiffBackend>(
    layer: &DepthwiseTensorProduct<B>,
    points: &[[f64; 3]],
    fused: bool,
) -> Vec<f64> {
    let layer = &layer.clone().map(&mut FreshLeaves);
    let so2 = layer.so2.as_ref().expect("an SO(2)-path layer");
    let n = points.len();
    let l_max = layer.dims_in.len().max(layer.dims_out.len()) - 1;
    let coords =
        tensor::<B, 3>(points.iter().flatten().copied().collect(), [1, n, 3]).require_grad();
    let geometry = geometry(coords.clone(), l_max);
    let [b, _, k, _] = geometry.neighbors.relative.dims();
    let edges = b * n * k;
    let inputs: Vec<Tensor<B, 5>> = layer
        .dims_in
        .iter()
        .enumerate()
        .map(|(l, &c)| {
            let shape = [b, n, k, 2 * l + 1, c];
            tensor::<B, 5>(normals(edges * (2 * l + 1) * c, 11 + l as u64), shape).require_grad()
        })
        .collect();
    let width = so2.radial_outputs();
    let coefficients = tensor::<B, 2>(normals(edges * width, 5), [edges, width]).require_grad();
    let frames = geometry.frames.as_ref().expect("frames");
    let mix_weights: Vec<Tensor<B, 2>> = layer.mix.weights.iter().map(|w| w.val()).collect();
    let out = if fused {
        let flat = coefficients.clone().reshape([edges * width]);
        so2.fused_messages(&inputs, flat, frames, &mix_weights, [b, n, k])
            .expect("the fused kernel serves Autodiff<NdArray>")
            .split()
    } else {
        so2.generic_messages(
            &inputs,
            coefficients.clone(),
            frames,
            &mix_weights,
            [b, n, k],
        )
    };
    let mut all = Vec::new();
    let mut loss = Tensor::<B, 1>::zeros([1], &Default::default());
    for t in out {
        let weights = t.clone().ones_like().cumsum(4).sin().detach();
        loss = loss + (t.clone() * weights).sum();
        all.extend(to_vec(t));
    }
    let grads = loss.backward();
    all.extend(to_vec(
        coords.grad(&grads).expect("coordinates require grad"),
    ));
    for input in &inputs {
        all.extend(to_vec(input.grad(&grads).expect("inputs require grad")));
    }
    all.extend(to_vec(
        coefficients
            .grad(&grads)
            .expect("coefficients require grad"),
    ));
    for w in &layer.mix.weights {
        all.extend(to_vec(w.val().grad(&grads).expect("weights require grad")));
    }
    all
}

/// Casts every parameter to `f64`, keeping it a leaf that requires its gradient.
///
/// The ndarray device's default float type is fixed, once per process, by the
/// first tensor created on it; in this test binary that may be an `f32` test,
/// and then freshly initialised `NdArray<f64>` parameters are `f32`.
struct InF64;

impl<B: Backend> burn::module::ModuleMapper<B> for InF64 {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        param.map(|t| {
            let tracked = t.is_require_grad();
            let t = t.cast(burn::tensor::DType::F64).detach();
            if tracked {
                t.require_grad()
            } else {
                t
            }
        })
    }
}

/// Largest difference relative to the largest entry of `reference`.
fn relative_difference(reference: &[f64], got: &[f64]) -> f64 {
    assert_eq!(reference.len(), got.len());
    let scale = reference.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let error = reference
        .iter()
        .zip(got)
        .map(|(a, b)| {
            if b.is_finite() {
                (a - b).abs()
            } else {
                f64::INFINITY
            }
        })
        .fold(0.0, f64::max);
    error / scale
}

#[test]
#[cfg_attr(
    not(feature = "ndarray"),
    ignore = "the fused kernels need the ndarray feature"
)]
fn fused_kernel_matches_the_tensor_operations_with_all_gradients() {
    // A coincident atom adds a masked zero-length edge; 14 atoms make 182
    // edges, more than one task of the kernel.
    let extra = normals(21, 17);
    let points: Vec<[f64; 3]> = POLES
        .iter()
        .copied()
        .chain([[0.0, 0.0, 1.3]])
        .chain(extra.chunks(3).map(|p| [p[0], p[1], p[2]]))
        .collect();
    let wide: (&[usize], &[usize], Option<usize>) = (&[9, 5, 3], &[7, 4, 6], None);
    for (dims_in, dims_out, m_max) in LAYERS.into_iter().chain([wide]) {
        let layer = layer::<Grad>(dims_in, dims_out, MessagePath::So2, m_max).map(&mut InF64);
        let reference = message_call(&layer, &points, false);
        let fused = message_call(&layer, &points, true);
        let error = relative_difference(&reference, &fused);
        assert!(
            error < 1e-12,
            "{dims_in:?} -> {dims_out:?}, m_max {m_max:?}: {error}"
        );
    }
}

#[test]
#[cfg_attr(
    not(feature = "ndarray"),
    ignore = "the fused kernels need the ndarray feature"
)]
fn fused_kernel_matches_the_tensor_operations_without_autodiff() {
    let points: Vec<[f64; 3]> = POLES.to_vec();
    let (dims_in, dims_out) = ([3, 2, 2, 1], [2, 3, 1]);
    let layer = layer::<F64>(&dims_in, &dims_out, MessagePath::So2, None).map(&mut InF64);
    let so2 = layer.so2.as_ref().expect("an SO(2)-path layer");
    let n = points.len();
    let coords = tensor::<F64, 3>(points.iter().flatten().copied().collect(), [1, n, 3]);
    let geometry = geometry(coords, 3);
    let [b, _, k, _] = geometry.neighbors.relative.dims();
    let edges = b * n * k;
    let inputs: Vec<Tensor<F64, 5>> = dims_in
        .iter()
        .enumerate()
        .map(|(l, &c)| {
            tensor(
                normals(edges * (2 * l + 1) * c, 3 + l as u64),
                [b, n, k, 2 * l + 1, c],
            )
        })
        .collect();
    let width = so2.radial_outputs();
    let coefficients = tensor::<F64, 2>(normals(edges * width, 2), [edges, width]);
    let frames = geometry.frames.as_ref().expect("frames");
    let mix_weights: Vec<Tensor<F64, 2>> = layer.mix.weights.iter().map(|w| w.val()).collect();
    let flatten = |out: Vec<Tensor<F64, 5>>| out.into_iter().flat_map(to_vec).collect::<Vec<f64>>();
    let fused = so2
        .fused_messages(
            &inputs,
            coefficients.clone().reshape([edges * width]),
            frames,
            &mix_weights,
            [b, n, k],
        )
        .expect("the fused kernel serves NdArray<f64>")
        .split();
    let reference = so2.generic_messages(&inputs, coefficients, frames, &mix_weights, [b, n, k]);
    let error = relative_difference(&flatten(reference), &flatten(fused));
    assert!(error < 1e-13, "{error}");
}

#[test]
fn folding_the_output_projection_into_the_mixing_changes_nothing() {
    let points: Vec<[f64; 3]> = POLES.to_vec();
    let n = points.len();
    let (dims_in, dims_out) = ([3, 2, 2], [2, 3, 1]);
    let features = normals(n * Irreps::from_channels(&dims_in).dim(), 4);
    for path in [MessagePath::So2, MessagePath::So3] {
        let layer = DepthwiseTensorProductConfig::new(dims_in.to_vec(), dims_out.to_vec(), 7)
            .with_radial_hidden(8)
            .with_message_path(Some(path))
            .with_pool(false)
            .with_self_interaction(false)
            .init::<F64>(&Default::default())
            .map(&mut InF64);
        let to_out = layer.to_out.as_ref().expect("project_out is on by default");
        let coords = tensor::<F64, 3>(points.iter().flatten().copied().collect(), [1, n, 3]);
        let geometry = geometry(coords, 2);
        let fiber = fiber::<F64>(&dims_in, &features, n);
        let folded = layer.forward(&fiber, &geometry);
        let apart = to_out.forward(layer.edge_messages(&fiber, &geometry));
        let flatten =
            |out: Vec<Tensor<F64, 5>>| out.into_iter().flat_map(to_vec).collect::<Vec<f64>>();
        let error = relative_difference(&flatten(apart), &flatten(folded));
        assert!(error < 1e-13, "{path:?}: {error}");
    }
}

/// Outputs, then the gradients of the node features, the coordinates and
/// every parameter, of one layer call for the receivers `3..7` of two graphs
/// of 9 nodes (messages from all nodes of each graph).
fn chunk_call(layer: &DepthwiseTensorProduct<Grad>, fused: bool) -> Vec<f64> {
    let layer = layer.clone().map(&mut FreshLeaves);
    with_fused_kernels(fused, || {
        let (graphs, n, (start, len)) = (2, 9, (3, 4));
        let coords = tensor::<Grad, 3>(normals(graphs * n * 3, 23), [graphs, n, 3]).require_grad();
        let geometry = geometry(coords.clone(), 2);
        let senders: Vec<Tensor<Grad, 4>> = layer
            .dims_in
            .iter()
            .enumerate()
            .map(|(l, &c)| {
                let shape = [graphs, n, 2 * l + 1, c];
                tensor(normals(shape.iter().product(), 31 + l as u64), shape).require_grad()
            })
            .collect();
        let receivers: Vec<Tensor<Grad, 4>> = senders
            .iter()
            .map(|x| x.clone().narrow(1, start, len))
            .collect();
        let out = layer.forward_to(&receivers, &senders, &geometry.narrow_nodes(start, len));
        outputs_and_gradients(&layer, out, &senders, &coords)
    })
}

#[test]
#[cfg_attr(
    not(feature = "ndarray"),
    ignore = "the fused kernels need the ndarray feature"
)]
fn gathering_kernel_matches_the_tensor_operations_on_a_chunk_of_two_graphs() {
    for project_xi_xj in [true, false] {
        for pool in [false, true] {
            let layer = DepthwiseTensorProductConfig::new(vec![3, 2, 2], vec![2, 3, 2], 7)
                .with_radial_hidden(8)
                .with_message_path(Some(MessagePath::So2))
                .with_project_xi_xj(project_xi_xj)
                .with_pool(pool)
                .init::<Grad>(&Default::default())
                .map(&mut PerturbedF64(RandomRotations::new(3)));
            let reference = chunk_call(&layer, false);
            let fused = chunk_call(&layer, true);
            let error = relative_difference(&reference, &fused);
            assert!(
                error < 1e-12,
                "project_xi_xj {project_xi_xj}, pool {pool}: {error}"
            );
        }
    }
}
