// Internal: device-side parameters and launchers of the attention kernels
// and of the elementwise ops of the GPU decoder. Included by the .cu files
// and the CUDA host files of kernels/; callers use kernels/attention.h and
// kernels/llama_gpu.h.
#ifndef MNEMO_KERNELS_ATTENTION_LAUNCH_H_
#define MNEMO_KERNELS_ATTENTION_LAUNCH_H_

#include <cstdint>

#include <cuda_runtime_api.h>

namespace mnemo::kernels::internal {

// Device pointers; layouts of kernels/attention.h.
struct PartialAttentionParams {
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  float scale = 0.0f;
  const float* queries = nullptr;
  int n_queries = 0;
  int32_t query_first_position = 0;
  const float* keys = nullptr;
  const float* values = nullptr;
  int n_keys = 0;
  int64_t head_stride = 0;
  const int32_t* key_positions = nullptr;
  int32_t key_first_position = 0;
  bool causal = false;
  float* out = nullptr;
  float* lse = nullptr;  // may be null
  float* max = nullptr;  // may be null
};

// One block of 128 threads per (query, head), online softmax over chunks
// of 128 keys. head_dim <= 256.
cudaError_t LaunchPartialAttention(const PartialAttentionParams& p, cudaStream_t stream);

// a <- merge(a, b) over `rows` (query, head) rows.
cudaError_t LaunchMergePartial(int rows, int head_dim, float* a_out, float* a_lse, float* a_max,
                               const float* b_out, const float* b_lse, const float* b_max,
                               cudaStream_t stream);

// x[t, :] = table[tokens[t], :]
cudaError_t LaunchEmbed(const int32_t* tokens, int n, const float* table, int dim, float* x,
                        cudaStream_t stream);
// out[r, :] = x[r, :] * rsqrt(mean(x[r]^2) + eps) * w
cudaError_t LaunchRmsNorm(const float* x, int rows, int dim, const float* w, float eps,
                          float* out, cudaStream_t stream);
// Rotates x [n_tokens, n_heads, head_dim] in place ("rotate half");
// cos/sin tables [positions, head_dim / 2], token t at position first + t.
cudaError_t LaunchRope(float* x, int n_tokens, int n_heads, int head_dim, const float* cos,
                       const float* sin, int first, cudaStream_t stream);
// cache[g, first + t, :] = src[t, g, :] for K and V ([n_kv_heads, capacity, hd]).
cudaError_t LaunchAppendKv(const float* k, const float* v, int n_tokens, int n_kv_heads,
                           int head_dim, int capacity, int first, float* k_cache, float* v_cache,
                           cudaStream_t stream);
// gate[i] = silu(gate[i]) * up[i]
cudaError_t LaunchSwiGlu(float* gate, const float* up, int64_t n, cudaStream_t stream);

}  // namespace mnemo::kernels::internal

#endif  // MNEMO_KERNELS_ATTENTION_LAUNCH_H_
