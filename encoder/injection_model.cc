// InjectionModel: loading (config, weights, tokenizer, PQ codebooks) and
// the small forward passes (projector, live conditioning, reranker); the
// compressor is encoder/memory_compressor.h.
#include "encoder/injection_model.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "decoder/tokenizer.h"
#include "encoder/injection_ops.h"
#include "encoder/injection_weights.h"
#include "encoder/memory_compressor.h"

namespace mnemo::encoder {
namespace {

constexpr char kConfigFile[] = "config.json";

absl::Status CheckFinite(absl::Span<const float> x, absl::string_view what) {
  for (size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " value ", i, " is not finite (", x[i], ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckSize(absl::Span<const float> x, size_t expected, absl::string_view what) {
  if (x.size() != expected) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " holds ", x.size(), " floats, expected ", expected));
  }
  return CheckFinite(x, what);
}

absl::StatusOr<std::string> ReadFile(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat("injection model file ", path.string(), " not found"));
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (!in.good() && !in.eof()) {
    return absl::DataLossError(absl::StrCat("cannot read ", path.string()));
  }
  return buffer.str();
}

const std::string* Find(const std::map<std::string, std::string>& files, const std::string& name) {
  auto it = files.find(name);
  return it == files.end() ? nullptr : &it->second;
}

// The decoder's tokenizer plugin loads from a path: bytes go through a
// private temporary file, removed once loaded.
absl::StatusOr<std::unique_ptr<decoder::Tokenizer>> TokenizerFromBytes(const std::string& bytes) {
  std::error_code ec;
  std::filesystem::path dir = std::filesystem::temp_directory_path(ec);
  if (ec) dir = "/tmp";
  std::string templ = (dir / "mnemo-inject-tokenizer-XXXXXX").string();
  const int fd = mkstemp(templ.data());
  if (fd < 0) return absl::InternalError("cannot create a temporary file for tokenizer.model");
  size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (w <= 0) break;
    written += static_cast<size_t>(w);
  }
  ::close(fd);
  absl::StatusOr<std::unique_ptr<decoder::Tokenizer>> tokenizer =
      written == bytes.size()
          ? decoder::LoadSentencePieceTokenizer(templ)
          : absl::InternalError("cannot write a temporary copy of tokenizer.model");
  std::filesystem::remove(templ, ec);
  return tokenizer;
}

}  // namespace

InjectionModel::InjectionModel() = default;
InjectionModel::~InjectionModel() = default;

const std::vector<std::string>& InjectionModel::FileNames() {
  static const std::vector<std::string>* names =
      new std::vector<std::string>{kConfigFile, "inject.safetensors", "tokenizer.model"};
  return *names;
}

absl::StatusOr<std::unique_ptr<InjectionModel>> InjectionModel::Load(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return absl::NotFoundError(absl::StrCat("injection model directory ", dir, " not found"));
  }
  std::map<std::string, std::string> files;
  ASSIGN_OR_RETURN(files[kConfigFile], ReadFile(std::filesystem::path(dir) / kConfigFile));
  ASSIGN_OR_RETURN(ParsedInjectionConfig parsed, ParseInjectionConfig(files[kConfigFile]));
  for (const std::string& name : {parsed.config.weights, parsed.config.tokenizer}) {
    ASSIGN_OR_RETURN(files[name], ReadFile(std::filesystem::path(dir) / name));
  }
  return FromFiles(files);
}

absl::StatusOr<std::unique_ptr<InjectionModel>> InjectionModel::FromFiles(
    const std::map<std::string, std::string>& files) {
  const std::string* config_json = Find(files, kConfigFile);
  if (config_json == nullptr) {
    return absl::NotFoundError("injection model: config.json is missing");
  }
  ASSIGN_OR_RETURN(ParsedInjectionConfig parsed, ParseInjectionConfig(*config_json));
  const std::string* weights_bytes = Find(files, parsed.config.weights);
  if (weights_bytes == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("injection model: ", parsed.config.weights, " is missing"));
  }
  const std::string* tokenizer_bytes = Find(files, parsed.config.tokenizer);
  if (tokenizer_bytes == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("injection model: ", parsed.config.tokenizer, " is missing"));
  }
  std::unique_ptr<InjectionModel> model(new InjectionModel());
  model->config_ = parsed.config;
  model->lineage_ = parsed.lineage;
  ASSIGN_OR_RETURN(model->weights_,
                   InjectionWeights::Parse(*weights_bytes, model->config_,
                                           parsed.lineage.model_sha256, parsed.config.weights));
  absl::StatusOr<std::unique_ptr<decoder::Tokenizer>> tokenizer =
      TokenizerFromBytes(*tokenizer_bytes);
  if (!tokenizer.ok()) {
    if (absl::IsInvalidArgument(tokenizer.status())) {
      return absl::DataLossError(absl::StrCat("injection model: ", parsed.config.tokenizer,
                                              " is malformed: ", tokenizer.status().message()));
    }
    return tokenizer.status();
  }
  model->tokenizer_ = *std::move(tokenizer);
  if (model->tokenizer_->vocab_size() != model->weights_->vocab_size) {
    return absl::DataLossError(absl::StrCat(
        "injection model: ", parsed.config.tokenizer, " has ", model->tokenizer_->vocab_size(),
        " pieces but comp.tok_emb has ", model->weights_->vocab_size, " rows"));
  }
  const Tensor c = model->weights_->pq_centroids;
  absl::StatusOr<index::PqCodec> pq =
      index::PqCodec::FromCentroids(model->config_.decoder_dim, model->config_.pq_m,
                                    model->config_.pq_nbits, std::vector<float>(c.begin(), c.end()));
  if (!pq.ok()) {
    return absl::DataLossError(
        absl::StrCat("injection model: pq.centroids: ", pq.status().message()));
  }
  model->pq_.emplace(*std::move(pq));
  return model;
}

const InjectionConfig& InjectionModel::config() const { return config_; }
const InjectionLineage& InjectionModel::lineage() const { return lineage_; }
const index::PqCodec& InjectionModel::pq() const { return *pq_; }

size_t InjectionModel::memory_size() const {
  return static_cast<size_t>(config_.memory_tokens) * config_.decoder_dim;
}

absl::StatusOr<std::vector<float>> InjectionModel::Project(
    absl::Span<const float> embeddings) const {
  const int E = config_.encoder_dim, D = config_.decoder_dim;
  if (embeddings.empty() || embeddings.size() % E != 0) {
    return absl::InvalidArgumentError(absl::StrCat("embeddings hold ", embeddings.size(),
                                                   " floats, not a positive multiple of the "
                                                   "encoder dimension ",
                                                   E));
  }
  RETURN_IF_ERROR(CheckFinite(embeddings, "embedding"));
  const int n = static_cast<int>(embeddings.size() / E);
  const InjectionWeights& w = *weights_;
  std::vector<float> hidden(static_cast<size_t>(n) * D), out(static_cast<size_t>(n) * D);
  ops::Linear(embeddings.data(), n, E, w.proj_w1.data(), w.proj_b1.data(), D, hidden.data());
  ops::Gelu(hidden.data(), hidden.size());
  ops::Linear(hidden.data(), n, D, w.proj_w2.data(), w.proj_b2.data(), D, out.data());
  return out;
}

absl::StatusOr<std::vector<int>> InjectionModel::Tokenize(const std::string& text) const {
  ASSIGN_OR_RETURN(std::vector<int> ids, tokenizer_->Encode(text));
  if (ids.size() > static_cast<size_t>(config_.compressor_max_tokens)) {
    ids.resize(config_.compressor_max_tokens);
  }
  return ids;
}

absl::StatusOr<std::vector<float>> InjectionModel::Compress(
    absl::Span<const std::string> texts) const {
  std::vector<std::vector<int>> ids;
  ids.reserve(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    ASSIGN_OR_RETURN(std::vector<int> t, Tokenize(texts[i]));
    if (t.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("chunk text ", i, " has no tokens"));
    }
    ids.push_back(std::move(t));
  }
  return CompressIds(ids);
}

absl::StatusOr<std::vector<float>> InjectionModel::CompressIds(
    absl::Span<const std::vector<int>> ids) const {
  const size_t per = memory_size();
  std::vector<float> out(ids.size() * per);
  for (size_t i = 0; i < ids.size(); ++i) {
    absl::Status s = CompressChunk(config_, *weights_, ids[i],
                                   absl::MakeSpan(out).subspan(i * per, per));
    if (!s.ok()) return Annotate(s, absl::StrCat("chunk ", i));
  }
  return out;
}

namespace {

// c = wq · q + bq.
std::vector<float> QueryVector(const InjectionConfig& config, const InjectionWeights& w,
                               absl::Span<const float> query) {
  std::vector<float> c(config.decoder_dim);
  ops::Linear(query.data(), 1, config.encoder_dim, w.live_wq.data(), w.live_bq.data(),
              config.decoder_dim, c.data());
  return c;
}

}  // namespace

absl::StatusOr<std::vector<float>> InjectionModel::Condition(
    absl::Span<const float> memory, absl::Span<const float> query_embedding) const {
  RETURN_IF_ERROR(CheckSize(memory, memory_size(), "memory"));
  RETURN_IF_ERROR(CheckSize(query_embedding, config_.encoder_dim, "query embedding"));
  const int D = config_.decoder_dim, S = config_.memory_tokens;
  const InjectionWeights& w = *weights_;
  const std::vector<float> c = QueryVector(config_, w, query_embedding);
  // [m_i ; c] rows, then the residual MLP.
  std::vector<float> joined(static_cast<size_t>(S) * 2 * D), hidden(static_cast<size_t>(S) * D);
  for (int i = 0; i < S; ++i) {
    float* row = joined.data() + static_cast<size_t>(i) * 2 * D;
    std::copy(memory.begin() + static_cast<size_t>(i) * D,
              memory.begin() + static_cast<size_t>(i + 1) * D, row);
    std::copy(c.begin(), c.end(), row + D);
  }
  ops::Linear(joined.data(), S, 2 * D, w.live_w1.data(), w.live_b1.data(), D, hidden.data());
  ops::Gelu(hidden.data(), hidden.size());
  std::vector<float> out(memory.begin(), memory.end());
  std::vector<float> delta(out.size());
  ops::Linear(hidden.data(), S, D, w.live_w2.data(), w.live_b2.data(), D, delta.data());
  for (size_t i = 0; i < out.size(); ++i) out[i] += delta[i];
  return out;
}

absl::StatusOr<float> InjectionModel::RerankScore(absl::Span<const float> conditioned_memory,
                                                  absl::Span<const float> query_embedding) const {
  RETURN_IF_ERROR(CheckSize(conditioned_memory, memory_size(), "conditioned memory"));
  RETURN_IF_ERROR(CheckSize(query_embedding, config_.encoder_dim, "query embedding"));
  const int D = config_.decoder_dim, S = config_.memory_tokens;
  const InjectionWeights& w = *weights_;
  const std::vector<float> c = QueryVector(config_, w, query_embedding);
  std::vector<float> z(3 * static_cast<size_t>(D), 0.0f);
  for (int i = 0; i < S; ++i) {
    for (int j = 0; j < D; ++j) z[j] += conditioned_memory[static_cast<size_t>(i) * D + j];
  }
  for (int j = 0; j < D; ++j) {
    z[j] /= static_cast<float>(S);
    z[D + j] = c[j];
    z[2 * D + j] = z[j] * c[j];
  }
  std::vector<float> hidden(D);
  ops::Linear(z.data(), 1, 3 * D, w.rerank_w1.data(), w.rerank_b1.data(), D, hidden.data());
  ops::Gelu(hidden.data(), hidden.size());
  float score = 0.0f;
  ops::Linear(hidden.data(), 1, D, w.rerank_w2.data(), w.rerank_b2.data(), 1, &score);
  return score;
}

}  // namespace mnemo::encoder
