// LoadSentencePieceTokenizer: the SentencePiece tokenizer from the dlopen()ed
// libmnemo_decoder_tokenizer_plugin.so (see tokenizer.h).
#include "decoder/tokenizer.h"

#include <filesystem>
#include <mutex>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/plugin_loader.h"

namespace mnemo::decoder {
namespace {

constexpr char kPluginFile[] = "libmnemo_decoder_tokenizer_plugin.so";

using LoadFn = bool (*)(const char*, std::unique_ptr<Tokenizer>*, std::string*);

// Loads the plugin once per process (a failure is retried on the next
// call); it is never unloaded, since the tokenizers' code lives in it.
absl::StatusOr<LoadFn> LoadTokenizerPlugin() {
  static std::mutex mu;
  static LoadFn load = nullptr;
  std::lock_guard<std::mutex> lock(mu);
  if (load != nullptr) return load;
#ifdef MNEMO_DECODER_TOKENIZER_PLUGIN_PATH
  const char* build_path = MNEMO_DECODER_TOKENIZER_PLUGIN_PATH;
#else
  const char* build_path = nullptr;
#endif
  absl::StatusOr<LoadedPlugin> plugin =
      LoadPlugin(absl::StrCat("the decoder tokenizer plugin ", kPluginFile),
                 PluginCandidatePaths("MNEMO_DECODER_TOKENIZER_PLUGIN", build_path, kPluginFile),
                 "MnemoDecoderTokenizerPluginLoad");
  if (!plugin.ok()) return plugin.status();
  load = reinterpret_cast<LoadFn>(plugin->symbol);
  return load;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadSentencePieceTokenizer(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat("tokenizer model ", path, " does not exist"));
  }
  absl::StatusOr<LoadFn> load = LoadTokenizerPlugin();
  if (!load.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot load tokenizer ", path, ": ", load.status().message()));
  }
  std::unique_ptr<Tokenizer> tokenizer;
  std::string error;
  if (!(*load)(path.c_str(), &tokenizer, &error) || tokenizer == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("cannot load tokenizer ", path, ": ", error));
  }
  return tokenizer;
}

}  // namespace mnemo::decoder
