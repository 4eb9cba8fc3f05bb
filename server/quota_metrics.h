// The quota gauges of /metrics, per namespace and resource (bytes, chunks,
// kv_bytes: db/quota.h):
//   mnemo_namespace_quota_limit{namespace,resource}  the limit, only when set
//   mnemo_namespace_quota_usage{namespace,resource}  what the quota counts
// Filled from the NamespaceInfo that StoreMetrics reads at each scrape.
#ifndef MNEMO_SERVER_QUOTA_METRICS_H_
#define MNEMO_SERVER_QUOTA_METRICS_H_

#include <vector>

#include "db/store.h"
#include "prometheus/metric_family.h"

namespace mnemo::server {

class QuotaMetrics {
 public:
  QuotaMetrics();

  // Adds `info`'s usage (all three resources) and its limits that are set.
  void Add(const db::NamespaceInfo& info);
  // Moves both families to the end of `out`; once, after the last Add.
  void MoveTo(std::vector<prometheus::MetricFamily>& out);

 private:
  prometheus::MetricFamily limit_;
  prometheus::MetricFamily usage_;
};

}  // namespace mnemo::server

#endif  // MNEMO_SERVER_QUOTA_METRICS_H_
