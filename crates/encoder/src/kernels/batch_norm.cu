// natview's CUDA kernels for batch norm in training mode, fused with the activation after it,
// on contiguous [n, c, hw] f32 tensors — the CUDA half of batch_norm.rs, the same arithmetic
// as batch_norm_cpu.rs: per-channel statistics (two passes, no cancellation), one
// normalise-and-activate pass, and the gradients through the batch statistics. Activation
// codes: 0 none, 1 ReLU, 2 ReLU6. Compiled with NVRTC in a `cuda` build
// (batch_norm_cuda.rs); the tests run this same file on the CPU (cuda_emulator.rs).
// Per-channel kernels run one block of 256 threads per channel; element kernels one thread
// per element (grid-stride).

// The sum of v over the block's 256 threads, returned to every thread (part: 256 shared floats,
// free again when it returns).
__device__ float natview_block_sum(float v, float* part) {
  part[threadIdx.x] = v;
  __syncthreads();
  for (int s = 128; s > 0; s >>= 1) {
    if (threadIdx.x < s) part[threadIdx.x] += part[threadIdx.x + s];
    __syncthreads();
  }
  float total = part[0];
  __syncthreads();
  return total;
}

__device__ float natview_activate(float v, int activation) {
  if (activation == 1) return v > 0.0f ? v : 0.0f;
  if (activation == 2) return v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v);
  return v;
}

// Whether the gradient passes the activation at its output value y.
__device__ bool natview_passes(float y, int activation) {
  if (activation == 1) return y > 0.0f;
  if (activation == 2) return y > 0.0f && y < 6.0f;
  return true;
}

// mean[ch], var[ch] (biased) of channel ch = blockIdx.x over the batch and space.
extern "C" __global__ void natview_bn_statistics(const float* x, float* mean, float* var,
    int n, int c, int hw) {
  __shared__ float part[256];
  int ch = blockIdx.x;
  long count = (long)n * hw;
  float m = count > 0 ? (float)count : 1.0f;
  float acc = 0.0f;
  for (long j = threadIdx.x; j < count; j += blockDim.x) {
    acc += x[((j / hw) * c + ch) * hw + j % hw];
  }
  float mu = natview_block_sum(acc, part) / m;
  acc = 0.0f;
  for (long j = threadIdx.x; j < count; j += blockDim.x) {
    float d = x[((j / hw) * c + ch) * hw + j % hw] - mu;
    acc += d * d;
  }
  float v = natview_block_sum(acc, part) / m;
  if (threadIdx.x == 0) {
    mean[ch] = mu;
    var[ch] = v;
  }
}

// y = activation(x * scale + shift), scale = gamma / sqrt(var + eps), shift = beta - mean * scale.
extern "C" __global__ void natview_bn_normalise(const float* x, const float* gamma,
    const float* beta, const float* mean, const float* var, float* y, int n, int c, int hw,
    float eps, int activation) {
  long total = (long)n * c * hw;
  for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < total;
       i += (long)gridDim.x * blockDim.x) {
    int ch = (int)((i / hw) % c);
    float scale = gamma[ch] / sqrtf(var[ch] + eps);
    float shift = beta[ch] - mean[ch] * scale;
    y[i] = natview_activate(x[i] * scale + shift, activation);
  }
}

// Per channel ch = blockIdx.x, with g the output gradient masked by the activation and
// x_hat = (x - mean) * inv_std: sum_g[ch] = sum of g (d beta), sum_gx[ch] = sum of g * x_hat
// (d gamma).
extern "C" __global__ void natview_bn_grad_sums(const float* x, const float* y, const float* dy,
    const float* mean, const float* inv_std, float* sum_g, float* sum_gx, int n, int c, int hw,
    int activation) {
  __shared__ float part[256];
  int ch = blockIdx.x;
  long count = (long)n * hw;
  float mu = mean[ch];
  float acc_g = 0.0f, acc_gx = 0.0f;
  for (long j = threadIdx.x; j < count; j += blockDim.x) {
    long i = ((j / hw) * c + ch) * hw + j % hw;
    float g = natview_passes(y[i], activation) ? dy[i] : 0.0f;
    acc_g += g;
    acc_gx += g * (x[i] - mu);
  }
  float total_g = natview_block_sum(acc_g, part);
  float total_gx = natview_block_sum(acc_gx, part) * inv_std[ch];
  if (threadIdx.x == 0) {
    sum_g[ch] = total_g;
    sum_gx[ch] = total_gx;
  }
}

// dx = gamma * inv_std / M * (M * g - sum_g - x_hat * sum_gx), M = n * hw.
extern "C" __global__ void natview_bn_grad_input(const float* x, const float* y, const float* dy,
    const float* mean, const float* inv_std, const float* gamma, const float* sum_g,
    const float* sum_gx, float* dx, int n, int c, int hw, int activation) {
  long total = (long)n * c * hw;
  float m = n * (long)hw > 0 ? (float)((long)n * hw) : 1.0f;
  for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < total;
       i += (long)gridDim.x * blockDim.x) {
    int ch = (int)((i / hw) % c);
    float g = natview_passes(y[i], activation) ? dy[i] : 0.0f;
    float x_hat = (x[i] - mean[ch]) * inv_std[ch];
    dx[i] = gamma[ch] * inv_std[ch] / m * (m * g - sum_g[ch] - x_hat * sum_gx[ch]);
  }
}
