// The decoder tokenizer through its dlopen()ed plugin
// (libmnemo_decoder_tokenizer_plugin.so, decoder/tokenizer.h) and the
// plugin loader it shares with the store's text plugin
// (common/plugin_loader.h): error statuses name every path tried.
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/plugin_loader.h"
#include "decoder/tokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/decoder/test_model.h"

namespace mnemo::decoder {
namespace {

using ::testing::HasSubstr;

TEST(DecoderTokenizerTest, LoadsThroughThePlugin) {
  ASSERT_TRUE(testing::ReferenceModelPresent()) << testing::ReferenceModelDir();
  auto tok = LoadSentencePieceTokenizer(testing::ReferenceModelDir() + "/tokenizer.model");
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_GT((*tok)->vocab_size(), 0);
  EXPECT_GE((*tok)->bos_id(), 0);
  auto ids = (*tok)->Encode("The whale");
  ASSERT_TRUE(ids.ok()) << ids.status();
  ASSERT_FALSE(ids->empty());
  auto text = (*tok)->Decode(*ids);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, "The whale");
  // A second load reuses the loaded plugin.
  auto again = LoadSentencePieceTokenizer(testing::ReferenceModelDir() + "/tokenizer.model");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->Encode("The whale").value(), *ids);
  EXPECT_EQ((*tok)->Decode(std::vector<int>{(*tok)->vocab_size()}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(DecoderTokenizerTest, MissingAndRefusedModels) {
  testing::TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  EXPECT_EQ(LoadSentencePieceTokenizer(dir.path() + "/absent.model").status().code(),
            absl::StatusCode::kNotFound);
  const std::string garbage = dir.path() + "/garbage.model";
  std::ofstream(garbage) << "not a sentencepiece model";
  auto tok = LoadSentencePieceTokenizer(garbage);
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kInvalidArgument) << tok.status();
  EXPECT_THAT(std::string(tok.status().message()), HasSubstr(garbage));
}

TEST(PluginLoaderTest, NamesEveryPathTried) {
  testing::TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string missing = dir.path() + "/missing.so";
  const std::string not_elf = dir.path() + "/not_elf.so";
  std::ofstream(not_elf) << "garbage";
  const std::string plugin = MNEMO_DECODER_TOKENIZER_PLUGIN_PATH;
  auto loaded = LoadPlugin("the test plugin", {missing, not_elf, plugin}, "NoSuchEntryPoint");
  ASSERT_EQ(loaded.status().code(), absl::StatusCode::kFailedPrecondition) << loaded.status();
  const std::string message(loaded.status().message());
  EXPECT_THAT(message, HasSubstr("the test plugin was not found or not loadable"));
  EXPECT_THAT(message, HasSubstr(missing + " (missing)"));
  EXPECT_THAT(message, HasSubstr(not_elf + " ("));
  EXPECT_THAT(message, HasSubstr(plugin + " (no NoSuchEntryPoint)"));

  loaded = LoadPlugin("the test plugin", {missing, plugin}, "MnemoDecoderTokenizerPluginLoad");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->path, plugin);
  EXPECT_NE(loaded->handle, nullptr);
  EXPECT_NE(loaded->symbol, nullptr);

  EXPECT_THAT(std::string(LoadPlugin("nothing", {}, "X").status().message()),
              HasSubstr("no candidate path"));
}

TEST(PluginLoaderTest, CandidateOrder) {
  ASSERT_EQ(setenv("MNEMO_PLUGIN_LOADER_TEST", "/from/env.so", 1), 0);
  std::vector<std::string> paths =
      PluginCandidatePaths("MNEMO_PLUGIN_LOADER_TEST", "/from/build.so", "libx.so");
  ASSERT_EQ(paths.size(), 4u);
  EXPECT_EQ(paths[0], "/from/env.so");
  EXPECT_EQ(paths[1], "/from/build.so");
  EXPECT_THAT(paths[2], ::testing::EndsWith("/tests/libx.so"));  // next to this test binary
  EXPECT_THAT(paths[3], ::testing::EndsWith("/lib/libx.so"));
  // An empty variable, no build path, and no path twice.
  ASSERT_EQ(setenv("MNEMO_PLUGIN_LOADER_TEST", "", 1), 0);
  paths = PluginCandidatePaths("MNEMO_PLUGIN_LOADER_TEST", nullptr, "libx.so");
  EXPECT_EQ(paths.size(), 2u);
  paths = PluginCandidatePaths("MNEMO_PLUGIN_LOADER_TEST", paths[0].c_str(), "libx.so");
  EXPECT_EQ(paths.size(), 2u);
  unsetenv("MNEMO_PLUGIN_LOADER_TEST");
}

}  // namespace
}  // namespace mnemo::decoder
