// Decoding of product-quantized memory tokens on the GPU (issue 14): n
// codes of an injection model's PQ (faiss's layout, index/pq_codec.h) ->
// n rows of floats (fp32 or fp16) in a device buffer, such as the decoder's
// input-embedding rows. The CPU reference is index::PqCodec::Decode;
// tests/kernels/pq_decode_test.cc compares the two.
//
// Layout (kernels/ sits below index/ and cannot include it): a vector of
// dim floats is m sub-vectors of dsub = dim / m; its code is code_size =
// ceil(m * nbits / 8) bytes holding m indices of nbits each, LSB-first;
// sub-vector j of the output is centroids[j][index_j][0..dsub), a table of
// m * 2^nbits * dsub floats. Decoding copies centroid values, so fp32
// output is bitwise equal to the CPU's and fp16 output is its
// round-to-nearest-even conversion.
//
// Plain C++ interface: no CUDA types (a stream is passed as void*).
// Without CUDA every call returns UNAVAILABLE.
#ifndef MNEMO_KERNELS_PQ_DECODE_H_
#define MNEMO_KERNELS_PQ_DECODE_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace mnemo::kernels {

enum class PqOutput { kF32, kF16 };  // fp16 is IEEE binary16 bits

// The codebooks resident on device 0, decoding into device buffers.
// Immutable after Create; Decode is safe from several threads (each call
// stages its codes in its own buffer).
class PqDecoderGpu {
 public:
  // `centroids` (host) holds m * 2^nbits * (dim / m) floats.
  // INVALID_ARGUMENT for dim < 1, m not dividing dim, nbits outside [1, 16]
  // or a null table; UNAVAILABLE without CUDA or a device; INTERNAL for CUDA
  // failures.
  static absl::StatusOr<std::unique_ptr<PqDecoderGpu>> Create(int dim, int m, int nbits,
                                                              const float* centroids);
  ~PqDecoderGpu();
  PqDecoderGpu(const PqDecoderGpu&) = delete;
  PqDecoderGpu& operator=(const PqDecoderGpu&) = delete;

  int dim() const;
  size_t code_size() const;

  // Decodes n codes (host, n * code_size bytes) into the DEVICE buffer
  // `device_out`: row r (dim values of `type`) starts at element
  // r * row_stride (row_stride >= dim). Runs on `stream` (a cudaStream_t,
  // null for a private one) and returns once the rows are written.
  // INVALID_ARGUMENT for a null buffer, row_stride < dim or n * row_stride
  // >= 2^31; INTERNAL for CUDA failures.
  absl::Status Decode(const uint8_t* codes, size_t n, void* device_out, size_t row_stride,
                      PqOutput type, void* stream = nullptr) const;

 private:
  struct Impl;
  explicit PqDecoderGpu(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One-shot form with HOST buffers (copies in, decodes, copies out): the
// codebooks and codes as above, output n rows of row_stride (0 = dim)
// values into out_f32 or out_f16 (exactly one non-null; elements between
// rows are left as they were). Same errors as Create and Decode.
struct PqDecodeArgs {
  int dim = 0, m = 0, nbits = 8;
  const float* centroids = nullptr;
  const uint8_t* codes = nullptr;
  size_t n = 0;
  size_t row_stride = 0;
  float* out_f32 = nullptr;
  uint16_t* out_f16 = nullptr;
};
absl::Status PqDecodeGpu(const PqDecodeArgs& args);

}  // namespace mnemo::kernels

#endif  // MNEMO_KERNELS_PQ_DECODE_H_
