// Partial attention and its log-sum-exp merge: the CPU reference of the
// attention math, and the seam where attention over a stored context can
// later be replaced by attention over retrieved keys.
//
// Full causal attention of a block of queries over a context is
//   Merge(AttendPartial(q, cache keys), AttendPartial(q, block keys))
// and, because softmax over a union of key sets is the log-sum-exp merge of
// the softmaxes over its parts, the cache part can be swapped for the top-k
// keys a key index returns (RetrievalAttention), or for a partial result
// computed elsewhere (the server), and merged with a local window.
//
// Layouts (all row-major float32):
//   queries   [n_queries, n_heads, head_dim]     (a token's heads adjacent)
//   keys/vals [n_kv_heads, head_stride, head_dim] (a KV head's keys adjacent;
//             head_stride >= n_keys lets a preallocated cache be viewed)
//   output    [n_queries, n_heads, head_dim]
//   lse, max  [n_queries, n_heads]
// Query head h reads KV head h / (n_heads / n_kv_heads) (grouped-query
// attention). Scores are scale * <q, k>.
#ifndef MNEMO_ATTENTION_PARTIAL_H_
#define MNEMO_ATTENTION_PARTIAL_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"

namespace mnemo::attention {

struct AttentionShape {
  int n_heads = 0;     // query heads
  int n_kv_heads = 0;  // KV heads; divides n_heads
  int head_dim = 0;
  float scale = 0.0f;  // softmax scale, usually 1/sqrt(head_dim)
};

// INVALID_ARGUMENT unless every size is positive, n_kv_heads divides n_heads
// and the scale is finite and positive.
absl::Status ValidateShape(const AttentionShape& shape);

// A set of keys and values of every KV head. Borrowed pointers.
struct KeyValueBlock {
  const float* keys = nullptr;    // [n_kv_heads, head_stride, head_dim]
  const float* values = nullptr;  // same layout as keys
  int n_keys = 0;
  int64_t head_stride = 0;  // rows between two KV heads; >= n_keys
  // Position of key j: positions[j] when set (retrieved keys come in any
  // order), else first_position + j.
  const int32_t* positions = nullptr;
  int32_t first_position = 0;
};

// The queries of a block. Query i sits at position first_position + i.
struct QueryBlock {
  const float* queries = nullptr;  // [n_queries, n_heads, head_dim]
  int n_queries = 0;
  int32_t first_position = 0;
};

// Attention of each query head over one key set, normalised over that set
// only. Per (query, head):
//   max = m = the largest unmasked score (-inf when every key is masked),
//   lse = log(sum_j exp(s_j)) = m + log(sum_j exp(s_j - m)), -inf if none,
//   out = sum_j softmax(s)_j v_j (zeros when every key is masked).
struct PartialResult {
  int n_queries = 0;
  int n_heads = 0;
  int head_dim = 0;
  std::vector<float> out;  // [n_queries, n_heads, head_dim]
  std::vector<float> lse;  // [n_queries, n_heads]
  std::vector<float> max;  // [n_queries, n_heads]

  // A result over no keys: out 0, lse and max -inf.
  static PartialResult Empty(int n_queries, int n_heads, int head_dim);
};

// Partial attention of `queries` over `kv`. With `causal`, key j is visible
// to query i only when position(j) <= position(i). Uses BLAS for the
// score and value products.
absl::Status AttendPartial(const AttentionShape& shape, const QueryBlock& queries,
                           const KeyValueBlock& kv, bool causal, PartialResult* result);

// Merges `other` into `acc` (attention over the union of both key sets):
//   m = max(lse_a, lse_b), w_x = exp(lse_x - m),
//   out = (w_a out_a + w_b out_b) / (w_a + w_b), lse = m + log(w_a + w_b),
//   max = max(max_a, max_b).
// Either side may be empty (lse -inf). INVALID_ARGUMENT on shape mismatch.
absl::Status MergePartial(const PartialResult& other, PartialResult* acc);

// Softmax probabilities of every (query, head) over `kv`:
// [n_heads, n_queries, n_keys] (masked keys get 0). For analysis (attention
// statistics), not for the decoding hot path.
absl::Status AttentionProbabilities(const AttentionShape& shape, const QueryBlock& queries,
                                    const KeyValueBlock& kv, bool causal,
                                    std::vector<float>* probs);

}  // namespace mnemo::attention

#endif  // MNEMO_ATTENTION_PARTIAL_H_
