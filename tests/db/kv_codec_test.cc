// The KV block codec (db/kv_codec.h) and the quantization math under it
// (attention/kv_quant.h): round trips and error bounds per codec and role,
// the stored error, the entropy stage, edge shapes and values, and that no
// malformed block decodes.
#include "db/kv_codec.h"

#include <zstd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "attention/kv_quant.h"
#include "gtest/gtest.h"

namespace mnemo::db {
namespace {

using attention::FloatToHalfBits;
using attention::HalfBitsToFloat;

constexpr KvCodecKind kAllKinds[] = {KvCodecKind::kFp32, KvCodecKind::kFp16, KvCodecKind::kBf16,
                                     KvCodecKind::kInt8, KvCodecKind::kInt4};

std::vector<float> Gaussian(size_t n, uint32_t seed, float stddev = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> gauss(0.0f, stddev);
  std::vector<float> x(n);
  for (float& v : x) v = gauss(rng);
  return x;
}

double RelErr(const std::vector<float>& x, const std::vector<float>& y) {
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    num += (static_cast<double>(x[i]) - y[i]) * (static_cast<double>(x[i]) - y[i]);
    den += static_cast<double>(x[i]) * x[i];
  }
  return den > 0 ? std::sqrt(num / den) : 0;
}

KvCodecOptions Options(KvCodecKind kind, bool entropy = true, uint32_t group_size = 32) {
  KvCodecOptions o;
  o.kind = kind;
  o.entropy = entropy;
  o.group_size = group_size;
  return o;
}

EncodedKvTensor MustEncode(const std::vector<float>& x, const KvTensorShape& shape,
                           KvTensorRole role, const KvCodecOptions& o) {
  auto enc = EncodeKvTensor(x, shape, role, o);
  EXPECT_TRUE(enc.ok()) << enc.status();
  return enc.ok() ? *std::move(enc) : EncodedKvTensor{};
}

std::vector<float> MustDecode(absl::string_view bytes, KvTensorHeader* header = nullptr) {
  std::vector<float> out;
  const absl::Status s = DecodeKvTensor(bytes, &out, header);
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

// Largest relative error each codec may show on N(0, 1) data.
double Bound(KvCodecKind kind) {
  switch (kind) {
    case KvCodecKind::kFp32:
      return 0;
    case KvCodecKind::kFp16:
      return 1e-3;
    case KvCodecKind::kBf16:
      return 5e-3;
    case KvCodecKind::kInt8:
      return 1e-2;
    case KvCodecKind::kInt4:
      return 0.1;
    case KvCodecKind::kKvq:  // tests/db/kv_codec_kvq_test.cc
      return 0.2;
  }
  return 0;
}

// ---------------------------------------------------------------- names

TEST(KvCodecNamesTest, ParseAcceptsEveryNameItPrints) {
  for (KvCodecKind k : kAllKinds) {
    auto parsed = ParseKvCodec(KvCodecName(k));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, k);
  }
  for (const char* bad : {"", "FP16", "int2", "fp16 ", "float16"}) {
    EXPECT_EQ(ParseKvCodec(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(KvCodecName(static_cast<KvCodecKind>(9)), "unknown");
}

TEST(KvCodecOptionsTest, ValidatesWhatIsUsed) {
  EXPECT_TRUE(ValidateKvCodecOptions(KvCodecOptions{}).ok());
  KvCodecOptions o;
  o.kind = static_cast<KvCodecKind>(7);
  EXPECT_EQ(ValidateKvCodecOptions(o).code(), absl::StatusCode::kInvalidArgument);
  o = KvCodecOptions{};
  o.zstd_level = 0;
  EXPECT_EQ(ValidateKvCodecOptions(o).code(), absl::StatusCode::kInvalidArgument);
  o.zstd_level = 23;
  EXPECT_EQ(ValidateKvCodecOptions(o).code(), absl::StatusCode::kInvalidArgument);
  o.entropy = false;  // the level is unused then
  EXPECT_TRUE(ValidateKvCodecOptions(o).ok());
  o = Options(KvCodecKind::kInt4, true, 0);
  EXPECT_EQ(ValidateKvCodecOptions(o).code(), absl::StatusCode::kInvalidArgument);
  o.group_size = kMaxKvGroupSize + 1;
  EXPECT_EQ(ValidateKvCodecOptions(o).code(), absl::StatusCode::kInvalidArgument);
  o.kind = KvCodecKind::kInt8;  // group_size is int4's only
  EXPECT_TRUE(ValidateKvCodecOptions(o).ok());
}

// ---------------------------------------------------------------- round trips

struct RoundTripCase {
  KvCodecKind kind;
  KvTensorRole role;
  bool entropy;
};

void PrintTo(const RoundTripCase& c, std::ostream* os) {
  *os << KvCodecName(c.kind) << (c.role == KvTensorRole::kKeys ? " keys" : " values")
      << (c.entropy ? " +zstd" : "");
}

class KvCodecRoundTripTest : public ::testing::TestWithParam<RoundTripCase> {};

TEST_P(KvCodecRoundTripTest, GaussianWithinBoundAndStoredErrorIsTheRealOne) {
  const RoundTripCase c = GetParam();
  // 100 tokens: the int4 key groups (32 tokens) end with a partial one.
  const KvTensorShape shape{4, 100, 64};
  const auto x = Gaussian(shape.elements(), 7);
  const EncodedKvTensor enc = MustEncode(x, shape, c.role, Options(c.kind, c.entropy));
  KvTensorHeader h;
  const auto y = MustDecode(enc.bytes, &h);
  ASSERT_EQ(y.size(), x.size());
  EXPECT_EQ(h.kind, c.kind);
  EXPECT_EQ(h.role, c.role);
  EXPECT_EQ(h.shape, shape);
  EXPECT_EQ(h.group_size, c.kind == KvCodecKind::kInt4 ? 32u : 0u);
  EXPECT_FALSE(h.fp32_params);  // N(0, 1) fits fp16 parameters
  EXPECT_EQ(h.payload_bytes, enc.bytes.size() - kKvTensorHeaderBytes);
  if (!c.entropy) {
    EXPECT_FALSE(h.entropy);
  }

  const double err = RelErr(x, y);
  if (c.kind == KvCodecKind::kFp32) {
    EXPECT_EQ(0, std::memcmp(x.data(), y.data(), x.size() * sizeof(float)));
    EXPECT_EQ(enc.relative_error, 0.0f);
  } else {
    EXPECT_GT(err, 0.0);
    EXPECT_LT(err, Bound(c.kind));
  }
  EXPECT_NEAR(enc.relative_error, err, 1e-6 * err + 1e-12);
  EXPECT_EQ(h.relative_error, enc.relative_error);
}

TEST_P(KvCodecRoundTripTest, EntropyStageDecodesToTheSameValues) {
  const RoundTripCase c = GetParam();
  const KvTensorShape shape{2, 37, 24};
  const auto x = Gaussian(shape.elements(), 11, 3.0f);
  const auto with = MustDecode(MustEncode(x, shape, c.role, Options(c.kind, true)).bytes);
  const auto without = MustDecode(MustEncode(x, shape, c.role, Options(c.kind, false)).bytes);
  ASSERT_EQ(with.size(), without.size());
  EXPECT_EQ(0, std::memcmp(with.data(), without.data(), with.size() * sizeof(float)));
}

std::vector<RoundTripCase> AllCases() {
  std::vector<RoundTripCase> cases;
  for (KvCodecKind k : kAllKinds) {
    for (KvTensorRole r : {KvTensorRole::kKeys, KvTensorRole::kValues}) {
      for (bool e : {false, true}) cases.push_back({k, r, e});
    }
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(AllCodecs, KvCodecRoundTripTest, ::testing::ValuesIn(AllCases()));

TEST(KvCodecTest, Fp16AndBf16AreExactOnTheirOwnGrid) {
  const KvTensorShape shape{1, 16, 16};
  auto x = Gaussian(shape.elements(), 3, 100.0f);
  x[0] = 0x1p-24f;  // smallest fp16 subnormal
  x[1] = -65504.0f;
  for (KvCodecKind kind : {KvCodecKind::kFp16, KvCodecKind::kBf16}) {
    std::vector<float> grid(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      grid[i] = kind == KvCodecKind::kFp16 ? HalfBitsToFloat(FloatToHalfBits(x[i]))
                                           : Bf16ToFloat(FloatToBf16(x[i]));
    }
    const EncodedKvTensor enc = MustEncode(grid, shape, KvTensorRole::kValues, Options(kind));
    EXPECT_EQ(enc.relative_error, 0.0f) << KvCodecName(kind);
    EXPECT_EQ(MustDecode(enc.bytes), grid) << KvCodecName(kind);
  }
}

// Keys have outlier channels (KIVI): a few channels carry a large offset
// and spread across all tokens. Per-channel groups give each of them its
// own range; per-token groups would stretch every row's range over them.
TEST(KvCodecTest, Int4KeysPerChannelBeatPerTokenOnOutlierChannels) {
  const KvTensorShape shape{2, 128, 64};
  auto k = Gaussian(shape.elements(), 5);
  for (size_t i = 0; i < k.size(); ++i) {
    const size_t c = i % shape.head_dim;
    if (c % 16 == 3) k[i] = 20.0f + 4.0f * k[i];
  }
  const KvCodecOptions o = Options(KvCodecKind::kInt4);
  const auto per_channel = MustEncode(k, shape, KvTensorRole::kKeys, o);
  const auto per_token = MustEncode(k, shape, KvTensorRole::kValues, o);  // the values' grouping
  EXPECT_LT(per_channel.relative_error, 0.5f * per_token.relative_error)
      << per_channel.relative_error << " vs " << per_token.relative_error;
  EXPECT_NEAR(RelErr(k, MustDecode(per_channel.bytes)), per_channel.relative_error, 1e-6);
}

// Mean over (head, token) rows of the row's relative error: what a token's
// contribution to the attention output loses.
double MeanRowError(const std::vector<float>& x, const std::vector<float>& y, size_t row) {
  double sum = 0;
  for (size_t r = 0; r < x.size() / row; ++r) {
    sum += RelErr(std::vector<float>(x.begin() + r * row, x.begin() + (r + 1) * row),
                  std::vector<float>(y.begin() + r * row, y.begin() + (r + 1) * row));
  }
  return sum / (x.size() / row);
}

// Values' magnitudes vary by token (log-normal scale per token). Per-token
// groups follow them; per-channel groups stretch over large and small
// tokens, and the small ones lose most of their precision.
TEST(KvCodecTest, Int4ValuesPerTokenBeatPerChannelOnVaryingTokenScales) {
  const KvTensorShape shape{2, 128, 64};
  auto v = Gaussian(shape.elements(), 6);
  const auto log_scale = Gaussian(shape.heads * shape.tokens, 24);
  for (size_t i = 0; i < v.size(); ++i) v[i] *= std::exp(1.5f * log_scale[i / shape.head_dim]);
  const KvCodecOptions o = Options(KvCodecKind::kInt4);
  const auto per_token = MustDecode(MustEncode(v, shape, KvTensorRole::kValues, o).bytes);
  const auto per_channel = MustDecode(MustEncode(v, shape, KvTensorRole::kKeys, o).bytes);
  const double token_err = MeanRowError(v, per_token, shape.head_dim);
  const double channel_err = MeanRowError(v, per_channel, shape.head_dim);
  EXPECT_LT(token_err, 0.1);
  EXPECT_LT(token_err, 0.5 * channel_err) << token_err << " vs " << channel_err;
}

TEST(KvCodecTest, LastPartialGroupHasItsOwnRange) {
  // 33 tokens, groups of 32: token 32 is a key group of its own. Its
  // values (exact in fp16) decode exactly (a one-element group has scale 0);
  // had it shared the first group's range they could not.
  const KvTensorShape shape{1, 33, 5};
  auto x = Gaussian(shape.elements(), 8);
  for (uint32_t c = 0; c < 5; ++c) x[32 * 5 + c] = 1000.0f + c;
  const auto y =
      MustDecode(MustEncode(x, shape, KvTensorRole::kKeys, Options(KvCodecKind::kInt4)).bytes);
  for (uint32_t c = 0; c < 5; ++c) EXPECT_EQ(y[32 * 5 + c], 1000.0f + c);
  EXPECT_LT(RelErr(x, y), 0.1);
  // Values: 5 channels in groups of 2 -> groups {0,1}, {2,3}, {4}; channel 4
  // is alone in its group, hence exact on every token.
  auto v = Gaussian(shape.elements(), 9);
  for (auto& f : v) f = HalfBitsToFloat(FloatToHalfBits(f));
  const auto w = MustDecode(
      MustEncode(v, shape, KvTensorRole::kValues, Options(KvCodecKind::kInt4, true, 2)).bytes);
  for (uint32_t t = 0; t < 33; ++t) EXPECT_EQ(w[t * 5 + 4], v[t * 5 + 4]) << t;
}

TEST(KvCodecTest, GroupLargerThanTheLineIsOneGroup) {
  const KvTensorShape shape{3, 10, 8};
  const auto x = Gaussian(shape.elements(), 10);
  for (KvTensorRole role : {KvTensorRole::kKeys, KvTensorRole::kValues}) {
    const auto enc = MustEncode(x, shape, role, Options(KvCodecKind::kInt4, false, 64));
    EXPECT_LT(RelErr(x, MustDecode(enc.bytes)), 0.2);
  }
}

TEST(KvCodecTest, ConstantTensorsDecodeExactlyWithoutNan) {
  const KvTensorShape shape{2, 40, 16};
  for (float value : {0.0f, 3.0f, -1.5f, 0.1f, 1e5f}) {
    const std::vector<float> x(shape.elements(), value);
    for (KvCodecKind kind : {KvCodecKind::kInt8, KvCodecKind::kInt4}) {
      for (KvTensorRole role : {KvTensorRole::kKeys, KvTensorRole::kValues}) {
        const auto enc = MustEncode(x, shape, role, Options(kind));
        const auto y = MustDecode(enc.bytes);
        ASSERT_EQ(y.size(), x.size());
        for (float f : y) ASSERT_TRUE(std::isfinite(f));
        if (value == 0.0f || value == 3.0f || value == -1.5f || value == 1e5f) {
          // Exact in the parameter type: the group's min, step 0.
          EXPECT_EQ(y, x) << value;
          EXPECT_EQ(enc.relative_error, 0.0f);
        } else {
          // 0.1 is not an fp16 number: min rounds down, a tiny step covers it.
          EXPECT_LT(RelErr(x, y), 1e-4) << value;
        }
      }
    }
  }
}

TEST(KvCodecTest, LargeMagnitudesUseFp32ParametersAndStayAccurate) {
  const KvTensorShape shape{1, 64, 32};
  const auto x = Gaussian(shape.elements(), 12, 1e6f);
  for (KvCodecKind kind : {KvCodecKind::kInt8, KvCodecKind::kInt4}) {
    KvTensorHeader h;
    const auto y = MustDecode(MustEncode(x, shape, KvTensorRole::kKeys, Options(kind)).bytes, &h);
    EXPECT_TRUE(h.fp32_params);
    EXPECT_LT(RelErr(x, y), Bound(kind));
  }
  // So do tiny ones (fp16 parameters would be subnormal).
  const auto small = Gaussian(shape.elements(), 13, 1e-6f);
  KvTensorHeader h;
  const auto y = MustDecode(
      MustEncode(small, shape, KvTensorRole::kValues, Options(KvCodecKind::kInt8)).bytes, &h);
  EXPECT_TRUE(h.fp32_params);
  EXPECT_LT(RelErr(small, y), Bound(KvCodecKind::kInt8));
}

TEST(KvCodecTest, ZstdShrinksACompressibleTensor) {
  // Smooth, low-entropy data: 16 distinct values.
  const KvTensorShape shape{4, 64, 64};
  std::vector<float> x(shape.elements());
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i / 7) % 16) * 0.25f;
  for (KvCodecKind kind : kAllKinds) {
    const auto plain = MustEncode(x, shape, KvTensorRole::kValues, Options(kind, false));
    const auto packed = MustEncode(x, shape, KvTensorRole::kValues, Options(kind, true));
    KvTensorHeader h;
    EXPECT_EQ(MustDecode(packed.bytes, &h), MustDecode(plain.bytes)) << KvCodecName(kind);
    EXPECT_TRUE(h.entropy) << KvCodecName(kind);
    EXPECT_LT(packed.bytes.size() * 4, plain.bytes.size()) << KvCodecName(kind);
  }
}

TEST(KvCodecTest, EntropyStageIsDroppedWhenItDoesNotShrink) {
  const KvTensorShape shape{1, 1, 4};  // 16 payload bytes: a zstd frame is larger
  const auto x = Gaussian(shape.elements(), 14);
  KvTensorHeader h;
  const auto y =
      MustDecode(MustEncode(x, shape, KvTensorRole::kKeys, Options(KvCodecKind::kFp32)).bytes, &h);
  EXPECT_FALSE(h.entropy);
  EXPECT_EQ(h.payload_bytes, 16u);
  EXPECT_EQ(y, x);
}

// The table of the README: bytes per element relative to fp16 and the
// error on N(0, 1) at a realistic shape. Asserts the ratios the header
// promises.
TEST(KvCodecTest, RatiosVersusFp16OnGaussianData) {
  const KvTensorShape shape{8, 512, 128};
  const auto x = Gaussian(shape.elements(), 15);
  const double fp16_bytes = 2.0 * shape.elements();
  for (KvCodecKind kind : kAllKinds) {
    for (bool entropy : {false, true}) {
      for (KvTensorRole role : {KvTensorRole::kKeys, KvTensorRole::kValues}) {
        const auto enc = MustEncode(x, shape, role, Options(kind, entropy));
        const double ratio = fp16_bytes / enc.bytes.size();
        std::printf("%-5s %-6s %-5s ratio vs fp16 %.3f  rel err %.5f\n",
                    std::string(KvCodecName(kind)).c_str(),
                    role == KvTensorRole::kKeys ? "keys" : "values", entropy ? "zstd" : "raw",
                    ratio, enc.relative_error);
        const double want = kind == KvCodecKind::kInt8              ? 1.9
                            : kind == KvCodecKind::kInt4            ? 3.1
                            : kind == KvCodecKind::kFp16 && entropy ? 1.05
                                                                    : 0.0;
        EXPECT_GT(ratio, want) << KvCodecName(kind);
      }
    }
  }
}

// ---------------------------------------------------------------- bad input

TEST(KvCodecTest, NonFiniteValuesAreRefusedNamingTheIndex) {
  const KvTensorShape shape{2, 3, 4};
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    auto x = Gaussian(shape.elements(), 16);
    x[17] = bad;
    for (KvCodecKind kind : kAllKinds) {
      auto enc = EncodeKvTensor(x, shape, KvTensorRole::kKeys, Options(kind));
      ASSERT_EQ(enc.status().code(), absl::StatusCode::kInvalidArgument) << KvCodecName(kind);
      EXPECT_NE(enc.status().message().find("x[17] (head 1, token 1, channel 1)"),
                absl::string_view::npos)
          << enc.status();
    }
  }
}

TEST(KvCodecTest, ValuesBeyondTheCodecsRangeAreRefused) {
  const KvTensorShape shape{1, 2, 2};
  std::vector<float> x = {1.0f, 2.0f, 70000.0f, 3.0f};
  auto enc = EncodeKvTensor(x, shape, KvTensorRole::kKeys, Options(KvCodecKind::kFp16));
  EXPECT_EQ(enc.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(enc.status().message().find("overflows fp16"), absl::string_view::npos);
  x[2] = 65504.0f;  // the largest fp16
  EXPECT_TRUE(EncodeKvTensor(x, shape, KvTensorRole::kKeys, Options(KvCodecKind::kFp16)).ok());
  x[2] = 3.4e38f;
  EXPECT_EQ(
      EncodeKvTensor(x, shape, KvTensorRole::kKeys, Options(KvCodecKind::kBf16)).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      EncodeKvTensor(x, shape, KvTensorRole::kKeys, Options(KvCodecKind::kInt8)).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(EncodeKvTensor(x, shape, KvTensorRole::kKeys, Options(KvCodecKind::kFp32)).ok());
}

TEST(KvCodecTest, ShapeMismatchAndBadShapesAreRefused) {
  const auto x = Gaussian(24, 17);
  const KvCodecOptions o;
  EXPECT_EQ(EncodeKvTensor(x, {2, 3, 5}, KvTensorRole::kKeys, o).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeKvTensor(x, {0, 3, 8}, KvTensorRole::kKeys, o).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeKvTensor({}, {1, 1, 0}, KvTensorRole::kKeys, o).status().code(),
            absl::StatusCode::kInvalidArgument);
  // Too large is refused before the sizes are compared.
  auto big = EncodeKvTensor(x, {1u << 10, 1u << 10, 1u << 9}, KvTensorRole::kKeys, o);
  EXPECT_EQ(big.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(big.status().message().find("exceeds"), absl::string_view::npos);
  // So is a shape whose element count wraps around to 0 in 64 bits.
  EXPECT_EQ(
      EncodeKvTensor({}, {9u << 24, 1u << 26, 1u << 26}, KvTensorRole::kKeys, o).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeKvTensor(x, {2, 3, 4}, static_cast<KvTensorRole>(2), o).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(EncodeKvTensor(x, {2, 3, 4}, KvTensorRole::kKeys, o).ok());
}

// Small blocks of every codec, with and without the entropy stage.
std::vector<std::string> SmallBlocks() {
  std::vector<std::string> blocks;
  const KvTensorShape shape{2, 5, 6};
  // Rows repeat (zstd has something to remove) but are not constant.
  const std::vector<float> row = Gaussian(shape.head_dim, 18);
  std::vector<float> x(shape.elements());
  for (size_t i = 0; i < x.size(); ++i) x[i] = row[i % row.size()];
  for (KvCodecKind kind : kAllKinds) {
    for (bool entropy : {false, true}) {
      blocks.push_back(
          MustEncode(x, shape, KvTensorRole::kValues, Options(kind, entropy, 4)).bytes);
      auto h = PeekKvTensor(blocks.back());
      EXPECT_TRUE(h.ok() && h->entropy == entropy) << KvCodecName(kind);
    }
  }
  return blocks;
}

TEST(KvCodecCorruptionTest, EveryTruncationIsDataLoss) {
  for (const std::string& block : SmallBlocks()) {
    for (size_t n = 0; n < block.size(); ++n) {
      std::vector<float> out = {1.0f};
      const absl::Status s = DecodeKvTensor(absl::string_view(block).substr(0, n), &out);
      ASSERT_EQ(s.code(), absl::StatusCode::kDataLoss) << n << " of " << block.size();
      EXPECT_TRUE(out.empty());
      EXPECT_EQ(PeekKvTensor(absl::string_view(block).substr(0, n)).status().code(),
                absl::StatusCode::kDataLoss);
    }
  }
}

TEST(KvCodecCorruptionTest, EverySingleBitFlipIsDataLoss) {
  size_t flips = 0;
  for (const std::string& block : SmallBlocks()) {
    for (size_t bit = 0; bit < block.size() * 8; ++bit) {
      std::string bad = block;
      bad[bit / 8] = static_cast<char>(bad[bit / 8] ^ (1 << (bit % 8)));
      std::vector<float> out;
      const absl::Status s = DecodeKvTensor(bad, &out);
      ASSERT_EQ(s.code(), absl::StatusCode::kDataLoss) << "bit " << bit << ": " << s;
      ++flips;
    }
  }
  EXPECT_GT(flips, 5000u);
}

TEST(KvCodecCorruptionTest, AppendedBytesAreDataLoss) {
  for (std::string block : SmallBlocks()) {
    block.push_back('\0');
    std::vector<float> out;
    EXPECT_EQ(DecodeKvTensor(block, &out).code(), absl::StatusCode::kDataLoss);
  }
}

TEST(KvCodecCorruptionTest, RandomBytesAreDataLoss) {
  std::mt19937 rng(19);
  const std::string valid = SmallBlocks()[6];  // int8, no entropy
  for (int i = 0; i < 20000; ++i) {
    std::string bytes(rng() % 300, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    if (i % 2 == 1 && bytes.size() >= 8) bytes.replace(0, 5, valid, 0, 5);  // magic + version
    std::vector<float> out;
    ASSERT_EQ(DecodeKvTensor(bytes, &out).code(), absl::StatusCode::kDataLoss) << i;
  }
}

// Blocks whose checksums are right but whose fields are not: each check
// behind the checksums must hold on its own.
std::string Resealed(std::string block, size_t offset, absl::string_view bytes) {
  block.replace(offset, bytes.size(), bytes.data(), bytes.size());
  ResealKvTensorForTesting(&block);
  return block;
}

template <typename T>
std::string Le(T v) {
  return std::string(reinterpret_cast<const char*>(&v), sizeof(T));
}

void ExpectCorrupt(const std::string& block, absl::string_view what) {
  std::vector<float> out;
  const absl::Status s = DecodeKvTensor(block, &out);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << what;
  EXPECT_NE(s.message().find("corrupt KV block: "), absl::string_view::npos) << s;
  EXPECT_NE(s.message().find(what), absl::string_view::npos) << s;
}

TEST(KvCodecCorruptionTest, ResealedBadFieldsAreDataLoss) {
  const KvTensorShape shape{2, 5, 6};
  const auto x = Gaussian(shape.elements(), 20);
  const std::string fp16 =
      MustEncode(x, shape, KvTensorRole::kKeys, Options(KvCodecKind::kFp16, false)).bytes;
  const std::string int8 =
      MustEncode(x, shape, KvTensorRole::kKeys, Options(KvCodecKind::kInt8, false)).bytes;
  const std::string int4 =
      MustEncode(x, shape, KvTensorRole::kKeys, Options(KvCodecKind::kInt4, false, 4)).bytes;
  const std::string zstd = SmallBlocks()[3];  // fp16 + entropy
  ASSERT_TRUE(PeekKvTensor(zstd)->entropy);

  ExpectCorrupt(Resealed(fp16, 4, "\x03"), "unsupported version 3");
  ExpectCorrupt(Resealed(fp16, 4, std::string(1, '\0')), "unsupported version 0");
  ExpectCorrupt(Resealed(fp16, 5, "\x06"), "unknown codec kind 6");
  ExpectCorrupt(Resealed(fp16, 6, "\x02"), "unknown role 2");
  ExpectCorrupt(Resealed(fp16, 7, "\x04"), "bad flags");
  ExpectCorrupt(Resealed(fp16, 7, "\x02"), "bad flags");  // fp32 params on an fp kind
  ExpectCorrupt(Resealed(fp16, 8, Le<uint32_t>(0)), "bad shape");
  ExpectCorrupt(Resealed(fp16, 8, Le<uint32_t>(1u << 30)), "bad shape");
  // A product that wraps around to 0 in 64 bits (9 * 2^76) is no small shape.
  ExpectCorrupt(
      Resealed(fp16, 8, Le<uint32_t>(9u << 24) + Le<uint32_t>(1u << 26) + Le<uint32_t>(1u << 26)),
      "bad shape");
  ExpectCorrupt(Resealed(fp16, 20, Le<uint32_t>(4)), "bad group size");
  ExpectCorrupt(Resealed(int4, 20, Le<uint32_t>(0)), "bad group size");
  // int4 in one-element groups with fp32 parameters: 8.5 bytes per element,
  // over the payload cap below the element cap.
  ExpectCorrupt(
      Resealed(Resealed(int4, 7, "\x02"), 8,
               Le<uint32_t>(1) + Le<uint32_t>(1u << 20) + Le<uint32_t>(128) + Le<uint32_t>(1)),
      "raw payload of 1140850688 bytes exceeds");
  ExpectCorrupt(Resealed(fp16, 24, Le<float>(-1.0f)), "bad relative error");
  ExpectCorrupt(Resealed(fp16, 24, Le<float>(std::numeric_limits<float>::quiet_NaN())),
                "bad relative error");
  ExpectCorrupt(Resealed(fp16, 28, Le<uint64_t>(3)), "payload bytes");
  ExpectCorrupt(Resealed(fp16, 12, Le<uint32_t>(6)), "raw bytes");  // shape vs payload size
  ExpectCorrupt(Resealed(int4, 20, Le<uint32_t>(8)), "raw bytes");  // other group count
  ExpectCorrupt(Resealed(int8, 7, "\x02"), "raw bytes");            // fp32 params: longer
  // Entropy flag on a raw payload: the payload is not smaller than raw.
  ExpectCorrupt(Resealed(fp16, 7, "\x01"), "compressed");
  // Values the encoder never writes.
  ExpectCorrupt(Resealed(fp16, kKvTensorHeaderBytes + 6, Le<uint16_t>(0x7c00)), "not finite");
  ExpectCorrupt(Resealed(fp16, kKvTensorHeaderBytes + 6, Le<uint16_t>(0xfe00)), "not finite");
  // int8 [2, 5, 6]: 60 code bytes, then 10 fp16 scales, then 10 fp16 mins.
  const size_t scales = kKvTensorHeaderBytes + 60;
  ExpectCorrupt(Resealed(int8, scales + 2, Le<uint16_t>(0x7e00)), "group 1 has scale");
  ExpectCorrupt(Resealed(int8, scales + 2, Le<uint16_t>(0xbc00)), "group 1 has scale");  // -1
  ExpectCorrupt(Resealed(int8, scales + 20, Le<uint16_t>(0xfc00)),
                "group 0 has scale");  // -inf min
  // int4 [2, 5, 6] = 60 codes in 30 bytes, padded to 32.
  ExpectCorrupt(Resealed(int4, kKvTensorHeaderBytes + 31, "\x01"), "padding");
}

// An fp16 [2, 5, 6] block (120 raw bytes) with `payload` as its entropy-
// coded payload, checksums valid.
std::string Fp16BlockWithFrame(const std::string& payload) {
  const KvTensorShape shape{2, 5, 6};
  std::string block = MustEncode(Gaussian(shape.elements(), 23), shape, KvTensorRole::kKeys,
                                 Options(KvCodecKind::kFp16, false))
                          .bytes.substr(0, kKvTensorHeaderBytes);
  block[7] = 1;  // entropy
  const uint64_t n = payload.size();
  std::memcpy(block.data() + 28, &n, 8);
  block += payload;
  ResealKvTensorForTesting(&block);
  return block;
}

std::string Frame(size_t raw_bytes, bool declare_size = true) {
  const std::string raw(raw_bytes, '\0');
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, declare_size ? 1 : 0);
  std::string out(ZSTD_compressBound(raw.size()), '\0');
  const size_t n = ZSTD_compress2(cctx, out.data(), out.size(), raw.data(), raw.size());
  ZSTD_freeCCtx(cctx);
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(n);
  return out;
}

// Version 1 blocks (stored before XXH3 became the payload checksum) still
// decode, to the same values, and their own checksum still guards them.
TEST(KvCodecCorruptionTest, VersionOneBlocksStillDecode) {
  for (const std::string& block : SmallBlocks()) {
    ASSERT_EQ(block[4], '\x02');
    const std::string v1 = Resealed(block, 4, "\x01");
    // Same header but for the version (and its checksum), another payload
    // checksum: the two versions' checksums are different functions.
    EXPECT_NE(v1.substr(36, 8), block.substr(36, 8));
    std::vector<float> want, got;
    ASSERT_TRUE(DecodeKvTensor(block, &want).ok());
    ASSERT_TRUE(DecodeKvTensor(v1, &got).ok());
    EXPECT_EQ(got, want);
    std::string bad = v1;
    bad.back() = static_cast<char>(bad.back() ^ 1);
    EXPECT_EQ(DecodeKvTensor(bad, &got).code(), absl::StatusCode::kDataLoss);
  }
}

TEST(KvCodecCorruptionTest, ZstdFramesMustMatchTheHeader) {
  // The frame of the right size decodes (all zeros).
  std::vector<float> out;
  ASSERT_TRUE(DecodeKvTensor(Fp16BlockWithFrame(Frame(120)), &out).ok());
  EXPECT_EQ(out, std::vector<float>(60, 0.0f));
  ExpectCorrupt(Fp16BlockWithFrame(Frame(100)), "zstd frame declares 100 bytes");
  ExpectCorrupt(Fp16BlockWithFrame(Frame(1 << 20)), "zstd frame declares 1048576 bytes");
  ExpectCorrupt(Fp16BlockWithFrame(Frame(120, false)), "does not declare its size");
  ExpectCorrupt(Fp16BlockWithFrame(Frame(120) + Frame(4)), "not exactly one zstd frame");
  ExpectCorrupt(Fp16BlockWithFrame(std::string(30, 'z')), "not a zstd frame");
  std::string cut = Frame(120);
  cut.pop_back();
  ExpectCorrupt(Fp16BlockWithFrame(cut), "zstd");
}

TEST(KvCodecCorruptionTest, DecodePayloadMatchesTheQuantizer) {
  const KvTensorShape shape{2, 33, 16};
  const auto x = Gaussian(shape.elements(), 21);
  const auto enc = MustEncode(x, shape, KvTensorRole::kKeys, Options(KvCodecKind::kInt4, true));
  KvTensorHeader h;
  std::string payload;
  ASSERT_TRUE(DecodeKvPayload(enc.bytes, &h, &payload).ok());
  std::string want;
  ASSERT_TRUE(attention::QuantizeKv(
                  x, attention::Int4KeySpec(2, 33, 16, 32, attention::QuantParamType::kFp16), &want)
                  .ok());
  EXPECT_EQ(payload, want);
  EXPECT_EQ(h.shape, shape);
}

// ---------------------------------------------------------------- kv_quant

TEST(KvQuantTest, LayoutSizes) {
  using attention::QuantLayout;
  using attention::QuantParamType;
  // int4 keys [2, 33, 5], groups of 32 tokens: 2 per (head, channel).
  auto l = QuantLayout(attention::Int4KeySpec(2, 33, 5, 32, QuantParamType::kFp16));
  EXPECT_EQ(l.elements, 330u);
  EXPECT_EQ(l.lines, 10u);
  EXPECT_EQ(l.groups_per_line, 2u);
  EXPECT_EQ(l.groups, 20u);
  EXPECT_EQ(l.code_bytes, 168u);  // 165 rounded up to 4
  EXPECT_EQ(l.param_bytes, 40u);
  EXPECT_EQ(l.payload_bytes, 248u);
  l = QuantLayout(attention::Int8RowSpec(2, 33, 5, QuantParamType::kFp32));
  EXPECT_EQ(l.groups, 66u);
  EXPECT_EQ(l.code_bytes, 332u);
  EXPECT_EQ(l.mins_offset, 332u + 264u);
}

TEST(KvQuantTest, CodesAndParametersAreWhereTheLayoutSays) {
  // One (head, token) row of int8: min -1, max 1.55 -> step 0.01 (fp32).
  const std::vector<float> x = {-1.0f, 0.0f, 1.55f, 0.5f};
  std::string p;
  ASSERT_TRUE(attention::QuantizeKv(
                  x, attention::Int8RowSpec(1, 1, 4, attention::QuantParamType::kFp32), &p)
                  .ok());
  ASSERT_EQ(p.size(), 12u);
  EXPECT_EQ(static_cast<uint8_t>(p[0]), 0);
  EXPECT_EQ(static_cast<uint8_t>(p[1]), 100);
  EXPECT_EQ(static_cast<uint8_t>(p[2]), 255);
  EXPECT_EQ(static_cast<uint8_t>(p[3]), 150);
  float scale, lo;
  std::memcpy(&scale, p.data() + 4, 4);
  std::memcpy(&lo, p.data() + 8, 4);
  EXPECT_FLOAT_EQ(scale, 0.01f);
  EXPECT_EQ(lo, -1.0f);
  // int4 values, two channels per group: nibbles in flat element order.
  const std::vector<float> v = {0.0f, 15.0f, 3.0f, 3.0f, 7.0f};
  ASSERT_TRUE(attention::QuantizeKv(
                  v, attention::Int4ValueSpec(1, 1, 5, 2, attention::QuantParamType::kFp16), &p)
                  .ok());
  ASSERT_EQ(p.size(), 4u + 3 * 2 * 2);
  EXPECT_EQ(static_cast<uint8_t>(p[0]), 0xf0);  // e0 = 0 low, e1 = 15 high
  EXPECT_EQ(static_cast<uint8_t>(p[1]), 0x00);  // constant group {3, 3}
  EXPECT_EQ(static_cast<uint8_t>(p[2]), 0x00);  // e4 alone, high nibble padding
  std::vector<float> back(5);
  ASSERT_TRUE(attention::DequantizeKv(
                  p, attention::Int4ValueSpec(1, 1, 5, 2, attention::QuantParamType::kFp16),
                  absl::MakeSpan(back))
                  .ok());
  EXPECT_EQ(back, v);
}

TEST(KvQuantTest, Fp16ParametersCoverTheGroup) {
  // min not an fp16 number: it rounds down, the step up, so both ends of
  // the group stay within half a step.
  const std::vector<float> x = {0.1f, 0.7f, 0.3337f, 0.65f};
  const auto spec = attention::Int8RowSpec(1, 1, 4, attention::QuantParamType::kFp16);
  std::string p;
  ASSERT_TRUE(attention::QuantizeKv(x, spec, &p).ok());
  uint16_t s16, m16;
  std::memcpy(&s16, p.data() + 4, 2);
  std::memcpy(&m16, p.data() + 6, 2);
  const float scale = HalfBitsToFloat(s16), lo = HalfBitsToFloat(m16);
  EXPECT_LE(lo, 0.1f);
  EXPECT_GE(lo + 255 * scale, 0.7f);
  std::vector<float> back(4);
  ASSERT_TRUE(attention::DequantizeKv(p, spec, absl::MakeSpan(back)).ok());
  for (int i = 0; i < 4; ++i) EXPECT_LE(std::abs(back[i] - x[i]), 0.5f * scale * 1.001f) << i;
}

TEST(KvQuantTest, RejectsBadSpecsAndInputs) {
  using attention::QuantParamType;
  // Element counts that wrap around in 64 bits are still too large.
  EXPECT_EQ(attention::ValidateQuantSpec(
                attention::Int8RowSpec(9u << 24, 1u << 26, 1u << 26, QuantParamType::kFp16))
                .code(),
            absl::StatusCode::kInvalidArgument);
  std::string p;
  std::vector<float> x(8, 1.0f);
  auto spec = attention::Int4KeySpec(1, 2, 4, 0, QuantParamType::kFp16);
  EXPECT_EQ(attention::QuantizeKv(x, spec, &p).code(), absl::StatusCode::kInvalidArgument);
  spec.group_size = 2;
  spec.bits = 3;
  EXPECT_EQ(attention::QuantizeKv(x, spec, &p).code(), absl::StatusCode::kInvalidArgument);
  spec.bits = 4;
  EXPECT_TRUE(attention::QuantizeKv(x, spec, &p).ok());
  x[3] = 40000.0f;  // beyond fp16 parameters
  EXPECT_EQ(attention::QuantizeKv(x, spec, &p).code(), absl::StatusCode::kInvalidArgument);
  spec.param_type = QuantParamType::kFp32;
  EXPECT_TRUE(attention::QuantizeKv(x, spec, &p).ok());
  std::vector<float> out(7);
  EXPECT_EQ(attention::DequantizeKv(p, spec, absl::MakeSpan(out)).code(),
            absl::StatusCode::kInvalidArgument);
  out.resize(8);
  EXPECT_EQ(
      attention::DequantizeKv(absl::string_view(p).substr(1), spec, absl::MakeSpan(out)).code(),
      absl::StatusCode::kDataLoss);
}

TEST(KvQuantTest, ChoosesFp16ParametersOnlyWhereTheyAreSafe) {
  using attention::ChooseQuantParamType;
  using attention::QuantParamType;
  EXPECT_EQ(ChooseQuantParamType(std::vector<float>{0.5f, -3.0f}), QuantParamType::kFp16);
  EXPECT_EQ(ChooseQuantParamType(std::vector<float>{0.5f, -40000.0f}), QuantParamType::kFp32);
  EXPECT_EQ(ChooseQuantParamType(std::vector<float>{1e-4f, -2e-4f}), QuantParamType::kFp32);
  EXPECT_EQ(ChooseQuantParamType(std::vector<float>{0.0f, 0.0f}), QuantParamType::kFp32);
}

// ---------------------------------------------------------------- fp16 / bf16 / dtypes

TEST(HalfTest, EveryHalfRoundTripsAndRoundingIsToNearestEven) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = HalfBitsToFloat(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(HalfBitsToFloat(FloatToHalfBits(f)))) << h;
      continue;
    }
    ASSERT_EQ(FloatToHalfBits(f), h) << h;
  }
  EXPECT_EQ(FloatToHalfBits(1.0f), 0x3c00);
  EXPECT_EQ(FloatToHalfBits(1.0f + 0x1p-11f), 0x3c00);      // tie -> even
  EXPECT_EQ(FloatToHalfBits(1.0f + 3 * 0x1p-11f), 0x3c02);  // tie -> even (up)
  EXPECT_EQ(FloatToHalfBits(65519.0f), 0x7bff);
  EXPECT_EQ(FloatToHalfBits(65520.0f), 0x7c00);
  EXPECT_EQ(FloatToHalfBits(-1e9f), 0xfc00);
  EXPECT_EQ(FloatToHalfBits(0x1p-25f), 0x0000);      // tie -> even (zero)
  EXPECT_EQ(FloatToHalfBits(3 * 0x1p-25f), 0x0002);  // tie -> even (up)
  EXPECT_EQ(FloatToHalfBits(-0.0f), 0x8000);
  EXPECT_EQ(FloatToHalfBits(0x1.ffcp-15f), 0x0400);  // rounds up into the normals
  // Random floats: the result is a nearest half.
  std::mt19937 rng(22);
  std::uniform_real_distribution<float> u(-70000.0f, 70000.0f);
  for (int i = 0; i < 100000; ++i) {
    float f = u(rng);
    if (i % 2) f *= 0x1p-20f;  // subnormal territory
    const uint16_t h = FloatToHalfBits(f);
    const double got = HalfBitsToFloat(h);
    if (std::isinf(got)) {
      ASSERT_GE(std::abs(f), 65520.0f);
      continue;
    }
    for (uint16_t n : {static_cast<uint16_t>(h - 1), static_cast<uint16_t>(h + 1)}) {
      const double other = HalfBitsToFloat(n);
      if (std::isnan(other) || std::isinf(other) || ((n ^ h) & 0x8000)) continue;
      ASSERT_LE(std::abs(got - f), std::abs(other - f)) << f;
    }
  }
}

TEST(Bf16Test, RoundsToNearestEven) {
  EXPECT_EQ(FloatToBf16(1.0f), 0x3f80);
  EXPECT_EQ(FloatToBf16(1.0f + 0x1p-8f), 0x3f80);      // tie -> even
  EXPECT_EQ(FloatToBf16(1.0f + 3 * 0x1p-8f), 0x3f82);  // tie -> even (up)
  EXPECT_EQ(FloatToBf16(1.0f + 0x1.2p-8f), 0x3f81);    // above the tie
  EXPECT_EQ(FloatToBf16(-2.0f), 0xc000);
  EXPECT_EQ(FloatToBf16(std::numeric_limits<float>::max()), 0x7f80);  // overflow
  EXPECT_TRUE(std::isnan(Bf16ToFloat(FloatToBf16(std::numeric_limits<float>::quiet_NaN()))));
  for (uint32_t b = 0; b < 0x10000; ++b) {
    const float f = Bf16ToFloat(static_cast<uint16_t>(b));
    if (!std::isnan(f)) {
      ASSERT_EQ(FloatToBf16(f), b);
    }
  }
}

TEST(KvDtypeTest, NamesAndSizes) {
  EXPECT_EQ(*ParseKvDtype("fp32"), KvDtype::kFp32);
  EXPECT_EQ(*ParseKvDtype("float16"), KvDtype::kFp16);
  EXPECT_EQ(*ParseKvDtype("bf16"), KvDtype::kBf16);
  EXPECT_EQ(*ParseKvDtype("bfloat16"), KvDtype::kBf16);
  EXPECT_EQ(ParseKvDtype("int8").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(KvDtypeBytes(KvDtype::kFp32), 4u);
  EXPECT_EQ(KvDtypeBytes(KvDtype::kFp16), 2u);
  EXPECT_EQ(KvDtypeBytes(KvDtype::kBf16), 2u);
  for (KvDtype d : {KvDtype::kFp32, KvDtype::kFp16, KvDtype::kBf16}) {
    EXPECT_EQ(*ParseKvDtype(KvDtypeName(d)), d);
  }
}

TEST(KvDtypeTest, LittleEndianBytesAndRoundTrips) {
  const std::vector<float> x = {1.0f, -2.5f, 0.1f};
  EXPECT_EQ(FloatsToDtype(x, KvDtype::kFp16).substr(0, 2), std::string("\x00\x3c", 2));
  EXPECT_EQ(FloatsToDtype(x, KvDtype::kBf16).substr(0, 2), std::string("\x80\x3f", 2));
  EXPECT_EQ(FloatsToDtype(x, KvDtype::kFp32).substr(0, 4), std::string("\x00\x00\x80\x3f", 4));
  std::vector<float> back;
  ASSERT_TRUE(DtypeToFloats(FloatsToDtype(x, KvDtype::kFp32), KvDtype::kFp32, &back).ok());
  EXPECT_EQ(back, x);
  ASSERT_TRUE(DtypeToFloats(FloatsToDtype(x, KvDtype::kFp16), KvDtype::kFp16, &back).ok());
  ASSERT_EQ(back.size(), 3u);
  EXPECT_EQ(back[1], -2.5f);
  EXPECT_NEAR(back[2], 0.1f, 1e-4f);
  ASSERT_TRUE(DtypeToFloats(FloatsToDtype(x, KvDtype::kBf16), KvDtype::kBf16, &back).ok());
  EXPECT_EQ(back[1], -2.5f);
  EXPECT_NEAR(back[2], 0.1f, 1e-3f);
  EXPECT_EQ(DtypeToFloats("abc", KvDtype::kFp16, &back).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DtypeToFloats("abcdef", KvDtype::kFp32, &back).code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(DtypeToFloats("", KvDtype::kFp32, &back).ok());
  EXPECT_TRUE(back.empty());
}

}  // namespace
}  // namespace mnemo::db
