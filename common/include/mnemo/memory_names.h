// The kinds of agent-memory events, add outcomes and block edits, and their
// names, written once for the SDK (mnemo/memory.h), the CLI and the store
// (db/memory.h uses these enums; its history records store the names).
// Part of the installed SDK; Abseil only.
#ifndef MNEMO_MEMORY_NAMES_H_
#define MNEMO_MEMORY_NAMES_H_

#include <optional>

#include "absl/strings/string_view.h"

namespace mnemo {

// A memory's history event.
enum class MemoryEventKind { kAdd, kUpdate, kDelete };

// What an add did.
enum class MemoryAddOutcome {
  kAdded,    // a new memory (ADD event)
  kUpdated,  // merged into a near duplicate (UPDATE event)
  kNoop,     // an exact duplicate: nothing written
};

// An edit of a core-memory block.
enum class BlockEditKind { kSet, kAppend, kReplace, kInsert };

// "ADD", "UPDATE", "DELETE" / "added", "updated", "noop" / "SET", "APPEND",
// "REPLACE", "INSERT"; "?" outside the enums. History records store the
// event and edit names: never rename them.
const char* MemoryEventKindName(MemoryEventKind kind);
const char* MemoryAddOutcomeName(MemoryAddOutcome outcome);
const char* BlockEditKindName(BlockEditKind kind);

// The kind a name above stands for; nullopt for any other text.
std::optional<MemoryEventKind> ParseMemoryEventKind(absl::string_view name);
std::optional<BlockEditKind> ParseBlockEditKind(absl::string_view name);

}  // namespace mnemo

#endif  // MNEMO_MEMORY_NAMES_H_
