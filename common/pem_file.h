// Reading a PEM file (a TLS certificate, key or CA bundle) named by a flag
// or option, with errors that name both: what the SDK, the CLI and mnemod
// do before handing the bytes to gRPC's TLS credentials.
#ifndef MNEMO_COMMON_PEM_FILE_H_
#define MNEMO_COMMON_PEM_FILE_H_

#include <string>

#include "absl/status/statusor.h"

namespace mnemo {

// The file's contents. NOT_FOUND when it cannot be read, INVALID_ARGUMENT
// when it holds no PEM block ("-----BEGIN "). `what` names the setting in
// the message, e.g. "--tls-cert".
absl::StatusOr<std::string> ReadPemFile(const std::string& path, const std::string& what);

}  // namespace mnemo

#endif  // MNEMO_COMMON_PEM_FILE_H_
