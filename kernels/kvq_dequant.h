// Dequantization of kvq KV-cache payloads (attention/kvq.h) on the GPU:
// the CUDA version of attention::DequantizeKvqPlanes. The rANS stage stays
// on the CPU (attention::ParseKvq undoes it: a sequential, byte-serial
// decode that does not map onto GPU threads); the GPU does the rest: bit
// unpacking of the dense codes, level lookup, per-line scale and offset,
// sink tokens and the outlier scatter. tests/kernels/kvq_dequant_test.cc
// compares the two.
//
// Layout (kernels/ sits below attention/ and cannot include it; the test
// checks that both agree): codes are `bits` wide, LSB-first in a bit
// stream, line-major (keys: line = head * head_dim + channel over the
// tokens after the sinks; values: line = head * (tokens - sinks) + token
// over the channels), padded so that the two bytes holding any code can be
// read. Element = __fadd_rn(__fmul_rn(level[code], scale[line]),
// offset[line]) (offset 0 for values), the same operations as the CPU
// reference, so the results are the same bits; tokens below sink_tokens
// are their fp16 sink value; outliers overwrite their element.
//
// Plain C++ interface: no CUDA types. Without CUDA every call returns
// UNAVAILABLE.
#ifndef MNEMO_KERNELS_KVQ_DEQUANT_H_
#define MNEMO_KERNELS_KVQ_DEQUANT_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"

namespace mnemo::kernels {

// All pointers are HOST memory; the call copies them to the device,
// decodes there and copies the output back (synchronous). fp16 arrays are
// IEEE binary16 bits.
struct KvqDequantArgs {
  uint32_t heads = 0, tokens = 0, head_dim = 0;  // >= 1, < 2^28 elements
  bool keys = true;           // per-channel lines with offsets, else per-token
  int bits = 3;               // 1..8
  uint32_t sink_tokens = 0;   // <= tokens
  const uint8_t* packed_codes = nullptr;
  size_t packed_bytes = 0;    // >= ceil(dense * bits / 8) + 1
  const uint16_t* levels = nullptr;   // 2^bits
  const uint16_t* scales = nullptr;   // lines
  const uint16_t* offsets = nullptr;  // lines (keys only)
  const uint16_t* sinks = nullptr;    // heads * sink_tokens * head_dim
  const uint32_t* outlier_index = nullptr;  // outliers, each < elements
  const uint16_t* outlier_value = nullptr;
  size_t outliers = 0;
  float* out = nullptr;  // [heads, tokens, head_dim]
};

// INVALID_ARGUMENT for bad sizes, too few code bytes, null buffers or an
// outlier index beyond the tensor; UNAVAILABLE without CUDA or a device;
// INTERNAL for CUDA failures. Thread-safe.
absl::Status DequantizeKvqGpu(const KvqDequantArgs& args);

}  // namespace mnemo::kernels

#endif  // MNEMO_KERNELS_KVQ_DEQUANT_H_
