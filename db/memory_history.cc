// Memory history (see memory_engine.h): staging an event as the next one
// of its memory, and reading a memory's events. Events are kept after the
// memory is deleted (until Reset or the namespace is dropped).
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "db/bounded_iterator.h"
#include "db/keys.h"
#include "db/memory_engine.h"
#include "db/memory_records.h"
#include "db/rocks_status.h"
#include "db/store_impl.h"

namespace mnemo::db {

absl::Status MemoryEngine::StageEventLocked(const Namespace& ns, const MemoryEvent& event,
                                            uint32_t pending, NamespaceWrite* write) {
  const std::string prefix = memrecords::EventPrefix(ns.nsid, event.memory_id);
  uint32_t stored = 0;
  BoundedIterator it(owner_->db(), owner_->memory_, keys::PrefixEnd(prefix));
  for (it->Seek(prefix); it->Valid(); it->Next()) ++stored;
  RETURN_IF_ERROR(FromRocks(it->status(), "reading memory history"));
  write->batch.Put(owner_->memory_, memrecords::EventKey(ns.nsid, event.memory_id, stored + pending),
                   memrecords::EncodeEvent(event));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<MemoryEvent>> MemoryEngine::History(absl::string_view ns_name,
                                                               absl::string_view id) {
  ASSIGN_OR_RETURN(NamespacePtr ns, OpenNamespace(ns_name, /*create=*/false));
  absl::ReaderMutexLock lock(&ns->mu);
  RETURN_IF_ERROR(ns->GoneStatus());
  const std::string prefix = memrecords::EventPrefix(ns->nsid, id);
  std::vector<MemoryEvent> events;
  BoundedIterator it(owner_->db(), owner_->memory_, keys::PrefixEnd(prefix));
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    ASSIGN_OR_RETURN(MemoryEvent event, memrecords::DecodeEvent(absl::string_view(it->value().data(), it->value().size())));
    events.push_back(std::move(event));
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "reading memory history"));
  if (events.empty()) {
    return absl::NotFoundError(
        absl::StrCat("memory '", id, "' has no history in namespace '", ns_name, "'"));
  }
  return events;
}

}  // namespace mnemo::db
