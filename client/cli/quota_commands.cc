// `mnemo ns set-quota` and the quota flags and lines of `ns create` / `ns get`.
#include "client/cli/quota_commands.h"

#include <cstdint>
#include <memory>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/cli/output.h"

namespace mnemo::cli {
namespace {

using json = nlohmann::json;

std::string Limit(uint64_t limit, bool bytes) {
  if (limit == 0) return "unlimited";
  return bytes ? absl::StrCat(HumanBytes(limit), " (", limit, ")") : absl::StrCat(limit);
}

std::string Used(uint64_t used, bool bytes) {
  return bytes ? absl::StrCat(HumanBytes(used), " (", used, ")") : absl::StrCat(used);
}

}  // namespace

void AddQuotaFlags(CLI::App* create, NamespaceQuota* quota) {
  create
      ->add_option("--max-bytes", quota->max_bytes,
                   "Quota: bytes of documents, chunks and vectors the namespace may hold (0 = "
                   "unlimited)")
      ->type_name("N");
  create
      ->add_option("--max-chunks", quota->max_chunks,
                   "Quota: chunks the namespace may hold (0 = unlimited)")
      ->type_name("N");
  create
      ->add_option("--max-kv-bytes", quota->max_kv_bytes,
                   "Quota: encoded chunk KV bytes the namespace may hold (0 = unlimited)")
      ->type_name("N");
}

void AddNsQuotaVerb(CLI::App* ns, const GlobalOptions* global, VerbAction* action) {
  struct Options {
    std::string name;
    uint64_t max_bytes = 0, max_chunks = 0, max_kv_bytes = 0;
  };
  auto o = std::make_shared<Options>();
  CLI::App* set = ns->add_subcommand(
      "set-quota",
      "Change a namespace's quota (flags not given keep their limit; 0 removes one).\n"
      "Writes that would exceed a limit fail with RESOURCE_EXHAUSTED; deletes free space.");
  set->add_option("name", o->name, "Namespace name")->required();
  CLI::Option* bytes = set->add_option("--max-bytes", o->max_bytes,
                                       "Bytes of documents, chunks and vectors (0 = unlimited)")
                           ->type_name("N");
  CLI::Option* chunks =
      set->add_option("--max-chunks", o->max_chunks, "Chunks (0 = unlimited)")->type_name("N");
  CLI::Option* kv =
      set->add_option("--max-kv-bytes", o->max_kv_bytes, "Encoded chunk KV bytes (0 = unlimited)")
          ->type_name("N");
  set->callback([global, action, o, bytes, chunks, kv] {
    if (bytes->count() + chunks->count() + kv->count() == 0) {
      throw CLI::RequiredError("--max-bytes, --max-chunks or --max-kv-bytes");
    }
    QuotaChange change;
    if (bytes->count() > 0) change.max_bytes = o->max_bytes;
    if (chunks->count() > 0) change.max_chunks = o->max_chunks;
    if (kv->count() > 0) change.max_kv_bytes = o->max_kv_bytes;
    *action = [global, o, change](Client& client, const Output& out) -> absl::Status {
      absl::StatusOr<NamespaceInfo> info =
          client.SetNamespaceQuota(o->name, change, UnaryCall(*global));
      if (!info.ok()) return info.status();
      if (out.json) {
        PrintJson(out, json{{"name", info->config.name},
                            {"quota", QuotaToJson(info->config.quota)},
                            {"usage", UsageToJson(info->usage)}});
      } else {
        Print(out, absl::StrCat("quota of ", info->config.name, "\n", QuotaDetails(*info)));
      }
      return absl::OkStatus();
    };
  });
}

json QuotaToJson(const NamespaceQuota& quota) {
  return json{{"max_bytes", quota.max_bytes},
              {"max_chunks", quota.max_chunks},
              {"max_kv_bytes", quota.max_kv_bytes}};
}

json UsageToJson(const NamespaceUsage& usage) {
  return json{{"bytes", usage.bytes}, {"chunks", usage.chunks}, {"kv_bytes", usage.kv_bytes}};
}

std::string QuotaDetails(const NamespaceInfo& info) {
  const NamespaceQuota& q = info.config.quota;
  const NamespaceUsage& u = info.usage;
  std::string s;
  absl::StrAppendFormat(&s, "quota bytes:       %s of %s\n", Used(u.bytes, true),
                        Limit(q.max_bytes, true));
  absl::StrAppendFormat(&s, "quota chunks:      %s of %s\n", Used(u.chunks, false),
                        Limit(q.max_chunks, false));
  absl::StrAppendFormat(&s, "quota KV bytes:    %s of %s\n", Used(u.kv_bytes, true),
                        Limit(q.max_kv_bytes, true));
  return s;
}

}  // namespace mnemo::cli
