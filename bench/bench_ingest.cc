// bench_ingest: end-to-end ingestion speed of text (chunks/s) on the State
// of the Union corpus, against the encoder alone, in the same run.
//
// End to end: a real mnemod is started on 127.0.0.1 with a temporary data
// directory (as the integration tests do), and the addresses are ingested
// into a fresh encoder namespace through the same code as `mnemo ingest`
// (cli::IngestPipelined: sha256 check, batches, UpsertStream calls, up to
// --in-flight batches at once). mnemod chunks, embeds, tokenizes for BM25
// and commits. Each --in-flight value runs into its own namespace.
//
// Baseline: the same documents chunked with the namespace's chunking and
// the chunks embedded in-process through the store's text plugin (the same
// encoder object mnemod runs), batch by batch as ingest groups them. When
// the namespace also keeps token vectors (late interaction), the server
// runs the network for them as well, so that baseline is timed too.
//
// The ratio end-to-end / encoder-alone says how close ingestion gets to the
// encoder's speed (1.0 = everything but the encoder is hidden). Batches are
// 256 KiB of text by default (--batch-bytes), smaller than mnemo ingest's
// 1 MiB, so that a 10-address run has several batches to overlap.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/cli/commands.h"
#include "client/cli/ingest_pipeline.h"
#include "db/text.h"
#include "mnemo/client.h"
#include "nlohmann/json.hpp"
#include "tests/integration/mnemod_process.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

struct Flags {
  std::string assets_dir;
  std::string corpus;  // default <assets>/sotu
  int addresses = 10;
  bool all = false;
  std::vector<int> in_flight = {1, 3};
  int batch = 64;
  uint64_t batch_bytes = 256u << 10;
  std::string bin_dir;
  bool late_interaction = true;  // false: namespaces without token vectors
};

void Usage() {
  std::cerr
      << "usage: bench_ingest [flags]\n"
         "  --assets-dir DIR   encoder and corpus assets (default $MNEMO_ASSETS_DIR or .assets)\n"
         "  --corpus DIR       folder of .txt addresses (default <assets>/sotu, from\n"
         "                     scripts/fetch_corpora)\n"
         "  --addresses N      addresses ingested, evenly spaced over the years (default 10:\n"
         "                     about 1,200 chunks, 1-2 minutes per run on 2 cores)\n"
         "  --all              every address (233, about 24,000 chunks: 15-20 minutes per\n"
         "                     --in-flight value on 2 cores)\n"
         "  --in-flight LIST   comma-separated batches in flight, one run each (default 1,3;\n"
         "                     `mnemo ingest` uses 3)\n"
         "  --batch N          documents per batch (default 64, as mnemo ingest)\n"
         "  --batch-bytes N    text bytes per batch (default 262144; mnemo ingest's 1048576\n"
         "                     puts 10 addresses in one batch, leaving nothing to overlap)\n"
         "  --bin-dir DIR      where mnemod is (default: this binary's folder)\n"
         "  --no-late-interaction  namespaces without token vectors (dense + BM25 only)\n";
}

bool ParseFlags(int argc, char** argv, Flags* flags) {
  const char* env = std::getenv("MNEMO_ASSETS_DIR");
  flags->assets_dir = env != nullptr && *env != '\0' ? env : ".assets";
  flags->bin_dir = fs::absolute(fs::path(argv[0])).parent_path().string();
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (arg == "--assets-dir") {
      flags->assets_dir = value();
    } else if (arg == "--corpus") {
      flags->corpus = value();
    } else if (arg == "--addresses") {
      if (!absl::SimpleAtoi(value(), &flags->addresses) || flags->addresses < 1) {
        Usage();
        return false;
      }
    } else if (arg == "--all") {
      flags->all = true;
    } else if (arg == "--in-flight") {
      flags->in_flight.clear();
      for (absl::string_view part : absl::StrSplit(value(), ',')) {
        int n = 0;
        if (!absl::SimpleAtoi(part, &n) || n < 1) {
          Usage();
          return false;
        }
        flags->in_flight.push_back(n);
      }
    } else if (arg == "--batch") {
      if (!absl::SimpleAtoi(value(), &flags->batch) || flags->batch < 1) {
        Usage();
        return false;
      }
    } else if (arg == "--batch-bytes") {
      if (!absl::SimpleAtoi(value(), &flags->batch_bytes) || flags->batch_bytes < 1) {
        Usage();
        return false;
      }
    } else if (arg == "--bin-dir") {
      flags->bin_dir = value();
    } else if (arg == "--no-late-interaction") {
      flags->late_interaction = false;
    } else {
      Usage();
      return false;
    }
  }
  if (flags->corpus.empty()) flags->corpus = flags->assets_dir + "/sotu";
  return !flags->in_flight.empty();
}

// The chosen addresses: every .txt of the corpus (sorted by name, i.e. by
// year), or `want` of them evenly spaced.
std::vector<std::string> PickAddresses(const std::string& dir, int want, bool all) {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_regular_file() && entry.path().extension() == ".txt") {
      files.push_back(entry.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  if (all || static_cast<size_t>(want) >= files.size()) return files;
  std::vector<std::string> picked;
  for (int i = 0; i < want; ++i) picked.push_back(files[i * files.size() / want]);
  return picked;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);  // as ingest: drop a BOM
  return text;
}

struct Baseline {
  size_t chunks = 0;
  double chunk_seconds = 0;
  double encode_seconds = 0;
  double token_seconds = 0;  // EncodeWithTokens, when timed
};

// Chunks the documents as the namespace does and embeds the chunks in
// groups as ingest batches them (one Encode call per batch, as mnemod).
absl::StatusOr<Baseline> EncoderAlone(const mnemo::db::text::TextEncoder& encoder,
                                      const std::vector<std::string>& texts,
                                      const mnemo::encoder::ChunkerOptions& chunking,
                                      const Flags& flags, bool token_states) {
  Baseline result;
  std::vector<std::vector<std::string>> groups(1);
  uint64_t group_bytes = 0;
  size_t group_docs = 0;
  auto start = Clock::now();
  for (const std::string& text : texts) {
    if (group_docs > 0 &&
        (group_docs >= static_cast<size_t>(flags.batch) || group_bytes + text.size() > flags.batch_bytes)) {
      groups.emplace_back();
      group_docs = 0;
      group_bytes = 0;
    }
    absl::StatusOr<std::vector<mnemo::encoder::TextChunk>> pieces = encoder.Chunk(text, chunking);
    if (!pieces.ok()) return pieces.status();
    for (mnemo::encoder::TextChunk& piece : *pieces) groups.back().push_back(std::move(piece.text));
    result.chunks += pieces->size();
    ++group_docs;
    group_bytes += text.size();
  }
  result.chunk_seconds = Seconds(start);
  start = Clock::now();
  for (const std::vector<std::string>& group : groups) {
    absl::StatusOr<std::vector<float>> embedded = encoder.Encode(group);
    if (!embedded.ok()) return embedded.status();
  }
  result.encode_seconds = Seconds(start);
  if (token_states) {
    start = Clock::now();
    for (const std::vector<std::string>& group : groups) {
      auto both = encoder.EncodeWithTokens(group);
      if (!both.ok()) return both.status();
    }
    result.token_seconds = Seconds(start);
  }
  return result;
}

struct Run {
  int in_flight = 0;
  uint64_t chunks = 0;
  uint64_t documents = 0;
  double seconds = 0;
};

absl::StatusOr<Run> IngestOnce(mnemo::Client& client, const std::string& target,
                               const std::string& ns, const std::vector<std::string>& files,
                               const Flags& flags, int in_flight) {
  mnemo::cli::GlobalOptions global;
  global.server = target;
  global.json = true;
  mnemo::cli::IngestOptions options;
  options.ns = ns;
  options.paths = files;
  options.batch = flags.batch;
  options.batch_bytes = flags.batch_bytes;
  mnemo::cli::IngestPipelineOptions pipeline;
  pipeline.in_flight = in_flight;
  std::FILE* out = std::tmpfile();
  if (out == nullptr) return absl::InternalError("tmpfile failed");
  mnemo::cli::Output output{out, stderr, /*json=*/true};
  const auto start = Clock::now();
  absl::Status status = mnemo::cli::IngestPipelined(client, global, options, output, pipeline);
  const double seconds = Seconds(start);
  std::rewind(out);
  std::string text;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, out)) > 0) text.append(buffer, n);
  std::fclose(out);
  if (!status.ok()) return status;
  const nlohmann::json summary = nlohmann::json::parse(text, nullptr, false);
  if (!summary.is_object()) return absl::InternalError("ingest printed no JSON summary");
  Run run;
  run.in_flight = in_flight;
  run.chunks = summary.value("chunks_written", uint64_t{0});
  run.documents = summary.value("documents_written", uint64_t{0});
  run.seconds = seconds;
  return run;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  if (!ParseFlags(argc, argv, &flags)) return 2;
  auto fail = [](const std::string& what, const absl::Status& status) {
    std::cerr << "bench_ingest: " << what << ": " << status << "\n";
    return 1;
  };

  const std::vector<std::string> files = PickAddresses(flags.corpus, flags.addresses, flags.all);
  if (files.empty()) {
    std::cerr << "bench_ingest: no .txt files in " << flags.corpus
              << " (run scripts/fetch_corpora first)\n";
    return 1;
  }
  std::vector<std::string> texts;
  uint64_t bytes = 0;
  for (const std::string& file : files) {
    texts.push_back(ReadFile(file));
    bytes += texts.back().size();
  }
  const std::string assets = fs::absolute(flags.assets_dir).string();

  // mnemod, as the integration tests start it.
  if (std::getenv("MNEMO_BIN_DIR") == nullptr) setenv("MNEMO_BIN_DIR", flags.bin_dir.c_str(), 1);
  auto server = mnemo::testing::MnemodProcess::Start(
      {"--assets-dir", assets, "--log-level", "warn"}, "", std::chrono::seconds(60));
  if (!server.ok()) return fail("cannot start mnemod", server.status());
  auto client = mnemo::Client::Connect((*server)->target());
  if (!client.ok()) return fail("cannot connect", client.status());

  // Namespaces as `mnemo ns create NAME --encoder use-lite` makes them.
  auto create = [&](const std::string& name) -> absl::StatusOr<mnemo::NamespaceInfo> {
    mnemo::NamespaceConfig config;
    config.name = name;
    config.encoder = "use-lite";
    config.metric = mnemo::Metric::kCosine;
    if (!flags.late_interaction) config.late_interaction = false;
    return (*client)->CreateNamespace(config, {});
  };

  std::vector<Run> runs;
  mnemo::NamespaceConfig ns_config;
  for (size_t i = 0; i < flags.in_flight.size(); ++i) {
    const std::string ns = absl::StrCat("sotu_", i, "_inflight", flags.in_flight[i]);
    auto info = create(ns);
    if (!info.ok()) return fail("cannot create namespace " + ns, info.status());
    ns_config = info->config;
    auto run = IngestOnce(**client, (*server)->target(), ns, files, flags, flags.in_flight[i]);
    if (!run.ok()) return fail("ingest into " + ns, run.status());
    runs.push_back(*run);
    std::fprintf(stderr, "bench_ingest: in-flight %d: %llu chunks in %.1f s\n", run->in_flight,
                 static_cast<unsigned long long>(run->chunks), run->seconds);
  }

  // mnemod is stopped first: its background work (snapshots, compaction)
  // must not take CPU from the baseline.
  if (absl::Status stopped = (*server)->Stop(); !stopped.ok()) {
    std::cerr << "bench_ingest: mnemod did not stop cleanly: " << stopped << "\n";
  }

  // The encoder alone, in this process, through the store's text plugin.
  auto encoder = mnemo::db::text::GetEncoder(assets, "use-lite");
  if (!encoder.ok()) return fail("cannot load the encoder", encoder.status());
  mnemo::encoder::ChunkerOptions chunking;
  // The namespace defaults, as NamespaceConfig documents them.
  const uint32_t max_tokens = ns_config.chunk_max_tokens == 0 ? 128 : ns_config.chunk_max_tokens;
  const uint32_t overlap = ns_config.chunk_overlap_tokens.value_or(16);
  chunking.max_tokens = static_cast<int>(max_tokens);
  chunking.overlap_tokens = static_cast<int>(overlap);
  const bool token_states = ns_config.late_interaction.value_or(false);
  auto baseline = EncoderAlone(**encoder, texts, chunking, flags, token_states);
  if (!baseline.ok()) return fail("encoder baseline", baseline.status());

  const double encoder_rate = baseline->chunks / baseline->encode_seconds;
  const double encoder_both_rate =
      baseline->chunks / baseline->token_seconds;
  std::printf("bench_ingest: %zu State of the Union addresses (%s), %.1f MB of text; batches of "
              "%d documents / %llu bytes\n",
              files.size(), flags.all ? "all" : "evenly spaced", bytes / 1e6, flags.batch,
              static_cast<unsigned long long>(flags.batch_bytes));
  std::printf("  namespace: encoder use-lite, chunks of %u tokens, overlap %u, late interaction %s\n",
              max_tokens, overlap,
              token_states ? "on" : "off");
  // The encoder work mnemod does per chunk: Encode, or in a
  // late-interaction namespace EncodeWithTokens (one pass for both the
  // embedding and the token states).
  const double server_encoder_rate = token_states ? encoder_both_rate : encoder_rate;
  std::printf("  %-46s %8s %9s %10s %10s %12s\n", "mode", "chunks", "seconds", "chunks/s",
              "vs Encode", "vs mnemod's");
  std::printf("  %-46s %8s %9s %10s %10s %12s\n", "", "", "", "", "", "encoder work");
  std::printf("  %-46s %8zu %9.2f %10.1f %10.2f %12.2f\n", "encoder alone: Encode (in-process)",
              baseline->chunks, baseline->encode_seconds, encoder_rate, 1.0,
              encoder_rate / server_encoder_rate);
  if (token_states) {
    std::printf("  %-46s %8zu %9.2f %10.1f %10.2f %12.2f\n",
                "encoder alone: EncodeWithTokens", baseline->chunks,
                baseline->token_seconds, encoder_both_rate,
                encoder_both_rate / encoder_rate, 1.0);
  }
  const double chunk_rate = baseline->chunks / baseline->chunk_seconds;
  std::printf("  %-46s %8zu %9.2f %10.1f %10.2f %12.2f\n", "chunking alone (in-process)",
              baseline->chunks, baseline->chunk_seconds, chunk_rate, chunk_rate / encoder_rate,
              chunk_rate / server_encoder_rate);
  for (const Run& run : runs) {
    const double rate = run.chunks / run.seconds;
    const std::string name = absl::StrCat("mnemo ingest -> mnemod, ", run.in_flight,
                                          run.in_flight == 1 ? " batch" : " batches", " in flight");
    std::printf("  %-46s %8llu %9.2f %10.1f %10.2f %12.2f\n", name.c_str(),
                static_cast<unsigned long long>(run.chunks), run.seconds, rate,
                rate / encoder_rate, rate / server_encoder_rate);
  }
  if (runs.size() > 1) {
    std::printf("  pipelining: %d in flight is %.2fx the chunks/s of %d in flight\n",
                runs.back().in_flight,
                (runs.back().chunks / runs.back().seconds) / (runs.front().chunks / runs.front().seconds),
                runs.front().in_flight);
  }
  for (const Run& run : runs) {
    if (run.chunks != baseline->chunks) {
      std::printf("  note: mnemod wrote %llu chunks, the in-process chunking gives %zu\n",
                  static_cast<unsigned long long>(run.chunks), baseline->chunks);
      break;
    }
  }
  return 0;
}
