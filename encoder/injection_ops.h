// The few float32 building blocks of the injection model's forward passes
// (encoder/injection_model.h), row-major, matrix products by BLAS sgemm:
// torch's Linear (y = x W^T + b, W [out, in]), exact-erf GELU, RMS norm
// with a gain, and unmasked multi-head softmax attention. Pure functions of
// their arguments: safe from several threads.
#ifndef MNEMO_ENCODER_INJECTION_OPS_H_
#define MNEMO_ENCODER_INJECTION_OPS_H_

#include <cstddef>

namespace mnemo::encoder::ops {

// y[n, out] = x[n, in] · w[out, in]^T (+ b[out] when b is not null). x has
// row stride ldx (>= in), y row stride ldy (>= out).
void Linear(const float* x, int n, int in, int ldx, const float* w, const float* b, int out,
            float* y, int ldy);
inline void Linear(const float* x, int n, int in, const float* w, const float* b, int out,
                   float* y) {
  Linear(x, n, in, in, w, b, out, y, out);
}

// x = 0.5 x (1 + erf(x / sqrt 2)), in place.
void Gelu(float* x, size_t count);

// y[i] = x[i] / sqrt(mean(x[i]^2) + eps) * gain, for n rows of d floats
// (y may be x).
void RmsNorm(const float* x, int n, int d, const float* gain, float eps, float* y);

// Multi-head attention without mask or positions: for each head h of
// head_dim = dim / heads columns, out[:, h] = softmax(q_h k_h^T /
// sqrt(head_dim)) v_h. q is [nq, dim] (stride ldq), k and v [nk, dim]
// (strides ldk, ldv), out [nq, dim] (stride dim). `scores` is scratch of
// nq * nk floats.
void Attention(const float* q, int ldq, int nq, const float* k, int ldk, const float* v, int ldv,
               int nk, int dim, int heads, float* scores, float* out);

}  // namespace mnemo::encoder::ops

#endif  // MNEMO_ENCODER_INJECTION_OPS_H_
