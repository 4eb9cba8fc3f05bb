// The `mnemo kv ...` verbs of the admin CLI: chunk KV caches over the SDK.
//
//   kv register  registers a namespace's decoder model (from a model
//                directory's config.json or a fingerprint string) and its
//                codec, budget, eviction policy and default TTL
//   kv put       uploads the chunk files `mnemo-decode prefill` writes
//   kv get       fetches blocks: a summary per block, or a .safetensors file
//   kv exists / delete / lookup / pin / unpin / ttl / stats
//
// Calls that need the model's fingerprint (get, exists, lookup) use the
// namespace's registered model unless --model-dir or --fingerprint names
// one. Output and errors follow commands.h: text, or one JSON document with
// --json; the first error is returned.
#ifndef MNEMO_CLIENT_CLI_KV_COMMANDS_H_
#define MNEMO_CLIENT_CLI_KV_COMMANDS_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/cli/commands.h"
#include "mnemo/client.h"

namespace CLI {
class App;
}  // namespace CLI

namespace mnemo::cli {

// Where the model fingerprint of a call comes from: a model directory, a
// fingerprint string, or (neither) the namespace's registered model.
struct KvModelSource {
  std::string model_dir;    // DIR/config.json, as the reference decoder reads it
  std::string fingerprint;  // "architecture=llama;n_layers=4;...", ModelFingerprint::Canonical()
};

struct KvRegisterOptions {
  std::string ns;
  KvModelSource model;  // one of the two is required
  std::string codec = "fp16";   // fp32 | fp16 | bf16 | int8 | int4
  bool no_entropy = false;      // skip the lossless zstd stage
  uint32_t int4_group = 0;      // int4 group size; 0 = server default (32)
  uint64_t capacity_bytes = 0;  // 0 = unlimited
  std::string eviction;         // lru | fifo; empty = server default (lru)
  int64_t ttl_seconds = 0;      // default TTL of puts; 0 = none
  // Keys per cluster of the key index each put builds (retrieval
  // attention); unset = server default (16), 0 = none.
  std::optional<uint32_t> key_index;
};

struct KvPutOptions {
  std::string ns;
  std::string from;  // directory written by `mnemo-decode prefill`
  // Chunk i gets id id_prefix + i; unset = "<basename of from>#".
  std::optional<std::string> id_prefix;
  // Upsert chunks that do not exist yet with the manifest's text (encoder
  // namespaces only: elsewhere a chunk needs a vector).
  bool create_chunks = false;
  std::string dtype = "fp32";  // wire type: fp32 | fp16 | bf16
  bool pin = false;
  int64_t ttl_seconds = 0;     // 0 = the namespace's default
};

struct KvGetOptions {
  std::string ns;
  std::vector<std::string> ids;
  KvModelSource model;
  std::string layers;              // "B:E" (E exclusive; either may be empty); "" = all
  std::string dtype = "fp32";      // wire type
  std::string positions;           // "P,P,..." one per id; "" = keys before RoPE
  std::string out;                 // .safetensors file to write; "" = print a summary
};

struct KvIdsOptions {
  std::string ns;
  std::vector<std::string> ids;
  KvModelSource model;  // exists only
};

struct KvLookupOptions {
  std::string ns;
  std::string tokens;  // "1,2,3"
  KvModelSource model;
};

struct KvTtlOptions {
  std::string ns;
  std::vector<std::string> ids;
  int64_t seconds = 0;  // 0 = never expire
};


// Adds `kv` and its subcommands to `app`. The parsed subcommand stores its
// action in *action; it reads *global when it runs.
void AddKvVerbs(CLI::App& app, const GlobalOptions* global, VerbAction* action);

// Parsing helpers, exposed for unit tests. INVALID_ARGUMENT naming the
// offending piece.
// "B:E", ":E", "B:", "" -> [begin, end) with 0 = to the last layer.
absl::Status ParseLayerRange(const std::string& text, uint32_t* begin, uint32_t* end);
// "1,2,3" (spaces allowed) -> integers.
absl::StatusOr<std::vector<int64_t>> ParseIntList(const std::string& text, const char* what);
// The fingerprint of a model directory (DIR/config.json, validated as the
// decoder does).
absl::StatusOr<ModelFingerprint> FingerprintFromModelDir(const std::string& dir);

}  // namespace mnemo::cli

#endif  // MNEMO_CLIENT_CLI_KV_COMMANDS_H_
