// bench_search: dense search throughput, latency and recall of mnemo against
// raw FAISS, in one run.
//
// For each dataset x index kind it measures
//   (a) faiss        raw FAISS in-process (index_factory + add + search),
//   (b) mnemo-store  the mnemo engine in-process (db::Store),
//   (c) grpc         a mnemod child process through the C++ SDK, with 1 and
//                    16 concurrent clients (each its own Client),
// batched (--batch queries per call) and one query per call, with recall@k
// against exact ground truth, and prints QPS ratios to (a) at the same batch.
// Ingest time is reported apart from search throughput.
//
//   bench_search --dataset all --index Flat,HNSW32 --json out.json
//   bench_search --quick          # CI smoke: small sizes, < 60 s
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <unordered_set>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bench/bench_backend.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace mnemo::bench {
namespace {

constexpr char kFashionDir[] = "/usr/share/datasets/fashion-mnist";

struct Flags {
  std::vector<std::string> datasets = {"fashion", "synthetic"};
  std::vector<std::string> indexes = {"Flat", "HNSW32"};
  size_t queries = 0;          // 0 = dataset default
  size_t latency_queries = 0;  // queries of the batch=1 modes; 0 = default
  double mode_seconds = 10;    // stop a mode after this long (0 = never)
  size_t batch = 100;
  int k = 10;
  int ef = 64;
  int threads = 2;
  std::vector<int> clients = {1, 16};
  bool quick = false;
  bool skip_store = false;
  bool skip_grpc = false;
  bool verbose = false;
  std::string json_path;
  std::string mnemod_path;
  std::string work_dir;
  std::string fashion_dir = kFashionDir;
  size_t synthetic_base = 100000;
  size_t synthetic_dim = 128;
  uint64_t seed = 42;
};

void PrintUsage() {
  std::cout <<
      R"(usage: bench_search [flags]
  --dataset fashion|synthetic|all   (default all)
  --index Flat,HNSW32               FAISS factory strings (default Flat,HNSW32)
  --queries N                       queries per dataset (default: fashion 10000, synthetic 10000)
  --latency-queries N               queries of the batch=1 modes (default 1000)
  --mode-seconds S                  stop issuing calls in a mode after S seconds and report
                                    the queries done by then (default 15; 0 = no limit)
  --batch N                         queries per Search call (default 100)
  --k N                             neighbours (default 10)
  --ef N                            HNSW efSearch (default 64)
  --threads N                       OpenMP threads of FAISS here and in mnemod (default 2)
  --clients 1,16                    concurrent gRPC clients (default 1,16)
  --quick                           small sizes for a smoke run (5k base, 200 queries)
  --no-store / --no-grpc            skip mode (b) / (c)
  --json FILE                       write every result as JSON
  --verbose                         keep the engine's info logs
  --mnemod PATH                     mnemod binary (default: next to this binary)
  --work-dir DIR                    scratch directory (default: a new dir under $TMPDIR)
  --fashion-dir DIR                 Fashion-MNIST IDX .gz files
  --synthetic-base N --synthetic-dim N --seed N
)";
}

template <typename T>
bool ParseNumber(const std::string& text, T* out) {
  if constexpr (std::is_same_v<T, int>) {
    return absl::SimpleAtoi(text, out);
  } else {
    uint64_t v = 0;
    if (!absl::SimpleAtoi(text, &v)) return false;
    *out = static_cast<T>(v);
    return true;
  }
}

// Returns false (after printing why) on a bad command line.
bool ParseFlags(int argc, char** argv, Flags* flags) {
  std::optional<size_t> synthetic_base;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool has_value = false;
    if (const size_t eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    auto next = [&](std::string* out) {
      if (has_value) {
        *out = value;
        return true;
      }
      if (i + 1 >= argc) {
        std::cerr << "missing value for " << arg << "\n";
        return false;
      }
      *out = argv[++i];
      return true;
    };
    auto number = [&](auto* out) {
      std::string text;
      if (!next(&text)) return false;
      if (!ParseNumber(text, out)) {
        std::cerr << "bad number for " << arg << ": " << text << "\n";
        return false;
      }
      return true;
    };
    std::string text;
    if (arg == "--help" || arg == "-h") {
      PrintUsage();
      std::exit(0);
    } else if (arg == "--dataset") {
      if (!next(&text)) return false;
      if (text == "all") {
        flags->datasets = {"fashion", "synthetic"};
      } else {
        flags->datasets = absl::StrSplit(text, ',', absl::SkipEmpty());
      }
      for (const auto& d : flags->datasets) {
        if (d != "fashion" && d != "synthetic") {
          std::cerr << "unknown dataset " << d << "\n";
          return false;
        }
      }
    } else if (arg == "--index") {
      if (!next(&text)) return false;
      flags->indexes = absl::StrSplit(text, ',', absl::SkipEmpty());
    } else if (arg == "--clients") {
      if (!next(&text)) return false;
      flags->clients.clear();
      for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
        int c = 0;
        if (!absl::SimpleAtoi(part, &c) || c < 1 || c > 256) {
          std::cerr << "bad --clients " << text << "\n";
          return false;
        }
        flags->clients.push_back(c);
      }
    } else if (arg == "--queries") {
      if (!number(&flags->queries)) return false;
    } else if (arg == "--latency-queries") {
      if (!number(&flags->latency_queries)) return false;
    } else if (arg == "--mode-seconds") {
      if (!next(&text)) return false;
      if (!absl::SimpleAtod(text, &flags->mode_seconds) || flags->mode_seconds < 0) {
        std::cerr << "bad --mode-seconds " << text << "\n";
        return false;
      }
    } else if (arg == "--batch") {
      if (!number(&flags->batch)) return false;
    } else if (arg == "--k") {
      if (!number(&flags->k)) return false;
    } else if (arg == "--ef") {
      if (!number(&flags->ef)) return false;
    } else if (arg == "--threads") {
      if (!number(&flags->threads)) return false;
    } else if (arg == "--synthetic-base") {
      size_t n = 0;
      if (!number(&n)) return false;
      synthetic_base = n;
    } else if (arg == "--synthetic-dim") {
      if (!number(&flags->synthetic_dim)) return false;
    } else if (arg == "--seed") {
      if (!number(&flags->seed)) return false;
    } else if (arg == "--quick") {
      flags->quick = true;
    } else if (arg == "--no-store") {
      flags->skip_store = true;
    } else if (arg == "--verbose") {
      flags->verbose = true;
    } else if (arg == "--no-grpc") {
      flags->skip_grpc = true;
    } else if (arg == "--json") {
      if (!next(&flags->json_path)) return false;
    } else if (arg == "--mnemod") {
      if (!next(&flags->mnemod_path)) return false;
    } else if (arg == "--work-dir") {
      if (!next(&flags->work_dir)) return false;
    } else if (arg == "--fashion-dir") {
      if (!next(&flags->fashion_dir)) return false;
    } else {
      std::cerr << "unknown flag " << arg << " (--help lists them)\n";
      return false;
    }
  }
  if (flags->batch < 1 || flags->k < 1 || flags->ef < 1 || flags->threads < 1) {
    std::cerr << "--batch, --k, --ef and --threads must be >= 1\n";
    return false;
  }
  if (flags->quick) {
    flags->synthetic_base = 5000;
    if (flags->queries == 0) flags->queries = 200;
    if (flags->latency_queries == 0) flags->latency_queries = 100;
  }
  if (synthetic_base) flags->synthetic_base = *synthetic_base;
  if (flags->latency_queries == 0) flags->latency_queries = 1000;
  return true;
}

// One timed mode: a backend searched with a batch size by some clients.
struct ModeResult {
  std::string mode;
  size_t batch = 0;
  int clients = 1;
  size_t queries = 0;
  size_t calls = 0;
  double wall_seconds = 0;
  double qps = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  double mean_ms = 0;
  double recall = 0;
  double qps_ratio = 0;  // QPS / QPS of raw FAISS at the same batch; 0 = n/a
  std::string error;
};

// One backend's build, reported with the modes of a dataset x index.
struct IngestResult {
  std::string backend;
  IngestStats stats;
  std::string error;
};

struct CaseResult {
  std::string dataset;
  std::string index;
  size_t num_base = 0;
  size_t dim = 0;
  std::string metric;
  std::vector<IngestResult> ingests;
  std::vector<ModeResult> modes;
};

double Percentile(std::vector<double> sorted_values, double q) {
  if (sorted_values.empty()) return 0;
  std::sort(sorted_values.begin(), sorted_values.end());
  const size_t rank = static_cast<size_t>(q * static_cast<double>(sorted_values.size() - 1) + 0.5);
  return sorted_values[std::min(rank, sorted_values.size() - 1)];
}

double RecallAtK(const Dataset& ds, const std::vector<int64_t>& ids, size_t num_queries, int k) {
  const size_t kk = std::min<size_t>(static_cast<size_t>(k), ds.gt_k);
  if (num_queries == 0 || kk == 0) return 0;
  size_t found = 0;
  for (size_t q = 0; q < num_queries; ++q) {
    const int64_t* truth = &ds.ground_truth[q * ds.gt_k];
    std::unordered_set<int64_t> want(truth, truth + kk);
    for (size_t j = 0; j < kk; ++j) {
      if (want.count(ids[q * k + j]) != 0) ++found;
    }
  }
  return static_cast<double>(found) / static_cast<double>(num_queries * kk);
}

// Runs the first num_queries queries of `ds` through `backend` in calls of
// `batch` queries at HNSW efSearch `ef` (passed per call), shared out to
// `clients` threads. No call starts after max_seconds (when > 0); the queries
// of the calls made by then are the ones reported. Each thread sets its own OpenMP team size (a per-thread setting).
ModeResult RunMode(const std::string& mode, Backend* backend, const Dataset& ds,
                   size_t num_queries, size_t batch, int clients, int k, int ef, int threads,
                   double max_seconds) {
  ModeResult r;
  r.mode = mode;
  r.batch = batch;
  r.clients = clients;
  r.queries = num_queries;
  if (absl::Status s = backend->PrepareClients(clients); !s.ok()) {
    r.error = s.ToString();
    return r;
  }
  const size_t num_calls = (num_queries + batch - 1) / batch;
  r.calls = num_calls;
  std::vector<int64_t> ids(num_queries * static_cast<size_t>(k), -1);
  std::vector<double> latency_ms(num_calls, 0);
  std::atomic<size_t> next_call{0};
  std::atomic<bool> failed{false};
  std::mutex error_mu;

  // Untimed warm-up: one call per client (connections, caches, thread pools).
  {
    std::vector<int64_t> scratch(batch * static_cast<size_t>(k));
    const size_t n = std::min(batch, num_queries);
    for (int c = 0; c < clients; ++c) {
      if (absl::Status s = backend->Search(c, ds.queries.data(), n, k, ef, scratch.data());
          !s.ok()) {
        r.error = absl::StrCat("warm-up: ", s.ToString());
        return r;
      }
    }
  }

  const auto start = std::chrono::steady_clock::now();
  const auto stop_at =
      start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                  std::chrono::duration<double>(max_seconds > 0 ? max_seconds : 1e9));
  auto worker = [&](int client) {
    omp_set_num_threads(threads);
    while (!failed.load(std::memory_order_relaxed)) {
      if (std::chrono::steady_clock::now() >= stop_at) break;
      const size_t call = next_call.fetch_add(1);
      if (call >= num_calls) break;
      const size_t first = call * batch;
      const size_t n = std::min(batch, num_queries - first);
      const auto t0 = std::chrono::steady_clock::now();
      absl::Status s = backend->Search(client, ds.queries.data() + first * ds.dim, n, k, ef,
                                       ids.data() + first * static_cast<size_t>(k));
      latency_ms[call] =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
              .count();
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(error_mu);
        if (r.error.empty()) r.error = s.ToString();
        failed = true;
      }
    }
  };

  if (clients == 1) {
    worker(0);
  } else {
    std::vector<std::thread> pool;
    pool.reserve(clients);
    for (int c = 0; c < clients; ++c) pool.emplace_back(worker, c);
    for (auto& t : pool) t.join();
  }
  r.wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!r.error.empty()) return r;
  // Calls 0..done_calls-1 were all made; later ones never started.
  const size_t done_calls = std::min(next_call.load(), num_calls);
  latency_ms.resize(done_calls);
  r.calls = done_calls;
  r.queries = std::min(num_queries, done_calls * batch);
  num_queries = r.queries;
  r.qps = static_cast<double>(num_queries) / r.wall_seconds;
  r.p50_ms = Percentile(latency_ms, 0.50);
  r.p99_ms = Percentile(latency_ms, 0.99);
  double sum = 0;
  for (double v : latency_ms) sum += v;
  r.mean_ms = done_calls ? sum / static_cast<double>(done_calls) : 0;
  r.recall = RecallAtK(ds, ids, num_queries, k);
  return r;
}

std::string IndexSlug(const std::string& factory) {
  std::string out;
  for (char c : factory) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return out;
}

void PrintCase(const CaseResult& c, const Flags& flags) {
  std::printf("\n== %s (%zu x %zu, %s) | %s | k=%d ef=%d threads=%d ==\n", c.dataset.c_str(),
              c.num_base, c.dim, c.metric.c_str(), c.index.c_str(), flags.k, flags.ef,
              flags.threads);
  for (const auto& in : c.ingests) {
    if (!in.error.empty()) {
      std::printf("  %-12s unavailable: %s\n", in.backend.c_str(), in.error.c_str());
      continue;
    }
    std::printf("  %-12s ingest %.2f s", in.backend.c_str(), in.stats.load_seconds);
    if (in.stats.reused) std::printf(" (reused data dir)");
    if (in.stats.checkpoint_seconds > 0) {
      std::printf(", checkpoint %.2f s", in.stats.checkpoint_seconds);
    }
    if (in.stats.close_seconds > 0) std::printf(", close %.2f s", in.stats.close_seconds);
    if (in.stats.start_seconds > 0) std::printf(", start %.2f s", in.stats.start_seconds);
    if (!in.stats.note.empty()) std::printf(", %s", in.stats.note.c_str());
    std::printf("\n");
  }
  std::printf("  %-12s %6s %7s %8s %11s %9s %9s %9s %9s\n", "mode", "batch", "clients",
              "queries", "QPS", "p50 ms", "p99 ms", "recall", "QPS/(a)");
  for (const auto& m : c.modes) {
    if (!m.error.empty()) {
      std::printf("  %-12s %6zu %7d   FAILED: %s\n", m.mode.c_str(), m.batch, m.clients,
                  m.error.c_str());
      continue;
    }
    std::printf("  %-12s %6zu %7d %8zu %11.1f %9.3f %9.3f %9.4f %9.3f\n", m.mode.c_str(),
                m.batch, m.clients, m.queries, m.qps, m.p50_ms, m.p99_ms, m.recall,
                m.qps_ratio);
  }
  std::fflush(stdout);
}

nlohmann::json ToJson(const CaseResult& c) {
  nlohmann::json j;
  j["dataset"] = c.dataset;
  j["index"] = c.index;
  j["num_base"] = c.num_base;
  j["dim"] = c.dim;
  j["metric"] = c.metric;
  for (const auto& in : c.ingests) {
    j["ingest"].push_back({{"backend", in.backend},
                           {"load_seconds", in.stats.load_seconds},
                           {"checkpoint_seconds", in.stats.checkpoint_seconds},
                           {"close_seconds", in.stats.close_seconds},
                           {"start_seconds", in.stats.start_seconds},
                           {"reused", in.stats.reused},
                           {"note", in.stats.note},
                           {"error", in.error}});
  }
  for (const auto& m : c.modes) {
    j["modes"].push_back({{"mode", m.mode},
                          {"batch", m.batch},
                          {"clients", m.clients},
                          {"queries", m.queries},
                          {"calls", m.calls},
                          {"wall_seconds", m.wall_seconds},
                          {"qps", m.qps},
                          {"p50_ms", m.p50_ms},
                          {"p99_ms", m.p99_ms},
                          {"mean_ms", m.mean_ms},
                          {"recall", m.recall},
                          {"qps_ratio_vs_faiss", m.qps_ratio},
                          {"error", m.error}});
  }
  return j;
}

// Runs every backend on one dataset x index kind.
CaseResult RunCase(const Dataset& ds, const std::string& factory, const Flags& flags) {
  CaseResult c;
  c.dataset = ds.name;
  c.index = factory;
  c.num_base = ds.num_base;
  c.dim = ds.dim;
  c.metric = ds.distance == Distance::kL2 ? "L2" : "IP";

  BackendConfig config;
  config.factory = factory;
  config.mnemo_factory = factory;
  config.threads = flags.threads;
  config.namespace_name = absl::StrCat(ds.name == "fashion-mnist" ? "fashion" : ds.name, "_",
                                       IndexSlug(factory));
  config.mnemod_path = flags.mnemod_path;
  config.work_dir = flags.work_dir;
  const std::string data_dir =
      absl::StrCat(flags.work_dir, "/data-", config.namespace_name);

  const size_t latency_queries = std::min(flags.latency_queries, ds.num_queries);
  // QPS of raw FAISS per batch size, the denominators of the ratios.
  double faiss_batched_qps = 0;
  double faiss_single_qps = 0;

  auto run_both = [&](const std::string& mode, Backend* backend, int clients) {
    for (size_t batch : {flags.batch, size_t{1}}) {
      const size_t n = batch == 1 ? latency_queries : ds.num_queries;
      ModeResult m = RunMode(mode, backend, ds, n, batch, clients, flags.k, flags.ef,
                             flags.threads, flags.mode_seconds);
      if (m.error.empty()) {
        double& base = batch == 1 ? faiss_single_qps : faiss_batched_qps;
        if (mode == "faiss" && clients == 1) base = m.qps;
        m.qps_ratio = base > 0 ? m.qps / base : 0;
      }
      c.modes.push_back(std::move(m));
      if (batch == 1 && flags.batch == 1) break;
    }
  };

  {
    IngestResult in{"faiss", {}, ""};
    auto backend = MakeRawFaissBackend(ds, config, &in.stats);
    if (!backend.ok()) in.error = backend.status().ToString();
    c.ingests.push_back(in);
    if (backend.ok()) run_both("faiss", backend->get(), 1);
  }
  if (!flags.skip_store) {
    IngestResult in{"mnemo-store", {}, ""};
    auto backend = MakeStoreBackend(ds, config, data_dir, &in.stats);
    if (backend.ok()) {
      run_both("mnemo-store", backend->get(), 1);
      const auto t0 = std::chrono::steady_clock::now();
      backend->reset();  // closes the store, saving its index snapshot
      in.stats.close_seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    } else {
      in.error = backend.status().ToString();
    }
    c.ingests.push_back(in);
  }
  if (!flags.skip_grpc) {
    IngestResult in{"grpc", {}, ""};
    auto backend = MakeGrpcBackend(ds, config, data_dir, &in.stats);
    if (backend.ok()) {
      for (int clients : flags.clients) run_both("grpc", backend->get(), clients);
    } else {
      in.error = backend.status().ToString();
    }
    c.ingests.push_back(in);
  }
  std::error_code ec;
  std::filesystem::remove_all(data_dir, ec);
  return c;
}

int Main(int argc, char** argv) {
  Flags flags;
  if (!ParseFlags(argc, argv, &flags)) return 2;
  omp_set_num_threads(flags.threads);
  // The engine logs each store open and close; keep the tables readable.
  spdlog::set_level(flags.verbose ? spdlog::level::info : spdlog::level::warn);
  // The gRPC client must reach the loopback server directly.
  for (const char* var : {"http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                          "grpc_proxy", "all_proxy", "ALL_PROXY"}) {
    unsetenv(var);
  }

  std::error_code ec;
  if (flags.mnemod_path.empty()) {
    const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    flags.mnemod_path = (ec ? std::filesystem::path(argv[0]) : self).parent_path() / "mnemod";
  }
  bool own_work_dir = false;
  if (flags.work_dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/mnemo-bench-XXXXXX");
    if (mkdtemp(pattern.data()) == nullptr) {
      std::perror("mkdtemp");
      return 1;
    }
    flags.work_dir = pattern;
    own_work_dir = true;
  } else {
    std::filesystem::create_directories(flags.work_dir, ec);
  }

  // libgomp reads this at start-up; with the default (spin) policy, idle
  // team threads spin and starve the workers on a busy 2-core machine.
  const char* wait_policy = std::getenv("OMP_WAIT_POLICY");
  const std::string omp_wait_policy = wait_policy != nullptr ? wait_policy : "(default)";
  std::printf(
      "bench_search: datasets=%zu indexes=%zu batch=%zu k=%d ef=%d threads=%d "
      "OMP_WAIT_POLICY=%s hardware_concurrency=%u%s\n",
      flags.datasets.size(), flags.indexes.size(), flags.batch, flags.k, flags.ef,
      flags.threads, omp_wait_policy.c_str(), std::thread::hardware_concurrency(),
      flags.quick ? " (quick)" : "");
  nlohmann::json report;
  report["config"] = {{"batch", flags.batch},       {"k", flags.k},
                      {"ef_search", flags.ef},      {"threads", flags.threads},
                      {"quick", flags.quick},       {"clients", flags.clients},
                      {"latency_queries", flags.latency_queries},
                      {"mode_seconds", flags.mode_seconds},
                      {"omp_wait_policy", omp_wait_policy},
                      {"hardware_concurrency", std::thread::hardware_concurrency()}};
  report["cases"] = nlohmann::json::array();
  int exit_code = 0;

  for (const std::string& name : flags.datasets) {
    const auto t0 = std::chrono::steady_clock::now();
    Dataset ds;
    if (name == "fashion") {
      const size_t max_base = flags.quick ? 5000 : 60000;
      const size_t max_queries = flags.queries ? flags.queries : 10000;
      auto loaded = LoadFashionMnist(flags.fashion_dir, max_base, max_queries);
      if (!loaded.ok()) {
        std::fprintf(stderr, "fashion-mnist: %s\n", loaded.status().ToString().c_str());
        exit_code = 1;
        continue;
      }
      ds = *std::move(loaded);
    } else {
      ds = MakeSyntheticEmbeddings(flags.synthetic_base, flags.queries ? flags.queries : 10000,
                                   flags.synthetic_dim, flags.seed);
    }
    const auto t1 = std::chrono::steady_clock::now();
    if (absl::Status s = ComputeGroundTruth(&ds, static_cast<size_t>(flags.k)); !s.ok()) {
      std::fprintf(stderr, "%s ground truth: %s\n", ds.name.c_str(), s.ToString().c_str());
      exit_code = 1;
      continue;
    }
    const auto t2 = std::chrono::steady_clock::now();
    std::printf("\n# %s: %zu base x %zu dims, %zu queries; loaded in %.2f s, exact top-%d in "
                "%.2f s\n",
                ds.name.c_str(), ds.num_base, ds.dim, ds.num_queries,
                std::chrono::duration<double>(t1 - t0).count(), flags.k,
                std::chrono::duration<double>(t2 - t1).count());
    for (const std::string& factory : flags.indexes) {
      CaseResult c = RunCase(ds, factory, flags);
      PrintCase(c, flags);
      for (const auto& m : c.modes) {
        if (!m.error.empty()) exit_code = 1;
      }
      report["cases"].push_back(ToJson(c));
    }
  }

  if (!flags.json_path.empty()) {
    std::ofstream out(flags.json_path);
    out << report.dump(2) << "\n";
    if (!out) {
      std::fprintf(stderr, "cannot write %s\n", flags.json_path.c_str());
      exit_code = 1;
    } else {
      std::printf("\nwrote %s\n", flags.json_path.c_str());
    }
  }
  if (own_work_dir) std::filesystem::remove_all(flags.work_dir, ec);
  return exit_code;
}

}  // namespace
}  // namespace mnemo::bench

int main(int argc, char** argv) { return mnemo::bench::Main(argc, argv); }
