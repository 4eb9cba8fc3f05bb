// Retrieval attention through key clusters on the GPU (issue 12): the CUDA
// versions of the two hot loops of attention/cluster_attention.h.
//
//  - ScoreCentroids: the ranking scores RankClusters computes, <summed
//    query in the chunk's frame, centroid>, for the clusters of many chunks
//    at once, and optionally their top n in RankClusters' order.
//  - AttendGatheredClusters: AttendRanked for one query group over keys and
//    cluster summaries the host has gathered into one common frame (keys
//    and centroids rotated to their absolute positions, values and value
//    sums as they are), so the device does no rotation.
//
// tests/kernels/cluster_attention_test.cc compares both with attention/.
//
// Plain C++ interface: no CUDA types, so callers build with or without
// CUDA. Without CUDA every call returns UNAVAILABLE.
#ifndef MNEMO_KERNELS_CLUSTER_ATTENTION_H_
#define MNEMO_KERNELS_CLUSTER_ATTENTION_H_

#include <cstdint>

#include "absl/status/status.h"

namespace mnemo::kernels {

// Largest head_dim AttendGatheredClusters handles.
inline constexpr int kMaxClusterHeadDim = 256;

// All pointers are HOST memory; the call copies to the device, runs and
// copies back (synchronous).
//
// Cluster c (a global index: the chunks' clusters concatenated in chunk
// order) belongs to the chunk k with chunk_offsets[k] <= c <
// chunk_offsets[k + 1] and scores
//   scores[c] = <query_sums[k], centroids[c]>
// (unscaled, as RankClusters). The top n are the n largest scores, best
// first, ties to the lower global index: RankClusters' order over the same
// chunks as sources (lower source, then lower cluster). NaN scores rank
// arbitrarily.
struct CentroidScoresArgs {
  int head_dim = 0;  // >= 1
  int n_chunks = 0;  // >= 0
  const float* query_sums = nullptr;       // [n_chunks, head_dim], each in its chunk's frame
  const int32_t* chunk_offsets = nullptr;  // [n_chunks + 1]: 0 first, non-decreasing
  const float* centroids = nullptr;        // [chunk_offsets[n_chunks], head_dim]
  float* scores = nullptr;                 // [total clusters], or null when only top_n is wanted
  int top_n = 0;  // >= 0; 0 selects nothing
  // [top_n] each, or null when top_n is 0: the best min(top_n, total)
  // clusters' global indexes and scores; the rest is padded with -1, -inf.
  int32_t* top_clusters = nullptr;
  float* top_scores = nullptr;
};

// INVALID_ARGUMENT for bad sizes, bad offsets, null buffers or no output;
// UNAVAILABLE without CUDA or a device; INTERNAL for CUDA failures.
// Thread-safe.
absl::Status ScoreCentroids(const CentroidScoresArgs& args);

// One query group (the `group` query heads of one KV head) over
//  - n_keys exact keys with their values (the members of the exactly
//    attended clusters, gathered by the host), and
//  - n_estimated estimated clusters: centroid, value sum and size each,
// all in the queries' frame. Per query head g, with s = scale * <q_g, k>:
//   an exact key adds exp(s) to the softmax denominator, exp(s) * v to the
//   numerator; an estimated cluster of n keys with centroid c and value sum
//   V adds n * exp(s_c) and exp(s_c) * V; one stabiliser over all terms.
//   out[g] = numerator / denominator, lse[g] = log(denominator),
//   max[g] = the largest exact score or estimated centroid score;
//   with nothing selected out[g] = 0 and lse[g] = max[g] = -inf.
// This is attention::AttendRanked (attention/cluster_attention.h) with
// the ranked clusters' keys and summaries laid out flat; the result is a
// partial mergeable with attention::MergePartial. A cluster of size 0 only
// counts towards max (its value sum must be 0, as KeyClusters' are).
struct GatheredClusterAttentionArgs {
  int group = 0;     // query heads, >= 1
  int head_dim = 0;  // 1..kMaxClusterHeadDim
  float scale = 0.0f;
  const float* queries = nullptr;  // [group, head_dim]
  int n_keys = 0;                  // >= 0
  const float* keys = nullptr;     // [n_keys, head_dim]
  const float* values = nullptr;   // [n_keys, head_dim]
  int n_estimated = 0;                  // >= 0; n_keys + n_estimated <= 2^30
  const float* centroids = nullptr;     // [n_estimated, head_dim]
  const float* value_sums = nullptr;    // [n_estimated, head_dim]
  const int32_t* sizes = nullptr;       // [n_estimated], each >= 0
  float* out = nullptr;  // [group, head_dim]
  float* lse = nullptr;  // [group]
  float* max = nullptr;  // [group]
};

// INVALID_ARGUMENT for bad sizes, a negative cluster size, a non-finite or
// non-positive scale or null buffers; UNAVAILABLE without CUDA or a
// device; INTERNAL for CUDA failures. Thread-safe.
absl::Status AttendGatheredClusters(const GatheredClusterAttentionArgs& args);

}  // namespace mnemo::kernels

#endif  // MNEMO_KERNELS_CLUSTER_ATTENTION_H_
