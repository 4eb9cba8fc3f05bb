// The hybrid candidate search of memories and messages (hybrid_candidates.h).
#include "db/hybrid_candidates.h"

#include <algorithm>

#include "common/status_macros.h"
#include "db/bm25.h"
#include "db/cosine.h"
#include "db/keys.h"
#include "db/records.h"
#include "db/store_impl.h"

namespace mnemo::db {
namespace {

constexpr int kRrfK = 60;

}  // namespace

float HybridCandidates::Relevance(size_t i) const {
  const double best_rrf = 2.0 / (kRrfK + 1);
  return static_cast<float>(std::min(1.0, fused[i].second / best_rrf));
}

float HybridCandidates::Similarity(int64_t id) const {
  auto it = similarity.find(id);
  return it == similarity.end() ? 0.f : it->second;
}

absl::StatusOr<HybridCandidates> SearchHybridCandidatesLocked(
    StoreImpl& store, Namespace* ns, absl::Span<const float> query,
    absl::Span<const index::ScoredId> dense, absl::Span<const uint32_t> query_terms, int depth,
    int fuse_k, const index::IdPredicate* predicate, const std::vector<int64_t>* among) {
  if (ns->bm25 == nullptr) return absl::InternalError("namespace has no BM25 index");
  HybridCandidates out;
  std::vector<std::pair<int64_t, float>> bm25;
  if (among != nullptr) {
    ASSIGN_OR_RETURN(bm25, ns->bm25->SearchAmong(query_terms, depth, *among));
  } else {
    ASSIGN_OR_RETURN(bm25, ns->bm25->Search(query_terms, depth, predicate));
  }
  std::vector<std::vector<int64_t>> ranked(2);
  for (const auto& [id, score] : dense) {
    ranked[0].push_back(id);
    out.similarity[id] = score;
  }
  for (const auto& [id, score] : bm25) ranked[1].push_back(id);
  ASSIGN_OR_RETURN(out.fused, index::ReciprocalRankFusion(ranked, fuse_k, kRrfK));

  // Rows of the candidates, and vectors of those only BM25 found.
  std::vector<std::string> row_keys;
  std::vector<std::string> vector_keys;
  std::vector<int64_t> vector_ids;
  for (const auto& [id, score] : out.fused) {
    row_keys.push_back(keys::RowKey(ns->nsid, id));
    if (!out.similarity.contains(id)) {
      vector_keys.push_back(row_keys.back());
      vector_ids.push_back(id);
    }
  }
  ASSIGN_OR_RETURN(auto vectors, store.MultiGet(store.dense_cf(), vector_keys));
  for (size_t i = 0; i < vectors.size(); ++i) {
    if (!vectors[i].has_value()) continue;
    std::vector<float> v;
    RETURN_IF_ERROR(records::DecodeVector(*vectors[i], ns->config.dim, &v));
    out.similarity[vector_ids[i]] = Cosine(query, v);
  }
  ASSIGN_OR_RETURN(out.rows, store.MultiGet(store.chunks_cf(), row_keys));
  return out;
}

std::optional<std::vector<int64_t>> ScopeCandidatesLocked(
    const Namespace& ns, absl::Span<const std::pair<const char*, std::string>> fields,
    size_t limit, const index::IdPredicate& predicate) {
  const absl::flat_hash_set<int64_t>* smallest = nullptr;
  for (const auto& [field, value] : fields) {
    if (value.empty()) continue;
    const absl::flat_hash_set<int64_t>* ids = ns.attrs.IdsWithString(field, value);
    if (ids == nullptr) continue;  // not indexed
    if (smallest == nullptr || ids->size() < smallest->size()) smallest = ids;
  }
  if (smallest == nullptr || smallest->size() > limit) return std::nullopt;
  std::vector<int64_t> out;
  out.reserve(smallest->size());
  for (int64_t id : *smallest) {
    if (predicate.Contains(id)) out.push_back(id);
  }
  std::sort(out.begin(), out.end());
  return out;
}

absl::StatusOr<std::vector<index::ScoredId>> DenseAmongLocked(StoreImpl& store,
                                                              const Namespace& ns,
                                                              absl::Span<const float> query,
                                                              const std::vector<int64_t>& among,
                                                              int depth) {
  std::vector<std::string> keys;
  keys.reserve(among.size());
  for (int64_t id : among) keys.push_back(keys::RowKey(ns.nsid, id));
  ASSIGN_OR_RETURN(auto vectors, store.MultiGet(store.dense_cf(), keys));
  std::vector<index::ScoredId> scored;
  scored.reserve(among.size());
  std::vector<float> v;
  for (size_t i = 0; i < vectors.size(); ++i) {
    if (!vectors[i].has_value()) continue;
    v.clear();  // DecodeVector appends
    RETURN_IF_ERROR(records::DecodeVector(*vectors[i], ns.config.dim, &v));
    scored.emplace_back(among[i], Cosine(query, v));
  }
  const size_t keep = std::min(scored.size(), static_cast<size_t>(std::max(depth, 0)));
  std::partial_sort(scored.begin(), scored.begin() + keep, scored.end(),
                    [](const index::ScoredId& a, const index::ScoredId& b) {
                      return a.second != b.second ? a.second > b.second : a.first < b.first;
                    });
  scored.resize(keep);
  return scored;
}

}  // namespace mnemo::db
