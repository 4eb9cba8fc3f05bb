// Mode (b): the mnemo engine in-process through db::Store.
#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "bench/bench_backend.h"
#include "common/status_macros.h"
#include "db/store.h"

namespace mnemo::bench {
namespace {

class StoreBackend final : public Backend {
 public:
  StoreBackend(std::unique_ptr<db::Store> store, std::string ns, size_t dim)
      : store_(std::move(store)), ns_(std::move(ns)), dim_(dim) {}

  ~StoreBackend() override {
    // Close saves the index snapshot that mnemod loads from the same dir.
    IgnoreError(store_->Close());
  }

  absl::Status Search(int client, const float* queries, size_t n, int k, int ef,
                      int64_t* ids) override {
    db::SearchOptions options;
    options.k = k;
    options.params.hnsw_ef_search = static_cast<uint32_t>(ef);  // 0 = engine default
    ASSIGN_OR_RETURN(auto hits,
                     store_->Search(ns_, absl::MakeConstSpan(queries, n * dim_), options));
    if (hits.size() != n) {
      return absl::InternalError(absl::StrCat("store returned ", hits.size(), " lists for ", n,
                                              " queries"));
    }
    std::fill(ids, ids + n * static_cast<size_t>(k), int64_t{-1});
    for (size_t q = 0; q < n; ++q) {
      const size_t m = std::min(hits[q].size(), static_cast<size_t>(k));
      for (size_t j = 0; j < m; ++j) {
        int64_t id = -1;
        if (!absl::SimpleAtoi(hits[q][j].id, &id)) {
          return absl::InternalError(absl::StrCat("unexpected hit id ", hits[q][j].id));
        }
        ids[q * k + j] = id;
      }
    }
    return absl::OkStatus();
  }

 private:
  std::unique_ptr<db::Store> store_;
  std::string ns_;
  size_t dim_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> MakeStoreBackend(const Dataset& dataset,
                                                          const BackendConfig& config,
                                                          const std::string& data_dir,
                                                          IngestStats* stats) {
  db::StoreOptions options;
  options.sync_writes = false;  // bulk load; durability is not what is measured
  ASSIGN_OR_RETURN(std::unique_ptr<db::Store> store, db::Store::Open(options, data_dir));

  db::NamespaceConfig ns;
  ns.name = config.namespace_name;
  ns.dim = static_cast<uint32_t>(dataset.dim);
  ns.metric = dataset.distance == Distance::kL2 ? db::Metric::kL2 : db::Metric::kInnerProduct;
  ns.index_factory = config.mnemo_factory;
  ns.description = absl::StrCat("bench_search ", dataset.name);
  absl::Status created = store->CreateNamespace(ns).status();
  if (absl::IsInvalidArgument(created) && !config.mnemo_fallback_factory.empty()) {
    stats->note = absl::StrCat("engine rejected \"", config.mnemo_factory, "\", built \"",
                               config.mnemo_fallback_factory, "\" (its own efConstruction)");
    ns.index_factory = config.mnemo_fallback_factory;
    created = store->CreateNamespace(ns).status();
  }
  RETURN_IF_ERROR(created);
  stats->factory = ns.index_factory;

  const auto start = std::chrono::steady_clock::now();
  std::vector<db::Chunk> chunks;
  for (size_t first = 0; first < dataset.num_base; first += config.upsert_batch) {
    const size_t n = std::min(config.upsert_batch, dataset.num_base - first);
    chunks.resize(n);
    for (size_t i = 0; i < n; ++i) {
      chunks[i].id = absl::StrCat(first + i);
      const float* v = dataset.base.data() + (first + i) * dataset.dim;
      chunks[i].vector.assign(v, v + dataset.dim);
    }
    auto written = store->Upsert(ns.name, {}, chunks);
    if (!written.ok()) {
      return Annotate(written.status(), absl::StrCat("upsert at ", first));
    }
  }
  stats->load_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // The store snapshots its index in the background every
  // snapshot_every_ops changes; doing it now keeps that work out of the
  // timed searches (it is reported on its own).
  const auto checkpoint_start = std::chrono::steady_clock::now();
  RETURN_IF_ERROR(store->Checkpoint("").status());
  stats->checkpoint_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - checkpoint_start)
          .count();
  return std::make_unique<StoreBackend>(std::move(store), ns.name, dataset.dim);
}

}  // namespace mnemo::bench
