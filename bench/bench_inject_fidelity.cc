// bench_inject_fidelity: how much of a retrieved chunk's help reaches the
// reference decoder when the chunk is injected as a few embedding-space
// rows (issue 14) instead of its text, against no retrieval and text RAG in
// the same run, on the same held-out items for every row.
//
// Items (the injection model's held-out validation items, written by its
// training, decoder/train/inject/data.py): a chunk C of ~64 decoder tokens
// from a validation document, the query A = its first half, the target
// B = the rest. Every row scores B after the coordinator's layout B:
//   none          [BOS] A
//   text          [BOS] C "\n" A            (C's text in the prompt)
//   chunk KV      BOS, C's KV computed alone at positions 1.. and reused, A
//   xRAG          [BOS] <x> A               (x = projector(USE-lite(C)))
//   memory exact  [BOS] <m_1..m_8> A        (compressor(C), conditioned on A)
//   memory VQ     the same from C's PQ codes (MEMORY-VQ), decoded
// Each retrieval row runs with the chunk that dense search (USE-lite
// embedding of A against those of all held-out chunks, inner product)
// ranks first ("dense"), with the best of the dense top --candidates by the
// model's GLIMMER reranker on the conditioned memory ("rerank": the memory
// VQ rows' own memory, memory exact's exact one, the other rows the VQ
// memory the store reranks with), and with the true chunk ("oracle",
// for reference).
//
// Columns: the target's perplexity (exp of the mean NLL over all target
// tokens), greedy exact match of B (greedy decoding after the prompt
// reproduces B), greedy token accuracy, retrieval accuracy (the chunk used
// is the item's own), prefill FLOPs per item and stored bytes per chunk.
// FLOPs are analytic: every prompt position (tokens and injected rows)
// costs 2 * the decoder's parameters, plus attention (4 * heads * head_dim
// per key attended, per layer: QK and AV), plus what runs at query time to
// produce the injected memory: live conditioning of the used chunk
// (memory rows) and of every rerank candidate plus its score (rerank
// rows). The xRAG vectors, the memory tokens and chunk KV are computed at
// ingest, and the query's USE-lite embedding that every retrieval row
// needs for the dense search is left out. Target tokens are scored the
// same way in every row and are not prefill.
//
// Goal lines (dense top-1 rows; gains are in log-perplexity of B):
//   xrag_gap_closed     (none - xRAG) / (none - text)
//   xrag_flops_vs_text  text prefill FLOPs / xRAG's
//   memory_gap_closed   (none - memory exact) / (none - text)
//   vq_bytes_ratio      exact fp16 memory bytes / PQ code bytes per chunk
//   vq_gain_kept        (none - memory VQ) / (none - memory exact)
//   rerank_vs_dense     (none - memory VQ reranked) / (none - memory VQ
//                       dense): the rerank row's gain over the dense row's
//                       at the same k = 1 (> 1: rerank beats dense top-1)
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/bench_must.h"
#include "decoder/chunk_kv.h"
#include "decoder/continuation_score.h"
#include "decoder/injection_prompt.h"
#include "decoder/model.h"
#include "decoder/model_dir.h"
#include "encoder/injection_model.h"
#include "encoder/sentence_encoder.h"
#include "nlohmann/json.hpp"

namespace {

namespace dec = mnemo::decoder;
using mnemo::bench::Die;
using mnemo::bench::Must;

struct Flags {
  std::string items = ".assets/inject-run/val_items.jsonl";
  std::string decoder_dir = "decoder/models/mnemo-ref-4m";
  std::string inject_dir = "decoder/models/mnemo-ref-4m-inject";
  std::string encoder_dir = ".assets/use-lite";
  int max_items = 0;
  int candidates = 8;
  std::string json_out;
};

struct Item {
  std::string id, text, query;
  std::vector<int32_t> chunk_ids, query_ids, target_ids;
};

std::vector<Item> ReadItems(const std::string& path, int max_items) {
  std::ifstream in(path);
  if (!in) {
    Die("items", absl::NotFoundError(absl::StrCat(
                     "cannot open ", path,
                     " (the injection model's held-out items: scripts/train_inject writes them)")));
  }
  std::vector<Item> items;
  std::string line;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const nlohmann::json j = nlohmann::json::parse(line);
    Item it;
    it.id = j.at("id");
    it.text = j.at("text");
    it.query = j.at("query");
    it.chunk_ids = j.at("chunk_ids").get<std::vector<int32_t>>();
    it.query_ids = j.at("query_ids").get<std::vector<int32_t>>();
    it.target_ids = j.at("target_ids").get<std::vector<int32_t>>();
    if (it.chunk_ids.empty() || it.query_ids.empty() || it.target_ids.empty()) continue;
    items.push_back(std::move(it));
    if (max_items > 0 && static_cast<int>(items.size()) == max_items) break;
  }
  if (items.empty()) Die("items", absl::InvalidArgumentError(path + " holds no item"));
  return items;
}

// Analytic FLOPs.
struct FlopModel {
  double per_token = 0;      // 2 * decoder params
  double per_key = 0;        // attention per (query, key) pair, all layers
  double condition_once = 0; // live: c = wq q + bq
  double condition_row = 0;  // live: per memory row
  double rerank_score = 0;   // GLIMMER scorer on one conditioned memory

  // Prefill of `n` positions after `past` cached ones.
  double Prefill(int past, int n) const {
    double keys = 0;
    for (int t = 0; t < n; ++t) keys += past + t + 1;
    return n * per_token + keys * per_key;
  }
};

FlopModel MakeFlops(const dec::Model& model, const mnemo::encoder::InjectionConfig& ic) {
  const dec::ModelConfig& c = model.config();
  FlopModel f;
  f.per_token = 2.0 * static_cast<double>(model.num_params());
  f.per_key = 4.0 * c.n_heads * c.head_dim * c.n_layers;
  const double D = ic.decoder_dim, E = ic.encoder_dim;
  f.condition_once = 2.0 * D * E;
  f.condition_row = 2.0 * (D * 2 * D + D * D);  // w1 [D, 2D], w2 [D, D]
  f.rerank_score = 2.0 * (D * 3 * D + D);       // w1 [D, 3D], w2 [1, D]
  return f;
}

enum class Kind { kNone, kText, kKv, kXrag, kMemExact, kMemVq };
enum class Pick { kNone, kOracle, kDense, kRerank };

struct Row {
  std::string name;
  Kind kind;
  Pick pick;
  // Accumulated over items.
  double nll = 0;
  long tokens = 0, greedy_correct = 0, exact = 0, hits = 0;
  double flops = 0;
  double stored_bytes = 0;
  double log_ppl() const { return nll / static_cast<double>(tokens); }
};

const char* KindName(Kind k) {
  switch (k) {
    case Kind::kNone: return "none";
    case Kind::kText: return "text";
    case Kind::kKv: return "chunk KV";
    case Kind::kXrag: return "xRAG 1 token";
    case Kind::kMemExact: return "memory exact";
    case Kind::kMemVq: return "memory VQ";
  }
  return "?";
}

const char* PickName(Pick p) {
  switch (p) {
    case Pick::kNone: return "";
    case Pick::kOracle: return "oracle";
    case Pick::kDense: return "dense";
    case Pick::kRerank: return "rerank";
  }
  return "?";
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  CLI::App app{"Memory injection fidelity on held-out items: none, text RAG, chunk KV, xRAG, "
               "memory tokens exact and VQ, with dense / reranked / oracle retrieval"};
  app.add_option("--items", flags.items, "Held-out items (JSON Lines)")->capture_default_str();
  app.add_option("--decoder", flags.decoder_dir, "Decoder model dir")->capture_default_str();
  app.add_option("--inject", flags.inject_dir, "Injection model dir")->capture_default_str();
  app.add_option("--encoder", flags.encoder_dir, "USE-lite dir")->capture_default_str();
  app.add_option("--max-items", flags.max_items, "First N items (0 = all)")->capture_default_str();
  app.add_option("--candidates", flags.candidates, "Dense candidates the reranker sees")
      ->capture_default_str()->check(CLI::Range(1, 1024));
  app.add_option("--json", flags.json_out, "Also write the table as JSON here");
  CLI11_PARSE(app, argc, argv);

  const std::vector<Item> items = ReadItems(flags.items, flags.max_items);
  const int n = static_cast<int>(items.size());
  dec::LoadedModel dm = Must(dec::LoadModelDir(flags.decoder_dir), "decoder");
  const dec::Model& model = *dm.model;
  const dec::ModelConfig& mc = model.config();
  auto inj = Must(mnemo::encoder::InjectionModel::Load(flags.inject_dir), "injection model");
  const auto& ic = inj->config();
  // The injection model must be the one trained for this decoder.
  const std::string weights_sha = Must(dec::WeightsSha256(model), "decoder weights");
  if (inj->lineage().decoder_fingerprint != model.fingerprint().Canonical() ||
      inj->lineage().decoder_weights_sha256 != weights_sha) {
    Die("lineage", absl::FailedPreconditionError(
                       "the injection model was trained for another decoder (fingerprint or "
                       "weights sha256 differ)"));
  }
  auto encoder = Must(mnemo::encoder::SentenceEncoder::Load(flags.encoder_dir), "encoder");
  const int D = mc.dim, E = ic.encoder_dim, M = ic.memory_tokens;
  if (ic.decoder_dim != D || encoder->dim() != E) {
    Die("dims", absl::FailedPreconditionError("decoder / encoder widths do not match the model"));
  }
  std::printf("items: %d from %s; decoder %s; injection model %s (%d memory tokens, PQ m=%d)\n", n,
              flags.items.c_str(), mc.name.c_str(), ic.name.c_str(), M, ic.pq_m);

  // Ingest side: embeddings, xRAG vectors, memory tokens and their codes.
  std::vector<std::string> chunk_texts, query_texts;
  for (const Item& it : items) {
    chunk_texts.push_back(it.text);
    query_texts.push_back(it.query);
  }
  const std::vector<float> cemb = Must(encoder->Encode(chunk_texts), "encode chunks");
  const std::vector<float> qemb = Must(encoder->Encode(query_texts), "encode queries");
  const std::vector<float> xrag = Must(inj->Project(cemb), "project");
  std::vector<std::vector<int>> compress_ids;
  for (const Item& it : items) {
    std::vector<int> ids(it.chunk_ids.begin(), it.chunk_ids.end());
    if (static_cast<int>(ids.size()) > ic.compressor_max_tokens) ids.resize(ic.compressor_max_tokens);
    compress_ids.push_back(std::move(ids));
  }
  const std::vector<float> mem = Must(inj->CompressIds(compress_ids), "compress");
  const size_t msize = static_cast<size_t>(M) * D;
  const std::vector<uint8_t> codes = Must(inj->pq().EncodeChecked(mem), "pq encode");
  const std::vector<float> mem_vq = Must(inj->pq().DecodeToVector(codes), "pq decode");
  auto query_of = [&](int i) { return absl::MakeConstSpan(qemb).subspan(size_t{1} * i * E, E); };
  auto memory_of = [&](const std::vector<float>& m, int j) {
    return absl::MakeConstSpan(m).subspan(j * msize, msize);
  };

  // Retrieval: dense scores of every query against every held-out chunk.
  const int C = std::min(flags.candidates, n);
  std::vector<int> dense(n), rerank_vq(n), rerank_exact(n);
  for (int i = 0; i < n; ++i) {
    std::vector<std::pair<float, int>> scored(n);
    for (int j = 0; j < n; ++j) {
      float s = 0;
      for (int d = 0; d < E; ++d) s += qemb[size_t{1} * i * E + d] * cemb[size_t{1} * j * E + d];
      scored[j] = {s, j};
    }
    std::partial_sort(scored.begin(), scored.begin() + C, scored.end(),
                      [](const auto& a, const auto& b) { return a.first > b.first; });
    dense[i] = scored[0].second;
    float best_vq = -INFINITY, best_exact = -INFINITY;
    for (int c = 0; c < C; ++c) {
      const int j = scored[c].second;
      auto score = [&](const std::vector<float>& m) {
        const std::vector<float> cond =
            Must(inj->Condition(memory_of(m, j), query_of(i)), "condition");
        return Must(inj->RerankScore(cond, query_of(i)), "rerank");
      };
      const float svq = score(mem_vq), sex = score(mem);
      if (svq > best_vq) best_vq = svq, rerank_vq[i] = j;
      if (sex > best_exact) best_exact = sex, rerank_exact[i] = j;
    }
  }

  std::vector<Row> rows;
  rows.push_back({"none", Kind::kNone, Pick::kNone});
  for (Kind k : {Kind::kText, Kind::kKv, Kind::kXrag, Kind::kMemExact, Kind::kMemVq}) {
    for (Pick p : {Pick::kDense, Pick::kRerank, Pick::kOracle}) {
      rows.push_back({absl::StrFormat("%s %s", KindName(k), PickName(p)), k, p});
    }
  }
  const FlopModel fm = MakeFlops(model, ic);
  const double rerank_flops = fm.condition_once + C * (M * fm.condition_row + fm.rerank_score);
  const double kv_bytes_per_token = 2.0 * mc.n_layers * mc.n_kv_heads * mc.head_dim * 2;  // fp16
  double text_bytes = 0, chunk_tokens = 0;
  for (const Item& it : items) {
    text_bytes += it.text.size();
    chunk_tokens += it.chunk_ids.size();
  }
  for (Row& r : rows) {
    switch (r.kind) {
      case Kind::kNone: r.stored_bytes = 0; break;
      case Kind::kText: r.stored_bytes = text_bytes / n; break;
      case Kind::kKv: r.stored_bytes = kv_bytes_per_token * chunk_tokens / n; break;
      case Kind::kXrag: r.stored_bytes = 2.0 * D; break;
      case Kind::kMemExact: r.stored_bytes = 2.0 * msize; break;
      case Kind::kMemVq: r.stored_bytes = static_cast<double>(M) * inj->pq().code_size(); break;
    }
  }

  dec::CpuForward forward(model);
  dec::KvCache cache(mc, mc.max_seq_len);
  std::map<int, dec::ChunkKv> kv_of;  // chunk KV, encoded alone, by item
  const int32_t bos = mc.bos_id;
  for (int i = 0; i < n; ++i) {
    const Item& it = items[i];
    for (Row& r : rows) {
      int j = i;
      if (r.pick == Pick::kDense) j = dense[i];
      if (r.pick == Pick::kRerank) j = r.kind == Kind::kMemExact ? rerank_exact[i] : rerank_vq[i];
      dec::PromptMemory memory;
      double extra_flops = r.pick == Pick::kRerank ? rerank_flops : 0.0;
      cache.Clear();
      int past = 0;
      switch (r.kind) {
        case Kind::kNone:
          break;
        case Kind::kText:
          memory.tokens = Must(dec::TextMemoryTokens(*dm.tokenizer, {items[j].text}), "text");
          break;
        case Kind::kKv: {
          auto found = kv_of.find(j);
          if (found == kv_of.end()) {
            found = kv_of.emplace(j, Must(dec::EncodeChunk(model, items[j].chunk_ids), "kv"))
                        .first;
          }
          Must(forward.Forward({&bos, 1}, &cache, dec::LogitsMode::kNone, nullptr), "bos");
          const dec::PlacedChunkKv placed = Must(dec::PlaceChunk(mc, found->second, 1), "place");
          Must(cache.AppendKv(placed.view()), "append kv");
          past = cache.length();
          break;
        }
        case Kind::kXrag:
          memory.rows.assign(xrag.begin() + size_t{1} * j * D, xrag.begin() + size_t{1} * (j + 1) * D);
          break;
        case Kind::kMemExact:
        case Kind::kMemVq: {
          const std::vector<float>& m = r.kind == Kind::kMemExact ? mem : mem_vq;
          memory.rows = Must(inj->Condition(memory_of(m, j), query_of(i)), "condition");
          if (r.pick != Pick::kRerank) extra_flops += fm.condition_once + M * fm.condition_row;
          break;
        }
      }
      const dec::InjectedPrompt prompt =
          Must(r.kind == Kind::kKv ? dec::ItemPrompt(mc, {}, it.query_ids, /*bos=*/false)
                                   : dec::ItemPrompt(mc, memory, it.query_ids),
               "prompt");
      const dec::ContinuationScore s =
          Must(dec::ScoreContinuation(&forward, &cache, prompt, it.target_ids), "score");
      r.nll += s.nll;
      r.tokens += s.tokens;
      r.greedy_correct += s.greedy_correct;
      r.exact += s.greedy_exact() ? 1 : 0;
      r.hits += j == i ? 1 : 0;
      r.flops += fm.Prefill(past, static_cast<int>(prompt.tokens.size())) + extra_flops;
    }
    if ((i + 1) % 50 == 0) std::fprintf(stderr, "  %d / %d items\n", i + 1, n);
  }

  std::printf("\n%-22s %10s %8s %9s %9s %12s %12s\n", "row", "target ppl", "exact B",
              "tok acc", "retr acc", "prefill MFLOP", "bytes/chunk");
  for (const Row& r : rows) {
    std::printf("%-22s %10.3f %8.3f %9.3f %9s %12.2f %12.0f\n", r.name.c_str(),
                std::exp(r.log_ppl()), static_cast<double>(r.exact) / n,
                static_cast<double>(r.greedy_correct) / r.tokens,
                r.pick == Pick::kNone ? "-" : absl::StrFormat("%.3f", static_cast<double>(r.hits) / n).c_str(),
                r.flops / n / 1e6, r.stored_bytes);
  }
  auto find = [&](Kind k, Pick p) -> const Row& {
    for (const Row& r : rows)
      if (r.kind == k && r.pick == p) return r;
    std::abort();
  };
  const double none = find(Kind::kNone, Pick::kNone).log_ppl();
  auto gain = [&](Kind k, Pick p) { return none - find(k, p).log_ppl(); };
  const double text_gain = gain(Kind::kText, Pick::kDense);
  std::printf("\nlog-ppl gains over none (nats/token), dense | rerank | oracle:\n");
  for (Kind k : {Kind::kText, Kind::kKv, Kind::kXrag, Kind::kMemExact, Kind::kMemVq}) {
    std::printf("  %-14s %7.4f | %7.4f | %7.4f\n", KindName(k), gain(k, Pick::kDense),
                gain(k, Pick::kRerank), gain(k, Pick::kOracle));
  }
  const double xrag_closed = gain(Kind::kXrag, Pick::kDense) / text_gain;
  const double flops_ratio =
      find(Kind::kText, Pick::kDense).flops / find(Kind::kXrag, Pick::kDense).flops;
  const double mem_closed = gain(Kind::kMemExact, Pick::kDense) / text_gain;
  const double bytes_ratio = find(Kind::kMemExact, Pick::kDense).stored_bytes /
                             find(Kind::kMemVq, Pick::kDense).stored_bytes;
  const double vq_kept = gain(Kind::kMemVq, Pick::kDense) / gain(Kind::kMemExact, Pick::kDense);
  const double rerank_ratio = gain(Kind::kMemVq, Pick::kRerank) / gain(Kind::kMemVq, Pick::kDense);
  std::printf(
      "\ngoal definitions (dense top-1 rows, log-perplexity of B):\n"
      "  xrag_gap_closed = (none - xRAG) / (none - text); xrag_flops_vs_text = text / xRAG "
      "prefill FLOPs;\n"
      "  memory_gap_closed = (none - memory exact) / (none - text); vq_bytes_ratio = exact fp16 "
      "/ PQ bytes;\n"
      "  vq_gain_kept = (none - memory VQ) / (none - memory exact);\n"
      "  rerank_vs_dense = (none - memory VQ rerank) / (none - memory VQ dense) at k = 1; "
      "gain difference %+.4f nats/token,\n"
      "  retrieval accuracy %.3f (rerank of the dense top %d) vs %.3f (dense top-1)\n"
      "bytes/chunk: what the row keeps per chunk for the decoder (text: its UTF-8 bytes; chunk "
      "KV, xRAG, memory exact: fp16; memory VQ: the PQ codes)\n",
      gain(Kind::kMemVq, Pick::kRerank) - gain(Kind::kMemVq, Pick::kDense),
      static_cast<double>(find(Kind::kMemVq, Pick::kRerank).hits) / n, C,
      static_cast<double>(find(Kind::kMemVq, Pick::kDense).hits) / n);
  if (!flags.json_out.empty()) {
    nlohmann::json j = {{"items", n}, {"rows", nlohmann::json::array()}};
    for (const Row& r : rows) {
      j["rows"].push_back({{"row", r.name},
                           {"perplexity", std::exp(r.log_ppl())},
                           {"exact_match", static_cast<double>(r.exact) / n},
                           {"token_accuracy", static_cast<double>(r.greedy_correct) / r.tokens},
                           {"retrieval_accuracy", static_cast<double>(r.hits) / n},
                           {"prefill_flops", r.flops / n},
                           {"stored_bytes_per_chunk", r.stored_bytes}});
    }
    std::ofstream(flags.json_out) << j.dump(2) << "\n";
  }
  double query_tokens = 0;
  for (const Item& it : items) query_tokens += it.query_ids.size();
  std::printf(
      "prompt positions per item: text 1 + %.1f (C) + %.1f (A), xRAG 1 + 1 + %.1f: the "
      "projections alone bound text / xRAG FLOPs at %.2f on these items\n",
      chunk_tokens / n, query_tokens / n, query_tokens / n,
      (1 + chunk_tokens / n + query_tokens / n) / (2 + query_tokens / n));
  std::printf("goal xrag_gap_closed %.3f 0.30\n", xrag_closed);
  std::printf("goal xrag_flops_vs_text %.2f 3\n", flops_ratio);
  std::printf("goal memory_gap_closed %.3f 0.60\n", mem_closed);
  std::printf("goal vq_bytes_ratio %.1f 16\n", bytes_ratio);
  std::printf("goal vq_gain_kept %.3f 0.90\n", vq_kept);
  std::printf("goal rerank_vs_dense %.3f 1.0\n", rerank_ratio);
  return 0;
}
