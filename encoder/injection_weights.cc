// InjectionWeights::Parse: inject.safetensors checked against config.json.
#include "encoder/injection_weights.h"

#include <openssl/evp.h>

#include <cmath>
#include <cstdint>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "decoder/safetensors.h"

namespace mnemo::encoder {

std::string Sha256Hex(const std::string& bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * length);
  for (unsigned int i = 0; i < length; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 15]);
  }
  return hex;
}

namespace {

// Looks tensors up by name and shape; the first failure is kept.
class TensorReader {
 public:
  TensorReader(const decoder::SafetensorsFile& file, std::string source)
      : file_(file), source_(std::move(source)) {}

  Tensor Get(const std::string& name, std::vector<int64_t> shape) {
    if (!status_.ok()) return {};
    absl::StatusOr<absl::Span<const float>> t = file_.F32(name, shape);
    if (!t.ok()) {
      status_ = absl::DataLossError(absl::StrCat(source_, ": tensor ", name, " (expected F32 ",
                                                 decoder::ShapeString(shape),
                                                 "): ", t.status().message()));
      return {};
    }
    for (size_t i = 0; i < t->size(); ++i) {
      if (!std::isfinite((*t)[i])) {
        status_ = absl::DataLossError(
            absl::StrCat(source_, ": tensor ", name, " value ", i, " is not finite"));
        return {};
      }
    }
    return *t;
  }

  const absl::Status& status() const { return status_; }

 private:
  const decoder::SafetensorsFile& file_;
  std::string source_;
  absl::Status status_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<InjectionWeights>> InjectionWeights::Parse(
    std::string bytes, const InjectionConfig& config, const std::string& expected_sha256,
    const std::string& source) {
  const std::string actual = Sha256Hex(bytes);
  if (actual != expected_sha256) {
    return absl::DataLossError(absl::StrCat(source, ": sha256 ", actual,
                                            " differs from config.json's weights_sha256 ",
                                            expected_sha256));
  }
  absl::StatusOr<std::unique_ptr<decoder::SafetensorsFile>> file =
      decoder::SafetensorsFile::Parse(std::move(bytes), source);
  if (!file.ok()) {
    return absl::DataLossError(absl::StrCat(source, " is malformed: ", file.status().message()));
  }
  auto w = std::make_unique<InjectionWeights>();
  w->file = std::shared_ptr<const decoder::SafetensorsFile>(std::move(*file));
  const int64_t D = config.decoder_dim, E = config.encoder_dim, F = config.compressor_ffn;
  const int64_t T = config.compressor_max_tokens, S = config.memory_tokens;
  TensorReader r(*w->file, source);

  w->proj_w1 = r.Get("proj.w1", {D, E});
  w->proj_b1 = r.Get("proj.b1", {D});
  w->proj_w2 = r.Get("proj.w2", {D, D});
  w->proj_b2 = r.Get("proj.b2", {D});

  // The vocabulary is the embedding table's row count.
  auto tok = w->file->tensors().find("comp.tok_emb");
  if (tok != w->file->tensors().end() && tok->second.shape.size() == 2 &&
      tok->second.shape[0] > 0 && tok->second.shape[0] < (int64_t{1} << 24)) {
    w->vocab_size = static_cast<int>(tok->second.shape[0]);
  }
  w->tok_emb = r.Get("comp.tok_emb", {w->vocab_size, D});
  w->pos_emb = r.Get("comp.pos_emb", {T, D});
  for (int l = 0; l < config.compressor_layers; ++l) {
    const std::string p = absl::StrCat("comp.layers.", l, ".");
    CompressorLayerWeights& L = w->layers.emplace_back();
    L.norm1 = r.Get(p + "norm1", {D});
    L.wqkv = r.Get(p + "wqkv", {3 * D, D});
    L.bqkv = r.Get(p + "bqkv", {3 * D});
    L.wo = r.Get(p + "wo", {D, D});
    L.bo = r.Get(p + "bo", {D});
    L.norm2 = r.Get(p + "norm2", {D});
    L.w1 = r.Get(p + "w1", {F, D});
    L.b1 = r.Get(p + "b1", {F});
    L.w2 = r.Get(p + "w2", {D, F});
    L.b2 = r.Get(p + "b2", {D});
  }
  w->slots = r.Get("comp.slots", {S, D});
  w->xnorm_q = r.Get("comp.xnorm_q", {D});
  w->xnorm_kv = r.Get("comp.xnorm_kv", {D});
  w->xattn_wq = r.Get("comp.xattn.wq", {D, D});
  w->xattn_wk = r.Get("comp.xattn.wk", {D, D});
  w->xattn_wv = r.Get("comp.xattn.wv", {D, D});
  w->xattn_wo = r.Get("comp.xattn.wo", {D, D});
  w->xattn_bq = r.Get("comp.xattn.bq", {D});
  w->xattn_bk = r.Get("comp.xattn.bk", {D});
  w->xattn_bv = r.Get("comp.xattn.bv", {D});
  w->xattn_bo = r.Get("comp.xattn.bo", {D});
  w->out_norm = r.Get("comp.out_norm", {D});
  w->out_w = r.Get("comp.out.w", {D, D});
  w->out_b = r.Get("comp.out.b", {D});

  w->live_wq = r.Get("live.wq", {D, E});
  w->live_bq = r.Get("live.bq", {D});
  w->live_w1 = r.Get("live.w1", {D, 2 * D});
  w->live_b1 = r.Get("live.b1", {D});
  w->live_w2 = r.Get("live.w2", {D, D});
  w->live_b2 = r.Get("live.b2", {D});

  w->rerank_w1 = r.Get("rerank.w1", {D, 3 * D});
  w->rerank_b1 = r.Get("rerank.b1", {D});
  w->rerank_w2 = r.Get("rerank.w2", {1, D});
  w->rerank_b2 = r.Get("rerank.b2", {1});

  w->pq_centroids =
      r.Get("pq.centroids", {config.pq_m, int64_t{1} << config.pq_nbits, D / config.pq_m});
  if (!r.status().ok()) return r.status();
  return w;
}

}  // namespace mnemo::encoder
