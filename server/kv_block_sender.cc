// The GetKv block sender (server/kv_block_sender.h).
#include "server/kv_block_sender.h"

#include <memory>
#include <mutex>
#include <optional>

#include "common/status_macros.h"
#include "server/convert.h"
#include "server/logging.h"
#include "server/service.h"
#include "server/status_mapping.h"

namespace mnemo::server {
namespace {

// Two messages, a handshake between the thread that prepares the next one
// and OnWriteDone of the one in flight: whichever of the two comes second
// goes on (sends the prepared message, or ends the call), so the reader and
// the messages are only ever used by one thread at a time, and the reactor
// is not finished (and deleted) while a block is still being prepared.
class KvBlockSender final : public grpc::ServerWriteReactor<v1::GetKvResponse> {
 public:
  KvBlockSender(db::Store* store, grpc::CallbackServerContext* ctx,
                const v1::GetKvRequest& request)
      : ctx_(ctx) {
    absl::Status status = Open(store, request);
    if (!status.ok()) {
      End(status);
      return;
    }
    Step(Prepare(&responses_[0]));
  }

  void OnWriteDone(bool ok) override {
    std::optional<absl::StatusOr<bool>> prepared;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!prepared_.has_value()) {  // still preparing: the preparer goes on
        write_done_ = ok;
        return;
      }
      prepared = std::move(prepared_);
      prepared_.reset();
    }
    if (!ok) {
      Broken();
      return;
    }
    Step(*std::move(prepared));
  }

  void OnDone() override { delete this; }

 private:
  absl::Status Open(db::Store* store, const v1::GetKvRequest& request) {
    ASSIGN_OR_RETURN(db::KvReadOptions options, KvReadOptionsFromProto(request));
    dtype_ = *options.as_bytes;
    ASSIGN_OR_RETURN(reader_, store->ReadKv(request.namespace_(), options));
    return absl::OkStatus();
  }

  // The next block into `out`: true if there was one.
  absl::StatusOr<bool> Prepare(v1::GetKvResponse* out) {
    ASSIGN_OR_RETURN(bool more, reader_->Next(&block_));
    if (more) KvBlockToProto(block_, dtype_, out);
    return more;
  }

  // `prepared` (the outcome of preparing responses_[next_]) is to go out
  // now: no write is in flight.
  void Step(absl::StatusOr<bool> prepared) {
    while (true) {
      if (!prepared.ok() || !*prepared) {
        End(prepared.status());
        return;
      }
      StartWrite(&responses_[next_]);
      next_ ^= 1;
      prepared = Prepare(&responses_[next_]);
      std::lock_guard<std::mutex> lock(mu_);
      if (!write_done_.has_value()) {  // the write is still going: it goes on
        prepared_ = std::move(prepared);
        return;
      }
      const bool ok = *write_done_;
      write_done_.reset();
      if (!ok) {
        Broken();
        return;
      }
    }
  }

  void Broken() {
    reader_.reset();
    Finish(grpc::Status(grpc::StatusCode::CANCELLED, "GetKv stream broken"));
  }

  void End(const absl::Status& status) {
    if (!status.ok()) LogRpcFailure("GetKv", status, ctx_->peer());
    reader_.reset();
    Finish(ToGrpcStatus(status));
  }

  grpc::CallbackServerContext* const ctx_;
  db::KvDtype dtype_ = db::KvDtype::kFp32;
  std::unique_ptr<db::KvReader> reader_;
  db::KvBlock block_;
  v1::GetKvResponse responses_[2];
  int next_ = 0;  // the message to send next
  std::mutex mu_;
  std::optional<absl::StatusOr<bool>> prepared_;  // guarded by mu_
  std::optional<bool> write_done_;                // guarded by mu_
};

}  // namespace

grpc::ServerWriteReactor<v1::GetKvResponse>* NewKvBlockSender(db::Store* store,
                                                              grpc::CallbackServerContext* ctx,
                                                              const v1::GetKvRequest& request) {
  return new KvBlockSender(store, ctx, request);
}

}  // namespace mnemo::server
