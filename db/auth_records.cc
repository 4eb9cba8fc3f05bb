// API-key records in the meta column family (db/auth_records.h).
#include "db/auth_records.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "db/bounded_iterator.h"
#include "db/keys.h"
#include "db/rocks_status.h"
#include "db/store_impl.h"

namespace mnemo::db {
namespace {

std::string RecordKey(absl::string_view id) { return absl::StrCat(kAuthRecordPrefix, id); }

rocksdb::WriteOptions Synced() {
  rocksdb::WriteOptions w;
  w.sync = true;
  return w;
}

absl::StatusOr<StoreImpl*> Impl(Store* store) {
  auto* impl = dynamic_cast<StoreImpl*>(store);
  if (impl == nullptr) return absl::InvalidArgumentError("not a store made by Store::Open");
  return impl;
}

absl::Status Closed() { return absl::FailedPreconditionError("store is closed"); }

}  // namespace

absl::Status PutAuthRecord(Store* store, absl::string_view id, absl::string_view record) {
  if (id.empty()) return absl::InvalidArgumentError("empty auth record id");
  ASSIGN_OR_RETURN(StoreImpl * impl, Impl(store));
  StoreLifetime::Pin pin(impl->lifetime().get());
  if (pin.db() == nullptr) return Closed();
  rocksdb::WriteBatch batch;
  batch.Put(impl->meta_cf(), RecordKey(id), rocksdb::Slice(record.data(), record.size()));
  return impl->WriteToDb(Synced(), &batch, "writing an auth record");
}

absl::Status DeleteAuthRecord(Store* store, absl::string_view id) {
  ASSIGN_OR_RETURN(StoreImpl * impl, Impl(store));
  StoreLifetime::Pin pin(impl->lifetime().get());
  if (pin.db() == nullptr) return Closed();
  std::string value;
  rocksdb::Status s = pin.db()->Get(rocksdb::ReadOptions(), impl->meta_cf(), RecordKey(id), &value);
  if (s.IsNotFound()) return absl::NotFoundError(absl::StrCat("no auth record '", id, "'"));
  RETURN_IF_ERROR(FromRocks(s, "reading an auth record"));
  rocksdb::WriteBatch batch;
  batch.Delete(impl->meta_cf(), RecordKey(id));
  return impl->WriteToDb(Synced(), &batch, "deleting an auth record");
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ListAuthRecords(Store* store) {
  ASSIGN_OR_RETURN(StoreImpl * impl, Impl(store));
  StoreLifetime::Pin pin(impl->lifetime().get());
  if (pin.db() == nullptr) return Closed();
  const std::string prefix = kAuthRecordPrefix;
  std::vector<std::pair<std::string, std::string>> out;
  BoundedIterator it(pin.db(), impl->meta_cf(), keys::PrefixEnd(prefix));
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    out.emplace_back(it->key().ToString().substr(prefix.size()), it->value().ToString());
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "listing auth records"));
  return out;
}

}  // namespace mnemo::db
