// The retrieval-attention stream of mnemo::Client (AttendStream) over the
// synchronous bidirectional MnemoKv.Attend call: one request, one response.
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/client_impl.h"
#include "client/convert.h"
#include "common/status_macros.h"
#include "mnemo/client.h"

namespace mnemo {
namespace client_internal {
namespace {

class AttendStreamImpl final : public AttendStream {
 public:
  AttendStreamImpl(v1::MnemoKv::Stub* stub, const ModelFingerprint& model,
                   Clock::time_point deadline)
      : n_heads_(model.n_heads), n_kv_heads_(model.n_kv_heads), head_dim_(model.head_dim) {
    context_.set_deadline(deadline);
    stream_ = stub->Attend(&context_);
  }

  ~AttendStreamImpl() override {
    if (!closed_) {
      context_.TryCancel();
      mnemo::IgnoreError(FromGrpc(stream_->Finish()));
    }
  }

  // Sends the open message and waits for its answer.
  absl::Status Open(const v1::AttendRequest& open) {
    ASSIGN_OR_RETURN(v1::AttendResponse response, RoundTrip(open));
    if (!response.has_opened()) return Fail(absl::DataLossError("Attend: no answer to open"));
    tokens_ = response.opened().tokens();
    end_ = response.opened().end_position();
    return absl::OkStatus();
  }

  uint64_t context_tokens() const override { return tokens_; }
  int64_t end_position() const override { return end_; }

  absl::StatusOr<AttendPartial> Attend(uint32_t layer, int64_t position,
                                       absl::Span<const float> queries, int n_queries,
                                       const AttendBudget& budget) override {
    RETURN_IF_ERROR(CheckQueries(queries, n_queries));
    ASSIGN_OR_RETURN(v1::AttendResponse response,
                     RoundTrip(AttendStepToProto(layer, position, queries, n_queries,
                                                 /*top_k=*/false, budget)));
    return AttendPartialFromProto(response, n_queries, n_heads_, head_dim_);
  }

  absl::StatusOr<TopKeys> FetchTopK(uint32_t layer, int64_t position,
                                    absl::Span<const float> queries, int n_queries,
                                    std::optional<double> exact_fraction) override {
    RETURN_IF_ERROR(CheckQueries(queries, n_queries));
    AttendBudget budget;
    budget.exact_fraction = exact_fraction;
    ASSIGN_OR_RETURN(v1::AttendResponse response,
                     RoundTrip(AttendStepToProto(layer, position, queries, n_queries,
                                                 /*top_k=*/true, budget)));
    return TopKeysFromProto(response, n_kv_heads_, head_dim_);
  }

  absl::Status Close() override {
    if (closed_) return failure_;
    closed_ = true;
    stream_->WritesDone();
    absl::Status s = FromGrpc(stream_->Finish());
    return failure_.ok() ? s : failure_;
  }

 private:
  absl::Status CheckQueries(absl::Span<const float> queries, int n_queries) const {
    if (n_queries < 1 || queries.size() != size_t(n_queries) * n_heads_ * head_dim_) {
      return absl::InvalidArgumentError(
          absl::StrCat("Attend: ", queries.size(), " query values for ", n_queries,
                       " queries of [n_heads ", n_heads_, ", head_dim ", head_dim_, "]"));
    }
    return absl::OkStatus();
  }

  absl::Status Fail(absl::Status status) {
    if (failure_.ok()) failure_ = status;
    return failure_;
  }

  absl::StatusOr<v1::AttendResponse> RoundTrip(const v1::AttendRequest& request) {
    if (!failure_.ok()) return failure_;
    if (closed_) return absl::FailedPreconditionError("Attend stream closed");
    v1::AttendResponse response;
    if (!stream_->Write(request) || !stream_->Read(&response)) {
      // The server ended the stream: its status says why.
      closed_ = true;
      absl::Status s = FromGrpc(stream_->Finish());
      return Fail(s.ok() ? absl::AbortedError("Attend stream ended by the server") : s);
    }
    return response;
  }

  const int n_heads_, n_kv_heads_, head_dim_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::AttendRequest, v1::AttendResponse>> stream_;
  uint64_t tokens_ = 0;
  int64_t end_ = 0;
  bool closed_ = false;
  absl::Status failure_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<AttendStream>> ClientImpl::OpenAttend(
    const std::string& ns, const ModelFingerprint& model, const std::vector<AttendChunk>& chunks,
    const CallOptions& call) {
  if (model.n_heads <= 0 || model.head_dim <= 0 || model.n_kv_heads <= 0) {
    return absl::InvalidArgumentError("OpenAttend: the model fingerprint has no attention shape");
  }
  auto stream = std::make_unique<AttendStreamImpl>(kv_stub_.get(), model, Deadline(call));
  RETURN_IF_ERROR(stream->Open(AttendOpenToProto(ns, model, chunks)));
  return std::unique_ptr<AttendStream>(std::move(stream));
}

}  // namespace client_internal

absl::StatusOr<std::unique_ptr<AttendStream>> Client::OpenAttend(const std::string&,
                                                                 const ModelFingerprint&,
                                                                 const std::vector<AttendChunk>&,
                                                                 const CallOptions&) {
  return absl::UnimplementedError("this Client does not implement OpenAttend");
}

}  // namespace mnemo
