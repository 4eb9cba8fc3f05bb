// The `mnemo inject ...` verbs (see inject_commands.h).
#include "client/cli/inject_commands.h"

#include <chrono>
#include <cmath>
#include <memory>
#include <string>
#include <utility>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/cli/output.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace mnemo::cli {
namespace {

nlohmann::json LineageJson(const InjectionLineage& l) {
  return {{"encoder", l.encoder},
          {"encoder_sha256", l.encoder_sha256},
          {"decoder_fingerprint", l.decoder_fingerprint},
          {"decoder_weights_sha256", l.decoder_weights_sha256},
          {"model_sha256", l.model_sha256}};
}

nlohmann::json InfoJson(const std::string& ns, const InjectionInfo& info) {
  return {{"namespace", ns},
          {"name", info.name},
          {"lineage", LineageJson(info.lineage)},
          {"encoder_dim", info.encoder_dim},
          {"decoder_dim", info.decoder_dim},
          {"memory_tokens", info.memory_tokens},
          {"pq_m", info.pq_m},
          {"pq_nbits", info.pq_nbits},
          {"exact", info.exact},
          {"chunks", info.chunks},
          {"xrag_bytes_per_chunk", info.xrag_bytes_per_chunk},
          {"memory_code_bytes_per_chunk", info.memory_code_bytes_per_chunk},
          {"memory_exact_bytes_per_chunk", info.memory_exact_bytes_per_chunk},
          {"registered_unix_ms", info.registered_unix_ms},
          {"backfilled_chunks", info.backfilled_chunks}};
}

std::string InfoText(const std::string& ns, const InjectionInfo& info) {
  return absl::StrCat(
      "namespace:        ", ns, "\n", "model:            ", info.name, "\n",
      "encoder:          ", info.lineage.encoder, " (", info.encoder_dim, "-d)\n",
      "decoder:          ", info.lineage.decoder_fingerprint, "\n",
      "decoder weights:  ", info.lineage.decoder_weights_sha256, "\n",
      "model sha256:     ", info.lineage.model_sha256, "\n",
      "memory tokens:    ", info.memory_tokens, " x ", info.decoder_dim, ", PQ m=", info.pq_m,
      " nbits=", info.pq_nbits, info.exact ? ", exact kept" : "", "\n",
      "chunks:           ", info.chunks, "\n",
      "bytes per chunk:  xrag ", HumanBytes(info.xrag_bytes_per_chunk), ", memory codes ",
      HumanBytes(info.memory_code_bytes_per_chunk),
      info.exact ? absl::StrCat(", exact memory ", HumanBytes(info.memory_exact_bytes_per_chunk))
                 : "",
      "\n");
}

// Registration backfills every stored chunk: without --timeout it gets an
// hour instead of the unary default.
CallOptions RegisterCall(const GlobalOptions& g) {
  CallOptions call = UnaryCall(g);
  if (!g.timeout_s.has_value()) call.timeout = std::chrono::hours(1);
  return call;
}

absl::Status InjectRegister(Client& client, const GlobalOptions& g,
                            const InjectRegisterOptions& o, const Output& out) {
  ASSIGN_OR_RETURN(InjectionInfo info,
                   client.RegisterInjectionModel(o.ns, o.dir, o.exact, RegisterCall(g)));
  if (out.json) {
    PrintJson(out, InfoJson(o.ns, info));
  } else {
    Print(out, absl::StrCat("registered injection model ", info.name, " in ", o.ns, " (",
                            info.backfilled_chunks, " chunks backfilled)\n\n",
                            InfoText(o.ns, info)));
  }
  return absl::OkStatus();
}

absl::Status InjectInfo(Client& client, const GlobalOptions& g, const std::string& ns,
                        const Output& out) {
  ASSIGN_OR_RETURN(InjectionInfo info, client.GetInjectionModel(ns, UnaryCall(g)));
  if (out.json) {
    PrintJson(out, InfoJson(ns, info));
  } else {
    Print(out, InfoText(ns, info));
  }
  return absl::OkStatus();
}

double L2(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += static_cast<double>(x) * x;
  return std::sqrt(s);
}

absl::Status InjectRecall(Client& client, const GlobalOptions& g, const InjectRecallOptions& o,
                          const Output& out) {
  RecallRequest request;
  request.ns = o.ns;
  request.query_text = o.query;
  request.k = o.k;
  request.mode = o.mode == "xrag" ? RecallMode::kXrag : RecallMode::kMemory;
  if (o.rerank > 0) request.rerank = RecallRerank{o.rerank, 0};
  request.exact = o.exact;
  ASSIGN_OR_RETURN(RecallResult result, client.Recall(request, UnaryCall(g)));
  if (out.json) {
    nlohmann::json hits = nlohmann::json::array();
    for (const RecallHit& h : result.hits) {
      nlohmann::json j = {{"chunk_id", h.chunk_id}, {"document_id", h.document_id},
                          {"text", h.text},         {"score", h.score},
                          {"m", h.m},               {"dim", h.dim},
                          {"tokens_l2", L2(h.tokens)}};
      if (h.rerank_score.has_value()) j["rerank_score"] = *h.rerank_score;
      if (o.with_tokens) j["tokens"] = h.tokens;
      hits.push_back(std::move(j));
    }
    PrintJson(out, {{"namespace", o.ns},
                    {"mode", o.mode},
                    {"lineage", LineageJson(result.lineage)},
                    {"hits", std::move(hits)}});
    return absl::OkStatus();
  }
  std::string text;
  for (size_t i = 0; i < result.hits.size(); ++i) {
    const RecallHit& h = result.hits[i];
    std::string preview = h.text.substr(0, 80);
    for (char& c : preview) {
      if (c == '\n' || c == '\t') c = ' ';
    }
    absl::StrAppend(&text, absl::StrFormat("%2d. %s  score %.4f", i + 1, h.chunk_id, h.score));
    if (h.rerank_score.has_value()) {
      absl::StrAppend(&text, absl::StrFormat("  rerank %.4f", *h.rerank_score));
    }
    absl::StrAppend(&text, absl::StrFormat("  tokens [%u x %u] |%.3f|\n    %s%s\n", h.m, h.dim,
                                           L2(h.tokens), preview,
                                           h.text.size() > 80 ? "..." : ""));
  }
  if (result.hits.empty()) text = "no hits\n";
  Print(out, text);
  return absl::OkStatus();
}

}  // namespace

void AddInjectVerbs(CLI::App& app, const GlobalOptions* global, VerbAction* action) {
  CLI::App* inject = app.add_subcommand(
      "inject",
      "Memory injection: register a namespace's injection model (xRAG projector, memory\n"
      "compressor, PQ codebooks) and recall chunks as decoder input tokens");
  inject->require_subcommand(1);

  auto reg = std::make_shared<InjectRegisterOptions>();
  CLI::App* r = inject->add_subcommand(
      "register",
      "Register the namespace's injection model from DIR (config.json and the weights and\n"
      "tokenizer files it names) and compute the records of every stored chunk. The same\n"
      "model again is a no-op; another one is refused.");
  r->add_option("--ns", reg->ns, "Namespace (with an encoder)")->type_name("NS")->required();
  r->add_option("--dir", reg->dir, "Model directory, e.g. decoder/models/mnemo-ref-4m-inject")
      ->type_name("DIR")
      ->required();
  r->add_flag("--exact", reg->exact,
              "Also keep the exact fp32 memory tokens beside their PQ codes");
  r->callback([global, action, reg] {
    *action = [global, reg](Client& c, const Output& out) {
      return InjectRegister(c, *global, *reg, out);
    };
  });

  auto info_ns = std::make_shared<std::string>();
  CLI::App* i = inject->add_subcommand("info", "Show the namespace's injection model");
  i->add_option("--ns", *info_ns, "Namespace")->type_name("NS")->required();
  i->callback([global, action, info_ns] {
    *action = [global, info_ns](Client& c, const Output& out) {
      return InjectInfo(c, *global, *info_ns, out);
    };
  });

  auto rec = std::make_shared<InjectRecallOptions>();
  CLI::App* q = inject->add_subcommand(
      "recall",
      "Retrieve the query's chunks with their injection tokens: xrag (one projected row per\n"
      "chunk) or memory (the memory tokens, conditioned on the query)");
  q->add_option("--ns", rec->ns, "Namespace")->type_name("NS")->required();
  q->add_option("--mode", rec->mode, "Tokens per hit: xrag or memory")
      ->check(CLI::IsMember({"xrag", "memory"}))
      ->capture_default_str();
  q->add_option("-k", rec->k, "Hits (1..1024)")->capture_default_str();
  q->add_option("--rerank", rec->rerank,
                "Rerank this many dense candidates with the model's scorer, keep the best k")
      ->type_name("N");
  q->add_flag("--exact", rec->exact, "memory: the exact tokens (model registered with --exact)");
  q->add_flag("--with-tokens", rec->with_tokens, "--json: include every token value");
  q->add_option("query", rec->query, "Query text")->required();
  q->callback([global, action, rec] {
    *action = [global, rec](Client& c, const Output& out) {
      return InjectRecall(c, *global, *rec, out);
    };
  });
}

}  // namespace mnemo::cli
