#include "index/pq_codec.h"

#include <faiss/impl/ProductQuantizer.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace mnemo::index {
namespace {

// n vectors of dim floats around a few cluster centres, so PQ has structure
// to find.
std::vector<float> Data(int n, int dim, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> centres(16 * dim);
  for (float& c : centres) c = 3.0f * normal(rng);
  std::vector<float> x(static_cast<size_t>(n) * dim);
  for (int i = 0; i < n; ++i) {
    const float* c = centres.data() + (i % 16) * dim;
    for (int j = 0; j < dim; ++j) x[static_cast<size_t>(i) * dim + j] = c[j] + normal(rng);
  }
  return x;
}

faiss::ProductQuantizer Trained(int dim, int m, int nbits, const std::vector<float>& x) {
  faiss::ProductQuantizer pq(dim, m, nbits);
  pq.verbose = false;
  pq.cp.niter = 10;
  pq.cp.min_points_per_centroid = 1;  // small training sets on purpose
  pq.train(x.size() / dim, x.data());
  return pq;
}

double Mse(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += (a[i] - b[i]) * static_cast<double>(a[i] - b[i]);
  return s / a.size();
}

TEST(PqCodecTest, RoundTripErrorFallsWithMoreBits) {
  constexpr int kDim = 32, kM = 8;
  // Train and test vectors from the same clusters.
  std::vector<float> train = Data(4596, kDim, 1);
  const std::vector<float> test(train.end() - 500 * kDim, train.end());
  train.resize(4096 * kDim);
  double previous = std::numeric_limits<double>::infinity();
  for (int nbits : {2, 4, 6, 8}) {
    faiss::ProductQuantizer pq = Trained(kDim, kM, nbits, train);
    absl::StatusOr<PqCodec> codec = PqCodec::FromCentroids(kDim, kM, nbits, pq.centroids);
    ASSERT_TRUE(codec.ok()) << codec.status();
    EXPECT_EQ(codec->code_size(), (kM * nbits + 7) / 8u);
    const std::vector<uint8_t> codes = codec->Encode(test);
    ASSERT_EQ(codes.size(), 500 * codec->code_size());
    absl::StatusOr<std::vector<float>> decoded = codec->DecodeToVector(codes);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    const double mse = Mse(test, *decoded);
    EXPECT_LT(mse, previous) << "nbits " << nbits;
    previous = mse;
  }
  // 8 bits: well below the noise around each cluster centre (1 per
  // coordinate), let alone the data's variance (about 10).
  EXPECT_LT(previous, 0.8);
}

TEST(PqCodecTest, CodesAndDecodingEqualFaiss) {
  for (int nbits : {8, 6}) {
    constexpr int kDim = 64, kM = 16;
    const std::vector<float> train = Data(2048, kDim, 3);
    faiss::ProductQuantizer pq = Trained(kDim, kM, nbits, train);
    absl::StatusOr<PqCodec> codec = PqCodec::FromCentroids(kDim, kM, nbits, pq.centroids);
    ASSERT_TRUE(codec.ok()) << codec.status();
    ASSERT_EQ(codec->code_size(), pq.code_size);
    const std::vector<float> test = Data(300, kDim, 4);
    std::vector<uint8_t> expected(300 * pq.code_size);
    pq.compute_codes(test.data(), expected.data(), 300);
    EXPECT_EQ(codec->Encode(test), expected) << "nbits " << nbits;
    std::vector<float> faiss_decoded(test.size()), ours(test.size());
    pq.decode(expected.data(), faiss_decoded.data(), 300);
    ASSERT_TRUE(codec->Decode(expected, absl::MakeSpan(ours)).ok());
    EXPECT_EQ(ours, faiss_decoded) << "nbits " << nbits;
    // The decoded vector is the chosen centroids, by hand.
    if (nbits == 8) {
      for (int j = 0; j < kM; ++j) {
        for (int k = 0; k < kDim / kM; ++k) {
          EXPECT_EQ(ours[j * (kDim / kM) + k],
                    codec->centroids()[(j * 256 + expected[j]) * (kDim / kM) + k]);
        }
      }
    }
  }
}

TEST(PqCodecTest, CopiesDecodeAlike) {
  const std::vector<float> train = Data(2048, 16, 5);
  faiss::ProductQuantizer pq = Trained(16, 4, 4, train);
  absl::StatusOr<PqCodec> codec = PqCodec::FromCentroids(16, 4, 4, pq.centroids);
  ASSERT_TRUE(codec.ok());
  PqCodec copy = *codec;
  const std::vector<float> test = Data(10, 16, 6);
  EXPECT_EQ(copy.Encode(test), codec->Encode(test));
  EXPECT_EQ(copy.m(), 4);
  EXPECT_EQ(copy.dsub(), 4);
  EXPECT_EQ(copy.ksub(), 16);
}

TEST(PqCodecTest, BadCodebooksAreInvalidArgument) {
  std::vector<float> ok(8 * 256 * 4, 0.5f);
  EXPECT_TRUE(PqCodec::FromCentroids(32, 8, 8, ok).ok());
  EXPECT_EQ(PqCodec::FromCentroids(0, 8, 8, ok).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PqCodec::FromCentroids(32, 5, 8, ok).status().code(),  // 5 does not divide 32
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PqCodec::FromCentroids(32, 8, 0, ok).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PqCodec::FromCentroids(32, 8, 17, ok).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<float> short_table(ok.begin(), ok.end() - 1);
  absl::Status s = PqCodec::FromCentroids(32, 8, 8, short_table).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("centroids"), std::string::npos) << s;
  std::vector<float> nan_table = ok;
  nan_table[77] = std::numeric_limits<float>::quiet_NaN();
  s = PqCodec::FromCentroids(32, 8, 8, nan_table).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("77"), std::string::npos) << s;
}

TEST(PqCodecTest, BadVectorsAreInvalidArgument) {
  const std::vector<float> train = Data(2048, 16, 7);
  faiss::ProductQuantizer pq = Trained(16, 4, 8, train);
  absl::StatusOr<PqCodec> codec = PqCodec::FromCentroids(16, 4, 8, pq.centroids);
  ASSERT_TRUE(codec.ok());
  std::vector<float> x = Data(3, 16, 8);
  std::vector<float> wrong_dim(x.begin(), x.end() - 1);
  EXPECT_EQ(codec->EncodeChecked(wrong_dim).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(codec->Encode(wrong_dim).empty());
  x[20] = std::numeric_limits<float>::quiet_NaN();
  absl::Status s = codec->EncodeChecked(x).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("vector 1"), std::string::npos) << s;
  x[20] = std::numeric_limits<float>::infinity();
  EXPECT_EQ(codec->EncodeChecked(x).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(codec->Encode(x).empty());
  EXPECT_TRUE(codec->EncodeChecked({}).ok());  // no vectors, no codes
}

TEST(PqCodecTest, GarbageCodeLengthIsDataLoss) {
  const std::vector<float> train = Data(2048, 16, 9);
  faiss::ProductQuantizer pq = Trained(16, 4, 8, train);
  absl::StatusOr<PqCodec> codec = PqCodec::FromCentroids(16, 4, 8, pq.centroids);
  ASSERT_TRUE(codec.ok());
  std::vector<uint8_t> codes = codec->Encode(Data(2, 16, 10));
  ASSERT_EQ(codes.size(), 8u);
  std::vector<float> out(32);
  codes.pop_back();
  EXPECT_EQ(codec->Decode(codes, absl::MakeSpan(out)).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(codec->DecodeToVector(codes).status().code(), absl::StatusCode::kDataLoss);
  codes.push_back(0);
  std::vector<float> small(31);
  EXPECT_EQ(codec->Decode(codes, absl::MakeSpan(small)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(codec->Decode(codes, absl::MakeSpan(out)).ok());
}

}  // namespace
}  // namespace mnemo::index
