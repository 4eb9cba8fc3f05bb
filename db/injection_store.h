// Memory injection of a store (db/injection.h): registration with backfill,
// the records of the write path, and Recall (db/recall.cc). Owned by
// StoreImpl like KvStore and reached through its engine services.
//
// Locking: registration holds the namespace's writer lock from its check of
// the current model to its last backfill commit, so no write interleaves
// with a half-registered model; records of an Upsert are computed before
// the writer lock (with the model seen then) and recomputed under it in the
// rare case a registration happened in between. Recall takes no namespace
// lock of its own beyond Search's.
#ifndef MNEMO_DB_INJECTION_STORE_H_
#define MNEMO_DB_INJECTION_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "db/injection.h"
#include "db/namespace.h"
#include "encoder/injection_model.h"
#include "rocksdb/write_batch.h"

namespace mnemo::db {

class StoreImpl;

// A namespace's registered model, shared by the writes and recalls that
// use it (immutable).
struct InjectionState {
  // Not OK when the stored model could not be loaded at Open: every use of
  // the namespace's injection (and every write to it) fails with it until
  // the model is registered again.
  absl::Status status;
  std::shared_ptr<const encoder::InjectionModel> model;  // null when !status.ok()
  bool exact = false;
  int64_t registered_unix_ms = 0;
  std::string tag;  // injection::ModelTag of the model's weights hash
};

// Records of an Upsert's chunks computed before its commit.
struct PreparedInjection {
  std::shared_ptr<const InjectionState> state;  // null: no model then
  std::vector<std::optional<std::string>> records;  // one per chunk
};

class InjectionStore {
 public:
  explicit InjectionStore(StoreImpl* owner) : owner_(owner) {}
  InjectionStore(const InjectionStore&) = delete;
  InjectionStore& operator=(const InjectionStore&) = delete;

  // See Store::RegisterInjectionModel.
  absl::StatusOr<InjectionInfo> Register(absl::string_view ns, const InjectionFiles& files,
                                         bool exact);
  absl::StatusOr<InjectionInfo> Info(absl::string_view ns);
  // recall.cc.
  absl::StatusOr<RecallResult> Recall(absl::string_view ns, const RecallOptions& options);

  // Loads the namespace's stored model (recovery). A model that does not
  // load leaves a state holding the error (logged), not a failed Open.
  absl::Status LoadLocked(Namespace* ns) ABSL_EXCLUSIVE_LOCKS_REQUIRED(ns->mu);

  // --- The write path (write_path.cc).
  // The records of `chunks` (with their vectors) under the namespace's
  // current model, computed outside the namespace lock; no records when it
  // has none.
  absl::StatusOr<PreparedInjection> Prepare(Namespace* ns, absl::Span<const Chunk> chunks)
      ABSL_LOCKS_EXCLUDED(ns->mu);
  // Under the writer lock: recomputes `prepared` when the namespace's model
  // changed since Prepare.
  absl::Status RecheckLocked(Namespace* ns, absl::Span<const Chunk> chunks,
                             PreparedInjection* prepared) ABSL_EXCLUSIVE_LOCKS_REQUIRED(ns->mu);
  // Stages the removal of the records of `removed` and the records of
  // `added` (one optional per added chunk; empty = none) into `batch`.
  void StageLocked(const Namespace& ns, rocksdb::WriteBatch* batch,
                   absl::Span<const int64_t> removed, absl::Span<const int64_t> added,
                   const std::vector<std::optional<std::string>>& records)
      ABSL_SHARED_LOCKS_REQUIRED(ns.mu);

 private:
  // Records of chunks (text + vector) under `state`.
  absl::StatusOr<std::vector<std::optional<std::string>>> Compute(
      const InjectionState& state, absl::Span<const Chunk> chunks) const;
  // Records for every live chunk lacking one, in batched commits.
  absl::StatusOr<uint64_t> BackfillLocked(Namespace* ns, const InjectionState& state)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(ns->mu);
  absl::StatusOr<InjectionInfo> InfoLocked(const Namespace& ns, const InjectionState& state)
      ABSL_SHARED_LOCKS_REQUIRED(ns.mu);

  StoreImpl* const owner_;
};

// The namespace's usable injection state: FAILED_PRECONDITION when it has
// none, the load error when its model did not load.
absl::StatusOr<std::shared_ptr<const InjectionState>> UsableInjection(const Namespace& ns)
    ABSL_SHARED_LOCKS_REQUIRED(ns.mu);

}  // namespace mnemo::db

#endif  // MNEMO_DB_INJECTION_STORE_H_
