// Proto <-> db conversion of the KV cache messages: model fingerprints,
// dtypes and codecs, configs and stats, put headers and layers, read options
// and blocks (server/convert.h).
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/model_fingerprint_wire.h"
#include "common/status_macros.h"
#include "db/kv_codec.h"
#include "server/convert.h"

namespace mnemo::server {

ModelFingerprint FingerprintFromProto(const v1::ModelFingerprint& fingerprint) {
  return FingerprintFromWire(fingerprint);
}

void FingerprintToProto(const ModelFingerprint& fingerprint, v1::ModelFingerprint* out) {
  FingerprintToWire(fingerprint, out);
}

absl::StatusOr<db::KvDtype> KvDtypeFromProto(v1::KvDtype dtype) {
  switch (dtype) {
    case v1::KV_DTYPE_UNSPECIFIED:
    case v1::KV_DTYPE_FP32:
      return db::KvDtype::kFp32;
    case v1::KV_DTYPE_FP16:
      return db::KvDtype::kFp16;
    case v1::KV_DTYPE_BF16:
      return db::KvDtype::kBf16;
    default:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown KV dtype ", static_cast<int>(dtype)));
}

v1::KvDtype KvDtypeToProto(db::KvDtype dtype) {
  switch (dtype) {
    case db::KvDtype::kFp16:
      return v1::KV_DTYPE_FP16;
    case db::KvDtype::kBf16:
      return v1::KV_DTYPE_BF16;
    case db::KvDtype::kFp32:
      break;
  }
  return v1::KV_DTYPE_FP32;
}

absl::StatusOr<db::KvCodecKind> KvCodecFromProto(v1::KvCodec codec) {
  switch (codec) {
    case v1::KV_CODEC_UNSPECIFIED:
    case v1::KV_CODEC_FP16:
      return db::KvCodecKind::kFp16;
    case v1::KV_CODEC_FP32:
      return db::KvCodecKind::kFp32;
    case v1::KV_CODEC_BF16:
      return db::KvCodecKind::kBf16;
    case v1::KV_CODEC_INT8:
      return db::KvCodecKind::kInt8;
    case v1::KV_CODEC_INT4:
      return db::KvCodecKind::kInt4;
    case v1::KV_CODEC_KVQ:
      return db::KvCodecKind::kKvq;
    default:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown KV codec ", static_cast<int>(codec)));
}

v1::KvCodec KvCodecToProto(db::KvCodecKind codec) {
  switch (codec) {
    case db::KvCodecKind::kFp32:
      return v1::KV_CODEC_FP32;
    case db::KvCodecKind::kBf16:
      return v1::KV_CODEC_BF16;
    case db::KvCodecKind::kInt8:
      return v1::KV_CODEC_INT8;
    case db::KvCodecKind::kInt4:
      return v1::KV_CODEC_INT4;
    case db::KvCodecKind::kKvq:
      return v1::KV_CODEC_KVQ;
    case db::KvCodecKind::kFp16:
      break;
  }
  return v1::KV_CODEC_FP16;
}

absl::StatusOr<db::KvConfig> KvConfigFromProto(const v1::KvConfig& config) {
  db::KvConfig out;
  out.model = FingerprintFromProto(config.model());
  ASSIGN_OR_RETURN(out.codec.kind, KvCodecFromProto(config.codec()));
  out.codec.entropy = !config.has_entropy() || config.entropy();
  if (config.int4_group_size() != 0) out.codec.group_size = config.int4_group_size();
  out.capacity_bytes = config.capacity_bytes();
  out.eviction_policy = config.eviction_policy();
  out.default_ttl_seconds = config.default_ttl_seconds();
  if (config.has_key_index_keys_per_cluster()) {
    out.key_index_keys_per_cluster = config.key_index_keys_per_cluster();
  }
  return out;
}

void KvStatsToProto(const db::KvStats& stats, v1::KvStats* out) {
  v1::KvConfig* config = out->mutable_config();
  FingerprintToProto(stats.config.model, config->mutable_model());
  config->set_codec(KvCodecToProto(stats.config.codec.kind));
  config->set_entropy(stats.config.codec.entropy);
  config->set_int4_group_size(stats.config.codec.group_size);
  config->set_capacity_bytes(stats.config.capacity_bytes);
  config->set_eviction_policy(stats.config.eviction_policy);
  config->set_default_ttl_seconds(stats.config.default_ttl_seconds);
  config->set_key_index_keys_per_cluster(stats.config.key_index_keys_per_cluster);
  out->set_chunks(stats.chunks);
  out->set_blocks(stats.blocks);
  out->set_tokens(stats.tokens);
  out->set_stored_bytes(stats.stored_bytes);
  out->set_index_bytes(stats.index_bytes);
  out->set_fp16_bytes(stats.fp16_bytes);
  out->set_pinned_chunks(stats.pinned_chunks);
  out->set_evicted_chunks(stats.evicted_chunks);
  out->set_expired_chunks(stats.expired_chunks);
  out->set_mean_key_error(stats.mean_key_error);
  out->set_mean_value_error(stats.mean_value_error);
}

db::KvPutHeader KvPutHeaderFromProto(const v1::PutKvHeader& header) {
  db::KvPutHeader out;
  out.chunk_id = header.chunk_id();
  out.model = FingerprintFromProto(header.model());
  out.tokens.assign(header.tokens().begin(), header.tokens().end());
  out.pin = header.pin();
  out.ttl_seconds = header.ttl_seconds();
  if (header.has_keys_position()) out.keys_position = header.keys_position();
  return out;
}

absl::Status KvLayerFromProto(const v1::KvLayer& layer, db::KvTensorShape* shape,
                              std::vector<float>* k, std::vector<float>* v) {
  ASSIGN_OR_RETURN(db::KvDtype dtype, KvDtypeFromProto(layer.dtype()));
  RETURN_IF_ERROR(Annotate(db::DtypeToFloats(layer.k(), dtype, k),
                           absl::StrCat("layer ", layer.layer(), " K")));
  RETURN_IF_ERROR(Annotate(db::DtypeToFloats(layer.v(), dtype, v),
                           absl::StrCat("layer ", layer.layer(), " V")));
  *shape = db::KvTensorShape{layer.n_kv_heads(), layer.tokens(), layer.head_dim()};
  return absl::OkStatus();
}

void KvPutResultToProto(const db::KvPutResult& result, v1::PutKvResponse* out) {
  out->set_stored_bytes(result.stored_bytes);
  for (float e : result.key_error) out->add_key_error(e);
  for (float e : result.value_error) out->add_value_error(e);
  out->set_evicted_chunks(result.evicted_chunks);
  out->set_index_bytes(result.index_bytes);
  out->set_encode_seconds(result.encode_seconds);
  out->set_index_seconds(result.index_seconds);
}

absl::StatusOr<db::KvReadOptions> KvReadOptionsFromProto(const v1::GetKvRequest& request) {
  db::KvReadOptions options;
  ASSIGN_OR_RETURN(options.as_bytes, KvDtypeFromProto(request.dtype()));
  options.chunk_ids = IdsFromProto(request.chunk_ids());
  options.model = FingerprintFromProto(request.model());
  options.layer_begin = request.layer_begin();
  options.layer_end = request.layer_end();
  options.positions.assign(request.positions().begin(), request.positions().end());
  return options;
}

void KvBlockHeaderToProto(const db::KvBlock& block, db::KvDtype dtype, v1::GetKvResponse* out) {
  out->Clear();
  out->set_chunk_index(static_cast<uint32_t>(block.chunk_index));
  out->set_chunk_id(block.chunk_id);
  v1::KvLayer* layer = out->mutable_block();
  layer->set_layer(block.layer);
  layer->set_dtype(KvDtypeToProto(dtype));
  layer->set_n_kv_heads(block.shape.heads);
  layer->set_tokens(block.shape.tokens);
  layer->set_head_dim(block.shape.head_dim);
  out->set_key_error(block.key_error);
  out->set_value_error(block.value_error);
  for (int32_t t : block.tokens) out->add_tokens(t);
  out->set_position(block.position);
}

void ExistsKvToProto(const std::vector<uint32_t>& tokens, v1::ExistsKvResponse* out) {
  for (uint32_t t : tokens) {
    out->add_exists(t > 0);
    out->add_tokens(t);
  }
}

void KvPrefixMatchToProto(db::KvPrefixMatch match, v1::LookupKvPrefixResponse* out) {
  for (std::string& id : match.chunk_ids) out->add_chunk_ids(std::move(id));
  for (uint32_t t : match.chunk_tokens) out->add_chunk_tokens(t);
  out->set_matched_tokens(match.matched_tokens);
}

KvRetention KvRetentionFromProto(const v1::SetKvRetentionRequest& request) {
  KvRetention retention;
  if (request.has_pin()) retention.pin = request.pin();
  if (request.has_ttl_seconds()) retention.ttl_seconds = request.ttl_seconds();
  return retention;
}

}  // namespace mnemo::server
