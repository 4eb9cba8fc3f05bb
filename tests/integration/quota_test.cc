// Namespace quotas against a real mnemod over gRPC (SDK and CLI): limits set
// at CreateNamespace and by SetNamespaceQuota, RESOURCE_EXHAUSTED naming the
// limit with nothing of the batch stored, deletes freeing space, bad quota
// requests, concurrent writers over separate connections, and usage and
// limits across a restart.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "tests/integration/sdk_test_util.h"
#include "tests/integration/shell_run.h"

namespace mnemo::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using json = nlohmann::json;

Chunk MakeChunk(const std::string& id, uint32_t dim) {
  Chunk c;
  c.id = id;
  c.text = "text of " + id;
  c.vector = Basis(dim, static_cast<uint32_t>(id.size()), 1.0f);
  return c;
}

NamespaceQuota Limits(uint64_t max_bytes, uint64_t max_chunks) {
  NamespaceQuota q;
  q.max_bytes = max_bytes;
  q.max_chunks = max_chunks;
  return q;
}

QuotaChange Change(std::optional<uint64_t> max_bytes,
                   std::optional<uint64_t> max_chunks = std::nullopt) {
  QuotaChange c;
  c.max_bytes = max_bytes;
  c.max_chunks = max_chunks;
  return c;
}

class QuotaIntegrationTest : public SdkTest {
 protected:
  void CreateWithQuota(const std::string& ns, const NamespaceQuota& quota) {
    NamespaceConfig config;
    config.name = ns;
    config.dim = kDim;
    config.quota = quota;
    auto created = client_->CreateNamespace(config);
    ASSERT_TRUE(created.ok()) << created.status();
    EXPECT_EQ(created->config.quota.max_bytes, quota.max_bytes);
    EXPECT_EQ(created->config.quota.max_chunks, quota.max_chunks);
    EXPECT_EQ(created->config.quota.max_kv_bytes, quota.max_kv_bytes);
    EXPECT_EQ(created->usage.chunks, 0u);
  }
};

TEST_F(QuotaIntegrationTest, OverMaxChunksIsResourceExhaustedAndStoresNothing) {
  CreateWithQuota("q.chunks", Limits(0, 2));
  ASSERT_TRUE(client_->Upsert("q.chunks", {}, {MakeChunk("a", kDim)}).ok());
  const NamespaceSnapshot before = Snapshot("q.chunks");
  auto over = client_->Upsert("q.chunks", {}, {MakeChunk("b", kDim), MakeChunk("cc", kDim)});
  ASSERT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted) << over.status();
  EXPECT_THAT(over.status().message(),
              AllOf(HasSubstr("max_chunks is 2"), HasSubstr("to 3"), HasSubstr("now 1")));
  EXPECT_EQ(Snapshot("q.chunks"), before);
  auto info = client_->GetNamespace("q.chunks");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->usage.chunks, 1u);

  // The stream path refuses the same way.
  auto writer = client_->UpsertStream("q.chunks");
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Write({}, {MakeChunk("b", kDim), MakeChunk("cc", kDim)}).ok());
  EXPECT_EQ((*writer)->Finish().status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Snapshot("q.chunks"), before);

  // Raising the limit lets the batch in; deleting frees room again.
  auto raised = client_->SetNamespaceQuota("q.chunks", Change(std::nullopt, 3));
  ASSERT_TRUE(raised.ok()) << raised.status();
  EXPECT_EQ(raised->config.quota.max_chunks, 3u);
  ASSERT_TRUE(client_->Upsert("q.chunks", {}, {MakeChunk("b", kDim), MakeChunk("cc", kDim)}).ok());
  EXPECT_EQ(client_->Upsert("q.chunks", {}, {MakeChunk("ddd", kDim)}).status().code(),
            absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(client_->Delete("q.chunks", {"a"}, {}).ok());
  EXPECT_TRUE(client_->Upsert("q.chunks", {}, {MakeChunk("ddd", kDim)}).ok());
}

TEST_F(QuotaIntegrationTest, OverMaxBytesNamesTheLimitAndTheUsage) {
  CreateWithQuota("q.bytes", Limits(0, 0));
  ASSERT_TRUE(client_->Upsert("q.bytes", {}, {MakeChunk("a", kDim)}).ok());
  auto info = client_->GetNamespace("q.bytes");
  ASSERT_TRUE(info.ok());
  const uint64_t one = info->usage.bytes;
  // A record, id and text, plus kDim floats.
  ASSERT_GT(one, kDim * sizeof(float));
  ASSERT_TRUE(client_->SetNamespaceQuota("q.bytes", Change(one + 1)).ok());
  Document big{"doc", std::string(200, 'x'), ""};
  auto over = client_->Upsert("q.bytes", {big}, {});
  ASSERT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted) << over.status();
  EXPECT_THAT(over.status().message(), AllOf(HasSubstr(absl::StrCat("max_bytes is ", one + 1)),
                                             HasSubstr(absl::StrCat("now ", one))));
  auto after = client_->GetNamespace("q.bytes");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->document_count, 0u);
  EXPECT_EQ(after->usage.bytes, one);
  ASSERT_TRUE(client_->Delete("q.bytes", {"a"}, {}).ok());
  after = client_->GetNamespace("q.bytes");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->usage.bytes, 0u);
}

TEST_F(QuotaIntegrationTest, BadQuotaRequestsGetClearStatusesAndChangeNothing) {
  CreateWithQuota("q.bad", Limits(0, 5));
  Seed("q.seeded");
  const NamespaceSnapshot before = Snapshot("q.seeded");
  auto unknown = client_->SetNamespaceQuota("q.nope", Change(1));
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound) << unknown.status();
  auto empty = client_->SetNamespaceQuota("q.bad", {});
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument) << empty.status();
  EXPECT_THAT(empty.status().message(), HasSubstr("sets none"));
  auto bad_name = client_->SetNamespaceQuota("bad name!", Change(1));
  EXPECT_NE(bad_name.status().code(), absl::StatusCode::kOk);
  auto info = client_->GetNamespace("q.bad");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->config.quota.max_chunks, 5u);
  EXPECT_EQ(info->config.quota.max_bytes, 0u);
  EXPECT_EQ(Snapshot("q.seeded"), before);
}

TEST_F(QuotaIntegrationTest, ConcurrentClientsStopExactlyAtTheLimit) {
  constexpr int kClients = 4;
  constexpr int kPerClient = 12;
  constexpr uint64_t kLimit = 30;
  CreateWithQuota("q.race", Limits(0, kLimit));
  std::atomic<int> accepted{0}, refused{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kClients; ++t) {
    threads.emplace_back([&, t] {
      std::unique_ptr<Client> client = ConnectOrDie(server_->target());
      if (client == nullptr) {
        ++other;
        return;
      }
      for (int i = 0; i < kPerClient; ++i) {
        auto r = client->Upsert("q.race", {}, {MakeChunk(absl::StrCat("t", t, "-", i), kDim)});
        if (r.ok()) {
          ++accepted;
        } else if (r.status().code() == absl::StatusCode::kResourceExhausted) {
          ++refused;
        } else {
          ++other;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(accepted.load(), static_cast<int>(kLimit));
  EXPECT_EQ(refused.load(), kClients * kPerClient - static_cast<int>(kLimit));
  auto info = client_->GetNamespace("q.race");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->chunk_count, kLimit);
  EXPECT_EQ(info->usage.chunks, kLimit);
}

TEST(QuotaRestartTest, UsageAndLimitsSurviveARestart) {
  auto dir = MakeTempDir("mnemo-quota-restart");
  ASSERT_TRUE(dir.ok()) << dir.status();
  NamespaceInfo before;
  {
    auto server = MnemodProcess::Start({}, *dir);
    ASSERT_TRUE(server.ok()) << server.status();
    std::unique_ptr<Client> client = ConnectOrDie((*server)->target());
    ASSERT_NE(client, nullptr);
    NamespaceConfig config;
    config.name = "q.restart";
    config.dim = 4;
    config.quota.max_chunks = 3;
    ASSERT_TRUE(client->CreateNamespace(config).ok());
    ASSERT_TRUE(client
                    ->Upsert("q.restart", {{"d", "document text", ""}},
                             {MakeChunk("a", 4), MakeChunk("bb", 4)})
                    .ok());
    ASSERT_TRUE(client->Delete("q.restart", {"bb"}, {}).ok());
    ASSERT_TRUE(client->SetNamespaceQuota("q.restart", Change(1 << 20)).ok());
    auto info = client->GetNamespace("q.restart");
    ASSERT_TRUE(info.ok());
    before = *info;
    client.reset();
    // A crash, not a clean stop: usage is recomputed from what was committed.
    (*server)->Kill();
  }
  auto server = MnemodProcess::Start({}, *dir);
  ASSERT_TRUE(server.ok()) << server.status();
  std::unique_ptr<Client> client = ConnectOrDie((*server)->target());
  ASSERT_NE(client, nullptr);
  auto after = client->GetNamespace("q.restart");
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->usage.bytes, before.usage.bytes);
  EXPECT_EQ(after->usage.chunks, 1u);
  EXPECT_EQ(after->config.quota.max_chunks, 3u);
  EXPECT_EQ(after->config.quota.max_bytes, 1u << 20);
  ASSERT_TRUE(client->Upsert("q.restart", {}, {MakeChunk("bb", 4), MakeChunk("ccc", 4)}).ok());
  EXPECT_EQ(client->Upsert("q.restart", {}, {MakeChunk("dddd", 4)}).status().code(),
            absl::StatusCode::kResourceExhausted);
  client.reset();
  EXPECT_TRUE((*server)->Stop().ok());
  server->reset();
  std::error_code ec;
  fs::remove_all(*dir, ec);
}

TEST_F(QuotaIntegrationTest, CliSetsAndShowsQuotas) {
  const std::string cli = BinDir() + "/mnemo";
  ASSERT_TRUE(fs::exists(cli)) << cli;
  const std::string server = " --server " + server_->target();
  ShellRun created = Shell(cli + server + " ns create q.cli --dim 4 --max-chunks 1 --json");
  ASSERT_EQ(created.exit_code, 0) << created.out;
  json j = json::parse(created.out);
  EXPECT_EQ(j["quota"]["max_chunks"], 1);
  EXPECT_EQ(j["quota"]["max_bytes"], 0);
  EXPECT_EQ(j["usage"]["chunks"], 0);

  ASSERT_TRUE(client_->Upsert("q.cli", {}, {MakeChunk("a", kDim)}).ok());
  EXPECT_EQ(client_->Upsert("q.cli", {}, {MakeChunk("bb", kDim)}).status().code(),
            absl::StatusCode::kResourceExhausted);

  ShellRun set =
      Shell(cli + server + " ns set-quota q.cli --max-chunks 2 --max-kv-bytes 4096 --json");
  ASSERT_EQ(set.exit_code, 0) << set.out;
  j = json::parse(set.out);
  EXPECT_EQ(j["quota"]["max_chunks"], 2);
  EXPECT_EQ(j["quota"]["max_kv_bytes"], 4096);
  EXPECT_EQ(j["usage"]["chunks"], 1);
  EXPECT_GT(j["usage"]["bytes"].get<uint64_t>(), 0u);
  EXPECT_TRUE(client_->Upsert("q.cli", {}, {MakeChunk("bb", kDim)}).ok());

  ShellRun shown = Shell(cli + server + " ns get q.cli");
  ASSERT_EQ(shown.exit_code, 0) << shown.out;
  EXPECT_THAT(shown.out, HasSubstr("quota chunks:      2 of 2"));
  EXPECT_THAT(shown.out, HasSubstr("quota bytes:"));
  EXPECT_THAT(shown.out, HasSubstr("of unlimited"));

  ShellRun none = Shell(cli + server + " ns set-quota q.cli");
  EXPECT_EQ(none.exit_code, 2) << none.out;
  ShellRun missing = Shell(cli + server + " ns set-quota q.nope --max-bytes 5");
  EXPECT_EQ(missing.exit_code, 1) << missing.out;
  EXPECT_THAT(missing.out, HasSubstr("NOT_FOUND"));
}

}  // namespace
}  // namespace mnemo::testing
