// Agent memories in the C++ SDK (the MnemoMemory service, mnemo.v1): the
// types of the Client::Memory* calls (client.h). A memory is a short text
// with JSON metadata in a scope (user, agent, run; at least one), with
// created / updated times, an optional expiry and a bi-temporal validity
// (valid_at / invalid_at); the server keeps a history of every change.
//
// Filters use the JSON form of the memory filter algebra (AND / OR / NOT over
// eq, ne, in, nin, gt, gte, lt, lte, contains, icontains; see the README):
// e.g. {"AND": [{"category": "food"}, {"stars": {"gte": 4}}]}. "" or "{}" =
// no filter; malformed JSON is INVALID_ARGUMENT before anything is sent.
#ifndef MNEMO_CLIENT_MEMORY_H_
#define MNEMO_CLIENT_MEMORY_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mnemo/memory_names.h"  // MemoryEventKind, MemoryAddOutcome, BlockEditKind

namespace mnemo {

struct MemoryScope {
  std::string user_id;
  std::string agent_id;
  std::string run_id;
};

struct Memory {
  std::string id;  // "mem_...", made by the server; ids sort in creation order
  std::string text;
  std::string metadata_json;  // a JSON object
  MemoryScope scope;
  int64_t created_at_ms = 0;  // Unix ms
  int64_t updated_at_ms = 0;
  std::optional<int64_t> expires_at_ms;
  int64_t valid_at_ms = 0;
  std::optional<int64_t> invalid_at_ms;
  std::string hash;
};

struct MemoryInput {
  std::string text;
  std::string metadata_json;  // a JSON object or empty
  std::optional<int64_t> expires_at_ms;
  std::optional<int64_t> valid_at_ms;  // default: now
};

struct MemoryAddOptions {
  MemoryScope scope;  // at least one field
  std::string actor;  // recorded in the history
  // Cosine similarity at or above which a text updates the most similar
  // live memory of the scope instead of adding; unset = server default
  // (0.9); above 1 = never.
  std::optional<float> near_duplicate_threshold;
};


struct MemoryAddResult {
  MemoryAddOutcome outcome = MemoryAddOutcome::kAdded;
  Memory memory;
  float similarity = 0;
};

struct MemorySearchRequest {
  std::string ns;
  MemoryScope scope;  // at least one field
  std::string query;
  int top_k = 10;
  std::optional<float> threshold;  // minimum cosine similarity
  std::string filter_json;         // "" = none
  std::optional<int64_t> valid_from_ms;
  std::optional<int64_t> valid_to_ms;
  float recency_weight = 0;          // 0..1; 0 = off
  int64_t recency_half_life_ms = 0;  // 0 = 7 days
  bool show_expired = false;
};

struct MemoryHit {
  Memory memory;
  float score = 0;       // fused dense + BM25 relevance in [0, 1]
  float similarity = 0;  // cosine similarity to the query
};

struct MemoryListRequest {
  std::string ns;
  MemoryScope scope;        // may be empty
  std::string filter_json;  // "" = none
  bool show_expired = false;
  uint32_t page_size = 100;  // 1..1000
  std::string page_token;    // from the previous page of the same query
};

struct MemoryPage {
  std::vector<Memory> memories;
  std::string next_page_token;  // empty on the last page
};

// Changes of Client::MemoryUpdate; unset fields stay.
struct MemoryChanges {
  std::optional<std::string> text;
  std::optional<std::string> metadata_json;  // replaces the metadata
  std::optional<int64_t> expires_at_ms;      // 0 clears
  std::optional<int64_t> valid_at_ms;
  std::optional<int64_t> invalid_at_ms;      // 0 clears
  std::string actor;
};

struct MemoryEvent {
  std::string memory_id;
  MemoryEventKind kind = MemoryEventKind::kAdd;
  std::string old_text;
  std::string new_text;
  int64_t time_ms = 0;
  std::string actor;  // "ttl" for expiry
};

// Core-memory blocks: per (agent, label) a text value with a size limit
// (default 2000 bytes) that the agent edits; every edit is in its history.
struct MemoryBlock {
  std::string agent_id;
  std::string label;
  std::string value;
  uint32_t limit_bytes = 0;
  int64_t updated_at_ms = 0;
};

// One edit of Client::BlockEdit.
struct BlockChange {
  BlockEditKind kind = BlockEditKind::kSet;
  std::string text;      // set: the value; append: a new line; replace: the new text; insert: the line
  std::string old_text;  // replace: must occur exactly once (else FAILED_PRECONDITION)
  std::optional<int64_t> line;          // insert: 0 = first line; unset = after the last
  std::optional<uint32_t> limit_bytes;  // set: the block's size limit
  std::string actor;
};

struct BlockEvent {
  BlockEditKind kind = BlockEditKind::kSet;
  std::string old_value;
  std::string new_value;
  int64_t time_ms = 0;
  std::string actor;
};

}  // namespace mnemo

#endif  // MNEMO_CLIENT_MEMORY_H_
