// Conversions between the wire types (mnemo.v1 protobuf) and the storage
// engine's domain types (db::, index::), for every message of both services
// (core in convert.cc, KV caches in convert_kv.cc): the services only call
// these. Only server/ sees both sides.
//
// FromProto functions validate what the domain types cannot express: an
// unknown enum value, a oneof left unset, a range without bounds. They return
// INVALID_ARGUMENT naming the offending field; everything the engine can
// check itself (ids, dimensions, NaN, sizes, limits) is left to db::Store so
// that the rules live in one place.
#ifndef MNEMO_SERVER_CONVERT_H_
#define MNEMO_SERVER_CONVERT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "attention/context_attention.h"
#include "db/kv.h"
#include "db/kv_context.h"
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
// Unset fields stay unset (keep the namespace's limit).
db::QuotaChange QuotaChangeFromProto(const v1::NamespaceQuota& quota);

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

// The query vectors of a request: empty for text queries. INVALID_ARGUMENT
// when the request carries neither vectors nor texts, or vectors without a
// dim or not a positive multiple of it. Points into `request`.
absl::StatusOr<absl::Span<const float>> QueryVectorsFromProto(const v1::SearchRequest& request);

void HitToProto(const db::Hit& hit, v1::Hit* out);
// One QueryResult per query, hits in order.
void SearchResultsToProto(const std::vector<std::vector<db::Hit>>& results,
                          v1::SearchResponse* out);

std::vector<std::string> IdsFromProto(const google::protobuf::RepeatedPtrField<std::string>& ids);

struct UpsertBatch {
  std::vector<db::Document> documents;
  std::vector<db::Chunk> chunks;
};
UpsertBatch UpsertBatchFromProto(const v1::UpsertRequest& request);
// Adds `written` to the totals already in *out (UpsertStream sums messages).
void AddWriteResultToProto(const db::WriteResult& written, v1::UpsertResponse* out);
void GetResultToProto(db::GetResult result, v1::GetResponse* out);
void DeleteResultToProto(const db::DeleteResult& result, v1::DeleteResponse* out);
// A backup's description (db/backup.cc).
void BackupInfoToProto(const db::BackupInfo& info, v1::BackupInfo* out);
// Every namespace's info and their total size.
void StatsToProto(const std::vector<db::NamespaceInfo>& infos, const std::string& data_dir,
                  const std::string& version, v1::StatsResponse* out);

// --- KV caches (convert_kv.cc).

// Sizes beyond 2^30 are clamped there (the store refuses them).
ModelFingerprint FingerprintFromProto(const v1::ModelFingerprint& fingerprint);
void FingerprintToProto(const ModelFingerprint& fingerprint, v1::ModelFingerprint* out);

// UNSPECIFIED is the default (FP32, FP16); unknown values are
// INVALID_ARGUMENT. The server never sends UNSPECIFIED.
absl::StatusOr<db::KvDtype> KvDtypeFromProto(v1::KvDtype dtype);
v1::KvDtype KvDtypeToProto(db::KvDtype dtype);
absl::StatusOr<db::KvCodecKind> KvCodecFromProto(v1::KvCodec codec);
v1::KvCodec KvCodecToProto(db::KvCodecKind codec);

// Entropy unset = on; int4_group_size 0 = the codec's default.
absl::StatusOr<db::KvConfig> KvConfigFromProto(const v1::KvConfig& config);
void KvStatsToProto(const db::KvStats& stats, v1::KvStats* out);

db::KvPutHeader KvPutHeaderFromProto(const v1::PutKvHeader& header);
// One put layer: its shape, and K and V decoded from the wire dtype into *k
// and *v (reused between layers). INVALID_ARGUMENT naming the layer when the
// dtype is unknown or the bytes are not whole elements.
absl::Status KvLayerFromProto(const v1::KvLayer& layer, db::KvTensorShape* shape,
                              std::vector<float>* k, std::vector<float>* v);
void KvPutResultToProto(const db::KvPutResult& result, v1::PutKvResponse* out);

// A GetKv read; the blocks are asked for as bytes of the request's dtype.
absl::StatusOr<db::KvReadOptions> KvReadOptionsFromProto(const v1::GetKvRequest& request);
// One block read as bytes of `dtype`, all but K and V, which
// server/kv_block_wire.h appends on the wire (leased arena blocks:
// server/convert_kv_arena.h).
void KvBlockHeaderToProto(const db::KvBlock& block, db::KvDtype dtype, v1::GetKvResponse* out);

// Per id, whether it holds KV and its token count (0 when absent).
void ExistsKvToProto(const std::vector<uint32_t>& tokens, v1::ExistsKvResponse* out);
void KvPrefixMatchToProto(db::KvPrefixMatch match, v1::LookupKvPrefixResponse* out);

struct KvRetention {
  std::optional<bool> pin;            // unset = unchanged
  std::optional<int64_t> ttl_seconds;  // unset = unchanged
};
KvRetention KvRetentionFromProto(const v1::SetKvRetentionRequest& request);

// --- Attend (server/convert_attend.cc) ---
db::KvContextOptions KvContextOptionsFromProto(const v1::AttendOpen& open);
void AttendOpenedToProto(const db::KvContext& context, v1::AttendResponse* out);

// One step of an Attend stream, decoded.
struct AttendStepRequest {
  uint32_t layer = 0;
  bool top_k = false;
  attention::ClusterBudget budget;  // estimated_fraction 0 for top-k
  std::vector<float> queries;       // [n_queries, n_heads, head_dim], pre-RoPE
  int n_queries = 0;
  int64_t position = 0;
};
// INVALID_ARGUMENT for an unknown mode, no queries, or query bytes that are
// not n_queries * n_heads * head_dim float32 values (`shape` is the
// context's). Positions and budgets are the store's to check.
absl::StatusOr<AttendStepRequest> AttendStepFromProto(const v1::AttendStep& step,
                                                      const attention::AttentionShape& shape);
void AttendPartialToProto(const attention::PartialResult& result, v1::AttendResponse* out);
void TopKeysToProto(const attention::SelectedKeys& selected, v1::AttendResponse* out);
void AttendStatsToProto(const attention::ContextAttentionStats& stats, double seconds,
                        v1::AttendResponse* out);

}  // namespace mnemo::server

#endif  // MNEMO_SERVER_CONVERT_H_
