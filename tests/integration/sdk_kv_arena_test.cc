// The KV arena (mnemod --kv-arena-bytes, README "KV arena") end to end: a
// real mnemod on 127.0.0.1 with a 4 MiB arena, read through the SDK and
// through the raw stub and socket for the bad requests.
//
// The model (2 layers x 8 KV heads x 64, 256 tokens, fp32 codec and wire)
// makes every (chunk, layer) block 512 KiB of K plus 512 KiB of V, so the
// arena holds exactly four blocks: two chunks. Expected bytes are the put's
// floats (the fp32 codec round-trips bit for bit).
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "mnemo/client.h"
#include "mnemo/kv_arena_wire.h"
#include "mnemo/v1/mnemo.grpc.pb.h"
#include "tests/integration/kv_arena_reads.h"
#include "tests/integration/kv_test_model.h"
#include "tests/integration/mnemod_process.h"
#include "tests/integration/sdk_test_util.h"

namespace mnemo::testing {
namespace {

constexpr int kLayers = 2, kKvHeads = 8, kHeadDim = 64, kTokens = 256;
constexpr size_t kElements = size_t{kKvHeads} * kTokens * kHeadDim;
constexpr const char* kArenaBytes = "4194304";

ModelFingerprint Model() { return KvTestModel(kLayers, kKvHeads * 2, kKvHeads, kHeadDim, 'b'); }

KvPut MakePut(const std::string& id, uint32_t seed, int tokens = kTokens) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  KvPut put;
  put.chunk_id = id;
  put.model = Model();
  for (int t = 0; t < tokens; ++t) put.tokens.push_back(t);
  const size_t n = size_t{kKvHeads} * tokens * kHeadDim;
  for (int l = 0; l < kLayers; ++l) {
    put.k.emplace_back(n);
    put.v.emplace_back(n);
    for (float& x : put.k.back()) x = normal(rng);
    for (float& x : put.v.back()) x = normal(rng);
  }
  return put;
}

class KvArenaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = MnemodProcess::Start({"--kv-arena-bytes", kArenaBytes});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    client_ = ConnectOrDie(server_->target());
    ASSERT_NE(client_, nullptr);
    SetUpNamespace(client_.get(), "kv", {"a", "b", "c", "big"});
  }

  static void SetUpNamespace(Client* client, const std::string& ns,
                             const std::vector<std::string>& ids) {
    NamespaceConfig config;
    config.name = ns;
    config.dim = 4;
    ASSERT_TRUE(client->CreateNamespace(config).ok());
    std::vector<Chunk> chunks;
    for (const std::string& id : ids) {
      Chunk c;
      c.id = id;
      c.text = id;
      c.vector = {1, 0, 0, 0};
      chunks.push_back(c);
    }
    ASSERT_TRUE(client->Upsert(ns, {}, chunks).ok());
    KvConfig kv;
    kv.model = Model();
    kv.codec = KvCodec::kFp32;
    kv.entropy = false;
    ASSERT_TRUE(client->RegisterKvModel(ns, kv).ok());
  }

  void Put(const KvPut& put) {
    auto result = client_->PutKv("kv", put);
    ASSERT_TRUE(result.ok()) << result.status();
  }

  // Reads `ids` raw through the arena; every block must be a lease.
  absl::StatusOr<std::vector<KvBlock>> ReadRaw(Client* client, std::vector<std::string> ids) {
    return ReadThroughArena(client, "kv", Model(), std::move(ids));
  }

  // Every block's K and V equal the put's, byte for byte.
  static void ExpectBlocks(const std::vector<KvBlock>& blocks,
                           const std::vector<const KvPut*>& puts, const std::string& what) {
    ASSERT_EQ(blocks.size(), puts.size() * kLayers) << what;
    for (const KvBlock& b : blocks) {
      ASSERT_NE(b.lease, nullptr) << what << ": a hit is a lease";
      const KvPut& put = *puts.at(b.chunk_index);
      ASSERT_EQ(b.k_raw.data() + (b.lease->v_offset - b.lease->k_offset), b.v_raw.data());
      EXPECT_EQ(reinterpret_cast<uintptr_t>(b.k_raw.data()) % 64, 0u) << what;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(b.v_raw.data()) % 64, 0u) << what;
      EXPECT_TRUE(b.k_raw == BytesOf(put.k[b.layer]))
          << what << ": K of " << b.chunk_id << " layer " << b.layer;
      EXPECT_TRUE(b.v_raw == BytesOf(put.v[b.layer]))
          << what << ": V of " << b.chunk_id << " layer " << b.layer;
    }
  }

  std::unique_ptr<MnemodProcess> server_;
  std::unique_ptr<Client> client_;
};

// A raw handshake on the arena socket: the hello and its descriptor.
struct RawSession {
  int sock = -1, fd = -1;
  KvArenaHello hello{};
  ~RawSession() {
    if (fd >= 0) close(fd);
    if (sock >= 0) close(sock);
  }
  std::string token() const {
    return std::string(reinterpret_cast<const char*>(hello.session_token), 16);
  }
};

bool Handshake(const std::string& path, RawSession* s) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  s->sock = socket(AF_UNIX, SOCK_STREAM, 0);
  if (connect(s->sock, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return false;
  iovec iov{&s->hello, sizeof(s->hello)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  if (recvmsg(s->sock, &msg, MSG_WAITALL) != static_cast<ssize_t>(sizeof(s->hello))) return false;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_type == SCM_RIGHTS) std::memcpy(&s->fd, CMSG_DATA(c), sizeof(int));
  }
  return true;
}

std::unique_ptr<v1::MnemoKv::Stub> Stub(const std::string& target) {
  return v1::MnemoKv::NewStub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
}

std::string SocketPath(v1::MnemoKv::Stub* stub) {
  grpc::ClientContext ctx;
  v1::KvArenaInfoResponse info;
  EXPECT_TRUE(stub->KvArenaInfo(&ctx, {}, &info).ok());
  EXPECT_EQ(info.arena_bytes(), 4u << 20);
  return info.socket_path();
}

// Drains a raw GetKv; its status.
grpc::Status RawGetKv(v1::MnemoKv::Stub* stub, const v1::GetKvRequest& request,
                      std::vector<v1::GetKvResponse>* out) {
  grpc::ClientContext ctx;
  auto reader = stub->GetKv(&ctx, request);
  v1::GetKvResponse r;
  while (reader->Read(&r)) out->push_back(r);
  return reader->Finish();
}

v1::GetKvRequest RawRequest(const std::string& token, const std::vector<std::string>& ids) {
  return RawArenaGetKv("kv", token, Model(), ids);
}

TEST_F(KvArenaTest, HitsAreLeasesWithTheStoredBytes) {
  const KvPut a = MakePut("a", 1);
  Put(a);
  auto first = ReadRaw(client_.get(), {"a"});
  ASSERT_TRUE(first.ok()) << first.status();
  ExpectBlocks(*first, {&a}, "miss filled from the store");
  auto second = ReadRaw(client_.get(), {"a"});
  ASSERT_TRUE(second.ok()) << second.status();
  ExpectBlocks(*second, {&a}, "hit");
  // A hit is the same bytes, not a copy.
  for (size_t i = 0; i < second->size(); ++i) {
    EXPECT_EQ((*second)[i].lease->k_offset, (*first)[i].lease->k_offset);
    EXPECT_EQ((*second)[i].k_raw.data(), (*first)[i].k_raw.data());
  }
  // Float reads through the arena convert the same bytes.
  KvGetRequest get;
  get.chunk_ids = {"a"};
  get.model = Model();
  get.shared_memory = true;
  auto floats = client_->GetKv("kv", get);
  ASSERT_TRUE(floats.ok()) << floats.status();
  ASSERT_EQ(floats->size(), 2u);
  EXPECT_EQ((*floats)[1].k, a.k[1]);
  EXPECT_EQ((*floats)[1].v, a.v[1]);
  EXPECT_EQ((*floats)[0].tokens, a.tokens);
}

// One GetKv whose blocks are partly hits and partly misses (filled by the
// call's fill thread): every block once, layer-major in request order,
// the hits the same arena bytes as before.
TEST_F(KvArenaTest, HitsAndMissesInOneReadComeLayerMajorInRequestOrder) {
  const KvPut a = MakePut("a", 1), b = MakePut("b", 2);
  Put(a);
  Put(b);
  auto first = ReadRaw(client_.get(), {"b"});
  ASSERT_TRUE(first.ok()) << first.status();
  ExpectBlocks(*first, {&b}, "b filled");
  auto both = ReadRaw(client_.get(), {"a", "b"});
  ASSERT_TRUE(both.ok()) << both.status();
  ExpectBlocks(*both, {&a, &b}, "a filled, b hit");
  ASSERT_EQ(both->size(), 2u * kLayers);
  for (size_t i = 0; i < both->size(); ++i) {
    const KvBlock& blk = (*both)[i];
    EXPECT_EQ(blk.layer, i / 2) << i;
    EXPECT_EQ(blk.chunk_index, i % 2) << i;
    EXPECT_EQ(blk.chunk_id, i % 2 == 0 ? "a" : "b") << i;
    if (blk.chunk_id == "b") {
      EXPECT_EQ(blk.lease->k_offset, (*first)[blk.layer].lease->k_offset) << "b is a hit";
    }
  }
}

TEST_F(KvArenaTest, LeasedBlocksSurviveEvictionUntilReleased) {
  const KvPut a = MakePut("a", 1), b = MakePut("b", 2), c = MakePut("c", 3);
  Put(a);
  Put(b);
  Put(c);
  auto held = ReadRaw(client_.get(), {"a"});  // pins half the arena
  ASSERT_TRUE(held.ok()) << held.status();
  const std::vector<std::string> a_bytes = {std::string((*held)[0].k_raw),
                                            std::string((*held)[1].v_raw)};
  for (int round = 0; round < 3; ++round) {
    // b and c take turns in the other half, evicting each other.
    for (const KvPut* p : {&b, &c}) {
      auto blocks = ReadRaw(client_.get(), {p->chunk_id});
      ASSERT_TRUE(blocks.ok()) << blocks.status();
      ExpectBlocks(*blocks, {p}, "under pressure");
    }
  }
  ExpectBlocks(*held, {&a}, "leased through eviction pressure");
  EXPECT_EQ(std::string((*held)[0].k_raw), a_bytes[0]);
  EXPECT_EQ(std::string((*held)[1].v_raw), a_bytes[1]);

  // a and c pinned: the arena is full of leases, b cannot come in.
  auto c_held = ReadRaw(client_.get(), {"c"});
  ASSERT_TRUE(c_held.ok()) << c_held.status();
  auto refused = ReadRaw(client_.get(), {"b"});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted) << refused.status();
  ExpectBlocks(*held, {&a}, "after a refused fill");

  // Releasing a lets b evict it: b lands on a's old bytes.
  std::set<uint64_t> a_offsets;
  for (const KvBlock& blk : *held) a_offsets.insert(blk.lease->k_offset);
  held->clear();
  auto b_blocks = ReadRaw(client_.get(), {"b"});
  ASSERT_TRUE(b_blocks.ok()) << b_blocks.status();
  ExpectBlocks(*b_blocks, {&b}, "after release");
  for (const KvBlock& blk : *b_blocks) {
    EXPECT_EQ(a_offsets.count(blk.lease->k_offset), 1u) << "b reuses a's released bytes";
  }
  ExpectBlocks(*c_held, {&c}, "c stays leased");
}

// A GetKv without an arena session (a remote decoder's) is served through
// the arena too, with the bytes in the messages: the stored bytes on a miss
// and a hit, never a replaced chunk's old ones, and, when the arena has no
// room (every byte leased), from a copy of the block's own.
TEST_F(KvArenaTest, ReadsWithoutASessionGoThroughTheArenaWithTheirBytes) {
  const KvPut a = MakePut("a", 1), b = MakePut("b", 2), c = MakePut("c", 3);
  Put(a);
  Put(b);
  Put(c);
  // Raw fp32 over the gRPC stream: per layer, its K and V bytes as received
  // (views into the message, copied before the next block).
  struct Layer {
    bool leased = false;
    std::string k, v;
  };
  auto read = [&](const std::string& id) -> absl::StatusOr<std::vector<Layer>> {
    KvGetRequest get;
    get.chunk_ids = {id};
    get.model = Model();
    get.dtype = KvDtype::kFp32;
    get.raw = true;
    absl::StatusOr<std::unique_ptr<KvReader>> reader = client_->OpenKvReader("kv", get);
    if (!reader.ok()) return reader.status();
    std::vector<Layer> layers;
    KvBlock blk;
    while (true) {
      absl::StatusOr<bool> more = (*reader)->Next(&blk);
      if (!more.ok()) return more.status();
      if (!*more) break;
      layers.push_back(Layer{blk.lease != nullptr, std::string(blk.k_raw), std::string(blk.v_raw)});
    }
    return layers;
  };
  auto expect = [&](const std::vector<Layer>& layers, const KvPut& put, const std::string& what) {
    ASSERT_EQ(layers.size(), size_t{kLayers}) << what;
    for (size_t l = 0; l < layers.size(); ++l) {
      EXPECT_FALSE(layers[l].leased) << what << ": bytes in the message, not a lease";
      EXPECT_TRUE(layers[l].k == BytesOf(put.k[l])) << what << " K layer " << l;
      EXPECT_TRUE(layers[l].v == BytesOf(put.v[l])) << what << " V layer " << l;
    }
  };
  for (const char* what : {"miss (filled into the arena)", "hit"}) {
    auto blocks = read("a");
    ASSERT_TRUE(blocks.ok()) << blocks.status();
    expect(*blocks, a, what);
  }
  const KvPut a2 = MakePut("a", 11);
  Put(a2);
  auto replaced = read("a");
  ASSERT_TRUE(replaced.ok()) << replaced.status();
  expect(*replaced, a2, "after a replace");

  // a and c leased fill the arena: b is sent from its own copy.
  auto a_held = ReadRaw(client_.get(), {"a"});
  ASSERT_TRUE(a_held.ok()) << a_held.status();
  auto c_held = ReadRaw(client_.get(), {"c"});
  ASSERT_TRUE(c_held.ok()) << c_held.status();
  auto b_blocks = read("b");
  ASSERT_TRUE(b_blocks.ok()) << b_blocks.status();
  expect(*b_blocks, b, "arena full of leases");
  ExpectBlocks(*a_held, {&a2}, "a stays leased");

  ASSERT_TRUE(client_->DeleteKv("kv", {"c"}).ok());
  EXPECT_EQ(read("c").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(KvArenaTest, ReplacedOrDeletedChunkNeverReturnsOldBytes) {
  const KvPut old_a = MakePut("a", 1);
  Put(old_a);
  auto old_blocks = ReadRaw(client_.get(), {"a"});
  ASSERT_TRUE(old_blocks.ok());
  ExpectBlocks(*old_blocks, {&old_a}, "before the replacement");
  const KvPut new_a = MakePut("a", 99);
  Put(new_a);
  auto fresh = ReadRaw(client_.get(), {"a"});
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  ExpectBlocks(*fresh, {&new_a}, "after the replacement");
  ExpectBlocks(*old_blocks, {&old_a}, "the old lease still holds the old bytes");
  ASSERT_TRUE(client_->DeleteKv("kv", {"a"}).ok());
  auto gone = ReadRaw(client_.get(), {"a"});
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kNotFound) << gone.status();
}

TEST_F(KvArenaTest, OversizedReadIsResourceExhausted) {
  // One block of 2048 tokens is 4 MiB of K plus 4 MiB of V: larger than
  // the whole arena.
  const KvPut big = MakePut("big", 5, 2048);
  Put(big);
  auto refused = ReadRaw(client_.get(), {"big"});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()), ::testing::HasSubstr("larger than"));
  // The same read without the arena still works, and the arena serves others.
  KvGetRequest get;
  get.chunk_ids = {"big"};
  get.model = Model();
  auto plain = client_->GetKv("kv", get);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ((*plain)[0].k, big.k[0]);
  const KvPut a = MakePut("a", 1);
  Put(a);
  auto ok = ReadRaw(client_.get(), {"a"});
  ASSERT_TRUE(ok.ok()) << ok.status();
  ExpectBlocks(*ok, {&a}, "after an oversized read");
}

TEST_F(KvArenaTest, SessionsTokensAndLeasesAreChecked) {
  Put(MakePut("a", 1));
  auto stub = Stub(server_->target());
  const std::string path = SocketPath(stub.get());
  RawSession one, two;
  ASSERT_TRUE(Handshake(path, &one));
  ASSERT_TRUE(Handshake(path, &two));
  ASSERT_EQ(one.hello.status, kKvArenaOk);
  ASSERT_GE(one.fd, 0);
  // The descriptor is read-only: it cannot be mapped writable.
  EXPECT_EQ(mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, one.fd, 0), MAP_FAILED);
  void* ro = mmap(nullptr, 4096, PROT_READ, MAP_SHARED, one.fd, 0);
  EXPECT_NE(ro, MAP_FAILED);
  if (ro != MAP_FAILED) munmap(ro, 4096);

  std::vector<v1::GetKvResponse> blocks;
  ASSERT_TRUE(RawGetKv(stub.get(), RawRequest(one.token(), {"a"}), &blocks).ok());
  ASSERT_EQ(blocks.size(), 2u);
  ASSERT_TRUE(blocks[0].has_lease());
  EXPECT_TRUE(blocks[0].block().k().empty());

  // A lease of session one is not session two's to release, nor is a
  // made-up id; nothing is released then.
  {
    grpc::ClientContext ctx;
    v1::KvArenaReleaseRequest release;
    release.set_arena_session(two.token());
    release.add_lease_ids(blocks[0].lease().id());
    v1::KvArenaReleaseResponse response;
    EXPECT_EQ(stub->KvArenaRelease(&ctx, release, &response).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext ctx;
    v1::KvArenaReleaseRequest release;
    release.set_arena_session(one.token());
    release.add_lease_ids(blocks[0].lease().id());
    release.add_lease_ids(987654321);
    v1::KvArenaReleaseResponse response;
    EXPECT_EQ(stub->KvArenaRelease(&ctx, release, &response).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext ctx;
    v1::KvArenaReleaseRequest release;
    release.set_arena_session(one.token());
    release.add_lease_ids(blocks[0].lease().id());
    release.add_lease_ids(blocks[1].lease().id());
    v1::KvArenaReleaseResponse response;
    ASSERT_TRUE(stub->KvArenaRelease(&ctx, release, &response).ok());
    EXPECT_EQ(response.released(), 2u);
  }
  // A made-up token, and a token after its connection closed.
  std::vector<v1::GetKvResponse> none;
  EXPECT_EQ(RawGetKv(stub.get(), RawRequest(std::string(16, 'x'), {"a"}), &none).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  const std::string closed = one.token();
  close(one.sock);
  one.sock = -1;
  grpc::Status after_close;
  for (int i = 0; i < 100; ++i) {  // the socket thread notices the close asynchronously
    none.clear();
    after_close = RawGetKv(stub.get(), RawRequest(closed, {"a"}), &none);
    if (!after_close.ok()) break;
    usleep(10000);
  }
  EXPECT_EQ(after_close.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
      << after_close.error_message();
  // The other session is unaffected.
  blocks.clear();
  EXPECT_TRUE(RawGetKv(stub.get(), RawRequest(two.token(), {"a"}), &blocks).ok());
}

TEST_F(KvArenaTest, PeerOfAnotherUidIsRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to connect as another uid";
  auto stub = Stub(server_->target());
  const std::string path = SocketPath(stub.get());
  // Past the file modes (the socket's, its test-made directories'), to SO_PEERCRED.
  ASSERT_EQ(chmod(path.c_str(), 0666), 0);
  for (std::filesystem::path dir = std::filesystem::path(path).parent_path();
       dir.has_parent_path() && dir.parent_path() != dir; dir = dir.parent_path()) {
    struct stat st;
    if (stat(dir.c_str(), &st) == 0 && st.st_uid == geteuid()) chmod(dir.c_str(), st.st_mode | 0011);
    if (dir == std::filesystem::temp_directory_path()) break;
  }
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) _exit(3);
    RawSession s;
    if (!Handshake(path, &s)) _exit(4);
    _exit(s.hello.status == kKvArenaPeerRefused && s.fd < 0 ? 0 : 5);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: accepted; 3: setuid; 4: no hello; 5: not refused";
}

TEST_F(KvArenaTest, RestartedMnemodServesCorrectBytes) {
  const KvPut a = MakePut("a", 1), b = MakePut("b", 2);
  Put(a);
  Put(b);
  auto before = ReadRaw(client_.get(), {"a", "b"});
  ASSERT_TRUE(before.ok()) << before.status();
  ExpectBlocks(*before, {&a, &b}, "before the restart");
  const std::string dir = server_->data_dir();
  server_->Kill();  // its data directory stays until server_ is destroyed
  // The old leases' mapping stays readable (not served any more).
  EXPECT_EQ((*before)[0].k_raw.size(), kElements * sizeof(float));
  auto restarted = MnemodProcess::Start({"--kv-arena-bytes", kArenaBytes}, dir);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  auto client = ConnectOrDie((*restarted)->target());
  auto after = ReadRaw(client.get(), {"b", "a"});
  ASSERT_TRUE(after.ok()) << after.status();
  ExpectBlocks(*after, {&b, &a}, "after the restart");
  after->clear();
  client.reset();
  ASSERT_TRUE((*restarted)->Stop().ok());
}

// The same Client across a restart on the same address: its arena session
// died with the old mnemod; the next read connects a new session (the SDK's
// reconnect path) and is served by leases again, with the right bytes.
TEST_F(KvArenaTest, TheSameClientReconnectsItsArenaAfterARestart) {
  const KvPut a = MakePut("a", 1), b = MakePut("b", 2);
  Put(a);
  Put(b);
  auto before = ReadRaw(client_.get(), {"a"});
  ASSERT_TRUE(before.ok()) << before.status();
  ExpectBlocks(*before, {&a}, "before the restart");
  before->clear();
  const std::string dir = server_->data_dir();
  const std::string address = server_->target();
  server_->Kill();
  auto restarted =
      MnemodProcess::Start({"--listen", address, "--kv-arena-bytes", kArenaBytes}, dir);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  ASSERT_EQ((*restarted)->target(), address);
  // The channel reconnects on its own; until it has, a call may fail fast.
  absl::StatusOr<std::vector<KvBlock>> after = absl::UnavailableError("not tried");
  for (int i = 0; i < 100 && absl::IsUnavailable(after.status()); ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    after = ReadRaw(client_.get(), {"b", "a"});
  }
  ASSERT_TRUE(after.ok()) << after.status();
  ExpectBlocks(*after, {&b, &a}, "after the restart, same Client");
  after->clear();
  client_.reset();
  ASSERT_TRUE((*restarted)->Stop().ok());
}

// A blob file that lost a byte of a block's payload: the arena GetKv that
// must fill that block from the store fails with DATA_LOSS (the block's
// own checksum, found by the call's fill thread), and the arena keeps
// serving the intact chunk afterwards.
TEST_F(KvArenaTest, CorruptBlobIsDataLossThroughTheArena) {
  const KvPut a = MakePut("a", 1);
  Put(a);
  const std::string dir = server_->data_dir();
  client_.reset();
  ASSERT_TRUE(server_->Stop().ok());
  // A restart replays the log and flushes it: the blocks go to blob files.
  {
    auto flushed = MnemodProcess::Start({"--kv-arena-bytes", kArenaBytes}, dir);
    ASSERT_TRUE(flushed.ok()) << flushed.status();
    ASSERT_TRUE((*flushed)->Stop().ok());
  }
  int corrupted = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.path().extension() != ".blob" || e.file_size() < (1u << 20)) continue;
    // A quarter in: inside the first block's K payload (each block is
    // 512 KiB of K then 512 KiB of V).
    std::fstream f(e.path(), std::ios::in | std::ios::out | std::ios::binary);
    const auto at = static_cast<std::streamoff>(e.file_size() / 4);
    f.seekg(at);
    char c = 0;
    f.read(&c, 1);
    c ^= 0x10;
    f.seekp(at);
    f.write(&c, 1);
    ASSERT_TRUE(f.good());
    ++corrupted;
  }
  ASSERT_GT(corrupted, 0) << "no blob file under " << dir;
  // server_ keeps owning (and finally removes) the data directory.
  auto restarted = MnemodProcess::Start({"--kv-arena-bytes", kArenaBytes}, dir);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  auto client = ConnectOrDie((*restarted)->target());
  ASSERT_NE(client, nullptr);
  auto read = ReadRaw(client.get(), {"a"});
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss) << read.status();
  // Nothing stays pinned by the failed call: two new chunks still fill the
  // whole arena (4 blocks) and read back intact.
  const KvPut b = MakePut("b", 2), c = MakePut("c", 3);
  for (const KvPut* put : {&b, &c}) {
    auto result = client->PutKv("kv", *put);
    ASSERT_TRUE(result.ok()) << result.status();
  }
  auto ok = ReadRaw(client.get(), {"b", "c"});
  ASSERT_TRUE(ok.ok()) << ok.status();
  ExpectBlocks(*ok, {&b, &c}, "after the failed read");
  ok->clear();
  client.reset();
  ASSERT_TRUE((*restarted)->Stop().ok());
}

}  // namespace
}  // namespace mnemo::testing
