// The `mnemo block ...` verbs (see block_commands.h).
#include "client/cli/block_commands.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace mnemo::cli {
namespace {

using nlohmann::json;

struct BlockCliOptions {
  std::string ns;
  std::string agent;
  std::string label;
  std::string text;
  std::string old_text;
  std::optional<int64_t> line;
  std::optional<uint32_t> limit;
  std::string actor = "cli";
};

json BlockToJson(const MemoryBlock& b) {
  return json{{"agent_id", b.agent_id}, {"label", b.label}, {"value", b.value},
              {"limit_bytes", b.limit_bytes}, {"updated_at_ms", b.updated_at_ms}};
}

absl::Status PrintBlock(const MemoryBlock& b, const Output& out) {
  if (out.json) {
    PrintJson(out, BlockToJson(b));
  } else {
    Print(out, b.value + "\n");
  }
  return absl::OkStatus();
}

void AddNames(CLI::App* cmd, BlockCliOptions* o) {
  cmd->add_option("--ns", o->ns, "Namespace")->type_name("NS")->required();
  cmd->add_option("--agent", o->agent, "Agent id")->type_name("A")->required();
  cmd->add_option("--label", o->label, "Block label, e.g. persona or human")
      ->type_name("LABEL")
      ->required();
}

}  // namespace

void AddBlockVerbs(CLI::App& app, const GlobalOptions* global, VerbAction* action) {
  CLI::App* block = app.add_subcommand(
      "block", "Core-memory blocks: per (agent, label) a text value the agent edits, with a\n"
               "size limit and a history of every edit");
  block->require_subcommand(1);

  auto get = std::make_shared<BlockCliOptions>();
  CLI::App* g = block->add_subcommand("get", "Print the block's value");
  AddNames(g, get.get());
  g->callback([global, action, get] {
    *action = [global, get](Client& c, const Output& out) -> absl::Status {
      ASSIGN_OR_RETURN(MemoryBlock b,
                       c.BlockGet(get->ns, get->agent, get->label, UnaryCall(*global)));
      return PrintBlock(b, out);
    };
  });

  struct EditVerb {
    const char* name;
    const char* help;
    BlockEditKind kind;
  };
  for (const EditVerb& v : {EditVerb{"set", "Set the value (creates the block)", BlockEditKind::kSet},
                            EditVerb{"append", "Add TEXT as a new last line", BlockEditKind::kAppend},
                            EditVerb{"replace", "Replace the one occurrence of --old with TEXT",
                                     BlockEditKind::kReplace},
                            EditVerb{"insert", "Insert TEXT as line --line (default: at the end)",
                                     BlockEditKind::kInsert}}) {
    auto o = std::make_shared<BlockCliOptions>();
    CLI::App* cmd = block->add_subcommand(v.name, v.help);
    AddNames(cmd, o.get());
    cmd->add_option("text", o->text, "Text")->required(v.kind != BlockEditKind::kReplace);
    if (v.kind == BlockEditKind::kSet) {
      cmd->add_option("--limit", o->limit, "Size limit in bytes (default 2000 for a new block)")
          ->type_name("BYTES");
    }
    if (v.kind == BlockEditKind::kReplace) {
      cmd->add_option("--old", o->old_text, "The text to replace; must occur exactly once")
          ->required();
    }
    if (v.kind == BlockEditKind::kInsert) {
      cmd->add_option("--line", o->line, "Line number the text goes before (0 = first)");
    }
    cmd->add_option("--actor", o->actor, "Who makes the change (history)")->capture_default_str();
    const BlockEditKind kind = v.kind;
    cmd->callback([global, action, o, kind] {
      *action = [global, o, kind](Client& c, const Output& out) -> absl::Status {
        BlockChange change;
        change.kind = kind;
        change.text = o->text;
        change.old_text = o->old_text;
        change.line = o->line;
        change.limit_bytes = o->limit;
        change.actor = o->actor;
        ASSIGN_OR_RETURN(MemoryBlock b,
                         c.BlockEdit(o->ns, o->agent, o->label, change, UnaryCall(*global)));
        return PrintBlock(b, out);
      };
    });
  }

  auto history = std::make_shared<BlockCliOptions>();
  CLI::App* h = block->add_subcommand("history", "Print the block's edits, oldest first");
  AddNames(h, history.get());
  h->callback([global, action, history] {
    *action = [global, history](Client& c, const Output& out) -> absl::Status {
      ASSIGN_OR_RETURN(std::vector<BlockEvent> events,
                       c.BlockHistory(history->ns, history->agent, history->label,
                                      UnaryCall(*global)));
      if (out.json) {
        json list = json::array();
        for (const BlockEvent& e : events) {
          list.push_back(json{{"edit", BlockEditKindName(e.kind)}, {"old_value", e.old_value},
                              {"new_value", e.new_value}, {"time_ms", e.time_ms},
                              {"actor", e.actor}});
        }
        PrintJson(out, json{{"events", list}});
        return absl::OkStatus();
      }
      std::string t;
      for (const BlockEvent& e : events) {
        absl::StrAppendFormat(&t, "%d  %-7s  %s  %d -> %d bytes\n", e.time_ms,
                              BlockEditKindName(e.kind), e.actor.empty() ? "-" : e.actor,
                              e.old_value.size(), e.new_value.size());
      }
      Print(out, t);
      return absl::OkStatus();
    };
  });
}

}  // namespace mnemo::cli
