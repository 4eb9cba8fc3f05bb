// kill -9 of a real mnemod while a writer replaces chunks' KV and a reader
// reads them through the KV arena (mnemod --kv-arena-bytes): no
// acknowledged KV is lost and no torn block is ever served, before or after
// the crash.
//
// Every value of a put encodes (chunk, version, layer) exactly (fp32 codec
// and wire), so each block read names the one version it came from: a
// block mixing versions, or K and V of different versions, or a chunk whose
// layers differ, is torn. After each kill mnemod restarts on the same data
// directory and every chunk must read back at its last acknowledged version
// or the one in flight at the kill (committed but not yet acknowledged).
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "mnemo/client.h"
#include "tests/integration/kv_test_model.h"
#include "tests/integration/mnemod_process.h"
#include "tests/integration/sdk_test_util.h"

namespace mnemo::testing {
namespace {

constexpr int kLayers = 2, kKvHeads = 2, kHeadDim = 64, kTokens = 64, kChunks = 16;
constexpr size_t kElements = size_t{kKvHeads} * kTokens * kHeadDim;
// 2 MiB: 32 blocks of 2 x 32 KiB, the whole namespace, so reads evict.
const std::vector<std::string> kFlags = {"--kv-arena-bytes", "2097152"};

ModelFingerprint Model() { return KvTestModel(kLayers, kKvHeads, kKvHeads, kHeadDim, 'c'); }

// The value of element i of K (v = false) or V of a version: exact in fp32.
float Value(int chunk, int version, int layer, bool v, size_t i) {
  return static_cast<float>(((chunk * 4096 + version) * 4 + layer * 2 + (v ? 1 : 0)) * 8 +
                            static_cast<int>(i % 8));
}

KvPut MakePut(int chunk, int version) {
  KvPut put;
  put.chunk_id = absl::StrCat("c", chunk);
  put.model = Model();
  for (int t = 0; t < kTokens; ++t) put.tokens.push_back(t);
  for (int l = 0; l < kLayers; ++l) {
    put.k.emplace_back(kElements);
    put.v.emplace_back(kElements);
    for (size_t i = 0; i < kElements; ++i) {
      put.k.back()[i] = Value(chunk, version, l, false, i);
      put.v.back()[i] = Value(chunk, version, l, true, i);
    }
  }
  return put;
}

// The version one raw block holds; -1 when it is torn (or of another chunk
// or layer).
int VersionOf(const KvBlock& b, int chunk) {
  if (b.k_raw.size() != kElements * sizeof(float) || b.v_raw.size() != b.k_raw.size()) return -1;
  float first;
  std::memcpy(&first, b.k_raw.data(), sizeof(float));
  const int code = static_cast<int>(first) / 8;
  const int version = code / 4 - chunk * 4096;
  if (version < 0 || version >= 4096) return -1;
  for (size_t i = 0; i < kElements; ++i) {
    float k, v;
    std::memcpy(&k, b.k_raw.data() + i * sizeof(float), sizeof(float));
    std::memcpy(&v, b.v_raw.data() + i * sizeof(float), sizeof(float));
    if (k != Value(chunk, version, static_cast<int>(b.layer), false, i) ||
        v != Value(chunk, version, static_cast<int>(b.layer), true, i)) {
      return -1;
    }
  }
  return version;
}

// Reads one chunk raw through the arena: its version, -1 when torn or the
// layers differ, -2 when the read failed (status in *error).
int ReadVersion(Client* client, int chunk, absl::Status* error) {
  KvGetRequest get;
  get.chunk_ids = {absl::StrCat("c", chunk)};
  get.model = Model();
  get.shared_memory = true;
  get.raw = true;
  auto reader = client->OpenKvReader("kv", get);
  if (!reader.ok()) {
    *error = reader.status();
    return -2;
  }
  int version = -3;
  KvBlock block;
  while (true) {
    absl::StatusOr<bool> more = (*reader)->Next(&block);
    if (!more.ok()) {
      *error = more.status();
      return -2;
    }
    if (!*more) break;
    if (block.lease == nullptr) return -4;  // not served by the arena
    const int v = VersionOf(block, chunk);
    if (v < 0 || (version != -3 && v != version)) return -1;
    version = v;
  }
  return version;
}

TEST(KvArenaCrashTest, KillDuringPutsAndArenaReadsLosesNothingAndTearsNothing) {
  auto dir = MakeTempDir("kv-arena-crash");
  ASSERT_TRUE(dir.ok());
  const std::string data_dir = *dir + "/data";
  std::vector<int> acked(kChunks, -1);  // last acknowledged version per chunk
  std::vector<int> tried(kChunks, -1);  // last version whose put was sent
  int next_version = 0;
  for (int cycle = 0; cycle < 3; ++cycle) {
    auto server = MnemodProcess::Start(kFlags, data_dir);
    ASSERT_TRUE(server.ok()) << server.status();
    auto client = ConnectOrDie((*server)->target());
    ASSERT_NE(client, nullptr);
    if (cycle == 0) {
      NamespaceConfig ns;
      ns.name = "kv";
      ns.dim = 4;
      ASSERT_TRUE(client->CreateNamespace(ns).ok());
      std::vector<Chunk> chunks;
      for (int c = 0; c < kChunks; ++c) {
        Chunk ch;
        ch.id = absl::StrCat("c", c);
        ch.text = ch.id;
        ch.vector = {1, 0, 0, 0};
        chunks.push_back(ch);
      }
      ASSERT_TRUE(client->Upsert("kv", {}, chunks).ok());
      KvConfig kv;
      kv.model = Model();
      kv.codec = KvCodec::kFp32;
      kv.entropy = false;
      ASSERT_TRUE(client->RegisterKvModel("kv", kv).ok());
      for (int c = 0; c < kChunks; ++c) {
        ASSERT_TRUE(client->PutKv("kv", MakePut(c, 0)).ok());
        acked[c] = tried[c] = 0;
      }
      next_version = 1;
    } else {
      // After the kill: every chunk at its acknowledged version, or the one
      // in flight; never torn.
      for (int c = 0; c < kChunks; ++c) {
        absl::Status error;
        const int v = ReadVersion(client.get(), c, &error);
        ASSERT_NE(v, -2) << "chunk " << c << ": " << error;
        ASSERT_NE(v, -1) << "chunk " << c << " is torn after the restart";
        ASSERT_NE(v, -4) << "chunk " << c << " was not served from the arena";
        EXPECT_TRUE(v == acked[c] || v == tried[c])
            << "chunk " << c << " reads version " << v << "; acknowledged " << acked[c]
            << ", in flight " << tried[c];
        acked[c] = tried[c] = v;
      }
    }

    // A writer replacing chunks and a reader checking them, until the kill.
    std::atomic<bool> stop{false};
    std::mutex mu;  // guards acked / tried
    std::atomic<int> torn{0}, reads{0}, stale{0};
    std::thread writer([&] {
      std::mt19937 rng(cycle);
      for (int i = 0; !stop; ++i) {
        const int c = static_cast<int>(rng() % kChunks);
        const int version = next_version++;
        {
          std::lock_guard<std::mutex> lock(mu);
          tried[c] = version;
        }
        if (!client->PutKv("kv", MakePut(c, version)).ok()) return;  // the kill
        std::lock_guard<std::mutex> lock(mu);
        acked[c] = version;
      }
    });
    std::thread reader([&] {
      std::mt19937 rng(100 + cycle);
      while (!stop) {
        const int c = static_cast<int>(rng() % kChunks);
        int floor;
        {
          std::lock_guard<std::mutex> lock(mu);
          floor = acked[c];
        }
        absl::Status error;
        const int v = ReadVersion(client.get(), c, &error);
        if (v == -2) {
          if (absl::IsResourceExhausted(error)) continue;  // arena momentarily pinned
          return;  // the kill
        }
        ++reads;
        if (v < 0) ++torn;
        else if (v < floor) ++stale;  // older than what was acknowledged before the read
      }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    (*server)->Kill();
    stop = true;
    writer.join();
    reader.join();
    std::printf("cycle %d: %d arena reads checked, next version %d at the kill\n", cycle,
                reads.load(), next_version);
    EXPECT_EQ(torn.load(), 0) << "torn blocks served in cycle " << cycle;
    EXPECT_EQ(stale.load(), 0) << "replaced KV served in cycle " << cycle;
    EXPECT_GT(reads.load(), 0) << "the reader never read in cycle " << cycle;
  }
  std::error_code ec;
  std::filesystem::remove_all(*dir, ec);
}

}  // namespace
}  // namespace mnemo::testing
