// One chunk's KV as mnemo stores it, and its placement into a decoder's
// context (position-free chunk reuse, as in APE / Cache-Craft).
//
// A chunk is encoded on its own from position 0 (what `mnemo-decode
// prefill` writes). Its keys before RoPE and its values depend only on the
// chunk's tokens and their relative positions (attention inside the chunk
// sees RoPE only through position differences), so they do not change when
// the same chunk is encoded on its own at any other start position, up to
// float rounding. To place the chunk at position p, RoPE for p.. is applied
// to the stored pre-RoPE keys (attention::RotateKeys, bit for bit the
// decoder's own rotation) and K/V are appended to the session.
//
// A context built from several such chunks is the chunk-independent
// ("APE-style") context: every chunk attends only to itself, not to the
// chunks before it, so it differs from prefilling the chunks in sequence;
// the question prefilled on top attends to all of them.
#ifndef MNEMO_DECODER_CHUNK_KV_H_
#define MNEMO_DECODER_CHUNK_KV_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "decoder/config.h"
#include "decoder/model.h"
#include "decoder/session.h"

namespace mnemo::decoder {

// A chunk's KV encoded alone from position 0: what mnemo stores per chunk.
struct ChunkKv {
  std::vector<int32_t> tokens;  // [T]
  // Per layer, [n_kv_heads, T, head_dim]: keys BEFORE RoPE.
  std::vector<std::vector<float>> k_pre_rope;
  // Per layer, [n_kv_heads, T, head_dim].
  std::vector<std::vector<float>> v;

  int n_tokens() const { return static_cast<int>(tokens.size()); }
};

// A chunk's KV rotated for positions [first_position, first_position + T):
// owns the rotated keys and a copy of the values; view() is what
// DecodeSession::AppendKv and KvCache::AppendKv take while this lives.
struct PlacedChunkKv {
  int first_position = 0;
  int n_tokens = 0;
  std::vector<std::vector<float>> k;  // per layer, [n_kv_heads, T, head_dim], after RoPE
  std::vector<std::vector<float>> v;  // per layer, [n_kv_heads, T, head_dim]

  PositionedKv view() const;
};

// INVALID_ARGUMENT unless `chunk` fits `config`: at least one token, ids in
// the vocabulary, one K and one V per layer of [n_kv_heads, T, head_dim].
// (Values are checked for finiteness where they are appended.)
[[nodiscard]] absl::Status ValidateChunkKv(const ModelConfig& config, const ChunkKv& chunk);

// Prefills `tokens` alone from position 0 on the CPU and returns their
// ChunkKv. INVALID_ARGUMENT for no tokens or an id outside the
// vocabulary; OUT_OF_RANGE for more tokens than the model's max_seq_len.
absl::StatusOr<ChunkKv> EncodeChunk(const Model& model, absl::Span<const int32_t> tokens);

// Rotates `chunk`'s keys for positions [first_position, +T) (exactly the
// decoder's RoPE at those positions) and copies its values.
// INVALID_ARGUMENT for a chunk ValidateChunkKv refuses, or a first position
// that is negative or puts the last one past INT32_MAX.
absl::StatusOr<PlacedChunkKv> PlaceChunk(const ModelConfig& config, const ChunkKv& chunk,
                                         int first_position);

// Places `chunk` at session->next_position() and appends it there: the
// step of building a prompt's context from stored chunks. Errors of
// PlaceChunk and DecodeSession::AppendKv; the session is unchanged on
// error.
[[nodiscard]] absl::Status AppendChunk(const ModelConfig& config, const ChunkKv& chunk,
                                       DecodeSession* session);

}  // namespace mnemo::decoder

#endif  // MNEMO_DECODER_CHUNK_KV_H_
