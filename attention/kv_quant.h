// Group-wise asymmetric quantization of KV-cache tensors: the CPU reference
// of the int8 / int4 math behind db/kv_codec.h, and what the CUDA
// dequantizer (kernels/kv_dequant.h) is tested against.
//
// Tensors are float32 row-major [heads, tokens, head_dim]; element
// e = (h * tokens + t) * head_dim + c. Elements are cut into groups; each
// group g has a minimum lo[g] and a step scale[g] >= 0, and an element of
// the group is stored as a code q in [0, 2^bits - 1]:
//
//   q     = clamp(round((x - lo) / scale), 0, 2^bits - 1)   (0 when scale = 0)
//   x'    = fp32(fp32(q * scale) + lo)                      (no FMA)
//
// so a constant group (scale 0) decodes exactly to lo, never to NaN. The
// decode is one fp32 multiply then one fp32 add, so that every
// implementation (this file, the CUDA kernel) produces the same bits.
//
// Groupings (KIVI: key outliers live in fixed channels, value errors are
// best bounded per token):
//   kPerToken   a line is one (head, token) row of head_dim channels, cut
//               into groups of group_size consecutive channels. int8 uses
//               group_size = head_dim (one group per row); int4 values use
//               it with a small group_size.
//   kPerChannel a line is one (head, channel) column of `tokens` values,
//               cut into groups of group_size consecutive tokens; int4 keys.
// The last group of a line may be partial (extent % group_size elements).
// Group index: line * groups_per_line + position_in_line / group_size with
//   kPerToken:   line = h * tokens + t,   position = c
//   kPerChannel: line = h * head_dim + c, position = t
//
// Payload layout (little-endian host; what QuantizeKv writes and
// DequantizeKv / the CUDA kernel read):
//   codes   code_bytes: 8 bit: byte e holds element e; 4 bit: byte e / 2,
//           low nibble for even e, high nibble for odd e. Zero padded (the
//           unused high nibble of an odd count, then bytes) to a multiple
//           of 4 bytes, so the parameters and 32-bit code loads are aligned.
//   scales  groups values, fp16 (IEEE binary16) or fp32 by param_type
//   mins    groups values, same type
//
// fp16 parameters halve the parameter overhead (int4 with 32-element groups:
// 5 bits per element instead of 6). The quantizer makes them exact: it
// rounds lo down and scale up to fp16 before computing the codes, so the
// grid still covers the group and the codes are chosen for the parameters
// the decoder sees. ChooseQuantParamType picks fp16 only where that costs
// nothing measurable (see there).
#ifndef MNEMO_ATTENTION_KV_QUANT_H_
#define MNEMO_ATTENTION_KV_QUANT_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace mnemo::attention {

enum class QuantGrouping : uint8_t {
  kPerToken = 0,    // groups of channels within one (head, token) row
  kPerChannel = 1,  // groups of tokens within one (head, channel) column
};

enum class QuantParamType : uint8_t {
  kFp16 = 0,  // scales and mins stored as IEEE binary16
  kFp32 = 1,  // stored as float32
};

// Largest element count of a quantized tensor (1 GiB of float32).
inline constexpr uint64_t kMaxQuantElements = uint64_t{1} << 28;
// Largest group size accepted (any line extent up to it is one group).
inline constexpr uint32_t kMaxQuantGroupSize = 1u << 16;
// Inputs must satisfy |x| <= this. Far above any KV value; keeps every
// range, step and decoded value finite in fp32. Decoding checks that every
// value a payload can produce lies within it too, so whatever decodes can
// be quantized again.
inline constexpr float kMaxQuantMagnitude = 0x1p100f;
// fp16 parameters need |x| <= this (lo, lo + range and the step stay finite
// fp16 numbers).
inline constexpr float kMaxFp16ParamMagnitude = 0x1p15f;

struct KvQuantSpec {
  uint32_t heads = 0;     // KV heads, >= 1
  uint32_t tokens = 0;    // >= 1
  uint32_t head_dim = 0;  // >= 1
  int bits = 8;           // code width: 8 or 4
  QuantGrouping grouping = QuantGrouping::kPerToken;
  // Elements per group along the line, 1..kMaxQuantGroupSize. Larger than
  // the line extent means one (partial) group per line.
  uint32_t group_size = 0;
  QuantParamType param_type = QuantParamType::kFp16;
};

// The schemes of db/kv_codec.h.
// int8: one group per (head, token) row.
KvQuantSpec Int8RowSpec(uint32_t heads, uint32_t tokens, uint32_t head_dim,
                        QuantParamType param_type);
// int4 keys: per channel, groups of group_size tokens.
KvQuantSpec Int4KeySpec(uint32_t heads, uint32_t tokens, uint32_t head_dim, uint32_t group_size,
                        QuantParamType param_type);
// int4 values: per token, groups of group_size channels.
KvQuantSpec Int4ValueSpec(uint32_t heads, uint32_t tokens, uint32_t head_dim, uint32_t group_size,
                          QuantParamType param_type);

// INVALID_ARGUMENT unless every dimension is >= 1, the element count is at
// most kMaxQuantElements, bits is 4 or 8, group_size is in
// [1, kMaxQuantGroupSize] and the enums hold known values.
absl::Status ValidateQuantSpec(const KvQuantSpec& spec);

// Sizes and offsets of the payload of a valid spec (bytes unless stated).
struct KvQuantLayout {
  uint64_t elements = 0;         // heads * tokens * head_dim
  uint64_t lines = 0;            // heads * tokens or heads * head_dim
  uint64_t groups_per_line = 0;  // ceil(line extent / group_size)
  uint64_t groups = 0;           // lines * groups_per_line
  uint64_t code_bytes = 0;       // codes incl. padding, a multiple of 4
  uint64_t param_bytes = 0;      // bytes of the scales (and of the mins)
  uint64_t scales_offset = 0;    // = code_bytes
  uint64_t mins_offset = 0;      // = code_bytes + param_bytes
  uint64_t payload_bytes = 0;    // = code_bytes + 2 * param_bytes
};
KvQuantLayout QuantLayout(const KvQuantSpec& spec);

// fp16 parameters when the tensor's largest magnitude is in
// [2^-10, kMaxFp16ParamMagnitude]: there fp16 keeps lo and scale to 2^-11
// relative (normal numbers), or to 6e-8 absolute for steps below 6e-5,
// which is under 1e-4 of the tensor's scale. fp32 otherwise (including an
// all-zero tensor).
QuantParamType ChooseQuantParamType(absl::Span<const float> x);

// Quantizes x ([heads, tokens, head_dim], spec's dims) into a payload of
// QuantLayout(spec).payload_bytes bytes, replacing *payload.
// INVALID_ARGUMENT for an invalid spec, a size mismatch, a non-finite value
// or one beyond kMaxQuantMagnitude (kMaxFp16ParamMagnitude with fp16
// parameters), naming the first bad index.
absl::Status QuantizeKv(absl::Span<const float> x, const KvQuantSpec& spec, std::string* payload);

// Decodes a payload into out (exactly QuantLayout(spec).elements floats).
// INVALID_ARGUMENT for an invalid spec or a wrong `out` size; DATA_LOSS when
// the payload size is not the layout's, padding is not zero, or a group's
// parameters are not finite, have scale < 0, or could decode outside
// [-kMaxQuantMagnitude, kMaxQuantMagnitude]; `out` is then partly written.
// Never reads out of bounds; allocates nothing.
absl::Status DequantizeKv(absl::string_view payload, const KvQuantSpec& spec,
                          absl::Span<float> out);

// IEEE binary16 bits <-> float, as the quantizer stores its parameters.
// common/half.h's conversions (FloatToHalfBits rounds to nearest even,
// overflows to infinity, keeps NaN a quiet NaN; HalfBitsToFloat is exact).
uint16_t FloatToHalfBits(float f);
float HalfBitsToFloat(uint16_t h);

}  // namespace mnemo::attention

#endif  // MNEMO_ATTENTION_KV_QUANT_H_
