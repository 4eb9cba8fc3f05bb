// mnemo_crash_writer DIR TRIAL SEED [FACTORY]
//
// Writer process for the kill -9 test (crash_test.cc). Opens the store in
// DIR, creates namespace "crash" (dim 8, L2, index FACTORY, default Flat)
// when missing, prints
// "READY", then writes until killed. Protocol on stdout, one line each,
// written with a single write(2) per group so the reader never sees a torn
// group:
//   TRY <id>     before the Upsert that carries <id> starts
//   ACK <id>     after that Upsert returned OK (the write is durable)
//   DELTRY <id>  before a Delete of <id> starts
//   DEL <id>     after that Delete returned OK
//   KVTRY <id>   before a KV put (kCrashKvModel, fp32) for <id> starts
//   KVACK <id>   after that put committed (test::KvFor(id) per layer)
// Ids are "t<TRIAL>-<n>", vectors test::VectorFor(id). Replacements re-write
// an acked id with the same vector and new text. Every few batches it calls
// Checkpoint("") so snapshots and log trimming race with the kill too; the
// store also snapshots in the background every 64 index-log entries.
// Exit status: 5 when Open says FAILED_PRECONDITION (directory in use), 3 on
// any other error, 2 on bad usage.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "db/store.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"
#include "tests/db/test_util.h"

namespace {

constexpr int kDim = 8;

void Emit(const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(STDOUT_FILENO, text.data() + done, text.size() - done);
    if (n <= 0) std::_Exit(4);  // reader gone
    done += static_cast<size_t>(n);
  }
}

[[noreturn]] void Fail(const std::string& what, const absl::Status& status) {
  std::fprintf(stderr, "crash_writer: %s: %s\n", what.c_str(), status.ToString().c_str());
  std::exit(3);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4 && argc != 5) {
    std::fprintf(stderr, "usage: %s DIR TRIAL SEED [FACTORY]\n", argv[0]);
    return 2;
  }
  // stdout carries the protocol; logs go to stderr.
  spdlog::set_default_logger(spdlog::stderr_color_mt("crash_writer"));
  spdlog::set_level(spdlog::level::warn);

  const std::string dir = argv[1];
  const std::string trial = argv[2];
  const std::string factory = argc == 5 ? argv[4] : "Flat";
  std::mt19937_64 rng(std::strtoull(argv[3], nullptr, 10));

  mnemo::db::StoreOptions options;
  options.snapshot_every_ops = 64;
  auto store = mnemo::db::Store::Open(options, dir);
  if (!store.ok()) {
    // Exit code 5 tells the test that the directory lock was reported as
    // FAILED_PRECONDITION (another process holds the store).
    std::fprintf(stderr, "crash_writer: open: %s\n", store.status().ToString().c_str());
    return absl::IsFailedPrecondition(store.status()) ? 5 : 3;
  }
  mnemo::db::Store& db = **store;

  if (absl::IsNotFound(db.GetNamespace("crash").status())) {
    mnemo::db::NamespaceConfig config;
    config.name = "crash";
    config.dim = kDim;
    config.metric = mnemo::db::Metric::kL2;
    config.index_factory = factory;
    auto created = db.CreateNamespace(config);
    if (!created.ok()) Fail("create namespace", created.status());
  }
  {
    mnemo::db::KvConfig kv;
    kv.model = mnemo::db::test::CrashKvModel();
    kv.codec.kind = mnemo::db::KvCodecKind::kFp32;
    auto registered = db.RegisterKvModel("crash", kv);
    if (!registered.ok()) Fail("register KV model", registered.status());
  }
  Emit("READY\n");

  std::vector<std::string> live;  // acked, not deleted, ids of this trial
  int next = 0;
  for (int batch = 0; batch < 1000000; ++batch) {
    std::vector<mnemo::db::Chunk> chunks;
    std::vector<std::string> fresh;  // ids first written by this batch
    const int size = 1 + static_cast<int>(rng() % 8);
    for (int i = 0; i < size; ++i) {
      mnemo::db::Chunk c;
      if (!live.empty() && rng() % 6 == 0) {
        c.id = live[rng() % live.size()];  // replacement
        bool dup = false;
        for (const auto& other : chunks) dup = dup || other.id == c.id;
        if (dup) continue;
        c.text = absl::StrCat("replaced in batch ", batch);
      } else {
        c.id = absl::StrCat("t", trial, "-", next++);
        c.text = absl::StrCat("text of ", c.id);
        fresh.push_back(c.id);
      }
      c.metadata_json = absl::StrCat(R"({"batch":)", batch, "}");
      c.vector = mnemo::db::test::VectorFor(c.id, kDim);
      chunks.push_back(std::move(c));
    }
    std::string tries, acks;
    for (const auto& c : chunks) {
      absl::StrAppend(&tries, "TRY ", c.id, "\n");
      absl::StrAppend(&acks, "ACK ", c.id, "\n");
    }
    Emit(tries);
    auto written = db.Upsert("crash", {}, chunks);
    if (!written.ok()) Fail("upsert", written.status());
    Emit(acks);
    live.insert(live.end(), fresh.begin(), fresh.end());

    // KV for some of the fresh chunks: all layers or nothing survives.
    for (const std::string& id : fresh) {
      if (rng() % 2 != 0) continue;
      Emit(absl::StrCat("KVTRY ", id, "\n"));
      const mnemo::ModelFingerprint model = mnemo::db::test::CrashKvModel();
      mnemo::db::KvPutHeader header;
      header.chunk_id = id;
      header.model = model;
      header.tokens.assign(mnemo::db::test::kCrashKvTokens, 7);
      auto writer = db.BeginPutKv("crash", header);
      if (!writer.ok()) Fail("begin KV put", writer.status());
      const mnemo::db::KvTensorShape shape{static_cast<uint32_t>(model.n_kv_heads),
                                           mnemo::db::test::kCrashKvTokens,
                                           static_cast<uint32_t>(model.head_dim)};
      for (int l = 0; l < model.n_layers; ++l) {
        const auto k = mnemo::db::test::KvFor(id, l, 'k');
        const auto v = mnemo::db::test::KvFor(id, l, 'v');
        absl::Status added = (*writer)->AddLayer(l, shape, k, v);
        if (!added.ok()) Fail("KV layer", added);
      }
      auto put = (*writer)->Commit();
      if (!put.ok()) Fail("KV commit", put.status());
      Emit(absl::StrCat("KVACK ", id, "\n"));
    }

    if (!live.empty() && rng() % 4 == 0) {
      const size_t pick = rng() % live.size();
      std::vector<std::string> ids = {live[pick]};
      live.erase(live.begin() + static_cast<ptrdiff_t>(pick));
      Emit(absl::StrCat("DELTRY ", ids[0], "\n"));
      auto deleted = db.Delete("crash", ids, {});
      if (!deleted.ok()) Fail("delete", deleted.status());
      Emit(absl::StrCat("DEL ", ids[0], "\n"));
    }
    if (batch % 16 == 15) {
      auto checkpoint = db.Checkpoint("");
      if (!checkpoint.ok()) Fail("checkpoint", checkpoint.status());
    }
  }
  return 0;
}
