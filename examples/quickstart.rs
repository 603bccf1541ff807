//! The reference README's usage example: 128 tokens with coordinates and a mask,
//! a depth-4 Equiformer with degrees 0..2, reduced to one scalar and one vector
//! per node. Prints the output shapes and the measured equivariance error.
//!
//! Run with `cargo run --example quickstart`.

use burn::backend::NdArray;
use burn::tensor::{Bool, Distribution, Int, Tensor, TensorData};
use equiformer::nn::{AttentionKind, EquiformerConfig, EquiformerInput};
use equiformer::so3::rotation::{apply, RandomRotations};

type Backend = NdArray<f32>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = Default::default();
    let model = EquiformerConfig::new(vec![4, 4, 2])
        .with_num_tokens(Some(24))
        .with_dim_head(vec![4, 4, 4])
        .with_heads(vec![2, 2, 2])
        .with_num_degrees(3)
        .with_depth(4)
        .with_attend_self(true)
        .with_reduce_dim_out(true)
        .with_attention(AttentionKind::Mlp)
        .init::<Backend>(&device)?;

    let n = 128;
    let tokens =
        Tensor::<Backend, 2, Int>::random([1, n], Distribution::Uniform(0.0, 24.0), &device);
    let coords = Tensor::<Backend, 3>::random([1, n, 3], Distribution::Normal(0.0, 1.0), &device);
    let mask = Tensor::<Backend, 2, Bool>::full([1, n], true, &device);

    let start = std::time::Instant::now();
    let out = model
        .forward(EquiformerInput::tokens(tokens.clone(), coords.clone()).with_mask(mask.clone()))?;
    let elapsed = start.elapsed();
    let (type0, type1) = out
        .reduced()
        .ok_or("reduce_dim_out gives one channel per degree")?;
    let type1 = type1.ok_or("num_degrees = 3 has a degree-1 output")?;
    println!("type0: {:?} (one scalar per node)", type0.dims());
    println!("type1: {:?} (one Cartesian vector per node)", type1.dims());
    println!("forward pass: {:.1} ms", elapsed.as_secs_f64() * 1e3);

    // Rotate and translate the input: scalars must not change, vectors must rotate.
    let rotation = RandomRotations::new(42).next_rotation();
    let translation = [1.0, -2.0, 0.5];
    let points: Vec<f32> = coords.into_data().to_vec()?;
    let moved: Vec<f32> = points
        .chunks(3)
        .flat_map(|p| {
            let r = apply(&rotation, [p[0] as f64, p[1] as f64, p[2] as f64]);
            [0, 1, 2].map(|k| (r[k] + translation[k]) as f32)
        })
        .collect();
    let moved = Tensor::<Backend, 3>::from_data(TensorData::new(moved, [1, n, 3]), &device);
    let out_moved = model.forward(EquiformerInput::tokens(tokens, moved).with_mask(mask))?;
    let (type0_moved, type1_moved) = out_moved.reduced().ok_or("one channel per degree")?;
    let type1_moved: Vec<f32> = type1_moved.ok_or("degree-1 output")?.into_data().to_vec()?;
    let type0_error = (type0_moved - type0.clone()).abs().max().into_scalar();
    let vectors: Vec<f32> = type1.into_data().to_vec()?;
    let type1_error = vectors
        .chunks(3)
        .zip(type1_moved.chunks(3))
        .map(|(v, w)| {
            let rotated = apply(&rotation, [v[0] as f64, v[1] as f64, v[2] as f64]);
            (0..3)
                .map(|k| (rotated[k] - w[k] as f64).abs())
                .fold(0.0, f64::max)
        })
        .fold(0.0, f64::max);
    let scale = vectors.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    println!("equivariance error (f32): type0 {type0_error:.2e}, type1 {type1_error:.2e} (max |type1| {scale:.2e})");
    Ok(())
}
