// mnemo's HNSW engine behind DenseIndex, for the factories "HNSW<M>" and
// "HNSW<M>,Flat" (see dense_factory.h for efC= and ef=).
//
// The graph is hnswlib's (Debian libhnswlib-dev, header-only, so it is
// compiled here with mnemo's flags): its insertion, neighbour selection and
// memory layout. Distances are index/distance_kernels.h's, picked at run
// time for the CPU (AVX-512, AVX2+FMA or generic), so a generic x86-64
// binary still runs the wide kernels. The search itself is mnemo's own,
// over hnswlib's layout, because hnswlib 0.6.2 has neither a per-query ef
// nor a filter:
//
// * efSearch is an argument of each query, so concurrent searches with
//   different values never share state;
// * a filter (and deletion) is applied inside the base-layer walk: a
//   rejected node is still a route but never a result, and the walk does
//   not stop before it holds ef accepted nodes (or has run out of graph);
//   a row that still comes back short is completed by an exact scan over
//   the accepted nodes, so a selective filter never costs results.
//
// Replace = hnswlib's in-place update of the node (new vector, relinked
// neighbours). Remove marks the node deleted: it stays a route, is never a
// result, and is reclaimed when the owner rebuilds the index (compaction).
// A batch Add inserts on the OpenMP threads; a batch Search spreads its
// queries over the calling thread's OpenMP team (the store decides its
// size, so that concurrent batches do not oversubscribe the cores).
#ifndef MNEMO_INDEX_HNSW_INDEX_H_
#define MNEMO_INDEX_HNSW_INDEX_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "index/dense_factory.h"
#include "index/dense_index.h"

namespace mnemo::index::internal {

// `factory` is ParseDenseFactory(options.factory) with native_hnsw set.
absl::StatusOr<std::unique_ptr<DenseIndex>> MakeHnswIndex(const DenseIndexOptions& options,
                                                          const DenseFactory& factory);

// Reads what the HNSW engine's Serialize wrote; DATA_LOSS for anything
// inconsistent (the graph is checked link by link before it is used).
absl::StatusOr<std::unique_ptr<DenseIndex>> LoadHnswIndex(const DenseIndexOptions& options,
                                                          const DenseFactory& factory,
                                                          absl::Span<const uint8_t> bytes);

}  // namespace mnemo::index::internal

#endif  // MNEMO_INDEX_HNSW_INDEX_H_
