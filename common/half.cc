// IEEE binary16 and bfloat16 conversions (see half.h).
#include "common/half.h"

#include <bit>

namespace mnemo {

uint16_t FloatToHalf(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const auto sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) {  // inf, or NaN (made quiet)
    return static_cast<uint16_t>(sign | (ax > 0x7f800000u ? 0x7e00u : 0x7c00u));
  }
  // 65520 is halfway between 65504 (odd mantissa) and 65536: even rounds up.
  if (ax >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);
  if (ax < 0x38800000u) {
    // Below 2^-14: a subnormal half, i.e. a multiple of 2^-24. Adding 0.5
    // (whose ulp is 2^-24) lets the FPU round to nearest even; the low
    // mantissa bits are then the half's.
    const float a = std::bit_cast<float>(ax) + 0.5f;
    return static_cast<uint16_t>(sign | (std::bit_cast<uint32_t>(a) - 0x3f000000u));
  }
  // Normal: rebias the exponent (127 -> 15) and round the mantissa from 23
  // to 10 bits, to nearest even; a carry correctly bumps the exponent.
  const uint32_t odd = (ax >> 13) & 1u;
  ax = ax - 0x38000000u + 0xfffu + odd;
  return static_cast<uint16_t>(sign | (ax >> 13));
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t em = h & 0x7fffu;
  if (em >= 0x7c00u) return std::bit_cast<float>(sign | 0x7f800000u | ((em & 0x3ffu) << 13));
  if (em < 0x0400u) {  // zero or subnormal: em * 2^-24, exact in float
    const float v = static_cast<float>(em) * 0x1p-24f;
    return sign != 0 ? -v : v;
  }
  return std::bit_cast<float>(sign | ((em << 13) + 0x38000000u));
}

uint16_t FloatToBf16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x0040u);
  // Round to nearest even on the 16 bits dropped; overflow carries into
  // the exponent and ends at infinity.
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

float Bf16ToFloat(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

}  // namespace mnemo
