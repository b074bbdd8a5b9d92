// natview's CUDA kernels for grouped and depthwise convolutions (forward, input gradient and
// kernel gradient) on contiguous NCHW f32 tensors, weights [c_out, c_in / groups, k, k].
// Geometry arguments, in this order: n, c_in, h, w, c_out, k, stride, pad_top, pad_left,
// h_out, w_out, groups. Compiled with NVRTC in a `cuda` build (conv_cuda.rs); the tests run
// this same file on the CPU (cuda_emulator.rs). Launch shapes: cuda_source.rs.

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
