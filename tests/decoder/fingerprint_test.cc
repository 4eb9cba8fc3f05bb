#include "decoder/fingerprint.h"

#include "gtest/gtest.h"
#include "tests/decoder/test_model.h"

namespace mnemo::decoder {
namespace {

ModelFingerprint Tiny() {
  auto c = ParseModelConfig(testing::TinyConfigJson().dump());
  EXPECT_TRUE(c.ok());
  return FingerprintFromConfig(*c);
}

TEST(FingerprintTest, CanonicalStringAndHashAreStable) {
  const ModelFingerprint f = Tiny();
  EXPECT_EQ(f.Canonical(),
            "architecture=llama;n_layers=2;n_heads=6;n_kv_heads=2;head_dim=8;dim=48;"
            "rope_theta=10000;rope_style=half;dtype=float32;tokenizer_sha256=00");
  // FNV-1a 64 of that string: fixed across builds and machines.
  EXPECT_EQ(f.Hash(), Tiny().Hash());
  EXPECT_EQ(f.HashHex().size(), 16u);
}

TEST(FingerprintTest, ParseRoundTrips) {
  const ModelFingerprint f = Tiny();
  auto back = ParseFingerprint(f.Canonical());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, f);
  EXPECT_EQ(back->Hash(), f.Hash());
  EXPECT_FALSE(ParseFingerprint("architecture=llama").ok());  // fields missing
  EXPECT_FALSE(ParseFingerprint(f.Canonical() + ";extra=1").ok());
  EXPECT_FALSE(ParseFingerprint("n_layers=x").ok());
}

TEST(FingerprintTest, FirstDifferenceNamesTheField) {
  const ModelFingerprint a = Tiny();
  EXPECT_FALSE(FirstDifference(a, a).has_value());
  ModelFingerprint b = a;
  b.n_kv_heads = 3;
  b.tokenizer_sha256 = "ff";
  auto d = FirstDifference(a, b);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->field, "n_kv_heads");
  EXPECT_EQ(d->ToString(), "n_kv_heads: expected 2, got 3");
  EXPECT_NE(a.Hash(), b.Hash());
  ModelFingerprint c = a;
  c.rope_theta = 500000.0;
  EXPECT_EQ(FirstDifference(a, c)->field, "rope_theta");
  ModelFingerprint t = a;
  t.tokenizer_sha256 = "ab";
  EXPECT_EQ(FirstDifference(a, t)->field, "tokenizer_sha256");
}

}  // namespace
}  // namespace mnemo::decoder
