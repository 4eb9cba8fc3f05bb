// mnemod's server credentials from its TLS flags: plaintext, TLS
// (--tls-cert, --tls-key), or mutual TLS where every client must present a
// certificate signed by --tls-client-ca.
#ifndef MNEMO_SERVER_TLS_CREDENTIALS_H_
#define MNEMO_SERVER_TLS_CREDENTIALS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/security/server_credentials.h"

namespace mnemo::server {

struct TlsFiles {
  std::string cert;       // PEM certificate chain; empty = plaintext
  std::string key;        // PEM private key of `cert`
  std::string client_ca;  // PEM CA bundle; set = clients must present a cert it signed
};

// NOT_FOUND for an unreadable file; INVALID_ARGUMENT for a file without
// PEM, a cert without its key (or the reverse), or a client CA without a
// server certificate.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(const TlsFiles& files);

}  // namespace mnemo::server

#endif  // MNEMO_SERVER_TLS_CREDENTIALS_H_
