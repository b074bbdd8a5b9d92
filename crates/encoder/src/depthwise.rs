//! The depthwise convolution with TensorFlow-"SAME" padding as a candle op: our CPU kernels
//! (`depthwise_cpu`, with both gradients) on the CPU (in f32, also for a network in half
//! precision), our CUDA kernels (`conv_cuda`) for f32 on a GPU when `NATVIEW_CUDA_KERNELS=own`,
//! candle's grouped `conv2d` on an explicitly padded input elsewhere (CUDA by default, half
//! precision on a GPU, `NATVIEW_CONV=candle`). candle 0.11 runs a grouped convolution as one
//! convolution per channel.

use super::conv::{f32_values, own_cpu_kernels, through_f32};
use super::depthwise_cpu::{self, same_padding, DepthwiseGeometry, Epilogue};
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};

/// Depthwise convolution of `x` `[n, c, h, w]` with `kernel` `[c, 1, k, k]`, stride `stride`,
/// TF-"SAME" zero padding (output `⌈h / stride⌉ × ⌈w / stride⌉`).
pub fn depthwise_conv_same(x: &Tensor, kernel: &Tensor, stride: usize) -> Result<Tensor> {
    if x.device().is_cpu() && own_cpu_kernels() {
        return through_f32(x, kernel, |x, kernel| {
            x.contiguous()?
                .apply_op2(&kernel.contiguous()?, Forward { stride })
        });
    }
    #[cfg(feature = "cuda")]
    if x.device().is_cuda() && x.dtype() == candle_core::DType::F32 && super::cuda_launch::enabled()
    {
        return x
            .contiguous()?
            .apply_op2(&kernel.contiguous()?, Forward { stride });
    }
    let (_, c, h, w) = x.dims4()?;
    let k = kernel.dim(3)?;
    let (_, top, bottom) = same_padding(h, k, stride);
    let (_, left, right) = same_padding(w, k, stride);
    x.pad_with_zeros(2, top, bottom)?
        .pad_with_zeros(3, left, right)?
        .conv2d(kernel, 0, stride, 1, c)
}

/// The op name in [`f32_values`]'s messages.
const OP: &str = "depthwise conv";

fn geometry(input: &[usize], kernel: &[usize], stride: usize) -> Result<DepthwiseGeometry> {
    DepthwiseGeometry::same(input, kernel, stride).map_err(candle_core::Error::msg)
}

fn check_output_gradient(g: &DepthwiseGeometry, layout: &Layout) -> Result<()> {
    if layout.dims() != [g.n, g.c, g.h_out, g.w_out] {
        candle_core::bail!(
            "natview depthwise conv: output gradient {:?} does not fit {g:?}",
            layout.dims()
        );
    }
    Ok(())
}

/// The forward op on (input, kernel).
struct Forward {
    stride: usize,
}

impl CustomOp2 for Forward {
    fn name(&self) -> &'static str {
        "natview-depthwise"
    }

    fn cpu_fwd(
        &self,
        input: &CpuStorage,
        input_layout: &Layout,
        kernel: &CpuStorage,
        kernel_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = geometry(input_layout.dims(), kernel_layout.dims(), self.stride)?;
        let out = depthwise_cpu::forward(
            &g,
            f32_values(input, input_layout, OP, "input")?,
            f32_values(kernel, kernel_layout, OP, "kernel")?,
            Epilogue::NONE,
        );
        Ok((
            CpuStorage::F32(out),
            Shape::from((g.n, g.c, g.h_out, g.w_out)),
        ))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        input: &candle_core::CudaStorage,
        input_layout: &Layout,
        kernel: &candle_core::CudaStorage,
        kernel_layout: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        let g = geometry(input_layout.dims(), kernel_layout.dims(), self.stride)?;
        super::conv_cuda::launch(
            super::conv_cuda::Pass::Forward,
            (&g).into(),
            (input, input_layout),
            (kernel, kernel_layout),
            Shape::from((g.n, g.c, g.h_out, g.w_out)),
        )
    }

    fn bwd(
        &self,
        input: &Tensor,
        kernel: &Tensor,
        _output: &Tensor,
        grad_output: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad_output = grad_output.contiguous()?;
        // Only what autograd will use: no input gradient for the images themselves (the stem)
        // or a frozen stage's input, no kernel gradient for a frozen kernel.
        let grad_input = input.track_op().then(|| {
            grad_output.apply_op2_no_bwd(
                kernel,
                &GradInput {
                    stride: self.stride,
                    input_dims: input.dims().to_vec(),
                },
            )
        });
        let grad_kernel = kernel.track_op().then(|| {
            input.apply_op2_no_bwd(
                &grad_output,
                &GradKernel {
                    stride: self.stride,
                    kernel_dims: kernel.dims().to_vec(),
                },
            )
        });
        Ok((grad_input.transpose()?, grad_kernel.transpose()?))
    }
}

/// The input gradient, an op on (output gradient, kernel).
struct GradInput {
    stride: usize,
    input_dims: Vec<usize>,
}

impl CustomOp2 for GradInput {
    fn name(&self) -> &'static str {
        "natview-depthwise-grad-input"
    }

    fn cpu_fwd(
        &self,
        grad: &CpuStorage,
        grad_layout: &Layout,
        kernel: &CpuStorage,
        kernel_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = geometry(&self.input_dims, kernel_layout.dims(), self.stride)?;
        check_output_gradient(&g, grad_layout)?;
        let out = depthwise_cpu::grad_input(
            &g,
            f32_values(grad, grad_layout, OP, "output gradient")?,
            f32_values(kernel, kernel_layout, OP, "kernel")?,
        );
        Ok((CpuStorage::F32(out), Shape::from(self.input_dims.clone())))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        grad: &candle_core::CudaStorage,
        grad_layout: &Layout,
        kernel: &candle_core::CudaStorage,
        kernel_layout: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        let g = geometry(&self.input_dims, kernel_layout.dims(), self.stride)?;
        check_output_gradient(&g, grad_layout)?;
        super::conv_cuda::launch(
            super::conv_cuda::Pass::GradInput,
            (&g).into(),
            (grad, grad_layout),
            (kernel, kernel_layout),
            Shape::from(self.input_dims.clone()),
        )
    }
}

/// The kernel gradient, an op on (input, output gradient).
struct GradKernel {
    stride: usize,
    kernel_dims: Vec<usize>,
}

impl CustomOp2 for GradKernel {
    fn name(&self) -> &'static str {
        "natview-depthwise-grad-kernel"
    }

    fn cpu_fwd(
        &self,
        input: &CpuStorage,
        input_layout: &Layout,
        grad: &CpuStorage,
        grad_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = geometry(input_layout.dims(), &self.kernel_dims, self.stride)?;
        check_output_gradient(&g, grad_layout)?;
        let out = depthwise_cpu::grad_kernel(
            &g,
            f32_values(input, input_layout, OP, "input")?,
            f32_values(grad, grad_layout, OP, "output gradient")?,
        );
        Ok((CpuStorage::F32(out), Shape::from(self.kernel_dims.clone())))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        input: &candle_core::CudaStorage,
        input_layout: &Layout,
        grad: &candle_core::CudaStorage,
        grad_layout: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        let g = geometry(input_layout.dims(), &self.kernel_dims, self.stride)?;
        check_output_gradient(&g, grad_layout)?;
        super::conv_cuda::launch(
            super::conv_cuda::Pass::GradKernel,
            (&g).into(),
            (input, input_layout),
            (grad, grad_layout),
            Shape::from(self.kernel_dims.clone()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    use crate::test_support::max_abs;

    /// Our op and candle's grouped conv2d on the padded input agree, gradients included.
    #[test]
    fn matches_candle_grouped_conv_and_its_gradients() {
        let device = Device::Cpu;
        for (n, c, h, w, k, stride) in
            [(2, 3, 9, 8, 3, 1), (2, 4, 8, 8, 3, 2), (1, 3, 14, 14, 5, 2)]
        {
            let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (n, c, h, w), &device).expect("x"))
                .expect("var");
            let kernel =
                Var::from_tensor(&Tensor::randn(0f32, 1.0, (c, 1, k, k), &device).expect("w"))
                    .expect("var");
            let ours =
                depthwise_conv_same(x.as_tensor(), kernel.as_tensor(), stride).expect("ours");
            let (_, top, bottom) = same_padding(h, k, stride);
            let (_, left, right) = same_padding(w, k, stride);
            let theirs = x
                .as_tensor()
                .pad_with_zeros(2, top, bottom)
                .and_then(|t| t.pad_with_zeros(3, left, right))
                .and_then(|t| t.conv2d(kernel.as_tensor(), 0, stride, 1, c))
                .expect("candle");
            assert_eq!(ours.dims(), theirs.dims());
            assert!(max_abs(&(&ours - &theirs).expect("diff")) < 1e-4);
            let weights = Tensor::randn(0f32, 1.0, ours.dims(), &device).expect("weights");
            let grads = |y: &Tensor| {
                (y * &weights)
                    .and_then(|t| t.sum_all())
                    .and_then(|t| t.backward())
                    .expect("backward")
            };
            let (ours_grads, theirs_grads) = (grads(&ours), grads(&theirs));
            for var in [&x, &kernel] {
                let a = ours_grads.get(var.as_tensor()).expect("ours");
                let b = theirs_grads.get(var.as_tensor()).expect("candle's");
                let scale = max_abs(b).max(1.0);
                assert!(max_abs(&(a - b).expect("diff")) < 1e-4 * scale);
            }
        }
    }
}
