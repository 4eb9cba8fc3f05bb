// How conversation messages (db/convo.h) are stored: the message's chunk
// (its metadata JSON with the reserved "@" fields), message ids, and the
// per-run time index in the `memory` column family. Internal to db/.
//
// A message's chunk: id = message id, text = content, no document, and
// metadata JSON = the user's metadata object plus
//   "@message": true, "@run_id", "@role" (strings), "@time" (Unix ms).
// Each is a top-level scalar, so the namespace's attribute table holds them
// and the message predicate (convo_predicate.h) selects run, role and time
// inside the index searches.
//
// `memory` CF (keys start with the namespace's 4-byte id, so dropping the
// namespace range-deletes them; memory rows use other kind bytes,
// memory_records.h):
//   nsid 'm' lp(run) u64 time_ms message id  -> "" (the run's time index)
// lp(s) = u16 BE length, then the bytes; integers big-endian.
#ifndef MNEMO_DB_CONVO_RECORDS_H_
#define MNEMO_DB_CONVO_RECORDS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "db/convo.h"
#include "db/store.h"

namespace mnemo::db::convorecords {

inline constexpr char kMessageIdPrefix[] = "msg_";
// "msg_" + 12 hex digits of `now_ms` + 8 hex digits of a process-wide
// counter: unique, and in append order.
std::string NewMessageId(int64_t now_ms);
bool IsMessageId(absl::string_view id);

inline constexpr char kAttrMessage[] = "@message";
inline constexpr char kAttrRun[] = "@run_id";
inline constexpr char kAttrRole[] = "@role";
inline constexpr char kAttrTime[] = "@time";

// The chunk metadata JSON of `message` (its metadata_json must be a JSON
// object or empty).
std::string EncodeMessageMetadata(const Message& message);
// The message stored as `chunk`; NOT_FOUND when the chunk is not a message,
// DATA_LOSS when its reserved fields are malformed.
absl::StatusOr<Message> MessageFromChunk(const Chunk& chunk);

// The run's time index.
std::string RunPrefix(uint32_t nsid, absl::string_view run_id);
std::string TimeKey(uint32_t nsid, absl::string_view run_id, int64_t time_ms,
                    absl::string_view message_id);
// The time and message id of a TimeKey of `run_prefix`; DATA_LOSS when
// malformed.
absl::Status DecodeTimeKey(absl::string_view key, size_t run_prefix_size, int64_t* time_ms,
                           std::string* message_id);

}  // namespace mnemo::db::convorecords

#endif  // MNEMO_DB_CONVO_RECORDS_H_
