// Small float vector kernels of the attention math: a dot product with
// eight independent partial sums (so the compiler vectorises it without
// -ffast-math) and y += a * x.
#ifndef MNEMO_ATTENTION_VECTOR_OPS_H_
#define MNEMO_ATTENTION_VECTOR_OPS_H_

namespace mnemo::attention {

inline float Dot(const float* a, const float* b, int d) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int i = 0;
  for (; i + 8 <= d; i += 8) {
    for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
  }
  float tail = 0;
  for (; i < d; ++i) tail += a[i] * b[i];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail;
}

inline void Axpy(float a, const float* x, float* y, int d) {
  for (int i = 0; i < d; ++i) y[i] += a * x[i];
}

}  // namespace mnemo::attention

#endif  // MNEMO_ATTENTION_VECTOR_OPS_H_
