// `mnemo backup create|list|verify` over the SDK's backup calls.
#include "client/cli/backup_commands.h"

#include <filesystem>
#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace mnemo::cli {

namespace {

using json = nlohmann::json;

// The server resolves paths against its own working directory; a relative
// path means what the user sees in their shell.
std::string Absolute(const std::string& dir) {
  if (dir.empty() || std::filesystem::path(dir).is_absolute()) return dir;
  return std::filesystem::absolute(dir).lexically_normal().string();
}

json ToJson(const BackupInfo& b) {
  return json{{"id", b.id},       {"created_unix_s", b.created_unix_s}, {"size_bytes", b.size_bytes},
              {"files", b.files}, {"sequence", b.sequence}};
}

std::string Line(const BackupInfo& b) {
  return absl::StrCat("backup ", b.id, "  ",
                      absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::FromUnixSeconds(b.created_unix_s),
                                       absl::UTCTimeZone()),
                      "  ", b.files, " files  ", b.size_bytes, " bytes  sequence ", b.sequence,
                      "\n");
}

}  // namespace

void AddBackupVerbs(CLI::App& app, const GlobalOptions* global, VerbAction* action) {
  CLI::App* backup = app.add_subcommand(
      "backup",
      "Back up the whole store into a directory on the server's host (online, incremental);\n"
      "restore with mnemod --restore-from DIR --data-dir NEW");
  backup->require_subcommand(1);

  auto dir = std::make_shared<std::string>();
  CLI::App* create = backup->add_subcommand("create", "Write a new backup into --dir");
  create->add_option("--dir", *dir, "Backup directory (created when missing)")
      ->type_name("DIR")
      ->required();
  create->callback([global, action, dir] {
    *action = [global, dir](Client& client, const Output& out) -> absl::Status {
      absl::StatusOr<BackupInfo> b = client.CreateBackup(Absolute(*dir), UnaryCall(*global));
      if (!b.ok()) return b.status();
      if (out.json) {
        PrintJson(out, ToJson(*b));
      } else {
        Print(out, absl::StrCat("created ", Line(*b)));
      }
      return absl::OkStatus();
    };
  });

  auto list_dir = std::make_shared<std::string>();
  CLI::App* list = backup->add_subcommand("list", "List the backups in --dir, oldest first");
  list->add_option("--dir", *list_dir, "Backup directory")->type_name("DIR")->required();
  list->callback([global, action, list_dir] {
    *action = [global, list_dir](Client& client, const Output& out) -> absl::Status {
      absl::StatusOr<std::vector<BackupInfo>> all =
          client.ListBackups(Absolute(*list_dir), UnaryCall(*global));
      if (!all.ok()) return all.status();
      if (out.json) {
        json arr = json::array();
        for (const BackupInfo& b : *all) arr.push_back(ToJson(b));
        PrintJson(out, json{{"backups", arr}});
      } else {
        for (const BackupInfo& b : *all) Print(out, Line(b));
      }
      return absl::OkStatus();
    };
  });

  auto verify_dir = std::make_shared<std::string>();
  auto id = std::make_shared<uint32_t>(0);
  CLI::App* verify = backup->add_subcommand(
      "verify", "Re-read a backup's files and check their sizes and checksums");
  verify->add_option("--dir", *verify_dir, "Backup directory")->type_name("DIR")->required();
  verify->add_option("--id", *id, "Backup id (default: every backup)")->type_name("N");
  verify->callback([global, action, verify_dir, id] {
    *action = [global, verify_dir, id](Client& client, const Output& out) -> absl::Status {
      absl::StatusOr<std::vector<uint32_t>> ok =
          client.VerifyBackup(Absolute(*verify_dir), *id, UnaryCall(*global));
      if (!ok.ok()) return ok.status();
      if (out.json) {
        PrintJson(out, json{{"verified", *ok}});
      } else {
        for (uint32_t b : *ok) Print(out, absl::StrCat("backup ", b, " ok\n"));
      }
      return absl::OkStatus();
    };
  });
}

}  // namespace mnemo::cli
