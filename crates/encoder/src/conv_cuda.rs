//! natview's CUDA kernels for grouped and depthwise convolutions — forward, input gradient and
//! kernel gradient, any padding (TF-"SAME" too) and stride — compiled once per process with
//! NVRTC (no nvcc at build time) and launched on candle's stream. candle 0.11 runs a grouped
//! convolution as one convolution per group plus a concatenation: hundreds of kernel launches
//! per depthwise layer of EfficientNet and per grouped layer of RegNetY; these are one launch
//! each. (Plain convolutions, one group, stay with candle's cuBLAS path.)
//!
//! Not yet run on a GPU (this code has only been compiled): it is used only when
//! `NATVIEW_CUDA_KERNELS=own`, and the GPU check (`scripts/gpu-check.sh`) compares its outputs
//! with the CPU's before it may become the default.

use super::conv_cpu::ConvGeometry;
use super::depthwise_cpu::DepthwiseGeometry;
use candle_core::cuda_backend::cudarc::driver::{CudaView, LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::cudarc::nvrtc::compile_ptx;
use candle_core::cuda_backend::WrapErr;
use candle_core::{CudaStorage, Layout, Result, Shape};
use std::sync::OnceLock;

/// The kernels' CUDA C. Geometry arguments, in this order: n, c_in, h, w, c_out, k, stride,
/// pad_top, pad_left, h_out, w_out, groups; tensors are contiguous NCHW, weights
/// `[c_out, c_in / groups, k, k]`.
const SOURCE: &str = r#"
// y[b, oc, oy, ox] = sum over the group's input channels ic and the taps (ky, kx) of
// x[b, g * cpi + ic, oy * stride - pad_top + ky, ox * stride - pad_left + kx] * w[oc, ic, ky, kx],
// g = oc / cpo (cpi, cpo: input and output channels per group). One thread per output element.
extern "C" __global__ void natview_conv_forward(const float* x, const float* wt, float* y,
    int n, int c_in, int h, int w, int c_out, int k, int stride, int pad_top, int pad_left,
    int h_out, int w_out, int groups) {
  int cpi = c_in / groups, cpo = c_out / groups;
  long total = (long)n * c_out * h_out * w_out;
  for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < total;
       i += (long)gridDim.x * blockDim.x) {
    int ox = (int)(i % w_out);
    long t = i / w_out;
    int oy = (int)(t % h_out);
    t /= h_out;
    int oc = (int)(t % c_out);
    long b = t / c_out;
    int g = oc / cpo;
    int iy0 = oy * stride - pad_top, ix0 = ox * stride - pad_left;
    float acc = 0.0f;
    for (int ic = 0; ic < cpi; ++ic) {
      const float* xp = x + (b * c_in + g * cpi + ic) * (long)h * w;
      const float* wp = wt + ((long)oc * cpi + ic) * k * k;
      for (int ky = 0; ky < k; ++ky) {
        int iy = iy0 + ky;
        if (iy < 0 || iy >= h) continue;
        for (int kx = 0; kx < k; ++kx) {
          int ix = ix0 + kx;
          if (ix < 0 || ix >= w) continue;
          acc += xp[(long)iy * w + ix] * wp[ky * k + kx];
        }
      }
    }
    y[i] = acc;
  }
}

// dx[b, c, iy, ix] = sum over the group's output channels oc and the taps that reach (iy, ix)
// of dy[b, oc, oy, ox] * w[oc, c % cpi, ky, kx]. One thread per input element.
extern "C" __global__ void natview_conv_grad_input(const float* dy, const float* wt, float* dx,
    int n, int c_in, int h, int w, int c_out, int k, int stride, int pad_top, int pad_left,
    int h_out, int w_out, int groups) {
  int cpi = c_in / groups, cpo = c_out / groups;
  long total = (long)n * c_in * h * w;
  for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < total;
       i += (long)gridDim.x * blockDim.x) {
    int ix = (int)(i % w);
    long t = i / w;
    int iy = (int)(t % h);
    t /= h;
    int c = (int)(t % c_in);
    long b = t / c_in;
    int g = c / cpi, ic = c % cpi;
    float acc = 0.0f;
    for (int o = 0; o < cpo; ++o) {
      int oc = g * cpo + o;
      const float* gp = dy + (b * c_out + oc) * (long)h_out * w_out;
      const float* wp = wt + ((long)oc * cpi + ic) * k * k;
      for (int ky = 0; ky < k; ++ky) {
        int sy = iy + pad_top - ky;
        if (sy < 0 || sy % stride != 0) continue;
        int oy = sy / stride;
        if (oy >= h_out) continue;
        for (int kx = 0; kx < k; ++kx) {
          int sx = ix + pad_left - kx;
          if (sx < 0 || sx % stride != 0) continue;
          int ox = sx / stride;
          if (ox >= w_out) continue;
          acc += gp[(long)oy * w_out + ox] * wp[ky * k + kx];
        }
      }
    }
    dx[i] = acc;
  }
}

// dw[oc, ic, ky, kx] = sum over the batch and the output positions of
// x[b, g * cpi + ic, iy, ix] * dy[b, oc, oy, ox]. One block of 256 threads per weight.
extern "C" __global__ void natview_conv_grad_kernel(const float* x, const float* dy, float* dw,
    int n, int c_in, int h, int w, int c_out, int k, int stride, int pad_top, int pad_left,
    int h_out, int w_out, int groups) {
  __shared__ float part[256];
  int cpi = c_in / groups, cpo = c_out / groups;
  int e = blockIdx.x;
  int kx = e % k, ky = (e / k) % k, ic = (e / (k * k)) % cpi, oc = e / (k * k * cpi);
  int c = (oc / cpo) * cpi + ic;
  long count = (long)n * h_out * w_out;
  float acc = 0.0f;
  for (long j = threadIdx.x; j < count; j += blockDim.x) {
    int ox = (int)(j % w_out);
    long t = j / w_out;
    int oy = (int)(t % h_out);
    long b = t / h_out;
    int iy = oy * stride - pad_top + ky, ix = ox * stride - pad_left + kx;
    if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
    acc += x[((b * c_in + c) * h + iy) * (long)w + ix]
         * dy[((b * c_out + oc) * h_out + oy) * (long)w_out + ox];
  }
  part[threadIdx.x] = acc;
  __syncthreads();
  for (int s = 128; s > 0; s >>= 1) {
    if (threadIdx.x < s) part[threadIdx.x] += part[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) dw[e] = part[0];
}
"#;

/// The module name the kernels are loaded under on each device.
const MODULE: &str = "natview_conv";

/// Whether natview's CUDA kernels replace candle's grouped convolutions
/// (`NATVIEW_CUDA_KERNELS=own`; off by default until a GPU check has passed with them).
pub fn enabled() -> bool {
    static CHOICE: OnceLock<bool> = OnceLock::new();
    *CHOICE.get_or_init(|| std::env::var("NATVIEW_CUDA_KERNELS").is_ok_and(|v| v == "own"))
}

/// The kernels as PTX, compiled on first use.
fn ptx() -> Result<&'static str> {
    static PTX: OnceLock<std::result::Result<String, String>> = OnceLock::new();
    PTX.get_or_init(|| {
        compile_ptx(SOURCE)
            .map(|ptx| ptx.to_src())
            .map_err(|e| e.to_string())
    })
    .as_deref()
    .map_err(|e| candle_core::Error::msg(format!("natview's convolution CUDA kernels: {e}")))
}

/// A convolution's shape as the kernels take it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CudaConvGeometry {
    n: usize,
    c_in: usize,
    h: usize,
    w: usize,
    c_out: usize,
    k: usize,
    stride: usize,
    pad_top: usize,
    pad_left: usize,
    h_out: usize,
    w_out: usize,
    groups: usize,
}

impl From<&DepthwiseGeometry> for CudaConvGeometry {
    fn from(g: &DepthwiseGeometry) -> Self {
        Self {
            n: g.n,
            c_in: g.c,
            h: g.h,
            w: g.w,
            c_out: g.c,
            k: g.k,
            stride: g.stride,
            pad_top: g.pad_top,
            pad_left: g.pad_left,
            h_out: g.h_out,
            w_out: g.w_out,
            groups: g.c,
        }
    }
}

impl From<&ConvGeometry> for CudaConvGeometry {
    fn from(g: &ConvGeometry) -> Self {
        Self {
            n: g.n,
            c_in: g.c_in,
            h: g.h,
            w: g.w,
            c_out: g.c_out,
            k: g.k,
            stride: g.stride,
            pad_top: g.pad,
            pad_left: g.pad,
            h_out: g.h_out,
            w_out: g.w_out,
            groups: g.groups,
        }
    }
}

/// The f32 elements of a contiguous operand.
fn view<'a>(storage: &'a CudaStorage, layout: &Layout, what: &str) -> Result<CudaView<'a, f32>> {
    let slice = storage.as_cuda_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(slice.slice(start..end)),
        None => candle_core::bail!("natview conv (CUDA): the {what} is not contiguous"),
    }
}

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
    let (name, config) = match pass {
        Pass::Forward => (
            "natview_dw_forward",
            LaunchConfig::for_num_elems(count as u32),
        ),
        Pass::GradInput => (
            "natview_dw_grad_input",
            LaunchConfig::for_num_elems(count as u32),
        ),
        Pass::GradKernel => (
            "natview_conv_grad_kernel",
            LaunchConfig {
                grid_dim: (count as u32, 1, 1),
                block_dim: (256, 1, 1),
                shared_mem_bytes: 0,
            },
        ),
    };
    let dims = [
        g.n, g.c_in, g.h, g.w, g.c_out, g.k, g.stride, g.pad_top, g.pad_left, g.h_out, g.w_out,
        g.groups,
    ]
    .map(|d| d as i32);
    let func = device.get_or_load_custom_func(name, MODULE, ptx()?)?;
    let mut builder = func.builder();
    builder.arg(&a);
    builder.arg(&b);
    builder.arg(&out);
    for d in &dims {
        builder.arg(d);
    }
    // SAFETY: the arguments match the kernel's signature; the sizes come from the geometry the
    // operands were checked against.
    unsafe { builder.launch(config) }.w()?;
    Ok((CudaStorage::wrap_cuda_slice(out, device), shape))
}
