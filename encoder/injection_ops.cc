// Float32 building blocks of the injection model (injection_ops.h).
#include "encoder/injection_ops.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>

namespace mnemo::encoder::ops {

void Linear(const float* x, int n, int in, int ldx, const float* w, const float* b, int out,
            float* y, int ldy) {
  if (b != nullptr) {
    for (int i = 0; i < n; ++i) std::copy(b, b + out, y + static_cast<size_t>(i) * ldy);
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.0f, x, ldx, w, in,
              b != nullptr ? 1.0f : 0.0f, y, ldy);
}

void Gelu(float* x, size_t count) {
  constexpr float kInvSqrt2 = 0.70710678118654752440f;
  for (size_t i = 0; i < count; ++i) x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * kInvSqrt2));
}

void RmsNorm(const float* x, int n, int d, const float* gain, float eps, float* y) {
  for (int i = 0; i < n; ++i) {
    const float* row = x + static_cast<size_t>(i) * d;
    float* dst = y + static_cast<size_t>(i) * d;
    double sum = 0.0;
    for (int j = 0; j < d; ++j) sum += static_cast<double>(row[j]) * row[j];
    const float inv = 1.0f / std::sqrt(static_cast<float>(sum / d) + eps);
    for (int j = 0; j < d; ++j) dst[j] = row[j] * inv * gain[j];
  }
}

void Attention(const float* q, int ldq, int nq, const float* k, int ldk, const float* v, int ldv,
               int nk, int dim, int heads, float* scores, float* out) {
  const int hd = dim / heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  for (int h = 0; h < heads; ++h) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, hd, scale, q + h * hd, ldq,
                k + h * hd, ldk, 0.0f, scores, nk);
    for (int i = 0; i < nq; ++i) {
      float* row = scores + static_cast<size_t>(i) * nk;
      const float mx = *std::max_element(row, row + nk);
      float sum = 0.0f;
      for (int j = 0; j < nk; ++j) {
        row[j] = std::exp(row[j] - mx);
        sum += row[j];
      }
      const float inv = 1.0f / sum;
      for (int j = 0; j < nk; ++j) row[j] *= inv;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, hd, nk, 1.0f, scores, nk,
                v + h * hd, ldv, 0.0f, out + h * hd, dim);
  }
}

}  // namespace mnemo::encoder::ops
