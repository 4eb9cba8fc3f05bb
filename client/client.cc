// The core of mnemo::Client (namespaces, records, search, operations) over
// the mnemo.v1.Mnemo stub, Client::Connect, and the upsert stream. The KV
// calls are kv_client.cc's; conversion is client/convert.h's.
#include "mnemo/client.h"

#include <grpc/grpc.h>

#include <future>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/api_key_interceptor.h"
#include "client/client_impl.h"
#include "client/convert.h"
#include "client/tls_credentials.h"
#include "common/status_macros.h"

namespace mnemo {
namespace client_internal {
namespace {

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
    if (!writer_->Write(UpsertRequestToProto(ns_, documents, chunks))) {
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

}  // namespace

ClientImpl::ClientImpl(std::shared_ptr<grpc::Channel> channel, const ClientOptions& options)
    : channel_(std::move(channel)),
      stub_(v1::Mnemo::NewStub(channel_)),
      kv_stub_(v1::MnemoKv::NewStub(channel_)),
      inject_stub_(v1::MnemoInject::NewStub(channel_)),
      memory_stub_(v1::MnemoMemory::NewStub(channel_)),
      auth_stub_(v1::MnemoAuth::NewStub(channel_)),
      generic_stub_(channel_),
      options_(options) {}

absl::StatusOr<NamespaceInfo> ClientImpl::CreateNamespace(const NamespaceConfig& config,
                                                          const CallOptions& call) {
  v1::CreateNamespaceRequest request;
  NamespaceConfigToProto(config, request.mutable_config());
  v1::CreateNamespaceResponse response;
  RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
    return stub_->CreateNamespace(ctx, request, &response);
  }));
  return NamespaceInfoFromProto(response.info());
}

absl::StatusOr<NamespaceInfo> ClientImpl::GetNamespace(const std::string& name,
                                                       const CallOptions& call) {
  v1::GetNamespaceRequest request;
  request.set_name(name);
  v1::GetNamespaceResponse response;
  RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
    return stub_->GetNamespace(ctx, request, &response);
  }));
  return NamespaceInfoFromProto(response.info());
}

absl::StatusOr<std::vector<NamespaceInfo>> ClientImpl::ListNamespaces(const CallOptions& call) {
  v1::ListNamespacesRequest request;
  v1::ListNamespacesResponse response;
  RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
    return stub_->ListNamespaces(ctx, request, &response);
  }));
  std::vector<NamespaceInfo> out;
  for (const v1::NamespaceInfo& info : response.namespaces()) {
    out.push_back(NamespaceInfoFromProto(info));
  }
  return out;
}

absl::Status ClientImpl::DropNamespace(const std::string& name, const CallOptions& call) {
  v1::DropNamespaceRequest request;
  request.set_name(name);
  v1::DropNamespaceResponse response;
  return Call(call, [&](grpc::ClientContext* ctx) {
    return stub_->DropNamespace(ctx, request, &response);
  });
}

absl::StatusOr<NamespaceInfo> ClientImpl::SetNamespaceQuota(const std::string& name,
                                                            const QuotaChange& change,
                                                            const CallOptions& call) {
  v1::SetNamespaceQuotaRequest request;
  request.set_name(name);
  QuotaChangeToProto(change, request.mutable_quota());
  v1::SetNamespaceQuotaResponse response;
  RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
    return stub_->SetNamespaceQuota(ctx, request, &response);
  }));
  return NamespaceInfoFromProto(response.info());
}

absl::StatusOr<UpsertResult> ClientImpl::Upsert(const std::string& ns,
                                                const std::vector<Document>& documents,
                                                const std::vector<Chunk>& chunks,
                                                const CallOptions& call) {
  const v1::UpsertRequest request = UpsertRequestToProto(ns, documents, chunks);
  v1::UpsertResponse response;
  RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
    response.Clear();
    return stub_->Upsert(ctx, request, &response);
  }));
  return UpsertResultFromProto(response);
}

absl::StatusOr<std::unique_ptr<UpsertWriter>> ClientImpl::UpsertStream(const std::string& ns,
                                                                       const CallOptions& call) {
  // Streams are not retried: a broken stream has committed a prefix the
  // caller must account for.
  return std::unique_ptr<UpsertWriter>(new UpsertWriterImpl(stub_.get(), ns, Deadline(call)));
}

absl::StatusOr<GetResult> ClientImpl::Get(const std::string& ns,
                                          const std::vector<std::string>& chunk_ids,
                                          const std::vector<std::string>& document_ids,
                                          bool include_vectors, const CallOptions& call) {
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
  return GetResultFromProto(response);
}

absl::StatusOr<DeleteResult> ClientImpl::Delete(const std::string& ns,
                                                const std::vector<std::string>& chunk_ids,
                                                const std::vector<std::string>& document_ids,
                                                const CallOptions& call) {
  v1::DeleteRequest request;
  request.set_namespace_(ns);
  for (const std::string& id : chunk_ids) request.add_chunk_ids(id);
  for (const std::string& id : document_ids) request.add_document_ids(id);
  v1::DeleteResponse response;
  RETURN_IF_ERROR(
      Call(call, [&](grpc::ClientContext* ctx) { return stub_->Delete(ctx, request, &response); }));
  return DeleteResult{response.chunks_deleted(), response.documents_deleted()};
}

absl::StatusOr<std::vector<std::vector<Hit>>> ClientImpl::Search(const SearchRequest& req,
                                                                 const CallOptions& call) {
  ASSIGN_OR_RETURN(v1::SearchRequest request, SearchRequestToProto(req));
  v1::SearchResponse response;
  RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
    response.Clear();
    return stub_->Search(ctx, request, &response);
  }));
  return SearchResultsFromProto(response);
}

absl::StatusOr<StatsResult> ClientImpl::Stats(const std::string& ns, const CallOptions& call) {
  v1::StatsRequest request;
  request.set_namespace_(ns);
  v1::StatsResponse response;
  RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
    response.Clear();
    return stub_->Stats(ctx, request, &response);
  }));
  return StatsFromProto(response);
}

absl::StatusOr<uint64_t> ClientImpl::Checkpoint(const std::string& target_dir,
                                                const CallOptions& call) {
  v1::CheckpointRequest request;
  request.set_target_dir(target_dir);
  v1::CheckpointResponse response;
  RETURN_IF_ERROR(Call(
      call, [&](grpc::ClientContext* ctx) { return stub_->Checkpoint(ctx, request, &response); }));
  return response.last_sequence();
}

absl::Status ClientImpl::Compact(const std::string& ns, const CallOptions& call) {
  v1::CompactRequest request;
  request.set_namespace_(ns);
  v1::CompactResponse response;
  return Call(call,
              [&](grpc::ClientContext* ctx) { return stub_->Compact(ctx, request, &response); });
}

// grpc.health.v1.Health/Check through the generic stub: Debian ships no
// generated code for health.proto. The request (service "") encodes to
// zero bytes; a SERVING response is field 1 = varint 1, i.e. 08 01.
absl::Status ClientImpl::HealthCheck(const CallOptions& call) {
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
                        absl::StrCat("server health status is ", serving_status, " (1 = SERVING)"));
  });
}

}  // namespace client_internal

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(const std::string& target,
                                                        const ClientOptions& options) {
  if (target.empty()) return absl::InvalidArgumentError("empty target");
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_message_bytes);
  args.SetMaxSendMessageSize(options.max_message_bytes);
  // mnemod usually runs on the same host; an http_proxy in the environment
  // must not capture loopback traffic.
  args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> credentials,
                   client_internal::ChannelCredentials(options));
  RETURN_IF_ERROR(client_internal::ValidateApiKey(options.api_key));
  std::shared_ptr<grpc::Channel> channel = grpc::experimental::CreateCustomChannelWithInterceptors(
      target, credentials, args, client_internal::ApiKeyInterceptors(options.api_key));
  if (channel == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("cannot create a channel to ", target));
  }
  if (options.connect_timeout.count() > 0 &&
      !channel->WaitForConnected(std::chrono::system_clock::now() + options.connect_timeout)) {
    return absl::UnavailableError(absl::StrCat("cannot connect to ", target, " within ",
                                               options.connect_timeout.count(), " ms"));
  }
  return std::unique_ptr<Client>(new client_internal::ClientImpl(std::move(channel), options));
}

}  // namespace mnemo
