// Input checks and preparation shared by the dense index engines (FAISS
// and HNSW): one place decides what a valid Add or Search looks like.
#ifndef MNEMO_INDEX_DENSE_ROWS_H_
#define MNEMO_INDEX_DENSE_ROWS_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "index/metric.h"

namespace mnemo::index::internal {

// INVALID_ARGUMENT naming `what` when a value is NaN or infinite.
absl::Status CheckFinite(absl::Span<const float> values, absl::string_view what);

// Unit length; a zero row stays zero (it scores 0 against everything).
void NormalizeRows(float* rows, size_t n, size_t dim);

// The vectors of one Add, checked (n * dim floats, ids >= 0, finite), with
// a duplicated id resolved as if added one by one (the last one wins), in
// first-seen order of the surviving rows, normalised for kCosine.
struct PreparedRows {
  std::vector<int64_t> ids;
  std::vector<float> rows;
};
absl::StatusOr<PreparedRows> PrepareRows(absl::Span<const int64_t> ids,
                                         absl::Span<const float> vectors, size_t dim,
                                         Metric metric);

// Checks a search call: k >= 1, whole query rows, finite values.
absl::Status CheckSearch(absl::Span<const float> queries, size_t dim, int k);

// The score that pads a result row that has fewer than k matches.
float PadScore(Metric metric);

}  // namespace mnemo::index::internal

#endif  // MNEMO_INDEX_DENSE_ROWS_H_
