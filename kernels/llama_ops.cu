// Elementwise and per-row ops of the GPU decoder (kernels/llama_gpu.h):
// embedding gather, RMSNorm, RoPE, KV-cache append, SwiGLU. The GEMMs are
// cuBLAS; attention is attention.cu.
#include <cuda_runtime.h>

#include "kernels/attention_launch.h"

namespace mnemo::kernels::internal {
namespace {

constexpr int kThreads = 256;

__global__ void EmbedKernel(const int32_t* tokens, const float* table, int dim, float* x) {
  const int t = blockIdx.x;
  const float* src = table + static_cast<int64_t>(tokens[t]) * dim;
  for (int d = threadIdx.x; d < dim; d += blockDim.x) x[static_cast<int64_t>(t) * dim + d] = src[d];
}

__global__ void RmsNormKernel(const float* x, int dim, const float* w, float eps, float* out) {
  const int64_t r = blockIdx.x;
  const float* row = x + r * dim;
  __shared__ float partial[kThreads / 32];
  float ss = 0.0f;
  for (int d = threadIdx.x; d < dim; d += blockDim.x) ss = fmaf(row[d], row[d], ss);
  for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
  if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = ss;
  __syncthreads();
  float total = 0.0f;
  for (int i = 0; i < kThreads / 32; ++i) total += partial[i];
  const float inv = rsqrtf(total / dim + eps);
  for (int d = threadIdx.x; d < dim; d += blockDim.x) out[r * dim + d] = row[d] * inv * w[d];
}

// Thread per (token, head, i < half).
__global__ void RopeKernel(float* x, int n_tokens, int n_heads, int head_dim, const float* cos,
                           const float* sin, int first) {
  const int half = head_dim / 2;
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t total = static_cast<int64_t>(n_tokens) * n_heads * half;
  if (idx >= total) return;
  const int i = static_cast<int>(idx % half);
  const int64_t th = idx / half;  // token * n_heads + head
  const int t = static_cast<int>(th / n_heads);
  float* v = x + th * head_dim;
  const float c = cos[static_cast<int64_t>(first + t) * half + i];
  const float s = sin[static_cast<int64_t>(first + t) * half + i];
  const float a = v[i], b = v[i + half];
  v[i] = a * c - b * s;
  v[i + half] = a * s + b * c;
}

__global__ void AppendKvKernel(const float* k, const float* v, int n_tokens, int n_kv_heads,
                               int head_dim, int capacity, int first, float* kc, float* vc) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t total = static_cast<int64_t>(n_tokens) * n_kv_heads * head_dim;
  if (idx >= total) return;
  const int d = static_cast<int>(idx % head_dim);
  const int g = static_cast<int>((idx / head_dim) % n_kv_heads);
  const int t = static_cast<int>(idx / (static_cast<int64_t>(head_dim) * n_kv_heads));
  const int64_t dst = (static_cast<int64_t>(g) * capacity + first + t) * head_dim + d;
  kc[dst] = k[idx];
  vc[dst] = v[idx];
}

__global__ void SwiGluKernel(float* gate, const float* up, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float a = gate[i];
  gate[i] = a / (1.0f + expf(-a)) * up[i];
}

unsigned Blocks(int64_t n) { return static_cast<unsigned>((n + kThreads - 1) / kThreads); }

}  // namespace

cudaError_t LaunchEmbed(const int32_t* tokens, int n, const float* table, int dim, float* x,
                        cudaStream_t stream) {
  EmbedKernel<<<n, kThreads, 0, stream>>>(tokens, table, dim, x);
  return cudaGetLastError();
}

cudaError_t LaunchRmsNorm(const float* x, int rows, int dim, const float* w, float eps,
                          float* out, cudaStream_t stream) {
  RmsNormKernel<<<rows, kThreads, 0, stream>>>(x, dim, w, eps, out);
  return cudaGetLastError();
}

cudaError_t LaunchRope(float* x, int n_tokens, int n_heads, int head_dim, const float* cos,
                       const float* sin, int first, cudaStream_t stream) {
  const int64_t total = static_cast<int64_t>(n_tokens) * n_heads * (head_dim / 2);
  RopeKernel<<<Blocks(total), kThreads, 0, stream>>>(x, n_tokens, n_heads, head_dim, cos, sin,
                                                       first);
  return cudaGetLastError();
}

cudaError_t LaunchAppendKv(const float* k, const float* v, int n_tokens, int n_kv_heads,
                           int head_dim, int capacity, int first, float* k_cache, float* v_cache,
                           cudaStream_t stream) {
  const int64_t total = static_cast<int64_t>(n_tokens) * n_kv_heads * head_dim;
  AppendKvKernel<<<Blocks(total), kThreads, 0, stream>>>(k, v, n_tokens, n_kv_heads, head_dim,
                                                           capacity, first, k_cache, v_cache);
  return cudaGetLastError();
}

cudaError_t LaunchSwiGlu(float* gate, const float* up, int64_t n, cudaStream_t stream) {
  SwiGluKernel<<<Blocks(n), kThreads, 0, stream>>>(gate, up, n);
  return cudaGetLastError();
}

}  // namespace mnemo::kernels::internal
