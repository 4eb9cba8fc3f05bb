// The one place where absl::Status becomes grpc::Status (and back, for code
// in this process that calls gRPC). Abseil's canonical codes and gRPC's
// status codes are the same enumeration, so the mapping is 1:1 and keeps the
// message; a code outside the canonical range becomes UNKNOWN.
#ifndef MNEMO_SERVER_STATUS_MAPPING_H_
#define MNEMO_SERVER_STATUS_MAPPING_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace mnemo::server {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace mnemo::server

#endif  // MNEMO_SERVER_STATUS_MAPPING_H_
