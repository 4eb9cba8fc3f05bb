// `mnemo auth create-key|list|revoke` over the SDK's API-key calls.
#include "client/cli/auth_commands.h"

#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace mnemo::cli {
namespace {

using json = nlohmann::json;

const char* RoleWord(ApiKeyRole role) {
  switch (role) {
    case ApiKeyRole::kRead:
      return "read";
    case ApiKeyRole::kWrite:
      return "write";
    case ApiKeyRole::kAdmin:
      return "admin";
  }
  return "?";
}

json ToJson(const ApiKeyInfo& k) {
  return json{{"id", k.id},
              {"ns", k.ns},
              {"role", RoleWord(k.role)},
              {"name", k.name},
              {"created_unix_ms", k.created_unix_ms},
              {"rate_limit_rps", k.rate_limit_rps},
              {"rate_limit_burst", k.rate_limit_burst}};
}

std::string Line(const ApiKeyInfo& k) {
  std::string line = absl::StrCat(k.id, "  ", RoleWord(k.role), " on ", k.ns);
  if (!k.name.empty()) absl::StrAppend(&line, "  name=", k.name);
  if (k.rate_limit_rps > 0) {
    absl::StrAppend(&line, "  rate=", k.rate_limit_rps, "/s burst=", k.rate_limit_burst);
  }
  return line + "\n";
}

struct CreateKeyOptions {
  std::string ns;
  std::string role;
  std::string name;
  double rps = 0;
  uint32_t burst = 0;
};

}  // namespace

void AddAuthVerbs(CLI::App& app, const GlobalOptions* global, VerbAction* action) {
  CLI::App* auth = app.add_subcommand(
      "auth", "Create, list and revoke API keys of a mnemod started with --admin-key-file");
  auth->require_subcommand(1);

  auto opts = std::make_shared<CreateKeyOptions>();
  CLI::App* create = auth->add_subcommand(
      "create-key", "Create an API key with one role on one namespace; the key is shown once");
  create->add_option("--ns", opts->ns, "Namespace the key may use (\"*\" = every namespace)")
      ->type_name("NS")
      ->required();
  create->add_option("--role", opts->role, "read, write or admin")
      ->type_name("ROLE")
      ->required()
      ->check(CLI::IsMember({"read", "write", "admin"}));
  create->add_option("--name", opts->name, "A label for the key")->type_name("NAME");
  create->add_option("--rate-limit-rps", opts->rps,
                     "Requests per second of this key (default: mnemod --rate-limit-rps)")
      ->check(CLI::NonNegativeNumber);
  create->add_option("--rate-limit-burst", opts->burst,
                     "Burst of this key (default: mnemod --rate-limit-burst)");
  create->callback([global, action, opts] {
    *action = [global, opts](Client& client, const Output& out) -> absl::Status {
      NewApiKey key;
      key.ns = opts->ns;
      key.role = opts->role == "admin"   ? ApiKeyRole::kAdmin
                 : opts->role == "write" ? ApiKeyRole::kWrite
                                         : ApiKeyRole::kRead;
      key.name = opts->name;
      key.rate_limit_rps = opts->rps;
      key.rate_limit_burst = opts->burst;
      absl::StatusOr<CreatedApiKey> created = client.CreateApiKey(key, UnaryCall(*global));
      if (!created.ok()) return created.status();
      if (out.json) {
        json j = ToJson(created->info);
        j["key"] = created->key;
        PrintJson(out, j);
      } else {
        Print(out, absl::StrCat(created->key, "\n"));
        Print(out, absl::StrCat("created ", Line(created->info),
                                "store the key now: it is not shown again\n"));
      }
      return absl::OkStatus();
    };
  });

  auto list_ns = std::make_shared<std::string>();
  CLI::App* list = auth->add_subcommand("list", "List API keys (never their secrets)");
  list->add_option("--ns", *list_ns, "Only the keys of this namespace (default: every key)")
      ->type_name("NS");
  list->callback([global, action, list_ns] {
    *action = [global, list_ns](Client& client, const Output& out) -> absl::Status {
      absl::StatusOr<std::vector<ApiKeyInfo>> keys =
          client.ListApiKeys(*list_ns, UnaryCall(*global));
      if (!keys.ok()) return keys.status();
      if (out.json) {
        json arr = json::array();
        for (const ApiKeyInfo& k : *keys) arr.push_back(ToJson(k));
        PrintJson(out, json{{"keys", arr}});
      } else {
        for (const ApiKeyInfo& k : *keys) Print(out, Line(k));
      }
      return absl::OkStatus();
    };
  });

  auto id = std::make_shared<std::string>();
  CLI::App* revoke = auth->add_subcommand("revoke", "Revoke an API key by id");
  revoke->add_option("id", *id, "The key's id (mnemo auth list)")->required();
  revoke->callback([global, action, id] {
    *action = [global, id](Client& client, const Output& out) -> absl::Status {
      absl::Status s = client.RevokeApiKey(*id, UnaryCall(*global));
      if (!s.ok()) return s;
      if (out.json) {
        PrintJson(out, json{{"revoked", *id}});
      } else {
        Print(out, absl::StrCat("revoked ", *id, "\n"));
      }
      return absl::OkStatus();
    };
  });
}

}  // namespace mnemo::cli
