// Retrieval attention over stored chunk KV (db/kv_context.h): key indexes
// built at put and committed with the blocks, pushdown equal to full
// attention over the stored KV at the whole budget, top-k fetches at
// absolute positions, indexes that go with their chunk, corrupt indexes,
// and bad input.
#include <cmath>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "attention/partial.h"
#include "attention/rope.h"
#include "db/kv_context.h"
#include "db/kv_records.h"
#include "db/store.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "tests/db/test_util.h"

namespace mnemo::db {
namespace {

namespace fs = std::filesystem;

constexpr int kLayers = 3, kHeads = 4, kKvHeads = 2, kHeadDim = 16;

ModelFingerprint Model() {
  ModelFingerprint m;
  m.architecture = "llama";
  m.n_layers = kLayers;
  m.n_heads = kHeads;
  m.n_kv_heads = kKvHeads;
  m.head_dim = kHeadDim;
  m.dim = 64;
  m.rope_theta = 10000.0;
  m.rope_style = "half";
  m.dtype = "float32";
  m.tokenizer_sha256 = "00ff";
  return m;
}

std::vector<float> Random(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  std::vector<float> x(n);
  for (float& v : x) v = gauss(rng);
  return x;
}

// Runs `fn` on the kv column family of the closed store at `dir`, opened
// directly (read-only unless `writable`).
void WithKvColumnFamily(const std::string& dir, bool writable,
                        const std::function<void(rocksdb::DB*, rocksdb::ColumnFamilyHandle*)>& fn) {
  std::vector<std::string> names;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (const auto& n : names) cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  const rocksdb::Status opened =
      writable ? rocksdb::DB::Open(rocksdb::DBOptions(), dir, cfs, &handles, &raw)
               : rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), dir, cfs, &handles, &raw);
  ASSERT_TRUE(opened.ok()) << opened.ToString();
  std::unique_ptr<rocksdb::DB> db(raw);
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == kvrecords::kKvCf) fn(db.get(), handles[i]);
  }
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
}

// Keys of the rows in `cf` with 'k' after the namespace id (key indexes).
std::vector<std::string> KeyIndexRows(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf) {
  std::vector<std::string> rows;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), cf));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (it->key().size() > 4 && it->key()[4] == 'k') rows.push_back(it->key().ToString());
  }
  return rows;
}

class KvContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::MakeTempDir("kvctx");
    auto store = Store::Open(StoreOptions{}, dir_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    NamespaceConfig config;
    config.name = "ns";
    config.dim = 4;
    ASSERT_TRUE(store_->CreateNamespace(config).ok());
    for (const char* id : {"a", "b", "c", "d"}) {
      Chunk c;
      c.id = id;
      c.text = id;
      c.vector = test::VectorFor(id, 4);
      ASSERT_TRUE(store_->Upsert("ns", {}, {c}).ok());
    }
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void Register(uint32_t keys_per_cluster = 4) {
    KvConfig config;
    config.model = Model();
    config.codec.kind = KvCodecKind::kFp32;
    config.key_index_keys_per_cluster = keys_per_cluster;
    ASSERT_TRUE(store_->RegisterKvModel("ns", config).ok());
  }

  absl::StatusOr<KvPutResult> Put(const std::string& id, int tokens, unsigned seed) {
    KvPutHeader header;
    header.chunk_id = id;
    header.model = Model();
    for (int t = 0; t < tokens; ++t) header.tokens.push_back(t + 3);
    auto writer = store_->BeginPutKv("ns", header);
    if (!writer.ok()) return writer.status();
    const size_t n = size_t(kKvHeads) * tokens * kHeadDim;
    for (int l = 0; l < kLayers; ++l) {
      const KvTensorShape shape{kKvHeads, static_cast<uint32_t>(tokens), kHeadDim};
      absl::Status s = (*writer)->AddLayer(l, shape, Random(n, seed * 10 + l),
                                           Random(n, seed * 10 + l + 5));
      if (!s.ok()) return s;
    }
    return (*writer)->Commit();
  }

  absl::StatusOr<std::unique_ptr<KvContext>> Open(std::vector<std::string> ids,
                                                  std::vector<int64_t> starts,
                                                  ModelFingerprint model = Model()) {
    KvContextOptions options;
    options.chunk_ids = std::move(ids);
    options.starts = std::move(starts);
    options.model = std::move(model);
    return OpenKvContext(store_.get(), "ns", options);
  }

  // Full attention of pre-RoPE `queries` at `position` over the stored KV
  // of `layer`, read back rotated for `starts`.
  attention::PartialResult Full(const std::vector<std::string>& ids,
                                const std::vector<int64_t>& starts, uint32_t layer,
                                const std::vector<float>& queries, int64_t position) {
    KvReadOptions read;
    read.chunk_ids = ids;
    read.model = Model();
    read.positions = starts;
    read.layer_begin = layer;
    read.layer_end = layer + 1;
    auto reader = store_->ReadKv("ns", read);
    EXPECT_TRUE(reader.ok());
    std::vector<std::vector<float>> k(kKvHeads), v(kKvHeads);
    std::vector<int32_t> positions;
    KvBlock block;
    while (*(*reader)->Next(&block)) {
      const int T = static_cast<int>(block.shape.tokens);
      for (int h = 0; h < kKvHeads; ++h) {
        k[h].insert(k[h].end(), block.k.begin() + size_t(h) * T * kHeadDim,
                    block.k.begin() + size_t(h + 1) * T * kHeadDim);
        v[h].insert(v[h].end(), block.v.begin() + size_t(h) * T * kHeadDim,
                    block.v.begin() + size_t(h + 1) * T * kHeadDim);
      }
      for (int t = 0; t < T; ++t) {
        positions.push_back(static_cast<int32_t>(starts[block.chunk_index] + t));
      }
    }
    std::vector<float> keys, values;
    for (int h = 0; h < kKvHeads; ++h) {
      keys.insert(keys.end(), k[h].begin(), k[h].end());
      values.insert(values.end(), v[h].begin(), v[h].end());
    }
    const int n = static_cast<int>(positions.size());
    std::vector<float> q = queries;
    std::vector<double> cos, sin;
    attention::RopeTables(kHeadDim, 10000.0, position, 1, &cos, &sin);
    attention::ApplyRope(q.data(), 1, kHeads, kHeadDim, cos, sin);
    attention::PartialResult r;
    attention::KeyValueBlock kv{keys.data(), values.data(), n, n, positions.data(), 0};
    EXPECT_TRUE(attention::AttendPartial(shape_, attention::QueryBlock{q.data(), 1, 0}, kv, false,
                                         &r)
                    .ok());
    return r;
  }

  const attention::AttentionShape shape_{kHeads, kKvHeads, kHeadDim, 0.25f};
  std::string dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(KvContextTest, PutBuildsAKeyIndexInTheSameCommit) {
  Register();
  auto put = Put("a", 40, 1);
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_GT(put->index_bytes, 0u);
  EXPECT_GT(put->index_seconds, 0.0);
  EXPECT_GT(put->stored_bytes, put->index_bytes);
  Register(0);  // no key index from now on
  auto plain = Put("b", 40, 2);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->index_bytes, 0u);
  // The stats keep the index's share, also across a reopen (the chunk
  // record holds it), and lose it with the chunk's KV.
  for (const char* when : {"before", "after a reopen"}) {
    auto stats = store_->GetKvStats("ns");
    ASSERT_TRUE(stats.ok()) << stats.status();
    EXPECT_EQ(stats->index_bytes, put->index_bytes) << when;
    EXPECT_EQ(stats->stored_bytes, put->stored_bytes + plain->stored_bytes) << when;
    ASSERT_TRUE(store_->Close().ok());
    auto reopened = Store::Open(StoreOptions{}, dir_);
    ASSERT_TRUE(reopened.ok()) << reopened.status();
    store_ = *std::move(reopened);
  }
  ASSERT_TRUE(store_->DeleteKv("ns", {"a"}).ok());
  EXPECT_EQ(store_->GetKvStats("ns")->index_bytes, 0u);
  Register();
  ASSERT_TRUE(Put("a", 40, 1).ok());  // with its index again
  EXPECT_EQ(store_->GetKvStats("ns")->index_bytes, put->index_bytes);
  auto ctx = Open({"a", "b"}, {1, 41});
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  attention::PartialResult r;
  const std::vector<float> q = Random(kHeads * kHeadDim, 3);
  absl::Status s = (*ctx)->Attend(0, attention::QueryBlock{q.data(), 1, 100}, {}, &r, nullptr);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_NE(s.message().find("'b'"), std::string::npos) << s;
}

TEST_F(KvContextTest, WholeBudgetEqualsFullAttentionOverTheStoredKv) {
  Register();
  ASSERT_TRUE(Put("a", 40, 1).ok());
  ASSERT_TRUE(Put("b", 24, 2).ok());
  ASSERT_TRUE(Put("c", 33, 3).ok());
  const std::vector<std::string> ids = {"c", "a", "b"};
  const std::vector<int64_t> starts = {1, 200, 34};
  auto ctx = Open(ids, starts);
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  const std::vector<float> q = Random(kHeads * kHeadDim, 4);
  for (uint32_t layer : {2u, 0u}) {
    attention::PartialResult r;
    attention::ContextAttentionStats stats;
    ASSERT_TRUE(
        (*ctx)->Attend(layer, attention::QueryBlock{q.data(), 1, 300}, {1.0, 0.0}, &r, &stats).ok());
    EXPECT_EQ(stats.exact_keys, stats.keys);
    EXPECT_EQ(stats.keys, uint64_t(kKvHeads) * 97);
    const attention::PartialResult full = Full(ids, starts, layer, q, 300);
    for (size_t i = 0; i < full.out.size(); ++i) EXPECT_NEAR(r.out[i], full.out[i], 1e-4f);
    for (size_t i = 0; i < full.lse.size(); ++i) EXPECT_NEAR(r.lse[i], full.lse[i], 1e-4f);

    attention::SelectedKeys selected;
    ASSERT_TRUE(
        (*ctx)->FetchTopK(layer, attention::QueryBlock{q.data(), 1, 300}, 1.0, &selected, nullptr)
            .ok());
    ASSERT_EQ(selected.positions[0].size(), 97u);
    std::vector<float> post = q;
    std::vector<double> cos, sin;
    attention::RopeTables(kHeadDim, 10000.0, 300, 1, &cos, &sin);
    attention::ApplyRope(post.data(), 1, kHeads, kHeadDim, cos, sin);
    attention::PartialResult fetched;
    ASSERT_TRUE(attention::AttendSelectedKeys(shape_, post.data(), 1, selected, &fetched).ok());
    for (size_t i = 0; i < full.out.size(); ++i) EXPECT_NEAR(fetched.out[i], full.out[i], 1e-4f);
  }
  EXPECT_EQ((*ctx)->layers_loaded(), 3u);

  // A partial budget reads a share of the keys.
  attention::PartialResult r;
  attention::ContextAttentionStats stats;
  ASSERT_TRUE(
      (*ctx)->Attend(1, attention::QueryBlock{q.data(), 1, 300}, {0.1, 0.2}, &r, &stats).ok());
  EXPECT_LT(stats.exact_key_fraction(), 0.3);
  EXPECT_GT(stats.estimated_clusters, 0u);
}

TEST_F(KvContextTest, TheIndexGoesWithTheChunksKv) {
  Register();
  ASSERT_TRUE(Put("a", 20, 1).ok());
  ASSERT_TRUE(Put("b", 20, 2).ok());
  ASSERT_TRUE(store_->DeleteKv("ns", {"a"}).ok());
  auto gone = Open({"a", "b"}, {0, 20});
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kNotFound) << gone.status();
  EXPECT_NE(gone.status().message().find("'a'"), std::string::npos);
  ASSERT_TRUE(store_->Delete("ns", {"b"}, {}).ok());
  // Neither chunk leaves a key index row behind.
  ASSERT_TRUE(store_->Close().ok());
  store_.reset();
  WithKvColumnFamily(dir_, /*writable=*/false, [](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf) {
    for (const std::string& row : KeyIndexRows(db, cf)) {
      EXPECT_FALSE(row.size() > 4 && row[4] == 'k') << "a key index row remains";
    }
  });
}

TEST_F(KvContextTest, CorruptIndexIsDataLoss) {
  Register();
  ASSERT_TRUE(Put("a", 20, 1).ok());
  ASSERT_TRUE(store_->Close().ok());
  store_.reset();
  WithKvColumnFamily(dir_, /*writable=*/true, [](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf) {
    const std::vector<std::string> rows = KeyIndexRows(db, cf);
    const std::string target = rows.empty() ? std::string() : rows.front();
    ASSERT_FALSE(target.empty());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), cf, target, "garbage").ok());
  });
  auto store = Store::Open(StoreOptions{}, dir_);
  ASSERT_TRUE(store.ok());
  store_ = *std::move(store);
  auto ctx = Open({"a"}, {0});
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  attention::PartialResult r;
  const std::vector<float> q = Random(kHeads * kHeadDim, 3);
  absl::Status s = (*ctx)->Attend(0, attention::QueryBlock{q.data(), 1, 50}, {}, &r, nullptr);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
}

TEST_F(KvContextTest, BadInputGetsClearStatuses) {
  Register();
  ASSERT_TRUE(Put("a", 20, 1).ok());
  ASSERT_TRUE(Put("b", 20, 2).ok());
  EXPECT_EQ(Open({"a", "b"}, {0, 10}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Open({"a", "b"}, {0}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Open({"a", "nope"}, {0, 30}).status().code(), absl::StatusCode::kNotFound);
  ModelFingerprint other = Model();
  other.n_kv_heads = 1;
  EXPECT_EQ(Open({"a"}, {0}, other).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Open({"a", "a"}, {0, 30}).status().code(), absl::StatusCode::kInvalidArgument);

  auto ctx = Open({"a", "b"}, {0, 20});
  ASSERT_TRUE(ctx.ok());
  const std::vector<float> q = Random(kHeads * kHeadDim, 3);
  attention::PartialResult r;
  EXPECT_EQ((*ctx)->Attend(kLayers, attention::QueryBlock{q.data(), 1, 50}, {}, &r, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*ctx)->Attend(0, attention::QueryBlock{q.data(), 1, 30}, {}, &r, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  // A bad request leaves the context usable.
  EXPECT_TRUE((*ctx)->Attend(0, attention::QueryBlock{q.data(), 1, 40}, {}, &r, nullptr).ok());
}

}  // namespace
}  // namespace mnemo::db
