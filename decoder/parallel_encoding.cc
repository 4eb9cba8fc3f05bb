#include "decoder/parallel_encoding.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"

namespace mnemo::decoder {
namespace {

// Rows [begin, begin + n) of every KV head of a head-major [heads, total,
// hd] tensor.
std::vector<float> Rows(const std::vector<float>& t, int heads, int total, int hd, int begin,
                        int n) {
  std::vector<float> out(static_cast<size_t>(heads) * n * hd);
  for (int g = 0; g < heads; ++g) {
    std::copy_n(t.data() + (static_cast<size_t>(g) * total + begin) * hd,
                static_cast<size_t>(n) * hd, out.data() + static_cast<size_t>(g) * n * hd);
  }
  return out;
}

}  // namespace

absl::Status ValidateParallelEncodingOptions(const ModelConfig& config,
                                             const ParallelEncodingOptions& options) {
  if (!(std::isfinite(options.temperature) && options.temperature > 0.0f)) {
    return absl::InvalidArgumentError(
        absl::StrCat("temperature must be finite and positive, got ", options.temperature));
  }
  if (!(std::isfinite(options.context_scale) && options.context_scale > 0.0f)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "context scale must be finite and positive, got ", options.context_scale));
  }
  for (int32_t id : options.prefix) {
    if (id < 0 || id >= config.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat("prefix token id ", id,
                                                     " is outside the vocabulary of ",
                                                     config.vocab_size));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ChunkKv> EncodeChunkAfterPrefix(const Model& model,
                                               absl::Span<const int32_t> prefix,
                                               absl::Span<const int32_t> tokens) {
  if (tokens.empty()) return absl::InvalidArgumentError("chunk has no tokens");
  std::vector<int32_t> all(prefix.begin(), prefix.end());
  all.insert(all.end(), tokens.begin(), tokens.end());
  absl::StatusOr<ChunkKv> whole = EncodeChunk(model, all);
  if (!whole.ok()) return whole.status();
  const ModelConfig& c = model.config();
  const int p = static_cast<int>(prefix.size()), n = static_cast<int>(tokens.size());
  ChunkKv out;
  out.tokens.assign(tokens.begin(), tokens.end());
  for (int l = 0; l < c.n_layers; ++l) {
    out.k_pre_rope.push_back(Rows(whole->k_pre_rope[l], c.n_kv_heads, p + n, c.head_dim, p, n));
    out.v.push_back(Rows(whole->v[l], c.n_kv_heads, p + n, c.head_dim, p, n));
  }
  return out;
}

absl::StatusOr<std::unique_ptr<ParallelContext>> ParallelContext::Build(
    const Model& model, const ParallelEncodingOptions& options,
    const std::vector<ChunkKv>& chunks) {
  const ModelConfig& c = model.config();
  if (absl::Status s = ValidateParallelEncodingOptions(c, options); !s.ok()) return s;
  std::unique_ptr<ParallelContext> ctx(new ParallelContext(model, options));
  const int p = static_cast<int>(options.prefix.size());
  int64_t total = p;
  for (const ChunkKv& chunk : chunks) total += chunk.n_tokens();
  if (total > c.max_seq_len) {
    return absl::OutOfRangeError(absl::StrCat("prefix and chunks of ", total,
                                              " tokens exceed the model's context of ",
                                              c.max_seq_len));
  }
  ctx->prefix_tokens_ = p;
  ctx->prefix_k_.assign(c.n_layers, {});
  ctx->prefix_v_.assign(c.n_layers, {});
  if (p > 0) {
    CpuForward forward(model);
    KvCache cache(c, p);
    ForwardTrace trace;
    trace.want_kv = true;
    if (absl::Status s =
            forward.Forward(options.prefix, &cache, LogitsMode::kNone, nullptr, &trace);
        !s.ok()) {
      return s;
    }
    ctx->prefix_k_ = std::move(trace.k);
    ctx->prefix_v_ = std::move(trace.v);
  }
  // The chunks one after another from position p, gathered per KV head.
  std::vector<PlacedChunkKv> placed;
  int pos = p;
  for (const ChunkKv& chunk : chunks) {
    absl::StatusOr<PlacedChunkKv> one = PlaceChunk(c, chunk, pos);
    if (!one.ok()) return one.status();
    pos += one->n_tokens;
    placed.push_back(*std::move(one));
  }
  const int n = pos - p;
  const int hd = c.head_dim;
  ctx->chunk_tokens_ = n;
  ctx->end_position_ = pos;
  ctx->chunk_k_.assign(c.n_layers, std::vector<float>(static_cast<size_t>(c.n_kv_heads) * n * hd));
  ctx->chunk_v_ = ctx->chunk_k_;
  for (int l = 0; l < c.n_layers; ++l) {
    int at = 0;
    for (const PlacedChunkKv& one : placed) {
      for (int g = 0; g < c.n_kv_heads; ++g) {
        const size_t src = static_cast<size_t>(g) * one.n_tokens * hd;
        const size_t dst = (static_cast<size_t>(g) * n + at) * hd;
        std::copy_n(one.k[l].data() + src, static_cast<size_t>(one.n_tokens) * hd,
                    ctx->chunk_k_[l].data() + dst);
        std::copy_n(one.v[l].data() + src, static_cast<size_t>(one.n_tokens) * hd,
                    ctx->chunk_v_[l].data() + dst);
      }
      at += one.n_tokens;
    }
  }
  return ctx;
}

absl::Status ParallelContext::Attach(DecodeSession* session) {
  if (absl::Status s = session->ResetAt(end_position_); !s.ok()) return s;
  return session->SetExternalAttention(this);
}

absl::Status ParallelContext::Attend(int layer, const float* /*q_pre_rope*/,
                                     const float* q_post_rope, int n_tokens, int first_position,
                                     attention::PartialResult* result) {
  const attention::AttentionShape shape = model_.attention_shape();
  *result = attention::PartialResult::Empty(n_tokens, shape.n_heads, shape.head_dim);
  const attention::QueryBlock qb{q_post_rope, n_tokens, first_position};
  attention::PartialResult part;
  if (prefix_tokens_ > 0) {
    const attention::KeyValueBlock prefix{prefix_k_[layer].data(), prefix_v_[layer].data(),
                                          prefix_tokens_, prefix_tokens_, nullptr, 0};
    if (absl::Status s = attention::AttendPartial(shape, qb, prefix, false, &part); !s.ok()) {
      return s;
    }
    if (absl::Status s = attention::MergePartial(part, result); !s.ok()) return s;
  }
  if (chunk_tokens_ > 0) {
    attention::AttentionShape scaled = shape;
    scaled.scale = shape.scale / options_.temperature;
    const attention::KeyValueBlock chunks{chunk_k_[layer].data(), chunk_v_[layer].data(),
                                          chunk_tokens_, chunk_tokens_, nullptr,
                                          static_cast<int32_t>(prefix_tokens_)};
    if (absl::Status s = attention::AttendPartial(scaled, qb, chunks, false, &part); !s.ok()) {
      return s;
    }
    const float log_scale = std::log(options_.context_scale);
    for (float& lse : part.lse) lse += log_scale;
    if (absl::Status s = attention::MergePartial(part, result); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace mnemo::decoder
