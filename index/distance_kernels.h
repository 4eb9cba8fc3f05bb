// Float distance kernels (squared L2, inner product) compiled for several
// x86-64 instruction sets in one binary and chosen once at run time from
// what the CPU and the OS support, so a binary built for generic x86-64
// still uses AVX2+FMA or AVX-512 where they exist.
//
// MNEMO_SIMD=generic|avx2|avx512 in the environment caps the level (for
// debugging and for comparing levels); a level the CPU lacks is never used.
#ifndef MNEMO_INDEX_DISTANCE_KERNELS_H_
#define MNEMO_INDEX_DISTANCE_KERNELS_H_

#include <cstddef>

#include "absl/strings/string_view.h"

namespace mnemo::index {

enum class SimdLevel {
  kGeneric = 0,  // plain C++, whatever the compiler makes of it
  kAvx2 = 1,     // AVX2 + FMA
  kAvx512 = 2,   // AVX-512F
};

// "generic", "avx2", "avx512".
absl::string_view SimdLevelName(SimdLevel level);

// Whether this CPU (and OS) can run `level`.
bool CpuSupports(SimdLevel level);

struct DistanceKernels {
  SimdLevel level = SimdLevel::kGeneric;
  float (*l2sqr)(const float* a, const float* b, size_t dim) = nullptr;
  float (*dot)(const float* a, const float* b, size_t dim) = nullptr;
  // The same in hnswlib's distance-function shape, `param` pointing at the
  // dimension as a size_t; smaller is closer, so the inner-product form
  // returns -<a, b>.
  float (*l2sqr_graph)(const void* a, const void* b, const void* param) = nullptr;
  float (*neg_dot_graph)(const void* a, const void* b, const void* param) = nullptr;
};

// The kernels of `level`; the caller checks CpuSupports(level) first.
const DistanceKernels& KernelsFor(SimdLevel level);

// The best level this CPU supports, capped by MNEMO_SIMD; decided once.
const DistanceKernels& BestKernels();

}  // namespace mnemo::index

#endif  // MNEMO_INDEX_DISTANCE_KERNELS_H_
