// The `mnemo convo ...` verbs (see convo_commands.h).
#include "client/cli/convo_commands.h"

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace mnemo::cli {
namespace {

using nlohmann::json;

struct ConvoCliOptions {
  std::string ns;
  std::string run;
  std::string role;
  std::string arg;  // content or query
  std::string metadata;
  std::string time, since, until;  // Unix ms or RFC 3339
  int top_k = 10;
  uint32_t page_size = 100;
  std::string page_token;
  bool all = false;
};

json MessageToJson(const ConvoMessage& m) {
  json meta = json::object();
  try {
    if (!m.metadata_json.empty()) meta = json::parse(m.metadata_json);
  } catch (const std::exception&) {
    meta = m.metadata_json;
  }
  return json{{"id", m.id},           {"run_id", m.run_id},   {"role", m.role},
              {"content", m.content}, {"time_ms", m.time_ms}, {"metadata", meta}};
}

std::string TimeText(int64_t ms) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixMillis(ms), absl::UTCTimeZone());
}

absl::StatusOr<ConvoSelection> Selection(const ConvoCliOptions& o) {
  ConvoSelection s;
  s.run_id = o.run;
  s.role = o.role;
  if (!o.since.empty()) {
    ASSIGN_OR_RETURN(s.since_ms, ParseTimeArg("--since", o.since));
  }
  if (!o.until.empty()) {
    ASSIGN_OR_RETURN(s.until_ms, ParseTimeArg("--until", o.until));
  }
  return s;
}

absl::Status Append(Client& c, const GlobalOptions& g, const ConvoCliOptions& o,
                    const Output& out) {
  ConvoMessageInput in;
  in.role = o.role.empty() ? "user" : o.role;
  in.content = o.arg;
  in.metadata_json = o.metadata;
  if (!o.time.empty()) {
    ASSIGN_OR_RETURN(in.time_ms, ParseTimeArg("--time", o.time));
  }
  ASSIGN_OR_RETURN(std::vector<ConvoMessage> messages,
                   c.ConvoAppend(o.ns, o.run, {in}, UnaryCall(g)));
  if (messages.size() != 1) return absl::InternalError("the server answered no message");
  if (out.json) {
    PrintJson(out, MessageToJson(messages[0]));
  } else {
    Print(out, messages[0].id + "\n");
  }
  return absl::OkStatus();
}

absl::Status Search(Client& c, const GlobalOptions& g, const ConvoCliOptions& o,
                    const Output& out) {
  ConvoSearchRequest req;
  req.ns = o.ns;
  ASSIGN_OR_RETURN(req.selection, Selection(o));
  req.query = o.arg;
  req.top_k = o.top_k;
  ASSIGN_OR_RETURN(std::vector<ConvoHit> hits, c.ConvoSearch(req, UnaryCall(g)));
  if (out.json) {
    json list = json::array();
    for (const ConvoHit& h : hits) {
      list.push_back(json{{"score", h.score}, {"similarity", h.similarity},
                          {"message", MessageToJson(h.message)}});
    }
    PrintJson(out, json{{"hits", list}});
    return absl::OkStatus();
  }
  std::string t;
  for (const ConvoHit& h : hits) {
    absl::StrAppendFormat(&t, "%.4f  %s  %s  %-9s  %s\n", h.score, TimeText(h.message.time_ms),
                          h.message.run_id, h.message.role, h.message.content);
  }
  if (hits.empty()) t = "no messages found\n";
  Print(out, t);
  return absl::OkStatus();
}

absl::Status List(Client& c, const GlobalOptions& g, const ConvoCliOptions& o,
                  const Output& out) {
  ConvoListRequest req;
  req.ns = o.ns;
  ASSIGN_OR_RETURN(req.selection, Selection(o));
  req.page_size = o.page_size;
  req.page_token = o.page_token;
  std::vector<ConvoMessage> all;
  std::string next;
  for (;;) {
    ASSIGN_OR_RETURN(ConvoPage page, c.ConvoList(req, UnaryCall(g)));
    for (ConvoMessage& m : page.messages) all.push_back(std::move(m));
    next = page.next_page_token;
    if (!o.all || next.empty()) break;
    req.page_token = next;
  }
  if (out.json) {
    json list = json::array();
    for (const ConvoMessage& m : all) list.push_back(MessageToJson(m));
    PrintJson(out, json{{"messages", list}, {"next_page_token", next}});
    return absl::OkStatus();
  }
  std::string t;
  for (const ConvoMessage& m : all) {
    absl::StrAppendFormat(&t, "%s  %-9s  %s\n", TimeText(m.time_ms), m.role, m.content);
  }
  if (!next.empty()) absl::StrAppendFormat(&t, "next page: --page-token %s\n", next);
  Print(out, t);
  return absl::OkStatus();
}

absl::Status DeleteRun(Client& c, const GlobalOptions& g, const ConvoCliOptions& o,
                       const Output& out) {
  ASSIGN_OR_RETURN(uint64_t deleted, c.ConvoDeleteRun(o.ns, o.run, UnaryCall(g)));
  if (out.json) {
    PrintJson(out, json{{"deleted", deleted}});
  } else {
    Print(out, absl::StrCat("deleted ", deleted, " messages\n"));
  }
  return absl::OkStatus();
}

using Verb = absl::Status (*)(Client&, const GlobalOptions&, const ConvoCliOptions&,
                              const Output&);

void Bind(CLI::App* cmd, const GlobalOptions* global, VerbAction* action,
          std::shared_ptr<ConvoCliOptions> o, Verb verb) {
  cmd->callback([global, action, o, verb] {
    *action = [global, o, verb](Client& c, const Output& out) {
      return verb(c, *global, *o, out);
    };
  });
}

void AddNs(CLI::App* cmd, ConvoCliOptions* o, bool run_required) {
  cmd->add_option("--ns", o->ns, "Namespace (an encoder namespace; append creates it)")
      ->type_name("NS")
      ->required();
  CLI::Option* run = cmd->add_option("--run", o->run, "Run (session) id")->type_name("R");
  if (run_required) run->required();
}

void AddSelection(CLI::App* cmd, ConvoCliOptions* o) {
  cmd->add_option("--role", o->role, "Only this role: user, assistant, system or tool")
      ->type_name("ROLE");
  cmd->add_option("--since", o->since, "From this time on (inclusive)")->type_name("T");
  cmd->add_option("--until", o->until, "Up to this time (inclusive)")->type_name("T");
}

}  // namespace

absl::StatusOr<int64_t> ParseTimeArg(absl::string_view flag, absl::string_view value) {
  int64_t ms = 0;
  if (!value.empty() && absl::ascii_isdigit(static_cast<unsigned char>(value[0])) &&
      absl::SimpleAtoi(value, &ms)) {
    return ms;
  }
  absl::Time t;
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, std::string(value), &t, &err)) {
    return absl::ToUnixMillis(t);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      flag, " '", value, "' is neither Unix ms nor an RFC 3339 time (2026-12-06T10:00:00Z)"));
}

void AddConvoVerbs(CLI::App& app, const GlobalOptions* global, VerbAction* action) {
  CLI::App* convo = app.add_subcommand(
      "convo",
      "Conversation logs: the messages of agent runs, searched by text and time, listed\n"
      "in time order");
  convo->require_subcommand(1);

  auto append = std::make_shared<ConvoCliOptions>();
  CLI::App* a = convo->add_subcommand("append", "Append a message to the run and print its id");
  AddNs(a, append.get(), /*run_required=*/true);
  a->add_option("content", append->arg, "The message's content")->required();
  a->add_option("--role", append->role, "user (default), assistant, system or tool")
      ->type_name("ROLE");
  a->add_option("--time", append->time, "The message's time (default: the server's)")
      ->type_name("T");
  a->add_option("--metadata", append->metadata, "Metadata, a JSON object")->type_name("JSON");
  Bind(a, global, action, append, Append);

  auto search = std::make_shared<ConvoCliOptions>();
  CLI::App* s = convo->add_subcommand(
      "search", "Search messages by text (dense + BM25); without --run, every run");
  AddNs(s, search.get(), /*run_required=*/false);
  s->add_option("query", search->arg, "Query text")->required();
  s->add_option("-k,--top-k", search->top_k, "Hits to return")->capture_default_str();
  AddSelection(s, search.get());
  Bind(s, global, action, search, Search);

  auto list = std::make_shared<ConvoCliOptions>();
  CLI::App* l = convo->add_subcommand("list", "List a run's messages in time order, a page at a time");
  AddNs(l, list.get(), /*run_required=*/true);
  AddSelection(l, list.get());
  l->add_option("--page-size", list->page_size, "Messages per page (1..1000)")
      ->capture_default_str();
  l->add_option("--page-token", list->page_token, "Token of the previous page (same selection)")
      ->type_name("TOKEN");
  l->add_flag("--all", list->all, "Follow every page");
  Bind(l, global, action, list, List);

  auto del = std::make_shared<ConvoCliOptions>();
  CLI::App* d = convo->add_subcommand("delete-run", "Delete every message of the run");
  AddNs(d, del.get(), /*run_required=*/true);
  Bind(d, global, action, del, DeleteRun);
}

}  // namespace mnemo::cli
