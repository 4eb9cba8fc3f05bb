// Baseline: the same FAISS index the engine builds, used directly.
#include <chrono>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "bench/bench_backend.h"
#include "faiss/Index.h"
#include "faiss/IndexHNSW.h"
#include "faiss/impl/FaissException.h"
#include "faiss/index_factory.h"

namespace mnemo::bench {
namespace {

class RawFaissBackend final : public Backend {
 public:
  RawFaissBackend(std::unique_ptr<faiss::Index> index, int ef_search)
      : index_(std::move(index)) {
    // HNSW takes efSearch per call, as the engine passes it.
    if (dynamic_cast<faiss::IndexHNSW*>(index_.get()) != nullptr) {
      hnsw_params_ = std::make_unique<faiss::SearchParametersHNSW>();
      hnsw_params_->efSearch = ef_search;
    }
  }

  absl::Status Search(int client, const float* queries, size_t n, int k,
                      int64_t* ids) override {
    std::vector<float> distances(n * static_cast<size_t>(k));
    try {
      index_->search(static_cast<faiss::Index::idx_t>(n), queries, k, distances.data(), ids,
                     hnsw_params_.get());
    } catch (const faiss::FaissException& e) {
      return absl::InternalError(absl::StrCat("faiss search: ", e.what()));
    }
    return absl::OkStatus();
  }

 private:
  std::unique_ptr<faiss::Index> index_;
  std::unique_ptr<faiss::SearchParametersHNSW> hnsw_params_;  // null unless HNSW
};

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> MakeRawFaissBackend(const Dataset& dataset,
                                                             const BackendConfig& config,
                                                             IngestStats* stats) {
  const faiss::MetricType metric = dataset.distance == Distance::kL2
                                       ? faiss::METRIC_L2
                                       : faiss::METRIC_INNER_PRODUCT;
  try {
    std::unique_ptr<faiss::Index> index(
        faiss::index_factory(static_cast<int>(dataset.dim), config.factory.c_str(), metric));
    const auto start = std::chrono::steady_clock::now();
    if (!index->is_trained) {
      index->train(static_cast<faiss::Index::idx_t>(dataset.num_base), dataset.base.data());
    }
    index->add(static_cast<faiss::Index::idx_t>(dataset.num_base), dataset.base.data());
    stats->load_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return std::make_unique<RawFaissBackend>(std::move(index), config.ef_search);
  } catch (const faiss::FaissException& e) {
    return absl::InvalidArgumentError(absl::StrCat("faiss ", config.factory, ": ", e.what()));
  }
}

}  // namespace mnemo::bench
