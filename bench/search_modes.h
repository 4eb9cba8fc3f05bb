// The timed modes of bench_search and its command-line settings, shared by
// the exact (Flat) cases and the HNSW ef sweep.
#ifndef MNEMO_BENCH_SEARCH_MODES_H_
#define MNEMO_BENCH_SEARCH_MODES_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "bench/bench_backend.h"
#include "nlohmann/json.hpp"

namespace mnemo::bench {

// bench_search's flags (see PrintUsage in bench_search.cc for each one).
struct SearchBenchFlags {
  std::vector<std::string> datasets = {"fashion", "aniso"};
  std::vector<std::string> indexes = {"Flat", "HNSW"};
  // Engines run: sgemm (Flat only), hnswlib (HNSW only), faiss, mnemo-store,
  // grpc.
  std::vector<std::string> engines = {"sgemm", "hnswlib", "faiss", "mnemo-store", "grpc"};
  std::vector<int> ef_sweep = {16, 32, 64, 128, 256, 512};
  int hnsw_m = 16;
  int ef_construction = 200;
  size_t queries = 0;          // 0 = dataset default
  size_t latency_queries = 0;  // queries of the batch=1 modes; 0 = default
  double mode_seconds = 10;    // stop a mode after this long (0 = never)
  double sweep_seconds = 5;    // the same for each ef sweep point
  size_t batch = 100;
  int k = 10;
  int threads = 2;
  std::vector<int> clients = {1, 16};
  bool quick = false;
  bool grpc_ingest = false;  // mnemod ingests through the SDK itself
  bool verbose = false;
  std::string json_path;
  std::string mnemod_path;
  std::string work_dir;
  std::string fashion_dir = "/usr/share/datasets/fashion-mnist";
  size_t synthetic_base = 100000;
  size_t synthetic_dim = 128;
  size_t aniso_base = 200000;
  size_t aniso_dim = 96;
  uint64_t seed = 42;

  bool Runs(const std::string& engine) const;
};

// One timed mode: a backend searched with a batch size by some clients, at
// one ef (0 = the engine's default).
struct ModeResult {
  std::string mode;
  size_t batch = 0;
  int clients = 1;
  int ef = 0;
  size_t queries = 0;
  size_t calls = 0;
  double wall_seconds = 0;
  double qps = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  double mean_ms = 0;
  double recall = 0;
  double qps_ratio = 0;  // QPS / QPS of the case's baseline; 0 = n/a
  std::string error;
};

// One backend's build, reported with the modes of a dataset x index.
struct IngestResult {
  std::string backend;
  IngestStats stats;
  std::string error;
};

// Every backend's build and every timed mode of one dataset x index.
struct CaseResult {
  std::string dataset;  // Dataset::name
  std::string index;    // "Flat", "HNSW16", ...
  bool graph = false;   // an HNSW case: modes form ef sweeps
  int hnsw_m = 0;       // graph cases
  int ef_construction = 0;
  size_t num_base = 0;
  size_t dim = 0;
  size_t num_queries = 0;
  std::string metric;
  std::string baseline;  // the engine QPS ratios divide by (same batch or ef)
  std::vector<IngestResult> ingests;
  std::vector<ModeResult> modes;
};

// The short name of a dataset in flags, namespaces and goal names
// ("fashion-mnist" -> "fashion").
std::string DatasetKey(const std::string& dataset_name);

// Everything of a case, vectors/s of each build included.
nlohmann::json CaseJson(const CaseResult& c);

// Mean fraction of the exact top-min(k, gt_k) found in the first k ids of
// each of the first num_queries rows of `ids` (num_queries * k).
double RecallAtK(const Dataset& ds, const std::vector<int64_t>& ids, size_t num_queries, int k);

// Runs the first num_queries queries of `ds` through `backend` in calls of
// `batch` queries at `ef`, shared out to `clients` threads, after one untimed
// warm-up call per client. No call starts after max_seconds (when > 0); the
// queries of the calls made by then (always a prefix of the queries) are the
// ones reported. A mode that finishes its queries before min_seconds keeps
// repeating them until then (QPS counts every call made; recall and
// latencies come from the first pass). Each thread sets its own OpenMP team
// size to `threads`.
ModeResult RunMode(const std::string& mode, Backend* backend, const Dataset& ds, size_t num_queries,
                   size_t batch, int clients, int k, int ef, int threads, double max_seconds,
                   double min_seconds = 2.0);

// A factory string as a name part: "HNSW16,efC=200" -> "HNSW16_efC_200".
std::string IndexSlug(const std::string& factory);

// Namespace name of a dataset x index in the mnemo engines.
std::string NamespaceName(const Dataset& ds, const std::string& factory);

}  // namespace mnemo::bench

#endif  // MNEMO_BENCH_SEARCH_MODES_H_
