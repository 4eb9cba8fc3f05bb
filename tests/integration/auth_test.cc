// API-key authentication end to end (issue 16, "Auth"): a real mnemod
// started with --admin-key-file, the SDK, the CLI and raw gRPC calls.
// - the auth matrix: every RPC of every service, from the proto
//   descriptors, with no key (UNAUTHENTICATED), with keys of each role on
//   the namespace it names or on another one (PERMISSION_DENIED exactly
//   where the role does not cover the call, as kNeeds below says);
// - a refused write changes nothing; revoking works at once; keys survive
//   restarts and crashes; the data directory never holds a secret;
// - per-key and server-wide request rates; the --insecure rule; the CLI.
#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "mnemo/client.h"
#include "common/status_macros.h"
#include "mnemo/v1/auth.grpc.pb.h"
#include "mnemo/v1/inject.grpc.pb.h"
#include "mnemo/v1/memory.grpc.pb.h"
#include "mnemo/v1/mnemo.grpc.pb.h"
#include "mnemod_process.h"
#include "nlohmann/json.hpp"
#include "shell_run.h"

namespace mnemo {
namespace {

namespace fs = std::filesystem;
using testing::MnemodProcess;
using testing::Shell;

constexpr char kAdminKey[] = "test-admin-key-0123456789abcdef";

// What each RPC needs. kAny: any valid key; kGlobal: admin on "*";
// kNotFound: RevokeKey of an unknown id, NOT_FOUND for any valid key.
enum class Needs { kAny, kRead, kWrite, kAdmin, kGlobal, kNotFound };

const std::map<std::string, Needs>& NeedsTable() {
  static const auto* table = new std::map<std::string, Needs>{
      {"mnemo.v1.Mnemo/CreateNamespace", Needs::kAdmin},
      {"mnemo.v1.Mnemo/GetNamespace", Needs::kRead},
      {"mnemo.v1.Mnemo/ListNamespaces", Needs::kAny},
      {"mnemo.v1.Mnemo/DropNamespace", Needs::kAdmin},
      {"mnemo.v1.Mnemo/Upsert", Needs::kWrite},
      {"mnemo.v1.Mnemo/UpsertStream", Needs::kWrite},
      {"mnemo.v1.Mnemo/Get", Needs::kRead},
      {"mnemo.v1.Mnemo/Delete", Needs::kWrite},
      {"mnemo.v1.Mnemo/Search", Needs::kRead},
      {"mnemo.v1.Mnemo/Stats", Needs::kRead},
      {"mnemo.v1.Mnemo/Checkpoint", Needs::kGlobal},
      {"mnemo.v1.Mnemo/Compact", Needs::kAdmin},
      {"mnemo.v1.Mnemo/CreateBackup", Needs::kGlobal},
      {"mnemo.v1.Mnemo/ListBackups", Needs::kGlobal},
      {"mnemo.v1.Mnemo/VerifyBackup", Needs::kGlobal},
      {"mnemo.v1.Mnemo/SetNamespaceQuota", Needs::kGlobal},
      {"mnemo.v1.MnemoKv/RegisterKvModel", Needs::kAdmin},
      {"mnemo.v1.MnemoKv/PutKv", Needs::kWrite},
      {"mnemo.v1.MnemoKv/GetKv", Needs::kRead},
      {"mnemo.v1.MnemoKv/ExistsKv", Needs::kRead},
      {"mnemo.v1.MnemoKv/DeleteKv", Needs::kWrite},
      {"mnemo.v1.MnemoKv/LookupKvPrefix", Needs::kRead},
      {"mnemo.v1.MnemoKv/SetKvRetention", Needs::kWrite},
      {"mnemo.v1.MnemoKv/GetKvStats", Needs::kRead},
      {"mnemo.v1.MnemoKv/Attend", Needs::kRead},
      {"mnemo.v1.MnemoKv/KvArenaInfo", Needs::kAny},
      {"mnemo.v1.MnemoKv/KvArenaRelease", Needs::kAny},
      {"mnemo.v1.MnemoInject/RegisterInjectionModel", Needs::kAdmin},
      {"mnemo.v1.MnemoInject/GetInjectionModel", Needs::kRead},
      {"mnemo.v1.MnemoInject/Recall", Needs::kRead},
      {"mnemo.v1.MnemoMemory/MemoryAdd", Needs::kWrite},
      {"mnemo.v1.MnemoMemory/MemorySearch", Needs::kRead},
      {"mnemo.v1.MnemoMemory/MemoryGet", Needs::kRead},
      {"mnemo.v1.MnemoMemory/MemoryList", Needs::kRead},
      {"mnemo.v1.MnemoMemory/MemoryUpdate", Needs::kWrite},
      {"mnemo.v1.MnemoMemory/MemoryDelete", Needs::kWrite},
      {"mnemo.v1.MnemoMemory/MemoryDeleteAll", Needs::kWrite},
      {"mnemo.v1.MnemoMemory/MemoryHistory", Needs::kRead},
      {"mnemo.v1.MnemoMemory/MemoryReset", Needs::kAdmin},
      {"mnemo.v1.MnemoMemory/BlockGet", Needs::kRead},
      {"mnemo.v1.MnemoMemory/BlockEdit", Needs::kWrite},
      {"mnemo.v1.MnemoMemory/BlockHistory", Needs::kRead},
      {"mnemo.v1.MnemoMemory/AppendMessages", Needs::kWrite},
      {"mnemo.v1.MnemoMemory/SearchMessages", Needs::kRead},
      {"mnemo.v1.MnemoMemory/ListMessages", Needs::kRead},
      {"mnemo.v1.MnemoMemory/DeleteRun", Needs::kWrite},
      {"mnemo.v1.MnemoAuth/CreateKey", Needs::kAdmin},
      {"mnemo.v1.MnemoAuth/ListKeys", Needs::kAdmin},
      {"mnemo.v1.MnemoAuth/RevokeKey", Needs::kNotFound},
  };
  return *table;
}

// Every method of mnemod's services, as "package.Service/Method", with its
// request type.
std::vector<const google::protobuf::MethodDescriptor*> AllMethods() {
  // Touch one message of each file so its descriptors are registered.
  const google::protobuf::FileDescriptor* files[] = {
      v1::UpsertRequest::descriptor()->file(), v1::RecallRequest::descriptor()->file(),
      v1::MemoryAddRequest::descriptor()->file(), v1::CreateKeyRequest::descriptor()->file()};
  std::vector<const google::protobuf::MethodDescriptor*> out;
  for (const auto* file : files) {
    for (int s = 0; s < file->service_count(); ++s) {
      for (int m = 0; m < file->service(s)->method_count(); ++m) {
        out.push_back(file->service(s)->method(m));
      }
    }
  }
  return out;
}

std::string FullName(const google::protobuf::MethodDescriptor* m) {
  return absl::StrCat(m->service()->full_name(), "/", m->name());
}

// Points the request at namespace `ns` wherever it names one: a top-level
// `namespace`, the `name` of Get/DropNamespace, CreateNamespace's
// config.name, PutKv's header and Attend's open message.
void AimAt(google::protobuf::Message* msg, const std::string& ns) {
  const auto* d = msg->GetDescriptor();
  const auto* r = msg->GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const auto* f = d->field(i);
    if (f->is_repeated()) continue;
    if (f->type() == google::protobuf::FieldDescriptor::TYPE_STRING &&
        (f->name() == "namespace" ||
         (f->name() == "name" && (d->name() == "GetNamespaceRequest" ||
                                  d->name() == "DropNamespaceRequest" ||
                                  d->name() == "NamespaceConfig")))) {
      r->SetString(msg, f, ns);
    } else if (f->type() == google::protobuf::FieldDescriptor::TYPE_MESSAGE &&
               (f->name() == "config" || f->name() == "header" || f->name() == "open")) {
      AimAt(r->MutableMessage(msg, f), ns);
    }
  }
}

NewApiKey KeyFor(const std::string& ns, ApiKeyRole role, const std::string& name = "") {
  NewApiKey k;
  k.ns = ns;
  k.role = role;
  k.name = name;
  return k;
}

class AuthTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto dir = testing::MakeTempDir("mnemo-auth");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = new std::string(*dir);
    std::ofstream(KeyFile()) << kAdminKey << "\n";
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(*dir_, ec);
    delete dir_;
  }
  static std::string KeyFile() { return *dir_ + "/admin.key"; }

  void SetUp() override {
    server_ = Start();
    ASSERT_NE(server_, nullptr);
    admin_ = Connect(kAdminKey);
    ASSERT_NE(admin_, nullptr);
  }

  static std::unique_ptr<MnemodProcess> Start(std::vector<std::string> extra = {},
                                              const std::string& data_dir = "") {
    std::vector<std::string> flags = {"--admin-key-file", KeyFile()};
    flags.insert(flags.end(), extra.begin(), extra.end());
    auto proc = MnemodProcess::Start(flags, data_dir);
    EXPECT_TRUE(proc.ok()) << proc.status();
    return proc.ok() ? *std::move(proc) : nullptr;
  }

  std::unique_ptr<Client> Connect(const std::string& key) {
    ClientOptions o;
    o.api_key = key;
    o.max_attempts = 1;
    o.connect_timeout = std::chrono::seconds(10);
    auto client = Client::Connect(server_->target(), o);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }

  // A new key's text (created by the admin).
  std::string NewKey(const std::string& ns, ApiKeyRole role, double rps = 0, uint32_t burst = 0) {
    NewApiKey k;
    k.ns = ns;
    k.role = role;
    k.rate_limit_rps = rps;
    k.rate_limit_burst = burst;
    auto created = admin_->CreateApiKey(k);
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? created->key : "";
  }

  void MakeNamespace(const std::string& name) {
    NamespaceConfig config;
    config.name = name;
    config.dim = 2;
    ASSERT_TRUE(admin_->CreateNamespace(config).ok());
    Chunk c;
    c.id = name + "-c1";
    c.vector = {1, 0};
    c.text = "original";
    ASSERT_TRUE(admin_->Upsert(name, {}, {c}).ok());
  }

  // One raw call of `method` with `request`, carrying `key` (none when
  // empty): the status mnemod answers.
  grpc::Status RawCall(const google::protobuf::MethodDescriptor* method,
                       const google::protobuf::Message& request, const std::string& key) {
    if (channel_ == nullptr) {
      channel_ = grpc::CreateChannel(server_->target(), grpc::InsecureChannelCredentials());
    }
    grpc::GenericStub stub(channel_);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    if (!key.empty()) ctx.AddMetadata("authorization", absl::StrCat("Bearer ", key));
    const std::string bytes = request.SerializeAsString();
    grpc::Slice slice(bytes);
    grpc::ByteBuffer req(&slice, 1), resp;
    std::promise<grpc::Status> done;
    stub.UnaryCall(&ctx, absl::StrCat("/", FullName(method)), grpc::StubOptions(), &req, &resp,
                   [&done](grpc::Status s) { done.set_value(std::move(s)); });
    return done.get_future().get();
  }

  static std::string* dir_;
  std::unique_ptr<MnemodProcess> server_;
  std::unique_ptr<Client> admin_;
  std::shared_ptr<grpc::Channel> channel_;
};

std::string* AuthTest::dir_ = nullptr;

TEST_F(AuthTest, EveryMethodIsInTheNeedsTable) {
  std::vector<std::string> missing;
  for (const auto* m : AllMethods()) {
    if (!NeedsTable().contains(FullName(m))) missing.push_back(FullName(m));
  }
  EXPECT_TRUE(missing.empty()) << "methods without an auth rule in this test: "
                               << ::testing::PrintToString(missing);
}

TEST_F(AuthTest, EveryMethodWithoutAValidKeyIsUnauthenticated) {
  MakeNamespace("a");
  google::protobuf::DynamicMessageFactory factory;
  for (const auto* m : AllMethods()) {
    std::unique_ptr<google::protobuf::Message> req(factory.GetPrototype(m->input_type())->New());
    AimAt(req.get(), "a");
    for (const std::string& key :
         {std::string(), std::string("wrong-admin-key-0123456789"),
          std::string("mk_0123456789abcdef.") + std::string(64, 'a')}) {
      grpc::Status s = RawCall(m, *req, key);
      EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED)
          << FullName(m) << " key '" << key << "': " << s.error_message();
    }
  }
  // Nothing changed: the chunk is still there as written.
  auto got = admin_->Get("a", {"a-c1"}, {}, false);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->chunks.size(), 1u);
  EXPECT_EQ(got->chunks[0].text, "original");
}

// The auth matrix: every RPC x {read, write, admin} on the namespace it
// names, and x a key on another namespace.
TEST_F(AuthTest, EveryMethodNeedsItsRoleOnItsNamespace) {
  MakeNamespace("a");
  MakeNamespace("b");
  google::protobuf::DynamicMessageFactory factory;
  const std::vector<std::pair<ApiKeyRole, Needs>> roles = {
      {ApiKeyRole::kRead, Needs::kRead},
      {ApiKeyRole::kWrite, Needs::kWrite},
      {ApiKeyRole::kAdmin, Needs::kAdmin}};
  for (const auto& [role, level] : roles) {
    const std::string on_a = NewKey("a", role);
    for (const auto* m : AllMethods()) {
      const Needs needs = NeedsTable().at(FullName(m));
      std::unique_ptr<google::protobuf::Message> req(
          factory.GetPrototype(m->input_type())->New());
      AimAt(req.get(), "b");
      // A key on "a" calling into "b": refused unless the call needs no namespace.
      grpc::Status other = RawCall(m, *req, on_a);
      if (needs == Needs::kAny || needs == Needs::kNotFound) {
        EXPECT_NE(other.error_code(), grpc::StatusCode::PERMISSION_DENIED) << FullName(m);
        EXPECT_NE(other.error_code(), grpc::StatusCode::UNAUTHENTICATED) << FullName(m);
      } else {
        EXPECT_EQ(other.error_code(), grpc::StatusCode::PERMISSION_DENIED)
            << FullName(m) << " into b: " << other.error_message();
      }
      // On its own namespace: allowed exactly when the role covers it.
      AimAt(req.get(), "a");
      grpc::Status own = RawCall(m, *req, on_a);
      const bool covered =
          needs == Needs::kAny || needs == Needs::kNotFound ||
          (needs != Needs::kGlobal && static_cast<int>(level) >= static_cast<int>(needs));
      if (covered) {
        EXPECT_NE(own.error_code(), grpc::StatusCode::PERMISSION_DENIED)
            << FullName(m) << " with " << static_cast<int>(role) << ": " << own.error_message();
        EXPECT_NE(own.error_code(), grpc::StatusCode::UNAUTHENTICATED) << FullName(m);
      } else {
        EXPECT_EQ(own.error_code(), grpc::StatusCode::PERMISSION_DENIED)
            << FullName(m) << " with role " << static_cast<int>(role) << ": "
            << own.error_message();
      }
    }
  }
  // The global admin passes every check.
  for (const auto* m : AllMethods()) {
    std::unique_ptr<google::protobuf::Message> req(factory.GetPrototype(m->input_type())->New());
    AimAt(req.get(), "b");
    grpc::Status s = RawCall(m, *req, kAdminKey);
    EXPECT_NE(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << FullName(m);
    EXPECT_NE(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << FullName(m);
  }
}

TEST_F(AuthTest, RefusedWritesChangeNothingAndNameTheRole) {
  MakeNamespace("a");
  auto reader = Connect(NewKey("a", ApiKeyRole::kRead));
  ASSERT_NE(reader, nullptr);
  Chunk c;
  c.id = "a-c1";
  c.vector = {0, 1};
  c.text = "overwritten";
  absl::Status up = reader->Upsert("a", {}, {c}).status();
  EXPECT_EQ(up.code(), absl::StatusCode::kPermissionDenied) << up;
  EXPECT_NE(up.message().find("role write on namespace 'a'"), std::string::npos) << up;
  auto stream = reader->UpsertStream("a");
  ASSERT_TRUE(stream.ok());
  mnemo::IgnoreError((*stream)->Write({}, {c}));
  EXPECT_EQ((*stream)->Finish().status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(reader->Delete("a", {"a-c1"}, {}).status().code(),
            absl::StatusCode::kPermissionDenied);
  absl::Status drop = reader->DropNamespace("a");
  EXPECT_EQ(drop.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(drop.message().find("role admin"), std::string::npos) << drop;

  auto got = reader->Get("a", {"a-c1"}, {}, true);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->chunks.size(), 1u);
  EXPECT_EQ(got->chunks[0].text, "original");
  EXPECT_EQ(got->chunks[0].vector, (std::vector<float>{1, 0}));
  auto info = admin_->GetNamespace("a");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->chunk_count, 1u);

  // A writer may write; a read key on "*" may read everything, write nothing.
  auto writer = Connect(NewKey("a", ApiKeyRole::kWrite));
  ASSERT_TRUE(writer->Upsert("a", {}, {c}).ok());
  auto everything = Connect(NewKey("*", ApiKeyRole::kRead));
  got = everything->Get("a", {"a-c1"}, {}, false);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->chunks.at(0).text, "overwritten");
  EXPECT_EQ(everything->Delete("a", {"a-c1"}, {}).status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(AuthTest, ListNamespacesShowsOnlyReadableOnes) {
  MakeNamespace("a");
  MakeNamespace("b");
  auto reader = Connect(NewKey("b", ApiKeyRole::kRead));
  auto list = reader->ListNamespaces();
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].config.name, "b");
  list = admin_->ListNamespaces();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 2u);
}

TEST_F(AuthTest, NamespaceAdminsManageOnlyTheirKeys) {
  const std::string ns_admin_key = NewKey("a", ApiKeyRole::kAdmin);
  auto ns_admin = Connect(ns_admin_key);
  NamespaceConfig config;
  config.name = "a";
  config.dim = 2;
  EXPECT_TRUE(ns_admin->CreateNamespace(config).ok());
  // The audit line names the key that did it ("mk_<id>.<secret>").
  const std::string ns_admin_id = ns_admin_key.substr(3, 16);
  const std::string log = server_->LogTail(1 << 20);
  EXPECT_NE(log.find(absl::StrCat("namespace=a dim=2 index_factory=Flat by=", ns_admin_id)),
            std::string::npos)
      << log;
  config.name = "b";
  EXPECT_EQ(ns_admin->CreateNamespace(config).status().code(),
            absl::StatusCode::kPermissionDenied);

  NewApiKey k;
  k.ns = "a";
  k.role = ApiKeyRole::kRead;
  auto mine = ns_admin->CreateApiKey(k);
  ASSERT_TRUE(mine.ok()) << mine.status();
  k.ns = "b";
  EXPECT_EQ(ns_admin->CreateApiKey(k).status().code(), absl::StatusCode::kPermissionDenied);
  k.ns = "*";
  EXPECT_EQ(ns_admin->CreateApiKey(k).status().code(), absl::StatusCode::kPermissionDenied);
  auto theirs = admin_->CreateApiKey(KeyFor("b", ApiKeyRole::kRead));
  ASSERT_TRUE(theirs.ok());

  auto listed = ns_admin->ListApiKeys("a");
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(listed->size(), 2u);  // its own key and the one it made
  EXPECT_EQ(ns_admin->ListApiKeys("").status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ns_admin->RevokeApiKey(theirs->info.id).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(ns_admin->RevokeApiKey(mine->info.id).ok());
  EXPECT_EQ(ns_admin->RevokeApiKey(mine->info.id).code(), absl::StatusCode::kNotFound);
  auto all = admin_->ListApiKeys("");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 2u);  // ns_admin's key and theirs
}

TEST_F(AuthTest, RevokedKeysStopAndKeysSurviveRestartAndCrash) {
  MakeNamespace("a");
  auto created = admin_->CreateApiKey(KeyFor("a", ApiKeyRole::kRead, "survivor"));
  ASSERT_TRUE(created.ok());
  auto doomed = admin_->CreateApiKey(KeyFor("a", ApiKeyRole::kRead));
  ASSERT_TRUE(doomed.ok());
  // Restarts run on a copy in the suite's directory: the first server's
  // own directory goes when its MnemodProcess does.
  const std::string data_dir = *dir_ + "/kept-data";
  admin_.reset();
  ASSERT_TRUE(server_->Stop().ok());
  std::error_code ec;
  fs::copy(server_->data_dir(), data_dir, fs::copy_options::recursive, ec);
  ASSERT_FALSE(ec) << ec.message();

  server_ = Start({}, data_dir);
  ASSERT_NE(server_, nullptr);
  admin_ = Connect(kAdminKey);
  auto survivor = Connect(created->key);
  EXPECT_TRUE(survivor->ListNamespaces().ok());
  auto gone = Connect(doomed->key);
  EXPECT_TRUE(gone->GetNamespace("a").ok());
  ASSERT_TRUE(admin_->RevokeApiKey(doomed->info.id).ok());
  EXPECT_EQ(gone->GetNamespace("a").status().code(), absl::StatusCode::kUnauthenticated);

  // A crash right after a key change keeps it (each change is a synced write).
  auto late = admin_->CreateApiKey(KeyFor("a", ApiKeyRole::kWrite));
  ASSERT_TRUE(late.ok());
  survivor.reset();
  gone.reset();
  admin_.reset();
  server_->Kill();
  server_ = Start({}, data_dir);
  ASSERT_NE(server_, nullptr);
  EXPECT_TRUE(Connect(created->key)->GetNamespace("a").ok());
  EXPECT_TRUE(Connect(late->key)->GetNamespace("a").ok());
  EXPECT_EQ(Connect(doomed->key)->GetNamespace("a").status().code(),
            absl::StatusCode::kUnauthenticated);
  admin_ = Connect(kAdminKey);
  auto all = admin_->ListApiKeys("");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 2u);
  admin_.reset();
  ASSERT_TRUE(server_->Stop().ok());
  fs::remove_all(data_dir, ec);
}

TEST_F(AuthTest, TheDataDirectoryHoldsNoSecret) {
  auto created = admin_->CreateApiKey(KeyFor("*", ApiKeyRole::kAdmin));
  ASSERT_TRUE(created.ok());
  const std::string secret =
      created->key.substr(created->key.find('.') + 1);  // "mk_<id>.<secret>"
  ASSERT_EQ(secret.size(), 64u);
  // Killed: the record is in the write-ahead log, uncompressed, so a grep
  // for the id finds it and a grep for the secret would too.
  admin_.reset();
  server_->Kill();
  const std::string dir = server_->data_dir();
  EXPECT_EQ(Shell(absl::StrCat("grep -rqaF '", created->info.id, "' ", dir)).exit_code, 0);
  EXPECT_EQ(Shell(absl::StrCat("grep -rqaF '", secret, "' ", dir)).exit_code, 1);
  EXPECT_EQ(Shell(absl::StrCat("grep -rqaF '", kAdminKey, "' ", dir)).exit_code, 1);
}

TEST_F(AuthTest, PerKeyRateLimit) {
  MakeNamespace("a");
  auto limited = Connect(NewKey("a", ApiKeyRole::kRead, /*rps=*/0.2, /*burst=*/3));
  auto free = Connect(NewKey("a", ApiKeyRole::kRead));
  int ok = 0;
  absl::Status refused;
  for (int i = 0; i < 6; ++i) {
    absl::Status s = limited->GetNamespace("a").status();
    if (s.ok()) {
      ++ok;
    } else {
      refused = s;
    }
  }
  EXPECT_EQ(ok, 3);  // the burst; 0.2/s refills nothing meanwhile
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_NE(refused.message().find("rate limit"), std::string::npos) << refused;
  EXPECT_NE(refused.message().find("0.2 requests/s"), std::string::npos) << refused;
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(free->GetNamespace("a").ok());
}

TEST_F(AuthTest, ServerWideRateLimit) {
  admin_.reset();
  server_ = Start({"--rate-limit-rps", "0.1", "--rate-limit-burst", "2"});
  ASSERT_NE(server_, nullptr);
  admin_ = Connect(kAdminKey);
  EXPECT_TRUE(admin_->ListNamespaces().ok());
  EXPECT_TRUE(admin_->ListNamespaces().ok());
  EXPECT_EQ(admin_->ListNamespaces().status().code(), absl::StatusCode::kResourceExhausted);
}

// Serves on a non-loopback address? Runs mnemod on 0.0.0.0:0 with `flags`:
// the exit code when it stops by itself within 10 s, else 0 once serving.
int ServeAnyAddress(const std::string& flags) {
  const std::string script = absl::StrCat(
      "d=$(mktemp -d); ", testing::BinDir(), "/mnemod --listen 0.0.0.0:0 --data-dir $d/data "
      "--port-file $d/port ", flags, " >$d/log 2>&1 & pid=$!; rc=0; "
      "for i in $(seq 100); do [ -s $d/port ] && break; "
      "if ! kill -0 $pid 2>/dev/null; then wait $pid; rc=$?; break; fi; sleep 0.1; done; "
      "kill $pid 2>/dev/null; wait $pid 2>/dev/null; grep -h refusing $d/log; rm -rf $d; exit $rc");
  return Shell(script).exit_code;
}

TEST_F(AuthTest, NonLoopbackNeedsAuthOrInsecure) {
  EXPECT_EQ(ServeAnyAddress(""), 2);
  EXPECT_EQ(ServeAnyAddress("--insecure"), 0);
  EXPECT_EQ(ServeAnyAddress(absl::StrCat("--admin-key-file ", KeyFile())), 0);
}

TEST_F(AuthTest, BadAdminKeyFilesStopMnemod) {
  std::ofstream(*dir_ + "/short.key") << "tiny\n";
  auto short_key = MnemodProcess::Start({"--admin-key-file", *dir_ + "/short.key"});
  ASSERT_FALSE(short_key.ok());
  EXPECT_NE(std::string(short_key.status().message()).find("at least 16"), std::string::npos)
      << short_key.status();
  auto missing = MnemodProcess::Start({"--admin-key-file", *dir_ + "/nope.key"});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(std::string(missing.status().message()).find("nope.key"), std::string::npos);
}

TEST_F(AuthTest, Cli) {
  MakeNamespace("a");
  const std::string cli = absl::StrCat(testing::BinDir(), "/mnemo --server ", server_->target());
  const std::string as_admin = absl::StrCat("MNEMO_API_KEY=", kAdminKey, " ", cli);
  auto created = Shell(as_admin + " auth create-key --ns a --role read --name ci --json");
  ASSERT_EQ(created.exit_code, 0) << created.out;
  const nlohmann::json j = nlohmann::json::parse(created.out);
  const std::string key = j.at("key");
  const std::string id = j.at("id");
  EXPECT_EQ(j.at("role"), "read");
  EXPECT_EQ(key.rfind("mk_" + id + ".", 0), 0u) << key;

  auto listed = Shell(absl::StrCat(cli, " --api-key ", key, " ns list --json"));
  EXPECT_EQ(listed.exit_code, 0) << listed.out;
  EXPECT_NE(listed.out.find("\"a\""), std::string::npos) << listed.out;
  auto denied = Shell(absl::StrCat(cli, " --api-key ", key, " ns drop a --yes"));
  EXPECT_EQ(denied.exit_code, 1);
  EXPECT_NE(denied.out.find("PERMISSION_DENIED"), std::string::npos) << denied.out;
  auto anonymous = Shell(cli + " ns list");
  EXPECT_EQ(anonymous.exit_code, 1);
  EXPECT_NE(anonymous.out.find("UNAUTHENTICATED"), std::string::npos) << anonymous.out;

  auto list = Shell(as_admin + " auth list");
  EXPECT_EQ(list.exit_code, 0) << list.out;
  EXPECT_NE(list.out.find(id + "  read on a  name=ci"), std::string::npos) << list.out;
  EXPECT_EQ(list.out.find(key), std::string::npos) << "a listing shows a secret";
  auto revoked = Shell(as_admin + " auth revoke " + id);
  EXPECT_EQ(revoked.exit_code, 0) << revoked.out;
  auto after = Shell(absl::StrCat("MNEMO_API_KEY=", key, " ", cli, " ns list"));
  EXPECT_EQ(after.exit_code, 1);
  EXPECT_NE(after.out.find("UNAUTHENTICATED"), std::string::npos) << after.out;
}

TEST(AuthOffTest, AuthCallsNeedAuthOnAndKeysAreIgnored) {
  auto server = MnemodProcess::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  ClientOptions o;
  o.api_key = "anything-at-all";
  auto client = Client::Connect((*server)->target(), o);
  ASSERT_TRUE(client.ok());
  EXPECT_TRUE((*client)->ListNamespaces().ok());
  EXPECT_EQ((*client)->ListApiKeys("").status().code(), absl::StatusCode::kFailedPrecondition);
  o.api_key = "bad\nkey";
  EXPECT_EQ(Client::Connect((*server)->target(), o).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mnemo
