// Parses the SDK's JSON filter syntax straight into the wire Filter, so the
// client does not link the index library (and FAISS) for it:
//   {"field": "value"}                   equality (string, number or bool)
//   {"field": {"in": [v1, v2]}}          membership (one or more scalars)
//   {"field": {"gte": 1, "lt": 5}}       numeric range (gt, gte, lt, lte)
// Several fields are ANDed; "{}" and "" mean no filter. Anything else
// (nulls, nested arrays, unknown operators, gt with gte) is INVALID_ARGUMENT.
// Internal to the client library.
#ifndef MNEMO_CLIENT_JSON_FILTER_H_
#define MNEMO_CLIENT_JSON_FILTER_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "mnemo/v1/mnemo.pb.h"

namespace mnemo::client_internal {

absl::StatusOr<v1::Filter> JsonFilterToProto(absl::string_view json);

}  // namespace mnemo::client_internal

#endif  // MNEMO_CLIENT_JSON_FILTER_H_
