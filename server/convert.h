// Conversions between the wire types (mnemo.v1 protobuf) and the storage
// engine's domain types (db::, index::). Only server/ sees both sides.
//
// FromProto functions validate what the domain types cannot express: an
// unknown enum value, a oneof left unset, a range without bounds. They return
// INVALID_ARGUMENT naming the offending field; everything the engine can
// check itself (ids, dimensions, NaN, sizes, limits) is left to db::Store so
// that the rules live in one place.
#ifndef MNEMO_SERVER_CONVERT_H_
#define MNEMO_SERVER_CONVERT_H_

#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "db/store.h"
#include "index/filter.h"
#include "mnemo/v1/mnemo.pb.h"

namespace mnemo::server {

// METRIC_UNSPECIFIED is inner product; unknown values are INVALID_ARGUMENT.
absl::StatusOr<index::Metric> MetricFromProto(v1::Metric metric);
v1::Metric MetricToProto(index::Metric metric);

// An empty index_factory becomes "Flat"; METRIC_UNSPECIFIED sets
// metric_unset (the store picks the default for the namespace's encoder).
absl::StatusOr<db::NamespaceConfig> NamespaceConfigFromProto(const v1::NamespaceConfig& config);
void NamespaceConfigToProto(const db::NamespaceConfig& config, v1::NamespaceConfig* out);
void NamespaceInfoToProto(const db::NamespaceInfo& info, v1::NamespaceInfo* out);

db::Document DocumentFromProto(const v1::Document& doc);
void DocumentToProto(const db::Document& doc, v1::Document* out);
db::Chunk ChunkFromProto(const v1::Chunk& chunk);
void ChunkToProto(const db::Chunk& chunk, v1::Chunk* out);

// Structural conversion of a filter. INVALID_ARGUMENT when a condition has no
// op, a value has no kind, a range has no bound or both gt and gte (lt and
// lte), or an `in` list is empty.
absl::StatusOr<index::Filter> FilterFromProto(const v1::Filter& filter);

// SEARCH_MODE_UNSPECIFIED is DENSE; unknown values are INVALID_ARGUMENT.
absl::StatusOr<db::SearchMode> SearchModeFromProto(v1::SearchMode mode);
v1::SearchMode SearchModeToProto(db::SearchMode mode);

// Builds the engine's search options from a request (k, filter, payload
// flags, per-call index parameters, text queries, mode, fusion parameters,
// highlight). k is passed through unchecked: the engine enforces 1..max_k.
// INVALID_ARGUMENT on an unknown mode or a filter FilterFromProto refuses.
absl::StatusOr<db::SearchOptions> SearchOptionsFromProto(const v1::SearchRequest& request);

void HitToProto(const db::Hit& hit, v1::Hit* out);

}  // namespace mnemo::server

#endif  // MNEMO_SERVER_CONVERT_H_
