// Text support of the store: built-in encoders via the text plugin, snippets (see text.h).
#include "db/text.h"

#include <filesystem>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/plugin_loader.h"
#include "spdlog/spdlog.h"

namespace mnemo::db::text {
namespace {

constexpr char kUseLite[] = "use-lite";
constexpr uint32_t kUseLiteDim = 512;

using LoadFn = bool (*)(const char*, const char*, std::unique_ptr<TextEncoder>*, std::string*);

// Loaded encoders by (directory, name). Never erased, and the plugin is
// never unloaded: callers keep raw pointers for the life of the process.
struct Registry {
  absl::Mutex mu;
  LoadFn load ABSL_GUARDED_BY(mu) = nullptr;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<TextEncoder>> loaded
      ABSL_GUARDED_BY(mu);
};

// Loads the plugin once; returns its entry point or why it failed.
absl::StatusOr<LoadFn> LoadTextPlugin(Registry& registry)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(registry.mu) {
  if (registry.load != nullptr) return registry.load;
#ifdef MNEMO_TEXT_PLUGIN_PATH
  const char* build_path = MNEMO_TEXT_PLUGIN_PATH;
#else
  const char* build_path = nullptr;
#endif
  absl::StatusOr<LoadedPlugin> plugin = LoadPlugin(
      "the text plugin libmnemo_text_plugin.so",
      PluginCandidatePaths("MNEMO_TEXT_PLUGIN", build_path, "libmnemo_text_plugin.so"),
      "MnemoTextPluginLoad");
  if (!plugin.ok()) return plugin.status();
  registry.load = reinterpret_cast<LoadFn>(plugin->symbol);
  spdlog::info("loaded text plugin {}", plugin->path);
  return registry.load;
}

Registry& GetRegistry() {
  static Registry* registry = new Registry();
  return *registry;
}

bool IsWordChar(char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)); }

// [begin, end) of the ASCII alphanumeric runs of `s`.
std::vector<std::pair<size_t, size_t>> Words(absl::string_view s) {
  std::vector<std::pair<size_t, size_t>> out;
  size_t i = 0;
  while (i < s.size()) {
    if (!IsWordChar(s[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < s.size() && IsWordChar(s[j])) ++j;
    out.emplace_back(i, j);
    i = j;
  }
  return out;
}

}  // namespace

absl::StatusOr<uint32_t> EncoderDim(absl::string_view name) {
  if (name == kUseLite) return kUseLiteDim;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown encoder '", name, "'; known encoders: \"", kUseLite, "\""));
}

absl::StatusOr<const TextEncoder*> GetEncoder(const std::string& encoder_dir,
                                              absl::string_view name) {
  absl::StatusOr<uint32_t> dim = EncoderDim(name);
  if (!dim.ok()) return dim.status();
  const std::string unavailable =
      absl::StrCat("encoder ", name,
                   " is not available: run scripts/fetch_assets or set --assets-dir");
  if (encoder_dir.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(unavailable, " (no assets directory configured)"));
  }
  Registry& registry = GetRegistry();
  // Held while loading so that concurrent first uses load once.
  absl::MutexLock lock(&registry.mu);
  auto key = std::make_pair(encoder_dir, std::string(name));
  auto it = registry.loaded.find(key);
  if (it != registry.loaded.end()) return it->second.get();
  const std::string model_dir = absl::StrCat(encoder_dir, "/", name);
  std::error_code ec;
  if (!std::filesystem::is_directory(model_dir, ec)) {
    return absl::FailedPreconditionError(absl::StrCat(unavailable, " (", model_dir,
                                                      " does not exist)"));
  }
  absl::StatusOr<LoadFn> load = LoadTextPlugin(registry);
  if (!load.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(unavailable, " (", load.status().message(),
                                                      ")"));
  }
  std::unique_ptr<TextEncoder> loaded;
  std::string error;
  const std::string name_str(name);
  if (!(*load)(name_str.c_str(), model_dir.c_str(), &loaded, &error) || loaded == nullptr) {
    spdlog::warn("cannot load encoder {} from {}: {}", name_str, model_dir, error);
    return absl::FailedPreconditionError(
        absl::StrCat(unavailable, " (", model_dir, ": ", error, ")"));
  }
  if (static_cast<uint32_t>(loaded->dim()) != *dim) {
    return absl::FailedPreconditionError(absl::StrCat(unavailable, " (", model_dir, " has dim ",
                                                      loaded->dim(), ", expected ", *dim, ")"));
  }
  spdlog::info("loaded encoder {} from {}", name_str, model_dir);
  const TextEncoder* out = loaded.get();
  registry.loaded.emplace(std::move(key), std::move(loaded));
  return out;
}

std::string MakeSnippet(absl::string_view chunk_text, absl::string_view query,
                        const std::vector<std::pair<size_t, size_t>>& sentences) {
  absl::flat_hash_set<std::string> terms;
  for (const auto& [b, e] : Words(query)) {
    terms.insert(absl::AsciiStrToLower(query.substr(b, e - b)));
  }
  if (sentences.empty()) return "";
  for (const auto& [b, e] : sentences) {
    if (b > e || e > chunk_text.size()) return "";
  }
  size_t best = 0;
  int best_hits = -1;
  for (size_t s = 0; s < sentences.size(); ++s) {
    absl::string_view sentence =
        chunk_text.substr(sentences[s].first, sentences[s].second - sentences[s].first);
    int hits = 0;
    for (const auto& [b, e] : Words(sentence)) {
      if (terms.contains(absl::AsciiStrToLower(sentence.substr(b, e - b)))) ++hits;
    }
    if (hits > best_hits) {
      best_hits = hits;
      best = s;
    }
  }
  absl::string_view sentence =
      chunk_text.substr(sentences[best].first, sentences[best].second - sentences[best].first);
  std::string out;
  size_t pos = 0;
  for (const auto& [b, e] : Words(sentence)) {
    absl::string_view word = sentence.substr(b, e - b);
    if (!terms.contains(absl::AsciiStrToLower(word))) continue;
    absl::StrAppend(&out, sentence.substr(pos, b - pos), "[[", word, "]]");
    pos = e;
  }
  absl::StrAppend(&out, sentence.substr(pos));
  return out;
}

}  // namespace mnemo::db::text
