// The CUDA PQ decoding (kernels/pq_decode.h) against its CPU reference,
// index::PqCodec::Decode (faiss). GPU cases skip without a usable device.
#include "kernels/pq_decode.h"

#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "common/half.h"
#include "gtest/gtest.h"
#include "index/pq_codec.h"
#include "kernels/exact_topk.h"

namespace mnemo {
namespace {

// Decoding copies centroid values: fp32 output must equal the CPU's bit for
// bit (tolerance 0) and fp16 output must equal FloatToHalf of it
// (round-to-nearest-even on both sides, tolerance 0).
struct Case {
  int dim, m, nbits;
  size_t n, row_stride;  // row_stride 0 = dim
};

std::string Name(const Case& c) {
  return "d" + std::to_string(c.dim) + "_m" + std::to_string(c.m) + "_b" +
         std::to_string(c.nbits) + "_n" + std::to_string(c.n) + "_s" +
         std::to_string(c.row_stride);
}

void PrintTo(const Case& c, std::ostream* os) { *os << Name(c); }

class PqDecodeGpuTest : public ::testing::TestWithParam<Case> {};

TEST_P(PqDecodeGpuTest, MatchesTheCpuReference) {
  if (absl::Status s = kernels::CudaDeviceAvailable(); !s.ok()) GTEST_SKIP() << s;
  const Case c = GetParam();
  std::mt19937 rng(c.dim * 31 + c.m * 7 + c.nbits);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> centroids(static_cast<size_t>(c.dim) << c.nbits);
  for (float& x : centroids) x = normal(rng);
  absl::StatusOr<index::PqCodec> codec = index::PqCodec::FromCentroids(c.dim, c.m, c.nbits, centroids);
  ASSERT_TRUE(codec.ok()) << codec.status();
  // Random code bytes: any index value, and random padding bits beyond
  // m * nbits, which both sides must ignore.
  std::uniform_int_distribution<int> byte(0, 255);
  std::vector<uint8_t> codes(c.n * codec->code_size());
  for (uint8_t& b : codes) b = static_cast<uint8_t>(byte(rng));
  std::vector<float> expected(c.n * c.dim);
  ASSERT_TRUE(codec->Decode(codes, absl::MakeSpan(expected)).ok());

  const size_t stride = c.row_stride == 0 ? c.dim : c.row_stride;
  const size_t values = (c.n - 1) * stride + c.dim;
  constexpr float kUntouched = -12345.0f;
  std::vector<float> out32(values, kUntouched);
  kernels::PqDecodeArgs args;
  args.dim = c.dim;
  args.m = c.m;
  args.nbits = c.nbits;
  args.centroids = codec->centroids().data();
  args.codes = codes.data();
  args.n = c.n;
  args.row_stride = c.row_stride;
  args.out_f32 = out32.data();
  ASSERT_TRUE(kernels::PqDecodeGpu(args).ok());
  const uint16_t untouched16 = FloatToHalf(kUntouched);
  std::vector<uint16_t> out16(values, untouched16);
  args.out_f32 = nullptr;
  args.out_f16 = out16.data();
  ASSERT_TRUE(kernels::PqDecodeGpu(args).ok());
  for (size_t r = 0; r < c.n; ++r) {
    for (size_t j = 0; j < stride && r * stride + j < values; ++j) {
      const size_t at = r * stride + j;
      if (j < static_cast<size_t>(c.dim)) {
        ASSERT_EQ(out32[at], expected[r * c.dim + j]) << "row " << r << " value " << j;
        ASSERT_EQ(out16[at], FloatToHalf(expected[r * c.dim + j])) << "row " << r << " value " << j;
      } else {
        ASSERT_EQ(out32[at], kUntouched) << "gap after row " << r;
        ASSERT_EQ(out16[at], untouched16) << "gap after row " << r;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, PqDecodeGpuTest,
    ::testing::Values(Case{256, 32, 8, 8, 0},       // the injection model's memory tokens
                      Case{256, 32, 8, 1000, 0},    // many chunks
                      Case{256, 32, 8, 8, 300},     // into wider embedding rows
                      Case{64, 16, 6, 77, 0},       // indices straddling bytes
                      Case{48, 4, 12, 33, 50},      // three-byte reads
                      Case{16, 2, 16, 10, 0},       // 16-bit indices
                      Case{30, 10, 3, 5, 0}),       // padding bits at the end
    [](const ::testing::TestParamInfo<Case>& info) { return Name(info.param); });

TEST(PqDecodeGpuArgsTest, BadArgumentsAreInvalidArgument) {
#ifndef MNEMO_HAVE_CUDA
  GTEST_SKIP() << "built without CUDA: every call is UNAVAILABLE";
#endif
  std::vector<float> centroids(16 << 8, 0.5f);
  std::vector<uint8_t> codes(4 * 2, 1);
  std::vector<float> out(4 * 16);
  kernels::PqDecodeArgs good;
  good.dim = 16;
  good.m = 2;
  good.nbits = 8;
  good.centroids = centroids.data();
  good.codes = codes.data();
  good.n = 4;
  good.out_f32 = out.data();
  auto expect_invalid = [](kernels::PqDecodeArgs a, const char* what) {
    EXPECT_EQ(kernels::PqDecodeGpu(a).code(), absl::StatusCode::kInvalidArgument) << what;
  };
  kernels::PqDecodeArgs a = good;
  a.m = 3;
  expect_invalid(a, "m does not divide dim");
  a = good;
  a.nbits = 17;
  expect_invalid(a, "nbits 17");
  a = good;
  a.out_f32 = nullptr;
  expect_invalid(a, "no output");
  a = good;
  std::vector<uint16_t> out16(out.size());
  a.out_f16 = out16.data();
  expect_invalid(a, "two outputs");
  a = good;
  a.row_stride = 15;
  expect_invalid(a, "row stride below dim");
  a = good;
  a.codes = nullptr;
  expect_invalid(a, "null codes");
  EXPECT_EQ(kernels::PqDecoderGpu::Create(16, 2, 8, nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mnemo
