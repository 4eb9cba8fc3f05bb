// SDK <-> wire conversions of the memory-injection calls (mnemo.v1.MnemoInject,
// mnemo/v1/inject.proto). Internal to the client library.
#ifndef MNEMO_CLIENT_INJECT_CONVERT_H_
#define MNEMO_CLIENT_INJECT_CONVERT_H_

#include "absl/status/statusor.h"
#include "mnemo/client.h"
#include "mnemo/v1/inject.pb.h"

namespace mnemo::client_internal {

InjectionLineage InjectionLineageFromProto(const v1::InjectionLineage& lineage);
InjectionInfo InjectionInfoFromProto(const v1::InjectionInfo& info);
// INVALID_ARGUMENT locally when the request has no query or both kinds.
absl::StatusOr<v1::RecallRequest> RecallRequestToProto(const RecallRequest& request);
// DATA_LOSS when a hit's tokens do not hold m * dim values of the dtype.
absl::StatusOr<RecallResult> RecallResultFromProto(const v1::RecallResponse& response);

}  // namespace mnemo::client_internal

#endif  // MNEMO_CLIENT_INJECT_CONVERT_H_
