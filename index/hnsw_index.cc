#include "index/hnsw_index.h"

// hnswlib 0.6.2's header defines four helpers (cpuid, xgetbv, AVXCapable,
// AVX512Capable) as ordinary global functions. They are renamed for this
// translation unit so that another one in the same binary may include
// hnswlib as well (the search benchmark's peer does); the system headers
// they use come first so that nothing of theirs is renamed.
#include <cpuid.h>
#include <x86intrin.h>
#define cpuid mnemo_hnswlib_cpuid
#define xgetbv mnemo_hnswlib_xgetbv
#define AVXCapable mnemo_hnswlib_avx_capable
#define AVX512Capable mnemo_hnswlib_avx512_capable
#include <hnswlib/hnswlib.h>
#undef cpuid
#undef xgetbv
#undef AVXCapable
#undef AVX512Capable

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <limits>
#include <mutex>
#include <queue>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/checksum_frame.h"
#include "common/status_macros.h"
#include "index/byte_io.h"
#include "index/dense_header.h"
#include "index/dense_rows.h"
#include "index/distance_kernels.h"

namespace mnemo::index::internal {
namespace {

using Graph = hnswlib::HierarchicalNSW<float>;
using hnswlib::tableint;
// (distance, node); smaller distance is closer.
using Scored = std::pair<float, tableint>;

constexpr uint32_t kMagic = 0x57484e4d;  // "MNHW" little-endian
constexpr uint32_t kVersion = 1;
constexpr uint32_t kMaxDim = 65536;
constexpr size_t kInitialCapacity = 256;
// More levels than any real graph has (level ~ ln(n) / ln(M)).
constexpr size_t kMaxLevels = 64;
constexpr uint64_t kRandomSeed = 100;
// Batches smaller than this insert on the calling thread.
constexpr size_t kParallelAddMin = 64;

// hnswlib's view of a vector space: the data size and one distance
// function, here the run-time-chosen kernel.
class GraphSpace final : public hnswlib::SpaceInterface<float> {
 public:
  GraphSpace(size_t dim, Metric metric)
      : dim_(dim),
        distance_(metric == Metric::kL2 ? BestKernels().l2sqr_graph
                                        : BestKernels().neg_dot_graph) {}
  size_t get_data_size() override { return dim_ * sizeof(float); }
  hnswlib::DISTFUNC<float> get_dist_func() override { return distance_; }
  void* get_dist_func_param() override { return &dim_; }

  float Distance(const float* a, const void* b) const { return distance_(a, b, &dim_); }

 private:
  size_t dim_;
  hnswlib::DISTFUNC<float> distance_;
};

absl::Status DataLoss(absl::string_view why) {
  return absl::DataLossError(absl::StrCat("corrupt HNSW index: ", why));
}

class HnswIndex final : public DenseIndex {
 public:
  HnswIndex(DenseIndexOptions options, DenseFactory factory)
      : options_(std::move(options)),
        factory_(std::move(factory)),
        space_(options_.dim, options_.metric) {}

  absl::Status Init(size_t capacity) {
    try {
      graph_ = std::make_unique<Graph>(&space_, std::max(capacity, kInitialCapacity),
                                       factory_.hnsw_m, factory_.ef_construction, kRandomSeed);
    } catch (const std::exception& e) {
      return absl::ResourceExhaustedError(absl::StrCat("HNSW graph allocation: ", e.what()));
    }
    return absl::OkStatus();
  }

  absl::Status Add(absl::Span<const int64_t> ids, absl::Span<const float> vectors) override {
    ASSIGN_OR_RETURN(PreparedRows prepared,
                     PrepareRows(ids, vectors, options_.dim, options_.metric));
    const size_t n = prepared.ids.size();
    if (n == 0) return absl::OkStatus();
    Graph& g = *graph_;
    size_t fresh = 0;
    for (int64_t id : prepared.ids) {
      auto it = g.label_lookup_.find(static_cast<hnswlib::labeltype>(id));
      if (it == g.label_lookup_.end()) {
        ++fresh;
      } else if (g.isMarkedDeleted(it->second)) {
        // Revived here, on one thread: hnswlib's deleted-count update is
        // not atomic. The parallel insert below then updates it in place.
        g.unmarkDeletedInternal(it->second);
      }
    }
    RETURN_IF_ERROR(Reserve(g.cur_element_count + fresh));

    std::mutex error_mu;
    std::string error;
    auto insert = [&](size_t i) {
      try {
        g.addPoint(prepared.rows.data() + i * options_.dim,
                   static_cast<hnswlib::labeltype>(prepared.ids[i]));
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> l(error_mu);
        if (error.empty()) error = e.what();
      }
    };
    // hnswlib draws each node's level from one shared generator without a
    // lock, as its own parallel insert does: concurrent inserts may draw
    // the same level, which changes which levels appear, never memory
    // safety. A batch on one thread (or OMP_NUM_THREADS=1) is
    // deterministic.
    size_t start = 0;
    if (g.cur_element_count == 0) insert(start++);  // sets the entry point
    const int64_t end = static_cast<int64_t>(n);
    const bool parallel = n - start >= kParallelAddMin && omp_get_max_threads() > 1;
#pragma omp parallel for schedule(dynamic, 8) if (parallel)
    for (int64_t i = static_cast<int64_t>(start); i < end; ++i) insert(static_cast<size_t>(i));
    if (!error.empty()) return absl::InternalError(absl::StrCat("HNSW insert: ", error));
    return absl::OkStatus();
  }

  absl::StatusOr<size_t> Remove(absl::Span<const int64_t> ids) override {
    Graph& g = *graph_;
    size_t removed = 0;
    for (int64_t id : ids) {
      if (id < 0) continue;
      auto it = g.label_lookup_.find(static_cast<hnswlib::labeltype>(id));
      if (it == g.label_lookup_.end() || g.isMarkedDeleted(it->second)) continue;
      g.markDeletedInternal(it->second);
      ++removed;
    }
    return removed;
  }

  absl::StatusOr<DenseSearchResult> Search(absl::Span<const float> queries, int k,
                                           const IdPredicate* filter,
                                           const DenseSearchParams& params) const override {
    const size_t dim = options_.dim;
    RETURN_IF_ERROR(CheckSearch(queries, dim, k));
    DenseSearchResult result;
    result.n = queries.size() / dim;
    result.k = static_cast<size_t>(k);
    result.ids.assign(result.n * result.k, -1);
    result.scores.assign(result.n * result.k, PadScore(options_.metric));
    if (result.n == 0 || size() == 0) return result;

    const float* q = queries.data();
    std::vector<float> normalized;
    if (options_.metric == Metric::kCosine) {
      normalized.assign(queries.begin(), queries.end());
      NormalizeRows(normalized.data(), result.n, dim);
      q = normalized.data();
    }
    const size_t ef = std::max<size_t>(
        params.hnsw_ef_search > 0 ? params.hnsw_ef_search : factory_.ef_search, result.k);

    // The caller's OpenMP team size decides (the store gives a batch the
    // whole team only when no other batch has it, see db/store.h).
    const int64_t n = static_cast<int64_t>(result.n);
    const bool parallel = n > 1 && omp_get_max_threads() > 1;
#pragma omp parallel if (parallel)
    {
      std::vector<Scored> hits;
#pragma omp for schedule(dynamic, 1)
      for (int64_t qi = 0; qi < n; ++qi) {
        SearchOne(q + qi * dim, result.k, ef, filter, &hits);
        int64_t* out_ids = result.ids.data() + qi * k;
        float* out_scores = result.scores.data() + qi * k;
        for (size_t j = 0; j < hits.size(); ++j) {
          out_ids[j] = static_cast<int64_t>(graph_->getExternalLabel(hits[j].second));
          out_scores[j] = options_.metric == Metric::kL2 ? hits[j].first : -hits[j].first;
        }
      }
    }
    return result;
  }

  absl::StatusOr<std::vector<uint8_t>> Serialize() const override {
    const Graph& g = *graph_;
    const size_t count = g.cur_element_count;
    std::vector<uint8_t> out;
    out.reserve(64 + options_.factory.size() + count * (g.size_data_per_element_ + 4));
    PutDenseHeader(&out, kMagic, kVersion, options_);
    Put(&out, static_cast<uint64_t>(count));
    Put(&out, static_cast<uint64_t>(g.size_data_per_element_));
    Put(&out, static_cast<int32_t>(g.maxlevel_));
    Put(&out, static_cast<uint32_t>(g.enterpoint_node_));
    PutBytes(&out, g.data_level0_memory_, count * g.size_data_per_element_);
    for (size_t i = 0; i < count; ++i) {
      const uint32_t bytes =
          static_cast<uint32_t>(g.size_links_per_element_ * std::max(g.element_levels_[i], 0));
      Put(&out, bytes);
      if (bytes > 0) PutBytes(&out, g.linkLists_[i], bytes);
    }
    AppendChecksumTrailer(&out);
    return out;
  }

  // Restores what Serialize wrote into this freshly made, empty index.
  absl::Status Load(absl::Span<const uint8_t> bytes) {
    const std::optional<absl::Span<const uint8_t>> body = StripChecksumTrailer(bytes);
    if (!body.has_value()) return DataLoss("checksum mismatch or truncated");
    ByteReader r(*body);
    RETURN_IF_ERROR(ReadDenseHeader(&r, kMagic, kVersion, options_, "HNSW index"));
    uint64_t count = 0, element_bytes = 0;
    int32_t max_level = 0;
    uint32_t entry = 0;
    if (!r.Get(&count) || !r.Get(&element_bytes) || !r.Get(&max_level) || !r.Get(&entry)) {
      return DataLoss("truncated graph header");
    }
    if (count > std::numeric_limits<tableint>::max() - 1) return DataLoss("too many nodes");
    RETURN_IF_ERROR(Init(static_cast<size_t>(count)));
    Graph& g = *graph_;
    if (element_bytes != g.size_data_per_element_) return DataLoss("node size mismatch");
    if (count > r.remaining() / element_bytes) return DataLoss("truncated base layer");
    r.GetBytes(g.data_level0_memory_, count * element_bytes);
    for (size_t i = 0; i < count; ++i) {
      uint32_t link_bytes = 0;
      if (!r.Get(&link_bytes)) return DataLoss("truncated upper layers");
      const size_t levels = link_bytes / g.size_links_per_element_;
      if (link_bytes % g.size_links_per_element_ != 0 || levels > kMaxLevels ||
          link_bytes > r.remaining()) {
        return DataLoss("bad upper-layer link list");
      }
      g.element_levels_[i] = static_cast<int>(levels);
      g.linkLists_[i] = nullptr;
      if (levels > 0) {
        g.linkLists_[i] = static_cast<char*>(std::malloc(link_bytes));
        if (g.linkLists_[i] == nullptr) return absl::ResourceExhaustedError("HNSW load");
        r.GetBytes(g.linkLists_[i], link_bytes);
      }
      // The destructor frees link lists of nodes below the count.
      g.cur_element_count = i + 1;
    }
    if (r.remaining() != 0) return DataLoss("trailing bytes");
    return CheckLoadedGraph(max_level, entry);
  }

  size_t size() const override { return graph_->cur_element_count - graph_->num_deleted_; }
  bool is_trained() const override { return true; }
  bool scans_all() const override { return false; }
  bool Contains(int64_t id) const override {
    if (id < 0) return false;
    auto it = graph_->label_lookup_.find(static_cast<hnswlib::labeltype>(id));
    return it != graph_->label_lookup_.end() && !graph_->isMarkedDeleted(it->second);
  }
  std::string Describe() const override {
    std::string out = absl::StrCat(options_.factory, " (", size(), " live");
    if (graph_->num_deleted_ > 0) absl::StrAppend(&out, ", ", graph_->num_deleted_, " dead");
    absl::StrAppend(&out, ", efC ", factory_.ef_construction, ", ef ", factory_.ef_search, ", ",
                    SimdLevelName(BestKernels().level), ")");
    return out;
  }
  const DenseIndexOptions& options() const override { return options_; }

 private:
  const float* Vector(tableint node) const {
    return reinterpret_cast<const float*>(graph_->getDataByInternalId(node));
  }

  bool Accepts(tableint node, const IdPredicate* filter) const {
    return !graph_->isMarkedDeleted(node) &&
           (filter == nullptr ||
            filter->Contains(static_cast<int64_t>(graph_->getExternalLabel(node))));
  }

  absl::Status Reserve(size_t needed) {
    Graph& g = *graph_;
    if (needed <= g.max_elements_) return absl::OkStatus();
    const size_t capacity = std::max({needed, g.max_elements_ * 2, kInitialCapacity});
    try {
      g.resizeIndex(capacity);
    } catch (const std::exception& e) {
      return absl::ResourceExhaustedError(absl::StrCat("HNSW resize: ", e.what()));
    }
    return absl::OkStatus();
  }

  // Top-k of one query, nearest first, into *out.
  void SearchOne(const float* query, size_t k, size_t ef, const IdPredicate* filter,
                 std::vector<Scored>* out) const {
    out->clear();
    Graph& g = *graph_;
    if (g.cur_element_count == 0) return;
    const bool restricted = filter != nullptr || g.num_deleted_ > 0;

    // Greedy descent through the upper layers to the base layer's entry.
    tableint current = g.enterpoint_node_;
    float current_dist = space_.Distance(query, Vector(current));
    for (int level = g.maxlevel_; level > 0; --level) {
      bool changed = true;
      while (changed) {
        changed = false;
        const hnswlib::linklistsizeint* list = g.get_linklist(current, level);
        const size_t count = g.getListCount(const_cast<hnswlib::linklistsizeint*>(list));
        const tableint* neighbours = list + 1;
        for (size_t j = 0; j < count; ++j) {
          const float d = space_.Distance(query, Vector(neighbours[j]));
          if (d < current_dist) {
            current_dist = d;
            current = neighbours[j];
            changed = true;
          }
        }
      }
    }

    // Best-first walk of the base layer with a result list of ef nodes.
    hnswlib::VisitedList* visited_list = g.visited_list_pool_->getFreeVisitedList();
    hnswlib::vl_type* visited = visited_list->mass;
    const hnswlib::vl_type tag = visited_list->curV;
    std::priority_queue<Scored> results;  // farthest on top
    std::priority_queue<Scored, std::vector<Scored>, std::greater<Scored>> frontier;
    float bound = std::numeric_limits<float>::max();
    visited[current] = tag;
    frontier.emplace(current_dist, current);
    if (!restricted || Accepts(current, filter)) {
      results.emplace(current_dist, current);
      bound = current_dist;
    }
    tableint fresh[2 * kMaxHnswM];
    while (!frontier.empty()) {
      const Scored nearest = frontier.top();
      // Unrestricted: stop once nothing left can improve the results.
      // Restricted: also keep walking until ef accepted nodes are found.
      if (nearest.first > bound && (!restricted || results.size() >= ef)) break;
      frontier.pop();
      const hnswlib::linklistsizeint* list = g.get_linklist0(nearest.second);
      const size_t count = g.getListCount(const_cast<hnswlib::linklistsizeint*>(list));
      const tableint* neighbours = list + 1;
      size_t n_fresh = 0;
      for (size_t j = 0; j < count; ++j) {
        const tableint node = neighbours[j];
        if (visited[node] == tag) continue;
        visited[node] = tag;
        fresh[n_fresh++] = node;
      }
      // Every neighbour's vector is fetched ahead (its first lines; the
      // hardware prefetcher follows a long vector's sequential rest).
      for (size_t j = 0; j < n_fresh; ++j) {
        const char* v = reinterpret_cast<const char*>(Vector(fresh[j]));
        for (size_t line = 0; line < prefetch_lines_; ++line) __builtin_prefetch(v + 64 * line);
      }
      for (size_t j = 0; j < n_fresh; ++j) {
        const tableint node = fresh[j];
        const float d = space_.Distance(query, Vector(node));
        if (results.size() >= ef && d >= bound) continue;
        frontier.emplace(d, node);
        if (restricted && !Accepts(node, filter)) continue;
        results.emplace(d, node);
        if (results.size() > ef) results.pop();
        bound = results.top().first;
      }
    }
    g.visited_list_pool_->releaseVisitedList(visited_list);

    while (results.size() > k) results.pop();
    out->resize(results.size());
    for (size_t j = results.size(); j > 0; --j) {
      (*out)[j - 1] = results.top();
      results.pop();
    }
    if (restricted && out->size() < k && out->size() < size()) {
      ScanAccepted(query, k, filter, out);
    }
  }

  // Exact top-k over every accepted node (completes short filtered rows).
  void ScanAccepted(const float* query, size_t k, const IdPredicate* filter,
                    std::vector<Scored>* out) const {
    std::priority_queue<Scored> best;
    for (tableint node = 0; node < graph_->cur_element_count; ++node) {
      if (!Accepts(node, filter)) continue;
      const float d = space_.Distance(query, Vector(node));
      if (best.size() < k) {
        best.emplace(d, node);
      } else if (d < best.top().first) {
        best.pop();
        best.emplace(d, node);
      }
    }
    out->resize(best.size());
    for (size_t j = best.size(); j > 0; --j) {
      (*out)[j - 1] = best.top();
      best.pop();
    }
  }

  // Every link must point at a node that exists and has that layer, every
  // label must be unique, the entry point must be the top node: a graph
  // that passes cannot make a search read out of bounds.
  absl::Status CheckLoadedGraph(int32_t max_level, uint32_t entry) {
    Graph& g = *graph_;
    const size_t count = g.cur_element_count;
    g.num_deleted_ = 0;
    g.label_lookup_.clear();
    g.label_lookup_.reserve(count);
    auto check_list = [&](const hnswlib::linklistsizeint* list, size_t max_links,
                          int level) -> bool {
      const size_t links = g.getListCount(const_cast<hnswlib::linklistsizeint*>(list));
      if (links > max_links) return false;
      const tableint* ids = list + 1;
      for (size_t j = 0; j < links; ++j) {
        if (ids[j] >= count || g.element_levels_[ids[j]] < level) return false;
      }
      return true;
    };
    for (tableint node = 0; node < count; ++node) {
      if (!check_list(g.get_linklist0(node), g.maxM0_, 0)) return DataLoss("bad base-layer link");
      for (int level = 1; level <= g.element_levels_[node]; ++level) {
        if (!check_list(g.get_linklist(node, level), g.maxM_, level)) {
          return DataLoss("bad upper-layer link");
        }
      }
      const hnswlib::labeltype label = g.getExternalLabel(node);
      if (label > static_cast<hnswlib::labeltype>(std::numeric_limits<int64_t>::max()) ||
          !g.label_lookup_.emplace(label, node).second) {
        return DataLoss("bad or duplicate id");
      }
      if (g.isMarkedDeleted(node)) ++g.num_deleted_;
    }
    if (count == 0) {
      if (max_level != -1) return DataLoss("empty graph with levels");
      g.maxlevel_ = -1;
      g.enterpoint_node_ = static_cast<tableint>(-1);
      return absl::OkStatus();
    }
    if (entry >= count || max_level < 0 || g.element_levels_[entry] != max_level) {
      return DataLoss("bad entry point");
    }
    for (tableint node = 0; node < count; ++node) {
      if (g.element_levels_[node] > max_level) return DataLoss("node above the top level");
    }
    g.maxlevel_ = max_level;
    g.enterpoint_node_ = entry;
    return absl::OkStatus();
  }

  const DenseIndexOptions options_;
  const DenseFactory factory_;
  GraphSpace space_;
  // Cache lines of a vector prefetched ahead of its distance, up to 8.
  const size_t prefetch_lines_ = std::min<size_t>(8, (options_.dim * sizeof(float) + 63) / 64);
  std::unique_ptr<Graph> graph_;
};

absl::Status CheckOptions(const DenseIndexOptions& options, const DenseFactory& factory) {
  if (options.dim == 0 || options.dim > kMaxDim) {
    return absl::InvalidArgumentError(
        absl::StrCat("dim must be in [1, ", kMaxDim, "], got ", options.dim));
  }
  if (!factory.native_hnsw) return absl::InternalError("not an HNSW factory");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<DenseIndex>> MakeHnswIndex(const DenseIndexOptions& options,
                                                          const DenseFactory& factory) {
  RETURN_IF_ERROR(CheckOptions(options, factory));
  auto index = std::make_unique<HnswIndex>(options, factory);
  RETURN_IF_ERROR(index->Init(kInitialCapacity));
  return std::unique_ptr<DenseIndex>(std::move(index));
}

absl::StatusOr<std::unique_ptr<DenseIndex>> LoadHnswIndex(const DenseIndexOptions& options,
                                                          const DenseFactory& factory,
                                                          absl::Span<const uint8_t> bytes) {
  RETURN_IF_ERROR(CheckOptions(options, factory));
  auto index = std::make_unique<HnswIndex>(options, factory);
  RETURN_IF_ERROR(index->Load(bytes));
  return std::unique_ptr<DenseIndex>(std::move(index));
}

}  // namespace mnemo::index::internal
