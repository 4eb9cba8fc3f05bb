// The GPU forward pass of the reference llama-style decoder (decoder/):
// weights uploaded once, a KV cache on the device, cuBLAS fp32 GEMMs for
// the projections, kernels for RMSNorm, RoPE, SwiGLU and attention (the
// partial-attention kernel of kernels/attention.h over the whole cache with
// the causal mask, which equals the CPU's cache-partial merged with the
// block-partial).
//
// Plain C++ interface (no CUDA types); without CUDA, Create returns
// UNAVAILABLE. decoder/session.h wraps it as Device::kCuda.
#ifndef MNEMO_KERNELS_LLAMA_GPU_H_
#define MNEMO_KERNELS_LLAMA_GPU_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace mnemo::kernels {

struct LlamaGpuConfig {
  int vocab_size = 0;
  int dim = 0;
  int n_layers = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;  // even, <= kMaxAttentionHeadDim
  int ffn_dim = 0;
  double rope_theta = 0;
  float norm_eps = 0;
  int capacity = 0;  // KV cache positions
};

// HOST pointers, nn.Linear layout [out, in]; copied to the device by Create.
struct LlamaGpuLayer {
  const float* attn_norm = nullptr;
  const float* wq = nullptr;
  const float* wk = nullptr;
  const float* wv = nullptr;
  const float* wo = nullptr;
  const float* ffn_norm = nullptr;
  const float* w1 = nullptr;
  const float* w3 = nullptr;
  const float* w2 = nullptr;
};

struct LlamaGpuWeights {
  const float* embeddings = nullptr;  // [vocab, dim], also the output projection
  const float* final_norm = nullptr;  // [dim]
  std::vector<LlamaGpuLayer> layers;
};

// One sequence on device 0. Not thread-safe.
class LlamaGpu {
 public:
  virtual ~LlamaGpu() = default;
  // UNAVAILABLE without CUDA or a device; INVALID_ARGUMENT for bad sizes;
  // INTERNAL (or RESOURCE_EXHAUSTED for out of memory) on CUDA failures.
  static absl::StatusOr<std::unique_ptr<LlamaGpu>> Create(const LlamaGpuConfig& config,
                                                         const LlamaGpuWeights& weights);
  // Runs tokens (ids already validated by the caller) at positions
  // [first_position() + length(), +n), appends K/V to the device cache, and
  // copies to `logits` the last row ([vocab]) or, with all_logits, every
  // row ([n, vocab]); `logits` may be null for none. OUT_OF_RANGE when the
  // cache is full.
  virtual absl::Status Forward(const int32_t* tokens, int n, bool all_logits,
                               std::vector<float>* logits) = 0;
  // Copies n positions of K (after RoPE) and V of every layer from HOST
  // memory into the cache at slots [length(), +n): keys[l] and values[l]
  // are [n_kv_heads, n, head_dim] (shapes and values checked by the
  // caller). OUT_OF_RANGE when the cache has no room (unchanged);
  // INTERNAL on a CUDA failure.
  virtual absl::Status AppendKv(const std::vector<const float*>& keys,
                                const std::vector<const float*>& values, int n) = 0;
  // Cache slots filled.
  virtual int length() const = 0;
  // Position of cache slot 0 (0 unless ResetAt moved it).
  virtual int first_position() const = 0;
  // Forgets every position; the next token goes to position 0.
  virtual void Reset() = 0;
  // Forgets every position; the next token goes to `first_position`.
  // INVALID_ARGUMENT (unchanged) when it is negative or the capacity's last
  // position would exceed INT32_MAX. The RoPE tables for the new positions
  // are built by the next Forward.
  virtual absl::Status ResetAt(int first_position) = 0;
};

}  // namespace mnemo::kernels

#endif  // MNEMO_KERNELS_LLAMA_GPU_H_
