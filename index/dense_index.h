// Dense vector index, one per namespace.
//
// Built from a factory string (index/dense_factory.h): "HNSW<M>" runs on
// mnemo's HNSW engine (index/hnsw_index.h, hnswlib's graph with run-time
// dispatched SIMD distances); every other string is a FAISS index_factory
// description ("Flat", "IVF1024,PQ16", "HNSW32,SQ8", ...) run on FAISS
// (index/faiss_dense_index.h). Vectors are addressed by 64-bit ids chosen by
// the caller. A trainable index (IVF, PQ, ...) serves exact search from a
// flat index until `train_threshold` vectors exist; the next Add then
// trains on all vectors and moves them over. PQ-style indexes (lossy codes)
// keep the raw vectors and re-rank `refine_factor * k` candidates exactly.
//
// Deletion: indexes that support removal (Flat, IVF) remove the id; graph
// indexes (HNSW) mark it dead: it is never served, and it is dropped when
// the index is rebuilt (the store's compaction).
//
// Thread safety: const methods may run concurrently with each other; every
// non-const method needs exclusive access (the owner holds a writer lock).
// Engine exceptions never escape: they become INTERNAL / INVALID_ARGUMENT.
#ifndef MNEMO_INDEX_DENSE_INDEX_H_
#define MNEMO_INDEX_DENSE_INDEX_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "index/filter.h"
#include "index/metric.h"

namespace mnemo::index {

struct DenseIndexOptions {
  // Vector dimension, 1..65536.
  uint32_t dim = 0;
  Metric metric = Metric::kInnerProduct;
  // Factory string (index/dense_factory.h). Empty means "Flat".
  std::string factory = "Flat";
  // Vectors required before a trainable index is trained. 0 = automatic
  // (39 * nlist for IVF, 256 * 39 for PQ-only, ...).
  uint64_t train_threshold = 0;
};

// Per-call search knobs; zero means "index default". Each call's values
// apply to that call only, also under concurrent calls with other values.
struct DenseSearchParams {
  // Default: the factory's ef= (64 unless set); higher = better recall,
  // slower. Never below k.
  uint32_t hnsw_ef_search = 0;
  uint32_t ivf_nprobe = 0;      // default 16
  float refine_factor = 0;      // default 4 for PQ-coded indexes
};

// Result of a batch search: n * k entries, row-major, padded with id -1.
struct DenseSearchResult {
  size_t n = 0;
  size_t k = 0;
  std::vector<int64_t> ids;
  std::vector<float> scores;  // see Metric for the sense of a score
};

class DenseIndex {
 public:
  // Validates the options and the factory string (INVALID_ARGUMENT when
  // it is malformed or FAISS rejects it).
  static absl::StatusOr<std::unique_ptr<DenseIndex>> Create(
      const DenseIndexOptions& options);

  // Reads an index written by Serialize. The options must match the ones it
  // was created with (dimension, metric, factory) or FAILED_PRECONDITION.
  // Garbage bytes give DATA_LOSS, never a crash.
  static absl::StatusOr<std::unique_ptr<DenseIndex>> Deserialize(
      const DenseIndexOptions& options, absl::Span<const uint8_t> bytes);

  virtual ~DenseIndex() = default;

  // Adds or replaces n vectors (row-major n * dim). An id already present is
  // replaced. For kCosine the vectors are normalised here. May train.
  virtual absl::Status Add(absl::Span<const int64_t> ids,
                           absl::Span<const float> vectors) = 0;

  // Removes ids; unknown ids are ignored. Returns how many were present.
  virtual absl::StatusOr<size_t> Remove(absl::Span<const int64_t> ids) = 0;

  // Batch search of n = queries.size() / dim queries. `filter`, when given,
  // restricts candidates inside the search. k >= 1.
  virtual absl::StatusOr<DenseSearchResult> Search(
      absl::Span<const float> queries, int k, const IdPredicate* filter,
      const DenseSearchParams& params) const = 0;

  // Serialised form of the whole index (the engine's own format behind a
  // header naming dim, metric and factory, and a checksum trailer).
  virtual absl::StatusOr<std::vector<uint8_t>> Serialize() const = 0;

  virtual size_t size() const = 0;  // live vectors
  virtual bool is_trained() const = 0;
  // True when a search scores every vector (Flat, or a trainable index
  // before training): one query then splits over the OpenMP team.
  virtual bool scans_all() const = 0;
  virtual bool Contains(int64_t id) const = 0;
  virtual std::string Describe() const = 0;  // e.g. "HNSW32 (1234 live)"
  virtual const DenseIndexOptions& options() const = 0;
};

}  // namespace mnemo::index

#endif  // MNEMO_INDEX_DENSE_INDEX_H_
