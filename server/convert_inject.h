// Proto <-> db conversions of the memory-injection service
// (mnemo/v1/inject.proto <-> db/injection.h). FromProto functions refuse
// what the db types cannot express (an unknown mode or dtype) with
// INVALID_ARGUMENT.
#ifndef MNEMO_SERVER_CONVERT_INJECT_H_
#define MNEMO_SERVER_CONVERT_INJECT_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "db/injection.h"
#include "mnemo/v1/inject.pb.h"

namespace mnemo::server {

db::InjectionFiles InjectionFilesFromProto(const v1::RegisterInjectionModelRequest& request);
void InjectionInfoToProto(const std::string& ns, const db::InjectionInfo& info,
                          v1::InjectionInfo* out);
void InjectionLineageToProto(const encoder::InjectionLineage& lineage, v1::InjectionLineage* out);
absl::StatusOr<db::RecallOptions> RecallOptionsFromProto(const v1::RecallRequest& request);
// The response's dtype: INVALID_ARGUMENT for an unknown value.
absl::StatusOr<v1::InjectDtype> InjectDtypeFromProto(v1::InjectDtype dtype);
// Fills `out` with the hits' tokens in `dtype` (FP32 or FP16).
void RecallResultToProto(const db::RecallResult& result, v1::InjectDtype dtype,
                         v1::RecallResponse* out);

}  // namespace mnemo::server

#endif  // MNEMO_SERVER_CONVERT_INJECT_H_
