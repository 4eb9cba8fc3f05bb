// The hybrid (dense + BM25) candidate search shared by the memory and
// conversation searches: both indexes searched under one predicate, fused
// by reciprocal rank, the candidates' rows read, and each candidate's cosine
// similarity to the query (the dense score, or from its stored vector for
// those only BM25 found). Or, when a scope selects few records, the same
// two lists computed exactly over just those (ScopeCandidatesLocked,
// DenseAmongLocked, and SearchHybridCandidatesLocked's `among`).
#ifndef MNEMO_DB_HYBRID_CANDIDATES_H_
#define MNEMO_DB_HYBRID_CANDIDATES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "db/namespace.h"
#include "index/filter.h"
#include "index/fusion.h"

namespace mnemo::db {

class StoreImpl;

struct HybridCandidates {
  std::vector<index::ScoredId> fused;  // (internal id, RRF score), best first
  std::vector<std::optional<std::string>> rows;  // per fused; nullopt if deleted since
  absl::flat_hash_map<int64_t, float> similarity;  // cosine to the query, every fused id

  // The RRF score of fused[i] scaled to [0, 1] (1 = first in both lists).
  float Relevance(size_t i) const;
  float Similarity(int64_t id) const;
};

// Fuses `dense` (the dense index's top `depth` under `predicate`, searched
// by the caller, which may call StoreImpl::DenseSearchLocked) with BM25's
// top `depth` under the same predicate and keeps the `fuse_k` best. With
// `among` (the records `predicate` accepts, from ScopeCandidatesLocked),
// BM25 scores only those (Bm25Index::SearchAmong: the same scores). The
// caller holds `ns->mu` shared.
absl::StatusOr<HybridCandidates> SearchHybridCandidatesLocked(
    StoreImpl& store, Namespace* ns, absl::Span<const float> query,
    absl::Span<const index::ScoredId> dense, absl::Span<const uint32_t> query_terms, int depth,
    int fuse_k, const index::IdPredicate* predicate,
    const std::vector<int64_t>* among = nullptr);

// Scopes of at most this many records are searched exactly over them.
inline constexpr size_t kScopePlanMaxRecords = 4096;

// The records a scope can hold: the smallest of the sets of `ns->attrs`'s
// indexed `fields` holding the given values (a (field, value) pair per
// non-empty value), filtered by `predicate`; nullopt when no value is given
// or that set has more than `limit` ids (the indexes are then the better
// plan). Ascending ids. The caller holds `ns->mu` shared.
std::optional<std::vector<int64_t>> ScopeCandidatesLocked(
    const Namespace& ns, absl::Span<const std::pair<const char*, std::string>> fields,
    size_t limit, const index::IdPredicate& predicate) ABSL_NO_THREAD_SAFETY_ANALYSIS;

// The exact top `depth` of `among` by cosine similarity to `query`, from
// their stored vectors (ties by ascending id); those without one are
// skipped. The caller holds `ns->mu` shared.
absl::StatusOr<std::vector<index::ScoredId>> DenseAmongLocked(StoreImpl& store,
                                                              const Namespace& ns,
                                                              absl::Span<const float> query,
                                                              const std::vector<int64_t>& among,
                                                              int depth);

}  // namespace mnemo::db

#endif  // MNEMO_DB_HYBRID_CANDIDATES_H_
