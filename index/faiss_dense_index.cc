// DenseIndex over FAISS 1.7.3, for every factory but mnemo's own HNSW
// (index/hnsw_index.h). Implementation notes (the contract is in
// index/dense_index.h):
//
// * Ids: mnemo keeps its own caller-id <-> FAISS-label map instead of
//   IndexIDMap, because IndexIDMap (and IndexRefine) reject SearchParameters
//   in 1.7.3, which would make in-search filtering impossible. See Layout for
//   how labels behave per index family.
// * Filtering: a faiss::IDSelector over labels (LabelSelector) is passed in
//   SearchParameters::sel, with the parameter subclass each index type
//   demands (SearchParametersHNSW / IVF / PQ / PreTransform). Verified in
//   1.7.3 for IndexFlat, HNSW, IVF*, SQ. IndexPQ rejects selectors: lossy
//   indexes keep raw vectors, so a filtered search on them scans those
//   exactly instead. HNSW's bounded candidate pool can come back short under
//   a selective filter; short rows are completed by an exact filtered scan.
// * Training: a trainable index serves exact search from a staging IndexFlat
//   until train_threshold live vectors exist (automatic: 39 * nlist for IVF,
//   39 * 2^nbits for PQ codebooks, the larger of both for IVF-PQ, 39 * 256
//   otherwise; never below what FAISS needs to train at all). The Add that
//   reaches it trains on every staged vector and moves them over.
// * Lossy codes (PQ, SQ, ...): raw vectors are kept by label and
//   refine_factor * k candidates are re-scored exactly.
// * Flat exact search may run on the process-wide accelerated backend
//   (MNEMO_DEVICE=cuda, see index/exact_search.h) when unfiltered, and
//   otherwise on BlasTopK (index/blas_topk.h) when unfiltered.
// * Known costs: IVF labels are never reused, so removed/replaced entries
//   leave holes in the label table (8 bytes, plus dim floats for lossy
//   codes) until the index is rebuilt; HNSW dead entries likewise stay in
//   the graph. Neither is reclaimed by this class today.
#include "index/faiss_dense_index.h"

#include "index/blas_topk.h"
#include "index/byte_io.h"
#include "index/dense_header.h"
#include "index/dense_rows.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <numeric>
#include <optional>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/checksum_frame.h"
#include "common/status_macros.h"
#include "faiss/Index.h"
#include "faiss/IndexFlat.h"
#include "faiss/IndexFlatCodes.h"
#include "faiss/IndexHNSW.h"
#include "faiss/IndexIDMap.h"
#include "faiss/IndexIVF.h"
#include "faiss/IndexIVFFlat.h"
#include "faiss/IndexIVFPQ.h"
#include "faiss/IndexPQ.h"
#include "faiss/IndexPreTransform.h"
#include "faiss/IndexRefine.h"
#include "faiss/IndexScalarQuantizer.h"
#include "faiss/impl/FaissException.h"
#include "faiss/impl/IDSelector.h"
#include "faiss/impl/io.h"
#include "faiss/index_factory.h"
#include "faiss/index_io.h"
#include "faiss/utils/distances.h"
#include "index/ef_search_gate.h"
#include "index/exact_search.h"

namespace mnemo::index {
namespace {

using FaissIdx = faiss::Index::idx_t;

constexpr uint32_t kMagic = 0x58444e4d;  // "MNDX" little-endian
constexpr uint32_t kVersion = 1;
constexpr uint32_t kMaxDim = 65536;
constexpr uint32_t kDefaultNprobe = 16;
constexpr float kDefaultRefineFactor = 4.0f;
// Unfiltered Flat searches of at least this many queries run on BlasTopK
// (index/blas_topk.h); filtered ones scan in FAISS with the selector.
constexpr size_t kBlasMinQueries = 1;
// FAISS k-means wants ~39 points per centroid.
constexpr uint64_t kPointsPerCentroid = 39;

// How caller ids map onto the labels FAISS stores.
enum class Layout : uint8_t {
  // IVF family: we pass our labels with add_with_ids; removal deletes by
  // label and leaves a hole (label_to_id_ = -1), nothing shifts.
  kLabelled = 0,
  // IndexFlatCodes (Flat, PQ, SQ, ...): labels are positions; remove_ids
  // compacts the codes preserving order, so our tables compact the same way.
  kCompacting = 1,
  // Everything else (HNSW, pre-transforms): labels are positions, removal is
  // impossible, a removed label is marked dead (-1) and excluded by the
  // selector during search.
  kAppendOnly = 2,
};

faiss::MetricType FaissMetric(Metric metric) {
  return metric == Metric::kL2 ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT;
}

// The HNSW graph under any pre-transforms, or null.
faiss::IndexHNSW* FindHnsw(faiss::Index* index) {
  while (auto* pre = dynamic_cast<faiss::IndexPreTransform*>(index)) {
    index = pre->index;
  }
  return dynamic_cast<faiss::IndexHNSW*>(index);
}

faiss::IndexIVF* FindIvf(faiss::Index* index) {
  while (auto* pre = dynamic_cast<faiss::IndexPreTransform*>(index)) {
    index = pre->index;
  }
  return dynamic_cast<faiss::IndexIVF*>(index);
}

// Family of a FAISS index, for checking that a deserialised index is what
// the factory builds (read_index returns IndexFlatL2 where the factory may
// build IndexFlat, so exact types are not comparable).
std::string KindOf(const faiss::Index* index) {
  if (dynamic_cast<const faiss::IndexFlat*>(index)) return "flat";
  if (dynamic_cast<const faiss::IndexHNSW*>(index)) return "hnsw";
  if (auto* pre = dynamic_cast<const faiss::IndexPreTransform*>(index)) {
    return "pretransform/" + KindOf(pre->index);
  }
  return typeid(*index).name();
}

Layout LayoutOf(const faiss::Index* index) {
  if (dynamic_cast<const faiss::IndexIVF*>(index)) return Layout::kLabelled;
  if (dynamic_cast<const faiss::IndexFlatCodes*>(index)) {
    return Layout::kCompacting;
  }
  return Layout::kAppendOnly;
}

// Lossless storage: exact scores come straight out of FAISS.
bool IsLossy(const faiss::Index* index) {
  if (dynamic_cast<const faiss::IndexFlat*>(index)) return false;
  if (dynamic_cast<const faiss::IndexIVFFlat*>(index)) return false;
  if (auto* hnsw = dynamic_cast<const faiss::IndexHNSW*>(index)) {
    return dynamic_cast<const faiss::IndexFlat*>(hnsw->storage) == nullptr;
  }
  return true;
}

// Whether FAISS 1.7.3 honours SearchParameters::sel for this index. Known
// to work: flat, IVF (all codecs), HNSW graph walk, scalar quantizer.
// IndexPQ throws "selector not supported"; unknown types are assumed not to.
// Where it does not, DenseIndex filters with an exact scan of the raw
// vectors it keeps for such (lossy) indexes.
bool HonoursSelector(const faiss::Index* index) {
  if (auto* pre = dynamic_cast<const faiss::IndexPreTransform*>(index)) {
    return HonoursSelector(pre->index);
  }
  return dynamic_cast<const faiss::IndexFlat*>(index) != nullptr ||
         dynamic_cast<const faiss::IndexIVF*>(index) != nullptr ||
         dynamic_cast<const faiss::IndexHNSW*>(index) != nullptr ||
         dynamic_cast<const faiss::IndexScalarQuantizer*>(index) != nullptr;
}

// Builds the FAISS index for `options`. IDMap wrappers are refused (mnemo
// keeps its own id map because IndexIDMap rejects SearchParameters in FAISS
// 1.7.3); IndexRefine is unwrapped (it rejects SearchParameters too) and the
// refine step is done by DenseIndex itself on the raw vectors it keeps.
absl::StatusOr<std::unique_ptr<faiss::Index>> MakeFaissIndex(
    const DenseIndexOptions& options, const DenseFactory& parsed) {
  const std::string& factory = parsed.faiss;
  std::unique_ptr<faiss::Index> index;
  try {
    index.reset(faiss::index_factory(static_cast<int>(options.dim),
                                     factory.c_str(),
                                     FaissMetric(options.metric)));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("FAISS rejects factory '", factory, "': ", e.what()));
  }
  if (index == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("FAISS rejects factory '", factory, "'"));
  }
  if (dynamic_cast<faiss::IndexIDMap*>(index.get()) ||
      dynamic_cast<faiss::IndexIDMap2*>(index.get())) {
    return absl::InvalidArgumentError(
        "IDMap factories are not supported: DenseIndex maps ids itself");
  }
  if (auto* refine = dynamic_cast<faiss::IndexRefine*>(index.get())) {
    faiss::Index* base = refine->base_index;
    refine->own_fields = false;  // we take the base; the wrapper dies here
    index.reset(base);
  }
  // Polysemous training (a simulated-annealing reordering of PQ centroids
  // for Hamming-distance filtering) takes minutes and buys nothing here:
  // candidates are re-ranked exactly on the raw vectors.
  if (auto* ivfpq = dynamic_cast<faiss::IndexIVFPQ*>(FindIvf(index.get()))) {
    ivfpq->do_polysemous_training = false;
  }
  if (auto* pq = dynamic_cast<faiss::IndexPQ*>(index.get())) {
    pq->do_polysemous_training = false;
  }
  if (faiss::IndexHNSW* hnsw = FindHnsw(index.get())) {
    if (auto* pq = dynamic_cast<faiss::IndexPQ*>(hnsw->storage)) {
      pq->do_polysemous_training = false;
    }
    hnsw->hnsw.efConstruction = static_cast<int>(parsed.ef_construction);
    hnsw->hnsw.efSearch = static_cast<int>(parsed.ef_search);
  }
  return index;
}

// Effective train threshold: the caller's, or the automatic one, but never
// below what FAISS needs to train at all (nlist points for IVF, 2^nbits for
// PQ codebooks).
uint64_t TrainThreshold(const DenseIndexOptions& options,
                        faiss::Index* index) {
  uint64_t automatic = 256 * kPointsPerCentroid;
  uint64_t minimum = 1;
  if (faiss::IndexIVF* ivf = FindIvf(index)) {
    automatic = kPointsPerCentroid * ivf->nlist;
    minimum = ivf->nlist;
    if (auto* ivfpq = dynamic_cast<faiss::IndexIVFPQ*>(ivf)) {
      const uint64_t ksub = uint64_t{1} << ivfpq->pq.nbits;
      automatic = std::max(automatic, kPointsPerCentroid * ksub);
      minimum = std::max(minimum, ksub);
    }
  } else if (auto* pq = dynamic_cast<faiss::IndexPQ*>(index)) {
    const uint64_t ksub = uint64_t{1} << pq->pq.nbits;
    automatic = kPointsPerCentroid * ksub;
    minimum = ksub;
  } else if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(index)) {
    if (auto* pq = dynamic_cast<faiss::IndexPQ*>(hnsw->storage)) {
      const uint64_t ksub = uint64_t{1} << pq->pq.nbits;
      automatic = kPointsPerCentroid * ksub;
      minimum = ksub;
    }
  }
  const uint64_t wanted =
      options.train_threshold == 0 ? automatic : options.train_threshold;
  return std::max(wanted, minimum);
}

// Accepts a FAISS label when it is live and (optionally) the caller's
// predicate accepts its id. Runs inside the FAISS scan, so filtering never
// costs results.
class LabelSelector final : public faiss::IDSelector {
 public:
  LabelSelector(const std::vector<int64_t>* label_to_id,
                const IdPredicate* predicate)
      : label_to_id_(label_to_id), predicate_(predicate) {}

  bool is_member(FaissIdx label) const override {
    if (label < 0 || static_cast<size_t>(label) >= label_to_id_->size()) {
      return false;
    }
    const int64_t id = (*label_to_id_)[static_cast<size_t>(label)];
    return id >= 0 && (predicate_ == nullptr || predicate_->Contains(id));
  }

 private:
  const std::vector<int64_t>* label_to_id_;
  const IdPredicate* predicate_;
};

// Search parameters for one FAISS index, owning the nested parameter objects.
struct ParamChain {
  std::vector<std::unique_ptr<faiss::SearchParameters>> owned;
  faiss::SearchParameters* root = nullptr;
};

// Builds the parameter object FAISS 1.7.3 accepts for `index` (each index
// type dynamic_casts to its own kind; IndexPQ refuses the base class).
void BuildParams(const faiss::Index* index, faiss::IDSelector* sel, int ef,
                 int nprobe, ParamChain* chain,
                 faiss::SearchParameters** slot) {
  std::unique_ptr<faiss::SearchParameters> params;
  if (auto* pre = dynamic_cast<const faiss::IndexPreTransform*>(index)) {
    auto p = std::make_unique<faiss::SearchParametersPreTransform>();
    faiss::SearchParameters** inner = &p->index_params;
    *slot = p.get();
    chain->owned.push_back(std::move(p));
    BuildParams(pre->index, sel, ef, nprobe, chain, inner);
    return;
  }
  if (dynamic_cast<const faiss::IndexHNSW*>(index)) {
    auto p = std::make_unique<faiss::SearchParametersHNSW>();
    p->efSearch = ef;
    params = std::move(p);
  } else if (auto* ivf = dynamic_cast<const faiss::IndexIVF*>(index)) {
    auto p = std::make_unique<faiss::SearchParametersIVF>();
    p->nprobe = std::min<size_t>(static_cast<size_t>(nprobe), ivf->nlist);
    params = std::move(p);
  } else if (auto* pq = dynamic_cast<const faiss::IndexPQ*>(index)) {
    auto p = std::make_unique<faiss::SearchParametersPQ>();
    p->search_type = pq->search_type;
    p->polysemous_ht = pq->polysemous_ht;
    params = std::move(p);
  } else {
    params = std::make_unique<faiss::SearchParameters>();
  }
  params->sel = sel;
  *slot = params.get();
  chain->owned.push_back(std::move(params));
}

// The checksum trailer (common/checksum_frame.h) catches garbage and
// truncation before FAISS parses anything.
using internal::ByteReader;
using internal::CheckSearch;
using internal::NormalizeRows;
using internal::PadScore;
using internal::PreparedRows;
using internal::PrepareRows;
using internal::Put;
using internal::PutBytes;
using internal::PutDenseHeader;
using internal::ReadDenseHeader;

absl::Status DataLoss(absl::string_view why) {
  return absl::DataLossError(absl::StrCat("corrupt dense index: ", why));
}

class Impl final : public DenseIndex {
 public:
  static absl::StatusOr<std::unique_ptr<Impl>> Make(
      const DenseIndexOptions& options, const DenseFactory& parsed) {
    if (options.dim == 0 || options.dim > kMaxDim) {
      return absl::InvalidArgumentError(
          absl::StrCat("dim must be in [1, ", kMaxDim, "], got ", options.dim));
    }
    DenseIndexOptions normalized = options;
    if (normalized.factory.empty()) normalized.factory = "Flat";
    ASSIGN_OR_RETURN(std::unique_ptr<faiss::Index> probe,
                     MakeFaissIndex(normalized, parsed));
    auto impl = std::unique_ptr<Impl>(new Impl(normalized, parsed));
    impl->train_threshold_ = TrainThreshold(normalized, probe.get());
    if (probe->is_trained) {
      impl->trained_ = true;
      impl->lossy_ = IsLossy(probe.get());
      impl->layout_ = LayoutOf(probe.get());
      impl->index_ = std::move(probe);
    } else {
      impl->StartStaging();
    }
    return impl;
  }

  absl::Status Add(absl::Span<const int64_t> ids,
                   absl::Span<const float> vectors) override {
    ASSIGN_OR_RETURN(PreparedRows prepared,
                     PrepareRows(ids, vectors, options_.dim, options_.metric));
    if (prepared.ids.empty()) return absl::OkStatus();
    const std::vector<int64_t>& new_ids = prepared.ids;
    const std::vector<float>& rows = prepared.rows;

    // Replace = remove + add.
    ASSIGN_OR_RETURN(size_t replaced, Remove(new_ids));
    (void)replaced;
    RETURN_IF_ERROR(Append(new_ids, rows));
    if (!trained_ && id_to_label_.size() >= train_threshold_) {
      return Train();
    }
    return absl::OkStatus();
  }

  absl::StatusOr<size_t> Remove(absl::Span<const int64_t> ids) override {
    InvalidateNorms();
    std::vector<FaissIdx> labels;
    for (int64_t id : ids) {
      auto it = id_to_label_.find(id);
      if (it == id_to_label_.end()) continue;
      labels.push_back(it->second);
      id_to_label_.erase(it);
    }
    if (labels.empty()) return size_t{0};
    try {
      switch (layout_) {
        case Layout::kLabelled: {
          faiss::IDSelectorArray sel(labels.size(), labels.data());
          index_->remove_ids(sel);
          for (FaissIdx l : labels) label_to_id_[l] = -1;
          break;
        }
        case Layout::kCompacting: {
          faiss::IDSelectorBatch sel(labels.size(), labels.data());
          index_->remove_ids(sel);
          for (FaissIdx l : labels) label_to_id_[l] = -1;
          CompactLabels();
          break;
        }
        case Layout::kAppendOnly:
          for (FaissIdx l : labels) label_to_id_[l] = -1;
          break;
      }
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat("FAISS remove: ", e.what()));
    }
    return labels.size();
  }

  absl::StatusOr<DenseSearchResult> Search(
      absl::Span<const float> queries, int k, const IdPredicate* filter,
      const DenseSearchParams& params) const override {
    const size_t dim = options_.dim;
    RETURN_IF_ERROR(CheckSearch(queries, dim, k));
    DenseSearchResult result;
    result.n = queries.size() / dim;
    result.k = static_cast<size_t>(k);
    const size_t total = result.n * result.k;
    result.ids.assign(total, -1);
    result.scores.assign(total, PadScore(options_.metric));
    if (result.n == 0 || id_to_label_.empty()) return result;

    std::vector<float> q(queries.begin(), queries.end());
    if (options_.metric == Metric::kCosine) NormalizeRows(q.data(), result.n, dim);

    const ExactSearchBackend* accel = DefaultExactSearch();
    auto* flat = dynamic_cast<const faiss::IndexFlat*>(index_.get());
    if (accel != nullptr && flat != nullptr && filter == nullptr && k <= 1024) {
      std::vector<int64_t> labels(total);
      RETURN_IF_ERROR(accel->Search(flat->get_xb(),
                                    static_cast<size_t>(flat->ntotal), q.data(),
                                    result.n, dim, options_.metric, k,
                                    labels.data(), result.scores.data()));
      for (size_t i = 0; i < total; ++i) {
        result.ids[i] = labels[i] < 0 ? -1 : label_to_id_[labels[i]];
      }
      return result;
    }

    if (flat != nullptr && filter == nullptr && result.n >= kBlasMinQueries) {
      const std::shared_ptr<const std::vector<float>> norms =
          options_.metric == Metric::kL2 ? HalfNorms(*flat) : nullptr;
      std::vector<int64_t> rows(total);
      BlasTopK(flat->get_xb(), static_cast<size_t>(flat->ntotal),
               norms ? norms->data() : nullptr, q.data(), result.n, dim, options_.metric,
               result.k, rows.data(), result.scores.data());
      for (size_t i = 0; i < total; ++i) {
        result.ids[i] = rows[i] < 0 ? -1 : label_to_id_[rows[i]];
      }
      return result;
    }

    const bool refine = trained_ && lossy_;
    float factor = params.refine_factor > 0 ? params.refine_factor
                                            : kDefaultRefineFactor;
    factor = std::max(factor, 1.0f);
    const int64_t search_k =
        refine ? std::max<int64_t>(k, static_cast<int64_t>(std::ceil(k * factor)))
               : k;
    const int ef = static_cast<int>(std::max<int64_t>(
        params.hnsw_ef_search > 0 ? params.hnsw_ef_search : factory_.ef_search,
        search_k));
    const int nprobe = static_cast<int>(
        params.ivf_nprobe > 0 ? params.ivf_nprobe : kDefaultNprobe);

    // Dead labels only exist outside FAISS for the append-only layout.
    const bool has_dead =
        layout_ == Layout::kAppendOnly &&
        id_to_label_.size() < label_to_id_.size();
    LabelSelector selector(&label_to_id_, filter);
    const bool use_sel = filter != nullptr || has_dead;
    const bool has_knobs = FindIvf(index_.get()) != nullptr ||
                           dynamic_cast<const faiss::IndexHNSW*>(index_.get());
    // FAISS 1.7.3 reads efSearch from the graph, not from the parameters:
    // the gate puts this call's value there for as long as the search runs.
    std::optional<EfSearchGate::Pass> ef_pass;
    if (faiss::IndexHNSW* hnsw = FindHnsw(index_.get())) {
      ef_pass.emplace(ef_gate_.Enter(&hnsw->hnsw.efSearch, ef));
    }
    ParamChain chain;
    if ((use_sel && HonoursSelector(index_.get())) || has_knobs) {
      BuildParams(index_.get(), use_sel ? &selector : nullptr, ef, nprobe,
                  &chain, &chain.root);
    }

    std::vector<float> distances(result.n * search_k);
    std::vector<FaissIdx> labels(result.n * search_k);
    if (use_sel && !HonoursSelector(index_.get())) {
      // Only lossy indexes get here (every lossless kind honours the
      // selector), and they keep raw vectors: scan those exactly.
      RETURN_IF_ERROR(RawScan(q.data(), result.n, search_k, &selector,
                              distances.data(), labels.data()));
    } else {
      try {
        index_->search(static_cast<FaissIdx>(result.n), q.data(), search_k,
                       distances.data(), labels.data(), chain.root);
      } catch (const std::exception& e) {
        return absl::InternalError(absl::StrCat("FAISS search: ", e.what()));
      }
    }

    if (use_sel) {
      RETURN_IF_ERROR(CompleteShortGraphRows(q.data(), result.n, search_k,
                                             &selector, &distances, &labels));
    }

    for (size_t qi = 0; qi < result.n; ++qi) {
      const FaissIdx* row_labels = labels.data() + qi * search_k;
      const float* row_dist = distances.data() + qi * search_k;
      int64_t* out_ids = result.ids.data() + qi * result.k;
      float* out_scores = result.scores.data() + qi * result.k;
      if (!refine) {
        size_t out = 0;
        for (int64_t j = 0; j < search_k && out < result.k; ++j) {
          const int64_t id = IdOfLabel(row_labels[j]);
          if (id < 0) continue;
          out_ids[out] = id;
          out_scores[out] = row_dist[j];
          ++out;
        }
        continue;
      }
      // Exact re-ranking of the candidates against the raw vectors.
      std::vector<std::pair<float, int64_t>> scored;
      scored.reserve(static_cast<size_t>(search_k));
      const float* query = q.data() + qi * dim;
      for (int64_t j = 0; j < search_k; ++j) {
        const FaissIdx label = row_labels[j];
        const int64_t id = IdOfLabel(label);
        if (id < 0) continue;
        const float* raw = raw_.data() + static_cast<size_t>(label) * dim;
        const float s = options_.metric == Metric::kL2
                            ? faiss::fvec_L2sqr(query, raw, dim)
                            : faiss::fvec_inner_product(query, raw, dim);
        scored.emplace_back(s, id);
      }
      const bool higher = HigherIsBetter(options_.metric);
      const size_t keep = std::min(scored.size(), result.k);
      std::partial_sort(scored.begin(), scored.begin() + keep, scored.end(),
                        [higher](const auto& a, const auto& b) {
                          if (a.first != b.first) {
                            return higher ? a.first > b.first
                                          : a.first < b.first;
                          }
                          return a.second < b.second;
                        });
      for (size_t j = 0; j < keep; ++j) {
        out_scores[j] = scored[j].first;
        out_ids[j] = scored[j].second;
      }
    }
    return result;
  }

  absl::StatusOr<std::vector<uint8_t>> Serialize() const override {
    // FAISS writes the graph's efSearch too: hold it at the default so the
    // bytes do not depend on the last search, and no search writes it while
    // it is read.
    std::optional<EfSearchGate::Pass> ef_pass;
    if (faiss::IndexHNSW* hnsw = FindHnsw(index_.get())) {
      ef_pass.emplace(ef_gate_.Enter(&hnsw->hnsw.efSearch,
                                      static_cast<int>(factory_.ef_search)));
    }
    std::vector<uint8_t> out;
    PutDenseHeader(&out, kMagic, kVersion, options_);
    Put(&out, static_cast<uint8_t>(trained_));
    Put(&out, static_cast<uint8_t>(layout_));
    // label -> id; -1 marks dead / removed labels (the dead-id set).
    Put(&out, static_cast<uint64_t>(label_to_id_.size()));
    PutBytes(&out, label_to_id_.data(), label_to_id_.size() * sizeof(int64_t));
    Put(&out, static_cast<uint64_t>(raw_.size()));
    PutBytes(&out, raw_.data(), raw_.size() * sizeof(float));
    faiss::VectorIOWriter faiss_out;
    try {
      faiss::write_index(index_.get(), &faiss_out);
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat("FAISS write_index: ", e.what()));
    }
    Put(&out, static_cast<uint64_t>(faiss_out.data.size()));
    PutBytes(&out, faiss_out.data.data(), faiss_out.data.size());
    AppendChecksumTrailer(&out);
    return out;
  }

  // Restores the state written by Serialize into this freshly made index.
  absl::Status Load(absl::Span<const uint8_t> bytes) {
    InvalidateNorms();
    if (bytes.size() < kChecksumTrailerBytes + 4 * sizeof(uint32_t)) {
      return DataLoss("too short");
    }
    const std::optional<absl::Span<const uint8_t>> body = StripChecksumTrailer(bytes);
    if (!body.has_value()) return DataLoss("checksum mismatch");
    ByteReader r(*body);
    RETURN_IF_ERROR(ReadDenseHeader(&r, kMagic, kVersion, options_, "dense index"));
    uint8_t trained, layout;
    uint64_t n_labels, n_raw, n_faiss;
    if (!r.Get(&trained) || !r.Get(&layout) || trained > 1 || layout > 2) {
      return DataLoss("bad flags");
    }
    if (!r.Get(&n_labels) || n_labels > r.remaining() / sizeof(int64_t)) {
      return DataLoss("bad label table size");
    }
    std::vector<int64_t> label_to_id(n_labels);
    r.GetBytes(label_to_id.data(), n_labels * sizeof(int64_t));
    if (!r.Get(&n_raw) || n_raw > r.remaining() / sizeof(float)) {
      return DataLoss("bad raw vector size");
    }
    std::vector<float> raw(n_raw);
    r.GetBytes(raw.data(), n_raw * sizeof(float));
    if (!r.Get(&n_faiss) || n_faiss != r.remaining()) {
      return DataLoss("bad FAISS payload size");
    }
    faiss::VectorIOReader faiss_in;
    faiss_in.data.resize(n_faiss);
    r.GetBytes(faiss_in.data.data(), n_faiss);

    std::unique_ptr<faiss::Index> index;
    try {
      index.reset(faiss::read_index(&faiss_in));
    } catch (const std::exception& e) {
      return DataLoss(absl::StrCat("FAISS read_index: ", e.what()));
    }
    if (index == nullptr || index->d != static_cast<FaissIdx>(options_.dim) ||
        index->metric_type != FaissMetric(options_.metric)) {
      return DataLoss("FAISS index does not match the header");
    }

    // The restored index must be what this index would hold in that state.
    if (trained) {
      ASSIGN_OR_RETURN(std::unique_ptr<faiss::Index> fresh,
                       MakeFaissIndex(options_, factory_));
      if (KindOf(fresh.get()) != KindOf(index.get()) || !index->is_trained) {
        return DataLoss("FAISS index type does not match the factory");
      }
    } else if (KindOf(index.get()) != "flat") {
      return DataLoss("untrained index must hold a flat staging index");
    }
    if (static_cast<uint8_t>(LayoutOf(index.get())) != layout) {
      return DataLoss("layout mismatch");
    }
    absl::flat_hash_map<int64_t, int64_t> id_to_label;
    for (size_t l = 0; l < label_to_id.size(); ++l) {
      const int64_t id = label_to_id[l];
      if (id < -1) return DataLoss("negative id");
      if (id >= 0 && !id_to_label.emplace(id, static_cast<int64_t>(l)).second) {
        return DataLoss("duplicate id");
      }
    }
    const size_t expected_ntotal = layout == static_cast<uint8_t>(Layout::kLabelled)
                                       ? id_to_label.size()
                                       : label_to_id.size();
    if (static_cast<size_t>(index->ntotal) != expected_ntotal) {
      return DataLoss("vector count does not match the id map");
    }
    const bool lossy = trained && IsLossy(index.get());
    if (raw.size() != (lossy ? label_to_id.size() * options_.dim : 0)) {
      return DataLoss("raw vector table has the wrong size");
    }
    index_ = std::move(index);
    trained_ = trained != 0;
    lossy_ = lossy;
    layout_ = static_cast<Layout>(layout);
    label_to_id_ = std::move(label_to_id);
    id_to_label_ = std::move(id_to_label);
    raw_ = std::move(raw);
    return absl::OkStatus();
  }

  size_t size() const override { return id_to_label_.size(); }
  bool is_trained() const override { return trained_; }
  bool scans_all() const override {
    return dynamic_cast<const faiss::IndexFlat*>(index_.get()) != nullptr;
  }
  bool Contains(int64_t id) const override {
    return id_to_label_.contains(id);
  }
  std::string Describe() const override {
    std::string out = absl::StrCat(options_.factory, " (", size(), " live");
    if (!trained_) {
      absl::StrAppend(&out, ", untrained: exact until ", train_threshold_);
    }
    const size_t dead = label_to_id_.size() - id_to_label_.size();
    if (layout_ == Layout::kAppendOnly && dead > 0) {
      absl::StrAppend(&out, ", ", dead, " dead");
    }
    if (const ExactSearchBackend* accel = DefaultExactSearch();
        accel != nullptr && dynamic_cast<const faiss::IndexFlat*>(index_.get())) {
      absl::StrAppend(&out, ", ", accel->name());
    }
    absl::StrAppend(&out, ")");
    return out;
  }
  const DenseIndexOptions& options() const override { return options_; }

 private:
  Impl(DenseIndexOptions options, DenseFactory factory)
      : options_(std::move(options)), factory_(std::move(factory)) {}

  // Serialises writes of the graph's efSearch against the searches reading
  // it (see ef_search_gate.h).
  mutable EfSearchGate ef_gate_;

  // ||x||^2 / 2 of the flat index's rows for BlasTopK's L2, computed by the
  // first search after a change (searches share it; writers, which are
  // exclusive, drop it).
  std::shared_ptr<const std::vector<float>> HalfNorms(const faiss::IndexFlat& flat) const {
    absl::MutexLock l(&norms_mu_);
    if (half_norms_ == nullptr) {
      half_norms_ = std::make_shared<const std::vector<float>>(HalfSquaredNorms(
          flat.get_xb(), static_cast<size_t>(flat.ntotal), options_.dim));
    }
    return half_norms_;
  }
  void InvalidateNorms() {
    absl::MutexLock l(&norms_mu_);
    half_norms_.reset();
  }

  // Until trained, vectors live in an exact flat index.
  void StartStaging() {
    trained_ = false;
    lossy_ = false;
    layout_ = Layout::kCompacting;
    index_ = std::make_unique<faiss::IndexFlat>(
        static_cast<FaissIdx>(options_.dim), FaissMetric(options_.metric));
  }

  // HNSW in FAISS 1.7.3 applies the selector inside the graph walk but its
  // candidate pool is bounded by efSearch, so a selective filter can leave
  // rows short of search_k results although enough matches exist. Those rows
  // are re-run as an exact scan of the HNSW storage with the same selector
  // (cheap: the scan skips non-members before computing distances), which
  // is what a selective filter calls for anyway.
  absl::Status CompleteShortGraphRows(const float* queries, size_t n,
                                      int64_t search_k,
                                      faiss::IDSelector* selector,
                                      std::vector<float>* distances,
                                      std::vector<FaissIdx>* labels) const {
    auto* hnsw = dynamic_cast<const faiss::IndexHNSW*>(index_.get());
    if (hnsw == nullptr || hnsw->storage == nullptr) return absl::OkStatus();
    const size_t want = std::min<size_t>(static_cast<size_t>(search_k),
                                         id_to_label_.size());
    const bool storage_filters = HonoursSelector(hnsw->storage);
    ParamChain chain;
    if (storage_filters) {
      BuildParams(hnsw->storage, selector, 0, 0, &chain, &chain.root);
    }
    for (size_t qi = 0; qi < n; ++qi) {
      FaissIdx* row = labels->data() + qi * search_k;
      float* row_dist = distances->data() + qi * search_k;
      const float* query = queries + qi * options_.dim;
      const size_t found = static_cast<size_t>(std::count_if(
          row, row + search_k, [this](FaissIdx l) { return IdOfLabel(l) >= 0; }));
      if (found >= want) continue;
      if (!storage_filters) {
        RETURN_IF_ERROR(RawScan(query, 1, search_k, selector, row_dist, row));
        continue;
      }
      try {
        hnsw->storage->search(1, query, search_k, row_dist, row, chain.root);
      } catch (const std::exception& e) {
        return absl::InternalError(
            absl::StrCat("FAISS filtered scan: ", e.what()));
      }
    }
    return absl::OkStatus();
  }

  // Exact top-search_k over the raw vectors (lossy indexes keep them, by
  // label) restricted to `selector`; FAISS skips non-members before
  // computing their distance.
  absl::Status RawScan(const float* queries, size_t n, int64_t search_k,
                       const faiss::IDSelector* selector, float* distances,
                       FaissIdx* labels) const {
    const size_t dim = options_.dim;
    if (raw_.size() != label_to_id_.size() * dim) {
      return absl::InternalError("raw vectors missing for a filtered scan");
    }
    try {
      if (options_.metric == Metric::kL2) {
        faiss::knn_L2sqr(queries, raw_.data(), dim, n, label_to_id_.size(),
                         static_cast<size_t>(search_k), distances, labels,
                         nullptr, selector);
      } else {
        faiss::knn_inner_product(queries, raw_.data(), dim, n,
                                 label_to_id_.size(),
                                 static_cast<size_t>(search_k), distances,
                                 labels, selector);
      }
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat("filtered scan: ", e.what()));
    }
    return absl::OkStatus();
  }

  int64_t IdOfLabel(FaissIdx label) const {
    if (label < 0 || static_cast<size_t>(label) >= label_to_id_.size()) {
      return -1;
    }
    return label_to_id_[static_cast<size_t>(label)];
  }

  // Drops -1 labels from the tables, preserving order, exactly as
  // IndexFlatCodes::remove_ids compacts its codes.
  void CompactLabels() {
    const size_t dim = options_.dim;
    size_t out = 0;
    for (size_t l = 0; l < label_to_id_.size(); ++l) {
      if (label_to_id_[l] < 0) continue;
      if (out != l) {
        label_to_id_[out] = label_to_id_[l];
        if (!raw_.empty()) {
          std::copy_n(raw_.begin() + l * dim, dim, raw_.begin() + out * dim);
        }
      }
      id_to_label_[label_to_id_[out]] = static_cast<int64_t>(out);
      ++out;
    }
    label_to_id_.resize(out);
    if (!raw_.empty()) raw_.resize(out * dim);
  }

  // Appends vectors (ids not present) to the serving index.
  absl::Status Append(const std::vector<int64_t>& ids,
                      const std::vector<float>& rows) {
    InvalidateNorms();
    const size_t n = ids.size();
    const int64_t first = static_cast<int64_t>(label_to_id_.size());
    try {
      if (layout_ == Layout::kLabelled) {
        std::vector<FaissIdx> labels(n);
        std::iota(labels.begin(), labels.end(), first);
        index_->add_with_ids(static_cast<FaissIdx>(n), rows.data(),
                             labels.data());
      } else {
        if (index_->ntotal != first) {
          return absl::InternalError("label table out of sync with FAISS");
        }
        index_->add(static_cast<FaissIdx>(n), rows.data());
      }
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat("FAISS add: ", e.what()));
    }
    for (size_t i = 0; i < n; ++i) {
      label_to_id_.push_back(ids[i]);
      id_to_label_[ids[i]] = first + static_cast<int64_t>(i);
    }
    if (trained_ && lossy_) raw_.insert(raw_.end(), rows.begin(), rows.end());
    return absl::OkStatus();
  }

  // Trains the real index on every staged vector and moves them over. On
  // failure the staging index keeps serving and the next Add retries.
  absl::Status Train() {
    InvalidateNorms();
    auto* staging = dynamic_cast<faiss::IndexFlat*>(index_.get());
    if (staging == nullptr) return absl::InternalError("no staging index");
    const size_t n = static_cast<size_t>(staging->ntotal);
    const float* xb = staging->get_xb();
    std::unique_ptr<faiss::Index> real;
    ASSIGN_OR_RETURN(real, MakeFaissIndex(options_, factory_));
    const Layout layout = LayoutOf(real.get());
    try {
      real->train(static_cast<FaissIdx>(n), xb);
      if (layout == Layout::kLabelled) {
        std::vector<FaissIdx> labels(n);
        std::iota(labels.begin(), labels.end(), 0);
        real->add_with_ids(static_cast<FaissIdx>(n), xb, labels.data());
      } else {
        real->add(static_cast<FaissIdx>(n), xb);
      }
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat("FAISS train: ", e.what()));
    }
    // Staging is compacting, so labels 0..n-1 are exactly its rows.
    lossy_ = IsLossy(real.get());
    if (lossy_) raw_.assign(xb, xb + n * options_.dim);
    layout_ = layout;
    trained_ = true;
    index_ = std::move(real);
    return absl::OkStatus();
  }

  const DenseIndexOptions options_;
  const DenseFactory factory_;
  uint64_t train_threshold_ = 0;
  // The serving index: a flat staging index until trained, then the real one.
  std::unique_ptr<faiss::Index> index_;
  Layout layout_ = Layout::kCompacting;
  bool trained_ = false;
  // Lossy codes: raw_ keeps every label's vector for exact re-ranking.
  bool lossy_ = false;
  // FAISS label -> caller id; -1 = removed (hole or dead).
  std::vector<int64_t> label_to_id_;
  // Caller id -> FAISS label, live ids only.
  absl::flat_hash_map<int64_t, int64_t> id_to_label_;
  // Raw vectors by label (only when trained_ && lossy_).
  std::vector<float> raw_;
  mutable absl::Mutex norms_mu_;
  mutable std::shared_ptr<const std::vector<float>> half_norms_ ABSL_GUARDED_BY(norms_mu_);
};

}  // namespace

namespace internal {

absl::StatusOr<std::unique_ptr<DenseIndex>> MakeFaissDenseIndex(
    const DenseIndexOptions& options, const DenseFactory& factory) {
  ASSIGN_OR_RETURN(std::unique_ptr<Impl> impl, Impl::Make(options, factory));
  return std::unique_ptr<DenseIndex>(std::move(impl));
}

absl::StatusOr<std::unique_ptr<DenseIndex>> LoadFaissDenseIndex(
    const DenseIndexOptions& options, const DenseFactory& factory,
    absl::Span<const uint8_t> bytes) {
  ASSIGN_OR_RETURN(std::unique_ptr<Impl> impl, Impl::Make(options, factory));
  RETURN_IF_ERROR(impl->Load(bytes));
  return std::unique_ptr<DenseIndex>(std::move(impl));
}

}  // namespace internal
}  // namespace mnemo::index
