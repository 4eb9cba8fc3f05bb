// mnemo-decode with memory injected from mnemod (issue 14): `generate
// --inject MODE` and `score`. The memory of the chunks mnemod retrieves for
// a query reaches the prompt (decoder/injection_prompt.h) as
//   xrag    one projected embedding row per hit (Client::Recall, kXrag);
//   memory  the model's memory tokens per hit, decoded from their PQ codes
//           (or exact with --exact) and conditioned on the query (Recall);
//   text    the hits' text, each followed by "\n" (Client::Search; with
//           --rerank, Recall's reranked hits);
//   none    nothing (the plain prompt).
// Recall carries the decoder's fingerprint and weights hash: a namespace
// whose injection model was trained for another decoder answers
// FAILED_PRECONDITION naming the field.
#ifndef MNEMO_DECODER_INJECT_CLI_H_
#define MNEMO_DECODER_INJECT_CLI_H_

#include <cstdint>
#include <functional>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"

namespace mnemo::decoder::cli {

struct InjectOptions {
  std::string server;
  std::string ns;
  std::string mode;   // xrag | memory | text | none; "" = not injecting
  std::string query;  // "" = the prompt without its placeholder
  int k = 1;
  int rerank = 0;     // dense candidates the reranker keeps k of; 0 = dense top k
  bool exact = false; // memory: the exact memory tokens instead of the PQ-decoded ones
};

// Adds --inject, --query, -k, --rerank and --exact to `cmd` (which has its
// own --server and --ns bound to options->server / ns).
void AddInjectOptions(CLI::App* cmd, InjectOptions* options);

struct InjectedGenerateArgs {
  std::string model_dir;
  std::string prompt;
  int max_tokens = 64;
  float temperature = 0.0f;
  int top_k = 0;
  float top_p = 1.0f;
  uint64_t seed = 0;
  std::string device = "cpu";
  bool bos = true;
  bool json = false;
  InjectOptions inject;
};

// generate --inject: retrieves, assembles the prompt, generates and prints
// the text (or, with json, {prompt_tokens, tokens, text, mode, hits,
// injected_rows, device, fingerprint}).
absl::Status RunInjectedGenerate(const InjectedGenerateArgs& args);

// Adds the `score` subcommand; its callback sets *action.
void AddScoreCommand(CLI::App* app, std::function<absl::Status()>* action);

}  // namespace mnemo::decoder::cli

#endif  // MNEMO_DECODER_INJECT_CLI_H_
