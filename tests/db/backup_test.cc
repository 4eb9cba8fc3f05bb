// Backups (db/backup.cc): incremental backups of a live store, listing,
// checksum verification (a flipped byte is DATA_LOSS), and restores into a
// new directory that open with the rows, the rebuilt indexes and the KV of
// their moment; bad paths and ids.
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "db/store.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace mnemo::db {
namespace {

namespace fs = std::filesystem;

constexpr int kDim = 8;

Chunk MakeChunk(const std::string& id) {
  Chunk c;
  c.id = id;
  c.text = absl::StrCat("text of ", id);
  c.vector = test::VectorFor(id, kDim);
  return c;
}

class BackupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = test::MakeTempDir("backup");
    backups_ = root_ + "/backups";
    store_ = Open(root_ + "/data");
    ASSERT_NE(store_, nullptr);
    NamespaceConfig config;
    config.name = "ns";
    config.dim = kDim;
    config.metric = Metric::kL2;
    config.index_factory = "HNSW16";
    ASSERT_TRUE(store_->CreateNamespace(config).ok());
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  std::unique_ptr<Store> Open(const std::string& dir) {
    auto store = Store::Open(StoreOptions{}, dir);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  void Put(Store* store, int begin, int end) {
    std::vector<Chunk> chunks;
    for (int i = begin; i < end; ++i) chunks.push_back(MakeChunk(absl::StrCat("c", i)));
    ASSERT_TRUE(store->Upsert("ns", {}, chunks).ok());
  }

  // Every chunk in [0, n) is stored and is its own nearest neighbour.
  void ExpectHolds(Store* store, int n) {
    auto info = store->GetNamespace("ns");
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->chunk_count, static_cast<uint64_t>(n));
    for (int i = 0; i < n; i += 7) {
      const std::string id = absl::StrCat("c", i);
      SearchOptions options;
      options.k = 1;
      auto hits = store->Search("ns", test::VectorFor(id, kDim), options);
      ASSERT_TRUE(hits.ok()) << hits.status();
      ASSERT_EQ((*hits)[0].size(), 1u);
      EXPECT_EQ((*hits)[0][0].id, id);
    }
  }

  std::string root_, backups_;
  std::unique_ptr<Store> store_;
};

TEST_F(BackupTest, IncrementalBackupsRestoreTheirMoment) {
  Put(store_.get(), 0, 300);
  auto first = store_->CreateBackup(backups_);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->id, 1u);
  EXPECT_GT(first->files, 0u);
  Put(store_.get(), 300, 400);
  ASSERT_TRUE(store_->Delete("ns", {"c0"}, {}).ok());
  auto second = store_->CreateBackup(backups_);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->id, 2u);
  EXPECT_GT(second->sequence, first->sequence);

  auto list = store_->ListBackups(backups_);
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].id, 1u);
  EXPECT_EQ((*list)[0].sequence, first->sequence);
  auto verified = store_->VerifyBackup(backups_, 0);
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_EQ(*verified, (std::vector<uint32_t>{1, 2}));

  // Backup 1: the 300 first chunks, c0 included.
  const std::string one = root_ + "/restored-1";
  ASSERT_TRUE(Store::RestoreBackup(backups_, 1, one).ok());
  auto restored = Open(one);
  ASSERT_NE(restored, nullptr);
  ExpectHolds(restored.get(), 300);
  restored.reset();
  // The newest (id 0): 400 chunks less c0.
  const std::string latest = root_ + "/restored-latest";
  ASSERT_TRUE(Store::RestoreBackup(backups_, 0, latest).ok());
  restored = Open(latest);
  ASSERT_NE(restored, nullptr);
  auto info = restored->GetNamespace("ns");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->chunk_count, 399u);
  auto got = restored->Get("ns", {"c0", "c399"}, {}, false);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->chunks.size(), 1u);
  EXPECT_EQ(got->chunks[0].id, "c399");
}

TEST_F(BackupTest, KvIsBackedUpWithItsChunks) {
  Put(store_.get(), 0, 4);
  KvConfig config;
  config.model = test::SmallKvModel(2, 1, 4);
  config.codec.kind = KvCodecKind::kFp32;
  ASSERT_TRUE(store_->RegisterKvModel("ns", config).ok());
  KvPutHeader header;
  header.chunk_id = "c1";
  header.model = config.model;
  header.tokens = {5, 6, 7};
  auto writer = store_->BeginPutKv("ns", header);
  ASSERT_TRUE(writer.ok()) << writer.status();
  std::vector<float> k(12), v(12);
  for (int i = 0; i < 12; ++i) k[i] = 0.25f * i, v[i] = -0.5f * i;
  for (uint32_t layer = 0; layer < 2; ++layer) {
    ASSERT_TRUE((*writer)->AddLayer(layer, KvTensorShape{1, 3, 4}, k, v).ok());
  }
  ASSERT_TRUE((*writer)->Commit().ok());
  ASSERT_TRUE(store_->CreateBackup(backups_).ok());
  const std::string dir = root_ + "/restored";
  ASSERT_TRUE(Store::RestoreBackup(backups_, 0, dir).ok());
  auto restored = Open(dir);
  ASSERT_NE(restored, nullptr);
  auto exists = restored->ExistsKv("ns", {"c1", "c2"}, config.model);
  ASSERT_TRUE(exists.ok()) << exists.status();
  EXPECT_EQ(*exists, (std::vector<uint32_t>{3, 0}));
}

TEST_F(BackupTest, DamagedBackupIsDataLossAndRestoresNothing) {
  Put(store_.get(), 0, 200);
  ASSERT_TRUE(store_->CreateBackup(backups_).ok());
  // Flip a byte in the middle of the largest table file of the backup.
  fs::path largest;
  uintmax_t size = 0;
  for (const auto& e : fs::recursive_directory_iterator(backups_)) {
    if (e.is_regular_file() && e.path().extension() == ".sst" && e.file_size() > size) {
      size = e.file_size();
      largest = e.path();
    }
  }
  ASSERT_GT(size, 0u);
  {
    std::fstream f(largest, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(size / 2));
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x5a);
    f.seekp(static_cast<std::streamoff>(size / 2));
    f.write(&c, 1);
  }
  EXPECT_EQ(store_->VerifyBackup(backups_, 1).status().code(), absl::StatusCode::kDataLoss);
  const std::string dir = root_ + "/restored";
  EXPECT_EQ(Store::RestoreBackup(backups_, 1, dir).code(), absl::StatusCode::kDataLoss);
  std::error_code ec;
  EXPECT_TRUE(!fs::exists(dir, ec) || fs::is_empty(dir, ec));
}

TEST_F(BackupTest, BadPathsAndIds) {
  EXPECT_EQ(store_->CreateBackup("relative/dir").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->ListBackups(root_ + "/none").status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(store_->CreateBackup(backups_).ok());
  EXPECT_EQ(store_->VerifyBackup(backups_, 9).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Store::RestoreBackup(backups_, 9, root_ + "/r9").code(), absl::StatusCode::kNotFound);
  // Never over an existing store.
  EXPECT_EQ(Store::RestoreBackup(backups_, 1, root_ + "/data").code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace mnemo::db
