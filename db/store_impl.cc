// StoreImpl as the owner (see store_impl.h): opening the DB and its column
// families, Close, the point-read helpers the concern files share, the test
// seams and Store::Open.
#include "db/store_impl.h"

#include <algorithm>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "db/injection_records.h"
#include "db/keys.h"
#include "db/kv_records.h"
#include "db/memory_records.h"
#include "db/rocks_logger.h"
#include "db/rocks_status.h"
#include "db/validation.h"
#include "rocksdb/cache.h"
#include "rocksdb/env.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/table.h"
#include "spdlog/spdlog.h"

namespace mnemo::db {
namespace {

namespace fs = std::filesystem;

constexpr char kSchemaVersion[] = "1";

}  // namespace

StoreImpl::StoreImpl(const StoreOptions& options, const std::string& path,
                     std::unique_ptr<rocksdb::Env> env)
    : options_(options),
      path_(path),
      index_dir_((fs::path(path) / "indexes").string()),
      env_(std::move(env)) {}

StoreImpl::~StoreImpl() { IgnoreError(Close()); }

absl::Status StoreImpl::Init() {
  RETURN_IF_ERROR(OpenDb());
  RETURN_IF_ERROR(LoadNamespaces());
  RemoveOrphanSnapshots();
  bg_thread_ = std::thread([this] { BackgroundLoop(); });
  StartKvRetention();
  memory_engine_.StartExpiry();
  return absl::OkStatus();
}

absl::Status StoreImpl::OpenDb() {
  std::error_code ec;
  if (options_.create_if_missing) {
    fs::create_directories(index_dir_, ec);
    if (ec) {
      return absl::InternalError(absl::StrCat("cannot create ", index_dir_, ": ", ec.message()));
    }
  } else if (!fs::exists(fs::path(path_) / "CURRENT", ec)) {
    return absl::NotFoundError(absl::StrCat("no store at ", path_));
  } else {
    fs::create_directories(index_dir_, ec);
  }

  rocksdb::DBOptions db_options;
  if (env_ != nullptr) db_options.env = env_.get();
  db_options.create_if_missing = options_.create_if_missing;
  db_options.create_missing_column_families = true;
  // Leave the kernel's readahead on for the files RocksDB opens: a KV
  // read walks a chunk's blocks in file order (db/kv_streams.cc), which
  // readahead turns into large sequential disk reads; the default
  // (POSIX_FADV_RANDOM on every file) cuts it to one request per block.
  db_options.advise_random_on_open = false;
  db_options.listeners.push_back(write_resumer_.listener());
  // No LOG file in the data directory (see rocks_logger.h).
  db_options.info_log = NewRocksLogger();
  db_options.db_write_buffer_size = options_.memtable_bytes;

  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(options_.block_cache_bytes);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  // The index keeps each data block's first key, so a scan bounded to one
  // namespace (BoundedIterator) decides from the index that a block of
  // another namespace's file is out of bounds without reading it: damage
  // in one namespace's file stays that namespace's (NamespaceInfo::damage).
  table.index_type = rocksdb::BlockBasedTableOptions::kBinarySearchWithFirstKey;
  rocksdb::ColumnFamilyOptions cf_options;
  cf_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));

  // Open every CF that exists (a newer schema may have added some) plus the
  // ones this version needs.
  std::vector<std::string> names;
  rocksdb::Status list = rocksdb::DB::ListColumnFamilies(db_options, path_, &names);
  if (!list.ok()) names.clear();
  for (const char* required :
       {rocksdb::kDefaultColumnFamilyName.c_str(), keys::kMetaCf, keys::kDocsCf, keys::kChunksCf,
        keys::kDenseCf, keys::kIdMapCf, keys::kIndexLogCf, keys::kBm25Cf, keys::kMultiVecCf,
        kvrecords::kKvCf, injection::kInjectCf, memrecords::kMemoryCf}) {
    if (std::find(names.begin(), names.end(), required) == names.end()) {
      names.push_back(required);
    }
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  // KV blocks are large, written once and read whole: they go to blob
  // files (already compressed by their codec), keeping the LSM small.
  rocksdb::ColumnFamilyOptions kv_options = cf_options;
  kv_options.enable_blob_files = true;
  kv_options.min_blob_size = 1024;
  kv_options.blob_compression_type = rocksdb::kNoCompression;
  kv_options.enable_blob_garbage_collection = true;
  for (const auto& name : names) {
    descriptors.emplace_back(name, name == kvrecords::kKvCf ? kv_options : cf_options);
  }

  rocksdb::DB* raw = nullptr;
  RETURN_IF_ERROR(FromRocks(rocksdb::DB::Open(db_options, path_, descriptors, &handles_, &raw),
                            absl::StrCat("opening store at ", path_)));
  db_.reset(raw);
  lifetime_ = std::make_shared<StoreLifetime>(db_.get());
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string& n = names[i];
    if (n == keys::kMetaCf) meta_ = handles_[i];
    if (n == keys::kDocsCf) docs_ = handles_[i];
    if (n == keys::kChunksCf) chunks_ = handles_[i];
    if (n == keys::kDenseCf) dense_ = handles_[i];
    if (n == keys::kIdMapCf) idmap_ = handles_[i];
    if (n == keys::kIndexLogCf) ilog_ = handles_[i];
    if (n == keys::kBm25Cf) bm25_ = handles_[i];
    if (n == keys::kMultiVecCf) multivec_ = handles_[i];
    if (n == kvrecords::kKvCf) kv_ = handles_[i];
    if (n == injection::kInjectCf) inject_ = handles_[i];
    if (n == memrecords::kMemoryCf) memory_ = handles_[i];
  }

  ASSIGN_OR_RETURN(auto version, GetOne(meta_, keys::kSchemaVersionKey));
  if (!version.has_value()) {
    RETURN_IF_ERROR(FromRocks(
        db_->Put(SyncedWrite(), meta_, keys::kSchemaVersionKey, kSchemaVersion),
        "writing schema version"));
  } else if (*version != kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "store at ", path_, " has schema version ", *version, "; this build reads ",
        kSchemaVersion));
  }
  return absl::OkStatus();
}

absl::Status StoreImpl::Close() { return CloseImpl(/*save_snapshots=*/true); }

absl::Status StoreImpl::CloseImpl(bool save_snapshots) {
  absl::MutexLock close_lock(&close_mu_);
  if (db_ == nullptr) return absl::OkStatus();
  memory_engine_.StopExpiry();
  absl::Status result = StopKvRetention();

  {
    absl::MutexLock l(&bg_mu_);
    bg_stop_ = true;
    bg_cv_.SignalAll();
  }
  if (bg_thread_.joinable()) bg_thread_.join();

  std::vector<NamespacePtr> all;
  {
    absl::MutexLock l(&mu_);
    closed_ = true;
    for (const auto& [name, ns] : namespaces_) all.push_back(ns);
  }
  for (const NamespacePtr& ns : all) {
    if (save_snapshots) {
      absl::Status st = SnapshotNamespace(ns.get());
      if (!st.ok()) {
        spdlog::error("namespace '{}': snapshot on close failed: {}", ns->config.name,
                      st.ToString());
        result.Update(st);
      }
    }
    absl::MutexLock l(&ns->mu);
    ns->gone = Gone::kClosed;
    ns->index.reset();
    ns->bm25.reset();
    ns->multivec.reset();
  }
  // Readers and writers handed out fail from here on (store_lifetime.h);
  // waits for any of their calls in flight.
  lifetime_->Close();
  rocksdb::FlushOptions flush;
  flush.wait = true;
  result.Update(FromRocks(db_->Flush(flush, handles_), "flushing on close"));
  for (rocksdb::ColumnFamilyHandle* h : handles_) {
    result.Update(FromRocks(db_->DestroyColumnFamilyHandle(h), "closing column family"));
  }
  handles_.clear();
  result.Update(FromRocks(db_->Close(), "closing store"));
  db_.reset();
  {
    absl::MutexLock l(&mu_);
    namespaces_.clear();
  }
  spdlog::info("store at {} closed", path_);
  return result;
}

absl::StatusOr<std::vector<std::optional<std::string>>> StoreImpl::MultiGet(
    rocksdb::ColumnFamilyHandle* cf, const std::vector<std::string>& keys) {
  std::vector<std::optional<std::string>> out(keys.size());
  if (keys.empty()) return out;
  std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  std::vector<rocksdb::ColumnFamilyHandle*> cfs(keys.size(), cf);
  std::vector<std::string> values;
  std::vector<rocksdb::Status> statuses =
      db_->MultiGet(rocksdb::ReadOptions(), cfs, slices, &values);
  for (size_t i = 0; i < keys.size(); ++i) {
    if (statuses[i].IsNotFound()) continue;
    RETURN_IF_ERROR(FromRocks(statuses[i], "reading"));
    out[i] = std::move(values[i]);
  }
  return out;
}

absl::StatusOr<std::optional<std::string>> StoreImpl::GetOne(rocksdb::ColumnFamilyHandle* cf,
                                                             const std::string& key) {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf, key, &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  RETURN_IF_ERROR(FromRocks(s, "reading"));
  return std::optional<std::string>(std::move(value));
}

absl::StatusOr<NamespacePtr> StoreImpl::FindNamespace(absl::string_view name) {
  absl::ReaderMutexLock l(&mu_);
  if (closed_) return absl::FailedPreconditionError("store is closed");
  auto it = namespaces_.find(name);
  if (it == namespaces_.end()) {
    return absl::NotFoundError(absl::StrCat("namespace '", name, "' does not exist"));
  }
  return it->second;
}

std::vector<NamespacePtr> StoreImpl::AllNamespaces() {
  absl::ReaderMutexLock l(&mu_);
  std::vector<NamespacePtr> all;
  if (closed_) return all;
  for (const auto& [name, ns] : namespaces_) all.push_back(ns);
  std::sort(all.begin(), all.end(), [](const NamespacePtr& a, const NamespacePtr& b) {
    return a->config.name < b->config.name;
  });
  return all;
}

absl::Status testing::CloseWithoutSnapshotForTesting(Store* store) {
  auto* impl = dynamic_cast<StoreImpl*>(store);
  if (impl == nullptr) return absl::InvalidArgumentError("not a store made by Store::Open");
  return impl->CloseImpl(/*save_snapshots=*/false);
}

absl::StatusOr<testing::RecoveryInfo> testing::RecoveryInfoForTesting(Store* store,
                                                                      absl::string_view ns) {
  auto* impl = dynamic_cast<StoreImpl*>(store);
  if (impl == nullptr) return absl::InvalidArgumentError("not a store made by Store::Open");
  ASSIGN_OR_RETURN(NamespacePtr found, impl->FindNamespace(ns));
  absl::ReaderMutexLock l(&found->mu);
  RETURN_IF_ERROR(found->GoneStatus());
  return found->recovery;
}

absl::Status testing::SetKvClockForTesting(Store* store, std::function<int64_t()> now_ms) {
  auto* impl = dynamic_cast<StoreImpl*>(store);
  if (impl == nullptr) return absl::InvalidArgumentError("not a store made by Store::Open");
  impl->kv_store_.SetClockForTesting(std::move(now_ms));
  return absl::OkStatus();
}

namespace {

absl::StatusOr<std::unique_ptr<Store>> OpenStore(const StoreOptions& options,
                                                 const std::string& path,
                                                 std::unique_ptr<rocksdb::Env> env) {
  if (path.empty()) return absl::InvalidArgumentError("store path is empty");
  RETURN_IF_ERROR(ValidateStoreOptions(options));
  auto store = std::make_unique<StoreImpl>(options, path, std::move(env));
  absl::Status st = store->Init();
  if (!st.ok()) {
    spdlog::error("cannot open store at {}: {}", path, st.ToString());
    return st;  // the destructor closes what was opened
  }
  spdlog::info("store at {} open", path);
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const StoreOptions& options,
                                                   const std::string& path) {
  return OpenStore(options, path, nullptr);
}

absl::StatusOr<std::unique_ptr<Store>> testing::OpenOnFileSystemForTesting(
    const StoreOptions& options, const std::string& path,
    std::shared_ptr<rocksdb::FileSystem> file_system) {
  if (file_system == nullptr) return absl::InvalidArgumentError("no file system");
  return OpenStore(options, path, rocksdb::NewCompositeEnv(file_system));
}

}  // namespace mnemo::db
