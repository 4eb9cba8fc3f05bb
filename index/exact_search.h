// Brute-force batched top-k over a row-major base: the exact search behind
// Flat indexes, and the reference every GPU top-k kernel is tested against.
//
// Shape of the API (FAISS GpuIndex style): ExactSearchBackend is the public
// plumbing; the CPU backend always exists, the CUDA backend is optional.
//
// Device selection for the DenseIndex hot path: DenseIndexOptions has no
// device field, so the Flat search inside DenseIndex asks
// DefaultExactSearch(), a process-wide backend chosen once from the
// environment variable MNEMO_DEVICE:
//   unset / "cpu"  -> FAISS path (DefaultExactSearch() returns nullptr)
//   "cuda"         -> the CUDA backend when a device is usable, else the
//                     FAISS path (silently; Describe() says which is used)
// Filtered searches always take the FAISS path, which evaluates the
// predicate inside the scan.
#ifndef MNEMO_INDEX_EXACT_SEARCH_H_
#define MNEMO_INDEX_EXACT_SEARCH_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "index/metric.h"

namespace mnemo::index {

class ExactSearchBackend {
 public:
  virtual ~ExactSearchBackend() = default;

  // For each of the nq queries, the k best of the nb base rows. `metric` is
  // kInnerProduct or kL2 (kCosine is treated as inner product: the caller
  // normalises). Outputs are nq * k, best first; ids are row indices into
  // `base`, padded with -1 and score -inf (ip) / +inf (l2) when nb < k.
  // INVALID_ARGUMENT for k < 1 or dim == 0. Thread-safe.
  [[nodiscard]] virtual absl::Status Search(const float* base, size_t nb,
                                            const float* queries, size_t nq,
                                            size_t dim, Metric metric, int k,
                                            int64_t* out_ids,
                                            float* out_scores) const = 0;

  virtual std::string name() const = 0;  // "cpu" or "cuda"
};

// The CPU reference: FAISS knn_inner_product / knn_L2sqr (BLAS sgemm in
// blocks plus a per-query heap).
std::unique_ptr<ExactSearchBackend> MakeCpuExactSearch();

// The CUDA kernel (kernels/exact_topk.h); k <= 1024. UNAVAILABLE when CUDA
// was not compiled in or no device is usable.
absl::StatusOr<std::unique_ptr<ExactSearchBackend>> MakeCudaExactSearch();

// Process-wide accelerated backend chosen from MNEMO_DEVICE (see above);
// nullptr means "use the FAISS CPU path". Evaluated once, thread-safe.
const ExactSearchBackend* DefaultExactSearch();

}  // namespace mnemo::index

#endif  // MNEMO_INDEX_EXACT_SEARCH_H_
