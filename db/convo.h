// Conversation logs of agent runs (Letta's conversation search): per
// (namespace, run) the messages of a run in time order, each with a role
// (user, assistant, system, tool), its content, a time and optional JSON
// metadata; searched by text (dense + BM25, like memories) within a time
// range, and paged through in time order.
//
// Storage: a message is a chunk of the namespace (id "msg_...", its content,
// no document) whose metadata carries the user's metadata plus the reserved
// "@message", "@run_id", "@role" and "@time" attributes (db/convo_records.h),
// so the chunk machinery embeds it, indexes it for BM25 and keeps its run,
// role and time as filter attributes evaluated inside the index searches.
// A per-run time index lives in the `memory` column family. A message, its
// index rows and its time-index row commit in one WriteBatch; the log is
// dropped with its namespace and is part of every backup.
//
// Conversations live in the same encoder namespaces as memories (Append
// creates one, encoder use-lite, when absent); memory calls never see
// messages and message calls never see memories.
//
// Thread safety: every method is safe to call concurrently.
#ifndef MNEMO_DB_CONVO_H_
#define MNEMO_DB_CONVO_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace mnemo::db {

// The roles a message may have.
inline constexpr const char* kMessageRoles[] = {"user", "assistant", "system", "tool"};
// OK for one of kMessageRoles, else INVALID_ARGUMENT listing them.
absl::Status ValidateMessageRole(absl::string_view role);

struct Message {
  // Made by the store: "msg_" + 12 hex digits of the append time (ms) + 8
  // hex digits of a counter, so ids sort in append order.
  std::string id;
  std::string run_id;
  std::string role;  // one of kMessageRoles
  std::string content;
  int64_t time_ms = 0;        // Unix ms: as given, else the server's append time
  std::string metadata_json;  // a JSON object ("{}" when none)
};

struct MessageInput {
  std::string role;     // one of kMessageRoles
  std::string content;  // non-blank, within Limits::max_text_bytes
  std::optional<int64_t> time_ms;  // >= 0; unset: the server's time
  std::string metadata_json;       // a JSON object or empty; no key may start with '@'
};

// Which messages a search or list reads: time range inclusive at both ends.
struct MessageSelection {
  std::string run_id;  // "" = every run (search only)
  std::string role;    // "" = every role
  std::optional<int64_t> since_ms;
  std::optional<int64_t> until_ms;
};

struct MessageSearchOptions {
  MessageSelection selection;
  std::string query;  // non-blank
  int top_k = 10;     // 1..Limits::max_k
};

struct MessageHit {
  Message message;
  // The reciprocal rank fusion of the dense and BM25 lists scaled to
  // [0, 1] (1 = first in both).
  float score = 0;
  float similarity = 0;  // cosine similarity of the content to the query
};

struct MessageListOptions {
  MessageSelection selection;  // run_id required
  uint32_t page_size = 100;    // 1..1000
  // From the previous page of the same selection; another selection's token
  // is INVALID_ARGUMENT.
  std::string page_token;
};

struct MessagePage {
  std::vector<Message> messages;  // time order, append order within one ms
  std::string next_page_token;    // empty on the last page
};

// The conversation calls of a db::Store (Store::conversations()). NOT_FOUND
// for an absent namespace (Append creates it), FAILED_PRECONDITION for one
// without an encoder. A run id is 1..256 bytes.
class ConvoStore {
 public:
  virtual ~ConvoStore() = default;

  // Appends messages to a run in one commit; returns them as stored (ids
  // and times set). At most Limits::max_write_batch messages.
  virtual absl::StatusOr<std::vector<Message>> Append(absl::string_view ns,
                                                      absl::string_view run_id,
                                                      absl::Span<const MessageInput> inputs) = 0;
  // The top_k messages most relevant to the query among the selected ones,
  // best first.
  virtual absl::StatusOr<std::vector<MessageHit>> Search(absl::string_view ns,
                                                         const MessageSearchOptions& options) = 0;
  // One page of a run's selected messages in time order.
  virtual absl::StatusOr<MessagePage> List(absl::string_view ns,
                                           const MessageListOptions& options) = 0;
  // Deletes every message of the run; returns how many (0 for an unknown
  // run).
  virtual absl::StatusOr<uint64_t> DeleteRun(absl::string_view ns, absl::string_view run_id) = 0;
};

}  // namespace mnemo::db

#endif  // MNEMO_DB_CONVO_H_
