// A retrieval-attention context over a store's chunk KV: stored chunks
// placed at start positions of a decoder's sequence, answering, per layer
// and step, attention pushdown (the partial attention of the decoder's
// queries over the chunks, through their key indexes) and top-k fetches
// (the keys and values that attention would read exactly).
//
// Each layer is read from the store the first time a step asks for it:
// every chunk's block and key index of that layer from one snapshot taken
// when the context was opened (Store::ReadKv with_key_index), keys rotated
// into their chunk-local frame, and kept for the context's lifetime (a
// decoder asks for every layer at every step). A chunk deleted or evicted
// after the open is still served from that snapshot. The math is
// attention/context_attention.h's.
//
// Not thread-safe (one per decoder stream). Must be destroyed before
// Store::Close (it holds a KvReader).
#ifndef MNEMO_DB_KV_CONTEXT_H_
#define MNEMO_DB_KV_CONTEXT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "attention/context_attention.h"
#include "attention/partial.h"
#include "db/kv.h"
#include "db/store.h"

namespace mnemo::db {

struct KvContextOptions {
  std::vector<std::string> chunk_ids;  // 1..max_write_batch distinct chunks holding KV
  std::vector<int64_t> starts;         // one start position per chunk, no overlaps
  ModelFingerprint model;              // must equal the namespace's
};

class KvContext {
 public:
  virtual ~KvContext() = default;

  virtual const attention::ContextLayout& layout() const = 0;
  virtual const attention::AttentionShape& shape() const = 0;

  // Attention of `queries` (pre-RoPE [n_queries, n_heads, head_dim], query
  // i at queries.first_position + i, every one at or after the context's
  // end) over the chunks' keys of `layer`, with `budget` (attention/
  // context_attention.h AttendContext). INVALID_ARGUMENT for a layer out
  // of range or what AttendContext refuses; the read's errors (DATA_LOSS,
  // FAILED_PRECONDITION) when the layer is first loaded.
  virtual absl::Status Attend(uint32_t layer, const attention::QueryBlock& queries,
                              const attention::ClusterBudget& budget,
                              attention::PartialResult* result,
                              attention::ContextAttentionStats* stats) = 0;

  // The keys (RoPE at their absolute positions) and values the exact share
  // `exact_fraction` selects for `queries` (SelectContextKeys). Errors as
  // Attend.
  virtual absl::Status FetchTopK(uint32_t layer, const attention::QueryBlock& queries,
                                 double exact_fraction, attention::SelectedKeys* selected,
                                 attention::ContextAttentionStats* stats) = 0;

  // Layers read so far and the bytes they hold in memory.
  virtual uint32_t layers_loaded() const = 0;
  virtual uint64_t bytes_loaded() const = 0;
};

// Opens a context over `store`'s namespace `ns`. NOT_FOUND for an unknown
// namespace or a chunk without KV (naming it); FAILED_PRECONDITION for a
// model that is not the namespace's; INVALID_ARGUMENT for duplicate ids, a
// start count that is not one per chunk, or positions that overlap
// (ContextLayout::Create).
absl::StatusOr<std::unique_ptr<KvContext>> OpenKvContext(Store* store, absl::string_view ns,
                                                         const KvContextOptions& options);

}  // namespace mnemo::db

#endif  // MNEMO_DB_KV_CONTEXT_H_
