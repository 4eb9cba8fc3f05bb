// Reactors that only end a streaming call with an error: what a streaming
// handler returns when its caller is refused before any message moves
// (authorization, server/authorizer.h). Each deletes itself when done.
#ifndef MNEMO_SERVER_REFUSED_REACTOR_H_
#define MNEMO_SERVER_REFUSED_REACTOR_H_

#include <grpcpp/support/server_callback.h>

#include "absl/status/status.h"
#include "server/status_mapping.h"

namespace mnemo::server {

template <typename Response>
class RefusedWriter final : public grpc::ServerWriteReactor<Response> {
 public:
  explicit RefusedWriter(const absl::Status& status) { this->Finish(ToGrpcStatus(status)); }
  void OnDone() override { delete this; }
};

template <typename Request>
class RefusedReader final : public grpc::ServerReadReactor<Request> {
 public:
  explicit RefusedReader(const absl::Status& status) { this->Finish(ToGrpcStatus(status)); }
  void OnDone() override { delete this; }
};

template <typename Request, typename Response>
class RefusedBidi final : public grpc::ServerBidiReactor<Request, Response> {
 public:
  explicit RefusedBidi(const absl::Status& status) { this->Finish(ToGrpcStatus(status)); }
  void OnDone() override { delete this; }
};

}  // namespace mnemo::server

#endif  // MNEMO_SERVER_REFUSED_REACTOR_H_
