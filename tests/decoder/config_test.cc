#include "decoder/config.h"

#include <string>

#include "gtest/gtest.h"
#include "tests/decoder/test_model.h"

namespace mnemo::decoder {
namespace {

absl::StatusCode ParseCode(const nlohmann::json& j) {
  return ParseModelConfig(j.dump()).status().code();
}

TEST(ModelConfigTest, ParsesAValidConfig) {
  auto c = ParseModelConfig(testing::TinyConfigJson().dump());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->n_heads, 6);
  EXPECT_EQ(c->n_kv_heads, 2);
  EXPECT_EQ(c->rope_theta, 10000.0);
  EXPECT_EQ(c->bos_id, 1);
}

TEST(ModelConfigTest, MissingOrMistypedKeyIsNamed) {
  nlohmann::json j = testing::TinyConfigJson();
  j.erase("n_kv_heads");
  auto c = ParseModelConfig(j.dump());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find("n_kv_heads"), std::string::npos) << c.status();
  j = testing::TinyConfigJson();
  j["dim"] = "256";
  EXPECT_EQ(ParseCode(j), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseModelConfig("{not json").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ModelConfigTest, RulesAreEnforced) {
  const std::pair<const char*, nlohmann::json> bad[] = {
      {"n_kv_heads", 4},          // does not divide 6
      {"head_dim", 7},            // odd
      {"dim", 0},                 // not positive
      {"architecture", "gpt2"},   // unsupported
      {"rope_style", "interleaved"},
      {"activation", "gelu"},
      {"tie_embeddings", false},
      {"dtype", "bfloat16"},
      {"rope_theta", -1.0},
      {"norm_eps", 0.0},
      {"bos_id", 97},             // outside the vocabulary
  };
  for (const auto& [key, value] : bad) {
    nlohmann::json j = testing::TinyConfigJson();
    j[key] = value;
    EXPECT_EQ(ParseCode(j), absl::StatusCode::kInvalidArgument) << key << " = " << value;
  }
}

TEST(ModelConfigTest, MissingDirectoryIsNotFound) {
  EXPECT_EQ(LoadModelConfig("/nonexistent/model").status().code(), absl::StatusCode::kNotFound);
  testing::TempDir dir;
  EXPECT_EQ(LoadModelConfig(dir.path()).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace mnemo::decoder
