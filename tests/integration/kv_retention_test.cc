// KV retention against a real mnemod on 127.0.0.1 over the SDK: expired KV
// is removed by the server's timer without any further call that writes
// (--kv-expiry-interval-seconds), and the LRU eviction order survives a
// graceful restart and a kill -9 after the recency flush
// (--kv-recency-flush-seconds). The synthetic model and fp32 codec make
// every chunk of kTokens tokens the same size, so budgets are exact.
#include <chrono>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "mnemo/client.h"
#include "tests/integration/kv_test_model.h"
#include "tests/integration/mnemod_process.h"
#include "tests/integration/sdk_test_util.h"

namespace mnemo::testing {
namespace {

constexpr int kLayers = 2;
constexpr int kKvHeads = 2;
constexpr int kHeadDim = 8;
constexpr int kTokens = 4;
constexpr char kNs[] = "kv";

ModelFingerprint TestModel() { return KvTestModel(kLayers, 4, kKvHeads, kHeadDim, 'a'); }

KvPut MakePut(const std::string& chunk_id, uint32_t seed, int64_t ttl_seconds = 0) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  KvPut put;
  put.chunk_id = chunk_id;
  put.model = TestModel();
  put.ttl_seconds = ttl_seconds;
  for (int t = 0; t < kTokens; ++t) put.tokens.push_back(static_cast<int32_t>(seed) + t);
  for (int l = 0; l < kLayers; ++l) {
    std::vector<float> k(static_cast<size_t>(kKvHeads) * kTokens * kHeadDim), v(k.size());
    for (float& x : k) x = normal(rng);
    for (float& x : v) x = normal(rng);
    put.k.push_back(std::move(k));
    put.v.push_back(std::move(v));
  }
  return put;
}

class MnemodKvRetentionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = MakeTempDir("mnemo-kv-retention");
    ASSERT_TRUE(dir.ok()) << dir.status();
    data_dir_ = *dir;
  }
  void TearDown() override {
    client_.reset();
    server_.reset();
    std::error_code ec;
    std::filesystem::remove_all(data_dir_, ec);
  }

  void StartServer(const std::vector<std::string>& flags) {
    client_.reset();
    auto server = MnemodProcess::Start(flags, data_dir_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    client_ = ConnectOrDie(server_->target());
    ASSERT_NE(client_, nullptr);
  }

  // Namespace kNs with chunks `ids` and a KV budget of `fit` chunks and a
  // half under `policy`.
  void CreateKv(const std::vector<std::string>& ids, int fit, const std::string& policy) {
    NamespaceConfig ns;
    ns.name = kNs;
    ns.dim = 4;
    ASSERT_TRUE(client_->CreateNamespace(ns).ok());
    std::vector<Chunk> chunks;
    for (size_t i = 0; i < ids.size(); ++i) {
      chunks.push_back(Chunk{ids[i], "", "text of " + ids[i], "", Basis(4, i)});
    }
    ASSERT_TRUE(client_->Upsert(kNs, {}, chunks).ok());
    KvConfig config;
    config.model = TestModel();
    config.codec = KvCodec::kFp32;
    config.entropy = false;
    config.eviction_policy = policy;
    ASSERT_TRUE(client_->RegisterKvModel(kNs, config).ok());
    auto probe = client_->PutKv(kNs, MakePut(ids[0], 1));
    ASSERT_TRUE(probe.ok()) << probe.status();
    ASSERT_TRUE(client_->DeleteKv(kNs, {ids[0]}).ok());
    config.capacity_bytes = probe->stored_bytes * fit + probe->stored_bytes / 2;
    ASSERT_TRUE(client_->RegisterKvModel(kNs, config).ok());
  }

  void Put(const std::string& id, uint32_t seed, int64_t ttl_seconds = 0) {
    auto put = client_->PutKv(kNs, MakePut(id, seed, ttl_seconds));
    ASSERT_TRUE(put.ok()) << put.status();
  }

  void Touch(const std::string& id) {
    KvGetRequest request;
    request.chunk_ids = {id};
    request.model = TestModel();
    auto blocks = client_->GetKv(kNs, request);
    ASSERT_TRUE(blocks.ok()) << blocks.status();
  }

  bool Has(const std::string& id) {
    auto exists = client_->ExistsKv(kNs, {id}, TestModel());
    EXPECT_TRUE(exists.ok()) << exists.status();
    return exists.ok() && (*exists)[0] > 0;
  }

  KvStats Stats() {
    auto stats = client_->GetKvStats(kNs);
    EXPECT_TRUE(stats.ok()) << stats.status();
    return stats.ok() ? *stats : KvStats{};
  }

  std::string data_dir_;
  std::unique_ptr<MnemodProcess> server_;
  std::unique_ptr<Client> client_;
};

TEST_F(MnemodKvRetentionTest, ExpiredKvIsRemovedByTheServersTimer) {
  StartServer({"--kv-expiry-interval-seconds", "1"});
  CreateKv({"short", "long"}, 4, "lru");
  Put("short", 11, /*ttl_seconds=*/1);
  Put("long", 12);
  EXPECT_TRUE(Has("short"));
  // No put, delete or compaction from here on: only the timer removes it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (Stats().expired_chunks < 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  KvStats stats = Stats();
  EXPECT_EQ(stats.expired_chunks, 1u);
  EXPECT_EQ(stats.chunks, 1u);
  EXPECT_FALSE(Has("short"));
  EXPECT_TRUE(Has("long"));
  // The chunk itself stays.
  auto got = client_->Get(kNs, {"short"}, {}, /*include_vectors=*/true);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->chunks.size(), 1u);
  EXPECT_EQ(got->chunks[0].text, "text of short");
  EXPECT_EQ(got->chunks[0].vector, Basis(4, 0));
  // Removed for good: a restart loads only the live chunk.
  ASSERT_TRUE(server_->Stop().ok()) << server_->LogTail();
  StartServer({"--kv-expiry-interval-seconds", "0"});
  EXPECT_EQ(Stats().chunks, 1u);
  EXPECT_FALSE(Has("short"));
  EXPECT_TRUE(Has("long"));
}

TEST_F(MnemodKvRetentionTest, LruOrderSurvivesRestartAndKill) {
  const std::vector<std::string> flags = {"--kv-recency-flush-seconds", "1"};
  StartServer(flags);
  CreateKv({"a", "b", "c"}, 2, "lru");
  Put("a", 1);
  Put("b", 2);
  Touch("a");  // b is the least recently used; put order alone says a
  ASSERT_TRUE(server_->Stop().ok()) << server_->LogTail();
  StartServer(flags);
  Put("c", 3);
  EXPECT_FALSE(Has("b"));
  EXPECT_TRUE(Has("a"));
  EXPECT_TRUE(Has("c"));
  EXPECT_EQ(Stats().evicted_chunks, 1u);

  // a is now older than c; reading it makes c the victim, once the timer
  // has written the read down (two flush intervals), even across kill -9.
  Touch("a");
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  server_->Kill();
  StartServer(flags);
  Put("b", 4);
  EXPECT_FALSE(Has("c"));
  EXPECT_TRUE(Has("a"));
  EXPECT_TRUE(Has("b"));
}

}  // namespace
}  // namespace mnemo::testing
