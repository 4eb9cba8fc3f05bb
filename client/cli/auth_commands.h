// The `mnemo auth ...` verbs: API keys of a mnemod with authentication on
// (mnemod --admin-key-file; README "Authentication").
//
//   auth create-key --ns NS --role ROLE [--name N] [--rate-limit-rps R]
//                   [--rate-limit-burst B]   a new key; prints it once
//                                            (--json: {"key": ..., "id": ...})
//   auth list [--ns NS]                      keys (never their secrets)
//   auth revoke ID                           the key stops working
#ifndef MNEMO_CLIENT_CLI_AUTH_COMMANDS_H_
#define MNEMO_CLIENT_CLI_AUTH_COMMANDS_H_

#include "client/cli/commands.h"

namespace CLI {
class App;
}  // namespace CLI

namespace mnemo::cli {

// Adds `auth` and its subcommands to `app`; the parsed one stores its
// action in *action, which reads *global when it runs.
void AddAuthVerbs(CLI::App& app, const GlobalOptions* global, VerbAction* action);

}  // namespace mnemo::cli

#endif  // MNEMO_CLIENT_CLI_AUTH_COMMANDS_H_
