#include "index/exact_search.h"

#include <cstdlib>
#include <exception>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "faiss/utils/distances.h"
#include "kernels/exact_topk.h"

namespace mnemo::index {
namespace {

absl::Status CheckArgs(const float* base, size_t nb, const float* queries,
                       size_t nq, size_t dim, int k, const int64_t* out_ids,
                       const float* out_scores) {
  if (k < 1) return absl::InvalidArgumentError("k must be >= 1");
  if (dim == 0) return absl::InvalidArgumentError("dim must be >= 1");
  if ((nb > 0 && base == nullptr) || (nq > 0 && queries == nullptr) ||
      (nq > 0 && (out_ids == nullptr || out_scores == nullptr))) {
    return absl::InvalidArgumentError("null buffer");
  }
  return absl::OkStatus();
}

class CpuExactSearch final : public ExactSearchBackend {
 public:
  absl::Status Search(const float* base, size_t nb, const float* queries,
                      size_t nq, size_t dim, Metric metric, int k,
                      int64_t* out_ids, float* out_scores) const override {
    absl::Status args =
        CheckArgs(base, nb, queries, nq, dim, k, out_ids, out_scores);
    if (!args.ok()) return args;
    if (nq == 0) return absl::OkStatus();
    const bool l2 = metric == Metric::kL2;
    try {
      if (l2) {
        faiss::knn_L2sqr(queries, base, dim, nq, nb, static_cast<size_t>(k),
                         out_scores, out_ids);
      } else {
        faiss::knn_inner_product(queries, base, dim, nq, nb,
                                 static_cast<size_t>(k), out_scores, out_ids);
      }
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat("exact search: ", e.what()));
    }
    // FAISS pads with +-FLT_MAX; mnemo pads with +-inf.
    const float pad = l2 ? std::numeric_limits<float>::infinity()
                         : -std::numeric_limits<float>::infinity();
    for (size_t i = 0; i < nq * static_cast<size_t>(k); ++i) {
      if (out_ids[i] < 0) {
        out_ids[i] = -1;
        out_scores[i] = pad;
      }
    }
    return absl::OkStatus();
  }

  std::string name() const override { return "cpu"; }
};

class CudaExactSearch final : public ExactSearchBackend {
 public:
  absl::Status Search(const float* base, size_t nb, const float* queries,
                      size_t nq, size_t dim, Metric metric, int k,
                      int64_t* out_ids, float* out_scores) const override {
    absl::Status args =
        CheckArgs(base, nb, queries, nq, dim, k, out_ids, out_scores);
    if (!args.ok()) return args;
    kernels::ExactTopKArgs kargs;
    kargs.base = base;
    kargs.nb = nb;
    kargs.queries = queries;
    kargs.nq = nq;
    kargs.dim = dim;
    kargs.score = metric == Metric::kL2 ? kernels::ExactScore::kL2
                                        : kernels::ExactScore::kInnerProduct;
    kargs.k = k;
    kargs.out_ids = out_ids;
    kargs.out_scores = out_scores;
    return kernels::ExactTopK(kargs);
  }

  std::string name() const override { return "cuda"; }
};

}  // namespace

std::unique_ptr<ExactSearchBackend> MakeCpuExactSearch() {
  return std::make_unique<CpuExactSearch>();
}

absl::StatusOr<std::unique_ptr<ExactSearchBackend>> MakeCudaExactSearch() {
  absl::Status available = kernels::CudaDeviceAvailable();
  if (!available.ok()) return available;
  return std::unique_ptr<ExactSearchBackend>(new CudaExactSearch());
}

const ExactSearchBackend* DefaultExactSearch() {
  // Chosen once; leaked on purpose so it outlives every index at exit.
  static const ExactSearchBackend* const backend = []() -> const
      ExactSearchBackend* {
        const char* device = std::getenv("MNEMO_DEVICE");
        if (device == nullptr || std::string(device) != "cuda") return nullptr;
        absl::StatusOr<std::unique_ptr<ExactSearchBackend>> cuda =
            MakeCudaExactSearch();
        if (!cuda.ok()) return nullptr;
        return cuda->release();
      }();
  return backend;
}

}  // namespace mnemo::index
