// Internal: device-side parameters and the launcher of the KV dequantization
// kernel. Included by kv_dequant.cu and kv_dequant_cuda.cc (and by device
// code in kernels/ that wants KV decoded in place); callers use
// kernels/kv_dequant.h.
#ifndef MNEMO_KERNELS_KV_DEQUANT_LAUNCH_H_
#define MNEMO_KERNELS_KV_DEQUANT_LAUNCH_H_

#include <cuda_runtime_api.h>

#include <cstdint>

namespace mnemo::kernels::internal {

// Device pointers; layout of kernels/kv_dequant.h.
struct KvDequantParams {
  int bits = 8;              // 8 or 4
  bool per_channel = false;  // groups run along tokens (else along channels)
  bool fp32_params = false;  // scales / mins are float (else IEEE half bits)
  uint32_t heads = 0;
  uint32_t tokens = 0;
  uint32_t head_dim = 0;
  uint32_t group_size = 0;
  uint32_t groups_per_line = 0;     // ceil(line extent / group_size)
  uint32_t elements = 0;            // heads * tokens * head_dim, < 2^31
  const uint32_t* codes = nullptr;  // 4-byte words of the (padded) code area
  const void* scales = nullptr;     // [groups] float or uint16_t
  const void* mins = nullptr;       // [groups]
  float* out = nullptr;             // [elements] or null; 16-byte aligned
  uint16_t* out_fp16 = nullptr;     // [elements] or null; 16-byte aligned
};

// One thread per 4-byte word of codes (4 int8 or 8 int4 elements), grid-
// stride, vector stores; 256 threads per block.
cudaError_t LaunchKvDequant(const KvDequantParams& p, cudaStream_t stream);

}  // namespace mnemo::kernels::internal

#endif  // MNEMO_KERNELS_KV_DEQUANT_LAUNCH_H_
