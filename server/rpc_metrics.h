// Prometheus metrics of every RPC mnemod serves, recorded by a gRPC server
// interceptor (so no handler has to remember to): calls handled and their
// latency by service, method and status code, messages and bytes in and
// out, calls in flight, and the chunks and documents each Upsert wrote per
// namespace (the ingest rate). Names follow Prometheus' conventions
// (`_total` counters, `_seconds` histograms).
#ifndef MNEMO_SERVER_RPC_METRICS_H_
#define MNEMO_SERVER_RPC_METRICS_H_

#include <array>
#include <atomic>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"

#include "grpcpp/support/server_interceptor.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace mnemo::server {

class RpcMetrics {
 public:
  // Registers the families in `registry`, which must outlive this.
  explicit RpcMetrics(prometheus::Registry& registry);

  // The interceptor factory to hand to grpc::ServerBuilder (experimental
  // SetInterceptorCreators); its interceptors record into this object,
  // which must outlive the server.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewInterceptorFactory();

  // "/mnemo.v1.Mnemo/Search" -> {"mnemo.v1.Mnemo", "Search"}.
  static std::pair<std::string, std::string> SplitMethod(std::string_view full);

 private:
  friend class MetricsInterceptor;
  // A method's series, found in the families once per method rather than
  // on every call (each Family::Add hashes the labels under the family's
  // mutex; a call needs seven).
  static constexpr size_t kCodes = 17;  // grpc::StatusCode OK .. UNAUTHENTICATED
  struct CodeSeries {
    prometheus::Counter* handled;
    prometheus::Histogram* seconds;
  };
  struct MethodSeries {
    std::string service, method;
    bool ours = false, raw = false, upsert = false;
    prometheus::Gauge* in_flight = nullptr;
    prometheus::Counter* received_bytes = nullptr;
    prometheus::Counter* sent_bytes = nullptr;
    prometheus::Counter* received_messages = nullptr;
    prometheus::Counter* sent_messages = nullptr;
    std::array<std::atomic<const CodeSeries*>, kCodes> by_code{};  // made on first use
  };
  MethodSeries& SeriesOf(std::string_view full_method);
  const CodeSeries& CodeSeriesOf(MethodSeries& series, grpc::StatusCode code);

  std::shared_mutex series_mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<MethodSeries>> series_;
  std::vector<std::unique_ptr<const CodeSeries>> code_series_;

  prometheus::Family<prometheus::Counter>& handled_;
  prometheus::Family<prometheus::Histogram>& seconds_;
  prometheus::Family<prometheus::Counter>& received_bytes_;
  prometheus::Family<prometheus::Counter>& sent_bytes_;
  prometheus::Family<prometheus::Counter>& received_messages_;
  prometheus::Family<prometheus::Counter>& sent_messages_;
  prometheus::Family<prometheus::Gauge>& in_flight_;
  prometheus::Family<prometheus::Counter>& ingested_chunks_;
  prometheus::Family<prometheus::Counter>& ingested_documents_;
};

}  // namespace mnemo::server

#endif  // MNEMO_SERVER_RPC_METRICS_H_
