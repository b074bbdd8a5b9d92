//! natview's CUDA kernels for grouped and depthwise convolutions — forward, input gradient and
//! kernel gradient, any padding (TF-"SAME" too) and stride (`kernels/conv.cu`), launched on
//! candle's stream. candle 0.11 runs a grouped convolution as one convolution per group plus a
//! concatenation: hundreds of kernel launches per depthwise layer of EfficientNet and per
//! grouped layer of RegNetY; these are one launch each. (Plain convolutions, one group, stay
//! with candle's cuBLAS path.) Not yet run on a GPU: see `cuda_launch`.

use super::cuda_launch::{config, function, view};
use super::cuda_source::{CudaConvGeometry, Grid, CONV_FORWARD, CONV_GRAD_INPUT, CONV_GRAD_KERNEL};
use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
use candle_core::cuda_backend::WrapErr;
use candle_core::{CudaStorage, Layout, Result, Shape};

/// Which of the three kernels.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Pass {
    /// `(input, weights) → output`.
    Forward,
    /// `(output gradient, weights) → input gradient`.
    GradInput,
    /// `(input, output gradient) → weights' gradient`.
    GradKernel,
}

/// Runs `pass` on the two contiguous f32 operands; the result has `shape`.
pub(crate) fn launch(
    pass: Pass,
    g: CudaConvGeometry,
    (a, a_layout): (&CudaStorage, &Layout),
    (b, b_layout): (&CudaStorage, &Layout),
    shape: Shape,
) -> Result<(CudaStorage, Shape)> {
    let device = a.device.clone();
    let (a, b) = (
        view(a, a_layout, "first operand")?,
        view(b, b_layout, "second operand")?,
    );
    let count = shape.elem_count();
    let out = device.alloc_zeros::<f32>(count)?;
    let (kernel, grid) = match pass {
        Pass::Forward => (CONV_FORWARD, Grid::PerElement(count)),
        Pass::GradInput => (CONV_GRAD_INPUT, Grid::PerElement(count)),
        Pass::GradKernel => (CONV_GRAD_KERNEL, Grid::PerItem(count)),
    };
    if let Some(config) = config(grid) {
        let dims = g.arguments().map(|d| d as i32);
        let func = function(&device, kernel)?;
        let mut builder = func.builder();
        builder.arg(&a);
        builder.arg(&b);
        builder.arg(&out);
        for d in &dims {
            builder.arg(d);
        }
        // SAFETY: the arguments match the kernel's signature (kernels/conv.cu); the sizes come
        // from the geometry the operands were checked against.
        unsafe { builder.launch(config) }.w()?;
    }
    Ok((CudaStorage::wrap_cuda_slice(out, device), shape))
}
