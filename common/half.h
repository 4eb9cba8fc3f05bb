// IEEE binary16 and bfloat16 conversions, the one implementation every part
// uses (stored token vectors, KV codecs and quantization parameters, the
// SDK's wire types). Float to half rounds to nearest even, overflows to
// infinity and keeps NaN a quiet NaN; half to float is exact. Branch-light
// bit manipulation; no dependency.
#ifndef MNEMO_COMMON_HALF_H_
#define MNEMO_COMMON_HALF_H_

#include <cstdint>

namespace mnemo {

uint16_t FloatToHalf(float f);
float HalfToFloat(uint16_t h);
uint16_t FloatToBf16(float f);
float Bf16ToFloat(uint16_t b);

}  // namespace mnemo

#endif  // MNEMO_COMMON_HALF_H_
