#include "index/distance_kernels.h"

// GCC 12 reports a false "used uninitialized" inside its own AVX-512
// headers (the undefined pass-through operand of 512-bit extracts).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstdlib>
#include <cstring>

namespace mnemo::index {
namespace {

// ---- generic ---------------------------------------------------------------
// Four independent sums so the loop is not one long dependency chain (the
// compiler may not reassociate float additions by itself).

float L2SqrGeneric(const float* a, const float* b, size_t dim) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t i = 0;
  for (; i + 4 <= dim; i += 4) {
    const float d0 = a[i] - b[i], d1 = a[i + 1] - b[i + 1];
    const float d2 = a[i + 2] - b[i + 2], d3 = a[i + 3] - b[i + 3];
    s0 += d0 * d0;
    s1 += d1 * d1;
    s2 += d2 * d2;
    s3 += d3 * d3;
  }
  for (; i < dim; ++i) {
    const float d = a[i] - b[i];
    s0 += d * d;
  }
  return (s0 + s1) + (s2 + s3);
}

float DotGeneric(const float* a, const float* b, size_t dim) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t i = 0;
  for (; i + 4 <= dim; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < dim; ++i) s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

// ---- AVX2 + FMA -------------------------------------------------------------

__attribute__((target("avx2,fma"))) inline float HorizontalSum256(__m256 v) {
  const __m128 lo = _mm256_castps256_ps128(v);
  const __m128 hi = _mm256_extractf128_ps(v, 1);
  __m128 s = _mm_add_ps(lo, hi);
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0x55));
  return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma"))) float L2SqrAvx2(const float* a, const float* b,
                                                    size_t dim) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= dim; i += 32) {
    const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    const __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
    const __m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16));
    const __m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24));
    s0 = _mm256_fmadd_ps(d0, d0, s0);
    s1 = _mm256_fmadd_ps(d1, d1, s1);
    s2 = _mm256_fmadd_ps(d2, d2, s2);
    s3 = _mm256_fmadd_ps(d3, d3, s3);
  }
  for (; i + 8 <= dim; i += 8) {
    const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    s0 = _mm256_fmadd_ps(d, d, s0);
  }
  float sum = HorizontalSum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
  for (; i < dim; ++i) {
    const float d = a[i] - b[i];
    sum += d * d;
  }
  return sum;
}

__attribute__((target("avx2,fma"))) float DotAvx2(const float* a, const float* b,
                                                  size_t dim) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= dim; i += 32) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
  }
  for (; i + 8 <= dim; i += 8) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  }
  float sum = HorizontalSum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
  for (; i < dim; ++i) sum += a[i] * b[i];
  return sum;
}

// ---- AVX-512F ---------------------------------------------------------------
// The tail is a masked load, so every dimension runs without a scalar loop.

__attribute__((target("avx512f"))) float L2SqrAvx512(const float* a, const float* b,
                                                     size_t dim) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= dim; i += 32) {
    const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
    const __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
    s0 = _mm512_fmadd_ps(d0, d0, s0);
    s1 = _mm512_fmadd_ps(d1, d1, s1);
  }
  for (; i + 16 <= dim; i += 16) {
    const __m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
    s0 = _mm512_fmadd_ps(d, d, s0);
  }
  if (i < dim) {
    const __mmask16 mask = static_cast<__mmask16>((1u << (dim - i)) - 1);
    const __m512 d =
        _mm512_sub_ps(_mm512_maskz_loadu_ps(mask, a + i), _mm512_maskz_loadu_ps(mask, b + i));
    s1 = _mm512_fmadd_ps(d, d, s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

__attribute__((target("avx512f"))) float DotAvx512(const float* a, const float* b,
                                                   size_t dim) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= dim; i += 32) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
  }
  for (; i + 16 <= dim; i += 16) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
  }
  if (i < dim) {
    const __mmask16 mask = static_cast<__mmask16>((1u << (dim - i)) - 1);
    s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, a + i), _mm512_maskz_loadu_ps(mask, b + i),
                         s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

// ---- hnswlib-shaped wrappers --------------------------------------------------

template <float (*Kernel)(const float*, const float*, size_t)>
float GraphDistance(const void* a, const void* b, const void* param) {
  return Kernel(static_cast<const float*>(a), static_cast<const float*>(b),
                *static_cast<const size_t*>(param));
}

template <float (*Kernel)(const float*, const float*, size_t)>
float NegatedGraphDistance(const void* a, const void* b, const void* param) {
  return -Kernel(static_cast<const float*>(a), static_cast<const float*>(b),
                 *static_cast<const size_t*>(param));
}

template <float (*L2)(const float*, const float*, size_t),
          float (*Dot)(const float*, const float*, size_t)>
DistanceKernels MakeKernels(SimdLevel level) {
  DistanceKernels k;
  k.level = level;
  k.l2sqr = L2;
  k.dot = Dot;
  k.l2sqr_graph = &GraphDistance<L2>;
  k.neg_dot_graph = &NegatedGraphDistance<Dot>;
  return k;
}

SimdLevel CapFromEnvironment(SimdLevel best) {
  const char* env = std::getenv("MNEMO_SIMD");
  if (env == nullptr) return best;
  SimdLevel cap = best;
  if (std::strcmp(env, "generic") == 0) cap = SimdLevel::kGeneric;
  if (std::strcmp(env, "avx2") == 0) cap = SimdLevel::kAvx2;
  if (std::strcmp(env, "avx512") == 0) cap = SimdLevel::kAvx512;
  return static_cast<int>(cap) < static_cast<int>(best) ? cap : best;
}

}  // namespace

absl::string_view SimdLevelName(SimdLevel level) {
  switch (level) {
    case SimdLevel::kGeneric:
      return "generic";
    case SimdLevel::kAvx2:
      return "avx2";
    case SimdLevel::kAvx512:
      return "avx512";
  }
  return "unknown";
}

bool CpuSupports(SimdLevel level) {
  // libgcc's CPU model checks the OS-enabled state (XCR0) as well.
  __builtin_cpu_init();
  switch (level) {
    case SimdLevel::kGeneric:
      return true;
    case SimdLevel::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case SimdLevel::kAvx512:
      return __builtin_cpu_supports("avx512f");
  }
  return false;
}

const DistanceKernels& KernelsFor(SimdLevel level) {
  static const DistanceKernels kGeneric =
      MakeKernels<&L2SqrGeneric, &DotGeneric>(SimdLevel::kGeneric);
  static const DistanceKernels kAvx2 = MakeKernels<&L2SqrAvx2, &DotAvx2>(SimdLevel::kAvx2);
  static const DistanceKernels kAvx512 =
      MakeKernels<&L2SqrAvx512, &DotAvx512>(SimdLevel::kAvx512);
  switch (level) {
    case SimdLevel::kAvx2:
      return kAvx2;
    case SimdLevel::kAvx512:
      return kAvx512;
    case SimdLevel::kGeneric:
      break;
  }
  return kGeneric;
}

const DistanceKernels& BestKernels() {
  static const DistanceKernels& best = [] () -> const DistanceKernels& {
    SimdLevel level = SimdLevel::kGeneric;
    if (CpuSupports(SimdLevel::kAvx512)) {
      level = SimdLevel::kAvx512;
    } else if (CpuSupports(SimdLevel::kAvx2)) {
      level = SimdLevel::kAvx2;
    }
    return KernelsFor(CapFromEnvironment(level));
  }();
  return best;
}

}  // namespace mnemo::index

#pragma GCC diagnostic pop
