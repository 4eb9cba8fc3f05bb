// Internal: device-side parameters and launcher of the PQ decoding kernel
// (kernels/pq_decode.h has the layout).
#ifndef MNEMO_KERNELS_PQ_DECODE_LAUNCH_H_
#define MNEMO_KERNELS_PQ_DECODE_LAUNCH_H_

#include <cuda_runtime_api.h>

#include <cstdint>

namespace mnemo::kernels::internal {

// Device pointers.
struct PqDecodeParams {
  uint32_t n = 0, dim = 0, dsub = 0, code_size = 0, row_stride = 0;
  int nbits = 8;
  const float* centroids = nullptr;  // m * 2^nbits * dsub
  const uint8_t* codes = nullptr;    // n * code_size
  float* out_f32 = nullptr;          // exactly one of the two
  uint16_t* out_f16 = nullptr;
};

// One thread per output value (grid-stride, 256 per block).
cudaError_t LaunchPqDecode(const PqDecodeParams& p, cudaStream_t stream);

}  // namespace mnemo::kernels::internal

#endif  // MNEMO_KERNELS_PQ_DECODE_LAUNCH_H_
