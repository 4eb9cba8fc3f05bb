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
    int fuse_k, const index::IdPredicate* predicate) {
  if (ns->bm25 == nullptr) return absl::InternalError("namespace has no BM25 index");
  HybridCandidates out;
  ASSIGN_OR_RETURN(auto bm25, ns->bm25->Search(query_terms, depth, predicate));
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

}  // namespace mnemo::db
