// Pieces shared by the search benchmark: datasets and the search backends it
// compares (hnswlib, raw FAISS and an OpenBLAS sgemm + top-k in-process, the
// mnemo engine in-process, mnemod over gRPC). Every backend answers the same
// batch-search call so that one driver times all of them the same way.
#ifndef MNEMO_BENCH_BENCH_BACKEND_H_
#define MNEMO_BENCH_BENCH_BACKEND_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace mnemo::bench {

enum class Distance {
  kL2,            // squared Euclidean, smaller is better
  kInnerProduct,  // larger is better
};

// Base vectors and queries, row-major. Base vector i has id i in every
// backend (the engines store it under the string id "<i>").
struct Dataset {
  std::string name;
  Distance distance = Distance::kL2;
  size_t dim = 0;
  size_t num_base = 0;
  size_t num_queries = 0;
  std::vector<float> base;     // num_base * dim
  std::vector<float> queries;  // num_queries * dim
  // Exact top-gt_k ids per query (num_queries * gt_k), from IndexFlat.
  std::vector<int64_t> ground_truth;
  size_t gt_k = 0;
};

// Reads the first max_base train and max_queries test images of
// Fashion-MNIST (IDX, gzip) from `dir` as 784-d float vectors in 0..255, L2
// metric as ann-benchmarks uses it.
absl::StatusOr<Dataset> LoadFashionMnist(const std::string& dir, size_t max_base,
                                         size_t max_queries);

// A seeded synthetic set shaped like text embeddings: points of a Gaussian
// mixture in a 16-d latent space mixed into `dim` dimensions by a random
// matrix, plus isotropic noise, then normalised; inner-product metric.
// Easy for graph indexes: recall@10 is high already at efSearch 16.
Dataset MakeSyntheticEmbeddings(size_t num_base, size_t num_queries, size_t dim,
                                uint64_t seed);

// The harder seeded set ("aniso"), where efSearch matters: a Gaussian mixture
// in `dim` dimensions with Zipf-skewed cluster sizes, each cluster with its own
// random orientation and a power-law eigen-spectrum (high intrinsic
// dimension), normalised; inner-product metric (cosine). Queries are fresh
// draws from the same mixture, never base points. See bench_data.cc for the
// constants and how they were chosen.
Dataset MakeAnisotropicMixture(size_t num_base, size_t num_queries, size_t dim,
                               uint64_t seed);

// Fills dataset->ground_truth with the exact top-k using a FAISS flat index
// running on the calling thread's OpenMP team.
absl::Status ComputeGroundTruth(Dataset* dataset, size_t k);

// How every backend builds its index and searches it.
struct BackendConfig {
  // FAISS factory string of the raw FAISS backend ("Flat", "HNSW16").
  std::string factory = "Flat";
  // Namespace factory string of the mnemo engines (store, gRPC). When the
  // engine rejects it as INVALID_ARGUMENT and mnemo_fallback_factory is not
  // empty, the fallback is used instead and the stats' note says so.
  std::string mnemo_factory = "Flat";
  std::string mnemo_fallback_factory;
  // Graph parameters of the HNSW engines (hnswlib, raw FAISS HNSW).
  int hnsw_m = 16;
  int ef_construction = 200;
  int threads = 2;               // OpenMP threads of FAISS (and of mnemod)
  size_t upsert_batch = 1000;    // chunks per Upsert for the engines
  std::string namespace_name;    // engine namespace
  std::string mnemod_path;       // mnemod binary (gRPC backend)
  std::string work_dir;          // logs, port file
  int max_message_bytes = 64 << 20;
};

// Loading cost, reported apart from search throughput.
struct IngestStats {
  double load_seconds = 0;   // add / upsert of the whole base set
  // Store Checkpoint after the load (index snapshots saved synchronously, so
  // that no background snapshot overlaps the timed searches).
  double checkpoint_seconds = 0;
  double close_seconds = 0;  // store Close, when relevant
  double start_seconds = 0;  // process start until it serves (gRPC)
  bool reused = false;       // served data loaded by an earlier backend
  std::string factory;       // the index description actually built
  std::string note;
};

// One searchable copy of a dataset.
class Backend {
 public:
  virtual ~Backend() = default;
  // Readies `clients` independent callers (connections, handles).
  virtual absl::Status PrepareClients(int clients) { return absl::OkStatus(); }
  // Searches n queries (n * dim floats) as caller `client` and writes n * k
  // ids, best first, padded with -1. `ef` is the HNSW efSearch of this call;
  // 0 = the engine's default (exact backends ignore it). Safe to call
  // concurrently with distinct `client` values where the backend says so
  // (mnemo-store, gRPC); the in-process peers are driven by one caller.
  virtual absl::Status Search(int client, const float* queries, size_t n, int k, int ef,
                              int64_t* ids) = 0;
};

// hnswlib's HierarchicalNSW<float> (M = hnsw_m, efConstruction =
// ef_construction), built and searched with `threads` threads as hnswlib's
// Python binding does. Flat factories are not its business: any factory is
// taken to mean the graph.
absl::StatusOr<std::unique_ptr<Backend>> MakeHnswlibBackend(const Dataset& dataset,
                                                            const BackendConfig& config,
                                                            IngestStats* stats);

// Exact search as a BLAS user writes it: cblas_sgemm of query blocks against
// base blocks, then a top-k per query row, on `threads` OpenMP threads.
absl::StatusOr<std::unique_ptr<Backend>> MakeSgemmFlatBackend(const Dataset& dataset,
                                                              const BackendConfig& config,
                                                              IngestStats* stats);

// FAISS index_factory(config.factory); an HNSW index gets efConstruction =
// config.ef_construction before the add, and each call's ef as efSearch.
absl::StatusOr<std::unique_ptr<Backend>> MakeRawFaissBackend(const Dataset& dataset,
                                                             const BackendConfig& config,
                                                             IngestStats* stats);

// The mnemo engine in-process: a db::Store opened in data_dir, one namespace
// (config.mnemo_factory) loaded by Upsert. Closing the
// backend (destruction) closes the store so that mnemod may open data_dir.
// UNIMPLEMENTED when the engine library was not built.
absl::StatusOr<std::unique_ptr<Backend>> MakeStoreBackend(const Dataset& dataset,
                                                          const BackendConfig& config,
                                                          const std::string& data_dir,
                                                          IngestStats* stats);

// A mnemod child process serving data_dir, searched through the C++ SDK.
// Reuses the namespace when the store backend left it there complete,
// otherwise ingests through the SDK. Destruction stops the process.
// UNIMPLEMENTED when the client library was not built.
absl::StatusOr<std::unique_ptr<Backend>> MakeGrpcBackend(const Dataset& dataset,
                                                         const BackendConfig& config,
                                                         const std::string& data_dir,
                                                         IngestStats* stats);

}  // namespace mnemo::bench

#endif  // MNEMO_BENCH_BENCH_BACKEND_H_
