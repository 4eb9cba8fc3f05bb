// The HNSW ef sweep of bench_search.
#include "bench/ef_sweep.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace mnemo::bench {
namespace {

// The label of a mode in the tables: "grpc x16" for the gRPC clients.
std::string ModeLabel(const ModeResult& m) {
  return m.mode == "grpc" ? absl::StrCat("grpc x", m.clients) : m.mode;
}

std::string EfLabel(int ef) { return ef > 0 ? absl::StrCat(ef) : "default"; }

std::string Fmt(double v) { return absl::StrFormat("%.4g", v); }

// The recalls of the issue's goals, at which every curve is summarised.
constexpr double kKeyRecalls[] = {0.90, 0.95};

// The (engine, clients) pairs of a graph case's curves, in run order.
std::vector<std::pair<std::string, int>> Curves(const CaseResult& c) {
  std::vector<std::pair<std::string, int>> out;
  for (const auto& m : c.modes) {
    const std::pair<std::string, int> key{m.mode, m.clients};
    if (std::find(out.begin(), out.end(), key) == out.end()) out.push_back(key);
  }
  return out;
}

double Rate(const CaseResult& c, const IngestResult& in) {
  if (!in.error.empty() || in.stats.reused || in.stats.load_seconds <= 0) return 0;
  return static_cast<double>(c.num_base) / in.stats.load_seconds;
}

}  // namespace

std::string MnemoGraphFactory(int m, int ef_construction) {
  return absl::StrCat("HNSW", m, ",efC=", ef_construction);
}

std::string MnemoGraphFallbackFactory(int m) { return absl::StrCat("HNSW", m); }

std::optional<double> QpsAtRecall(std::vector<ModeResult> curve, double recall, std::string* how) {
  std::sort(curve.begin(), curve.end(),
            [](const ModeResult& a, const ModeResult& b) { return a.ef < b.ef; });
  for (size_t i = 0; i < curve.size(); ++i) {
    if (curve[i].recall < recall) continue;
    const ModeResult& hi = curve[i];
    if (i == 0 || curve[i - 1].qps <= 0 || hi.qps <= 0) {
      if (how != nullptr) *how = absl::StrCat("ef ", hi.ef, " (already ", Fmt(hi.recall), ")");
      return hi.qps;
    }
    const ModeResult& lo = curve[i - 1];
    if (how != nullptr) {
      *how =
          absl::StrCat("ef ", lo.ef, "..", hi.ef, " (", Fmt(lo.recall), "..", Fmt(hi.recall), ")");
    }
    const double t = (recall - lo.recall) / (hi.recall - lo.recall);
    return std::exp(std::log(lo.qps) + t * (std::log(hi.qps) - std::log(lo.qps)));
  }
  return std::nullopt;
}

std::vector<ModeResult> Curve(const CaseResult& c, const std::string& mode, int clients) {
  std::vector<ModeResult> out;
  for (const auto& m : c.modes) {
    if (m.mode == mode && m.clients == clients && m.ef > 0 && m.error.empty()) {
      out.push_back(m);
    }
  }
  return out;
}

nlohmann::json KeyPointsJson(const CaseResult& c) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& [mode, clients] : Curves(c)) {
    nlohmann::json point = {{"engine", mode}, {"clients", clients}};
    for (double recall : kKeyRecalls) {
      const auto qps = QpsAtRecall(Curve(c, mode, clients), recall);
      point[absl::StrFormat("qps_at_%.2f", recall)] =
          qps ? nlohmann::json(*qps) : nlohmann::json(nullptr);
    }
    j.push_back(point);
  }
  return j;
}

CaseResult RunGraphCase(const Dataset& ds, int m, const SearchBenchFlags& flags) {
  CaseResult c;
  c.dataset = ds.name;
  c.index = absl::StrCat("HNSW", m);
  c.graph = true;
  c.hnsw_m = m;
  c.ef_construction = flags.ef_construction;
  c.num_base = ds.num_base;
  c.dim = ds.dim;
  c.num_queries = ds.num_queries;
  c.metric = ds.distance == Distance::kL2 ? "L2" : "IP";
  c.baseline = "hnswlib";

  BackendConfig config;
  config.factory = absl::StrCat("HNSW", m);
  config.mnemo_factory = MnemoGraphFactory(m, flags.ef_construction);
  config.mnemo_fallback_factory = MnemoGraphFallbackFactory(m);
  config.hnsw_m = m;
  config.ef_construction = flags.ef_construction;
  config.threads = flags.threads;
  config.namespace_name = NamespaceName(ds, c.index);
  config.mnemod_path = flags.mnemod_path;
  config.work_dir = flags.work_dir;
  const std::string data_dir = absl::StrCat(flags.work_dir, "/data-", config.namespace_name);
  // --grpc-ingest: mnemod gets a directory of its own and loads it through
  // the SDK instead of serving what mnemo-store left.
  const std::string grpc_data_dir = flags.grpc_ingest ? data_dir + "-grpc" : data_dir;

  auto sweep = [&](const std::string& mode, Backend* backend, int clients, bool with_default) {
    std::vector<int> efs = flags.ef_sweep;
    if (with_default) efs.push_back(0);
    for (int ef : efs) {
      c.modes.push_back(RunMode(mode, backend, ds, ds.num_queries, flags.batch, clients, flags.k,
                                ef, flags.threads, flags.sweep_seconds));
      const ModeResult& r = c.modes.back();
      if (flags.verbose) {
        std::printf("  .. %s ef %s: %.1f q/s, recall %.4f\n", ModeLabel(r).c_str(),
                    EfLabel(ef).c_str(), r.qps, r.recall);
        std::fflush(stdout);
      }
    }
  };
  // Builds with `make`, sweeps, and frees the index before the next engine.
  auto run_in_process = [&](const std::string& engine, auto make) {
    if (!flags.Runs(engine)) return;
    IngestResult in{engine, {}, ""};
    auto backend = make(&in.stats);
    if (backend.ok()) {
      sweep(engine, backend->get(), 1, false);
    } else {
      in.error = backend.status().ToString();
    }
    c.ingests.push_back(std::move(in));
  };
  run_in_process("hnswlib",
                 [&](IngestStats* stats) { return MakeHnswlibBackend(ds, config, stats); });
  run_in_process("faiss",
                 [&](IngestStats* stats) { return MakeRawFaissBackend(ds, config, stats); });

  if (flags.Runs("mnemo-store")) {
    IngestResult in{"mnemo-store", {}, ""};
    auto backend = MakeStoreBackend(ds, config, data_dir, &in.stats);
    if (backend.ok()) {
      sweep("mnemo-store", backend->get(), 1, true);
      const auto t0 = std::chrono::steady_clock::now();
      backend->reset();  // closes the store, saving its index snapshot
      in.stats.close_seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    } else {
      in.error = backend.status().ToString();
    }
    c.ingests.push_back(std::move(in));
  }
  if (flags.Runs("grpc")) {
    IngestResult in{"grpc", {}, ""};
    auto backend = MakeGrpcBackend(ds, config, grpc_data_dir, &in.stats);
    if (backend.ok()) {
      for (int clients : flags.clients) sweep("grpc", backend->get(), clients, true);
    } else {
      in.error = backend.status().ToString();
    }
    c.ingests.push_back(std::move(in));
  }

  // Ratios to hnswlib at the same ef.
  for (ModeResult& r : c.modes) {
    if (!r.error.empty()) continue;
    for (const ModeResult& base : c.modes) {
      if (base.mode == "hnswlib" && base.ef == r.ef && base.error.empty() && base.qps > 0) {
        r.qps_ratio = r.qps / base.qps;
      }
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(data_dir, ec);
  std::filesystem::remove_all(grpc_data_dir, ec);
  return c;
}

void PrintGraphCase(const CaseResult& c, const SearchBenchFlags& flags) {
  std::printf(
      "\n== %s (%zu x %zu, %s) | HNSW M=%d efConstruction=%d | k=%d batch=%zu "
      "threads=%d ==\n",
      c.dataset.c_str(), c.num_base, c.dim, c.metric.c_str(), c.hnsw_m, c.ef_construction, flags.k,
      flags.batch, flags.threads);
  double hnswlib_rate = 0;
  for (const auto& in : c.ingests) {
    if (in.backend == "hnswlib") hnswlib_rate = Rate(c, in);
  }
  std::printf("  %-12s %9s %11s %10s  %s\n", "build", "seconds", "vectors/s", "/hnswlib",
              "index, notes");
  for (const auto& in : c.ingests) {
    if (!in.error.empty()) {
      std::printf("  %-12s unavailable: %s\n", in.backend.c_str(), in.error.c_str());
      continue;
    }
    const double rate = Rate(c, in);
    if (in.stats.reused) {
      std::printf("  %-12s %9s %11s %10s  ", in.backend.c_str(), "-", "-", "-");
    } else {
      std::printf("  %-12s %9.2f %11.0f %10.3f  ", in.backend.c_str(), in.stats.load_seconds, rate,
                  hnswlib_rate > 0 ? rate / hnswlib_rate : 0.0);
    }
    std::printf("%s", in.stats.factory.c_str());
    if (in.stats.checkpoint_seconds > 0) {
      std::printf("; checkpoint %.2f s", in.stats.checkpoint_seconds);
    }
    if (in.stats.close_seconds > 0) std::printf("; close %.2f s", in.stats.close_seconds);
    if (in.stats.start_seconds > 0) std::printf("; start %.2f s", in.stats.start_seconds);
    if (!in.stats.note.empty()) std::printf("; %s", in.stats.note.c_str());
    std::printf("\n");
  }
  std::printf("  %-12s %7s %8s %11s %9s %9s %11s\n", "engine", "ef", "queries", "QPS",
              absl::StrCat("recall@", flags.k).c_str(), "p50 ms", "QPS/hnswlib");
  std::string last;
  for (const auto& m : c.modes) {
    const std::string label = ModeLabel(m);
    if (!last.empty() && label != last) std::printf("\n");
    last = label;
    if (!m.error.empty()) {
      std::printf("  %-12s %7s   FAILED: %s\n", label.c_str(), EfLabel(m.ef).c_str(),
                  m.error.c_str());
      continue;
    }
    std::printf("  %-12s %7s %8zu %11.1f %9.4f %9.3f ", label.c_str(), EfLabel(m.ef).c_str(),
                m.queries, m.qps, m.recall, m.p50_ms);
    if (m.qps_ratio > 0) {
      std::printf("%11.3f\n", m.qps_ratio);
    } else {
      std::printf("%11s\n", "-");
    }
  }
  // The curves at the goals' recalls (QpsAtRecall).
  std::printf("\n  %-12s", "QPS at");
  for (double recall : kKeyRecalls)
    std::printf(" %14s", absl::StrFormat("recall %.2f", recall).c_str());
  std::printf("\n");
  for (const auto& [mode, clients] : Curves(c)) {
    ModeResult label;
    label.mode = mode;
    label.clients = clients;
    std::printf("  %-12s", ModeLabel(label).c_str());
    for (double recall : kKeyRecalls) {
      const auto qps = QpsAtRecall(Curve(c, mode, clients), recall);
      std::printf(" %14s", qps ? Fmt(*qps).c_str() : "not reached");
    }
    std::printf("\n");
  }
  std::fflush(stdout);
}

}  // namespace mnemo::bench
