// The verbs of the `mnemo` admin CLI, one function each, over the SDK.
//
// Each verb writes its result to Output (text for people, or one JSON
// document when --json is given) and returns the first error; the caller
// prints "error: <CODE>: <message>" and exits non-zero.
#ifndef MNEMO_CLIENT_CLI_COMMANDS_H_
#define MNEMO_CLIENT_CLI_COMMANDS_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/cli/output.h"
#include "mnemo/client.h"

namespace mnemo::cli {

// Options shared by every verb.
// What a parsed verb runs once the client is connected: every verb's
// Add*Verbs stores one (the kv, inject, backup, memory and block verbs too).
using VerbAction = std::function<absl::Status(Client&, const Output&)>;

struct GlobalOptions {
  // host:port of mnemod (default 127.0.0.1:7070, env MNEMO_SERVER).
  std::string server = "127.0.0.1:7070";
  // Deadline of each call in seconds; unset = 30 s for unary calls and no
  // practical limit (24 h) for a streaming upsert.
  std::optional<double> timeout_s;
  // Machine-readable output: exactly one JSON document on stdout.
  bool json = false;
  // TLS: the CA bundle of mnemod's certificate (empty = plaintext), and a
  // client certificate and key for a mnemod that requires one
  // (env MNEMO_TLS_CA, MNEMO_TLS_CERT, MNEMO_TLS_KEY).
  std::string tls_ca, tls_cert, tls_key;
  // API key of a mnemod with authentication on (env MNEMO_API_KEY).
  std::string api_key;
};

struct NsCreateOptions {
  std::string name;
  uint32_t dim = 0;
  std::string metric;  // ip | l2 | cosine; empty = ip, or cosine with an encoder
  std::string index_factory = "Flat";
  uint64_t train_threshold = 0;
  std::string description;
  // Built-in encoder ("use-lite"); with one, dim may be 0 (the encoder's).
  std::string encoder;
  uint32_t chunk_tokens = 0;                // 0 = server default
  std::optional<uint32_t> chunk_overlap;   // unset = server default
  // Token vectors for --mode late (unset = server default: on with an
  // encoder), their residual bits (0 = 2) and staging size (0 = 32768).
  std::optional<bool> late_interaction;
  uint32_t late_nbits = 0;
  uint64_t late_train_tokens = 0;
  // Limits (client/cli/quota_commands.h); 0 = unlimited.
  NamespaceQuota quota;
};

struct NsDropOptions {
  std::string name;
  // Skip the confirmation prompt (required when stdin is not a terminal).
  bool yes = false;
};

struct UpsertOptions {
  std::string ns;
  std::string file;  // path or "-" for stdin
  int batch = 256;   // records per stream message
  // Draw the progress bar even when stderr is not a terminal.
  bool progress = false;
};

struct SearchOptions {
  std::string ns;
  std::optional<std::string> text;          // positional text query
  // dense | bm25 | hybrid (reciprocal rank fusion) | weighted | late
  // (MaxSim over token vectors); unset = dense, or weighted when a weight
  // is given.
  std::optional<std::string> mode;
  std::optional<float> dense_weight;
  std::optional<float> bm25_weight;
  uint32_t rrf_k = 0;                       // 0 = server default (60)
  bool highlight = false;                   // snippets with [[term]] marks
  std::optional<std::string> vector_json;   // --vector '[...]'
  std::optional<std::string> like_id;       // --like CHUNK_ID
  std::optional<std::string> vectors_file;  // --vectors-file FILE.jsonl
  int k = 10;
  std::string filter_json;
  bool payload = false;
  uint32_t ef = 0;
  uint32_t nprobe = 0;     // IVF lists, or with --mode late centroids per query token
  uint32_t candidates = 0;  // --mode late: candidates reranked by MaxSim (0 = default)
};

struct IngestOptions {
  std::string ns;
  // Files, folders (walked recursively) or "-" (stdin, one document).
  std::vector<std::string> paths;
  // Extensions taken when walking a folder (files named explicitly are
  // always taken).
  std::string extensions = ".txt,.md,.html,.htm,.jsonl";
  int batch = 64;                           // documents per stream message
  uint64_t batch_bytes = 256u << 10;        // text bytes per stream message
  int in_flight = 3;                        // batches written concurrently
  uint64_t max_file_bytes = 16u << 20;      // larger files are skipped
  std::string stdin_id = "stdin";           // document id of "-"
  // Draw the progress bar even when stderr is not a terminal.
  bool progress = false;
};

struct GetOptions {
  std::string ns;
  std::vector<std::string> ids;
  bool vectors = false;
  bool documents = false;  // ids are document ids
};

struct DeleteOptions {
  std::string ns;
  std::vector<std::string> ids;
  bool documents = false;  // ids are document ids (deletes their chunks too)
};

// Search modes by their CLI names, in the order help lists them.
// Indexed by SearchMode.
inline constexpr const char* kSearchModeNames[] = {"dense", "bm25", "hybrid", "weighted", "late"};
// Parses a --mode name. INVALID_ARGUMENT listing the modes otherwise.
absl::StatusOr<SearchMode> ParseSearchMode(const std::string& name);

// Call options from the global ones: a unary call's deadline, and a
// stream's (a day unless --timeout is given).
CallOptions UnaryCall(const GlobalOptions& g);
CallOptions StreamingCall(const GlobalOptions& g);

// Parses "ip" / "l2" / "cosine". INVALID_ARGUMENT otherwise.
absl::StatusOr<Metric> ParseMetric(const std::string& name);
const char* MetricName(Metric metric);

// Connects with the global options applied.
absl::StatusOr<std::unique_ptr<Client>> ConnectClient(const GlobalOptions& global);

// The verbs. Each is `mnemo <verb>`: it validates its options
// (INVALID_ARGUMENT naming the flag), makes its calls and writes its result
// to `out`; the server's status passes through unchanged otherwise.

// `ns create`: creates the namespace and prints its settings as stored.
// INVALID_ARGUMENT without --dim or --encoder, or with chunking flags
// that need an encoder.
absl::Status NsCreate(Client& client, const GlobalOptions& g, const NsCreateOptions& o,
                      const Output& out);
// `ns list`: a table (or JSON array) of every namespace.
absl::Status NsList(Client& client, const GlobalOptions& g, const Output& out);
// `ns get NAME`: one namespace's settings and counts.
absl::Status NsGet(Client& client, const GlobalOptions& g, const std::string& name,
                   const Output& out);
// `ns drop NAME`: asks for the name again unless --yes; FAILED_PRECONDITION
// when it cannot ask (stdin not a terminal), CANCELLED when not confirmed.
absl::Status NsDrop(Client& client, const GlobalOptions& g, const NsDropOptions& o,
                    const Output& out);
// `upsert`: streams a JSONL file of chunks and documents in batches; a bad
// line fails the whole upload, naming its line range.
absl::Status Upsert(Client& client, const GlobalOptions& g, const UpsertOptions& o,
                    const Output& out);
// `mnemo ingest` (ingest.cc): text files become documents of an encoder
// namespace; unchanged ones (same sha256 in the stored metadata) are not
// sent again.
absl::Status Ingest(Client& client, const GlobalOptions& g, const IngestOptions& o,
                    const Output& out);
// `search`: a text query, --vector, --like CHUNK_ID or --vectors-file, in
// one of the search modes, with an optional --filter (common/filter.h
// syntax); prints the hits of each query.
absl::Status Search(Client& client, const GlobalOptions& g, const SearchOptions& o,
                    const Output& out);
// `get ID...`: prints chunks (or documents); NOT_FOUND when any id is
// missing, after printing the ones found.
absl::Status Get(Client& client, const GlobalOptions& g, const GetOptions& o,
                 const Output& out);
// `delete ID...`: deletes chunks (or documents and their chunks).
absl::Status Delete(Client& client, const GlobalOptions& g, const DeleteOptions& o,
                    const Output& out);
// `stats NS`: the namespace's counts and sizes.
absl::Status Stats(Client& client, const GlobalOptions& g, const std::string& ns,
                   const Output& out);
// `checkpoint [DIR]`: has the server save its index snapshots and, given
// DIR (relative to the caller's working directory), write a checkpoint
// there; prints the sequence it is consistent at.
absl::Status Checkpoint(Client& client, const GlobalOptions& g, const std::string& dir,
                        const Output& out);
// `compact NS`: has the server compact the namespace's storage.
absl::Status Compact(Client& client, const GlobalOptions& g, const std::string& ns,
                     const Output& out);
// `health`: OK and "SERVING" when the server answers its health check.
absl::Status Health(Client& client, const GlobalOptions& g, const Output& out);

}  // namespace mnemo::cli

#endif  // MNEMO_CLIENT_CLI_COMMANDS_H_
