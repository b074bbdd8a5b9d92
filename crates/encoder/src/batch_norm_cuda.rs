//! The CUDA half of the training-mode batch norm (`batch_norm.rs`): its kernels
//! (`kernels/batch_norm.cu`, the arithmetic of `batch_norm_cpu`) launched on candle's stream.
//! The per-channel statistics and parameter gradients come back to the host (2·C floats per
//! layer), where the running averages and the backward op take them, as on the CPU. Not yet
//! run on a GPU: see `cuda_launch`.

use super::batch_norm_cpu::{Activation, Dims, Saved};
use super::cuda_launch::{config, function, upload, view};
use super::cuda_source::{Grid, BN_GRAD_INPUT, BN_GRAD_SUMS, BN_NORMALISE, BN_STATISTICS};
use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
use candle_core::cuda_backend::WrapErr;
use candle_core::{CudaStorage, Layout, Result};

/// The activation's code in the kernels.
fn code(activation: Activation) -> i32 {
    match activation {
        Activation::Identity => 0,
        Activation::Relu => 1,
        Activation::Relu6 => 2,
    }
}

/// A contiguous f32 operand and its layout.
pub(crate) type Operand<'a> = (&'a CudaStorage, &'a Layout);

/// `activation(norm(x))` with the batch's statistics; returns the output and the per-channel
/// mean and biased variance.
pub(crate) fn forward(
    d: Dims,
    eps: f32,
    activation: Activation,
    x: Operand<'_>,
    gamma: Operand<'_>,
    beta: Operand<'_>,
) -> Result<(CudaStorage, Vec<f32>, Vec<f32>)> {
    let device = x.0.device.clone();
    let (x, gamma, beta) = (
        view(x.0, x.1, "batch norm's input")?,
        view(gamma.0, gamma.1, "batch norm's γ")?,
        view(beta.0, beta.1, "batch norm's β")?,
    );
    let len = d.n * d.c * d.hw;
    let (mean, var, y) = (
        device.alloc_zeros::<f32>(d.c)?,
        device.alloc_zeros::<f32>(d.c)?,
        device.alloc_zeros::<f32>(len)?,
    );
    let shape = [d.n, d.c, d.hw].map(|v| v as i32);
    let activation = code(activation);
    if let Some(config) = config(Grid::PerItem(d.c)) {
        let func = function(&device, BN_STATISTICS)?;
        let mut builder = func.builder();
        builder.arg(&x);
        builder.arg(&mean);
        builder.arg(&var);
        for v in &shape {
            builder.arg(v);
        }
        // SAFETY: the arguments match natview_bn_statistics; one block per channel of `d`.
        unsafe { builder.launch(config) }.w()?;
    }
    if let Some(config) = config(Grid::PerElement(len)) {
        let func = function(&device, BN_NORMALISE)?;
        let mut builder = func.builder();
        builder.arg(&x);
        builder.arg(&gamma);
        builder.arg(&beta);
        builder.arg(&mean);
        builder.arg(&var);
        builder.arg(&y);
        for v in &shape {
            builder.arg(v);
        }
        builder.arg(&eps);
        builder.arg(&activation);
        // SAFETY: the arguments match natview_bn_normalise; the buffers hold `d`'s sizes.
        unsafe { builder.launch(config) }.w()?;
    }
    let (mean, var) = (device.clone_dtoh(&mean)?, device.clone_dtoh(&var)?);
    Ok((CudaStorage::wrap_cuda_slice(y, device), mean, var))
}

/// The input gradient through the batch statistics, and (dγ, dβ) per channel, of the output
/// gradient `grad` at the forward pass's input `x` and output `y`.
pub(crate) fn gradients(
    s: &Saved,
    x: Operand<'_>,
    y: Operand<'_>,
    grad: Operand<'_>,
) -> Result<(CudaStorage, Vec<f32>, Vec<f32>)> {
    let device = x.0.device.clone();
    let d = s.dims;
    let (x, y, grad) = (
        view(x.0, x.1, "batch norm's input")?,
        view(y.0, y.1, "batch norm's output")?,
        view(grad.0, grad.1, "batch norm's output gradient")?,
    );
    let (mean, inv_std, gamma) = (
        upload(&device, &s.mean)?,
        upload(&device, &s.inv_std)?,
        upload(&device, &s.gamma)?,
    );
    let len = d.n * d.c * d.hw;
    let (sum_g, sum_gx, dx) = (
        device.alloc_zeros::<f32>(d.c)?,
        device.alloc_zeros::<f32>(d.c)?,
        device.alloc_zeros::<f32>(len)?,
    );
    let shape = [d.n, d.c, d.hw].map(|v| v as i32);
    let activation = code(s.activation);
    if let Some(config) = config(Grid::PerItem(d.c)) {
        let func = function(&device, BN_GRAD_SUMS)?;
        let mut builder = func.builder();
        for buffer in [&x, &y, &grad] {
            builder.arg(buffer);
        }
        builder.arg(&mean);
        builder.arg(&inv_std);
        builder.arg(&sum_g);
        builder.arg(&sum_gx);
        for v in &shape {
            builder.arg(v);
        }
        builder.arg(&activation);
        // SAFETY: the arguments match natview_bn_grad_sums; one block per channel of `d`.
        unsafe { builder.launch(config) }.w()?;
    }
    if let Some(config) = config(Grid::PerElement(len)) {
        let func = function(&device, BN_GRAD_INPUT)?;
        let mut builder = func.builder();
        for buffer in [&x, &y, &grad] {
            builder.arg(buffer);
        }
        for buffer in [&mean, &inv_std, &gamma, &sum_g, &sum_gx, &dx] {
            builder.arg(buffer);
        }
        for v in &shape {
            builder.arg(v);
        }
        builder.arg(&activation);
        // SAFETY: the arguments match natview_bn_grad_input; the buffers hold `d`'s sizes.
        unsafe { builder.launch(config) }.w()?;
    }
    let (d_beta, d_gamma) = (device.clone_dtoh(&sum_g)?, device.clone_dtoh(&sum_gx)?);
    Ok((CudaStorage::wrap_cuda_slice(dx, device), d_gamma, d_beta))
}
