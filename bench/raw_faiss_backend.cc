// Baseline: FAISS used directly, the library the engine wraps.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/bench_backend.h"
#include "faiss/Index.h"
#include "faiss/IndexHNSW.h"
#include "faiss/impl/FaissException.h"
#include "faiss/index_factory.h"

namespace mnemo::bench {
namespace {

// Not safe for concurrent callers: an HNSW search writes the graph's
// efSearch (the bench drives this backend from one caller).
class RawFaissBackend final : public Backend {
 public:
  explicit RawFaissBackend(std::unique_ptr<faiss::Index> index)
      : index_(std::move(index)), hnsw_(dynamic_cast<faiss::IndexHNSW*>(index_.get())) {
    if (hnsw_ != nullptr) default_ef_ = hnsw_->hnsw.efSearch;
  }

  absl::Status Search(int client, const float* queries, size_t n, int k, int ef,
                      int64_t* ids) override {
    std::vector<float> distances(n * static_cast<size_t>(k));
    try {
      // FAISS 1.7.3's HNSW search reads the graph's own efSearch and ignores
      // SearchParametersHNSW, so the value is set on the index per call.
      if (hnsw_ != nullptr) hnsw_->hnsw.efSearch = ef > 0 ? ef : default_ef_;
      index_->search(static_cast<faiss::Index::idx_t>(n), queries, k, distances.data(), ids);
    } catch (const faiss::FaissException& e) {
      return absl::InternalError(absl::StrCat("faiss search: ", e.what()));
    }
    return absl::OkStatus();
  }

 private:
  std::unique_ptr<faiss::Index> index_;
  faiss::IndexHNSW* hnsw_;  // index_ when it is HNSW, else null
  int default_ef_ = 16;     // FAISS's own default efSearch
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
    stats->factory = config.factory;
    if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(index.get()); hnsw != nullptr) {
      hnsw->hnsw.efConstruction = config.ef_construction;
      stats->factory = absl::StrCat(config.factory, " efConstruction ", config.ef_construction);
    }
    const auto start = std::chrono::steady_clock::now();
    if (!index->is_trained) {
      index->train(static_cast<faiss::Index::idx_t>(dataset.num_base), dataset.base.data());
    }
    index->add(static_cast<faiss::Index::idx_t>(dataset.num_base), dataset.base.data());
    stats->load_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return std::make_unique<RawFaissBackend>(std::move(index));
  } catch (const faiss::FaissException& e) {
    return absl::InvalidArgumentError(absl::StrCat("faiss ", config.factory, ": ", e.what()));
  }
}

}  // namespace mnemo::bench
