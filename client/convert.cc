// SDK <-> wire conversion of every message (client/convert.h).
#include "client/convert.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/json_filter.h"
#include "common/half.h"
#include "common/model_fingerprint_wire.h"
#include "common/status_macros.h"

namespace mnemo::client_internal {
namespace {

// K/V travel as little-endian elements; the copies below are plain memcpy.
static_assert(std::endian::native == std::endian::little,
              "the KV wire format is little-endian; add byte swaps for this host");

v1::Metric MetricToProto(Metric m) {
  switch (m) {
    case Metric::kInnerProduct:
      return v1::METRIC_INNER_PRODUCT;
    case Metric::kL2:
      return v1::METRIC_L2;
    case Metric::kCosine:
      return v1::METRIC_COSINE;
  }
  return v1::METRIC_UNSPECIFIED;
}

Metric MetricFromProto(v1::Metric m) {
  switch (m) {
    case v1::METRIC_L2:
      return Metric::kL2;
    case v1::METRIC_COSINE:
      return Metric::kCosine;
    default:
      return Metric::kInnerProduct;
  }
}

v1::SearchMode SearchModeToProto(SearchMode mode) {
  switch (mode) {
    case SearchMode::kDense:
      return v1::SEARCH_MODE_DENSE;
    case SearchMode::kBm25:
      return v1::SEARCH_MODE_BM25;
    case SearchMode::kHybridRrf:
      return v1::SEARCH_MODE_HYBRID_RRF;
    case SearchMode::kHybridWeighted:
      return v1::SEARCH_MODE_HYBRID_WEIGHTED;
    case SearchMode::kLateInteraction:
      return v1::SEARCH_MODE_LATE_INTERACTION;
  }
  // An out-of-range value is passed on as is; the server refuses it.
  return static_cast<v1::SearchMode>(static_cast<int>(mode));
}

void DocumentToProto(const Document& d, v1::Document* out) {
  out->set_id(d.id);
  out->set_text(d.text);
  out->set_metadata_json(d.metadata_json);
}

// Floats as little-endian `dtype` elements. INVALID_ARGUMENT for a finite
// value the type cannot hold (it would arrive as infinity and be refused
// with a less helpful message); NaN and infinity pass, for the server to
// refuse.
absl::Status FloatsToWire(absl::Span<const float> x, KvDtype dtype, absl::string_view what,
                          std::string* out) {
  if (dtype != KvDtype::kFp32 && dtype != KvDtype::kFp16 && dtype != KvDtype::kBf16) {
    return absl::InvalidArgumentError(absl::StrCat("unknown KV dtype ", static_cast<int>(dtype)));
  }
  out->resize(x.size() * KvDtypeBytes(dtype));
  if (dtype == KvDtype::kFp32) {
    if (!x.empty()) std::memcpy(out->data(), x.data(), out->size());
    return absl::OkStatus();
  }
  const bool fp16 = dtype == KvDtype::kFp16;
  char* dst = out->data();
  for (size_t i = 0; i < x.size(); ++i) {
    const uint16_t h = fp16 ? FloatToHalf(x[i]) : FloatToBf16(x[i]);
    if (std::isfinite(x[i]) && (h & 0x7fff) == (fp16 ? 0x7c00 : 0x7f80)) {
      return absl::InvalidArgumentError(absl::StrCat(what, " element ", i, " = ", x[i],
                                                     " is beyond the range of ", KvDtypeName(dtype),
                                                     "; send it as fp32"));
    }
    std::memcpy(dst + 2 * i, &h, 2);
  }
  return absl::OkStatus();
}

absl::Status WireToFloats(std::string_view bytes, KvDtype dtype, size_t elements,
                          absl::string_view what, std::vector<float>* out) {
  if (bytes.size() != elements * KvDtypeBytes(dtype)) {
    return absl::DataLossError(absl::StrCat(what, " holds ", bytes.size(), " bytes; its shape (",
                                            elements, " ", KvDtypeName(dtype), " elements) needs ",
                                            elements * KvDtypeBytes(dtype)));
  }
  out->resize(elements);
  if (dtype == KvDtype::kFp32) {
    if (elements > 0) std::memcpy(out->data(), bytes.data(), bytes.size());
    return absl::OkStatus();
  }
  const bool fp16 = dtype == KvDtype::kFp16;
  for (size_t i = 0; i < elements; ++i) {
    uint16_t h;
    std::memcpy(&h, bytes.data() + 2 * i, 2);
    (*out)[i] = fp16 ? HalfToFloat(h) : Bf16ToFloat(h);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  int code = static_cast<int>(status.error_code());
  if (code < 0 || code > 16) code = static_cast<int>(absl::StatusCode::kUnknown);
  return absl::Status(static_cast<absl::StatusCode>(code), status.error_message());
}

// --- Core messages ----------------------------------------------------------

void NamespaceConfigToProto(const NamespaceConfig& config, v1::NamespaceConfig* out) {
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
  }
  if (config.late_interaction.has_value()) out->set_late_interaction(*config.late_interaction);
  out->set_late_interaction_nbits(config.late_interaction_nbits);
  out->set_late_interaction_train_tokens(config.late_interaction_train_tokens);
  v1::NamespaceQuota* quota = out->mutable_quota();
  quota->set_max_bytes(config.quota.max_bytes);
  quota->set_max_chunks(config.quota.max_chunks);
  quota->set_max_kv_bytes(config.quota.max_kv_bytes);
}

void QuotaChangeToProto(const QuotaChange& change, v1::NamespaceQuota* out) {
  if (change.max_bytes.has_value()) out->set_max_bytes(*change.max_bytes);
  if (change.max_chunks.has_value()) out->set_max_chunks(*change.max_chunks);
  if (change.max_kv_bytes.has_value()) out->set_max_kv_bytes(*change.max_kv_bytes);
}

NamespaceInfo NamespaceInfoFromProto(const v1::NamespaceInfo& p) {
  NamespaceInfo info;
  const v1::NamespaceConfig& c = p.config();
  info.config.name = c.name();
  info.config.dim = c.dim();
  info.config.metric = MetricFromProto(c.metric());
  info.config.index_factory = c.index_factory();
  info.config.train_threshold = c.train_threshold();
  info.config.description = c.description();
  info.config.encoder = c.encoder();
  info.config.chunk_max_tokens = c.chunk_max_tokens();
  if (c.has_chunk_overlap_tokens()) info.config.chunk_overlap_tokens = c.chunk_overlap_tokens();
  if (c.has_late_interaction()) info.config.late_interaction = c.late_interaction();
  info.config.late_interaction_nbits = c.late_interaction_nbits();
  info.config.late_interaction_train_tokens = c.late_interaction_train_tokens();
  info.config.quota.max_bytes = c.quota().max_bytes();
  info.config.quota.max_chunks = c.quota().max_chunks();
  info.config.quota.max_kv_bytes = c.quota().max_kv_bytes();
  info.usage.bytes = p.usage().bytes();
  info.usage.chunks = p.usage().chunks();
  info.usage.kv_bytes = p.usage().kv_bytes();
  info.chunk_count = p.chunk_count();
  info.document_count = p.document_count();
  info.index_trained = p.index_trained();
  info.index_description = p.index_description();
  info.created_unix_ms = p.created_unix_ms();
  info.approximate_bytes = p.approximate_bytes();
  info.late_interaction_tokens = p.late_interaction_tokens();
  info.late_interaction_trained = p.late_interaction_trained();
  info.late_interaction_description = p.late_interaction_description();
  info.damaged = p.damaged();
  info.damage = p.damage();
  return info;
}

void ChunkToProto(const Chunk& c, v1::Chunk* out) {
  out->set_id(c.id);
  out->set_document_id(c.document_id);
  out->set_text(c.text);
  out->set_metadata_json(c.metadata_json);
  out->mutable_vector()->Assign(c.vector.begin(), c.vector.end());
}

Chunk ChunkFromProto(const v1::Chunk& p) {
  Chunk c;
  c.id = p.id();
  c.document_id = p.document_id();
  c.text = p.text();
  c.metadata_json = p.metadata_json();
  c.vector.assign(p.vector().begin(), p.vector().end());
  c.source_begin = p.source_begin();
  c.source_end = p.source_end();
  return c;
}

v1::UpsertRequest UpsertRequestToProto(const std::string& ns,
                                       const std::vector<Document>& documents,
                                       const std::vector<Chunk>& chunks) {
  v1::UpsertRequest request;
  request.set_namespace_(ns);
  for (const Document& d : documents) DocumentToProto(d, request.add_documents());
  for (const Chunk& c : chunks) ChunkToProto(c, request.add_chunks());
  return request;
}

UpsertResult UpsertResultFromProto(const v1::UpsertResponse& response) {
  return UpsertResult{response.documents_written(), response.chunks_written()};
}

GetResult GetResultFromProto(const v1::GetResponse& response) {
  GetResult out;
  for (const v1::Chunk& c : response.chunks()) out.chunks.push_back(ChunkFromProto(c));
  for (const v1::Document& d : response.documents()) {
    out.documents.push_back(Document{d.id(), d.text(), d.metadata_json()});
  }
  out.missing_ids.assign(response.missing_ids().begin(), response.missing_ids().end());
  return out;
}

absl::StatusOr<v1::SearchRequest> SearchRequestToProto(const SearchRequest& req) {
  v1::SearchRequest request;
  request.set_namespace_(req.ns);
  if (req.text_queries.empty()) {
    request.mutable_vectors()->set_dim(req.dim);
    request.mutable_vectors()->mutable_data()->Assign(req.queries.begin(), req.queries.end());
  } else if (req.dim != 0 || !req.queries.empty()) {
    return absl::InvalidArgumentError(
        "a search carries either text queries or query vectors, not both");
  } else {
    for (const std::string& text : req.text_queries) request.mutable_texts()->add_texts(text);
  }
  request.set_k(req.k);
  ASSIGN_OR_RETURN(*request.mutable_filter(), JsonFilterToProto(req.filter_json));
  request.set_include_payload(req.include_payload);
  request.set_include_vectors(req.include_vectors);
  v1::SearchParams* params = request.mutable_params();
  params->set_hnsw_ef_search(req.hnsw_ef_search);
  params->set_ivf_nprobe(req.ivf_nprobe);
  params->set_refine_factor(req.refine_factor);
  params->set_late_nprobe(req.late_nprobe);
  params->set_late_max_candidates(req.late_max_candidates);
  request.set_mode(SearchModeToProto(req.mode));
  request.set_dense_weight(req.dense_weight);
  request.set_bm25_weight(req.bm25_weight);
  request.set_rrf_k(req.rrf_k);
  request.set_highlight(req.highlight);
  return request;
}

std::vector<std::vector<Hit>> SearchResultsFromProto(const v1::SearchResponse& response) {
  std::vector<std::vector<Hit>> out;
  out.reserve(response.results_size());
  for (const v1::QueryResult& result : response.results()) {
    std::vector<Hit>& hits = out.emplace_back();
    hits.reserve(result.hits_size());
    for (const v1::Hit& h : result.hits()) {
      Hit hit;
      hit.id = h.id();
      hit.score = h.score();
      if (h.has_chunk()) hit.chunk = ChunkFromProto(h.chunk());
      hit.snippet = h.snippet();
      hits.push_back(std::move(hit));
    }
  }
  return out;
}

BackupInfo BackupInfoFromProto(const v1::BackupInfo& info) {
  BackupInfo out;
  out.id = info.id();
  out.created_unix_s = info.created_unix_s();
  out.size_bytes = info.size_bytes();
  out.files = info.files();
  out.sequence = info.sequence();
  return out;
}

StatsResult StatsFromProto(const v1::StatsResponse& response) {
  StatsResult out;
  for (const v1::NamespaceInfo& info : response.namespaces()) {
    out.namespaces.push_back(NamespaceInfoFromProto(info));
  }
  out.total_approximate_bytes = response.total_approximate_bytes();
  out.data_dir = response.data_dir();
  out.version = response.version();
  return out;
}

// --- KV caches --------------------------------------------------------------

void FingerprintToProto(const ModelFingerprint& fingerprint, v1::ModelFingerprint* out) {
  FingerprintToWire(fingerprint, out);
}

ModelFingerprint FingerprintFromProto(const v1::ModelFingerprint& fingerprint) {
  return FingerprintFromWire(fingerprint);
}

v1::KvDtype KvDtypeToProto(KvDtype dtype) {
  switch (dtype) {
    case KvDtype::kFp32:
      return v1::KV_DTYPE_FP32;
    case KvDtype::kFp16:
      return v1::KV_DTYPE_FP16;
    case KvDtype::kBf16:
      return v1::KV_DTYPE_BF16;
  }
  return static_cast<v1::KvDtype>(static_cast<int>(dtype));
}

absl::StatusOr<KvDtype> KvDtypeFromProto(v1::KvDtype dtype) {
  switch (dtype) {
    case v1::KV_DTYPE_UNSPECIFIED:
    case v1::KV_DTYPE_FP32:
      return KvDtype::kFp32;
    case v1::KV_DTYPE_FP16:
      return KvDtype::kFp16;
    case v1::KV_DTYPE_BF16:
      return KvDtype::kBf16;
    default:
      break;
  }
  return absl::DataLossError(
      absl::StrCat("the server sent KV in unknown dtype ", static_cast<int>(dtype)));
}

v1::KvCodec KvCodecToProto(KvCodec codec) {
  switch (codec) {
    case KvCodec::kFp32:
      return v1::KV_CODEC_FP32;
    case KvCodec::kFp16:
      return v1::KV_CODEC_FP16;
    case KvCodec::kBf16:
      return v1::KV_CODEC_BF16;
    case KvCodec::kInt8:
      return v1::KV_CODEC_INT8;
    case KvCodec::kInt4:
      return v1::KV_CODEC_INT4;
    case KvCodec::kKvq:
      return v1::KV_CODEC_KVQ;
  }
  return static_cast<v1::KvCodec>(static_cast<int>(codec));
}

absl::StatusOr<KvCodec> KvCodecFromProto(v1::KvCodec codec) {
  switch (codec) {
    case v1::KV_CODEC_UNSPECIFIED:
    case v1::KV_CODEC_FP16:
      return KvCodec::kFp16;
    case v1::KV_CODEC_FP32:
      return KvCodec::kFp32;
    case v1::KV_CODEC_BF16:
      return KvCodec::kBf16;
    case v1::KV_CODEC_INT8:
      return KvCodec::kInt8;
    case v1::KV_CODEC_INT4:
      return KvCodec::kInt4;
    case v1::KV_CODEC_KVQ:
      return KvCodec::kKvq;
    default:
      break;
  }
  return absl::DataLossError(
      absl::StrCat("the server sent unknown KV codec ", static_cast<int>(codec)));
}

void KvConfigToProto(const KvConfig& config, v1::KvConfig* out) {
  FingerprintToProto(config.model, out->mutable_model());
  out->set_codec(KvCodecToProto(config.codec));
  if (config.entropy.has_value()) out->set_entropy(*config.entropy);
  out->set_int4_group_size(config.int4_group_size);
  out->set_capacity_bytes(config.capacity_bytes);
  out->set_eviction_policy(config.eviction_policy);
  out->set_default_ttl_seconds(config.default_ttl_seconds);
  if (config.key_index_keys_per_cluster.has_value()) {
    out->set_key_index_keys_per_cluster(*config.key_index_keys_per_cluster);
  }
}

absl::StatusOr<KvStats> KvStatsFromProto(const v1::KvStats& p) {
  KvStats s;
  s.config.model = FingerprintFromProto(p.config().model());
  ASSIGN_OR_RETURN(s.config.codec, KvCodecFromProto(p.config().codec()));
  if (p.config().has_entropy()) s.config.entropy = p.config().entropy();
  s.config.int4_group_size = p.config().int4_group_size();
  s.config.capacity_bytes = p.config().capacity_bytes();
  s.config.eviction_policy = p.config().eviction_policy();
  s.config.default_ttl_seconds = p.config().default_ttl_seconds();
  if (p.config().has_key_index_keys_per_cluster()) {
    s.config.key_index_keys_per_cluster = p.config().key_index_keys_per_cluster();
  }
  s.chunks = p.chunks();
  s.blocks = p.blocks();
  s.tokens = p.tokens();
  s.stored_bytes = p.stored_bytes();
  s.index_bytes = p.index_bytes();
  s.fp16_bytes = p.fp16_bytes();
  s.pinned_chunks = p.pinned_chunks();
  s.evicted_chunks = p.evicted_chunks();
  s.expired_chunks = p.expired_chunks();
  s.mean_key_error = p.mean_key_error();
  s.mean_value_error = p.mean_value_error();
  return s;
}

void KvPutHeaderToProto(const std::string& ns, const KvPutHeader& header, v1::PutKvHeader* out) {
  out->set_namespace_(ns);
  out->set_chunk_id(header.chunk_id);
  FingerprintToProto(header.model, out->mutable_model());
  out->mutable_tokens()->Assign(header.tokens.begin(), header.tokens.end());
  out->set_pin(header.pin);
  out->set_ttl_seconds(header.ttl_seconds);
  if (header.keys_position.has_value()) out->set_keys_position(*header.keys_position);
}

absl::Status KvLayerToProto(uint32_t layer, const KvShape& shape, absl::Span<const float> k,
                            absl::Span<const float> v, KvDtype dtype, v1::KvLayer* out) {
  out->set_layer(layer);
  out->set_dtype(KvDtypeToProto(dtype));
  out->set_n_kv_heads(shape.n_kv_heads);
  out->set_tokens(shape.tokens);
  out->set_head_dim(shape.head_dim);
  RETURN_IF_ERROR(FloatsToWire(k, dtype, absl::StrCat("layer ", layer, " K"), out->mutable_k()));
  return FloatsToWire(v, dtype, absl::StrCat("layer ", layer, " V"), out->mutable_v());
}

KvPutResult KvPutResultFromProto(const v1::PutKvResponse& response) {
  KvPutResult result;
  result.stored_bytes = response.stored_bytes();
  result.key_error.assign(response.key_error().begin(), response.key_error().end());
  result.value_error.assign(response.value_error().begin(), response.value_error().end());
  result.evicted_chunks = response.evicted_chunks();
  result.index_bytes = response.index_bytes();
  result.encode_seconds = response.encode_seconds();
  result.index_seconds = response.index_seconds();
  return result;
}

v1::GetKvRequest GetKvRequestToProto(const std::string& ns, const KvGetRequest& r) {
  v1::GetKvRequest request;
  request.set_namespace_(ns);
  for (const std::string& id : r.chunk_ids) request.add_chunk_ids(id);
  FingerprintToProto(r.model, request.mutable_model());
  request.set_layer_begin(r.layer_begin);
  request.set_layer_end(r.layer_end);
  request.set_dtype(KvDtypeToProto(r.dtype));
  request.mutable_positions()->Assign(r.positions.begin(), r.positions.end());
  return request;
}

absl::Status KvBlockFromProto(const v1::GetKvResponse& p, KvBlock* block,
                              std::optional<std::string_view> arena, bool raw) {
  const v1::KvLayer& l = p.block();
  block->chunk_index = p.chunk_index();
  block->chunk_id = p.chunk_id();
  block->layer = l.layer();
  block->shape = KvShape{l.n_kv_heads(), l.tokens(), l.head_dim()};
  ASSIGN_OR_RETURN(block->dtype, KvDtypeFromProto(l.dtype()));
  const std::string where =
      absl::StrCat("KV block of chunk '", p.chunk_id(), "' layer ", l.layer());
  const uint64_t bytes = block->shape.elements() * KvDtypeBytes(block->dtype);
  std::string_view k = l.k(), v = l.v();
  block->lease = nullptr;
  if (arena.has_value()) {
    const v1::KvArenaLease& lease = p.lease();
    const uint64_t size = arena->size();
    if (lease.bytes() != bytes || lease.k_offset() > size || size - lease.k_offset() < bytes ||
        lease.v_offset() > size || size - lease.v_offset() < bytes) {
      return absl::DataLossError(absl::StrCat(where, " lies outside the KV arena"));
    }
    k = arena->substr(lease.k_offset(), bytes);
    v = arena->substr(lease.v_offset(), bytes);
  }
  block->k_raw = {};
  block->v_raw = {};
  if (raw) {
    if (k.size() != bytes || v.size() != bytes) {
      return absl::DataLossError(absl::StrCat(where, " holds ", k.size(), " + ", v.size(),
                                              " bytes; its shape needs ", bytes, " each"));
    }
    block->k.clear();
    block->v.clear();
    block->k_raw = k;
    block->v_raw = v;
  } else {
    RETURN_IF_ERROR(WireToFloats(k, block->dtype, block->shape.elements(),
                                 absl::StrCat(where, " K"), &block->k));
    RETURN_IF_ERROR(WireToFloats(v, block->dtype, block->shape.elements(),
                                 absl::StrCat(where, " V"), &block->v));
  }
  block->key_error = p.key_error();
  block->value_error = p.value_error();
  block->tokens.assign(p.tokens().begin(), p.tokens().end());
  block->position = p.position();
  return absl::OkStatus();
}

KvPrefixMatch KvPrefixMatchFromProto(const v1::LookupKvPrefixResponse& response) {
  KvPrefixMatch match;
  match.chunk_ids.assign(response.chunk_ids().begin(), response.chunk_ids().end());
  match.chunk_tokens.assign(response.chunk_tokens().begin(), response.chunk_tokens().end());
  match.matched_tokens = response.matched_tokens();
  return match;
}

}  // namespace mnemo::client_internal
