// MetricsEndpoint: cpp-httplib serving prometheus-cpp's text serializer.
#include "server/metrics_endpoint.h"

#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "httplib.h"
#include "prometheus/text_serializer.h"

namespace mnemo::server {

absl::StatusOr<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(
    const std::string& listen, std::vector<std::shared_ptr<prometheus::Collectable>> sources) {
  const size_t colon = listen.rfind(':');
  int port = -1;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--metrics-listen '", listen, "' is not HOST:PORT"));
  }
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  auto endpoint = std::unique_ptr<MetricsEndpoint>(new MetricsEndpoint());
  endpoint->sources_ = std::move(sources);
  endpoint->http_ = std::make_unique<httplib::Server>();
  MetricsEndpoint* self = endpoint.get();
  endpoint->http_->Get("/metrics", [self](const httplib::Request&, httplib::Response& res) {
    std::vector<prometheus::MetricFamily> families;
    for (const auto& source : self->sources_) {
      std::vector<prometheus::MetricFamily> part = source->Collect();
      families.insert(families.end(), std::make_move_iterator(part.begin()),
                      std::make_move_iterator(part.end()));
    }
    std::ostringstream out;
    prometheus::TextSerializer().Serialize(out, families);
    res.set_content(out.str(), "text/plain; version=0.0.4; charset=utf-8");
  });
  const int bound = port == 0 ? endpoint->http_->bind_to_any_port(host)
                              : (endpoint->http_->bind_to_port(host, port) ? port : -1);
  if (bound <= 0) {
    return absl::UnavailableError(absl::StrCat("cannot serve metrics on ", listen));
  }
  endpoint->port_ = bound;
  endpoint->thread_ = std::thread([self] { self->http_->listen_after_bind(); });
  return endpoint;
}

MetricsEndpoint::~MetricsEndpoint() {
  if (http_ != nullptr) http_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace mnemo::server
