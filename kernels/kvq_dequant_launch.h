// Internal: device-side parameters and launcher of the kvq dequantization
// kernels (kernels/kvq_dequant.h has the layout).
#ifndef MNEMO_KERNELS_KVQ_DEQUANT_LAUNCH_H_
#define MNEMO_KERNELS_KVQ_DEQUANT_LAUNCH_H_

#include <cuda_runtime_api.h>

#include <cstdint>

namespace mnemo::kernels::internal {

// Device pointers.
struct KvqDequantParams {
  uint32_t heads = 0, tokens = 0, head_dim = 0, sink_tokens = 0;
  bool keys = true;
  int bits = 3;
  uint32_t elements = 0;  // < 2^31
  const uint8_t* codes = nullptr;
  const uint16_t* levels = nullptr;
  const uint16_t* scales = nullptr;
  const uint16_t* offsets = nullptr;  // null for values
  const uint16_t* sinks = nullptr;
  const uint32_t* outlier_index = nullptr;
  const uint16_t* outlier_value = nullptr;
  uint32_t outliers = 0;
  float* out = nullptr;
};

// One thread per element (grid-stride, 256 per block), then one per
// outlier on the same stream.
cudaError_t LaunchKvqDequant(const KvqDequantParams& p, cudaStream_t stream);

}  // namespace mnemo::kernels::internal

#endif  // MNEMO_KERNELS_KVQ_DEQUANT_LAUNCH_H_
