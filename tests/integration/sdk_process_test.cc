// mnemod as a process: graceful shutdown and restart, crash recovery,
// checkpoints opened by a second server, flags and config files.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/integration/sdk_test_util.h"

namespace mnemo::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr uint32_t kDim = 4;

// A temporary directory removed at scope exit.
class TempDir {
 public:
  TempDir() {
    auto dir = MakeTempDir("mnemo-it");
    EXPECT_TRUE(dir.ok()) << dir.status();
    if (dir.ok()) path_ = *dir;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Writes 20 chunks r0..r19 into a new namespace "persist".
void WritePersistData(Client& client) {
  NamespaceConfig config;
  config.name = "persist";
  config.dim = kDim;
  config.metric = Metric::kL2;
  ASSERT_TRUE(client.CreateNamespace(config).ok());
  std::vector<Chunk> chunks;
  for (int i = 0; i < 20; ++i) {
    chunks.push_back(Chunk{"r" + std::to_string(i), "", "row " + std::to_string(i), "{}",
                           Basis(kDim, i, 1.0f + i)});
  }
  ASSERT_TRUE(client.Upsert("persist", {{"pd", "persisted doc", ""}}, chunks).ok());
}

// Checks the data WritePersistData wrote, through a fresh server.
void ExpectPersistData(Client& client) {
  auto info = client.GetNamespace("persist");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->config.metric, Metric::kL2);
  EXPECT_EQ(info->chunk_count, 20u);
  EXPECT_EQ(info->document_count, 1u);
  auto got = client.Get("persist", {"r7"}, {"pd"}, true);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->chunks.size(), 1u);
  EXPECT_EQ(got->chunks[0].text, "row 7");
  EXPECT_EQ(got->chunks[0].vector, Basis(kDim, 7, 8.0f));
  ASSERT_EQ(got->documents.size(), 1u);
  SearchRequest req;
  req.ns = "persist";
  req.dim = kDim;
  req.queries = Basis(kDim, 7, 8.0f);  // exactly r7: L2 distance 0
  req.k = 1;
  auto hits = client.Search(req);
  ASSERT_TRUE(hits.ok()) << hits.status();
  ASSERT_EQ(hits->at(0).size(), 1u);
  EXPECT_EQ(hits->at(0)[0].id, "r7");
  EXPECT_FLOAT_EQ(hits->at(0)[0].score, 0.0f);
}

TEST(MnemodProcessTest, GracefulStopThenRestartKeepsAllData) {
  TempDir dir;
  {
    auto server = MnemodProcess::Start({}, dir.path());
    ASSERT_TRUE(server.ok()) << server.status();
    auto client = ConnectOrDie((*server)->target());
    ASSERT_NE(client, nullptr);
    WritePersistData(*client);
    // An idle client that stays connected holds a graceful shutdown until
    // its deadline (it only reads the GOAWAY when it next polls), so hang up.
    client.reset();
    absl::Status stopped = (*server)->Stop();  // SIGTERM: exit code must be 0
    ASSERT_TRUE(stopped.ok()) << stopped;
    EXPECT_THAT((*server)->LogTail(), HasSubstr("stopped"));
  }
  auto server = MnemodProcess::Start({}, dir.path());
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = ConnectOrDie((*server)->target());
  ASSERT_NE(client, nullptr);
  ExpectPersistData(*client);
  client.reset();
  EXPECT_TRUE((*server)->Stop().ok());
}

TEST(MnemodProcessTest, KillNineKeepsAcknowledgedWrites) {
  TempDir dir;
  {
    auto server = MnemodProcess::Start({}, dir.path());
    ASSERT_TRUE(server.ok()) << server.status();
    auto client = ConnectOrDie((*server)->target());
    ASSERT_NE(client, nullptr);
    WritePersistData(*client);
    (*server)->Kill();
  }
  auto server = MnemodProcess::Start({}, dir.path());
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = ConnectOrDie((*server)->target());
  ASSERT_NE(client, nullptr);
  ExpectPersistData(*client);
}

TEST(MnemodProcessTest, CheckpointDirectoryServesAsDataDir) {
  TempDir ckpt_parent;
  const std::string ckpt = ckpt_parent.path() + "/ckpt";
  {
    auto server = MnemodProcess::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    auto client = ConnectOrDie((*server)->target());
    ASSERT_NE(client, nullptr);
    WritePersistData(*client);
    auto seq = client->Checkpoint(ckpt);
    ASSERT_TRUE(seq.ok()) << seq.status();
    // The target must not exist yet: a second checkpoint there is refused.
    EXPECT_FALSE(client->Checkpoint(ckpt).ok());
    // Writes after the checkpoint do not reach it.
    ASSERT_TRUE(client->Upsert("persist", {}, {Chunk{"late", "", "", "", Basis(kDim, 0)}}).ok());
  }
  auto second = MnemodProcess::Start({}, ckpt);
  ASSERT_TRUE(second.ok()) << second.status();
  auto client = ConnectOrDie((*second)->target());
  ASSERT_NE(client, nullptr);
  ExpectPersistData(*client);
  auto got = client->Get("persist", {"late"}, {}, false);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->missing_ids, std::vector<std::string>{"late"});
}

TEST(MnemodProcessTest, SecondServerOnALockedDataDirFailsToStart) {
  auto first = MnemodProcess::Start();
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = MnemodProcess::Start({}, (*first)->data_dir(), std::chrono::seconds(10));
  EXPECT_FALSE(second.ok());
  EXPECT_TRUE((*first)->Stop().ok());
}

TEST(MnemodProcessTest, ConfigFileAndJsonLogs) {
  TempDir dir;
  const std::string config_path = dir.path() + "/mnemod.toml";
  {
    std::ofstream out(config_path);
    out << "max-k = 5\nlog-format = \"json\"\nsync-writes = false\n";
  }
  auto server = MnemodProcess::Start({"--config", config_path});
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = ConnectOrDie((*server)->target());
  ASSERT_NE(client, nullptr);
  NamespaceConfig config;
  config.name = "cfg";
  config.dim = kDim;
  ASSERT_TRUE(client->CreateNamespace(config).ok());
  ASSERT_TRUE(client->Upsert("cfg", {}, {Chunk{"a", "", "", "", Basis(kDim, 0)}}).ok());
  SearchRequest req;
  req.ns = "cfg";
  req.dim = kDim;
  req.queries = Basis(kDim, 0);
  req.k = 6;  // above the configured max-k of 5
  EXPECT_EQ(client->Search(req).status().code(), absl::StatusCode::kInvalidArgument);
  req.k = 5;
  EXPECT_TRUE(client->Search(req).ok());
  client.reset();
  ASSERT_TRUE((*server)->Stop().ok());

  // Every log line other than the plain "listening" banner is a JSON object.
  std::istringstream log((*server)->LogTail(1 << 20));
  std::string line;
  int json_lines = 0;
  while (std::getline(log, line)) {
    if (line.rfind("mnemod listening on ", 0) == 0) continue;
    if (line.empty() || line[0] != '{') continue;  // store-internal spdlog lines
    EXPECT_EQ(line.back(), '}') << line;
    EXPECT_THAT(line, HasSubstr("\"ts\":"));
    EXPECT_THAT(line, HasSubstr("\"level\":"));
    EXPECT_THAT(line, HasSubstr("\"msg\":"));
    ++json_lines;
  }
  EXPECT_GE(json_lines, 2);  // "serving" and "stopped" at least
}

TEST(MnemodProcessTest, PrintsListeningBanner) {
  auto server = MnemodProcess::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_THAT((*server)->LogTail(),
              HasSubstr("mnemod listening on " + (*server)->target() +
                        " data_dir=" + (*server)->data_dir()));
}

TEST(MnemodProcessTest, UnknownFlagFailsFast) {
  auto server = MnemodProcess::Start({"--no-such-flag"}, "", std::chrono::seconds(10));
  EXPECT_FALSE(server.ok());
}

TEST(ClientConnectTest, UnreachableServerIsUnavailable) {
  ClientOptions options;
  options.connect_timeout = std::chrono::milliseconds(300);
  // Port 1 on loopback: nothing listens there in a test environment.
  auto client = Client::Connect("127.0.0.1:1", options);
  EXPECT_EQ(client.status().code(), absl::StatusCode::kUnavailable);
}

TEST(ClientConnectTest, CallsToAStoppedServerFailUnavailableAfterRetries) {
  auto server = MnemodProcess::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  ClientOptions options;
  options.initial_backoff = std::chrono::milliseconds(10);
  auto client = Client::Connect((*server)->target(), options);
  ASSERT_TRUE(client.ok());
  // SIGKILL: a graceful stop would wait for this idle client to hang up.
  (*server)->Kill();
  EXPECT_EQ((*client)->ListNamespaces().status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace mnemo::testing
