// Prometheus metrics of what mnemod holds, read from the store (and the KV
// arena) when Prometheus scrapes: per namespace its chunks, documents,
// approximate bytes, index state, damage (mnemo_namespace_damaged) and
// quota limits and usage (server/quota_metrics.h); per namespace with a KV
// model its KV chunks, blocks, tokens, stored bytes, pins, evictions and
// expiries; and
// the arena's occupancy, hits, misses, evictions, sessions and leases.
#ifndef MNEMO_SERVER_STORE_METRICS_H_
#define MNEMO_SERVER_STORE_METRICS_H_

#include <vector>

#include "db/store.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"
#include "server/kv_arena.h"

namespace mnemo::server {

class StoreMetrics final : public prometheus::Collectable {
 public:
  // Borrows both (arena may be null: no hot tier); they must outlive the
  // endpoint this is registered with.
  StoreMetrics(db::Store* store, KvArena* arena) : store_(store), arena_(arena) {}

  // Thread-safe (the store and the arena are). A namespace dropped while
  // this runs is left out.
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  db::Store* const store_;
  KvArena* const arena_;
};

}  // namespace mnemo::server

#endif  // MNEMO_SERVER_STORE_METRICS_H_
