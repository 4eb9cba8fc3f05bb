// The key text and digests of API keys (server/api_key_secret.h).
#include "server/api_key_secret.h"

#include <string>

#include "gtest/gtest.h"

namespace mnemo::server {
namespace {

TEST(ApiKeySecretTest, KeysRoundTripAndMalformedOnesAreRejected) {
  auto id = RandomHex(8);
  auto secret = RandomHex(32);
  ASSERT_TRUE(id.ok() && secret.ok());
  ASSERT_EQ(id->size(), 16u);
  ASSERT_EQ(secret->size(), 64u);
  const std::string text = FormatKey({*id, *secret});
  auto parsed = ParseKey(text);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->id, *id);
  EXPECT_EQ(parsed->secret, *secret);
  EXPECT_FALSE(ParseKey(text.substr(1)).has_value());
  EXPECT_FALSE(ParseKey(text + "0").has_value());
  std::string upper = text;
  upper.back() = 'G';
  EXPECT_FALSE(ParseKey(upper).has_value());
  EXPECT_FALSE(ParseKey("").has_value());
  EXPECT_NE(*RandomHex(32), *secret);
}

TEST(ApiKeySecretTest, DigestsDependOnSaltAndSecret) {
  const std::string d = SaltedDigest("00ff", "secret");
  EXPECT_EQ(d.size(), 64u);
  EXPECT_EQ(d, SaltedDigest("00ff", "secret"));
  EXPECT_NE(d, SaltedDigest("00fe", "secret"));
  EXPECT_NE(d, SaltedDigest("00ff", "secreT"));
  // SHA-256("abc"), FIPS 180-2's first example.
  EXPECT_EQ(SaltedDigest("", "abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(ApiKeySecretTest, ConstantTimeEquals) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abcd"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
}

}  // namespace
}  // namespace mnemo::server
