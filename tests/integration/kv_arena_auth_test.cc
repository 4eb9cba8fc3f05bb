// The KV arena tied to API keys (issue 16, Auth: "the same-host
// shared-memory KV path is tied to the caller's authenticated identity"):
// a real mnemod started with --admin-key-file and a 4 MiB arena, read
// through the SDK and through raw handshakes on the arena socket and raw
// gRPC calls for the refusals.
// - the hello needs a valid key: none, an unknown one, a revoked one, a
//   malformed request or none in time are refused without a descriptor,
//   and it counts against the key's request rate;
// - a session is its key's: another key (even the admin's) naming its
//   token in GetKv or KvArenaRelease gets PERMISSION_DENIED;
// - a key's role must cover the namespace read through its own session;
// - revoking a key releases its sessions' leases and closes their
//   connections; its later calls are UNAUTHENTICATED;
// - the SDK with ClientOptions::api_key reads leases byte for byte.
//
// The model (2 layers x 8 KV heads x 64, 256 tokens, fp32) makes every
// (chunk, layer) block 512 KiB of K plus 512 KiB of V: the arena holds four
// blocks, two chunks.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "mnemo/client.h"
#include "mnemo/kv_arena_wire.h"
#include "mnemo/v1/mnemo.grpc.pb.h"
#include "tests/integration/kv_arena_reads.h"
#include "tests/integration/kv_test_model.h"
#include "tests/integration/mnemod_process.h"

namespace mnemo::testing {
namespace {

constexpr char kAdminKey[] = "arena-admin-key-0123456789abcdef";
constexpr int kLayers = 2, kKvHeads = 8, kHeadDim = 64, kTokens = 256;

ModelFingerprint Model() { return KvTestModel(kLayers, kKvHeads * 2, kKvHeads, kHeadDim, 'b'); }

KvPut MakePut(const std::string& id, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  KvPut put;
  put.chunk_id = id;
  put.model = Model();
  for (int t = 0; t < kTokens; ++t) put.tokens.push_back(t);
  const size_t n = size_t{kKvHeads} * kTokens * kHeadDim;
  for (int l = 0; l < kLayers; ++l) {
    put.k.emplace_back(n);
    put.v.emplace_back(n);
    for (float& x : put.k.back()) x = normal(rng);
    for (float& x : put.v.back()) x = normal(rng);
  }
  return put;
}

// A raw connection to the arena socket: its hello and descriptor.
struct RawSession {
  int sock = -1, fd = -1;
  bool got_hello = false;
  KvArenaHello hello{};
  RawSession() = default;
  RawSession(const RawSession&) = delete;
  RawSession& operator=(const RawSession&) = delete;
  ~RawSession() {
    if (fd >= 0) close(fd);
    if (sock >= 0) close(sock);
  }
  std::string token() const {
    return std::string(reinterpret_cast<const char*>(hello.session_token), 16);
  }
  // Whether mnemod closed the connection, waiting up to `timeout`.
  bool ClosedByServer(std::chrono::milliseconds timeout) const {
    pollfd p{sock, POLLIN | POLLRDHUP, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
    char c = 0;
    const ssize_t n = recv(sock, &c, 1, MSG_DONTWAIT);
    // A reset when mnemod closed with bytes of ours unread (a refused request).
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }
};

enum class Request { kWellFormed, kBadMagic };

// Connects to the arena socket.
void ConnectTo(const std::string& path, RawSession* s) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  s->sock = socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_EQ(connect(s->sock, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
}

// Reads the hello and the descriptor it carries.
void ReadHello(RawSession* s) {
  iovec iov{&s->hello, sizeof(s->hello)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  s->got_hello = recvmsg(s->sock, &msg, MSG_WAITALL) == static_cast<ssize_t>(sizeof(s->hello));
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_type == SCM_RIGHTS) std::memcpy(&s->fd, CMSG_DATA(c), sizeof(int));
  }
}

// Connects, sends `request` carrying `key`, and reads the hello.
void Handshake(const std::string& path, const std::string& key, Request request,
               RawSession* s) {
  ConnectTo(path, s);
  KvArenaRequest header{};
  std::memcpy(header.magic, kKvArenaRequestMagic, sizeof(header.magic));
  if (request == Request::kBadMagic) header.magic[0] = 'X';
  header.key_bytes = static_cast<uint32_t>(key.size());
  std::string bytes(reinterpret_cast<const char*>(&header), sizeof(header));
  bytes += key;
  ASSERT_EQ(send(s->sock, bytes.data(), bytes.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(bytes.size()));
  ReadHello(s);
}

v1::GetKvRequest RawRequest(const std::string& ns, const std::string& token,
                            const std::vector<std::string>& ids) {
  return RawArenaGetKv(ns, token, Model(), ids);
}

class KvArenaAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = MakeTempDir("mnemo-arena-auth");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;
    std::ofstream(dir_ + "/admin.key") << kAdminKey << "\n";
    auto server = MnemodProcess::Start(
        {"--admin-key-file", dir_ + "/admin.key", "--kv-arena-bytes", "4194304"});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    admin_ = Connect(kAdminKey);
    ASSERT_NE(admin_, nullptr);
    stub_ = v1::MnemoKv::NewStub(
        grpc::CreateChannel(server_->target(), grpc::InsecureChannelCredentials()));
    for (const std::string ns : {"kv", "other"}) {
      NamespaceConfig config;
      config.name = ns;
      config.dim = 4;
      ASSERT_TRUE(admin_->CreateNamespace(config).ok());
      std::vector<Chunk> chunks;
      for (const char* id : {"a", "b", "c"}) {
        Chunk c;
        c.id = id;
        c.text = id;
        c.vector = {1, 0, 0, 0};
        chunks.push_back(c);
      }
      ASSERT_TRUE(admin_->Upsert(ns, {}, chunks).ok());
      KvConfig kv;
      kv.model = Model();
      kv.codec = KvCodec::kFp32;
      kv.entropy = false;
      ASSERT_TRUE(admin_->RegisterKvModel(ns, kv).ok());
    }
    for (const KvPut* put : {&a_, &b_, &c_}) {
      for (const std::string ns : {"kv", "other"}) {
        auto written = admin_->PutKv(ns, *put);
        ASSERT_TRUE(written.ok()) << written.status();
      }
    }
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", absl::StrCat("Bearer ", kAdminKey));
    v1::KvArenaInfoResponse info;
    ASSERT_TRUE(stub_->KvArenaInfo(&ctx, {}, &info).ok());
    socket_path_ = info.socket_path();
    ASSERT_FALSE(socket_path_.empty());
  }

  void TearDown() override {
    admin_.reset();
    server_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::unique_ptr<Client> Connect(const std::string& key) {
    ClientOptions o;
    o.api_key = key;
    o.max_attempts = 1;
    o.connect_timeout = std::chrono::seconds(10);
    o.default_timeout = std::chrono::seconds(20);
    auto client = Client::Connect(server_->target(), o);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }

  // A new key (text and id), made by the admin.
  std::pair<std::string, std::string> NewKey(const std::string& ns, ApiKeyRole role,
                                             double rps = 0, uint32_t burst = 0) {
    NewApiKey k;
    k.ns = ns;
    k.role = role;
    k.rate_limit_rps = rps;
    k.rate_limit_burst = burst;
    auto created = admin_->CreateApiKey(k);
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? std::make_pair(created->key, created->info.id)
                        : std::make_pair(std::string(), std::string());
  }

  // A raw GetKv with `key`; its status, the responses in `out`.
  grpc::Status RawGetKv(const std::string& key, const v1::GetKvRequest& request,
                        std::vector<v1::GetKvResponse>* out) {
    grpc::ClientContext ctx;
    if (!key.empty()) ctx.AddMetadata("authorization", absl::StrCat("Bearer ", key));
    auto reader = stub_->GetKv(&ctx, request);
    v1::GetKvResponse r;
    while (reader->Read(&r)) out->push_back(r);
    return reader->Finish();
  }

  grpc::Status RawRelease(const std::string& key, const std::string& token,
                          const std::vector<v1::GetKvResponse>& leased, uint64_t* released) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", absl::StrCat("Bearer ", key));
    v1::KvArenaReleaseRequest request;
    request.set_arena_session(token);
    for (const v1::GetKvResponse& r : leased) request.add_lease_ids(r.lease().id());
    v1::KvArenaReleaseResponse response;
    grpc::Status status = stub_->KvArenaRelease(&ctx, request, &response);
    *released = response.released();
    return status;
  }

  // Reads `ids` of `ns` raw through the SDK's arena session.
  static absl::StatusOr<std::vector<KvBlock>> ReadRaw(Client* client, const std::string& ns,
                                                      std::vector<std::string> ids) {
    return ReadThroughArena(client, ns, Model(), std::move(ids));
  }

  // Every block is a lease whose K and V equal the put's, byte for byte.
  static void ExpectBlocks(const std::vector<KvBlock>& blocks,
                           const std::vector<const KvPut*>& puts, const std::string& what) {
    ASSERT_EQ(blocks.size(), puts.size() * kLayers) << what;
    for (const KvBlock& b : blocks) {
      ASSERT_NE(b.lease, nullptr) << what << ": read through the arena";
      const KvPut& put = *puts.at(b.chunk_index);
      EXPECT_TRUE(b.k_raw == BytesOf(put.k[b.layer]))
          << what << ": K of " << b.chunk_id << " layer " << b.layer;
      EXPECT_TRUE(b.v_raw == BytesOf(put.v[b.layer]))
          << what << ": V of " << b.chunk_id << " layer " << b.layer;
    }
  }

  std::string dir_;
  std::unique_ptr<MnemodProcess> server_;
  std::unique_ptr<Client> admin_;
  std::unique_ptr<v1::MnemoKv::Stub> stub_;
  std::string socket_path_;
  const KvPut a_ = MakePut("a", 1), b_ = MakePut("b", 2), c_ = MakePut("c", 3);
};

TEST_F(KvArenaAuthTest, HelloWithoutAValidKeyIsRefused) {
  const auto [revoked, revoked_id] = NewKey("kv", ApiKeyRole::kRead);
  ASSERT_TRUE(admin_->RevokeApiKey(revoked_id).ok());
  const auto [good, good_id] = NewKey("kv", ApiKeyRole::kRead);
  struct Case {
    std::string what, key;
    Request request;
    uint32_t status;
  };
  const std::vector<Case> cases = {
      {"no key", "", Request::kWellFormed, kKvArenaUnauthenticated},
      {"unknown key", "mk_0123456789abcdef.not-a-secret", Request::kWellFormed,
       kKvArenaUnauthenticated},
      {"admin key with a byte changed", std::string("X") + (kAdminKey + 1), Request::kWellFormed,
       kKvArenaUnauthenticated},
      {"revoked key", revoked, Request::kWellFormed, kKvArenaUnauthenticated},
      {"malformed request", good, Request::kBadMagic, kKvArenaBadRequest},
  };
  for (const Case& c : cases) {
    RawSession s;
    Handshake(socket_path_, c.key, c.request, &s);
    ASSERT_TRUE(s.got_hello) << c.what;
    EXPECT_EQ(s.hello.status, c.status) << c.what;
    EXPECT_LT(s.fd, 0) << c.what << ": no arena descriptor";
    EXPECT_TRUE(s.ClosedByServer(std::chrono::seconds(5))) << c.what;
  }
  // The key that works, and the admin's; answered at once although a
  // silent connection (no request yet) was accepted before them.
  RawSession silent;
  ConnectTo(socket_path_, &silent);
  for (const std::string& key : {good, std::string(kAdminKey)}) {
    RawSession s;
    const auto start = std::chrono::steady_clock::now();
    Handshake(socket_path_, key, Request::kWellFormed, &s);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2))
        << "a hello waited for a silent peer";
    ASSERT_TRUE(s.got_hello);
    EXPECT_EQ(s.hello.status, kKvArenaOk);
    EXPECT_GE(s.fd, 0);
    std::vector<v1::GetKvResponse> blocks;
    EXPECT_TRUE(RawGetKv(key, RawRequest("kv", s.token(), {"a"}), &blocks).ok());
    EXPECT_EQ(blocks.size(), 2u);
  }
  ReadHello(&silent);
  ASSERT_TRUE(silent.got_hello);
  EXPECT_EQ(silent.hello.status, kKvArenaBadRequest) << "no request in time";
  EXPECT_LT(silent.fd, 0);
  EXPECT_TRUE(silent.ClosedByServer(std::chrono::seconds(5)));
  // A hello counts against the key's request rate.
  const auto [slow, slow_id] = NewKey("kv", ApiKeyRole::kRead, 0.001, 1);
  for (uint32_t expected : {kKvArenaOk, kKvArenaRateLimited}) {
    RawSession s;
    Handshake(socket_path_, slow, Request::kWellFormed, &s);
    ASSERT_TRUE(s.got_hello);
    EXPECT_EQ(s.hello.status, expected);
    EXPECT_EQ(s.fd >= 0, expected == kKvArenaOk);
  }
  // A Client with a bad key does not get to the socket.
  auto bad = Connect("mk_0123456789abcdef.not-a-secret");
  ASSERT_NE(bad, nullptr);
  auto refused = ReadRaw(bad.get(), "kv", {"a"});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnauthenticated) << refused.status();
}

TEST_F(KvArenaAuthTest, AnotherKeysSessionTokenIsUseless) {
  const auto [key_a, id_a] = NewKey("kv", ApiKeyRole::kRead);
  const auto [key_b, id_b] = NewKey("kv", ApiKeyRole::kWrite);
  RawSession session_a;
  Handshake(socket_path_, key_a, Request::kWellFormed, &session_a);
  ASSERT_EQ(session_a.hello.status, kKvArenaOk);
  std::vector<v1::GetKvResponse> leased;
  ASSERT_TRUE(RawGetKv(key_a, RawRequest("kv", session_a.token(), {"a"}), &leased).ok());
  ASSERT_EQ(leased.size(), 2u);
  ASSERT_TRUE(leased[0].has_lease());
  // Key B (which may read "kv"), and even the admin, cannot read through
  // A's session, nor release its leases.
  for (const std::string& other : {key_b, std::string(kAdminKey)}) {
    std::vector<v1::GetKvResponse> none;
    const grpc::Status got = RawGetKv(other, RawRequest("kv", session_a.token(), {"a"}), &none);
    EXPECT_EQ(got.error_code(), grpc::StatusCode::PERMISSION_DENIED) << got.error_message();
    EXPECT_TRUE(none.empty());
    uint64_t released = 99;
    const grpc::Status rel = RawRelease(other, session_a.token(), leased, &released);
    EXPECT_EQ(rel.error_code(), grpc::StatusCode::PERMISSION_DENIED) << rel.error_message();
  }
  // Without a key at all: UNAUTHENTICATED.
  std::vector<v1::GetKvResponse> none;
  EXPECT_EQ(RawGetKv("", RawRequest("kv", session_a.token(), {"a"}), &none).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  // A's leases were all still held: A releases both.
  uint64_t released = 0;
  ASSERT_TRUE(RawRelease(key_a, session_a.token(), leased, &released).ok());
  EXPECT_EQ(released, 2u);
}

TEST_F(KvArenaAuthTest, ReadKeyOfAnotherNamespaceIsRefusedThroughItsOwnSession) {
  const auto [key_r, id_r] = NewKey("other", ApiKeyRole::kRead);
  RawSession s;
  Handshake(socket_path_, key_r, Request::kWellFormed, &s);
  ASSERT_EQ(s.hello.status, kKvArenaOk);  // any valid key gets a session
  std::vector<v1::GetKvResponse> blocks;
  const grpc::Status refused = RawGetKv(key_r, RawRequest("kv", s.token(), {"a"}), &blocks);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::PERMISSION_DENIED) << refused.error_message();
  EXPECT_TRUE(blocks.empty());
  EXPECT_TRUE(RawGetKv(key_r, RawRequest("other", s.token(), {"a"}), &blocks).ok());
  EXPECT_EQ(blocks.size(), 2u);
  // The same through the SDK.
  auto client = Connect(key_r);
  ASSERT_NE(client, nullptr);
  auto sdk_refused = ReadRaw(client.get(), "kv", {"a"});
  EXPECT_EQ(sdk_refused.status().code(), absl::StatusCode::kPermissionDenied)
      << sdk_refused.status();
  auto ok = ReadRaw(client.get(), "other", {"b"});
  ASSERT_TRUE(ok.ok()) << ok.status();
  ExpectBlocks(*ok, {&b_}, "its own namespace");
}

TEST_F(KvArenaAuthTest, RevokingAKeyClosesItsSessionsAndReleasesTheirLeases) {
  const auto [key_a, id_a] = NewKey("kv", ApiKeyRole::kRead);
  const auto [key_b, id_b] = NewKey("kv", ApiKeyRole::kRead);
  // A leases two chunks: the whole arena.
  RawSession session_a;
  Handshake(socket_path_, key_a, Request::kWellFormed, &session_a);
  ASSERT_EQ(session_a.hello.status, kKvArenaOk);
  std::vector<v1::GetKvResponse> leased;
  ASSERT_TRUE(RawGetKv(key_a, RawRequest("kv", session_a.token(), {"a", "b"}), &leased).ok());
  ASSERT_EQ(leased.size(), 4u);
  // A's SDK client holds a session too.
  auto client_a = Connect(key_a);
  ASSERT_NE(client_a, nullptr);
  {
    auto held = ReadRaw(client_a.get(), "kv", {"a"});  // hits of A's raw leases
    ASSERT_TRUE(held.ok()) << held.status();
  }
  auto client_b = Connect(key_b);
  ASSERT_NE(client_b, nullptr);
  auto full = ReadRaw(client_b.get(), "kv", {"c"});
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted) << full.status();

  ASSERT_TRUE(admin_->RevokeApiKey(id_a).ok());
  // The leases are released when RevokeKey answers: c fits now.
  auto c = ReadRaw(client_b.get(), "kv", {"c"});
  ASSERT_TRUE(c.ok()) << c.status();
  ExpectBlocks(*c, {&c_}, "after A's revocation");
  // mnemod closes A's connection; the token is dead, A's key too.
  EXPECT_TRUE(session_a.ClosedByServer(std::chrono::seconds(5)));
  std::vector<v1::GetKvResponse> none;
  EXPECT_EQ(RawGetKv(key_a, RawRequest("kv", session_a.token(), {"a"}), &none).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(RawGetKv(kAdminKey, RawRequest("kv", session_a.token(), {"a"}), &none).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION)
      << "the session is gone";
  EXPECT_TRUE(none.empty());
  auto sdk_after = ReadRaw(client_a.get(), "kv", {"a"});
  EXPECT_EQ(sdk_after.status().code(), absl::StatusCode::kUnauthenticated) << sdk_after.status();
  RawSession again;
  Handshake(socket_path_, key_a, Request::kWellFormed, &again);
  ASSERT_TRUE(again.got_hello);
  EXPECT_EQ(again.hello.status, kKvArenaUnauthenticated);
  // B's session is untouched.
  auto still = ReadRaw(client_b.get(), "kv", {"a", "c"});
  ASSERT_TRUE(still.ok()) << still.status();
  ExpectBlocks(*still, {&a_, &c_}, "B after A's revocation");
}

TEST_F(KvArenaAuthTest, SdkWithAKeyReadsLeasesByteForByte) {
  const auto [key, id] = NewKey("kv", ApiKeyRole::kRead);
  auto client = Connect(key);
  ASSERT_NE(client, nullptr);
  auto first = ReadRaw(client.get(), "kv", {"a", "b"});
  ASSERT_TRUE(first.ok()) << first.status();
  ExpectBlocks(*first, {&a_, &b_}, "filled from the store");
  first->clear();  // releases go out with the next read, under the same key
  auto second = ReadRaw(client.get(), "kv", {"b", "a"});
  ASSERT_TRUE(second.ok()) << second.status();
  ExpectBlocks(*second, {&b_, &a_}, "hits");
  // Float reads through the arena convert the same bytes.
  KvGetRequest get;
  get.chunk_ids = {"c"};
  get.model = Model();
  get.shared_memory = true;
  second->clear();
  auto floats = client->GetKv("kv", get);
  ASSERT_TRUE(floats.ok()) << floats.status();
  ASSERT_EQ(floats->size(), 2u);
  EXPECT_EQ((*floats)[0].k, c_.k[0]);
  EXPECT_EQ((*floats)[1].v, c_.v[1]);
  // The admin's Client reads through its own session alike.
  auto admin_read = ReadRaw(admin_.get(), "other", {"c"});
  ASSERT_TRUE(admin_read.ok()) << admin_read.status();
  ExpectBlocks(*admin_read, {&c_}, "admin");
}

}  // namespace
}  // namespace mnemo::testing
