#include "decoder/inject_cli.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/status_macros.h"
#include "decoder/continuation_score.h"
#include "decoder/injection_prompt.h"
#include "decoder/model_dir.h"
#include "decoder/session.h"
#include "mnemo/client.h"
#include "nlohmann/json.hpp"

namespace mnemo::decoder::cli {
namespace {

bool IsBlank(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c); });
}

// The memory retrieved for a query, ready for the prompt, and what was hit.
struct Retrieved {
  PromptMemory memory;
  nlohmann::json hits = nlohmann::json::array();
};

absl::Status CheckRows(const RecallHit& hit, const ModelConfig& config) {
  if (hit.dim != static_cast<uint32_t>(config.dim) || hit.m == 0 ||
      hit.tokens.size() != static_cast<size_t>(hit.m) * hit.dim) {
    return absl::DataLossError(absl::StrCat("hit ", hit.chunk_id, " carries ", hit.m, " rows of ",
                                            hit.dim, " (", hit.tokens.size(),
                                            " floats) but the decoder's dim is ", config.dim));
  }
  return absl::OkStatus();
}

absl::StatusOr<Retrieved> Retrieve(const InjectOptions& o, const std::string& query,
                                   const LoadedModel& m) {
  Retrieved out;
  if (o.mode == "none") return out;
  if (o.mode != "xrag" && o.mode != "memory" && o.mode != "text") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown --inject mode \"", o.mode, "\" (xrag, memory, text or none)"));
  }
  if (o.server.empty() || o.ns.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--inject ", o.mode, " needs --server and --ns"));
  }
  if (IsBlank(query)) return absl::InvalidArgumentError("the query is empty (--query)");
  if (o.k < 1) return absl::InvalidArgumentError("-k must be >= 1");
  if (o.rerank < 0 || (o.rerank > 0 && o.rerank < o.k)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--rerank must be 0 or at least -k (", o.k, "), got ", o.rerank));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Client> client, Client::Connect(o.server));
  const ModelConfig& config = m.model->config();
  std::vector<std::string> texts;
  if (o.mode == "text" && o.rerank == 0) {
    SearchRequest req;
    req.ns = o.ns;
    req.text_queries = {query};
    req.k = o.k;
    req.include_payload = true;
    ASSIGN_OR_RETURN(std::vector<std::vector<Hit>> hits, client->Search(req));
    for (const Hit& h : hits.empty() ? std::vector<Hit>{} : hits[0]) {
      if (!h.chunk.has_value() || IsBlank(h.chunk->text)) {
        return absl::FailedPreconditionError(
            absl::StrCat("hit ", h.id, " of namespace ", o.ns, " has no text"));
      }
      texts.push_back(h.chunk->text);
      out.hits.push_back({{"chunk_id", h.id}, {"score", h.score}});
    }
  } else {
    RecallRequest req;
    req.ns = o.ns;
    req.query_text = query;
    req.k = o.k;
    req.mode = o.mode == "xrag" ? RecallMode::kXrag : RecallMode::kMemory;
    if (o.rerank > 0) {
      req.rerank = RecallRerank{static_cast<uint32_t>(o.rerank), static_cast<uint32_t>(o.k)};
    }
    req.exact = o.exact && o.mode == "memory";
    req.decoder = m.model->fingerprint();
    ASSIGN_OR_RETURN(req.decoder_weights_sha256, WeightsSha256(*m.model));
    ASSIGN_OR_RETURN(RecallResult result, client->Recall(req));
    for (const RecallHit& h : result.hits) {
      nlohmann::json j = {{"chunk_id", h.chunk_id}, {"score", h.score}, {"rows", h.m}};
      if (h.rerank_score.has_value()) j["rerank_score"] = *h.rerank_score;
      out.hits.push_back(std::move(j));
      if (o.mode == "text") {
        texts.push_back(h.text);
        continue;
      }
      RETURN_IF_ERROR(CheckRows(h, config));
      out.memory.rows.insert(out.memory.rows.end(), h.tokens.begin(), h.tokens.end());
    }
  }
  if (out.hits.empty()) {
    return absl::NotFoundError(absl::StrCat("namespace ", o.ns, " returned no hit for the query"));
  }
  if (o.mode == "text") {
    ASSIGN_OR_RETURN(out.memory.tokens, TextMemoryTokens(*m.tokenizer, texts));
  }
  return out;
}

// The query of a prompt: the text without its placeholder.
std::string QueryOf(const InjectOptions& o, const std::string& prompt) {
  if (!o.query.empty()) return o.query;
  return absl::StrReplaceAll(prompt, {{std::string(kMemoryPlaceholder), ""}});
}

// --- score ------------------------------------------------------------------

struct ScoreArgs {
  std::string model_dir;
  std::string text_file;
  std::string prompt;  // "" = the query
  bool no_bos = false;
  bool json = false;
  InjectOptions inject;
};

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::stringstream ss;
  if (path == "-") {
    ss << std::cin.rdbuf();
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
    ss << in.rdbuf();
  }
  return ss.str();
}

absl::Status RunScore(const ScoreArgs& a) {
  if (IsBlank(a.inject.query)) return absl::InvalidArgumentError("the query is empty (--query)");
  ASSIGN_OR_RETURN(std::string text, ReadFile(a.text_file));
  if (IsBlank(text)) {
    return absl::InvalidArgumentError(absl::StrCat("the text of ", a.text_file, " is empty"));
  }
  ASSIGN_OR_RETURN(LoadedModel m, LoadModelDir(a.model_dir));
  ASSIGN_OR_RETURN(std::vector<int> target_ids, m.tokenizer->Encode(text));
  const std::vector<int32_t> target(target_ids.begin(), target_ids.end());
  if (target.empty()) return absl::InvalidArgumentError("the text has no tokens");
  ASSIGN_OR_RETURN(Retrieved r, Retrieve(a.inject, a.inject.query, m));
  const std::string prompt_text = a.prompt.empty() ? a.inject.query : a.prompt;
  ASSIGN_OR_RETURN(InjectedPrompt prompt,
                   AssemblePrompt(*m.tokenizer, m.model->config(), prompt_text, r.memory,
                                  !a.no_bos));
  const int64_t length = static_cast<int64_t>(prompt.tokens.size()) + target.size();
  if (length > m.model->config().max_seq_len) {
    return absl::OutOfRangeError(absl::StrCat("prompt and text of ", length,
                                              " tokens exceed the model's context of ",
                                              m.model->config().max_seq_len));
  }
  CpuForward forward(*m.model);
  KvCache cache(m.model->config(), static_cast<int>(length));
  ASSIGN_OR_RETURN(ContinuationScore score,
                   ScoreContinuation(&forward, &cache, prompt, target));
  if (!a.json) {
    std::cout << score.perplexity() << "\n";
    return absl::OkStatus();
  }
  nlohmann::json j = {{"perplexity", score.perplexity()},
                      {"nll", score.nll},
                      {"tokens", score.tokens},
                      {"greedy_correct", score.greedy_correct},
                      {"greedy_exact", score.greedy_exact()},
                      {"mode", a.inject.mode},
                      {"prompt_tokens", prompt.tokens.size()},
                      {"injected_rows", prompt.rows.size() / m.model->config().dim},
                      {"hits", r.hits},
                      {"fingerprint", m.model->fingerprint().Canonical()}};
  std::cout << j.dump() << "\n";
  return absl::OkStatus();
}

}  // namespace

void AddInjectOptions(CLI::App* cmd, InjectOptions* o) {
  cmd->add_option("--inject", o->mode,
                  "Memory injected from mnemod (--server, --ns): xrag (one projected row per\n"
                  "hit), memory (memory tokens per hit), text (the hits' text), none. The\n"
                  "rows replace the prompt's first <memory>, else go right after BOS")
      ->check(CLI::IsMember({"xrag", "memory", "text", "none"}))
      ->type_name("xrag|memory|text|none");
  cmd->add_option("--query", o->query, "Retrieval query (default: the prompt without <memory>)")
      ->type_name("Q");
  cmd->add_option("-k", o->k, "Hits injected")
      ->capture_default_str()->check(CLI::Range(1, 1024))->type_name("K");
  cmd->add_option("--rerank", o->rerank,
                  "Rerank this many dense candidates with the model's scorer and keep K\n"
                  "(0 = dense top K)")
      ->capture_default_str()->check(CLI::Range(0, 1024))->type_name("N");
  cmd->add_flag("--exact", o->exact,
                "memory: the exact memory tokens (registered with --exact) instead of the\n"
                "PQ-decoded ones");
}

absl::Status RunInjectedGenerate(const InjectedGenerateArgs& a) {
  ASSIGN_OR_RETURN(Device device, ParseDevice(a.device));
  ASSIGN_OR_RETURN(LoadedModel m, LoadModelDir(a.model_dir));
  ASSIGN_OR_RETURN(Retrieved r, Retrieve(a.inject, QueryOf(a.inject, a.prompt), m));
  ASSIGN_OR_RETURN(InjectedPrompt prompt,
                   AssemblePrompt(*m.tokenizer, m.model->config(), a.prompt, r.memory, a.bos));
  ASSIGN_OR_RETURN(std::unique_ptr<DecodeSession> session, NewDecodeSession(*m.model, device));
  GenerateOptions opts;
  opts.max_tokens = a.max_tokens;
  opts.sampling = SamplingOptions{a.temperature, a.top_k, a.top_p, a.seed};
  opts.eos_id = m.model->config().eos_id;
  opts.prompt_rows = prompt.Injected();
  ASSIGN_OR_RETURN(std::vector<int32_t> out, Generate(session.get(), prompt.tokens, opts));
  ASSIGN_OR_RETURN(std::string text,
                   m.tokenizer->Decode(std::vector<int>(out.begin(), out.end())));
  if (!a.json) {
    std::cout << text << "\n";
    return absl::OkStatus();
  }
  nlohmann::json j = {{"prompt_tokens", prompt.tokens},
                      {"tokens", out},
                      {"text", text},
                      {"mode", a.inject.mode},
                      {"hits", r.hits},
                      {"injected_rows", prompt.rows.size() / m.model->config().dim},
                      {"rows_position", prompt.rows_first},
                      {"device", a.device},
                      {"fingerprint", m.model->fingerprint().Canonical()}};
  std::cout << j.dump() << "\n";
  return absl::OkStatus();
}

void AddScoreCommand(CLI::App* app, std::function<absl::Status()>* action) {
  auto args = std::make_shared<ScoreArgs>();
  CLI::App* cmd = app->add_subcommand(
      "score",
      "Print the perplexity of a text's tokens after [BOS] <memory> QUERY, the memory\n"
      "injected from mnemod per --inject (--json: {perplexity, nll, tokens,\n"
      "greedy_correct, greedy_exact, mode, prompt_tokens, injected_rows, hits,\n"
      "fingerprint})");
  cmd->add_option("--model", args->model_dir, "Model directory")->required()->type_name("DIR");
  cmd->add_option("--text", args->text_file, "The text scored, or - for stdin")
      ->required()->type_name("FILE|-");
  cmd->add_option("--server", args->inject.server, "mnemod holding the namespace")
      ->type_name("HOST:PORT");
  cmd->add_option("--ns", args->inject.ns, "Namespace with an injection model")->type_name("NS");
  cmd->add_option("--prompt", args->prompt,
                  "Text before the scored one (may hold <memory>; default: the query)")
      ->type_name("TEXT");
  cmd->add_flag("--no-bos", args->no_bos, "Do not start the prompt with the BOS token");
  cmd->add_flag("--json", args->json, "Print one JSON object");
  AddInjectOptions(cmd, &args->inject);
  cmd->get_option("--inject")->required();
  cmd->get_option("--query")->required();
  cmd->callback([args, action] { *action = [args] { return RunScore(*args); }; });
}

}  // namespace mnemo::decoder::cli
