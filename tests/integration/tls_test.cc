// TLS end to end: certificates made by openssl for this test (a CA, a
// server certificate for 127.0.0.1, client certificates from that CA and
// from another one), mnemod with --tls-cert/--tls-key (and --tls-client-ca
// for mutual TLS), and the SDK and the CLI with --tls-ca. A client that
// does not trust the server, speaks plaintext, or lacks a required client
// certificate gets no service; bad TLS flags stop mnemod at start.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "mnemo/client.h"
#include "mnemod_process.h"

namespace mnemo {
namespace {

namespace fs = std::filesystem;
using testing::MnemodProcess;

// Runs a shell command quietly; true on exit status 0.
bool Sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0; }

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto dir = testing::MakeTempDir("mnemo-tls");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = new std::string(*dir);
    ASSERT_TRUE(Sh("command -v openssl")) << "openssl not found (Debian: openssl)";
    const std::string d = *dir_;
    const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    for (const std::string ca : {"ca", "other-ca"}) {
      ASSERT_TRUE(Sh(absl::StrCat("openssl req -x509 ", ec, " -keyout ", d, "/", ca, ".key -out ",
                                  d, "/", ca, ".pem -days 2 -subj '/CN=mnemo test ", ca, "'")));
    }
    std::ofstream(d + "/server.ext") << "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
    // server and client signed by ca; stranger signed by other-ca.
    for (const auto& [name, ca] : std::vector<std::pair<std::string, std::string>>{
             {"server", "ca"}, {"client", "ca"}, {"stranger", "other-ca"}}) {
      ASSERT_TRUE(Sh(absl::StrCat("openssl req ", ec, " -keyout ", d, "/", name, ".key -out ", d,
                                  "/", name, ".csr -subj '/CN=", name, "'")));
      ASSERT_TRUE(Sh(absl::StrCat("openssl x509 -req -in ", d, "/", name, ".csr -CA ", d, "/", ca,
                                  ".pem -CAkey ", d, "/", ca, ".key -CAcreateserial -out ", d,
                                  "/", name, ".pem -days 2",
                                  name == "server" ? " -extfile " + d + "/server.ext" : "")));
    }
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(*dir_, ec);
    delete dir_;
  }

  static std::string F(const std::string& name) { return *dir_ + "/" + name; }

  static std::unique_ptr<MnemodProcess> StartTls(bool mutual) {
    std::vector<std::string> flags = {"--tls-cert", F("server.pem"), "--tls-key", F("server.key")};
    if (mutual) {
      flags.push_back("--tls-client-ca");
      flags.push_back(F("ca.pem"));
    }
    auto proc = MnemodProcess::Start(flags);
    EXPECT_TRUE(proc.ok()) << proc.status();
    return proc.ok() ? *std::move(proc) : nullptr;
  }

  static ClientOptions Options(const std::string& ca, const std::string& cert = "",
                               const std::string& key = "") {
    ClientOptions o;
    o.tls_ca_file = ca.empty() ? "" : F(ca);
    o.tls_cert_file = cert.empty() ? "" : F(cert);
    o.tls_key_file = key.empty() ? "" : F(key);
    o.connect_timeout = std::chrono::milliseconds(2000);
    o.max_attempts = 1;
    return o;
  }

  // Connect + one call: OK only when the whole exchange works.
  static absl::Status Call(const MnemodProcess& server, const ClientOptions& options) {
    auto client = Client::Connect(server.target(), options);
    if (!client.ok()) return client.status();
    return (*client)->ListNamespaces().status();
  }

  static std::string* dir_;
};

std::string* TlsTest::dir_ = nullptr;

TEST_F(TlsTest, ServesClientsThatTrustItsCa) {
  auto server = StartTls(/*mutual=*/false);
  ASSERT_NE(server, nullptr);
  auto client = Client::Connect(server->target(), Options("ca.pem"));
  ASSERT_TRUE(client.ok()) << client.status();
  NamespaceConfig config;
  config.name = "secure";
  config.dim = 2;
  ASSERT_TRUE((*client)->CreateNamespace(config).ok());
  auto list = (*client)->ListNamespaces();
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].config.name, "secure");

  // Plaintext to a TLS server, or a CA that did not sign its certificate:
  // no service.
  EXPECT_EQ(Call(*server, Options("")).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(Call(*server, Options("other-ca.pem")).code(), absl::StatusCode::kUnavailable);

  // The CLI with --tls-ca.
  const std::string cli = testing::BinDir() + "/mnemo";
  EXPECT_TRUE(Sh(absl::StrCat(cli, " --server ", server->target(), " --tls-ca ", F("ca.pem"),
                              " ns get secure --json")));
  EXPECT_FALSE(Sh(absl::StrCat(cli, " --server ", server->target(), " --timeout 3 ns get secure")));
}

TEST_F(TlsTest, MutualTlsRequiresAClientCertificateFromItsCa) {
  auto server = StartTls(/*mutual=*/true);
  ASSERT_NE(server, nullptr);
  EXPECT_TRUE(Call(*server, Options("ca.pem", "client.pem", "client.key")).ok());
  EXPECT_EQ(Call(*server, Options("ca.pem")).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(Call(*server, Options("ca.pem", "stranger.pem", "stranger.key")).code(),
            absl::StatusCode::kUnavailable);
  const std::string cli = testing::BinDir() + "/mnemo";
  EXPECT_TRUE(Sh(absl::StrCat(cli, " --server ", server->target(), " --tls-ca ", F("ca.pem"),
                              " --tls-cert ", F("client.pem"), " --tls-key ", F("client.key"),
                              " ns list")));
}

TEST_F(TlsTest, BadClientOptionsAreRefusedBeforeConnecting) {
  EXPECT_EQ(Client::Connect("127.0.0.1:1", Options("ca.pem", "client.pem")).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Client::Connect("127.0.0.1:1", Options("", "client.pem", "client.key")).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Client::Connect("127.0.0.1:1", Options("missing.pem")).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Client::Connect("127.0.0.1:1", Options("server.ext")).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(TlsTest, BadServerFlagsStopMnemodAtStart) {
  auto no_key = MnemodProcess::Start({"--tls-cert", F("server.pem")});
  ASSERT_FALSE(no_key.ok());
  EXPECT_NE(std::string(no_key.status().message()).find("--tls-key"), std::string::npos)
      << no_key.status();
  auto missing = MnemodProcess::Start({"--tls-cert", F("nope.pem"), "--tls-key", F("server.key")});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(std::string(missing.status().message()).find("nope.pem"), std::string::npos)
      << missing.status();
  auto ca_only = MnemodProcess::Start({"--tls-client-ca", F("ca.pem")});
  ASSERT_FALSE(ca_only.ok());
}

}  // namespace
}  // namespace mnemo
