//! Cost of single tensor ops at the shapes the model runs them on, per
//! backend, forward and forward+backward: which formulation of a layer is
//! cheap on which backend. `E` is the edge count of the case (`N (N - 1)`
//! for `full`, `32 N` for `knn32`).

use burn::backend::Autodiff;
use burn::tensor::activation::{sigmoid, silu};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Int, Tensor};

use crate::breakdown::{timed_with, Cost};
use crate::child::median;
use crate::options::Options;

type Op<B> = Box<dyn Fn(&[Tensor<B, 3>]) -> Tensor<B, 3>>;

/// One op: name, input shapes, and the op on those inputs.
struct Case<B: Backend> {
    name: String,
    shapes: Vec<[usize; 3]>,
    op: Op<B>,
    /// The first input is a constant (no gradient), like the edge frames.
    constant_first: bool,
}

fn case<B: Backend>(
    name: &str,
    shapes: &[[usize; 3]],
    op: impl Fn(&[Tensor<B, 3>]) -> Tensor<B, 3> + 'static,
) -> Case<B> {
    Case {
        name: name.to_string(),
        shapes: shapes.to_vec(),
        op: Box::new(op),
        constant_first: false,
    }
}

/// The same case with its first input a constant.
fn constant_first<B: Backend>(mut case: Case<B>) -> Case<B> {
    case.name.push_str(" (1st const)");
    case.constant_first = true;
    case
}

/// The ops, as the model uses them on `e` edges.
fn cases<B: Backend>(e: usize) -> Vec<Case<B>> {
    let w = 64;
    let t = |x: &[Tensor<B, 3>], i: usize| x[i].clone();
    vec![
        case("mul [E,64]*[E,64]", &[[1, e, w], [1, e, w]], move |x| {
            t(x, 0) * t(x, 1)
        }),
        case("mul [E,64]*[E,1]", &[[1, e, w], [1, e, 1]], move |x| {
            t(x, 0) * t(x, 1)
        }),
        case("mul [E,64]*[1,64]", &[[1, e, w], [1, 1, w]], move |x| {
            t(x, 0) * t(x, 1)
        }),
        case(
            "matmul [E,1]x[1,64] then mul",
            &[[1, e, w], [1, e, 1], [1, 1, w]],
            move |x| t(x, 0) * t(x, 1).matmul(t(x, 2).ones_like()),
        ),
        case("sum_dim last [E,64]", &[[1, e, w]], move |x| {
            t(x, 0).sum_dim(2)
        }),
        case("matmul [E,64]x[64,1]", &[[1, e, w], [1, w, 1]], move |x| {
            t(x, 0).matmul(t(x, 1))
        }),
        case("matmul [E,64]x[64,64]", &[[1, e, w], [1, w, w]], move |x| {
            t(x, 0).matmul(t(x, 1))
        }),
        case(
            "matmul [E,17]x[17,64]",
            &[[1, e, 17], [1, 17, w]],
            move |x| t(x, 0).matmul(t(x, 1)),
        ),
        case("exp [E,64]", &[[1, e, w]], move |x| t(x, 0).exp()),
        case("sigmoid [E,64]", &[[1, e, w]], move |x| sigmoid(t(x, 0))),
        case("silu [E,64]", &[[1, e, w]], move |x| silu(t(x, 0))),
        case("x/(1+exp(-x)) [E,64]", &[[1, e, w]], move |x| {
            t(x, 0) / (t(x, 0).neg().exp() + 1.0)
        }),
        case("x*recip(exp(-x)+1) [E,64]", &[[1, e, w]], move |x| {
            t(x, 0) * (t(x, 0).neg().exp() + 1.0).recip()
        }),
        case("x*(tanh(x/2)/2+1/2) [E,64]", &[[1, e, w]], move |x| {
            t(x, 0) * ((t(x, 0) * 0.5).tanh() * 0.5 + 0.5)
        }),
        case("layer_norm, mul by recip(sqrt)", &[[1, e, w]], move |x| {
            let x = t(x, 0);
            let mean = x.clone().mean_dim(2);
            let c = x - mean;
            let var = c.clone().square().mean_dim(2);
            c * (var + 1e-5).sqrt().recip()
        }),
        case("layer_norm [E,64] (decomposed)", &[[1, e, w]], move |x| {
            let x = t(x, 0);
            let mean = x.clone().mean_dim(2);
            let c = x - mean;
            let var = c.clone().square().mean_dim(2);
            c / (var + 1e-5).sqrt()
        }),
        constant_first(case(
            "bmm [E,3,3]x[E,3,4]",
            &[[e, 3, 3], [e, 3, 4]],
            move |x| t(x, 0).matmul(t(x, 1)),
        )),
        constant_first(case(
            "bmm [E,5,5]x[E,5,2]",
            &[[e, 5, 5], [e, 5, 2]],
            move |x| t(x, 0).matmul(t(x, 1)),
        )),
        constant_first(case(
            "bmm [E,5,5]x[E,5,16]",
            &[[e, 5, 5], [e, 5, 16]],
            move |x| t(x, 0).matmul(t(x, 1)),
        )),
        case("bmm [E,9,9]x[E,9,10]", &[[e, 9, 9], [e, 9, 10]], move |x| {
            t(x, 0).matmul(t(x, 1))
        }),
        case(
            "bcast-sum [E,3,3,1]*[E,1,3,4]",
            &[[e, 3, 3], [e, 3, 4]],
            move |x| {
                let [_, r, c] = x[1].dims();
                (t(x, 0).unsqueeze_dim::<4>(3) * t(x, 1).reshape([e, 1, r, c]))
                    .sum_dim(2)
                    .reshape([e, r, c])
            },
        ),
        case(
            "mul [E,5,10]*[E,1,10]",
            &[[e, 5, 10], [e, 1, 10]],
            move |x| t(x, 0) * t(x, 1),
        ),
        case(
            "mul [E,5,10]*[E,5,10]",
            &[[e, 5, 10], [e, 5, 10]],
            move |x| t(x, 0) * t(x, 1),
        ),
        case(
            "cat axis 1 of 2x[E,3,4]",
            &[[e, 3, 4], [e, 3, 4]],
            move |x| Tensor::cat(vec![t(x, 0), t(x, 1)], 1),
        ),
        case(
            "cat axis 2 of 2x[E,5,4]",
            &[[e, 5, 4], [e, 5, 4]],
            move |x| Tensor::cat(vec![t(x, 0), t(x, 1)], 2),
        ),
        case("narrow last [E,64]->16 + reshape", &[[1, e, w]], move |x| {
            t(x, 0).narrow(2, 8, 16).reshape([e, 4, 4])
        }),
        case(
            "swap_dims(1,2) [E,5,16] + reshape",
            &[[e, 5, 16]],
            move |x| t(x, 0).swap_dims(1, 2).reshape([e, 16, 5]),
        ),
        case(
            "select rows [N,80] -> [E,80]",
            &[[1, e / 64 + 1, 80]],
            move |x| {
                let n = x[0].dims()[1];
                let index = Tensor::<B, 1, Int>::arange(0..e as i64, &x[0].device())
                    .remainder_scalar(n as i64);
                t(x, 0)
                    .reshape([n, 80])
                    .select(0, index)
                    .reshape([1, e, 80])
            },
        ),
        case("select axis 1 [E,50] -> [E,86]", &[[1, e, 50]], move |x| {
            let index = Tensor::<B, 1, Int>::arange(0..86, &x[0].device()).remainder_scalar(50);
            t(x, 0).select(2, index)
        }),
        case("mul [E,86]*[E,86]", &[[1, e, 86], [1, e, 86]], move |x| {
            t(x, 0) * t(x, 1)
        }),
        case(
            "matmul [E,86]x[86,112]",
            &[[1, e, 86], [1, 86, 112]],
            move |x| t(x, 0).matmul(t(x, 1)),
        ),
        case(
            "matmul [E,10]x[10,48]",
            &[[1, e, 10], [1, 10, 48]],
            move |x| t(x, 0).matmul(t(x, 1)),
        ),
        case(
            "matmul [2E,6]x[6,8]",
            &[[1, 2 * e, 6], [1, 6, 8]],
            move |x| t(x, 0).matmul(t(x, 1)),
        ),
        case(
            "matmul [E,30]x[30,64]",
            &[[1, e, 30], [1, 30, 64]],
            move |x| t(x, 0).matmul(t(x, 1)),
        ),
        case(
            "mul [3,E,10]*[1,E,10] (leading)",
            &[[3, e, 10], [1, e, 10]],
            move |x| t(x, 0) * t(x, 1),
        ),
        case(
            "mul [E,30]*[1,30] then matmul",
            &[[1, e, 30], [1, 1, 30], [1, 30, 64]],
            move |x| (t(x, 0) * t(x, 1)).matmul(t(x, 2)),
        ),
        case("add [E,64]+[E,64]", &[[1, e, w], [1, e, w]], move |x| {
            t(x, 0) + t(x, 1)
        }),
        case(
            "linear-like [E,64]x[64,58]+[1,58]",
            &[[1, e, w], [1, w, 58], [1, 1, 58]],
            move |x| t(x, 0).matmul(t(x, 1)) + t(x, 2),
        ),
        case(
            "repeat_dim [E,1,10]x5 then mul [E,5,10]",
            &[[e, 5, 10], [e, 1, 10]],
            move |x| t(x, 0) * t(x, 1).repeat_dim(1, 5),
        ),
        case(
            "repeat_dim [N,1,40]x127 then add",
            &[[e / 127, 127, 40], [e / 127, 1, 40]],
            move |x| t(x, 0) + t(x, 1).repeat_dim(1, 127),
        ),
        case(
            "expand [E,1,10]->[E,5,10] + reshape, mul",
            &[[e, 5, 10], [e, 1, 10]],
            move |x| {
                t(x, 0)
                    * t(x, 1)
                        .expand([e, 5, 10])
                        .reshape([e, 50])
                        .reshape([e, 5, 10])
            },
        ),
        case("repeat_dim last [E,25,1]x4", &[[e, 25, 1]], move |x| {
            t(x, 0).repeat_dim(2, 4)
        }),
        case(
            "expand last [E,25,1]->[E,25,4] + reshape",
            &[[e, 25, 1]],
            move |x| {
                t(x, 0)
                    .expand([e, 25, 4])
                    .reshape([e, 100])
                    .reshape([e, 25, 4])
            },
        ),
        case(
            "matmul [E*25,1]x[1,4] (repeat last)",
            &[[1, e * 25, 1], [1, 1, 4]],
            move |x| t(x, 0).matmul(t(x, 1).ones_like()),
        ),
        case(
            "add [N,127,40]+[N,1,40]",
            &[[e / 127, 127, 40], [e / 127, 1, 40]],
            move |x| t(x, 0) + t(x, 1),
        ),
        case("sum_dim axis 1 [E,5,10]", &[[e, 5, 10]], move |x| {
            t(x, 0).sum_dim(1)
        }),
        case(
            "stack 2x[E,3,10] axis 2",
            &[[e, 3, 10], [e, 3, 10]],
            move |x| Tensor::stack::<4>(vec![t(x, 0), t(x, 1)], 2).reshape([e, 6, 10]),
        ),
        rotation_by_sums::<B>(e, 3, 4),
        rotation_by_sums::<B>(e, 5, 2),
        rotation_by_sums::<B>(e, 5, 16),
        rotation_by_sums::<B>(e, 3, 8),
        rotation_by_sums::<B>(e, 3, 16),
        rotation_by_sums::<B>(e, 5, 4),
        rotation_by_sums::<B>(e, 5, 8),
        constant_first(case(
            "bmm [E,3,3]x[E,3,8]",
            &[[e, 3, 3], [e, 3, 8]],
            move |x| t(x, 0).matmul(t(x, 1)),
        )),
        constant_first(case(
            "bmm [E,3,3]x[E,3,16]",
            &[[e, 3, 3], [e, 3, 16]],
            move |x| t(x, 0).matmul(t(x, 1)),
        )),
        constant_first(case(
            "bmm [E,5,5]x[E,5,4]",
            &[[e, 5, 5], [e, 5, 4]],
            move |x| t(x, 0).matmul(t(x, 1)),
        )),
        constant_first(case(
            "bmm [E,5,5]x[E,5,8]",
            &[[e, 5, 5], [e, 5, 8]],
            move |x| t(x, 0).matmul(t(x, 1)),
        )),
        case("softmax axis 1 [E/K,K,2]", &[[e / 128, 128, 2]], move |x| {
            burn::tensor::activation::softmax(t(x, 0), 1)
        }),
    ]
}

/// `y = D x` per edge without a batched product: `x` repeated over the output
/// rows, times `D` repeated over the channels (given, as a per-forward
/// constant would be), summed over `j` by a product with a 0/1 matrix.
fn rotation_by_sums<B: Backend>(e: usize, rows: usize, channels: usize) -> Case<B> {
    let name = format!("rotate by sums [E,{rows},{rows}]x[E,{rows},{channels}]");
    constant_first(case(
        &name,
        &[[e, rows, rows * channels], [e, rows, channels]],
        move |x| {
            let device = x[0].device();
            let sums = Tensor::<B, 2>::eye(channels, &device)
                .unsqueeze_dim::<3>(0)
                .repeat_dim(0, rows)
                .reshape([rows * channels, channels]);
            let repeated = x[1]
                .clone()
                .reshape([e, 1, rows * channels])
                .repeat_dim(1, rows);
            (repeated * x[0].clone())
                .reshape([e * rows, rows * channels])
                .matmul(sums)
                .reshape([e, rows, channels])
        },
    ))
}

/// `--ops`: the cost of each op at the edge count of every case of the grid.
pub(crate) fn ops_main(options: &Options) {
    for backend in &options.backends {
        for neighbors in &options.neighbors {
            for &n in &options.ns {
                let e = match neighbors.as_str() {
                    "knn32" => 32 * n,
                    _ => n * (n - 1),
                };
                match backend.as_str() {
                    #[cfg(feature = "ndarray")]
                    "ndarray" => run_ops::<burn::backend::NdArray<f32>>(options, backend, e),
                    #[cfg(feature = "flex")]
                    "flex" => run_ops::<burn::backend::Flex>(options, backend, e),
                    other => crate::options::fail(&format!("backend {other:?} is not compiled in")),
                }
            }
        }
    }
}

fn run_ops<B: Backend>(options: &Options, backend: &str, e: usize) {
    let device = B::Device::default();
    let inference = cases::<B>(e);
    let training = cases::<Autodiff<B>>(e);
    println!(
        "\n{backend}, E = {e}: medians of {} repetitions, ms (CPU time of all threads)",
        options.reps
    );
    println!("{:<36} | {:>8} | {:>8} | {:>8}", "op", "fwd", "f+b", "bwd");
    for (plain, tracked) in inference.iter().zip(&training) {
        let inputs: Vec<Tensor<B, 3>> = plain
            .shapes
            .iter()
            .map(|&s| Tensor::random(s, Distribution::Normal(0.0, 1.0), &device))
            .collect();
        let mut fwd = Vec::new();
        let mut both = Vec::new();
        for _ in 0..options.reps.max(1) + 1 {
            fwd.push(timed_with::<B>(|| (plain.op)(&inputs).sum()));
            let tracked_inputs: Vec<Tensor<Autodiff<B>, 3>> = inputs
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let t = Tensor::from_inner(t.clone());
                    if i == 0 && tracked.constant_first {
                        t
                    } else {
                        t.require_grad()
                    }
                })
                .collect();
            both.push(timed_with::<B>(|| {
                let grads = (tracked.op)(&tracked_inputs).sum().backward();
                drop(grads);
                Tensor::<B, 1>::zeros([1], &device)
            }));
        }
        let cpu = |costs: &[Cost]| 1e3 * median(costs[1..].iter().map(|c| c.cpu).collect());
        let (f, b) = (cpu(&fwd), cpu(&both));
        println!("{:<36} | {f:>8.3} | {b:>8.3} | {:>8.3}", plain.name, b - f);
    }
}
