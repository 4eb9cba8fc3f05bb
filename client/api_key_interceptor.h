// The channel interceptor that sends ClientOptions::api_key with every call
// of the SDK (unary, streaming and generic ones alike) as the metadata
// "authorization: Bearer <key>". Internal to the client library.
#ifndef MNEMO_CLIENT_API_KEY_INTERCEPTOR_H_
#define MNEMO_CLIENT_API_KEY_INTERCEPTOR_H_

#include <grpcpp/support/client_interceptor.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace mnemo::client_internal {

// INVALID_ARGUMENT when `key` holds a character outside printable ASCII
// (it could not travel as a metadata value).
absl::Status ValidateApiKey(absl::string_view key);

// Factories for grpc::experimental::CreateCustomChannelWithInterceptors:
// one adding `key` (non-empty, validated) to every call; none when empty.
std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>>
ApiKeyInterceptors(const std::string& key);

}  // namespace mnemo::client_internal

#endif  // MNEMO_CLIENT_API_KEY_INTERCEPTOR_H_
