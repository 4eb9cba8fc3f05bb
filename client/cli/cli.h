// The `mnemo` admin CLI: argument parsing and dispatch to the verbs of
// commands.h.
#ifndef MNEMO_CLIENT_CLI_CLI_H_
#define MNEMO_CLIENT_CLI_CLI_H_

namespace mnemo::cli {

// Parses argv, runs one verb and returns the process exit code:
// 0 on success, 1 on an error from a verb or the server (printed to stderr
// as "error: <CODE>: <message>"), 2 on a usage error.
int RunCli(int argc, char** argv);

}  // namespace mnemo::cli

#endif  // MNEMO_CLIENT_CLI_CLI_H_
