// The `mnemo backup ...` verbs: backups of the whole store into a directory
// on the server's host (RocksDB BackupEngine; online and incremental).
//
//   backup create --dir DIR        a new backup; prints its id, files, bytes
//   backup list --dir DIR          every backup, oldest first
//   backup verify --dir DIR [--id] re-reads files, checks sizes and checksums
//
// Restoring is `mnemod --restore-from DIR --data-dir NEW` (README "Backup
// and restore"). A relative DIR is made absolute here, as checkpoint --to.
#ifndef MNEMO_CLIENT_CLI_BACKUP_COMMANDS_H_
#define MNEMO_CLIENT_CLI_BACKUP_COMMANDS_H_

#include <functional>

#include "absl/status/status.h"
#include "client/cli/commands.h"
#include "client/cli/output.h"
#include "mnemo/client.h"

namespace CLI {
class App;
}  // namespace CLI

namespace mnemo::cli {


// Adds `backup` and its subcommands to `app`; the parsed one stores its
// action in *action, which reads *global when it runs.
void AddBackupVerbs(CLI::App& app, const GlobalOptions* global, VerbAction* action);

}  // namespace mnemo::cli

#endif  // MNEMO_CLIENT_CLI_BACKUP_COMMANDS_H_
