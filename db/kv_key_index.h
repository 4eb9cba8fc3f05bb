// The key index of one (chunk, layer): per KV head, the clusters
// (attention/key_clusters.h) of the chunk's chunk-local post-RoPE keys
// R(i) k_i, built once when the chunk's KV is put and committed in the same
// WriteBatch as its blocks (db/kv_records.h: `nsid 'k' id layer`). It is
// deleted, evicted, expired and lineage-checked with the chunk's KV, and
// serves the chunk at any start position (attention/context_attention.h).
//
// Value: 0x01, u64 fingerprint hash, u32 n_kv_heads, u32 n_tokens, u32
// head_dim, then per KV head: u32 n_clusters, u32 offsets[n_clusters + 1],
// u16 members[n_tokens], fp16 centroids[n_clusters * head_dim], fp16 value
// means[n_clusters * head_dim] (the value sum divided by the cluster's
// size, so fp16 never overflows), and the checksum trailer
// (common/checksum_frame.h). Little-endian. Bytes per key for d = 128 and
// 16 keys per cluster: 2 + 2 * 128 * 2 / 16 + 4 / 16 = 34.25, against 512
// for the key and value at fp16.
#ifndef MNEMO_DB_KV_KEY_INDEX_H_
#define MNEMO_DB_KV_KEY_INDEX_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "attention/key_clusters.h"

namespace mnemo::db::kvindex {

struct LayerShape {
  int n_kv_heads = 0;
  int n_tokens = 0;
  int head_dim = 0;
};

// Clusters each KV head of one layer's pre-RoPE keys [n_kv_heads,
// n_tokens, head_dim] (rotated here to positions [0, n_tokens), the
// chunk-local frame) with its values, `keys_per_cluster` keys per cluster
// on average. INVALID_ARGUMENT as BuildKeyClusters.
absl::StatusOr<std::vector<attention::KeyClusters>> BuildLayerKeyIndex(
    absl::Span<const float> pre_rope_keys, absl::Span<const float> values, const LayerShape& shape,
    double rope_theta, int keys_per_cluster);

std::string EncodeLayerKeyIndex(uint64_t fingerprint_hash,
                                absl::Span<const attention::KeyClusters> heads);

// Decodes and checks a stored index against the shape its chunk's blocks
// have: DATA_LOSS for a bad checksum, truncation, a shape mismatch, offsets
// that do not partition the keys or members that are not a permutation;
// FAILED_PRECONDITION when it was built for another model
// (`fingerprint_hash`).
absl::StatusOr<std::vector<attention::KeyClusters>> DecodeLayerKeyIndex(
    absl::string_view value, uint64_t fingerprint_hash, const LayerShape& shape);

}  // namespace mnemo::db::kvindex

#endif  // MNEMO_DB_KV_KEY_INDEX_H_
