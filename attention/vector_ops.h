// Small float vector kernels of the attention math, written for the
// compiler's vectoriser (`omp simd`: the library builds with OpenMP) since
// the build targets generic x86-64 without -ffast-math: a dot product, y +=
// a * x, and the fused forms that read one key or value row once for every
// query head of a GQA group.
#ifndef MNEMO_ATTENTION_VECTOR_OPS_H_
#define MNEMO_ATTENTION_VECTOR_OPS_H_

#include <cstddef>

namespace mnemo::attention {

using std::size_t;

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

// out[g] = scale * <q[g], row> for the `group` query rows q [group, d]:
// the row is read once for four query rows at a time.
inline void GroupDot(const float* __restrict q, int group, const float* __restrict row, int d,
                     float scale, float* __restrict out) {
  int g = 0;
  for (; g + 4 <= group; g += 4) {
    const float* q0 = q + size_t(g) * d;
    const float* q1 = q0 + d;
    const float* q2 = q1 + d;
    const float* q3 = q2 + d;
    float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
#pragma omp simd reduction(+ : a0, a1, a2, a3)
    for (int i = 0; i < d; ++i) {
      const float k = row[i];
      a0 += q0[i] * k;
      a1 += q1[i] * k;
      a2 += q2[i] * k;
      a3 += q3[i] * k;
    }
    out[g] = scale * a0;
    out[g + 1] = scale * a1;
    out[g + 2] = scale * a2;
    out[g + 3] = scale * a3;
  }
  for (; g < group; ++g) out[g] = scale * Dot(q + size_t(g) * d, row, d);
}

// out[r] = <rows[r], q> for `n` rows [n, d] (a small GEMV, four rows at a
// time).
inline void DotRows(const float* __restrict rows, int n, const float* __restrict q, int d,
                    float* __restrict out) {
  int r = 0;
  for (; r + 4 <= n; r += 4) {
    const float* r0 = rows + size_t(r) * d;
    const float* r1 = r0 + d;
    const float* r2 = r1 + d;
    const float* r3 = r2 + d;
    float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
#pragma omp simd reduction(+ : a0, a1, a2, a3)
    for (int i = 0; i < d; ++i) {
      const float x = q[i];
      a0 += r0[i] * x;
      a1 += r1[i] * x;
      a2 += r2[i] * x;
      a3 += r3[i] * x;
    }
    out[r] = a0;
    out[r + 1] = a1;
    out[r + 2] = a2;
    out[r + 3] = a3;
  }
  for (; r < n; ++r) out[r] = Dot(rows + size_t(r) * d, q, d);
}

// y[g] += w[g] * row for the `group` output rows y [group, d].
inline void GroupAxpy(const float* __restrict w, int group, const float* __restrict row, int d,
                      float* __restrict y) {
  int g = 0;
  for (; g + 4 <= group; g += 4) {
    float* y0 = y + size_t(g) * d;
    float* y1 = y0 + d;
    float* y2 = y1 + d;
    float* y3 = y2 + d;
    const float w0 = w[g], w1 = w[g + 1], w2 = w[g + 2], w3 = w[g + 3];
#pragma omp simd
    for (int i = 0; i < d; ++i) {
      const float v = row[i];
      y0[i] += w0 * v;
      y1[i] += w1 * v;
      y2[i] += w2 * v;
      y3[i] += w3 * v;
    }
  }
  for (; g < group; ++g) Axpy(w[g], row, y + size_t(g) * d, d);
}

}  // namespace mnemo::attention

#endif  // MNEMO_ATTENTION_VECTOR_OPS_H_
