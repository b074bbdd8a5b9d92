//! The encoders' 2D convolution: one place where the convolution algorithm is chosen.
//!
//! On the CPU it runs our own kernels (`conv_cpu`: single-pass im2col + gemm forward, gemm +
//! col2im input gradient, im2col + gemm kernel gradient) as candle custom ops, in f32 also for a
//! network in half precision (`through_f32`); candle 0.11's own CPU conv gathers patches
//! element by element and computes the input gradient with a plain loop. Elsewhere (CUDA), and
//! with `NATVIEW_CONV=candle`, it runs candle's `conv2d`.

use super::conv_cpu::{self, ConvGeometry};
use candle_core::{CpuStorage, CustomOp2, DType, Layout, Module, Result, Shape, Tensor};
use candle_nn::VarBuilder;

/// A bias-free 2D convolution with square kernel, stride, zero padding and channel groups.
#[derive(Debug, Clone)]
pub struct Conv2d {
    weight: Tensor,
    stride: usize,
    padding: usize,
    groups: usize,
}

impl Conv2d {
    /// Reads (or creates) `weight` `[c_out, c_in, k, k]` through `vb` (Kaiming-normal init).
    pub fn new(
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        Self::grouped(c_in, c_out, kernel, stride, padding, 1, vb)
    }

    /// [`new`](Self::new) in `groups` channel groups: `weight` is `[c_out, c_in / groups, k, k]`.
    pub fn grouped(
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        groups: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        if groups == 0 || !c_in.is_multiple_of(groups) || !c_out.is_multiple_of(groups) {
            candle_core::bail!(
                "conv2d: {c_in} → {c_out} channels do not split into {groups} groups"
            );
        }
        let weight = vb.get_with_hints(
            (c_out, c_in / groups, kernel, kernel),
            "weight",
            candle_nn::init::DEFAULT_KAIMING_NORMAL,
        )?;
        Ok(Self {
            weight,
            stride,
            padding,
            groups,
        })
    }

    /// The kernel tensor.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }
}

/// Whether our CPU kernels are in use (the default; `NATVIEW_CONV=candle` turns them off).
pub fn own_cpu_kernels() -> bool {
    static CHOICE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *CHOICE.get_or_init(|| std::env::var("NATVIEW_CONV").map_or(true, |v| v != "candle"))
}

impl Conv2d {
    /// This convolution (stride, padding) with `weight` in place of its own kernel, e.g. the
    /// kernel with a batch norm folded in.
    pub fn forward_with_weight(&self, x: &Tensor, weight: &Tensor) -> Result<Tensor> {
        if x.device().is_cpu() && own_cpu_kernels() {
            return through_f32(x, weight, |x, weight| {
                grouped_conv2d_own(x, weight, self.stride, self.padding, self.groups)
            });
        }
        // A grouped convolution on a GPU: natview's kernels (one launch instead of one
        // convolution per group) when NATVIEW_CUDA_KERNELS=own; a plain one stays with candle.
        #[cfg(feature = "cuda")]
        if self.groups > 1
            && x.device().is_cuda()
            && x.dtype() == DType::F32
            && super::cuda_launch::enabled()
        {
            return grouped_conv2d_own(x, weight, self.stride, self.padding, self.groups);
        }
        x.conv2d(weight, self.padding, self.stride, 1, self.groups)
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_with_weight(x, &self.weight)
    }
}

/// `op` (one of natview's f32 kernels) on `x` and `weight`, through f32 when they are in half
/// precision: converted to f32, computed, the result converted back to `x`'s dtype — f32
/// accumulation, as a GPU's half-precision convolutions accumulate. On the CPU this is how
/// `--precision f16` runs natview's kernels instead of candle's generic half-precision
/// convolutions (one convolution per group: 6 images/s against 1,172 for EfficientNet-Lite0 on
/// the demo).
pub(super) fn through_f32(
    x: &Tensor,
    weight: &Tensor,
    op: impl FnOnce(&Tensor, &Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    if x.dtype() == DType::F32 {
        return op(x, weight);
    }
    op(&x.to_dtype(DType::F32)?, &weight.to_dtype(DType::F32)?)?.to_dtype(x.dtype())
}

/// 2D convolution in `groups` channel groups (`weight` `[c_out, c_in / groups, k, k]`) through
/// our kernels (the CPU's; in a `cuda` build, the GPU's for a tensor on a GPU), with gradients
/// for both the input and the kernel.
pub fn grouped_conv2d_own(
    x: &Tensor,
    weight: &Tensor,
    stride: usize,
    padding: usize,
    groups: usize,
) -> Result<Tensor> {
    x.contiguous()?.apply_op2(
        &weight.contiguous()?,
        Forward {
            stride,
            padding,
            groups,
        },
    )
}

/// The f32 values of a contiguous CPU tensor given to our custom op `op` (its `what`), for
/// every custom op of the encoders (convolution, depthwise convolution, batch norm).
pub(super) fn f32_values<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &str,
    what: &str,
) -> Result<&'a [f32]> {
    let CpuStorage::F32(values) = storage else {
        candle_core::bail!("natview {op}: {what} must be f32");
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&values[start..end]),
        None => candle_core::bail!("natview {op}: {what} must be contiguous"),
    }
}

/// The op name in [`f32_values`]'s messages.
const OP: &str = "conv2d";

/// Checks that an output gradient has the forward output's shape.
fn check_output_gradient(g: &ConvGeometry, grad_layout: &Layout) -> Result<()> {
    if grad_layout.dims() != [g.n, g.c_out, g.h_out, g.w_out] {
        candle_core::bail!(
            "natview conv2d: output gradient {:?} does not fit {g:?}",
            grad_layout.dims()
        );
    }
    Ok(())
}

/// The forward op on (input, kernel); its stride, padding and groups are the gradients' too.
#[derive(Debug, Clone, Copy)]
struct Forward {
    stride: usize,
    padding: usize,
    groups: usize,
}

impl Forward {
    /// The shape of this convolution of an `input`-shaped tensor with a `kernel`-shaped kernel.
    fn geometry(&self, input: &[usize], kernel: &[usize]) -> Result<ConvGeometry> {
        ConvGeometry::grouped(input, kernel, self.stride, self.padding, self.groups)
            .map_err(candle_core::Error::msg)
    }
}

impl CustomOp2 for Forward {
    fn name(&self) -> &'static str {
        "natview-conv2d"
    }

    fn cpu_fwd(
        &self,
        input: &CpuStorage,
        input_layout: &Layout,
        kernel: &CpuStorage,
        kernel_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.geometry(input_layout.dims(), kernel_layout.dims())?;
        let out = conv_cpu::forward(
            &g,
            f32_values(input, input_layout, OP, "input")?,
            f32_values(kernel, kernel_layout, OP, "kernel")?,
        );
        Ok((
            CpuStorage::F32(out),
            Shape::from((g.n, g.c_out, g.h_out, g.w_out)),
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
        let g = self.geometry(input_layout.dims(), kernel_layout.dims())?;
        super::conv_cuda::launch(
            super::conv_cuda::Pass::Forward,
            (&g).into(),
            (input, input_layout),
            (kernel, kernel_layout),
            Shape::from((g.n, g.c_out, g.h_out, g.w_out)),
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
                    conv: *self,
                    input_dims: input.dims().to_vec(),
                },
            )
        });
        let grad_kernel = kernel.track_op().then(|| {
            input.apply_op2_no_bwd(
                &grad_output,
                &GradKernel {
                    conv: *self,
                    kernel_dims: kernel.dims().to_vec(),
                },
            )
        });
        Ok((grad_input.transpose()?, grad_kernel.transpose()?))
    }
}

/// The input gradient, an op on (output gradient, kernel).
struct GradInput {
    conv: Forward,
    input_dims: Vec<usize>,
}

impl CustomOp2 for GradInput {
    fn name(&self) -> &'static str {
        "natview-conv2d-grad-input"
    }

    fn cpu_fwd(
        &self,
        grad: &CpuStorage,
        grad_layout: &Layout,
        kernel: &CpuStorage,
        kernel_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.conv.geometry(&self.input_dims, kernel_layout.dims())?;
        check_output_gradient(&g, grad_layout)?;
        let out = conv_cpu::grad_input(
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
        let g = self.conv.geometry(&self.input_dims, kernel_layout.dims())?;
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
    conv: Forward,
    kernel_dims: Vec<usize>,
}

impl CustomOp2 for GradKernel {
    fn name(&self) -> &'static str {
        "natview-conv2d-grad-kernel"
    }

    fn cpu_fwd(
        &self,
        input: &CpuStorage,
        input_layout: &Layout,
        grad: &CpuStorage,
        grad_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.conv.geometry(input_layout.dims(), &self.kernel_dims)?;
        check_output_gradient(&g, grad_layout)?;
        let out = conv_cpu::grad_kernel(
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
        let g = self.conv.geometry(input_layout.dims(), &self.kernel_dims)?;
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

    /// Our op and candle's conv2d agree on the output and on both gradients.
    #[test]
    fn matches_candle_forward_and_gradients() {
        let device = Device::Cpu;
        for (n, c_in, h, w, c_out, k, stride, pad, groups) in [
            (2, 3, 12, 10, 4, 3, 1, 1, 1),
            (3, 4, 9, 9, 6, 3, 2, 1, 1),
            (2, 8, 6, 6, 5, 1, 1, 0, 1),
            (2, 8, 7, 7, 5, 1, 2, 0, 1),
            (1, 3, 16, 16, 4, 7, 2, 3, 1),
            (2, 16, 9, 9, 16, 3, 2, 1, 2),
            (2, 12, 8, 8, 6, 3, 1, 1, 3),
            // Wide and deep enough for the shifted-window kernels (`conv_wide`).
            (2, 16, 18, 17, 8, 3, 1, 1, 1),
        ] {
            let x =
                Var::from_tensor(&Tensor::randn(0f32, 1.0, (n, c_in, h, w), &device).expect("x"))
                    .expect("var");
            let kernel = Var::from_tensor(
                &Tensor::randn(0f32, 1.0, (c_out, c_in / groups, k, k), &device).expect("w"),
            )
            .expect("var");
            let ours = grouped_conv2d_own(x.as_tensor(), kernel.as_tensor(), stride, pad, groups)
                .expect("ours");
            let theirs = x
                .as_tensor()
                .conv2d(kernel.as_tensor(), pad, stride, 1, groups)
                .expect("candle");
            assert_eq!(ours.dims(), theirs.dims());
            let max_diff = |a: &Tensor, b: &Tensor| -> f32 {
                (a - b)
                    .and_then(|d| d.abs())
                    .and_then(|d| d.flatten_all())
                    .and_then(|d| d.max(0))
                    .and_then(|d| d.to_scalar::<f32>())
                    .expect("diff")
            };
            assert!(
                max_diff(&ours, &theirs) < 1e-4,
                "forward {n} {c_in} {k} {stride}"
            );
            // A loss that weights every output differently, so the gradients are not uniform.
            let weights = Tensor::randn(0f32, 1.0, ours.dims(), &device).expect("weights");
            let ours_grads = (&ours * &weights)
                .and_then(|t| t.sum_all())
                .and_then(|t| t.backward())
                .expect("backward");
            let theirs_grads = (&theirs * &weights)
                .and_then(|t| t.sum_all())
                .and_then(|t| t.backward())
                .expect("backward");
            for var in [&x, &kernel] {
                let a = ours_grads.get(var.as_tensor()).expect("our gradient");
                let b = theirs_grads
                    .get(var.as_tensor())
                    .expect("candle's gradient");
                let scale = b
                    .abs()
                    .and_then(|t| t.flatten_all())
                    .and_then(|t| t.max(0))
                    .and_then(|t| t.to_scalar::<f32>())
                    .expect("scale");
                assert!(
                    max_diff(a, b) < 1e-4 * scale.max(1.0),
                    "gradient {n} {c_in} {k} {stride}: {} vs scale {scale}",
                    max_diff(a, b)
                );
            }
        }
    }

    /// A network in f16 on the CPU: its grouped and depthwise convolutions run natview's f32
    /// kernels and come back in f16, within f16's rounding of the f32 results.
    #[test]
    fn half_precision_convolutions_on_the_cpu_keep_their_dtype() -> Result<()> {
        let device = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (2, 12, 9, 9), &device)?;
        let weight = Tensor::randn(0f32, 0.3, (6, 4, 3, 3), &device)?;
        let half = |t: &Tensor| t.to_dtype(DType::F16);
        let tensors = std::collections::HashMap::from([("weight".to_string(), half(&weight)?)]);
        let vb = VarBuilder::from_tensors(tensors, DType::F16, &device);
        let conv = Conv2d::grouped(12, 6, 3, 2, 1, 3, vb)?;
        let ours = conv.forward(&half(&x)?)?;
        assert_eq!(ours.dtype(), DType::F16);
        let exact = grouped_conv2d_own(&x, &weight, 2, 1, 3)?;
        let gap = (ours.to_dtype(DType::F32)? - &exact)?.abs()?.max_all()?;
        let scale = exact.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(
            gap.to_scalar::<f32>()? < 4e-3 * scale,
            "grouped: {gap} of {scale}"
        );

        let kernel = Tensor::randn(0f32, 0.3, (12, 1, 3, 3), &device)?;
        let ours = crate::depthwise::depthwise_conv_same(&half(&x)?, &half(&kernel)?, 2)?;
        assert_eq!(ours.dtype(), DType::F16);
        let exact = crate::depthwise::depthwise_conv_same(&x, &kernel, 2)?;
        let gap = (ours.to_dtype(DType::F32)? - &exact)?.abs()?.max_all()?;
        let scale = exact.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(
            gap.to_scalar::<f32>()? < 4e-3 * scale,
            "depthwise: {gap} of {scale}"
        );
        Ok(())
    }

    /// Images (no gradient wanted) still give the kernel its gradient, and no input gradient
    /// is made for them.
    #[test]
    fn an_input_without_gradient_gets_none() -> Result<()> {
        let device = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (2, 3, 8, 8), &device)?;
        let kernel = Var::from_tensor(&Tensor::randn(0f32, 1.0, (4, 3, 3, 3), &device)?)?;
        let ours = grouped_conv2d_own(&x, kernel.as_tensor(), 1, 1, 1)?.sum_all()?;
        let theirs = x.conv2d(kernel.as_tensor(), 1, 1, 1, 1)?.sum_all()?;
        let (ours, theirs) = (ours.backward()?, theirs.backward()?);
        assert!(ours.get(&x).is_none());
        let (Some(a), Some(b)) = (ours.get(kernel.as_tensor()), theirs.get(kernel.as_tensor()))
        else {
            panic!("no kernel gradient");
        };
        let difference = (a - b)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(difference < 1e-3, "kernel gradients differ by {difference}");
        Ok(())
    }
}
