//! Property tests of the conventions: fresh random rotations and vectors.

use burn::backend::{Autodiff, NdArray};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use proptest::prelude::*;

use crate::rotation::{
    apply, compose, rotation_from_quaternion, rotation_to_z_f64, RotationMatrix,
};
use crate::{
    clebsch_gordan, rotation_to_z, spherical_harmonics, spherical_harmonics_f64, wigner_d,
    wigner_d_f64, wigner_d_from_euler, wigner_d_from_euler_f64, WignerD,
};

const L_MAX: usize = 10;

fn quaternion() -> impl Strategy<Value = [f64; 4]> {
    prop::array::uniform4(-1.0f64..1.0)
        .prop_filter("nonzero", |q| q.iter().map(|v| v * v).sum::<f64>() > 1e-3)
}

fn vector() -> impl Strategy<Value = [f64; 3]> {
    prop::array::uniform3(-2.0f64..2.0)
        .prop_filter("nonzero", |v| v.iter().map(|x| x * x).sum::<f64>() > 1e-4)
}

fn max_difference(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

/// Determinant by Gaussian elimination with partial pivoting.
fn determinant(d: &WignerD) -> f64 {
    let n = d.dim();
    let mut a = d.as_slice().to_vec();
    let mut det = 1.0;
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&i, &j| a[i * n + col].abs().total_cmp(&a[j * n + col].abs()))
            .expect("non-empty range");
        if pivot != col {
            for k in 0..n {
                a.swap(col * n + k, pivot * n + k);
            }
            det = -det;
        }
        let p = a[col * n + col];
        det *= p;
        for row in col + 1..n {
            let factor = a[row * n + col] / p;
            for k in col..n {
                a[row * n + k] -= factor * a[col * n + k];
            }
        }
    }
    det
}

fn tensor_of_rotations<B: Backend>(
    rotations: &[RotationMatrix],
    device: &B::Device,
) -> Tensor<B, 3> {
    let flat: Vec<f64> = rotations
        .iter()
        .flat_map(|r| r.iter().flatten().copied())
        .collect();
    Tensor::from_data(
        TensorData::new(flat, [rotations.len(), 3, 3]).convert::<B::FloatElem>(),
        device,
    )
}

fn tensor_of_vectors<B: Backend>(vectors: &[[f64; 3]], device: &B::Device) -> Tensor<B, 2> {
    let flat: Vec<f64> = vectors.iter().flatten().copied().collect();
    Tensor::from_data(
        TensorData::new(flat, [vectors.len(), 3]).convert::<B::FloatElem>(),
        device,
    )
}

fn to_f64<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> Vec<f64> {
    tensor
        .into_data()
        .convert::<f64>()
        .to_vec::<f64>()
        .expect("float tensor")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn spherical_harmonics_rotate_with_wigner_d(q in quaternion(), v in vector()) {
        let r = rotation_from_quaternion(q);
        let d = wigner_d_f64(L_MAX, &r);
        let rotated = spherical_harmonics_f64(L_MAX, apply(&r, v));
        let original = spherical_harmonics_f64(L_MAX, v);
        for l in 0..=L_MAX {
            let error = max_difference(&rotated[l], &d[l].apply(&original[l]));
            prop_assert!(error < 1e-10, "l = {l}: error {error}");
        }
    }

    #[test]
    fn normalization_is_component(v in vector()) {
        for (l, y) in spherical_harmonics_f64(L_MAX, v).iter().enumerate() {
            let sum: f64 = y.iter().map(|x| x * x).sum();
            prop_assert!((sum - (2 * l + 1) as f64).abs() < 1e-10, "l = {l}: {sum}");
        }
    }

    #[test]
    fn wigner_d_is_a_representation(q1 in quaternion(), q2 in quaternion()) {
        let (r1, r2) = (rotation_from_quaternion(q1), rotation_from_quaternion(q2));
        let d1 = wigner_d_f64(L_MAX, &r1);
        let d2 = wigner_d_f64(L_MAX, &r2);
        let d12 = wigner_d_f64(L_MAX, &compose(&r1, &r2));
        for l in 0..=L_MAX {
            let error = max_difference(d12[l].as_slice(), d1[l].matmul(&d2[l]).as_slice());
            prop_assert!(error < 1e-10, "l = {l}: error {error}");
        }
    }

    #[test]
    fn wigner_d_is_orthogonal_with_unit_determinant(q in quaternion()) {
        let d = wigner_d_f64(L_MAX, &rotation_from_quaternion(q));
        for (l, matrix) in d.iter().enumerate() {
            let product = matrix.matmul(&matrix.transpose());
            let n = matrix.dim();
            for i in 0..n {
                for j in 0..n {
                    let expected = if i == j { 1.0 } else { 0.0 };
                    prop_assert!((product.get(i, j) - expected).abs() < 1e-10, "l = {l}");
                }
            }
            prop_assert!((determinant(matrix) - 1.0).abs() < 1e-10, "l = {l}");
        }
    }

    #[test]
    fn degree_one_is_the_permuted_rotation(q in quaternion()) {
        let r = rotation_from_quaternion(q);
        let d = wigner_d_f64(1, &r);
        let p = [1, 2, 0];
        for i in 0..3 {
            for j in 0..3 {
                prop_assert!((d[1].get(i, j) - r[p[i]][p[j]]).abs() < 1e-15);
            }
        }
    }

    #[test]
    fn clebsch_gordan_intertwines(q in quaternion(), l1 in 0usize..=8, l2 in 0usize..=8, pick in 0usize..17) {
        let l3 = l1.abs_diff(l2) + pick % (l1 + l2 - l1.abs_diff(l2) + 1);
        let c = clebsch_gordan(l1, l2, l3).unwrap();
        let d = wigner_d_f64(l1.max(l2).max(l3), &rotation_from_quaternion(q));
        let [n3, n1, n2] = c.shape();
        // D_l3 C versus C (D_l1 ⊗ D_l2), entry by entry.
        let mut error = 0.0f64;
        for a in 0..n3 {
            for b in 0..n1 {
                for e in 0..n2 {
                    let left: f64 = (0..n3).map(|k| d[l3].get(a, k) * c.get(k, b, e)).sum();
                    let mut right = 0.0;
                    for i in 0..n1 {
                        for j in 0..n2 {
                            right += c.get(a, i, j) * d[l1].get(i, b) * d[l2].get(j, e);
                        }
                    }
                    error = error.max((left - right).abs());
                }
            }
        }
        prop_assert!(error < 1e-10, "({l1}, {l2}, {l3}): error {error}");
    }

    #[test]
    fn tensor_paths_match_the_f64_reference(q in quaternion(), v in vector()) {
        let r = rotation_from_quaternion(q);
        let reference_y = spherical_harmonics_f64(8, v);
        let reference_d = wigner_d_f64(8, &r);
        check_tensor_paths::<NdArray<f64>>(&r, v, &reference_y, &reference_d, 1e-10);
        check_tensor_paths::<NdArray<f32>>(&r, v, &reference_y, &reference_d, 1e-5);
    }

    #[test]
    fn rotation_to_z_maps_vectors_onto_z(v in vector()) {
        let device = Default::default();
        let r = rotation_to_z::<NdArray<f64>>(tensor_of_vectors(&[v], &device)).unwrap();
        let r = to_f64(r);
        let reference = rotation_to_z_f64(v);
        prop_assert!(max_difference(&r, &reference.iter().flatten().copied().collect::<Vec<_>>()) < 1e-12);
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        let z = apply(&reference, v.map(|x| x / norm));
        prop_assert!(z[0].abs() < 1e-12 && z[1].abs() < 1e-12 && (z[2] - 1.0).abs() < 1e-12);
    }
}

fn check_tensor_paths<B: Backend>(
    r: &RotationMatrix,
    v: [f64; 3],
    reference_y: &[Vec<f64>],
    reference_d: &[WignerD],
    tolerance: f64,
) {
    let device = Default::default();
    let y = spherical_harmonics::<B, 2>(8, tensor_of_vectors(&[v], &device)).unwrap();
    let d = wigner_d::<B>(8, tensor_of_rotations(&[*r], &device)).unwrap();
    for l in 0..=8 {
        let scale = (2 * l + 1) as f64;
        let error_y = max_difference(&to_f64(y[l].clone()), &reference_y[l]) / scale.sqrt();
        assert!(error_y < tolerance, "Y_{l}: {error_y}");
        let error_d = max_difference(&to_f64(d[l].clone()), reference_d[l].as_slice());
        assert!(error_d < tolerance, "D_{l}: {error_d}");
    }
}

#[test]
fn every_clebsch_gordan_table_up_to_eight_is_orthonormal() {
    for l1 in 0usize..=8 {
        for l2 in 0..=8 {
            for l3 in l1.abs_diff(l2)..=l1 + l2 {
                let c = clebsch_gordan(l1, l2, l3).unwrap();
                let [n3, n1, n2] = c.shape();
                let row = |a: usize| &c.values()[a * n1 * n2..(a + 1) * n1 * n2];
                for a in 0..n3 {
                    for b in 0..n3 {
                        let dot: f64 = row(a).iter().zip(row(b)).map(|(x, y)| x * y).sum();
                        let expected = if a == b { 1.0 } else { 0.0 };
                        assert!(
                            (dot - expected).abs() < 1e-12,
                            "({l1},{l2},{l3}) rows {a},{b}: {dot}"
                        );
                    }
                }
            }
        }
    }
}

/// Independent check of the real basis: coupling two vectors (y, z, x) gives
/// the dot product for l3 = 0 and the cross product for l3 = 1, up to sign.
#[test]
fn vector_couplings_are_dot_and_cross_products() {
    let u = [0.3, -1.2, 0.5];
    let v = [0.7, 0.1, -0.4];
    let perm = |w: [f64; 3]| [w[1], w[2], w[0]];
    let couple = |l3: usize| -> Vec<f64> {
        let c = clebsch_gordan(1, 1, l3).unwrap();
        let (pu, pv) = (perm(u), perm(v));
        (0..2 * l3 + 1)
            .map(|a| {
                (0..3)
                    .flat_map(|i| (0..3).map(move |j| (i, j)))
                    .map(|(i, j)| c.get(a, i, j) * pu[i] * pv[j])
                    .sum()
            })
            .collect()
    };
    let dot = u[0] * v[0] + u[1] * v[1] + u[2] * v[2];
    assert!((couple(0)[0].abs() - dot.abs() / 3f64.sqrt()).abs() < 1e-14);
    let cross = [
        u[1] * v[2] - u[2] * v[1],
        u[2] * v[0] - u[0] * v[2],
        u[0] * v[1] - u[1] * v[0],
    ];
    let expected = perm(cross).map(|x| x / 2f64.sqrt());
    let got = couple(1);
    let sign = if got[0] * expected[0] < 0.0 {
        -1.0
    } else {
        1.0
    };
    for k in 0..3 {
        assert!((got[k] - sign * expected[k]).abs() < 1e-14);
    }
}

#[test]
fn euler_paths_agree() {
    let device = Default::default();
    let angles = [
        (0.3, 1.1, -2.0),
        (0.0, 0.0, 0.0),
        (2.5, std::f64::consts::PI, 0.4),
    ];
    let as_tensor = |k: usize| {
        let values: Vec<f64> = angles.iter().map(|a| [a.0, a.1, a.2][k]).collect();
        Tensor::<NdArray<f64>, 1>::from_data(TensorData::new(values, [angles.len()]), &device)
    };
    let d = wigner_d_from_euler(6, as_tensor(0), as_tensor(1), as_tensor(2)).unwrap();
    for (e, (alpha, beta, gamma)) in angles.iter().enumerate() {
        let reference = wigner_d_from_euler_f64(6, *alpha, *beta, *gamma);
        for l in 0..=6 {
            let got = to_f64(d[l].clone().narrow(0, e, 1));
            assert!(max_difference(&got, reference[l].as_slice()) < 1e-12);
        }
    }
}

#[test]
fn rotation_about_z_is_cos_sin_of_m_times_the_angle() {
    let angle = 0.37;
    let d = wigner_d_from_euler_f64(4, angle, 0.0, 0.0);
    let l = 4usize;
    for m in 1..=l as i64 {
        let (i_pos, i_neg) = ((l as i64 + m) as usize, (l as i64 - m) as usize);
        let (s, c) = (m as f64 * angle).sin_cos();
        assert!((d[l].get(i_pos, i_pos) - c).abs() < 1e-14);
        assert!((d[l].get(i_pos, i_neg) + s).abs() < 1e-14);
        assert!((d[l].get(i_neg, i_pos) - s).abs() < 1e-14);
    }
}

type Grad = Autodiff<NdArray<f64>>;

/// Central finite differences of `sum(weights * f(x))` against autodiff.
fn check_gradient(f: impl Fn(Tensor<Grad, 2>) -> Tensor<Grad, 1>, x: Vec<f64>, shape: [usize; 2]) {
    let device = Default::default();
    let input =
        Tensor::<Grad, 2>::from_data(TensorData::new(x.clone(), shape), &device).require_grad();
    let output = f(input.clone());
    let grads = output.sum().backward();
    let analytic = to_f64(input.grad(&grads).expect("input requires grad"));
    let h = 1e-6;
    for k in 0..x.len() {
        let eval = |delta: f64| {
            let mut shifted = x.clone();
            shifted[k] += delta;
            let t = Tensor::<Grad, 2>::from_data(TensorData::new(shifted, shape), &device);
            to_f64(f(t).sum())[0]
        };
        let numeric = (eval(h) - eval(-h)) / (2.0 * h);
        assert!(
            (numeric - analytic[k]).abs() < 1e-6 * (1.0 + numeric.abs()),
            "component {k}: {numeric} vs {}",
            analytic[k]
        );
    }
}

#[test]
fn spherical_harmonics_gradient_matches_finite_differences() {
    let weights: Vec<f64> = (0..(7 * 7))
        .map(|k| ((k * 37 % 11) as f64 - 5.0) / 7.0)
        .collect();
    let f = move |v: Tensor<Grad, 2>| {
        let device = v.device();
        let y = Tensor::cat(spherical_harmonics(6, v).unwrap(), 1); // [E, 49]
        let w = Tensor::<Grad, 2>::from_data(TensorData::new(weights.clone(), [1, 49]), &device);
        (y * w).sum_dim(1).squeeze_dim::<1>(1)
    };
    check_gradient(f, vec![0.3, -0.8, 0.4, 1.5, 0.2, -0.1], [2, 3]);
}

#[test]
fn wigner_d_gradient_matches_finite_differences() {
    let f = |angles: Tensor<Grad, 2>| {
        let alpha = angles.clone().narrow(1, 0, 1).squeeze_dim::<1>(1);
        let beta = angles.clone().narrow(1, 1, 1).squeeze_dim::<1>(1);
        let gamma = angles.narrow(1, 2, 1).squeeze_dim::<1>(1);
        let d = wigner_d_from_euler(4, alpha, beta, gamma).unwrap();
        let device = d[4].device();
        let w = Tensor::<Grad, 1>::from_data(
            TensorData::new(
                (0..81).map(|k| (k % 7) as f64 - 3.0).collect::<Vec<f64>>(),
                [81],
            ),
            &device,
        );
        let [e, _, _] = d[4].dims();
        (d[4].clone().reshape([e, 81]) * w.unsqueeze::<2>())
            .sum_dim(1)
            .squeeze_dim::<1>(1)
            + d[3].clone().sum_dim(2).sum_dim(1).reshape([e])
    };
    check_gradient(f, vec![0.4, 1.0, -0.3, 2.0, 0.2, 1.1], [2, 3]);
}

#[test]
fn zero_vectors_have_finite_values_and_gradients() {
    let device = Default::default();
    let v = Tensor::<Grad, 2>::zeros([1, 3], &device).require_grad();
    let y = spherical_harmonics(4, v.clone()).unwrap();
    assert_eq!(to_f64(y[0].clone()), vec![1.0]);
    assert!(to_f64(y[3].clone()).iter().all(|x| *x == 0.0));
    let r = rotation_to_z(v.clone()).unwrap();
    let loss = Tensor::cat(y, 1).sum() + r.sum();
    let grads = loss.backward();
    assert!(to_f64(v.grad(&grads).unwrap())
        .iter()
        .all(|g| g.is_finite()));
}

#[test]
fn rotation_to_z_gradients_are_finite_at_the_poles() {
    let device = Default::default();
    for v in [
        [0.0, 0.0, 1.0],
        [0.0, 0.0, -1.0],
        [1e-9, 0.0, -1.0],
        [0.0, 1e-12, 1.0],
    ] {
        let t = tensor_of_vectors::<Grad>(&[v], &device).require_grad();
        let r = rotation_to_z(t.clone()).unwrap();
        let d = wigner_d(4, r).unwrap();
        let grads = d[4].clone().sum().backward();
        assert!(
            to_f64(t.grad(&grads).unwrap())
                .iter()
                .all(|g| g.is_finite()),
            "{v:?}"
        );
    }
}
