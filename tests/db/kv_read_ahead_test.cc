// KV reads with read-ahead (KvReadOptions::read_ahead_bytes: groups of
// layers read chunk by chunk, db/kv_streams.cc): the same blocks in the same order as a plain
// read, one snapshot even while puts and deletes land mid-read, a corrupt
// blob still DATA_LOSS at its block, and a reader dropped mid-read or
// closed under leaves nothing reading.
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "db/kv_records.h"
#include "db/store.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "tests/db/test_util.h"

namespace mnemo::db {
namespace {

namespace fs = std::filesystem;

constexpr int kDim = 8;
constexpr int kLayers = 3;
constexpr int kKvHeads = 2;
constexpr int kHeadDim = 8;
// 2 heads x 40 tokens x 8 x fp16 = 1280 bytes per tensor: every block is a
// blob (min_blob_size 1024), as real KV is.
constexpr int kTokens = 40;
constexpr int kChunks = 5;
constexpr uint64_t kBlockBytes = 4 * kKvHeads * kTokens * kHeadDim;

ModelFingerprint TestModel() { return test::SmallKvModel(kLayers, kKvHeads, kHeadDim); }

// What a read hands out of one block, owned.
struct Got {
  size_t chunk_index;
  uint32_t layer;
  std::vector<float> k, v;
  std::string k_bytes, v_bytes;
  std::vector<int32_t> tokens;
  bool operator==(const Got&) const = default;
};

class KvReadAheadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::MakeTempDir("kv_read_ahead");
    StoreOptions options;
    options.snapshot_every_ops = 0;
    options_ = options;
    Open();
    NamespaceConfig config;
    config.name = "ns";
    config.dim = kDim;
    ASSERT_TRUE(store_->CreateNamespace(config).ok());
    KvConfig kv;
    kv.model = TestModel();
    kv.codec.kind = KvCodecKind::kFp16;
    kv.codec.entropy = false;  // the payload as stored is the fp16 bytes
    ASSERT_TRUE(store_->RegisterKvModel("ns", kv).ok());
    for (int i = 0; i < kChunks; ++i) {
      const std::string id = absl::StrCat("c", i);
      Chunk c;
      c.id = id;
      c.text = id;
      c.vector = test::VectorFor(id, kDim);
      ASSERT_TRUE(store_->Upsert("ns", {}, {c}).ok());
      ASSERT_TRUE(Put(id, i).ok());
    }
  }

  void TearDown() override {
    store_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void Open() {
    auto store = Store::Open(options_, dir_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  absl::StatusOr<KvPutResult> Put(const std::string& id, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    KvPutHeader header;
    header.chunk_id = id;
    header.model = TestModel();
    for (int t = 0; t < kTokens; ++t) header.tokens.push_back(static_cast<int32_t>(seed * 100 + t));
    auto writer = store_->BeginPutKv("ns", header);
    if (!writer.ok()) return writer.status();
    const KvTensorShape shape{kKvHeads, kTokens, kHeadDim};
    std::vector<float> k(shape.elements()), v(shape.elements());
    for (int l = 0; l < kLayers; ++l) {
      for (float& x : k) x = normal(rng);
      for (float& x : v) x = normal(rng);
      absl::Status st = (*writer)->AddLayer(l, shape, k, v);
      if (!st.ok()) return st;
    }
    return (*writer)->Commit();
  }

  // read_ahead in blocks (of this test's size, 4 bytes per element).
  KvReadOptions Options(uint64_t read_ahead, bool raw) {
    KvReadOptions options;
    for (int i = 0; i < kChunks; ++i) options.chunk_ids.push_back(absl::StrCat("c", i));
    options.model = TestModel();
    options.read_ahead_bytes = read_ahead * kBlockBytes;
    if (raw) options.as_bytes = KvDtype::kFp16;
    return options;
  }

  static Got Own(const KvBlock& b) {
    return Got{b.chunk_index,          b.layer,
               b.k,                    b.v,
               std::string(b.k_bytes), std::string(b.v_bytes),
               b.tokens};
  }

  // Reads to the end (or the first error) through `reader`.
  static absl::StatusOr<std::vector<Got>> Drain(KvReader* reader) {
    std::vector<Got> got;
    KvBlock block;
    while (true) {
      absl::StatusOr<bool> more = reader->Next(&block);
      if (!more.ok()) return more.status();
      if (!*more) return got;
      got.push_back(Own(block));
    }
  }

  absl::StatusOr<std::vector<Got>> Read(const KvReadOptions& options) {
    auto reader = store_->ReadKv("ns", options);
    if (!reader.ok()) return reader.status();
    return Drain(reader->get());
  }

  std::string dir_;
  StoreOptions options_;
  std::unique_ptr<Store> store_;
};

TEST_F(KvReadAheadTest, SameBlocksInTheSameOrderAsAPlainRead) {
  for (bool raw : {false, true}) {
    for (uint32_t begin : {0u, 1u}) {
      KvReadOptions plain = Options(0, raw);
      plain.layer_begin = begin;
      auto want = Read(plain);
      ASSERT_TRUE(want.ok()) << want.status();
      ASSERT_EQ(want->size(), static_cast<size_t>(kChunks * (kLayers - begin)));
      // Layer-major: every chunk of a layer before the next layer.
      for (size_t i = 0; i < want->size(); ++i) {
        EXPECT_EQ((*want)[i].chunk_index, i % kChunks);
        EXPECT_EQ((*want)[i].layer, begin + i / kChunks);
        EXPECT_EQ((*want)[i].tokens.empty(), i >= static_cast<size_t>(kChunks));
        EXPECT_EQ((*want)[i].k_bytes.empty(), !raw);
      }
      // Budgets of 1..9 blocks: groups of one layer; 10..14: two layers;
      // 15 and more: all three at once (kChunks = 5 blocks a layer).
      for (uint64_t ahead : {1u, 3u, 5u, 9u, 10u, 14u, 15u, 1000u}) {
        KvReadOptions options = Options(ahead, raw);
        options.layer_begin = begin;
        auto got = Read(options);
        ASSERT_TRUE(got.ok()) << got.status();
        EXPECT_TRUE(*got == *want) << "read_ahead " << ahead << " raw " << raw << " begin "
                                   << begin;
      }
    }
  }
}

TEST_F(KvReadAheadTest, OneSnapshotWhilePutsAndDeletesLandMidRead) {
  auto want = Read(Options(0, true));
  ASSERT_TRUE(want.ok()) << want.status();
  auto reader = store_->ReadKv("ns", Options(10, true));  // groups of two layers
  ASSERT_TRUE(reader.ok()) << reader.status();
  KvBlock block;
  absl::StatusOr<bool> more = (*reader)->Next(&block);
  ASSERT_TRUE(more.ok() && *more) << more.status();
  std::vector<Got> got{Own(block)};
  // Replace c1's KV, delete c2's, then read the rest of the old snapshot.
  ASSERT_TRUE(store_->DeleteKv("ns", {"c1", "c2"}).ok());
  ASSERT_TRUE(Put("c1", 99).ok());
  auto rest = Drain(reader->get());
  ASSERT_TRUE(rest.ok()) << rest.status();
  got.insert(got.end(), rest->begin(), rest->end());
  EXPECT_TRUE(got == *want);
  // A new read sees the new state.
  KvReadOptions after = Options(8, true);
  after.chunk_ids = {"c1"};
  auto now = Read(after);
  ASSERT_TRUE(now.ok()) << now.status();
  EXPECT_NE((*now)[0].k_bytes, (*want)[1].k_bytes);
  after.chunk_ids = {"c2"};
  EXPECT_TRUE(absl::IsNotFound(Read(after).status()));
}

TEST_F(KvReadAheadTest, ReaderDroppedOrClosedMidReadStopsReading) {
  {
    auto reader = store_->ReadKv("ns", Options(8, true));
    ASSERT_TRUE(reader.ok());
    KvBlock block;
    ASSERT_TRUE(*(*reader)->Next(&block));
  }  // destroyed mid-group
  auto reader = store_->ReadKv("ns", Options(8, false));
  ASSERT_TRUE(reader.ok());
  KvBlock block;
  ASSERT_TRUE(*(*reader)->Next(&block));
  ASSERT_TRUE(store_->Close().ok());  // releases the group it holds
  store_.reset();
  reader->reset();
}

// A blob whose payload lost a byte: the block's own checksum catches it at
// that block, with or without read-ahead; the blocks before it come intact.
TEST_F(KvReadAheadTest, CorruptBlobIsDataLossAtItsBlock) {
  auto want = Read(Options(0, true));
  ASSERT_TRUE(want.ok()) << want.status();
  ASSERT_TRUE(store_->Close().ok());
  store_.reset();
  {
    std::vector<std::string> names;
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir_, &names).ok());
    rocksdb::ColumnFamilyOptions blobs;
    blobs.enable_blob_files = true;
    blobs.min_blob_size = 1024;
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    for (const auto& n : names) cfs.emplace_back(n, n == kvrecords::kKvCf ? blobs : rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), dir_, cfs, &handles, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    rocksdb::ColumnFamilyHandle* kv = nullptr;
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == kvrecords::kKvCf) kv = handles[i];
    }
    ASSERT_NE(kv, nullptr);
    // Block keys sort by (chunk, layer): the 2nd is c0's layer 1.
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), kv));
    int seen = 0;
    std::string key, value;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (it->key().size() == 4 + 1 + 8 + 2 && it->key()[4] == 'b' && ++seen == 2) {
        key = it->key().ToString();
        value = it->value().ToString();
        break;
      }
    }
    it.reset();
    ASSERT_FALSE(key.empty());
    ASSERT_GT(value.size(), 1024u);
    value[value.size() - 7] ^= 0x10;  // inside V's payload
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), kv, key, value).ok());
    ASSERT_TRUE(db->Flush(rocksdb::FlushOptions(), kv).ok());  // into a blob file
    for (auto* h : handles) ASSERT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
  }
  Open();
  for (uint64_t ahead : {0u, 4u, 1000u}) {
    for (bool raw : {false, true}) {
      auto reader = store_->ReadKv("ns", Options(ahead, raw));
      ASSERT_TRUE(reader.ok()) << reader.status();
      KvBlock block;
      // c0 is chunk 0: its layer-1 block is block kChunks of the read.
      for (int i = 0; i < kChunks; ++i) {
        absl::StatusOr<bool> more = (*reader)->Next(&block);
        ASSERT_TRUE(more.ok() && *more) << more.status();
        if (raw) {
          EXPECT_EQ(std::string(block.k_bytes), (*want)[i].k_bytes);
        }
      }
      absl::StatusOr<bool> bad = (*reader)->Next(&block);
      EXPECT_TRUE(absl::IsDataLoss(bad.status())) << bad.status() << " read_ahead " << ahead;
    }
  }
}

}  // namespace
}  // namespace mnemo::db
