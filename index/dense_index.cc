// DenseIndex::Create / Deserialize: the factory string picks the engine
// (index/dense_factory.h): mnemo's HNSW for "HNSW<M>[,Flat]", FAISS for
// everything else.
#include "index/dense_index.h"

#include "common/status_macros.h"
#include "index/dense_factory.h"
#include "index/faiss_dense_index.h"
#include "index/hnsw_index.h"

namespace mnemo::index {

absl::StatusOr<std::unique_ptr<DenseIndex>> DenseIndex::Create(
    const DenseIndexOptions& options) {
  ASSIGN_OR_RETURN(DenseFactory factory, ParseDenseFactory(options.factory));
  if (factory.native_hnsw) return internal::MakeHnswIndex(options, factory);
  return internal::MakeFaissDenseIndex(options, factory);
}

absl::StatusOr<std::unique_ptr<DenseIndex>> DenseIndex::Deserialize(
    const DenseIndexOptions& options, absl::Span<const uint8_t> bytes) {
  ASSIGN_OR_RETURN(DenseFactory factory, ParseDenseFactory(options.factory));
  if (factory.native_hnsw) return internal::LoadHnswIndex(options, factory, bytes);
  return internal::LoadFaissDenseIndex(options, factory, bytes);
}

}  // namespace mnemo::index
