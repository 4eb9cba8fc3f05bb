#include "attention/context_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "attention/rope.h"
#include "attention/vector_ops.h"
#include "common/status_macros.h"

namespace mnemo::attention {
namespace {

// Pre-RoPE queries [n, n_heads, d] rotated for their positions.
std::vector<float> RotatedQueries(const AttentionShape& shape, double theta,
                                  const QueryBlock& q) {
  std::vector<float> out(q.queries,
                         q.queries + size_t(q.n_queries) * shape.n_heads * shape.head_dim);
  std::vector<double> cos, sin;
  RopeTables(shape.head_dim, theta, q.first_position, q.n_queries, &cos, &sin);
  ApplyRope(out.data(), q.n_queries, shape.n_heads, shape.head_dim, cos, sin);
  return out;
}

absl::Status CheckFinite(const float* x, size_t n, const char* what) {
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) {
      return absl::InvalidArgumentError(absl::StrCat(what, " contain NaN or Inf at ", i));
    }
  }
  return absl::OkStatus();
}

// The clusters one (query, KV head) ranks: every chunk's clusters of that
// head, with the group's summed query rotated into each chunk's frame; the
// group's own queries are rotated lazily for the chunks the ranking picks.
class HeadContext {
 public:
  HeadContext(const ContextLayout& layout, absl::Span<const ChunkLayerView> chunks, int kv_head,
              const float* group_queries, int group)
      : layout_(layout), group_queries_(group_queries), group_(group), d_(layout.head_dim()) {
    const int n = layout.size();
    std::vector<float> sum(d_, 0.0f);
    for (int g = 0; g < group; ++g) Axpy(1.0f, group_queries + size_t(g) * d_, sum.data(), d_);
    sums_.resize(size_t(n) * d_);
    sources_.resize(n);
    for (int c = 0; c < n; ++c) {
      layout.ToChunkFrame(c, sum.data(), 1, &sums_[size_t(c) * d_]);
      const size_t head_offset = size_t(kv_head) * layout.n_tokens(c) * d_;
      ClusterSource& s = sources_[c];
      s.clusters = &chunks[c].clusters[kv_head];
      s.keys = chunks[c].keys + head_offset;
      s.values = chunks[c].values + head_offset;
      s.query_sum = &sums_[size_t(c) * d_];
      total_clusters_ += s.clusters->n_clusters;
    }
  }

  int total_clusters() const { return total_clusters_; }
  absl::Span<const ClusterSource> sources() const { return sources_; }

  // Every cluster with its ranking score, from centroids packed for this
  // KV head (PackCentroids).
  std::vector<ClusterRef> ScoreFromPacked(const PackedCentroids& packed, int kv_head) const {
    const std::vector<float>& rows = packed.heads[kv_head];
    const std::vector<int>& off = packed.offsets[kv_head];
    std::vector<ClusterRef> all(static_cast<size_t>(off.back()));
    std::vector<float> scores;
    for (size_t c = 0; c < sources_.size(); ++c) {
      const int n = off[c + 1] - off[c];
      scores.resize(n);
      DotRows(&rows[size_t(off[c]) * d_], n, sources_[c].query_sum, d_, scores.data());
      for (int k = 0; k < n; ++k) all[off[c] + k] = {static_cast<int>(c), k, scores[k]};
    }
    return all;
  }

  // Rotates the group's queries into the frame of every chunk `ranked`
  // names.
  void PrepareQueries(absl::Span<const ClusterRef> ranked) {
    std::vector<int> touched;
    std::vector<char> seen(sources_.size(), 0);
    for (const ClusterRef& r : ranked) {
      if (sources_[r.source].queries == nullptr && !seen[r.source]) {
        seen[r.source] = 1;
        touched.push_back(r.source);
      }
    }
    frames_.resize(touched.size() * group_ * d_);
    for (size_t i = 0; i < touched.size(); ++i) {
      float* f = &frames_[i * group_ * d_];
      layout_.ToChunkFrame(touched[i], group_queries_, group_, f);
      sources_[touched[i]].queries = f;
    }
  }

 private:
  const ContextLayout& layout_;
  const float* group_queries_;
  int group_, d_;
  int total_clusters_ = 0;
  std::vector<float> sums_, frames_;
  std::vector<ClusterSource> sources_;
};

// The scored clusters of the packed centroids, or null (SelectClusters
// scores them itself).
std::vector<ClusterRef>* Scored(const HeadContext& ctx, const PackedCentroids* packed, int kv_head,
                                std::vector<ClusterRef>* buffer) {
  if (packed == nullptr) return nullptr;
  *buffer = ctx.ScoreFromPacked(*packed, kv_head);
  return buffer;
}

void AddStats(const ClusterAttentionStats& s, int clusters, int keys, ContextAttentionStats* out) {
  out->keys += static_cast<uint64_t>(keys);
  out->exact_keys += static_cast<uint64_t>(s.exact_keys);
  out->clusters += static_cast<uint64_t>(clusters);
  out->exact_clusters += static_cast<uint64_t>(s.exact_clusters);
  out->estimated_clusters += static_cast<uint64_t>(s.estimated_clusters);
}

}  // namespace

absl::StatusOr<ContextLayout> ContextLayout::Create(int head_dim, double theta,
                                                    std::vector<int64_t> starts,
                                                    std::vector<int> n_tokens) {
  if (starts.size() != n_tokens.size()) {
    return absl::InvalidArgumentError(absl::StrCat("context layout: ", starts.size(),
                                                   " starts for ", n_tokens.size(), " chunks"));
  }
  if (starts.empty()) return absl::InvalidArgumentError("context layout without chunks");
  ContextLayout layout;
  layout.head_dim_ = head_dim;
  layout.theta_ = theta;
  std::vector<size_t> order(starts.size());
  std::iota(order.begin(), order.end(), size_t{0});
  for (size_t c = 0; c < starts.size(); ++c) {
    if (n_tokens[c] <= 0) {
      return absl::InvalidArgumentError(absl::StrCat("chunk ", c, " of the context has no tokens"));
    }
    RETURN_IF_ERROR(ValidateRope(head_dim, theta, starts[c], n_tokens[c]));
    layout.end_ = std::max(layout.end_, starts[c] + n_tokens[c]);
    layout.total_tokens_ += static_cast<uint64_t>(n_tokens[c]);
  }
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return starts[a] < starts[b]; });
  for (size_t i = 1; i < order.size(); ++i) {
    const size_t a = order[i - 1], b = order[i];
    if (starts[a] + n_tokens[a] > starts[b]) {
      return absl::InvalidArgumentError(absl::StrCat(
          "chunks ", a, " (positions ", starts[a], "..", starts[a] + n_tokens[a] - 1, ") and ", b,
          " (positions ", starts[b], "..", starts[b] + n_tokens[b] - 1, ") overlap"));
    }
  }
  const int half = head_dim / 2;
  layout.cos_.resize(starts.size() * half);
  layout.sin_.resize(starts.size() * half);
  std::vector<double> cos, sin;
  for (size_t c = 0; c < starts.size(); ++c) {
    RopeTables(head_dim, theta, starts[c], 1, &cos, &sin);
    for (int i = 0; i < half; ++i) {
      layout.cos_[c * half + i] = static_cast<float>(cos[i]);
      layout.sin_[c * half + i] = static_cast<float>(sin[i]);
    }
  }
  layout.starts_ = std::move(starts);
  layout.n_tokens_ = std::move(n_tokens);
  return layout;
}

void ContextLayout::Rotate(int chunk, const float* in, int n, float* out, float sign) const {
  const int half = head_dim_ / 2;
  const float* c = &cos_[size_t(chunk) * half];
  const float* s = &sin_[size_t(chunk) * half];
  for (int v = 0; v < n; ++v) {
    const float* x = in + size_t(v) * head_dim_;
    float* y = out + size_t(v) * head_dim_;
    for (int i = 0; i < half; ++i) {
      const float a = x[i], b = x[i + half], si = sign * s[i];
      y[i] = a * c[i] - b * si;
      y[i + half] = a * si + b * c[i];
    }
  }
}

void ContextLayout::ToChunkFrame(int chunk, const float* in, int n, float* out) const {
  Rotate(chunk, in, n, out, -1.0f);
}

void ContextLayout::FromChunkFrame(int chunk, const float* in, int n, float* out) const {
  Rotate(chunk, in, n, out, 1.0f);
}

absl::Status ValidateContext(const AttentionShape& shape, const ContextLayout& layout,
                             absl::Span<const ChunkLayerView> chunks, const QueryBlock& queries) {
  RETURN_IF_ERROR(ValidateShape(shape));
  if (layout.head_dim() != shape.head_dim) {
    return absl::InvalidArgumentError(absl::StrCat("context layout head_dim ", layout.head_dim(),
                                                   " differs from the model's ", shape.head_dim));
  }
  if (chunks.size() != static_cast<size_t>(layout.size())) {
    return absl::InvalidArgumentError(absl::StrCat(chunks.size(), " chunk views for a layout of ",
                                                   layout.size(), " chunks"));
  }
  for (int c = 0; c < layout.size(); ++c) {
    const ChunkLayerView& v = chunks[c];
    if (v.keys == nullptr || v.values == nullptr || v.clusters == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("chunk ", c, ": null keys, values or clusters"));
    }
    for (int h = 0; h < shape.n_kv_heads; ++h) {
      const KeyClusters& k = v.clusters[h];
      if (k.n_keys != layout.n_tokens(c) || k.head_dim != shape.head_dim ||
          k.offsets.size() != size_t(k.n_clusters) + 1 || k.members.size() != size_t(k.n_keys) ||
          k.centroids.size() != size_t(k.n_clusters) * shape.head_dim ||
          k.value_sums.size() != k.centroids.size()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "chunk ", c, " KV head ", h, ": clusters do not describe ", layout.n_tokens(c),
            " keys of head_dim ", shape.head_dim));
      }
    }
  }
  if (queries.n_queries < 1 || queries.queries == nullptr) {
    return absl::InvalidArgumentError("context attention needs at least one query");
  }
  RETURN_IF_ERROR(ValidateRope(shape.head_dim, layout.theta(), queries.first_position,
                               queries.n_queries));
  if (queries.first_position < layout.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "query at position ", queries.first_position, " precedes the end of the context (",
        layout.end(), "): every chunk must lie wholly before the queries"));
  }
  return CheckFinite(queries.queries,
                     size_t(queries.n_queries) * shape.n_heads * shape.head_dim, "queries");
}

PackedCentroids PackCentroids(absl::Span<const ChunkLayerView> chunks, int n_kv_heads,
                              int head_dim) {
  PackedCentroids p;
  p.heads.resize(n_kv_heads);
  p.offsets.resize(n_kv_heads);
  for (int h = 0; h < n_kv_heads; ++h) {
    p.offsets[h].push_back(0);
    for (const ChunkLayerView& v : chunks) {
      const KeyClusters& k = v.clusters[h];
      p.heads[h].insert(p.heads[h].end(), k.centroids.begin(),
                        k.centroids.begin() + size_t(k.n_clusters) * head_dim);
      p.offsets[h].push_back(p.offsets[h].back() + k.n_clusters);
    }
  }
  return p;
}

namespace {

absl::Status ValidatePacked(const PackedCentroids* packed, absl::Span<const ChunkLayerView> chunks,
                            const AttentionShape& shape) {
  if (packed == nullptr) return absl::OkStatus();
  if (packed->heads.size() != size_t(shape.n_kv_heads) ||
      packed->offsets.size() != size_t(shape.n_kv_heads)) {
    return absl::InvalidArgumentError("packed centroids do not match the KV heads");
  }
  for (int h = 0; h < shape.n_kv_heads; ++h) {
    const std::vector<int>& off = packed->offsets[h];
    if (off.size() != chunks.size() + 1 ||
        packed->heads[h].size() != size_t(off.back()) * shape.head_dim) {
      return absl::InvalidArgumentError("packed centroids do not match the chunks");
    }
    for (size_t c = 0; c < chunks.size(); ++c) {
      if (off[c + 1] - off[c] != chunks[c].clusters[h].n_clusters) {
        return absl::InvalidArgumentError("packed centroids do not match the chunks' clusters");
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status AttendContext(const AttentionShape& shape, const ContextLayout& layout,
                           absl::Span<const ChunkLayerView> chunks, const QueryBlock& queries,
                           const ClusterBudget& budget, PartialResult* result,
                           ContextAttentionStats* stats, const PackedCentroids* packed) {
  RETURN_IF_ERROR(ValidateBudget(budget));
  RETURN_IF_ERROR(ValidateContext(shape, layout, chunks, queries));
  RETURN_IF_ERROR(ValidatePacked(packed, chunks, shape));
  const int nq = queries.n_queries, H = shape.n_heads, KVH = shape.n_kv_heads;
  const int G = H / KVH, d = shape.head_dim;
  const std::vector<float> q = RotatedQueries(shape, layout.theta(), queries);
  *result = PartialResult::Empty(nq, H, d);
  std::vector<ContextAttentionStats> per_task(size_t(nq) * KVH);
#pragma omp parallel for schedule(dynamic, 1)
  for (int t = 0; t < nq * KVH; ++t) {
    const int i = t / KVH, h = t % KVH;
    const size_t head0 = size_t(i) * H + size_t(h) * G;
    HeadContext ctx(layout, chunks, h, &q[head0 * d], G);
    const int total = ctx.total_clusters();
    int n_exact = 0;
    std::vector<ClusterRef> buffer;
    const std::vector<ClusterRef> ranked = SelectClusters(
        ctx.sources(), d, budget, &n_exact, Scored(ctx, packed, h, &buffer));
    ctx.PrepareQueries(ranked);
    ClusterAttentionStats s;
    AttendRanked(ctx.sources(), ranked, n_exact, G, d, shape.scale, &result->out[head0 * d],
                 &result->lse[head0], &result->max[head0], &s);
    AddStats(s, total, static_cast<int>(layout.total_tokens()), &per_task[t]);
  }
  if (stats != nullptr) {
    *stats = ContextAttentionStats{};
    for (const ContextAttentionStats& s : per_task) {
      stats->keys += s.keys;
      stats->exact_keys += s.exact_keys;
      stats->clusters += s.clusters;
      stats->exact_clusters += s.exact_clusters;
      stats->estimated_clusters += s.estimated_clusters;
    }
  }
  return absl::OkStatus();
}

absl::Status SelectContextKeys(const AttentionShape& shape, const ContextLayout& layout,
                               absl::Span<const ChunkLayerView> chunks,
                               const QueryBlock& queries, double exact_fraction,
                               SelectedKeys* selected, ContextAttentionStats* stats,
                               const PackedCentroids* packed) {
  RETURN_IF_ERROR(ValidateBudget(ClusterBudget{exact_fraction, 0.0}));
  RETURN_IF_ERROR(ValidateContext(shape, layout, chunks, queries));
  RETURN_IF_ERROR(ValidatePacked(packed, chunks, shape));
  const int nq = queries.n_queries, H = shape.n_heads, KVH = shape.n_kv_heads;
  const int G = H / KVH, d = shape.head_dim;
  const std::vector<float> q = RotatedQueries(shape, layout.theta(), queries);
  selected->head_dim = d;
  selected->positions.assign(KVH, {});
  selected->keys.assign(KVH, {});
  selected->values.assign(KVH, {});
  // Chunks by start, so that positions come out ascending.
  std::vector<int> by_start(layout.size());
  std::iota(by_start.begin(), by_start.end(), 0);
  std::sort(by_start.begin(), by_start.end(),
            [&](int a, int b) { return layout.start(a) < layout.start(b); });
  std::vector<ContextAttentionStats> per_head(KVH);
#pragma omp parallel for schedule(dynamic, 1)
  for (int h = 0; h < KVH; ++h) {
    // marks[c][i]: token i of chunk c is selected for some query.
    std::vector<std::vector<char>> marks(layout.size());
    for (int i = 0; i < nq; ++i) {
      const size_t head0 = size_t(i) * H + size_t(h) * G;
      HeadContext ctx(layout, chunks, h, &q[head0 * d], G);
      const int total = ctx.total_clusters();
      int n_exact = 0;
      std::vector<ClusterRef> buffer;
      std::vector<ClusterRef> ranked =
          SelectClusters(ctx.sources(), d, ClusterBudget{exact_fraction, 0.0}, &n_exact,
                         Scored(ctx, packed, h, &buffer));
      ranked.resize(n_exact);
      ClusterAttentionStats s;
      s.exact_clusters = n_exact;
      for (const ClusterRef& r : ranked) {
        const KeyClusters& k = *ctx.sources()[r.source].clusters;
        std::vector<char>& m = marks[r.source];
        if (m.empty()) m.assign(layout.n_tokens(r.source), 0);
        for (int32_t j = k.offsets[r.cluster]; j < k.offsets[r.cluster + 1]; ++j) m[k.members[j]] = 1;
        s.exact_keys += k.size(r.cluster);
      }
      AddStats(s, total, static_cast<int>(layout.total_tokens()), &per_head[h]);
    }
    std::vector<int32_t>& pos = selected->positions[h];
    std::vector<float>& keys = selected->keys[h];
    std::vector<float>& values = selected->values[h];
    for (int c : by_start) {
      if (marks[c].empty()) continue;
      const size_t head_offset = size_t(h) * layout.n_tokens(c) * d;
      for (int j = 0; j < layout.n_tokens(c); ++j) {
        if (!marks[c][j]) continue;
        pos.push_back(static_cast<int32_t>(layout.start(c) + j));
        const float* k = chunks[c].keys + head_offset + size_t(j) * d;
        const float* v = chunks[c].values + head_offset + size_t(j) * d;
        const size_t at = keys.size();
        keys.resize(at + d);
        layout.FromChunkFrame(c, k, 1, &keys[at]);
        values.insert(values.end(), v, v + d);
      }
    }
  }
  if (stats != nullptr) {
    *stats = ContextAttentionStats{};
    for (const ContextAttentionStats& s : per_head) {
      stats->keys += s.keys;
      stats->exact_keys += s.exact_keys;
      stats->clusters += s.clusters;
      stats->exact_clusters += s.exact_clusters;
    }
  }
  return absl::OkStatus();
}

absl::Status AttendSelectedKeys(const AttentionShape& shape, const float* queries, int n_queries,
                                const SelectedKeys& selected, PartialResult* result) {
  RETURN_IF_ERROR(ValidateShape(shape));
  const int H = shape.n_heads, KVH = shape.n_kv_heads, G = H / KVH, d = shape.head_dim;
  if (selected.head_dim != d || selected.positions.size() != size_t(KVH) ||
      selected.keys.size() != size_t(KVH) || selected.values.size() != size_t(KVH)) {
    return absl::InvalidArgumentError("selected keys do not match the attention shape");
  }
  if (n_queries < 0 || (n_queries > 0 && queries == nullptr)) {
    return absl::InvalidArgumentError("bad queries");
  }
  *result = PartialResult::Empty(n_queries, H, d);
  const AttentionShape group_shape{G, 1, d, shape.scale};
  std::vector<float> qg(size_t(n_queries) * G * d);
  PartialResult part;
  for (int h = 0; h < KVH; ++h) {
    const size_t n = selected.positions[h].size();
    if (selected.keys[h].size() != n * d || selected.values[h].size() != n * d) {
      return absl::InvalidArgumentError(absl::StrCat("selected keys of KV head ", h,
                                                     " have inconsistent sizes"));
    }
    if (n == 0) continue;
    for (int i = 0; i < n_queries; ++i) {
      std::copy_n(queries + (size_t(i) * H + size_t(h) * G) * d, size_t(G) * d,
                  &qg[size_t(i) * G * d]);
    }
    KeyValueBlock kv;
    kv.keys = selected.keys[h].data();
    kv.values = selected.values[h].data();
    kv.n_keys = static_cast<int>(n);
    kv.head_stride = static_cast<int64_t>(n);
    kv.positions = selected.positions[h].data();
    RETURN_IF_ERROR(AttendPartial(group_shape, QueryBlock{qg.data(), n_queries, 0}, kv,
                                  /*causal=*/false, &part));
    for (int i = 0; i < n_queries; ++i) {
      const size_t dst = size_t(i) * H + size_t(h) * G, src = size_t(i) * G;
      std::copy_n(&part.out[src * d], size_t(G) * d, &result->out[dst * d]);
      std::copy_n(&part.lse[src], G, &result->lse[dst]);
      std::copy_n(&part.max[src], G, &result->max[dst]);
    }
  }
  return absl::OkStatus();
}

}  // namespace mnemo::attention
