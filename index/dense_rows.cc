#include "index/dense_rows.h"

#include <cmath>
#include <limits>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"

namespace mnemo::index::internal {

absl::Status CheckFinite(absl::Span<const float> values, absl::string_view what) {
  for (float v : values) {
    if (!std::isfinite(v)) {
      return absl::InvalidArgumentError(absl::StrCat(what, " contains NaN or Inf"));
    }
  }
  return absl::OkStatus();
}

void NormalizeRows(float* rows, size_t n, size_t dim) {
  for (size_t i = 0; i < n; ++i) {
    float* row = rows + i * dim;
    double norm2 = 0;
    for (size_t j = 0; j < dim; ++j) norm2 += double{row[j]} * row[j];
    if (norm2 <= 0) continue;
    const float inv = static_cast<float>(1.0 / std::sqrt(norm2));
    for (size_t j = 0; j < dim; ++j) row[j] *= inv;
  }
}

absl::StatusOr<PreparedRows> PrepareRows(absl::Span<const int64_t> ids,
                                         absl::Span<const float> vectors, size_t dim,
                                         Metric metric) {
  if (vectors.size() != ids.size() * dim) {
    return absl::InvalidArgumentError(absl::StrCat("expected ", ids.size(), " x ", dim,
                                                   " floats, got ", vectors.size()));
  }
  PreparedRows out;
  if (ids.empty()) return out;
  if (absl::Status s = CheckFinite(vectors, "vector"); !s.ok()) return s;
  absl::flat_hash_map<int64_t, size_t> last;
  last.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0) {
      return absl::InvalidArgumentError(absl::StrCat("ids must be >= 0, got ", ids[i]));
    }
    last[ids[i]] = i;
  }
  out.ids.reserve(last.size());
  out.rows.reserve(last.size() * dim);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (last[ids[i]] != i) continue;
    out.ids.push_back(ids[i]);
    out.rows.insert(out.rows.end(), vectors.begin() + i * dim, vectors.begin() + (i + 1) * dim);
  }
  if (metric == Metric::kCosine) NormalizeRows(out.rows.data(), out.ids.size(), dim);
  return out;
}

absl::Status CheckSearch(absl::Span<const float> queries, size_t dim, int k) {
  if (k < 1) return absl::InvalidArgumentError("k must be >= 1");
  if (queries.size() % dim != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("query floats (", queries.size(), ") not a multiple of dim ", dim));
  }
  return CheckFinite(queries, "query");
}

float PadScore(Metric metric) {
  return HigherIsBetter(metric) ? -std::numeric_limits<float>::infinity()
                                : std::numeric_limits<float>::infinity();
}

}  // namespace mnemo::index::internal
