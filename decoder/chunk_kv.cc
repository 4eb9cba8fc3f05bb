#include "decoder/chunk_kv.h"

#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "attention/rope.h"

namespace mnemo::decoder {

PositionedKv PlacedChunkKv::view() const {
  PositionedKv out;
  out.first_position = first_position;
  out.n_tokens = n_tokens;
  for (const std::vector<float>& layer : k) out.keys.emplace_back(layer);
  for (const std::vector<float>& layer : v) out.values.emplace_back(layer);
  return out;
}

absl::Status ValidateChunkKv(const ModelConfig& config, const ChunkKv& chunk) {
  const int T = chunk.n_tokens();
  if (T == 0) return absl::InvalidArgumentError("chunk has no tokens");
  for (int32_t id : chunk.tokens) {
    if (id < 0 || id >= config.vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("chunk token id ", id, " is outside the vocabulary of ", config.vocab_size));
    }
  }
  if (static_cast<int>(chunk.k_pre_rope.size()) != config.n_layers ||
      static_cast<int>(chunk.v.size()) != config.n_layers) {
    return absl::InvalidArgumentError(absl::StrCat("chunk has ", chunk.k_pre_rope.size(),
                                                   " key and ", chunk.v.size(),
                                                   " value layers, the model ", config.n_layers));
  }
  const size_t want = static_cast<size_t>(config.n_kv_heads) * T * config.head_dim;
  for (int l = 0; l < config.n_layers; ++l) {
    if (chunk.k_pre_rope[l].size() != want || chunk.v[l].size() != want) {
      return absl::InvalidArgumentError(absl::StrCat(
          "chunk layer ", l, " has ", chunk.k_pre_rope[l].size(), " key and ", chunk.v[l].size(),
          " value floats, expected [n_kv_heads ", config.n_kv_heads, ", T ", T, ", head_dim ",
          config.head_dim, "] = ", want));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ChunkKv> EncodeChunk(const Model& model, absl::Span<const int32_t> tokens) {
  const ModelConfig& c = model.config();
  if (tokens.empty()) return absl::InvalidArgumentError("chunk has no tokens");
  if (static_cast<int64_t>(tokens.size()) > c.max_seq_len) {
    return absl::OutOfRangeError(absl::StrCat("chunk of ", tokens.size(),
                                              " tokens exceeds the model's context of ",
                                              c.max_seq_len));
  }
  CpuForward forward(model);
  KvCache cache(c, static_cast<int>(tokens.size()));
  ForwardTrace trace;
  trace.want_kv = true;
  if (absl::Status s = forward.Forward(tokens, &cache, LogitsMode::kNone, nullptr, &trace);
      !s.ok()) {
    return s;
  }
  ChunkKv out;
  out.tokens.assign(tokens.begin(), tokens.end());
  out.k_pre_rope = std::move(trace.k_pre_rope);
  out.v = std::move(trace.v);
  return out;
}

absl::StatusOr<PlacedChunkKv> PlaceChunk(const ModelConfig& config, const ChunkKv& chunk,
                                         int first_position) {
  if (absl::Status s = ValidateChunkKv(config, chunk); !s.ok()) return s;
  const int T = chunk.n_tokens();
  if (first_position < 0 || first_position > std::numeric_limits<int32_t>::max() - T) {
    return absl::InvalidArgumentError(absl::StrCat("chunk of ", T, " tokens cannot start at ",
                                                   first_position));
  }
  PlacedChunkKv out;
  out.first_position = first_position;
  out.n_tokens = T;
  out.k = chunk.k_pre_rope;
  out.v = chunk.v;
  for (std::vector<float>& layer : out.k) {
    if (absl::Status s = attention::RotateKeys(layer.data(), config.n_kv_heads, T,
                                               config.head_dim, config.rope_theta,
                                               first_position);
        !s.ok()) {
      return s;
    }
  }
  return out;
}

absl::Status AppendChunk(const ModelConfig& config, const ChunkKv& chunk,
                         DecodeSession* session) {
  absl::StatusOr<PlacedChunkKv> placed = PlaceChunk(config, chunk, session->next_position());
  if (!placed.ok()) return placed.status();
  return session->AppendKv(placed->view());
}

}  // namespace mnemo::decoder
