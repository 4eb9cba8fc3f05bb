// The `mnemo memory ...` verbs (see memory_commands.h).
#include "client/cli/memory_commands.h"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace mnemo::cli {
namespace {

using nlohmann::json;

struct MemoryCliOptions {
  std::string ns;
  MemoryScope scope;
  std::string arg;  // text, query or id
  std::string metadata;
  std::string filter;
  std::string actor = "cli";
  int top_k = 10;
  std::optional<float> threshold;
  std::optional<float> near_duplicate;
  std::optional<int64_t> ttl_seconds;
  std::optional<int64_t> expires_at_ms;
  std::optional<int64_t> valid_at_ms;
  std::optional<int64_t> invalid_at_ms;
  std::optional<int64_t> valid_from_ms;
  std::optional<int64_t> valid_to_ms;
  float recency_weight = 0;
  bool show_expired = false;
  uint32_t page_size = 100;
  std::string page_token;
  bool all = false;
  std::optional<std::string> new_text;
};

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

json MemoryToJson(const Memory& m) {
  json meta = json::object();
  try {
    if (!m.metadata_json.empty()) meta = json::parse(m.metadata_json);
  } catch (const std::exception&) {
    meta = m.metadata_json;
  }
  json out = {{"id", m.id},
              {"text", m.text},
              {"metadata", meta},
              {"user_id", m.scope.user_id},
              {"agent_id", m.scope.agent_id},
              {"run_id", m.scope.run_id},
              {"created_at_ms", m.created_at_ms},
              {"updated_at_ms", m.updated_at_ms},
              {"valid_at_ms", m.valid_at_ms},
              {"hash", m.hash}};
  out["expires_at_ms"] = m.expires_at_ms.has_value() ? json(*m.expires_at_ms) : json(nullptr);
  out["invalid_at_ms"] = m.invalid_at_ms.has_value() ? json(*m.invalid_at_ms) : json(nullptr);
  return out;
}

std::string MemoryText(const Memory& m) {
  std::string t;
  absl::StrAppendFormat(&t, "id:          %s\ntext:        %s\nmetadata:    %s\n", m.id, m.text,
                        m.metadata_json);
  absl::StrAppendFormat(&t, "scope:       user=%s agent=%s run=%s\n", m.scope.user_id,
                        m.scope.agent_id, m.scope.run_id);
  absl::StrAppendFormat(&t, "created:     %d\nupdated:     %d\nvalid_at:    %d\n",
                        m.created_at_ms, m.updated_at_ms, m.valid_at_ms);
  if (m.invalid_at_ms.has_value()) absl::StrAppendFormat(&t, "invalid_at:  %d\n", *m.invalid_at_ms);
  if (m.expires_at_ms.has_value()) absl::StrAppendFormat(&t, "expires_at:  %d\n", *m.expires_at_ms);
  return t;
}

void AddScope(CLI::App* cmd, MemoryCliOptions* o) {
  cmd->add_option("--ns", o->ns, "Namespace (an encoder namespace; add creates it)")
      ->type_name("NS")
      ->required();
  cmd->add_option("--user", o->scope.user_id, "Scope: user id")->type_name("U");
  cmd->add_option("--agent", o->scope.agent_id, "Scope: agent id")->type_name("A");
  cmd->add_option("--run", o->scope.run_id, "Scope: run (session) id")->type_name("R");
}

void AddFilter(CLI::App* cmd, MemoryCliOptions* o) {
  cmd->add_option("--filter", o->filter,
                  "Filter, JSON: {\"AND\"|\"OR\": [...]}, {\"NOT\": {...}}, {\"field\": value} or "
                  "{\"field\": {\"eq|ne|in|nin|gt|gte|lt|lte|contains|icontains\": ...}}")
      ->type_name("JSON");
  cmd->add_flag("--show-expired", o->show_expired, "Include expired memories");
}

absl::Status Add(Client& c, const GlobalOptions& g, const MemoryCliOptions& o, const Output& out) {
  MemoryInput in;
  in.text = o.arg;
  in.metadata_json = o.metadata;
  if (o.ttl_seconds.has_value()) in.expires_at_ms = NowMs() + *o.ttl_seconds * 1000;
  if (o.expires_at_ms.has_value()) in.expires_at_ms = o.expires_at_ms;
  in.valid_at_ms = o.valid_at_ms;
  MemoryAddOptions options;
  options.scope = o.scope;
  options.actor = o.actor;
  options.near_duplicate_threshold = o.near_duplicate;
  ASSIGN_OR_RETURN(std::vector<MemoryAddResult> results,
                   c.MemoryAdd(o.ns, {in}, options, UnaryCall(g)));
  if (results.size() != 1) return absl::InternalError("the server answered no result");
  const MemoryAddResult& r = results[0];
  if (out.json) {
    PrintJson(out, json{{"outcome", MemoryAddOutcomeName(r.outcome)},
                        {"similarity", r.similarity},
                        {"memory", MemoryToJson(r.memory)}});
    return absl::OkStatus();
  }
  Print(out, r.memory.id + "\n");
  if (r.outcome == MemoryAddOutcome::kNoop) {
    std::fprintf(out.err, "an identical memory exists; nothing added\n");
  } else if (r.outcome == MemoryAddOutcome::kUpdated) {
    std::fprintf(out.err, "updated a near duplicate (similarity %.3f)\n", r.similarity);
  }
  return absl::OkStatus();
}

absl::Status Search(Client& c, const GlobalOptions& g, const MemoryCliOptions& o,
                    const Output& out) {
  MemorySearchRequest req;
  req.ns = o.ns;
  req.scope = o.scope;
  req.query = o.arg;
  req.top_k = o.top_k;
  req.threshold = o.threshold;
  req.filter_json = o.filter;
  req.valid_from_ms = o.valid_from_ms;
  req.valid_to_ms = o.valid_to_ms;
  req.recency_weight = o.recency_weight;
  req.show_expired = o.show_expired;
  ASSIGN_OR_RETURN(std::vector<MemoryHit> hits, c.MemorySearch(req, UnaryCall(g)));
  if (out.json) {
    json list = json::array();
    for (const MemoryHit& h : hits) {
      list.push_back(json{{"score", h.score}, {"similarity", h.similarity},
                          {"memory", MemoryToJson(h.memory)}});
    }
    PrintJson(out, json{{"hits", list}});
    return absl::OkStatus();
  }
  std::string t;
  for (const MemoryHit& h : hits) {
    absl::StrAppendFormat(&t, "%.4f  %.4f  %s  %s\n", h.score, h.similarity, h.memory.id,
                          h.memory.text);
  }
  if (hits.empty()) t = "no memories found\n";
  Print(out, t);
  return absl::OkStatus();
}

absl::Status Get(Client& c, const GlobalOptions& g, const MemoryCliOptions& o, const Output& out) {
  ASSIGN_OR_RETURN(Memory m, c.MemoryGet(o.ns, o.arg, UnaryCall(g)));
  if (out.json) {
    PrintJson(out, MemoryToJson(m));
  } else {
    Print(out, MemoryText(m));
  }
  return absl::OkStatus();
}

absl::Status List(Client& c, const GlobalOptions& g, const MemoryCliOptions& o,
                  const Output& out) {
  MemoryListRequest req;
  req.ns = o.ns;
  req.scope = o.scope;
  req.filter_json = o.filter;
  req.show_expired = o.show_expired;
  req.page_size = o.page_size;
  req.page_token = o.page_token;
  std::vector<Memory> all;
  std::string next;
  for (;;) {
    ASSIGN_OR_RETURN(MemoryPage page, c.MemoryList(req, UnaryCall(g)));
    for (Memory& m : page.memories) all.push_back(std::move(m));
    next = page.next_page_token;
    if (!o.all || next.empty()) break;
    req.page_token = next;
  }
  if (out.json) {
    json list = json::array();
    for (const Memory& m : all) list.push_back(MemoryToJson(m));
    PrintJson(out, json{{"memories", list}, {"next_page_token", next}});
    return absl::OkStatus();
  }
  std::string t;
  for (const Memory& m : all) absl::StrAppendFormat(&t, "%s  %s\n", m.id, m.text);
  if (!next.empty()) absl::StrAppendFormat(&t, "next page: --page-token %s\n", next);
  Print(out, t);
  return absl::OkStatus();
}

absl::Status Update(Client& c, const GlobalOptions& g, const MemoryCliOptions& o,
                    const Output& out) {
  MemoryChanges changes;
  changes.text = o.new_text;
  if (!o.metadata.empty()) changes.metadata_json = o.metadata;
  if (o.ttl_seconds.has_value()) {
    changes.expires_at_ms = *o.ttl_seconds == 0 ? 0 : NowMs() + *o.ttl_seconds * 1000;
  }
  if (o.expires_at_ms.has_value()) changes.expires_at_ms = o.expires_at_ms;
  changes.valid_at_ms = o.valid_at_ms;
  changes.invalid_at_ms = o.invalid_at_ms;
  changes.actor = o.actor;
  ASSIGN_OR_RETURN(Memory m, c.MemoryUpdate(o.ns, o.arg, changes, UnaryCall(g)));
  if (out.json) {
    PrintJson(out, MemoryToJson(m));
  } else {
    Print(out, m.id + "\n");
  }
  return absl::OkStatus();
}

absl::Status Delete(Client& c, const GlobalOptions& g, const MemoryCliOptions& o,
                    const Output& out) {
  RETURN_IF_ERROR(c.MemoryDelete(o.ns, o.arg, o.actor, UnaryCall(g)));
  if (out.json) {
    PrintJson(out, json{{"deleted", o.arg}});
  } else {
    Print(out, "deleted " + o.arg + "\n");
  }
  return absl::OkStatus();
}

absl::Status History(Client& c, const GlobalOptions& g, const MemoryCliOptions& o,
                     const Output& out) {
  ASSIGN_OR_RETURN(std::vector<MemoryEvent> events, c.MemoryHistory(o.ns, o.arg, UnaryCall(g)));
  if (out.json) {
    json list = json::array();
    for (const MemoryEvent& e : events) {
      list.push_back(json{{"memory_id", e.memory_id}, {"event", MemoryEventKindName(e.kind)},
                          {"old_text", e.old_text}, {"new_text", e.new_text},
                          {"time_ms", e.time_ms}, {"actor", e.actor}});
    }
    PrintJson(out, json{{"events", list}});
    return absl::OkStatus();
  }
  std::string t;
  for (const MemoryEvent& e : events) {
    absl::StrAppendFormat(&t, "%d  %-6s  %s  %s -> %s\n", e.time_ms, MemoryEventKindName(e.kind),
                          e.actor.empty() ? "-" : e.actor, e.old_text.empty() ? "-" : e.old_text,
                          e.new_text.empty() ? "-" : e.new_text);
  }
  Print(out, t);
  return absl::OkStatus();
}

absl::Status Forget(Client& c, const GlobalOptions& g, const MemoryCliOptions& o,
                    const Output& out) {
  uint64_t deleted = 0;
  if (o.all) {
    if (!o.scope.user_id.empty() || !o.scope.agent_id.empty() || !o.scope.run_id.empty()) {
      return absl::InvalidArgumentError("--all forgets the whole namespace; drop --user/--agent/--run");
    }
    ASSIGN_OR_RETURN(deleted, c.MemoryReset(o.ns, UnaryCall(g)));
  } else {
    ASSIGN_OR_RETURN(deleted, c.MemoryDeleteAll(o.ns, o.scope, o.actor, UnaryCall(g)));
  }
  if (out.json) {
    PrintJson(out, json{{"deleted", deleted}});
  } else {
    Print(out, absl::StrCat("deleted ", deleted, " memories\n"));
  }
  return absl::OkStatus();
}

using Verb = absl::Status (*)(Client&, const GlobalOptions&, const MemoryCliOptions&,
                              const Output&);

void Bind(CLI::App* cmd, const GlobalOptions* global, VerbAction* action,
          std::shared_ptr<MemoryCliOptions> o, Verb verb) {
  cmd->callback([global, action, o, verb] {
    *action = [global, o, verb](Client& c, const Output& out) {
      return verb(c, *global, *o, out);
    };
  });
}

}  // namespace

void AddMemoryVerbs(CLI::App& app, const GlobalOptions* global, VerbAction* action) {
  CLI::App* mem = app.add_subcommand(
      "memory",
      "Agent memories: scoped facts with metadata, history, expiry and hybrid search\n"
      "(scope: --user, --agent, --run; at least one where a scope is needed)");
  mem->require_subcommand(1);

  auto add = std::make_shared<MemoryCliOptions>();
  CLI::App* a = mem->add_subcommand(
      "add", "Add a memory to the scope and print its id (an identical memory is kept; a\n"
             "near duplicate is updated instead)");
  AddScope(a, add.get());
  a->add_option("text", add->arg, "The memory's text")->required();
  a->add_option("--metadata", add->metadata, "Metadata, a JSON object")->type_name("JSON");
  a->add_option("--ttl", add->ttl_seconds, "Expire after this many seconds")
      ->type_name("SECONDS")
      ->check(CLI::PositiveNumber);
  a->add_option("--expires-at", add->expires_at_ms, "Expire at this time")->type_name("UNIX_MS");
  a->add_option("--valid-at", add->valid_at_ms, "When the fact became true (default: now)")
      ->type_name("UNIX_MS");
  a->add_option("--near-duplicate", add->near_duplicate,
                "Similarity at or above which the most similar memory is updated instead "
                "(default 0.9; above 1 = never)")
      ->type_name("SIM");
  a->add_option("--actor", add->actor, "Who makes the change (history)")->capture_default_str();
  Bind(a, global, action, add, Add);

  auto search = std::make_shared<MemoryCliOptions>();
  CLI::App* s = mem->add_subcommand("search", "Search the scope's memories (dense + BM25)");
  AddScope(s, search.get());
  s->add_option("query", search->arg, "Query text")->required();
  s->add_option("-k,--top-k", search->top_k, "Hits to return")->capture_default_str();
  s->add_option("--threshold", search->threshold, "Minimum cosine similarity")->type_name("SIM");
  AddFilter(s, search.get());
  s->add_option("--valid-from", search->valid_from_ms, "Valid-time range start")
      ->type_name("UNIX_MS");
  s->add_option("--valid-to", search->valid_to_ms, "Valid-time range end")->type_name("UNIX_MS");
  s->add_option("--recency", search->recency_weight,
                "Weight of recency in the score, 0..1 (half-life 7 days)")
      ->type_name("W");
  Bind(s, global, action, search, Search);

  auto get = std::make_shared<MemoryCliOptions>();
  CLI::App* gcmd = mem->add_subcommand("get", "Print one memory");
  AddScope(gcmd, get.get());
  gcmd->add_option("id", get->arg, "Memory id")->required();
  Bind(gcmd, global, action, get, Get);

  auto list = std::make_shared<MemoryCliOptions>();
  CLI::App* l = mem->add_subcommand("list", "List memories in id (creation) order, a page at a time");
  AddScope(l, list.get());
  AddFilter(l, list.get());
  l->add_option("--page-size", list->page_size, "Memories per page (1..1000)")
      ->capture_default_str();
  l->add_option("--page-token", list->page_token, "Token of the previous page (same query)")
      ->type_name("TOKEN");
  l->add_flag("--all", list->all, "Follow every page");
  Bind(l, global, action, list, List);

  auto update = std::make_shared<MemoryCliOptions>();
  CLI::App* u = mem->add_subcommand("update", "Change a memory (refused once it expired)");
  AddScope(u, update.get());
  u->add_option("id", update->arg, "Memory id")->required();
  u->add_option("--text", update->new_text, "New text");
  u->add_option("--metadata", update->metadata, "New metadata, a JSON object")->type_name("JSON");
  u->add_option("--ttl", update->ttl_seconds, "Expire this many seconds from now (0 = never)")
      ->type_name("SECONDS")
      ->check(CLI::NonNegativeNumber);
  u->add_option("--expires-at", update->expires_at_ms, "Expire at this time (0 = never)")
      ->type_name("UNIX_MS");
  u->add_option("--valid-at", update->valid_at_ms, "When the fact became true")
      ->type_name("UNIX_MS");
  u->add_option("--invalid-at", update->invalid_at_ms, "When the fact stopped being true (0 = clear)")
      ->type_name("UNIX_MS");
  u->add_option("--actor", update->actor, "Who makes the change (history)")
      ->capture_default_str();
  Bind(u, global, action, update, Update);

  auto del = std::make_shared<MemoryCliOptions>();
  CLI::App* d = mem->add_subcommand("delete", "Delete one memory (its history stays)");
  AddScope(d, del.get());
  d->add_option("id", del->arg, "Memory id")->required();
  d->add_option("--actor", del->actor, "Who makes the change (history)")->capture_default_str();
  Bind(d, global, action, del, Delete);

  auto history = std::make_shared<MemoryCliOptions>();
  CLI::App* h = mem->add_subcommand("history", "Print a memory's changes, oldest first");
  AddScope(h, history.get());
  h->add_option("id", history->arg, "Memory id")->required();
  Bind(h, global, action, history, History);

  auto forget = std::make_shared<MemoryCliOptions>();
  CLI::App* f = mem->add_subcommand(
      "forget", "Delete every memory of the scope (--all: every memory and all history of the\n"
                "namespace)");
  AddScope(f, forget.get());
  f->add_flag("--all", forget->all, "Reset the whole namespace");
  f->add_option("--actor", forget->actor, "Who makes the change (history)")->capture_default_str();
  Bind(f, global, action, forget, Forget);
}

}  // namespace mnemo::cli
