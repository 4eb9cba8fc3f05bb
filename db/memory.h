// Long-term agent memories in an encoder namespace (mem0 / Zep style): short
// texts with JSON metadata, a scope (user, agent, run), times, an optional
// expiry and a bi-temporal validity, searched hybrid (dense + BM25) with a
// filter algebra evaluated inside the index search, plus a history of every
// change.
//
// Storage: each memory is a chunk of the namespace (id "mem_...", its text,
// no document) whose metadata JSON carries the user's metadata plus the
// memory's own fields under reserved "@" keys (db/memory_records.h), so the
// chunk machinery embeds it, indexes it for BM25 and keeps its scope and
// times as filter attributes of the index. History events, the per-scope
// hash index and the expiry index live in the `memory` column family. A
// memory, its history event and its index changes commit in one WriteBatch.
//
// Duplicates: Add drops an exact duplicate of a live memory in the same
// scope (same text: hash, then text compared) and, when the most similar
// live memory of the same scope has cosine similarity >= the near-duplicate
// threshold, updates that memory instead (an UPDATE event).
//
// Expiry: a memory whose expires_at has passed is expired: hidden from
// search and list unless show_expired, refused by Update
// (FAILED_PRECONDITION), and deleted (a DELETE event, actor "ttl") by the
// store's expiry timer once StoreOptions::memory_expired_keep_ms more have
// passed.
//
// Thread safety: every method is safe to call concurrently (the namespace's
// locks, db/store_impl.h).
#ifndef MNEMO_DB_MEMORY_H_
#define MNEMO_DB_MEMORY_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/memory_filter.h"
#include "mnemo/memory_names.h"

namespace mnemo::db {

using filter::MemoryFilter;

// Who a memory belongs to; at least one field is set (INVALID_ARGUMENT
// otherwise). Each is 1..256 bytes when set.
struct MemoryScope {
  std::string user_id;
  std::string agent_id;
  std::string run_id;
  bool empty() const { return user_id.empty() && agent_id.empty() && run_id.empty(); }
};

struct Memory {
  std::string id;  // made by the store: "mem_" + 20 hex digits, creation order
  std::string text;
  std::string metadata_json;  // a JSON object ("{}" when none)
  MemoryScope scope;
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
  std::optional<int64_t> expires_at_ms;
  // Bi-temporal validity: when the fact became true (default: created) and
  // when it stopped being true (unset: still true).
  int64_t valid_at_ms = 0;
  std::optional<int64_t> invalid_at_ms;
  std::string hash;  // 16 hex digits of the text's 64-bit FNV-1a
};

// The event and outcome kinds and their names: mnemo/memory_names.h.
using ::mnemo::MemoryEventKind;

struct MemoryEvent {
  std::string memory_id;
  MemoryEventKind kind = MemoryEventKind::kAdd;
  std::string old_text;  // empty for ADD
  std::string new_text;  // empty for DELETE
  int64_t time_ms = 0;
  std::string actor;     // who made the change ("" = unknown; "ttl" = expiry)
};

// One memory to add.
struct MemoryInput {
  std::string text;           // non-blank, within Limits::max_text_bytes
  std::string metadata_json;  // a JSON object or empty; no key may start with '@'
  std::optional<int64_t> expires_at_ms;
  std::optional<int64_t> valid_at_ms;  // default: the creation time
};

struct MemoryAddOptions {
  MemoryScope scope;
  std::string actor;
  // Cosine similarity at or above which Add updates the most similar live
  // memory of the scope instead of adding; in [0, 1], or unset = 0.9.
  // Set it above 1 (e.g. 2) to never merge near duplicates.
  std::optional<float> near_duplicate_threshold;
};

using ::mnemo::MemoryAddOutcome;

struct MemoryAddResult {
  MemoryAddOutcome outcome = MemoryAddOutcome::kAdded;
  Memory memory;  // the new, updated or already existing memory
  float similarity = 0;  // to the memory merged into (kUpdated), else 0 (1 for kNoop)
};

enum class MemorySearchPlan { kAuto, kIndexes, kScope };

struct MemorySearchOptions {
  MemoryScope scope;  // at least one field
  std::string query;  // non-blank
  int top_k = 10;     // 1..Limits::max_k
  // Drop hits whose cosine similarity to the query is below it (unset: keep
  // all); in [-1, 1].
  std::optional<float> threshold;
  MemoryFilter filter;
  // Valid-time range: keep memories valid at some time in [from, to]
  // (valid_at <= to and (no invalid_at or invalid_at > from)).
  std::optional<int64_t> valid_from_ms;
  std::optional<int64_t> valid_to_ms;
  // Recency: score = (1 - w) * relevance + w * 0.5^(age / half_life), age
  // from updated_at; w in [0, 1] (0 = off), half-life > 0 (default 7 days).
  float recency_weight = 0;
  int64_t recency_half_life_ms = 0;
  bool show_expired = false;
  // How the candidates are found; the hits are the same either way (tests
  // compare them). kAuto: exactly over the scope's memories when its
  // smallest part (user, agent or run) holds at most kScopePlanMaxRecords
  // (db/hybrid_candidates.h), else through the dense and BM25 indexes.
  MemorySearchPlan plan = MemorySearchPlan::kAuto;
};

struct MemoryHit {
  Memory memory;
  // Relevance: the reciprocal rank fusion of the dense and BM25 lists,
  // scaled to [0, 1] (1 = first in both), with recency mixed in when asked.
  float score = 0;
  float similarity = 0;  // cosine similarity of the text to the query
};

struct MemoryListOptions {
  MemoryScope scope;  // may be empty when the filter says enough
  MemoryFilter filter;
  bool show_expired = false;
  uint32_t page_size = 100;  // 1..1000
  // From the previous page of the same query (scope, filter, show_expired);
  // a token of another query is INVALID_ARGUMENT.
  std::string page_token;
};

struct MemoryPage {
  std::vector<Memory> memories;  // id order (= creation order)
  std::string next_page_token;   // empty on the last page
};

struct MemoryUpdate {
  std::optional<std::string> text;
  std::optional<std::string> metadata_json;  // replaces the metadata
  std::optional<int64_t> expires_at_ms;      // 0 clears the expiry
  std::optional<int64_t> valid_at_ms;
  std::optional<int64_t> invalid_at_ms;      // 0 clears it
  std::string actor;
};

// Core-memory blocks (Letta style): per (agent, label) a text value the
// agent edits, with a size limit; every change is in the block's history.
// They live in the same namespace as the memories (rows of the `memory`
// column family), are not searched, and are read whole.
struct MemoryBlock {
  std::string agent_id;
  std::string label;
  std::string value;
  uint32_t limit_bytes = 0;
  int64_t updated_at_ms = 0;
};

inline constexpr uint32_t kDefaultBlockLimitBytes = 2000;
inline constexpr uint32_t kMaxBlockLimitBytes = 1 << 20;

struct BlockEdit {
  using Kind = ::mnemo::BlockEditKind;
  Kind kind = Kind::kSet;
  // kSet: the new value; kAppend: text added on a new line; kReplace: the
  // replacement of `old_text`; kInsert: the line(s) inserted.
  std::string text;
  std::string old_text;  // kReplace: must occur exactly once in the value
  // kInsert: the line number the text goes before (0 = first line; the
  // line count = after the last; -1 = after the last).
  int64_t line = -1;
  // kSet: the block's size limit (unset: the block's, else the default).
  std::optional<uint32_t> limit_bytes;
  std::string actor;
};

struct BlockEvent {
  BlockEdit::Kind kind = BlockEdit::Kind::kSet;
  std::string old_value;
  std::string new_value;
  int64_t time_ms = 0;
  std::string actor;
};

// The memory calls of a db::Store (Store::memories()). Every call names an
// encoder namespace: NOT_FOUND when absent (Add creates it, encoder
// use-lite, when absent), FAILED_PRECONDITION without an encoder.
class MemoryStore {
 public:
  virtual ~MemoryStore() = default;

  // Adds memories to one scope, in one commit. Exact duplicates (of a
  // stored memory or of an earlier input) are kNoop; near duplicates of a
  // stored memory update it.
  virtual absl::StatusOr<std::vector<MemoryAddResult>> Add(absl::string_view ns,
                                                          absl::Span<const MemoryInput> inputs,
                                                          const MemoryAddOptions& options) = 0;
  virtual absl::StatusOr<std::vector<MemoryHit>> Search(absl::string_view ns,
                                                        const MemorySearchOptions& options) = 0;
  // NOT_FOUND for an unknown id. Expired memories are returned.
  virtual absl::StatusOr<Memory> Get(absl::string_view ns, absl::string_view id) = 0;
  virtual absl::StatusOr<MemoryPage> List(absl::string_view ns,
                                          const MemoryListOptions& options) = 0;
  // NOT_FOUND for an unknown id; FAILED_PRECONDITION for an expired memory.
  virtual absl::StatusOr<Memory> Update(absl::string_view ns, absl::string_view id,
                                        const MemoryUpdate& update) = 0;
  // NOT_FOUND for an unknown id.
  virtual absl::Status Delete(absl::string_view ns, absl::string_view id,
                              absl::string_view actor) = 0;
  // Deletes every memory of the scope (at least one field); returns how
  // many.
  virtual absl::StatusOr<uint64_t> DeleteAll(absl::string_view ns, const MemoryScope& scope,
                                             absl::string_view actor) = 0;
  // Events of a memory, oldest first (kept after it is deleted); NOT_FOUND
  // when the id never had one.
  virtual absl::StatusOr<std::vector<MemoryEvent>> History(absl::string_view ns,
                                                           absl::string_view id) = 0;
  // Deletes every memory of the namespace and all history; returns how many
  // memories.
  virtual absl::StatusOr<uint64_t> Reset(absl::string_view ns) = 0;
  // The block (agent, label); NOT_FOUND when it was never set.
  virtual absl::StatusOr<MemoryBlock> GetBlock(absl::string_view ns, absl::string_view agent_id,
                                               absl::string_view label) = 0;
  // Edits the block and returns it. kSet creates it (and the namespace);
  // the other edits are NOT_FOUND on a missing block. INVALID_ARGUMENT
  // when the result would exceed the block's limit (naming both sizes) or
  // for a line out of range; FAILED_PRECONDITION when a replace's old text
  // does not occur exactly once (naming the count).
  virtual absl::StatusOr<MemoryBlock> EditBlock(absl::string_view ns, absl::string_view agent_id,
                                                absl::string_view label,
                                                const BlockEdit& edit) = 0;
  // The block's changes, oldest first; NOT_FOUND when it has none.
  virtual absl::StatusOr<std::vector<BlockEvent>> BlockHistory(absl::string_view ns,
                                                               absl::string_view agent_id,
                                                               absl::string_view label) = 0;
  // Deletes the memories of `ns` whose expiry passed at least
  // memory_expired_keep_ms ago (what the expiry timer runs); returns how
  // many.
  virtual absl::StatusOr<uint64_t> PurgeExpired(absl::string_view ns) = 0;
};

}  // namespace mnemo::db

#endif  // MNEMO_DB_MEMORY_H_
