// ConvoEngine: the store's db::ConvoStore (db/convo.h), a member of
// StoreImpl beside MemoryEngine, whose namespaces and encoder it shares
// (messages are chunks of a memory namespace, convo_records.h). Its
// concerns:
//
//   convo_engine.cc   Append and DeleteRun: staging messages' chunks and
//                     their time-index rows into one NamespaceWrite
//   convo_search.cc   Search (hybrid, selected in the index) and List (the
//                     run's time index, page tokens bound to the selection)
//
// Appends embed outside the namespace lock, then take its writer lock;
// reads take the reader lock (lock order: db/store_impl.h). Internal to db/.
#ifndef MNEMO_DB_CONVO_ENGINE_H_
#define MNEMO_DB_CONVO_ENGINE_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "db/convo.h"

namespace mnemo::db {

class StoreImpl;
class MemoryEngine;

class ConvoEngine final : public ConvoStore {
 public:
  // `owner` and `memories` outlive this object (it is a member of owner).
  ConvoEngine(StoreImpl* owner, MemoryEngine* memories);
  ConvoEngine(const ConvoEngine&) = delete;
  ConvoEngine& operator=(const ConvoEngine&) = delete;

  // --- db::ConvoStore (contracts in convo.h).
  absl::StatusOr<std::vector<Message>> Append(absl::string_view ns, absl::string_view run_id,
                                              absl::Span<const MessageInput> inputs) override;
  absl::StatusOr<std::vector<MessageHit>> Search(absl::string_view ns,
                                                 const MessageSearchOptions& options) override;
  absl::StatusOr<MessagePage> List(absl::string_view ns, const MessageListOptions& options) override;
  absl::StatusOr<uint64_t> DeleteRun(absl::string_view ns, absl::string_view run_id) override;

 private:
  StoreImpl* const owner_;
  MemoryEngine* const memories_;
};

// INVALID_ARGUMENT unless `run_id` is 1..256 bytes.
absl::Status ValidateRunId(absl::string_view run_id);
// INVALID_ARGUMENT for a bad role or an inverted or negative time range.
absl::Status ValidateMessageSelection(const MessageSelection& selection);

}  // namespace mnemo::db

#endif  // MNEMO_DB_CONVO_ENGINE_H_
