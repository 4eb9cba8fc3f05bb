// LEB128 varints (common/varint.h), the one encoder and decoder of the
// store's records, the kvq outlier positions and the tokenizer's protobuf.
#include "common/varint.h"

#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace mnemo {
namespace {

TEST(VarintTest, RoundTripsAtEveryLengthBoundary) {
  std::vector<uint64_t> values = {0, 1, std::numeric_limits<uint64_t>::max()};
  for (int bits = 1; bits < 64; ++bits) {
    const uint64_t p = uint64_t{1} << bits;
    values.insert(values.end(), {p - 1, p, p + 1});
  }
  for (const uint64_t v : values) {
    std::string out = "x";
    PutVarint(&out, v);
    // One byte per started group of 7 significant bits, at least one.
    const int significant = v == 0 ? 1 : 64 - std::countl_zero(v);
    EXPECT_EQ(out.size(), 1u + size_t((significant + 6) / 7)) << v;
    absl::string_view in(out);
    in.remove_prefix(1);
    uint64_t back = 0;
    ASSERT_TRUE(GetVarint(&in, &back)) << v;
    EXPECT_EQ(back, v);
    EXPECT_TRUE(in.empty());
  }
}

TEST(VarintTest, MatchesProtobufsBytes) {
  std::string out;
  PutVarint(&out, 300);  // protobuf's own example: AC 02
  EXPECT_EQ(out, std::string("\xac\x02", 2));
  out.clear();
  PutVarint(&out, 0);
  EXPECT_EQ(out, std::string(1, '\0'));
}

TEST(VarintTest, DecodesOneValueAndLeavesTheRest) {
  std::string s;
  PutVarint(&s, 7);
  PutVarint(&s, 1u << 20);
  s += "tail";
  absl::string_view in(s);
  uint64_t a = 0, b = 0;
  ASSERT_TRUE(GetVarint(&in, &a));
  ASSERT_TRUE(GetVarint(&in, &b));
  EXPECT_EQ(a, 7u);
  EXPECT_EQ(b, 1u << 20);
  EXPECT_EQ(in, "tail");
}

TEST(VarintTest, RefusesTruncatedInput) {
  std::string s;
  PutVarint(&s, uint64_t{1} << 40);
  for (size_t n = 0; n < s.size(); ++n) {
    absl::string_view in(s.data(), n);
    uint64_t v = 0;
    EXPECT_FALSE(GetVarint(&in, &v)) << n << " bytes";
  }
}

TEST(VarintTest, RefusesValuesBeyondSixtyFourBits) {
  // Ten bytes whose last holds more than bit 63.
  std::string s(9, '\xff');
  s.push_back('\x02');
  absl::string_view in(s);
  uint64_t v = 0;
  EXPECT_FALSE(GetVarint(&in, &v));
  // Eleven bytes: the tenth still has its continuation bit.
  std::string longer(10, '\x80');
  longer.push_back('\x00');
  in = longer;
  EXPECT_FALSE(GetVarint(&in, &v));
  // The largest value still decodes.
  std::string max(9, '\xff');
  max.push_back('\x01');
  in = max;
  ASSERT_TRUE(GetVarint(&in, &v));
  EXPECT_EQ(v, std::numeric_limits<uint64_t>::max());
}

TEST(VarintTest, Varint32RefusesWiderValues) {
  std::string s;
  PutVarint(&s, std::numeric_limits<uint32_t>::max());
  PutVarint(&s, uint64_t{1} << 32);
  absl::string_view in(s);
  uint32_t v = 0;
  ASSERT_TRUE(GetVarint32(&in, &v));
  EXPECT_EQ(v, std::numeric_limits<uint32_t>::max());
  EXPECT_FALSE(GetVarint32(&in, &v));
}

}  // namespace
}  // namespace mnemo
