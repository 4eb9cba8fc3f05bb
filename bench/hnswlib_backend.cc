// Peer: hnswlib (Debian's libhnswlib-dev 0.6.2) in-process, as a user of its
// Python binding gets it: HierarchicalNSW<float>, addPoint from `threads`
// threads over one shared counter (the binding's ParallelFor), searchKnn per
// query over a batch on the same number of threads.
//
// Compiled with the project's default flags (no -march): hnswlib's SIMD
// choice is made at compile time (SSE on baseline x86-64, AVX/AVX-512 only
// when the compiler targets them), which is the Debian build a user runs.
//
// hnswlib.h defines non-inline functions and globals (cpuid, AVXCapable,
// L2SqrSIMD16Ext, ...) and class templates whose code depends on those
// compile flags. It is included inside an unnamed namespace so that all of it
// has internal linkage here: no clash, and no ODR mix-up, with another
// translation unit of the same binary that includes hnswlib with other
// flags (the engine may). The standard headers it includes are included
// first, so that their include guards keep them out of that namespace.
#include <assert.h>
#include <cpuid.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <x86intrin.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <chrono>
#include <cmath>
#include <deque>
#include <exception>
#include <fstream>
#include <iostream>
#include <list>
#include <memory>
#include <mutex>
#include <queue>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/bench_backend.h"

namespace mnemo::bench {
namespace {
#include <hnswlib/hnswlib.h>  // NOLINT(build/include_order): see the file comment
}  // namespace

namespace {

// Runs fn(i) for i in [begin, end) on `threads` threads that take indices
// from one atomic counter, as hnswlib's python_bindings ParallelFor does.
// The first exception stops the others and is rethrown.
template <typename Fn>
void ParallelFor(size_t begin, size_t end, int threads, Fn fn) {
  if (threads <= 1 || end - begin <= 1) {
    for (size_t i = begin; i < end; ++i) fn(i);
    return;
  }
  std::atomic<size_t> next{begin};
  std::exception_ptr error;
  std::mutex error_mu;
  auto work = [&] {
    while (true) {
      const size_t i = next.fetch_add(1);
      if (i >= end) break;
      try {
        fn(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mu);
        if (!error) error = std::current_exception();
        next = end;
        break;
      }
    }
  };
  std::vector<std::thread> pool;
  const size_t n = std::min<size_t>(static_cast<size_t>(threads), end - begin);
  pool.reserve(n);
  for (size_t t = 0; t < n; ++t) pool.emplace_back(work);
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

// Not safe for concurrent callers: setEf writes the index (the bench drives
// this backend from one caller, which spreads each batch over `threads`).
class HnswlibBackend final : public Backend {
 public:
  HnswlibBackend(std::unique_ptr<hnswlib::SpaceInterface<float>> space,
                 std::unique_ptr<hnswlib::HierarchicalNSW<float>> index, size_t dim, int threads)
      : space_(std::move(space)), index_(std::move(index)), dim_(dim), threads_(threads) {}

  absl::Status Search(int client, const float* queries, size_t n, int k, int ef,
                      int64_t* ids) override {
    index_->setEf(ef > 0 ? static_cast<size_t>(ef) : kDefaultEf);
    try {
      ParallelFor(0, n, threads_, [&](size_t q) {
        auto top = index_->searchKnn(queries + q * dim_, static_cast<size_t>(k));
        int64_t* row = ids + q * static_cast<size_t>(k);
        std::fill(row, row + k, int64_t{-1});
        // The queue pops the worst first.
        for (size_t j = top.size(); j > 0; --j) {
          row[j - 1] = static_cast<int64_t>(top.top().second);
          top.pop();
        }
      });
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat("hnswlib search: ", e.what()));
    }
    return absl::OkStatus();
  }

 private:
  static constexpr size_t kDefaultEf = 10;                 // hnswlib's own default
  std::unique_ptr<hnswlib::SpaceInterface<float>> space_;  // outlives index_
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> index_;
  size_t dim_;
  int threads_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> MakeHnswlibBackend(const Dataset& dataset,
                                                            const BackendConfig& config,
                                                            IngestStats* stats) {
  if (config.hnsw_m < 2 || config.ef_construction < 1) {
    return absl::InvalidArgumentError("hnswlib needs M >= 2 and efConstruction >= 1");
  }
  std::unique_ptr<hnswlib::SpaceInterface<float>> space;
  if (dataset.distance == Distance::kL2) {
    space = std::make_unique<hnswlib::L2Space>(dataset.dim);
  } else {
    space = std::make_unique<hnswlib::InnerProductSpace>(dataset.dim);
  }
  stats->factory =
      absl::StrCat("hnswlib M ", config.hnsw_m, " efConstruction ", config.ef_construction);
  try {
    const auto start = std::chrono::steady_clock::now();
    auto index = std::make_unique<hnswlib::HierarchicalNSW<float>>(
        space.get(), dataset.num_base, static_cast<size_t>(config.hnsw_m),
        static_cast<size_t>(config.ef_construction));
    // As the binding does: the entry point first, the rest in parallel.
    if (dataset.num_base > 0) index->addPoint(dataset.base.data(), 0);
    ParallelFor(1, dataset.num_base, config.threads,
                [&](size_t i) { index->addPoint(dataset.base.data() + i * dataset.dim, i); });
    stats->load_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return std::make_unique<HnswlibBackend>(std::move(space), std::move(index), dataset.dim,
                                            config.threads);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("hnswlib build: ", e.what()));
  }
}

}  // namespace mnemo::bench
