// Test helper: a small random-weight injection model (encoder/
// injection_model.h) as the files of its directory, for tests that need a
// model with the real format but not trained weights. The tokenizer is the
// reference decoder's committed tokenizer.model (4096 pieces).
#ifndef MNEMO_TESTS_ENCODER_TINY_INJECTION_MODEL_H_
#define MNEMO_TESTS_ENCODER_TINY_INJECTION_MODEL_H_

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "decoder/safetensors.h"
#include "encoder/injection_weights.h"
#include "nlohmann/json.hpp"

namespace mnemo::encoder::testing {

inline std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

inline std::string DecoderTokenizerPath() {
  return std::string(MNEMO_SOURCE_DIR) + "/decoder/models/mnemo-ref-4m/tokenizer.model";
}

// Dimensions of the tiny model (config.json's fields).
struct TinyDims {
  int encoder_dim = 12, decoder_dim = 16, ffn = 24, max_tokens = 10, memory_tokens = 3;
  int layers = 2, heads = 2, pq_m = 4, pq_nbits = 4, vocab = 4096;
};

// inject.safetensors of random weights; `skip` names a tensor to leave out
// and `reshape` one to write with a wrong shape (for the bad-input tests).
inline std::string TinyWeights(const TinyDims& d, uint32_t seed = 7, const std::string& skip = "",
                               const std::string& reshape = "") {
  std::mt19937 rng(seed);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  const int64_t D = d.decoder_dim, E = d.encoder_dim, F = d.ffn;
  decoder::SafetensorsWriter w;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, float scale, float mean) {
    if (name == skip) return;
    if (name == reshape) shape.back() += 1;
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    std::vector<float> data(n);
    for (float& x : data) x = mean + scale * gauss(rng);
    w.AddF32(name, shape, data);
  };
  add("proj.w1", {D, E}, 0.3f, 0.0f);
  add("proj.b1", {D}, 0.1f, 0.0f);
  add("proj.w2", {D, D}, 0.3f, 0.0f);
  add("proj.b2", {D}, 0.1f, 0.0f);
  add("comp.tok_emb", {d.vocab, D}, 0.5f, 0.0f);
  add("comp.pos_emb", {d.max_tokens, D}, 0.1f, 0.0f);
  for (int l = 0; l < d.layers; ++l) {
    const std::string p = absl::StrCat("comp.layers.", l, ".");
    add(p + "norm1", {D}, 0.1f, 1.0f);
    add(p + "wqkv", {3 * D, D}, 0.3f, 0.0f);
    add(p + "bqkv", {3 * D}, 0.1f, 0.0f);
    add(p + "wo", {D, D}, 0.2f, 0.0f);
    add(p + "bo", {D}, 0.1f, 0.0f);
    add(p + "norm2", {D}, 0.1f, 1.0f);
    add(p + "w1", {F, D}, 0.2f, 0.0f);
    add(p + "b1", {F}, 0.1f, 0.0f);
    add(p + "w2", {D, F}, 0.2f, 0.0f);
    add(p + "b2", {D}, 0.1f, 0.0f);
  }
  add("comp.slots", {d.memory_tokens, D}, 1.0f, 0.0f);
  add("comp.xnorm_q", {D}, 0.1f, 1.0f);
  add("comp.xnorm_kv", {D}, 0.1f, 1.0f);
  for (const char* n : {"q", "k", "v", "o"}) {
    add(absl::StrCat("comp.xattn.w", n), {D, D}, 0.3f, 0.0f);
    add(absl::StrCat("comp.xattn.b", n), {D}, 0.1f, 0.0f);
  }
  add("comp.out_norm", {D}, 0.1f, 1.0f);
  add("comp.out.w", {D, D}, 0.3f, 0.0f);
  add("comp.out.b", {D}, 0.1f, 0.0f);
  add("live.wq", {D, E}, 0.3f, 0.0f);
  add("live.bq", {D}, 0.1f, 0.0f);
  add("live.w1", {D, 2 * D}, 0.3f, 0.0f);
  add("live.b1", {D}, 0.1f, 0.0f);
  add("live.w2", {D, D}, 0.3f, 0.0f);
  add("live.b2", {D}, 0.1f, 0.0f);
  add("rerank.w1", {D, 3 * D}, 0.3f, 0.0f);
  add("rerank.b1", {D}, 0.1f, 0.0f);
  add("rerank.w2", {1, D}, 0.3f, 0.0f);
  add("rerank.b2", {1}, 0.1f, 0.0f);
  add("pq.centroids", {d.pq_m, int64_t{1} << d.pq_nbits, D / d.pq_m}, 1.0f, 0.0f);
  char tmpl[] = "/tmp/mnemo-tiny-inject-XXXXXX";
  const int fd = mkstemp(tmpl);
  if (fd >= 0) close(fd);
  const std::string path = tmpl;
  std::string bytes;
  if (w.Write(path).ok()) bytes = ReadWholeFile(path);
  std::filesystem::remove(path);
  return bytes;
}

inline nlohmann::json TinyConfig(const TinyDims& d, const std::string& weights_bytes) {
  return {{"name", "tiny-inject"},
          {"format", 1},
          {"encoder", "use-lite"},
          {"encoder_dim", d.encoder_dim},
          {"encoder_sha256", std::string(64, 'a')},
          {"decoder", "mnemo-ref-4m"},
          {"decoder_dim", d.decoder_dim},
          {"decoder_fingerprint", "tiny-decoder-fingerprint"},
          {"decoder_weights_sha256", std::string(64, 'b')},
          {"tokenizer", "tokenizer.model"},
          {"memory_tokens", d.memory_tokens},
          {"compressor_layers", d.layers},
          {"compressor_heads", d.heads},
          {"compressor_ffn", d.ffn},
          {"compressor_max_tokens", d.max_tokens},
          {"norm_eps", 1e-5},
          {"pq_m", d.pq_m},
          {"pq_nbits", d.pq_nbits},
          {"weights", "inject.safetensors"},
          {"weights_sha256", Sha256Hex(weights_bytes)}};
}

// config.json, inject.safetensors and tokenizer.model of a tiny model.
inline std::map<std::string, std::string> TinyModelFiles(const TinyDims& d = {},
                                                         uint32_t seed = 7) {
  std::map<std::string, std::string> files;
  files["inject.safetensors"] = TinyWeights(d, seed);
  files["config.json"] = TinyConfig(d, files["inject.safetensors"]).dump(1);
  files["tokenizer.model"] = ReadWholeFile(DecoderTokenizerPath());
  return files;
}

// Writes `files` into `dir` (created).
inline void WriteFiles(const std::string& dir, const std::map<std::string, std::string>& files) {
  std::filesystem::create_directories(dir);
  for (const auto& [name, bytes] : files) {
    std::ofstream out(std::filesystem::path(dir) / name, std::ios::binary);
    out << bytes;
  }
}

}  // namespace mnemo::encoder::testing

#endif  // MNEMO_TESTS_ENCODER_TINY_INJECTION_MODEL_H_
