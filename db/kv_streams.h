// The objects a KV put and a KV read hand out: KvChunkWriterImpl validates
// and encodes each layer as it comes and commits them through KvStore;
// KvReaderImpl reads blocks layer-major from one RocksDB snapshot. Both
// hold the store's lifetime token (store_lifetime.h): used after
// Store::Close they return FAILED_PRECONDITION (debug builds abort) and
// never touch the closed DB. Internal to db/.
#ifndef MNEMO_DB_KV_STREAMS_H_
#define MNEMO_DB_KV_STREAMS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "db/kv.h"
#include "db/namespace.h"
#include "db/store_lifetime.h"
#include "rocksdb/db.h"

namespace mnemo::db {

class KvStore;

// One chunk's put: validates and encodes each layer as it comes, holds the
// encoded blocks, and hands them to the store in one commit.
class KvChunkWriterImpl final : public KvChunkWriter {
 public:
  KvChunkWriterImpl(std::shared_ptr<StoreLifetime> lifetime, KvStore* kv_store, NamespacePtr ns,
                    KvPutHeader header, KvConfig config);

  absl::Status AddLayer(uint32_t layer, const KvTensorShape& shape, absl::Span<const float> k,
                        absl::Span<const float> v) override;
  absl::StatusOr<KvPutResult> Commit() override;

 private:
  const std::shared_ptr<StoreLifetime> lifetime_;
  KvStore* const kv_store_;  // valid while lifetime_ is open
  const NamespacePtr ns_;
  const KvPutHeader header_;
  const KvConfig config_;
  const uint64_t fingerprint_hash_;
  uint32_t next_layer_ = 0;
  bool done_ = false;
  std::vector<std::string> blocks_;
  std::vector<std::string> index_blocks_;  // per layer, when the config asks for key indexes
  KvPutResult result_;
  uint64_t fp16_bytes_ = 0;
};

// Blocks of a read, from one RocksDB snapshot taken when the chunks were
// checked, layer-major.
class KvReaderImpl final : public KvReader, private StoreLifetime::Holder {
 public:
  struct Item {
    int64_t internal_id = 0;
    std::string chunk_id;
    uint32_t tokens = 0;
    int64_t position = -1;
  };

  // Call with the store open (under the namespace lock that saw it open):
  // takes the snapshot from `db` and registers with `lifetime`.
  KvReaderImpl(std::shared_ptr<StoreLifetime> lifetime, rocksdb::DB* db,
               rocksdb::ColumnFamilyHandle* cf, uint32_t nsid, std::vector<Item> items,
               uint32_t layer_begin, uint32_t layer_end, ModelFingerprint model,
               std::optional<KvDtype> as_bytes, bool with_key_index,
               uint64_t read_ahead_bytes = 0);
  ~KvReaderImpl() override;

  absl::StatusOr<bool> Next(KvBlock* block) override;
  size_t total_blocks() const override {
    return items_.size() * static_cast<size_t>(layer_end_ - layer_begin_);
  }
  uint64_t total_values() const override;

 private:
  // StoreLifetime::Holder: Close releases the snapshot and pinned block.
  void ReleaseDb(rocksdb::DB* db) override;
  absl::StatusOr<bool> NextFrom(rocksdb::DB* db, KvBlock* block);
  // Block i's value (i in read order) into value_: with read-ahead from
  // the group of layers holding it (read whole, chunk by chunk, when i
  // leaves the previous group), else one Get.
  rocksdb::Status ReadBlock(rocksdb::DB* db, const rocksdb::ReadOptions& ro, size_t i);

  const std::shared_ptr<StoreLifetime> lifetime_;
  const std::optional<KvDtype> as_bytes_;
  const bool with_key_index_;
  rocksdb::ColumnFamilyHandle* const cf_;
  // Null once released (by Close or the destructor).
  const rocksdb::Snapshot* snapshot_;
  const uint32_t nsid_;
  const std::vector<Item> items_;
  const uint32_t layer_begin_, layer_end_;
  const ModelFingerprint model_;
  const uint64_t fingerprint_hash_;
  const uint64_t read_ahead_bytes_;
  size_t next_ = 0;
  // The read-ahead group: blocks [group_begin_, + size) in read order.
  size_t group_begin_ = 0;
  std::vector<rocksdb::PinnableSlice> group_values_;
  std::vector<rocksdb::Status> group_statuses_;
  // The block being read and the bytes handed out of it (views into these
  // stay valid until the next Next() or Store::Close()).
  rocksdb::PinnableSlice value_;
  std::string k_out_, v_out_;
};

}  // namespace mnemo::db

#endif  // MNEMO_DB_KV_STREAMS_H_
