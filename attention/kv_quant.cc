#include "attention/kv_quant.h"

#include "common/half.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"

namespace mnemo::attention {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the quantized payload is stored in host order, little-endian");

uint64_t CeilDiv(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

int Levels(const KvQuantSpec& spec) { return (1 << spec.bits) - 1; }

// One group's parameters, as the decoder sees them.
struct GroupParams {
  float lo = 0;     // decoded value of code 0
  float scale = 0;  // step between codes; 0 for a constant group
};

// The smallest float >= d (d finite, within float range).
float FloatAtLeast(double d) {
  float f = static_cast<float>(d);
  if (static_cast<double>(f) < d) f = std::nextafter(f, std::numeric_limits<float>::infinity());
  return f;
}

uint16_t HalfStepDown(uint16_t h) {
  if (h == 0x0000) return 0x8001;  // +0 -> smallest negative subnormal
  return (h & 0x8000u) ? static_cast<uint16_t>(h + 1) : static_cast<uint16_t>(h - 1);
}

uint16_t HalfStepUp(uint16_t h) {
  if (h == 0x8000) return 0x0001;  // -0 -> smallest positive subnormal
  return (h & 0x8000u) ? static_cast<uint16_t>(h - 1) : static_cast<uint16_t>(h + 1);
}

// The largest fp16 value <= v / the smallest >= v; |v| <= 2^16 keeps both
// finite.
uint16_t HalfAtMost(float v) {
  uint16_t h = FloatToHalfBits(v);
  if (HalfBitsToFloat(h) > v) h = HalfStepDown(h);
  return h;
}

uint16_t HalfAtLeast(float v) {
  uint16_t h = FloatToHalfBits(v);
  if (HalfBitsToFloat(h) < v) h = HalfStepUp(h);
  return h;
}

// The value code `q` decodes to: one fp32 multiply, then one fp32 add.
// Kept as two statements (and the default x86-64 target has no FMA), so
// the result matches the CUDA kernel's __fmul_rn / __fadd_rn bit for bit.
inline float Decode(uint32_t q, float scale, float lo) {
  const float step = static_cast<float>(q) * scale;
  return step + lo;
}

// Calls fn(group, first_element, stride, count) for every group: the
// elements of group `group` are first + k * stride, k < count.
template <typename Fn>
void ForEachGroup(const KvQuantSpec& s, const KvQuantLayout& l, Fn fn) {
  const uint64_t gs = s.group_size;
  if (s.grouping == QuantGrouping::kPerToken) {
    for (uint64_t line = 0; line < l.lines; ++line) {
      for (uint64_t gi = 0; gi < l.groups_per_line; ++gi) {
        const uint64_t first_c = gi * gs;
        fn(line * l.groups_per_line + gi, line * s.head_dim + first_c, uint64_t{1},
           static_cast<uint32_t>(std::min<uint64_t>(gs, s.head_dim - first_c)));
      }
    }
    return;
  }
  // Per channel: for one (head, token group) visit the channels innermost,
  // so the group's rows stay in cache across channels.
  for (uint64_t h = 0; h < s.heads; ++h) {
    for (uint64_t gi = 0; gi < l.groups_per_line; ++gi) {
      const uint64_t first_t = gi * gs;
      const auto count = static_cast<uint32_t>(std::min<uint64_t>(gs, s.tokens - first_t));
      for (uint64_t c = 0; c < s.head_dim; ++c) {
        fn((h * s.head_dim + c) * l.groups_per_line + gi, (h * s.tokens + first_t) * s.head_dim + c,
           uint64_t{s.head_dim}, count);
      }
    }
  }
}

GroupParams MakeParams(float mn, float mx, int levels, QuantParamType type) {
  GroupParams p;
  if (type == QuantParamType::kFp32) {
    p.lo = mn;
    p.scale = FloatAtLeast((static_cast<double>(mx) - mn) / levels);
    // Rounding the step up may lift the top of the grid past the magnitude
    // bound when max sits right at it; the decoder refuses such grids.
    while (p.scale > 0 && !(Decode(levels, p.scale, p.lo) <= kMaxQuantMagnitude)) {
      p.scale = std::nextafter(p.scale, 0.0f);
    }
  } else {
    p.lo = HalfBitsToFloat(HalfAtMost(mn));
    p.scale = HalfBitsToFloat(HalfAtLeast(FloatAtLeast((static_cast<double>(mx) - p.lo) / levels)));
  }
  return p;
}

// Nearest code of x; inv_scale = 1 / scale (0 for a constant group).
uint32_t Code(float x, float lo, double inv_scale, int levels) {
  const double r = std::floor((static_cast<double>(x) - lo) * inv_scale + 0.5);
  return static_cast<uint32_t>(std::clamp(r, 0.0, static_cast<double>(levels)));
}

void StoreParam(char* base, uint64_t g, float v, QuantParamType type) {
  if (type == QuantParamType::kFp32) {
    std::memcpy(base + g * 4, &v, 4);
  } else {
    const uint16_t h = FloatToHalfBits(v);  // v is on the fp16 grid: exact
    std::memcpy(base + g * 2, &h, 2);
  }
}

float LoadParam(const char* base, uint64_t g, QuantParamType type) {
  if (type == QuantParamType::kFp32) {
    float v;
    std::memcpy(&v, base + g * 4, 4);
    return v;
  }
  uint16_t h;
  std::memcpy(&h, base + g * 2, 2);
  return HalfBitsToFloat(h);
}

absl::Status Corrupt(absl::string_view what) {
  return absl::DataLossError(absl::StrCat("quantized payload: ", what));
}

}  // namespace

KvQuantSpec Int8RowSpec(uint32_t heads, uint32_t tokens, uint32_t head_dim,
                        QuantParamType param_type) {
  return KvQuantSpec{heads, tokens, head_dim, 8, QuantGrouping::kPerToken, head_dim, param_type};
}

KvQuantSpec Int4KeySpec(uint32_t heads, uint32_t tokens, uint32_t head_dim, uint32_t group_size,
                        QuantParamType param_type) {
  return KvQuantSpec{heads,      tokens,    head_dim, 4, QuantGrouping::kPerChannel,
                     group_size, param_type};
}

KvQuantSpec Int4ValueSpec(uint32_t heads, uint32_t tokens, uint32_t head_dim, uint32_t group_size,
                          QuantParamType param_type) {
  return KvQuantSpec{heads, tokens, head_dim, 4, QuantGrouping::kPerToken, group_size, param_type};
}

absl::Status ValidateQuantSpec(const KvQuantSpec& s) {
  if (s.heads == 0 || s.tokens == 0 || s.head_dim == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("quantized tensor dimensions must be >= 1, got [", s.heads, ", ", s.tokens,
                     ", ", s.head_dim, "]"));
  }
  // heads * tokens fits in 64 bits; bound it before the third factor so
  // that the product cannot wrap around.
  const uint64_t rows = uint64_t{s.heads} * s.tokens;
  if (rows > kMaxQuantElements || rows * s.head_dim > kMaxQuantElements) {
    return absl::InvalidArgumentError(absl::StrCat("quantized tensor [", s.heads, ", ", s.tokens,
                                                   ", ", s.head_dim, "] exceeds ",
                                                   kMaxQuantElements, " elements"));
  }
  if (s.bits != 4 && s.bits != 8) {
    return absl::InvalidArgumentError(
        absl::StrCat("quantization bits must be 4 or 8, got ", s.bits));
  }
  if (s.group_size == 0 || s.group_size > kMaxQuantGroupSize) {
    return absl::InvalidArgumentError(absl::StrCat("quantization group size must be in [1, ",
                                                   kMaxQuantGroupSize, "], got ", s.group_size));
  }
  if (s.grouping != QuantGrouping::kPerToken && s.grouping != QuantGrouping::kPerChannel) {
    return absl::InvalidArgumentError("unknown quantization grouping");
  }
  if (s.param_type != QuantParamType::kFp16 && s.param_type != QuantParamType::kFp32) {
    return absl::InvalidArgumentError("unknown quantization parameter type");
  }
  return absl::OkStatus();
}

KvQuantLayout QuantLayout(const KvQuantSpec& s) {
  KvQuantLayout l;
  l.elements = uint64_t{s.heads} * s.tokens * s.head_dim;
  const bool per_token = s.grouping == QuantGrouping::kPerToken;
  l.lines = per_token ? uint64_t{s.heads} * s.tokens : uint64_t{s.heads} * s.head_dim;
  const uint64_t extent = per_token ? s.head_dim : s.tokens;
  l.groups_per_line = s.group_size == 0 ? 0 : CeilDiv(extent, s.group_size);
  l.groups = l.lines * l.groups_per_line;
  const uint64_t used = s.bits == 8 ? l.elements : CeilDiv(l.elements, 2);
  l.code_bytes = CeilDiv(used, 4) * 4;
  l.param_bytes = l.groups * (s.param_type == QuantParamType::kFp16 ? 2 : 4);
  l.scales_offset = l.code_bytes;
  l.mins_offset = l.code_bytes + l.param_bytes;
  l.payload_bytes = l.code_bytes + 2 * l.param_bytes;
  return l;
}

QuantParamType ChooseQuantParamType(absl::Span<const float> x) {
  float peak = 0;
  for (float v : x) peak = std::max(peak, std::abs(v));  // NaN never wins max
  return peak >= 0x1p-10f && peak <= kMaxFp16ParamMagnitude ? QuantParamType::kFp16
                                                            : QuantParamType::kFp32;
}

absl::Status QuantizeKv(absl::Span<const float> x, const KvQuantSpec& spec, std::string* payload) {
  if (absl::Status s = ValidateQuantSpec(spec); !s.ok()) return s;
  const KvQuantLayout l = QuantLayout(spec);
  if (x.size() != l.elements) {
    return absl::InvalidArgumentError(
        absl::StrCat("quantize: got ", x.size(), " values for a tensor of ", l.elements));
  }
  const float limit =
      spec.param_type == QuantParamType::kFp16 ? kMaxFp16ParamMagnitude : kMaxQuantMagnitude;
  for (size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("quantize: x[", i, "] = ", x[i], " is not finite"));
    }
    if (std::abs(x[i]) > limit) {
      return absl::InvalidArgumentError(
          absl::StrCat("quantize: |x[", i, "]| = ", std::abs(x[i]), " exceeds ", limit));
    }
  }
  payload->assign(l.payload_bytes, '\0');
  auto* codes = reinterpret_cast<uint8_t*>(payload->data());
  char* scales = payload->data() + l.scales_offset;
  char* mins = payload->data() + l.mins_offset;
  const int levels = Levels(spec);
  const bool four = spec.bits == 4;
  ForEachGroup(spec, l, [&](uint64_t g, uint64_t first, uint64_t stride, uint32_t count) {
    float mn = x[first], mx = x[first];
    for (uint32_t k = 1; k < count; ++k) {
      const float v = x[first + k * stride];
      mn = std::min(mn, v);
      mx = std::max(mx, v);
    }
    const GroupParams p = MakeParams(mn, mx, levels, spec.param_type);
    StoreParam(scales, g, p.scale, spec.param_type);
    StoreParam(mins, g, p.lo, spec.param_type);
    const double inv_scale = p.scale > 0 ? 1.0 / p.scale : 0.0;
    for (uint32_t k = 0; k < count; ++k) {
      const uint64_t e = first + k * stride;
      const uint32_t q = Code(x[e], p.lo, inv_scale, levels);
      if (four) {
        codes[e >> 1] |= static_cast<uint8_t>(q << ((e & 1) * 4));
      } else {
        codes[e] = static_cast<uint8_t>(q);
      }
    }
  });
  return absl::OkStatus();
}

absl::Status DequantizeKv(absl::string_view payload, const KvQuantSpec& spec,
                          absl::Span<float> out) {
  if (absl::Status s = ValidateQuantSpec(spec); !s.ok()) return s;
  const KvQuantLayout l = QuantLayout(spec);
  if (out.size() != l.elements) {
    return absl::InvalidArgumentError(absl::StrCat("dequantize: output holds ", out.size(),
                                                   " values, the tensor has ", l.elements));
  }
  if (payload.size() != l.payload_bytes) {
    return Corrupt(absl::StrCat(payload.size(), " bytes, the layout needs ", l.payload_bytes));
  }
  const auto* codes = reinterpret_cast<const uint8_t*>(payload.data());
  const bool four = spec.bits == 4;
  const uint64_t used = four ? (l.elements + 1) / 2 : l.elements;
  for (uint64_t b = used; b < l.code_bytes; ++b) {
    if (codes[b] != 0) return Corrupt(absl::StrCat("nonzero padding byte ", b));
  }
  if (four && (l.elements & 1) && (codes[used - 1] >> 4) != 0) {
    return Corrupt("nonzero padding nibble");
  }
  const int levels = Levels(spec);
  const char* scales = payload.data() + l.scales_offset;
  const char* mins = payload.data() + l.mins_offset;
  // Group by group, as the quantizer wrote them: no per-group buffer (a
  // hostile spec may have as many groups as elements), and a per-channel
  // group's rows stay in cache across channels.
  absl::Status status;
  ForEachGroup(spec, l, [&](uint64_t g, uint64_t first, uint64_t stride, uint32_t count) {
    if (!status.ok()) return;
    GroupParams p;
    p.scale = LoadParam(scales, g, spec.param_type);
    p.lo = LoadParam(mins, g, spec.param_type);
    // Every code of the group decodes into [lo, Decode(levels)]: both
    // operations are monotone for scale >= 0.
    if (!(p.scale >= 0) || !std::isfinite(p.scale) || !(p.lo >= -kMaxQuantMagnitude) ||
        !(Decode(levels, p.scale, p.lo) <= kMaxQuantMagnitude)) {
      status = Corrupt(absl::StrCat("group ", g, " has scale ", p.scale, " and min ", p.lo));
      return;
    }
    for (uint32_t k = 0; k < count; ++k) {
      const uint64_t e = first + k * stride;
      const uint32_t q = four ? (codes[e >> 1] >> ((e & 1) * 4)) & 0xfu : codes[e];
      out[e] = Decode(q, p.scale, p.lo);
    }
  });
  return status;
}

uint16_t FloatToHalfBits(float f) { return FloatToHalf(f); }

float HalfBitsToFloat(uint16_t h) { return HalfToFloat(h); }

}  // namespace mnemo::attention
