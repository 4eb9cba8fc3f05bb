// Dequantization of int8 / int4 KV-cache payloads on the GPU: the CUDA
// version of attention::DequantizeKv (attention/kv_quant.h), for blocks of
// db/kv_codec.h after the host has undone the entropy stage
// (db::DecodeKvPayload). tests/kernels/kv_dequant_test.cc compares the two.
//
// The payload layout is attention/kv_quant.h's (kernels/ sits below
// attention/ and cannot include it; the test checks that both agree on it):
// codes (8 bit: one byte per element; 4 bit: two per byte, low nibble
// first, in flat [heads, tokens, head_dim] order) zero-padded to a multiple
// of 4 bytes, then one scale per group, then one min per group (fp16 or
// fp32). Element = fp32(fp32(code * scale) + min), the same operations as
// the CPU reference, so the results are the same bits.
//
// Plain C++ interface: no CUDA types, so callers build with or without
// CUDA. Without CUDA every call returns UNAVAILABLE.
#ifndef MNEMO_KERNELS_KV_DEQUANT_H_
#define MNEMO_KERNELS_KV_DEQUANT_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"

namespace mnemo::kernels {

// Largest tensor the kernel decodes in one call (attention::kMaxQuantElements).
inline constexpr uint64_t kMaxKvDequantElements = uint64_t{1} << 28;

// How elements are grouped (attention::QuantGrouping, same values).
enum class KvDequantGrouping : uint8_t {
  kPerToken = 0,    // groups of group_size channels of one (head, token)
  kPerChannel = 1,  // groups of group_size tokens of one (head, channel)
};

// All pointers are HOST memory; the call copies the payload to the device,
// decodes it there and copies the outputs back (synchronous).
struct KvDequantArgs {
  int bits = 8;  // 8 or 4
  KvDequantGrouping grouping = KvDequantGrouping::kPerToken;
  uint32_t heads = 0;        // >= 1
  uint32_t tokens = 0;       // >= 1
  uint32_t head_dim = 0;     // >= 1
  uint32_t group_size = 0;   // >= 1; int8 rows use head_dim
  bool fp32_params = false;  // scales / mins are fp32 (else fp16)
  const uint8_t* payload = nullptr;
  size_t payload_bytes = 0;      // must be the layout's exact size
  float* out = nullptr;          // [heads, tokens, head_dim] float32, or null
  uint16_t* out_fp16 = nullptr;  // same, IEEE binary16 bits (round to nearest even), or null
};

// INVALID_ARGUMENT for bad sizes, a payload of the wrong size, null buffers
// or no output; UNAVAILABLE without CUDA or a device; INTERNAL for CUDA
// failures. The payload's parameters are not checked (the codec checks
// them); whatever they hold, the kernel only reads inside the payload.
// Thread-safe.
absl::Status DequantizeKvGpu(const KvDequantArgs& args);

}  // namespace mnemo::kernels

#endif  // MNEMO_KERNELS_KV_DEQUANT_H_
