// The kvq codec (attention/kvq.h) and its rANS stage (attention/rans.h),
// on their own and through the KV block format (db/kv_codec.h).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "attention/kv_quant.h"
#include "attention/kvq.h"
#include "attention/rans.h"
#include "db/kv_codec.h"
#include "gtest/gtest.h"

namespace mnemo::db {
namespace {

using attention::HalfBitsToFloat;
using attention::FloatToHalfBits;

constexpr uint32_t kHeads = 2, kTokens = 64, kHeadDim = 32;
constexpr KvTensorShape kShape{kHeads, kTokens, kHeadDim};

// Key-like data: per-channel offsets and scales that differ by 2^6.
std::vector<float> SkewedKeys(uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0, 1);
  std::vector<float> x(kShape.elements());
  for (uint32_t h = 0; h < kHeads; ++h) {
    for (uint32_t t = 0; t < kTokens; ++t) {
      for (uint32_t c = 0; c < kHeadDim; ++c) {
        const float scale = std::ldexp(0.1f, static_cast<int>(c % 7));
        x[(h * kTokens + t) * kHeadDim + c] = 0.5f * static_cast<float>(c % 5) + scale * n(rng);
      }
    }
  }
  return x;
}

std::vector<float> Gaussian(uint32_t seed, size_t n) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0, 1);
  std::vector<float> x(n);
  for (float& v : x) v = d(rng);
  return x;
}

KvCodecOptions Kvq(int bits = 3, uint32_t sinks = 1, double outliers = 0.01,
                   double rate_weight = 0.005) {
  KvCodecOptions o;
  o.kind = KvCodecKind::kKvq;
  o.kvq_bits = bits;
  o.kvq_sink_tokens = sinks;
  o.kvq_outlier_fraction = outliers;
  o.kvq_rate_weight = rate_weight;
  return o;
}

double RelErr(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    den += static_cast<double>(a[i]) * a[i];
  }
  return std::sqrt(num / den);
}

struct RoundTrip {
  EncodedKvTensor enc;
  std::vector<float> out;
  double error = 0;
};

RoundTrip RoundTripOf(const std::vector<float>& x, KvTensorRole role, const KvCodecOptions& o,
              KvTensorShape shape = kShape) {
  RoundTrip r;
  auto enc = EncodeKvTensor(x, shape, role, o);
  EXPECT_TRUE(enc.ok()) << enc.status();
  if (!enc.ok()) return r;
  r.enc = *std::move(enc);
  const absl::Status s = DecodeKvTensor(r.enc.bytes, &r.out);
  EXPECT_TRUE(s.ok()) << s;
  if (s.ok()) r.error = RelErr(x, r.out);
  return r;
}

// ---------------------------------------------------------------- rANS

TEST(RansTest, RoundTripsNearTheEntropy) {
  std::mt19937 rng(7);
  std::discrete_distribution<int> d({60, 20, 10, 5, 3, 1, 0.5, 0.5});
  std::vector<uint8_t> sym(100000);
  std::vector<uint64_t> counts(8, 0);
  for (uint8_t& s : sym) ++counts[s = static_cast<uint8_t>(d(rng))];
  double entropy_bits = 0;
  for (uint64_t c : counts) {
    if (c > 0) entropy_bits -= c * std::log2(static_cast<double>(c) / sym.size());
  }
  const std::vector<uint16_t> f = attention::QuantizeRansFrequencies(counts);
  std::string stream;
  attention::RansEncode(sym, f, &stream);
  EXPECT_LT(stream.size() * 8.0, entropy_bits * 1.01 + 64);
  EXPECT_LT(stream.size(), sym.size() * 3 / 8);  // below 3-bit packing
  std::vector<uint8_t> back(sym.size());
  ASSERT_TRUE(attention::RansDecode(stream, f, absl::MakeSpan(back)).ok());
  EXPECT_EQ(back, sym);
}

TEST(RansTest, FrequenciesAreCappedAndSumToTheScale) {
  const std::vector<uint64_t> one_symbol = {0, 0, 1000, 0};
  const std::vector<uint16_t> f = attention::QuantizeRansFrequencies(one_symbol);
  uint32_t sum = 0;
  for (uint16_t v : f) sum += v;
  EXPECT_EQ(sum, attention::kRansScale);
  EXPECT_EQ(f[2], attention::kRansMaxFrequency);
  std::vector<uint8_t> sym(5000, 2), back(5000);
  std::string stream;
  attention::RansEncode(sym, f, &stream);
  ASSERT_TRUE(attention::RansDecode(stream, f, absl::MakeSpan(back)).ok());
  EXPECT_EQ(back, sym);
  // More symbols than the stream can hold are refused before decoding.
  std::vector<uint8_t> huge(attention::kRansMaxSymbolsPerByte * (stream.size() + 1) + 1);
  EXPECT_TRUE(absl::IsDataLoss(attention::RansDecode(stream, f, absl::MakeSpan(huge))));
}

TEST(RansTest, MalformedStreamsAreDataLoss) {
  const std::vector<uint64_t> counts = {5, 3, 2, 1};
  const std::vector<uint16_t> f = attention::QuantizeRansFrequencies(counts);
  std::vector<uint8_t> sym = {0, 1, 2, 3, 0, 0, 1, 2, 0, 3, 1, 0, 0, 0, 2, 1};
  for (int i = 0; i < 6; ++i) sym.insert(sym.end(), sym.begin(), sym.end());
  std::string stream;
  attention::RansEncode(sym, f, &stream);
  std::vector<uint8_t> back(sym.size());
  for (size_t cut = 0; cut < stream.size(); ++cut) {
    EXPECT_TRUE(
        absl::IsDataLoss(attention::RansDecode(stream.substr(0, cut), f, absl::MakeSpan(back))))
        << cut;
  }
  EXPECT_TRUE(absl::IsDataLoss(attention::RansDecode(stream + "x", f, absl::MakeSpan(back))));
  std::vector<uint16_t> bad = f;
  bad[0] += 1;  // sum 4097
  EXPECT_TRUE(absl::IsDataLoss(attention::RansDecode(stream, bad, absl::MakeSpan(back))));
}

// ---------------------------------------------------------------- kvq

TEST(KvqTest, AtLeastFourTimesSmallerThanFp16WithBoundedError) {
  const std::vector<float> k = SkewedKeys(1), v = Gaussian(2, kShape.elements());
  const RoundTrip rk = RoundTripOf(k, KvTensorRole::kKeys, Kvq());
  const RoundTrip rv = RoundTripOf(v, KvTensorRole::kValues, Kvq());
  const double fp16 = 2.0 * 2 * kShape.elements();
  EXPECT_GE(fp16 / static_cast<double>(rk.enc.bytes.size() + rv.enc.bytes.size()), 4.0);
  EXPECT_LT(rk.error, 0.15);
  EXPECT_LT(rv.error, 0.2);
  // The stored error is the real one.
  EXPECT_NEAR(rk.enc.relative_error, rk.error, 1e-6);
  EXPECT_NEAR(rv.enc.relative_error, rv.error, 1e-6);
  KvTensorHeader h;
  std::vector<float> out;
  ASSERT_TRUE(DecodeKvTensor(rk.enc.bytes, &out, &h).ok());
  EXPECT_EQ(h.kind, KvCodecKind::kKvq);
  EXPECT_FALSE(h.entropy);
  EXPECT_FLOAT_EQ(h.relative_error, rk.enc.relative_error);
}

TEST(KvqTest, MoreBitsLowerTheError) {
  const std::vector<float> v = Gaussian(3, kShape.elements());
  double last = 1e9;
  size_t last_bytes = 0;
  for (int bits : {2, 3, 4, 5}) {
    const RoundTrip r = RoundTripOf(v, KvTensorRole::kValues, Kvq(bits, 1, 0.01, 0.0));
    EXPECT_LT(r.error, last * 0.8) << bits;
    EXPECT_GT(r.enc.bytes.size(), last_bytes) << bits;
    last = r.error;
    last_bytes = r.enc.bytes.size();
  }
}

TEST(KvqTest, SinkTokensAreBitExactFp16) {
  const std::vector<float> k = SkewedKeys(4);
  for (uint32_t sinks : {1u, 4u}) {
    const RoundTrip r = RoundTripOf(k, KvTensorRole::kKeys, Kvq(2, sinks));
    for (uint32_t h = 0; h < kHeads; ++h) {
      for (uint32_t t = 0; t < kTokens; ++t) {
        for (uint32_t c = 0; c < kHeadDim; ++c) {
          const size_t e = (h * kTokens + t) * kHeadDim + c;
          const float want = HalfBitsToFloat(FloatToHalfBits(k[e]));
          if (t < sinks) {
            ASSERT_EQ(r.out[e], want) << h << " " << t << " " << c;
          }
        }
      }
    }
  }
  // Without sinks the first token is quantized like the others (2 bits: off).
  const RoundTrip none = RoundTripOf(k, KvTensorRole::kKeys, Kvq(2, 0));
  int exact = 0;
  for (uint32_t c = 0; c < kHeadDim; ++c) {
    exact += none.out[c] == HalfBitsToFloat(FloatToHalfBits(k[c]));
  }
  EXPECT_LT(exact, static_cast<int>(kHeadDim) / 2);
}

TEST(KvqTest, OutliersAreRestoredExactlyAndKeepTheRestAccurate) {
  std::vector<float> v = Gaussian(5, kShape.elements());
  std::mt19937 rng(9);
  std::vector<size_t> spikes;
  for (int i = 0; i < 30; ++i) {  // ~0.75% of the elements, outside the sink token
    const size_t e = kHeadDim * kTokens / 2 + rng() % (kShape.elements() - kHeadDim * kTokens);
    v[e] = (i % 2 ? 1 : -1) * (40.0f + static_cast<float>(i));
    spikes.push_back(e);
  }
  const RoundTrip with = RoundTripOf(v, KvTensorRole::kValues, Kvq(3, 1, 0.01));
  for (size_t e : spikes) EXPECT_EQ(with.out[e], HalfBitsToFloat(FloatToHalfBits(v[e]))) << e;
  const RoundTrip without = RoundTripOf(v, KvTensorRole::kValues, Kvq(3, 1, 0.0));
  // Error on the non-spike elements: the spikes widen their rows' range.
  auto rest_error = [&](const std::vector<float>& out) {
    std::vector<float> a, b;
    for (size_t i = 0; i < v.size(); ++i) {
      if (std::find(spikes.begin(), spikes.end(), i) != spikes.end()) continue;
      a.push_back(v[i]);
      b.push_back(out[i]);
    }
    return RelErr(a, b);
  };
  EXPECT_LT(rest_error(with.out) * 2, rest_error(without.out));
}

TEST(KvqTest, RateWeightTradesBytesForError) {
  // Entropy-constrained levels: a higher weight on the code length gives
  // fewer bytes and more error.
  const std::vector<float> v = Gaussian(14, kShape.elements());
  const RoundTrip plain = RoundTripOf(v, KvTensorRole::kValues, Kvq(4, 1, 0.01, 0.0));
  const RoundTrip ec = RoundTripOf(v, KvTensorRole::kValues, Kvq(4, 1, 0.01, 0.02));
  EXPECT_LT(ec.enc.bytes.size() * 1.1, plain.enc.bytes.size());
  EXPECT_GT(ec.error, plain.error);
}

TEST(KvqTest, PerChannelKeyScalingMattersOnChannelSkewedKeys) {
  // Pre-RoPE keys: large per-channel offsets, small variation around them.
  // As keys (per-channel centre and range) the offsets cost nothing; as
  // values (per-token range around 0) every code spans all the offsets.
  std::mt19937 rng(6);
  std::normal_distribution<float> n(0, 1);
  std::vector<float> k(kShape.elements());
  for (size_t i = 0; i < k.size(); ++i) {
    k[i] = 2.0f * static_cast<float>(static_cast<int>(i % kHeadDim) - 16) + 0.2f * n(rng);
  }
  const RoundTrip as_keys = RoundTripOf(k, KvTensorRole::kKeys, Kvq());
  const RoundTrip as_values = RoundTripOf(k, KvTensorRole::kValues, Kvq());
  EXPECT_LT(as_keys.error * 5, as_values.error);
}

TEST(KvqTest, ZeroAndConstantTensorsAndAllSinkShapes) {
  const std::vector<float> zero(kShape.elements(), 0.0f);
  for (KvTensorRole role : {KvTensorRole::kKeys, KvTensorRole::kValues}) {
    const RoundTrip r = RoundTripOf(zero, role, Kvq());
    EXPECT_EQ(r.out, zero);
  }
  // Keys constant per channel decode exactly (fp16-representable values).
  std::vector<float> k(kShape.elements());
  for (size_t i = 0; i < k.size(); ++i) k[i] = 0.25f * static_cast<float>(i % kHeadDim) - 3.0f;
  EXPECT_EQ(RoundTripOf(k, KvTensorRole::kKeys, Kvq()).out, k);
  // Fewer tokens than sinks: everything is fp16.
  const KvTensorShape tiny{1, 2, 8};
  const std::vector<float> x = Gaussian(8, tiny.elements());
  for (KvTensorRole role : {KvTensorRole::kKeys, KvTensorRole::kValues}) {
    const RoundTrip r = RoundTripOf(x, role, Kvq(3, 4), tiny);
    for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(r.out[i], HalfBitsToFloat(FloatToHalfBits(x[i])));
  }
}

TEST(KvqTest, ValuesAtTheRangeLimitDecode) {
  // Scales rounded up could carry a level at +-1 past kKvqMaxMagnitude;
  // the encoder picks in-range codes (or keeps the value as an outlier), so
  // every block it writes decodes and every decoded value can be encoded
  // again.
  std::mt19937 rng(15);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> x(kShape.elements());
  for (float& v : x) v = attention::kKvqMaxMagnitude * u(rng);
  x[kHeadDim * 5] = attention::kKvqMaxMagnitude;
  x[kHeadDim * 7 + 3] = -attention::kKvqMaxMagnitude;
  for (int bits : {1, 2, 3, 4}) {
    for (KvTensorRole role : {KvTensorRole::kKeys, KvTensorRole::kValues}) {
      const RoundTrip r = RoundTripOf(x, role, Kvq(bits, 1, 0.0, 0.0));
      ASSERT_EQ(r.out.size(), x.size()) << bits;
      auto again = EncodeKvTensor(r.out, kShape, role, Kvq(bits));
      ASSERT_TRUE(again.ok()) << again.status();
    }
  }
}

TEST(KvqTest, BadOptionsAndInputsAreInvalidArgument) {
  const std::vector<float> v = Gaussian(10, kShape.elements());
  for (const KvCodecOptions& o : {Kvq(0), Kvq(9), Kvq(3, 1, -0.1), Kvq(3, 1, 0.6)}) {
    EXPECT_TRUE(absl::IsInvalidArgument(ValidateKvCodecOptions(o)));
    EXPECT_TRUE(absl::IsInvalidArgument(EncodeKvTensor(v, kShape, KvTensorRole::kKeys, o).status()));
  }
  std::vector<float> big = v;
  big[17] = 1e6f;  // beyond kvq's fp16 parameters
  EXPECT_TRUE(
      absl::IsInvalidArgument(EncodeKvTensor(big, kShape, KvTensorRole::kKeys, Kvq()).status()));
  big[17] = std::nanf("");
  EXPECT_TRUE(
      absl::IsInvalidArgument(EncodeKvTensor(big, kShape, KvTensorRole::kKeys, Kvq()).status()));
}

// ---------------------------------------------------------------- corruption

class KvqCorruptionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto enc = EncodeKvTensor(SkewedKeys(11), kShape, KvTensorRole::kKeys, Kvq());
    ASSERT_TRUE(enc.ok());
    block_ = enc->bytes;
    payload_ = kKvTensorHeaderBytes;
  }
  // Resealed so that the kvq checks (not the checksums) are what refuses it.
  absl::Status DecodeResealed(std::string b) {
    ResealKvTensorForTesting(&b);
    std::vector<float> out = {1.0f};
    const absl::Status s = DecodeKvTensor(b, &out);
    if (!s.ok()) {
      EXPECT_TRUE(out.empty());
    }
    return s;
  }
  template <typename T>
  std::string With(size_t off, T v) const {
    std::string b = block_;
    std::memcpy(b.data() + payload_ + off, &v, sizeof(T));
    return b;
  }
  std::string block_;
  size_t payload_ = 0;
};

TEST_F(KvqCorruptionTest, EveryTruncationAndBitFlipIsDataLoss) {
  std::vector<float> out;
  for (size_t n = 0; n < block_.size(); n += 7) {
    EXPECT_TRUE(absl::IsDataLoss(DecodeKvTensor(block_.substr(0, n), &out))) << n;
  }
  for (size_t bit = 0; bit < block_.size() * 8; bit += 13) {
    std::string b = block_;
    b[bit / 8] = static_cast<char>(b[bit / 8] ^ (1 << (bit % 8)));
    EXPECT_TRUE(absl::IsDataLoss(DecodeKvTensor(b, &out))) << bit;
  }
}

TEST_F(KvqCorruptionTest, ResealedBadFieldsAreDataLoss) {
  EXPECT_TRUE(DecodeResealed(block_).ok());
  EXPECT_TRUE(absl::IsDataLoss(DecodeResealed(With<uint8_t>(0, 0))));   // bits 0
  EXPECT_TRUE(absl::IsDataLoss(DecodeResealed(With<uint8_t>(0, 9))));   // bits 9
  EXPECT_TRUE(absl::IsDataLoss(DecodeResealed(With<uint8_t>(0, 4))));   // sections shift
  EXPECT_TRUE(absl::IsDataLoss(DecodeResealed(With<uint8_t>(1, 1))));   // reserved
  EXPECT_TRUE(absl::IsDataLoss(DecodeResealed(With<uint16_t>(2, kTokens + 1))));  // sinks
  EXPECT_TRUE(absl::IsDataLoss(DecodeResealed(With<uint32_t>(4, 0xffffffffu))));  // outliers
  EXPECT_TRUE(absl::IsDataLoss(DecodeResealed(With<uint32_t>(8, 0x7fffffffu))));  // positions
  EXPECT_TRUE(absl::IsDataLoss(DecodeResealed(With<uint32_t>(12, 0))));           // stream
  // The block header marks kvq payloads as never zstd-coded.
  std::string flagged = block_;
  flagged[7] = 1;
  EXPECT_TRUE(absl::IsDataLoss(DecodeResealed(flagged)));
  // A non-finite level, a negative or infinite top scale (after 8 fp16
  // levels and 8 u16 frequencies).
  const size_t levels = attention::kKvqHeaderBytes, scales = levels + 16 + 16;
  EXPECT_TRUE(absl::IsDataLoss(DecodeResealed(With<uint16_t>(levels, 0x7e00))));
  EXPECT_TRUE(absl::IsDataLoss(DecodeResealed(With<uint16_t>(scales, 0xbc00))));
  EXPECT_TRUE(absl::IsDataLoss(DecodeResealed(With<uint16_t>(scales, 0x7c00))));
  // A frequency table that does not sum to the scale.
  EXPECT_TRUE(absl::IsDataLoss(DecodeResealed(With<uint16_t>(levels + 16, 4096))));
  // Every byte of the payload replaced by every few values: refused or
  // decoded to finite values in range, never a crash.
  for (size_t i = payload_; i < block_.size(); ++i) {
    for (int v : {0x00, 0x7f, 0x80, 0xff}) {
      std::string b = block_;
      b[i] = static_cast<char>(v);
      std::vector<float> out;
      ResealKvTensorForTesting(&b);
      const absl::Status s = DecodeKvTensor(b, &out);
      if (s.ok()) {
        for (float y : out) ASSERT_LE(std::abs(y), attention::kKvqMaxMagnitude);
      } else {
        ASSERT_TRUE(absl::IsDataLoss(s)) << s;
      }
    }
  }
}

TEST_F(KvqCorruptionTest, OutlierPositionsAreChecked) {
  // One outlier at a chosen position, no others.
  const KvTensorShape shape{1, 4, 4};
  std::vector<float> x = Gaussian(12, shape.elements());
  x[9] = 50;
  KvCodecOptions o = Kvq(3, 1, 0.1);  // 0.1 * 12 dense elements: 1 outlier
  auto enc = EncodeKvTensor(x, shape, KvTensorRole::kValues, o);
  ASSERT_TRUE(enc.ok());
  std::vector<float> out;
  ASSERT_TRUE(DecodeKvTensor(enc->bytes, &out).ok());
  EXPECT_EQ(out[9], 50.0f);
  // The position byte: after the headers, levels, freqs, top scale, 3 line
  // scales and the sink token (4 fp16).
  const size_t pos = kKvTensorHeaderBytes + attention::kKvqHeaderBytes + 16 + 16 + 2 + 3 + 8;
  ASSERT_EQ(static_cast<uint8_t>(enc->bytes[pos]), 9);
  for (uint8_t bad : {uint8_t{2}, uint8_t{16}, uint8_t{0x80}}) {  // sink token, beyond, truncated
    std::string b = enc->bytes;
    b[pos] = static_cast<char>(bad);
    ResealKvTensorForTesting(&b);
    EXPECT_TRUE(absl::IsDataLoss(DecodeKvTensor(b, &out))) << int{bad};
  }
}

TEST(KvqPayloadTest, DecodeKvPayloadHandsBackTheKvqPayloadForParseKvq) {
  const std::vector<float> k = SkewedKeys(13);
  auto enc = EncodeKvTensor(k, kShape, KvTensorRole::kKeys, Kvq());
  ASSERT_TRUE(enc.ok());
  std::string payload;
  KvTensorHeader h;
  ASSERT_TRUE(DecodeKvPayload(enc->bytes, &h, &payload).ok());
  auto planes = attention::ParseKvq(payload, kHeads, kTokens, kHeadDim, true);
  ASSERT_TRUE(planes.ok()) << planes.status();
  EXPECT_EQ(planes->levels.size(), 8u);
  EXPECT_TRUE(std::is_sorted(planes->levels.begin(), planes->levels.end(),
                             [](uint16_t a, uint16_t b) { return HalfBitsToFloat(a) < HalfBitsToFloat(b); }));
  // The levels are not an even grid (k-means of the normalized keys).
  const float l0 = HalfBitsToFloat(planes->levels[0]), l1 = HalfBitsToFloat(planes->levels[1]),
              l3 = HalfBitsToFloat(planes->levels[3]), l4 = HalfBitsToFloat(planes->levels[4]);
  EXPECT_GT(std::abs((l1 - l0) - (l4 - l3)), 0.01f);
  std::vector<float> out(kShape.elements()), ref;
  ASSERT_TRUE(attention::DequantizeKvqPlanes(*planes, absl::MakeSpan(out)).ok());
  ASSERT_TRUE(DecodeKvTensor(enc->bytes, &ref).ok());
  EXPECT_EQ(out, ref);
}

}  // namespace
}  // namespace mnemo::db
