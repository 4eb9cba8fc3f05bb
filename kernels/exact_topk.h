// Exact (brute-force) batched top-k on the GPU: nq queries against nb base
// vectors, inner product or squared L2, k best per query.
//
// Plain C++ interface: no CUDA types here, so index/ can call it whether or
// not CUDA was compiled. Without CUDA (MNEMO_HAVE_CUDA OFF) every call returns
// UNAVAILABLE. The CPU reference the kernel is tested against is
// index::MakeCpuExactSearch() (index/exact_search.h).
#ifndef MNEMO_KERNELS_EXACT_TOPK_H_
#define MNEMO_KERNELS_EXACT_TOPK_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"

namespace mnemo::kernels {

// Largest k the kernel selects in one pass.
inline constexpr int kMaxExactTopK = 1024;

enum class ExactScore {
  kInnerProduct,  // score = <q, x>, k largest
  kL2,            // score = |q - x|^2, k smallest
};

// All pointers are HOST memory; the call copies base and queries to the
// device, runs the kernels and copies the results back (synchronous).
struct ExactTopKArgs {
  const float* base = nullptr;     // nb * dim, row-major
  size_t nb = 0;
  const float* queries = nullptr;  // nq * dim, row-major
  size_t nq = 0;
  size_t dim = 0;
  ExactScore score = ExactScore::kInnerProduct;
  int k = 0;                       // 1..kMaxExactTopK
  int64_t* out_ids = nullptr;      // nq * k: row index into base, -1 padded
  float* out_scores = nullptr;     // nq * k: best first; padding is -inf (ip)
                                   // or +inf (l2)
};

// OK when CUDA was compiled in and at least one device is usable;
// UNAVAILABLE otherwise (any cudaGetDeviceCount error counts as "no device",
// e.g. cudaErrorInsufficientDriver on a machine without a driver).
absl::Status CudaDeviceAvailable();

// Runs the exact top-k on device 0. INVALID_ARGUMENT for bad sizes or k out
// of range, UNAVAILABLE without a device, INTERNAL for CUDA failures.
// Thread-safe (each call uses its own stream and buffers).
absl::Status ExactTopK(const ExactTopKArgs& args);

}  // namespace mnemo::kernels

#endif  // MNEMO_KERNELS_EXACT_TOPK_H_
