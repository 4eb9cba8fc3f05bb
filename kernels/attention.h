// Partial attention on the GPU: the CUDA version of attention/partial.h
// (AttendPartial, MergePartial), with the same layouts and the same
// (out, lse, max) contract; tests/kernels/attention_test.cc compares the two.
//
// Plain C++ interface: no CUDA types, so callers build with or without
// CUDA. Without CUDA every call returns UNAVAILABLE.
#ifndef MNEMO_KERNELS_ATTENTION_H_
#define MNEMO_KERNELS_ATTENTION_H_

#include <cstdint>

#include "absl/status/status.h"

namespace mnemo::kernels {

// Largest head_dim the attention kernel handles.
inline constexpr int kMaxAttentionHeadDim = 256;

// All pointers are HOST memory; the call copies to the device, runs and
// copies back (synchronous). Layouts as in attention/partial.h:
// queries/out [n_queries, n_heads, head_dim], keys/values [n_kv_heads,
// head_stride, head_dim], lse/max [n_queries, n_heads].
struct PartialAttentionArgs {
  int n_heads = 0;
  int n_kv_heads = 0;  // divides n_heads; query head h reads h / (n_heads / n_kv_heads)
  int head_dim = 0;    // 1..kMaxAttentionHeadDim
  float scale = 0.0f;
  const float* queries = nullptr;
  int n_queries = 0;
  int32_t query_first_position = 0;  // query i sits at this + i
  const float* keys = nullptr;
  const float* values = nullptr;
  int n_keys = 0;
  int64_t head_stride = 0;                // >= n_keys
  const int32_t* key_positions = nullptr;  // [n_keys] or null: key_first_position + j
  int32_t key_first_position = 0;
  bool causal = false;  // key j visible to query i only if pos(j) <= pos(i)
  float* out = nullptr;
  float* lse = nullptr;  // log-sum-exp of the scaled scores; -inf when all masked
  float* max = nullptr;  // largest unmasked scaled score; -inf when all masked
};

// INVALID_ARGUMENT for bad sizes or null buffers, UNAVAILABLE without
// CUDA or a device, INTERNAL for CUDA failures. Thread-safe.
absl::Status PartialAttention(const PartialAttentionArgs& args);

// Merges partial b into partial a (host memory, rows = n_queries * n_heads):
// attention/partial.h MergePartial on the GPU. Same error contract.
absl::Status MergePartialAttention(int rows, int head_dim, float* a_out, float* a_lse,
                                   float* a_max, const float* b_out, const float* b_lse,
                                   const float* b_max);

}  // namespace mnemo::kernels

#endif  // MNEMO_KERNELS_ATTENTION_H_
