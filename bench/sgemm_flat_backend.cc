// Baseline for exact search: what a user with OpenBLAS writes. Scores of a
// block of queries against a block of base vectors come from one
// cblas_sgemm; each query row then keeps its top-k in a small heap. L2 uses
// ||b||^2 - 2 q.b (the query's own norm does not change the order).
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <utility>
#include <vector>

#include "bench/bench_backend.h"

namespace mnemo::bench {
namespace {

// Base rows per sgemm: a block of scores (queries x kBaseBlock floats) stays
// in L2/L3 while the top-k scan reads it.
constexpr size_t kBaseBlock = 4096;
// Query rows per sgemm, the FAISS block size for the same job.
constexpr size_t kQueryBlock = 4096;

// Keeps the k best (largest) scores of a row; heap_ is a min-heap on score
// so its front is the worst kept entry.
class TopK {
 public:
  explicit TopK(size_t k) : k_(k) { heap_.reserve(k); }

  void Push(float score, int64_t id) {
    if (heap_.size() < k_) {
      heap_.emplace_back(score, id);
      std::push_heap(heap_.begin(), heap_.end(), Greater);
    } else if (score > heap_.front().first) {
      std::pop_heap(heap_.begin(), heap_.end(), Greater);
      heap_.back() = {score, id};
      std::push_heap(heap_.begin(), heap_.end(), Greater);
    }
  }

  // The worst kept score, -inf until k are kept.
  float Threshold() const {
    return heap_.size() < k_ ? -std::numeric_limits<float>::infinity() : heap_.front().first;
  }

  // Writes the ids best first, padded with -1, and empties the heap.
  void Drain(int64_t* out) {
    std::sort_heap(heap_.begin(), heap_.end(), Greater);  // best first
    for (size_t j = 0; j < k_; ++j) out[j] = j < heap_.size() ? heap_[j].second : -1;
    heap_.clear();
  }

 private:
  static bool Greater(const std::pair<float, int64_t>& a, const std::pair<float, int64_t>& b) {
    return a.first > b.first;
  }
  size_t k_;
  std::vector<std::pair<float, int64_t>> heap_;
};

// Not safe for concurrent callers (one score buffer); each call uses the
// calling thread's OpenMP team, in OpenBLAS and in the top-k loop.
class SgemmFlatBackend final : public Backend {
 public:
  SgemmFlatBackend(const Dataset& dataset, std::vector<float> half_norms)
      : base_(dataset.base.data()),
        num_base_(dataset.num_base),
        dim_(dataset.dim),
        l2_(dataset.distance == Distance::kL2),
        half_norms_(std::move(half_norms)) {}

  absl::Status Search(int client, const float* queries, size_t n, int k, int ef,
                      int64_t* ids) override {
    const size_t kk = static_cast<size_t>(k);
    for (size_t q0 = 0; q0 < n; q0 += kQueryBlock) {
      const size_t nq = std::min(kQueryBlock, n - q0);
      std::vector<TopK> tops(nq, TopK(kk));
      scores_.resize(nq * kBaseBlock);
      for (size_t b0 = 0; b0 < num_base_; b0 += kBaseBlock) {
        const size_t nb = std::min(kBaseBlock, num_base_ - b0);
        // scores (nq x nb) = Q (nq x d) * B^T (d x nb)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(nq),
                    static_cast<int>(nb), static_cast<int>(dim_), 1.0f, queries + q0 * dim_,
                    static_cast<int>(dim_), base_ + b0 * dim_, static_cast<int>(dim_), 0.0f,
                    scores_.data(), static_cast<int>(nb));
        const float* half_norms = l2_ ? half_norms_.data() + b0 : nullptr;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < nq; ++i) {
          const float* row = scores_.data() + i * nb;
          TopK& top = tops[i];
          float threshold = top.Threshold();
          for (size_t j = 0; j < nb; ++j) {
            // L2: larger q.b - ||b||^2 / 2 is nearer.
            const float s = half_norms != nullptr ? row[j] - half_norms[j] : row[j];
            if (s > threshold) {
              top.Push(s, static_cast<int64_t>(b0 + j));
              threshold = top.Threshold();
            }
          }
        }
      }
      for (size_t i = 0; i < nq; ++i) tops[i].Drain(ids + (q0 + i) * kk);
    }
    return absl::OkStatus();
  }

 private:
  const float* base_;  // the dataset's, which outlives the backend
  size_t num_base_;
  size_t dim_;
  bool l2_;
  std::vector<float> half_norms_;  // ||b||^2 / 2 per base row (L2 only)
  std::vector<float> scores_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> MakeSgemmFlatBackend(const Dataset& dataset,
                                                              const BackendConfig& config,
                                                              IngestStats* stats) {
  const auto start = std::chrono::steady_clock::now();
  std::vector<float> half_norms;
  if (dataset.distance == Distance::kL2) {
    half_norms.resize(dataset.num_base);
    for (size_t i = 0; i < dataset.num_base; ++i) {
      const float* b = dataset.base.data() + i * dataset.dim;
      float s = 0;
      for (size_t d = 0; d < dataset.dim; ++d) s += b[d] * b[d];
      half_norms[i] = 0.5f * s;
    }
  }
  stats->load_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  stats->factory = "cblas_sgemm + top-k";
  stats->note = "uses the dataset's base array in place";
  return std::make_unique<SgemmFlatBackend>(dataset, std::move(half_norms));
}

}  // namespace mnemo::bench
