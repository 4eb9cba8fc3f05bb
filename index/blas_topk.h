// Exact batched top-k on the CPU with BLAS: the unfiltered search of Flat
// indexes for batches of queries.
//
// The base rows are split between the OpenMP threads; each thread scores
// its blocks of base rows against the query batch with one single-threaded
// cblas_sgemm per block and keeps a top-k per query, and the per-thread
// lists are merged at the end. Compared with letting OpenBLAS split every
// sgemm (FAISS's knn path), there is one fork/join per call instead of two
// per block, and the L2 row norms are computed once per index state
// instead of once per call.
#ifndef MNEMO_INDEX_BLAS_TOPK_H_
#define MNEMO_INDEX_BLAS_TOPK_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "index/metric.h"

namespace mnemo::index {

// ||b||^2 / 2 of each of the nb rows (what BlasTopK wants for kL2).
std::vector<float> HalfSquaredNorms(const float* base, size_t nb, size_t dim);

// For each of the nq queries, the k best of the nb base rows, best first;
// ties go to the lower row. Scores: squared L2 for kL2 (half_norms must be
// HalfSquaredNorms(base)), the inner product otherwise (the caller
// normalises for kCosine; half_norms is ignored). Rows beyond nb are
// padded with id -1 and score +inf (L2) / -inf. k >= 1.
void BlasTopK(const float* base, size_t nb, const float* half_norms, const float* queries,
              size_t nq, size_t dim, Metric metric, size_t k, int64_t* out_ids,
              float* out_scores);

}  // namespace mnemo::index

#endif  // MNEMO_INDEX_BLAS_TOPK_H_
