// The `mnemo memory ...` verbs of the admin CLI: agent memories over the
// SDK (Client::Memory*, mnemo/memory.h).
//
//   memory add TEXT       adds a memory to the scope; prints its id
//   memory search QUERY   hybrid search within the scope
//   memory get ID / update ID / delete ID / history ID
//   memory list           pages through the scope's memories (get_all)
//   memory forget         deletes every memory of the scope (--all: every
//                         memory and all history of the namespace)
//
// Every verb takes --ns; the scope is --user, --agent and --run (at least
// one where the server needs a scope). --filter takes the JSON form of the
// filter algebra. Output follows commands.h: text, or one JSON document
// with --json; the first error is returned.
#ifndef MNEMO_CLIENT_CLI_MEMORY_COMMANDS_H_
#define MNEMO_CLIENT_CLI_MEMORY_COMMANDS_H_

#include <functional>

#include "absl/status/status.h"
#include "client/cli/commands.h"
#include "client/cli/output.h"
#include "mnemo/client.h"

namespace CLI {
class App;
}  // namespace CLI

namespace mnemo::cli {


// Adds `memory` and its subcommands to `app`. The parsed subcommand stores
// its action in *action; it reads *global when it runs.
void AddMemoryVerbs(CLI::App& app, const GlobalOptions* global, VerbAction* action);

}  // namespace mnemo::cli

#endif  // MNEMO_CLIENT_CLI_MEMORY_COMMANDS_H_
