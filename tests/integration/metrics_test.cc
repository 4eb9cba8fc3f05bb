// mnemod --metrics-listen end to end: a real mnemod serves /metrics; after
// known RPCs (creates, upserts, searches, a NOT_FOUND) the exposition holds
// exactly those counts and the namespaces' quota limits and usage, promtool
// accepts it, and a real Prometheus server
// (Debian's `prometheus`, started by the test) scrapes it and answers a
// query with the same numbers. promtool or prometheus missing is a failure
// naming the package (scripts/setup installs it).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "mnemo/client.h"
#include "mnemo/v1/mnemo.grpc.pb.h"
#include "mnemod_process.h"
#include "nlohmann/json.hpp"

extern char** environ;

namespace mnemo {
namespace {

namespace fs = std::filesystem;
using testing::MnemodProcess;

std::string Which(const std::string& tool) {
  for (const char* dir : {"/usr/bin", "/usr/local/bin", "/bin"}) {
    const std::string path = absl::StrCat(dir, "/", tool);
    if (access(path.c_str(), X_OK) == 0) return path;
  }
  return "";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

int ReadPort(const std::string& path) {
  std::ifstream in(path);
  int port = 0;
  std::string text;
  if (in >> text && absl::SimpleAtoi(text, &port)) return port;
  return 0;
}

// A port nobody listens on right now (the kernel's choice for port 0; a
// race with another process taking it is possible but unlikely).
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

// The value of the sample `name{labels}` (labels as exposed, in order), or
// -1 when absent.
double Sample(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(series + " ", 0) == 0) {
      double v = 0;
      if (absl::SimpleAtod(line.substr(series.size() + 1), &v)) return v;
    }
  }
  return -1;
}

class MetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = testing::MakeTempDir("mnemo-metrics");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;
    auto proc = MnemodProcess::Start({"--metrics-listen", "127.0.0.1:0", "--metrics-port-file",
                                      dir_ + "/metrics-port"});
    ASSERT_TRUE(proc.ok()) << proc.status();
    mnemod_ = *std::move(proc);
    metrics_port_ = ReadPort(dir_ + "/metrics-port");
    ASSERT_GT(metrics_port_, 0);
    auto client = Client::Connect(mnemod_->target());
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
  }

  void TearDown() override {
    if (prometheus_pid_ > 0) {
      kill(prometheus_pid_, SIGTERM);
      waitpid(prometheus_pid_, nullptr, 0);
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // The known traffic: 1 create, 2 upserts (3 chunks), 5 searches, 1
  // GetNamespace of an unknown namespace.
  void Traffic() {
    NamespaceConfig config;
    config.name = "m";
    config.dim = 2;
    ASSERT_TRUE(client_->CreateNamespace(config).ok());
    std::vector<Chunk> chunks(3);
    for (int i = 0; i < 3; ++i) {
      chunks[i].id = absl::StrCat("c", i);
      chunks[i].vector = {1.0f, static_cast<float>(i)};
    }
    ASSERT_TRUE(client_->Upsert("m", {}, {chunks[0], chunks[1]}).ok());
    ASSERT_TRUE(client_->Upsert("m", {}, {chunks[2]}).ok());
    SearchRequest search;
    search.ns = "m";
    search.dim = 2;
    search.queries = {1.0f, 0.0f};
    search.k = 2;
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(client_->Search(search).ok());
    EXPECT_EQ(client_->GetNamespace("nope").status().code(), absl::StatusCode::kNotFound);
  }

  std::string Scrape() {
    httplib::Client http("127.0.0.1", metrics_port_);
    http.set_connection_timeout(2);
    http.set_read_timeout(10);
    auto res = http.Get("/metrics");
    if (!res || res->status != 200) return "";
    EXPECT_NE(res->get_header_value("Content-Type").find("text/plain"), std::string::npos);
    return res->body;
  }

  // promtool's own lint of the exposition format.
  void ExpectPromtoolAccepts(const std::string& text) {
    const std::string promtool = Which("promtool");
    ASSERT_FALSE(promtool.empty()) << "promtool not found: install Debian's prometheus";
    const std::string file = dir_ + "/metrics.txt";
    std::ofstream(file) << text;
    const std::string cmd = absl::StrCat(promtool, " check metrics < ", file, " > ", dir_,
                                         "/promtool.log 2>&1");
    const int rc = std::system(cmd.c_str());
    EXPECT_EQ(rc, 0) << "promtool check metrics failed: " << ReadFile(dir_ + "/promtool.log")
                     << "\n" << text;
  }

  std::string dir_;
  std::unique_ptr<MnemodProcess> mnemod_;
  std::unique_ptr<Client> client_;
  int metrics_port_ = 0;
  pid_t prometheus_pid_ = -1;
};

TEST_F(MetricsTest, ExpositionCountsTheRpcsAndTheStore) {
  Traffic();
  const std::string text = Scrape();
  ASSERT_FALSE(text.empty());
  const std::string svc = "service=\"mnemo.v1.Mnemo\"";
  EXPECT_EQ(Sample(text, "mnemo_rpc_handled_total{code=\"OK\",method=\"Search\"," + svc + "}"), 5);
  EXPECT_EQ(Sample(text, "mnemo_rpc_handled_total{code=\"OK\",method=\"Upsert\"," + svc + "}"), 2);
  EXPECT_EQ(
      Sample(text, "mnemo_rpc_handled_total{code=\"NOT_FOUND\",method=\"GetNamespace\"," + svc + "}"),
      1);
  EXPECT_EQ(Sample(text, "mnemo_rpc_handling_seconds_count{code=\"OK\",method=\"Search\"," + svc +
                             "}"),
            5);
  EXPECT_EQ(Sample(text, "mnemo_rpc_handling_seconds_bucket{code=\"OK\",method=\"Search\"," + svc +
                             ",le=\"+Inf\"}"),
            5);
  EXPECT_EQ(Sample(text, "mnemo_rpc_received_messages_total{method=\"Search\"," + svc + "}"), 5);
  EXPECT_GT(Sample(text, "mnemo_rpc_sent_bytes_total{method=\"Search\"," + svc + "}"), 0);
  EXPECT_EQ(Sample(text, "mnemo_rpc_in_flight{method=\"Search\"," + svc + "}"), 0);
  EXPECT_EQ(Sample(text, "mnemo_ingested_chunks_total{namespace=\"m\"}"), 3);
  EXPECT_EQ(Sample(text, "mnemo_namespace_chunks{namespace=\"m\"}"), 3);
  EXPECT_EQ(Sample(text, "mnemo_namespace_chunks{namespace=\"nope\"}"), -1);

  ExpectPromtoolAccepts(text);
}

// GetKv is served raw (server/kv_block_wire.h): the interceptor sees byte
// buffers there, not protobuf messages, and still counts the call and its
// request bytes.
TEST_F(MetricsTest, RawGetKvIsCountedLikeTheOthers) {
  auto stub = v1::MnemoKv::NewStub(
      grpc::CreateChannel(mnemod_->target(), grpc::InsecureChannelCredentials()));
  v1::GetKvRequest request;
  request.set_namespace_("nokv");
  request.add_chunk_ids("x");
  for (int i = 0; i < 2; ++i) {
    grpc::ClientContext ctx;
    auto reader = stub->GetKv(&ctx, request);
    v1::GetKvResponse response;
    EXPECT_FALSE(reader->Read(&response));
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
  }
  const std::string text = Scrape();
  ASSERT_FALSE(text.empty());
  const std::string svc = "service=\"mnemo.v1.MnemoKv\"";
  EXPECT_EQ(Sample(text, "mnemo_rpc_handled_total{code=\"NOT_FOUND\",method=\"GetKv\"," + svc +
                             "}"),
            2);
  EXPECT_EQ(Sample(text, "mnemo_rpc_received_messages_total{method=\"GetKv\"," + svc + "}"), 2);
  EXPECT_EQ(Sample(text, "mnemo_rpc_received_bytes_total{method=\"GetKv\"," + svc + "}"),
            2.0 * request.ByteSizeLong());
  ExpectPromtoolAccepts(text);
}

// Quota gauges: a limit sample per limit that is set (none for the
// namespace without a quota), a usage sample per resource, equal to what
// GetNamespace reports, following a quota change and a delete.
TEST_F(MetricsTest, QuotaGaugesShowTheLimitsThatAreSetAndTheUsage) {
  Traffic();  // namespace "m": 3 chunks, no quota
  NamespaceConfig config;
  config.name = "q";
  config.dim = 2;
  config.quota.max_chunks = 5;
  config.quota.max_bytes = 1 << 20;
  ASSERT_TRUE(client_->CreateNamespace(config).ok());
  std::vector<Chunk> chunks(2);
  for (int i = 0; i < 2; ++i) {
    chunks[i].id = absl::StrCat("q", i);
    chunks[i].text = "quota counted text";
    chunks[i].vector = {0.5f, static_cast<float>(i)};
  }
  ASSERT_TRUE(client_->Upsert("q", {}, chunks).ok());
  auto info = client_->GetNamespace("q");
  ASSERT_TRUE(info.ok()) << info.status();
  ASSERT_GT(info->usage.bytes, 0u);
  auto m = client_->GetNamespace("m");
  ASSERT_TRUE(m.ok()) << m.status();

  auto limit = [](const std::string& ns, const std::string& resource) {
    return absl::StrCat("mnemo_namespace_quota_limit{namespace=\"", ns, "\",resource=\"",
                        resource, "\"}");
  };
  auto usage = [](const std::string& ns, const std::string& resource) {
    return absl::StrCat("mnemo_namespace_quota_usage{namespace=\"", ns, "\",resource=\"",
                        resource, "\"}");
  };
  std::string text = Scrape();
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(Sample(text, limit("q", "chunks")), 5);
  EXPECT_EQ(Sample(text, limit("q", "bytes")), 1 << 20);
  EXPECT_EQ(Sample(text, limit("q", "kv_bytes")), -1);  // not set: no sample
  EXPECT_EQ(Sample(text, usage("q", "chunks")), 2);
  EXPECT_EQ(Sample(text, usage("q", "bytes")), static_cast<double>(info->usage.bytes));
  EXPECT_EQ(Sample(text, usage("q", "kv_bytes")), 0);
  for (const char* resource : {"bytes", "chunks", "kv_bytes"}) {
    EXPECT_EQ(Sample(text, limit("m", resource)), -1) << resource;
  }
  EXPECT_EQ(Sample(text, usage("m", "chunks")), 3);
  EXPECT_EQ(Sample(text, usage("m", "bytes")), static_cast<double>(m->usage.bytes));
  ExpectPromtoolAccepts(text);

  // A limit set, one removed, a chunk deleted: the next scrape follows.
  QuotaChange change;
  change.max_kv_bytes = 4096;
  change.max_bytes = 0;
  ASSERT_TRUE(client_->SetNamespaceQuota("q", change).ok());
  ASSERT_TRUE(client_->Delete("q", {"q0"}, {}).ok());
  info = client_->GetNamespace("q");
  ASSERT_TRUE(info.ok()) << info.status();
  ASSERT_GT(info->usage.bytes, 0u);
  text = Scrape();
  EXPECT_EQ(Sample(text, limit("q", "kv_bytes")), 4096);
  EXPECT_EQ(Sample(text, limit("q", "bytes")), -1);
  EXPECT_EQ(Sample(text, limit("q", "chunks")), 5);
  EXPECT_EQ(Sample(text, usage("q", "chunks")), 1);
  EXPECT_EQ(Sample(text, usage("q", "bytes")), static_cast<double>(info->usage.bytes));
  ExpectPromtoolAccepts(text);
}

TEST_F(MetricsTest, RealPrometheusScrapesIt) {
  const std::string prometheus = Which("prometheus");
  ASSERT_FALSE(prometheus.empty()) << "prometheus not found: install Debian's prometheus";
  Traffic();
  const std::string config = dir_ + "/prometheus.yml";
  std::ofstream(config) << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                        << "scrape_configs:\n  - job_name: mnemod\n    static_configs:\n"
                        << "      - targets: ['127.0.0.1:" << metrics_port_ << "']\n";
  const int web_port = FreePort();
  ASSERT_GT(web_port, 0);
  std::vector<std::string> args = {prometheus,
                                   "--config.file=" + config,
                                   "--storage.tsdb.path=" + dir_ + "/tsdb",
                                   absl::StrCat("--web.listen-address=127.0.0.1:", web_port),
                                   "--log.level=warn"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  const std::string log_path = dir_ + "/prometheus.log";
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  ASSERT_EQ(posix_spawn(&prometheus_pid_, prometheus.c_str(), &actions, nullptr, argv.data(),
                        environ),
            0);
  posix_spawn_file_actions_destroy(&actions);

  // Poll Prometheus' query API until it has scraped the counts (a scrape a
  // second; its start takes a few seconds).
  httplib::Client api("127.0.0.1", web_port);
  api.set_connection_timeout(2);
  api.set_read_timeout(5);
  const httplib::Params query = {
      {"query", "sum(mnemo_rpc_handled_total{job=\"mnemod\",method=\"Search\",code=\"OK\"})"}};
  double seen = -1;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    auto res = api.Get("/api/v1/query", query, httplib::Headers{});
    if (res && res->status == 200) {
      auto j = nlohmann::json::parse(res->body, nullptr, false);
      if (!j.is_discarded() && j["status"] == "success" && !j["data"]["result"].empty()) {
        seen = std::stod(j["data"]["result"][0]["value"][1].get<std::string>());
        if (seen == 5) break;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  const std::string log = ReadFile(log_path);
  EXPECT_EQ(seen, 5) << "prometheus log:\n" << log;

  // The target is healthy: `up` is 1 for the mnemod job.
  auto res = api.Get("/api/v1/query", httplib::Params{{"query", "up{job=\"mnemod\"}"}},
                     httplib::Headers{});
  ASSERT_TRUE(res && res->status == 200);
  auto j = nlohmann::json::parse(res->body);
  ASSERT_FALSE(j["data"]["result"].empty()) << res->body;
  EXPECT_EQ(j["data"]["result"][0]["value"][1], "1");
}

TEST(MetricsFlagsTest, BadListenAddressFailsAtStart) {
  auto proc = MnemodProcess::Start({"--metrics-listen", "no-port-here"});
  ASSERT_FALSE(proc.ok());
  EXPECT_NE(std::string(proc.status().message()).find("not HOST:PORT"), std::string::npos)
      << proc.status();
}

}  // namespace
}  // namespace mnemo
