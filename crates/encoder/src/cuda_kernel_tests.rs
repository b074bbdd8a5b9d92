//! natview's CUDA kernels, run on the CPU through [`cuda_emulator`](super::cuda_emulator)
//! with the grid and block a GPU gets, against independent CPU results: candle's own
//! convolution (forward, and its gradients by autograd) and natview's CPU batch-norm kernels.
#![allow(clippy::expect_used)]

use super::batch_norm_cpu::{self, Activation, Dims, Saved};
use super::cuda_emulator::{run, Arg};
use super::cuda_source::{
    CudaConvGeometry, Grid, BN_GRAD_INPUT, BN_GRAD_SUMS, BN_NORMALISE, BN_STATISTICS, CONV_FORWARD,
    CONV_GRAD_INPUT, CONV_GRAD_KERNEL,
};
use super::test_support::uniform;
use candle_core::{Device, Tensor, Var};

/// The largest absolute difference, relative to the reference's largest magnitude (at least 1).
fn relative_gap(ours: &[f32], reference: &[f32]) -> f32 {
    assert_eq!(ours.len(), reference.len());
    let scale = reference.iter().fold(1f32, |m, v| m.max(v.abs()));
    let gap = ours
        .iter()
        .zip(reference)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    gap / scale
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all()
        .and_then(|t| t.to_vec1::<f32>())
        .expect("values")
}

/// A convolution of `g`'s shape (bottom and right padding as SAME or symmetric padding
/// leaves them), by candle on the CPU: the output and the gradients of `Σ y·r` for input and
/// weights, with `r` the given output gradient.
fn candle_reference(g: &CudaConvGeometry, x: &[f32], w: &[f32], r: &[f32]) -> [Vec<f32>; 3] {
    let device = Device::Cpu;
    let x = Var::from_tensor(&Tensor::from_slice(x, (g.n, g.c_in, g.h, g.w), &device).expect("x"))
        .expect("var");
    let w = Var::from_tensor(
        &Tensor::from_slice(w, (g.c_out, g.c_in / g.groups, g.k, g.k), &device).expect("w"),
    )
    .expect("var");
    let bottom = (g.h_out - 1) * g.stride + g.k - g.h - g.pad_top;
    let right = (g.w_out - 1) * g.stride + g.k - g.w - g.pad_left;
    let y = x
        .as_tensor()
        .pad_with_zeros(2, g.pad_top, bottom)
        .and_then(|t| t.pad_with_zeros(3, g.pad_left, right))
        .and_then(|t| t.conv2d(w.as_tensor(), 0, g.stride, 1, g.groups))
        .expect("candle conv");
    let r = Tensor::from_slice(r, y.shape(), &device).expect("r");
    let grads = (&y * &r)
        .and_then(|l| l.sum_all())
        .and_then(|l| l.backward())
        .expect("backward");
    let grad = |v: &Var| values(grads.get(v.as_tensor()).expect("gradient"));
    [values(&y), grad(&x), grad(&w)]
}

/// Depthwise (stride 1 and 2, symmetric and TF-"SAME" padding) and grouped convolutions: the
/// three conv kernels agree with candle.
#[test]
fn conv_kernels_match_candle() {
    let shape = |n, c_in, h, c_out, k, stride, pad_top, h_out, groups| CudaConvGeometry {
        n,
        c_in,
        h,
        w: h,
        c_out,
        k,
        stride,
        pad_top,
        pad_left: pad_top,
        h_out,
        w_out: h_out,
        groups,
    };
    for (i, g) in [
        shape(2, 8, 9, 8, 3, 1, 1, 9, 8),
        // SAME, k 5, stride 2 on 10: one row above, two below.
        shape(2, 6, 10, 6, 5, 2, 1, 5, 6),
        shape(2, 8, 7, 12, 3, 2, 1, 4, 4),
    ]
    .iter()
    .enumerate()
    {
        let seed = i as u64 * 10;
        let x = uniform(g.n * g.c_in * g.h * g.w, seed);
        let w = uniform(g.c_out * (g.c_in / g.groups) * g.k * g.k, seed + 1);
        let r = uniform(g.n * g.c_out * g.h_out * g.w_out, seed + 2);
        let [y, dx, dw] = candle_reference(g, &x, &w, &r);
        let dims = g.arguments().map(Arg::Int);
        let launch = |kernel, grid, a: &[f32], b: &[f32], out: usize| {
            let mut args = vec![Arg::In(a), Arg::In(b), Arg::Out(out)];
            args.extend(dims);
            run(kernel, grid, &args).expect("emulated kernel").remove(0)
        };
        let ours = launch(CONV_FORWARD, Grid::PerElement(y.len()), &x, &w, y.len());
        assert!(relative_gap(&ours, &y) < 1e-5, "forward {g:?}");
        let ours = launch(
            CONV_GRAD_INPUT,
            Grid::PerElement(dx.len()),
            &r,
            &w,
            dx.len(),
        );
        assert!(relative_gap(&ours, &dx) < 1e-5, "input gradient {g:?}");
        let ours = launch(CONV_GRAD_KERNEL, Grid::PerItem(dw.len()), &x, &r, dw.len());
        assert!(relative_gap(&ours, &dw) < 1e-5, "kernel gradient {g:?}");
    }
}

/// `args`, then the shape arguments `n, c, hw` of `d`, then `tail`.
fn shaped<'a>(d: Dims, mut args: Vec<Arg<'a>>, tail: &[Arg<'a>]) -> Vec<Arg<'a>> {
    args.extend([d.n, d.c, d.hw].map(Arg::Int));
    args.extend_from_slice(tail);
    args
}

/// The batch-norm kernels agree with natview's CPU kernels: statistics over more values per
/// channel than a block has threads, the normalisation with each activation, and the
/// gradients through the batch statistics.
#[test]
fn batch_norm_kernels_match_the_cpu_kernels() {
    let d = Dims {
        n: 3,
        c: 5,
        hw: 111,
    };
    let len = d.n * d.c * d.hw;
    let x: Vec<f32> = uniform(len, 7).iter().map(|v| v * 3.0 + 1.5).collect();
    let dy = uniform(len, 8);
    let gamma: Vec<f32> = (0..d.c).map(|c| 0.5 + c as f32 * 0.3).collect();
    let beta: Vec<f32> = (0..d.c).map(|c| c as f32 * 0.4 - 0.5).collect();
    let eps = 1e-5f32;

    let (mean, var) = batch_norm_cpu::statistics(d, &x);
    let stats = run(
        BN_STATISTICS,
        Grid::PerItem(d.c),
        &shaped(d, vec![Arg::In(&x), Arg::Out(d.c), Arg::Out(d.c)], &[]),
    )
    .expect("statistics");
    assert!(
        relative_gap(&stats[0], &mean) < 1e-5,
        "{:?} vs {mean:?}",
        stats[0]
    );
    assert!(
        relative_gap(&stats[1], &var) < 1e-5,
        "{:?} vs {var:?}",
        stats[1]
    );

    let inv_std: Vec<f32> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    let scale: Vec<f32> = (0..d.c).map(|c| gamma[c] * inv_std[c]).collect();
    let shift: Vec<f32> = (0..d.c).map(|c| beta[c] - mean[c] * scale[c]).collect();
    for (code, activation) in [
        (0, Activation::Identity),
        (1, Activation::Relu),
        (2, Activation::Relu6),
    ] {
        let y = batch_norm_cpu::normalise(d, &x, &scale, &shift, activation);
        let ours = run(
            BN_NORMALISE,
            Grid::PerElement(len),
            &shaped(
                d,
                vec![
                    Arg::In(&x),
                    Arg::In(&gamma),
                    Arg::In(&beta),
                    Arg::In(&mean),
                    Arg::In(&var),
                    Arg::Out(len),
                ],
                &[Arg::Float(eps), Arg::Int(code)],
            ),
        )
        .expect("normalise");
        assert!(relative_gap(&ours[0], &y) < 1e-5, "{activation:?}");

        let saved = Saved {
            dims: d,
            mean: mean.clone(),
            inv_std: inv_std.clone(),
            gamma: gamma.clone(),
            activation,
        };
        let (dx, d_gamma, d_beta) = batch_norm_cpu::gradients(&saved, &x, &y, &dy);
        let tail = [Arg::Int(code)];
        let sums = run(
            BN_GRAD_SUMS,
            Grid::PerItem(d.c),
            &shaped(
                d,
                vec![
                    Arg::In(&x),
                    Arg::In(&y),
                    Arg::In(&dy),
                    Arg::In(&mean),
                    Arg::In(&inv_std),
                    Arg::Out(d.c),
                    Arg::Out(d.c),
                ],
                &tail,
            ),
        )
        .expect("gradient sums");
        assert!(relative_gap(&sums[0], &d_beta) < 1e-4, "dβ {activation:?}");
        assert!(relative_gap(&sums[1], &d_gamma) < 1e-4, "dγ {activation:?}");
        let ours = run(
            BN_GRAD_INPUT,
            Grid::PerElement(len),
            &shaped(
                d,
                vec![
                    Arg::In(&x),
                    Arg::In(&y),
                    Arg::In(&dy),
                    Arg::In(&mean),
                    Arg::In(&inv_std),
                    Arg::In(&gamma),
                    Arg::In(&sums[0]),
                    Arg::In(&sums[1]),
                    Arg::Out(len),
                ],
                &tail,
            ),
        )
        .expect("input gradient");
        assert!(relative_gap(&ours[0], &dx) < 1e-4, "dx {activation:?}");
    }
}
