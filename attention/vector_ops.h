// Small float vector kernels of the attention math, written for the
// compiler's vectoriser (`omp simd`: the library builds with OpenMP) since
// the build targets generic x86-64 without -ffast-math: a dot product, y +=
// a * x, and the fused forms that read one key or value row once for every
// query head of a GQA group.
#ifndef MNEMO_ATTENTION_VECTOR_OPS_H_
#define MNEMO_ATTENTION_VECTOR_OPS_H_

namespace mnemo::attention {

inline float Dot(const float* __restrict a, const float* __restrict b, int d) {
  float acc = 0;
#pragma omp simd reduction(+ : acc)
  for (int i = 0; i < d; ++i) acc += a[i] * b[i];
  return acc;
}

inline void Axpy(float a, const float* __restrict x, float* __restrict y, int d) {
#pragma omp simd
  for (int i = 0; i < d; ++i) y[i] += a * x[i];
}

// out[g] = scale * <q[g], row> for the `group` query rows q [group, d].
inline void GroupDot(const float* __restrict q, int group, const float* __restrict row, int d,
                     float scale, float* __restrict out) {
  for (int g = 0; g < group; ++g) out[g] = scale * Dot(q + g * d, row, d);
}

// y[g] += w[g] * row for the `group` output rows y [group, d].
inline void GroupAxpy(const float* __restrict w, int group, const float* __restrict row, int d,
                      float* __restrict y) {
  for (int g = 0; g < group; ++g) Axpy(w[g], row, y + g * d, d);
}

}  // namespace mnemo::attention

#endif  // MNEMO_ATTENTION_VECTOR_OPS_H_
