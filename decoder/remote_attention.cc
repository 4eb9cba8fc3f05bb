// The decoder side of retrieval attention (see remote_attention.h).
#include "decoder/remote_attention.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "attention/context_attention.h"
#include "common/status_macros.h"

namespace mnemo::decoder {

absl::StatusOr<MemoryAttention> ParseMemoryAttention(const std::string& name) {
  if (name == "full") return MemoryAttention::kFull;
  if (name == "retrieval") return MemoryAttention::kRetrieval;
  if (name == "topk") return MemoryAttention::kTopK;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown attention \"", name, "\" (expected full, retrieval or topk)"));
}

RemoteAttention::RemoteAttention(const Model& model, AttendStream* stream, MemoryAttention mode,
                                 AttendBudget budget, const KvCache* sink)
    : model_(model), stream_(stream), mode_(mode), budget_(std::move(budget)), sink_(sink) {}

absl::Status RemoteAttention::Attend(int layer, const float* q_pre_rope, const float* q_post_rope,
                                     int n_tokens, int first_position,
                                     attention::PartialResult* result) {
  const attention::AttentionShape shape = model_.attention_shape();
  const absl::Span<const float> queries(
      q_pre_rope, size_t(n_tokens) * shape.n_heads * shape.head_dim);
  const auto t0 = std::chrono::steady_clock::now();
  AttendStats stats;
  if (mode_ == MemoryAttention::kTopK) {
    ASSIGN_OR_RETURN(TopKeys top, stream_->FetchTopK(static_cast<uint32_t>(layer), first_position,
                                                     queries, n_tokens, budget_.exact_fraction));
    attention::SelectedKeys selected;
    selected.head_dim = top.head_dim;
    selected.positions = std::move(top.positions);
    selected.keys = std::move(top.keys);
    selected.values = std::move(top.values);
    RETURN_IF_ERROR(
        attention::AttendSelectedKeys(shape, q_post_rope, n_tokens, selected, result));
    stats = top.stats;
  } else {
    ASSIGN_OR_RETURN(AttendPartial part, stream_->Attend(static_cast<uint32_t>(layer),
                                                         first_position, queries, n_tokens,
                                                         budget_));
    result->n_queries = n_tokens;
    result->n_heads = shape.n_heads;
    result->head_dim = shape.head_dim;
    result->out = std::move(part.out);
    result->lse = std::move(part.lse);
    result->max = std::move(part.max);
    stats = part.stats;
  }
  stats_.client_seconds +=
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  stats_.server_seconds += stats.server_seconds;
  stats_.keys += stats.keys;
  stats_.exact_keys += stats.exact_keys;
  ++stats_.calls;
  if (sink_ != nullptr && sink_->length() > 0) {
    RETURN_IF_ERROR(attention::AttendPartial(
        shape, attention::QueryBlock{q_post_rope, n_tokens, first_position},
        sink_->View(layer, 0, sink_->length()), /*causal=*/false, &sink_part_));
    RETURN_IF_ERROR(attention::MergePartial(sink_part_, result));
  }
  return absl::OkStatus();
}

absl::StatusOr<MemoryLayout> LayOutMemory(Client* client, const std::string& ns,
                                          const ModelFingerprint& model,
                                          const std::vector<std::string>& chunk_ids,
                                          int64_t first_position) {
  if (chunk_ids.empty()) return absl::InvalidArgumentError("no memory chunks given");
  ASSIGN_OR_RETURN(std::vector<uint32_t> tokens, client->ExistsKv(ns, chunk_ids, model));
  MemoryLayout layout;
  int64_t at = first_position;
  for (size_t i = 0; i < chunk_ids.size(); ++i) {
    if (tokens[i] == 0) {
      return absl::NotFoundError(absl::StrCat("memory chunk '", chunk_ids[i],
                                              "' holds no KV of this model in namespace '", ns,
                                              "'"));
    }
    layout.chunk_ids.push_back(chunk_ids[i]);
    layout.starts.push_back(at);
    layout.tokens.push_back(tokens[i]);
    at += tokens[i];
  }
  layout.end = at;
  return layout;
}

absl::Status AppendMemoryKv(Client* client, const std::string& ns, const Model& model,
                            const MemoryLayout& layout, DecodeSession* session) {
  KvGetRequest get;
  get.chunk_ids = layout.chunk_ids;
  get.model = model.fingerprint();
  get.positions = layout.starts;
  ASSIGN_OR_RETURN(std::vector<KvBlock> blocks, client->GetKv(ns, get));
  // Blocks come layer-major; a session appends chunk by chunk.
  const int n_layers = model.config().n_layers;
  const size_t n_chunks = layout.chunk_ids.size();
  if (blocks.size() != n_chunks * static_cast<size_t>(n_layers)) {
    return absl::DataLossError(absl::StrCat("GetKv returned ", blocks.size(), " blocks for ",
                                            n_chunks, " chunks of ", n_layers, " layers"));
  }
  for (size_t c = 0; c < n_chunks; ++c) {
    PositionedKv kv;
    kv.first_position = static_cast<int>(layout.starts[c]);
    kv.n_tokens = static_cast<int>(layout.tokens[c]);
    for (int l = 0; l < n_layers; ++l) {
      const KvBlock& b = blocks[static_cast<size_t>(l) * n_chunks + c];
      if (b.chunk_index != c || b.layer != static_cast<uint32_t>(l)) {
        return absl::DataLossError("GetKv blocks out of order");
      }
      kv.keys.emplace_back(b.k);
      kv.values.emplace_back(b.v);
    }
    RETURN_IF_ERROR(session->AppendKv(kv));
  }
  return absl::OkStatus();
}

}  // namespace mnemo::decoder
