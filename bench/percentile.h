// The p-quantile of latency samples by nearest rank, as the latency
// benchmarks report p50 / p99 (bench_sdk_latency, bench_memory, bench_soak).
#ifndef MNEMO_BENCH_PERCENTILE_H_
#define MNEMO_BENCH_PERCENTILE_H_

#include <algorithm>
#include <cstddef>
#include <vector>

namespace mnemo::bench {

// p in [0, 1]; 0 for no samples.
inline double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5))];
}

}  // namespace mnemo::bench

#endif  // MNEMO_BENCH_PERCENTILE_H_
