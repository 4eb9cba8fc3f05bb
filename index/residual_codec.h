// ColBERTv2-style residual compression of token vectors.
//
// A vector x is stored as the id of its nearest centroid c (k-means over a
// training sample, spherical: centroids have unit norm) plus its residual
// r = x - c quantised per dimension to `nbits` (1, 2 or 4) bits. For every
// dimension j the codec learns, from the residuals of the training sample,
//   * 2^nbits - 1 bucket cutoffs: the quantiles 1/2^nbits, 2/2^nbits, ... of
//     r_j, so every bucket is equally populated;
//   * 2^nbits bucket weights: the mean of the training residuals r_j that
//     fall into each bucket (the value a code decodes to).
// Decode(x) = c + (weight_j[bucket_j])_j.
//
// Code layout: one uint32 centroid id plus code_size() = ceil(dim * nbits / 8)
// bytes; dimension j occupies bits [j * nbits, (j + 1) * nbits) counted from
// the least significant bit of byte 0; unused trailing bits are zero.
//
// Thread safety: a trained codec is immutable; every const method may run
// concurrently. Train needs exclusive access.
#ifndef MNEMO_INDEX_RESIDUAL_CODEC_H_
#define MNEMO_INDEX_RESIDUAL_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace mnemo::index {

struct ResidualCodecOptions {
  // Vector dimension, 1..65536.
  uint32_t dim = 0;
  // Number of k-means centroids, 1..2^20. More centroids = smaller
  // residuals (lower error) and finer candidate generation, but slower
  // training and a bigger centroid table (num_centroids * dim floats).
  uint32_t num_centroids = 256;
  // Residual bits per dimension: 1, 2 or 4. Each step up roughly halves
  // the error (or better) and doubles the residual bytes.
  uint32_t nbits = 2;
  // k-means iterations. Default 10 (k-means converges fast on token
  // vectors; more buys little).
  uint32_t kmeans_iterations = 10;
  // Training points sampled per centroid at most (FAISS subsamples above
  // this). Default 64: training cost grows linearly with it.
  uint32_t max_points_per_centroid = 64;
  // Seed of the k-means initialisation and subsampling.
  int seed = 1234;
};

// INVALID_ARGUMENT naming the first field outside its documented range.
absl::Status ValidateResidualCodecOptions(const ResidualCodecOptions& options);

// One encoded batch: n centroid ids and n * code_size() residual bytes.
struct ResidualCodes {
  std::vector<uint32_t> centroids;
  std::vector<uint8_t> residuals;
};

class ResidualCodec {
 public:
  // Trains on `sample` (row-major n * dim, finite). Needs at least
  // num_centroids vectors (INVALID_ARGUMENT otherwise, or for bad options or
  // non-finite values). FAISS failures become INTERNAL.
  static absl::StatusOr<std::unique_ptr<ResidualCodec>> Train(
      const ResidualCodecOptions& options, absl::Span<const float> sample);

  // Reads a codec written by Serialize. Garbage, truncated or inconsistent
  // bytes give DATA_LOSS, never a crash.
  static absl::StatusOr<std::unique_ptr<ResidualCodec>> Deserialize(
      absl::Span<const uint8_t> bytes);

  ~ResidualCodec();
  ResidualCodec(const ResidualCodec&) = delete;
  ResidualCodec& operator=(const ResidualCodec&) = delete;

  // Encodes n = vectors.size() / dim vectors. INVALID_ARGUMENT when the size
  // is not a multiple of dim or a value is not finite.
  [[nodiscard]] absl::StatusOr<ResidualCodes> Encode(
      absl::Span<const float> vectors) const;

  // Decodes n = centroids.size() vectors into `out` (n * dim floats).
  // INVALID_ARGUMENT on a centroid id out of range or mismatched sizes.
  [[nodiscard]] absl::Status Decode(absl::Span<const uint32_t> centroids,
                                    absl::Span<const uint8_t> residuals,
                                    absl::Span<float> out) const;

  // Decodes one vector without checks: the caller guarantees
  // centroid < num_centroids(), `code` holds code_size() bytes and `out`
  // dim() floats. The hot path of MaxSim reranking.
  void DecodeOneUnchecked(uint32_t centroid, const uint8_t* code,
                          float* out) const;

  // Mean over the vectors of ||x - Decode(Encode(x))|| / ||x|| (vectors of
  // norm 0 are skipped). INVALID_ARGUMENT as for Encode.
  [[nodiscard]] absl::StatusOr<double> RelativeError(
      absl::Span<const float> vectors) const;

  // Bucket index of each dimension (n = dim values in [0, 2^nbits)) packed
  // into code_size() bytes and back. Exposed for tests; exact inverses.
  static void PackBuckets(absl::Span<const uint8_t> buckets, uint32_t nbits,
                          uint8_t* out);
  static void UnpackBuckets(const uint8_t* code, uint32_t nbits,
                            absl::Span<uint8_t> buckets);

  [[nodiscard]] absl::StatusOr<std::vector<uint8_t>> Serialize() const;

  uint32_t dim() const { return dim_; }
  uint32_t nbits() const { return nbits_; }
  uint32_t num_centroids() const { return num_centroids_; }
  // Residual bytes per vector.
  size_t code_size() const { return (size_t{dim_} * nbits_ + 7) / 8; }
  // Row-major num_centroids * dim, unit-norm rows.
  const std::vector<float>& centroids() const { return centroids_; }
  // Per dimension, row-major dim * (2^nbits - 1) cutoffs and dim * 2^nbits
  // weights (see the file comment).
  const std::vector<float>& cutoffs() const { return cutoffs_; }
  const std::vector<float>& weights() const { return weights_; }

 private:
  ResidualCodec(uint32_t dim, uint32_t nbits, uint32_t num_centroids);
  absl::Status BuildAssigner();
  void BuildDecodeTable();

  uint32_t dim_;
  uint32_t nbits_;
  uint32_t num_centroids_;
  std::vector<float> centroids_;
  std::vector<float> cutoffs_;
  std::vector<float> weights_;
  // decode_table_[(byte_pos * 256 + byte_value) * per_byte + i]: residual of
  // dimension byte_pos * per_byte + i (per_byte = 8 / nbits) for that byte.
  // Derived from weights_; makes decoding one table row add per byte.
  std::vector<float> decode_table_;
  // Nearest-centroid search (inner product on unit centroids). Opaque so the
  // header stays free of FAISS.
  struct Assigner;
  std::unique_ptr<Assigner> assigner_;
};

}  // namespace mnemo::index

#endif  // MNEMO_INDEX_RESIDUAL_CODEC_H_
