// Host side of the CUDA cluster attention: checks, buffers, copies.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "absl/strings/str_cat.h"
#include "kernels/cluster_attention.h"
#include "kernels/cluster_attention_launch.h"
#include "kernels/cuda_util.h"
#include "kernels/exact_topk.h"

namespace mnemo::kernels {
namespace {

using internal::DeviceArray;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Blocks that fill an H100 (132 SMs) about twice.
constexpr int64_t kTargetBlocks = 264;

// Keys plus estimated clusters of one call; keeps the kernel's int term
// indexes (split starts and ends) far from overflow.
constexpr int64_t kMaxGatheredTerms = int64_t{1} << 30;

}  // namespace

absl::Status ScoreCentroids(const CentroidScoresArgs& a) {
  if (a.head_dim <= 0 || a.n_chunks < 0 || a.top_n < 0) {
    return absl::InvalidArgumentError(absl::StrCat("centroid scores need head_dim >= 1 (got ",
                                                   a.head_dim, "), n_chunks >= 0 (got ",
                                                   a.n_chunks, ") and top_n >= 0 (got ",
                                                   a.top_n, ")"));
  }
  if (a.chunk_offsets == nullptr) return absl::InvalidArgumentError("null chunk_offsets");
  if (a.chunk_offsets[0] != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("chunk_offsets[0] must be 0, got ", a.chunk_offsets[0]));
  }
  for (int k = 0; k < a.n_chunks; ++k) {
    if (a.chunk_offsets[k + 1] < a.chunk_offsets[k]) {
      return absl::InvalidArgumentError(absl::StrCat("chunk_offsets decrease at chunk ", k, ": ",
                                                     a.chunk_offsets[k], " then ",
                                                     a.chunk_offsets[k + 1]));
    }
  }
  const int total = a.chunk_offsets[a.n_chunks];
  if (a.scores == nullptr && a.top_n == 0) return absl::InvalidArgumentError("no output");
  if ((a.top_n > 0 && (a.top_clusters == nullptr || a.top_scores == nullptr)) ||
      (a.n_chunks > 0 && a.query_sums == nullptr) || (total > 0 && a.centroids == nullptr)) {
    return absl::InvalidArgumentError("null buffer");
  }
  if (absl::Status s = CudaDeviceAvailable(); !s.ok()) return s;
  const int keep = std::min(a.top_n, total);
  if (a.top_n > keep) {
    std::fill_n(a.top_clusters + keep, a.top_n - keep, -1);
    std::fill_n(a.top_scores + keep, a.top_n - keep, kNegInf);
  }
  if (total == 0) return absl::OkStatus();

  MNEMO_CUDA_OK(cudaSetDevice(0));
  internal::CudaStream stream;
  MNEMO_CUDA_OK(stream.Create());
  const size_t d = static_cast<size_t>(a.head_dim);
  DeviceArray<float> q, cent, scores;
  DeviceArray<int32_t> offsets;
  MNEMO_CUDA_OK(q.Allocate(static_cast<size_t>(a.n_chunks) * d));
  MNEMO_CUDA_OK(cent.Allocate(static_cast<size_t>(total) * d));
  MNEMO_CUDA_OK(scores.Allocate(total));
  MNEMO_CUDA_OK(offsets.Allocate(a.n_chunks + 1));
  MNEMO_CUDA_OK(q.CopyFrom(a.query_sums, static_cast<size_t>(a.n_chunks) * d, stream.get()));
  MNEMO_CUDA_OK(cent.CopyFrom(a.centroids, static_cast<size_t>(total) * d, stream.get()));
  MNEMO_CUDA_OK(offsets.CopyFrom(a.chunk_offsets, a.n_chunks + 1, stream.get()));

  internal::CentroidScoresParams p;
  p.head_dim = a.head_dim;
  p.n_chunks = a.n_chunks;
  p.total = total;
  p.query_sums = q.get();
  p.chunk_offsets = offsets.get();
  p.centroids = cent.get();
  p.scores = scores.get();
  MNEMO_CUDA_OK(internal::LaunchCentroidScores(p, stream.get()));
  if (a.scores != nullptr) MNEMO_CUDA_OK(scores.CopyTo(a.scores, total, stream.get()));
  DeviceArray<int32_t> ids, sorted_ids;
  DeviceArray<float> sorted_scores;
  DeviceArray<unsigned char> temp;
  if (keep > 0) {
    MNEMO_CUDA_OK(ids.Allocate(total));
    MNEMO_CUDA_OK(sorted_ids.Allocate(total));
    MNEMO_CUDA_OK(sorted_scores.Allocate(total));
    MNEMO_CUDA_OK(internal::LaunchIota(ids.get(), total, stream.get()));
    size_t temp_bytes = 0;
    MNEMO_CUDA_OK(internal::SortScoresDescending(nullptr, &temp_bytes, scores.get(),
                                                 sorted_scores.get(), ids.get(), sorted_ids.get(),
                                                 total, stream.get()));
    MNEMO_CUDA_OK(temp.Allocate(temp_bytes));
    MNEMO_CUDA_OK(internal::SortScoresDescending(temp.get(), &temp_bytes, scores.get(),
                                                 sorted_scores.get(), ids.get(), sorted_ids.get(),
                                                 total, stream.get()));
    MNEMO_CUDA_OK(sorted_ids.CopyTo(a.top_clusters, keep, stream.get()));
    MNEMO_CUDA_OK(sorted_scores.CopyTo(a.top_scores, keep, stream.get()));
  }
  MNEMO_CUDA_OK(cudaStreamSynchronize(stream.get()));
  return absl::OkStatus();
}

absl::Status AttendGatheredClusters(const GatheredClusterAttentionArgs& a) {
  if (a.group < 1 || a.group > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("group must be in [1, 65535], got ", a.group));
  }
  if (a.head_dim <= 0 || a.head_dim > kMaxClusterHeadDim) {
    return absl::InvalidArgumentError(
        absl::StrCat("head_dim must be in [1, ", kMaxClusterHeadDim, "], got ", a.head_dim));
  }
  if (!(a.scale > 0.0f) || !std::isfinite(a.scale)) {
    return absl::InvalidArgumentError("scale must be finite and positive");
  }
  const int64_t n_terms = int64_t{a.n_keys} + a.n_estimated;
  if (a.n_keys < 0 || a.n_estimated < 0 || n_terms > kMaxGatheredTerms) {
    return absl::InvalidArgumentError(absl::StrCat("bad key (", a.n_keys, ") or cluster (",
                                                   a.n_estimated, ") count"));
  }
  if (a.queries == nullptr || a.out == nullptr || a.lse == nullptr || a.max == nullptr ||
      (a.n_keys > 0 && (a.keys == nullptr || a.values == nullptr)) ||
      (a.n_estimated > 0 &&
       (a.centroids == nullptr || a.value_sums == nullptr || a.sizes == nullptr))) {
    return absl::InvalidArgumentError("null buffer");
  }
  for (int e = 0; e < a.n_estimated; ++e) {
    if (a.sizes[e] < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("estimated cluster ", e, " has size ", a.sizes[e]));
    }
  }
  if (absl::Status s = CudaDeviceAvailable(); !s.ok()) return s;
  const size_t d = static_cast<size_t>(a.head_dim);
  const size_t g = static_cast<size_t>(a.group);
  if (n_terms == 0) {  // nothing selected
    std::fill_n(a.out, g * d, 0.0f);
    std::fill_n(a.lse, g, kNegInf);
    std::fill_n(a.max, g, kNegInf);
    return absl::OkStatus();
  }

  // Splits of a multiple of the block's terms, about kTargetBlocks blocks.
  constexpr int64_t kBlock = internal::kGatheredBlockTerms;
  const int64_t wanted_splits = std::max<int64_t>(1, (kTargetBlocks + a.group - 1) / a.group);
  const int64_t per_split = (n_terms + wanted_splits - 1) / wanted_splits;
  const int64_t split_len = (per_split + kBlock - 1) / kBlock * kBlock;
  const int64_t n_splits = (n_terms + split_len - 1) / split_len;

  MNEMO_CUDA_OK(cudaSetDevice(0));
  internal::CudaStream stream;
  MNEMO_CUDA_OK(stream.Create());
  const size_t nk = static_cast<size_t>(a.n_keys), ne = static_cast<size_t>(a.n_estimated);
  const size_t parts = g * static_cast<size_t>(n_splits);
  DeviceArray<float> q, k, v, c, vs, part_m, part_top, part_l, part_acc, out, lse, max;
  DeviceArray<int32_t> sizes;
  MNEMO_CUDA_OK(q.Allocate(g * d));
  MNEMO_CUDA_OK(k.Allocate(nk * d));
  MNEMO_CUDA_OK(v.Allocate(nk * d));
  MNEMO_CUDA_OK(c.Allocate(ne * d));
  MNEMO_CUDA_OK(vs.Allocate(ne * d));
  MNEMO_CUDA_OK(sizes.Allocate(ne));
  for (auto* p : {&part_m, &part_top, &part_l}) MNEMO_CUDA_OK(p->Allocate(parts));
  MNEMO_CUDA_OK(part_acc.Allocate(parts * d));
  MNEMO_CUDA_OK(out.Allocate(g * d));
  MNEMO_CUDA_OK(lse.Allocate(g));
  MNEMO_CUDA_OK(max.Allocate(g));
  MNEMO_CUDA_OK(q.CopyFrom(a.queries, g * d, stream.get()));
  if (nk > 0) {
    MNEMO_CUDA_OK(k.CopyFrom(a.keys, nk * d, stream.get()));
    MNEMO_CUDA_OK(v.CopyFrom(a.values, nk * d, stream.get()));
  }
  if (ne > 0) {
    MNEMO_CUDA_OK(c.CopyFrom(a.centroids, ne * d, stream.get()));
    MNEMO_CUDA_OK(vs.CopyFrom(a.value_sums, ne * d, stream.get()));
    MNEMO_CUDA_OK(sizes.CopyFrom(a.sizes, ne, stream.get()));
  }

  internal::GatheredClusterParams p;
  p.group = a.group;
  p.head_dim = a.head_dim;
  p.scale = a.scale;
  p.queries = q.get();
  p.n_keys = a.n_keys;
  p.keys = k.get();
  p.values = v.get();
  p.n_estimated = a.n_estimated;
  p.centroids = c.get();
  p.value_sums = vs.get();
  p.sizes = sizes.get();
  p.n_splits = static_cast<int>(n_splits);
  p.split_len = static_cast<int>(split_len);
  p.part_m = part_m.get();
  p.part_top = part_top.get();
  p.part_l = part_l.get();
  p.part_acc = part_acc.get();
  p.out = out.get();
  p.lse = lse.get();
  p.max = max.get();
  MNEMO_CUDA_OK(internal::LaunchGatheredClusterAttention(p, stream.get()));
  MNEMO_CUDA_OK(out.CopyTo(a.out, g * d, stream.get()));
  MNEMO_CUDA_OK(lse.CopyTo(a.lse, g, stream.get()));
  MNEMO_CUDA_OK(max.CopyTo(a.max, g, stream.get()));
  MNEMO_CUDA_OK(cudaStreamSynchronize(stream.get()));
  return absl::OkStatus();
}

}  // namespace mnemo::kernels
