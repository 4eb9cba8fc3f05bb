// kvq: the compact KV-cache quantizer (db/kv_codec.h's kvq kind), after
// KVQuant and CacheGen. One tensor is float32 [heads, tokens, head_dim] of
// one layer, keys (pre-RoPE) or values. The tensor is split into:
//   sink tokens  the first sink_tokens tokens of every head, kept as fp16
//                (attention sinks; each stored chunk starts with one);
//   outliers     the ~outlier_fraction of the other elements farthest from
//                their line's mean (in units of its standard deviation),
//                kept as fp16 with their positions ("dense-and-sparse");
//   dense codes  the rest, bits-bit codes into 2^bits non-uniform levels
//                (1-D k-means of the normalized values, per tensor,
//                optionally entropy-constrained: rate_weight) scaled
//                per line: keys per (head, channel) over the tokens, with a
//                centre and a half-range (keys have per-channel offsets and
//                scales before RoPE), values per (head, token) over the
//                channels with a half-range around 0.
// An element decodes as fp32(fp32(level[code] * scale[line]) + offset[line])
// (offset 0 for values; no FMA, so every implementation gives the same
// bits); a sink or outlier element is its fp16 value.
// The codes are entropy-coded with a static rANS (attention/rans.h), one
// frequency table per tensor, i.e. per (layer, K or V) block.
//
// Payload (little-endian; what EncodeKvq writes and ParseKvq reads):
//   off  size
//    0   1    bits, 1..8
//    1   1    0 (reserved)
//    2   2    sink_tokens, <= tokens
//    4   4    outlier count, <= dense elements
//    8   4    bytes of the outlier positions
//   12   4    bytes of the rANS stream
//   16        levels: 2^bits fp16, finite
//             rANS frequencies: 2^bits uint16, summing to 4096
//             top scale: fp16, finite and >= 0
//             line scales: lines uint8 q; scale = fp16(top * 2^(-q/8))
//               (0 for q = 255): 8 bits instead of 16, the scale at most
//               9% above the line's half-range
//             offsets: lines fp16, finite (keys only)
//             sinks: heads * sink_tokens * head_dim fp16, finite
//             outlier positions: LEB128 deltas of flat element indices
//               (first index, then index - previous - 1), strictly
//               increasing, outside the sink tokens
//             outlier values: count fp16, finite
//             rANS stream of the dense codes, line-major
// and nothing after. Lines: keys heads * head_dim lines of
// (tokens - sink_tokens) codes; values heads * (tokens - sink_tokens) lines
// of head_dim codes. Every count and length is checked against the payload
// before it is used.
#ifndef MNEMO_ATTENTION_KVQ_H_
#define MNEMO_ATTENTION_KVQ_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace mnemo::attention {

// Inputs must satisfy |x| <= this (centres, half-ranges, sinks and
// outliers stay finite fp16); decoding refuses payloads that produce a
// value beyond it, so whatever decodes can be encoded again.
inline constexpr float kKvqMaxMagnitude = 0x1p15f;
// Largest element count (1 GiB of float32).
inline constexpr uint64_t kKvqMaxElements = uint64_t{1} << 28;
inline constexpr size_t kKvqHeaderBytes = 16;
// The 8-bit line scale that stands for 0.
inline constexpr int kKvqZeroScale = 255;

struct KvqOptions {
  int bits = 3;                   // code width, 1..8
  uint32_t sink_tokens = 1;       // leading tokens kept fp16 (capped at tokens)
  double outlier_fraction = 0.01; // of the non-sink elements, in [0, 0.5]
  // Entropy-constrained levels and codes (for bits <= 6): each value takes
  // the level minimizing (normalized error)^2 + rate_weight * code bits, in
  // [0, 1]; 0 = plain k-means, nearest level. Encoder-only. 0.005: ~4% fewer
  // bytes than 0 on the reference decoder's KV at about the same error.
  double rate_weight = 0.005;
};

// INVALID_ARGUMENT for options out of range.
absl::Status ValidateKvqOptions(const KvqOptions& options);

// The shape and parameters of a payload.
struct KvqSpec {
  uint32_t heads = 0, tokens = 0, head_dim = 0;
  bool keys = true;  // per-channel lines with offsets (keys) or per-token (values)
  int bits = 3;
  uint32_t sink_tokens = 0;
  uint64_t elements() const { return uint64_t{heads} * tokens * head_dim; }
  uint64_t dense() const { return uint64_t{heads} * (tokens - sink_tokens) * head_dim; }
  uint64_t lines() const {
    return keys ? uint64_t{heads} * head_dim : uint64_t{heads} * (tokens - sink_tokens);
  }
  uint64_t line_length() const { return keys ? tokens - sink_tokens : head_dim; }
};

// A payload with the entropy stage undone: what the CPU reference
// (DequantizeKvqPlanes) and the CUDA kernel (kernels/kvq_dequant.h) decode.
struct KvqPlanes {
  KvqSpec spec;
  // Dense codes, bits each, LSB-first bit stream in line-major order, zero
  // padded to a multiple of 4 bytes plus 4 (so a reader may load the two
  // bytes holding any code).
  std::vector<uint8_t> packed_codes;
  std::vector<uint16_t> levels;   // 2^bits fp16
  std::vector<uint16_t> scales;   // lines fp16 (expanded from the 8-bit steps)
  std::vector<uint16_t> offsets;  // lines fp16 (keys), empty for values
  std::vector<uint16_t> sinks;    // [heads, sink_tokens, head_dim] fp16
  std::vector<uint32_t> outlier_index;  // flat element indices, increasing
  std::vector<uint16_t> outlier_value;  // fp16
};

// Bytes of packed_codes for n codes of `bits` bits.
uint64_t KvqPackedBytes(uint64_t n, int bits);

// Encodes x (spec's shape; keys selects the role) into *payload; bits and
// sink_tokens come from options (sink_tokens capped at tokens).
// INVALID_ARGUMENT for bad options / shape / size, or a value non-finite or
// beyond kKvqMaxMagnitude (naming its index).
absl::Status EncodeKvq(absl::Span<const float> x, uint32_t heads, uint32_t tokens,
                       uint32_t head_dim, bool keys, const KvqOptions& options,
                       std::string* payload);

// Parses and validates a payload of a tensor of the given shape and role
// and undoes the rANS stage. DATA_LOSS for anything malformed (sizes,
// counts, positions, non-finite or negative parameters, rANS errors). Reads
// only inside `payload`; allocates only after the sizes are checked.
absl::StatusOr<KvqPlanes> ParseKvq(absl::string_view payload, uint32_t heads, uint32_t tokens,
                                   uint32_t head_dim, bool keys);

// The CPU reference decode of planes into out (spec.elements() floats).
// INVALID_ARGUMENT for planes whose vectors do not match their spec;
// DATA_LOSS when a decoded value is beyond kKvqMaxMagnitude.
absl::Status DequantizeKvqPlanes(const KvqPlanes& planes, absl::Span<float> out);

}  // namespace mnemo::attention

#endif  // MNEMO_ATTENTION_KVQ_H_
