#include "index/blas_topk.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

namespace mnemo::index {
namespace {

// Base rows per sgemm: the score block (queries x rows) stays in cache
// while the top-k scan reads it.
constexpr size_t kBaseBlock = 4096;
// Query rows per pass, bounding each thread's score block.
constexpr size_t kQueryBlock = 256;

// (score, row): larger score is better; on a tie the lower row wins.
using Entry = std::pair<float, int64_t>;

bool Better(const Entry& a, const Entry& b) {
  return a.first > b.first || (a.first == b.first && a.second < b.second);
}

// The k best entries seen, as a heap whose front is the worst kept one.
class TopK {
 public:
  void Reset(size_t k) {
    k_ = k;
    heap_.clear();
    heap_.reserve(k);
  }
  float threshold() const {
    return heap_.size() < k_ ? -std::numeric_limits<float>::infinity() : heap_.front().first;
  }
  void Push(float score, int64_t row) {
    const Entry e(score, row);
    if (heap_.size() < k_) {
      heap_.push_back(e);
      std::push_heap(heap_.begin(), heap_.end(), Better);
    } else if (Better(e, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), Better);
      heap_.back() = e;
      std::push_heap(heap_.begin(), heap_.end(), Better);
    }
  }
  const std::vector<Entry>& entries() const { return heap_; }

 private:
  size_t k_ = 0;
  std::vector<Entry> heap_;
};

}  // namespace

std::vector<float> HalfSquaredNorms(const float* base, size_t nb, size_t dim) {
  std::vector<float> out(nb);
  for (size_t i = 0; i < nb; ++i) {
    const float* row = base + i * dim;
    float s = 0;
    for (size_t j = 0; j < dim; ++j) s += row[j] * row[j];
    out[i] = 0.5f * s;
  }
  return out;
}

void BlasTopK(const float* base, size_t nb, const float* half_norms, const float* queries,
              size_t nq, size_t dim, Metric metric, size_t k, int64_t* out_ids,
              float* out_scores) {
  const bool l2 = metric == Metric::kL2;
  const size_t blocks = (nb + kBaseBlock - 1) / kBaseBlock;
  const int threads =
      static_cast<int>(std::max<size_t>(1, std::min<size_t>(omp_get_max_threads(), blocks)));
  for (size_t q0 = 0; q0 < nq; q0 += kQueryBlock) {
    const size_t n = std::min(kQueryBlock, nq - q0);
    // tops[t * n + i]: thread t's list for query q0 + i.
    std::vector<TopK> tops(static_cast<size_t>(threads) * n);
#pragma omp parallel num_threads(threads)
    {
      const size_t t = static_cast<size_t>(omp_get_thread_num());
      const size_t nt = static_cast<size_t>(omp_get_num_threads());
      TopK* mine = tops.data() + t * n;
      for (size_t i = 0; i < n; ++i) mine[i].Reset(k);
      std::vector<float> scores(n * kBaseBlock);
      // Blocks t, t + nt, ...: each thread its share of the base.
      for (size_t b = t; b < blocks; b += nt) {
        const size_t b0 = b * kBaseBlock;
        const size_t rows = std::min(kBaseBlock, nb - b0);
        // Inside a parallel region OpenBLAS runs on the calling thread.
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(n),
                    static_cast<int>(rows), static_cast<int>(dim), 1.0f, queries + q0 * dim,
                    static_cast<int>(dim), base + b0 * dim, static_cast<int>(dim), 0.0f,
                    scores.data(), static_cast<int>(rows));
        for (size_t i = 0; i < n; ++i) {
          const float* row = scores.data() + i * rows;
          TopK& top = mine[i];
          float threshold = top.threshold();
          for (size_t j = 0; j < rows; ++j) {
            // L2: a larger q.b - ||b||^2 / 2 is nearer.
            const float s = l2 ? row[j] - half_norms[b0 + j] : row[j];
            if (s >= threshold) {
              top.Push(s, static_cast<int64_t>(b0 + j));
              threshold = top.threshold();
            }
          }
        }
      }
    }
    // Merge the threads' lists and write best first.
    std::vector<Entry> merged;
    for (size_t i = 0; i < n; ++i) {
      merged.clear();
      for (int t = 0; t < threads; ++t) {
        const auto& e = tops[static_cast<size_t>(t) * n + i].entries();
        merged.insert(merged.end(), e.begin(), e.end());
      }
      const size_t keep = std::min(k, merged.size());
      std::partial_sort(merged.begin(), merged.begin() + keep, merged.end(), Better);
      const size_t q = q0 + i;
      float query_norm = 0;
      if (l2) {
        const float* qv = queries + q * dim;
        for (size_t j = 0; j < dim; ++j) query_norm += qv[j] * qv[j];
      }
      for (size_t j = 0; j < k; ++j) {
        if (j < keep) {
          out_ids[q * k + j] = merged[j].second;
          // ||q - b||^2 = ||q||^2 - 2 (q.b - ||b||^2 / 2), never below 0.
          out_scores[q * k + j] =
              l2 ? std::max(0.0f, query_norm - 2.0f * merged[j].first) : merged[j].first;
        } else {
          out_ids[q * k + j] = -1;
          out_scores[q * k + j] = l2 ? std::numeric_limits<float>::infinity()
                                     : -std::numeric_limits<float>::infinity();
        }
      }
    }
  }
}

}  // namespace mnemo::index
