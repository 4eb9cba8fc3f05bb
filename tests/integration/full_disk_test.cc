// mnemod on a full disk: a real mnemod whose data directory lies on a small
// tmpfs that a filler file nearly fills. Writes go on until the disk is
// full; the failing ones get RESOURCE_EXHAUSTED (ENOSPC) or UNAVAILABLE
// (writes stopped after it), reads keep working, writes resume once the
// filler is removed, and after a kill -9 and a restart every acknowledged
// write is there. Mounting needs root (CAP_SYS_ADMIN): without it the test
// skips, saying so.
#include <sys/mount.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/integration/sdk_test_util.h"

namespace mnemo::testing {
namespace {

namespace fs = std::filesystem;

constexpr uint32_t kDim = 64;
constexpr uint64_t kDiskBytes = 32ull << 20;
constexpr uint64_t kFillerBytes = 22ull << 20;
constexpr int kBatch = 50;
constexpr int kTextBytes = 2000;

// A tmpfs of kDiskBytes mounted on a fresh directory; unmounted (and the
// directory removed) by the destructor.
class SmallDisk {
 public:
  SmallDisk() {
    auto dir = MakeTempDir("mnemo-full-disk");
    if (!dir.ok()) {
      error_ = dir.status().ToString();
      return;
    }
    root_ = *dir;
    const std::string options = absl::StrCat("size=", kDiskBytes);
    if (mount("tmpfs", root_.c_str(), "tmpfs", 0, options.c_str()) != 0) {
      error_ = absl::StrCat("cannot mount a tmpfs on ", root_, ": ", std::strerror(errno));
      return;
    }
    mounted_ = true;
  }
  ~SmallDisk() {
    if (mounted_) umount2(root_.c_str(), MNT_DETACH);
    std::error_code ec;
    if (!root_.empty()) fs::remove_all(root_, ec);
  }
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }
  const std::string& root() const { return root_; }

 private:
  std::string root_;
  std::string error_;
  bool mounted_ = false;
};

// Writes `bytes` bytes to `path` (the filler).
bool WriteFile(const std::string& path, uint64_t bytes) {
  std::ofstream out(path, std::ios::binary);
  std::string block(1 << 20, 'f');
  for (uint64_t left = bytes; left > 0 && out.good();) {
    const uint64_t n = std::min<uint64_t>(left, block.size());
    out.write(block.data(), static_cast<std::streamsize>(n));
    left -= n;
  }
  return out.good();
}

std::vector<float> VectorOf(int i) {
  std::vector<float> v(kDim);
  for (uint32_t d = 0; d < kDim; ++d) v[d] = static_cast<float>((i * 31 + d * 7) % 97) / 97.0f;
  v[i % kDim] += 10.0f;
  return v;
}

std::vector<Chunk> Batch(int first) {
  std::vector<Chunk> chunks;
  for (int i = first; i < first + kBatch; ++i) {
    chunks.push_back(Chunk{absl::StrCat("c", i), "",
                           absl::StrCat("chunk ", i, " ", std::string(kTextBytes, 'a' + i % 26)),
                           "{}", VectorOf(i)});
  }
  return chunks;
}

// Every acknowledged chunk reads back with its text.
void ExpectAllReadable(Client& client, const std::vector<std::string>& acked) {
  for (size_t at = 0; at < acked.size(); at += 500) {
    std::vector<std::string> ids(acked.begin() + at,
                                 acked.begin() + std::min(acked.size(), at + 500));
    auto got = client.Get("full", ids, {}, false);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->chunks.size(), ids.size()) << "missing: " << got->missing_ids.size();
  }
}

TEST(FullDiskTest, AcknowledgedWritesSurviveAndWritesResumeWhenSpaceReturns) {
  SmallDisk disk;
  if (!disk.mounted()) GTEST_SKIP() << "no small file system to fill: " << disk.error();
  const std::string data_dir = disk.root() + "/data";
  const std::string filler = disk.root() + "/filler";
  ASSERT_TRUE(WriteFile(filler, kFillerBytes));

  auto server = MnemodProcess::Start({}, data_dir);
  ASSERT_TRUE(server.ok()) << server.status();
  ClientOptions options;
  options.max_attempts = 1;  // see every answer
  options.default_timeout = std::chrono::seconds(30);
  auto connected = Client::Connect((*server)->target(), options);
  ASSERT_TRUE(connected.ok()) << connected.status();
  std::unique_ptr<Client> client = std::move(connected).value();
  NamespaceConfig config;
  config.name = "full";
  config.dim = kDim;
  config.metric = Metric::kL2;
  ASSERT_TRUE(client->CreateNamespace(config).ok());

  // Fill the disk.
  std::vector<std::string> acked;
  int next = 0;
  absl::Status failed;
  for (int round = 0; round < 1000 && failed.ok(); ++round) {
    std::vector<Chunk> batch = Batch(next);
    next += kBatch;
    auto written = client->Upsert("full", {}, batch);
    if (written.ok()) {
      for (const Chunk& c : batch) acked.push_back(c.id);
    } else {
      failed = written.status();
    }
  }
  ASSERT_FALSE(failed.ok()) << "the disk never filled";
  ASSERT_TRUE(absl::IsResourceExhausted(failed) || absl::IsUnavailable(failed))
      << failed << "\n" << (*server)->LogTail();
  ASSERT_TRUE((*server)->running()) << (*server)->LogTail();
  ASSERT_FALSE(acked.empty());
  // While full: more writes fail the same way, reads and searches work.
  auto again = client->Upsert("full", {}, Batch(next));
  next += kBatch;
  EXPECT_TRUE(absl::IsResourceExhausted(again.status()) || absl::IsUnavailable(again.status()))
      << again.status();
  ExpectAllReadable(*client, acked);
  SearchRequest search;
  search.ns = "full";
  search.dim = kDim;
  search.queries = VectorOf(3);
  search.k = 1;
  auto hits = client->Search(search);
  ASSERT_TRUE(hits.ok()) << hits.status();
  EXPECT_EQ(hits->at(0).at(0).id, "c3");

  // Space returns: writes resume (the first may still see the stop while
  // the store recovers).
  fs::remove(filler);
  bool resumed = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!resumed && std::chrono::steady_clock::now() < deadline) {
    std::vector<Chunk> batch = Batch(next);
    next += kBatch;
    auto written = client->Upsert("full", {}, batch);
    if (written.ok()) {
      for (const Chunk& c : batch) acked.push_back(c.id);
      resumed = true;
    } else {
      EXPECT_TRUE(absl::IsResourceExhausted(written.status()) ||
                  absl::IsUnavailable(written.status()))
          << written.status();
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  ASSERT_TRUE(resumed) << "writes did not resume after space returned\n"
                       << (*server)->LogTail();
  for (int i = 0; i < 3; ++i) {
    std::vector<Chunk> batch = Batch(next);
    next += kBatch;
    ASSERT_TRUE(client->Upsert("full", {}, batch).ok());
    for (const Chunk& c : batch) acked.push_back(c.id);
  }
  ExpectAllReadable(*client, acked);

  // kill -9 and restart: every acknowledged write is there.
  client.reset();
  (*server)->Kill();
  auto restarted = MnemodProcess::Start({}, data_dir);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  client = ConnectOrDie((*restarted)->target());
  ASSERT_NE(client, nullptr);
  ExpectAllReadable(*client, acked);
  auto info = client->GetNamespace("full");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->chunk_count, acked.size());
  search.queries = VectorOf(std::stoi(acked.back().substr(1)));
  hits = client->Search(search);
  ASSERT_TRUE(hits.ok()) << hits.status();
  EXPECT_EQ(hits->at(0).at(0).id, acked.back());
  EXPECT_TRUE((*restarted)->Stop().ok()) << (*restarted)->LogTail();
}

}  // namespace
}  // namespace mnemo::testing
