// Cosine similarity of two vectors, as the memory and conversation searches
// report it (0 when either is zero). Internal to db/.
#ifndef MNEMO_DB_COSINE_H_
#define MNEMO_DB_COSINE_H_

#include <cmath>

#include "absl/types/span.h"

namespace mnemo::db {

inline float Cosine(absl::Span<const float> a, absl::Span<const float> b) {
  double dot = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    dot += static_cast<double>(a[i]) * b[i];
    na += static_cast<double>(a[i]) * a[i];
    nb += static_cast<double>(b[i]) * b[i];
  }
  if (na <= 0 || nb <= 0) return 0;
  return static_cast<float>(dot / std::sqrt(na * nb));
}

}  // namespace mnemo::db

#endif  // MNEMO_DB_COSINE_H_
