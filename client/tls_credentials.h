// The SDK's channel credentials from ClientOptions: plaintext, TLS against
// a CA bundle, or mutual TLS with a client certificate.
#ifndef MNEMO_CLIENT_TLS_CREDENTIALS_H_
#define MNEMO_CLIENT_TLS_CREDENTIALS_H_

#include <memory>

#include "absl/status/statusor.h"
#include "grpcpp/security/credentials.h"
#include "mnemo/client.h"

namespace mnemo::client_internal {

// NOT_FOUND for an unreadable file, INVALID_ARGUMENT for a file without
// PEM, a client certificate without its key (or the reverse), or client
// certificate files without tls_ca_file.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentials(
    const ClientOptions& options);

}  // namespace mnemo::client_internal

#endif  // MNEMO_CLIENT_TLS_CREDENTIALS_H_
