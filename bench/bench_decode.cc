// Reference decoder throughput against the machine's ceilings, measured in
// the same run:
//   decode  tokens/s vs memory bandwidth / bytes read per token (every
//           weight once + the KV cache at the mean context);
//   prefill tokens/s vs the time OpenBLAS sgemm alone takes for the
//           prefill's projection shapes (the GEMM ceiling).
// On the GPU too when built with CUDA and a device is present.
//
//   build/bin/bench_decode --model decoder/models/mnemo-ref-4m
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "decoder/model.h"
#include "decoder/sampling.h"
#include "decoder/session.h"
#include "nlohmann/json.hpp"

extern "C" int openblas_get_num_threads(void);
extern "C" void openblas_set_num_threads(int);
#include <omp.h>

namespace {

using Clock = std::chrono::steady_clock;
using mnemo::decoder::Device;
using mnemo::decoder::LogitsMode;
using mnemo::decoder::Model;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Best-of-`reps` time of fn().
template <typename F>
double Best(int reps, F&& fn) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    fn();
    best = std::min(best, Seconds(t0, Clock::now()));
  }
  return best;
}

// Read bandwidth (bytes/s) over a buffer of `bytes`: the best pass of one
// thread and of all OpenMP threads (on a loaded machine the threaded pass
// can lose to the single one), after a warm-up, so the buffer sits in the
// memory level (cache or DRAM) a buffer of that size lives in.
double ReadBandwidth(size_t bytes, int reps) {
  std::vector<uint64_t> buf(bytes / 8 + 1);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = i * 0x9E3779B97F4A7C15ull;
  volatile uint64_t sink = 0;
  const int64_t n = static_cast<int64_t>(buf.size());
  auto threaded = [&] {
    uint64_t acc = 0;
#pragma omp parallel for reduction(^ : acc) schedule(static)
    for (int64_t i = 0; i < n; ++i) acc ^= buf[i];
    sink = sink ^ acc;
  };
  auto single = [&] {
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (int64_t i = 0; i + 3 < n; i += 4) {
      a0 ^= buf[i];
      a1 ^= buf[i + 1];
      a2 ^= buf[i + 2];
      a3 ^= buf[i + 3];
    }
    sink = sink ^ a0 ^ a1 ^ a2 ^ a3;
  };
  threaded();
  single();
  const double t = std::min(Best(reps, threaded), Best(reps, single));
  return static_cast<double>(n * 8) / t;
}

// Seconds OpenBLAS sgemm takes for y[T, out] = x[T, in] w[out, in]^T.
double SgemmSeconds(int T, int out, int in, int reps) {
  std::vector<float> x(static_cast<size_t>(T) * in, 0.01f), w(static_cast<size_t>(out) * in, 0.02f),
      y(static_cast<size_t>(T) * out);
  auto run = [&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, out, in, 1.0f, x.data(), in, w.data(),
                in, 0.0f, y.data(), out);
  };
  run();
  return Best(reps, run);
}

struct Throughput {
  double prefill_tps = 0;
  double decode_tps = 0;
};

// Prefill `prompt` from an empty cache (best of reps), then decode
// `decode_tokens` greedily one at a time after it.
Throughput Measure(mnemo::decoder::DecodeSession& s, const std::vector<int32_t>& prompt,
                   int decode_tokens, int reps) {
  std::vector<float> logits;
  Throughput t;
  const double pre = Best(reps, [&] {
    s.Reset();
    if (!s.Append(prompt, LogitsMode::kLast, &logits).ok()) std::abort();
  });
  t.prefill_tps = prompt.size() / pre;
  double dec = 1e30;
  for (int r = 0; r < reps; ++r) {
    s.Reset();
    if (!s.Append(prompt, LogitsMode::kLast, &logits).ok()) std::abort();
    const auto t0 = Clock::now();
    for (int i = 0; i < decode_tokens; ++i) {
      const int32_t next = mnemo::decoder::ArgMax(logits);
      if (!s.Append({&next, 1}, LogitsMode::kLast, &logits).ok()) std::abort();
    }
    dec = std::min(dec, Seconds(t0, Clock::now()));
  }
  t.decode_tps = decode_tokens / dec;
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Reference decoder prefill/decode throughput vs bandwidth and sgemm ceilings"};
  std::string model_dir = "decoder/models/mnemo-ref-4m";
  int prompt_tokens = 256, decode_tokens = 128, reps = 5;
  app.add_option("--model", model_dir, "Model directory")->capture_default_str();
  app.add_option("--prompt-tokens", prompt_tokens, "Tokens prefilled")->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--decode-tokens", decode_tokens, "Tokens decoded after the prompt")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--reps", reps, "Repetitions (best is kept)")->capture_default_str()
      ->check(CLI::PositiveNumber);
  int threads = 0;
  app.add_option("--threads", threads,
                 "BLAS and OpenMP threads (0 = the libraries' default; on a loaded shared "
                 "machine 1 is often fastest)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (threads > 0) {
    openblas_set_num_threads(threads);
    omp_set_num_threads(threads);
  }

  auto loaded = Model::Load(model_dir);
  if (!loaded.ok()) {
    std::fprintf(stderr, "error: %s\n", loaded.status().ToString().c_str());
    return 1;
  }
  const Model& model = **loaded;
  const auto& c = model.config();
  if (prompt_tokens + decode_tokens > c.max_seq_len) {
    std::fprintf(stderr, "error: --prompt-tokens + --decode-tokens must be <= %d\n",
                 c.max_seq_len);
    return 2;
  }
  std::vector<int32_t> prompt(prompt_tokens);
  for (int i = 0; i < prompt_tokens; ++i) prompt[i] = (i * 131 + 7) % c.vocab_size;

  std::printf("model %s: %lld params, %.1f MB fp32, %d layers, dim %d, %d/%d heads, ffn %d\n",
              c.name.c_str(), static_cast<long long>(model.num_params()),
              model.weight_bytes() / 1e6, c.n_layers, c.dim, c.n_heads, c.n_kv_heads, c.ffn_dim);
  std::printf("prompt %d tokens, decode %d tokens, best of %d, OpenBLAS threads %d\n",
              prompt_tokens, decode_tokens, reps, openblas_get_num_threads());

  // --- ceilings ---
  const double bw_weights = ReadBandwidth(model.weight_bytes(), 50);
  const double bw_dram = ReadBandwidth(size_t{512} << 20, 5);
  const double mean_ctx = prompt_tokens + decode_tokens / 2.0;
  const double kv_bytes = 2.0 * c.n_layers * c.n_kv_heads * c.head_dim * 4 * mean_ctx;
  const double bytes_per_token = model.weight_bytes() + kv_bytes;
  const double decode_bound = bw_weights / bytes_per_token;
  const double decode_bound_dram = bw_dram / bytes_per_token;
  const int QD = c.n_heads * c.head_dim, KVD = c.n_kv_heads * c.head_dim;
  const int T = prompt_tokens;
  double gemm_s = 0;
  for (auto [o, i] : {std::pair{QD, c.dim}, std::pair{KVD, c.dim}, std::pair{KVD, c.dim},
                      std::pair{c.dim, QD}, std::pair{c.ffn_dim, c.dim},
                      std::pair{c.ffn_dim, c.dim}, std::pair{c.dim, c.ffn_dim}}) {
    gemm_s += c.n_layers * SgemmSeconds(T, o, i, reps);
  }
  const double gemm_flops =
      2.0 * T * c.n_layers *
      (static_cast<double>(QD) * c.dim * 2 + 2.0 * KVD * c.dim + 3.0 * c.ffn_dim * c.dim);
  const double prefill_bound = T / gemm_s;
  std::printf("ceilings: read bandwidth %.1f GB/s at the weights' size (%.1f GB/s at 512 MB, "
              "DRAM)\n", bw_weights / 1e9, bw_dram / 1e9);
  std::printf("          bytes per decoded token %.2f MB -> decode bound %.0f tok/s "
              "(%.0f tok/s from DRAM)\n", bytes_per_token / 1e6, decode_bound, decode_bound_dram);
  std::printf("          sgemm at the prefill shapes (T=%d): %.1f GFLOP/s -> prefill bound "
              "%.0f tok/s (projections only)\n", T, gemm_flops / gemm_s / 1e9, prefill_bound);

  nlohmann::json out = {{"model", c.name},
                        {"params", model.num_params()},
                        {"prompt_tokens", prompt_tokens},
                        {"decode_tokens", decode_tokens},
                        {"read_bw_gbs", bw_weights / 1e9},
                        {"dram_bw_gbs", bw_dram / 1e9},
                        {"sgemm_gflops", gemm_flops / gemm_s / 1e9},
                        {"decode_bound_tps", decode_bound},
                        {"decode_bound_dram_tps", decode_bound_dram},
                        {"prefill_bound_tps", prefill_bound}};

  // --- CPU ---
  auto cpu = mnemo::decoder::NewDecodeSession(model, Device::kCpu);
  if (!cpu.ok()) return 1;
  const Throughput tc = Measure(**cpu, prompt, decode_tokens, reps);
  std::printf("cpu:  prefill %8.0f tok/s (%.2f of the sgemm bound)   decode %6.0f tok/s "
              "(%.2f of the bandwidth bound at the weights' size, %.2f of the DRAM bound)\n",
              tc.prefill_tps, tc.prefill_tps / prefill_bound, tc.decode_tps,
              tc.decode_tps / decode_bound, tc.decode_tps / decode_bound_dram);
  out["cpu"] = {{"prefill_tps", tc.prefill_tps},
                {"decode_tps", tc.decode_tps},
                {"prefill_vs_bound", tc.prefill_tps / prefill_bound},
                {"decode_vs_bound", tc.decode_tps / decode_bound},
                {"decode_vs_dram_bound", tc.decode_tps / decode_bound_dram}};

  // --- GPU ---
  auto gpu = mnemo::decoder::NewDecodeSession(model, Device::kCuda);
  if (!gpu.ok()) {
    std::printf("cuda: skipped (%s)\n", gpu.status().ToString().c_str());
    out["cuda"] = {{"skipped", gpu.status().ToString()}};
  } else {
    const Throughput tg = Measure(**gpu, prompt, decode_tokens, reps);
    std::printf("cuda: prefill %8.0f tok/s (%.1fx cpu)   decode %6.0f tok/s (%.1fx cpu)\n",
                tg.prefill_tps, tg.prefill_tps / tc.prefill_tps, tg.decode_tps,
                tg.decode_tps / tc.decode_tps);
    out["cuda"] = {{"prefill_tps", tg.prefill_tps}, {"decode_tps", tg.decode_tps}};
  }
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
