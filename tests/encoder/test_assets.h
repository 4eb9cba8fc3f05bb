// Paths of the encoder assets and fixtures, shared by the encoder tests.
#ifndef MNEMO_TESTS_ENCODER_TEST_ASSETS_H_
#define MNEMO_TESTS_ENCODER_TEST_ASSETS_H_

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "nlohmann/json.hpp"

namespace mnemo::encoder::test {

// .assets/use-lite of the source tree, or $MNEMO_ASSETS_DIR/use-lite.
inline std::string UseLiteDir() {
  const char* env = std::getenv("MNEMO_ASSETS_DIR");
  const std::string assets = (env != nullptr && *env != '\0') ? env : MNEMO_SOURCE_DIR "/.assets";
  return assets + "/use-lite";
}

inline bool HaveUseLite() {
  const std::filesystem::path dir(UseLiteDir());
  return std::filesystem::exists(dir / "model.json") && std::filesystem::exists(dir / "vocab.json");
}

inline constexpr const char* kMissingAssets =
    "USE-lite assets not found (run scripts/fetch_encoder, or set MNEMO_ASSETS_DIR)";

// The committed reference outputs (scripts/encoder_reference/make_golden.js).
inline nlohmann::json LoadGolden() {
  std::ifstream in(MNEMO_SOURCE_DIR "/tests/encoder/testdata/use_lite_golden.json");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return nlohmann::json::parse(buffer.str(), nullptr, /*allow_exceptions=*/false);
}

}  // namespace mnemo::encoder::test

#endif  // MNEMO_TESTS_ENCODER_TEST_ASSETS_H_
