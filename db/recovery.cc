// Recovery: loading every namespace on Open. Rebuilds the in-memory state
// of each from its rows (chunks, documents, BM25 postings, token vectors,
// KV records) and its dense index from the newest snapshot file plus the
// index log after it, or from the stored vectors when no usable snapshot
// exists (the recovery invariant is stated in store_impl.h). A namespace
// whose loading meets damaged data (DATA_LOSS) is kept as damaged
// (namespace.h) instead of failing Open.
#include <algorithm>
#include <filesystem>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "db/file_io.h"
#include "db/bounded_iterator.h"
#include "db/keys.h"
#include "db/namespace_quota.h"
#include "db/records.h"
#include "db/rocks_status.h"
#include "db/store_impl.h"
#include "spdlog/spdlog.h"

namespace mnemo::db {
namespace {

namespace fs = std::filesystem;

// Vectors read and added to an index at a time on replay and rebuild.
constexpr size_t kRebuildBatch = 4096;

}  // namespace

absl::Status StoreImpl::LoadNamespaces() {
  ASSIGN_OR_RETURN(auto next, GetOne(meta_, keys::kNextNsIdKey));
  uint32_t next_nsid = 1;
  if (next.has_value()) {
    auto v = keys::ReadU32(*next);
    if (!v.has_value()) return absl::DataLossError("meta next_nsid is malformed");
    next_nsid = *v;
  }

  std::vector<NamespacePtr> loaded;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), meta_));
    for (it->Seek(keys::kNsConfigPrefix);
         it->Valid() && it->key().starts_with(keys::kNsConfigPrefix); it->Next()) {
      ASSIGN_OR_RETURN(records::StoredNamespace stored,
                       records::DecodeNamespace(it->value().ToString()));
      auto ns = std::make_shared<Namespace>();
      ns->config = stored.config;
      ns->nsid = stored.nsid;
      ns->created_unix_ms = stored.created_unix_ms;
      loaded.push_back(std::move(ns));
    }
    RETURN_IF_ERROR(FromRocks(it->status(), "scanning namespaces"));
  }

  for (NamespacePtr& ns : loaded) {
    absl::Status st = LoadNamespace(ns.get());
    if (absl::IsDataLoss(st)) {
      // Damaged data is this namespace's problem only: it stays listed as
      // damaged and the others serve. Other errors (EIO, no memory) are
      // not known to be lasting, so they fail Open as before.
      ns = DamagedNamespace(*ns, st);
      absl::ReaderMutexLock l(&ns->mu);
      spdlog::error("{}", std::string(ns->damage.message()));
    } else {
      RETURN_IF_ERROR(
          Annotate(st, absl::StrCat("loading namespace '", ns->config.name, "'")));
    }
    next_nsid = std::max(next_nsid, ns->nsid + 1);
  }
  absl::MutexLock l(&mu_);
  next_nsid_ = next_nsid;
  for (NamespacePtr& ns : loaded) namespaces_[ns->config.name] = std::move(ns);
  return absl::OkStatus();
}

absl::Status StoreImpl::LoadNamespace(Namespace* ns) {
  absl::MutexLock lock(&ns->mu);
  const uint32_t nsid = ns->nsid;
  ASSIGN_OR_RETURN(auto counters_value, GetOne(meta_, keys::NsCountersKey(nsid)));
  if (!counters_value.has_value()) {
    return absl::DataLossError("namespace counters are missing");
  }
  ASSIGN_OR_RETURN(ns->counters, records::DecodeCounters(*counters_value));
  RETURN_IF_ERROR(LoadQuotaLocked(ns));
  if (!ns->config.encoder.empty()) {
    // Only the postings are needed here: the encoder itself loads on first
    // use, so a store whose assets went missing still opens.
    ASSIGN_OR_RETURN(ns->bm25, Bm25Index::Open(db_.get(), bm25_, nsid));
  }

  // Chunks: external ids and filter attributes.
  const std::string begin = keys::NsPrefix(nsid);
  const std::string end = keys::NsEnd(nsid);
  {
    BoundedIterator it(db_.get(), chunks_, end);
    for (it->Seek(begin); it->Valid(); it->Next()) {
      auto id = keys::RowKeyId(View(it->key()));
      if (!id.has_value()) return absl::DataLossError("malformed chunk key");
      Chunk chunk;
      RETURN_IF_ERROR(records::DecodeChunk(View(it->value()), &chunk));
      auto attrs = index::ParseAttributes(chunk.metadata_json);
      if (attrs.ok()) {
        if (!attrs->empty()) ns->attrs.Set(static_cast<int64_t>(*id), *std::move(attrs));
      } else {
        spdlog::warn("namespace '{}': chunk '{}' has unreadable metadata: {}", ns->config.name,
                     chunk.id, attrs.status().ToString());
      }
      ns->external_ids[static_cast<int64_t>(*id)] = std::move(chunk.id);
      // Quota bytes: the record as stored plus its vector (db/quota.h).
      ns->stored_bytes += quota::ChunkBytes(it->value().size(), ns->config.dim);
    }
    RETURN_IF_ERROR(FromRocks(it->status(), "scanning chunks"));
  }
  {
    const std::string doc_prefix = keys::DocKeyPrefix(nsid);
    const std::string doc_end = keys::PrefixEnd(doc_prefix);
    BoundedIterator it(db_.get(), docs_, doc_end);
    for (it->Seek(doc_prefix); it->Valid(); it->Next()) {
      ++ns->document_count;
      ns->stored_bytes += it->value().size();
    }
    RETURN_IF_ERROR(FromRocks(it->status(), "scanning documents"));
  }

  std::unique_ptr<index::DenseIndex> index;
  uint64_t snapshot_seq = 0;
  uint64_t replayed = 0;
  absl::Status loaded = LoadSnapshotAndReplay(ns, &index, &snapshot_seq, &replayed);
  if (loaded.ok()) {
    // The snapshot plus log must describe exactly the stored chunks.
    bool consistent = index->size() == ns->external_ids.size();
    for (auto it = ns->external_ids.begin(); consistent && it != ns->external_ids.end(); ++it) {
      consistent = index->Contains(it->first);
    }
    if (!consistent) {
      loaded = absl::DataLossError(absl::StrCat("index holds ", index->size(),
                                                " vectors but the store has ",
                                                ns->external_ids.size(), " chunks"));
    }
  }
  if (loaded.ok()) {
    ns->index = std::move(index);
    const uint64_t last_seq = ns->counters.next_log_seq - 1;
    if (snapshot_seq == last_seq) ns->snapshot_seq = snapshot_seq;
    ns->may_have_dead_entries = KeepsDeadEntries(ns->config.index_factory);
    ns->recovery = {true, snapshot_seq, replayed};
    spdlog::info("namespace '{}': loaded index snapshot at log seq {}, replayed to {} ({} chunks)",
                 ns->config.name, snapshot_seq, last_seq, ns->external_ids.size());
  } else {
    if (!absl::IsNotFound(loaded)) {
      spdlog::warn("namespace '{}': index snapshot unusable ({}); rebuilding from stored vectors",
                   ns->config.name, loaded.ToString());
    }
    ASSIGN_OR_RETURN(ns->index, BuildIndexFromDense(*ns));
    if (ns->index->size() != ns->external_ids.size()) {
      return absl::DataLossError(absl::StrCat("dense CF holds ", ns->index->size(),
                                              " vectors but the store has ",
                                              ns->external_ids.size(), " chunks"));
    }
    spdlog::info("namespace '{}': built index from {} stored vectors", ns->config.name,
                 ns->index->size());
    // Force the next snapshot to be written.
    ns->ops_since_snapshot = std::max<uint64_t>(1, ns->external_ids.size());
  }
  RETURN_IF_ERROR(kv_store_.LoadLocked(ns));
  RETURN_IF_ERROR(injection_store_.LoadLocked(ns));
  if (ns->config.late_interaction.value_or(false)) {
    // The multivec CF is committed with the chunks, so it is always the
    // complete truth: no snapshot, no log replay needed.
    ASSIGN_OR_RETURN(ns->multivec, BuildMultiVecFromCf(*ns));
    spdlog::info("namespace '{}': {}", ns->config.name, ns->multivec->Describe());
  }
  return absl::OkStatus();
}

absl::Status StoreImpl::LoadSnapshotAndReplay(Namespace* ns,
                                              std::unique_ptr<index::DenseIndex>* out,
                                              uint64_t* snapshot_seq, uint64_t* replayed) {
  const std::string file_path = SnapshotPath(ns->nsid);
  std::error_code ec;
  if (!fs::exists(file_path, ec)) return absl::NotFoundError("no snapshot");
  ASSIGN_OR_RETURN(std::string bytes, ReadWholeFile(file_path));
  ASSIGN_OR_RETURN(records::SnapshotFile file, records::DecodeSnapshot(bytes));
  if (file.nsid != ns->nsid) {
    return absl::DataLossError(absl::StrCat("snapshot belongs to namespace id ", file.nsid));
  }
  const uint64_t last_seq = ns->counters.next_log_seq - 1;
  if (file.log_seq > last_seq) {
    return absl::DataLossError(absl::StrCat("snapshot is at log seq ", file.log_seq,
                                            " but the store only reached ", last_seq));
  }
  ASSIGN_OR_RETURN(auto index,
                   index::DenseIndex::Deserialize(IndexOptionsFor(ns->config), file.payload));

  // Collect the log after the snapshot. Ids are never reused, so the final
  // state is: snapshot - removed ids + added ids whose rows still exist.
  std::vector<int64_t> removes;
  std::vector<int64_t> adds;
  {
    const std::string begin = keys::LogKey(ns->nsid, file.log_seq + 1);
    const std::string end = keys::NsEnd(ns->nsid);
    BoundedIterator it(db_.get(), ilog_, end);
    for (it->Seek(begin); it->Valid(); it->Next()) {
      absl::string_view v = View(it->value());
      auto id = keys::ReadU64(v.substr(std::min<size_t>(1, v.size())));
      if (v.size() != 9 || !id.has_value()) return absl::DataLossError("malformed index log entry");
      if (v[0] == keys::kLogAdd) {
        adds.push_back(static_cast<int64_t>(*id));
      } else if (v[0] == keys::kLogRemove) {
        removes.push_back(static_cast<int64_t>(*id));
      } else {
        return absl::DataLossError("unknown index log operation");
      }
    }
    RETURN_IF_ERROR(FromRocks(it->status(), "scanning index log"));
  }
  if (!removes.empty()) RETURN_IF_ERROR(index->Remove(removes).status());
  for (size_t start = 0; start < adds.size(); start += kRebuildBatch) {
    size_t stop = std::min(adds.size(), start + kRebuildBatch);
    std::vector<std::string> row_keys;
    for (size_t i = start; i < stop; ++i) row_keys.push_back(keys::RowKey(ns->nsid, adds[i]));
    ASSIGN_OR_RETURN(auto rows, MultiGet(dense_, row_keys));
    std::vector<int64_t> ids;
    std::vector<float> vectors;
    for (size_t i = start; i < stop; ++i) {
      const auto& row = rows[i - start];
      if (!row.has_value()) continue;  // removed by a later log entry
      RETURN_IF_ERROR(records::DecodeVector(*row, ns->config.dim, &vectors));
      ids.push_back(adds[i]);
    }
    if (!ids.empty()) RETURN_IF_ERROR(index->Add(ids, vectors));
  }
  *snapshot_seq = file.log_seq;
  *replayed = adds.size() + removes.size();
  *out = std::move(index);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<index::DenseIndex>> StoreImpl::BuildIndexFromDense(
    const Namespace& ns) {
  ASSIGN_OR_RETURN(auto index, index::DenseIndex::Create(IndexOptionsFor(ns.config)));
  const std::string begin = keys::NsPrefix(ns.nsid);
  const std::string end = keys::NsEnd(ns.nsid);
  BoundedIterator it(db_.get(), dense_, end);
  std::vector<int64_t> ids;
  std::vector<float> vectors;
  auto flush = [&]() -> absl::Status {
    if (ids.empty()) return absl::OkStatus();
    RETURN_IF_ERROR(index->Add(ids, vectors));
    ids.clear();
    vectors.clear();
    return absl::OkStatus();
  };
  for (it->Seek(begin); it->Valid(); it->Next()) {
    auto id = keys::RowKeyId(View(it->key()));
    if (!id.has_value()) return absl::DataLossError("malformed dense key");
    RETURN_IF_ERROR(records::DecodeVector(View(it->value()), ns.config.dim, &vectors));
    ids.push_back(static_cast<int64_t>(*id));
    if (ids.size() >= kRebuildBatch) RETURN_IF_ERROR(flush());
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "scanning dense vectors"));
  RETURN_IF_ERROR(flush());
  return index;
}

absl::Status StoreImpl::RebuildIndexLocked(Namespace* ns) {
  ASSIGN_OR_RETURN(auto index, BuildIndexFromDense(*ns));
  ns->index = std::move(index);
  ns->may_have_dead_entries = false;
  ns->snapshot_seq.reset();
  ++ns->index_generation;
  ns->ops_since_snapshot.fetch_add(1);
  return absl::OkStatus();
}

void StoreImpl::RemoveOrphanSnapshots() {
  absl::flat_hash_set<std::string> live;
  {
    absl::MutexLock l(&mu_);
    for (const auto& [name, ns] : namespaces_) live.insert(absl::StrCat(ns->nsid, ".idx"));
  }
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(index_dir_, ec)) {
    const std::string name = entry.path().filename().string();
    if (live.contains(name)) continue;
    spdlog::info("removing stale index file {}", entry.path().string());
    fs::remove(entry.path(), ec);
  }
}

}  // namespace mnemo::db
