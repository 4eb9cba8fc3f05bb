// bench_kv_codec: what the KV block codecs (db/kv_codec.h) cost and lose on
// real KV of the reference decoder, against recomputing the KV in the same
// run.
//
// Windows of validation text are cut into a context of --chunks chunks of
// --chunk-tokens tokens and a continuation of --cont-tokens. Each chunk is
// encoded on its own from position 0 (what mnemo stores), sent through a
// codec (encode + decode), placed at its position in the context (keys
// rotated, attention/rope.h) and the continuation is run on top. Against:
//   recompute  the same chunks encoded afresh on their own at their
//              positions, no codec (the chunk-independent context the
//              store's KV reproduces),
//   full       a sequential prefill of the whole context (every chunk
//              attending to the ones before it), the usual prompt.
// Reported per codec: bytes vs fp16, relative K/V error (what the store
// records), relative error of the attention output of the continuation's
// queries over the context, perplexity of the continuation, and greedy
// decoding of --greedy tokens after the context plus --question tokens:
// how many windows give exactly the recompute tokens, and position-wise
// agreement with the recompute and with the full prefill. Ends with the kvq
// codec's goal lines (ratio vs fp16 >= 4, perplexity within 1% of the
// recompute, >= 95% of windows greedy-identical to it).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "attention/partial.h"
#include "bench/bench_must.h"
#include "bench/greedy_metrics.h"
#include "db/kv_codec.h"
#include "decoder/chunk_kv.h"
#include "decoder/model.h"
#include "decoder/tokenizer.h"
#include "nlohmann/json.hpp"

namespace {

using mnemo::decoder::ChunkKv;
using mnemo::decoder::CpuForward;
using mnemo::decoder::KvCache;
using mnemo::decoder::LogitsMode;
using mnemo::decoder::Model;

using mnemo::bench::Die;
using mnemo::bench::Must;

using mnemo::bench::Argmax;
using mnemo::bench::Nll;

// Greedy tokens after `prompt` on top of `cache` (which it extends).
std::vector<int32_t> Greedy(CpuForward* fwd, KvCache* cache, const std::vector<int32_t>& prompt,
                            int n) {
  std::vector<float> logits;
  Must(fwd->Forward(prompt, cache, LogitsMode::kLast, &logits), "prompt");
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    const int32_t t = Argmax(logits);
    out.push_back(t);
    if (i + 1 < n) Must(fwd->Forward({&t, 1}, cache, LogitsMode::kLast, &logits), "decode");
  }
  return out;
}

struct Window {
  std::vector<std::vector<int32_t>> chunks;
  std::vector<int32_t> context;  // the chunks concatenated
  std::vector<int32_t> cont;
};

struct CodecResult {
  std::string name;
  mnemo::db::KvCodecOptions options;
  bool recompute = false;  // no codec: the chunks' KV as computed
  uint64_t stored_bytes = 0, fp16_bytes = 0;
  double key_error = 0, value_error = 0, attn_error = 0;
  int errors = 0;  // (chunk, layer) count behind the K/V means
  int attn_samples = 0;
  double nll = 0;
  size_t scored = 0;
  int greedy_equal_recompute = 0;  // windows with exactly the recompute tokens
  size_t agree_recompute = 0, agree_full = 0, greedy_total = 0;
  double seconds = 0;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_kv_codec: KV codecs on real decoder KV vs recomputing it"};
  std::string model_dir = "decoder/models/mnemo-ref-4m";
  std::string text_path = ".assets/decoder-data/val.txt";
  int chunks = 4, chunk_tokens = 64, cont_tokens = 64, question = 16, greedy = 32, windows = 32;
  std::string json_out;
  int kvq_bits = 3;
  uint32_t kvq_sinks = 1;
  double kvq_outliers = 0.01, kvq_rate = 0.005;
  app.add_option("--model", model_dir, "model directory")->capture_default_str();
  app.add_option("--text", text_path, "validation text (scripts/fetch_decoder_corpora)")
      ->capture_default_str();
  app.add_option("--chunks", chunks, "chunks per context")->capture_default_str();
  app.add_option("--chunk-tokens", chunk_tokens, "tokens per chunk")->capture_default_str();
  app.add_option("--cont-tokens", cont_tokens, "continuation tokens scored")
      ->capture_default_str();
  app.add_option("--question", question, "continuation tokens before greedy decoding")
      ->capture_default_str();
  app.add_option("--greedy", greedy, "greedy tokens compared")->capture_default_str();
  app.add_option("--windows", windows, "windows of validation text")->capture_default_str();
  app.add_option("--json", json_out, "also write the results as JSON here");
  app.add_option("--kvq-bits", kvq_bits, "kvq code width")->capture_default_str();
  app.add_option("--kvq-sinks", kvq_sinks, "kvq leading tokens kept fp16")->capture_default_str();
  app.add_option("--kvq-outliers", kvq_outliers, "kvq share of elements kept fp16")
      ->capture_default_str();
  app.add_option("--kvq-rate", kvq_rate, "kvq rate weight (entropy-constrained levels)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (question >= cont_tokens) {
    std::fprintf(stderr, "bench_kv_codec: --question must be below --cont-tokens\n");
    return 2;
  }

  auto model = Must(Model::Load(model_dir), "loading model");
  const auto& cfg = model->config();
  auto tokenizer =
      Must(mnemo::decoder::LoadSentencePieceTokenizer(model_dir + "/tokenizer.model"),
           "loading tokenizer");
  std::ifstream in(text_path);
  if (!in) {
    std::fprintf(stderr, "bench_kv_codec: cannot read %s (run scripts/fetch_decoder_corpora)\n",
                 text_path.c_str());
    return 1;
  }
  std::stringstream buf;
  buf << in.rdbuf();
  const std::vector<int> ids = Must(tokenizer->Encode(buf.str()), "tokenizing");
  const int window_tokens = chunks * chunk_tokens + cont_tokens;
  if (window_tokens > cfg.max_seq_len) {
    std::fprintf(stderr, "bench_kv_codec: a window of %d tokens exceeds the model's %d\n",
                 window_tokens, cfg.max_seq_len);
    return 2;
  }
  // Evenly spaced windows over the whole validation text.
  std::vector<Window> wins;
  const size_t stride = std::max<size_t>(window_tokens, ids.size() / std::max(1, windows));
  for (size_t start = 0; start + window_tokens <= ids.size() && wins.size() < size_t(windows);
       start += stride) {
    Window w;
    for (int c = 0; c < chunks; ++c) {
      auto b = ids.begin() + start + static_cast<size_t>(c) * chunk_tokens;
      w.chunks.emplace_back(b, b + chunk_tokens);
      w.context.insert(w.context.end(), b, b + chunk_tokens);
    }
    auto b = ids.begin() + start + static_cast<size_t>(chunks) * chunk_tokens;
    w.cont.assign(b, b + cont_tokens);
    wins.push_back(std::move(w));
  }
  std::printf("model %s (%d layers, %d KV heads x %d), %zu validation tokens\n",
              model_dir.c_str(), cfg.n_layers, cfg.n_kv_heads, cfg.head_dim, ids.size());
  std::printf("%zu windows: %d chunks x %d tokens of context, %d continuation tokens scored, "
              "greedy %d tokens after %d\n\n",
              wins.size(), chunks, chunk_tokens, cont_tokens, greedy, question);

  using mnemo::db::KvCodecKind;
  std::vector<CodecResult> results;
  auto add = [&](std::string name, KvCodecKind kind, uint32_t group = 32) {
    CodecResult r;
    r.name = std::move(name);
    r.options.kind = kind;
    r.options.group_size = group;
    results.push_back(r);
  };
  {
    CodecResult r;
    r.name = "recompute";
    r.recompute = true;
    results.push_back(r);
  }
  add("fp16", KvCodecKind::kFp16);
  add("bf16", KvCodecKind::kBf16);
  add("int8", KvCodecKind::kInt8);
  add("int4 g32", KvCodecKind::kInt4, 32);
  add("int4 g64", KvCodecKind::kInt4, 64);
  add("kvq", KvCodecKind::kKvq);
  results.back().options.kvq_bits = kvq_bits;
  results.back().options.kvq_sink_tokens = kvq_sinks;
  results.back().options.kvq_outlier_fraction = kvq_outliers;
  results.back().options.kvq_rate_weight = kvq_rate;
  const size_t kvq_row = results.size() - 1;

  CpuForward fwd(*model);
  const int vocab = cfg.vocab_size;
  const int ctx = chunks * chunk_tokens;
  const mnemo::attention::AttentionShape shape = model->attention_shape();
  double full_nll = 0;
  size_t full_scored = 0;
  const std::vector<int32_t> targets_all;
  for (const Window& w : wins) {
    const std::vector<int32_t> targets(w.cont.begin() + 1, w.cont.end());
    const std::vector<int32_t> prompt(w.cont.begin(), w.cont.begin() + question);
    // Full sequential prefill.
    KvCache full(cfg, window_tokens + greedy);
    std::vector<float> logits;
    Must(fwd.Forward(w.context, &full, LogitsMode::kNone, &logits), "full prefill");
    Must(fwd.Forward(w.cont, &full, LogitsMode::kAll, &logits), "full continuation");
    full_nll += Nll(logits, vocab, targets, targets.size());
    full_scored += targets.size();
    full.Truncate(ctx);
    const std::vector<int32_t> full_greedy = Greedy(&fwd, &full, prompt, greedy);

    // Each chunk alone from position 0, as stored.
    std::vector<ChunkKv> stored;
    for (const auto& c : w.chunks) stored.push_back(Must(mnemo::decoder::EncodeChunk(*model, c), "chunk"));

    std::vector<float> ref_out;            // recompute's attention outputs, per layer
    std::vector<std::vector<float>> ref_q;  // continuation queries per layer, token-major
    std::vector<int32_t> recompute_greedy;
    for (CodecResult& r : results) {
      const auto t0 = std::chrono::steady_clock::now();
      KvCache cache(cfg, window_tokens + greedy);
      int pos = 0;
      for (const ChunkKv& chunk : stored) {
        ChunkKv through = chunk;
        if (!r.recompute) {
          const mnemo::db::KvTensorShape s{static_cast<uint32_t>(cfg.n_kv_heads),
                                           static_cast<uint32_t>(chunk.n_tokens()),
                                           static_cast<uint32_t>(cfg.head_dim)};
          for (int l = 0; l < cfg.n_layers; ++l) {
            auto ek = Must(mnemo::db::EncodeKvTensor(chunk.k_pre_rope[l], s,
                                                     mnemo::db::KvTensorRole::kKeys, r.options),
                           "encode K");
            auto ev = Must(mnemo::db::EncodeKvTensor(chunk.v[l], s,
                                                     mnemo::db::KvTensorRole::kValues, r.options),
                           "encode V");
            r.stored_bytes += ek.bytes.size() + ev.bytes.size();
            r.fp16_bytes += 2 * 2 * s.elements();
            r.key_error += ek.relative_error;
            r.value_error += ev.relative_error;
            ++r.errors;
            Must(mnemo::db::DecodeKvTensor(ek.bytes, &through.k_pre_rope[l]), "decode K");
            Must(mnemo::db::DecodeKvTensor(ev.bytes, &through.v[l]), "decode V");
          }
        }
        auto placed = Must(mnemo::decoder::PlaceChunk(cfg, through, pos), "place");
        Must(cache.AppendKv(placed.view()), "append");
        pos += chunk.n_tokens();
      }
      mnemo::decoder::ForwardTrace trace;
      trace.want_q = r.recompute;
      Must(fwd.Forward(w.cont, &cache, LogitsMode::kAll, &logits, &trace), "continuation");
      r.nll += Nll(logits, vocab, targets, targets.size());
      r.scored += targets.size();
      // Attention of the continuation's queries over the context only.
      if (r.recompute) {
        ref_q.assign(cfg.n_layers, {});
        for (int l = 0; l < cfg.n_layers; ++l) {
          const auto& q = trace.q[l];  // [n_heads, T, hd]
          std::vector<float>& t = ref_q[l];
          t.resize(q.size());
          for (int h = 0; h < cfg.n_heads; ++h) {
            for (int i = 0; i < cont_tokens; ++i) {
              std::copy_n(q.data() + (static_cast<size_t>(h) * cont_tokens + i) * cfg.head_dim,
                          cfg.head_dim,
                          t.data() + (static_cast<size_t>(i) * cfg.n_heads + h) * cfg.head_dim);
            }
          }
        }
      }
      std::vector<float> outs;
      for (int l = 0; l < cfg.n_layers; ++l) {
        mnemo::attention::QueryBlock qb{ref_q[l].data(), cont_tokens, ctx};
        mnemo::attention::PartialResult part;
        Must(mnemo::attention::AttendPartial(shape, qb, cache.View(l, 0, ctx), false, &part),
             "attention");
        outs.insert(outs.end(), part.out.begin(), part.out.end());
      }
      if (r.recompute) {
        ref_out = outs;
      } else {
        double num = 0, den = 0;
        for (size_t i = 0; i < outs.size(); ++i) {
          num += (outs[i] - ref_out[i]) * (outs[i] - ref_out[i]);
          den += ref_out[i] * ref_out[i];
        }
        r.attn_error += std::sqrt(num / den);
        ++r.attn_samples;
      }
      cache.Truncate(ctx);
      const std::vector<int32_t> g = Greedy(&fwd, &cache, prompt, greedy);
      if (r.recompute) recompute_greedy = g;
      r.greedy_equal_recompute += g == recompute_greedy ? 1 : 0;
      for (int i = 0; i < greedy; ++i) {
        r.agree_recompute += g[i] == recompute_greedy[i];
        r.agree_full += g[i] == full_greedy[i];
      }
      r.greedy_total += greedy;
      r.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
  }

  const double full_ppl = std::exp(full_nll / static_cast<double>(full_scored));
  std::printf("full sequential prefill: perplexity %.3f over %zu tokens\n\n", full_ppl,
              full_scored);
  std::printf("%-10s %9s %9s %9s %10s %9s %10s %12s %12s %10s\n", "context", "vs fp16",
              "K err", "V err", "attn err", "ppl", "ppl/recmp", "=recompute", "agree recmp",
              "agree full");
  nlohmann::json j;
  j["full_ppl"] = full_ppl;
  j["windows"] = wins.size();
  double recompute_ppl = 0;
  for (const CodecResult& r : results) {
    const double ppl = std::exp(r.nll / static_cast<double>(r.scored));
    if (r.recompute) recompute_ppl = ppl;
    const double ratio = r.recompute ? 0 : static_cast<double>(r.fp16_bytes) / r.stored_bytes;
    const double ke = r.errors ? r.key_error / r.errors : 0;
    const double ve = r.errors ? r.value_error / r.errors : 0;
    const double ae = r.attn_samples ? r.attn_error / r.attn_samples : 0;
    const double ar = static_cast<double>(r.agree_recompute) / r.greedy_total;
    const double af = static_cast<double>(r.agree_full) / r.greedy_total;
    if (r.recompute) {
      std::printf("%-10s %9s %9s %9s %10s %9.3f %10s %8d/%-3zu %12.3f %10.3f\n", r.name.c_str(),
                  "-", "-", "-", "-", ppl, "1.000", r.greedy_equal_recompute, wins.size(), ar, af);
    } else {
      std::printf("%-10s %8.2fx %9.2e %9.2e %10.2e %9.3f %10.4f %8d/%-3zu %12.3f %10.3f\n",
                  r.name.c_str(), ratio, ke, ve, ae, ppl, ppl / recompute_ppl,
                  r.greedy_equal_recompute, wins.size(), ar, af);
    }
    j["codecs"].push_back({{"name", r.name},
                           {"ratio_vs_fp16", ratio},
                           {"key_error", ke},
                           {"value_error", ve},
                           {"attention_error", ae},
                           {"ppl", ppl},
                           {"greedy_equal_recompute", r.greedy_equal_recompute},
                           {"agree_recompute", ar},
                           {"agree_full", af},
                           {"seconds", r.seconds}});
  }
  std::printf("\nvs fp16: fp16 bytes of the same K and V / stored bytes (codec + zstd + header)."
              "\nerrors: relative Frobenius errors, K and V per (chunk, layer) block, attention "
              "output of the continuation's queries over the context per window.\n"
              "=recompute: windows whose %d greedy tokens equal the recompute's exactly; agree: "
              "position-wise share of greedy tokens equal to the recompute's / the full "
              "prefill's.\n",
              greedy);
  if (!json_out.empty()) std::ofstream(json_out) << j.dump(2) << "\n";
  {
    const CodecResult& r = results[kvq_row];
    const double ppl = std::exp(r.nll / static_cast<double>(r.scored));
    std::printf("\nkvq: %d-bit levels, %u sink token(s), %.3g outliers; attention-output error "
                "%.3e (int4 g32: %.3e)\n",
                kvq_bits, kvq_sinks, kvq_outliers, r.attn_samples ? r.attn_error / r.attn_samples : 0,
                results[4].attn_samples ? results[4].attn_error / results[4].attn_samples : 0);
    std::printf("goal kvq_ratio_vs_fp16 %.3f 4.0\n",
                static_cast<double>(r.fp16_bytes) / static_cast<double>(r.stored_bytes));
    std::printf("goal kvq_ppl_ratio_vs_recompute %.4f 1.01\n", ppl / recompute_ppl);
    std::printf("goal kvq_windows_equal_recompute %.3f 0.95\n",
                static_cast<double>(r.greedy_equal_recompute) / static_cast<double>(wins.size()));
  }
  return 0;
}
