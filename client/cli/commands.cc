// The core verbs of the `mnemo` admin CLI over the SDK (see commands.h).
#include "client/cli/commands.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <istream>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/cli/jsonl.h"
#include "client/cli/output.h"
#include "client/cli/progress.h"
#include "client/cli/quota_commands.h"
#include "common/filter.h"
#include "common/metric_names.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace mnemo::cli {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// Unary calls default to the SDK's deadline; a stream gets a day unless the
// user asked for a limit, since a large upload legitimately takes minutes.
constexpr std::chrono::hours kStreamDefaultTimeout{24};
// Errors listed before "... and N more" when validating an upsert file.
constexpr int kMaxReportedLineErrors = 10;
// Bytes of text shown per search hit.
constexpr size_t kSnippetBytes = 96;
// Queries per Search call for --vectors-file.
constexpr size_t kQueriesPerCall = 1024;

CallOptions Unary(const GlobalOptions& g) { return UnaryCall(g); }
CallOptions Streaming(const GlobalOptions& g) { return StreamingCall(g); }

// Metadata is stored as JSON text; show it as JSON when it parses.
json MetadataToJson(const std::string& metadata_json) {
  if (metadata_json.empty()) return json::object();
  json parsed = json::parse(metadata_json, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return metadata_json;
  return parsed;
}

json NamespaceToJson(const NamespaceInfo& info) {
  return json{
      {"name", info.config.name},
      {"dim", info.config.dim},
      {"metric", MetricName(info.config.metric)},
      {"index_factory", info.config.index_factory},
      {"train_threshold", info.config.train_threshold},
      {"description", info.config.description},
      {"encoder", info.config.encoder},
      {"chunk_max_tokens", info.config.chunk_max_tokens},
      {"chunk_overlap_tokens", info.config.chunk_overlap_tokens
                                   ? json(*info.config.chunk_overlap_tokens)
                                   : json(nullptr)},
      {"chunk_count", info.chunk_count},
      {"document_count", info.document_count},
      {"index_trained", info.index_trained},
      {"index_description", info.index_description},
      {"created_unix_ms", info.created_unix_ms},
      {"approximate_bytes", info.approximate_bytes},
      {"late_interaction", info.config.late_interaction.value_or(false)},
      {"late_interaction_nbits", info.config.late_interaction_nbits},
      {"late_interaction_train_tokens", info.config.late_interaction_train_tokens},
      {"late_interaction_tokens", info.late_interaction_tokens},
      {"late_interaction_trained", info.late_interaction_trained},
      {"late_interaction_description", info.late_interaction_description},
      {"quota", QuotaToJson(info.config.quota)},
      {"usage", UsageToJson(info.usage)},
      {"damaged", info.damaged},
      {"damage", info.damage},
  };
}

json ChunkToJson(const Chunk& chunk, bool with_vector) {
  json j{{"id", chunk.id},
         {"document_id", chunk.document_id},
         {"text", chunk.text},
         {"metadata", MetadataToJson(chunk.metadata_json)}};
  if (with_vector) j["vector"] = chunk.vector;
  return j;
}

json DocumentToJson(const Document& doc) {
  return json{{"type", "document"},
              {"id", doc.id},
              {"text", doc.text},
              {"metadata", MetadataToJson(doc.metadata_json)}};
}

std::string NamespaceDetails(const NamespaceInfo& info) {
  std::string s;
  absl::StrAppendFormat(&s, "name:              %s\n", info.config.name);
  if (info.damaged) absl::StrAppendFormat(&s, "DAMAGED:           %s\n", info.damage);
  absl::StrAppendFormat(&s, "dim:               %d\n", info.config.dim);
  absl::StrAppendFormat(&s, "metric:            %s\n", MetricName(info.config.metric));
  absl::StrAppendFormat(&s, "index factory:     %s\n", info.config.index_factory);
  absl::StrAppendFormat(&s, "train threshold:   %d\n", info.config.train_threshold);
  if (!info.config.description.empty()) {
    absl::StrAppendFormat(&s, "description:       %s\n", info.config.description);
  }
  if (!info.config.encoder.empty()) {
    absl::StrAppendFormat(&s, "encoder:           %s\n", info.config.encoder);
    absl::StrAppendFormat(&s, "chunk tokens:      %d\n", info.config.chunk_max_tokens);
    if (info.config.chunk_overlap_tokens) {
      absl::StrAppendFormat(&s, "chunk overlap:     %d\n", *info.config.chunk_overlap_tokens);
    }
    if (info.config.late_interaction.value_or(false)) {
      absl::StrAppendFormat(&s, "late interaction:  on, %d-bit residuals, codec %s\n",
                            info.config.late_interaction_nbits,
                            info.late_interaction_trained
                                ? "trained"
                                : absl::StrCat("trained at ",
                                               info.config.late_interaction_train_tokens,
                                               " tokens"));
      absl::StrAppendFormat(&s, "token vectors:     %s\n", info.late_interaction_description);
    } else {
      absl::StrAppendFormat(&s, "late interaction:  off\n");
    }
  }
  absl::StrAppendFormat(&s, "chunks:            %d\n", info.chunk_count);
  absl::StrAppendFormat(&s, "documents:         %d\n", info.document_count);
  absl::StrAppendFormat(&s, "index trained:     %s\n", info.index_trained ? "yes" : "no");
  if (!info.index_description.empty()) {
    absl::StrAppendFormat(&s, "index:             %s\n", info.index_description);
  }
  absl::StrAppendFormat(&s, "created (unix ms): %d\n", info.created_unix_ms);
  absl::StrAppendFormat(&s, "approximate size:  %s\n", HumanBytes(info.approximate_bytes));
  s += QuotaDetails(info);
  return s;
}

std::string NamespaceTable(const std::vector<NamespaceInfo>& namespaces) {
  if (namespaces.empty()) return "(no namespaces)\n";
  size_t name_width = 4;
  size_t index_width = 5;
  for (const NamespaceInfo& info : namespaces) {
    name_width = std::max(name_width, info.config.name.size());
    index_width = std::max(index_width, info.config.index_factory.size());
  }
  std::string s = absl::StrFormat("%-*s  %6s  %-6s  %-*s  %-8s  %10s  %9s  %7s  %10s  %s\n",
                                  name_width, "NAME", "DIM", "METRIC", index_width, "INDEX",
                                  "ENCODER", "CHUNKS", "DOCUMENTS", "TRAINED", "SIZE", "STATE");
  std::string damage;
  for (const NamespaceInfo& info : namespaces) {
    absl::StrAppendFormat(
        &s, "%-*s  %6d  %-6s  %-*s  %-8s  %10d  %9d  %7s  %10s  %s\n", name_width,
        info.config.name, info.config.dim, MetricName(info.config.metric), index_width,
        info.config.index_factory, info.config.encoder.empty() ? "-" : info.config.encoder,
        info.chunk_count, info.document_count, info.index_trained ? "yes" : "no",
        HumanBytes(info.approximate_bytes), info.damaged ? "DAMAGED" : "ok");
    if (info.damaged) absl::StrAppend(&damage, "\n", info.damage, "\n");
  }
  return s + damage;
}

// The text on one line, whitespace runs collapsed to a space (no cut: the
// server bounds its snippets).
std::string OneLine(const std::string& text) {
  std::string flat;
  flat.reserve(text.size());
  bool space = false;
  for (char c : text) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
      space = !flat.empty();
      continue;
    }
    if (space) flat.push_back(' ');
    space = false;
    flat.push_back(c);
  }
  return flat;
}

// One line of text, whitespace collapsed, cut at a UTF-8 boundary.
std::string Snippet(const std::string& text) {
  std::string flat = OneLine(text);
  if (flat.size() <= kSnippetBytes) return flat;
  size_t cut = kSnippetBytes;
  while (cut > 0 && (static_cast<unsigned char>(flat[cut]) & 0xC0) == 0x80) --cut;
  flat.resize(cut);
  return flat + "...";
}

// Reads lines, stripping a trailing '\r'.
bool ReadLine(std::istream& in, std::string& line) {
  if (!std::getline(in, line)) return false;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return true;
}

absl::StatusOr<std::unique_ptr<std::ifstream>> OpenFile(const std::string& path) {
  auto in = std::make_unique<std::ifstream>(path);
  if (!*in) {
    return absl::NotFoundError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  return in;
}

// First pass over a file: counts records and checks each line, so a broken
// file is refused before anything is written.
absl::StatusOr<uint64_t> ValidateFile(const std::string& path, uint32_t dim) {
  absl::StatusOr<std::unique_ptr<std::ifstream>> in = OpenFile(path);
  if (!in.ok()) return in.status();
  uint64_t records = 0;
  uint64_t line_no = 0;
  std::vector<std::string> errors;
  uint64_t error_count = 0;
  std::string line;
  while (ReadLine(**in, line)) {
    ++line_no;
    if (IsBlankLine(line)) continue;
    absl::StatusOr<Record> record = ParseRecordLine(line, dim);
    if (!record.ok()) {
      if (++error_count <= kMaxReportedLineErrors) {
        errors.push_back(absl::StrCat(path, ":", line_no, ": ", record.status().message()));
      }
      continue;
    }
    ++records;
  }
  if (error_count > 0) {
    std::string message = absl::StrJoin(errors, "\n");
    if (error_count > errors.size()) {
      absl::StrAppend(&message, "\n... and ", error_count - errors.size(), " more bad lines");
    }
    absl::StrAppend(&message, "\nnothing was written");
    return absl::InvalidArgumentError(message);
  }
  return records;
}

// "file:12" or "file:12-267".
std::string LineRange(const std::string& name, uint64_t first, uint64_t last) {
  if (first == last) return absl::StrCat(name, ":", first);
  return absl::StrCat(name, ":", first, "-", last);
}

// A query of `search --vectors-file`: a JSON array, or an object with
// "vector" and optionally "id" (a label echoed in the output).
struct Query {
  std::string label;
  std::vector<float> vector;
};

absl::StatusOr<std::vector<Query>> ReadQueries(const std::string& path) {
  std::unique_ptr<std::istream> owned;
  std::istream* in = &std::cin;
  if (path != "-") {
    absl::StatusOr<std::unique_ptr<std::ifstream>> file = OpenFile(path);
    if (!file.ok()) return file.status();
    owned = *std::move(file);
    in = owned.get();
  }
  std::vector<Query> queries;
  std::string line;
  uint64_t line_no = 0;
  while (ReadLine(*in, line)) {
    ++line_no;
    if (IsBlankLine(line)) continue;
    auto fail = [&](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", line_no, ": ", why));
    };
    json value = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (value.is_discarded()) return fail("not valid JSON");
    Query query;
    json vector_value;
    if (value.is_array()) {
      vector_value = value;
    } else if (value.is_object() && value.contains("vector")) {
      vector_value = value["vector"];
      if (value.contains("id")) {
        query.label = value["id"].is_string() ? value["id"].get<std::string>()
                                              : value["id"].dump();
      }
    } else {
      return fail("expected an array of numbers or an object with \"vector\"");
    }
    absl::StatusOr<std::vector<float>> vector = ParseVectorJson(vector_value.dump());
    if (!vector.ok()) return fail(vector.status().message());
    query.vector = *std::move(vector);
    if (query.label.empty()) query.label = absl::StrCat(path, ":", line_no);
    queries.push_back(std::move(query));
  }
  if (queries.empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": no queries"));
  return queries;
}

}  // namespace

CallOptions UnaryCall(const GlobalOptions& g) {
  CallOptions options;
  if (g.timeout_s) {
    options.timeout = std::chrono::milliseconds(static_cast<int64_t>(*g.timeout_s * 1000));
  }
  return options;
}

CallOptions StreamingCall(const GlobalOptions& g) {
  CallOptions options = UnaryCall(g);
  if (!options.timeout) options.timeout = kStreamDefaultTimeout;
  return options;
}

absl::StatusOr<SearchMode> ParseSearchMode(const std::string& name) {
  if (name == "dense") return SearchMode::kDense;
  if (name == "bm25") return SearchMode::kBm25;
  if (name == "hybrid" || name == "rrf") return SearchMode::kHybridRrf;
  if (name == "weighted") return SearchMode::kHybridWeighted;
  if (name == "late") return SearchMode::kLateInteraction;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown search mode \"", name, "\" (expected ", absl::StrJoin(kSearchModeNames, ", "),
      ")"));
}

absl::StatusOr<Metric> ParseMetric(const std::string& name) {
  if (name == "inner_product") return Metric::kInnerProduct;
  if (std::optional<Metric> metric = MetricFromName<Metric>(name)) return *metric;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown metric \"", name, "\" (", kMetricNamesExpected, ")"));
}

const char* MetricName(Metric metric) { return MetricNameOf(metric); }

absl::StatusOr<std::unique_ptr<Client>> ConnectClient(const GlobalOptions& global) {
  ClientOptions options;
  if (global.timeout_s) {
    if (!(*global.timeout_s > 0)) {
      return absl::InvalidArgumentError("--timeout must be positive");
    }
    options.default_timeout =
        std::chrono::milliseconds(static_cast<int64_t>(*global.timeout_s * 1000));
    options.connect_timeout = std::min(options.connect_timeout, options.default_timeout);
  }
  options.tls_ca_file = global.tls_ca;
  options.tls_cert_file = global.tls_cert;
  options.tls_key_file = global.tls_key;
  options.api_key = global.api_key;
  return Client::Connect(global.server, options);
}

absl::Status NsCreate(Client& client, const GlobalOptions& g, const NsCreateOptions& o,
                      const Output& out) {
  // Encoders produce unit vectors, for which cosine is the natural metric.
  const std::string metric_name = !o.metric.empty() ? o.metric : o.encoder.empty() ? "ip" : "cosine";
  absl::StatusOr<Metric> metric = ParseMetric(metric_name);
  if (!metric.ok()) return metric.status();
  if (o.dim == 0 && o.encoder.empty()) {
    return absl::InvalidArgumentError("give --dim, or --encoder for a text namespace");
  }
  if (o.encoder.empty() && (o.chunk_tokens != 0 || o.chunk_overlap)) {
    return absl::InvalidArgumentError("--chunk-tokens and --chunk-overlap need --encoder");
  }
  if (o.encoder.empty() &&
      (o.late_interaction.value_or(false) || o.late_nbits != 0 || o.late_train_tokens != 0)) {
    return absl::InvalidArgumentError(
        "--late-interaction, --late-nbits and --late-train-tokens need --encoder");
  }
  if (o.chunk_overlap && o.chunk_tokens != 0 && *o.chunk_overlap >= o.chunk_tokens) {
    return absl::InvalidArgumentError("--chunk-overlap must be smaller than --chunk-tokens");
  }
  NamespaceConfig config;
  config.name = o.name;
  config.dim = o.dim;
  config.encoder = o.encoder;
  config.chunk_max_tokens = o.chunk_tokens;
  config.chunk_overlap_tokens = o.chunk_overlap;
  config.metric = *metric;
  config.index_factory = o.index_factory;
  config.train_threshold = o.train_threshold;
  config.description = o.description;
  config.late_interaction = o.late_interaction;
  config.late_interaction_nbits = o.late_nbits;
  config.late_interaction_train_tokens = o.late_train_tokens;
  config.quota = o.quota;
  absl::StatusOr<NamespaceInfo> info = client.CreateNamespace(config, Unary(g));
  if (!info.ok()) return info.status();
  if (out.json) {
    PrintJson(out, NamespaceToJson(*info));
  } else {
    Print(out, absl::StrCat("created namespace ", info->config.name, "\n",
                            NamespaceDetails(*info)));
  }
  return absl::OkStatus();
}

absl::Status NsList(Client& client, const GlobalOptions& g, const Output& out) {
  absl::StatusOr<std::vector<NamespaceInfo>> list = client.ListNamespaces(Unary(g));
  if (!list.ok()) return list.status();
  if (out.json) {
    json items = json::array();
    for (const NamespaceInfo& info : *list) items.push_back(NamespaceToJson(info));
    PrintJson(out, json{{"namespaces", items}});
  } else {
    Print(out, NamespaceTable(*list));
  }
  return absl::OkStatus();
}

absl::Status NsGet(Client& client, const GlobalOptions& g, const std::string& name,
                   const Output& out) {
  absl::StatusOr<NamespaceInfo> info = client.GetNamespace(name, Unary(g));
  if (!info.ok()) return info.status();
  if (out.json) {
    PrintJson(out, NamespaceToJson(*info));
  } else {
    Print(out, NamespaceDetails(*info));
  }
  return absl::OkStatus();
}

absl::Status NsDrop(Client& client, const GlobalOptions& g, const NsDropOptions& o,
                    const Output& out) {
  if (!o.yes) {
    if (!isatty(STDIN_FILENO)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "refusing to drop namespace ", o.name, " without --yes (stdin is not a terminal)"));
    }
    std::fprintf(out.err, "Drop namespace %s and all its data? Type its name to confirm: ",
                 o.name.c_str());
    std::fflush(out.err);
    std::string answer;
    std::getline(std::cin, answer);
    if (answer != o.name) return absl::CancelledError("not confirmed; nothing dropped");
  }
  RETURN_IF_ERROR(client.DropNamespace(o.name, Unary(g)));
  if (out.json) {
    PrintJson(out, json{{"dropped", o.name}});
  } else {
    Print(out, absl::StrCat("dropped namespace ", o.name, "\n"));
  }
  return absl::OkStatus();
}

absl::Status Upsert(Client& client, const GlobalOptions& g, const UpsertOptions& o,
                    const Output& out) {
  if (o.batch <= 0) return absl::InvalidArgumentError("--batch must be positive");
  const bool from_stdin = o.file == "-";
  const std::string source = from_stdin ? std::string("<stdin>") : o.file;

  // The namespace's dimension lets every line be checked here, so a wrong
  // vector is reported with its line number rather than as a batch error.
  absl::StatusOr<NamespaceInfo> info = client.GetNamespace(o.ns, Unary(g));
  if (!info.ok()) return info.status();
  const uint32_t dim = info->config.dim;

  uint64_t total = 0;
  if (!from_stdin) {
    absl::StatusOr<uint64_t> count = ValidateFile(o.file, dim);
    if (!count.ok()) return count.status();
    total = *count;
  }

  std::unique_ptr<std::ifstream> file;
  std::istream* in = &std::cin;
  if (!from_stdin) {
    absl::StatusOr<std::unique_ptr<std::ifstream>> opened = OpenFile(o.file);
    if (!opened.ok()) return opened.status();
    file = *std::move(opened);
    in = file.get();
  }

  const auto start = Clock::now();
  std::unique_ptr<ProgressBar> progress;
  if (o.progress || isatty(fileno(out.err))) {
    progress = std::make_unique<ProgressBar>(out.err, absl::StrCat("upsert ", o.ns), total);
    progress->Update(0);
  }

  absl::StatusOr<std::unique_ptr<UpsertWriter>> writer = client.UpsertStream(o.ns, Streaming(g));
  if (!writer.ok()) return writer.status();

  std::vector<Document> documents;
  std::vector<Chunk> chunks;
  uint64_t first_line = 0;
  uint64_t line_no = 0;
  uint64_t done = 0;
  // Ends the stream after a failure; the batches already sent stay written.
  auto abort = [&](absl::Status status) {
    if (progress) progress->Finish();
    (*writer)->Finish().IgnoreError();
    if (done > 0) {
      std::fprintf(out.err, "note: %llu records before the failing batch were written\n",
                   static_cast<unsigned long long>(done));
    }
    return status;
  };
  auto flush = [&]() -> absl::Status {
    if (documents.empty() && chunks.empty()) return absl::OkStatus();
    absl::Status status = (*writer)->Write(documents, chunks);
    if (!status.ok()) {
      return absl::Status(status.code(), absl::StrCat(LineRange(source, first_line, line_no),
                                                      ": ", status.message()));
    }
    done += documents.size() + chunks.size();
    documents.clear();
    chunks.clear();
    if (progress) progress->Update(done);
    return absl::OkStatus();
  };

  std::string line;
  while (ReadLine(*in, line)) {
    ++line_no;
    if (IsBlankLine(line)) continue;
    absl::StatusOr<Record> record = ParseRecordLine(line, dim);
    if (!record.ok()) {
      return abort(absl::InvalidArgumentError(
          absl::StrCat(source, ":", line_no, ": ", record.status().message())));
    }
    if (documents.empty() && chunks.empty()) first_line = line_no;
    if (auto* doc = std::get_if<Document>(&*record)) {
      documents.push_back(std::move(*doc));
    } else {
      chunks.push_back(std::move(std::get<Chunk>(*record)));
    }
    if (documents.size() + chunks.size() >= static_cast<size_t>(o.batch)) {
      absl::Status status = flush();
      if (!status.ok()) return abort(status);
    }
  }
  if (in->bad()) return abort(absl::DataLossError(absl::StrCat("error reading ", source)));
  if (absl::Status status = flush(); !status.ok()) return abort(status);

  absl::StatusOr<UpsertResult> result = (*writer)->Finish();
  if (progress) progress->Finish();
  if (!result.ok()) {
    return absl::Status(result.status().code(),
                        absl::StrCat(source, ": ", result.status().message()));
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0;
  if (out.json) {
    PrintJson(out, json{{"namespace", o.ns},
                        {"records", done},
                        {"chunks_written", result->chunks_written},
                        {"documents_written", result->documents_written},
                        {"seconds", seconds},
                        {"items_per_second", rate}});
  } else {
    Print(out, absl::StrFormat("upserted %d chunks and %d documents into %s in %.2fs "
                               "(%.0f items/s)\n",
                               result->chunks_written, result->documents_written, o.ns,
                               seconds, rate));
  }
  return absl::OkStatus();
}

absl::Status Search(Client& client, const GlobalOptions& g, const SearchOptions& o,
                    const Output& out) {
  const int sources = static_cast<int>(o.text.has_value()) +
                      static_cast<int>(o.vector_json.has_value()) +
                      static_cast<int>(o.like_id.has_value()) +
                      static_cast<int>(o.vectors_file.has_value());
  if (sources != 1) {
    return absl::InvalidArgumentError(
        "give a text query, or exactly one of --vector, --like or --vectors-file");
  }
  if (o.k <= 0) return absl::InvalidArgumentError("-k must be positive");
  const bool weighted_options = o.dense_weight.has_value() || o.bm25_weight.has_value();
  SearchMode mode = weighted_options ? SearchMode::kHybridWeighted : SearchMode::kDense;
  if (o.mode) {
    absl::StatusOr<SearchMode> parsed = ParseSearchMode(*o.mode);
    if (!parsed.ok()) return parsed.status();
    mode = *parsed;
  }
  if (weighted_options && mode != SearchMode::kHybridWeighted) {
    return absl::InvalidArgumentError("--dense-weight and --bm25-weight go with --mode weighted");
  }
  if ((o.dense_weight && *o.dense_weight < 0) || (o.bm25_weight && *o.bm25_weight < 0)) {
    return absl::InvalidArgumentError("--dense-weight and --bm25-weight must not be negative");
  }
  if (o.rrf_k != 0 && mode != SearchMode::kHybridRrf) {
    return absl::InvalidArgumentError("--rrf-k goes with --mode hybrid");
  }
  if (o.candidates != 0 && mode != SearchMode::kLateInteraction) {
    return absl::InvalidArgumentError("--candidates goes with --mode late");
  }
  if (!o.text && (mode != SearchMode::kDense || o.highlight)) {
    return absl::InvalidArgumentError(
        "--mode other than dense, and --highlight, need a text query (mnemo search --ns NS "
        "\"question\")");
  }
  if (o.text && IsBlankLine(*o.text)) {
    return absl::InvalidArgumentError("the text query is empty");
  }
  if (!o.filter_json.empty()) {
    // The SDK parses it again; checking here names the flag in the error.
    if (absl::StatusOr<filter::Filter> f = filter::ParseJsonFilter(o.filter_json); !f.ok()) {
      return Annotate(f.status(), "--filter");
    }
  }

  std::vector<Query> queries;
  if (o.text) {
    queries.push_back({*o.text, {}});
  } else if (o.vector_json) {
    absl::StatusOr<std::vector<float>> vector = ParseVectorJson(*o.vector_json);
    if (!vector.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--vector: ", vector.status().message()));
    }
    queries.push_back({"vector", *std::move(vector)});
  } else if (o.like_id) {
    absl::StatusOr<GetResult> got =
        client.Get(o.ns, {*o.like_id}, {}, /*include_vectors=*/true, Unary(g));
    if (!got.ok()) return got.status();
    if (got->chunks.empty()) {
      return absl::NotFoundError(
          absl::StrCat("chunk ", *o.like_id, " not found in namespace ", o.ns));
    }
    if (got->chunks.front().vector.empty()) {
      return absl::FailedPreconditionError(absl::StrCat("chunk ", *o.like_id, " has no vector"));
    }
    queries.push_back({*o.like_id, std::move(got->chunks.front().vector)});
  } else {
    absl::StatusOr<std::vector<Query>> read = ReadQueries(*o.vectors_file);
    if (!read.ok()) return read.status();
    queries = *std::move(read);
  }
  const size_t dim = o.text ? 0 : queries.front().vector.size();
  for (const Query& q : queries) {
    if (o.text) break;
    if (q.vector.size() != dim) {
      return absl::InvalidArgumentError(absl::StrCat(
          "query ", q.label, " has ", q.vector.size(), " dimensions, the first has ", dim));
    }
  }

  // Large query files go in several calls, each within the server's
  // default --max-query-batch.
  absl::StatusOr<std::vector<std::vector<Hit>>> results = std::vector<std::vector<Hit>>();
  for (size_t begin = 0; begin < queries.size(); begin += kQueriesPerCall) {
    const size_t end = std::min(queries.size(), begin + kQueriesPerCall);
    SearchRequest request;
    request.ns = o.ns;
    if (o.text) {
      request.text_queries.push_back(queries[begin].label);
      request.mode = mode;
      request.dense_weight = o.dense_weight.value_or(0);
      request.bm25_weight = o.bm25_weight.value_or(0);
      request.rrf_k = o.rrf_k;
      request.highlight = o.highlight;
    } else {
      request.dim = static_cast<uint32_t>(dim);
      request.queries.reserve(dim * (end - begin));
      for (size_t i = begin; i < end; ++i) {
        request.queries.insert(request.queries.end(), queries[i].vector.begin(),
                               queries[i].vector.end());
      }
    }
    request.k = o.k;
    request.filter_json = o.filter_json;
    // A text search always shows what matched.
    request.include_payload = o.payload || o.text.has_value();
    request.hnsw_ef_search = o.ef;
    if (mode == SearchMode::kLateInteraction) {
      request.late_nprobe = o.nprobe;
      request.late_max_candidates = o.candidates;
    } else {
      request.ivf_nprobe = o.nprobe;
    }
    absl::StatusOr<std::vector<std::vector<Hit>>> part = client.Search(request, Unary(g));
    if (!part.ok()) return part.status();
    for (std::vector<Hit>& hits : *part) results->push_back(std::move(hits));
  }

  if (out.json) {
    json all = json::array();
    for (size_t qi = 0; qi < results->size(); ++qi) {
      json hits = json::array();
      const std::vector<Hit>& list = (*results)[qi];
      for (size_t r = 0; r < list.size(); ++r) {
        json hit{{"rank", r + 1}, {"id", list[r].id}, {"score", list[r].score}};
        if (list[r].chunk) {
          hit["document_id"] = list[r].chunk->document_id;
          hit["text"] = list[r].chunk->text;
          hit["metadata"] = MetadataToJson(list[r].chunk->metadata_json);
          if (o.text) {
            hit["source_begin"] = list[r].chunk->source_begin;
            hit["source_end"] = list[r].chunk->source_end;
          }
        }
        if (o.text) hit["snippet"] = list[r].snippet;
        hits.push_back(std::move(hit));
      }
      all.push_back(json{{"query", qi < queries.size() ? queries[qi].label : ""},
                         {"hits", std::move(hits)}});
    }
    json doc{{"namespace", o.ns}, {"k", o.k}, {"results", std::move(all)}};
    if (o.text) doc["mode"] = kSearchModeNames[static_cast<int>(mode)];
    PrintJson(out, doc);
    return absl::OkStatus();
  }

  std::string s;
  for (size_t qi = 0; qi < results->size(); ++qi) {
    const std::vector<Hit>& list = (*results)[qi];
    if (results->size() > 1 || o.like_id) {
      if (qi > 0) s += "\n";
      absl::StrAppend(&s, o.like_id ? "more like " : "query ",
                      qi < queries.size() ? queries[qi].label : "", ":\n");
    }
    if (list.empty()) {
      s += "(no hits)\n";
      continue;
    }
    size_t id_width = 2;
    for (const Hit& hit : list) id_width = std::max(id_width, hit.id.size());
    absl::StrAppendFormat(&s, "%4s  %10s  %-*s%s\n", "RANK", "SCORE", id_width, "ID",
                          o.payload || o.text ? "  TEXT" : "");
    for (size_t r = 0; r < list.size(); ++r) {
      const Hit& hit = list[r];
      absl::StrAppendFormat(&s, "%4d  %10.6f  %-*s", r + 1, hit.score, id_width, hit.id);
      if (!hit.snippet.empty()) {
        absl::StrAppend(&s, "  ", OneLine(hit.snippet));
      } else if (hit.chunk) {
        absl::StrAppend(&s, "  ", Snippet(hit.chunk->text));
      }
      s += "\n";
    }
  }
  Print(out, s);
  return absl::OkStatus();
}

absl::Status Get(Client& client, const GlobalOptions& g, const GetOptions& o,
                 const Output& out) {
  if (o.ids.empty()) return absl::InvalidArgumentError("give at least one id");
  std::vector<std::string> none;
  absl::StatusOr<GetResult> got =
      client.Get(o.ns, o.documents ? none : o.ids, o.documents ? o.ids : none, o.vectors,
                 Unary(g));
  if (!got.ok()) return got.status();
  if (out.json) {
    json chunks = json::array();
    for (const Chunk& c : got->chunks) chunks.push_back(ChunkToJson(c, o.vectors));
    json documents = json::array();
    for (const Document& d : got->documents) documents.push_back(DocumentToJson(d));
    PrintJson(out, json{{"chunks", std::move(chunks)},
                        {"documents", std::move(documents)},
                        {"missing_ids", got->missing_ids}});
  } else {
    // Text output is JSONL in the upsert format, so it can be fed back.
    for (const Document& d : got->documents) Print(out, DocumentToJson(d).dump() + "\n");
    for (const Chunk& c : got->chunks) Print(out, ChunkToJson(c, o.vectors).dump() + "\n");
  }
  if (!got->missing_ids.empty()) {
    return absl::NotFoundError(absl::StrCat(got->missing_ids.size(), " of ", o.ids.size(),
                                            " ids not found in namespace ", o.ns, ": ",
                                            absl::StrJoin(got->missing_ids, ", ")));
  }
  return absl::OkStatus();
}

absl::Status Delete(Client& client, const GlobalOptions& g, const DeleteOptions& o,
                    const Output& out) {
  if (o.ids.empty()) return absl::InvalidArgumentError("give at least one id");
  std::vector<std::string> none;
  absl::StatusOr<DeleteResult> result =
      client.Delete(o.ns, o.documents ? none : o.ids, o.documents ? o.ids : none, Unary(g));
  if (!result.ok()) return result.status();
  if (out.json) {
    PrintJson(out, json{{"chunks_deleted", result->chunks_deleted},
                        {"documents_deleted", result->documents_deleted}});
  } else {
    Print(out, absl::StrFormat("deleted %d chunks and %d documents from %s\n",
                               result->chunks_deleted, result->documents_deleted, o.ns));
  }
  return absl::OkStatus();
}

absl::Status Stats(Client& client, const GlobalOptions& g, const std::string& ns,
                   const Output& out) {
  absl::StatusOr<StatsResult> stats = client.Stats(ns, Unary(g));
  if (!stats.ok()) return stats.status();
  if (out.json) {
    json items = json::array();
    for (const NamespaceInfo& info : stats->namespaces) items.push_back(NamespaceToJson(info));
    PrintJson(out, json{{"version", stats->version},
                        {"data_dir", stats->data_dir},
                        {"total_approximate_bytes", stats->total_approximate_bytes},
                        {"namespaces", std::move(items)}});
  } else {
    Print(out, absl::StrFormat("server version: %s\ndata dir:       %s\ntotal size:     %s\n\n",
                               stats->version, stats->data_dir,
                               HumanBytes(stats->total_approximate_bytes)));
    Print(out, NamespaceTable(stats->namespaces));
  }
  return absl::OkStatus();
}

absl::Status Checkpoint(Client& client, const GlobalOptions& g, const std::string& dir,
                        const Output& out) {
  std::string target = dir;
  // The server resolves paths against its own working directory; make a
  // relative path mean what the user sees in their shell.
  if (!target.empty() && std::filesystem::path(target).is_relative()) {
    target = std::filesystem::absolute(target).lexically_normal().string();
  }
  absl::StatusOr<uint64_t> sequence = client.Checkpoint(target, Unary(g));
  if (!sequence.ok()) return sequence.status();
  if (out.json) {
    PrintJson(out, json{{"last_sequence", *sequence}, {"target_dir", target}});
  } else if (target.empty()) {
    Print(out, absl::StrCat("checkpoint done (index snapshots saved) at sequence ", *sequence,
                            "\n"));
  } else {
    Print(out, absl::StrCat("checkpoint written to ", target, " at sequence ", *sequence, "\n"));
  }
  return absl::OkStatus();
}

absl::Status Compact(Client& client, const GlobalOptions& g, const std::string& ns,
                     const Output& out) {
  RETURN_IF_ERROR(client.Compact(ns, Unary(g)));
  if (out.json) {
    PrintJson(out, json{{"compacted", ns.empty() ? "*" : ns}});
  } else {
    Print(out, absl::StrCat("compacted ", ns.empty() ? "the whole store" : ns, "\n"));
  }
  return absl::OkStatus();
}

absl::Status Health(Client& client, const GlobalOptions& g, const Output& out) {
  RETURN_IF_ERROR(client.HealthCheck(Unary(g)));
  if (out.json) {
    PrintJson(out, json{{"status", "SERVING"}, {"server", g.server}});
  } else {
    Print(out, absl::StrCat(g.server, ": SERVING\n"));
  }
  return absl::OkStatus();
}

}  // namespace mnemo::cli
