// Retrieval attention over a context of stored chunks placed at start
// positions: the decoder's query heads at position p attend to the chunks'
// keys through each chunk's position-free key clusters
// (attention/key_clusters.h), which were built once over the chunk's
// chunk-local post-RoPE keys R(i) k_i.
//
// Since <R(p) q, R(s + i) k_i> = <R(-s) R(p) q, R(i) k_i>, the query is
// rotated once to its own position p and then, per chunk, by -s into the
// chunk's frame (ContextLayout keeps each chunk's rotation tables). Per
// (query, KV head) the clusters of all chunks are ranked together by the
// group's summed score; the best exact share is attended exactly, the next
// estimated share from the cluster summaries (attention/
// cluster_attention.h). The result is a partial (attention/partial.h) the
// decoder merges with its own steady zone (sink and recent tokens).
//
// SelectContextKeys is the top-k variant: the exactly selected clusters'
// keys rotated to their absolute positions and their values, for a decoder
// that attends itself.
#ifndef MNEMO_ATTENTION_CONTEXT_ATTENTION_H_
#define MNEMO_ATTENTION_CONTEXT_ATTENTION_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "attention/cluster_attention.h"
#include "attention/key_clusters.h"
#include "attention/partial.h"

namespace mnemo::attention {

// Where the chunks of a context sit: start positions and token counts, and
// per chunk the float32 cos / sin of its start's RoPE angles (computed in
// float64, as attention/rope.h does).
class ContextLayout {
 public:
  // INVALID_ARGUMENT for mismatched sizes, no chunks, a chunk without
  // tokens, a start < 0, an end past kMaxRopePosition, two chunks whose
  // positions overlap (naming both), or what ValidateRope refuses.
  static absl::StatusOr<ContextLayout> Create(int head_dim, double theta,
                                              std::vector<int64_t> starts,
                                              std::vector<int> n_tokens);

  int size() const { return static_cast<int>(starts_.size()); }
  int head_dim() const { return head_dim_; }
  double theta() const { return theta_; }
  int64_t start(int chunk) const { return starts_[chunk]; }
  int n_tokens(int chunk) const { return n_tokens_[chunk]; }
  // One past the last position any chunk covers.
  int64_t end() const { return end_; }
  uint64_t total_tokens() const { return total_tokens_; }

  // Rotates `n` vectors [n, head_dim] by -start(chunk) (into the chunk's
  // frame) or by +start(chunk) (out of it). `in` may equal `out`.
  void ToChunkFrame(int chunk, const float* in, int n, float* out) const;
  void FromChunkFrame(int chunk, const float* in, int n, float* out) const;

 private:
  void Rotate(int chunk, const float* in, int n, float* out, float sign) const;

  int head_dim_ = 0;
  double theta_ = 0;
  std::vector<int64_t> starts_;
  std::vector<int> n_tokens_;
  int64_t end_ = 0;
  uint64_t total_tokens_ = 0;
  std::vector<float> cos_, sin_;  // [chunks, head_dim / 2]
};

// One layer of a placed chunk. Borrowed.
struct ChunkLayerView {
  const float* keys = nullptr;    // [n_kv_heads, n_tokens, head_dim], chunk-local post-RoPE
  const float* values = nullptr;  // [n_kv_heads, n_tokens, head_dim]
  const KeyClusters* clusters = nullptr;  // [n_kv_heads], over the keys and values above
};

// Every chunk's centroids of one layer packed per KV head, [clusters of all
// chunks in chunk order, head_dim], so that scoring streams through one
// array instead of one small allocation per (chunk, KV head). Built once
// per layer (PackCentroids) and passed to AttendContext / SelectContextKeys;
// results are the same with or without it.
struct PackedCentroids {
  std::vector<std::vector<float>> heads;    // per KV head
  std::vector<std::vector<int>> offsets;    // per KV head, [chunks + 1]: chunk c's first row
};
PackedCentroids PackCentroids(absl::Span<const ChunkLayerView> chunks, int n_kv_heads,
                              int head_dim);

struct ContextAttentionStats {
  // Summed over queries and KV heads: keys of the context, keys scored
  // exactly, clusters, clusters attended exactly and estimated.
  uint64_t keys = 0;
  uint64_t exact_keys = 0;
  uint64_t clusters = 0;
  uint64_t exact_clusters = 0;
  uint64_t estimated_clusters = 0;

  double exact_key_fraction() const { return keys == 0 ? 0 : double(exact_keys) / double(keys); }
};

// INVALID_ARGUMENT unless `chunks` has one view per chunk of `layout` with
// n_kv_heads clusters each of the layout's token counts and head_dim, the
// layout's head_dim is the shape's, and every query position
// [queries.first_position, + n_queries) lies at or after layout.end() (a
// query never attends to a chunk that is not wholly before it).
absl::Status ValidateContext(const AttentionShape& shape, const ContextLayout& layout,
                             absl::Span<const ChunkLayerView> chunks, const QueryBlock& queries);

// Attention of `queries` (pre-RoPE, [n_queries, n_heads, head_dim], query i
// at queries.first_position + i) over the chunks, through their clusters
// with `budget`'s shares of all the context's clusters per (query, KV
// head). `result` gets [n_queries, n_heads] partials. Errors of
// ValidateContext and ValidateBudget, or a non-finite query
// (INVALID_ARGUMENT). Runs the (query, KV head) pairs on the OpenMP team.
absl::Status AttendContext(const AttentionShape& shape, const ContextLayout& layout,
                           absl::Span<const ChunkLayerView> chunks, const QueryBlock& queries,
                           const ClusterBudget& budget, PartialResult* result,
                           ContextAttentionStats* stats, const PackedCentroids* packed = nullptr);

// The keys of the clusters AttendContext would attend exactly with
// `exact_fraction`, per KV head the union over the queries and the group,
// in ascending position order.
struct SelectedKeys {
  int head_dim = 0;
  std::vector<std::vector<int32_t>> positions;  // per KV head: absolute positions
  std::vector<std::vector<float>> keys;    // per KV head: [n, head_dim], RoPE at the positions
  std::vector<std::vector<float>> values;  // per KV head: [n, head_dim]
};
absl::Status SelectContextKeys(const AttentionShape& shape, const ContextLayout& layout,
                               absl::Span<const ChunkLayerView> chunks,
                               const QueryBlock& queries, double exact_fraction,
                               SelectedKeys* selected, ContextAttentionStats* stats,
                               const PackedCentroids* packed = nullptr);

// Attention of `queries` (AFTER RoPE, [n_queries, n_heads, head_dim]) over
// `selected` (each KV head its own keys), no causal mask: the decoder's
// side of a top-k fetch. INVALID_ARGUMENT for mismatched shapes.
absl::Status AttendSelectedKeys(const AttentionShape& shape, const float* queries, int n_queries,
                                const SelectedKeys& selected, PartialResult* result);

}  // namespace mnemo::attention

#endif  // MNEMO_ATTENTION_CONTEXT_ATTENTION_H_
