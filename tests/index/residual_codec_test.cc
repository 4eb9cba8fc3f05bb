#include "index/residual_codec.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include <omp.h>

#include "gtest/gtest.h"

namespace mnemo::index {
namespace {

// FAISS k-means under OpenMP spin-waits on a loaded 2-core machine; pin one
// thread like the other index suites.
const int kOneOmpThread = [] {
  omp_set_num_threads(1);
  return 1;
}();

constexpr uint32_t kDim = 64;
constexpr uint32_t kCentroids = 64;

// Unit token vectors around 64 unit concept centres: noise of norm ~0.5
// per token, then renormalised, like contextual token embeddings.
std::vector<float> MakeTokens(size_t n, uint32_t seed) {
  std::mt19937 centre_rng(777);
  std::normal_distribution<float> gauss;
  std::vector<float> centres(kCentroids * kDim);
  for (size_t c = 0; c < kCentroids; ++c) {
    double norm = 0;
    for (size_t j = 0; j < kDim; ++j) {
      centres[c * kDim + j] = gauss(centre_rng);
      norm += centres[c * kDim + j] * centres[c * kDim + j];
    }
    for (size_t j = 0; j < kDim; ++j) centres[c * kDim + j] /= std::sqrt(norm);
  }
  std::mt19937 rng(seed);
  std::uniform_int_distribution<size_t> pick(0, kCentroids - 1);
  const float sigma = 0.5f / std::sqrt(static_cast<float>(kDim));
  std::vector<float> out(n * kDim);
  for (size_t i = 0; i < n; ++i) {
    const size_t c = pick(rng);
    double norm = 0;
    for (size_t j = 0; j < kDim; ++j) {
      out[i * kDim + j] = centres[c * kDim + j] + sigma * gauss(rng);
      norm += out[i * kDim + j] * out[i * kDim + j];
    }
    for (size_t j = 0; j < kDim; ++j) out[i * kDim + j] /= std::sqrt(norm);
  }
  return out;
}

ResidualCodecOptions Options(uint32_t nbits) {
  ResidualCodecOptions o;
  o.dim = kDim;
  o.num_centroids = kCentroids;
  o.nbits = nbits;
  return o;
}

TEST(ResidualCodecTest, PackUnpackIsExact) {
  std::mt19937 rng(3);
  for (uint32_t nbits : {1u, 2u, 4u}) {
    for (size_t dim : {1, 3, 7, 8, 13, 64, 127}) {
      std::uniform_int_distribution<int> bucket(0, (1 << nbits) - 1);
      std::vector<uint8_t> buckets(dim);
      for (auto& b : buckets) b = static_cast<uint8_t>(bucket(rng));
      std::vector<uint8_t> packed((dim * nbits + 7) / 8, 0xff);
      ResidualCodec::PackBuckets(buckets, nbits, packed.data());
      std::vector<uint8_t> unpacked(dim);
      ResidualCodec::UnpackBuckets(packed.data(), nbits,
                                   absl::MakeSpan(unpacked));
      EXPECT_EQ(unpacked, buckets) << "nbits " << nbits << " dim " << dim;
      // Unused trailing bits are zero.
      const size_t used = dim * nbits % 8;
      if (used != 0) {
        EXPECT_EQ(packed.back() >> used, 0);
      }
    }
  }
}

TEST(ResidualCodecTest, CodeLayoutIsLsbFirst) {
  const std::vector<uint8_t> buckets = {1, 2, 3, 0, 2};
  uint8_t packed[2];
  ResidualCodec::PackBuckets(buckets, 2, packed);
  EXPECT_EQ(packed[0], 0b00111001);
  EXPECT_EQ(packed[1], 0b10);
}

TEST(ResidualCodecTest, TwoBitsHaveLowerErrorThanOneBit) {
  const std::vector<float> train = MakeTokens(8000, 1);
  const std::vector<float> test = MakeTokens(2000, 2);
  auto one = ResidualCodec::Train(Options(1), train);
  auto two = ResidualCodec::Train(Options(2), train);
  ASSERT_TRUE(one.ok()) << one.status();
  ASSERT_TRUE(two.ok()) << two.status();
  auto e1 = (*one)->RelativeError(test);
  auto e2 = (*two)->RelativeError(test);
  ASSERT_TRUE(e1.ok() && e2.ok());
  std::printf("relative L2 reconstruction error: 1-bit %.4f, 2-bit %.4f\n",
              *e1, *e2);
  EXPECT_LT(*e2, *e1 * 0.75);
  // Stated bounds on this data (token noise ~0.45 of the norm; the residual
  // alone is ~0.55 of it): measured 0.337 (1 bit) and 0.217 (2 bits).
  EXPECT_LT(*e1, 0.40);
  EXPECT_LT(*e2, 0.25);
}

TEST(ResidualCodecTest, FourBitsHaveLowerErrorThanTwo) {
  const std::vector<float> train = MakeTokens(8000, 1);
  const std::vector<float> test = MakeTokens(2000, 2);
  auto two = ResidualCodec::Train(Options(2), train);
  auto four = ResidualCodec::Train(Options(4), train);
  ASSERT_TRUE(two.ok()) << two.status();
  ASSERT_TRUE(four.ok()) << four.status();
  EXPECT_EQ((*four)->code_size(), kDim / 2);
  auto e2 = (*two)->RelativeError(test);
  auto e4 = (*four)->RelativeError(test);
  ASSERT_TRUE(e2.ok() && e4.ok());
  std::printf("relative L2 reconstruction error: 2-bit %.4f, 4-bit %.4f\n", *e2, *e4);
  EXPECT_LT(*e4, *e2 * 0.6);
}

TEST(ResidualCodecTest, FourBitOddDimensionDecodesTheTail) {
  ResidualCodecOptions o;
  o.dim = 13;
  o.num_centroids = 8;
  o.nbits = 4;
  std::mt19937 rng(4);
  std::normal_distribution<float> gauss;
  std::vector<float> data(13 * 500);
  for (float& x : data) x = gauss(rng);
  auto codec = ResidualCodec::Train(o, data);
  ASSERT_TRUE(codec.ok()) << codec.status();
  EXPECT_EQ((*codec)->code_size(), 7u);
  auto codes = (*codec)->Encode(data);
  ASSERT_TRUE(codes.ok());
  // The fast path decodes exactly like the checked one, tail included.
  std::vector<float> checked(data.size()), fast(13);
  ASSERT_TRUE((*codec)->Decode(codes->centroids, codes->residuals, absl::MakeSpan(checked)).ok());
  for (size_t i = 0; i < 500; ++i) {
    (*codec)->DecodeOneUnchecked(codes->centroids[i], &codes->residuals[i * 7], fast.data());
    for (size_t j = 0; j < 13; ++j) ASSERT_EQ(fast[j], checked[i * 13 + j]) << i << " " << j;
  }
  auto err = (*codec)->RelativeError(data);
  ASSERT_TRUE(err.ok());
  EXPECT_LT(*err, 0.25);
}

TEST(ResidualCodecTest, CentroidOnlyIsWorseThanResiduals) {
  const std::vector<float> train = MakeTokens(8000, 1);
  auto codec = ResidualCodec::Train(Options(1), train);
  ASSERT_TRUE(codec.ok()) << codec.status();
  const std::vector<float> test = MakeTokens(500, 5);
  auto codes = (*codec)->Encode(test);
  ASSERT_TRUE(codes.ok());
  double centroid_err = 0, full_err = 0;
  std::vector<float> decoded(test.size());
  ASSERT_TRUE((*codec)
                  ->Decode(codes->centroids, codes->residuals,
                           absl::MakeSpan(decoded))
                  .ok());
  for (size_t i = 0; i < 500; ++i) {
    const float* c = &(*codec)->centroids()[codes->centroids[i] * kDim];
    for (size_t j = 0; j < kDim; ++j) {
      const double x = test[i * kDim + j];
      centroid_err += (x - c[j]) * (x - c[j]);
      full_err += (x - decoded[i * kDim + j]) * (x - decoded[i * kDim + j]);
    }
  }
  EXPECT_LT(full_err, centroid_err * 0.6);
}

TEST(ResidualCodecTest, EncodeProducesDeclaredSizes) {
  auto codec = ResidualCodec::Train(Options(2), MakeTokens(4000, 1));
  ASSERT_TRUE(codec.ok());
  EXPECT_EQ((*codec)->code_size(), kDim * 2 / 8);
  auto codes = (*codec)->Encode(MakeTokens(10, 9));
  ASSERT_TRUE(codes.ok());
  EXPECT_EQ(codes->centroids.size(), 10u);
  EXPECT_EQ(codes->residuals.size(), 10 * (*codec)->code_size());
  for (uint32_t c : codes->centroids) EXPECT_LT(c, kCentroids);
}

TEST(ResidualCodecTest, OddDimensionRoundTrips) {
  ResidualCodecOptions o;
  o.dim = 13;
  o.num_centroids = 8;
  o.nbits = 2;
  std::mt19937 rng(4);
  std::normal_distribution<float> gauss;
  std::vector<float> data(13 * 500);
  for (float& x : data) x = gauss(rng);
  auto codec = ResidualCodec::Train(o, data);
  ASSERT_TRUE(codec.ok()) << codec.status();
  EXPECT_EQ((*codec)->code_size(), 4u);
  auto err = (*codec)->RelativeError(data);
  ASSERT_TRUE(err.ok());
  EXPECT_LT(*err, 0.5);
}

TEST(ResidualCodecTest, SerializeRoundTripDecodesIdentically) {
  auto codec = ResidualCodec::Train(Options(2), MakeTokens(4000, 1));
  ASSERT_TRUE(codec.ok());
  auto bytes = (*codec)->Serialize();
  ASSERT_TRUE(bytes.ok());
  auto restored = ResidualCodec::Deserialize(*bytes);
  ASSERT_TRUE(restored.ok()) << restored.status();
  const std::vector<float> test = MakeTokens(300, 11);
  auto a = (*codec)->Encode(test);
  auto b = (*restored)->Encode(test);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->centroids, b->centroids);
  EXPECT_EQ(a->residuals, b->residuals);
  std::vector<float> da(test.size()), db(test.size());
  ASSERT_TRUE((*codec)->Decode(a->centroids, a->residuals,
                               absl::MakeSpan(da)).ok());
  ASSERT_TRUE((*restored)->Decode(b->centroids, b->residuals,
                                  absl::MakeSpan(db)).ok());
  EXPECT_EQ(da, db);
}

TEST(ResidualCodecTest, GarbageBytesAreDataLoss) {
  auto codec = ResidualCodec::Train(Options(1), MakeTokens(4000, 1));
  ASSERT_TRUE(codec.ok());
  auto bytes = (*codec)->Serialize();
  ASSERT_TRUE(bytes.ok());

  std::vector<uint8_t> empty;
  EXPECT_EQ(ResidualCodec::Deserialize(empty).status().code(),
            absl::StatusCode::kDataLoss);
  std::mt19937 rng(8);
  std::vector<uint8_t> random(bytes->size());
  for (auto& b : random) b = static_cast<uint8_t>(rng());
  EXPECT_EQ(ResidualCodec::Deserialize(random).status().code(),
            absl::StatusCode::kDataLoss);
  std::vector<uint8_t> truncated(bytes->begin(), bytes->end() - 9);
  EXPECT_EQ(ResidualCodec::Deserialize(truncated).status().code(),
            absl::StatusCode::kDataLoss);
  for (size_t pos : {size_t{0}, size_t{9}, bytes->size() / 2,
                     bytes->size() - 1}) {
    std::vector<uint8_t> flipped = *bytes;
    flipped[pos] ^= 0x40;
    EXPECT_EQ(ResidualCodec::Deserialize(flipped).status().code(),
              absl::StatusCode::kDataLoss)
        << "flipped byte " << pos;
  }
}

TEST(ResidualCodecTest, BadInputIsInvalidArgument) {
  const std::vector<float> data = MakeTokens(200, 1);
  ResidualCodecOptions o = Options(3);
  EXPECT_EQ(ResidualCodec::Train(o, data).status().code(),
            absl::StatusCode::kInvalidArgument);
  o = Options(1);
  o.dim = 0;
  EXPECT_EQ(ResidualCodec::Train(o, data).status().code(),
            absl::StatusCode::kInvalidArgument);
  o = Options(1);
  o.num_centroids = 1000;  // more than the 200 vectors
  EXPECT_EQ(ResidualCodec::Train(o, data).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<float> nan = data;
  nan[5] = std::nanf("");
  EXPECT_EQ(ResidualCodec::Train(Options(1), nan).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<float> ragged(data.begin(), data.end() - 1);
  EXPECT_EQ(ResidualCodec::Train(Options(1), ragged).status().code(),
            absl::StatusCode::kInvalidArgument);

  auto codec = ResidualCodec::Train(Options(1), data);
  ASSERT_TRUE(codec.ok()) << codec.status();
  EXPECT_EQ((*codec)->Encode(nan).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*codec)->Encode(ragged).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<uint32_t> bad_centroid = {kCentroids};
  std::vector<uint8_t> residuals((*codec)->code_size());
  std::vector<float> out(kDim);
  EXPECT_EQ((*codec)
                ->Decode(bad_centroid, residuals, absl::MakeSpan(out))
                .code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<uint32_t> ok_centroid = {0};
  std::vector<float> short_out(kDim - 1);
  EXPECT_EQ((*codec)
                ->Decode(ok_centroid, residuals, absl::MakeSpan(short_out))
                .code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mnemo::index
