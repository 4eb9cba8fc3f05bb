// The agent-memory names (mnemo/memory_names.h).
#include "mnemo/memory_names.h"

namespace mnemo {

const char* MemoryEventKindName(MemoryEventKind kind) {
  switch (kind) {
    case MemoryEventKind::kAdd:
      return "ADD";
    case MemoryEventKind::kUpdate:
      return "UPDATE";
    case MemoryEventKind::kDelete:
      return "DELETE";
  }
  return "?";
}

const char* MemoryAddOutcomeName(MemoryAddOutcome outcome) {
  switch (outcome) {
    case MemoryAddOutcome::kAdded:
      return "added";
    case MemoryAddOutcome::kUpdated:
      return "updated";
    case MemoryAddOutcome::kNoop:
      return "noop";
  }
  return "?";
}

const char* BlockEditKindName(BlockEditKind kind) {
  switch (kind) {
    case BlockEditKind::kSet:
      return "SET";
    case BlockEditKind::kAppend:
      return "APPEND";
    case BlockEditKind::kReplace:
      return "REPLACE";
    case BlockEditKind::kInsert:
      return "INSERT";
  }
  return "?";
}

std::optional<MemoryEventKind> ParseMemoryEventKind(absl::string_view name) {
  for (MemoryEventKind k :
       {MemoryEventKind::kAdd, MemoryEventKind::kUpdate, MemoryEventKind::kDelete}) {
    if (name == MemoryEventKindName(k)) return k;
  }
  return std::nullopt;
}

std::optional<BlockEditKind> ParseBlockEditKind(absl::string_view name) {
  for (BlockEditKind k : {BlockEditKind::kSet, BlockEditKind::kAppend, BlockEditKind::kReplace,
                          BlockEditKind::kInsert}) {
    if (name == BlockEditKindName(k)) return k;
  }
  return std::nullopt;
}

}  // namespace mnemo
