#include "decoder/cli.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <optional>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "absl/strings/str_format.h"
#include "decoder/model.h"
#include "decoder/inject_cli.h"
#include "decoder/model_dir.h"
#include "decoder/remote_attention.h"
#include "decoder/safetensors.h"
#include "decoder/session.h"
#include "decoder/tokenizer.h"
#include "nlohmann/json.hpp"

namespace mnemo::decoder::cli {
namespace {

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

// Format tag of the prefill output directory's manifest.json.
constexpr char kChunkFormat[] = "mnemo-kv-chunks/1";

using Loaded = LoadedModel;

absl::StatusOr<std::string> ReadText(const std::string& path) {
  std::stringstream ss;
  if (path == "-") {
    ss << std::cin.rdbuf();
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
    ss << in.rdbuf();
  }
  return ss.str();
}

bool IsBlank(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c); });
}

// Prompt ids: BOS (when asked and the model has one) then the text's pieces.
absl::StatusOr<std::vector<int32_t>> PromptIds(const Loaded& m, const std::string& text,
                                               bool bos) {
  if (IsBlank(text)) return absl::InvalidArgumentError("the prompt is empty");
  absl::StatusOr<std::vector<int>> ids = m.tokenizer->Encode(text);
  if (!ids.ok()) return ids.status();
  std::vector<int32_t> out;
  if (bos && m.model->config().bos_id >= 0) out.push_back(m.model->config().bos_id);
  out.insert(out.end(), ids->begin(), ids->end());
  return out;
}

// --- generate -------------------------------------------------------------

struct GenerateArgs {
  std::string model_dir;
  std::string prompt;
  int max_tokens = 64;
  float temperature = 0.0f;
  int top_k = 0;
  float top_p = 1.0f;
  uint64_t seed = 0;
  std::string device = "cpu";
  bool no_bos = false;
  bool json = false;
  // Memory chunks stored in mnemod (remote_attention.h).
  std::string server;
  std::string ns;
  std::vector<std::string> memory;
  std::string attention = "full";
  std::optional<double> budget;     // exact fraction
  std::optional<double> estimated;  // estimated fraction (retrieval)
  // Memory injected from mnemod (inject_cli.h); server and ns are the above.
  InjectOptions inject;
};

// A generation over memory chunks: the context and its statistics.
struct MemoryRun {
  std::unique_ptr<Client> client;
  MemoryLayout layout;
  KvCache sink;
  std::unique_ptr<AttendStream> stream;
  std::unique_ptr<RemoteAttention> remote;
  explicit MemoryRun(const ModelConfig& config) : sink(config, 1) {}
};

// Connects to --server and lays the memory chunks out from position 1
// (after the BOS sink; 0 without BOS).
absl::StatusOr<std::unique_ptr<MemoryRun>> LayOut(const GenerateArgs& a, const Loaded& m,
                                                  bool bos) {
  if (a.server.empty() || a.ns.empty()) {
    return absl::InvalidArgumentError("--memory needs --server and --ns");
  }
  auto run = std::make_unique<MemoryRun>(m.model->config());
  ClientOptions options;
  options.default_timeout = std::chrono::hours(1);  // the Attend stream spans the generation
  ASSIGN_OR_RETURN(run->client, Client::Connect(a.server, options));
  ASSIGN_OR_RETURN(run->layout, LayOutMemory(run->client.get(), a.ns, m.model->fingerprint(),
                                             a.memory, bos ? 1 : 0));
  return run;
}

// Prepares `session` for the prompt (without its BOS) per --attention:
// full appends BOS and every chunk's KV; retrieval and topk keep the BOS
// in the run's sink, start the session after the chunks and attend to
// them through an Attend stream.
absl::Status PrepareMemory(const GenerateArgs& a, const Loaded& m, MemoryAttention mode,
                           bool bos, MemoryRun* run, DecodeSession* session) {
  const int32_t bos_id = m.model->config().bos_id;
  if (mode == MemoryAttention::kFull) {
    session->Reset();
    if (bos) RETURN_IF_ERROR(session->Append({&bos_id, 1}, LogitsMode::kNone, nullptr));
    return AppendMemoryKv(run->client.get(), a.ns, *m.model, run->layout, session);
  }
  if (bos) {
    CpuForward sink_forward(*m.model);
    RETURN_IF_ERROR(sink_forward.Forward({&bos_id, 1}, &run->sink, LogitsMode::kNone, nullptr));
  }
  if (run->layout.end > INT32_MAX / 2) return absl::OutOfRangeError("memory too long");
  RETURN_IF_ERROR(session->ResetAt(static_cast<int>(run->layout.end)));
  std::vector<AttendChunk> chunks;
  for (size_t i = 0; i < run->layout.chunk_ids.size(); ++i) {
    chunks.push_back({run->layout.chunk_ids[i], run->layout.starts[i]});
  }
  ASSIGN_OR_RETURN(run->stream, run->client->OpenAttend(a.ns, m.model->fingerprint(), chunks));
  AttendBudget budget;
  budget.exact_fraction = a.budget;
  budget.estimated_fraction = a.estimated;
  run->remote = std::make_unique<RemoteAttention>(*m.model, run->stream.get(), mode, budget,
                                                  &run->sink);
  return session->SetExternalAttention(run->remote.get());
}

// generate --memory: the prompt answered over memory chunks stored in mnemod.
absl::Status RunGenerateWithMemory(const GenerateArgs& a) {
  ASSIGN_OR_RETURN(MemoryAttention mode, ParseMemoryAttention(a.attention));
  ASSIGN_OR_RETURN(Device device, ParseDevice(a.device));
  ASSIGN_OR_RETURN(Loaded m, LoadModelDir(a.model_dir));
  ASSIGN_OR_RETURN(std::vector<int32_t> prompt, PromptIds(m, a.prompt, /*bos=*/false));
  const bool bos = !a.no_bos && m.model->config().bos_id >= 0;
  ASSIGN_OR_RETURN(std::unique_ptr<MemoryRun> run, LayOut(a, m, bos));
  // The session holds the prompt and the answer, plus BOS and the chunks
  // when it attends to them itself (full).
  int64_t capacity = static_cast<int64_t>(prompt.size()) + a.max_tokens + 1;
  if (mode == MemoryAttention::kFull) capacity += run->layout.end;
  if (capacity > INT32_MAX / 2) return absl::OutOfRangeError("context too long");
  ASSIGN_OR_RETURN(std::unique_ptr<DecodeSession> session,
                   NewDecodeSession(*m.model, device, static_cast<int>(capacity)));
  RETURN_IF_ERROR(PrepareMemory(a, m, mode, bos, run.get(), session.get()));
  GenerateOptions opts;
  opts.max_tokens = a.max_tokens;
  opts.sampling = SamplingOptions{a.temperature, a.top_k, a.top_p, a.seed};
  opts.eos_id = m.model->config().eos_id;
  opts.keep_context = true;
  std::vector<double> step_ms;
  auto last = std::chrono::steady_clock::now();
  const auto start = last;
  ASSIGN_OR_RETURN(std::vector<int32_t> out,
                   Generate(session.get(), prompt, opts, [&](int32_t) {
                     const auto now = std::chrono::steady_clock::now();
                     step_ms.push_back(std::chrono::duration<double, std::milli>(now - last).count());
                     last = now;
                   }));
  const double total_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  if (run->stream != nullptr) RETURN_IF_ERROR(run->stream->Close());
  ASSIGN_OR_RETURN(std::string text, m.tokenizer->Decode(std::vector<int>(out.begin(), out.end())));
  if (!a.json) {
    std::cout << text << "\n";
    return absl::OkStatus();
  }
  nlohmann::json j = {{"prompt_tokens", prompt},
                      {"tokens", out},
                      {"text", text},
                      {"device", a.device},
                      {"attention", a.attention},
                      {"memory_tokens", run->layout.end - run->layout.starts.front()},
                      {"prompt_position", run->layout.end},
                      {"fingerprint", m.model->fingerprint().Canonical()},
                      {"total_ms", total_ms},
                      {"step_ms", step_ms}};
  if (run->remote != nullptr) {
    const RemoteAttentionStats& st = run->remote->stats();
    j["keys_read_fraction"] = st.keys_read_fraction();
    j["attend_calls"] = st.calls;
    j["attend_client_ms"] = st.client_seconds * 1e3;
    j["attend_server_ms"] = st.server_seconds * 1e3;
  } else {
    j["keys_read_fraction"] = 1.0;
  }
  std::cout << j.dump() << "\n";
  return absl::OkStatus();
}

absl::Status RunGenerate(const GenerateArgs& a) {
  if (!a.inject.mode.empty()) {
    if (!a.memory.empty()) return absl::InvalidArgumentError("--inject and --memory exclude each other");
    InjectedGenerateArgs ia;
    ia.model_dir = a.model_dir;
    ia.prompt = a.prompt;
    ia.max_tokens = a.max_tokens;
    ia.temperature = a.temperature;
    ia.top_k = a.top_k;
    ia.top_p = a.top_p;
    ia.seed = a.seed;
    ia.device = a.device;
    ia.bos = !a.no_bos;
    ia.json = a.json;
    ia.inject = a.inject;
    ia.inject.server = a.server;
    ia.inject.ns = a.ns;
    return RunInjectedGenerate(ia);
  }
  if (!a.memory.empty()) return RunGenerateWithMemory(a);

  absl::StatusOr<Device> device = ParseDevice(a.device);
  if (!device.ok()) return device.status();
  absl::StatusOr<Loaded> m = LoadModelDir(a.model_dir);
  if (!m.ok()) return m.status();
  absl::StatusOr<std::vector<int32_t>> prompt = PromptIds(*m, a.prompt, !a.no_bos);
  if (!prompt.ok()) return prompt.status();
  absl::StatusOr<std::unique_ptr<DecodeSession>> session =
      NewDecodeSession(*m->model, *device);
  if (!session.ok()) return session.status();
  GenerateOptions opts;
  opts.max_tokens = a.max_tokens;
  opts.sampling = SamplingOptions{a.temperature, a.top_k, a.top_p, a.seed};
  opts.eos_id = m->model->config().eos_id;
  absl::StatusOr<std::vector<int32_t>> out = Generate(session->get(), *prompt, opts);
  if (!out.ok()) return out.status();
  absl::StatusOr<std::string> text =
      m->tokenizer->Decode(std::vector<int>(out->begin(), out->end()));
  if (!text.ok()) return text.status();
  if (a.json) {
    nlohmann::json j = {{"prompt_tokens", *prompt},
                        {"tokens", *out},
                        {"text", *text},
                        {"device", a.device},
                        {"fingerprint", m->model->fingerprint().Canonical()}};
    std::cout << j.dump() << "\n";
  } else {
    std::cout << *text << "\n";
  }
  if (session->get()->length() >= session->get()->capacity() &&
      static_cast<int>(out->size()) < a.max_tokens) {
    std::cerr << "note: stopped at the model's context of " << session->get()->capacity()
              << " tokens\n";
  }
  return absl::OkStatus();
}

// --- prefill --------------------------------------------------------------

struct PrefillArgs {
  std::string model_dir;
  std::string input;
  std::string out_dir;
  int chunk_tokens = 256;
  bool bos = false;
};

absl::Status RunPrefill(const PrefillArgs& a) {
  absl::StatusOr<std::string> text = ReadText(a.input);
  if (!text.ok()) return text.status();
  if (IsBlank(*text)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the text of ", a.input == "-" ? "stdin" : a.input, " is empty"));
  }
  absl::StatusOr<Loaded> m = LoadModelDir(a.model_dir);
  if (!m.ok()) return m.status();
  const ModelConfig& c = m->model->config();
  const bool bos = a.bos && c.bos_id >= 0;
  const int per_chunk = a.chunk_tokens - (bos ? 1 : 0);
  if (per_chunk < 1 || a.chunk_tokens > c.max_seq_len) {
    return absl::InvalidArgumentError(absl::StrCat("--chunk-tokens must be in [", bos ? 2 : 1,
                                                   ", ", c.max_seq_len, "], got ",
                                                   a.chunk_tokens));
  }
  absl::StatusOr<std::vector<int>> ids = m->tokenizer->Encode(*text);
  if (!ids.ok()) return ids.status();
  if (ids->empty()) return absl::InvalidArgumentError("the text has no tokens");

  std::error_code ec;
  std::filesystem::create_directories(a.out_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", a.out_dir, ": ", ec.message()));

  const ModelFingerprint& fp = m->model->fingerprint();
  nlohmann::json manifest = {
      {"format", kChunkFormat},
      {"model", c.name},
      {"fingerprint", fp.Canonical()},
      {"fingerprint_hash", fp.HashHex()},
      {"n_layers", c.n_layers},
      {"n_kv_heads", c.n_kv_heads},
      {"head_dim", c.head_dim},
      {"dtype", "float32"},
      {"layout", "[n_kv_heads, tokens, head_dim]"},
      {"rope", {{"style", c.rope_style}, {"theta", c.rope_theta}, {"first_position", 0}}},
      {"bos", bos},
      {"chunk_tokens", a.chunk_tokens},
      {"text_tokens", ids->size()},
      {"chunks", nlohmann::json::array()}};

  CpuForward forward(*m->model);
  KvCache cache(c, a.chunk_tokens);
  ForwardTrace trace;
  trace.want_kv = true;
  int index = 0;
  for (size_t begin = 0; begin < ids->size(); begin += per_chunk, ++index) {
    const size_t end = std::min(ids->size(), begin + per_chunk);
    std::vector<int32_t> tokens;
    if (bos) tokens.push_back(c.bos_id);
    tokens.insert(tokens.end(), ids->begin() + begin, ids->begin() + end);
    cache.Clear();  // every chunk from position 0, on its own
    RETURN_IF_ERROR(forward.Forward(tokens, &cache, LogitsMode::kNone, nullptr, &trace));
    const int64_t T = static_cast<int64_t>(tokens.size());
    const std::vector<int64_t> shape = {c.n_kv_heads, T, c.head_dim};
    SafetensorsWriter w;
    w.AddI32("tokens", {T}, tokens);
    for (int l = 0; l < c.n_layers; ++l) {
      w.AddF32(absl::StrCat("layer", l, ".k_pre_rope"), shape, trace.k_pre_rope[l]);
      w.AddF32(absl::StrCat("layer", l, ".k"), shape, trace.k[l]);
      w.AddF32(absl::StrCat("layer", l, ".v"), shape, trace.v[l]);
    }
    w.SetMetadata("format", kChunkFormat);
    w.SetMetadata("fingerprint", fp.Canonical());
    w.SetMetadata("fingerprint_hash", fp.HashHex());
    w.SetMetadata("chunk_index", absl::StrCat(index));
    w.SetMetadata("text_token_begin", absl::StrCat(begin));
    const std::string file = absl::StrFormat("chunk-%05d.safetensors", index);
    RETURN_IF_ERROR(w.Write((std::filesystem::path(a.out_dir) / file).string()));
    absl::StatusOr<std::string> chunk_text =
        m->tokenizer->Decode(std::vector<int>(ids->begin() + begin, ids->begin() + end));
    if (!chunk_text.ok()) return chunk_text.status();
    manifest["chunks"].push_back({{"index", index},
                                  {"file", file},
                                  {"text_token_begin", begin},
                                  {"n_tokens", T},
                                  {"text", *chunk_text}});
  }
  const std::string manifest_path = (std::filesystem::path(a.out_dir) / "manifest.json").string();
  {
    std::ofstream out(manifest_path + ".tmp", std::ios::trunc);
    out << manifest.dump(2) << "\n";
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", manifest_path));
  }
  std::filesystem::rename(manifest_path + ".tmp", manifest_path, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot write ", manifest_path));
  std::cout << "wrote " << index << " chunk(s) of " << ids->size() << " tokens to " << a.out_dir
            << "\n";
  return absl::OkStatus();
}

// --- attn-stats -----------------------------------------------------------

struct AttnStatsArgs {
  std::string model_dir;
  std::string prompt;
  std::string out;
  bool no_bos = false;
};

absl::Status RunAttnStats(const AttnStatsArgs& a) {
  absl::StatusOr<Loaded> m = LoadModelDir(a.model_dir);
  if (!m.ok()) return m.status();
  absl::StatusOr<std::vector<int32_t>> tokens = PromptIds(*m, a.prompt, !a.no_bos);
  if (!tokens.ok()) return tokens.status();
  const ModelConfig& c = m->model->config();
  const int T = static_cast<int>(tokens->size());
  if (T > c.max_seq_len) {
    return absl::OutOfRangeError(absl::StrCat("prompt of ", T, " tokens exceeds the context of ",
                                              c.max_seq_len));
  }
  CpuForward forward(*m->model);
  KvCache cache(c, T);
  ForwardTrace trace;
  trace.want_q = true;
  trace.want_kv = true;
  RETURN_IF_ERROR(forward.Forward(*tokens, &cache, LogitsMode::kNone, nullptr, &trace));
  const attention::AttentionShape shape = m->model->attention_shape();
  SafetensorsWriter w;
  w.AddI32("tokens", {T}, *tokens);
  std::vector<float> q_tok(static_cast<size_t>(T) * c.n_heads * c.head_dim), probs;
  for (int l = 0; l < c.n_layers; ++l) {
    // trace.q is [H, T, hd]; the attention API takes [T, H, hd].
    for (int h = 0; h < c.n_heads; ++h)
      for (int t = 0; t < T; ++t)
        std::copy_n(trace.q[l].data() + (static_cast<size_t>(h) * T + t) * c.head_dim,
                    c.head_dim,
                    q_tok.data() + (static_cast<size_t>(t) * c.n_heads + h) * c.head_dim);
    attention::KeyValueBlock kv;
    kv.keys = trace.k[l].data();
    kv.values = trace.v[l].data();
    kv.n_keys = T;
    kv.head_stride = T;
    RETURN_IF_ERROR(attention::AttentionProbabilities(
        shape, attention::QueryBlock{q_tok.data(), T, 0}, kv, /*causal=*/true, &probs));
    w.AddF32(absl::StrCat("layer", l, ".q"), {c.n_heads, T, c.head_dim}, trace.q[l]);
    w.AddF32(absl::StrCat("layer", l, ".k"), {c.n_kv_heads, T, c.head_dim}, trace.k[l]);
    w.AddF32(absl::StrCat("layer", l, ".attn"), {c.n_heads, T, T}, probs);
  }
  w.SetMetadata("prompt", a.prompt);
  w.SetMetadata("fingerprint", m->model->fingerprint().Canonical());
  w.SetMetadata("fingerprint_hash", m->model->fingerprint().HashHex());
  w.SetMetadata("softmax_scale", absl::StrCat(shape.scale));
  RETURN_IF_ERROR(w.Write(a.out));
  std::cout << "wrote attention of " << T << " tokens x " << c.n_layers << " layers x "
            << c.n_heads << " heads to " << a.out << "\n";
  return absl::OkStatus();
}

void PrintError(const absl::Status& s) {
  std::cerr << "error: " << absl::StatusCodeToString(s.code()) << ": " << s.message() << "\n";
}

}  // namespace

int RunDecodeCli(int argc, char** argv) {
  CLI::App app{
      "mnemo-decode: the reference llama-style decoder (CPU, or GPU with --device cuda).\n"
      "A model directory holds config.json, model.safetensors and tokenizer.model\n"
      "(e.g. decoder/models/mnemo-ref-4m)."};
  app.require_subcommand(0, 1);
  app.footer("Errors go to stderr as \"error: <CODE>: <message>\" with exit code 1\n"
             "(2 for a usage error).");
  std::function<absl::Status()> action;

  GenerateArgs g;
  CLI::App* gen = app.add_subcommand("generate", "Continue a prompt and print the new text");
  gen->add_option("--model", g.model_dir, "Model directory")->required()->type_name("DIR");
  gen->add_option("prompt", g.prompt, "Prompt text")->required();
  gen->add_option("--max-tokens", g.max_tokens, "Most tokens to generate")
      ->capture_default_str()->check(CLI::NonNegativeNumber)->type_name("N");
  gen->add_option("--temperature", g.temperature, "0 = greedy; > 0 samples")
      ->capture_default_str()->check(CLI::NonNegativeNumber)->type_name("T");
  gen->add_option("--top-k", g.top_k, "Sample among the K most likely tokens (0 = all)")
      ->capture_default_str()->check(CLI::NonNegativeNumber)->type_name("K");
  gen->add_option("--top-p", g.top_p, "Nucleus: smallest set with probability >= P, in (0, 1]")
      ->capture_default_str()->check(CLI::Range(0.0, 1.0))->type_name("P");
  gen->add_option("--seed", g.seed, "Sampling seed (same seed, same text)")
      ->capture_default_str()->type_name("S");
  gen->add_option("--device", g.device, "Where to run")
      ->capture_default_str()->check(CLI::IsMember({"cpu", "cuda"}))->type_name("cpu|cuda");
  gen->add_flag("--no-bos", g.no_bos, "Do not start the prompt with the BOS token");
  gen->add_flag("--json", g.json,
                "Print {prompt_tokens, tokens, text, device, fingerprint} as one JSON line (with\n"
                "--memory also attention, keys_read_fraction, step_ms and Attend timings)");
  gen->add_option("--server", g.server, "mnemod holding the memory chunks' KV")
      ->type_name("HOST:PORT");
  gen->add_option("--ns", g.ns, "Namespace of the memory chunks")->type_name("NS");
  gen->add_option("--memory", g.memory,
                  "Stored chunks laid out in this order from position 1 (after BOS), before\n"
                  "the prompt")
      ->delimiter(',')->type_name("ID1,ID2,...");
  gen->add_option("--attention", g.attention,
                  "How the prompt attends to the memory: full (fetch all KV with GetKv),\n"
                  "retrieval (the server attends through its key indexes and returns a\n"
                  "partial), topk (the server returns the keys to attend)")
      ->capture_default_str()->check(CLI::IsMember({"full", "retrieval", "topk"}))
      ->type_name("full|retrieval|topk");
  gen->add_option("--budget", g.budget,
                  "Share of the memory's key clusters attended exactly (retrieval, topk;\n"
                  "server default 0.02)")
      ->check(CLI::Range(0.0, 1.0))->type_name("F");
  gen->add_option("--estimated", g.estimated,
                  "Share of clusters estimated from their summaries (retrieval; default 0.25)")
      ->check(CLI::Range(0.0, 1.0))->type_name("F");
  AddInjectOptions(gen, &g.inject);
  gen->callback([&] { action = [&] { return RunGenerate(g); }; });

  PrefillArgs p;
  CLI::App* pre = app.add_subcommand(
      "prefill",
      "Tokenize a text, split its tokens into chunks, prefill each chunk on its own from\n"
      "position 0 and write per chunk its token ids and every layer's K before RoPE,\n"
      "K after RoPE and V ([n_kv_heads, tokens, head_dim] float32) with the model\n"
      "fingerprint: OUT/chunk-NNNNN.safetensors + OUT/manifest.json");
  pre->add_option("--model", p.model_dir, "Model directory")->required()->type_name("DIR");
  pre->add_option("input", p.input, "Text file, or - for stdin")->required()->type_name("FILE|-");
  pre->add_option("--out", p.out_dir, "Output directory (created)")->required()->type_name("OUT");
  pre->add_option("--chunk-tokens", p.chunk_tokens,
                  "Tokens per chunk (at most the model's max_seq_len)")
      ->capture_default_str()->check(CLI::PositiveNumber)->type_name("N");
  pre->add_flag("--bos", p.bos, "Start every chunk with the BOS token (counted in N)");
  pre->callback([&] { action = [&] { return RunPrefill(p); }; });

  AddScoreCommand(&app, &action);

  AttnStatsArgs s;
  CLI::App* stats = app.add_subcommand(
      "attn-stats",
      "Run a prompt and write, per layer, the query vectors after RoPE [n_heads, T,\n"
      "head_dim], the keys after RoPE [n_kv_heads, T, head_dim] and the causal attention\n"
      "weights [n_heads, T, T] (rows sum to 1) as safetensors");
  stats->add_option("--model", s.model_dir, "Model directory")->required()->type_name("DIR");
  stats->add_option("prompt", s.prompt, "Prompt text")->required();
  stats->add_option("--out", s.out, "Output .safetensors file")->required()->type_name("FILE");
  stats->add_flag("--no-bos", s.no_bos, "Do not start the prompt with the BOS token");
  stats->callback([&] { action = [&] { return RunAttnStats(s); }; });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : kExitUsage;
  }
  if (!action) {
    std::cerr << app.help();
    return kExitUsage;
  }
  const absl::Status status = action();
  std::cout.flush();
  if (!status.ok()) {
    PrintError(status);
    return kExitError;
  }
  return 0;
}

}  // namespace mnemo::decoder::cli
