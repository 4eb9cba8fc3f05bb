// MemoryEngine: the store's db::MemoryStore (db/memory.h), a member of
// StoreImpl like KvStore, built on the chunk machinery (each memory a chunk,
// see memory_records.h). Its concerns live in their own files:
//
//   memory_write.cc    Add, Update, Delete, DeleteAll, Reset: staging a
//                      memory's chunk, its history event and its duplicate /
//                      expiry rows into one NamespaceWrite
//   memory_search.cc   Search (hybrid, filtered in the index), Get, List
//   memory_history.cc  History and staging history events
//   memory_expiry.cc   PurgeExpired and the expiry timer
//   memory_blocks.cc   core-memory blocks: get, edit, history
//
// Memory writes take the namespace's writer lock after embedding the text
// outside it; reads take the reader lock (lock order: db/store_impl.h).
// Internal to db/.
#ifndef MNEMO_DB_MEMORY_ENGINE_H_
#define MNEMO_DB_MEMORY_ENGINE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "db/memory.h"
#include "db/memory_filter.h"
#include "db/namespace.h"
#include "db/namespace_write.h"
#include "db/periodic_task.h"

namespace mnemo::db {

class StoreImpl;

class MemoryEngine final : public MemoryStore {
 public:
  // `owner` outlives this object (it is a member of it).
  explicit MemoryEngine(StoreImpl* owner);
  MemoryEngine(const MemoryEngine&) = delete;
  MemoryEngine& operator=(const MemoryEngine&) = delete;
  ~MemoryEngine() override;

  // --- db::MemoryStore (contracts in memory.h).
  absl::StatusOr<std::vector<MemoryAddResult>> Add(absl::string_view ns,
                                                  absl::Span<const MemoryInput> inputs,
                                                  const MemoryAddOptions& options) override;
  absl::StatusOr<std::vector<MemoryHit>> Search(absl::string_view ns,
                                                const MemorySearchOptions& options) override;
  absl::StatusOr<Memory> Get(absl::string_view ns, absl::string_view id) override;
  absl::StatusOr<MemoryPage> List(absl::string_view ns, const MemoryListOptions& options) override;
  absl::StatusOr<Memory> Update(absl::string_view ns, absl::string_view id,
                                const MemoryUpdate& update) override;
  absl::Status Delete(absl::string_view ns, absl::string_view id,
                      absl::string_view actor) override;
  absl::StatusOr<uint64_t> DeleteAll(absl::string_view ns, const MemoryScope& scope,
                                     absl::string_view actor) override;
  absl::StatusOr<std::vector<MemoryEvent>> History(absl::string_view ns,
                                                   absl::string_view id) override;
  absl::StatusOr<uint64_t> Reset(absl::string_view ns) override;
  absl::StatusOr<uint64_t> PurgeExpired(absl::string_view ns) override;
  // memory_blocks.cc
  absl::StatusOr<MemoryBlock> GetBlock(absl::string_view ns, absl::string_view agent_id,
                                       absl::string_view label) override;
  absl::StatusOr<MemoryBlock> EditBlock(absl::string_view ns, absl::string_view agent_id,
                                        absl::string_view label, const BlockEdit& edit) override;
  absl::StatusOr<std::vector<BlockEvent>> BlockHistory(absl::string_view ns,
                                                       absl::string_view agent_id,
                                                       absl::string_view label) override;

  // --- memory_expiry.cc: the expiry timer (StoreOptions::
  // memory_expiry_interval_ms; none when 0). Started by StoreImpl::Init,
  // stopped by Close before anything else, holding no lock it takes.
  void StartExpiry();
  void StopExpiry();

  // Test seam: the clock of memory times (default: the wall clock).
  void SetClockForTesting(std::function<int64_t()> now_ms);

 private:
  // Conversation logs (convo_engine.h) live in memory namespaces: they open
  // them and embed with OpenNamespace and Embed.
  friend class ConvoEngine;

  // A memory text embedded and tokenized, outside the namespace lock.
  struct Embedded {
    std::vector<float> vector;
    std::vector<uint32_t> terms;
  };

  int64_t NowMs() const;
  // The memory namespace `name`: NOT_FOUND when absent (created, encoder
  // use-lite, when `create`), FAILED_PRECONDITION without an encoder or
  // with late interaction.
  absl::StatusOr<NamespacePtr> OpenNamespace(absl::string_view name, bool create);
  absl::StatusOr<std::vector<Embedded>> Embed(const Namespace& ns,
                                              const std::vector<std::string>& texts);

  // --- memory_write.cc
  // The internal id and memory of `id`; NOT_FOUND when absent.
  absl::StatusOr<std::pair<int64_t, Memory>> LoadLocked(Namespace* ns, absl::string_view id)
      ABSL_SHARED_LOCKS_REQUIRED(ns->mu);
  // Stages `memories` (new or changed, each id once) as chunks of `write`
  // with their vectors and terms, and their duplicate / expiry rows
  // (`before`: each one's previous version, nullopt for new ones).
  absl::Status StageMemoriesLocked(Namespace* ns, const std::vector<Memory>& memories,
                                   const std::vector<std::optional<Memory>>& before,
                                   std::vector<Embedded>* embedded, NamespaceWrite* write)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(ns->mu);
  // Stages the removal of `memories` (their chunks, rows and a DELETE
  // event each by `actor`).
  absl::Status StageRemovalLocked(Namespace* ns, const std::vector<Memory>& memories,
                                  absl::string_view actor, NamespaceWrite* write)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(ns->mu);

  // --- memory_search.cc
  // The memories `selection` accepts (its filter compiled), in id order,
  // after `after_id` ("" = from the first), at most `limit`.
  absl::StatusOr<std::vector<Memory>> ScanLocked(Namespace* ns, const MemorySelection& selection,
                                                 absl::string_view after_id, size_t limit)
      ABSL_SHARED_LOCKS_REQUIRED(ns->mu);

  // --- memory_history.cc
  // Stages `event` as the next event of its memory; `pending` counts the
  // events of that memory already staged in this write.
  absl::Status StageEventLocked(const Namespace& ns, const MemoryEvent& event, uint32_t pending,
                                NamespaceWrite* write) ABSL_SHARED_LOCKS_REQUIRED(ns.mu);

  // --- memory_expiry.cc
  void ExpiryPass();

  StoreImpl* const owner_;
  std::function<int64_t()> now_ms_;
  std::unique_ptr<PeriodicTask> expiry_task_;
};

}  // namespace mnemo::db

#endif  // MNEMO_DB_MEMORY_ENGINE_H_
