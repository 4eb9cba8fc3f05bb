// bench_search: dense search throughput, recall and build rate of mnemo
// against in-process peers, in one run.
//
// Engines:
//   sgemm        cblas_sgemm + per-row top-k (exact cases only), the
//                throughput an OpenBLAS user gets for exact search;
//   hnswlib      hnswlib 0.6.2 in-process (HNSW cases only), built and
//                searched on --threads threads as its Python binding does;
//   faiss        raw FAISS in-process (index_factory + add + search);
//   mnemo-store  the mnemo engine in-process (db::Store, Upsert to load);
//   grpc         a mnemod child process through the C++ SDK, with 1 and 16
//                concurrent clients (each its own Client).
//
// Per dataset, the exact case (--index Flat) runs every engine batched
// (--batch queries per call) and one query per call, with QPS relative to
// sgemm. The HNSW case (--index HNSW, M = --hnsw-m, efConstruction =
// --ef-construction for every engine) builds each engine's graph once, times
// the build (vectors/s), and sweeps efSearch (--ef-sweep, passed per call) for
// a recall/QPS curve per engine, the mnemo engines also at their default ef;
// QPS relative to hnswlib at the same ef. The run ends with issue 11's goal
// lines, "goal <name> <measured> <target>" (goals.h says how each is taken).
//
//   bench_search                  # fashion + aniso, Flat + HNSW (~20 min on 2 cores)
//   bench_search --quick          # CI smoke: small sizes, < 60 s
//   bench_search --dataset aniso --index HNSW --engines hnswlib
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bench/bench_backend.h"
#include "bench/ef_sweep.h"
#include "bench/goals.h"
#include "bench/search_modes.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace mnemo::bench {
namespace {

using Flags = SearchBenchFlags;

const std::vector<std::string> kAllEngines = {"sgemm", "hnswlib", "faiss", "mnemo-store", "grpc"};
const std::vector<std::string> kAllDatasets = {"fashion", "aniso", "synthetic"};

void PrintUsage() {
  std::cout <<
      R"(usage: bench_search [flags]
  --dataset fashion,aniso,synthetic  datasets (default fashion,aniso; all = fashion,aniso)
                                    fashion: Fashion-MNIST 60k x 784, L2, 10k queries
                                    aniso: anisotropic Gaussian mixture 200k x 96, cosine
                                    synthetic: the older, easy 100k x 128 embedding-like set
  --index Flat,HNSW                 Flat = exact case; HNSW = the graph engines with
                                    M = --hnsw-m (HNSW32 = M 32); any other FAISS factory
                                    string runs as an exact-style case (default Flat,HNSW)
  --engines LIST                    of sgemm,hnswlib,faiss,mnemo-store,grpc (default all)
  --hnsw-m N                        HNSW M of every graph engine (default 16)
  --ef-construction N               HNSW efConstruction of every graph engine (default 200)
  --ef-sweep 16,32,...              efSearch values of the curve, passed per call (default
                                    16,32,64,128,256,512); the mnemo engines also run once
                                    with no ef ("default"); --ef N = --ef-sweep N
  --queries N                       queries per dataset (default 10000)
  --latency-queries N               queries of the batch=1 modes of exact cases (default 1000)
  --mode-seconds S                  stop issuing calls in an exact-case mode after S seconds
                                    and report the queries done by then (default 10; 0 = never)
  --sweep-seconds S                 the same for each ef sweep point (default 5)
  --batch N                         queries per Search call (default 100)
  --k N                             neighbours (default 10)
  --threads N                       threads of every engine here and in mnemod (default 2)
  --clients 1,16                    concurrent gRPC clients (default 1,16)
  --grpc-ingest                     mnemod loads its own copy through the SDK (timed, the
                                    build rate of the goal) instead of serving mnemo-store's
  --quick                           small sizes for a smoke run (5k base, 200 queries)
  --no-store / --no-grpc            leave out mnemo-store / grpc
  --json FILE                       write every result and the goals as JSON
  --verbose                         engine info logs and a line per sweep point as it ends
  --mnemod PATH                     mnemod binary (default: next to this binary)
  --work-dir DIR                    scratch directory (default: a new dir under $TMPDIR)
  --fashion-dir DIR                 Fashion-MNIST IDX .gz files
  --aniso-base N --aniso-dim N      size of the aniso set (default 200000 x 96)
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

// Parses "1,16" into positive ints no larger than max_value.
bool ParseIntList(const std::string& flag, const std::string& text, int max_value,
                  std::vector<int>* out) {
  out->clear();
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    int v = 0;
    if (!absl::SimpleAtoi(part, &v) || v < 1 || v > max_value) {
      std::cerr << "bad " << flag << " " << text << "\n";
      return false;
    }
    out->push_back(v);
  }
  if (out->empty()) {
    std::cerr << "empty " << flag << "\n";
    return false;
  }
  return true;
}

// Parses a list of names, each one of `known`.
bool ParseNameList(const std::string& flag, const std::string& text,
                   const std::vector<std::string>& known, std::vector<std::string>* out) {
  *out = absl::StrSplit(text, ',', absl::SkipEmpty());
  for (const auto& name : *out) {
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      std::cerr << "unknown " << flag << " value " << name << "\n";
      return false;
    }
  }
  return true;
}

// Returns false (after printing why) on a bad command line.
bool ParseFlags(int argc, char** argv, Flags* flags) {
  std::optional<size_t> synthetic_base;
  std::optional<size_t> aniso_base;
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
    auto seconds = [&](double* out) {
      std::string text;
      if (!next(&text)) return false;
      if (!absl::SimpleAtod(text, out) || *out < 0) {
        std::cerr << "bad " << arg << " " << text << "\n";
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
        flags->datasets = {"fashion", "aniso"};
      } else if (!ParseNameList(arg, text, kAllDatasets, &flags->datasets)) {
        return false;
      }
    } else if (arg == "--index") {
      if (!next(&text)) return false;
      flags->indexes = absl::StrSplit(text, ',', absl::SkipEmpty());
    } else if (arg == "--engines") {
      if (!next(&text) || !ParseNameList(arg, text, kAllEngines, &flags->engines)) return false;
    } else if (arg == "--clients") {
      if (!next(&text) || !ParseIntList(arg, text, 256, &flags->clients)) return false;
    } else if (arg == "--ef-sweep") {
      if (!next(&text) || !ParseIntList(arg, text, 1 << 16, &flags->ef_sweep)) return false;
    } else if (arg == "--ef") {  // one sweep point, as the flag meant before the sweep
      if (!next(&text) || !ParseIntList(arg, text, 1 << 16, &flags->ef_sweep)) return false;
    } else if (arg == "--hnsw-m") {
      if (!number(&flags->hnsw_m)) return false;
    } else if (arg == "--ef-construction") {
      if (!number(&flags->ef_construction)) return false;
    } else if (arg == "--queries") {
      if (!number(&flags->queries)) return false;
    } else if (arg == "--latency-queries") {
      if (!number(&flags->latency_queries)) return false;
    } else if (arg == "--mode-seconds") {
      if (!seconds(&flags->mode_seconds)) return false;
    } else if (arg == "--sweep-seconds") {
      if (!seconds(&flags->sweep_seconds)) return false;
    } else if (arg == "--batch") {
      if (!number(&flags->batch)) return false;
    } else if (arg == "--k") {
      if (!number(&flags->k)) return false;
    } else if (arg == "--threads") {
      if (!number(&flags->threads)) return false;
    } else if (arg == "--synthetic-base") {
      size_t n = 0;
      if (!number(&n)) return false;
      synthetic_base = n;
    } else if (arg == "--synthetic-dim") {
      if (!number(&flags->synthetic_dim)) return false;
    } else if (arg == "--aniso-base") {
      size_t n = 0;
      if (!number(&n)) return false;
      aniso_base = n;
    } else if (arg == "--aniso-dim") {
      if (!number(&flags->aniso_dim)) return false;
    } else if (arg == "--seed") {
      if (!number(&flags->seed)) return false;
    } else if (arg == "--quick") {
      flags->quick = true;
    } else if (arg == "--grpc-ingest") {
      flags->grpc_ingest = true;
    } else if (arg == "--no-store" || arg == "--no-grpc") {
      const std::string engine = arg == "--no-store" ? "mnemo-store" : "grpc";
      std::erase(flags->engines, engine);
    } else if (arg == "--verbose") {
      flags->verbose = true;
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
  if (flags->batch < 1 || flags->k < 1 || flags->threads < 1 || flags->hnsw_m < 2 ||
      flags->ef_construction < 1) {
    std::cerr << "--batch, --k, --threads, --ef-construction must be >= 1, --hnsw-m >= 2\n";
    return false;
  }
  if (flags->quick) {
    flags->synthetic_base = 5000;
    flags->aniso_base = 5000;
    if (flags->queries == 0) flags->queries = 200;
    if (flags->latency_queries == 0) flags->latency_queries = 100;
  }
  if (synthetic_base) flags->synthetic_base = *synthetic_base;
  if (aniso_base) flags->aniso_base = *aniso_base;
  if (flags->latency_queries == 0) flags->latency_queries = 1000;
  return true;
}

// The M of an HNSW --index entry: "HNSW" -> --hnsw-m, "HNSW32" -> 32;
// nullopt for anything else.
std::optional<int> GraphM(const std::string& index, const Flags& flags) {
  if (!absl::StartsWith(index, "HNSW")) return std::nullopt;
  const std::string rest = index.substr(4);
  if (rest.empty()) return flags.hnsw_m;
  int m = 0;
  if (absl::SimpleAtoi(rest, &m) && m >= 2) return m;
  return std::nullopt;
}

void PrintExactCase(const CaseResult& c, const Flags& flags) {
  std::printf("\n== %s (%zu x %zu, %s) | %s | k=%d threads=%d ==\n", c.dataset.c_str(), c.num_base,
              c.dim, c.metric.c_str(), c.index.c_str(), flags.k, flags.threads);
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
  std::printf("  %-12s %6s %7s %8s %11s %9s %9s %9s %9s\n", "mode", "batch", "clients", "queries",
              "QPS", "p50 ms", "p99 ms", "recall", absl::StrCat("QPS/", c.baseline).c_str());
  for (const auto& m : c.modes) {
    if (!m.error.empty()) {
      std::printf("  %-12s %6zu %7d   FAILED: %s\n", m.mode.c_str(), m.batch, m.clients,
                  m.error.c_str());
      continue;
    }
    std::printf("  %-12s %6zu %7d %8zu %11.1f %9.3f %9.3f %9.4f %9.3f\n", m.mode.c_str(), m.batch,
                m.clients, m.queries, m.qps, m.p50_ms, m.p99_ms, m.recall, m.qps_ratio);
  }
  std::fflush(stdout);
}

// An exact (or any non-HNSW) index: every engine batched and one query per
// call; QPS relative to the sgemm baseline (raw FAISS when sgemm is not run)
// at the same batch.
CaseResult RunExactCase(const Dataset& ds, const std::string& factory, const Flags& flags) {
  CaseResult c;
  c.dataset = ds.name;
  c.index = factory;
  c.num_base = ds.num_base;
  c.dim = ds.dim;
  c.num_queries = ds.num_queries;
  c.metric = ds.distance == Distance::kL2 ? "L2" : "IP";
  c.baseline = flags.Runs("sgemm") ? "sgemm" : "faiss";

  BackendConfig config;
  config.factory = factory;
  config.mnemo_factory = factory;
  config.threads = flags.threads;
  config.namespace_name = NamespaceName(ds, factory);
  config.mnemod_path = flags.mnemod_path;
  config.work_dir = flags.work_dir;
  const std::string data_dir = absl::StrCat(flags.work_dir, "/data-", config.namespace_name);
  const std::string grpc_data_dir = flags.grpc_ingest ? data_dir + "-grpc" : data_dir;

  const size_t latency_queries = std::min(flags.latency_queries, ds.num_queries);
  // QPS of the baseline per batch size, the denominators of the ratios.
  double base_batched_qps = 0;
  double base_single_qps = 0;

  auto run_both = [&](const std::string& mode, Backend* backend, int clients) {
    for (size_t batch : {flags.batch, size_t{1}}) {
      const size_t n = batch == 1 ? latency_queries : ds.num_queries;
      ModeResult m = RunMode(mode, backend, ds, n, batch, clients, flags.k, /*ef=*/0, flags.threads,
                             flags.mode_seconds);
      if (m.error.empty()) {
        double& base = batch == 1 ? base_single_qps : base_batched_qps;
        if (mode == c.baseline && clients == 1) base = m.qps;
        m.qps_ratio = base > 0 ? m.qps / base : 0;
      }
      c.modes.push_back(std::move(m));
      if (batch == 1 && flags.batch == 1) break;
    }
  };
  auto run_in_process = [&](const std::string& engine, auto make) {
    if (!flags.Runs(engine)) return;
    IngestResult in{engine, {}, ""};
    auto backend = make(&in.stats);
    if (!backend.ok()) in.error = backend.status().ToString();
    c.ingests.push_back(in);
    if (backend.ok()) run_both(engine, backend->get(), 1);
  };
  run_in_process("sgemm",
                 [&](IngestStats* stats) { return MakeSgemmFlatBackend(ds, config, stats); });
  run_in_process("faiss",
                 [&](IngestStats* stats) { return MakeRawFaissBackend(ds, config, stats); });
  if (flags.Runs("mnemo-store")) {
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
  if (flags.Runs("grpc")) {
    IngestResult in{"grpc", {}, ""};
    auto backend = MakeGrpcBackend(ds, config, grpc_data_dir, &in.stats);
    if (backend.ok()) {
      for (int clients : flags.clients) run_both("grpc", backend->get(), clients);
    } else {
      in.error = backend.status().ToString();
    }
    c.ingests.push_back(in);
  }
  std::error_code ec;
  std::filesystem::remove_all(data_dir, ec);
  std::filesystem::remove_all(grpc_data_dir, ec);
  return c;
}

// Loads or generates one dataset of the --dataset list.
absl::StatusOr<Dataset> LoadDataset(const std::string& name, const Flags& flags) {
  const size_t queries = flags.queries ? flags.queries : 10000;
  if (name == "fashion") {
    return LoadFashionMnist(flags.fashion_dir, flags.quick ? 5000 : 60000, queries);
  }
  if (name == "aniso") {
    return MakeAnisotropicMixture(flags.aniso_base, queries, flags.aniso_dim, flags.seed);
  }
  return MakeSyntheticEmbeddings(flags.synthetic_base, queries, flags.synthetic_dim, flags.seed);
}

int Main(int argc, char** argv) {
  Flags flags;
  if (!ParseFlags(argc, argv, &flags)) return 2;
  omp_set_num_threads(flags.threads);
  // The engine logs each store open and close; keep the tables readable.
  spdlog::set_level(flags.verbose ? spdlog::level::info : spdlog::level::warn);
  // The gRPC client must reach the loopback server directly.
  for (const char* var : {"http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "grpc_proxy",
                          "all_proxy", "ALL_PROXY"}) {
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
  std::string ef_list;
  for (int ef : flags.ef_sweep) absl::StrAppend(&ef_list, ef_list.empty() ? "" : ",", ef);
  std::printf(
      "bench_search: datasets=%zu indexes=%zu batch=%zu k=%d threads=%d hnsw M=%d "
      "efConstruction=%d ef sweep=%s OMP_WAIT_POLICY=%s hardware_concurrency=%u%s\n",
      flags.datasets.size(), flags.indexes.size(), flags.batch, flags.k, flags.threads,
      flags.hnsw_m, flags.ef_construction, ef_list.c_str(), omp_wait_policy.c_str(),
      std::thread::hardware_concurrency(), flags.quick ? " (quick)" : "");
  nlohmann::json report;
  report["config"] = {{"batch", flags.batch},
                      {"k", flags.k},
                      {"threads", flags.threads},
                      {"hnsw_m", flags.hnsw_m},
                      {"ef_construction", flags.ef_construction},
                      {"ef_sweep", flags.ef_sweep},
                      {"engines", flags.engines},
                      {"quick", flags.quick},
                      {"clients", flags.clients},
                      {"grpc_ingest", flags.grpc_ingest},
                      {"latency_queries", flags.latency_queries},
                      {"mode_seconds", flags.mode_seconds},
                      {"sweep_seconds", flags.sweep_seconds},
                      {"omp_wait_policy", omp_wait_policy},
                      {"hardware_concurrency", std::thread::hardware_concurrency()}};
  report["cases"] = nlohmann::json::array();
  int exit_code = 0;

  std::vector<CaseResult> cases;
  const auto run_start = std::chrono::steady_clock::now();
  for (const std::string& name : flags.datasets) {
    const auto t0 = std::chrono::steady_clock::now();
    auto loaded = LoadDataset(name, flags);
    if (!loaded.ok()) {
      std::fprintf(stderr, "%s: %s\n", name.c_str(), loaded.status().ToString().c_str());
      exit_code = 1;
      continue;
    }
    Dataset ds = *std::move(loaded);
    const auto t1 = std::chrono::steady_clock::now();
    if (absl::Status s = ComputeGroundTruth(&ds, static_cast<size_t>(flags.k)); !s.ok()) {
      std::fprintf(stderr, "%s ground truth: %s\n", ds.name.c_str(), s.ToString().c_str());
      exit_code = 1;
      continue;
    }
    const auto t2 = std::chrono::steady_clock::now();
    std::printf(
        "\n# %s: %zu base x %zu dims, %zu queries; loaded in %.2f s, exact top-%d in "
        "%.2f s\n",
        ds.name.c_str(), ds.num_base, ds.dim, ds.num_queries,
        std::chrono::duration<double>(t1 - t0).count(), flags.k,
        std::chrono::duration<double>(t2 - t1).count());
    for (const std::string& index : flags.indexes) {
      const std::optional<int> m = GraphM(index, flags);
      CaseResult c = m ? RunGraphCase(ds, *m, flags) : RunExactCase(ds, index, flags);
      if (m) {
        PrintGraphCase(c, flags);
      } else {
        PrintExactCase(c, flags);
      }
      for (const auto& mode : c.modes) {
        if (!mode.error.empty()) exit_code = 1;
      }
      nlohmann::json j = CaseJson(c);
      if (c.graph) j["qps_at_recall"] = KeyPointsJson(c);
      report["cases"].push_back(std::move(j));
      cases.push_back(std::move(c));
    }
  }

  std::vector<std::string> skipped;
  const std::vector<Goal> goals = ComputeGoals(cases, &skipped);
  report["goals"] = GoalsJson(goals);
  const double total_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
  report["total_seconds"] = total_seconds;
  std::printf("\ntotal %.1f s\n", total_seconds);
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
  // Last, so that a reader (or a script) finds them at the very end.
  PrintGoals(goals, skipped);
  return exit_code;
}

}  // namespace
}  // namespace mnemo::bench

int main(int argc, char** argv) { return mnemo::bench::Main(argc, argv); }
