// PqCodec: faiss::ProductQuantizer with a given centroid table.
#include "index/pq_codec.h"

#include <faiss/impl/ProductQuantizer.h>

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"

namespace mnemo::index {

absl::StatusOr<PqCodec> PqCodec::FromCentroids(int dim, int m, int nbits,
                                               std::vector<float> centroids) {
  if (dim < 1) return absl::InvalidArgumentError(absl::StrCat("PQ dim must be >= 1, got ", dim));
  if (m < 1 || dim % m != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("PQ m must be >= 1 and divide dim ", dim, ", got ", m));
  }
  if (nbits < 1 || nbits > 16) {
    return absl::InvalidArgumentError(absl::StrCat("PQ nbits must be in [1, 16], got ", nbits));
  }
  const size_t expected = static_cast<size_t>(dim) << nbits;  // m * ksub * dsub
  if (centroids.size() != expected) {
    return absl::InvalidArgumentError(absl::StrCat(
        "PQ centroids hold ", centroids.size(), " floats, m * ksub * dsub = ", m, " * ",
        1 << nbits, " * ", dim / m, " = ", expected, " expected"));
  }
  for (size_t i = 0; i < centroids.size(); ++i) {
    if (!std::isfinite(centroids[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("PQ centroid value ", i, " is not finite (", centroids[i], ")"));
    }
  }
  PqCodec codec;
  codec.dim_ = dim;
  codec.m_ = m;
  codec.nbits_ = nbits;
  codec.pq_ = std::make_unique<faiss::ProductQuantizer>(dim, m, nbits);
  codec.pq_->centroids = std::move(centroids);
  return codec;
}

PqCodec::PqCodec(const PqCodec& other)
    : dim_(other.dim_), m_(other.m_), nbits_(other.nbits_),
      pq_(other.pq_ ? std::make_unique<faiss::ProductQuantizer>(*other.pq_) : nullptr) {}

PqCodec& PqCodec::operator=(const PqCodec& other) {
  if (this != &other) *this = PqCodec(other);
  return *this;
}

PqCodec::PqCodec(PqCodec&&) noexcept = default;
PqCodec& PqCodec::operator=(PqCodec&&) noexcept = default;
PqCodec::~PqCodec() = default;

size_t PqCodec::code_size() const { return pq_->code_size; }

absl::Span<const float> PqCodec::centroids() const { return pq_->centroids; }

std::vector<uint8_t> PqCodec::Encode(absl::Span<const float> x) const {
  absl::StatusOr<std::vector<uint8_t>> codes = EncodeChecked(x);
  if (!codes.ok()) return {};
  return *std::move(codes);
}

absl::StatusOr<std::vector<uint8_t>> PqCodec::EncodeChecked(absl::Span<const float> x) const {
  if (x.size() % dim_ != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("PQ input holds ", x.size(), " floats, not a multiple of dim ", dim_));
  }
  for (size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i])) {
      return absl::InvalidArgumentError(absl::StrCat("PQ input vector ", i / dim_, " value ",
                                                     i % dim_, " is not finite (", x[i], ")"));
    }
  }
  const size_t n = x.size() / dim_;
  std::vector<uint8_t> codes(n * code_size());
  if (n > 0) pq_->compute_codes(x.data(), codes.data(), n);
  return codes;
}

absl::Status PqCodec::Decode(absl::Span<const uint8_t> codes, absl::Span<float> out) const {
  if (codes.size() % code_size() != 0) {
    return absl::DataLossError(absl::StrCat("PQ codes hold ", codes.size(),
                                            " bytes, not a multiple of the code size ",
                                            code_size()));
  }
  const size_t n = codes.size() / code_size();
  if (out.size() != n * dim_) {
    return absl::InvalidArgumentError(absl::StrCat("PQ output holds ", out.size(), " floats, ", n,
                                                   " codes decode to ", n * dim_));
  }
  if (n > 0) pq_->decode(codes.data(), out.data(), n);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<float>> PqCodec::DecodeToVector(absl::Span<const uint8_t> codes) const {
  if (codes.size() % code_size() != 0) {
    return absl::DataLossError(absl::StrCat("PQ codes hold ", codes.size(),
                                            " bytes, not a multiple of the code size ",
                                            code_size()));
  }
  std::vector<float> out(codes.size() / code_size() * dim_);
  if (absl::Status s = Decode(codes, absl::MakeSpan(out)); !s.ok()) return s;
  return out;
}

}  // namespace mnemo::index
