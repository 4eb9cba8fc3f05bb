// The SDK's JSON filter: parsed by the one parser of the syntax
// (common/filter.h, no FAISS and no protobuf), then converted to the wire
// Filter. "" and all-whitespace text mean no filter, as "{}" does; anything
// the parser refuses is INVALID_ARGUMENT. Internal to the client library.
#ifndef MNEMO_CLIENT_JSON_FILTER_H_
#define MNEMO_CLIENT_JSON_FILTER_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "mnemo/v1/mnemo.pb.h"

namespace mnemo::client_internal {

absl::StatusOr<v1::Filter> JsonFilterToProto(absl::string_view json);

}  // namespace mnemo::client_internal

#endif  // MNEMO_CLIENT_JSON_FILTER_H_
