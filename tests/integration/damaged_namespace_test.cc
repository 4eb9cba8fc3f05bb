// A flipped byte in one namespace's chunk SST, end to end: a real mnemod
// restarted on the damaged data directory starts, logs the damage once at
// error level, lists the namespace as damaged (SDK, `mnemo ns list/get`,
// /metrics mnemo_namespace_damaged), answers every call on it with
// DATA_LOSS naming the file and what to do, serves the other namespace's
// reads and writes, and lets the operator drop and recreate the damaged
// one.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "rocksdb/options.h"
#include "rocksdb/sst_file_reader.h"
#include "rocksdb/table_properties.h"
#include "tests/integration/sdk_test_util.h"
#include "tests/integration/shell_run.h"

namespace mnemo::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ::testing::HasSubstr;

constexpr uint32_t kDim = 4;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

int ReadPort(const std::string& path) {
  int port = 0;
  absl::SimpleAtoi(ReadFile(path), &port);
  return port;
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// The SSTs of column family `cf` in `dir`, oldest (lowest file number) first.
std::vector<fs::path> SstsOf(const std::string& dir, const std::string& cf) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".sst") continue;
    rocksdb::Options options;
    rocksdb::SstFileReader reader(options);
    if (!reader.Open(e.path().string()).ok()) continue;
    if (reader.GetTableProperties()->column_family_name == cf) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end(), [](const fs::path& a, const fs::path& b) {
    return std::stoull(a.stem().string()) < std::stoull(b.stem().string());
  });
  return out;
}

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

Chunk MakeChunk(const std::string& id, uint32_t i) {
  Chunk c;
  c.id = id;
  c.text = "text of " + id;
  c.vector = Basis(kDim, i, 1.0f + static_cast<float>(i));
  return c;
}

class DamagedNamespaceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = MakeTempDir("mnemo-damaged");
    ASSERT_TRUE(dir.ok()) << dir.status();
    root_ = *dir;
    data_dir_ = root_ + "/data";
    fs::create_directories(data_dir_);
    cli_ = BinDir() + "/mnemo";
    ASSERT_TRUE(fs::exists(cli_)) << cli_;
  }

  void TearDown() override {
    client_.reset();
    if (server_ != nullptr) EXPECT_TRUE(server_->Stop().ok());
    server_.reset();
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  void StartServer() {
    const std::string port_file = root_ + "/metrics-port";
    fs::remove(port_file);
    auto server = MnemodProcess::Start(
        {"--metrics-listen", "127.0.0.1:0", "--metrics-port-file", port_file}, data_dir_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    metrics_port_ = ReadPort(port_file);
    ASSERT_GT(metrics_port_, 0);
    client_ = ConnectOrDie(server_->target());
    ASSERT_NE(client_, nullptr);
  }

  void StopServer() {
    client_.reset();
    ASSERT_TRUE(server_->Stop().ok());
    server_.reset();
  }

  void Create(const std::string& ns) {
    NamespaceConfig config;
    config.name = ns;
    config.dim = kDim;
    auto created = client_->CreateNamespace(config);
    ASSERT_TRUE(created.ok()) << created.status();
  }

  absl::Status Upsert(const std::string& ns, const std::vector<std::string>& ids) {
    std::vector<Chunk> chunks;
    for (size_t i = 0; i < ids.size(); ++i) chunks.push_back(MakeChunk(ids[i], i));
    return client_->Upsert(ns, {}, chunks).status();
  }

  // The ids of the top hits of e_0 in `ns`.
  absl::StatusOr<std::vector<std::string>> Search(const std::string& ns) {
    SearchRequest req;
    req.ns = ns;
    req.dim = kDim;
    req.queries = Basis(kDim, 0);
    req.k = 10;
    auto results = client_->Search(req);
    if (!results.ok()) return results.status();
    std::vector<std::string> ids;
    for (const Hit& h : (*results)[0]) ids.push_back(h.id);
    std::sort(ids.begin(), ids.end());
    return ids;
  }

  ShellRun Cli(const std::string& args) {
    return Shell(absl::StrCat(cli_, " --server ", server_->target(), " ", args));
  }

  std::string Scrape() {
    httplib::Client http("127.0.0.1", metrics_port_);
    http.set_connection_timeout(2);
    http.set_read_timeout(10);
    auto res = http.Get("/metrics");
    if (!res || res->status != 200) return "";
    return res->body;
  }

  std::string root_;
  std::string data_dir_;
  std::string cli_;
  std::unique_ptr<MnemodProcess> server_;
  std::unique_ptr<Client> client_;
  int metrics_port_ = 0;
};

TEST_F(DamagedNamespaceTest, FlippedByteInAChunkSstDamagesOnlyItsNamespace) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  ASSERT_NO_FATAL_FAILURE(Create("a"));
  ASSERT_NO_FATAL_FAILURE(Create("b"));
  ASSERT_TRUE(Upsert("a", {"a1", "a2"}).ok());
  ASSERT_TRUE(client_->Checkpoint("").ok());  // a's rows in their own SSTs
  ASSERT_TRUE(Upsert("b", {"b1", "b2"}).ok());
  ASSERT_TRUE(client_->Checkpoint("").ok());  // b's in newer ones
  ASSERT_NO_FATAL_FAILURE(StopServer());

  const std::vector<fs::path> ssts = SstsOf(data_dir_, "chunks");
  ASSERT_EQ(ssts.size(), 2u);
  const std::string file = ssts.back().filename().string();
  ASSERT_NO_FATAL_FAILURE(FlipByte(ssts.back(), 16));  // b's first data block
  ASSERT_NO_FATAL_FAILURE(StartServer());

  // Logged once, at error level, naming the file.
  const std::string log = ReadFile(server_->log_path());
  EXPECT_EQ(Count(log, "namespace 'b' is damaged"), 1u) << log;
  EXPECT_EQ(Count(log, "namespace 'a' is damaged"), 0u);
  const size_t at = log.find("namespace 'b' is damaged");
  ASSERT_NE(at, std::string::npos);
  const size_t line_start = log.rfind('\n', at) + 1;  // npos + 1 = 0
  const std::string line = log.substr(line_start, log.find('\n', at) - line_start);
  EXPECT_THAT(line, HasSubstr(" error ")) << line;
  EXPECT_THAT(line, HasSubstr(file)) << line;

  // The SDK sees the state.
  auto list = client_->ListNamespaces();
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_FALSE((*list)[0].damaged);
  EXPECT_EQ((*list)[0].chunk_count, 2u);
  EXPECT_TRUE((*list)[1].damaged);
  EXPECT_THAT((*list)[1].damage, HasSubstr(file));
  auto info = client_->GetNamespace("b");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_TRUE(info->damaged);
  EXPECT_EQ(info->config.dim, kDim);

  // Every call on b: DATA_LOSS naming the file and what to do.
  auto expect_damaged = [&](const absl::Status& st, const char* call) {
    EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss) << call << ": " << st;
    EXPECT_THAT(st.message(), HasSubstr(file)) << call;
    EXPECT_THAT(st.message(), HasSubstr("restore")) << call;
    EXPECT_THAT(st.message(), HasSubstr("mnemo ns drop b")) << call;
  };
  expect_damaged(Search("b").status(), "Search");
  expect_damaged(Upsert("b", {"b3"}), "Upsert");
  expect_damaged(client_->Get("b", {"b1"}, {}, false).status(), "Get");
  expect_damaged(client_->Delete("b", {"b1"}, {}).status(), "Delete");

  // a serves reads and writes.
  auto a = Search("a");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(*a, (std::vector<std::string>{"a1", "a2"}));
  ASSERT_TRUE(Upsert("a", {"a3"}).ok());
  a = Search("a");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(*a, (std::vector<std::string>{"a1", "a2", "a3"}));

  // The CLI shows it: the table's state column and the damage below it,
  // `ns get`, JSON, and a failing search's exit code and message.
  ShellRun table = Cli("ns list");
  ASSERT_EQ(table.exit_code, 0) << table.out;
  EXPECT_THAT(table.out, HasSubstr("DAMAGED"));
  EXPECT_THAT(table.out, HasSubstr(file));
  ShellRun details = Cli("ns get b");
  ASSERT_EQ(details.exit_code, 0) << details.out;
  EXPECT_THAT(details.out, HasSubstr("DAMAGED:"));
  EXPECT_THAT(details.out, HasSubstr(file));
  ShellRun listed = Cli("ns list --json");
  ASSERT_EQ(listed.exit_code, 0) << listed.out;
  json parsed = json::parse(listed.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(parsed.is_discarded()) << listed.out;
  const json& j = parsed["namespaces"];
  ASSERT_EQ(j.size(), 2u) << listed.out;
  EXPECT_EQ(j[0]["damaged"], false);
  EXPECT_EQ(j[1]["damaged"], true);
  EXPECT_THAT(j[1]["damage"].get<std::string>(), HasSubstr(file));
  ShellRun search = Cli("search --ns b --vector '[1,0,0,0]'");
  EXPECT_EQ(search.exit_code, 1) << search.out;
  EXPECT_THAT(search.out, HasSubstr("DATA_LOSS"));

  // /metrics: the gauge per namespace.
  std::string metrics = Scrape();
  EXPECT_THAT(metrics, HasSubstr("mnemo_namespace_damaged{namespace=\"b\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("mnemo_namespace_damaged{namespace=\"a\"} 0"));

  // Drop and recreate b with the CLI; it takes writes and serves.
  ShellRun dropped = Cli("ns drop b --yes");
  ASSERT_EQ(dropped.exit_code, 0) << dropped.out;
  ShellRun created = Cli("ns create b --dim 4");
  ASSERT_EQ(created.exit_code, 0) << created.out;
  ASSERT_TRUE(Upsert("b", {"b5"}).ok());
  auto b = Search("b");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(*b, std::vector<std::string>{"b5"});
  info = client_->GetNamespace("b");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_FALSE(info->damaged);
  metrics = Scrape();
  EXPECT_THAT(metrics, HasSubstr("mnemo_namespace_damaged{namespace=\"b\"} 0"));

  // And after a restart both are healthy, with every acknowledged write.
  ASSERT_NO_FATAL_FAILURE(StopServer());
  ASSERT_NO_FATAL_FAILURE(StartServer());
  list = client_->ListNamespaces();
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_FALSE((*list)[0].damaged);
  EXPECT_FALSE((*list)[1].damaged);
  a = Search("a");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(*a, (std::vector<std::string>{"a1", "a2", "a3"}));
  b = Search("b");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(*b, std::vector<std::string>{"b5"});
}

}  // namespace
}  // namespace mnemo::testing
