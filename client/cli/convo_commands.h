// The `mnemo convo ...` verbs of the admin CLI: conversation logs of agent
// runs over the SDK (Client::Convo*, mnemo/convo.h).
//
//   convo append CONTENT   appends one message to --run (--role, default
//                          user; --time; --metadata); prints its id
//   convo search QUERY     hybrid search of the run's (or, without --run,
//                          every run's) messages
//   convo list             a run's messages in time order, a page at a time
//   convo delete-run       deletes every message of --run
//
// Every verb takes --ns; search and list select with --role, --since and
// --until (inclusive; Unix ms or RFC 3339, e.g. 2026-12-06T10:00:00Z).
// Output follows commands.h: text, or one JSON document with --json.
#ifndef MNEMO_CLIENT_CLI_CONVO_COMMANDS_H_
#define MNEMO_CLIENT_CLI_CONVO_COMMANDS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/cli/commands.h"

namespace CLI {
class App;
}  // namespace CLI

namespace mnemo::cli {

// Adds `convo` and its subcommands to `app`. The parsed subcommand stores
// its action in *action; it reads *global when it runs.
void AddConvoVerbs(CLI::App& app, const GlobalOptions* global, VerbAction* action);

// A time argument: Unix ms (digits) or an RFC 3339 time; INVALID_ARGUMENT
// naming `flag` otherwise.
absl::StatusOr<int64_t> ParseTimeArg(absl::string_view flag, absl::string_view value);

}  // namespace mnemo::cli

#endif  // MNEMO_CLIENT_CLI_CONVO_COMMANDS_H_
