// Reading memories (see memory_engine.h): Search (dense + BM25 with the
// memory predicate inside both index searches, fused by reciprocal rank,
// thresholded on cosine similarity, optionally weighted by recency), Get,
// and List (id order, page tokens bound to their query).
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/hash.h"
#include "common/status_macros.h"
#include "db/bounded_iterator.h"
#include "db/cosine.h"
#include "db/hybrid_candidates.h"
#include "db/keys.h"
#include "db/memory_engine.h"
#include "db/memory_filter.h"
#include "db/memory_records.h"
#include "db/records.h"
#include "db/rocks_status.h"
#include "db/store_impl.h"
#include "db/validation.h"
#include "index/fusion.h"

namespace mnemo::db {
namespace {

// Candidates each list contributes (at least top_k).
constexpr int kCandidateDepth = 50;
constexpr int64_t kDefaultHalfLifeMs = int64_t{7} * 24 * 3600 * 1000;
constexpr uint32_t kMaxPageSize = 1000;

// The query a page token is bound to.
std::string QueryFingerprint(const MemoryListOptions& o) {
  std::string canon = absl::StrCat(o.scope.user_id.size(), ":", o.scope.user_id, "|",
                                   o.scope.agent_id.size(), ":", o.scope.agent_id, "|",
                                   o.scope.run_id.size(), ":", o.scope.run_id, "|",
                                   filter::MemoryFilterToJson(o.filter), "|",
                                   o.show_expired ? "expired" : "live");
  return memrecords::HashHex(Fnv1a(canon, kFnv1aStandardBasis));
}

}  // namespace

absl::StatusOr<std::vector<Memory>> MemoryEngine::ScanLocked(Namespace* ns,
                                                             const MemorySelection& selection,
                                                             absl::string_view after_id,
                                                             size_t limit) {
  const uint32_t nsid = ns->nsid;
  const std::string prefix = keys::IdMapKey(nsid, memrecords::kMemoryIdPrefix);
  std::string start = prefix;
  if (!after_id.empty()) {
    start = keys::IdMapKey(nsid, after_id);
    start.push_back('\0');
  }
  MemoryPredicate predicate(&ns->attrs, &selection);
  std::vector<std::string> row_keys;
  BoundedIterator it(owner_->db(), owner_->idmap_, keys::PrefixEnd(prefix));
  for (it->Seek(start); it->Valid() && row_keys.size() < limit; it->Next()) {
    std::optional<uint64_t> internal = keys::ReadU64(absl::string_view(it->value().data(), it->value().size()));
    if (!internal.has_value()) return absl::DataLossError("malformed id map entry");
    if (!predicate.Contains(static_cast<int64_t>(*internal))) continue;
    row_keys.push_back(keys::RowKey(nsid, static_cast<int64_t>(*internal)));
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "scanning memories"));
  ASSIGN_OR_RETURN(auto rows, owner_->MultiGet(owner_->chunks_, row_keys));
  std::vector<Memory> out;
  out.reserve(rows.size());
  for (const auto& row : rows) {
    if (!row.has_value()) continue;
    Chunk chunk;
    RETURN_IF_ERROR(records::DecodeChunk(*row, &chunk));
    ASSIGN_OR_RETURN(Memory m, memrecords::MemoryFromChunk(chunk));
    out.push_back(std::move(m));
  }
  return out;
}

absl::StatusOr<Memory> MemoryEngine::Get(absl::string_view ns_name, absl::string_view id) {
  ASSIGN_OR_RETURN(NamespacePtr ns, OpenNamespace(ns_name, /*create=*/false));
  absl::ReaderMutexLock lock(&ns->mu);
  RETURN_IF_ERROR(ns->GoneStatus());
  ASSIGN_OR_RETURN(auto loaded, LoadLocked(ns.get(), id));
  return std::move(loaded.second);
}

absl::StatusOr<MemoryPage> MemoryEngine::List(absl::string_view ns_name,
                                              const MemoryListOptions& options) {
  if (options.page_size < 1 || options.page_size > kMaxPageSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size must be in 1..", kMaxPageSize, ", got ", options.page_size));
  }
  ASSIGN_OR_RETURN(MemoryFilter compiled, CompileMemoryFilter(options.filter));
  const std::string fingerprint = QueryFingerprint(options);
  std::string after;
  if (!options.page_token.empty()) {
    const size_t colon = options.page_token.find(':');
    if (colon != 16 || !memrecords::IsMemoryId(options.page_token.substr(colon + 1))) {
      return absl::InvalidArgumentError("malformed page token");
    }
    if (options.page_token.substr(0, colon) != fingerprint) {
      return absl::InvalidArgumentError(
          "page token belongs to another query (its scope, filter or show_expired differ); "
          "start again without a token");
    }
    after = options.page_token.substr(colon + 1);
  }
  ASSIGN_OR_RETURN(NamespacePtr ns, OpenNamespace(ns_name, /*create=*/false));
  absl::ReaderMutexLock lock(&ns->mu);
  RETURN_IF_ERROR(ns->GoneStatus());
  MemorySelection selection;
  selection.scope = options.scope;
  selection.filter = std::move(compiled);
  selection.now_ms = NowMs();
  selection.show_expired = options.show_expired;
  ASSIGN_OR_RETURN(std::vector<Memory> found,
                   ScanLocked(ns.get(), selection, after, options.page_size + size_t{1}));
  MemoryPage page;
  if (found.size() > options.page_size) {
    found.resize(options.page_size);
    page.next_page_token = absl::StrCat(fingerprint, ":", found.back().id);
  }
  page.memories = std::move(found);
  return page;
}

absl::StatusOr<std::vector<MemoryHit>> MemoryEngine::Search(absl::string_view ns_name,
                                                            const MemorySearchOptions& options) {
  const Limits& limits = owner_->options().limits;
  if (options.scope.empty()) {
    return absl::InvalidArgumentError(
        "a memory search needs a scope: at least one of user_id, agent_id and run_id");
  }
  RETURN_IF_ERROR(ValidateText(options.query, "the query", limits));
  if (IsBlank(options.query)) return absl::InvalidArgumentError("the query is empty");
  if (options.top_k < 1 || static_cast<uint32_t>(options.top_k) > limits.max_k) {
    return absl::InvalidArgumentError(
        absl::StrCat("top_k must be in 1..", limits.max_k, ", got ", options.top_k));
  }
  if (options.threshold.has_value() &&
      (!std::isfinite(*options.threshold) || *options.threshold < -1 || *options.threshold > 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("threshold must be in [-1, 1], got ", *options.threshold));
  }
  if (!std::isfinite(options.recency_weight) || options.recency_weight < 0 ||
      options.recency_weight > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("recency_weight must be in [0, 1], got ", options.recency_weight));
  }
  if (options.recency_half_life_ms < 0) {
    return absl::InvalidArgumentError("recency_half_life_ms must be >= 0");
  }
  if (options.valid_from_ms.has_value() && options.valid_to_ms.has_value() &&
      *options.valid_from_ms > *options.valid_to_ms) {
    return absl::InvalidArgumentError("the time range ends before it starts");
  }
  ASSIGN_OR_RETURN(MemoryFilter compiled, CompileMemoryFilter(options.filter));
  ASSIGN_OR_RETURN(NamespacePtr ns, OpenNamespace(ns_name, /*create=*/false));
  ASSIGN_OR_RETURN(std::vector<Embedded> query, Embed(*ns, {options.query}));
  const std::vector<float>& qvec = query[0].vector;

  absl::ReaderMutexLock lock(&ns->mu);
  RETURN_IF_ERROR(ns->GoneStatus());
  MemorySelection selection;
  selection.scope = options.scope;
  selection.filter = std::move(compiled);
  selection.now_ms = NowMs();
  selection.show_expired = options.show_expired;
  selection.valid_from_ms = options.valid_from_ms;
  selection.valid_to_ms = options.valid_to_ms;
  MemoryPredicate predicate(&ns->attrs, &selection);
  const int depth = std::max(options.top_k, kCandidateDepth);

  // The plan: a scope of few memories (a user's, a run's) is searched
  // exactly over them; a large one through the indexes under the predicate.
  std::optional<std::vector<int64_t>> among;
  if (options.plan != MemorySearchPlan::kIndexes) {
    const std::pair<const char*, std::string> scope_fields[] = {
        {memrecords::kAttrUser, options.scope.user_id},
        {memrecords::kAttrAgent, options.scope.agent_id},
        {memrecords::kAttrRun, options.scope.run_id}};
    among = ScopeCandidatesLocked(*ns, scope_fields,
                                  options.plan == MemorySearchPlan::kScope
                                      ? std::numeric_limits<size_t>::max()
                                      : kScopePlanMaxRecords,
                                  predicate);
  }
  std::vector<index::ScoredId> dense;
  if (among.has_value()) {
    ASSIGN_OR_RETURN(dense, DenseAmongLocked(*owner_, *ns, qvec, *among, depth));
  } else if (ns->index->size() > 0) {
    ASSIGN_OR_RETURN(auto found,
                     owner_->DenseSearchLocked(ns.get(), qvec, depth, SearchOptions(), &predicate));
    if (!found.empty()) dense = std::move(found[0]);
  }
  ASSIGN_OR_RETURN(HybridCandidates candidates,
                   SearchHybridCandidatesLocked(*owner_, ns.get(), qvec, dense, query[0].terms,
                                                depth, 2 * depth, &predicate,
                                                among.has_value() ? &*among : nullptr));
  const std::vector<index::ScoredId>& fused = candidates.fused;

  const double half_life = static_cast<double>(
      options.recency_half_life_ms > 0 ? options.recency_half_life_ms : kDefaultHalfLifeMs);
  std::vector<MemoryHit> hits;
  for (size_t i = 0; i < fused.size(); ++i) {
    if (!candidates.rows[i].has_value()) continue;
    const float sim = candidates.Similarity(fused[i].first);
    if (options.threshold.has_value() && sim < *options.threshold) continue;
    Chunk chunk;
    RETURN_IF_ERROR(records::DecodeChunk(*candidates.rows[i], &chunk));
    ASSIGN_OR_RETURN(Memory m, memrecords::MemoryFromChunk(chunk));
    double score = candidates.Relevance(i);
    if (options.recency_weight > 0) {
      const double age = std::max<double>(0, static_cast<double>(selection.now_ms - m.updated_at_ms));
      const double recency = std::pow(0.5, age / half_life);
      score = (1 - options.recency_weight) * score + options.recency_weight * recency;
    }
    MemoryHit hit;
    hit.memory = std::move(m);
    hit.score = static_cast<float>(score);
    hit.similarity = sim;
    hits.push_back(std::move(hit));
  }
  std::stable_sort(hits.begin(), hits.end(),
                   [](const MemoryHit& a, const MemoryHit& b) { return a.score > b.score; });
  if (hits.size() > static_cast<size_t>(options.top_k)) hits.resize(options.top_k);
  return hits;
}

}  // namespace mnemo::db
