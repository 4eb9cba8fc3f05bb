// Implementation of mnemo::Client over the generated mnemo.v1 stub.
#include "mnemo/client.h"

#include <algorithm>
#include <future>
#include <thread>
#include <utility>

#include <grpc/grpc.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "client/json_filter.h"
#include "common/status_macros.h"
#include "mnemo/v1/mnemo.grpc.pb.h"

namespace mnemo {
namespace {

using Clock = std::chrono::system_clock;

// gRPC and Abseil share the canonical code space, so codes map 1:1.
absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  int code = static_cast<int>(status.error_code());
  if (code < 0 || code > 16) code = static_cast<int>(absl::StatusCode::kUnknown);
  return absl::Status(static_cast<absl::StatusCode>(code), status.error_message());
}

v1::Metric MetricToProto(Metric m) {
  switch (m) {
    case Metric::kInnerProduct:
      return v1::METRIC_INNER_PRODUCT;
    case Metric::kL2:
      return v1::METRIC_L2;
    case Metric::kCosine:
      return v1::METRIC_COSINE;
  }
  return v1::METRIC_UNSPECIFIED;
}

Metric MetricFromProto(v1::Metric m) {
  switch (m) {
    case v1::METRIC_L2:
      return Metric::kL2;
    case v1::METRIC_COSINE:
      return Metric::kCosine;
    default:
      return Metric::kInnerProduct;
  }
}

v1::SearchMode SearchModeToProto(SearchMode mode) {
  switch (mode) {
    case SearchMode::kDense:
      return v1::SEARCH_MODE_DENSE;
    case SearchMode::kBm25:
      return v1::SEARCH_MODE_BM25;
    case SearchMode::kHybridRrf:
      return v1::SEARCH_MODE_HYBRID_RRF;
    case SearchMode::kHybridWeighted:
      return v1::SEARCH_MODE_HYBRID_WEIGHTED;
    case SearchMode::kLateInteraction:
      return v1::SEARCH_MODE_LATE_INTERACTION;
  }
  // An out-of-range value is passed on as is; the server refuses it.
  return static_cast<v1::SearchMode>(static_cast<int>(mode));
}

NamespaceInfo InfoFromProto(const v1::NamespaceInfo& p) {
  NamespaceInfo info;
  info.config.name = p.config().name();
  info.config.dim = p.config().dim();
  info.config.metric = MetricFromProto(p.config().metric());
  info.config.index_factory = p.config().index_factory();
  info.config.train_threshold = p.config().train_threshold();
  info.config.description = p.config().description();
  info.config.encoder = p.config().encoder();
  info.config.chunk_max_tokens = p.config().chunk_max_tokens();
  if (p.config().has_chunk_overlap_tokens()) {
    info.config.chunk_overlap_tokens = p.config().chunk_overlap_tokens();
  }
  if (p.config().has_late_interaction()) {
    info.config.late_interaction = p.config().late_interaction();
  }
  info.config.late_interaction_nbits = p.config().late_interaction_nbits();
  info.config.late_interaction_train_tokens = p.config().late_interaction_train_tokens();
  info.chunk_count = p.chunk_count();
  info.document_count = p.document_count();
  info.index_trained = p.index_trained();
  info.index_description = p.index_description();
  info.created_unix_ms = p.created_unix_ms();
  info.approximate_bytes = p.approximate_bytes();
  info.late_interaction_tokens = p.late_interaction_tokens();
  info.late_interaction_trained = p.late_interaction_trained();
  info.late_interaction_description = p.late_interaction_description();
  return info;
}

void DocumentToProto(const Document& d, v1::Document* out) {
  out->set_id(d.id);
  out->set_text(d.text);
  out->set_metadata_json(d.metadata_json);
}

void ChunkToProto(const Chunk& c, v1::Chunk* out) {
  out->set_id(c.id);
  out->set_document_id(c.document_id);
  out->set_text(c.text);
  out->set_metadata_json(c.metadata_json);
  out->mutable_vector()->Assign(c.vector.begin(), c.vector.end());
  // source_begin/end are set by the server only; not sent.
}

Chunk ChunkFromProto(const v1::Chunk& p) {
  Chunk c;
  c.id = p.id();
  c.document_id = p.document_id();
  c.text = p.text();
  c.metadata_json = p.metadata_json();
  c.vector.assign(p.vector().begin(), p.vector().end());
  c.source_begin = p.source_begin();
  c.source_end = p.source_end();
  return c;
}

v1::UpsertRequest MakeUpsertRequest(const std::string& ns, const std::vector<Document>& documents,
                                    const std::vector<Chunk>& chunks) {
  v1::UpsertRequest request;
  request.set_namespace_(ns);
  for (const Document& d : documents) DocumentToProto(d, request.add_documents());
  for (const Chunk& c : chunks) ChunkToProto(c, request.add_chunks());
  return request;
}

// Client side of UpsertStream over the synchronous ClientWriter. The context
// and response outlive the writer, as gRPC requires.
class UpsertWriterImpl final : public UpsertWriter {
 public:
  UpsertWriterImpl(v1::Mnemo::Stub* stub, std::string ns, Clock::time_point deadline)
      : ns_(std::move(ns)) {
    context_.set_deadline(deadline);
    writer_ = stub->UpsertStream(&context_, &response_);
  }

  ~UpsertWriterImpl() override {
    if (!finished_) {
      // Abandoned without Finish: cancel so the call does not linger. The
      // messages already acknowledged by the server stay committed.
      context_.TryCancel();
      mnemo::IgnoreError(FromGrpc(writer_->Finish()));
    }
  }

  absl::Status Write(const std::vector<Document>& documents,
                     const std::vector<Chunk>& chunks) override {
    if (finished_) return absl::FailedPreconditionError("UpsertWriter already finished");
    if (broken_) {
      return absl::FailedPreconditionError(
          "stream is broken; call Finish() for the server's status");
    }
    if (!writer_->Write(MakeUpsertRequest(ns_, documents, chunks))) {
      // The server ended the call (an error on an earlier message, or the
      // connection broke); its status is only available from Finish.
      broken_ = true;
      return absl::AbortedError("stream closed by the server; call Finish() for its status");
    }
    return absl::OkStatus();
  }

  absl::StatusOr<UpsertResult> Finish() override {
    if (finished_) return absl::FailedPreconditionError("UpsertWriter already finished");
    finished_ = true;
    writer_->WritesDone();
    RETURN_IF_ERROR(FromGrpc(writer_->Finish()));
    return UpsertResult{response_.documents_written(), response_.chunks_written()};
  }

 private:
  const std::string ns_;
  grpc::ClientContext context_;
  v1::UpsertResponse response_;
  std::unique_ptr<grpc::ClientWriter<v1::UpsertRequest>> writer_;
  bool finished_ = false;
  bool broken_ = false;
};

class ClientImpl final : public Client {
 public:
  ClientImpl(std::shared_ptr<grpc::Channel> channel, const ClientOptions& options)
      : channel_(std::move(channel)),
        stub_(v1::Mnemo::NewStub(channel_)),
        generic_stub_(channel_),
        options_(options) {}

  absl::StatusOr<NamespaceInfo> CreateNamespace(const NamespaceConfig& config,
                                                const CallOptions& call) override {
    v1::CreateNamespaceRequest request;
    v1::NamespaceConfig* c = request.mutable_config();
    c->set_name(config.name);
    c->set_dim(config.dim);
    c->set_metric(MetricToProto(config.metric));
    c->set_index_factory(config.index_factory);
    c->set_train_threshold(config.train_threshold);
    c->set_description(config.description);
    c->set_encoder(config.encoder);
    c->set_chunk_max_tokens(config.chunk_max_tokens);
    if (config.chunk_overlap_tokens.has_value()) {
      c->set_chunk_overlap_tokens(*config.chunk_overlap_tokens);
    }
    if (config.late_interaction.has_value()) c->set_late_interaction(*config.late_interaction);
    c->set_late_interaction_nbits(config.late_interaction_nbits);
    c->set_late_interaction_train_tokens(config.late_interaction_train_tokens);
    v1::CreateNamespaceResponse response;
    RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
      return stub_->CreateNamespace(ctx, request, &response);
    }));
    return InfoFromProto(response.info());
  }

  absl::StatusOr<NamespaceInfo> GetNamespace(const std::string& name,
                                             const CallOptions& call) override {
    v1::GetNamespaceRequest request;
    request.set_name(name);
    v1::GetNamespaceResponse response;
    RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
      return stub_->GetNamespace(ctx, request, &response);
    }));
    return InfoFromProto(response.info());
  }

  absl::StatusOr<std::vector<NamespaceInfo>> ListNamespaces(const CallOptions& call) override {
    v1::ListNamespacesRequest request;
    v1::ListNamespacesResponse response;
    RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
      return stub_->ListNamespaces(ctx, request, &response);
    }));
    std::vector<NamespaceInfo> out;
    for (const v1::NamespaceInfo& info : response.namespaces()) out.push_back(InfoFromProto(info));
    return out;
  }

  absl::Status DropNamespace(const std::string& name, const CallOptions& call) override {
    v1::DropNamespaceRequest request;
    request.set_name(name);
    v1::DropNamespaceResponse response;
    return Call(call, [&](grpc::ClientContext* ctx) {
      return stub_->DropNamespace(ctx, request, &response);
    });
  }

  absl::StatusOr<UpsertResult> Upsert(const std::string& ns,
                                      const std::vector<Document>& documents,
                                      const std::vector<Chunk>& chunks,
                                      const CallOptions& call) override {
    const v1::UpsertRequest request = MakeUpsertRequest(ns, documents, chunks);
    v1::UpsertResponse response;
    RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
      response.Clear();
      return stub_->Upsert(ctx, request, &response);
    }));
    return UpsertResult{response.documents_written(), response.chunks_written()};
  }

  absl::StatusOr<std::unique_ptr<UpsertWriter>> UpsertStream(const std::string& ns,
                                                             const CallOptions& call) override {
    // Streams are not retried: a broken stream has committed a prefix the
    // caller must account for.
    return std::unique_ptr<UpsertWriter>(
        new UpsertWriterImpl(stub_.get(), ns, Deadline(call)));
  }

  absl::StatusOr<GetResult> Get(const std::string& ns, const std::vector<std::string>& chunk_ids,
                                const std::vector<std::string>& document_ids,
                                bool include_vectors, const CallOptions& call) override {
    v1::GetRequest request;
    request.set_namespace_(ns);
    for (const std::string& id : chunk_ids) request.add_chunk_ids(id);
    for (const std::string& id : document_ids) request.add_document_ids(id);
    request.set_include_vectors(include_vectors);
    v1::GetResponse response;
    RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
      response.Clear();
      return stub_->Get(ctx, request, &response);
    }));
    GetResult out;
    for (const v1::Chunk& c : response.chunks()) out.chunks.push_back(ChunkFromProto(c));
    for (const v1::Document& d : response.documents()) {
      out.documents.push_back(Document{d.id(), d.text(), d.metadata_json()});
    }
    out.missing_ids.assign(response.missing_ids().begin(), response.missing_ids().end());
    return out;
  }

  absl::StatusOr<DeleteResult> Delete(const std::string& ns,
                                      const std::vector<std::string>& chunk_ids,
                                      const std::vector<std::string>& document_ids,
                                      const CallOptions& call) override {
    v1::DeleteRequest request;
    request.set_namespace_(ns);
    for (const std::string& id : chunk_ids) request.add_chunk_ids(id);
    for (const std::string& id : document_ids) request.add_document_ids(id);
    v1::DeleteResponse response;
    RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
      return stub_->Delete(ctx, request, &response);
    }));
    return DeleteResult{response.chunks_deleted(), response.documents_deleted()};
  }

  absl::StatusOr<std::vector<std::vector<Hit>>> Search(const SearchRequest& req,
                                                       const CallOptions& call) override {
    v1::SearchRequest request;
    request.set_namespace_(req.ns);
    request.set_dim(req.dim);
    request.mutable_queries()->Assign(req.queries.begin(), req.queries.end());
    request.set_k(req.k);
    ASSIGN_OR_RETURN(*request.mutable_filter(),
                     client_internal::JsonFilterToProto(req.filter_json));
    request.set_include_payload(req.include_payload);
    request.set_include_vectors(req.include_vectors);
    request.mutable_params()->set_hnsw_ef_search(req.hnsw_ef_search);
    request.mutable_params()->set_ivf_nprobe(req.ivf_nprobe);
    request.mutable_params()->set_refine_factor(req.refine_factor);
    request.mutable_params()->set_late_nprobe(req.late_nprobe);
    request.mutable_params()->set_late_max_candidates(req.late_max_candidates);
    for (const std::string& text : req.text_queries) request.add_text_queries(text);
    request.set_mode(SearchModeToProto(req.mode));
    request.set_dense_weight(req.dense_weight);
    request.set_bm25_weight(req.bm25_weight);
    request.set_rrf_k(req.rrf_k);
    request.set_highlight(req.highlight);
    v1::SearchResponse response;
    RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
      response.Clear();
      return stub_->Search(ctx, request, &response);
    }));
    std::vector<std::vector<Hit>> out;
    out.reserve(response.results_size());
    for (const v1::QueryResult& result : response.results()) {
      std::vector<Hit>& hits = out.emplace_back();
      hits.reserve(result.hits_size());
      for (const v1::Hit& h : result.hits()) {
        Hit hit;
        hit.id = h.id();
        hit.score = h.score();
        if (h.has_chunk()) hit.chunk = ChunkFromProto(h.chunk());
        hit.snippet = h.snippet();
        hits.push_back(std::move(hit));
      }
    }
    return out;
  }

  absl::StatusOr<StatsResult> Stats(const std::string& ns, const CallOptions& call) override {
    v1::StatsRequest request;
    request.set_namespace_(ns);
    v1::StatsResponse response;
    RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
      response.Clear();
      return stub_->Stats(ctx, request, &response);
    }));
    StatsResult out;
    for (const v1::NamespaceInfo& info : response.namespaces()) {
      out.namespaces.push_back(InfoFromProto(info));
    }
    out.total_approximate_bytes = response.total_approximate_bytes();
    out.data_dir = response.data_dir();
    out.version = response.version();
    return out;
  }

  absl::StatusOr<uint64_t> Checkpoint(const std::string& target_dir,
                                      const CallOptions& call) override {
    v1::CheckpointRequest request;
    request.set_target_dir(target_dir);
    v1::CheckpointResponse response;
    RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
      return stub_->Checkpoint(ctx, request, &response);
    }));
    return response.last_sequence();
  }

  absl::Status Compact(const std::string& ns, const CallOptions& call) override {
    v1::CompactRequest request;
    request.set_namespace_(ns);
    v1::CompactResponse response;
    return Call(call, [&](grpc::ClientContext* ctx) {
      return stub_->Compact(ctx, request, &response);
    });
  }

  // grpc.health.v1.Health/Check through the generic stub: Debian ships no
  // generated code for health.proto. The request (service "") encodes to
  // zero bytes; a SERVING response is field 1 = varint 1, i.e. 08 01.
  absl::Status HealthCheck(const CallOptions& call) override {
    return Call(call, [&](grpc::ClientContext* ctx) -> grpc::Status {
      grpc::ByteBuffer request;
      grpc::Slice empty("");
      request = grpc::ByteBuffer(&empty, 1);
      grpc::ByteBuffer response;
      std::promise<grpc::Status> done;
      generic_stub_.UnaryCall(ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request,
                              &response, [&done](grpc::Status s) { done.set_value(std::move(s)); });
      grpc::Status status = done.get_future().get();
      if (!status.ok()) return status;
      std::vector<grpc::Slice> slices;
      if (!response.Dump(&slices).ok()) {
        return grpc::Status(grpc::StatusCode::INTERNAL, "unreadable health response");
      }
      std::string bytes;
      for (const grpc::Slice& s : slices) {
        bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
      }
      if (bytes == std::string("\x08\x01", 2)) return grpc::Status::OK;
      // Not SERVING (UNKNOWN = 0 encodes as no bytes, NOT_SERVING = 08 02).
      const int serving_status = bytes.size() == 2 ? static_cast<unsigned char>(bytes[1]) : 0;
      return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          absl::StrCat("server health status is ", serving_status,
                                       " (1 = SERVING)"));
    });
  }

 private:
  Clock::time_point Deadline(const CallOptions& call) const {
    return Clock::now() + call.timeout.value_or(options_.default_timeout);
  }

  // Runs `attempt` (one RPC on a fresh context) until it succeeds, fails
  // with a code other than UNAVAILABLE, runs out of attempts, or the next
  // backoff would cross the call's deadline. All attempts share one deadline.
  template <typename Attempt>
  absl::Status Call(const CallOptions& call, Attempt attempt) {
    const Clock::time_point deadline = Deadline(call);
    std::chrono::milliseconds backoff = options_.initial_backoff;
    const int attempts = std::max(1, options_.max_attempts);
    for (int i = 1;; ++i) {
      grpc::ClientContext ctx;
      ctx.set_deadline(deadline);
      grpc::Status status = attempt(&ctx);
      if (status.error_code() != grpc::StatusCode::UNAVAILABLE || i >= attempts ||
          Clock::now() + backoff >= deadline) {
        return FromGrpc(status);
      }
      std::this_thread::sleep_for(backoff);
      backoff *= 2;
    }
  }

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Mnemo::Stub> stub_;
  grpc::GenericStub generic_stub_;
  const ClientOptions options_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(const std::string& target,
                                                        const ClientOptions& options) {
  if (target.empty()) return absl::InvalidArgumentError("empty target");
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_message_bytes);
  args.SetMaxSendMessageSize(options.max_message_bytes);
  // mnemod usually runs on the same host; an http_proxy in the environment
  // must not capture loopback traffic.
  args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  if (channel == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("cannot create a channel to ", target));
  }
  if (options.connect_timeout.count() > 0 &&
      !channel->WaitForConnected(Clock::now() + options.connect_timeout)) {
    return absl::UnavailableError(absl::StrCat("cannot connect to ", target, " within ",
                                               options.connect_timeout.count(), " ms"));
  }
  return std::unique_ptr<Client>(new ClientImpl(std::move(channel), options));
}

}  // namespace mnemo
