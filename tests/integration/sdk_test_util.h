// Shared fixture for the SDK integration tests: one mnemod per test suite
// (each test uses its own namespaces), a connected Client, and helpers that
// seed a small namespace and check that it is intact after a refused call.
#ifndef MNEMO_TESTS_INTEGRATION_SDK_TEST_UTIL_H_
#define MNEMO_TESTS_INTEGRATION_SDK_TEST_UTIL_H_

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "mnemo/client.h"
#include "tests/integration/mnemod_process.h"

namespace mnemo::testing {

// Connects a client with a short connect timeout and no retries (tests
// should see the server's first answer).
inline std::unique_ptr<Client> ConnectOrDie(const std::string& target) {
  ClientOptions options;
  options.connect_timeout = std::chrono::seconds(10);
  options.default_timeout = std::chrono::seconds(20);
  auto client = Client::Connect(target, options);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? std::move(client).value() : nullptr;
}

// Unit vector e_i of dimension `dim` scaled by `scale`.
inline std::vector<float> Basis(uint32_t dim, uint32_t i, float scale = 1.0f) {
  std::vector<float> v(dim, 0.0f);
  v[i % dim] = scale;
  return v;
}

// What a namespace looks like from outside: its chunk count and the hits of
// a fixed query. Equal snapshots before and after a refused call show the
// call changed nothing.
struct NamespaceSnapshot {
  uint64_t chunk_count = 0;
  uint64_t document_count = 0;
  std::vector<std::pair<std::string, float>> hits;
  bool operator==(const NamespaceSnapshot&) const = default;
};

inline void PrintTo(const NamespaceSnapshot& s, std::ostream* os) {
  *os << "{chunks=" << s.chunk_count << " docs=" << s.document_count << " hits=[";
  for (const auto& [id, score] : s.hits) *os << id << ":" << score << " ";
  *os << "]}";
}

class SdkTest : public ::testing::Test {
 protected:
  static constexpr uint32_t kDim = 4;

  static void SetUpTestSuite() {
    auto server = MnemodProcess::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(server).value().release();
  }

  static void TearDownTestSuite() {
    if (server_ != nullptr) {
      EXPECT_TRUE(server_->Stop().ok());
      delete server_;
      server_ = nullptr;
    }
  }

  void SetUp() override {
    ASSERT_NE(server_, nullptr) << "mnemod did not start";
    client_ = ConnectOrDie(server_->target());
    ASSERT_NE(client_, nullptr);
  }

  // Creates namespace `ns` (dim kDim, inner product, Flat) holding three
  // chunks c0..c2 = 3·e0, 2·e1, 1·e2 with metadata {"i": n, "lang": ...} and
  // one document "d0" owning c0 and c1.
  void Seed(Client& client, const std::string& ns) {
    NamespaceConfig config;
    config.name = ns;
    config.dim = kDim;
    ASSERT_TRUE(client.CreateNamespace(config).ok());
    std::vector<Chunk> chunks;
    const char* langs[] = {"en", "fr", "en"};
    for (uint32_t i = 0; i < 3; ++i) {
      Chunk c;
      c.id = "c" + std::to_string(i);
      c.document_id = i < 2 ? "d0" : "";
      c.text = "text " + std::to_string(i);
      c.metadata_json = "{\"i\": " + std::to_string(i) + ", \"lang\": \"" + langs[i] + "\"}";
      c.vector = Basis(kDim, i, 3.0f - i);
      chunks.push_back(std::move(c));
    }
    std::vector<Document> docs = {{"d0", "document zero", "{\"source\": \"test\"}"}};
    auto written = client.Upsert(ns, docs, chunks);
    ASSERT_TRUE(written.ok()) << written.status();
    ASSERT_EQ(written->chunks_written, 3u);
  }
  void Seed(const std::string& ns) { Seed(*client_, ns); }

  static NamespaceSnapshot Snapshot(Client& client, const std::string& ns) {
    NamespaceSnapshot snap;
    auto stats = client.Stats(ns);
    EXPECT_TRUE(stats.ok()) << stats.status();
    if (stats.ok() && stats->namespaces.size() == 1) {
      snap.chunk_count = stats->namespaces[0].chunk_count;
      snap.document_count = stats->namespaces[0].document_count;
    }
    SearchRequest req;
    req.ns = ns;
    req.dim = kDim;
    req.queries = {1.0f, 1.0f, 1.0f, 1.0f};
    req.k = 10;
    auto results = client.Search(req);
    EXPECT_TRUE(results.ok()) << results.status();
    if (results.ok() && results->size() == 1) {
      for (const Hit& h : (*results)[0]) snap.hits.emplace_back(h.id, h.score);
    }
    return snap;
  }
  NamespaceSnapshot Snapshot(const std::string& ns) { return Snapshot(*client_, ns); }

  static inline MnemodProcess* server_ = nullptr;
  std::unique_ptr<Client> client_;
};

}  // namespace mnemo::testing

#endif  // MNEMO_TESTS_INTEGRATION_SDK_TEST_UTIL_H_
