// Kill -9 test: a writer process (crash_writer.cc) upserts, deletes and
// checkpoints in a loop and reports each acknowledged write on a pipe; the
// test SIGKILLs it at a random moment, reopens the store in-process and
// checks that
//   - every acknowledged chunk (not since acknowledged as deleted) is there
//     with its exact vector and is the top-1 hit for its own vector,
//   - every acknowledged delete is honoured,
//   - writes in flight at the kill are either fully there or absent,
//   - the chunk count equals the number of chunks found (no chunk without
//     its vector or index entry).
// The same directory is reused across trials, so recovery of a store that
// was itself recovered (and killed mid-snapshot) is covered too. Runs on a
// Flat namespace and on an HNSW one (graph snapshots, dead entries,
// in-place replacement).
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <chrono>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "db/store.h"
#include "db/store_testing.h"
#include "gtest/gtest.h"
#include "tests/db/test_util.h"

extern char** environ;

namespace mnemo::db {
namespace {

constexpr int kDim = 8;
constexpr int kTrials = 24;

enum class Expect { kMaybe, kPresent, kAbsent };

struct Tracker {
  absl::flat_hash_map<std::string, Expect> state;
  // Whether each chunk holds KV: an upsert of the id (a replacement) drops
  // it, a KV put adds it.
  absl::flat_hash_map<std::string, Expect> kv;
  int kv_acks = 0;
  std::vector<std::string> ids;  // every id ever tried, first-seen order
  int acks = 0;
  int deletes = 0;

  void Line(const std::string& line) {
    auto space = line.find(' ');
    if (space == std::string::npos) return;
    const std::string verb = line.substr(0, space);
    const std::string id = line.substr(space + 1);
    auto [it, inserted] = state.try_emplace(id, Expect::kAbsent);
    if (inserted) ids.push_back(id);
    Expect& kv_state = kv.try_emplace(id, Expect::kAbsent).first->second;
    if (verb == "TRY") {
      if (it->second != Expect::kPresent) it->second = Expect::kMaybe;
      if (kv_state == Expect::kPresent) kv_state = Expect::kMaybe;
    } else if (verb == "ACK") {
      it->second = Expect::kPresent;
      kv_state = Expect::kAbsent;
      ++acks;
    } else if (verb == "DELTRY") {
      it->second = Expect::kMaybe;
      if (kv_state == Expect::kPresent) kv_state = Expect::kMaybe;
    } else if (verb == "DEL") {
      it->second = Expect::kAbsent;
      kv_state = Expect::kAbsent;
      ++deletes;
    } else if (verb == "KVTRY") {
      kv_state = Expect::kMaybe;
    } else if (verb == "KVACK") {
      kv_state = Expect::kPresent;
      ++kv_acks;
    }
  }
};

class Writer {
 public:
  Writer(const std::string& dir, int trial, uint64_t seed, std::string factory = "Flat") {
    int fds[2];
    if (pipe(fds) != 0) return;
    read_fd_ = fds[0];
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    posix_spawn_file_actions_addclose(&actions, fds[1]);
    std::string trial_arg = absl::StrCat(trial);
    std::string seed_arg = absl::StrCat(seed);
    std::string path = MNEMO_CRASH_WRITER_PATH;
    char* argv[] = {path.data(), const_cast<char*>(dir.c_str()), trial_arg.data(),
                    seed_arg.data(), factory.data(), nullptr};
    if (posix_spawn(&pid_, path.c_str(), &actions, nullptr, argv, environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
  }

  ~Writer() {
    Kill();
    if (read_fd_ >= 0) close(read_fd_);
  }

  bool started() const { return pid_ > 0 && read_fd_ >= 0; }

  // Reads what is available within `timeout_ms`, feeding complete lines to
  // `tracker`. Returns false at end of stream.
  bool Pump(int timeout_ms, Tracker* tracker) {
    pollfd p{read_fd_, POLLIN, 0};
    int ready = poll(&p, 1, std::max(0, timeout_ms));
    if (ready <= 0) return true;
    char buf[4096];
    ssize_t n = read(read_fd_, buf, sizeof(buf));
    if (n <= 0) return false;
    pending_.append(buf, static_cast<size_t>(n));
    size_t start = 0;
    for (size_t nl; (nl = pending_.find('\n', start)) != std::string::npos; start = nl + 1) {
      tracker->Line(pending_.substr(start, nl - start));
    }
    pending_.erase(0, start);
    return true;
  }

  // Reads to end of stream and reaps the process without killing it.
  int WaitForExit(Tracker* tracker) {
    while (Pump(1000, tracker)) {
    }
    if (pid_ > 0) waitpid(pid_, &wait_status_, 0);
    pid_ = -1;
    return wait_status_;
  }

  // SIGKILL, reap, then take in everything written before death. A partial
  // last line is dropped: its write never completed.
  int KillAndDrain(Tracker* tracker) {
    Kill();
    while (Pump(1000, tracker)) {
    }
    return wait_status_;
  }

 private:
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, &wait_status_, 0);
    pid_ = -1;
  }

  pid_t pid_ = -1;
  int read_fd_ = -1;
  int wait_status_ = 0;
  std::string pending_;
};

// Reopens the store and checks it against `tracker`; resolves the in-flight
// ids to what recovery made of them.
void Verify(const std::string& dir, int trial, Tracker* tracker, std::mt19937_64* rng,
            int* snapshot_loads) {
  StoreOptions options;
  auto opened = Store::Open(options, dir);
  ASSERT_TRUE(opened.ok()) << "trial " << trial << ": " << opened.status();
  Store& store = **opened;

  auto info = store.GetNamespace("crash");
  if (absl::IsNotFound(info.status())) {
    for (const auto& [id, expect] : tracker->state) {
      ASSERT_NE(expect, Expect::kPresent) << id << " acked but the namespace is missing";
    }
    ASSERT_TRUE(store.Close().ok());
    return;
  }
  ASSERT_TRUE(info.ok()) << info.status();
  auto recovery = testing::RecoveryInfoForTesting(&store, "crash");
  ASSERT_TRUE(recovery.ok()) << recovery.status();
  if (recovery->loaded_snapshot) ++*snapshot_loads;

  std::vector<std::string> found_ids;
  const auto& ids = tracker->ids;
  for (size_t start = 0; start < ids.size(); start += 5000) {
    std::vector<std::string> batch(ids.begin() + start,
                                   ids.begin() + std::min(ids.size(), start + 5000));
    auto got = store.Get("crash", batch, {}, /*include_vectors=*/true);
    ASSERT_TRUE(got.ok()) << "trial " << trial << ": " << got.status();
    absl::flat_hash_map<std::string, const Chunk*> by_id;
    for (const Chunk& c : got->chunks) by_id[c.id] = &c;
    for (const std::string& id : batch) {
      Expect& expect = tracker->state[id];
      auto it = by_id.find(id);
      const bool found = it != by_id.end();
      if (expect == Expect::kPresent) {
        ASSERT_TRUE(found) << "trial " << trial << ": acked chunk " << id << " is lost";
      } else if (expect == Expect::kAbsent) {
        ASSERT_FALSE(found) << "trial " << trial << ": deleted chunk " << id << " came back";
      }
      if (found) {
        ASSERT_EQ(it->second->vector, test::VectorFor(id, kDim)) << "trial " << trial << " " << id;
        found_ids.push_back(id);
      }
      expect = found ? Expect::kPresent : Expect::kAbsent;
    }
  }
  EXPECT_EQ(info->chunk_count, found_ids.size())
      << "trial " << trial << ": chunks in the store that no writer acknowledged";

  // KV: acknowledged puts are whole and exact, nothing else is there, and a
  // put cut off by the kill left all of its layers or none.
  const ModelFingerprint model = test::CrashKvModel();
  for (size_t start = 0; start < ids.size(); start += 5000) {
    std::vector<std::string> batch(ids.begin() + start,
                                   ids.begin() + std::min(ids.size(), start + 5000));
    auto exists = store.ExistsKv("crash", batch, model);
    ASSERT_TRUE(exists.ok()) << exists.status();
    for (size_t i = 0; i < batch.size(); ++i) {
      const std::string& id = batch[i];
      Expect& expect = tracker->kv[id];
      const bool has = (*exists)[i] > 0;
      if (expect == Expect::kPresent) {
        ASSERT_TRUE(has) << "trial " << trial << ": acked KV of " << id << " is lost";
      } else if (expect == Expect::kAbsent) {
        ASSERT_FALSE(has) << "trial " << trial << ": KV of " << id << " should be gone";
      }
      if (has) {
        KvReadOptions read;
        read.chunk_ids = {id};
        read.model = model;
        auto reader = store.ReadKv("crash", read);
        ASSERT_TRUE(reader.ok()) << reader.status();
        int layers = 0;
        KvBlock block;
        while (true) {
          auto more = (*reader)->Next(&block);
          ASSERT_TRUE(more.ok()) << "trial " << trial << " " << id << ": " << more.status();
          if (!*more) break;
          ASSERT_EQ(block.k, test::KvFor(id, block.layer, 'k')) << "trial " << trial << " " << id;
          ASSERT_EQ(block.v, test::KvFor(id, block.layer, 'v')) << "trial " << trial << " " << id;
          ++layers;
        }
        ASSERT_EQ(layers, model.n_layers);
      }
      expect = has ? Expect::kPresent : Expect::kAbsent;
    }
  }

  // Top-1 self search: this trial's chunks plus a sample of older ones.
  const std::string mine = absl::StrCat("t", trial, "-");
  std::vector<std::string> probe;
  for (const std::string& id : found_ids) {
    if (id.starts_with(mine) || (*rng)() % 20 == 0) probe.push_back(id);
  }
  for (size_t start = 0; start < probe.size(); start += 1024) {
    const size_t stop = std::min(probe.size(), start + 1024);
    std::vector<float> queries;
    for (size_t i = start; i < stop; ++i) {
      auto v = test::VectorFor(probe[i], kDim);
      queries.insert(queries.end(), v.begin(), v.end());
    }
    SearchOptions search;
    search.k = 1;
    // A graph index finds an exact match at a wide ef on 8-d data; the
    // default ef is the bench's business, not this test's.
    search.params.hnsw_ef_search = 512;
    auto hits = store.Search("crash", queries, search);
    ASSERT_TRUE(hits.ok()) << hits.status();
    for (size_t i = start; i < stop; ++i) {
      const auto& row = (*hits)[i - start];
      ASSERT_FALSE(row.empty()) << "trial " << trial << ": no hit for " << probe[i];
      EXPECT_EQ(row[0].id, probe[i]) << "trial " << trial << ": index entry missing";
    }
  }
  ASSERT_TRUE(store.Close().ok());
}

TEST(CrashTest, SecondProcessOpeningTheStoreGetsFailedPrecondition) {
  const std::string dir = test::MakeTempDir("lock");
  {
    auto store = Store::Open(StoreOptions(), dir);
    ASSERT_TRUE(store.ok()) << store.status();
    Writer writer(dir, 0, 1);
    ASSERT_TRUE(writer.started());
    Tracker tracker;
    const int status = writer.WaitForExit(&tracker);
    ASSERT_TRUE(WIFEXITED(status)) << status;
    EXPECT_EQ(WEXITSTATUS(status), 5) << "the writer's Open did not fail with FAILED_PRECONDITION";
    EXPECT_EQ(tracker.acks, 0);
    ASSERT_TRUE((*store)->Close().ok());
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

class CrashKillTest : public ::testing::TestWithParam<const char*> {};

TEST_P(CrashKillTest, AcknowledgedWritesSurviveKill9) {
  const std::string dir = test::MakeTempDir("crash");
  std::mt19937_64 rng(0x6d6e656d6fULL);
  Tracker tracker;
  int trials_with_acks = 0;
  int snapshot_loads = 0;  // recoveries that loaded a snapshot and replayed
  for (int trial = 0; trial < kTrials; ++trial) {
    SCOPED_TRACE(absl::StrCat("trial ", trial));
    const int acks_before = tracker.acks;
    Writer writer(dir, trial, rng(), GetParam());
    ASSERT_TRUE(writer.started()) << "cannot start " << MNEMO_CRASH_WRITER_PATH;

    // Even trials: kill after a random delay (the writer may still be
    // opening the store). Odd trials: kill after a random number of acks,
    // i.e. at a random point mid-stream.
    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    auto deadline = start + std::chrono::milliseconds(20 + rng() % 381);
    int ack_limit = 1 << 30;
    if (trial % 2 == 1) {
      deadline = start + std::chrono::seconds(5);
      ack_limit = acks_before + 1 + static_cast<int>(rng() % 300);
    }
    bool alive = true;
    while (alive && tracker.acks < ack_limit) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) break;
      alive = writer.Pump(static_cast<int>(left), &tracker);
    }
    ASSERT_TRUE(alive) << "the writer exited on its own (see its stderr)";
    const int status = writer.KillAndDrain(&tracker);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "the writer died before the kill, status " << status;
    if (tracker.acks > acks_before) ++trials_with_acks;

    Verify(dir, trial, &tracker, &rng, &snapshot_loads);
    if (HasFatalFailure()) break;
  }
  std::printf(
      "crash test: %d acks, %d deletes, %d KV puts acked, %d trials with acks, %d snapshot "
      "loads\n",
      tracker.acks, tracker.deletes, tracker.kv_acks, trials_with_acks, snapshot_loads);
  RecordProperty("acks", tracker.acks);
  RecordProperty("snapshot_loads", snapshot_loads);
  // Odd trials are killed only after acks arrive; even ones may be killed
  // while the writer is still opening the store.
  EXPECT_GE(trials_with_acks, kTrials / 4);
  EXPECT_GT(tracker.acks, 100);
  // Most recoveries must go through snapshot + log replay, not a rebuild.
  EXPECT_GT(snapshot_loads, 0);
  EXPECT_GT(tracker.deletes, 0);
  EXPECT_GT(tracker.kv_acks, 20);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

INSTANTIATE_TEST_SUITE_P(Factories, CrashKillTest, ::testing::Values("Flat", "HNSW16"));

}  // namespace
}  // namespace mnemo::db
