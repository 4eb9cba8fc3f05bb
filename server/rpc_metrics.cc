// RpcMetrics: the families and the gRPC interceptor that fills them.
#include "server/rpc_metrics.h"

#include <algorithm>
#include <chrono>
#include <mutex>
#include <utility>

#include "absl/status/status.h"
#include "grpcpp/support/byte_buffer.h"
#include "mnemo/v1/mnemo.pb.h"
#include "server/kv_block_wire.h"

namespace mnemo::server {

namespace {

using Labels = std::map<std::string, std::string>;

// Seconds: 50 us ... 60 s, roughly x2.5 apart (a search on a warm index is
// ~100 us, a KV stream or a large ingest seconds).
const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
      0.1,     0.25,   0.5,     1,      2.5,   5,      10,    30,   60};
  return *buckets;
}

std::string CodeName(grpc::StatusCode code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

constexpr std::string_view kUpsert = "/mnemo.v1.Mnemo/Upsert";
constexpr std::string_view kUpsertStream = "/mnemo.v1.Mnemo/UpsertStream";

}  // namespace

// One per call. gRPC calls Intercept at each hook point of the call, never
// concurrently for one call.
class MetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(RpcMetrics* metrics, grpc::experimental::ServerRpcInfo* info)
      : metrics_(metrics),
        start_(std::chrono::steady_clock::now()),
        series_(metrics->SeriesOf(info->method() != nullptr ? info->method() : "")) {
    series_.in_flight->Increment();
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* m) override {
    using H = grpc::experimental::InterceptionHookPoints;
    if (m->QueryInterceptionHookPoint(H::PRE_SEND_MESSAGE)) {
      series_.sent_messages->Increment();
      // Before GetSerializedSendMessage, which serializes the message and
      // drops the unserialized form.
      if (series_.upsert) {
        const auto* response = static_cast<const v1::UpsertResponse*>(m->GetSendMessage());
        if (response != nullptr) {
          chunks_written_ += response->chunks_written();
          documents_written_ += response->documents_written();
        }
      }
      if (grpc::ByteBuffer* buffer = m->GetSerializedSendMessage(); buffer != nullptr) {
        series_.sent_bytes->Increment(static_cast<double>(buffer->Length()));
      }
    }
    if (m->QueryInterceptionHookPoint(H::POST_RECV_MESSAGE)) {
      void* message = m->GetRecvMessage();
      if (message != nullptr) {
        series_.received_messages->Increment();
        if (series_.raw) {
          series_.received_bytes->Increment(
              static_cast<double>(static_cast<const grpc::ByteBuffer*>(message)->Length()));
        } else if (series_.ours) {
          // Every request type of mnemo.v1 served from protobuf messages
          // (not raw: server/kv_block_wire.h) is a generated one.
          const auto* proto = static_cast<const google::protobuf::MessageLite*>(
              static_cast<const google::protobuf::Message*>(message));
          series_.received_bytes->Increment(static_cast<double>(proto->ByteSizeLong()));
          if (series_.upsert && namespace_.empty()) {
            namespace_ = static_cast<const v1::UpsertRequest*>(message)->namespace_();
          }
        }
      }
    }
    if (m->QueryInterceptionHookPoint(H::PRE_SEND_STATUS)) {
      code_ = m->GetSendStatus().error_code();
      status_sent_ = true;
    }
    if (m->QueryInterceptionHookPoint(H::POST_RECV_CLOSE)) Done();
    m->Proceed();
  }

  ~MetricsInterceptor() override { Done(); }

 private:
  // Records the call once: at POST_RECV_CLOSE, or when gRPC destroys the
  // interceptor of a call that never got there.
  void Done() {
    if (done_) return;
    done_ = true;
    series_.in_flight->Decrement();
    const grpc::StatusCode code = status_sent_ ? code_ : grpc::StatusCode::CANCELLED;
    const RpcMetrics::CodeSeries& done = metrics_->CodeSeriesOf(series_, code);
    done.handled->Increment();
    done.seconds->Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
    if (series_.upsert && code == grpc::StatusCode::OK && !namespace_.empty()) {
      const Labels ns{{"namespace", namespace_}};
      metrics_->ingested_chunks_.Add(ns).Increment(static_cast<double>(chunks_written_));
      metrics_->ingested_documents_.Add(ns).Increment(static_cast<double>(documents_written_));
    }
  }

  RpcMetrics* const metrics_;
  const std::chrono::steady_clock::time_point start_;
  RpcMetrics::MethodSeries& series_;
  std::string namespace_;
  bool status_sent_ = false, done_ = false;
  grpc::StatusCode code_ = grpc::StatusCode::OK;
  uint64_t chunks_written_ = 0, documents_written_ = 0;
};

namespace {

class Factory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit Factory(RpcMetrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new MetricsInterceptor(metrics_, info);
  }

 private:
  RpcMetrics* const metrics_;
};

}  // namespace

RpcMetrics::RpcMetrics(prometheus::Registry& registry)
    : handled_(prometheus::BuildCounter()
                   .Name("mnemo_rpc_handled_total")
                   .Help("RPCs completed, by service, method and gRPC status code")
                   .Register(registry)),
      seconds_(prometheus::BuildHistogram()
                   .Name("mnemo_rpc_handling_seconds")
                   .Help("Time from the start of an RPC to its end, by service, method and code")
                   .Register(registry)),
      received_bytes_(prometheus::BuildCounter()
                          .Name("mnemo_rpc_received_bytes_total")
                          .Help("Bytes of request messages received (mnemo.v1 services)")
                          .Register(registry)),
      sent_bytes_(prometheus::BuildCounter()
                      .Name("mnemo_rpc_sent_bytes_total")
                      .Help("Bytes of response messages sent")
                      .Register(registry)),
      received_messages_(prometheus::BuildCounter()
                             .Name("mnemo_rpc_received_messages_total")
                             .Help("Request messages received")
                             .Register(registry)),
      sent_messages_(prometheus::BuildCounter()
                         .Name("mnemo_rpc_sent_messages_total")
                         .Help("Response messages sent")
                         .Register(registry)),
      in_flight_(prometheus::BuildGauge()
                     .Name("mnemo_rpc_in_flight")
                     .Help("RPCs started and not yet finished")
                     .Register(registry)),
      ingested_chunks_(prometheus::BuildCounter()
                           .Name("mnemo_ingested_chunks_total")
                           .Help("Chunks written by Upsert and UpsertStream, by namespace")
                           .Register(registry)),
      ingested_documents_(prometheus::BuildCounter()
                              .Name("mnemo_ingested_documents_total")
                              .Help("Documents written by Upsert and UpsertStream, by namespace")
                              .Register(registry)) {}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
RpcMetrics::NewInterceptorFactory() {
  return std::make_unique<Factory>(this);
}

RpcMetrics::MethodSeries& RpcMetrics::SeriesOf(std::string_view full) {
  {
    std::shared_lock lock(series_mu_);
    if (auto it = series_.find(absl::string_view(full.data(), full.size()));
        it != series_.end()) {
      return *it->second;
    }
  }
  std::unique_lock lock(series_mu_);
  auto& slot = series_[std::string(full)];
  if (slot == nullptr) {
    auto s = std::make_unique<MethodSeries>();
    auto [service, method] = SplitMethod(full);
    s->service = std::move(service);
    s->method = std::move(method);
    // Only mnemo's own services carry protobuf messages we may inspect
    // (the health and reflection services are served from byte buffers,
    // and so is GetKv: server/kv_block_wire.h).
    s->ours = full.rfind("/mnemo.v1.", 0) == 0;
    s->raw = IsRawMethod(full);
    s->upsert = full == kUpsert || full == kUpsertStream;
    const Labels labels{{"service", s->service}, {"method", s->method}};
    s->in_flight = &in_flight_.Add(labels);
    s->received_bytes = &received_bytes_.Add(labels);
    s->sent_bytes = &sent_bytes_.Add(labels);
    s->received_messages = &received_messages_.Add(labels);
    s->sent_messages = &sent_messages_.Add(labels);
    slot = std::move(s);
  }
  return *slot;
}

const RpcMetrics::CodeSeries& RpcMetrics::CodeSeriesOf(MethodSeries& series,
                                                       grpc::StatusCode code) {
  const size_t i = std::min<size_t>(static_cast<size_t>(code), kCodes - 1);
  if (const CodeSeries* known = series.by_code[i].load(std::memory_order_acquire)) return *known;
  std::unique_lock lock(series_mu_);
  if (const CodeSeries* known = series.by_code[i].load(std::memory_order_relaxed)) return *known;
  const Labels labels{{"service", series.service}, {"method", series.method},
                      {"code", CodeName(code)}};
  auto* made = new CodeSeries{&handled_.Add(labels), &seconds_.Add(labels, LatencyBuckets())};
  code_series_.emplace_back(made);
  series.by_code[i].store(made, std::memory_order_release);
  return *made;
}

std::pair<std::string, std::string> RpcMetrics::SplitMethod(std::string_view full) {
  if (!full.empty() && full.front() == '/') full.remove_prefix(1);
  const size_t slash = full.rfind('/');
  if (slash == std::string_view::npos) return {"", std::string(full)};
  return {std::string(full.substr(0, slash)), std::string(full.substr(slash + 1))};
}

}  // namespace mnemo::server
