// The `mnemo inject ...` verbs of the admin CLI: memory injection over the
// SDK (README "Memory injection").
//
//   inject register  registers a namespace's injection model from its
//                    directory (config.json, inject.safetensors,
//                    tokenizer.model) and backfills the stored chunks
//   inject info      the namespace's model: lineage, shapes, stored bytes
//   inject recall    a query's chunks with their injection tokens
//
// Output and errors follow commands.h: text, or one JSON document with
// --json; the first error is returned.
#ifndef MNEMO_CLIENT_CLI_INJECT_COMMANDS_H_
#define MNEMO_CLIENT_CLI_INJECT_COMMANDS_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "client/cli/commands.h"
#include "mnemo/client.h"

namespace CLI {
class App;
}  // namespace CLI

namespace mnemo::cli {

struct InjectRegisterOptions {
  std::string ns;
  std::string dir;     // the model directory
  bool exact = false;  // keep exact memory tokens beside the PQ codes
};

struct InjectRecallOptions {
  std::string ns;
  std::string query;          // positional text
  std::string mode = "memory";  // xrag | memory
  int k = 4;
  uint32_t rerank = 0;        // candidates to rerank down to k; 0 = no rerank
  bool exact = false;         // memory: exact tokens instead of decoded codes
  bool with_tokens = false;   // --json: include every token value
};


// Adds `inject` and its subcommands to `app`. The parsed subcommand stores
// its action in *action; it reads *global when it runs.
void AddInjectVerbs(CLI::App& app, const GlobalOptions* global, VerbAction* action);

}  // namespace mnemo::cli

#endif  // MNEMO_CLIENT_CLI_INJECT_COMMANDS_H_
