// EfSearchGate: makes a per-call HNSW efSearch take effect on a graph that
// concurrent searches share.
//
// FAISS 1.7.3's HNSW graph search reads the index's own `hnsw.efSearch` and
// ignores SearchParametersHNSW::efSearch, so the only way to search with a
// per-call value is to write it into the shared index. The gate serialises
// those writes against the searches reading them: any number of searches
// with the value in force run together; a search asking for another value
// waits until they have left, then switches the value and runs. While a
// search waits for a switch, newcomers wait too, so no value starves.
//
// Thread safety: Enter may be called from any number of threads; a Pass
// must be released (destroyed) by the thread that holds it before the gate
// is destroyed.
#ifndef MNEMO_INDEX_EF_SEARCH_GATE_H_
#define MNEMO_INDEX_EF_SEARCH_GATE_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace mnemo::index {

class EfSearchGate {
 public:
  // Held while a search runs with its efSearch in force; leaving lets a
  // search with another value switch it.
  class [[nodiscard]] Pass {
   public:
    Pass(const Pass&) = delete;
    Pass& operator=(const Pass&) = delete;
    Pass(Pass&& other) noexcept : gate_(other.gate_) { other.gate_ = nullptr; }
    Pass& operator=(Pass&&) = delete;
    ~Pass() {
      if (gate_ != nullptr) gate_->Leave();
    }

   private:
    friend class EfSearchGate;
    explicit Pass(EfSearchGate* gate) : gate_(gate) {}
    EfSearchGate* gate_;
  };

  EfSearchGate() = default;
  EfSearchGate(const EfSearchGate&) = delete;
  EfSearchGate& operator=(const EfSearchGate&) = delete;

  // Waits until `ef` can be in force, writes it to `*ef_slot` (the index's
  // efSearch field, which only the gate writes) when it differs, and returns
  // the pass that keeps it there.
  Pass Enter(int* ef_slot, int ef);

 private:
  void Leave();

  absl::Mutex mu_;
  int active_ ABSL_GUARDED_BY(mu_) = 0;    // searches holding a pass
  int waiting_ ABSL_GUARDED_BY(mu_) = 0;   // searches waiting to enter
  int current_ ABSL_GUARDED_BY(mu_) = -1;  // efSearch in force (-1: none yet)
};

}  // namespace mnemo::index

#endif  // MNEMO_INDEX_EF_SEARCH_GATE_H_
