// StoreMetrics: one scrape's families, built from Stats, GetKvStats and the
// arena's counters.
#include "server/store_metrics.h"

#include <string>
#include <utility>

#include "server/quota_metrics.h"

namespace mnemo::server {

namespace {

prometheus::MetricFamily Family(std::string name, std::string help, prometheus::MetricType type) {
  prometheus::MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

void Add(prometheus::MetricFamily& f, std::vector<prometheus::ClientMetric::Label> labels,
         double value) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  if (f.type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  f.metric.push_back(std::move(m));
}

}  // namespace

std::vector<prometheus::MetricFamily> StoreMetrics::Collect() const {
  using prometheus::MetricType;
  auto chunks = Family("mnemo_namespace_chunks", "Chunks stored in the namespace", MetricType::Gauge);
  auto documents =
      Family("mnemo_namespace_documents", "Documents stored in the namespace", MetricType::Gauge);
  auto bytes = Family("mnemo_namespace_bytes",
                      "Approximate bytes of the namespace's records on disk", MetricType::Gauge);
  auto trained = Family("mnemo_namespace_index_trained",
                        "1 when the namespace's index is trained (0: exact search stands in)",
                        MetricType::Gauge);
  auto damaged = Family("mnemo_namespace_damaged",
                         "1 when the namespace's data was found damaged at start (its calls "
                         "answer DATA_LOSS until it is dropped or the store restored)",
                         MetricType::Gauge);
  auto kv_chunks = Family("mnemo_kv_chunks", "Chunks holding KV", MetricType::Gauge);
  auto kv_blocks = Family("mnemo_kv_blocks", "Stored (chunk, layer) KV blocks", MetricType::Gauge);
  auto kv_tokens = Family("mnemo_kv_tokens", "Tokens of stored KV", MetricType::Gauge);
  auto kv_bytes = Family("mnemo_kv_stored_bytes", "Encoded bytes of stored KV", MetricType::Gauge);
  auto kv_pinned = Family("mnemo_kv_pinned_chunks", "Chunks whose KV is pinned", MetricType::Gauge);
  auto kv_evicted = Family("mnemo_kv_evictions_total",
                           "Chunks' KV evicted for room since the store was opened",
                           MetricType::Counter);
  auto kv_expired = Family("mnemo_kv_expiries_total",
                           "Chunks' KV removed after expiry since the store was opened",
                           MetricType::Counter);
  QuotaMetrics quota;
  if (auto infos = store_->Stats(""); infos.ok()) {
    for (const db::NamespaceInfo& info : *infos) {
      const std::vector<prometheus::ClientMetric::Label> ns{{"namespace", info.config.name}};
      quota.Add(info);
      Add(chunks, ns, static_cast<double>(info.chunk_count));
      Add(documents, ns, static_cast<double>(info.document_count));
      Add(bytes, ns, static_cast<double>(info.approximate_bytes));
      Add(trained, ns, info.index_trained ? 1 : 0);
      Add(damaged, ns, info.damage.empty() ? 0 : 1);
      // FAILED_PRECONDITION for a namespace without a KV model: no KV rows.
      auto kv = store_->GetKvStats(info.config.name);
      if (!kv.ok()) continue;
      Add(kv_chunks, ns, static_cast<double>(kv->chunks));
      Add(kv_blocks, ns, static_cast<double>(kv->blocks));
      Add(kv_tokens, ns, static_cast<double>(kv->tokens));
      Add(kv_bytes, ns, static_cast<double>(kv->stored_bytes));
      Add(kv_pinned, ns, static_cast<double>(kv->pinned_chunks));
      Add(kv_evicted, ns, static_cast<double>(kv->evicted_chunks));
      Add(kv_expired, ns, static_cast<double>(kv->expired_chunks));
    }
  }
  std::vector<prometheus::MetricFamily> out;
  for (auto* f : {&chunks, &documents, &bytes, &trained, &damaged, &kv_chunks, &kv_blocks,
                  &kv_tokens, &kv_bytes, &kv_pinned, &kv_evicted, &kv_expired}) {
    out.push_back(std::move(*f));
  }
  quota.MoveTo(out);
  if (arena_ != nullptr) {
    const KvArena::Stats s = arena_->GetStats();
    auto gauge = [&](const char* name, const char* help, double v) {
      auto f = Family(name, help, MetricType::Gauge);
      Add(f, {}, v);
      out.push_back(std::move(f));
    };
    auto counter = [&](const char* name, const char* help, double v) {
      auto f = Family(name, help, MetricType::Counter);
      Add(f, {}, v);
      out.push_back(std::move(f));
    };
    gauge("mnemo_kv_arena_size_bytes", "Size of the KV arena", static_cast<double>(arena_->size()));
    gauge("mnemo_kv_arena_used_bytes", "Bytes of the KV arena holding blocks",
          static_cast<double>(s.used_bytes));
    gauge("mnemo_kv_arena_blocks", "Blocks held in the KV arena", static_cast<double>(s.entries));
    gauge("mnemo_kv_arena_pinned_blocks", "Arena blocks pinned by a lease or a fill",
          static_cast<double>(s.pinned_entries));
    gauge("mnemo_kv_arena_sessions", "Open arena sessions (client connections)",
          static_cast<double>(s.sessions));
    gauge("mnemo_kv_arena_leases", "Leases held by clients", static_cast<double>(s.leases));
    counter("mnemo_kv_arena_hits_total", "Arena lookups that found the block current",
            static_cast<double>(s.hits));
    counter("mnemo_kv_arena_misses_total", "Arena lookups filled from the store",
            static_cast<double>(s.misses));
    counter("mnemo_kv_arena_evictions_total", "Blocks evicted from the arena for room",
            static_cast<double>(s.evictions));
  }
  return out;
}

}  // namespace mnemo::server
