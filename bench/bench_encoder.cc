// bench_encoder: throughput of the built-in sentence encoder (USE-lite)
// against the machine's OpenBLAS sgemm ceiling, measured in the same run.
//
// Reports sentences/s, tokens/s and achieved GFLOP/s of SentenceEncoder::Encode
// on real sentences (the SAP Fiori docs corpus of scripts/fetch_assets, or
// any text file), and the GFLOP/s of cblas_sgemm on (a) square 1024 matrices
// and (b) the encoder's own dominant shape. The ratio encoder / sgemm is the
// figure of merit (goal >= 0.5).
//
// On a shared machine both sides are disturbed by whatever else runs, so the
// run is made of --rounds rounds, each encoding every sentence and then
// timing both sgemm shapes; the ratio is taken between the best encoder round
// and the best sgemm round, and the spread over rounds is printed.
//
// FLOPs are counted from the model's weight shapes (model.json): per token,
// 2 * in * out for every projection matrix (embedding lookup and the timing
// signal excluded); per text, 4 * T^2 * width for each attention layer's
// scores and weighted sum, and 2 * 512 * 512 for the pooled tanh layer.
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "encoder/chunker.h"
#include "encoder/sentence_encoder.h"
#include "nlohmann/json.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

struct Flags {
  std::string model_dir;
  std::string corpus = ".assets/fiori/chunks.jsonl";
  int sentences = 2000;
  int batch = 64;
  int rounds = 3;
  bool quick = false;
};

void Usage() {
  std::cerr << "usage: bench_encoder [flags]\n"
               "  --model-dir DIR   USE-lite assets (default $MNEMO_ASSETS_DIR/use-lite or "
               ".assets/use-lite)\n"
               "  --corpus FILE     .jsonl with a \"text\" field per line, or plain text\n"
               "                    (default .assets/fiori/chunks.jsonl)\n"
               "  --sentences N     sentences to encode (default 2000)\n"
               "  --batch N         sentences per Encode call (default 64)\n"
               "  --rounds N        encoder and sgemm rounds, best and spread reported (default 3)\n"
               "  --quick           200 sentences, shorter sgemm runs\n";
}

bool ParseFlags(int argc, char** argv, Flags* flags) {
  const char* env = std::getenv("MNEMO_ASSETS_DIR");
  flags->model_dir = std::string(env != nullptr && *env != '\0' ? env : ".assets") + "/use-lite";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (arg == "--model-dir") {
      flags->model_dir = value();
    } else if (arg == "--corpus") {
      flags->corpus = value();
    } else if (arg == "--sentences") {
      flags->sentences = std::atoi(value().c_str());
    } else if (arg == "--batch") {
      flags->batch = std::atoi(value().c_str());
    } else if (arg == "--rounds") {
      flags->rounds = std::atoi(value().c_str());
    } else if (arg == "--quick") {
      flags->quick = true;
      flags->sentences = 200;
      flags->rounds = 1;
    } else {
      Usage();
      return false;
    }
  }
  if (flags->sentences < 1 || flags->batch < 1 || flags->rounds < 1) {
    Usage();
    return false;
  }
  return true;
}

// Sentences of the corpus, in order, repeated if the corpus is short.
std::vector<std::string> LoadSentences(const std::string& path, int want) {
  std::ifstream in(path);
  std::vector<std::string> texts;
  std::string line;
  while (std::getline(in, line)) {
    if (absl::EndsWith(path, ".jsonl")) {
      auto record = nlohmann::json::parse(line, nullptr, false);
      if (record.is_object() && record.contains("text") && record["text"].is_string()) {
        texts.push_back(record["text"].get<std::string>());
      }
    } else {
      texts.push_back(line);
    }
  }
  std::vector<std::string> sentences;
  for (const std::string& text : texts) {
    for (auto [b, e] : mnemo::encoder::SplitSentences(text)) {
      sentences.push_back(text.substr(b, e - b));
    }
  }
  if (sentences.empty()) return sentences;
  const size_t distinct = sentences.size();
  for (size_t i = 0; sentences.size() < static_cast<size_t>(want); ++i) {
    sentences.push_back(sentences[i % distinct]);
  }
  sentences.resize(want);
  return sentences;
}

// Projection FLOPs per token, attention widths and the per-text tanh cost,
// read from model.json's weight manifest.
struct FlopModel {
  double per_token = 0;
  std::vector<int> attention_widths;  // one per layer: q width
  double per_text = 0;
};

FlopModel ReadFlopModel(const std::string& model_dir) {
  FlopModel model;
  std::ifstream in(model_dir + "/model.json");
  auto json = nlohmann::json::parse(in, nullptr, false);
  if (!json.is_object()) return model;
  for (const auto& group : json["weightsManifest"]) {
    for (const auto& weight : group["weights"]) {
      const std::string name = weight["name"].get<std::string>();
      std::vector<long> shape = weight["shape"].get<std::vector<long>>();
      if (shape.size() < 2) continue;
      if (absl::StrContains(name, "Embeddings") || absl::StrContains(name, "TimingSignal")) {
        continue;
      }
      const double in_dim = static_cast<double>(shape[shape.size() - 2]);
      const double out_dim = static_cast<double>(shape.back());
      if (absl::StrContains(name, "tanh_layer")) {
        model.per_text += 2 * in_dim * out_dim;
        continue;
      }
      model.per_token += 2 * in_dim * out_dim;
      if (absl::StrContains(name, "qkv_transform")) {
        model.attention_widths.push_back(static_cast<int>(out_dim / 3));
      }
    }
  }
  return model;
}

double TextFlops(const FlopModel& model, int tokens) {
  double flops = model.per_token * tokens + model.per_text;
  for (int width : model.attention_widths) {
    flops += 4.0 * tokens * tokens * width;  // Q K^T and P V
  }
  return flops;
}

// GFLOP/s of C = A * B with A m x k, B k x n, over at least `min_seconds`.
double SgemmGflops(int m, int n, int k, double min_seconds) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1, 1);
  std::vector<float> a(static_cast<size_t>(m) * k), b(static_cast<size_t>(k) * n),
      c(static_cast<size_t>(m) * n);
  for (float& x : a) x = dist(rng);
  for (float& x : b) x = dist(rng);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a.data(), k, b.data(), n,
              0.0f, c.data(), n);  // warm-up
  int reps = 0;
  const auto start = Clock::now();
  double elapsed = 0;
  do {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a.data(), k, b.data(),
                n, 0.0f, c.data(), n);
    ++reps;
    elapsed = Seconds(start);
  } while (elapsed < min_seconds);
  return 2.0 * m * n * k * reps / elapsed / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  if (!ParseFlags(argc, argv, &flags)) return 2;

  auto encoder = mnemo::encoder::SentenceEncoder::Load(flags.model_dir);
  if (!encoder.ok()) {
    std::cerr << "bench_encoder: cannot load the encoder from " << flags.model_dir << ": "
              << encoder.status() << "\n(run scripts/fetch_assets first)\n";
    return 1;
  }
  const std::vector<std::string> sentences = LoadSentences(flags.corpus, flags.sentences);
  if (sentences.empty()) {
    std::cerr << "bench_encoder: no sentences in " << flags.corpus
              << " (run scripts/fetch_assets first)\n";
    return 1;
  }
  const FlopModel flop_model = ReadFlopModel(flags.model_dir);

  // Work: tokens each sentence feeds the network (clipped like the model).
  double flops = 0;
  long tokens = 0;
  for (const std::string& s : sentences) {
    auto ids = (*encoder)->tokenizer().EncodePrefix(s, (*encoder)->max_tokens());
    const int t = ids.ok() ? static_cast<int>(ids->size()) : 0;
    tokens += t;
    flops += TextFlops(flop_model, t);
  }

  // Warm-up call, then the timed run.
  {
    std::vector<std::string> warm(sentences.begin(),
                                  sentences.begin() + std::min<size_t>(sentences.size(), 8));
    auto ignored = (*encoder)->Encode(warm);
    if (!ignored.ok()) {
      std::cerr << "bench_encoder: " << ignored.status() << "\n";
      return 1;
    }
  }
  // One round: every sentence through Encode, then both sgemm shapes.
  const double sgemm_seconds = flags.quick ? 0.3 : 1.0;
  // The encoder's largest product: a pass of tokens times the FFN's 512 x 1536.
  const int pass_tokens = static_cast<int>(std::min<long>(tokens, 4096));
  std::vector<double> encode_times, squares, shapeds;
  for (int round = 0; round < flags.rounds; ++round) {
    const auto start = Clock::now();
    for (size_t i = 0; i < sentences.size(); i += flags.batch) {
      const size_t end = std::min(sentences.size(), i + static_cast<size_t>(flags.batch));
      std::vector<std::string> batch(sentences.begin() + i, sentences.begin() + end);
      auto out = (*encoder)->Encode(batch);
      if (!out.ok()) {
        std::cerr << "bench_encoder: " << out.status() << "\n";
        return 1;
      }
    }
    encode_times.push_back(Seconds(start));
    squares.push_back(SgemmGflops(1024, 1024, 1024, sgemm_seconds));
    shapeds.push_back(SgemmGflops(std::max(pass_tokens, 1), 1536, 512, sgemm_seconds));
  }
  const double encode_seconds = *std::min_element(encode_times.begin(), encode_times.end());
  const double slowest = *std::max_element(encode_times.begin(), encode_times.end());
  const double encoder_gflops = flops / encode_seconds / 1e9;
  const double square = *std::max_element(squares.begin(), squares.end());
  const double shaped = *std::max_element(shapeds.begin(), shapeds.end());
  auto spread = [](const std::vector<double>& v) {
    return std::make_pair(*std::min_element(v.begin(), v.end()),
                          *std::max_element(v.begin(), v.end()));
  };

  std::printf("bench_encoder: %zu sentences, %ld tokens (%.1f per sentence), batch %d, %d round%s\n",
              sentences.size(), tokens, static_cast<double>(tokens) / sentences.size(),
              flags.batch, flags.rounds, flags.rounds == 1 ? "" : "s");
  std::printf("  model FLOPs: %.2f MFLOP per token in projections, attention widths",
              flop_model.per_token / 1e6);
  for (int w : flop_model.attention_widths) std::printf(" %d", w);
  std::printf(", %.3f GFLOP in all\n", flops / 1e9);
  std::printf("  %-34s %10s %12s %10s %17s\n", "mode (best round)", "seconds", "per second",
              "GFLOP/s", "GFLOP/s spread");
  std::printf("  %-34s %10.3f %9.0f s/s %10.1f %8.1f .. %6.1f\n", "encoder (sentences)",
              encode_seconds, sentences.size() / encode_seconds, encoder_gflops,
              flops / slowest / 1e9, encoder_gflops);
  std::printf("  %-34s %10s %9.0f t/s %10s\n", "encoder (tokens)", "", tokens / encode_seconds,
              "");
  std::printf("  %-34s %10s %12s %10.1f %8.1f .. %6.1f\n", "sgemm 1024x1024x1024", "", "", square,
              spread(squares).first, spread(squares).second);
  char shape_name[64];
  std::snprintf(shape_name, sizeof shape_name, "sgemm %dx1536x512 (encoder FFN)", pass_tokens);
  std::printf("  %-34s %10s %12s %10.1f %8.1f .. %6.1f\n", shape_name, "", "", shaped,
              spread(shapeds).first, spread(shapeds).second);
  std::printf("  encoder / sgemm peak: %.2f (square), %.2f (encoder shape); goal >= 0.5\n",
              encoder_gflops / square, encoder_gflops / shaped);
  return 0;
}
