// The factory string of a dense index: a FAISS index_factory description
// plus mnemo's graph options, e.g.
//
//   "Flat", "IVF1024,PQ16"        FAISS indexes
//   "HNSW32", "HNSW32,Flat"        mnemo's own HNSW engine (index/hnsw_index.h)
//   "HNSW16,efC=200,ef=128"        ... with build and default search breadth
//   "HNSW32,SQ8,efC=100"           FAISS HNSW over compressed storage
//
// efC= (efConstruction, the candidate list while inserting) and ef= (the
// default efSearch of a query that names none) apply to HNSW factories only.
#ifndef MNEMO_INDEX_DENSE_FACTORY_H_
#define MNEMO_INDEX_DENSE_FACTORY_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mnemo::index {

// Defaults of the graph options.
inline constexpr uint32_t kDefaultHnswEfConstruction = 200;
inline constexpr uint32_t kDefaultHnswEfSearch = 128;
// Bounds accepted for M, efC and ef.
inline constexpr uint32_t kMaxHnswM = 512;
inline constexpr uint32_t kMaxHnswEf = 65536;

struct DenseFactory {
  // The FAISS factory string with mnemo's options removed ("Flat" if empty).
  std::string faiss;
  // HNSW<M> or HNSW<M>,Flat: served by mnemo's HNSW engine, not FAISS.
  bool native_hnsw = false;
  uint32_t hnsw_m = 0;  // M of an HNSW factory, 0 for others
  uint32_t ef_construction = kDefaultHnswEfConstruction;
  uint32_t ef_search = kDefaultHnswEfSearch;
};

// INVALID_ARGUMENT for a malformed or out-of-range option, or an option on
// a factory that is not HNSW. The FAISS part is checked by FAISS later.
absl::StatusOr<DenseFactory> ParseDenseFactory(absl::string_view factory);

}  // namespace mnemo::index

#endif  // MNEMO_INDEX_DENSE_FACTORY_H_
