// KvArena (server/kv_arena.h) on its own: cache hits, generation
// invalidation, LRU eviction that never touches pinned or leased bytes,
// session close, and refused releases and sizes.
#include "server/kv_arena.h"

#include <sys/mman.h>

#include <string>

#include <gtest/gtest.h>

namespace mnemo::server {
namespace {

constexpr uint64_t kArena = uint64_t{2} << 20;  // 2 MiB
constexpr size_t kBlock = 256 << 10;            // K (and V): a block spans 512 KiB

KvArenaKey Key(const std::string& chunk, uint32_t layer = 0, const std::string& ns = "ns") {
  return KvArenaKey{ns, chunk, layer, 1, -1};
}

std::shared_ptr<const KvArenaMeta> Meta() { return std::make_shared<const KvArenaMeta>(); }

class KvArenaCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto arena = KvArena::Create(kArena);
    ASSERT_TRUE(arena.ok()) << arena.status();
    arena_ = *std::move(arena);
  }

  // Inserts `chunk` with K and V filled with `fill`; returns it pinned.
  KvArenaBlock Put(const std::string& chunk, char fill, const std::string& ns = "ns") {
    const std::string k(kBlock, fill), v(kBlock, static_cast<char>(fill + 1));
    auto b = arena_->Insert(Key(chunk, 0, ns), arena_->Generation(ns), k, v, Meta());
    EXPECT_TRUE(b.ok()) << b.status();
    return b.ok() ? *b : KvArenaBlock{};
  }

  bool Holds(const KvArenaBlock& b, char fill) const {
    return std::string(arena_->data() + b.k_offset, b.bytes) == std::string(kBlock, fill) &&
           std::string(arena_->data() + b.v_offset, b.bytes) ==
               std::string(kBlock, static_cast<char>(fill + 1));
  }

  std::unique_ptr<KvArena> arena_;
};

TEST_F(KvArenaCacheTest, LayoutIsAlignedAndTheDescriptorReadOnly) {
  EXPECT_EQ(arena_->size(), kArena);
  const KvArenaBlock b = Put("a", 'a');
  EXPECT_EQ(b.k_offset % kKvArenaAlign, 0u);
  EXPECT_EQ(b.v_offset % kKvArenaAlign, 0u);
  EXPECT_EQ(b.v_offset, b.k_offset + kBlock);
  EXPECT_TRUE(Holds(b, 'a'));
  EXPECT_EQ(mmap(nullptr, kArena, PROT_READ | PROT_WRITE, MAP_SHARED, arena_->read_only_fd(), 0),
            MAP_FAILED);
}

TEST_F(KvArenaCacheTest, HitsUntilTheNamespaceIsWritten) {
  const KvArenaBlock a = Put("a", 'a');
  arena_->Unpin(a.entry);
  auto hit = arena_->Lookup(Key("a"), arena_->Generation("ns"));
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->k_offset, a.k_offset);
  arena_->Unpin(hit->entry);
  EXPECT_FALSE(arena_->Lookup(Key("a", 1), arena_->Generation("ns")).has_value());
  { KvArena::WriteLock write(arena_.get(), "other"); }  // another namespace
  EXPECT_TRUE(arena_->Lookup(Key("a"), arena_->Generation("ns")).has_value());
  { KvArena::WriteLock write(arena_.get(), "ns"); }
  EXPECT_FALSE(arena_->Lookup(Key("a"), arena_->Generation("ns")).has_value());
}

TEST_F(KvArenaCacheTest, AFillReadBeforeAWriteIsNotCached) {
  const uint64_t before = arena_->Generation("ns");
  { KvArena::WriteLock write(arena_.get(), "ns"); }
  const std::string k(kBlock, 'x');
  auto b = arena_->Insert(Key("a"), before, k, k, Meta());
  ASSERT_TRUE(b.ok());  // served to its own call...
  arena_->Unpin(b->entry);
  // ...but never found again.
  EXPECT_FALSE(arena_->Lookup(Key("a"), before).has_value());
  EXPECT_FALSE(arena_->Lookup(Key("a"), arena_->Generation("ns")).has_value());
  EXPECT_EQ(arena_->GetStats().used_bytes, 0u);
}

TEST_F(KvArenaCacheTest, EvictsLeastRecentlyUsedUnpinnedBlocksOnly) {
  const std::string token = arena_->OpenSession();
  const KvArenaBlock a = Put("a", 'a');
  auto lease = arena_->Lease(token, a.entry);  // a stays pinned
  ASSERT_TRUE(lease.ok());
  const KvArenaBlock b = Put("b", 'b'), c = Put("c", 'c'), d = Put("d", 'd');
  for (const KvArenaBlock* x : {&b, &c, &d}) arena_->Unpin(x->entry);
  // Touch b: c is now the least recently used.
  auto hit = arena_->Lookup(Key("b"), arena_->Generation("ns"));
  ASSERT_TRUE(hit.has_value());
  arena_->Unpin(hit->entry);
  const KvArenaBlock e = Put("e", 'e');
  EXPECT_EQ(e.k_offset, c.k_offset);
  EXPECT_FALSE(arena_->Lookup(Key("c"), arena_->Generation("ns")).has_value());
  EXPECT_TRUE(Holds(a, 'a'));
  // Everything pinned: the next block does not fit.
  auto bb = arena_->Lookup(Key("b"), arena_->Generation("ns"));
  auto dd = arena_->Lookup(Key("d"), arena_->Generation("ns"));
  ASSERT_TRUE(bb.has_value() && dd.has_value());
  const std::string k(kBlock, 'f');
  auto full = arena_->Insert(Key("f"), arena_->Generation("ns"), k, k, Meta());
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(Holds(a, 'a'));
  // Closing the session releases a's lease: now f evicts it.
  arena_->CloseSession(token);
  auto f = arena_->Insert(Key("f"), arena_->Generation("ns"), k, k, Meta());
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->k_offset, a.k_offset);
}

TEST_F(KvArenaCacheTest, ReleasesAreChecked) {
  const std::string one = arena_->OpenSession(), two = arena_->OpenSession();
  const KvArenaBlock a = Put("a", 'a');
  auto lease = arena_->Lease(one, a.entry);
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ(arena_->Release(two, "", {*lease}).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(arena_->Release(one, "", {*lease, 424242}).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(arena_->GetStats().pinned_entries, 1u);  // nothing released by a refused call
  auto released = arena_->Release(one, "", {*lease});
  ASSERT_TRUE(released.ok());
  EXPECT_EQ(*released, 1u);
  EXPECT_EQ(arena_->GetStats().pinned_entries, 0u);
  arena_->CloseSession(one);
  EXPECT_EQ(arena_->Release(one, "", {}).status().code(), absl::StatusCode::kFailedPrecondition);
  const KvArenaBlock b = Put("b", 'b');
  EXPECT_EQ(arena_->Lease(one, b.entry).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(arena_->GetStats().pinned_entries, 0u);  // the refused lease dropped its pin
}

// Sessions belong to the API key that opened them: another key can
// neither use nor release one; closing a key's sessions releases their
// leases and leaves other keys' sessions alone.
TEST_F(KvArenaCacheTest, SessionsBelongToTheirKey) {
  const std::string a1 = arena_->OpenSession("key-a"), a2 = arena_->OpenSession("key-a");
  const std::string b1 = arena_->OpenSession("key-b");
  EXPECT_TRUE(arena_->CheckSession(a1, "key-a").ok());
  EXPECT_EQ(arena_->CheckSession(a1, "key-b").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(arena_->CheckSession(a1, "").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(arena_->CheckSession(std::string(16, 'x'), "key-a").code(),
            absl::StatusCode::kFailedPrecondition);
  const KvArenaBlock x = Put("x", 'x'), y = Put("y", 'y'), z = Put("z", 'z');
  auto lx = arena_->Lease(a1, x.entry), ly = arena_->Lease(a2, y.entry);
  auto lz = arena_->Lease(b1, z.entry);
  ASSERT_TRUE(lx.ok() && ly.ok() && lz.ok());
  // key-b cannot release key-a's lease; nothing is released then.
  EXPECT_EQ(arena_->Release(a1, "key-b", {*lx}).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(arena_->GetStats().leases, 3u);
  EXPECT_EQ(arena_->GetStats().pinned_entries, 3u);
  // Revoking key-a: both its sessions close, their blocks unpinned.
  EXPECT_EQ(arena_->CloseSessionsOf("key-a"), 2u);
  EXPECT_FALSE(arena_->HasSession(a1));
  EXPECT_FALSE(arena_->HasSession(a2));
  EXPECT_EQ(arena_->CheckSession(a1, "key-a").code(), absl::StatusCode::kFailedPrecondition);
  const KvArena::Stats after = arena_->GetStats();
  EXPECT_EQ(after.sessions, 1u);
  EXPECT_EQ(after.leases, 1u);
  EXPECT_EQ(after.pinned_entries, 1u);
  EXPECT_TRUE(Holds(z, 'z'));
  auto released = arena_->Release(b1, "key-b", {*lz});
  ASSERT_TRUE(released.ok()) << released.status();
  EXPECT_EQ(*released, 1u);
  EXPECT_EQ(arena_->CloseSessionsOf("key-a"), 0u);
}

TEST_F(KvArenaCacheTest, BlockLargerThanTheArenaIsRefused) {
  const std::string k(kArena / 2 + 1, 'k');
  auto b = arena_->Insert(Key("big"), arena_->Generation("ns"), k, k, Meta());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(arena_->GetStats().used_bytes, 0u);
}

}  // namespace
}  // namespace mnemo::server
