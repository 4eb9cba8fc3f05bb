// The HNSW case of bench_search: one graph per engine at the same M and
// efConstruction, each searched at every efSearch of the sweep (a recall/QPS
// curve), and each build timed (vectors/s).
#ifndef MNEMO_BENCH_EF_SWEEP_H_
#define MNEMO_BENCH_EF_SWEEP_H_

#include <optional>
#include <string>
#include <vector>

#include "bench/bench_backend.h"
#include "bench/search_modes.h"
#include "nlohmann/json.hpp"

namespace mnemo::bench {

// The namespace factory string of mnemo's graph engine at these parameters,
// "HNSW<M>,efC=<efConstruction>", and the one the engine took before it
// parsed efC ("HNSW<M>", built at FAISS's efConstruction 40), which the
// backends fall back to when the first is rejected.
std::string MnemoGraphFactory(int m, int ef_construction);
std::string MnemoGraphFallbackFactory(int m);

// Builds every engine of flags.engines that searches a graph (hnswlib,
// faiss, mnemo-store, grpc) with M = m and flags.ef_construction, then runs
// the sweep: every ef of flags.ef_sweep, batched (flags.batch), the mnemo
// engines also at ef 0 (their default), gRPC once per flags.clients.
// Ratios are to hnswlib's QPS at the same ef. mnemo's data directory is
// removed at the end.
CaseResult RunGraphCase(const Dataset& ds, int m, const SearchBenchFlags& flags);

// QPS of one curve (its modes with an explicit ef; the default-ef point is
// left out) at recall@k `recall`. Points are taken in ef order; between the
// last point below the recall and the first at or above it, log(QPS) is
// interpolated linearly in recall. When the lowest ef already reaches the
// recall, that point's QPS is the answer (no extrapolation to lower ef, which
// understates the curve). nullopt when no point reaches it. `how`, when
// given, gets which points were used.
std::optional<double> QpsAtRecall(std::vector<ModeResult> curve, double recall,
                                  std::string* how = nullptr);

// The explicit-ef points of one engine x clients of a graph case, without
// failed ones: the curve QpsAtRecall reads.
std::vector<ModeResult> Curve(const CaseResult& c, const std::string& mode, int clients);

// QPS of each curve of a graph case at recall 0.90 and 0.95, as JSON
// ({"engine": "grpc", "clients": 16, "qps_at_0.90": x or null, ...}).
nlohmann::json KeyPointsJson(const CaseResult& c);

// The builds (seconds, vectors/s, ratio to hnswlib), the curves, and each
// curve's QPS at recall 0.90 and 0.95.
void PrintGraphCase(const CaseResult& c, const SearchBenchFlags& flags);

}  // namespace mnemo::bench

#endif  // MNEMO_BENCH_EF_SWEEP_H_
