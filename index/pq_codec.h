// Product quantization of fixed-dimension float vectors with codebooks
// trained elsewhere (the injection model's `pq.centroids`): a thin wrapper
// around faiss::ProductQuantizer that fills its centroid table instead of
// training it and checks every input. The CPU reference of the CUDA decoder
// kernels/pq_decode.h.
//
// Layout (faiss's): the vector is split into m sub-vectors of dsub = dim / m
// floats; sub-vector j is replaced by the index of its nearest centroid
// among ksub = 2^nbits in centroids[j][0..ksub)[0..dsub), a float table of
// m * ksub * dsub. A vector's code is the m indices packed LSB-first in
// code_size() = ceil(m * nbits / 8) bytes (one byte per sub-vector when
// nbits is 8). Decoding concatenates the chosen centroids.
#ifndef MNEMO_INDEX_PQ_CODEC_H_
#define MNEMO_INDEX_PQ_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace faiss {
struct ProductQuantizer;
}  // namespace faiss

namespace mnemo::index {

// Immutable after FromCentroids; copyable; every method is const and safe
// from several threads.
class PqCodec {
 public:
  // INVALID_ARGUMENT when dim, m or nbits is out of range (dim >= 1,
  // m >= 1 dividing dim, nbits in [1, 16]), when centroids does not hold
  // m * 2^nbits * (dim / m) floats, or when a centroid is not finite.
  static absl::StatusOr<PqCodec> FromCentroids(int dim, int m, int nbits,
                                               std::vector<float> centroids);

  PqCodec(const PqCodec& other);
  PqCodec& operator=(const PqCodec& other);
  PqCodec(PqCodec&&) noexcept;
  PqCodec& operator=(PqCodec&&) noexcept;
  ~PqCodec();

  int dim() const { return dim_; }
  int m() const { return m_; }
  int nbits() const { return nbits_; }
  int dsub() const { return dim_ / m_; }
  int ksub() const { return 1 << nbits_; }
  size_t code_size() const;  // bytes per vector (m for nbits 8)
  // The centroid table, m * ksub * dsub floats (faiss's layout).
  absl::Span<const float> centroids() const;

  // n * dim floats -> n * code_size bytes. Returns an empty vector when the
  // input is invalid (see EncodeChecked for the reason).
  std::vector<uint8_t> Encode(absl::Span<const float> x) const;
  // Encode with a status: INVALID_ARGUMENT when x.size() is not a multiple
  // of dim() or when x holds a NaN or an infinity (naming the first one).
  absl::StatusOr<std::vector<uint8_t>> EncodeChecked(absl::Span<const float> x) const;

  // n * code_size bytes -> n * dim floats into `out`. DATA_LOSS when
  // codes.size() is not a multiple of code_size() (a truncated or garbage
  // buffer); INVALID_ARGUMENT when out.size() != n * dim.
  absl::Status Decode(absl::Span<const uint8_t> codes, absl::Span<float> out) const;
  // Decode into a new vector (same errors).
  absl::StatusOr<std::vector<float>> DecodeToVector(absl::Span<const uint8_t> codes) const;

 private:
  PqCodec() = default;
  int dim_ = 0, m_ = 0, nbits_ = 0;
  std::unique_ptr<faiss::ProductQuantizer> pq_;
};

}  // namespace mnemo::index

#endif  // MNEMO_INDEX_PQ_CODEC_H_
