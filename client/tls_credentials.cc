// ChannelCredentials: ClientOptions' TLS files -> gRPC credentials.
#include "client/tls_credentials.h"

#include "absl/status/status.h"
#include "common/pem_file.h"
#include "common/status_macros.h"

namespace mnemo::client_internal {

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentials(
    const ClientOptions& options) {
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "a TLS client certificate needs both tls_cert_file and tls_key_file");
  }
  if (options.tls_ca_file.empty()) {
    if (!options.tls_cert_file.empty()) {
      return absl::InvalidArgumentError(
          "a TLS client certificate needs tls_ca_file (the CA of the server's certificate)");
    }
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions ssl;
  ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadPemFile(options.tls_ca_file, "TLS CA file"));
  if (!options.tls_cert_file.empty()) {
    ASSIGN_OR_RETURN(ssl.pem_cert_chain,
                     ReadPemFile(options.tls_cert_file, "TLS client certificate"));
    ASSIGN_OR_RETURN(ssl.pem_private_key, ReadPemFile(options.tls_key_file, "TLS client key"));
  }
  return grpc::SslCredentials(ssl);
}

}  // namespace mnemo::client_internal
