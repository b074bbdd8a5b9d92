//! natview's CUDA kernels for the depthwise convolution — forward, input gradient and kernel
//! gradient, any padding and stride — compiled once per process with NVRTC (no nvcc at build
//! time) and launched on candle's stream. candle 0.11 runs a grouped convolution as one
//! convolution per group plus a concatenation: hundreds of kernel launches per depthwise layer
//! of EfficientNet; these are one launch each.
//!
//! Not yet run on a GPU (this code has only been compiled): it is used only when
//! `NATVIEW_CUDA_KERNELS=own`, and the GPU check (`scripts/gpu-check.sh`) compares its outputs
//! with the CPU's before it may become the default.

use super::depthwise_cpu::DepthwiseGeometry;
use candle_core::cuda_backend::cudarc::driver::{CudaView, LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::cudarc::nvrtc::compile_ptx;
use candle_core::cuda_backend::WrapErr;
use candle_core::{CudaStorage, Layout, Result, Shape};
use std::sync::OnceLock;

/// The kernels' CUDA C. Geometry arguments, in this order: n, c, h, w, k, stride, pad_top,
/// pad_left, h_out, w_out; tensors are contiguous NCHW, kernels `[c, 1, k, k]`.
const SOURCE: &str = r#"
extern "C" __global__ void natview_dw_forward(const float* x, const float* kern, float* y,
    int n, int c, int h, int w, int k, int stride, int pad_top, int pad_left, int h_out, int w_out) {
  long total = (long)n * c * h_out * w_out;
  for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < total;
       i += (long)gridDim.x * blockDim.x) {
    int ox = (int)(i % w_out);
    long t = i / w_out;
    int oy = (int)(t % h_out);
    t /= h_out;
    int ch = (int)(t % c);
    long b = t / c;
    const float* xp = x + (b * c + ch) * (long)h * w;
    const float* kp = kern + (long)ch * k * k;
    int iy0 = oy * stride - pad_top, ix0 = ox * stride - pad_left;
    float acc = 0.0f;
    for (int ky = 0; ky < k; ++ky) {
      int iy = iy0 + ky;
      if (iy < 0 || iy >= h) continue;
      for (int kx = 0; kx < k; ++kx) {
        int ix = ix0 + kx;
        if (ix < 0 || ix >= w) continue;
        acc += xp[(long)iy * w + ix] * kp[ky * k + kx];
      }
    }
    y[i] = acc;
  }
}

extern "C" __global__ void natview_dw_grad_input(const float* g, const float* kern, float* dx,
    int n, int c, int h, int w, int k, int stride, int pad_top, int pad_left, int h_out, int w_out) {
  long total = (long)n * c * h * w;
  for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < total;
       i += (long)gridDim.x * blockDim.x) {
    int ix = (int)(i % w);
    long t = i / w;
    int iy = (int)(t % h);
    t /= h;
    int ch = (int)(t % c);
    long b = t / c;
    const float* gp = g + (b * c + ch) * (long)h_out * w_out;
    const float* kp = kern + (long)ch * k * k;
    float acc = 0.0f;
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
        acc += gp[(long)oy * w_out + ox] * kp[ky * k + kx];
      }
    }
    dx[i] = acc;
  }
}

// One block of 256 threads per kernel tap (channel, ky, kx), summing over the batch and the
// output positions.
extern "C" __global__ void natview_dw_grad_kernel(const float* x, const float* g, float* dk,
    int n, int c, int h, int w, int k, int stride, int pad_top, int pad_left, int h_out, int w_out) {
  __shared__ float part[256];
  int tap = blockIdx.x;
  int ch = tap / (k * k);
  int ky = (tap % (k * k)) / k, kx = tap % k;
  long count = (long)n * h_out * w_out;
  float acc = 0.0f;
  for (long j = threadIdx.x; j < count; j += blockDim.x) {
    int ox = (int)(j % w_out);
    long t = j / w_out;
    int oy = (int)(t % h_out);
    long b = t / h_out;
    int iy = oy * stride - pad_top + ky, ix = ox * stride - pad_left + kx;
    if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
    acc += x[((b * c + ch) * h + iy) * (long)w + ix] * g[((b * c + ch) * h_out + oy) * (long)w_out + ox];
  }
  part[threadIdx.x] = acc;
  __syncthreads();
  for (int s = 128; s > 0; s >>= 1) {
    if (threadIdx.x < s) part[threadIdx.x] += part[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) dk[tap] = part[0];
}
"#;

/// The module name the kernels are loaded under on each device.
const MODULE: &str = "natview_depthwise";

/// Whether natview's CUDA kernels replace candle's grouped convolution
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
    .map_err(|e| candle_core::Error::msg(format!("natview's depthwise CUDA kernels: {e}")))
}

/// The f32 elements of a contiguous operand.
fn view<'a>(storage: &'a CudaStorage, layout: &Layout, what: &str) -> Result<CudaView<'a, f32>> {
    let slice = storage.as_cuda_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(slice.slice(start..end)),
        None => candle_core::bail!("natview depthwise conv: the {what} is not contiguous"),
    }
}

/// Which of the three kernels.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Pass {
    /// `(input, kernel) → output`.
    Forward,
    /// `(output gradient, kernel) → input gradient`.
    GradInput,
    /// `(input, output gradient) → kernel gradient`.
    GradKernel,
}

/// Runs `pass` on the two contiguous f32 operands; the result has `shape`.
pub(crate) fn launch(
    pass: Pass,
    g: &DepthwiseGeometry,
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
            "natview_dw_grad_kernel",
            LaunchConfig {
                grid_dim: (count as u32, 1, 1),
                block_dim: (256, 1, 1),
                shared_mem_bytes: 0,
            },
        ),
    };
    let dims = [
        g.n, g.c, g.h, g.w, g.k, g.stride, g.pad_top, g.pad_left, g.h_out, g.w_out,
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
