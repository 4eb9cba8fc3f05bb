// Built without CUDA: the GPU cluster attention is unavailable.
#include "kernels/cluster_attention.h"

namespace mnemo::kernels {
namespace {

absl::Status NoCuda() {
  return absl::UnavailableError("mnemo was built without CUDA (MNEMO_CUDA=OFF)");
}

}  // namespace

absl::Status ScoreCentroids(const CentroidScoresArgs&) { return NoCuda(); }

absl::Status AttendGatheredClusters(const GatheredClusterAttentionArgs&) { return NoCuda(); }

}  // namespace mnemo::kernels
