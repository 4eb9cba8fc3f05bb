// EfSearchGate: a per-call HNSW efSearch on a shared graph (see
// ef_search_gate.h).
#include "index/ef_search_gate.h"

namespace mnemo::index {

EfSearchGate::Pass EfSearchGate::Enter(int* ef_slot, int ef) {
  absl::MutexLock lock(&mu_);
  // Fast path: the value is in force and nobody waits for a switch.
  const bool join = active_ > 0 && current_ == ef && waiting_ == 0;
  if (!join) {
    ++waiting_;
    // Whoever finds the graph idle may set its value; while anyone waits,
    // only the idle state admits, so a waiting switch is never overtaken
    // forever by searches of the value in force.
    mu_.Await(absl::Condition(
        +[](int* active) { return *active == 0; }, &active_));
    --waiting_;
    if (current_ != ef) {
      *ef_slot = ef;
      current_ = ef;
    }
  }
  ++active_;
  return Pass(this);
}

void EfSearchGate::Leave() {
  absl::MutexLock lock(&mu_);
  --active_;
}

}  // namespace mnemo::index
