// The `mnemo kv ...` verbs: chunk KV caches over the SDK (see kv_commands.h).
#include "client/cli/kv_commands.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "client/cli/output.h"
#include "mnemo/model_fingerprint.h"
#include "common/status_macros.h"
#include "decoder/config.h"
#include "decoder/fingerprint.h"
#include "decoder/safetensors.h"
#include "nlohmann/json.hpp"

namespace mnemo::cli {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// Format tag of the manifest `mnemo-decode prefill` writes (decoder/cli.cc).
constexpr char kChunkFormat[] = "mnemo-kv-chunks/1";
// Format tag of the file `kv get --out` writes.
constexpr char kGetFormat[] = "mnemo-kv-get/1";

json FingerprintToJson(const ModelFingerprint& m) {
  return json{{"architecture", m.architecture}, {"n_layers", m.n_layers},
              {"n_heads", m.n_heads},           {"n_kv_heads", m.n_kv_heads},
              {"head_dim", m.head_dim},         {"dim", m.dim},
              {"rope_theta", m.rope_theta},     {"rope_style", m.rope_style},
              {"dtype", m.dtype},               {"tokenizer_sha256", m.tokenizer_sha256},
              {"canonical", m.Canonical()},     {"hash", m.HashHex()}};
}

json KvStatsToJson(const std::string& ns, const KvStats& s) {
  return json{
      {"namespace", ns},
      {"model", FingerprintToJson(s.config.model)},
      {"codec", std::string(KvCodecName(s.config.codec))},
      {"entropy", s.config.entropy.value_or(true)},
      {"int4_group_size", s.config.int4_group_size},
      {"capacity_bytes", s.config.capacity_bytes},
      {"eviction_policy", s.config.eviction_policy},
      {"default_ttl_seconds", s.config.default_ttl_seconds},
      {"key_index_keys_per_cluster", s.config.key_index_keys_per_cluster.value_or(16)},
      {"chunks", s.chunks},
      {"blocks", s.blocks},
      {"tokens", s.tokens},
      {"stored_bytes", s.stored_bytes},
      {"index_bytes", s.index_bytes},
      {"fp16_bytes", s.fp16_bytes},
      {"pinned_chunks", s.pinned_chunks},
      {"evicted_chunks", s.evicted_chunks},
      {"expired_chunks", s.expired_chunks},
      {"mean_key_error", s.mean_key_error},
      {"mean_value_error", s.mean_value_error},
  };
}

std::string KvStatsText(const std::string& ns, const KvStats& s) {
  const ModelFingerprint& m = s.config.model;
  std::string t;
  absl::StrAppendFormat(&t, "namespace:         %s\n", ns);
  absl::StrAppendFormat(&t,
                        "model:             %s, %d layers, %d heads (%d KV), head_dim %d, "
                        "dim %d, RoPE %s theta %g, %s\n",
                        m.architecture, m.n_layers, m.n_heads, m.n_kv_heads, m.head_dim, m.dim,
                        m.rope_style, m.rope_theta, m.dtype);
  absl::StrAppendFormat(&t, "fingerprint hash:  %s\n", m.HashHex());
  absl::StrAppendFormat(&t, "tokenizer sha256:  %s\n", m.tokenizer_sha256);
  std::string codec(KvCodecName(s.config.codec));
  if (s.config.codec == KvCodec::kInt4) {
    absl::StrAppend(&codec, " (groups of ", s.config.int4_group_size, ")");
  }
  if (s.config.codec == KvCodec::kKvq) {
    absl::StrAppend(&codec, " (rANS)");  // its own entropy stage; zstd never runs on it
  } else if (s.config.entropy.value_or(true)) {
    absl::StrAppend(&codec, " + zstd");
  }
  absl::StrAppendFormat(&t, "codec:             %s\n", codec);
  if (s.config.capacity_bytes == 0) {
    absl::StrAppendFormat(&t, "capacity:          unlimited\n");
  } else {
    absl::StrAppendFormat(&t, "capacity:          %s of %s used (%.1f%%)\n",
                          HumanBytes(s.stored_bytes), HumanBytes(s.config.capacity_bytes),
                          100.0 * static_cast<double>(s.stored_bytes) /
                              static_cast<double>(s.config.capacity_bytes));
  }
  absl::StrAppendFormat(&t, "eviction policy:   %s\n", s.config.eviction_policy);
  if (s.config.default_ttl_seconds > 0) {
    absl::StrAppendFormat(&t, "default TTL:       %d s\n", s.config.default_ttl_seconds);
  } else {
    absl::StrAppendFormat(&t, "default TTL:       none\n");
  }
  const uint32_t per_cluster = s.config.key_index_keys_per_cluster.value_or(16);
  if (per_cluster > 0) {
    absl::StrAppendFormat(&t, "key index:         %d keys per cluster (retrieval attention)\n",
                          per_cluster);
  } else {
    absl::StrAppendFormat(&t, "key index:         none\n");
  }
  absl::StrAppendFormat(&t, "chunks with KV:    %d (%d pinned)\n", s.chunks, s.pinned_chunks);
  absl::StrAppendFormat(&t, "blocks:            %d\n", s.blocks);
  absl::StrAppendFormat(&t, "tokens:            %d\n", s.tokens);
  absl::StrAppendFormat(&t, "stored:            %s", HumanBytes(s.stored_bytes));
  if (s.fp16_bytes > 0) {
    absl::StrAppendFormat(&t, " (%.3fx of fp16's %s)", static_cast<double>(s.stored_bytes) /
                                                          static_cast<double>(s.fp16_bytes),
                          HumanBytes(s.fp16_bytes));
  }
  t += "\n";
  if (s.index_bytes > 0) {
    absl::StrAppendFormat(&t, "  of it key index: %s\n", HumanBytes(s.index_bytes));
  }
  absl::StrAppendFormat(&t, "evicted / expired: %d / %d (since mnemod started)\n",
                        s.evicted_chunks, s.expired_chunks);
  absl::StrAppendFormat(&t, "mean rel. error:   K %.3g, V %.3g\n", s.mean_key_error,
                        s.mean_value_error);
  return t;
}

absl::StatusOr<ModelFingerprint> ResolveModel(Client& client, const GlobalOptions& g,
                                              const std::string& ns, const KvModelSource& m) {
  if (!m.model_dir.empty() && !m.fingerprint.empty()) {
    return absl::InvalidArgumentError("give --model-dir or --fingerprint, not both");
  }
  if (!m.model_dir.empty()) return FingerprintFromModelDir(m.model_dir);
  if (!m.fingerprint.empty()) {
    absl::StatusOr<ModelFingerprint> parsed = ParseFingerprint(m.fingerprint);
    if (!parsed.ok()) return Annotate(parsed.status(), "--fingerprint");
    return parsed;
  }
  ASSIGN_OR_RETURN(KvStats stats, client.GetKvStats(ns, UnaryCall(g)));
  return stats.config.model;
}

// Refuses an empty id list before a call that would refuse it less clearly.
absl::Status NeedIds(const std::vector<std::string>& ids) {
  if (ids.empty()) return absl::InvalidArgumentError("give at least one chunk id");
  return absl::OkStatus();
}

// --- kv put ---------------------------------------------------------------

struct ManifestChunk {
  int index = 0;
  std::string file;
  uint64_t n_tokens = 0;
  std::string text;
};

struct Manifest {
  ModelFingerprint model;
  std::string fingerprint;  // canonical, as written
  std::vector<ManifestChunk> chunks;
};

absl::StatusOr<Manifest> ReadManifest(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / "manifest.json").string();
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(
        "cannot open ", path, " (a directory written by mnemo-decode prefill --out)"));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", why));
  };
  if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
  if (!j.contains("format") || j["format"] != kChunkFormat) {
    return bad(absl::StrCat("format is not \"", kChunkFormat, "\""));
  }
  if (!j.contains("fingerprint") || !j["fingerprint"].is_string()) {
    return bad("\"fingerprint\" missing or not a string");
  }
  Manifest m;
  m.fingerprint = j["fingerprint"].get<std::string>();
  absl::StatusOr<ModelFingerprint> model = ParseFingerprint(m.fingerprint);
  if (!model.ok()) return bad(absl::StrCat("fingerprint: ", model.status().message()));
  m.model = *std::move(model);
  if (!j.contains("chunks") || !j["chunks"].is_array() || j["chunks"].empty()) {
    return bad("\"chunks\" missing, not an array or empty");
  }
  for (const json& c : j["chunks"]) {
    if (!c.is_object() || !c.contains("index") || !c["index"].is_number_integer() ||
        !c.contains("file") || !c["file"].is_string() || !c.contains("n_tokens") ||
        !c["n_tokens"].is_number_integer()) {
      return bad("a chunk entry lacks index, file or n_tokens");
    }
    ManifestChunk chunk;
    chunk.index = c["index"].get<int>();
    chunk.file = c["file"].get<std::string>();
    chunk.n_tokens = c["n_tokens"].get<uint64_t>();
    if (c.contains("text") && c["text"].is_string()) chunk.text = c["text"].get<std::string>();
    if (chunk.file.find('/') != std::string::npos || chunk.file == "..") {
      return bad(absl::StrCat("chunk file \"", chunk.file, "\" is not a plain file name"));
    }
    m.chunks.push_back(std::move(chunk));
  }
  return m;
}

// Makes sure every chunk id exists in the namespace: creates the missing
// ones from the manifest's text when asked to (encoder namespaces only).
absl::Status EnsureChunks(Client& client, const GlobalOptions& g, const KvPutOptions& o,
                          const Manifest& manifest, const std::vector<std::string>& ids,
                          const Output& out, uint64_t* created) {
  ASSIGN_OR_RETURN(GetResult got, client.Get(o.ns, ids, {}, false, UnaryCall(g)));
  *created = 0;
  if (got.missing_ids.empty()) return absl::OkStatus();
  const std::set<std::string> missing(got.missing_ids.begin(), got.missing_ids.end());
  if (!o.create_chunks) {
    return absl::NotFoundError(absl::StrCat(
        missing.size(), " of ", ids.size(), " chunks are not in namespace ", o.ns, " (",
        absl::StrJoin(got.missing_ids.begin(),
                      got.missing_ids.begin() + std::min<size_t>(5, got.missing_ids.size()),
                      ", "),
        missing.size() > 5 ? ", ..." : "",
        "); KV belongs to a stored chunk: upsert them first, or pass --create-chunks in an "
        "encoder namespace"));
  }
  ASSIGN_OR_RETURN(NamespaceInfo info, client.GetNamespace(o.ns, UnaryCall(g)));
  if (info.config.encoder.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--create-chunks needs an encoder namespace (one that embeds text itself); ", o.ns,
        " has none, so its chunks need vectors: upsert the ", missing.size(),
        " missing chunks first (mnemo upsert)"));
  }
  std::vector<Chunk> chunks;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!missing.count(ids[i])) continue;
    if (manifest.chunks[i].text.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("chunk ", ids[i], " has no text in the manifest to create it with"));
    }
    Chunk c;
    c.id = ids[i];
    c.text = manifest.chunks[i].text;
    chunks.push_back(std::move(c));
  }
  ASSIGN_OR_RETURN(UpsertResult written, client.Upsert(o.ns, {}, chunks, StreamingCall(g)));
  *created = written.chunks_written;
  if (!out.json) {
    Print(out, absl::StrCat("created ", written.chunks_written, " chunks in ", o.ns,
                            " from the manifest's text\n"));
  }
  return absl::OkStatus();
}

// --- kv get --out ----------------------------------------------------------

class BlockFile {
 public:
  void Add(const KvBlock& b) {
    const std::vector<int64_t> shape = {b.shape.n_kv_heads, b.shape.tokens, b.shape.head_dim};
    writer_.AddF32(absl::StrCat(b.chunk_id, ".layer", b.layer, ".k"), shape, b.k);
    writer_.AddF32(absl::StrCat(b.chunk_id, ".layer", b.layer, ".v"), shape, b.v);
    if (!b.tokens.empty()) {
      writer_.AddI32(absl::StrCat(b.chunk_id, ".tokens"),
                     {static_cast<int64_t>(b.tokens.size())}, b.tokens);
    }
  }
  decoder::SafetensorsWriter& writer() { return writer_; }

 private:
  decoder::SafetensorsWriter writer_;
};

}  // namespace

absl::Status ParseLayerRange(const std::string& text, uint32_t* begin, uint32_t* end) {
  *begin = 0;
  *end = 0;
  if (text.empty()) return absl::OkStatus();
  std::vector<std::string> parts = absl::StrSplit(text, ':');
  auto bad = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat("--layers \"", text, "\": expected B:E (E exclusive), B: or :E"));
  };
  if (parts.size() != 2) return bad();
  if (!parts[0].empty() && !absl::SimpleAtoi(parts[0], begin)) return bad();
  if (!parts[1].empty() && !absl::SimpleAtoi(parts[1], end)) return bad();
  if (!parts[1].empty() && *end <= *begin) {
    return absl::InvalidArgumentError(
        absl::StrCat("--layers \"", text, "\" is empty: E must be greater than B"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int64_t>> ParseIntList(const std::string& text, const char* what) {
  std::vector<int64_t> out;
  for (absl::string_view piece : absl::StrSplit(text, ',')) {
    piece = absl::StripAsciiWhitespace(piece);
    int64_t value = 0;
    if (!absl::SimpleAtoi(piece, &value)) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": \"", piece, "\" is not an integer (expected e.g. 1,2,3)"));
    }
    out.push_back(value);
  }
  return out;
}

absl::StatusOr<ModelFingerprint> FingerprintFromModelDir(const std::string& dir) {
  absl::StatusOr<decoder::ModelConfig> config = decoder::LoadModelConfig(dir);
  if (!config.ok()) return Annotate(config.status(), absl::StrCat("--model-dir ", dir));
  return decoder::FingerprintFromConfig(*config);
}

// The verbs, one per `mnemo kv` subcommand. Each validates its flags
// (INVALID_ARGUMENT naming the flag), makes its calls and writes its result
// to `out`; the server's status passes through otherwise.
namespace {

// `kv register`: the namespace's KV model (from --model-dir or
// --fingerprint, exactly one), codec, capacity, eviction and default TTL.
absl::Status KvRegister(Client& client, const GlobalOptions& g, const KvRegisterOptions& o,
                        const Output& out) {
  if (o.model.model_dir.empty() == o.model.fingerprint.empty()) {
    return absl::InvalidArgumentError("give exactly one of --model-dir and --fingerprint");
  }
  KvConfig config;
  ASSIGN_OR_RETURN(config.model, ResolveModel(client, g, o.ns, o.model));
  ASSIGN_OR_RETURN(config.codec, ParseKvCodec(o.codec));
  if (o.no_entropy) config.entropy = false;
  config.int4_group_size = o.int4_group;
  config.capacity_bytes = o.capacity_bytes;
  config.eviction_policy = o.eviction;
  config.default_ttl_seconds = o.ttl_seconds;
  config.key_index_keys_per_cluster = o.key_index;
  ASSIGN_OR_RETURN(KvStats stats, client.RegisterKvModel(o.ns, config, UnaryCall(g)));
  if (out.json) {
    PrintJson(out, KvStatsToJson(o.ns, stats));
  } else {
    Print(out, absl::StrCat("registered KV model ", stats.config.model.HashHex(), " in ", o.ns,
                            "\n\n", KvStatsText(o.ns, stats)));
  }
  return absl::OkStatus();
}

// `kv put`: the chunk KV files `mnemo-decode prefill` wrote to --from;
// FAILED_PRECONDITION when their model is not the namespace's.
absl::Status KvPutChunks(Client& client, const GlobalOptions& g, const KvPutOptions& o,
                         const Output& out) {
  const Clock::time_point start = Clock::now();
  ASSIGN_OR_RETURN(KvDtype dtype, ParseKvDtype(o.dtype));
  if (o.ttl_seconds < 0) return absl::InvalidArgumentError("--ttl must be >= 0");
  ASSIGN_OR_RETURN(Manifest manifest, ReadManifest(o.from));
  const ModelFingerprint& m = manifest.model;
  std::string prefix;
  if (o.id_prefix.has_value()) {
    prefix = *o.id_prefix;
  } else {
    std::filesystem::path dir = std::filesystem::absolute(o.from).lexically_normal();
    if (!dir.has_filename()) dir = dir.parent_path();  // "DIR/"
    prefix = dir.filename().string() + "#";
  }
  std::vector<std::string> ids;
  for (const ManifestChunk& c : manifest.chunks) ids.push_back(absl::StrCat(prefix, c.index));
  uint64_t created = 0;
  RETURN_IF_ERROR(EnsureChunks(client, g, o, manifest, ids, out, &created));

  json results = json::array();
  uint64_t total_bytes = 0, total_tokens = 0, evicted = 0;
  for (size_t i = 0; i < manifest.chunks.size(); ++i) {
    const ManifestChunk& c = manifest.chunks[i];
    const std::string path = (std::filesystem::path(o.from) / c.file).string();
    auto where = [&](const absl::Status& s) { return Annotate(s, path); };
    absl::StatusOr<std::unique_ptr<decoder::SafetensorsFile>> file =
        decoder::SafetensorsFile::Open(path);
    if (!file.ok()) return where(file.status());
    const auto& meta = (*file)->metadata();
    auto fp = meta.find("fingerprint");
    if (fp == meta.end() || fp->second != manifest.fingerprint) {
      return absl::FailedPreconditionError(absl::StrCat(
          path, ": its fingerprint differs from the manifest's; the directory mixes models"));
    }
    absl::StatusOr<absl::Span<const int32_t>> tokens = (*file)->I32("tokens");
    if (!tokens.ok()) return where(tokens.status());
    if (tokens->size() != c.n_tokens) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": holds ", tokens->size(),
                                                     " tokens, the manifest says ", c.n_tokens));
    }
    const std::vector<int64_t> shape = {m.n_kv_heads, static_cast<int64_t>(tokens->size()),
                                        m.head_dim};
    KvPutHeader header;
    header.chunk_id = ids[i];
    header.model = m;
    header.tokens.assign(tokens->begin(), tokens->end());
    header.pin = o.pin;
    header.ttl_seconds = o.ttl_seconds;
    ASSIGN_OR_RETURN(std::unique_ptr<KvWriter> writer,
                     client.OpenKvWriter(o.ns, header, StreamingCall(g)));
    absl::Status sent;
    for (int l = 0; l < m.n_layers && sent.ok(); ++l) {
      absl::StatusOr<absl::Span<const float>> k =
          (*file)->F32(absl::StrCat("layer", l, ".k_pre_rope"), shape);
      if (!k.ok()) return where(k.status());  // the writer cancels the put
      absl::StatusOr<absl::Span<const float>> v = (*file)->F32(absl::StrCat("layer", l, ".v"),
                                                               shape);
      if (!v.ok()) return where(v.status());
      sent = writer->WriteLayer(static_cast<uint32_t>(l), *k, *v, dtype);
    }
    if (!sent.ok() && !absl::IsAborted(sent)) return Annotate(sent, ids[i]);
    absl::StatusOr<KvPutResult> result = writer->Finish();
    if (!result.ok()) return Annotate(result.status(), absl::StrCat("chunk ", ids[i]));
    float max_key_error = 0, max_value_error = 0;
    for (float e : result->key_error) max_key_error = std::max(max_key_error, e);
    for (float e : result->value_error) max_value_error = std::max(max_value_error, e);
    total_bytes += result->stored_bytes;
    total_tokens += tokens->size();
    evicted += result->evicted_chunks;
    results.push_back(json{{"id", ids[i]},
                           {"file", c.file},
                           {"tokens", tokens->size()},
                           {"stored_bytes", result->stored_bytes},
                           {"max_key_error", max_key_error},
                           {"max_value_error", max_value_error},
                           {"evicted_chunks", result->evicted_chunks}});
    if (!out.json) {
      Print(out, absl::StrFormat("put %s: %d tokens, %s stored, max rel. error K %.2g V %.2g%s\n",
                                 ids[i], tokens->size(), HumanBytes(result->stored_bytes),
                                 max_key_error, max_value_error,
                                 result->evicted_chunks > 0
                                     ? absl::StrCat(", evicted ", result->evicted_chunks,
                                                    " chunks for room")
                                     : ""));
    }
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (out.json) {
    PrintJson(out, json{{"namespace", o.ns},
                        {"model", m.HashHex()},
                        {"chunks", std::move(results)},
                        {"chunks_created", created},
                        {"tokens", total_tokens},
                        {"stored_bytes", total_bytes},
                        {"evicted_chunks", evicted},
                        {"seconds", seconds}});
  } else {
    Print(out, absl::StrFormat("put KV of %d chunks (%d tokens, %s) into %s in %.2fs\n",
                               manifest.chunks.size(), total_tokens, HumanBytes(total_bytes), o.ns,
                               seconds));
  }
  return absl::OkStatus();
}

// `kv get`: fetches chunks' KV (some layers, optionally re-rotated to
// --positions) and prints a summary or writes --out as safetensors.
absl::Status KvGet(Client& client, const GlobalOptions& g, const KvGetOptions& o,
                   const Output& out) {
  RETURN_IF_ERROR(NeedIds(o.ids));
  KvGetRequest request;
  request.chunk_ids = o.ids;
  RETURN_IF_ERROR(ParseLayerRange(o.layers, &request.layer_begin, &request.layer_end));
  ASSIGN_OR_RETURN(request.dtype, ParseKvDtype(o.dtype));
  if (!o.positions.empty()) {
    ASSIGN_OR_RETURN(request.positions, ParseIntList(o.positions, "--positions"));
    if (request.positions.size() != o.ids.size()) {
      return absl::InvalidArgumentError(absl::StrCat("--positions gives ",
                                                     request.positions.size(),
                                                     " positions for ", o.ids.size(),
                                                     " chunks (one per chunk)"));
    }
  }
  ASSIGN_OR_RETURN(request.model, ResolveModel(client, g, o.ns, o.model));
  ASSIGN_OR_RETURN(std::unique_ptr<KvReader> reader,
                   client.OpenKvReader(o.ns, request, StreamingCall(g)));
  std::unique_ptr<BlockFile> file;
  if (!o.out.empty()) file = std::make_unique<BlockFile>();
  json blocks = json::array();
  std::string text;
  if (!out.json && !file) {
    text = absl::StrFormat("%-24s  %5s  %-16s  %8s  %9s  %9s\n", "CHUNK", "LAYER",
                           "SHAPE", "POSITION", "KEY_ERR", "VALUE_ERR");
  }
  uint64_t count = 0, elements = 0;
  KvBlock block;
  for (;;) {
    ASSIGN_OR_RETURN(bool more, reader->Next(&block));
    if (!more) break;
    ++count;
    elements += 2 * block.k.size();
    const std::string shape = absl::StrCat("[", block.shape.n_kv_heads, ", ", block.shape.tokens,
                                           ", ", block.shape.head_dim, "]");
    if (file) file->Add(block);
    json j{{"chunk_id", block.chunk_id},
           {"chunk_index", block.chunk_index},
           {"layer", block.layer},
           {"shape", {block.shape.n_kv_heads, block.shape.tokens, block.shape.head_dim}},
           {"dtype", std::string(KvDtypeName(block.dtype))},
           {"position", block.position},
           {"key_error", block.key_error},
           {"value_error", block.value_error}};
    if (!block.tokens.empty()) j["tokens"] = block.tokens;
    blocks.push_back(std::move(j));
    if (!out.json && !file) {
      absl::StrAppendFormat(&text, "%-24s  %5d  %-16s  %8s  %9.3g  %9.3g\n", block.chunk_id,
                            block.layer, shape,
                            block.position < 0 ? "-" : absl::StrCat(block.position),
                            block.key_error, block.value_error);
    }
  }
  if (file) {
    decoder::SafetensorsWriter& w = file->writer();
    w.SetMetadata("format", kGetFormat);
    w.SetMetadata("namespace", o.ns);
    w.SetMetadata("fingerprint", request.model.Canonical());
    w.SetMetadata("fingerprint_hash", request.model.HashHex());
    w.SetMetadata("layout", "[n_kv_heads, tokens, head_dim]");
    w.SetMetadata("wire_dtype", std::string(KvDtypeName(request.dtype)));
    w.SetMetadata("chunk_ids", json(o.ids).dump());
    w.SetMetadata("positions", json(request.positions).dump());
    RETURN_IF_ERROR(w.Write(o.out));
  }
  if (out.json) {
    json doc{{"namespace", o.ns}, {"blocks", std::move(blocks)}};
    if (file) doc["out"] = o.out;
    PrintJson(out, doc);
  } else if (file) {
    Print(out, absl::StrFormat("wrote %d blocks (%d K/V values as float32) of %d chunks to %s\n",
                               count, elements, o.ids.size(), o.out));
  } else {
    Print(out, text);
  }
  return absl::OkStatus();
}

// `kv exists`: which of the ids have KV stored (for the given model).
absl::Status KvExists(Client& client, const GlobalOptions& g, const KvIdsOptions& o,
                      const Output& out) {
  RETURN_IF_ERROR(NeedIds(o.ids));
  ASSIGN_OR_RETURN(ModelFingerprint model, ResolveModel(client, g, o.ns, o.model));
  ASSIGN_OR_RETURN(std::vector<uint32_t> tokens,
                   client.ExistsKv(o.ns, o.ids, model, UnaryCall(g)));
  if (out.json) {
    json items = json::array();
    for (size_t i = 0; i < o.ids.size(); ++i) {
      items.push_back(json{{"id", o.ids[i]}, {"exists", tokens[i] > 0}, {"tokens", tokens[i]}});
    }
    PrintJson(out, json{{"namespace", o.ns}, {"chunks", std::move(items)}});
    return absl::OkStatus();
  }
  std::string text;
  for (size_t i = 0; i < o.ids.size(); ++i) {
    absl::StrAppend(&text, o.ids[i], "\t",
                    tokens[i] > 0 ? absl::StrCat(tokens[i], " tokens") : "no KV", "\n");
  }
  Print(out, text);
  return absl::OkStatus();
}

// `kv delete`: drops the chunks' KV.
absl::Status KvDelete(Client& client, const GlobalOptions& g, const KvIdsOptions& o,
                      const Output& out) {
  RETURN_IF_ERROR(NeedIds(o.ids));
  ASSIGN_OR_RETURN(uint64_t deleted, client.DeleteKv(o.ns, o.ids, UnaryCall(g)));
  if (out.json) {
    PrintJson(out, json{{"namespace", o.ns}, {"deleted", deleted}});
  } else {
    Print(out, absl::StrCat("deleted the KV of ", deleted, " chunks in ", o.ns,
                            " (the chunks stay)\n"));
  }
  return absl::OkStatus();
}

// `kv lookup --tokens`: the longest chain of stored chunks whose token ids
// are a prefix of --tokens (prefix reuse), with the tokens it covers.
absl::Status KvLookup(Client& client, const GlobalOptions& g, const KvLookupOptions& o,
                      const Output& out) {
  ASSIGN_OR_RETURN(std::vector<int64_t> wide, ParseIntList(o.tokens, "--tokens"));
  std::vector<int32_t> tokens;
  for (int64_t t : wide) {
    if (t < 0 || t > std::numeric_limits<int32_t>::max()) {
      return absl::InvalidArgumentError(absl::StrCat("--tokens: ", t, " is not a token id"));
    }
    tokens.push_back(static_cast<int32_t>(t));
  }
  ASSIGN_OR_RETURN(ModelFingerprint model, ResolveModel(client, g, o.ns, o.model));
  ASSIGN_OR_RETURN(KvPrefixMatch match, client.LookupPrefix(o.ns, model, tokens, UnaryCall(g)));
  if (out.json) {
    json chunks = json::array();
    for (size_t i = 0; i < match.chunk_ids.size(); ++i) {
      chunks.push_back(json{{"id", match.chunk_ids[i]}, {"tokens", match.chunk_tokens[i]}});
    }
    PrintJson(out, json{{"namespace", o.ns},
                        {"query_tokens", tokens.size()},
                        {"matched_tokens", match.matched_tokens},
                        {"chunks", std::move(chunks)}});
    return absl::OkStatus();
  }
  std::string text = absl::StrCat("matched ", match.matched_tokens, " of ", tokens.size(),
                                  " tokens with ", match.chunk_ids.size(), " chunks\n");
  uint64_t at = 0;
  for (size_t i = 0; i < match.chunk_ids.size(); ++i) {
    absl::StrAppend(&text, "  [", at, ", ", at + match.chunk_tokens[i], ")  ", match.chunk_ids[i],
                    "\n");
    at += match.chunk_tokens[i];
  }
  Print(out, text);
  return absl::OkStatus();
}

// `kv pin` / `kv unpin` (`pin` false): exempts chunks from eviction, or not.
absl::Status KvPin(Client& client, const GlobalOptions& g, const KvIdsOptions& o, bool pin,
                   const Output& out) {
  RETURN_IF_ERROR(NeedIds(o.ids));
  ASSIGN_OR_RETURN(uint64_t updated,
                   client.SetKvRetention(o.ns, o.ids, pin, std::nullopt, UnaryCall(g)));
  if (out.json) {
    PrintJson(out, json{{"namespace", o.ns}, {"pinned", pin}, {"updated", updated}});
  } else {
    Print(out, absl::StrCat(pin ? "pinned" : "unpinned", " the KV of ", updated, " of ",
                            o.ids.size(), " chunks in ", o.ns, "\n"));
  }
  return absl::OkStatus();
}

// `kv ttl`: sets the chunks' time to live (0 = never expire).
absl::Status KvTtl(Client& client, const GlobalOptions& g, const KvTtlOptions& o,
                   const Output& out) {
  RETURN_IF_ERROR(NeedIds(o.ids));
  if (o.seconds < 0) return absl::InvalidArgumentError("--seconds must be >= 0");
  ASSIGN_OR_RETURN(uint64_t updated,
                   client.SetKvRetention(o.ns, o.ids, std::nullopt, o.seconds, UnaryCall(g)));
  if (out.json) {
    PrintJson(out, json{{"namespace", o.ns}, {"ttl_seconds", o.seconds}, {"updated", updated}});
  } else {
    Print(out, absl::StrCat("set the KV of ", updated, " of ", o.ids.size(), " chunks in ", o.ns,
                            o.seconds > 0 ? absl::StrCat(" to expire in ", o.seconds, " s")
                                          : std::string(" to never expire"),
                            "\n"));
  }
  return absl::OkStatus();
}

// `kv stats NS`: the KV model, codec, capacity use and error of a namespace.
absl::Status KvStatsVerb(Client& client, const GlobalOptions& g, const std::string& ns,
                         const Output& out) {
  ASSIGN_OR_RETURN(KvStats stats, client.GetKvStats(ns, UnaryCall(g)));
  if (out.json) {
    PrintJson(out, KvStatsToJson(ns, stats));
  } else {
    Print(out, KvStatsText(ns, stats));
  }
  return absl::OkStatus();
}


void AddModelOptions(CLI::App* verb, KvModelSource* model, const char* when_neither) {
  CLI::Option* dir = verb->add_option(
      "--model-dir", model->model_dir,
      absl::StrCat("Model directory whose config.json gives the fingerprint (as mnemo-decode "
                   "reads it)",
                   when_neither));
  CLI::Option* fp = verb->add_option(
      "--fingerprint", model->fingerprint,
      "The fingerprint as \"architecture=llama;n_layers=4;n_heads=8;n_kv_heads=2;head_dim=32;"
      "dim=256;rope_theta=10000;rope_style=half;dtype=float32;tokenizer_sha256=<hex>\"");
  dir->type_name("DIR")->excludes(fp);
  fp->type_name("FIELDS")->excludes(dir);
}

}  // namespace

void AddKvVerbs(CLI::App& app, const GlobalOptions* global, VerbAction* action) {
  CLI::App* kv = app.add_subcommand(
      "kv",
      "Chunk KV caches: register a namespace's decoder model, upload the KV that\n"
      "mnemo-decode prefill computed, fetch, inspect, pin, expire and delete it");
  kv->require_subcommand(1);
  constexpr char kRegistered[] = "; default: the namespace's registered model";

  auto reg = std::make_shared<KvRegisterOptions>();
  CLI::App* r = kv->add_subcommand(
      "register",
      "Register the namespace's decoder model (its fingerprint) and how its KV is stored.\n"
      "Registering the same model again changes the settings; another model is refused\n"
      "while the namespace holds KV.");
  r->add_option("--ns", reg->ns, "Namespace")->type_name("NS")->required();
  AddModelOptions(r, &reg->model, "");
  r->add_option("--codec", reg->codec,
                "Storage codec: fp32 (lossless), fp16, bf16, int8 (per-token scale, ~1.9x "
                "smaller than fp16), int4 (groups, ~3.2x smaller) or kvq (non-uniform levels, "
                "outliers, rANS; >= 4x smaller)")
      ->check(CLI::IsMember({"fp32", "fp16", "bf16", "int8", "int4", "kvq"}))
      ->capture_default_str();
  r->add_flag("--no-entropy", reg->no_entropy,
              "Skip the lossless zstd stage on top of the codec (faster puts, more bytes)");
  r->add_option("--int4-group", reg->int4_group,
                "int4 quantization group size (0 = server default, 32)")
      ->type_name("N");
  r->add_option("--capacity-bytes", reg->capacity_bytes,
                "Byte budget of the namespace's stored KV; a put over it evicts unpinned "
                "chunks' KV (0 = unlimited)")
      ->type_name("BYTES");
  r->add_option("--eviction", reg->eviction,
                "Who loses KV first when over budget: lru (least recently read or put, "
                "default) or fifo (oldest put)")
      ->check(CLI::IsMember({"lru", "fifo"}))
      ->type_name("lru|fifo");
  r->add_option("--ttl", reg->ttl_seconds,
                "Default TTL in seconds of puts that give none (0 = never expire)")
      ->type_name("SECONDS")
      ->check(CLI::NonNegativeNumber);
  r->add_option("--key-index", reg->key_index,
                "Mean keys per cluster of the key index every put builds per (layer, KV head)\n"
                "for retrieval attention (mnemo-decode generate --attention retrieval|topk);\n"
                "0 = no index (server default 16)")
      ->type_name("N")
      ->check(CLI::Range(0, 4096));
  r->callback([global, action, reg] {
    *action = [global, reg](Client& c, const Output& out) {
      return KvRegister(c, *global, *reg, out);
    };
  });

  auto put = std::make_shared<KvPutOptions>();
  auto prefix = std::make_shared<std::string>();
  CLI::App* p = kv->add_subcommand(
      "put",
      "Upload the chunk KV files of `mnemo-decode prefill --out DIR` (DIR/manifest.json and\n"
      "DIR/chunk-NNNNN.safetensors: per layer K before RoPE and V). Chunk i is stored\n"
      "under id PREFIX + i; the chunks must exist in the namespace (or --create-chunks).\n"
      "The namespace's registered model must be the manifest's.");
  p->add_option("--ns", put->ns, "Namespace")->type_name("NS")->required();
  p->add_option("--from", put->from, "Directory written by mnemo-decode prefill --out")
      ->type_name("DIR")
      ->required();
  CLI::Option* prefix_opt =
      p->add_option("--id-prefix", *prefix,
                    "Chunk id prefix: chunk i is PREFIX + i, e.g. doc# -> doc#0, doc#1 "
                    "(default: the directory's name + #)")
          ->type_name("PREFIX");
  p->add_flag("--create-chunks", put->create_chunks,
              "Upsert missing chunks first with the manifest's decoded text (encoder "
              "namespaces only; elsewhere a chunk needs a vector)");
  p->add_option("--dtype", put->dtype,
                "Element type on the wire: fp32, fp16 or bf16 (halves the bytes sent; the "
                "namespace's codec decides what is stored)")
      ->check(CLI::IsMember({"fp32", "fp16", "bf16"}))
      ->capture_default_str();
  p->add_flag("--pin", put->pin, "Pin the KV: never evicted");
  p->add_option("--ttl", put->ttl_seconds,
                "Seconds until the KV expires (0 = the namespace's default)")
      ->type_name("SECONDS")
      ->check(CLI::NonNegativeNumber);
  p->callback([global, action, put, prefix, prefix_opt] {
    if (prefix_opt->count() > 0) put->id_prefix = *prefix;
    *action = [global, put](Client& c, const Output& out) {
      return KvPutChunks(c, *global, *put, out);
    };
  });

  auto get = std::make_shared<KvGetOptions>();
  CLI::App* gt = kv->add_subcommand(
      "get",
      "Fetch the KV blocks of chunks, layer by layer: print one line per block, or with\n"
      "--out write them as float32 safetensors (<id>.layer<l>.k / .v [n_kv_heads, tokens,\n"
      "head_dim], <id>.tokens).");
  gt->add_option("--ns", get->ns, "Namespace")->type_name("NS")->required();
  gt->add_option("ids", get->ids, "Chunk ids")->required();
  AddModelOptions(gt, &get->model, kRegistered);
  gt->add_option("--layers", get->layers, "Layer range B:E, E exclusive (default: all)")
      ->type_name("B:E");
  gt->add_option("--dtype", get->dtype, "Element type on the wire: fp32, fp16 or bf16")
      ->check(CLI::IsMember({"fp32", "fp16", "bf16"}))
      ->capture_default_str();
  gt->add_option("--positions", get->positions,
                 "One start position per id: keys come rotated (RoPE) for [P, P + tokens); "
                 "default: keys before RoPE")
      ->type_name("P,...");
  gt->add_option("--out", get->out, "Write the blocks to this .safetensors file")
      ->type_name("FILE");
  gt->callback([global, action, get] {
    *action = [global, get](Client& c, const Output& out) { return KvGet(c, *global, *get, out); };
  });

  auto exists = std::make_shared<KvIdsOptions>();
  CLI::App* e = kv->add_subcommand(
      "exists", "Show which chunks hold KV, and how many tokens (evicted or expired KV: none)");
  e->add_option("--ns", exists->ns, "Namespace")->type_name("NS")->required();
  e->add_option("ids", exists->ids, "Chunk ids")->required();
  AddModelOptions(e, &exists->model, kRegistered);
  e->callback([global, action, exists] {
    *action = [global, exists](Client& c, const Output& out) {
      return KvExists(c, *global, *exists, out);
    };
  });

  auto del = std::make_shared<KvIdsOptions>();
  CLI::App* d = kv->add_subcommand(
      "delete", "Delete the KV of chunks; the chunks keep their text and vectors");
  d->add_option("--ns", del->ns, "Namespace")->type_name("NS")->required();
  d->add_option("ids", del->ids, "Chunk ids")->required();
  d->callback([global, action, del] {
    *action = [global, del](Client& c, const Output& out) {
      return KvDelete(c, *global, *del, out);
    };
  });

  auto lookup = std::make_shared<KvLookupOptions>();
  CLI::App* l = kv->add_subcommand(
      "lookup",
      "Find the longest run of chunks with KV whose token ids, concatenated, start the\n"
      "given prompt (prefix reuse)");
  l->add_option("--ns", lookup->ns, "Namespace")->type_name("NS")->required();
  l->add_option("--tokens", lookup->tokens, "The prompt's token ids, comma-separated")
      ->type_name("T,...")
      ->required();
  AddModelOptions(l, &lookup->model, kRegistered);
  l->callback([global, action, lookup] {
    *action = [global, lookup](Client& c, const Output& out) {
      return KvLookup(c, *global, *lookup, out);
    };
  });

  for (bool pin : {true, false}) {
    auto ids = std::make_shared<KvIdsOptions>();
    CLI::App* v = kv->add_subcommand(
        pin ? "pin" : "unpin",
        pin ? "Pin chunks' KV: it is never evicted (a put that needs the room fails instead)"
            : "Unpin chunks' KV: it can be evicted again");
    v->add_option("--ns", ids->ns, "Namespace")->type_name("NS")->required();
    v->add_option("ids", ids->ids, "Chunk ids")->required();
    v->callback([global, action, ids, pin] {
      *action = [global, ids, pin](Client& c, const Output& out) {
        return KvPin(c, *global, *ids, pin, out);
      };
    });
  }

  auto ttl = std::make_shared<KvTtlOptions>();
  CLI::App* t = kv->add_subcommand(
      "ttl", "Set when chunks' KV expires: N seconds from now (0 = never)");
  t->add_option("--ns", ttl->ns, "Namespace")->type_name("NS")->required();
  t->add_option("--seconds", ttl->seconds, "Seconds from now; 0 = never expire")
      ->type_name("N")
      ->check(CLI::NonNegativeNumber)
      ->required();
  t->add_option("ids", ttl->ids, "Chunk ids")->required();
  t->callback([global, action, ttl] {
    *action = [global, ttl](Client& c, const Output& out) { return KvTtl(c, *global, *ttl, out); };
  });

  auto stats_ns = std::make_shared<std::string>();
  CLI::App* s = kv->add_subcommand(
      "stats",
      "The namespace's KV model, codec, budget and policy, and what it holds: chunks,\n"
      "blocks, tokens, bytes (and the ratio to fp16), pins, evictions, mean errors");
  s->add_option("--ns", *stats_ns, "Namespace")->type_name("NS")->required();
  s->callback([global, action, stats_ns] {
    *action = [global, stats_ns](Client& c, const Output& out) {
      return KvStatsVerb(c, *global, *stats_ns, out);
    };
  });
}

}  // namespace mnemo::cli
