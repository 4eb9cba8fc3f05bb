// The GetKv block sender (server/kv_block_sender.h).
#include "server/kv_block_sender.h"

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/convert.h"
#include "server/kv_block_wire.h"
#include "server/logging.h"
#include "server/service.h"
#include "server/status_mapping.h"

namespace mnemo::server {
namespace {

// Messages per call: one on the wire, the others filled ahead.
constexpr int kMessages = 3;

// A producer thread reads the blocks and fills free messages; the reactor
// sends the filled ones in order. Reading on a thread of its own matters:
// a write started from a gRPC callback goes out only after the callback
// returns, so a block read in the callback after StartWrite delays that
// write instead of overlapping it. Decisions are made under mu_ and acted
// on (StartWrite, Finish) outside it; OnDone joins the producer before the
// reactor is deleted.
class KvBlockSender final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  KvBlockSender(db::Store* store, grpc::CallbackServerContext* ctx,
                const v1::GetKvRequest& request, size_t max_message_bytes)
      : ctx_(ctx), max_message_bytes_(max_message_bytes) {
    absl::Status status = Open(store, request);
    if (!status.ok()) {
      LogRpcFailure("GetKv", status, ctx_->peer());
      Finish(ToGrpcStatus(status));
      return;
    }
    for (grpc::ByteBuffer& m : messages_) free_.push_back(&m);
    producer_ = std::thread([this] { Produce(); });
  }

  void OnWriteDone(bool ok) override {
    Action action;
    {
      std::lock_guard<std::mutex> lock(mu_);
      free_.push_back(in_flight_);
      in_flight_ = nullptr;
      if (!ok) {
        stop_ = true;
        action = FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "GetKv stream broken"));
      } else {
        action = NextLocked();
      }
    }
    space_.notify_one();
    Do(action);
  }

  void OnDone() override {
    if (producer_.joinable()) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        stop_ = true;
      }
      space_.notify_one();
      if (producer_.get_id() == std::this_thread::get_id()) {
        producer_.detach();  // it returns right after this reaction
      } else {
        producer_.join();
      }
    }
    delete this;
  }

 private:
  struct Action {
    grpc::ByteBuffer* write = nullptr;
    bool finish = false;
    grpc::Status status;
  };

  absl::Status Open(db::Store* store, const v1::GetKvRequest& request) {
    ASSIGN_OR_RETURN(db::KvReadOptions options, KvReadOptionsFromProto(request));
    dtype_ = *options.as_bytes;
    ASSIGN_OR_RETURN(reader_, store->ReadKv(request.namespace_(), options));
    return absl::OkStatus();
  }

  void Produce() {
    while (true) {
      grpc::ByteBuffer* slot;
      {
        std::unique_lock<std::mutex> lock(mu_);
        space_.wait(lock, [&] { return stop_ || !free_.empty(); });
        if (stop_) return;
        slot = free_.back();
        free_.pop_back();
      }
      absl::StatusOr<bool> more = reader_->Next(&block_);
      if (more.ok() && *more) {
        *slot = KvBlockResponseBuffer(block_, dtype_);
        if (const size_t bytes = slot->Length(); bytes > max_message_bytes_) {
          more = BlockOverMessageLimit(block_.chunk_id, block_.layer, bytes, max_message_bytes_);
        }
      }
      Action action;
      bool last = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (more.ok() && *more) {
          ready_.push_back(slot);
        } else {
          free_.push_back(slot);
          end_ = more.status();
          produced_all_ = last = true;
        }
        if (idle_ && !stop_) action = NextLocked();
      }
      Do(action);
      if (last) return;
    }
  }

  // What to do now that no write is in flight (under mu_).
  Action NextLocked() {
    idle_ = false;
    if (!ready_.empty()) {
      in_flight_ = ready_.front();
      ready_.pop_front();
      return Action{in_flight_, false, grpc::Status()};
    }
    if (produced_all_) {
      if (!end_.ok()) LogRpcFailure("GetKv", end_, ctx_->peer());
      return FinishLocked(ToGrpcStatus(end_));
    }
    idle_ = true;  // the producer sends its next message itself
    return Action{};
  }

  Action FinishLocked(grpc::Status status) {
    if (finished_) return Action{};
    finished_ = true;
    return Action{nullptr, true, std::move(status)};
  }

  void Do(const Action& action) {
    if (action.write != nullptr) {
      StartWrite(action.write);
    } else if (action.finish) {
      Finish(action.status);
    }
  }

  grpc::CallbackServerContext* const ctx_;
  const size_t max_message_bytes_;
  db::KvDtype dtype_ = db::KvDtype::kFp32;
  std::unique_ptr<db::KvReader> reader_;  // the producer's
  db::KvBlock block_;                     // the producer's
  grpc::ByteBuffer messages_[kMessages];
  std::thread producer_;
  std::mutex mu_;
  std::condition_variable space_;  // a message was freed, or stop_
  // Guarded by mu_:
  std::vector<grpc::ByteBuffer*> free_;
  std::deque<grpc::ByteBuffer*> ready_;  // filled, in block order
  grpc::ByteBuffer* in_flight_ = nullptr;
  bool idle_ = true;  // no write in flight and none started
  bool produced_all_ = false;
  absl::Status end_;  // the read's outcome, once produced_all_
  bool stop_ = false;
  bool finished_ = false;
};

}  // namespace

grpc::ServerWriteReactor<grpc::ByteBuffer>* NewKvBlockSender(db::Store* store,
                                                              grpc::CallbackServerContext* ctx,
                                                              const v1::GetKvRequest& request,
                                                              size_t max_message_bytes) {
  return new KvBlockSender(store, ctx, request, max_message_bytes);
}

}  // namespace mnemo::server
