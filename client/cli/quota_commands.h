// Namespace quotas in the `mnemo` CLI (see NamespaceQuota in mnemo.proto):
//
//   ns create NAME ... [--max-bytes N] [--max-chunks N] [--max-kv-bytes N]
//   ns set-quota NAME [--max-bytes N] [--max-chunks N] [--max-kv-bytes N]
//                     (unset flags keep their limit; 0 removes one)
//   ns get NAME       shows each limit next to its usage
#ifndef MNEMO_CLIENT_CLI_QUOTA_COMMANDS_H_
#define MNEMO_CLIENT_CLI_QUOTA_COMMANDS_H_

#include <string>

#include "client/cli/commands.h"
#include "mnemo/client.h"
#include "nlohmann/json.hpp"

namespace CLI {
class App;
}  // namespace CLI

namespace mnemo::cli {

// Adds --max-bytes, --max-chunks and --max-kv-bytes to `ns create`.
void AddQuotaFlags(CLI::App* create, NamespaceQuota* quota);

// Adds `set-quota` to the `ns` verb group; the parsed verb stores its action
// in *action, which reads *global when it runs.
void AddNsQuotaVerb(CLI::App* ns, const GlobalOptions* global, VerbAction* action);

// {"max_bytes": .., "max_chunks": .., "max_kv_bytes": ..} and
// {"bytes": .., "chunks": .., "kv_bytes": ..}.
nlohmann::json QuotaToJson(const NamespaceQuota& quota);
nlohmann::json UsageToJson(const NamespaceUsage& usage);

// Lines "bytes: <usage> of <limit>" etc. for `ns get`.
std::string QuotaDetails(const NamespaceInfo& info);

}  // namespace mnemo::cli

#endif  // MNEMO_CLIENT_CLI_QUOTA_COMMANDS_H_
