// Chunk KV caches in db::Store (db/kv.h): puts and reads per codec, lineage,
// position-free keys, deletes and drops in the chunk's commit, capacity and
// eviction, pins, TTL, prefix lookup, recovery and corrupt blocks.
#include <cmath>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "attention/rope.h"
#include "common/status_macros.h"
#include "db/kv_records.h"
#include "db/store.h"
#include "db/store_testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "tests/db/test_util.h"

namespace mnemo::db {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr int kDim = 8;
constexpr int kLayers = 3;
constexpr int kKvHeads = 2;
constexpr int kHeadDim = 8;

ModelFingerprint TestModel() { return test::SmallKvModel(kLayers, kKvHeads, kHeadDim); }

// K and V of one chunk: per layer [kv_heads, tokens, head_dim].
struct ChunkKv {
  std::vector<int32_t> tokens;
  std::vector<std::vector<float>> k, v;
};

ChunkKv RandomKv(int tokens, uint32_t seed, int first_token = 1) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  ChunkKv kv;
  for (int t = 0; t < tokens; ++t) kv.tokens.push_back(first_token + t);
  const size_t n = static_cast<size_t>(kKvHeads) * tokens * kHeadDim;
  for (int l = 0; l < kLayers; ++l) {
    std::vector<float> k(n), v(n);
    for (float& x : k) x = normal(rng);
    for (float& x : v) x = normal(rng);
    kv.k.push_back(std::move(k));
    kv.v.push_back(std::move(v));
  }
  return kv;
}

double RelativeError(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += a[i] * a[i];
  }
  return std::sqrt(num / den);
}

class KvStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::MakeTempDir("kv");
    options_.snapshot_every_ops = 0;
    Open();
    NamespaceConfig config;
    config.name = "ns";
    config.dim = kDim;
    ASSERT_TRUE(store_->CreateNamespace(config).ok());
    for (int i = 0; i < 8; ++i) UpsertChunk(absl::StrCat("c", i));
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
    ASSERT_TRUE(testing::SetKvClockForTesting(store_.get(), [this] { return now_ms_; }).ok());
  }

  void Reopen() {
    ASSERT_TRUE(store_->Close().ok());
    store_.reset();
    Open();
  }

  void UpsertChunk(const std::string& id) {
    Chunk c;
    c.id = id;
    c.text = absl::StrCat("text of ", id);
    c.vector = test::VectorFor(id, kDim);
    ASSERT_TRUE(store_->Upsert("ns", {}, {c}).ok());
  }

  absl::StatusOr<KvStats> Register(KvCodecKind kind = KvCodecKind::kFp16,
                                   uint64_t capacity = 0, std::string policy = "") {
    KvConfig config;
    config.model = TestModel();
    config.codec.kind = kind;
    config.capacity_bytes = capacity;
    config.eviction_policy = std::move(policy);
    return store_->RegisterKvModel("ns", config);
  }

  absl::StatusOr<KvPutResult> Put(const std::string& id, const ChunkKv& kv, bool pin = false,
                                  int64_t ttl = 0, std::optional<int64_t> keys_position = {}) {
    KvPutHeader header;
    header.chunk_id = id;
    header.model = TestModel();
    header.tokens = kv.tokens;
    header.pin = pin;
    header.ttl_seconds = ttl;
    header.keys_position = keys_position;
    auto writer = store_->BeginPutKv("ns", header);
    if (!writer.ok()) return writer.status();
    const KvTensorShape shape{kKvHeads, static_cast<uint32_t>(kv.tokens.size()), kHeadDim};
    for (int l = 0; l < kLayers; ++l) {
      absl::Status st = (*writer)->AddLayer(l, shape, kv.k[l], kv.v[l]);
      if (!st.ok()) return st;
    }
    return (*writer)->Commit();
  }

  absl::StatusOr<std::vector<KvBlock>> Read(std::vector<std::string> ids,
                                            std::vector<int64_t> positions = {},
                                            uint32_t begin = 0, uint32_t end = 0) {
    KvReadOptions options;
    options.chunk_ids = std::move(ids);
    options.model = TestModel();
    options.positions = std::move(positions);
    options.layer_begin = begin;
    options.layer_end = end;
    auto reader = store_->ReadKv("ns", options);
    if (!reader.ok()) return reader.status();
    std::vector<KvBlock> blocks;
    while (true) {
      KvBlock block;
      auto more = (*reader)->Next(&block);
      if (!more.ok()) return more.status();
      if (!*more) break;
      blocks.push_back(std::move(block));
    }
    return blocks;
  }

  uint32_t Exists(const std::string& id) {
    auto e = store_->ExistsKv("ns", {id}, TestModel());
    EXPECT_TRUE(e.ok()) << e.status();
    return e.ok() ? (*e)[0] : 0;
  }

  std::string dir_;
  StoreOptions options_;
  std::unique_ptr<Store> store_;
  int64_t now_ms_ = 1'000'000;
};

TEST_F(KvStoreTest, EveryCallNeedsARegisteredModel) {
  EXPECT_TRUE(absl::IsFailedPrecondition(Put("c0", RandomKv(4, 1)).status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(Read({"c0"}).status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(store_->GetKvStats("ns").status()));
  EXPECT_TRUE(absl::IsNotFound(store_->GetKvStats("nope").status()));
}

TEST_F(KvStoreTest, RegisterValidatesTheConfig) {
  KvConfig config;
  config.model = TestModel();
  config.model.n_kv_heads = 3;  // does not divide 4 heads
  EXPECT_TRUE(absl::IsInvalidArgument(store_->RegisterKvModel("ns", config).status()));
  config.model = TestModel();
  config.model.head_dim = 7;
  EXPECT_TRUE(absl::IsInvalidArgument(store_->RegisterKvModel("ns", config).status()));
  config.model = TestModel();
  config.eviction_policy = "random";
  EXPECT_TRUE(absl::IsInvalidArgument(store_->RegisterKvModel("ns", config).status()));
  config.eviction_policy = "";
  config.codec.group_size = 0;
  config.codec.kind = KvCodecKind::kInt4;
  EXPECT_TRUE(absl::IsInvalidArgument(store_->RegisterKvModel("ns", config).status()));
  KvConfig unknown;
  unknown.model = TestModel();
  EXPECT_TRUE(absl::IsNotFound(store_->RegisterKvModel("nope", unknown).status()));
}

TEST_F(KvStoreTest, PutThenReadEveryLayerLayerMajor) {
  ASSERT_TRUE(Register().ok());
  const ChunkKv a = RandomKv(5, 1), b = RandomKv(7, 2);
  auto put = Put("c0", a);
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(put->key_error.size(), static_cast<size_t>(kLayers));
  EXPECT_GT(put->stored_bytes, 0u);
  ASSERT_TRUE(Put("c1", b).ok());

  auto blocks = Read({"c1", "c0"});
  ASSERT_TRUE(blocks.ok()) << blocks.status();
  ASSERT_EQ(blocks->size(), static_cast<size_t>(2 * kLayers));
  for (size_t i = 0; i < blocks->size(); ++i) {
    const KvBlock& blk = (*blocks)[i];
    EXPECT_EQ(blk.layer, i / 2);
    EXPECT_EQ(blk.chunk_index, i % 2);
    const ChunkKv& want = blk.chunk_index == 0 ? b : a;
    EXPECT_EQ(blk.chunk_id, blk.chunk_index == 0 ? "c1" : "c0");
    EXPECT_EQ(blk.shape.tokens, want.tokens.size());
    EXPECT_LT(RelativeError(want.k[blk.layer], blk.k), 1e-3);
    EXPECT_LT(RelativeError(want.v[blk.layer], blk.v), 1e-3);
    EXPECT_EQ(blk.position, -1);
    // Tokens ride on each chunk's first block only.
    if (blk.layer == 0) {
      EXPECT_EQ(blk.tokens, want.tokens);
    } else {
      EXPECT_TRUE(blk.tokens.empty());
    }
  }
  auto range = Read({"c0"}, {}, 1, 3);
  ASSERT_TRUE(range.ok()) << range.status();
  ASSERT_EQ(range->size(), 2u);
  EXPECT_EQ((*range)[0].layer, 1u);
  EXPECT_EQ((*range)[0].tokens, a.tokens);
  EXPECT_TRUE(absl::IsInvalidArgument(Read({"c0"}, {}, 2, 2).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(Read({"c0"}, {}, 0, kLayers + 1).status()));
}

class KvCodecStoreTest : public KvStoreTest,
                         public ::testing::WithParamInterface<std::pair<KvCodecKind, double>> {};

TEST_P(KvCodecStoreTest, RoundTripWithinTheCodecsError) {
  const auto [kind, bound] = GetParam();
  ASSERT_TRUE(Register(kind).ok());
  const ChunkKv kv = RandomKv(40, 3);
  auto put = Put("c0", kv);
  ASSERT_TRUE(put.ok()) << put.status();
  auto blocks = Read({"c0"});
  ASSERT_TRUE(blocks.ok()) << blocks.status();
  for (const KvBlock& blk : *blocks) {
    const double ek = RelativeError(kv.k[blk.layer], blk.k);
    const double ev = RelativeError(kv.v[blk.layer], blk.v);
    EXPECT_LE(ek, bound);
    EXPECT_LE(ev, bound);
    // The error stored at encode time is the error the read sees.
    EXPECT_NEAR(blk.key_error, ek, 1e-6 + ek * 1e-3);
    EXPECT_NEAR(blk.value_error, ev, 1e-6 + ev * 1e-3);
    EXPECT_NEAR(put->key_error[blk.layer], ek, 1e-6 + ek * 1e-3);
  }
  auto stats = store_->GetKvStats("ns");
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->chunks, 1u);
  EXPECT_EQ(stats->blocks, static_cast<uint64_t>(kLayers));
  EXPECT_EQ(stats->tokens, 40u);
  EXPECT_EQ(stats->fp16_bytes, static_cast<uint64_t>(kLayers) * 2 * 2 * kKvHeads * 40 * kHeadDim);
  EXPECT_EQ(stats->stored_bytes, put->stored_bytes);
}

INSTANTIATE_TEST_SUITE_P(
    Codecs, KvCodecStoreTest,
    ::testing::Values(std::pair{KvCodecKind::kFp32, 0.0}, std::pair{KvCodecKind::kFp16, 1e-3},
                      std::pair{KvCodecKind::kBf16, 8e-3}, std::pair{KvCodecKind::kInt8, 2e-2},
                      std::pair{KvCodecKind::kInt4, 0.2}, std::pair{KvCodecKind::kKvq, 0.25}),
    [](const auto& info) { return std::string(KvCodecName(info.param.first)); });

TEST_F(KvStoreTest, PositionsRotateStoredPreRopeKeysExactly) {
  ASSERT_TRUE(Register(KvCodecKind::kFp32).ok());
  const ChunkKv a = RandomKv(6, 4), b = RandomKv(9, 5);
  ASSERT_TRUE(Put("c0", a).ok());
  ASSERT_TRUE(Put("c1", b).ok());
  auto blocks = Read({"c0", "c1"}, {0, 6});
  ASSERT_TRUE(blocks.ok()) << blocks.status();
  for (const KvBlock& blk : *blocks) {
    const ChunkKv& src = blk.chunk_index == 0 ? a : b;
    const int64_t position = blk.chunk_index == 0 ? 0 : 6;
    std::vector<float> want = src.k[blk.layer];
    ASSERT_TRUE(attention::RotateKeys(want.data(), kKvHeads, static_cast<int>(src.tokens.size()),
                                      kHeadDim, 10000.0, position)
                    .ok());
    EXPECT_EQ(blk.position, position);
    EXPECT_EQ(blk.k, want);          // bit for bit with the fp32 codec
    EXPECT_EQ(blk.v, src.v[blk.layer]);  // values carry no position
  }
  EXPECT_TRUE(absl::IsInvalidArgument(Read({"c0", "c1"}, {0}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(Read({"c0"}, {-1}).status()));
}

TEST_F(KvStoreTest, RotatedKeysArePutBackBeforeRope) {
  ASSERT_TRUE(Register(KvCodecKind::kFp32).ok());
  const ChunkKv kv = RandomKv(5, 6);
  ChunkKv rotated = kv;
  for (auto& k : rotated.k) {
    ASSERT_TRUE(attention::RotateKeys(k.data(), kKvHeads, 5, kHeadDim, 10000.0, 300).ok());
  }
  ASSERT_TRUE(Put("c0", rotated, false, 0, 300).ok());
  auto blocks = Read({"c0"});
  ASSERT_TRUE(blocks.ok());
  for (const KvBlock& blk : *blocks) {
    for (size_t i = 0; i < blk.k.size(); ++i) EXPECT_NEAR(blk.k[i], kv.k[blk.layer][i], 1e-4);
  }
}

TEST_F(KvStoreTest, AnotherModelIsRefusedNamingTheField) {
  ASSERT_TRUE(Register().ok());
  ASSERT_TRUE(Put("c0", RandomKv(4, 1)).ok());
  KvPutHeader header;
  header.chunk_id = "c1";
  header.model = TestModel();
  header.model.n_kv_heads = 4;
  header.tokens = {1, 2};
  auto writer = store_->BeginPutKv("ns", header);
  ASSERT_TRUE(absl::IsFailedPrecondition(writer.status()));
  EXPECT_THAT(writer.status().message(), HasSubstr("n_kv_heads: expected 2, got 4"));

  KvReadOptions read;
  read.chunk_ids = {"c0"};
  read.model = TestModel();
  read.model.tokenizer_sha256 = "beef";
  auto reader = store_->ReadKv("ns", read);
  ASSERT_TRUE(absl::IsFailedPrecondition(reader.status()));
  EXPECT_THAT(reader.status().message(), HasSubstr("tokenizer_sha256"));

  // Re-registering another model is refused while KV is held...
  KvConfig other;
  other.model = TestModel();
  other.model.rope_theta = 500000;
  auto re = store_->RegisterKvModel("ns", other);
  ASSERT_TRUE(absl::IsFailedPrecondition(re.status()));
  EXPECT_THAT(re.status().message(), HasSubstr("rope_theta"));
  // ... and allowed once it is gone; the same model may change its codec.
  ASSERT_TRUE(Register(KvCodecKind::kInt8).ok());
  EXPECT_EQ(Exists("c0"), 4u);
  ASSERT_TRUE(store_->DeleteKv("ns", {"c0"}).ok());
  EXPECT_TRUE(store_->RegisterKvModel("ns", other).ok());
}

TEST_F(KvStoreTest, BadLayersAreRefusedAndNothingIsStored) {
  ASSERT_TRUE(Register().ok());
  const ChunkKv kv = RandomKv(4, 7);
  KvPutHeader header;
  header.chunk_id = "c0";
  header.model = TestModel();
  header.tokens = kv.tokens;
  const KvTensorShape shape{kKvHeads, 4, kHeadDim};
  {
    auto w = store_->BeginPutKv("ns", header);
    ASSERT_TRUE(w.ok());
    EXPECT_TRUE(absl::IsInvalidArgument((*w)->AddLayer(1, shape, kv.k[1], kv.v[1])));  // order
    ASSERT_TRUE((*w)->AddLayer(0, shape, kv.k[0], kv.v[0]).ok());
    EXPECT_TRUE(absl::IsInvalidArgument(
        (*w)->AddLayer(1, {kKvHeads, 4, kHeadDim / 2}, kv.k[1], kv.v[1])));  // head dim
    EXPECT_TRUE(absl::IsInvalidArgument(
        (*w)->AddLayer(1, {kKvHeads, 3, kHeadDim}, kv.k[1], kv.v[1])));  // tokens
    std::vector<float> nan = kv.k[1];
    nan[5] = std::nanf("");
    auto st = (*w)->AddLayer(1, shape, nan, kv.v[1]);
    EXPECT_TRUE(absl::IsInvalidArgument(st));
    EXPECT_THAT(st.message(), HasSubstr("element 5"));
    std::vector<float> inf = kv.v[1];
    inf[0] = INFINITY;
    EXPECT_TRUE(absl::IsInvalidArgument((*w)->AddLayer(1, shape, kv.k[1], inf)));
    std::vector<float> short_k(kv.k[1].begin(), kv.k[1].end() - 1);
    EXPECT_TRUE(absl::IsInvalidArgument((*w)->AddLayer(1, shape, short_k, kv.v[1])));
    // Ending after one of three layers stores nothing.
    auto commit = (*w)->Commit();
    EXPECT_TRUE(absl::IsInvalidArgument(commit.status()));
    EXPECT_THAT(commit.status().message(), HasSubstr("1 of 3 layers"));
  }
  {
    // A put abandoned midway (a broken stream) stores nothing either.
    auto w = store_->BeginPutKv("ns", header);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->AddLayer(0, shape, kv.k[0], kv.v[0]).ok());
  }
  EXPECT_EQ(Exists("c0"), 0u);
  EXPECT_EQ(store_->GetKvStats("ns")->chunks, 0u);

  header.tokens = {};
  EXPECT_TRUE(absl::IsInvalidArgument(store_->BeginPutKv("ns", header).status()));
  header.tokens = {1, -2};
  EXPECT_TRUE(absl::IsInvalidArgument(store_->BeginPutKv("ns", header).status()));
  header.tokens = {1};
  header.ttl_seconds = -1;
  EXPECT_TRUE(absl::IsInvalidArgument(store_->BeginPutKv("ns", header).status()));
  header.ttl_seconds = 0;
  header.chunk_id = "no-such-chunk";
  EXPECT_TRUE(absl::IsNotFound(store_->BeginPutKv("ns", header).status()));
  EXPECT_TRUE(absl::IsNotFound(Read({"no-such-chunk"}).status()));
  EXPECT_TRUE(absl::IsNotFound(Read({"c1"}).status()));  // a chunk without KV
}

TEST_F(KvStoreTest, ChunkDeleteReplaceAndDropTakeTheKvAlong) {
  ASSERT_TRUE(Register().ok());
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(Put(absl::StrCat("c", i), RandomKv(4, i)).ok());
  ASSERT_TRUE(store_->Delete("ns", {"c0"}, {}).ok());
  EXPECT_EQ(Exists("c0"), 0u);
  UpsertChunk("c0");  // the id again: a new chunk without KV
  EXPECT_EQ(Exists("c0"), 0u);
  UpsertChunk("c1");  // replacing a chunk drops its (now stale) KV
  EXPECT_EQ(Exists("c1"), 0u);
  // DeleteKv keeps the chunk's text and vector.
  auto deleted = store_->DeleteKv("ns", {"c2", "c2", "unknown"});
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(*deleted, 1u);
  auto got = store_->Get("ns", {"c2"}, {}, true);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->chunks.size(), 1u);
  EXPECT_EQ(Exists("c3"), 4u);
  EXPECT_EQ(store_->GetKvStats("ns")->chunks, 1u);

  // After a drop the rows are gone from the kv CF, not only hidden.
  ASSERT_TRUE(store_->DropNamespace("ns").ok());
  ASSERT_TRUE(store_->Close().ok());
  store_.reset();
  rocksdb::DB* raw = nullptr;
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  std::vector<std::string> names;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir_, &names).ok());
  for (const auto& n : names) cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  ASSERT_TRUE(rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), dir_, cfs, &handles, &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] != kvrecords::kKvCf) continue;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), handles[i]));
    it->SeekToFirst();
    EXPECT_FALSE(it->Valid()) << "kv CF still holds rows after the drop";
  }
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
}

TEST_F(KvStoreTest, KvSurvivesReopen) {
  ASSERT_TRUE(Register(KvCodecKind::kInt8, 0, "fifo").ok());
  const ChunkKv kv = RandomKv(12, 9);
  ASSERT_TRUE(Put("c0", kv, /*pin=*/true).ok());
  auto before = Read({"c0"});
  ASSERT_TRUE(before.ok());
  Reopen();
  auto stats = store_->GetKvStats("ns");
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->config.codec.kind, KvCodecKind::kInt8);
  EXPECT_EQ(stats->config.eviction_policy, "fifo");
  EXPECT_EQ(stats->chunks, 1u);
  EXPECT_EQ(stats->pinned_chunks, 1u);
  auto after = Read({"c0"});
  ASSERT_TRUE(after.ok()) << after.status();
  ASSERT_EQ(after->size(), before->size());
  for (size_t i = 0; i < after->size(); ++i) {
    EXPECT_EQ((*after)[i].k, (*before)[i].k);
    EXPECT_EQ((*after)[i].v, (*before)[i].v);
  }
}

TEST_F(KvStoreTest, LruEvictsTheLeastRecentlyUsedUnpinnedChunk) {
  ASSERT_TRUE(Register().ok());
  auto first = Put("c0", RandomKv(8, 1));
  ASSERT_TRUE(first.ok());
  const uint64_t one = first->stored_bytes;
  // Room for three such chunks.
  ASSERT_TRUE(Register(KvCodecKind::kFp16, 3 * one + one / 2).ok());
  ASSERT_TRUE(Put("c1", RandomKv(8, 2)).ok());
  ASSERT_TRUE(Put("c2", RandomKv(8, 3)).ok());
  ASSERT_TRUE(Read({"c0"}).ok());  // c0 is now the most recently used
  auto put = Put("c3", RandomKv(8, 4));
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(put->evicted_chunks, 1u);
  EXPECT_EQ(Exists("c1"), 0u);  // least recently used
  EXPECT_EQ(Exists("c0"), 8u);
  // Evicted reads as missing, never corrupt; the chunk itself stays.
  auto missing = Read({"c1"});
  EXPECT_TRUE(absl::IsNotFound(missing.status())) << missing.status();
  EXPECT_THAT(missing.status().message(), HasSubstr("evicted"));
  EXPECT_EQ(store_->Get("ns", {"c1"}, {}, false)->chunks.size(), 1u);
  auto stats = store_->GetKvStats("ns");
  EXPECT_EQ(stats->evicted_chunks, 1u);
  EXPECT_LE(stats->stored_bytes, 3 * one + one / 2);

  // Pinned chunks stay; when only pinned KV is left the put fails whole.
  ASSERT_TRUE(store_->SetKvRetention("ns", {"c0", "c2", "c3"}, true, std::nullopt).ok());
  auto refused = Put("c4", RandomKv(8, 5));
  EXPECT_TRUE(absl::IsResourceExhausted(refused.status())) << refused.status();
  EXPECT_EQ(Exists("c4"), 0u);
  EXPECT_EQ(store_->GetKvStats("ns")->chunks, 3u);
  ASSERT_TRUE(store_->SetKvRetention("ns", {"c2"}, false, std::nullopt).ok());
  ASSERT_TRUE(Put("c4", RandomKv(8, 5)).ok());
  EXPECT_EQ(Exists("c2"), 0u);
  EXPECT_EQ(Exists("c0"), 8u);
  // A chunk larger than the whole budget is refused outright.
  EXPECT_TRUE(absl::IsResourceExhausted(Put("c5", RandomKv(40, 6)).status()));
}

TEST_F(KvStoreTest, FifoIgnoresReads) {
  ASSERT_TRUE(Register().ok());
  auto first = Put("c0", RandomKv(8, 1));
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(Register(KvCodecKind::kFp16, 2 * first->stored_bytes + 16, "fifo").ok());
  ASSERT_TRUE(Put("c1", RandomKv(8, 2)).ok());
  ASSERT_TRUE(Read({"c0"}).ok());
  ASSERT_TRUE(Put("c2", RandomKv(8, 3)).ok());
  EXPECT_EQ(Exists("c0"), 0u);  // oldest put, although read last
  EXPECT_EQ(Exists("c1"), 8u);
}

TEST_F(KvStoreTest, ExpiredKvReadsAsMissingAndIsRemovedByTheNextPut) {
  ASSERT_TRUE(Register().ok());
  ASSERT_TRUE(Put("c0", RandomKv(4, 1), false, /*ttl=*/10).ok());
  ASSERT_TRUE(Put("c1", RandomKv(4, 2)).ok());
  now_ms_ += 9'999;
  EXPECT_EQ(Exists("c0"), 4u);
  now_ms_ += 1;
  EXPECT_EQ(Exists("c0"), 0u);
  EXPECT_TRUE(absl::IsNotFound(Read({"c0"}).status()));
  EXPECT_EQ(store_->GetKvStats("ns")->chunks, 1u);
  ASSERT_TRUE(Put("c2", RandomKv(4, 3)).ok());
  auto stats = store_->GetKvStats("ns");
  EXPECT_EQ(stats->expired_chunks, 1u);
  EXPECT_EQ(stats->chunks, 2u);
  // A TTL set later; 0 clears it.
  ASSERT_EQ(*store_->SetKvRetention("ns", {"c1"}, std::nullopt, 5), 1u);
  now_ms_ += 4'000;
  ASSERT_EQ(*store_->SetKvRetention("ns", {"c1"}, std::nullopt, 0), 1u);
  now_ms_ += 100'000;
  EXPECT_EQ(Exists("c1"), 4u);
  // Namespace default TTL.
  KvConfig config;
  config.model = TestModel();
  config.default_ttl_seconds = 1;
  ASSERT_TRUE(store_->RegisterKvModel("ns", config).ok());
  ASSERT_TRUE(Put("c3", RandomKv(4, 4)).ok());
  now_ms_ += 1'000;
  EXPECT_EQ(Exists("c3"), 0u);
  EXPECT_TRUE(absl::IsInvalidArgument(
      store_->SetKvRetention("ns", {"c1"}, std::nullopt, -5).status()));
  // Compaction removes expired KV too.
  ASSERT_TRUE(Put("c4", RandomKv(4, 5), false, /*ttl=*/1).ok());
  now_ms_ += 1'000;
  const uint64_t expired_before = store_->GetKvStats("ns")->expired_chunks;
  ASSERT_TRUE(store_->Compact("ns").ok());
  EXPECT_EQ(store_->GetKvStats("ns")->expired_chunks, expired_before + 1);
}

TEST_F(KvStoreTest, LookupPrefixChainsChunksByTheirTokens) {
  ASSERT_TRUE(Register().ok());
  ASSERT_TRUE(Put("c0", RandomKv(4, 1, /*first_token=*/10)).ok());   // 10..13
  ASSERT_TRUE(Put("c1", RandomKv(3, 2, /*first_token=*/14)).ok());   // 14..16
  ASSERT_TRUE(Put("c2", RandomKv(6, 3, /*first_token=*/10)).ok());   // 10..15
  ASSERT_TRUE(Put("c3", RandomKv(2, 4, /*first_token=*/16)).ok());   // 16..17
  std::vector<int32_t> query = {10, 11, 12, 13, 14, 15, 16, 17, 99};
  auto m = store_->LookupPrefix("ns", TestModel(), query);
  ASSERT_TRUE(m.ok()) << m.status();
  // Longest first: c2 (6 tokens) then c3; c0 + c1 would stop at 16.
  EXPECT_EQ(m->chunk_ids, (std::vector<std::string>{"c2", "c3"}));
  EXPECT_EQ(m->chunk_tokens, (std::vector<uint32_t>{6, 2}));
  EXPECT_EQ(m->matched_tokens, 8u);
  query = {10, 11, 12, 13, 14, 15, 7};
  m = store_->LookupPrefix("ns", TestModel(), query);
  EXPECT_EQ(m->chunk_ids, (std::vector<std::string>{"c2"}));
  query = {11, 12};
  m = store_->LookupPrefix("ns", TestModel(), query);
  EXPECT_EQ(m->matched_tokens, 0u);
  ASSERT_TRUE(store_->DeleteKv("ns", {"c2"}).ok());
  query = {10, 11, 12, 13, 14, 15, 16, 17};
  m = store_->LookupPrefix("ns", TestModel(), query);
  EXPECT_EQ(m->chunk_ids, (std::vector<std::string>{"c0", "c1"}));
  EXPECT_EQ(m->matched_tokens, 7u);
  ModelFingerprint other = TestModel();
  other.dim = 64;
  EXPECT_TRUE(absl::IsFailedPrecondition(store_->LookupPrefix("ns", other, query).status()));
}

// Garbage under a block key is DATA_LOSS on read, never a crash, and the
// store still opens and serves the other chunks.
TEST_F(KvStoreTest, CorruptBlockIsDataLoss) {
  ASSERT_TRUE(Register().ok());
  ASSERT_TRUE(Put("c0", RandomKv(4, 1)).ok());
  ASSERT_TRUE(Put("c1", RandomKv(4, 2)).ok());
  ASSERT_TRUE(store_->Close().ok());
  store_.reset();
  {
    rocksdb::DB* raw = nullptr;
    std::vector<std::string> names;
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir_, &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    for (const auto& n : names) cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), dir_, cfs, &handles, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    rocksdb::ColumnFamilyHandle* kv = nullptr;
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == kvrecords::kKvCf) kv = handles[i];
    }
    ASSERT_NE(kv, nullptr);
    // Find c0's block of layer 1 (internal ids start at 1 in a fresh ns).
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), kv));
    int seen = 0;
    std::string target;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (it->key().size() == 4 + 1 + 8 + 2 && it->key()[4] == 'b' && ++seen == 2) {
        target = it->key().ToString();
        break;
      }
    }
    ASSERT_FALSE(target.empty());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), kv, target, "garbage bytes").ok());
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  }
  Open();
  auto read = Read({"c0"});
  EXPECT_TRUE(absl::IsDataLoss(read.status())) << read.status();
  EXPECT_TRUE(Read({"c1"}).ok());
  EXPECT_TRUE(Read({"c0"}, {}, 0, 1).ok());  // layer 0 is intact
}


// A KvReader or KvChunkWriter that outlives Store::Close (or the Store) is
// a caller error (db/store.h): debug builds abort saying so; every build
// answers FAILED_PRECONDITION "store closed" instead of touching the freed
// DB, and destroying the object afterwards is safe.
absl::Status UseAfterClose(KvReader* reader) {
  KvBlock block;
  return reader->Next(&block).status();
}

TEST_F(KvStoreTest, ReaderAndWriterUsedAfterCloseGetStoreClosed) {
  ASSERT_TRUE(Register().ok());
  const ChunkKv kv = RandomKv(6, 4);
  ASSERT_TRUE(Put("c0", kv).ok());
  KvReadOptions options;
  options.chunk_ids = {"c0"};
  options.model = TestModel();
  options.as_bytes = KvDtype::kFp16;  // the block stays pinned in the reader
  auto closed_reader = store_->ReadKv("ns", options);
  ASSERT_TRUE(closed_reader.ok()) << closed_reader.status();
  KvBlock block;
  auto more = (*closed_reader)->Next(&block);
  ASSERT_TRUE(more.ok()) << more.status();
  ASSERT_TRUE(*more);

  KvPutHeader header;
  header.chunk_id = "c1";
  header.model = TestModel();
  header.tokens = kv.tokens;
  auto writer = store_->BeginPutKv("ns", header);
  ASSERT_TRUE(writer.ok()) << writer.status();
  const KvTensorShape shape{kKvHeads, static_cast<uint32_t>(kv.tokens.size()), kHeadDim};
  for (int l = 0; l < kLayers; ++l) {
    ASSERT_TRUE((*writer)->AddLayer(l, shape, kv.k[l], kv.v[l]).ok());
  }

  // Close with both alive, then destroy the store: they outlive it.
  ASSERT_TRUE(store_->Close().ok());
#ifdef NDEBUG
  absl::Status read = UseAfterClose(closed_reader->get());
  EXPECT_TRUE(absl::IsFailedPrecondition(read)) << read;
  EXPECT_THAT(read.message(), HasSubstr("store closed"));
  store_.reset();
  read = UseAfterClose(closed_reader->get());
  EXPECT_TRUE(absl::IsFailedPrecondition(read)) << read;
  absl::Status commit = (*writer)->Commit().status();
  EXPECT_TRUE(absl::IsFailedPrecondition(commit)) << commit;
  EXPECT_THAT(commit.message(), HasSubstr("store closed"));
#else
  EXPECT_DEATH(IgnoreError(UseAfterClose(closed_reader->get())), "store closed");
  store_.reset();
#endif
  closed_reader->reset();
  writer->reset();

  // The data directory is intact and opens again.
  Open();
  auto blocks = Read({"c0"});
  ASSERT_TRUE(blocks.ok()) << blocks.status();
  EXPECT_EQ(blocks->size(), static_cast<size_t>(kLayers));
  EXPECT_EQ(Exists("c1"), 0u);
}

}  // namespace
}  // namespace mnemo::db
