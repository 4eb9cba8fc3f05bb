// bench_soak: many clients of mixed calls against one mnemod for minutes,
// then a check that every acknowledged write is there (issue 16).
//
// Each of --clients threads holds its own Client (its own channel) and runs,
// until --seconds have passed, a random mix of: dense searches, upserts of
// vectors, gets of its own chunks, deletes, text ingests (documents the
// server chunks and embeds with use-lite), text searches, KV puts on its own
// chunks and KV gets of them. A client touches only the ids it wrote
// itself, so it knows what each of them must hold: a get or KV get whose
// bytes differ from what it wrote counts as a lost write at once. It keeps
// at most --live-chunks chunks, --live-docs documents and --live-kv chunks
// with KV (deleting its oldest past that), so the store's size levels off
// and mnemod's memory should too.
//
// At the end every client reads back everything it holds (vectors, texts,
// KV bytes) and checks that what it deleted is gone. Printed: calls, errors
// and p50 / p99 per call kind, the same calls' p50 on the idle server
// measured first (one client, the baseline), and mnemod's RSS at the start
// of the load, in its middle and at its end.
//
// Ends with:
//   goal soak_errors <calls that failed> 0
//   goal soak_lost_writes <acknowledged writes not read back as written> 0
//   goal soak_rss_drift <(end - middle) / middle RSS of mnemod> 0.10
// With --check it exits 1 when a call failed or a write was lost (what the
// test suite runs, for 60 s).
//
// Needs the use-lite assets (scripts/fetch_encoder): --assets-dir, default
// .assets. Starts its own mnemod (beside this binary) on a fresh data
// directory unless --server names one.
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "bench/bench_must.h"
#include "bench/percentile.h"
#include "mnemo/client.h"
#include "nlohmann/json.hpp"
#include "tests/integration/kv_test_model.h"
#include "tests/integration/mnemod_process.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using mnemo::bench::Must;
using mnemo::bench::Percentile;

constexpr char kVecNs[] = "soak_vec";
constexpr char kTextNs[] = "soak_text";
constexpr uint32_t kDim = 64;
// The KV model: small, so that KV calls are many and the run is not all
// bandwidth.
constexpr int kLayers = 2, kKvHeads = 2, kHeadDim = 32, kKvTokens = 32;

enum Kind {
  kSearch,
  kUpsert,
  kGet,
  kDelete,
  kTextIngest,
  kTextSearch,
  kKvPut,
  kKvGet,
  kKinds
};
constexpr const char* kKindNames[kKinds] = {"search", "upsert",      "get",    "delete",
                                            "text_ingest", "text_search", "kv_put", "kv_get"};
// Relative frequencies of the kinds in the mix.
constexpr int kWeights[kKinds] = {30, 18, 12, 6, 4, 10, 8, 12};

mnemo::ModelFingerprint KvModel() {
  return mnemo::testing::KvTestModel(kLayers, 2 * kKvHeads, kKvHeads, kHeadDim, '5');
}

// Deterministic content of an id's writes, from a seed: what a client
// expects to read back without keeping the bytes.
std::vector<float> VectorOf(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(kDim);
  for (float& x : v) x = normal(rng);
  return v;
}

std::vector<float> KvTensorOf(uint64_t seed, int layer, bool value) {
  std::mt19937_64 rng(seed * 4 + static_cast<uint64_t>(layer) * 2 + (value ? 1 : 0));
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  std::vector<float> t(size_t{kKvHeads} * kKvTokens * kHeadDim);
  for (float& x : t) x = u(rng);
  return t;
}

const std::vector<std::string>& Words() {
  static const std::vector<std::string> words = {
      "river",   "engine",  "lantern", "harbor",  "signal", "meadow",  "copper", "falcon",
      "quarry",  "violet",  "thunder", "archive", "glacier", "pepper", "saddle", "mirror",
      "orchard", "compass", "timber",  "velvet",  "beacon", "canyon",  "ember",  "fiddle",
      "granite", "hollow",  "island",  "jasmine", "kettle", "ledger",  "marble", "nectar",
      "oyster",  "pillar",  "quiver",  "ribbon",  "summit", "tundra",  "umbra",  "vessel",
      "willow",  "yonder",  "zephyr",  "anchor",  "bramble", "cinder", "dune",   "echo"};
  return words;
}

std::string TextOf(uint64_t seed, int words) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<size_t> pick(0, Words().size() - 1);
  std::string text;
  for (int i = 0; i < words; ++i) {
    if (i > 0) text += (i % 12 == 0) ? ". " : " ";
    text += Words()[pick(rng)];
  }
  return text + ".";
}

// mnemod's resident set in bytes (0 when unreadable).
uint64_t RssOf(pid_t pid) {
  if (pid <= 0) return 0;
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
  }
  return 0;
}

struct Tally {
  std::vector<double> ms[kKinds];
  uint64_t errors[kKinds] = {};
  uint64_t lost = 0;
  std::vector<std::string> messages;  // the first few failures

  void Fail(const std::string& what) {
    if (messages.size() < 8) messages.push_back(what);
  }
};

// One client's calls and what it holds.
class SoakClient {
 public:
  SoakClient(int index, std::unique_ptr<mnemo::Client> client, uint64_t seed, int live_chunks,
             int live_docs, int live_kv)
      : index_(index),
        client_(std::move(client)),
        rng_(seed),
        live_chunks_(live_chunks),
        live_docs_(live_docs),
        live_kv_(live_kv) {}

  // Runs the mix until `deadline` or `stop`.
  void Run(Clock::time_point deadline, const std::atomic<bool>& stop) {
    std::discrete_distribution<int> kind(std::begin(kWeights), std::end(kWeights));
    while (Clock::now() < deadline && !stop.load(std::memory_order_relaxed)) {
      Step(static_cast<Kind>(kind(rng_)));
    }
  }

  // One call of `kind` (or of the write it needs first), timed.
  void Step(Kind kind) {
    if ((kind == kGet || kind == kDelete || kind == kKvPut) && chunks_.empty()) kind = kUpsert;
    if (kind == kKvGet && kv_.empty()) kind = chunks_.empty() ? kUpsert : kKvPut;
    const auto t0 = Clock::now();
    const absl::Status s = Call(kind);
    tally_.ms[kind].push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    if (!s.ok()) {
      ++tally_.errors[kind];
      tally_.Fail(absl::StrCat("client ", index_, " ", kKindNames[kind], ": ", s.ToString()));
    }
  }

  // Reads back everything this client holds and checks what it deleted is
  // gone; counts the differences as lost writes.
  void Verify() {
    std::vector<std::string> ids;
    for (const auto& [id, seed] : chunks_) ids.push_back(id);
    for (const std::string& id : deleted_chunks_) ids.push_back(id);
    for (size_t at = 0; at < ids.size(); at += 256) {
      std::vector<std::string> part(ids.begin() + at,
                                    ids.begin() + std::min(ids.size(), at + 256));
      absl::StatusOr<mnemo::GetResult> got = client_->Get(kVecNs, part, {}, true);
      if (!got.ok()) {
        Error(kGet, got.status());
        continue;
      }
      std::map<std::string, const mnemo::Chunk*> found;
      for (const mnemo::Chunk& c : got->chunks) found[c.id] = &c;
      for (const std::string& id : part) {
        auto live = chunks_.find(id);
        auto f = found.find(id);
        if (live != chunks_.end()) {
          if (f == found.end() || f->second->vector != VectorOf(live->second)) {
            Lost(absl::StrCat("chunk ", id, f == found.end() ? " missing" : " changed"));
          }
        } else if (f != found.end()) {
          Lost(absl::StrCat("deleted chunk ", id, " is back"));
        }
      }
    }
    for (const auto& [id, seed] : kv_) {
      if (absl::Status s = CheckKv(id, seed); !s.ok()) Error(kKvGet, s);
    }
    // A deleted chunk's KV went with it.
    for (size_t at = 0; at < deleted_chunks_.size(); at += 256) {
      std::vector<std::string> part(
          deleted_chunks_.begin() + at,
          deleted_chunks_.begin() + std::min(deleted_chunks_.size(), at + 256));
      absl::StatusOr<std::vector<uint32_t>> tokens = client_->ExistsKv(kVecNs, part, KvModel());
      if (!tokens.ok()) {
        Error(kKvGet, tokens.status());
        continue;
      }
      for (size_t i = 0; i < part.size() && i < tokens->size(); ++i) {
        if ((*tokens)[i] != 0) Lost(absl::StrCat("KV of deleted chunk ", part[i], " is back"));
      }
    }
    std::vector<std::string> docs;
    for (const auto& [id, seed] : docs_) docs.push_back(id);
    for (const std::string& id : deleted_docs_) docs.push_back(id);
    if (!docs.empty()) {
      absl::StatusOr<mnemo::GetResult> got = client_->Get(kTextNs, {}, docs, false);
      if (!got.ok()) {
        Error(kGet, got.status());
      } else {
        std::map<std::string, std::string> found;
        for (const mnemo::Document& d : got->documents) found[d.id] = d.text;
        for (const std::string& id : docs) {
          auto live = docs_.find(id);
          auto f = found.find(id);
          if (live != docs_.end()) {
            if (f == found.end() || f->second != TextOf(live->second, kDocWords)) {
              Lost(absl::StrCat("document ", id, f == found.end() ? " missing" : " changed"));
            }
          } else if (f != found.end()) {
            Lost(absl::StrCat("deleted document ", id, " is back"));
          }
        }
      }
    }
  }

  const Tally& tally() const { return tally_; }
  size_t held() const { return chunks_.size() + docs_.size() + kv_.size(); }

 private:
  static constexpr int kDocWords = 120;

  void Error(Kind kind, const absl::Status& s) {
    ++tally_.errors[kind];
    tally_.Fail(absl::StrCat("client ", index_, " verify ", kKindNames[kind], ": ", s.ToString()));
  }
  void Lost(const std::string& what) {
    ++tally_.lost;
    tally_.Fail(absl::StrCat("client ", index_, " lost: ", what));
  }

  uint64_t NextSeed() { return (static_cast<uint64_t>(index_) << 40) | ++seq_; }

  absl::Status Call(Kind kind) {
    switch (kind) {
      case kSearch: {
        mnemo::SearchRequest r;
        r.ns = kVecNs;
        r.dim = kDim;
        r.queries = VectorOf(rng_());
        r.k = 10;
        return client_->Search(r).status();
      }
      case kUpsert: {
        const uint64_t seed = NextSeed();
        mnemo::Chunk c;
        c.id = absl::StrCat("c", index_, "-", seed & 0xffffffffffULL);
        c.vector = VectorOf(seed);
        c.metadata_json = absl::StrCat("{\"client\": ", index_, "}");
        absl::Status s = client_->Upsert(kVecNs, {}, {c}).status();
        if (!s.ok()) return s;
        chunks_[c.id] = seed;
        order_.push_back(c.id);
        while (static_cast<int>(chunks_.size()) > live_chunks_) {
          s = DeleteChunk(order_.front());
          if (!s.ok()) return s;
        }
        return absl::OkStatus();
      }
      case kGet: {
        const std::string id = RandomChunk();
        absl::StatusOr<mnemo::GetResult> got = client_->Get(kVecNs, {id}, {}, true);
        if (!got.ok()) return got.status();
        if (got->chunks.size() != 1 || got->chunks[0].vector != VectorOf(chunks_[id])) {
          Lost(absl::StrCat("chunk ", id, " read back wrong"));
        }
        return absl::OkStatus();
      }
      case kDelete:
        return DeleteChunk(RandomChunk());
      case kTextIngest: {
        const uint64_t seed = NextSeed();
        mnemo::Document d;
        d.id = absl::StrCat("d", index_, "-", seed & 0xffffffffffULL);
        d.text = TextOf(seed, kDocWords);
        absl::Status s = client_->Upsert(kTextNs, {d}, {}).status();
        if (!s.ok()) return s;
        docs_[d.id] = seed;
        doc_order_.push_back(d.id);
        while (static_cast<int>(docs_.size()) > live_docs_) {
          const std::string old = doc_order_.front();
          doc_order_.pop_front();
          s = client_->Delete(kTextNs, {}, {old}).status();
          if (!s.ok()) return s;
          docs_.erase(old);
          deleted_docs_.push_back(old);
        }
        return absl::OkStatus();
      }
      case kTextSearch: {
        mnemo::SearchRequest r;
        r.ns = kTextNs;
        r.text_queries = {TextOf(rng_(), 4)};
        r.mode = (rng_() & 1) ? mnemo::SearchMode::kHybridRrf : mnemo::SearchMode::kDense;
        r.k = 5;
        return client_->Search(r).status();
      }
      case kKvPut: {
        const std::string id = RandomChunk();
        const uint64_t seed = NextSeed();
        mnemo::KvPut put;
        put.chunk_id = id;
        put.model = KvModel();
        for (int t = 0; t < kKvTokens; ++t) put.tokens.push_back(static_cast<int32_t>(seed % 97 + t));
        for (int l = 0; l < kLayers; ++l) {
          put.k.push_back(KvTensorOf(seed, l, false));
          put.v.push_back(KvTensorOf(seed, l, true));
        }
        absl::Status s = client_->PutKv(kVecNs, put).status();
        if (!s.ok()) return s;
        if (!kv_.contains(id)) kv_order_.push_back(id);
        kv_[id] = seed;
        while (static_cast<int>(kv_.size()) > live_kv_) {
          const std::string old = kv_order_.front();
          kv_order_.pop_front();
          if (!kv_.contains(old)) continue;  // its chunk was deleted
          absl::StatusOr<uint64_t> n = client_->DeleteKv(kVecNs, {old});
          if (!n.ok()) return n.status();
          kv_.erase(old);
        }
        return absl::OkStatus();
      }
      case kKvGet: {
        auto it = kv_.begin();
        std::advance(it, static_cast<long>(rng_() % kv_.size()));
        return CheckKv(it->first, it->second);
      }
      case kKinds:
        break;
    }
    return absl::InternalError("unknown call kind");
  }

  // Deletes one of this client's chunks (its KV goes with it). By value:
  // `id` may name an element of order_, which this erases.
  absl::Status DeleteChunk(std::string id) {
    absl::Status s = client_->Delete(kVecNs, {id}, {}).status();
    if (!s.ok()) return s;
    chunks_.erase(id);
    kv_.erase(id);
    order_.erase(std::find(order_.begin(), order_.end(), id));
    deleted_chunks_.push_back(id);
    return absl::OkStatus();
  }

  const std::string& RandomChunk() {
    return order_[static_cast<size_t>(rng_() % order_.size())];
  }

  // A GetKv of `id` must return exactly what the put with `seed` wrote
  // (codec fp32: lossless).
  absl::Status CheckKv(const std::string& id, uint64_t seed) {
    mnemo::KvGetRequest r;
    r.chunk_ids = {id};
    r.model = KvModel();
    absl::StatusOr<std::vector<mnemo::KvBlock>> blocks = client_->GetKv(kVecNs, r);
    if (!blocks.ok()) return blocks.status();
    bool same = blocks->size() == static_cast<size_t>(kLayers);
    for (size_t l = 0; same && l < blocks->size(); ++l) {
      const mnemo::KvBlock& b = (*blocks)[l];
      same = b.layer == l && b.k == KvTensorOf(seed, static_cast<int>(l), false) &&
             b.v == KvTensorOf(seed, static_cast<int>(l), true);
    }
    if (!same) Lost(absl::StrCat("KV of ", id, " read back wrong"));
    return absl::OkStatus();
  }

  const int index_;
  std::unique_ptr<mnemo::Client> client_;
  std::mt19937_64 rng_;
  const int live_chunks_, live_docs_, live_kv_;
  uint64_t seq_ = 0;
  std::map<std::string, uint64_t> chunks_, docs_, kv_;  // id -> seed of its content
  std::vector<std::string> order_;                       // live chunks, oldest first
  std::deque<std::string> doc_order_, kv_order_;
  std::vector<std::string> deleted_chunks_, deleted_docs_;
  Tally tally_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_soak: mixed concurrent load on one mnemod, then every write read back"};
  int clients = 64, seconds = 600, live_chunks = 200, live_docs = 8, live_kv = 24;
  uint64_t seed = 1;
  std::string server_addr, bin_dir, assets_dir = ".assets", json_out;
  bool check = false;
  app.add_option("--clients", clients, "concurrent clients")->capture_default_str();
  app.add_option("--seconds", seconds, "length of the load")->capture_default_str();
  app.add_option("--live-chunks", live_chunks, "chunks each client keeps")->capture_default_str();
  app.add_option("--live-docs", live_docs, "documents each client keeps")->capture_default_str();
  app.add_option("--live-kv", live_kv, "chunks with KV each client keeps")->capture_default_str();
  app.add_option("--seed", seed)->capture_default_str();
  app.add_option("--server", server_addr, "an already running mnemod (default: start one)");
  std::vector<std::string> mnemod_flags;
  app.add_option("--mnemod-flag", mnemod_flags,
                 "a flag for the mnemod it starts, e.g. --mnemod-flag=--memtable-bytes=16777216 "
                 "(repeatable)");
  app.add_option("--bin-dir", bin_dir, "where mnemod is (default: beside this binary)");
  app.add_option("--assets-dir", assets_dir, "holds use-lite/ (scripts/fetch_encoder)")
      ->capture_default_str();
  app.add_option("--json", json_out, "also write the results as JSON here");
  app.add_flag("--check", check, "exit 1 when a call failed or a write was lost");
  CLI11_PARSE(app, argc, argv);
  if (clients < 1 || seconds < 1 || live_chunks < 1 || live_docs < 1 || live_kv < 1) {
    std::fprintf(stderr, "bench_soak: --clients, --seconds and --live-* must be >= 1\n");
    return 2;
  }
  if (bin_dir.empty()) bin_dir = fs::absolute(fs::path(argv[0])).parent_path().string();
  if (std::getenv("MNEMO_BIN_DIR") == nullptr) setenv("MNEMO_BIN_DIR", bin_dir.c_str(), 1);
  if (!fs::exists(fs::path(assets_dir) / "use-lite" / "model.json")) {
    std::fprintf(stderr, "bench_soak: no use-lite assets under %s (run scripts/fetch_encoder)\n",
                 assets_dir.c_str());
    return 2;
  }

  std::unique_ptr<mnemo::testing::MnemodProcess> server;
  pid_t pid = 0;
  if (server_addr.empty()) {
    std::vector<std::string> flags = {"--assets-dir", fs::absolute(assets_dir).string()};
    flags.insert(flags.end(), mnemod_flags.begin(), mnemod_flags.end());
    server = Must(mnemo::testing::MnemodProcess::Start(flags), "starting mnemod");
    server_addr = server->target();
    pid = server->pid();
  }
  auto admin = Must(mnemo::Client::Connect(server_addr), "connect");
  mnemo::NamespaceConfig vec;
  vec.name = kVecNs;
  vec.dim = kDim;
  Must(admin->CreateNamespace(vec).status(), "create namespace " + std::string(kVecNs));
  mnemo::KvConfig kv;
  kv.model = KvModel();
  kv.codec = mnemo::KvCodec::kFp32;
  Must(admin->RegisterKvModel(kVecNs, kv).status(), "register the KV model");
  mnemo::NamespaceConfig text;
  text.name = kTextNs;
  text.encoder = "use-lite";
  Must(admin->CreateNamespace(text).status(), "create namespace " + std::string(kTextNs));

  // Baseline: each kind's latency on the idle server, one client.
  Tally idle;
  {
    SoakClient one(clients, Must(mnemo::Client::Connect(server_addr), "connect"), seed ^ 0xbadc0de,
                   1 << 20, 1 << 20, 1 << 20);
    for (int round = 0; round < 20; ++round) {
      for (int k = 0; k < kKinds; ++k) one.Step(static_cast<Kind>(k));
    }
    idle = one.tally();
    one.Verify();
  }

  std::vector<std::unique_ptr<SoakClient>> soak;
  for (int i = 0; i < clients; ++i) {
    soak.push_back(std::make_unique<SoakClient>(
        i, Must(mnemo::Client::Connect(server_addr), "connect"), seed * 1000003 + i, live_chunks,
        live_docs, live_kv));
  }
  std::printf("bench_soak: %d clients for %d s against %s\n", clients, seconds,
              server_addr.c_str());
  std::fflush(stdout);
  const uint64_t rss_start = RssOf(pid);
  const auto t0 = Clock::now();
  const auto deadline = t0 + std::chrono::seconds(seconds);
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (auto& c : soak) threads.emplace_back([&c, deadline, &stop] { c->Run(deadline, stop); });
  // mnemod's RSS once a second; ten of the samples are printed.
  std::vector<std::pair<double, uint64_t>> rss_samples;
  uint64_t rss_middle = 0;
  bool middle_taken = false;
  for (int i = 1; pid > 0 && Clock::now() < deadline; ++i) {
    std::this_thread::sleep_until(std::min(deadline, t0 + std::chrono::seconds(i)));
    const double at = std::chrono::duration<double>(Clock::now() - t0).count();
    rss_samples.emplace_back(at, RssOf(pid));
    if (!middle_taken && at >= seconds / 2.0) {
      rss_middle = rss_samples.back().second;
      middle_taken = true;
    }
  }
  for (std::thread& t : threads) t.join();
  const double load_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  const uint64_t rss_end = RssOf(pid);

  Tally total;
  for (auto& c : soak) c->Verify();
  for (auto& c : soak) {
    const Tally& t = c->tally();
    for (int k = 0; k < kKinds; ++k) {
      total.ms[k].insert(total.ms[k].end(), t.ms[k].begin(), t.ms[k].end());
      total.errors[k] += t.errors[k];
    }
    total.lost += t.lost;
    for (const std::string& m : t.messages) total.Fail(m);
  }
  for (int k = 0; k < kKinds; ++k) total.errors[k] += idle.errors[k];
  total.lost += idle.lost;
  for (const std::string& m : idle.messages) total.Fail(m);

  uint64_t calls = 0, errors = 0;
  std::printf("\n%-12s %9s %7s %9s %9s %9s %11s\n", "call", "calls", "errors", "p50 ms", "p99 ms",
              "idle p50", "p99 / idle");
  nlohmann::json kinds = nlohmann::json::object();
  for (int k = 0; k < kKinds; ++k) {
    const double p50 = Percentile(total.ms[k], 0.5), p99 = Percentile(total.ms[k], 0.99);
    const double idle50 = Percentile(idle.ms[k], 0.5);
    calls += total.ms[k].size();
    errors += total.errors[k];
    std::printf("%-12s %9zu %7" PRIu64 " %9.2f %9.2f %9.2f %11.1f\n", kKindNames[k],
                total.ms[k].size(), total.errors[k], p50, p99, idle50,
                idle50 > 0 ? p99 / idle50 : 0.0);
    kinds[kKindNames[k]] = {{"calls", total.ms[k].size()}, {"errors", total.errors[k]},
                            {"p50_ms", p50},          {"p99_ms", p99},
                            {"idle_p50_ms", idle50}};
  }
  size_t held = 0;
  for (auto& c : soak) held += c->held();
  std::printf("\n%" PRIu64 " calls in %.1f s (%.0f / s); %zu ids held and read back at the end\n",
              calls, load_seconds, static_cast<double>(calls) / load_seconds, held);
  const double drift = rss_middle > 0 ? (static_cast<double>(rss_end) - rss_middle) / rss_middle : 0;
  if (pid > 0) {
    std::printf("mnemod RSS: start %.1f MiB, middle %.1f MiB, end %.1f MiB (drift %+.3f)\n",
                rss_start / 1048576.0, rss_middle / 1048576.0, rss_end / 1048576.0, drift);
    std::printf("  over the run:");
    for (size_t i = 1; i <= 10 && !rss_samples.empty(); ++i) {
      const auto& [at, rss] = rss_samples[std::min(rss_samples.size(), i * rss_samples.size() / 10) - 1];
      std::printf(" %.0fs %.0f", at, rss / 1048576.0);
    }
    std::printf(" (MiB)\n");
  } else {
    std::printf("mnemod RSS: not measured (--server)\n");
  }
  for (const std::string& m : total.messages) std::printf("  %s\n", m.c_str());

  std::printf("\ngoal soak_errors %" PRIu64 " 0\n", errors);
  std::printf("goal soak_lost_writes %" PRIu64 " 0\n", total.lost);
  if (pid > 0) std::printf("goal soak_rss_drift %.3f 0.10\n", drift);
  if (!json_out.empty()) {
    nlohmann::json j = {{"clients", clients},        {"seconds", load_seconds},
                        {"calls", calls},            {"errors", errors},
                        {"lost_writes", total.lost}, {"kinds", kinds},
                        {"rss_start", rss_start},    {"rss_middle", rss_middle},
                        {"rss_end", rss_end},        {"rss_drift", drift}};
    std::ofstream(json_out) << j.dump(2) << "\n";
  }
  if (server != nullptr) Must(server->Stop(), "stopping mnemod");
  return check && (errors > 0 || total.lost > 0) ? 1 : 0;
}
