// QuotaMetrics: a namespace's quota limits and usage as two gauge families.
#include "server/quota_metrics.h"

#include <cstdint>
#include <string>
#include <utility>

namespace mnemo::server {

namespace {

void Gauge(prometheus::MetricFamily& family, const std::string& ns, const char* resource,
           uint64_t value) {
  prometheus::ClientMetric m;
  // In label-name order, as the text format lists them.
  m.label = {{"namespace", ns}, {"resource", resource}};
  m.gauge.value = static_cast<double>(value);
  family.metric.push_back(std::move(m));
}

}  // namespace

QuotaMetrics::QuotaMetrics() {
  limit_.name = "mnemo_namespace_quota_limit";
  limit_.help = "The namespace's quota limit of the resource (only limits that are set)";
  limit_.type = prometheus::MetricType::Gauge;
  usage_.name = "mnemo_namespace_quota_usage";
  usage_.help = "What the namespace holds of the resource, as its quota counts it";
  usage_.type = prometheus::MetricType::Gauge;
}

void QuotaMetrics::Add(const db::NamespaceInfo& info) {
  const std::string& ns = info.config.name;
  const db::NamespaceQuota& q = info.config.quota;
  // 0 = unlimited: no limit sample.
  if (q.max_bytes != 0) Gauge(limit_, ns, "bytes", q.max_bytes);
  if (q.max_chunks != 0) Gauge(limit_, ns, "chunks", q.max_chunks);
  if (q.max_kv_bytes != 0) Gauge(limit_, ns, "kv_bytes", q.max_kv_bytes);
  Gauge(usage_, ns, "bytes", info.usage.bytes);
  Gauge(usage_, ns, "chunks", info.usage.chunks);
  Gauge(usage_, ns, "kv_bytes", info.usage.kv_bytes);
}

void QuotaMetrics::MoveTo(std::vector<prometheus::MetricFamily>& out) {
  out.push_back(std::move(limit_));
  out.push_back(std::move(usage_));
}

}  // namespace mnemo::server
