// The `mnemo block ...` verbs of the admin CLI: core-memory blocks over the
// SDK (Client::Block*, mnemo/memory.h).
//
//   block get      prints the block's value
//   block set      sets the value (creates the block; --limit BYTES)
//   block append   adds a line
//   block replace  replaces the one occurrence of --old with the text
//   block insert   inserts the text as line --line (default: after the last)
//   block history  prints the block's edits
//
// Every verb takes --ns, --agent and --label; output follows commands.h
// (text, or one JSON document with --json).
#ifndef MNEMO_CLIENT_CLI_BLOCK_COMMANDS_H_
#define MNEMO_CLIENT_CLI_BLOCK_COMMANDS_H_

#include <functional>

#include "absl/status/status.h"
#include "client/cli/commands.h"
#include "client/cli/output.h"
#include "mnemo/client.h"

namespace CLI {
class App;
}  // namespace CLI

namespace mnemo::cli {


// Adds `block` and its subcommands to `app` (see memory_commands.h for the
// action protocol).
void AddBlockVerbs(CLI::App& app, const GlobalOptions* global, VerbAction* action);

}  // namespace mnemo::cli

#endif  // MNEMO_CLIENT_CLI_BLOCK_COMMANDS_H_
