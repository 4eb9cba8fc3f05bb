// SDK <-> wire conversions of the memory-injection calls (inject_convert.h).
#include "client/inject_convert.h"

#include <cstdint>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/convert.h"
#include "common/half.h"

namespace mnemo::client_internal {

InjectionLineage InjectionLineageFromProto(const v1::InjectionLineage& lineage) {
  InjectionLineage out;
  out.encoder = lineage.encoder();
  out.encoder_sha256 = lineage.encoder_sha256();
  out.decoder_fingerprint = lineage.decoder_fingerprint();
  out.decoder_weights_sha256 = lineage.decoder_weights_sha256();
  out.model_sha256 = lineage.model_sha256();
  return out;
}

InjectionInfo InjectionInfoFromProto(const v1::InjectionInfo& info) {
  InjectionInfo out;
  out.ns = info.namespace_();
  out.name = info.name();
  out.lineage = InjectionLineageFromProto(info.lineage());
  out.encoder_dim = info.encoder_dim();
  out.decoder_dim = info.decoder_dim();
  out.memory_tokens = info.memory_tokens();
  out.pq_m = info.pq_m();
  out.pq_nbits = info.pq_nbits();
  out.exact = info.exact();
  out.chunks = info.chunks();
  out.xrag_bytes_per_chunk = info.xrag_bytes_per_chunk();
  out.memory_code_bytes_per_chunk = info.memory_code_bytes_per_chunk();
  out.memory_exact_bytes_per_chunk = info.memory_exact_bytes_per_chunk();
  out.registered_unix_ms = info.registered_unix_ms();
  return out;
}

absl::StatusOr<v1::RecallRequest> RecallRequestToProto(const RecallRequest& request) {
  const bool has_text = !request.query_text.empty();
  const bool has_vector = !request.query_vector.empty();
  if (has_text == has_vector) {
    return absl::InvalidArgumentError(
        "RecallRequest needs exactly one of query_text and query_vector");
  }
  v1::RecallRequest out;
  out.set_namespace_(request.ns);
  if (has_text) {
    out.set_text(request.query_text);
  } else {
    out.mutable_vector()->mutable_values()->Add(request.query_vector.begin(),
                                                request.query_vector.end());
  }
  out.set_k(request.k);
  out.set_mode(request.mode == RecallMode::kXrag ? v1::RECALL_MODE_XRAG : v1::RECALL_MODE_MEMORY);
  if (request.rerank.has_value()) {
    out.mutable_rerank()->set_candidates(request.rerank->candidates);
    out.mutable_rerank()->set_keep(request.rerank->keep);
  }
  out.set_dtype(request.dtype == InjectDtype::kFp16 ? v1::INJECT_DTYPE_FP16
                                                     : v1::INJECT_DTYPE_FP32);
  out.set_exact(request.exact);
  if (request.decoder.has_value()) FingerprintToProto(*request.decoder, out.mutable_decoder());
  out.set_decoder_weights_sha256(request.decoder_weights_sha256);
  return out;
}

absl::StatusOr<RecallResult> RecallResultFromProto(const v1::RecallResponse& response) {
  RecallResult out;
  out.lineage = InjectionLineageFromProto(response.lineage());
  const bool fp16 = response.dtype() == v1::INJECT_DTYPE_FP16;
  if (!fp16 && response.dtype() != v1::INJECT_DTYPE_FP32) {
    return absl::DataLossError(absl::StrCat("Recall answered with unknown token dtype ",
                                            static_cast<int>(response.dtype())));
  }
  out.hits.reserve(response.hits_size());
  for (const v1::RecallHit& h : response.hits()) {
    RecallHit hit;
    hit.chunk_id = h.chunk_id();
    hit.document_id = h.document_id();
    hit.text = h.text();
    hit.score = h.score();
    if (h.has_rerank_score()) hit.rerank_score = h.rerank_score();
    hit.m = h.m();
    hit.dim = h.dim();
    const uint64_t n = static_cast<uint64_t>(h.m()) * h.dim();
    const std::string& bytes = h.tokens();
    if (bytes.size() != n * (fp16 ? 2 : 4)) {
      return absl::DataLossError(absl::StrCat("Recall hit '", h.chunk_id(), "' carries ",
                                              bytes.size(), " token bytes for [", h.m(), ", ",
                                              h.dim(), "] ", fp16 ? "fp16" : "fp32"));
    }
    hit.tokens.resize(n);
    if (fp16) {
      for (uint64_t i = 0; i < n; ++i) {
        uint16_t v;
        std::memcpy(&v, bytes.data() + 2 * i, 2);
        hit.tokens[i] = HalfToFloat(v);
      }
    } else if (n > 0) {
      std::memcpy(hit.tokens.data(), bytes.data(), n * 4);
    }
    out.hits.push_back(std::move(hit));
  }
  return out;
}

}  // namespace mnemo::client_internal
