// ConvoEngine's write path (see convo_engine.h): Append stages each
// message's chunk (StoreImpl::StageUpsertLocked: row, vector, BM25 postings,
// attributes) and its time-index row into one NamespaceWrite committed by
// StoreImpl::CommitLocked, so a message and its index changes land together
// or not at all; DeleteRun removes a run's chunks and time index the same
// way.
#include "db/convo_engine.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "db/bounded_iterator.h"
#include "db/convo_records.h"
#include "db/keys.h"
#include "db/memory_engine.h"
#include "db/rocks_status.h"
#include "db/store_impl.h"
#include "db/validation.h"

namespace mnemo::db {
namespace {

constexpr size_t kMaxRunBytes = 256;

}  // namespace

absl::Status ValidateRunId(absl::string_view run_id) {
  if (run_id.empty()) return absl::InvalidArgumentError("a conversation call needs a run_id");
  if (run_id.size() > kMaxRunBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("run_id is ", run_id.size(), " bytes; the limit is ", kMaxRunBytes));
  }
  return absl::OkStatus();
}

absl::Status ValidateMessageSelection(const MessageSelection& s) {
  if (!s.run_id.empty()) RETURN_IF_ERROR(ValidateRunId(s.run_id));
  if (!s.role.empty()) RETURN_IF_ERROR(ValidateMessageRole(s.role));
  if ((s.since_ms.has_value() && *s.since_ms < 0) || (s.until_ms.has_value() && *s.until_ms < 0)) {
    return absl::InvalidArgumentError("since and until are Unix ms >= 0");
  }
  if (s.since_ms.has_value() && s.until_ms.has_value() && *s.since_ms > *s.until_ms) {
    return absl::InvalidArgumentError(absl::StrCat("the time range ends (", *s.until_ms,
                                                   ") before it starts (", *s.since_ms, ")"));
  }
  return absl::OkStatus();
}

ConvoEngine::ConvoEngine(StoreImpl* owner, MemoryEngine* memories)
    : owner_(owner), memories_(memories) {}

absl::StatusOr<std::vector<Message>> ConvoEngine::Append(absl::string_view ns_name,
                                                         absl::string_view run_id,
                                                         absl::Span<const MessageInput> inputs) {
  const Limits& limits = owner_->options().limits;
  RETURN_IF_ERROR(ValidateRunId(run_id));
  if (inputs.empty()) return absl::InvalidArgumentError("no messages to append");
  if (inputs.size() > limits.max_write_batch) {
    return absl::ResourceExhaustedError(absl::StrCat(
        inputs.size(), " messages in one append; the limit is ", limits.max_write_batch));
  }
  std::vector<std::string> texts;
  std::vector<std::string> metadata;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const MessageInput& in = inputs[i];
    const std::string what = absl::StrCat("message ", i);
    absl::Status role = ValidateMessageRole(in.role);
    if (!role.ok()) return absl::InvalidArgumentError(absl::StrCat(what, ": ", role.message()));
    RETURN_IF_ERROR(ValidateText(in.content, what, limits));
    if (IsBlank(in.content)) return absl::InvalidArgumentError(absl::StrCat(what, " is empty"));
    if (in.time_ms.has_value() && *in.time_ms < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": time must be >= 0 (Unix ms), got ", *in.time_ms));
    }
    ASSIGN_OR_RETURN(std::string meta, NormalizeUserMetadata(in.metadata_json, what, limits));
    texts.push_back(in.content);
    metadata.push_back(std::move(meta));
  }
  ASSIGN_OR_RETURN(NamespacePtr ns, memories_->OpenNamespace(ns_name, /*create=*/true));
  ASSIGN_OR_RETURN(std::vector<MemoryEngine::Embedded> embedded, memories_->Embed(*ns, texts));

  absl::MutexLock lock(&ns->mu);
  RETURN_IF_ERROR(ns->GoneStatus());
  const int64_t now = memories_->NowMs();
  std::vector<Message> messages(inputs.size());
  std::vector<Chunk> chunks(inputs.size());
  std::vector<std::vector<uint32_t>> terms(inputs.size());
  std::vector<index::Attributes> attrs(inputs.size());
  NamespaceWrite write;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Message& m = messages[i];
    m.id = convorecords::NewMessageId(now);
    m.run_id = std::string(run_id);
    m.role = inputs[i].role;
    m.content = inputs[i].content;
    m.time_ms = inputs[i].time_ms.value_or(now);
    m.metadata_json = std::move(metadata[i]);
    chunks[i].id = m.id;
    chunks[i].text = m.content;
    chunks[i].metadata_json = convorecords::EncodeMessageMetadata(m);
    chunks[i].vector = std::move(embedded[i].vector);
    terms[i] = std::move(embedded[i].terms);
    ASSIGN_OR_RETURN(attrs[i], index::ParseAttributes(chunks[i].metadata_json));
    write.batch.Put(owner_->memory_, convorecords::TimeKey(ns->nsid, run_id, m.time_ms, m.id), "");
  }
  RETURN_IF_ERROR(owner_->StageUpsertLocked(ns.get(), {}, chunks, {}, terms, &attrs, &write));
  RETURN_IF_ERROR(owner_->CommitLocked(ns.get(), &write, "appending messages"));
  return messages;
}

absl::StatusOr<uint64_t> ConvoEngine::DeleteRun(absl::string_view ns_name,
                                                absl::string_view run_id) {
  RETURN_IF_ERROR(ValidateRunId(run_id));
  ASSIGN_OR_RETURN(NamespacePtr ns, memories_->OpenNamespace(ns_name, /*create=*/false));
  absl::MutexLock lock(&ns->mu);
  RETURN_IF_ERROR(ns->GoneStatus());
  const std::string prefix = convorecords::RunPrefix(ns->nsid, run_id);
  std::vector<std::string> ids;
  {
    BoundedIterator it(owner_->db(), owner_->memory_, keys::PrefixEnd(prefix));
    for (it->Seek(prefix); it->Valid(); it->Next()) {
      int64_t time_ms = 0;
      std::string id;
      RETURN_IF_ERROR(convorecords::DecodeTimeKey(
          absl::string_view(it->key().data(), it->key().size()), prefix.size(), &time_ms, &id));
      ids.push_back(std::move(id));
    }
    RETURN_IF_ERROR(FromRocks(it->status(), "reading a run's messages"));
  }
  if (ids.empty()) return uint64_t{0};
  NamespaceWrite write;
  ASSIGN_OR_RETURN(uint64_t deleted, owner_->StageChunkDeletesLocked(ns.get(), ids, &write));
  write.batch.DeleteRange(owner_->memory_, prefix, keys::PrefixEnd(prefix));
  RETURN_IF_ERROR(owner_->CommitLocked(ns.get(), &write, "deleting a run's messages"));
  return deleted;
}

}  // namespace mnemo::db
