// The HTTP endpoint Prometheus scrapes: `mnemod --metrics-listen HOST:PORT`
// serves GET /metrics in the Prometheus text exposition format (version
// 0.0.4): an HTTP server of cpp-httplib (Debian's libcpp-httplib-dev) on
// its own thread, each scrape collecting the registry of RPC metrics
// (server/rpc_metrics.h) and the store's collectors (server/store_metrics.h)
// and writing them with prometheus-cpp's text serializer.
#ifndef MNEMO_SERVER_METRICS_ENDPOINT_H_
#define MNEMO_SERVER_METRICS_ENDPOINT_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "prometheus/collectable.h"

namespace httplib {
class Server;
}

namespace mnemo::server {

class MetricsEndpoint {
 public:
  // Listens on `listen` ("host:port"; port 0 = any free one) and serves the
  // collectables, which must outlive the endpoint. UNAVAILABLE when the
  // address cannot be bound, INVALID_ARGUMENT for a malformed address.
  static absl::StatusOr<std::unique_ptr<MetricsEndpoint>> Start(
      const std::string& listen, std::vector<std::shared_ptr<prometheus::Collectable>> sources);

  // Stops serving (an in-flight scrape finishes first).
  ~MetricsEndpoint();

  int port() const { return port_; }

 private:
  MetricsEndpoint() = default;
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  std::vector<std::shared_ptr<prometheus::Collectable>> sources_;
  int port_ = 0;
};

}  // namespace mnemo::server

#endif  // MNEMO_SERVER_METRICS_ENDPOINT_H_
