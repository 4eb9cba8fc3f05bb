// Conversions between the SDK's types (mnemo/client.h) and the wire types
// (mnemo.v1 protobuf), for every message of both services, and of gRPC
// statuses: the client methods only call these. Internal to the client
// library (the SDK's public headers hold no protobuf type).
//
// ...ToProto functions refuse locally (INVALID_ARGUMENT) only what the wire
// cannot carry; everything else is the server's to check. ...FromProto
// functions for server replies answer DATA_LOSS for what no server sends
// (an unknown enum value, bytes that do not match a shape).
#ifndef MNEMO_CLIENT_CONVERT_H_
#define MNEMO_CLIENT_CONVERT_H_

#include <grpcpp/support/status.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "mnemo/client.h"
#include "mnemo/v1/mnemo.pb.h"

namespace mnemo::client_internal {

// gRPC and Abseil share the canonical code space, so codes map 1:1.
absl::Status FromGrpc(const grpc::Status& status);

// --- Core messages (namespaces, records, search, stats).

void NamespaceConfigToProto(const NamespaceConfig& config, v1::NamespaceConfig* out);
void QuotaChangeToProto(const QuotaChange& change, v1::NamespaceQuota* out);
// An unknown metric reads as inner product.
NamespaceInfo NamespaceInfoFromProto(const v1::NamespaceInfo& info);

// source_begin/end are set by the server only; not sent.
void ChunkToProto(const Chunk& chunk, v1::Chunk* out);
Chunk ChunkFromProto(const v1::Chunk& chunk);

v1::UpsertRequest UpsertRequestToProto(const std::string& ns,
                                       const std::vector<Document>& documents,
                                       const std::vector<Chunk>& chunks);
UpsertResult UpsertResultFromProto(const v1::UpsertResponse& response);
GetResult GetResultFromProto(const v1::GetResponse& response);

// Text queries travel as texts, anything else as vectors (the server checks
// dim and count). INVALID_ARGUMENT when both are set or the JSON filter is
// malformed. An out-of-range mode is passed on for the server to refuse.
absl::StatusOr<v1::SearchRequest> SearchRequestToProto(const SearchRequest& request);
std::vector<std::vector<Hit>> SearchResultsFromProto(const v1::SearchResponse& response);
BackupInfo BackupInfoFromProto(const v1::BackupInfo& info);
StatsResult StatsFromProto(const v1::StatsResponse& response);

// --- KV caches.

// Negative sizes go out as 0 (the server refuses them).
void FingerprintToProto(const ModelFingerprint& fingerprint, v1::ModelFingerprint* out);
ModelFingerprint FingerprintFromProto(const v1::ModelFingerprint& fingerprint);

// Out-of-range SDK values are passed on as is, for the server to refuse.
// From the wire, UNSPECIFIED is the default (kFp32, kFp16).
v1::KvDtype KvDtypeToProto(KvDtype dtype);
absl::StatusOr<KvDtype> KvDtypeFromProto(v1::KvDtype dtype);
v1::KvCodec KvCodecToProto(KvCodec codec);
absl::StatusOr<KvCodec> KvCodecFromProto(v1::KvCodec codec);

void KvConfigToProto(const KvConfig& config, v1::KvConfig* out);
absl::StatusOr<KvStats> KvStatsFromProto(const v1::KvStats& stats);

void KvPutHeaderToProto(const std::string& ns, const KvPutHeader& header, v1::PutKvHeader* out);
// One put layer, K and V encoded as `dtype`. INVALID_ARGUMENT for an unknown
// dtype or a finite value the dtype cannot hold.
absl::Status KvLayerToProto(uint32_t layer, const KvShape& shape, absl::Span<const float> k,
                            absl::Span<const float> v, KvDtype dtype, v1::KvLayer* out);
KvPutResult KvPutResultFromProto(const v1::PutKvResponse& response);

// Attend (client/attend_convert.cc).
v1::AttendRequest AttendOpenToProto(const std::string& ns, const ModelFingerprint& model,
                                    const std::vector<AttendChunk>& chunks);
v1::AttendRequest AttendStepToProto(uint32_t layer, int64_t position,
                                    absl::Span<const float> queries, int n_queries, bool top_k,
                                    const AttendBudget& budget);
// DATA_LOSS when the byte sizes do not match the shape.
absl::StatusOr<AttendPartial> AttendPartialFromProto(const v1::AttendResponse& response,
                                                     int n_queries, int n_heads, int head_dim);
absl::StatusOr<TopKeys> TopKeysFromProto(const v1::AttendResponse& response, int n_kv_heads,
                                         int head_dim);

// shared_memory and raw are the client's business: the arena session is
// set by the reader that uses it.
v1::GetKvRequest GetKvRequestToProto(const std::string& ns, const KvGetRequest& request);
// One streamed block. With `arena` (the mapped KV arena), K and V are read
// from it at the block's lease; with `raw`, they are left as views in the
// wire dtype. DATA_LOSS when the bytes do not match the shape or lie outside
// the arena.
absl::Status KvBlockFromProto(const v1::GetKvResponse& response, KvBlock* block,
                              std::optional<std::string_view> arena, bool raw);
KvPrefixMatch KvPrefixMatchFromProto(const v1::LookupKvPrefixResponse& response);

}  // namespace mnemo::client_internal

#endif  // MNEMO_CLIENT_CONVERT_H_
