// Issue 11's goals, measured from bench_search's cases: one line per goal at
// the end of the run, "goal <name> <measured> <target>", where a goal holds
// when measured >= target.
#ifndef MNEMO_BENCH_GOALS_H_
#define MNEMO_BENCH_GOALS_H_

#include <string>
#include <vector>

#include "bench/ef_sweep.h"
#include "bench/search_modes.h"
#include "nlohmann/json.hpp"

namespace mnemo::bench {

struct Goal {
  std::string name;  // e.g. "served_vs_hnswlib_at_0.95_aniso"
  double measured = 0;
  double target = 0;
  std::string note;  // how it was measured, or why it is 0
};

// The goals of every dataset with cases in `cases`, in dataset order:
//   served_vs_hnswlib_at_0.90_<ds>, ..._at_0.95_<ds> (target 1.0): QPS of
//     gRPC with the most clients (16 by default) / hnswlib in-process, both
//     at that recall (QpsAtRecall, ef_sweep.h); 0 when either never reaches
//     it;
//   build_vs_hnswlib_<ds> (0.8): vectors/s of the mnemo upsert ingest (gRPC
//     when it ingested itself, --grpc-ingest, else mnemo-store's Upsert) /
//     hnswlib's parallel addPoint build;
//   recall_at_default_ef_<ds> (0.95): mnemo-store's recall@k when no ef is
//     passed (gRPC's when the store did not run);
//   flat_vs_sgemm_<ds> (1.0): mnemo-store's batched Flat QPS / the sgemm +
//     top-k baseline's at the same batch.
// A goal whose engines did not run is left out (listed in `skipped`).
std::vector<Goal> ComputeGoals(const std::vector<CaseResult>& cases,
                               std::vector<std::string>* skipped);

// The goal lines (notes after them, as "# ..." lines).
void PrintGoals(const std::vector<Goal>& goals, const std::vector<std::string>& skipped);

nlohmann::json GoalsJson(const std::vector<Goal>& goals);

}  // namespace mnemo::bench

#endif  // MNEMO_BENCH_GOALS_H_
