// bench_retrieval_quality: recall@1, recall@10 and MRR of each text search
// mode on a labelled set built from a real corpus by the inverse cloze task.
//
// Labelled set: State of the Union addresses (scripts/fetch_corpora) are cut
// into chunks with the namespace's chunking (the store's text plugin, as a
// document upsert would cut them). A seeded sample of chunks each gives one
// query: one of its sentences, taken out of the chunk's stored text (the
// inverse cloze task), so the chunk must be found from its context, not by
// the sentence itself. Sentences that also appear in any other chunk (the
// overlap between neighbours, formulaic lines) are not used, so every query
// has exactly one right answer.
//
// The chunks are upserted by id, as text, into a fresh encoder namespace of
// an in-process db::Store (the engine mnemod serves; the store embeds them
// and indexes them for BM25 and late interaction), and every query is run
// in every mode of kModes, k = 10.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <cstring>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "db/store.h"
#include "db/text.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using mnemo::db::SearchMode;

// The modes compared, in the order printed; a new mode is one line here.
struct ModeSpec {
  const char* name;
  SearchMode mode;
};
constexpr ModeSpec kModes[] = {
    {"dense", SearchMode::kDense},
    {"bm25", SearchMode::kBm25},
    {"hybrid (RRF)", SearchMode::kHybridRrf},
    {"weighted", SearchMode::kHybridWeighted},
    {"late interaction (MaxSim)", SearchMode::kLateInteraction},
};

constexpr int kK = 10;

double Seconds(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

struct Flags {
  std::string assets_dir;
  std::string corpus;  // default <assets>/sotu
  int addresses = 10;
  bool all = false;
  int queries = 300;
  uint32_t seed = 42;
};

void Usage() {
  std::cerr
      << "usage: bench_retrieval_quality [flags]\n"
         "  --assets-dir DIR  encoder and corpus assets (default $MNEMO_ASSETS_DIR or .assets)\n"
         "  --corpus DIR      folder of .txt addresses (default <assets>/sotu)\n"
         "  --addresses N     addresses, evenly spaced over the years (default 10)\n"
         "  --all             every address\n"
         "  --queries N       labelled queries sampled (default 300)\n"
         "  --seed N          sampling seed (default 42)\n";
}

bool ParseFlags(int argc, char** argv, Flags* flags) {
  const char* env = std::getenv("MNEMO_ASSETS_DIR");
  flags->assets_dir = env != nullptr && *env != '\0' ? env : ".assets";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    bool ok = true;
    if (arg == "--assets-dir") {
      flags->assets_dir = value();
    } else if (arg == "--corpus") {
      flags->corpus = value();
    } else if (arg == "--addresses") {
      ok = absl::SimpleAtoi(value(), &flags->addresses) && flags->addresses > 0;
    } else if (arg == "--all") {
      flags->all = true;
    } else if (arg == "--queries") {
      ok = absl::SimpleAtoi(value(), &flags->queries) && flags->queries > 0;
    } else if (arg == "--seed") {
      ok = absl::SimpleAtoi(value(), &flags->seed);
    } else {
      ok = false;
    }
    if (!ok) {
      Usage();
      return false;
    }
  }
  if (flags->corpus.empty()) flags->corpus = flags->assets_dir + "/sotu";
  return true;
}

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
  return buffer.str();
}

// Number of words (runs of non-space characters).
int Words(absl::string_view text) {
  int words = 0;
  bool in_word = false;
  for (char c : text) {
    const bool space = absl::ascii_isspace(static_cast<unsigned char>(c));
    if (!space && !in_word) ++words;
    in_word = !space;
  }
  return words;
}

struct Labelled {
  std::vector<mnemo::db::Chunk> chunks;  // stored (query sentences taken out)
  std::vector<std::string> queries;
  std::vector<std::string> answers;  // chunk id per query
};

// Builds the inverse-cloze set. Sentences of 8..60 words that occur in no
// other chunk are candidates; chunks keep at least two other sentences.
absl::StatusOr<Labelled> BuildLabelledSet(const mnemo::db::text::TextEncoder& encoder,
                                          const std::vector<std::string>& files,
                                          const mnemo::encoder::ChunkerOptions& chunking,
                                          const Flags& flags) {
  Labelled set;
  for (const std::string& file : files) {
    const std::string doc_id = fs::path(file).filename().string();
    auto pieces = encoder.Chunk(ReadFile(file), chunking);
    if (!pieces.ok()) return pieces.status();
    for (size_t p = 0; p < pieces->size(); ++p) {
      mnemo::db::Chunk chunk;
      chunk.id = absl::StrCat(doc_id, "#", p);
      chunk.document_id = doc_id;
      chunk.text = std::move((*pieces)[p].text);
      set.chunks.push_back(std::move(chunk));
    }
  }
  std::mt19937 rng(flags.seed);
  std::vector<size_t> order(set.chunks.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  for (size_t c : order) {
    if (set.queries.size() >= static_cast<size_t>(flags.queries)) break;
    mnemo::db::Chunk& chunk = set.chunks[c];
    const auto sentences = encoder.SplitSentences(chunk.text);
    if (sentences.size() < 3) continue;
    std::vector<size_t> candidates;
    for (size_t s = 0; s < sentences.size(); ++s) {
      const auto [b, e] = sentences[s];
      const std::string sentence = chunk.text.substr(b, e - b);
      const int words = Words(sentence);
      if (words < 8 || words > 60) continue;
      bool unique = true;
      for (size_t other = 0; other < set.chunks.size() && unique; ++other) {
        if (other != c && set.chunks[other].text.find(sentence) != std::string::npos) {
          unique = false;
        }
      }
      if (unique) candidates.push_back(s);
    }
    if (candidates.empty()) continue;
    const auto [b, e] =
        sentences[candidates[std::uniform_int_distribution<size_t>(0, candidates.size() - 1)(rng)]];
    set.queries.push_back(chunk.text.substr(b, e - b));
    set.answers.push_back(chunk.id);
    // The chunk without the sentence; the whitespace around it becomes one.
    std::string before(absl::StripTrailingAsciiWhitespace(chunk.text.substr(0, b)));
    std::string after(absl::StripLeadingAsciiWhitespace(chunk.text.substr(e)));
    chunk.text = before.empty() || after.empty() ? before + after : before + " " + after;
  }
  return set;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  if (!ParseFlags(argc, argv, &flags)) return 2;
  auto fail = [](const std::string& what, const absl::Status& status) {
    std::cerr << "bench_retrieval_quality: " << what << ": " << status << "\n";
    return 1;
  };
  const std::vector<std::string> files = PickAddresses(flags.corpus, flags.addresses, flags.all);
  if (files.empty()) {
    std::cerr << "bench_retrieval_quality: no .txt files in " << flags.corpus
              << " (run scripts/fetch_corpora first)\n";
    return 1;
  }
  const std::string assets = fs::absolute(flags.assets_dir).string();

  std::string dir = (fs::temp_directory_path() / "mnemo-bench-retrieval-XXXXXX").string();
  if (mkdtemp(dir.data()) == nullptr) {
    return fail("mkdtemp", absl::InternalError(std::strerror(errno)));
  }
  struct RemoveDir {
    std::string path;
    ~RemoveDir() {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  } remove_dir{dir};

  mnemo::db::StoreOptions store_options;
  store_options.encoder_dir = assets;
  store_options.sync_writes = false;
  auto store = mnemo::db::Store::Open(store_options, dir + "/db");
  if (!store.ok()) return fail("cannot open the store", store.status());
  mnemo::db::NamespaceConfig config;
  config.name = "sotu_icl";
  config.encoder = mnemo::db::kEncoderUseLite;
  config.metric_unset = true;
  auto info = (*store)->CreateNamespace(config);
  if (!info.ok()) return fail("cannot create the namespace", info.status());

  auto encoder = mnemo::db::text::GetEncoder(assets, mnemo::db::kEncoderUseLite);
  if (!encoder.ok()) return fail("cannot load the encoder", encoder.status());
  mnemo::encoder::ChunkerOptions chunking;
  chunking.max_tokens = static_cast<int>(info->config.chunk_max_tokens);
  chunking.overlap_tokens = static_cast<int>(info->config.chunk_overlap_tokens.value_or(0));
  auto set = BuildLabelledSet(**encoder, files, chunking, flags);
  if (!set.ok()) return fail("cannot build the labelled set", set.status());
  if (set->queries.empty()) {
    std::cerr << "bench_retrieval_quality: no usable sentence in the chosen addresses\n";
    return 1;
  }

  auto start = Clock::now();
  constexpr size_t kUpsertBatch = 256;
  for (size_t i = 0; i < set->chunks.size(); i += kUpsertBatch) {
    const size_t end = std::min(set->chunks.size(), i + kUpsertBatch);
    auto written = (*store)->Upsert(
        config.name, {},
        absl::MakeConstSpan(set->chunks).subspan(i, end - i));
    if (!written.ok()) return fail("upsert", written.status());
  }
  const double upsert_seconds = Seconds(start);

  std::printf("bench_retrieval_quality: in-process db::Store, encoder use-lite (k = %d)\n", kK);
  std::printf("  corpus: %zu State of the Union addresses (%s), %zu chunks of %d tokens "
              "(overlap %d), upserted as text in %.1f s\n",
              files.size(), flags.all ? "all" : "evenly spaced", set->chunks.size(),
              chunking.max_tokens, chunking.overlap_tokens, upsert_seconds);
  std::printf("  labelled set: %zu inverse-cloze queries (one sentence held out of its chunk, "
              "seed %u)\n",
              set->queries.size(), flags.seed);
  std::printf("  %-28s %9s %10s %8s %12s\n", "mode", "recall@1", "recall@10", "MRR@10",
              "ms / query");
  for (const ModeSpec& spec : kModes) {
    mnemo::db::SearchOptions options;
    options.k = kK;
    options.mode = spec.mode;
    options.text_queries = set->queries;
    start = Clock::now();
    auto hits = (*store)->Search(config.name, {}, options);
    const double seconds = Seconds(start);
    if (!hits.ok()) {
      std::printf("  %-28s unavailable: %s\n", spec.name, hits.status().ToString().c_str());
      continue;
    }
    double at1 = 0, at10 = 0, mrr = 0;
    for (size_t q = 0; q < set->queries.size(); ++q) {
      const std::vector<mnemo::db::Hit>& list = (*hits)[q];
      for (size_t r = 0; r < list.size() && r < static_cast<size_t>(kK); ++r) {
        if (list[r].id != set->answers[q]) continue;
        if (r == 0) at1 += 1;
        at10 += 1;
        mrr += 1.0 / static_cast<double>(r + 1);
        break;
      }
    }
    const double n = static_cast<double>(set->queries.size());
    std::printf("  %-28s %9.3f %10.3f %8.3f %12.2f\n", spec.name, at1 / n, at10 / n, mrr / n,
                1e3 * seconds / n);
  }
  if (absl::Status closed = (*store)->Close(); !closed.ok()) return fail("close", closed);
  return 0;
}
