#include "decoder/model.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"

namespace mnemo::decoder {
namespace {

// y[T, out] (+)= x[T, in] @ w[out, in]^T.
void Linear(const float* x, int n_tokens, int in, const float* w, int out, float* y,
            bool accumulate) {
  const float beta = accumulate ? 1.0f : 0.0f;
  if (n_tokens == 1) {
    cblas_sgemv(CblasRowMajor, CblasNoTrans, out, in, 1.0f, w, in, x, 1, beta, y, 1);
  } else {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n_tokens, out, in, 1.0f, x, in, w, in,
                beta, y, out);
  }
}

// out[t] = x[t] / sqrt(mean(x[t]^2) + eps) * weight.
void RmsNorm(const float* x, int n_tokens, int dim, const float* weight, double eps, float* out) {
  for (int t = 0; t < n_tokens; ++t) {
    const float* row = x + static_cast<size_t>(t) * dim;
    double ss = 0.0;
    for (int i = 0; i < dim; ++i) ss += static_cast<double>(row[i]) * row[i];
    const float inv = static_cast<float>(1.0 / std::sqrt(ss / dim + eps));
    float* o = out + static_cast<size_t>(t) * dim;
    for (int i = 0; i < dim; ++i) o[i] = row[i] * inv * weight[i];
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<Model>> Model::Load(const std::string& dir) {
  absl::StatusOr<ModelConfig> config = LoadModelConfig(dir);
  if (!config.ok()) return config.status();
  const std::string weights_path = (std::filesystem::path(dir) / config->weights).string();
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> weights = SafetensorsFile::Open(weights_path);
  if (!weights.ok()) return weights.status();
  return FromParts(*std::move(config), *std::move(weights), dir);
}

absl::StatusOr<std::unique_ptr<Model>> Model::FromParts(ModelConfig config,
                                                        std::unique_ptr<SafetensorsFile> weights,
                                                        std::string dir) {
  std::unique_ptr<Model> m(new Model());
  m->config_ = std::move(config);
  m->fingerprint_ = FingerprintFromConfig(m->config_);
  m->dir_ = std::move(dir);
  const ModelConfig& c = m->config_;
  const int64_t d = c.dim, q = int64_t{c.n_heads} * c.head_dim,
                kv = int64_t{c.n_kv_heads} * c.head_dim, f = c.ffn_dim;
  int64_t params = 0;
  auto get = [&](const std::string& name, std::vector<int64_t> shape,
                 const float** out) -> absl::Status {
    absl::StatusOr<absl::Span<const float>> t = weights->F32(name, shape);
    if (!t.ok()) return t.status();
    *out = t->data();
    params += static_cast<int64_t>(t->size());
    return absl::OkStatus();
  };
#define MNEMO_GET_WEIGHT(name, shape, out)              \
  do {                                                  \
    absl::Status s_ = get(name, shape, out);            \
    if (!s_.ok()) return s_;                            \
  } while (0)
  MNEMO_GET_WEIGHT("tok_embeddings.weight", (std::vector<int64_t>{c.vocab_size, d}),
                   &m->embeddings_);
  MNEMO_GET_WEIGHT("norm.weight", (std::vector<int64_t>{d}), &m->final_norm_);
  m->layers_.resize(c.n_layers);
  for (int i = 0; i < c.n_layers; ++i) {
    const std::string p = absl::StrCat("layers.", i, ".");
    LayerWeights& w = m->layers_[i];
    MNEMO_GET_WEIGHT(p + "attn_norm.weight", (std::vector<int64_t>{d}), &w.attn_norm);
    MNEMO_GET_WEIGHT(p + "attn.wq.weight", (std::vector<int64_t>{q, d}), &w.wq);
    MNEMO_GET_WEIGHT(p + "attn.wk.weight", (std::vector<int64_t>{kv, d}), &w.wk);
    MNEMO_GET_WEIGHT(p + "attn.wv.weight", (std::vector<int64_t>{kv, d}), &w.wv);
    MNEMO_GET_WEIGHT(p + "attn.wo.weight", (std::vector<int64_t>{d, q}), &w.wo);
    MNEMO_GET_WEIGHT(p + "ffn_norm.weight", (std::vector<int64_t>{d}), &w.ffn_norm);
    MNEMO_GET_WEIGHT(p + "ffn.w1.weight", (std::vector<int64_t>{f, d}), &w.w1);
    MNEMO_GET_WEIGHT(p + "ffn.w3.weight", (std::vector<int64_t>{f, d}), &w.w3);
    MNEMO_GET_WEIGHT(p + "ffn.w2.weight", (std::vector<int64_t>{d, f}), &w.w2);
  }
#undef MNEMO_GET_WEIGHT
  m->num_params_ = params;
  m->weights_ = std::move(weights);
  return m;
}

attention::AttentionShape Model::attention_shape() const {
  return attention::AttentionShape{config_.n_heads, config_.n_kv_heads, config_.head_dim,
                                   static_cast<float>(1.0 / std::sqrt(config_.head_dim))};
}

KvCache::KvCache(const ModelConfig& config, int capacity)
    : n_kv_heads_(config.n_kv_heads), head_dim_(config.head_dim), capacity_(capacity) {
  const size_t per_layer = static_cast<size_t>(n_kv_heads_) * capacity_ * head_dim_;
  k_.assign(config.n_layers, std::vector<float>(per_layer));
  v_.assign(config.n_layers, std::vector<float>(per_layer));
}

void KvCache::Truncate(int n) { length_ = std::clamp(n, 0, length_); }

absl::Status KvCache::ResetAt(int first_position) {
  if (first_position < 0 || first_position > std::numeric_limits<int32_t>::max() - capacity_) {
    return absl::InvalidArgumentError(
        absl::StrCat("first position ", first_position, " must be in [0, INT32_MAX - capacity ",
                     capacity_, "]"));
  }
  length_ = 0;
  first_position_ = first_position;
  return absl::OkStatus();
}

namespace {

absl::Status ValidateKvShape(int n_layers, int n_kv_heads, int head_dim, const PositionedKv& kv) {
  if (kv.n_tokens <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("KV to append must have tokens, got n_tokens ", kv.n_tokens));
  }
  if (kv.first_position < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("KV first position must be >= 0, got ", kv.first_position));
  }
  if (static_cast<int>(kv.keys.size()) != n_layers ||
      static_cast<int>(kv.values.size()) != n_layers) {
    return absl::InvalidArgumentError(absl::StrCat("KV has ", kv.keys.size(), " key and ",
                                                   kv.values.size(), " value layers, the model ",
                                                   n_layers));
  }
  const size_t want = static_cast<size_t>(n_kv_heads) * kv.n_tokens * head_dim;
  for (int l = 0; l < n_layers; ++l) {
    for (const auto& [what, span] : {std::pair<const char*, absl::Span<const float>>{
                                         "keys", kv.keys[l]},
                                     {"values", kv.values[l]}}) {
      if (span.size() != want) {
        return absl::InvalidArgumentError(absl::StrCat(
            "layer ", l, " ", what, " have ", span.size(), " floats, expected [n_kv_heads ",
            n_kv_heads, ", n_tokens ", kv.n_tokens, ", head_dim ", head_dim, "] = ", want));
      }
      for (size_t i = 0; i < span.size(); ++i) {
        if (!std::isfinite(span[i])) {
          return absl::InvalidArgumentError(
              absl::StrCat("layer ", l, " ", what, " element ", i, " is not finite"));
        }
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidatePositionedKv(const ModelConfig& config, const PositionedKv& kv) {
  return ValidateKvShape(config.n_layers, config.n_kv_heads, config.head_dim, kv);
}

absl::Status KvCache::AppendKv(const PositionedKv& kv) {
  if (absl::Status s = ValidateKvShape(static_cast<int>(k_.size()), n_kv_heads_, head_dim_, kv);
      !s.ok()) {
    return s;
  }
  if (kv.first_position != next_position()) {
    return absl::InvalidArgumentError(
        absl::StrCat("KV rotated for first position ", kv.first_position,
                     " cannot be appended at the cache's next position ", next_position()));
  }
  if (kv.n_tokens > capacity_ - length_) {
    return absl::OutOfRangeError(absl::StrCat("KV cache full: ", length_, " + ", kv.n_tokens,
                                              " tokens exceed its capacity of ", capacity_));
  }
  const size_t run = static_cast<size_t>(kv.n_tokens) * head_dim_;
  for (size_t l = 0; l < k_.size(); ++l) {
    for (int g = 0; g < n_kv_heads_; ++g) {
      const size_t src = static_cast<size_t>(g) * run;
      const size_t dst = (static_cast<size_t>(g) * capacity_ + length_) * head_dim_;
      std::copy_n(kv.keys[l].data() + src, run, k_[l].data() + dst);
      std::copy_n(kv.values[l].data() + src, run, v_[l].data() + dst);
    }
  }
  length_ += kv.n_tokens;
  return absl::OkStatus();
}

attention::KeyValueBlock KvCache::View(int layer, int begin, int end) const {
  attention::KeyValueBlock b;
  b.keys = k_[layer].data() + static_cast<size_t>(begin) * head_dim_;
  b.values = v_[layer].data() + static_cast<size_t>(begin) * head_dim_;
  b.n_keys = end - begin;
  b.head_stride = capacity_;
  b.first_position = first_position_ + begin;
  return b;
}

absl::Status CpuForward::Forward(absl::Span<const int32_t> tokens, KvCache* cache,
                                 LogitsMode mode, std::vector<float>* logits,
                                 ForwardTrace* trace, ExternalAttention* external) {
  return Forward(tokens, {}, cache, mode, logits, trace, external);
}

absl::Status CpuForward::Forward(absl::Span<const int32_t> tokens,
                                 absl::Span<const InputRows> injected, KvCache* cache,
                                 LogitsMode mode, std::vector<float>* logits,
                                 ForwardTrace* trace, ExternalAttention* external) {
  const ModelConfig& c = model_.config();
  const int T = static_cast<int>(tokens.size());
  if (T == 0) return absl::InvalidArgumentError("no tokens to run");
  // Which positions run on a given row: -1, else the span's index.
  std::vector<int> row_span(injected.empty() ? 0 : T, -1);
  for (size_t s = 0; s < injected.size(); ++s) {
    const InputRows& r = injected[s];
    if (r.rows.empty() || r.rows.size() % c.dim != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("input rows ", s, " hold ", r.rows.size(),
                       " floats, not a positive multiple of the model's dim ", c.dim));
    }
    const int64_t n = static_cast<int64_t>(r.rows.size() / c.dim);
    if (r.first < 0 || r.first + n > T) {
      return absl::InvalidArgumentError(absl::StrCat("input rows ", s, " at positions [", r.first,
                                                     ", ", r.first + n,
                                                     ") fall outside the call's ", T, " tokens"));
    }
    for (int64_t t = r.first; t < r.first + n; ++t) {
      if (row_span[t] >= 0) {
        return absl::InvalidArgumentError(absl::StrCat("input rows ", s, " overlap input rows ",
                                                       row_span[t], " at position ", t));
      }
      row_span[t] = static_cast<int>(s);
    }
    for (size_t i = 0; i < r.rows.size(); ++i) {
      if (!std::isfinite(r.rows[i])) {
        return absl::InvalidArgumentError(absl::StrCat(
            "input rows ", s, " hold a non-finite value at row ", i / c.dim, ", column ",
            i % c.dim));
      }
    }
  }
  for (int t = 0; t < T; ++t) {
    const int32_t id = tokens[t];
    if (!row_span.empty() && row_span[t] >= 0) continue;
    if (id < 0 || id >= c.vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("token id ", id, " is outside the vocabulary of ", c.vocab_size));
    }
  }
  // pos0 indexes the cache's slots, abs0 is the absolute position of the
  // block's first token (RoPE and the causal mask).
  const int pos0 = cache->length();
  const int abs0 = cache->next_position();
  if (T > cache->capacity() - pos0) {
    return absl::OutOfRangeError(absl::StrCat("KV cache full: ", pos0, " + ", T,
                                              " tokens exceed its capacity of ",
                                              cache->capacity()));
  }
  const int D = c.dim, H = c.n_heads, KVH = c.n_kv_heads, hd = c.head_dim, F = c.ffn_dim;
  const int QD = H * hd, KVD = KVH * hd;
  x_.resize(static_cast<size_t>(T) * D);
  h_.resize(x_.size());
  q_.resize(static_cast<size_t>(T) * QD);
  k_.resize(static_cast<size_t>(T) * KVD);
  v_.resize(k_.size());
  ff1_.resize(static_cast<size_t>(T) * F);
  ff3_.resize(ff1_.size());
  for (int t = 0; t < T; ++t) {
    const float* src = nullptr;
    if (!row_span.empty() && row_span[t] >= 0) {
      const InputRows& r = injected[row_span[t]];
      src = r.rows.data() + static_cast<size_t>(t - r.first) * D;
    } else {
      src = model_.embeddings() + static_cast<size_t>(tokens[t]) * D;
    }
    std::copy_n(src, D, x_.data() + static_cast<size_t>(t) * D);
  }
  attention::RopeTables(hd, c.rope_theta, abs0, T, &cos_, &sin_);
  if (trace != nullptr) {
    trace->q.assign(trace->want_q ? c.n_layers : 0, {});
    trace->k_pre_rope.assign(trace->want_kv ? c.n_layers : 0, {});
    trace->k.assign(trace->want_kv ? c.n_layers : 0, {});
    trace->v.assign(trace->want_kv ? c.n_layers : 0, {});
  }
  // [T, heads, hd] -> [heads, T, hd]
  auto head_major = [T, hd](const float* src, int heads) {
    std::vector<float> out(static_cast<size_t>(T) * heads * hd);
    for (int t = 0; t < T; ++t)
      for (int h = 0; h < heads; ++h)
        std::copy_n(src + (static_cast<size_t>(t) * heads + h) * hd, hd,
                    out.data() + (static_cast<size_t>(h) * T + t) * hd);
    return out;
  };
  const attention::AttentionShape shape = model_.attention_shape();
  attention::PartialResult block, past, outside;
  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights& w = model_.layer(l);
    RmsNorm(x_.data(), T, D, w.attn_norm, c.norm_eps, h_.data());
    Linear(h_.data(), T, D, w.wq, QD, q_.data(), false);
    Linear(h_.data(), T, D, w.wk, KVD, k_.data(), false);
    Linear(h_.data(), T, D, w.wv, KVD, v_.data(), false);
    if (trace != nullptr && trace->want_kv) trace->k_pre_rope[l] = head_major(k_.data(), KVH);
    if (external != nullptr) q_pre_.assign(q_.begin(), q_.end());
    attention::ApplyRope(q_.data(), T, H, hd, cos_, sin_);
    attention::ApplyRope(k_.data(), T, KVH, hd, cos_, sin_);
    if (trace != nullptr && trace->want_kv) {
      trace->k[l] = head_major(k_.data(), KVH);
      trace->v[l] = head_major(v_.data(), KVH);
    }
    if (trace != nullptr && trace->want_q) trace->q[l] = head_major(q_.data(), H);
    float* ck = cache->keys(l);
    float* cv = cache->values(l);
    for (int t = 0; t < T; ++t) {
      for (int g = 0; g < KVH; ++g) {
        const size_t dst = (static_cast<size_t>(g) * cache->capacity() + pos0 + t) * hd;
        const size_t src = (static_cast<size_t>(t) * KVH + g) * hd;
        std::copy_n(k_.data() + src, hd, ck + dst);
        std::copy_n(v_.data() + src, hd, cv + dst);
      }
    }
    // The attention seam: the block attends causally to itself and fully
    // to the stored context; the two partials merge by log-sum-exp. A
    // retrieval decoder replaces the `past` partial.
    const attention::QueryBlock qb{q_.data(), T, abs0};
    absl::Status s = attention::AttendPartial(shape, qb, cache->View(l, pos0, pos0 + T),
                                              /*causal=*/true, &block);
    if (s.ok() && pos0 > 0) {
      s = attention::AttendPartial(shape, qb, cache->View(l, 0, pos0), /*causal=*/false, &past);
      if (s.ok()) s = attention::MergePartial(past, &block);
    }
    if (s.ok() && external != nullptr) {
      s = external->Attend(l, q_pre_.data(), q_.data(), T, abs0, &outside);
      if (s.ok()) s = attention::MergePartial(outside, &block);
    }
    if (!s.ok()) return s;
    Linear(block.out.data(), T, QD, w.wo, D, x_.data(), /*accumulate=*/true);

    RmsNorm(x_.data(), T, D, w.ffn_norm, c.norm_eps, h_.data());
    Linear(h_.data(), T, D, w.w1, F, ff1_.data(), false);
    Linear(h_.data(), T, D, w.w3, F, ff3_.data(), false);
    for (size_t i = 0; i < ff1_.size(); ++i) {
      const float a = ff1_[i];
      ff1_[i] = a / (1.0f + std::exp(-a)) * ff3_[i];
    }
    Linear(ff1_.data(), T, F, w.w2, D, x_.data(), /*accumulate=*/true);
  }
  cache->length_ = pos0 + T;
  if (mode == LogitsMode::kNone) return absl::OkStatus();
  const int first = mode == LogitsMode::kAll ? 0 : T - 1;
  const int rows = T - first;
  RmsNorm(x_.data() + static_cast<size_t>(first) * D, rows, D, model_.final_norm(), c.norm_eps,
          h_.data());
  logits->resize(static_cast<size_t>(rows) * c.vocab_size);
  Linear(h_.data(), rows, D, model_.embeddings(), c.vocab_size, logits->data(), false);
  return absl::OkStatus();
}

}  // namespace mnemo::decoder
