// Rows and similarities of a hybrid search's fused candidates (fused_rows.h).
#include "db/fused_rows.h"

#include "common/status_macros.h"
#include "db/cosine.h"
#include "db/keys.h"
#include "db/records.h"
#include "db/store_impl.h"

namespace mnemo::db {

absl::StatusOr<std::vector<std::optional<std::string>>> ReadFusedRows(
    StoreImpl& store, const Namespace& ns, absl::Span<const index::ScoredId> fused,
    absl::Span<const float> query, absl::flat_hash_map<int64_t, float>* similarity) {
  std::vector<std::string> row_keys;
  std::vector<std::string> vector_keys;
  std::vector<int64_t> vector_ids;
  for (const auto& [id, score] : fused) {
    row_keys.push_back(keys::RowKey(ns.nsid, id));
    if (!similarity->contains(id)) {
      vector_keys.push_back(row_keys.back());
      vector_ids.push_back(id);
    }
  }
  ASSIGN_OR_RETURN(auto vectors, store.MultiGet(store.dense_cf(), vector_keys));
  for (size_t i = 0; i < vectors.size(); ++i) {
    if (!vectors[i].has_value()) continue;
    std::vector<float> v;
    RETURN_IF_ERROR(records::DecodeVector(*vectors[i], ns.config.dim, &v));
    (*similarity)[vector_ids[i]] = Cosine(query, v);
  }
  return store.MultiGet(store.chunks_cf(), row_keys);
}

}  // namespace mnemo::db
