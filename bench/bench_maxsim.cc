// bench_maxsim: late-interaction (MaxSim) search, compressed index vs exact.
//
// Builds a synthetic clustered token corpus (documents drawing their tokens
// from a few of C shared "concepts", plus noise), then for 1-bit and 2-bit
// residuals compares, in the same run and on the same queries:
//   * baseline: BruteForceMaxSim over the fp32 tokens (BLAS sgemm per block
//     of 8192 tokens, then max per query token and document);
//   * MultiVectorIndex: centroid candidate generation, centroid-only
//     pruning, MaxSim rerank over decompressed residuals.
// Reported: build time, QPS of each, speedup, recall@10 against the
// baseline's top 10, bytes per token (fp32 vs compressed). Queries are run
// one at a time on the calling thread (BLAS threads as configured, e.g.
// OMP_NUM_THREADS).
//
// The concept count (default 128, as in tests/index/multivec_test.cc) sets
// how graded the exact ranking is below the query's target document. With
// --concepts 1024 almost every runner-up shares a single concept with the
// target, ranks 2..10 are decided by token noise alone, and 2-bit residuals
// reach only ~0.82 recall@10 (1 bit: ~0.77, 4 bits: ~0.90) although the
// target stays at rank 1, and no larger candidate pool or nprobe changes
// that (the loss is all in the quantised rerank); with 128 concepts 2 bits
// reach ~0.96.
//
//   bench_maxsim [--quick] [--docs N] [--tokens T] [--dim D] [--queries Q]
//                [--concepts C] [--centroids K] [--nprobe P]
//                [--max_candidates M]
//
// --real: the same comparison on REAL token states: the State of the Union
// addresses (.assets/sotu/*.txt, scripts/fetch_corpora) are chunked as the
// store chunks them (128 tokens, overlap 16), --chunks of those chunks
// (evenly spread over all addresses) are encoded by USE-lite
// (.assets/use-lite, scripts/fetch_encoder) into final token states, and
// the queries are sentences held out of random chunks (inverse cloze),
// encoded the same way. The index is built as the store builds it: the
// codec is trained on the first --train-tokens tokens (the store's default
// training threshold), later chunks are encoded with it as they arrive.
// The encoder is loaded through the store's plugin (libmnemo_text_plugin.so
// next to this binary, or $MNEMO_TEXT_PLUGIN; build target
// mnemo_text_plugin). --cache FILE saves the encoded corpus and queries
// (and reads them back on the next run), so parameter sweeps skip the
// encoding. Residuals of 1, 2 and 4 bits are measured.
//
// Measured (4000 chunks, 411k tokens, 2 shared cores): the held-out
// chunk is always first, but recall@10 is 0.78 at 2 bits with the default
// search parameters (4.1x faster than brute force) and 0.94 at 4 bits with
// 2048 candidates (1.3x): USE-lite token states are nearly isotropic, so
// the coarse centroids and the quantised residuals blur the close calls at
// ranks 2..10.
//
//   bench_maxsim --real [--assets DIR] [--chunks N] [--queries Q]
//                [--train-tokens T] [--centroids K] [--nprobe P]
//                [--max_candidates M]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <dlfcn.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "db/text.h"
#include "index/multivec.h"

namespace {

using mnemo::index::BruteForceMaxSim;
using mnemo::index::MultiVectorCorpus;
using mnemo::index::MultiVectorIndex;
using mnemo::index::MultiVectorIndexOptions;
using mnemo::index::MultiVectorSearchParams;
using mnemo::index::MultiVectorSearchResult;

struct Config {
  size_t docs = 20000;
  size_t tokens = 32;
  uint32_t dim = 128;
  size_t queries = 100;
  size_t concepts = 128;
  size_t concepts_per_doc = 6;
  uint32_t centroids = 1024;
  uint32_t nprobe = 0;
  uint32_t max_candidates = 0;
  bool centroids_given = false;
  // --real mode.
  bool real = false;
  std::string assets = ".assets";
  size_t chunks = 4000;
  uint64_t train_tokens = 0;  // 0 = mnemo::index::kLateInteractionTrainTokens
  std::string cache;          // --cache FILE: token states saved / reused
};

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                       since)
      .count();
}

void Normalize(float* v, size_t dim) {
  double norm = 0;
  for (size_t j = 0; j < dim; ++j) norm += double{v[j]} * v[j];
  const float inv = static_cast<float>(1.0 / std::sqrt(norm));
  for (size_t j = 0; j < dim; ++j) v[j] *= inv;
}

MultiVectorCorpus MakeCorpus(const Config& c, std::mt19937* rng) {
  std::normal_distribution<float> gauss;
  std::vector<float> concepts(c.concepts * c.dim);
  for (float& x : concepts) x = gauss(*rng);
  for (size_t i = 0; i < c.concepts; ++i) Normalize(&concepts[i * c.dim], c.dim);
  std::uniform_int_distribution<size_t> pick_concept(0, c.concepts - 1);
  std::uniform_int_distribution<size_t> pick_slot(0, c.concepts_per_doc - 1);
  const float sigma = 0.3f / std::sqrt(static_cast<float>(c.dim));
  MultiVectorCorpus corpus;
  corpus.dim = c.dim;
  corpus.vectors.reserve(c.docs * c.tokens * c.dim);
  std::vector<size_t> pool(c.concepts_per_doc);
  for (size_t d = 0; d < c.docs; ++d) {
    for (size_t& p : pool) p = pick_concept(*rng);
    for (size_t t = 0; t < c.tokens; ++t) {
      const float* centre = &concepts[pool[pick_slot(*rng)] * c.dim];
      const size_t row = corpus.vectors.size();
      for (size_t j = 0; j < c.dim; ++j) {
        corpus.vectors.push_back(centre[j] + sigma * gauss(*rng));
      }
      Normalize(&corpus.vectors[row], c.dim);
    }
    corpus.ids.push_back(static_cast<int64_t>(d));
    corpus.offsets.push_back(corpus.vectors.size() / c.dim);
  }
  return corpus;
}

// 8..32 perturbed copies of tokens of a random target document.
std::vector<std::vector<float>> MakeQueries(const Config& c,
                                            const MultiVectorCorpus& corpus,
                                            std::mt19937* rng) {
  std::normal_distribution<float> gauss;
  std::uniform_int_distribution<size_t> pick_doc(0, c.docs - 1);
  std::uniform_int_distribution<size_t> pick_len(8, 32);
  std::uniform_int_distribution<size_t> pick_token(0, c.tokens - 1);
  const float sigma = 0.3f / std::sqrt(static_cast<float>(c.dim));
  std::vector<std::vector<float>> queries(c.queries);
  for (auto& q : queries) {
    const size_t target = pick_doc(*rng);
    const size_t m = pick_len(*rng);
    q.resize(m * c.dim);
    for (size_t i = 0; i < m; ++i) {
      const float* t =
          &corpus.vectors[(corpus.offsets[target] + pick_token(*rng)) * c.dim];
      for (size_t j = 0; j < c.dim; ++j) {
        q[i * c.dim + j] = t[j] + sigma * gauss(*rng);
      }
      Normalize(&q[i * c.dim], c.dim);
    }
  }
  return queries;
}

bool ParseArgs(int argc, char** argv, Config* c) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--quick") {
      c->docs = 4000;
      c->queries = 50;
      c->centroids = 256;
      c->chunks = 1500;
      continue;
    }
    if (arg == "--real") {
      c->real = true;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "missing value for %s\n", arg.c_str());
      return false;
    }
    if (arg == "--assets") {
      c->assets = argv[++i];
      continue;
    }
    if (arg == "--cache") {
      c->cache = argv[++i];
      continue;
    }
    char* end = nullptr;
    const unsigned long long v = std::strtoull(argv[++i], &end, 10);
    if (end == nullptr || *end != '\0' || (v == 0 && arg != "--centroids")) {
      std::fprintf(stderr, "bad value for %s\n", arg.c_str());
      return false;
    }
    if (arg == "--docs") {
      c->docs = v;
    } else if (arg == "--tokens") {
      c->tokens = v;
    } else if (arg == "--dim") {
      c->dim = static_cast<uint32_t>(v);
    } else if (arg == "--queries") {
      c->queries = v;
    } else if (arg == "--concepts") {
      c->concepts = v;
    } else if (arg == "--centroids") {
      c->centroids = static_cast<uint32_t>(v);
      c->centroids_given = true;
    } else if (arg == "--nprobe") {
      c->nprobe = static_cast<uint32_t>(v);
    } else if (arg == "--max_candidates") {
      c->max_candidates = static_cast<uint32_t>(v);
    } else if (arg == "--chunks") {
      c->chunks = v;
    } else if (arg == "--train-tokens") {
      c->train_tokens = v;
    } else {
      std::fprintf(stderr, "unknown flag %s\n", arg.c_str());
      return false;
    }
  }
  return true;
}

// Recall@10 and QPS of `index` against `truth` for each search setting.
bool Evaluate(const MultiVectorIndex& index, const std::vector<std::vector<float>>& queries,
              const std::vector<MultiVectorSearchResult>& truth, double brute_qps,
              double build_s, uint32_t nbits, uint32_t fp32_bytes,
              const std::vector<MultiVectorSearchParams>& settings, int k) {
  for (const MultiVectorSearchParams& params : settings)
  for (int pass = 0; pass < 2; ++pass) {  // pass 0 warms caches
    double recall = 0;
    size_t top1 = 0;
    auto start = std::chrono::steady_clock::now();
    for (size_t q = 0; q < queries.size(); ++q) {
      auto r = index.Search(queries[q], k, nullptr, params);
      if (!r.ok()) {
        std::fprintf(stderr, "search: %s\n", r.status().ToString().c_str());
        return false;
      }
      absl::flat_hash_set<int64_t> want(truth[q].ids.begin(), truth[q].ids.end());
      want.erase(-1);
      size_t hit = 0;
      for (int64_t id : r->ids) hit += want.contains(id);
      recall += want.empty() ? 1.0 : static_cast<double>(hit) / want.size();
      top1 += r->ids[0] == truth[q].ids[0];
    }
    const double s = Seconds(start);
    if (pass == 0) continue;
    const double qps = static_cast<double>(queries.size()) / s;
    const uint32_t nc = index.codec() != nullptr ? index.codec()->num_centroids() : 0;
    std::printf("%-6u %-9.1f %-8u %-8.0f %-11.1f %-7u %-7u %-9.1f %-9.1f "
                "%-12.3f %zu/%zu\n",
                nbits, build_s, nc, index.BytesPerToken(), fp32_bytes / index.BytesPerToken(),
                params.nprobe, params.max_candidates, qps, qps / brute_qps,
                recall / static_cast<double>(queries.size()), top1, queries.size());
  }
  return true;
}

void PrintHeader() {
  std::printf("\n%-6s %-9s %-8s %-8s %-11s %-7s %-7s %-9s %-9s %-12s %-10s\n",
              "nbits", "build_s", "K", "B/token", "fp32/comp", "nprobe",
              "maxcand", "QPS", "speedup", "recall@10", "top1=truth");
}

std::vector<MultiVectorSearchParams> Settings(const Config& c) {
  // The ones given on the command line, else the index defaults (0, 0)
  // and a sweep around them.
  if (c.nprobe != 0 || c.max_candidates != 0) return {{c.nprobe, c.max_candidates}};
  return {{0, 0}, {4, 256}, {8, 512}, {16, 1024}, {32, 2048}};
}

// ---------------------------------------------------------------------------
// --real

using mnemo::db::text::TextEncoder;

absl::StatusOr<std::unique_ptr<TextEncoder>> LoadEncoder(const std::string& model_dir) {
  std::string plugin;
  if (const char* env = std::getenv("MNEMO_TEXT_PLUGIN"); env != nullptr && *env != '\0') {
    plugin = env;
  } else {
    std::error_code ec;
    const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    plugin = (exe.parent_path() / "libmnemo_text_plugin.so").string();
  }
  void* handle = ::dlopen(plugin.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
  if (handle == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot load ", plugin, ": ", ::dlerror(),
                     " (build the mnemo_text_plugin target or set MNEMO_TEXT_PLUGIN)"));
  }
  using LoadFn = bool (*)(const char*, const char*, std::unique_ptr<TextEncoder>*, std::string*);
  auto load = reinterpret_cast<LoadFn>(::dlsym(handle, "MnemoTextPluginLoad"));
  if (load == nullptr) return absl::FailedPreconditionError("plugin has no MnemoTextPluginLoad");
  std::unique_ptr<TextEncoder> enc;
  std::string error;
  if (!load("use-lite", model_dir.c_str(), &enc, &error)) {
    return absl::FailedPreconditionError(absl::StrCat("loading use-lite: ", error));
  }
  return enc;  // the module stays loaded for the life of the process
}

// Encodes texts to normalised token states, one vector per text (empty
// when the text has no usable token).
absl::StatusOr<std::vector<std::vector<float>>> EncodeNormalized(
    const TextEncoder& enc, const std::vector<std::string>& texts) {
  std::vector<std::vector<float>> out;
  const size_t dim = static_cast<size_t>(enc.token_dim());
  constexpr size_t kBatch = 64;
  for (size_t b = 0; b < texts.size(); b += kBatch) {
    const size_t e = std::min(texts.size(), b + kBatch);
    auto states = enc.EncodeTokens(absl::MakeConstSpan(texts).subspan(b, e - b));
    if (!states.ok()) return states.status();
    for (std::vector<float>& s : *states) {
      std::vector<float> kept;
      for (size_t t = 0; t * dim < s.size(); ++t) {
        double norm = 0;
        for (size_t j = 0; j < dim; ++j) norm += double{s[t * dim + j]} * s[t * dim + j];
        if (!(norm > 0) || !std::isfinite(norm)) continue;
        kept.insert(kept.end(), s.begin() + t * dim, s.begin() + (t + 1) * dim);
      }
      std::vector<float> normalized;
      if (!kept.empty()) {
        auto st = mnemo::index::NormalizeMultiVectorTokens(kept, static_cast<uint32_t>(dim),
                                                           &normalized);
        if (!st.ok()) return st;
      }
      out.push_back(std::move(normalized));
    }
  }
  return out;
}

// The encoded real corpus and queries (what --cache saves).
struct RealData {
  MultiVectorCorpus corpus;
  std::vector<std::vector<float>> queries;
  size_t all_chunks = 0;
  size_t addresses = 0;
};

template <typename T>
void WriteVec(std::ofstream& out, const std::vector<T>& v) {
  const uint64_t n = v.size();
  out.write(reinterpret_cast<const char*>(&n), sizeof(n));
  out.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(n * sizeof(T)));
}

template <typename T>
bool ReadVec(std::ifstream& in, std::vector<T>* v) {
  uint64_t n = 0;
  if (!in.read(reinterpret_cast<char*>(&n), sizeof(n)) || n > (uint64_t{1} << 34)) return false;
  v->resize(n);
  return static_cast<bool>(
      in.read(reinterpret_cast<char*>(v->data()), static_cast<std::streamsize>(n * sizeof(T))));
}

bool LoadCache(const std::string& path, RealData* d) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::vector<uint64_t> header;
  if (!ReadVec(in, &header) || header.size() != 4 || header[0] != 0x4d56434143484531ull) {
    return false;
  }
  d->corpus.dim = static_cast<uint32_t>(header[1]);
  d->all_chunks = header[2];
  d->addresses = header[3];
  uint64_t nq = 0;
  if (!ReadVec(in, &d->corpus.ids) || !ReadVec(in, &d->corpus.offsets) ||
      !ReadVec(in, &d->corpus.vectors) || !in.read(reinterpret_cast<char*>(&nq), sizeof(nq))) {
    return false;
  }
  d->queries.resize(nq);
  for (auto& q : d->queries) {
    if (!ReadVec(in, &q)) return false;
  }
  return true;
}

void SaveCache(const std::string& path, const RealData& d) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  WriteVec(out, std::vector<uint64_t>{0x4d56434143484531ull, d.corpus.dim, d.all_chunks,
                                      d.addresses});
  WriteVec(out, d.corpus.ids);
  WriteVec(out, d.corpus.offsets);
  WriteVec(out, d.corpus.vectors);
  const uint64_t nq = d.queries.size();
  out.write(reinterpret_cast<const char*>(&nq), sizeof(nq));
  for (const auto& q : d.queries) WriteVec(out, q);
}

// Chunks and encodes the SOTU corpus and held-out sentence queries.
int EncodeReal(const Config& c, RealData* data) {
  auto loaded = LoadEncoder(c.assets + "/use-lite");
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s\n", loaded.status().ToString().c_str());
    return 1;
  }
  const TextEncoder& enc = **loaded;
  const uint32_t dim = static_cast<uint32_t>(enc.token_dim());

  // Every chunk of every address, then an even spread of c.chunks of them.
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(c.assets + "/sotu", ec)) {
    if (entry.path().extension() == ".txt") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    std::fprintf(stderr, "no %s/sotu/*.txt (run scripts/fetch_corpora)\n", c.assets.c_str());
    return 1;
  }
  std::vector<std::string> all_chunks;
  mnemo::encoder::ChunkerOptions chunking;  // the store's defaults: 128 / 16
  for (const auto& path : files) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    auto pieces = enc.Chunk(ss.str(), chunking);
    if (!pieces.ok()) {
      std::fprintf(stderr, "chunking %s: %s\n", path.c_str(), pieces.status().ToString().c_str());
      return 1;
    }
    for (auto& p : *pieces) all_chunks.push_back(std::move(p.text));
  }
  std::vector<std::string> chunk_texts;
  const size_t want = std::min(c.chunks, all_chunks.size());
  for (size_t i = 0; i < want; ++i) {
    chunk_texts.push_back(all_chunks[i * all_chunks.size() / want]);
  }
  auto encoded = EncodeNormalized(enc, chunk_texts);
  if (!encoded.ok()) {
    std::fprintf(stderr, "encoding: %s\n", encoded.status().ToString().c_str());
    return 1;
  }
  MultiVectorCorpus& corpus = data->corpus;
  corpus.dim = dim;
  for (size_t i = 0; i < encoded->size(); ++i) {
    if ((*encoded)[i].empty()) continue;
    corpus.ids.push_back(static_cast<int64_t>(i));
    corpus.vectors.insert(corpus.vectors.end(), (*encoded)[i].begin(), (*encoded)[i].end());
    corpus.offsets.push_back(corpus.vectors.size() / dim);
  }
  encoded->clear();

  // Queries: a sentence of 6+ words held out of a random chunk.
  std::mt19937 rng(2024);
  std::uniform_int_distribution<size_t> pick(0, chunk_texts.size() - 1);
  std::vector<std::string> query_texts;
  for (size_t tries = 0; query_texts.size() < c.queries && tries < 100 * c.queries; ++tries) {
    const std::string& text = chunk_texts[pick(rng)];
    auto sentences = enc.SplitSentences(text);
    if (sentences.empty()) continue;
    std::uniform_int_distribution<size_t> which(0, sentences.size() - 1);
    const auto [b, e] = sentences[which(rng)];
    std::string sentence = text.substr(b, e - b);
    if (std::count(sentence.begin(), sentence.end(), ' ') < 5) continue;
    query_texts.push_back(std::move(sentence));
  }
  auto query_tokens = EncodeNormalized(enc, query_texts);
  if (!query_tokens.ok()) {
    std::fprintf(stderr, "encoding queries: %s\n", query_tokens.status().ToString().c_str());
    return 1;
  }
  for (auto& q : *query_tokens) {
    if (!q.empty()) data->queries.push_back(std::move(q));
  }
  data->all_chunks = all_chunks.size();
  data->addresses = files.size();
  return 0;
}

int RunReal(const Config& c) {
  constexpr int kK = 10;
  auto start = std::chrono::steady_clock::now();
  RealData data;
  const bool cached = !c.cache.empty() && LoadCache(c.cache, &data);
  if (!cached) {
    if (int rc = EncodeReal(c, &data); rc != 0) return rc;
    if (!c.cache.empty()) SaveCache(c.cache, data);
  }
  const MultiVectorCorpus& corpus = data.corpus;
  const std::vector<std::vector<float>>& queries = data.queries;
  const uint32_t dim = corpus.dim;
  const size_t ntokens = corpus.offsets.back();
  size_t query_token_count = 0;
  for (const auto& q : queries) query_token_count += q.size() / dim;
  const uint64_t train_tokens =
      c.train_tokens != 0 ? c.train_tokens : mnemo::index::kLateInteractionTrainTokens;
  std::printf(
      "real corpus: %zu SOTU chunks of %zu (%zu addresses), %zu tokens x %u-d, %zu held-out "
      "sentence queries (%.1f tokens avg), k=%d, codec trained on the first %llu tokens "
      "(%s in %.1f s)\n",
      corpus.ids.size(), data.all_chunks, data.addresses, ntokens, dim, queries.size(),
      static_cast<double>(query_token_count) / std::max<size_t>(1, queries.size()), kK,
      static_cast<unsigned long long>(std::min<uint64_t>(train_tokens, ntokens)),
      cached ? "read from the cache" : "encoded", Seconds(start));

  std::vector<MultiVectorSearchResult> truth(queries.size());
  start = std::chrono::steady_clock::now();
  for (size_t q = 0; q < queries.size(); ++q) {
    auto r = BruteForceMaxSim(corpus, queries[q], kK, nullptr);
    if (!r.ok()) {
      std::fprintf(stderr, "brute force: %s\n", r.status().ToString().c_str());
      return 1;
    }
    truth[q] = *std::move(r);
  }
  const double brute_s = Seconds(start);
  const double brute_qps = static_cast<double>(queries.size()) / brute_s;
  std::printf("brute-force MaxSim (fp32, sgemm): %.1f QPS, %.2f ms/query, %.0f bytes/token\n",
              brute_qps, 1e3 * brute_s / static_cast<double>(queries.size()), 4.0 * dim);
  PrintHeader();
  for (uint32_t nbits : {1u, 2u, 4u}) {
    MultiVectorIndexOptions o;
    o.dim = dim;
    o.nbits = nbits;
    o.num_centroids = c.centroids_given ? c.centroids : 0;
    o.train_threshold = uint64_t{1} << 40;  // trained below, as the store does
    start = std::chrono::steady_clock::now();
    auto created = MultiVectorIndex::Create(o);
    if (!created.ok()) {
      std::fprintf(stderr, "%s\n", created.status().ToString().c_str());
      return 1;
    }
    std::unique_ptr<MultiVectorIndex> index = *std::move(created);
    for (size_t d = 0; d < corpus.ids.size(); ++d) {
      const auto tokens = absl::MakeConstSpan(corpus.vectors)
                              .subspan(corpus.offsets[d] * dim,
                                       (corpus.offsets[d + 1] - corpus.offsets[d]) * dim);
      if (auto st = index->Add(corpus.ids[d], tokens); !st.ok()) {
        std::fprintf(stderr, "add: %s\n", st.ToString().c_str());
        return 1;
      }
      if (!index->is_trained() && (index->num_tokens() >= train_tokens ||
                                   d + 1 == corpus.ids.size())) {
        if (auto st = index->Train(); !st.ok()) {
          std::fprintf(stderr, "train: %s\n", st.ToString().c_str());
          return 1;
        }
      }
    }
    const double build_s = Seconds(start);
    if (!Evaluate(*index, queries, truth, brute_qps, build_s, nbits, 4 * dim, Settings(c), kK)) {
      return 1;
    }
  }
  std::printf("\nnprobe / maxcand 0 = the index defaults (what the store uses).\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  if (!ParseArgs(argc, argv, &c)) return 2;
  if (c.real) return RunReal(c);
  constexpr int kK = 10;
  std::mt19937 rng(2024);
  auto start = std::chrono::steady_clock::now();
  const MultiVectorCorpus corpus = MakeCorpus(c, &rng);
  const auto queries = MakeQueries(c, corpus, &rng);
  const size_t ntokens = corpus.offsets.back();
  std::printf(
      "corpus: %zu docs x %zu tokens x %u-d (%zu tokens, %zu concepts), %zu "
      "queries of 8..32 tokens, k=%d (generated in %.1f s)\n",
      c.docs, c.tokens, c.dim, ntokens, c.concepts, c.queries, kK,
      Seconds(start));
  const char* omp = std::getenv("OMP_NUM_THREADS");
  std::printf("threads: OMP_NUM_THREADS=%s, queries one at a time\n",
              omp == nullptr ? "(unset)" : omp);

  // Baseline: exact MaxSim on fp32 tokens.
  std::vector<MultiVectorSearchResult> truth(queries.size());
  start = std::chrono::steady_clock::now();
  for (size_t q = 0; q < queries.size(); ++q) {
    auto r = BruteForceMaxSim(corpus, queries[q], kK, nullptr);
    if (!r.ok()) {
      std::fprintf(stderr, "brute force: %s\n", r.status().ToString().c_str());
      return 1;
    }
    truth[q] = *std::move(r);
  }
  const double brute_s = Seconds(start);
  const double brute_qps = static_cast<double>(queries.size()) / brute_s;
  std::printf("brute-force MaxSim (fp32, sgemm): %.1f QPS, %.2f ms/query, "
              "%.0f bytes/token\n",
              brute_qps, 1e3 * brute_s / static_cast<double>(queries.size()),
              4.0 * c.dim);

  PrintHeader();
  for (uint32_t nbits : {1u, 2u, 4u}) {
    MultiVectorIndexOptions o;
    o.dim = c.dim;
    o.nbits = nbits;
    o.num_centroids = c.centroids;
    o.train_threshold = uint64_t{1} << 40;  // train once, on everything
    start = std::chrono::steady_clock::now();
    auto created = MultiVectorIndex::Create(o);
    if (!created.ok()) {
      std::fprintf(stderr, "%s\n", created.status().ToString().c_str());
      return 1;
    }
    std::unique_ptr<MultiVectorIndex> index = *std::move(created);
    for (size_t d = 0; d < c.docs; ++d) {
      const auto tokens = absl::MakeConstSpan(corpus.vectors)
                              .subspan(corpus.offsets[d] * c.dim,
                                       c.tokens * c.dim);
      auto st = index->Add(corpus.ids[d], tokens);
      if (!st.ok()) {
        std::fprintf(stderr, "add: %s\n", st.ToString().c_str());
        return 1;
      }
    }
    if (auto st = index->Train(); !st.ok()) {
      std::fprintf(stderr, "train: %s\n", st.ToString().c_str());
      return 1;
    }
    const double build_s = Seconds(start);

    if (!Evaluate(*index, queries, truth, brute_qps, build_s, nbits, 4 * c.dim, Settings(c),
                  kK)) {
      return 1;
    }
  }
  std::printf(
      "\nB/token excludes the centroid table (K x %u floats = %.1f MB, %.1f "
      "B/token amortised here).\n",
      c.dim, 4.0 * c.centroids * c.dim / 1e6,
      4.0 * c.centroids * c.dim / static_cast<double>(ntokens));
  return 0;
}
