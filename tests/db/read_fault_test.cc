// Damaged and unreadable data: flipped bytes in an SST and in a blob file
// (KV blocks), short reads and EIO on reads (tests/db/fault_fs.h). The
// affected reads fail with DATA_LOSS (damaged) or UNAVAILABLE (EIO), never
// crash, and the rest of the store keeps serving: other namespaces, other
// chunks, searches, writes.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "db/store.h"
#include "db/store_testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/options.h"
#include "rocksdb/sst_file_reader.h"
#include "rocksdb/table_properties.h"
#include "tests/db/fault_fs.h"
#include "tests/db/test_util.h"

namespace mnemo::db {
namespace {

namespace fs = std::filesystem;
using test::FaultFileSystem;
using test::FaultOp;
using ::testing::HasSubstr;

constexpr int kDim = 8;
constexpr int kLayers = 2;
constexpr int kKvHeads = 2;
constexpr int kHeadDim = 8;
// 2 heads x 64 tokens x 8 dims of fp16 per tensor: above the KV column
// family's min_blob_size, so the blocks live in blob files.
constexpr int kKvTokens = 64;

ModelFingerprint TestModel() { return test::SmallKvModel(kLayers, kKvHeads, kHeadDim); }

Chunk MakeChunk(const std::string& id) {
  Chunk c;
  c.id = id;
  c.text = absl::StrCat("the text of chunk ", id, " which only it has");
  c.vector = test::VectorFor(id, kDim);
  return c;
}

// The file number of a RocksDB file name ("000012.sst" -> 12).
uint64_t FileNumber(const fs::path& p) { return std::stoull(p.stem().string()); }

// Flips every bit of the byte at `offset` of `path`.
void FlipByte(const fs::path& path, uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f.good()) << path;
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.get(c);
  f.seekp(static_cast<std::streamoff>(offset));
  f.put(static_cast<char>(~c));
  ASSERT_TRUE(f.good()) << path;
}

class ReadFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::MakeTempDir("read_fault");
    options_.snapshot_every_ops = 0;
    options_.kv_expiry_interval_ms = 0;
    options_.kv_recency_flush_ms = 0;
    options_.memory_expiry_interval_ms = 0;
    // A small cache, so that reads after a reopen go to the files.
    options_.block_cache_bytes = 1 << 20;
    fault_fs_ = std::make_shared<FaultFileSystem>();
    ASSERT_NO_FATAL_FAILURE(Open());
  }

  void TearDown() override {
    fault_fs_->Clear();
    store_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void Open() {
    auto store = testing::OpenOnFileSystemForTesting(options_, dir_, fault_fs_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  void Reopen() {
    fault_fs_->Clear();
    ASSERT_TRUE(store_->Close().ok());
    store_.reset();
    ASSERT_NO_FATAL_FAILURE(Open());
  }

  void CreateNs(const std::string& name) {
    NamespaceConfig config;
    config.name = name;
    config.dim = kDim;
    config.metric = Metric::kL2;
    ASSERT_TRUE(store_->CreateNamespace(config).ok());
  }

  void Upsert(const std::string& ns, const std::vector<std::string>& ids) {
    std::vector<Chunk> chunks;
    for (const std::string& id : ids) chunks.push_back(MakeChunk(id));
    auto written = store_->Upsert(ns, {}, chunks);
    ASSERT_TRUE(written.ok()) << written.status();
  }

  // Upserts chunks `ids` and a document named after the first.
  void UpsertWithDocument(const std::string& ns, const std::vector<std::string>& ids) {
    std::vector<Chunk> chunks;
    for (const std::string& id : ids) chunks.push_back(MakeChunk(id));
    Document doc;
    doc.id = absl::StrCat("doc-", ids[0]);
    doc.text = absl::StrCat("the document of ", ids[0]);
    auto written = store_->Upsert(ns, {doc}, chunks);
    ASSERT_TRUE(written.ok()) << written.status();
  }

  // Two namespaces whose rows of column family `cf` sit in separate SSTs;
  // damages the second's (see the tests below).
  // With `drop_snapshots` the index snapshots are removed as well, so that
  // Open rebuilds each index from the stored vectors.
  void DamageTheSecondNamespace(const std::string& cf, bool drop_snapshots = false);

  absl::Status GetChunks(const std::string& ns, const std::vector<std::string>& ids) {
    auto got = store_->Get(ns, ids, {}, /*include_vectors=*/true);
    if (!got.ok()) return got.status();
    if (got->chunks.size() != ids.size()) return absl::NotFoundError("chunks missing");
    for (size_t i = 0; i < ids.size(); ++i) {
      const Chunk& c = got->chunks[i];
      if (c.id != ids[i] || c.text != MakeChunk(ids[i]).text ||
          c.vector != test::VectorFor(ids[i], kDim)) {
        return absl::InternalError(absl::StrCat("chunk ", ids[i], " reads back different"));
      }
    }
    return absl::OkStatus();
  }

  // Searches `ns` for the vector of `id` with the payload and vectors: they
  // come from the chunks and dense column families.
  absl::Status SearchWithPayload(const std::string& ns, const std::string& id) {
    SearchOptions search;
    search.k = 1;
    search.include_payload = true;
    search.include_vectors = true;
    auto hits = store_->Search(ns, test::VectorFor(id, kDim), search);
    if (!hits.ok()) return hits.status();
    if ((*hits)[0].empty() || (*hits)[0][0].id != id) return absl::InternalError("wrong hit");
    return absl::OkStatus();
  }

  // KV of `id`: kKvTokens tokens, every value derived from `seed`.
  absl::Status PutKv(const std::string& id, uint32_t seed) {
    KvPutHeader header;
    header.chunk_id = id;
    header.model = TestModel();
    for (int t = 0; t < kKvTokens; ++t) header.tokens.push_back(t + 1);
    auto writer = store_->BeginPutKv("kv", header);
    if (!writer.ok()) return writer.status();
    const KvTensorShape shape{kKvHeads, kKvTokens, kHeadDim};
    for (int l = 0; l < kLayers; ++l) {
      std::vector<float> k = Values(seed, l, 'k'), v = Values(seed, l, 'v');
      absl::Status st = (*writer)->AddLayer(l, shape, k, v);
      if (!st.ok()) return st;
    }
    return (*writer)->Commit().status();
  }

  static std::vector<float> Values(uint32_t seed, int layer, char which) {
    std::mt19937 rng(seed * 131 + layer * 2 + (which == 'v'));
    std::uniform_int_distribution<int> dist(-64, 64);
    std::vector<float> out(static_cast<size_t>(kKvHeads) * kKvTokens * kHeadDim);
    for (float& x : out) x = dist(rng) / 32.0f;  // exact in fp16
    return out;
  }

  // Reads every layer of `id`'s KV and checks it against `seed`.
  absl::Status ReadKv(const std::string& id, uint32_t seed) {
    KvReadOptions options;
    options.chunk_ids = {id};
    options.model = TestModel();
    auto reader = store_->ReadKv("kv", options);
    if (!reader.ok()) return reader.status();
    int layer = 0;
    while (true) {
      KvBlock block;
      auto more = (*reader)->Next(&block);
      if (!more.ok()) return more.status();
      if (!*more) break;
      if (block.k != Values(seed, layer, 'k') || block.v != Values(seed, layer, 'v')) {
        return absl::InternalError(absl::StrCat("KV of ", id, " layer ", layer, " differs"));
      }
      ++layer;
    }
    if (layer != kLayers) return absl::InternalError("layers missing");
    return absl::OkStatus();
  }

  void SetUpKv() {
    CreateNs("kv");
    Upsert("kv", {"x", "y"});
    KvConfig config;
    config.model = TestModel();
    ASSERT_TRUE(store_->RegisterKvModel("kv", config).ok());
  }

  // Files of the data directory with this extension, oldest first.
  std::vector<fs::path> Files(const std::string& ext) {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(dir_)) {
      if (e.path().extension() == ext) out.push_back(e.path());
    }
    std::sort(out.begin(), out.end(),
              [](const fs::path& a, const fs::path& b) { return FileNumber(a) < FileNumber(b); });
    return out;
  }

  // The SSTs of column family `cf`, oldest first.
  std::vector<fs::path> SstsOf(const std::string& cf) {
    std::vector<fs::path> out;
    for (const fs::path& p : Files(".sst")) {
      rocksdb::Options options;
      rocksdb::SstFileReader reader(options);
      rocksdb::Status s = reader.Open(p.string());
      EXPECT_TRUE(s.ok()) << s.ToString();
      if (s.ok() && reader.GetTableProperties()->column_family_name == cf) out.push_back(p);
    }
    return out;
  }

  std::string dir_;
  StoreOptions options_;
  std::shared_ptr<FaultFileSystem> fault_fs_;
  std::unique_ptr<Store> store_;
};

TEST_F(ReadFaultTest, FlippedByteInAnSstIsDataLossForItsRowsOnly) {
  CreateNs("a");
  CreateNs("b");
  Upsert("a", {"a1", "a2"});
  ASSERT_TRUE(store_->Checkpoint("").ok());  // a's vectors in their own SST
  Upsert("b", {"b1", "b2"});
  ASSERT_TRUE(store_->Checkpoint("").ok());  // b's in a newer one
  ASSERT_TRUE(store_->Close().ok());
  store_.reset();

  // The stored vectors: read on Get with vectors and on searches that ask
  // for them (the index itself loads from its snapshot).
  std::vector<fs::path> ssts = SstsOf("dense");
  ASSERT_EQ(ssts.size(), 2u);
  // Inside the first data block of the newer file (b's vectors).
  FlipByte(ssts.back(), 16);
  ASSERT_NO_FATAL_FAILURE(Open());

  absl::Status b = GetChunks("b", {"b1"});
  EXPECT_TRUE(absl::IsDataLoss(b)) << b;
  EXPECT_THAT(b.message(), HasSubstr("checksum"));
  absl::Status b_search = SearchWithPayload("b", "b2");
  EXPECT_TRUE(absl::IsDataLoss(b_search)) << b_search;
  // The rest serves: the other namespace, b's rows without vectors, b's
  // index, writes, even to the damaged namespace.
  EXPECT_TRUE(GetChunks("a", {"a1", "a2"}).ok());
  EXPECT_TRUE(SearchWithPayload("a", "a2").ok());
  auto rows = store_->Get("b", {"b1", "b2"}, {}, /*include_vectors=*/false);
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ(rows->chunks.size(), 2u);
  SearchOptions ids_only;
  ids_only.k = 1;
  auto hits = store_->Search("b", test::VectorFor("b2", kDim), ids_only);
  ASSERT_TRUE(hits.ok()) << hits.status();
  EXPECT_EQ((*hits)[0][0].id, "b2");
  Upsert("a", {"a3"});
  Upsert("b", {"b3"});
  EXPECT_TRUE(GetChunks("a", {"a3"}).ok());
  EXPECT_TRUE(GetChunks("b", {"b3"}).ok());
  auto stats = store_->Stats("");
  EXPECT_TRUE(stats.ok()) << stats.status();
}

// Open reads every chunk row and document row of each namespace (ids,
// filter attributes, counts). Damage there is found at once: the namespace
// whose rows are damaged is kept as damaged (DATA_LOSS on every call,
// naming the file and what to do), the other one serves reads and writes,
// and dropping the damaged one lets it be created again.
void ReadFaultTest::DamageTheSecondNamespace(const std::string& cf, bool drop_snapshots) {
  CreateNs("a");
  CreateNs("b");
  UpsertWithDocument("a", {"a1", "a2", "a3"});
  ASSERT_TRUE(store_->Checkpoint("").ok());  // a's rows in their own SSTs
  UpsertWithDocument("b", {"b1", "b2", "b3"});
  ASSERT_TRUE(store_->Checkpoint("").ok());  // b's in newer ones
  ASSERT_TRUE(store_->Close().ok());
  store_.reset();

  std::vector<fs::path> ssts = SstsOf(cf);
  ASSERT_EQ(ssts.size(), 2u);
  const std::string damaged_file = ssts.back().filename().string();
  FlipByte(ssts.back(), 16);  // in the first data block of b's file
  if (drop_snapshots) fs::remove_all(fs::path(dir_) / "indexes");
  ASSERT_NO_FATAL_FAILURE(Open());

  // b is listed as damaged, naming the file; a is not.
  auto list = store_->ListNamespaces();
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].config.name, "a");
  EXPECT_EQ((*list)[0].damage, "");
  EXPECT_EQ((*list)[0].chunk_count, 3u);
  EXPECT_EQ((*list)[1].config.name, "b");
  EXPECT_THAT((*list)[1].damage, HasSubstr(damaged_file));
  EXPECT_EQ((*list)[1].config.dim, static_cast<uint32_t>(kDim));
  auto info = store_->GetNamespace("b");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_THAT(info->damage, HasSubstr(damaged_file));
  auto stats = store_->Stats("b");
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ((*stats)[0].damage, info->damage);

  // Every call on b: DATA_LOSS naming the file and what to do.
  auto expect_damaged = [&](const absl::Status& st, const char* call) {
    EXPECT_TRUE(absl::IsDataLoss(st)) << call << ": " << st;
    EXPECT_THAT(st.message(), HasSubstr(damaged_file)) << call;
    EXPECT_THAT(st.message(), HasSubstr("backup")) << call;
    EXPECT_THAT(st.message(), HasSubstr("drop")) << call;
  };
  expect_damaged(GetChunks("b", {"b1"}), "Get");
  expect_damaged(SearchWithPayload("b", "b1"), "Search");
  Chunk c = MakeChunk("b4");
  expect_damaged(store_->Upsert("b", {}, {c}).status(), "Upsert");
  expect_damaged(store_->Delete("b", {"b1"}, {}).status(), "Delete");
  QuotaChange quota;
  quota.max_chunks = 10;
  expect_damaged(store_->SetNamespaceQuota("b", quota).status(), "SetNamespaceQuota");
  KvConfig kv;
  kv.model = TestModel();
  expect_damaged(store_->RegisterKvModel("b", kv).status(), "RegisterKvModel");
  expect_damaged(store_->Compact("b"), "Compact");

  // a serves reads and writes; maintenance of the whole store goes on.
  EXPECT_TRUE(GetChunks("a", {"a1", "a2", "a3"}).ok());
  EXPECT_TRUE(SearchWithPayload("a", "a2").ok());
  UpsertWithDocument("a", {"a4"});
  EXPECT_TRUE(GetChunks("a", {"a4"}).ok());
  EXPECT_TRUE(store_->Checkpoint("").ok());
  EXPECT_TRUE(store_->Compact("").ok());
  EXPECT_TRUE(GetChunks("a", {"a1", "a4"}).ok());

  // Dropping b clears the way: created again, it takes writes.
  ASSERT_TRUE(store_->DropNamespace("b").ok());
  CreateNs("b");
  UpsertWithDocument("b", {"b5"});
  EXPECT_TRUE(GetChunks("b", {"b5"}).ok());
  EXPECT_TRUE(SearchWithPayload("b", "b5").ok());

  // And both open healthy after a restart.
  ASSERT_NO_FATAL_FAILURE(Reopen());
  list = store_->ListNamespaces();
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].damage, "");
  EXPECT_EQ((*list)[1].damage, "");
  EXPECT_TRUE(GetChunks("a", {"a1", "a4"}).ok());
  EXPECT_TRUE(GetChunks("b", {"b5"}).ok());
  EXPECT_TRUE(absl::IsNotFound(GetChunks("b", {"b1"}))) << GetChunks("b", {"b1"});
}

TEST_F(ReadFaultTest, FlippedByteInAChunkSstDamagesOnlyItsNamespace) {
  DamageTheSecondNamespace("chunks");
}

TEST_F(ReadFaultTest, FlippedByteInADocumentSstDamagesOnlyItsNamespace) {
  DamageTheSecondNamespace("docs");
}

TEST_F(ReadFaultTest, FlippedByteInAVectorSstDamagesItsNamespaceWhenItsIndexIsRebuilt) {
  // Without a snapshot Open reads every stored vector; with one it reads
  // none, and the damage is found by the reads that touch it (the first
  // test above).
  DamageTheSecondNamespace("dense", /*drop_snapshots=*/true);
}

TEST_F(ReadFaultTest, FlippedByteInABlobFileIsDataLossForThatKvOnly) {
  ASSERT_NO_FATAL_FAILURE(SetUpKv());
  ASSERT_TRUE(PutKv("x", 1).ok());
  ASSERT_TRUE(store_->Checkpoint("").ok());  // x's blocks in their own blob file
  ASSERT_TRUE(PutKv("y", 2).ok());
  ASSERT_TRUE(store_->Checkpoint("").ok());
  ASSERT_TRUE(store_->Close().ok());
  store_.reset();

  std::vector<fs::path> blobs = Files(".blob");
  ASSERT_EQ(blobs.size(), 2u);
  // The middle of y's file: inside one of its blocks.
  FlipByte(blobs.back(), fs::file_size(blobs.back()) / 2);
  ASSERT_NO_FATAL_FAILURE(Open());

  absl::Status y = ReadKv("y", 2);
  EXPECT_TRUE(absl::IsDataLoss(y)) << y;
  EXPECT_TRUE(ReadKv("x", 1).ok());
  EXPECT_TRUE(GetChunks("kv", {"x", "y"}).ok());
  // y's KV can be written again and then reads back.
  ASSERT_TRUE(PutKv("y", 3).ok());
  EXPECT_TRUE(ReadKv("y", 3).ok());
}

TEST_F(ReadFaultTest, ShortSstReadIsDataLossUntilTheFaultClears) {
  CreateNs("a");
  Upsert("a", {"a1", "a2"});
  ASSERT_TRUE(store_->Checkpoint("").ok());
  ASSERT_NO_FATAL_FAILURE(Reopen());

  fault_fs_->Arm({.op = FaultOp::kShortRead, .kinds = test::kSstFile});
  absl::Status got = GetChunks("a", {"a1"});
  EXPECT_TRUE(absl::IsDataLoss(got)) << got;
  EXPECT_GT(fault_fs_->injected(), 0u);
  fault_fs_->Clear();
  // Nothing damaged on disk: the same read succeeds once reads are whole.
  EXPECT_TRUE(GetChunks("a", {"a1", "a2"}).ok());
}

TEST_F(ReadFaultTest, SstReadErrorIsUnavailableUntilTheFaultClears) {
  CreateNs("a");
  Upsert("a", {"a1", "a2"});
  ASSERT_TRUE(store_->Checkpoint("").ok());
  ASSERT_NO_FATAL_FAILURE(Reopen());

  fault_fs_->Arm({.op = FaultOp::kRead, .kinds = test::kSstFile});
  absl::Status got = GetChunks("a", {"a1"});
  EXPECT_TRUE(absl::IsUnavailable(got)) << got;
  absl::Status searched = SearchWithPayload("a", "a2");
  EXPECT_TRUE(absl::IsUnavailable(searched)) << searched;
  fault_fs_->Clear();
  EXPECT_TRUE(GetChunks("a", {"a1", "a2"}).ok());
  EXPECT_TRUE(SearchWithPayload("a", "a2").ok());
}

TEST_F(ReadFaultTest, BlobReadErrorIsUnavailableAndOtherReadsServe) {
  ASSERT_NO_FATAL_FAILURE(SetUpKv());
  ASSERT_TRUE(PutKv("x", 1).ok());
  ASSERT_TRUE(store_->Checkpoint("").ok());
  ASSERT_NO_FATAL_FAILURE(Reopen());

  fault_fs_->Arm({.op = FaultOp::kRead, .kinds = test::kBlobFile});
  absl::Status x = ReadKv("x", 1);
  EXPECT_TRUE(absl::IsUnavailable(x)) << x;
  EXPECT_GT(fault_fs_->injected(), 0u);
  // The chunk rows are not in blob files.
  EXPECT_TRUE(GetChunks("kv", {"x", "y"}).ok());
  fault_fs_->Clear();
  EXPECT_TRUE(ReadKv("x", 1).ok());
}

}  // namespace
}  // namespace mnemo::db
