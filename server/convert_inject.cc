// Proto <-> db conversions of the memory-injection service (see
// convert_inject.h).
#include "server/convert_inject.h"

#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/half.h"
#include "server/convert.h"

namespace mnemo::server {

db::InjectionFiles InjectionFilesFromProto(const v1::RegisterInjectionModelRequest& request) {
  db::InjectionFiles files;
  for (const auto& [name, bytes] : request.files()) files[name] = bytes;
  return files;
}

void InjectionLineageToProto(const encoder::InjectionLineage& lineage,
                             v1::InjectionLineage* out) {
  out->set_encoder(lineage.encoder);
  out->set_encoder_sha256(lineage.encoder_sha256);
  out->set_decoder_fingerprint(lineage.decoder_fingerprint);
  out->set_decoder_weights_sha256(lineage.decoder_weights_sha256);
  out->set_model_sha256(lineage.model_sha256);
}

void InjectionInfoToProto(const std::string& ns, const db::InjectionInfo& info,
                          v1::InjectionInfo* out) {
  out->set_namespace_(ns);
  out->set_name(info.name);
  InjectionLineageToProto(info.lineage, out->mutable_lineage());
  out->set_encoder_dim(info.encoder_dim);
  out->set_decoder_dim(info.decoder_dim);
  out->set_memory_tokens(info.memory_tokens);
  out->set_pq_m(info.pq_m);
  out->set_pq_nbits(info.pq_nbits);
  out->set_exact(info.exact);
  out->set_chunks(info.chunks);
  out->set_xrag_bytes_per_chunk(info.xrag_bytes_per_chunk);
  out->set_memory_code_bytes_per_chunk(info.memory_code_bytes_per_chunk);
  out->set_memory_exact_bytes_per_chunk(info.memory_exact_bytes_per_chunk);
  out->set_registered_unix_ms(info.registered_unix_ms);
}

absl::StatusOr<v1::InjectDtype> InjectDtypeFromProto(v1::InjectDtype dtype) {
  switch (dtype) {
    case v1::INJECT_DTYPE_UNSPECIFIED:
    case v1::INJECT_DTYPE_FP32:
      return v1::INJECT_DTYPE_FP32;
    case v1::INJECT_DTYPE_FP16:
      return v1::INJECT_DTYPE_FP16;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown InjectDtype ", static_cast<int>(dtype)));
  }
}

absl::StatusOr<db::RecallOptions> RecallOptionsFromProto(const v1::RecallRequest& request) {
  db::RecallOptions options;
  switch (request.query_case()) {
    case v1::RecallRequest::kText:
      options.query_text = request.text();
      if (options.query_text.empty()) {
        return absl::InvalidArgumentError("Recall query text is empty");
      }
      break;
    case v1::RecallRequest::kVector:
      options.query_vector.assign(request.vector().values().begin(),
                                  request.vector().values().end());
      if (options.query_vector.empty()) {
        return absl::InvalidArgumentError("Recall query vector is empty");
      }
      break;
    default:
      return absl::InvalidArgumentError("Recall needs a query: text or vector");
  }
  options.k = request.k();
  switch (request.mode()) {
    case v1::RECALL_MODE_UNSPECIFIED:
    case v1::RECALL_MODE_MEMORY:
      options.mode = db::RecallMode::kMemory;
      break;
    case v1::RECALL_MODE_XRAG:
      options.mode = db::RecallMode::kXrag;
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown RecallMode ", static_cast<int>(request.mode())));
  }
  if (request.has_rerank()) {
    options.rerank = db::RecallRerank{request.rerank().candidates(), request.rerank().keep()};
  }
  options.exact = request.exact();
  if (request.has_decoder()) {
    options.decoder_fingerprint = FingerprintFromProto(request.decoder()).Canonical();
  }
  options.decoder_weights_sha256 = request.decoder_weights_sha256();
  return options;
}

void RecallResultToProto(const db::RecallResult& result, v1::InjectDtype dtype,
                         v1::RecallResponse* out) {
  InjectionLineageToProto(result.lineage, out->mutable_lineage());
  const bool fp16 = dtype == v1::INJECT_DTYPE_FP16;
  out->set_dtype(fp16 ? v1::INJECT_DTYPE_FP16 : v1::INJECT_DTYPE_FP32);
  for (const db::RecallHit& hit : result.hits) {
    v1::RecallHit* h = out->add_hits();
    h->set_chunk_id(hit.chunk_id);
    h->set_document_id(hit.document_id);
    h->set_text(hit.text);
    h->set_score(hit.score);
    if (hit.rerank_score.has_value()) h->set_rerank_score(*hit.rerank_score);
    h->set_m(hit.m);
    h->set_dim(hit.dim);
    std::string* bytes = h->mutable_tokens();
    if (fp16) {
      bytes->resize(hit.tokens.size() * 2);
      for (size_t i = 0; i < hit.tokens.size(); ++i) {
        const uint16_t v = FloatToHalf(hit.tokens[i]);
        std::memcpy(bytes->data() + 2 * i, &v, 2);
      }
    } else {
      bytes->assign(reinterpret_cast<const char*>(hit.tokens.data()), hit.tokens.size() * 4);
    }
  }
}

}  // namespace mnemo::server
