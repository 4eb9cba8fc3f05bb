// The `mnemo` admin CLI's argument parsing and dispatch (see cli.h).
#include "client/cli/cli.h"

#include <cstdio>
#include <functional>
#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "client/cli/auth_commands.h"
#include "client/cli/backup_commands.h"
#include "client/cli/commands.h"
#include "client/cli/inject_commands.h"
#include "client/cli/kv_commands.h"
#include "client/cli/block_commands.h"
#include "client/cli/convo_commands.h"
#include "client/cli/memory_commands.h"
#include "client/cli/quota_commands.h"

#ifndef MNEMO_VERSION
#define MNEMO_VERSION "dev"
#endif

namespace mnemo::cli {
namespace {

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

using Action = VerbAction;

// Everything the parsed command line selects.
struct Invocation {
  GlobalOptions global;
  double timeout_s = 0;
  Action action;
};

constexpr char kFooter[] =
    "Every verb accepts --server, --timeout, --json, --api-key and --tls-* after it too.\n"
    "Errors go to stderr as \"error: <CODE>: <message>\" with exit code 1\n"
    "(2 for a usage error).";

void AddNamespaceVerbs(CLI::App& app, Invocation& inv) {
  CLI::App* ns = app.add_subcommand("ns", "Create, list, inspect and drop namespaces");
  ns->require_subcommand(1);

  auto create_opts = std::make_shared<NsCreateOptions>();
  auto chunk_overlap = std::make_shared<uint32_t>(0);
  CLI::App* create = ns->add_subcommand(
      "create",
      "Create a namespace: a collection of chunks with one vector space.\n"
      "With --encoder the server embeds text itself (mnemo ingest, text search).");
  create->add_option("name", create_opts->name, "Namespace name")->required();
  CLI::Option* dim = create->add_option("--dim", create_opts->dim,
                                        "Vector dimension (required without --encoder)")
      ->check(CLI::PositiveNumber);
  CLI::Option* encoder = create->add_option(
      "--encoder", create_opts->encoder,
      "Built-in text encoder, e.g. use-lite: documents are chunked and embedded by the server")
      ->type_name("NAME");
  create->add_option("--chunk-tokens", create_opts->chunk_tokens,
                     "Tokens per chunk with --encoder (0 = server default, 128)")
      ->type_name("N")
      ->needs(encoder);
  CLI::Option* overlap = create->add_option(
      "--chunk-overlap", *chunk_overlap,
      "Tokens shared by consecutive chunks with --encoder (server default 16)")
      ->type_name("N")
      ->needs(encoder);

  auto late = std::make_shared<std::string>();
  CLI::Option* late_opt = create->add_option(
      "--late-interaction", *late,
      "With --encoder: on (default) keeps every chunk's token vectors, compressed to a centroid "
      "id + 1, 2 or 4 bits per dimension (4 + dim*nbits/8 bytes per token), for search --mode "
      "late; "
      "off saves that space and one encoder pass per chunk")
      ->type_name("on|off")
      ->check(CLI::IsMember({"on", "off"}))
      ->needs(encoder);
  create->add_option("--late-nbits", create_opts->late_nbits,
                     "Residual bits per dimension of the token vectors, 1, 2 or 4 (0 = server "
                     "default, 2)")
      ->type_name("N")
      ->check(CLI::IsMember({0, 1, 2, 4}))
      ->needs(encoder);
  create->add_option("--late-train-tokens", create_opts->late_train_tokens,
                     "Token vectors kept uncompressed until the codec is trained on them (0 = "
                     "server default, 32768)")
      ->type_name("N")
      ->needs(encoder);
  create->add_option("--metric", create_opts->metric,
                     "Similarity: ip (inner product), l2 or cosine (default ip; cosine with "
                     "--encoder)")
      ->check(CLI::IsMember({"ip", "l2", "cosine"}));
  create->add_option("--index", create_opts->index_factory,
                     "index factory: Flat, HNSW32 (mnemo's HNSW; options ,efC=N ,ef=N), or a FAISS "
                     "factory such as IVF1024,PQ16")
      ->capture_default_str();
  create->add_option("--train-threshold", create_opts->train_threshold,
                     "Vectors to collect before training a trainable index (0 = server default)")
      ->capture_default_str();
  create->add_option("--description", create_opts->description, "Free-text description");
  AddQuotaFlags(create, &create_opts->quota);
  create->callback([&inv, create_opts, chunk_overlap, overlap, dim, encoder, late, late_opt] {
    if (late_opt->count() > 0) create_opts->late_interaction = *late == "on";
    if (dim->count() == 0 && encoder->count() == 0) {
      throw CLI::RequiredError("--dim (or --encoder for a text namespace)");
    }
    if (overlap->count() > 0) create_opts->chunk_overlap = *chunk_overlap;
    inv.action = [&inv, create_opts](Client& c, const Output& out) {
      return NsCreate(c, inv.global, *create_opts, out);
    };
  });

  CLI::App* list = ns->add_subcommand("list", "List namespaces with their sizes");
  list->callback([&inv] {
    inv.action = [&inv](Client& c, const Output& out) { return NsList(c, inv.global, out); };
  });

  auto get_name = std::make_shared<std::string>();
  CLI::App* get = ns->add_subcommand("get", "Show one namespace's configuration and counts");
  get->add_option("name", *get_name, "Namespace name")->required();
  get->callback([&inv, get_name] {
    inv.action = [&inv, get_name](Client& c, const Output& out) {
      return NsGet(c, inv.global, *get_name, out);
    };
  });

  auto drop_opts = std::make_shared<NsDropOptions>();
  CLI::App* drop = ns->add_subcommand("drop", "Drop a namespace and all of its data");
  drop->add_option("name", drop_opts->name, "Namespace name")->required();
  drop->add_flag("-y,--yes", drop_opts->yes,
                 "Do not ask for confirmation (required when stdin is not a terminal)");
  drop->callback([&inv, drop_opts] {
    inv.action = [&inv, drop_opts](Client& c, const Output& out) {
      return NsDrop(c, inv.global, *drop_opts, out);
    };
  });

  AddNsQuotaVerb(ns, &inv.global, &inv.action);
}

void AddDataVerbs(CLI::App& app, Invocation& inv) {
  auto up = std::make_shared<UpsertOptions>();
  CLI::App* upsert = app.add_subcommand(
      "upsert",
      "Insert or replace chunks and documents from a JSONL file.\n"
      "Each line is a chunk {\"id\", \"document_id\", \"text\", \"metadata\": {...}, "
      "\"vector\": [...]}\n"
      "or a document {\"type\": \"document\", \"id\", \"text\", \"metadata\"}.\n"
      "A file is checked completely before anything is sent; errors name file:line.");
  upsert->add_option("--ns", up->ns, "Target namespace")
      ->type_name("NS")->required();
  upsert->add_option("file", up->file, "JSONL file, or - for stdin")
      ->type_name("FILE")->required();
  upsert->add_option("--batch", up->batch, "Records per streamed batch (one atomic write each)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  upsert->add_flag("--progress", up->progress,
                   "Draw the progress bar on stderr even when it is not a terminal");
  upsert->callback([&inv, up] {
    inv.action = [&inv, up](Client& c, const Output& out) {
      return Upsert(c, inv.global, *up, out);
    };
  });

  auto io = std::make_shared<IngestOptions>();
  CLI::App* ingest = app.add_subcommand(
      "ingest",
      "Ingest text files into an encoder namespace: each file becomes one document that the\n"
      "server chunks and embeds. PATHs are files, folders (walked recursively, hidden entries\n"
      "skipped) or - (stdin, one document). .html/.htm is stripped to text, .jsonl holds one\n"
      "document per line {\"id\", \"text\", \"metadata\"}. Binary, non-UTF-8, empty and\n"
      "oversized files are skipped with a message. Re-running is cheap: documents whose stored\n"
      "sha256 matches are left alone (\"unchanged\"); a changed file replaces its old chunks.");
  ingest->add_option("paths", io->paths, "Files, folders, or - for stdin")
      ->type_name("PATH")
      ->required();
  ingest->add_option("--ns", io->ns, "Target namespace (created with --encoder)")
      ->type_name("NS")
      ->required();
  ingest->add_option("--ext", io->extensions,
                     "Extensions taken from folders, comma-separated (named files are always "
                     "taken)")
      ->type_name("LIST")
      ->capture_default_str();
  ingest->add_option("--batch", io->batch, "Documents per streamed message at most")
      ->type_name("N")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  ingest->add_option("--batch-bytes", io->batch_bytes,
                     "Text bytes per streamed message at most (a larger file goes alone)")
      ->type_name("BYTES")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  ingest->add_option("--in-flight", io->in_flight,
                     "Batches written at once (mnemod embeds one while it commits another)")
      ->type_name("N")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  ingest->add_option("--max-file-bytes", io->max_file_bytes,
                     "Skip files (and .jsonl lines, and stdin) larger than this")
      ->type_name("BYTES")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  ingest->add_option("--stdin-id", io->stdin_id, "Document id of the text read from -")
      ->type_name("ID")
      ->capture_default_str();
  ingest->add_flag("--progress", io->progress,
                   "Draw the progress bar on stderr even when it is not a terminal");
  ingest->callback([&inv, io] {
    inv.action = [&inv, io](Client& c, const Output& out) {
      return Ingest(c, inv.global, *io, out);
    };
  });

  auto so = std::make_shared<SearchOptions>();
  auto vector = std::make_shared<std::string>();
  auto like = std::make_shared<std::string>();
  auto vectors_file = std::make_shared<std::string>();
  auto text = std::make_shared<std::string>();
  auto mode = std::make_shared<std::string>();
  auto dense_weight = std::make_shared<float>(0);
  auto bm25_weight = std::make_shared<float>(0);
  CLI::App* search = app.add_subcommand(
      "search",
      "Search by a text question (encoder namespaces), a vector, a stored chunk, or a file\n"
      "of vectors");
  search->add_option("--ns", so->ns, "Namespace to search")
      ->type_name("NS")->required();
  CLI::Option* t = search->add_option(
      "query", *text, "Text question, embedded and/or matched by the server (--mode)")
      ->type_name("TEXT");
  CLI::Option* m = search->add_option(
      "--mode", *mode,
      "Ranking of a text query: dense (embeddings), bm25 (keywords), hybrid (reciprocal rank "
      "fusion of both), weighted (weighted sum of both) or late (late interaction: MaxSim of "
      "the question's token vectors against each chunk's)")
      ->type_name("MODE")
      ->check(CLI::IsMember({"dense", "bm25", "hybrid", "weighted", "late"}));
  CLI::Option* dw = search->add_option("--dense-weight", *dense_weight,
                                       "Weight of the dense score in --mode weighted")
      ->type_name("W");
  CLI::Option* bw = search->add_option("--bm25-weight", *bm25_weight,
                                       "Weight of the BM25 score in --mode weighted")
      ->type_name("W");
  search->add_option("--rrf-k", so->rrf_k,
                     "Reciprocal rank fusion constant in --mode hybrid (0 = server default, 60)")
      ->type_name("K");
  search->add_flag("--highlight", so->highlight,
                   "Show the best passage of each hit with the query terms marked [[term]]");
  CLI::Option* v = search->add_option("--vector", *vector,
                                      "Query vector as a JSON array, e.g. '[0.1, 0.2, ...]'")
      ->type_name("JSON");
  CLI::Option* l = search->add_option(
      "--like", *like, "More like this: use the stored vector of chunk CHUNK_ID as the query")
      ->type_name("CHUNK_ID");
  CLI::Option* f = search->add_option(
      "--vectors-file", *vectors_file,
      "JSONL of queries (arrays, or objects with \"vector\" and an optional \"id\"); - = stdin")
      ->type_name("FILE");
  v->excludes(l)->excludes(f);
  l->excludes(f);
  t->excludes(v)->excludes(l)->excludes(f);
  search->add_option("-k,--k", so->k, "Hits per query")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  search->add_option("--filter", so->filter_json,
                     "Metadata filter as JSON: {\"field\": v}, {\"f\": {\"in\": [..]}}, "
                     "{\"f\": {\"gte\": 1, \"lt\": 5}}; fields are ANDed")
      ->type_name("JSON");
  search->add_flag("--payload", so->payload, "Return text and metadata with each hit");
  search->add_option("--ef", so->ef, "HNSW efSearch for this query (0 = the index's ef=, default 128)");
  search->add_option("--nprobe", so->nprobe,
                     "IVF lists to probe; with --mode late, centroids probed per query token "
                     "(0 = index default)");
  search->add_option("--candidates", so->candidates,
                     "--mode late: chunks kept for the exact MaxSim rerank (0 = index default)")
      ->type_name("N");
  search->callback([&inv, so, vector, like, vectors_file, v, l, f, text, t, mode, m,
                    dense_weight, dw, bm25_weight, bw] {
    if (t->count() > 0) so->text = *text;
    if (m->count() > 0) so->mode = *mode;
    if (dw->count() > 0) so->dense_weight = *dense_weight;
    if (bw->count() > 0) so->bm25_weight = *bm25_weight;
    if (v->count() > 0) so->vector_json = *vector;
    if (l->count() > 0) so->like_id = *like;
    if (f->count() > 0) so->vectors_file = *vectors_file;
    inv.action = [&inv, so](Client& c, const Output& out) {
      return Search(c, inv.global, *so, out);
    };
  });

  auto go = std::make_shared<GetOptions>();
  CLI::App* get = app.add_subcommand(
      "get", "Fetch chunks (or documents with --doc) by id; prints JSONL in the upsert format");
  get->add_option("--ns", go->ns, "Namespace")
      ->type_name("NS")->required();
  get->add_option("ids", go->ids, "Chunk ids (document ids with --doc)")->required();
  get->add_flag("--vectors", go->vectors, "Include the stored vectors");
  get->add_flag("--doc", go->documents, "The ids are document ids");
  get->callback([&inv, go] {
    inv.action = [&inv, go](Client& c, const Output& out) { return Get(c, inv.global, *go, out); };
  });

  auto dop = std::make_shared<DeleteOptions>();
  CLI::App* del = app.add_subcommand("delete", "Delete chunks, or documents with their chunks");
  del->add_option("--ns", dop->ns, "Namespace")
      ->type_name("NS")->required();
  del->add_option("ids", dop->ids, "Chunk ids (document ids with --doc)")->required();
  del->add_flag("--doc", dop->documents,
                "The ids are document ids: delete each document and all of its chunks");
  del->callback([&inv, dop] {
    inv.action = [&inv, dop](Client& c, const Output& out) {
      return Delete(c, inv.global, *dop, out);
    };
  });
}

void AddAdminVerbs(CLI::App& app, Invocation& inv) {
  auto stats_ns = std::make_shared<std::string>();
  CLI::App* stats = app.add_subcommand("stats", "Server version, data dir and per-namespace sizes");
  stats->add_option("--ns", *stats_ns, "Only this namespace (default: all)")
      ->type_name("NS");
  stats->callback([&inv, stats_ns] {
    inv.action = [&inv, stats_ns](Client& c, const Output& out) {
      return Stats(c, inv.global, *stats_ns, out);
    };
  });

  auto to = std::make_shared<std::string>();
  CLI::App* checkpoint = app.add_subcommand(
      "checkpoint",
      "Save index snapshots and flush (truncates the index log); with --to also write a\n"
      "consistent copy of the whole store, usable as a --data-dir");
  checkpoint->add_option("--to", *to,
                         "Directory for the copy (must not exist; written by the server, a "
                         "relative path is made absolute here)")
      ->type_name("DIR");
  checkpoint->callback([&inv, to] {
    inv.action = [&inv, to](Client& c, const Output& out) {
      return Checkpoint(c, inv.global, *to, out);
    };
  });

  auto compact_ns = std::make_shared<std::string>();
  CLI::App* compact = app.add_subcommand("compact", "Run a RocksDB compaction");
  compact->add_option("--ns", *compact_ns, "Only this namespace's key range (default: all)")
      ->type_name("NS");
  compact->callback([&inv, compact_ns] {
    inv.action = [&inv, compact_ns](Client& c, const Output& out) {
      return Compact(c, inv.global, *compact_ns, out);
    };
  });

  CLI::App* health = app.add_subcommand("health", "gRPC health check of the server");
  health->callback([&inv] {
    inv.action = [&inv](Client& c, const Output& out) { return Health(c, inv.global, out); };
  });
}

void PrintError(const absl::Status& status) {
  std::fprintf(stderr, "error: %s: %s\n", absl::StatusCodeToString(status.code()).c_str(),
               std::string(status.message()).c_str());
}

}  // namespace

int RunCli(int argc, char** argv) {
  Invocation inv;
  CLI::App app{"mnemo: admin CLI of the mnemo retrieval memory server (mnemod)", "mnemo"};
  // Global options are accepted after a verb too ("mnemo ns list --json").
  app.fallthrough();
  app.require_subcommand(1);
  app.footer(kFooter);
  app.set_version_flag("--version", std::string("mnemo ") + MNEMO_VERSION);
  app.add_option("--server", inv.global.server, "mnemod address")
      ->type_name("HOST:PORT")
      ->envname("MNEMO_SERVER")
      ->capture_default_str();
  CLI::Option* timeout =
      app.add_option("--timeout", inv.timeout_s,
                     "Deadline per call in seconds (default 30; a streaming upsert has none)")
          ->type_name("SECONDS")
          ->check(CLI::PositiveNumber);
  app.add_flag("--json", inv.global.json, "Print one machine-readable JSON document on stdout");
  app.add_option("--tls-ca", inv.global.tls_ca,
                 "Speak TLS, trusting this PEM CA bundle for mnemod's certificate")
      ->type_name("FILE")
      ->envname("MNEMO_TLS_CA");
  app.add_option("--tls-cert", inv.global.tls_cert,
                 "PEM client certificate, for a mnemod that requires one (with --tls-key)")
      ->type_name("FILE")
      ->envname("MNEMO_TLS_CERT");
  app.add_option("--tls-key", inv.global.tls_key, "PEM private key of --tls-cert")
      ->type_name("FILE")
      ->envname("MNEMO_TLS_KEY");
  app.add_option("--api-key", inv.global.api_key,
                 "API key for a mnemod with authentication on (prefer $MNEMO_API_KEY: a flag "
                 "shows in the process list)")
      ->type_name("KEY")
      ->envname("MNEMO_API_KEY");

  AddNamespaceVerbs(app, inv);
  AddDataVerbs(app, inv);
  AddAdminVerbs(app, inv);
  AddKvVerbs(app, &inv.global, &inv.action);
  AddInjectVerbs(app, &inv.global, &inv.action);
  AddBackupVerbs(app, &inv.global, &inv.action);
  AddAuthVerbs(app, &inv.global, &inv.action);
  AddMemoryVerbs(app, &inv.global, &inv.action);
  AddBlockVerbs(app, &inv.global, &inv.action);
  AddConvoVerbs(app, &inv.global, &inv.action);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : kExitUsage;
  }
  if (timeout->count() > 0) inv.global.timeout_s = inv.timeout_s;
  if (!inv.action) {
    std::fputs(app.help().c_str(), stderr);
    return kExitUsage;
  }

  absl::StatusOr<std::unique_ptr<Client>> client = ConnectClient(inv.global);
  if (!client.ok()) {
    PrintError(absl::Status(client.status().code(),
                            std::string("cannot connect to ") + inv.global.server + ": " +
                                std::string(client.status().message())));
    return kExitError;
  }
  Output out;
  out.json = inv.global.json;
  absl::Status status = inv.action(**client, out);
  std::fflush(stdout);
  if (!status.ok()) {
    PrintError(status);
    return kExitError;
  }
  return 0;
}

}  // namespace mnemo::cli
