// Proto <-> db conversion of the core messages: namespaces, documents,
// chunks, filters, search, stats (server/convert.h).
#include "server/convert.h"

#include <limits>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace mnemo::server {
namespace {

absl::StatusOr<index::FilterValue> FilterValueFromProto(const v1::FilterValue& value,
                                                        absl::string_view where) {
  switch (value.kind_case()) {
    case v1::FilterValue::kStringValue:
      return index::FilterValue(value.string_value());
    case v1::FilterValue::kNumberValue:
      return index::FilterValue(value.number_value());
    case v1::FilterValue::kBoolValue:
      return index::FilterValue(value.bool_value());
    case v1::FilterValue::KIND_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat(where, ": filter value has no kind set"));
}

absl::Status RangeFromProto(const v1::Range& range, absl::string_view where,
                            index::FieldCondition* out) {
  if (range.has_gt() && range.has_gte()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": range sets both gt and gte"));
  }
  if (range.has_lt() && range.has_lte()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": range sets both lt and lte"));
  }
  if (range.has_gt()) {
    out->lower = range.gt();
    out->lower_inclusive = false;
  } else if (range.has_gte()) {
    out->lower = range.gte();
    out->lower_inclusive = true;
  }
  if (range.has_lt()) {
    out->upper = range.lt();
    out->upper_inclusive = false;
  } else if (range.has_lte()) {
    out->upper = range.lte();
    out->upper_inclusive = true;
  }
  if (!out->lower.has_value() && !out->upper.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": range has no bound"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<index::Metric> MetricFromProto(v1::Metric metric) {
  switch (metric) {
    case v1::METRIC_UNSPECIFIED:
    case v1::METRIC_INNER_PRODUCT:
      return index::Metric::kInnerProduct;
    case v1::METRIC_L2:
      return index::Metric::kL2;
    case v1::METRIC_COSINE:
      return index::Metric::kCosine;
    default:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown metric value ", static_cast<int>(metric)));
}

v1::Metric MetricToProto(index::Metric metric) {
  switch (metric) {
    case index::Metric::kInnerProduct:
      return v1::METRIC_INNER_PRODUCT;
    case index::Metric::kL2:
      return v1::METRIC_L2;
    case index::Metric::kCosine:
      return v1::METRIC_COSINE;
  }
  return v1::METRIC_UNSPECIFIED;
}

absl::StatusOr<db::NamespaceConfig> NamespaceConfigFromProto(const v1::NamespaceConfig& config) {
  db::NamespaceConfig out;
  out.name = config.name();
  out.dim = config.dim();
  ASSIGN_OR_RETURN(out.metric, MetricFromProto(config.metric()));
  out.metric_unset = config.metric() == v1::METRIC_UNSPECIFIED;
  out.index_factory = config.index_factory().empty() ? "Flat" : config.index_factory();
  out.train_threshold = config.train_threshold();
  out.description = config.description();
  out.encoder = config.encoder();
  out.chunk_max_tokens = config.chunk_max_tokens();
  if (config.has_chunk_overlap_tokens()) out.chunk_overlap_tokens = config.chunk_overlap_tokens();
  if (config.has_late_interaction()) out.late_interaction = config.late_interaction();
  out.late_interaction_nbits = config.late_interaction_nbits();
  out.late_interaction_train_tokens = config.late_interaction_train_tokens();
  out.quota = db::NamespaceQuota{config.quota().max_bytes(), config.quota().max_chunks(),
                                 config.quota().max_kv_bytes()};
  return out;
}

db::QuotaChange QuotaChangeFromProto(const v1::NamespaceQuota& quota) {
  db::QuotaChange change;
  if (quota.has_max_bytes()) change.max_bytes = quota.max_bytes();
  if (quota.has_max_chunks()) change.max_chunks = quota.max_chunks();
  if (quota.has_max_kv_bytes()) change.max_kv_bytes = quota.max_kv_bytes();
  return change;
}

void NamespaceConfigToProto(const db::NamespaceConfig& config, v1::NamespaceConfig* out) {
  out->set_name(config.name);
  out->set_dim(config.dim);
  out->set_metric(MetricToProto(config.metric));
  out->set_index_factory(config.index_factory);
  out->set_train_threshold(config.train_threshold);
  out->set_description(config.description);
  out->set_encoder(config.encoder);
  out->set_chunk_max_tokens(config.chunk_max_tokens);
  if (config.chunk_overlap_tokens.has_value()) {
    out->set_chunk_overlap_tokens(*config.chunk_overlap_tokens);
  } else {
    out->clear_chunk_overlap_tokens();
  }
  if (config.late_interaction.has_value()) {
    out->set_late_interaction(*config.late_interaction);
  } else {
    out->clear_late_interaction();
  }
  out->set_late_interaction_nbits(config.late_interaction_nbits);
  out->set_late_interaction_train_tokens(config.late_interaction_train_tokens);
  // Only the limits that are set (0 = unlimited, as an absent field reads):
  // a namespace without quotas round-trips to the config it was given.
  out->clear_quota();
  const db::NamespaceQuota& q = config.quota;
  if (q.max_bytes != 0) out->mutable_quota()->set_max_bytes(q.max_bytes);
  if (q.max_chunks != 0) out->mutable_quota()->set_max_chunks(q.max_chunks);
  if (q.max_kv_bytes != 0) out->mutable_quota()->set_max_kv_bytes(q.max_kv_bytes);
}

void NamespaceInfoToProto(const db::NamespaceInfo& info, v1::NamespaceInfo* out) {
  NamespaceConfigToProto(info.config, out->mutable_config());
  out->set_chunk_count(info.chunk_count);
  out->set_document_count(info.document_count);
  out->set_index_trained(info.index_trained);
  out->set_index_description(info.index_description);
  out->set_created_unix_ms(info.created_unix_ms);
  out->set_approximate_bytes(info.approximate_bytes);
  out->set_late_interaction_tokens(info.late_interaction_tokens);
  out->set_late_interaction_trained(info.late_interaction_trained);
  out->set_late_interaction_description(info.late_interaction_description);
  v1::NamespaceUsage* usage = out->mutable_usage();
  usage->set_bytes(info.usage.bytes);
  usage->set_chunks(info.usage.chunks);
  usage->set_kv_bytes(info.usage.kv_bytes);
  out->set_damaged(!info.damage.empty());
  out->set_damage(info.damage);
}

db::Document DocumentFromProto(const v1::Document& doc) {
  db::Document out;
  out.id = doc.id();
  out.text = doc.text();
  out.metadata_json = doc.metadata_json();
  return out;
}

void DocumentToProto(const db::Document& doc, v1::Document* out) {
  out->set_id(doc.id);
  out->set_text(doc.text);
  out->set_metadata_json(doc.metadata_json);
}

db::Chunk ChunkFromProto(const v1::Chunk& chunk) {
  db::Chunk out;
  out.id = chunk.id();
  out.document_id = chunk.document_id();
  out.text = chunk.text();
  out.metadata_json = chunk.metadata_json();
  out.vector.assign(chunk.vector().begin(), chunk.vector().end());
  out.source_begin = chunk.source_begin();
  out.source_end = chunk.source_end();
  return out;
}

void ChunkToProto(const db::Chunk& chunk, v1::Chunk* out) {
  out->set_id(chunk.id);
  out->set_document_id(chunk.document_id);
  out->set_text(chunk.text);
  out->set_metadata_json(chunk.metadata_json);
  out->mutable_vector()->Assign(chunk.vector.begin(), chunk.vector.end());
  out->set_source_begin(chunk.source_begin);
  out->set_source_end(chunk.source_end);
}

absl::StatusOr<index::Filter> FilterFromProto(const v1::Filter& filter) {
  index::Filter out;
  out.all_of.reserve(filter.all_of_size());
  for (int i = 0; i < filter.all_of_size(); ++i) {
    const v1::FieldCondition& cond = filter.all_of(i);
    const std::string where = absl::StrCat("filter.all_of[", i, "] (field \"", cond.field(), "\")");
    index::FieldCondition fc;
    fc.field = cond.field();
    switch (cond.op_case()) {
      case v1::FieldCondition::kEq: {
        fc.op = index::FieldCondition::Op::kEq;
        ASSIGN_OR_RETURN(index::FilterValue v, FilterValueFromProto(cond.eq(), where));
        fc.values.push_back(std::move(v));
        break;
      }
      case v1::FieldCondition::kIn: {
        fc.op = index::FieldCondition::Op::kIn;
        if (cond.in().values_size() == 0) {
          return absl::InvalidArgumentError(absl::StrCat(where, ": empty \"in\" list"));
        }
        for (const v1::FilterValue& value : cond.in().values()) {
          ASSIGN_OR_RETURN(index::FilterValue v, FilterValueFromProto(value, where));
          fc.values.push_back(std::move(v));
        }
        break;
      }
      case v1::FieldCondition::kRange:
        fc.op = index::FieldCondition::Op::kRange;
        RETURN_IF_ERROR(RangeFromProto(cond.range(), where, &fc));
        break;
      case v1::FieldCondition::OP_NOT_SET:
        return absl::InvalidArgumentError(absl::StrCat(where, ": condition has no op set"));
    }
    out.all_of.push_back(std::move(fc));
  }
  return out;
}

absl::StatusOr<db::SearchMode> SearchModeFromProto(v1::SearchMode mode) {
  switch (mode) {
    case v1::SEARCH_MODE_UNSPECIFIED:
    case v1::SEARCH_MODE_DENSE:
      return db::SearchMode::kDense;
    case v1::SEARCH_MODE_BM25:
      return db::SearchMode::kBm25;
    case v1::SEARCH_MODE_HYBRID_RRF:
      return db::SearchMode::kHybridRrf;
    case v1::SEARCH_MODE_HYBRID_WEIGHTED:
      return db::SearchMode::kHybridWeighted;
    case v1::SEARCH_MODE_LATE_INTERACTION:
      return db::SearchMode::kLateInteraction;
    default:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown search mode value ", static_cast<int>(mode)));
}

v1::SearchMode SearchModeToProto(db::SearchMode mode) {
  switch (mode) {
    case db::SearchMode::kDense:
      return v1::SEARCH_MODE_DENSE;
    case db::SearchMode::kBm25:
      return v1::SEARCH_MODE_BM25;
    case db::SearchMode::kHybridRrf:
      return v1::SEARCH_MODE_HYBRID_RRF;
    case db::SearchMode::kHybridWeighted:
      return v1::SEARCH_MODE_HYBRID_WEIGHTED;
    case db::SearchMode::kLateInteraction:
      return v1::SEARCH_MODE_LATE_INTERACTION;
  }
  return v1::SEARCH_MODE_UNSPECIFIED;
}

absl::StatusOr<db::SearchOptions> SearchOptionsFromProto(const v1::SearchRequest& request) {
  db::SearchOptions out;
  out.text_queries.assign(request.texts().texts().begin(), request.texts().texts().end());
  ASSIGN_OR_RETURN(out.mode, SearchModeFromProto(request.mode()));
  out.dense_weight = request.dense_weight();
  out.bm25_weight = request.bm25_weight();
  if (request.rrf_k() > static_cast<uint32_t>(std::numeric_limits<int>::max())) {
    return absl::InvalidArgumentError(absl::StrCat("rrf_k ", request.rrf_k(), " is too large"));
  }
  out.rrf_k = static_cast<int>(request.rrf_k());
  out.highlight = request.highlight();
  out.k = request.k();
  out.expected_dim = request.vectors().dim();
  ASSIGN_OR_RETURN(out.filter, FilterFromProto(request.filter()));
  out.include_payload = request.include_payload();
  out.include_vectors = request.include_vectors();
  out.params.hnsw_ef_search = request.params().hnsw_ef_search();
  out.params.ivf_nprobe = request.params().ivf_nprobe();
  out.params.refine_factor = request.params().refine_factor();
  out.late_nprobe = request.params().late_nprobe();
  out.late_max_candidates = request.params().late_max_candidates();
  return out;
}

absl::StatusOr<absl::Span<const float>> QueryVectorsFromProto(const v1::SearchRequest& request) {
  switch (request.query_case()) {
    case v1::SearchRequest::kTexts:
      // Text queries go to the store as they are.
      if (request.texts().texts_size() == 0) {
        return absl::InvalidArgumentError("search request carries an empty list of texts");
      }
      return absl::Span<const float>();
    case v1::SearchRequest::kVectors:
      break;
    case v1::SearchRequest::QUERY_NOT_SET:
      return absl::InvalidArgumentError("search request carries neither vectors nor texts");
  }
  const v1::QueryVectors& vectors = request.vectors();
  if (vectors.dim() == 0) {
    return absl::InvalidArgumentError(
        "search request must state the query dim (or carry text queries)");
  }
  if (vectors.data_size() == 0 || vectors.data_size() % vectors.dim() != 0) {
    return absl::InvalidArgumentError(absl::StrCat("queries holds ", vectors.data_size(),
                                                   " floats, not a positive multiple of dim ",
                                                   vectors.dim()));
  }
  return absl::MakeConstSpan(vectors.data().data(), vectors.data_size());
}

void HitToProto(const db::Hit& hit, v1::Hit* out) {
  out->set_id(hit.id);
  out->set_score(hit.score);
  if (hit.chunk.has_value()) ChunkToProto(*hit.chunk, out->mutable_chunk());
  out->set_snippet(hit.snippet);
}

void SearchResultsToProto(const std::vector<std::vector<db::Hit>>& results,
                          v1::SearchResponse* out) {
  for (const std::vector<db::Hit>& hits : results) {
    v1::QueryResult* result = out->add_results();
    for (const db::Hit& hit : hits) HitToProto(hit, result->add_hits());
  }
}

std::vector<std::string> IdsFromProto(const google::protobuf::RepeatedPtrField<std::string>& ids) {
  return std::vector<std::string>(ids.begin(), ids.end());
}

UpsertBatch UpsertBatchFromProto(const v1::UpsertRequest& request) {
  UpsertBatch batch;
  batch.documents.reserve(request.documents_size());
  for (const v1::Document& doc : request.documents()) {
    batch.documents.push_back(DocumentFromProto(doc));
  }
  batch.chunks.reserve(request.chunks_size());
  for (const v1::Chunk& chunk : request.chunks()) batch.chunks.push_back(ChunkFromProto(chunk));
  return batch;
}

void AddWriteResultToProto(const db::WriteResult& written, v1::UpsertResponse* out) {
  out->set_documents_written(out->documents_written() + written.documents_written);
  out->set_chunks_written(out->chunks_written() + written.chunks_written);
}

void GetResultToProto(db::GetResult result, v1::GetResponse* out) {
  for (const db::Chunk& chunk : result.chunks) ChunkToProto(chunk, out->add_chunks());
  for (const db::Document& doc : result.documents) DocumentToProto(doc, out->add_documents());
  for (std::string& id : result.missing_ids) out->add_missing_ids(std::move(id));
}

void DeleteResultToProto(const db::DeleteResult& result, v1::DeleteResponse* out) {
  out->set_chunks_deleted(result.chunks_deleted);
  out->set_documents_deleted(result.documents_deleted);
}

void BackupInfoToProto(const db::BackupInfo& info, v1::BackupInfo* out) {
  out->set_id(info.id);
  out->set_created_unix_s(info.created_unix_s);
  out->set_size_bytes(info.size_bytes);
  out->set_files(info.files);
  out->set_sequence(info.sequence);
}

void StatsToProto(const std::vector<db::NamespaceInfo>& infos, const std::string& data_dir,
                  const std::string& version, v1::StatsResponse* out) {
  uint64_t total = 0;
  for (const db::NamespaceInfo& info : infos) {
    NamespaceInfoToProto(info, out->add_namespaces());
    total += info.approximate_bytes;
  }
  out->set_total_approximate_bytes(total);
  out->set_data_dir(data_dir);
  out->set_version(version);
}

}  // namespace mnemo::server
