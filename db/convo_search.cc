// Reading conversation logs (see convo_engine.h): Search (dense + BM25 with
// the message predicate inside both index searches, fused by reciprocal
// rank) and List (the run's time index from `since`, page tokens bound to
// their selection).
#include <algorithm>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/hash.h"
#include "common/status_macros.h"
#include "db/bounded_iterator.h"
#include "db/convo_engine.h"
#include "db/convo_predicate.h"
#include "db/convo_records.h"
#include "db/cosine.h"
#include "db/hybrid_candidates.h"
#include "db/keys.h"
#include "db/memory_engine.h"
#include "db/records.h"
#include "db/rocks_status.h"
#include "db/store_impl.h"
#include "db/validation.h"
#include "index/fusion.h"

namespace mnemo::db {
namespace {

// Candidates each list contributes (at least top_k).
constexpr int kCandidateDepth = 50;
constexpr uint32_t kMaxPageSize = 1000;

// The selection a page token is bound to: 16 hex digits.
std::string SelectionFingerprint(const MessageSelection& s) {
  const std::string canon =
      absl::StrCat(s.run_id.size(), ":", s.run_id, "|", s.role, "|",
                   s.since_ms.has_value() ? absl::StrCat(*s.since_ms) : "-", "|",
                   s.until_ms.has_value() ? absl::StrCat(*s.until_ms) : "-");
  return absl::StrFormat("%016x", Fnv1a(canon, kFnv1aStandardBasis));
}

// A page token: "<fingerprint>:<time ms>:<message id>" of the last message
// of the page.
std::string PageToken(const std::string& fingerprint, const Message& last) {
  return absl::StrCat(fingerprint, ":", last.time_ms, ":", last.id);
}

absl::Status ParsePageToken(absl::string_view token, absl::string_view fingerprint,
                            int64_t* time_ms, std::string* id) {
  std::vector<absl::string_view> parts = absl::StrSplit(token, absl::MaxSplits(':', 2));
  if (parts.size() != 3 || parts[0].size() != 16 || !absl::SimpleAtoi(parts[1], time_ms) ||
      *time_ms < 0 || !convorecords::IsMessageId(parts[2])) {
    return absl::InvalidArgumentError("malformed page token");
  }
  if (parts[0] != fingerprint) {
    return absl::InvalidArgumentError(
        "page token belongs to another listing (its run, role or time range differ); start "
        "again without a token");
  }
  *id = std::string(parts[2]);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<MessagePage> ConvoEngine::List(absl::string_view ns_name,
                                              const MessageListOptions& options) {
  const MessageSelection& sel = options.selection;
  RETURN_IF_ERROR(ValidateRunId(sel.run_id));
  RETURN_IF_ERROR(ValidateMessageSelection(sel));
  if (options.page_size < 1 || options.page_size > kMaxPageSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size must be in 1..", kMaxPageSize, ", got ", options.page_size));
  }
  const std::string fingerprint = SelectionFingerprint(sel);
  std::optional<std::pair<int64_t, std::string>> after;
  if (!options.page_token.empty()) {
    after.emplace();
    RETURN_IF_ERROR(ParsePageToken(options.page_token, fingerprint, &after->first, &after->second));
  }
  ASSIGN_OR_RETURN(NamespacePtr ns, memories_->OpenNamespace(ns_name, /*create=*/false));
  absl::ReaderMutexLock lock(&ns->mu);
  RETURN_IF_ERROR(ns->GoneStatus());

  const std::string prefix = convorecords::RunPrefix(ns->nsid, sel.run_id);
  std::string start = prefix;
  if (after.has_value()) {
    start = convorecords::TimeKey(ns->nsid, sel.run_id, after->first, after->second);
    start.push_back('\0');
  } else if (sel.since_ms.has_value()) {
    start = convorecords::TimeKey(ns->nsid, sel.run_id, *sel.since_ms, "");
  }
  const std::string end =
      sel.until_ms.has_value() && *sel.until_ms < std::numeric_limits<int64_t>::max()
          ? convorecords::TimeKey(ns->nsid, sel.run_id, *sel.until_ms + 1, "")
          : keys::PrefixEnd(prefix);
  MessagePredicate predicate(&ns->attrs, &sel);
  std::vector<std::string> row_keys;
  {
    BoundedIterator it(owner_->db(), owner_->memory_, end);
    for (it->Seek(start); it->Valid() && row_keys.size() <= options.page_size; it->Next()) {
      int64_t time_ms = 0;
      std::string id;
      RETURN_IF_ERROR(convorecords::DecodeTimeKey(
          absl::string_view(it->key().data(), it->key().size()), prefix.size(), &time_ms, &id));
      ASSIGN_OR_RETURN(auto mapped, owner_->GetOne(owner_->idmap_, keys::IdMapKey(ns->nsid, id)));
      if (!mapped.has_value()) continue;
      std::optional<uint64_t> internal = keys::ReadU64(*mapped);
      if (!internal.has_value()) return absl::DataLossError("malformed id map entry");
      if (!predicate.Contains(static_cast<int64_t>(*internal))) continue;
      row_keys.push_back(keys::RowKey(ns->nsid, static_cast<int64_t>(*internal)));
    }
    RETURN_IF_ERROR(FromRocks(it->status(), "listing messages"));
  }
  ASSIGN_OR_RETURN(auto rows, owner_->MultiGet(owner_->chunks_, row_keys));
  MessagePage page;
  for (const auto& row : rows) {
    if (!row.has_value()) return absl::DataLossError("a listed message has no row");
    Chunk chunk;
    RETURN_IF_ERROR(records::DecodeChunk(*row, &chunk));
    ASSIGN_OR_RETURN(Message m, convorecords::MessageFromChunk(chunk));
    page.messages.push_back(std::move(m));
  }
  if (page.messages.size() > options.page_size) {
    page.messages.resize(options.page_size);
    page.next_page_token = PageToken(fingerprint, page.messages.back());
  }
  return page;
}

absl::StatusOr<std::vector<MessageHit>> ConvoEngine::Search(absl::string_view ns_name,
                                                            const MessageSearchOptions& options) {
  const Limits& limits = owner_->options().limits;
  RETURN_IF_ERROR(ValidateMessageSelection(options.selection));
  RETURN_IF_ERROR(ValidateText(options.query, "the query", limits));
  if (IsBlank(options.query)) return absl::InvalidArgumentError("the query is empty");
  if (options.top_k < 1 || static_cast<uint32_t>(options.top_k) > limits.max_k) {
    return absl::InvalidArgumentError(
        absl::StrCat("top_k must be in 1..", limits.max_k, ", got ", options.top_k));
  }
  ASSIGN_OR_RETURN(NamespacePtr ns, memories_->OpenNamespace(ns_name, /*create=*/false));
  ASSIGN_OR_RETURN(std::vector<MemoryEngine::Embedded> query,
                   memories_->Embed(*ns, {options.query}));
  const std::vector<float>& qvec = query[0].vector;

  absl::ReaderMutexLock lock(&ns->mu);
  RETURN_IF_ERROR(ns->GoneStatus());
  MessagePredicate predicate(&ns->attrs, &options.selection);
  const int depth = std::max(options.top_k, kCandidateDepth);
  // A run of few messages is scored exactly over them (hybrid_candidates.h).
  const std::pair<const char*, std::string> scope_fields[] = {
      {convorecords::kAttrRun, options.selection.run_id}};
  const std::optional<std::vector<int64_t>> among =
      ScopeCandidatesLocked(*ns, scope_fields, kScopePlanMaxRecords, predicate);
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
                                                depth, options.top_k, &predicate,
                                                among.has_value() ? &*among : nullptr));
  std::vector<MessageHit> hits;
  for (size_t i = 0; i < candidates.fused.size(); ++i) {
    if (!candidates.rows[i].has_value()) continue;
    Chunk chunk;
    RETURN_IF_ERROR(records::DecodeChunk(*candidates.rows[i], &chunk));
    ASSIGN_OR_RETURN(Message m, convorecords::MessageFromChunk(chunk));
    MessageHit hit;
    hit.message = std::move(m);
    hit.score = candidates.Relevance(i);
    hit.similarity = candidates.Similarity(candidates.fused[i].first);
    hits.push_back(std::move(hit));
  }
  return hits;
}

}  // namespace mnemo::db
