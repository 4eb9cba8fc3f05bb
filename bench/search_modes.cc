// Timed modes of bench_search: one backend, one batch size, some clients.
#include "bench/search_modes.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <mutex>
#include <thread>
#include <unordered_set>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace mnemo::bench {
namespace {

double Percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t rank = static_cast<size_t>(q * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(rank, values.size() - 1)];
}

}  // namespace

bool SearchBenchFlags::Runs(const std::string& engine) const {
  return std::find(engines.begin(), engines.end(), engine) != engines.end();
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

ModeResult RunMode(const std::string& mode, Backend* backend, const Dataset& ds, size_t num_queries,
                   size_t batch, int clients, int k, int ef, int threads, double max_seconds,
                   double min_seconds) {
  ModeResult r;
  r.mode = mode;
  r.batch = batch;
  r.clients = clients;
  r.ef = ef;
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
  // Calls past the first pass over the queries repeat it (scratch output),
  // so that a fast mode still runs for min_seconds and the ramp-up and tail
  // of many clients weigh little; recall comes from the first pass.
  const auto min_until =
      start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                  std::chrono::duration<double>(std::min(min_seconds, max_seconds > 0 ? max_seconds : 1e9)));
  std::atomic<size_t> repeated_queries{0};
  auto worker = [&](int client) {
    omp_set_num_threads(threads);
    std::vector<int64_t> scratch(batch * static_cast<size_t>(k));
    while (!failed.load(std::memory_order_relaxed)) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= stop_at) break;
      const size_t call = next_call.fetch_add(1);
      if (call >= num_calls && now >= min_until) break;
      const size_t slot = call % num_calls;
      const size_t first = slot * batch;
      const size_t n = std::min(batch, num_queries - first);
      int64_t* out = call < num_calls ? ids.data() + first * static_cast<size_t>(k) : scratch.data();
      const auto t0 = std::chrono::steady_clock::now();
      absl::Status s = backend->Search(client, ds.queries.data() + first * ds.dim, n, k, ef, out);
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (call < num_calls) {
        latency_ms[call] = ms;
      } else {
        repeated_queries.fetch_add(n);
      }
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
  r.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!r.error.empty()) return r;
  // Calls 0..done_calls-1 were all made; later ones never started.
  const size_t done_calls = std::min(next_call.load(), num_calls);
  latency_ms.resize(done_calls);
  r.calls = done_calls;
  r.queries = std::min(num_queries, done_calls * batch);
  num_queries = r.queries;
  r.qps = static_cast<double>(num_queries + repeated_queries.load()) / r.wall_seconds;
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

std::string DatasetKey(const std::string& dataset_name) {
  return dataset_name == "fashion-mnist" ? "fashion" : dataset_name;
}

std::string NamespaceName(const Dataset& ds, const std::string& factory) {
  return absl::StrCat(DatasetKey(ds.name), "_", IndexSlug(factory));
}

nlohmann::json CaseJson(const CaseResult& c) {
  nlohmann::json j;
  j["dataset"] = c.dataset;
  j["index"] = c.index;
  j["graph"] = c.graph;
  if (c.graph) {
    j["hnsw_m"] = c.hnsw_m;
    j["ef_construction"] = c.ef_construction;
  }
  j["num_base"] = c.num_base;
  j["dim"] = c.dim;
  j["num_queries"] = c.num_queries;
  j["metric"] = c.metric;
  j["ratio_baseline"] = c.baseline;
  j["ingest"] = nlohmann::json::array();
  for (const auto& in : c.ingests) {
    const double rate = in.error.empty() && !in.stats.reused && in.stats.load_seconds > 0
                            ? static_cast<double>(c.num_base) / in.stats.load_seconds
                            : 0;
    j["ingest"].push_back({{"backend", in.backend},
                           {"factory", in.stats.factory},
                           {"load_seconds", in.stats.load_seconds},
                           {"vectors_per_second", rate},
                           {"checkpoint_seconds", in.stats.checkpoint_seconds},
                           {"close_seconds", in.stats.close_seconds},
                           {"start_seconds", in.stats.start_seconds},
                           {"reused", in.stats.reused},
                           {"note", in.stats.note},
                           {"error", in.error}});
  }
  j["modes"] = nlohmann::json::array();
  for (const auto& m : c.modes) {
    j["modes"].push_back({{"mode", m.mode},
                          {"batch", m.batch},
                          {"clients", m.clients},
                          {"ef", m.ef},
                          {"ef_default", c.graph && m.ef == 0},
                          {"queries", m.queries},
                          {"calls", m.calls},
                          {"wall_seconds", m.wall_seconds},
                          {"qps", m.qps},
                          {"p50_ms", m.p50_ms},
                          {"p99_ms", m.p99_ms},
                          {"mean_ms", m.mean_ms},
                          {"recall", m.recall},
                          {"qps_ratio", m.qps_ratio},
                          {"error", m.error}});
  }
  return j;
}

}  // namespace mnemo::bench
