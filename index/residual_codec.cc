#include "index/residual_codec.h"

#include "index/byte_io.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/checksum_frame.h"
#include "common/status_macros.h"
#include "faiss/Clustering.h"
#include "faiss/IndexFlat.h"

namespace mnemo::index {
namespace {

using FaissIdx = faiss::Index::idx_t;

constexpr uint32_t kMagic = 0x43524e4d;  // "MNRC" little-endian
constexpr uint32_t kVersion = 1;
constexpr uint32_t kMaxDim = 65536;
constexpr uint32_t kMaxCentroids = 1u << 20;
// Vectors assigned per FAISS search call: bounds the distance buffer.
constexpr size_t kAssignBlock = 4096;

absl::Status CheckVectors(absl::Span<const float> v, uint32_t dim) {
  if (v.size() % dim != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "vector data size ", v.size(), " is not a multiple of dim ", dim));
  }
  for (float x : v) {
    if (!std::isfinite(x)) {
      return absl::InvalidArgumentError("vector contains NaN or infinity");
    }
  }
  return absl::OkStatus();
}

using internal::Put;
using internal::PutFloats;
using Reader = internal::ByteReader;

absl::Status DataLoss(absl::string_view why) {
  return absl::DataLossError(absl::StrCat("corrupt residual codec: ", why));
}

}  // namespace

absl::Status ValidateResidualCodecOptions(const ResidualCodecOptions& o) {
  if (o.dim == 0 || o.dim > kMaxDim) {
    return absl::InvalidArgumentError(
        absl::StrCat("dim must be in [1, ", kMaxDim, "], got ", o.dim));
  }
  if (o.nbits != 1 && o.nbits != 2 && o.nbits != 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("nbits must be 1, 2 or 4, got ", o.nbits));
  }
  if (o.num_centroids == 0 || o.num_centroids > kMaxCentroids) {
    return absl::InvalidArgumentError(absl::StrCat(
        "num_centroids must be in [1, ", kMaxCentroids, "], got ",
        o.num_centroids));
  }
  if (o.kmeans_iterations == 0 || o.max_points_per_centroid == 0) {
    return absl::InvalidArgumentError(
        "kmeans_iterations and max_points_per_centroid must be >= 1");
  }
  return absl::OkStatus();
}

struct ResidualCodec::Assigner {
  explicit Assigner(uint32_t dim) : index(dim) {}
  faiss::IndexFlatIP index;
};

ResidualCodec::ResidualCodec(uint32_t dim, uint32_t nbits,
                             uint32_t num_centroids)
    : dim_(dim), nbits_(nbits), num_centroids_(num_centroids) {}

ResidualCodec::~ResidualCodec() = default;

absl::Status ResidualCodec::BuildAssigner() {
  try {
    auto assigner = std::make_unique<Assigner>(dim_);
    assigner->index.add(num_centroids_, centroids_.data());
    assigner_ = std::move(assigner);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("FAISS IndexFlatIP: ", e.what()));
  }
  return absl::OkStatus();
}

void ResidualCodec::BuildDecodeTable() {
  const uint32_t per_byte = 8 / nbits_;
  const uint32_t nb = 1u << nbits_;
  const uint32_t mask = nb - 1;
  const size_t nbytes = code_size();
  decode_table_.assign(nbytes * 256 * per_byte, 0.0f);
  for (size_t p = 0; p < nbytes; ++p) {
    for (uint32_t v = 0; v < 256; ++v) {
      float* row = &decode_table_[(p * 256 + v) * per_byte];
      for (uint32_t i = 0; i < per_byte; ++i) {
        const size_t j = p * per_byte + i;
        if (j >= dim_) break;
        const uint32_t bucket = (v >> (i * nbits_)) & mask;
        row[i] = weights_[j * nb + bucket];
      }
    }
  }
}

absl::StatusOr<std::unique_ptr<ResidualCodec>> ResidualCodec::Train(
    const ResidualCodecOptions& options, absl::Span<const float> sample) {
  RETURN_IF_ERROR(ValidateResidualCodecOptions(options));
  RETURN_IF_ERROR(CheckVectors(sample, options.dim));
  const size_t dim = options.dim;
  const size_t n = sample.size() / dim;
  if (n < options.num_centroids) {
    return absl::InvalidArgumentError(
        absl::StrCat("training needs at least num_centroids = ",
                     options.num_centroids, " vectors, got ", n));
  }
  auto codec = std::unique_ptr<ResidualCodec>(
      new ResidualCodec(options.dim, options.nbits, options.num_centroids));

  // Spherical k-means: unit centroids, so nearest-by-L2 = largest inner
  // product, which is also what candidate generation ranks by.
  try {
    faiss::ClusteringParameters cp;
    cp.niter = static_cast<int>(options.kmeans_iterations);
    cp.spherical = true;
    cp.max_points_per_centroid = static_cast<int>(options.max_points_per_centroid);
    cp.min_points_per_centroid = 1;
    cp.seed = options.seed;
    cp.verbose = false;
    faiss::Clustering clustering(options.dim, options.num_centroids, cp);
    faiss::IndexFlatIP quantizer(options.dim);
    clustering.train(n, sample.data(), quantizer);
    codec->centroids_ = std::move(clustering.centroids);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("FAISS k-means: ", e.what()));
  }
  if (codec->centroids_.size() != size_t{options.num_centroids} * dim) {
    return absl::InternalError("FAISS k-means returned a wrong-sized table");
  }
  RETURN_IF_ERROR(codec->BuildAssigner());

  // Residual distribution per dimension, over (a subsample of) the sample.
  const size_t max_rows = size_t{options.num_centroids} *
                          options.max_points_per_centroid;
  const size_t stride = std::max<size_t>(1, (n + max_rows - 1) / max_rows);
  const size_t rows = (n + stride - 1) / stride;
  std::vector<float> picked(rows * dim);
  for (size_t r = 0; r < rows; ++r) {
    std::memcpy(&picked[r * dim], &sample[r * stride * dim],
                dim * sizeof(float));
  }
  std::vector<FaissIdx> assign(rows);
  {
    std::vector<float> dist(kAssignBlock);
    try {
      for (size_t b = 0; b < rows; b += kAssignBlock) {
        const size_t nb = std::min(kAssignBlock, rows - b);
        codec->assigner_->index.search(nb, &picked[b * dim], 1, dist.data(),
                                       &assign[b]);
      }
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat("FAISS assign: ", e.what()));
    }
  }
  const uint32_t nb = 1u << options.nbits;
  codec->cutoffs_.assign(dim * (nb - 1), 0.0f);
  codec->weights_.assign(dim * nb, 0.0f);
  std::vector<float> column(rows);
  for (size_t j = 0; j < dim; ++j) {
    for (size_t r = 0; r < rows; ++r) {
      const FaissIdx c = assign[r] < 0 ? 0 : assign[r];
      column[r] = picked[r * dim + j] - codec->centroids_[c * dim + j];
    }
    std::sort(column.begin(), column.end());
    // Equal-population buckets: bucket b holds sorted positions
    // [b * rows / nb, (b + 1) * rows / nb); its cutoff is the first value of
    // the next bucket and its weight the mean of its members.
    for (uint32_t b = 0; b < nb; ++b) {
      const size_t lo = b * rows / nb;
      const size_t hi = std::max(lo + 1, (b + 1) * rows / nb);
      double sum = 0;
      for (size_t i = lo; i < hi && i < rows; ++i) sum += column[i];
      codec->weights_[j * nb + b] =
          static_cast<float>(sum / static_cast<double>(std::min(hi, rows) - lo));
      if (b + 1 < nb) {
        codec->cutoffs_[j * (nb - 1) + b] = column[std::min(hi, rows - 1)];
      }
    }
  }
  codec->BuildDecodeTable();
  return codec;
}

void ResidualCodec::PackBuckets(absl::Span<const uint8_t> buckets,
                                uint32_t nbits, uint8_t* out) {
  const size_t nbytes = (buckets.size() * nbits + 7) / 8;
  std::memset(out, 0, nbytes);
  const uint8_t mask = static_cast<uint8_t>((1u << nbits) - 1);
  for (size_t j = 0; j < buckets.size(); ++j) {
    const size_t bit = j * nbits;
    out[bit / 8] |= static_cast<uint8_t>((buckets[j] & mask) << (bit % 8));
  }
}

void ResidualCodec::UnpackBuckets(const uint8_t* code, uint32_t nbits,
                                  absl::Span<uint8_t> buckets) {
  const uint8_t mask = static_cast<uint8_t>((1u << nbits) - 1);
  for (size_t j = 0; j < buckets.size(); ++j) {
    const size_t bit = j * nbits;
    buckets[j] = static_cast<uint8_t>((code[bit / 8] >> (bit % 8)) & mask);
  }
}

absl::StatusOr<ResidualCodes> ResidualCodec::Encode(
    absl::Span<const float> vectors) const {
  RETURN_IF_ERROR(CheckVectors(vectors, dim_));
  const size_t dim = dim_;
  const size_t n = vectors.size() / dim;
  const uint32_t nb = 1u << nbits_;
  ResidualCodes codes;
  codes.centroids.resize(n);
  codes.residuals.assign(n * code_size(), 0);
  std::vector<FaissIdx> assign(std::min(n, kAssignBlock));
  std::vector<float> dist(assign.size());
  std::vector<uint8_t> buckets(dim);
  for (size_t b = 0; b < n; b += kAssignBlock) {
    const size_t nq = std::min(kAssignBlock, n - b);
    try {
      assigner_->index.search(nq, &vectors[b * dim], 1, dist.data(),
                              assign.data());
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat("FAISS assign: ", e.what()));
    }
    for (size_t i = 0; i < nq; ++i) {
      const size_t row = b + i;
      const uint32_t c = assign[i] < 0 ? 0 : static_cast<uint32_t>(assign[i]);
      codes.centroids[row] = c;
      const float* x = &vectors[row * dim];
      const float* cen = &centroids_[size_t{c} * dim];
      for (size_t j = 0; j < dim; ++j) {
        const float r = x[j] - cen[j];
        const float* cut = &cutoffs_[j * (nb - 1)];
        uint8_t bucket = 0;
        while (bucket + 1u < nb && r >= cut[bucket]) ++bucket;
        buckets[j] = bucket;
      }
      PackBuckets(buckets, nbits_, &codes.residuals[row * code_size()]);
    }
  }
  return codes;
}

namespace {

// out[p * kPerByte + i] += table row of byte p, for `full` whole bytes. The
// compile-time row width lets the compiler emit whole-vector adds.
template <size_t kPerByte>
void AddRows(const float* table, const uint8_t* code, size_t full,
             float* out) {
  for (size_t p = 0; p < full; ++p) {
    const float* row = table + (p * 256 + code[p]) * kPerByte;
    float* o = out + p * kPerByte;
    for (size_t i = 0; i < kPerByte; ++i) o[i] += row[i];
  }
}

}  // namespace

void ResidualCodec::DecodeOneUnchecked(uint32_t centroid, const uint8_t* code,
                                       float* out) const {
  const size_t dim = dim_;
  std::memcpy(out, &centroids_[size_t{centroid} * dim], dim * sizeof(float));
  const size_t per_byte = 8 / nbits_;
  const size_t full = dim / per_byte;
  if (per_byte == 2) {
    AddRows<2>(decode_table_.data(), code, full, out);
  } else if (per_byte == 4) {
    AddRows<4>(decode_table_.data(), code, full, out);
  } else {
    AddRows<8>(decode_table_.data(), code, full, out);
  }
  const size_t tail = dim - full * per_byte;
  if (tail > 0) {
    const float* row = &decode_table_[(full * 256 + code[full]) * per_byte];
    float* o = out + full * per_byte;
    for (size_t i = 0; i < tail; ++i) o[i] += row[i];
  }
}

absl::Status ResidualCodec::Decode(absl::Span<const uint32_t> centroids,
                                   absl::Span<const uint8_t> residuals,
                                   absl::Span<float> out) const {
  const size_t n = centroids.size();
  if (residuals.size() != n * code_size() || out.size() != n * dim_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Decode: ", n, " vectors need ", n * code_size(),
        " residual bytes and ", n * dim_, " output floats"));
  }
  for (uint32_t c : centroids) {
    if (c >= num_centroids_) {
      return absl::InvalidArgumentError(
          absl::StrCat("centroid id ", c, " out of range"));
    }
  }
  for (size_t i = 0; i < n; ++i) {
    DecodeOneUnchecked(centroids[i], &residuals[i * code_size()],
                       &out[i * dim_]);
  }
  return absl::OkStatus();
}

absl::StatusOr<double> ResidualCodec::RelativeError(
    absl::Span<const float> vectors) const {
  ASSIGN_OR_RETURN(ResidualCodes codes, Encode(vectors));
  const size_t n = codes.centroids.size();
  std::vector<float> decoded(n * dim_);
  RETURN_IF_ERROR(Decode(codes.centroids, codes.residuals,
                         absl::MakeSpan(decoded)));
  double total = 0;
  size_t counted = 0;
  for (size_t i = 0; i < n; ++i) {
    double err = 0, norm = 0;
    for (size_t j = 0; j < dim_; ++j) {
      const double x = vectors[i * dim_ + j];
      const double d = x - decoded[i * dim_ + j];
      err += d * d;
      norm += x * x;
    }
    if (norm == 0) continue;
    total += std::sqrt(err / norm);
    ++counted;
  }
  return counted == 0 ? 0.0 : total / static_cast<double>(counted);
}

absl::StatusOr<std::vector<uint8_t>> ResidualCodec::Serialize() const {
  std::vector<uint8_t> out;
  out.reserve(32 + (centroids_.size() + cutoffs_.size() + weights_.size()) *
                       sizeof(float));
  Put(&out, kMagic);
  Put(&out, kVersion);
  Put(&out, dim_);
  Put(&out, nbits_);
  Put(&out, num_centroids_);
  PutFloats(&out, centroids_);
  PutFloats(&out, cutoffs_);
  PutFloats(&out, weights_);
  AppendChecksumTrailer(&out);
  return out;
}

absl::StatusOr<std::unique_ptr<ResidualCodec>> ResidualCodec::Deserialize(
    absl::Span<const uint8_t> bytes) {
  if (bytes.size() < 5 * sizeof(uint32_t) + kChecksumTrailerBytes) {
    return DataLoss("too short");
  }
  const std::optional<absl::Span<const uint8_t>> body = StripChecksumTrailer(bytes);
  if (!body.has_value()) return DataLoss("checksum mismatch");
  Reader r(*body);
  uint32_t magic, version, dim, nbits, num_centroids;
  if (!r.Get(&magic) || magic != kMagic) return DataLoss("bad magic");
  if (!r.Get(&version) || version != kVersion) {
    return DataLoss("unsupported version");
  }
  if (!r.Get(&dim) || !r.Get(&nbits) || !r.Get(&num_centroids)) {
    return DataLoss("truncated header");
  }
  if (dim == 0 || dim > kMaxDim || (nbits != 1 && nbits != 2 && nbits != 4) ||
      num_centroids == 0 || num_centroids > kMaxCentroids) {
    return DataLoss("bad header values");
  }
  auto codec = std::unique_ptr<ResidualCodec>(
      new ResidualCodec(dim, nbits, num_centroids));
  const uint32_t nb = 1u << nbits;
  if (!r.GetFloats(&codec->centroids_, size_t{num_centroids} * dim) ||
      !r.GetFloats(&codec->cutoffs_, size_t{dim} * (nb - 1)) ||
      !r.GetFloats(&codec->weights_, size_t{dim} * nb)) {
    return DataLoss("truncated tables");
  }
  if (r.remaining() != 0) return DataLoss("trailing bytes");
  for (const auto* table :
       {&codec->centroids_, &codec->cutoffs_, &codec->weights_}) {
    for (float x : *table) {
      if (!std::isfinite(x)) return DataLoss("non-finite table value");
    }
  }
  RETURN_IF_ERROR(codec->BuildAssigner());
  codec->BuildDecodeTable();
  return codec;
}

}  // namespace mnemo::index
