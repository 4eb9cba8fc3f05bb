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
  return out;
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
  out.text_queries.assign(request.text_queries().begin(), request.text_queries().end());
  ASSIGN_OR_RETURN(out.mode, SearchModeFromProto(request.mode()));
  out.dense_weight = request.dense_weight();
  out.bm25_weight = request.bm25_weight();
  if (request.rrf_k() > static_cast<uint32_t>(std::numeric_limits<int>::max())) {
    return absl::InvalidArgumentError(absl::StrCat("rrf_k ", request.rrf_k(), " is too large"));
  }
  out.rrf_k = static_cast<int>(request.rrf_k());
  out.highlight = request.highlight();
  out.k = request.k();
  out.expected_dim = request.dim();
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

void HitToProto(const db::Hit& hit, v1::Hit* out) {
  out->set_id(hit.id);
  out->set_score(hit.score);
  if (hit.chunk.has_value()) ChunkToProto(*hit.chunk, out->mutable_chunk());
  out->set_snippet(hit.snippet);
}

}  // namespace mnemo::server
