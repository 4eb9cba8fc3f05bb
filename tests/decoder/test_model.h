// Test helpers: the committed reference model's directory, and a small
// random-weight model written to a temporary directory (no tokenizer), for
// tests that need a model but not trained weights.
#ifndef MNEMO_TESTS_DECODER_TEST_MODEL_H_
#define MNEMO_TESTS_DECODER_TEST_MODEL_H_

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "decoder/safetensors.h"
#include "nlohmann/json.hpp"

namespace mnemo::decoder::testing {

// $MNEMO_DECODER_MODEL_DIR, else <source>/decoder/models/mnemo-ref-4m.
inline std::string ReferenceModelDir() {
  if (const char* env = std::getenv("MNEMO_DECODER_MODEL_DIR"); env != nullptr && *env) return env;
  return std::string(MNEMO_SOURCE_DIR) + "/decoder/models/mnemo-ref-4m";
}

inline bool ReferenceModelPresent() {
  return std::filesystem::exists(ReferenceModelDir() + "/config.json");
}

// A fresh directory under $TMPDIR (or /tmp); removed by the destructor.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = absl::StrCat(base != nullptr && *base ? base : "/tmp", "/mnemo-dec-XXXXXX");
    path_ = mkdtemp(tmpl.data()) != nullptr ? tmpl : "";
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline nlohmann::json TinyConfigJson() {
  return {{"name", "tiny-random"},  {"architecture", "llama"}, {"vocab_size", 97},
          {"dim", 48},              {"n_layers", 2},           {"n_heads", 6},
          {"n_kv_heads", 2},        {"head_dim", 8},           {"ffn_dim", 64},
          {"max_seq_len", 64},      {"rope_theta", 10000.0},   {"rope_style", "half"},
          {"norm_eps", 1e-5},       {"activation", "swiglu"},  {"tie_embeddings", true},
          {"dtype", "float32"},     {"bos_id", 1},             {"eos_id", 2},
          {"unk_id", 0},            {"tokenizer", "tokenizer.model"},
          {"tokenizer_sha256", "00"}, {"weights", "model.safetensors"}};
}

// Writes config.json and model.safetensors of a random model of `config`.
inline void WriteRandomModel(const std::string& dir, const nlohmann::json& config,
                             uint32_t seed = 42) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  const int64_t V = config["vocab_size"], D = config["dim"], L = config["n_layers"],
                H = config["n_heads"], KVH = config["n_kv_heads"], hd = config["head_dim"],
                F = config["ffn_dim"];
  SafetensorsWriter w;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, float scale, float mean) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<float> data(n);
    for (float& x : data) x = mean + scale * gauss(rng);
    w.AddF32(name, shape, data);
  };
  add("tok_embeddings.weight", {V, D}, 0.3f, 0.0f);
  add("norm.weight", {D}, 0.1f, 1.0f);
  for (int64_t l = 0; l < L; ++l) {
    const std::string p = absl::StrCat("layers.", l, ".");
    const float s = 1.0f / std::sqrt(static_cast<float>(D));
    add(p + "attn_norm.weight", {D}, 0.1f, 1.0f);
    add(p + "attn.wq.weight", {H * hd, D}, 2 * s, 0.0f);
    add(p + "attn.wk.weight", {KVH * hd, D}, 2 * s, 0.0f);
    add(p + "attn.wv.weight", {KVH * hd, D}, s, 0.0f);
    add(p + "attn.wo.weight", {D, H * hd}, 0.5f / std::sqrt(static_cast<float>(H * hd)), 0.0f);
    add(p + "ffn_norm.weight", {D}, 0.1f, 1.0f);
    add(p + "ffn.w1.weight", {F, D}, s, 0.0f);
    add(p + "ffn.w3.weight", {F, D}, s, 0.0f);
    add(p + "ffn.w2.weight", {D, F}, 0.5f / std::sqrt(static_cast<float>(F)), 0.0f);
  }
  std::filesystem::create_directories(dir);
  if (!w.Write(dir + "/model.safetensors").ok()) std::abort();
  std::ofstream(dir + "/config.json") << config.dump(2);
}

}  // namespace mnemo::decoder::testing

#endif  // MNEMO_TESTS_DECODER_TEST_MODEL_H_
