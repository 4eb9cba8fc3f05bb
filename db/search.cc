// Search: dense search of vector or text queries (with the OpenMP
// scheduling described in store.h), BM25, hybrid fusion (RRF and weighted),
// late interaction (MaxSim), and turning ranked ids into hits (payload,
// vectors, snippets).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "db/keys.h"
#include "db/records.h"
#include "db/store_impl.h"
#include "db/token_vectors.h"
#include "db/validation.h"
#include "index/fusion.h"
#include "index/multivec.h"

namespace mnemo::db {
namespace {

// Candidates each list contributes to a hybrid search (at least k).
constexpr int kHybridDepth = 50;
// Exact scans of at least this many floats use the whole OpenMP team even
// for a single query (store.h, CPU scheduling).
constexpr size_t kWholeTeamScanFloats = size_t{1} << 20;

// Sets the calling thread's OpenMP team size for its lifetime, then restores
// it. Team size is a per-thread setting, so concurrent callers do not
// interfere.
class ScopedOmpThreads {
 public:
  explicit ScopedOmpThreads(int n) : saved_(omp_get_max_threads()) { omp_set_num_threads(n); }
  ~ScopedOmpThreads() { omp_set_num_threads(saved_); }
  ScopedOmpThreads(const ScopedOmpThreads&) = delete;
  ScopedOmpThreads& operator=(const ScopedOmpThreads&) = delete;

 private:
  const int saved_;
};

}  // namespace

absl::StatusOr<std::vector<std::vector<index::ScoredId>>> StoreImpl::DenseSearchLocked(
    Namespace* ns, absl::Span<const float> queries, int k, const SearchOptions& options,
    const index::IdPredicate* predicate) {
  const size_t n = queries.size() / ns->config.dim;
  std::vector<std::vector<index::ScoredId>> lists(n);
  if (ns->index->size() == 0) return lists;
  // A full scan big enough to split pays for the team even for one query.
  const bool big_scan = ns->index->scans_all() &&
                        ns->index->size() * ns->config.dim >= kWholeTeamScanFloats;
  const bool whole_team =
      search_threads_ > 1 && (n >= 2 * static_cast<size_t>(search_threads_) || big_scan);
  std::optional<absl::MutexLock> team_lock;
  if (whole_team) team_lock.emplace(&parallel_search_mu_);
  std::optional<ScopedOmpThreads> single_thread;
  if (!whole_team) single_thread.emplace(1);
  ASSIGN_OR_RETURN(index::DenseSearchResult found,
                   ns->index->Search(queries, k, predicate, options.params));
  team_lock.reset();
  single_thread.reset();
  for (size_t q = 0; q < found.n && q < n; ++q) {
    for (size_t j = 0; j < found.k; ++j) {
      const int64_t id = found.ids[q * found.k + j];
      if (id < 0) continue;
      lists[q].emplace_back(id, found.scores[q * found.k + j]);
    }
  }
  return lists;
}

absl::StatusOr<std::vector<std::vector<Hit>>> StoreImpl::MakeHitsLocked(
    Namespace* ns, const std::vector<std::vector<index::ScoredId>>& lists,
    const SearchOptions& options, const text::TextEncoder* encoder) {
  std::vector<std::vector<Hit>> hits(lists.size());
  const bool highlight = options.highlight && encoder != nullptr;
  const bool want_row = options.include_payload || highlight;
  const bool want_chunk = options.include_payload || options.include_vectors;
  std::vector<std::pair<size_t, size_t>> positions;  // (query, hit) needing a row
  std::vector<std::string> row_keys;
  for (size_t q = 0; q < lists.size(); ++q) {
    for (const auto& [id, score] : lists[q]) {
      auto ext = ns->external_ids.find(id);
      if (ext == ns->external_ids.end()) continue;  // cannot happen: index == store
      Hit hit;
      hit.id = ext->second;
      hit.score = score;
      if (want_chunk || highlight) {
        positions.emplace_back(q, hits[q].size());
        row_keys.push_back(keys::RowKey(ns->nsid, id));
      }
      hits[q].push_back(std::move(hit));
    }
  }
  if (positions.empty()) return hits;

  std::vector<std::optional<std::string>> rows;
  std::vector<std::optional<std::string>> dense_rows;
  if (want_row) {
    ASSIGN_OR_RETURN(rows, MultiGet(chunks_, row_keys));
  }
  if (options.include_vectors) {
    ASSIGN_OR_RETURN(dense_rows, MultiGet(dense_, row_keys));
  }
  for (size_t r = 0; r < positions.size(); ++r) {
    const size_t q = positions[r].first;
    Hit& hit = hits[q][positions[r].second];
    Chunk chunk;
    if (want_row && rows[r].has_value()) {
      RETURN_IF_ERROR(records::DecodeChunk(*rows[r], &chunk));
    }
    if (highlight) {
      hit.snippet = text::MakeSnippet(chunk.text, options.text_queries[q],
                                      encoder->SplitSentences(chunk.text));
    }
    if (!want_chunk) continue;
    if (!options.include_payload) chunk = Chunk();
    chunk.id = hit.id;
    if (options.include_vectors && dense_rows[r].has_value()) {
      RETURN_IF_ERROR(records::DecodeVector(*dense_rows[r], ns->config.dim, &chunk.vector));
    }
    hit.chunk = std::move(chunk);
  }
  return hits;
}

absl::StatusOr<std::vector<std::vector<Hit>>> StoreImpl::Search(absl::string_view ns_name,
                                                                absl::Span<const float> queries,
                                                                const SearchOptions& options) {
  ASSIGN_OR_RETURN(NamespacePtr ns, FindNamespace(ns_name));
  const Limits& limits = options_.limits;
  const uint32_t dim = ns->config.dim;
  if (options.k < 1 || static_cast<uint32_t>(options.k) > limits.max_k) {
    return absl::InvalidArgumentError(
        absl::StrCat("k must be in 1..", limits.max_k, ", got ", options.k));
  }
  if (!options.text_queries.empty()) return TextSearch(ns.get(), queries, options);
  if (options.mode != SearchMode::kDense) {
    return absl::InvalidArgumentError(
        "vector queries are searched in DENSE mode only; BM25, hybrid and late-interaction "
        "modes need text queries");
  }
  if (options.highlight) {
    return absl::InvalidArgumentError("highlight needs text queries");
  }
  if (options.expected_dim != 0 && options.expected_dim != dim) {
    return absl::InvalidArgumentError(absl::StrCat("query dim ", options.expected_dim,
                                                   " does not match namespace \"", ns_name,
                                                   "\" dim ", dim));
  }
  if (queries.empty() || queries.size() % dim != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "queries hold ", queries.size(), " floats; expected a non-zero multiple of dim ", dim));
  }
  const size_t n = queries.size() / dim;
  if (n > limits.max_query_batch) {
    return absl::ResourceExhaustedError(absl::StrCat(n, " queries in one search; the limit is ",
                                                     limits.max_query_batch));
  }
  for (size_t i = 0; i < queries.size(); ++i) {
    if (!std::isfinite(queries[i])) {
      return absl::InvalidArgumentError(absl::StrCat("query ", i / dim,
                                                     " has a non-finite value at index ",
                                                     i % dim));
    }
  }
  RETURN_IF_ERROR(index::ValidateFilter(options.filter));

  absl::ReaderMutexLock lock(&ns->mu);
  RETURN_IF_ERROR(ns->GoneStatus());
  index::FilterPredicate predicate(&ns->attrs, &options.filter);
  ASSIGN_OR_RETURN(auto lists,
                   DenseSearchLocked(ns.get(), queries, options.k, options,
                                     options.filter.empty() ? nullptr : &predicate));
  return MakeHitsLocked(ns.get(), lists, options, /*encoder=*/nullptr);
}

absl::StatusOr<std::vector<std::vector<Hit>>> StoreImpl::TextSearch(
    Namespace* ns, absl::Span<const float> queries, const SearchOptions& options) {
  const Limits& limits = options_.limits;
  if (!queries.empty()) {
    return absl::InvalidArgumentError(
        "a search carries either text queries or vector queries, not both");
  }
  if (ns->config.encoder.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "namespace '", ns->config.name,
        "' has no encoder, so it takes vector queries only; create it with an encoder for text "
        "search"));
  }
  const size_t n = options.text_queries.size();
  if (n > limits.max_query_batch) {
    return absl::ResourceExhaustedError(absl::StrCat(n, " queries in one search; the limit is ",
                                                     limits.max_query_batch));
  }
  for (size_t q = 0; q < n; ++q) {
    const std::string& text = options.text_queries[q];
    RETURN_IF_ERROR(ValidateText(text, absl::StrCat("text query ", q), limits));
    if (IsBlank(text)) {
      return absl::InvalidArgumentError(absl::StrCat("text query ", q, " is empty"));
    }
  }
  switch (options.mode) {
    case SearchMode::kDense:
    case SearchMode::kBm25:
    case SearchMode::kHybridRrf:
    case SearchMode::kHybridWeighted:
    case SearchMode::kLateInteraction:
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown search mode ", static_cast<int>(options.mode)));
  }
  if (!std::isfinite(options.dense_weight) || !std::isfinite(options.bm25_weight) ||
      options.dense_weight < 0 || options.bm25_weight < 0) {
    return absl::InvalidArgumentError("dense_weight and bm25_weight must be finite and >= 0");
  }
  if (options.rrf_k < 0) {
    return absl::InvalidArgumentError(absl::StrCat("rrf_k must be >= 0, got ", options.rrf_k));
  }
  RETURN_IF_ERROR(index::ValidateFilter(options.filter));
  if (options.mode == SearchMode::kLateInteraction &&
      !ns->config.late_interaction.value_or(false)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "namespace '", ns->config.name,
        "' keeps no token vectors (created with late_interaction off), so it cannot be "
        "searched in LATE_INTERACTION mode"));
  }
  ASSIGN_OR_RETURN(const text::TextEncoder* enc,
                   text::GetEncoder(options_.encoder_dir, ns->config.encoder));
  if (options.mode == SearchMode::kLateInteraction) return LateSearch(ns, *enc, options);

  const bool hybrid =
      options.mode == SearchMode::kHybridRrf || options.mode == SearchMode::kHybridWeighted;
  const bool need_dense = options.mode != SearchMode::kBm25;
  const bool need_bm25 = options.mode != SearchMode::kDense;
  const int depth = hybrid ? std::max(options.k, kHybridDepth) : options.k;
  // Embedding and tokenizing happen before taking the namespace lock.
  std::vector<float> vectors;
  if (need_dense) {
    ASSIGN_OR_RETURN(vectors, enc->Encode(options.text_queries));
    if (vectors.size() != n * ns->config.dim) {
      return absl::InternalError(absl::StrCat("encoder returned ", vectors.size(),
                                              " floats for ", n, " queries"));
    }
  }
  std::vector<std::vector<uint32_t>> terms(need_bm25 ? n : 0);
  for (size_t q = 0; q < terms.size(); ++q) {
    ASSIGN_OR_RETURN(std::vector<int> ids, enc->Tokenize(options.text_queries[q]));
    terms[q].assign(ids.begin(), ids.end());
  }

  absl::ReaderMutexLock lock(&ns->mu);
  RETURN_IF_ERROR(ns->GoneStatus());
  index::FilterPredicate predicate(&ns->attrs, &options.filter);
  const index::IdPredicate* filter = options.filter.empty() ? nullptr : &predicate;
  std::vector<std::vector<index::ScoredId>> dense(n);
  std::vector<std::vector<index::ScoredId>> bm25(n);
  if (need_dense) {
    ASSIGN_OR_RETURN(dense, DenseSearchLocked(ns, vectors, depth, options, filter));
  }
  if (need_bm25) {
    if (ns->bm25 == nullptr) return absl::InternalError("namespace has no BM25 index");
    for (size_t q = 0; q < n; ++q) {
      ASSIGN_OR_RETURN(bm25[q], ns->bm25->Search(terms[q], depth, filter));
    }
  }
  std::vector<std::vector<index::ScoredId>> lists;
  switch (options.mode) {
    case SearchMode::kDense:
      lists = std::move(dense);
      break;
    case SearchMode::kBm25:
      lists = std::move(bm25);
      break;
    case SearchMode::kHybridRrf:
      for (size_t q = 0; q < n; ++q) {
        std::vector<std::vector<int64_t>> ranked(2);
        for (const auto& [id, score] : dense[q]) ranked[0].push_back(id);
        for (const auto& [id, score] : bm25[q]) ranked[1].push_back(id);
        ASSIGN_OR_RETURN(auto fused, index::ReciprocalRankFusion(
                                         ranked, options.k,
                                         options.rrf_k == 0 ? 60 : options.rrf_k));
        lists.push_back(std::move(fused));
      }
      break;
    case SearchMode::kHybridWeighted: {
      double dense_weight = options.dense_weight;
      double bm25_weight = options.bm25_weight;
      if (dense_weight == 0 && bm25_weight == 0) dense_weight = bm25_weight = 0.5;
      for (size_t q = 0; q < n; ++q) {
        std::vector<index::WeightedList> inputs(2);
        inputs[0].hits = std::move(dense[q]);
        inputs[0].weight = dense_weight;
        inputs[0].higher_is_better = ns->config.metric != Metric::kL2;
        inputs[1].hits = std::move(bm25[q]);
        inputs[1].weight = bm25_weight;
        ASSIGN_OR_RETURN(auto fused, index::WeightedFusion(inputs, options.k));
        lists.push_back(std::move(fused));
      }
      break;
    }
    case SearchMode::kLateInteraction:
      // Dispatched to LateSearch before the dense and BM25 lists are built.
      return absl::InternalError("late-interaction search reached the fusion step");
  }
  return MakeHitsLocked(ns, lists, options, enc);
}

absl::StatusOr<std::vector<std::vector<Hit>>> StoreImpl::LateSearch(
    Namespace* ns, const text::TextEncoder& enc, const SearchOptions& options) {
  const uint32_t dim = ns->config.dim;
  const size_t n = options.text_queries.size();
  // Query token states, outside the lock.
  ASSIGN_OR_RETURN(std::vector<std::vector<float>> states, enc.EncodeTokens(options.text_queries));
  if (states.size() != n) {
    return absl::InternalError("encoder returned token states for a different batch size");
  }
  std::vector<std::vector<float>> queries(n);
  for (size_t q = 0; q < n; ++q) {
    ASSIGN_OR_RETURN(queries[q], CleanTokens(std::move(states[q]), dim));
  }
  index::MultiVectorSearchParams params;
  params.nprobe = options.late_nprobe;
  params.max_candidates = options.late_max_candidates;

  absl::ReaderMutexLock lock(&ns->mu);
  RETURN_IF_ERROR(ns->GoneStatus());
  if (ns->multivec == nullptr) return absl::InternalError("namespace has no token index");
  index::FilterPredicate predicate(&ns->attrs, &options.filter);
  const index::IdPredicate* filter = options.filter.empty() ? nullptr : &predicate;
  std::vector<std::vector<index::ScoredId>> lists(n);
  for (size_t q = 0; q < n; ++q) {
    // A query without usable tokens, or an empty namespace, matches nothing.
    if (queries[q].empty() || ns->multivec->size() == 0) continue;
    ASSIGN_OR_RETURN(index::MultiVectorSearchResult found,
                     ns->multivec->Search(queries[q], options.k, filter, params));
    for (size_t j = 0; j < found.ids.size(); ++j) {
      if (found.ids[j] >= 0) lists[q].emplace_back(found.ids[j], found.scores[j]);
    }
  }
  return MakeHitsLocked(ns, lists, options, &enc);
}

}  // namespace mnemo::db
