// Core-memory blocks (see memory.h): reading a block, editing it (set,
// append, replace a unique match, insert at a line) within its size limit,
// and its history. A block row and its event commit in one WriteBatch under
// the namespace's writer lock.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "db/bounded_iterator.h"
#include "db/keys.h"
#include "db/memory_engine.h"
#include "db/memory_records.h"
#include "db/rocks_status.h"
#include "db/store_impl.h"
#include "db/validation.h"

namespace mnemo::db {
namespace {

constexpr size_t kMaxNameBytes = 256;

absl::Status ValidateBlockName(absl::string_view agent_id, absl::string_view label) {
  if (agent_id.empty() || label.empty()) {
    return absl::InvalidArgumentError("a block needs an agent_id and a label");
  }
  if (agent_id.size() > kMaxNameBytes || label.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("agent_id and label are at most ", kMaxNameBytes, " bytes each"));
  }
  return absl::OkStatus();
}

size_t CountOccurrences(absl::string_view haystack, absl::string_view needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != absl::string_view::npos;
       at = haystack.find(needle, at + needle.size())) {
    ++n;
  }
  return n;
}

}  // namespace

absl::StatusOr<MemoryBlock> MemoryEngine::GetBlock(absl::string_view ns_name,
                                                   absl::string_view agent_id,
                                                   absl::string_view label) {
  RETURN_IF_ERROR(ValidateBlockName(agent_id, label));
  ASSIGN_OR_RETURN(NamespacePtr ns, OpenNamespace(ns_name, /*create=*/false));
  absl::ReaderMutexLock lock(&ns->mu);
  RETURN_IF_ERROR(ns->GoneStatus());
  ASSIGN_OR_RETURN(auto row, owner_->GetOne(owner_->memory_,
                                            memrecords::BlockKey(ns->nsid, agent_id, label)));
  if (!row.has_value()) {
    return absl::NotFoundError(absl::StrCat("block '", label, "' of agent '", agent_id,
                                            "' not found in namespace '", ns_name, "'"));
  }
  return memrecords::DecodeBlock(*row);
}

absl::StatusOr<MemoryBlock> MemoryEngine::EditBlock(absl::string_view ns_name,
                                                    absl::string_view agent_id,
                                                    absl::string_view label,
                                                    const BlockEdit& edit) {
  RETURN_IF_ERROR(ValidateBlockName(agent_id, label));
  if (edit.limit_bytes.has_value() &&
      (*edit.limit_bytes == 0 || *edit.limit_bytes > kMaxBlockLimitBytes)) {
    return absl::InvalidArgumentError(absl::StrCat("a block limit is 1..", kMaxBlockLimitBytes,
                                                   " bytes, got ", *edit.limit_bytes));
  }
  if (edit.kind == BlockEdit::Kind::kReplace && edit.old_text.empty()) {
    return absl::InvalidArgumentError("replace needs the text to replace");
  }
  const bool create = edit.kind == BlockEdit::Kind::kSet;
  ASSIGN_OR_RETURN(NamespacePtr ns, OpenNamespace(ns_name, create));
  absl::MutexLock lock(&ns->mu);
  RETURN_IF_ERROR(ns->GoneStatus());
  const std::string key = memrecords::BlockKey(ns->nsid, agent_id, label);
  ASSIGN_OR_RETURN(auto row, owner_->GetOne(owner_->memory_, key));
  MemoryBlock block;
  if (row.has_value()) {
    ASSIGN_OR_RETURN(block, memrecords::DecodeBlock(*row));
  } else if (!create) {
    return absl::NotFoundError(absl::StrCat("block '", label, "' of agent '", agent_id,
                                            "' not found in namespace '", ns_name,
                                            "'; set it first"));
  } else {
    block.agent_id = std::string(agent_id);
    block.label = std::string(label);
    block.limit_bytes = kDefaultBlockLimitBytes;
  }
  const std::string old_value = block.value;
  switch (edit.kind) {
    case BlockEdit::Kind::kSet:
      block.value = edit.text;
      if (edit.limit_bytes.has_value()) block.limit_bytes = *edit.limit_bytes;
      break;
    case BlockEdit::Kind::kAppend:
      block.value = block.value.empty() ? edit.text : absl::StrCat(block.value, "\n", edit.text);
      break;
    case BlockEdit::Kind::kReplace: {
      const size_t n = CountOccurrences(block.value, edit.old_text);
      if (n != 1) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the text to replace occurs ", n, " times in block '", label,
            "'; replace needs exactly one match (quote more of it to make it unique)"));
      }
      const size_t at = block.value.find(edit.old_text);
      block.value.replace(at, edit.old_text.size(), edit.text);
      break;
    }
    case BlockEdit::Kind::kInsert: {
      std::vector<std::string> lines;
      if (!block.value.empty()) lines = absl::StrSplit(block.value, '\n');
      const int64_t count = static_cast<int64_t>(lines.size());
      const int64_t at = edit.line < 0 ? count : edit.line;
      if (edit.line < -1 || at > count) {
        return absl::InvalidArgumentError(absl::StrCat("line ", edit.line, " is out of range: block '",
                                                       label, "' has ", count,
                                                       " lines (0..", count, ", or -1 = end)"));
      }
      lines.insert(lines.begin() + at, edit.text);
      block.value = absl::StrJoin(lines, "\n");
      break;
    }
  }
  if (block.value.size() > block.limit_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("block '", label, "' would hold ",
                                                   block.value.size(), " bytes; its limit is ",
                                                   block.limit_bytes));
  }
  block.updated_at_ms = NowMs();

  BlockEvent event;
  event.kind = edit.kind;
  event.old_value = old_value;
  event.new_value = block.value;
  event.time_ms = block.updated_at_ms;
  event.actor = edit.actor;
  const std::string prefix = memrecords::BlockEventPrefix(ns->nsid, agent_id, label);
  uint32_t stored = 0;
  {
    BoundedIterator it(owner_->db(), owner_->memory_, keys::PrefixEnd(prefix));
    for (it->Seek(prefix); it->Valid(); it->Next()) ++stored;
    RETURN_IF_ERROR(FromRocks(it->status(), "reading block history"));
  }
  NamespaceWrite write;
  write.batch.Put(owner_->memory_, key, memrecords::EncodeBlock(block));
  write.batch.Put(owner_->memory_, memrecords::BlockEventKey(ns->nsid, agent_id, label, stored),
                  memrecords::EncodeBlockEvent(event));
  RETURN_IF_ERROR(owner_->CommitLocked(ns.get(), &write, "editing a memory block"));
  return block;
}

absl::StatusOr<std::vector<BlockEvent>> MemoryEngine::BlockHistory(absl::string_view ns_name,
                                                                   absl::string_view agent_id,
                                                                   absl::string_view label) {
  RETURN_IF_ERROR(ValidateBlockName(agent_id, label));
  ASSIGN_OR_RETURN(NamespacePtr ns, OpenNamespace(ns_name, /*create=*/false));
  absl::ReaderMutexLock lock(&ns->mu);
  RETURN_IF_ERROR(ns->GoneStatus());
  const std::string prefix = memrecords::BlockEventPrefix(ns->nsid, agent_id, label);
  std::vector<BlockEvent> events;
  BoundedIterator it(owner_->db(), owner_->memory_, keys::PrefixEnd(prefix));
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    ASSIGN_OR_RETURN(BlockEvent e, memrecords::DecodeBlockEvent(
                                       absl::string_view(it->value().data(), it->value().size())));
    events.push_back(std::move(e));
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "reading block history"));
  if (events.empty()) {
    return absl::NotFoundError(absl::StrCat("block '", label, "' of agent '", agent_id,
                                            "' has no history in namespace '", ns_name, "'"));
  }
  return events;
}

}  // namespace mnemo::db
