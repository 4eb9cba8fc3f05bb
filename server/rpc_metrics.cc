// RpcMetrics: the families and the gRPC interceptor that fills them.
#include "server/rpc_metrics.h"

#include <chrono>
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
      : metrics_(metrics), start_(std::chrono::steady_clock::now()) {
    const std::string_view full = info->method() != nullptr ? info->method() : "";
    auto [service, method] = RpcMetrics::SplitMethod(full);
    service_ = std::move(service);
    method_ = std::move(method);
    // Only mnemo's own services carry protobuf messages we may inspect
    // (the health and reflection services are served from byte buffers).
    ours_ = full.rfind("/mnemo.v1.", 0) == 0;
    raw_ = IsRawMethod(full);
    upsert_ = full == kUpsert || full == kUpsertStream;
    const Labels labels{{"service", service_}, {"method", method_}};
    in_flight_ = &metrics_->in_flight_.Add(labels);
    received_bytes_ = &metrics_->received_bytes_.Add(labels);
    sent_bytes_ = &metrics_->sent_bytes_.Add(labels);
    received_messages_ = &metrics_->received_messages_.Add(labels);
    sent_messages_ = &metrics_->sent_messages_.Add(labels);
    in_flight_->Increment();
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* m) override {
    using H = grpc::experimental::InterceptionHookPoints;
    if (m->QueryInterceptionHookPoint(H::PRE_SEND_MESSAGE)) {
      sent_messages_->Increment();
      // Before GetSerializedSendMessage, which serializes the message and
      // drops the unserialized form.
      if (upsert_ && ours_) {
        const auto* response = static_cast<const v1::UpsertResponse*>(m->GetSendMessage());
        if (response != nullptr) {
          chunks_written_ += response->chunks_written();
          documents_written_ += response->documents_written();
        }
      }
      if (grpc::ByteBuffer* buffer = m->GetSerializedSendMessage(); buffer != nullptr) {
        sent_bytes_->Increment(static_cast<double>(buffer->Length()));
      }
    }
    if (m->QueryInterceptionHookPoint(H::POST_RECV_MESSAGE)) {
      void* message = m->GetRecvMessage();
      if (message != nullptr) {
        received_messages_->Increment();
        if (raw_) {
          received_bytes_->Increment(
              static_cast<double>(static_cast<const grpc::ByteBuffer*>(message)->Length()));
        } else if (ours_) {
          // Every request type of mnemo.v1 served from protobuf messages
          // (not raw: server/kv_block_wire.h) is a generated one.
          const auto* proto = static_cast<const google::protobuf::MessageLite*>(
              static_cast<const google::protobuf::Message*>(message));
          received_bytes_->Increment(static_cast<double>(proto->ByteSizeLong()));
          if (upsert_ && namespace_.empty()) {
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
    in_flight_->Decrement();
    const grpc::StatusCode code = status_sent_ ? code_ : grpc::StatusCode::CANCELLED;
    const Labels labels{{"service", service_}, {"method", method_}, {"code", CodeName(code)}};
    metrics_->handled_.Add(labels).Increment();
    metrics_->seconds_.Add(labels, LatencyBuckets())
        .Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start_)
                     .count());
    if (upsert_ && code == grpc::StatusCode::OK && !namespace_.empty()) {
      const Labels ns{{"namespace", namespace_}};
      metrics_->ingested_chunks_.Add(ns).Increment(static_cast<double>(chunks_written_));
      metrics_->ingested_documents_.Add(ns).Increment(static_cast<double>(documents_written_));
    }
  }

  RpcMetrics* const metrics_;
  const std::chrono::steady_clock::time_point start_;
  std::string service_, method_, namespace_;
  bool ours_ = false, raw_ = false, upsert_ = false, status_sent_ = false, done_ = false;
  grpc::StatusCode code_ = grpc::StatusCode::OK;
  uint64_t chunks_written_ = 0, documents_written_ = 0;
  prometheus::Gauge* in_flight_;
  prometheus::Counter* received_bytes_;
  prometheus::Counter* sent_bytes_;
  prometheus::Counter* received_messages_;
  prometheus::Counter* sent_messages_;
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

std::pair<std::string, std::string> RpcMetrics::SplitMethod(std::string_view full) {
  if (!full.empty() && full.front() == '/') full.remove_prefix(1);
  const size_t slash = full.rfind('/');
  if (slash == std::string_view::npos) return {"", std::string(full)};
  return {std::string(full.substr(0, slash)), std::string(full.substr(slash + 1))};
}

}  // namespace mnemo::server
