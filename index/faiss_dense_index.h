// DenseIndex over FAISS 1.7.3: every factory except mnemo's own HNSW
// (index/hnsw_index.h). Flat, IVF*, PQ, SQ, pre-transforms and HNSW over
// compressed storage ("HNSW32,SQ8"). Reached through DenseIndex::Create.
#ifndef MNEMO_INDEX_FAISS_DENSE_INDEX_H_
#define MNEMO_INDEX_FAISS_DENSE_INDEX_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "index/dense_factory.h"
#include "index/dense_index.h"

namespace mnemo::index::internal {

absl::StatusOr<std::unique_ptr<DenseIndex>> MakeFaissDenseIndex(
    const DenseIndexOptions& options, const DenseFactory& factory);

absl::StatusOr<std::unique_ptr<DenseIndex>> LoadFaissDenseIndex(
    const DenseIndexOptions& options, const DenseFactory& factory,
    absl::Span<const uint8_t> bytes);

}  // namespace mnemo::index::internal

#endif  // MNEMO_INDEX_FAISS_DENSE_INDEX_H_
