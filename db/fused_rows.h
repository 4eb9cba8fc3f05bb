// The last step shared by the hybrid (dense + BM25) searches of memories
// and conversation messages: read the fused candidates' rows, and give each
// candidate its cosine similarity to the query (those the dense search
// found already have it; those only BM25 found get it from their stored
// vector).
#ifndef MNEMO_DB_FUSED_ROWS_H_
#define MNEMO_DB_FUSED_ROWS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "db/namespace.h"
#include "index/fusion.h"

namespace mnemo::db {

class StoreImpl;

// The chunk rows of `fused`, in its order (nullopt for a row deleted since
// the search). `similarity` holds the dense search's scores on entry and
// every candidate's cosine similarity to `query` on return. The caller
// holds `ns.mu`.
absl::StatusOr<std::vector<std::optional<std::string>>> ReadFusedRows(
    StoreImpl& store, const Namespace& ns, absl::Span<const index::ScoredId> fused,
    absl::Span<const float> query, absl::flat_hash_map<int64_t, float>* similarity);

}  // namespace mnemo::db

#endif  // MNEMO_DB_FUSED_ROWS_H_
