// The KV-cache calls of mnemo::Client over the mnemo.v1.MnemoKv stub: the
// put and read streams (KvWriter, KvReader; through the KV arena when asked:
// client/kv_arena_client.h),
// the unary KV calls, and the UNIMPLEMENTED defaults test fakes inherit.
#include <optional>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/client_impl.h"
#include "client/convert.h"
#include "client/kv_arena_client.h"
#include "common/status_macros.h"
#include "mnemo/client.h"

namespace mnemo {
namespace client_internal {
namespace {

// Client side of PutKv over the synchronous ClientWriter: the header goes
// out when the writer is made, one message per layer after it.
class KvWriterImpl final : public KvWriter {
 public:
  KvWriterImpl(v1::MnemoKv::Stub* stub, const std::string& ns, const KvPutHeader& header,
               Clock::time_point deadline)
      : n_kv_heads_(static_cast<uint32_t>(std::max(header.model.n_kv_heads, 0))),
        tokens_(static_cast<uint32_t>(header.tokens.size())),
        head_dim_(static_cast<uint32_t>(std::max(header.model.head_dim, 0))) {
    context_.set_deadline(deadline);
    writer_ = stub->PutKv(&context_, &response_);
    v1::PutKvRequest request;
    KvPutHeaderToProto(ns, header, request.mutable_header());
    // A refused header ends the call; the next Write reports it.
    if (!writer_->Write(request)) broken_ = true;
  }

  ~KvWriterImpl() override {
    if (!finished_) {
      // Abandoned: cancel, so the server sees a broken stream and stores
      // nothing.
      context_.TryCancel();
      mnemo::IgnoreError(FromGrpc(writer_->Finish()));
    }
  }

  absl::Status WriteLayer(uint32_t layer, absl::Span<const float> k, absl::Span<const float> v,
                          KvDtype dtype) override {
    return WriteLayer(layer, KvShape{n_kv_heads_, tokens_, head_dim_}, k, v, dtype);
  }

  absl::Status WriteLayer(uint32_t layer, const KvShape& shape, absl::Span<const float> k,
                          absl::Span<const float> v, KvDtype dtype) override {
    if (finished_) return absl::FailedPreconditionError("KvWriter already finished");
    if (broken_) {
      return absl::AbortedError(
          "the KV put stream was closed by the server; Finish() has its "
          "status");
    }
    v1::PutKvRequest request;
    RETURN_IF_ERROR(KvLayerToProto(layer, shape, k, v, dtype, request.mutable_layer()));
    if (!writer_->Write(request)) {
      broken_ = true;
      return absl::AbortedError(
          "the KV put stream was closed by the server; Finish() has its "
          "status");
    }
    return absl::OkStatus();
  }

  absl::StatusOr<KvPutResult> Finish() override {
    if (finished_) return absl::FailedPreconditionError("KvWriter already finished");
    finished_ = true;
    if (!cancelled_) writer_->WritesDone();
    RETURN_IF_ERROR(FromGrpc(writer_->Finish()));
    if (cancelled_) return absl::CancelledError("the KV put was cancelled");
    return KvPutResultFromProto(response_);
  }

  void Cancel() override {
    if (finished_) return;
    cancelled_ = true;
    context_.TryCancel();
  }

 private:
  const uint32_t n_kv_heads_, tokens_, head_dim_;
  grpc::ClientContext context_;
  v1::PutKvResponse response_;
  std::unique_ptr<grpc::ClientWriter<v1::PutKvRequest>> writer_;
  bool finished_ = false;
  bool broken_ = false;
  bool cancelled_ = false;
};

// Client side of GetKv over the synchronous ClientReader: blocks as bytes
// in the messages, or, with an arena session, as leases read in place.
class KvReaderImpl final : public KvReader {
 public:
  KvReaderImpl(v1::MnemoKv::Stub* stub, std::shared_ptr<KvArenaSession> session,
               v1::GetKvRequest request, Clock::time_point deadline, bool raw)
      : session_(std::move(session)), raw_(raw) {
    context_.set_deadline(deadline);
    if (session_ != nullptr) request.set_arena_session(session_->token());
    reader_ = stub->GetKv(&context_, request);
  }

  ~KvReaderImpl() override {
    if (!finished_) {
      context_.TryCancel();
      mnemo::IgnoreError(FromGrpc(reader_->Finish()));
    }
  }

  absl::StatusOr<bool> Next(KvBlock* block) override {
    if (finished_) {
      if (!final_status_.ok()) return final_status_;
      return false;
    }
    if (reader_->Read(&response_)) {
      absl::Status converted = session_ == nullptr
                                   ? KvBlockFromProto(response_, block, std::nullopt, raw_)
                                   : FromLease(block);
      if (converted.ok()) return true;
      context_.TryCancel();
      mnemo::IgnoreError(FromGrpc(reader_->Finish()));
      finished_ = true;
      final_status_ = converted;
      return converted;
    }
    finished_ = true;
    final_status_ = FromGrpc(reader_->Finish());
    if (!final_status_.ok()) return final_status_;
    return false;
  }

 private:
  // The block of response_ as a lease on the arena mapping.
  absl::Status FromLease(KvBlock* block) {
    // Adopted first, so the lease is released even when the block is bad.
    std::shared_ptr<const KvArenaLease> lease = session_->Adopt(response_.lease());
    if (!response_.has_lease()) {
      return absl::DataLossError("a KV arena read answered a block without a lease");
    }
    RETURN_IF_ERROR(KvBlockFromProto(response_, block, session_->mapping()->bytes(), raw_));
    // Float blocks are copies: their lease is released at once.
    block->lease = raw_ ? std::move(lease) : nullptr;
    return absl::OkStatus();
  }

  const std::shared_ptr<KvArenaSession> session_;  // null: bytes in the messages
  const bool raw_;
  grpc::ClientContext context_;
  v1::GetKvResponse response_;
  std::unique_ptr<grpc::ClientReader<v1::GetKvResponse>> reader_;
  bool finished_ = false;
  absl::Status final_status_;
};

}  // namespace

absl::StatusOr<KvStats> ClientImpl::RegisterKvModel(const std::string& ns, const KvConfig& config,
                                                    const CallOptions& call) {
  v1::RegisterKvModelRequest request;
  request.set_namespace_(ns);
  KvConfigToProto(config, request.mutable_config());
  v1::RegisterKvModelResponse response;
  RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
    return kv_stub_->RegisterKvModel(ctx, request, &response);
  }));
  return KvStatsFromProto(response.stats());
}

absl::StatusOr<std::unique_ptr<KvWriter>> ClientImpl::OpenKvWriter(const std::string& ns,
                                                                   const KvPutHeader& header,
                                                                   const CallOptions& call) {
  return std::unique_ptr<KvWriter>(new KvWriterImpl(kv_stub_.get(), ns, header, Deadline(call)));
}

absl::StatusOr<KvPutResult> ClientImpl::PutKv(const std::string& ns, const KvPut& put,
                                              const CallOptions& call) {
  if (put.k.size() != put.v.size()) {
    return absl::InvalidArgumentError(absl::StrCat("KV put of chunk '", put.chunk_id,
                                                   "' has K for ", put.k.size(),
                                                   " layers and V for ", put.v.size()));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<KvWriter> writer, OpenKvWriter(ns, put, call));
  for (size_t l = 0; l < put.k.size(); ++l) {
    absl::Status status =
        writer->WriteLayer(static_cast<uint32_t>(l), put.k[l], put.v[l], put.dtype);
    if (absl::IsAborted(status)) break;  // the server's reason comes from Finish
    if (!status.ok()) return status;     // refused here; the writer cancels the put
  }
  return writer->Finish();
}

absl::StatusOr<std::unique_ptr<KvReader>> ClientImpl::OpenKvReader(const std::string& ns,
                                                                   const KvGetRequest& request,
                                                                   const CallOptions& call) {
  if (request.shared_memory) {
    ASSIGN_OR_RETURN(std::shared_ptr<KvArenaSession> session,
                     arena_.Session(kv_stub_.get(), Deadline(call)));
    if (session != nullptr) {
      return std::unique_ptr<KvReader>(new KvReaderImpl(kv_stub_.get(), std::move(session),
                                                        GetKvRequestToProto(ns, request),
                                                        Deadline(call), request.raw));
    }
  }
  return std::unique_ptr<KvReader>(new KvReaderImpl(
      kv_stub_.get(), nullptr, GetKvRequestToProto(ns, request), Deadline(call), request.raw));
}

absl::StatusOr<std::vector<KvBlock>> ClientImpl::GetKv(const std::string& ns, const KvGetRequest& r,
                                                       const CallOptions& call) {
  if (r.shared_memory) {
    KvGetRequest floats = r;
    floats.raw = false;
    ASSIGN_OR_RETURN(std::unique_ptr<KvReader> reader, OpenKvReader(ns, floats, call));
    std::vector<KvBlock> blocks;
    while (true) {
      KvBlock block;
      ASSIGN_OR_RETURN(bool more, reader->Next(&block));
      if (!more) break;
      blocks.push_back(std::move(block));
    }
    return blocks;
  }
  const v1::GetKvRequest request = GetKvRequestToProto(ns, r);
  std::vector<KvBlock> blocks;
  absl::Status converted;
  RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) -> grpc::Status {
    blocks.clear();
    std::unique_ptr<grpc::ClientReader<v1::GetKvResponse>> reader = kv_stub_->GetKv(ctx, request);
    v1::GetKvResponse response;
    while (reader->Read(&response)) {
      converted = KvBlockFromProto(response, &blocks.emplace_back(), std::nullopt, false);
      if (!converted.ok()) {
        ctx->TryCancel();
        mnemo::IgnoreError(FromGrpc(reader->Finish()));
        return grpc::Status(grpc::StatusCode::DATA_LOSS, std::string(converted.message()));
      }
    }
    return reader->Finish();
  }));
  return blocks;
}

absl::StatusOr<std::vector<uint32_t>> ClientImpl::ExistsKv(
    const std::string& ns, const std::vector<std::string>& chunk_ids, const ModelFingerprint& model,
    const CallOptions& call) {
  v1::ExistsKvRequest request;
  request.set_namespace_(ns);
  for (const std::string& id : chunk_ids) request.add_chunk_ids(id);
  FingerprintToProto(model, request.mutable_model());
  v1::ExistsKvResponse response;
  RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
    response.Clear();
    return kv_stub_->ExistsKv(ctx, request, &response);
  }));
  if (static_cast<size_t>(response.tokens_size()) != chunk_ids.size()) {
    return absl::DataLossError(absl::StrCat("ExistsKv answered for ", response.tokens_size(),
                                            " of ", chunk_ids.size(), " ids"));
  }
  return std::vector<uint32_t>(response.tokens().begin(), response.tokens().end());
}

absl::StatusOr<uint64_t> ClientImpl::DeleteKv(const std::string& ns,
                                              const std::vector<std::string>& chunk_ids,
                                              const CallOptions& call) {
  v1::DeleteKvRequest request;
  request.set_namespace_(ns);
  for (const std::string& id : chunk_ids) request.add_chunk_ids(id);
  v1::DeleteKvResponse response;
  RETURN_IF_ERROR(Call(
      call, [&](grpc::ClientContext* ctx) { return kv_stub_->DeleteKv(ctx, request, &response); }));
  return response.deleted();
}

absl::StatusOr<KvPrefixMatch> ClientImpl::LookupPrefix(const std::string& ns,
                                                       const ModelFingerprint& model,
                                                       const std::vector<int32_t>& tokens,
                                                       const CallOptions& call) {
  v1::LookupKvPrefixRequest request;
  request.set_namespace_(ns);
  FingerprintToProto(model, request.mutable_model());
  request.mutable_tokens()->Assign(tokens.begin(), tokens.end());
  v1::LookupKvPrefixResponse response;
  RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
    response.Clear();
    return kv_stub_->LookupKvPrefix(ctx, request, &response);
  }));
  return KvPrefixMatchFromProto(response);
}

absl::StatusOr<uint64_t> ClientImpl::SetKvRetention(const std::string& ns,
                                                    const std::vector<std::string>& chunk_ids,
                                                    std::optional<bool> pin,
                                                    std::optional<int64_t> ttl_seconds,
                                                    const CallOptions& call) {
  v1::SetKvRetentionRequest request;
  request.set_namespace_(ns);
  for (const std::string& id : chunk_ids) request.add_chunk_ids(id);
  if (pin.has_value()) request.set_pin(*pin);
  if (ttl_seconds.has_value()) request.set_ttl_seconds(*ttl_seconds);
  v1::SetKvRetentionResponse response;
  RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
    return kv_stub_->SetKvRetention(ctx, request, &response);
  }));
  return response.updated();
}

absl::StatusOr<KvStats> ClientImpl::GetKvStats(const std::string& ns, const CallOptions& call) {
  v1::GetKvStatsRequest request;
  request.set_namespace_(ns);
  v1::GetKvStatsResponse response;
  RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
    return kv_stub_->GetKvStats(ctx, request, &response);
  }));
  return KvStatsFromProto(response.stats());
}

}  // namespace client_internal

// Defaults for implementations that predate the KV calls (test fakes).
namespace {
absl::Status KvUnimplemented(absl::string_view method) {
  return absl::UnimplementedError(absl::StrCat("this Client does not implement ", method));
}
}  // namespace

absl::StatusOr<KvStats> Client::RegisterKvModel(const std::string&, const KvConfig&,
                                                const CallOptions&) {
  return KvUnimplemented("RegisterKvModel");
}
absl::StatusOr<std::unique_ptr<KvWriter>> Client::OpenKvWriter(const std::string&,
                                                               const KvPutHeader&,
                                                               const CallOptions&) {
  return KvUnimplemented("OpenKvWriter");
}
absl::StatusOr<KvPutResult> Client::PutKv(const std::string&, const KvPut&, const CallOptions&) {
  return KvUnimplemented("PutKv");
}
absl::StatusOr<std::unique_ptr<KvReader>> Client::OpenKvReader(const std::string&,
                                                               const KvGetRequest&,
                                                               const CallOptions&) {
  return KvUnimplemented("OpenKvReader");
}
absl::StatusOr<std::vector<KvBlock>> Client::GetKv(const std::string&, const KvGetRequest&,
                                                   const CallOptions&) {
  return KvUnimplemented("GetKv");
}
absl::StatusOr<std::vector<uint32_t>> Client::ExistsKv(const std::string&,
                                                       const std::vector<std::string>&,
                                                       const ModelFingerprint&,
                                                       const CallOptions&) {
  return KvUnimplemented("ExistsKv");
}
absl::StatusOr<uint64_t> Client::DeleteKv(const std::string&, const std::vector<std::string>&,
                                          const CallOptions&) {
  return KvUnimplemented("DeleteKv");
}
absl::StatusOr<KvPrefixMatch> Client::LookupPrefix(const std::string&, const ModelFingerprint&,
                                                   const std::vector<int32_t>&,
                                                   const CallOptions&) {
  return KvUnimplemented("LookupPrefix");
}
absl::StatusOr<uint64_t> Client::SetKvRetention(const std::string&, const std::vector<std::string>&,
                                                std::optional<bool>, std::optional<int64_t>,
                                                const CallOptions&) {
  return KvUnimplemented("SetKvRetention");
}
absl::StatusOr<KvStats> Client::GetKvStats(const std::string&, const CallOptions&) {
  return KvUnimplemented("GetKvStats");
}

}  // namespace mnemo
