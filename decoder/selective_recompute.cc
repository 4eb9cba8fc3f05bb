#include "decoder/selective_recompute.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include "absl/strings/str_cat.h"
#include "attention/partial.h"
#include "attention/rope.h"

namespace mnemo::decoder {
namespace {

// y[n, out] (+)= x[n, in] @ w[out, in]^T, as the forward pass does it.
void Linear(const float* x, int n, int in, const float* w, int out, float* y, bool accumulate) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.0f, x, in, w, in,
              accumulate ? 1.0f : 0.0f, y, out);
}

void RmsNorm(const float* x, int n, int dim, const float* weight, double eps, float* out) {
  for (int t = 0; t < n; ++t) {
    const float* row = x + static_cast<size_t>(t) * dim;
    double ss = 0.0;
    for (int i = 0; i < dim; ++i) ss += static_cast<double>(row[i]) * row[i];
    const float inv = static_cast<float>(1.0 / std::sqrt(ss / dim + eps));
    float* o = out + static_cast<size_t>(t) * dim;
    for (int i = 0; i < dim; ++i) o[i] = row[i] * inv * weight[i];
  }
}

// Maximal runs [begin, end) of consecutive slots in `slots` (ascending):
// pairs of (index into slots, run length).
std::vector<std::pair<int, int>> Runs(const std::vector<int>& slots) {
  std::vector<std::pair<int, int>> runs;
  for (int i = 0; i < static_cast<int>(slots.size());) {
    int j = i + 1;
    while (j < static_cast<int>(slots.size()) && slots[j] == slots[j - 1] + 1) ++j;
    runs.emplace_back(i, j - i);
    i = j;
  }
  return runs;
}

// Recomputes some of the context's tokens layer by layer over a cache that
// holds every token's K/V. Rows of `x` are the hidden states of `slots`.
class Recompute {
 public:
  Recompute(const Model& model, KvCache* cache) : model_(model), c_(model.config()), cache_(cache) {}

  int64_t macs() const { return macs_; }

  // Hidden states entering layer 0: the tokens' embeddings.
  std::vector<float> Embed(absl::Span<const int32_t> tokens, const std::vector<int>& slots) {
    std::vector<float> x(slots.size() * static_cast<size_t>(c_.dim));
    for (size_t i = 0; i < slots.size(); ++i) {
      std::copy_n(model_.embeddings() + static_cast<size_t>(tokens[slots[i]]) * c_.dim, c_.dim,
                  x.data() + i * c_.dim);
    }
    return x;
  }

  // Attention-normed inputs `h` and RoPE-d K and V [n, n_kv_heads * hd] of
  // `slots` at `layer`.
  void ProjectKv(int layer, const std::vector<int>& slots, const std::vector<float>& x,
                 std::vector<float>* h, std::vector<float>* k, std::vector<float>* v) {
    const int n = static_cast<int>(slots.size());
    const int D = c_.dim, KVD = c_.n_kv_heads * c_.head_dim;
    const LayerWeights& w = model_.layer(layer);
    h->resize(static_cast<size_t>(n) * D);
    k->resize(static_cast<size_t>(n) * KVD);
    v->resize(k->size());
    if (n == 0) return;
    RmsNorm(x.data(), n, D, w.attn_norm, c_.norm_eps, h->data());
    Linear(h->data(), n, D, w.wk, KVD, k->data(), false);
    Linear(h->data(), n, D, w.wv, KVD, v->data(), false);
    macs_ += int64_t{n} * D * 2 * KVD;
    ForEachRun(slots, [&](int i, int len, int64_t position) {
      attention::RopeTables(c_.head_dim, c_.rope_theta, position, len, &cos_, &sin_);
      attention::ApplyRope(k->data() + static_cast<size_t>(i) * KVD, len, c_.n_kv_heads,
                           c_.head_dim, cos_, sin_);
    });
  }

  // RoPE-d queries [n, n_heads * hd] of `slots` from their normed inputs.
  void ProjectQ(int layer, const std::vector<int>& slots, const std::vector<float>& h,
                std::vector<float>* q) {
    const int n = static_cast<int>(slots.size());
    const int D = c_.dim, QD = c_.n_heads * c_.head_dim;
    q->resize(static_cast<size_t>(n) * QD);
    if (n == 0) return;
    Linear(h.data(), n, D, model_.layer(layer).wq, QD, q->data(), false);
    macs_ += int64_t{n} * D * QD;
    ForEachRun(slots, [&](int i, int len, int64_t position) {
      attention::RopeTables(c_.head_dim, c_.rope_theta, position, len, &cos_, &sin_);
      attention::ApplyRope(q->data() + static_cast<size_t>(i) * QD, len, c_.n_heads, c_.head_dim,
                           cos_, sin_);
    });
  }

  // The rest of `layer` for `slots`, given their K/V from ProjectKv: writes
  // the K/V into the cache, attends over the context up to each token
  // (causal by position), and applies the output projection and SwiGLU to
  // `x` in place.
  absl::Status Finish(int layer, const std::vector<int>& slots, const std::vector<float>& h,
                      const std::vector<float>& k, const std::vector<float>& v,
                      std::vector<float>* x) {
    const int n = static_cast<int>(slots.size());
    if (n == 0) return absl::OkStatus();
    const int D = c_.dim, H = c_.n_heads, KVH = c_.n_kv_heads, hd = c_.head_dim, F = c_.ffn_dim;
    const int QD = H * hd, KVD = KVH * hd;
    const LayerWeights& w = model_.layer(layer);
    float* ck = cache_->keys(layer);
    float* cv = cache_->values(layer);
    for (int i = 0; i < n; ++i) {
      for (int g = 0; g < KVH; ++g) {
        const size_t dst = (static_cast<size_t>(g) * cache_->capacity() + slots[i]) * hd;
        const size_t src = static_cast<size_t>(i) * KVD + static_cast<size_t>(g) * hd;
        std::copy_n(k.data() + src, hd, ck + dst);
        std::copy_n(v.data() + src, hd, cv + dst);
      }
    }
    std::vector<float> q;
    ProjectQ(layer, slots, h, &q);
    std::vector<float> att(static_cast<size_t>(n) * QD);
    const attention::AttentionShape shape = model_.attention_shape();
    absl::Status status;
    ForEachRun(slots, [&](int i, int len, int64_t position) {
      if (!status.ok()) return;
      const int end = slots[i] + len;
      const attention::QueryBlock qb{q.data() + static_cast<size_t>(i) * QD, len,
                                     static_cast<int32_t>(position)};
      attention::PartialResult part;
      status = attention::AttendPartial(shape, qb, cache_->View(layer, 0, end), /*causal=*/true,
                                        &part);
      if (status.ok()) {
        std::copy(part.out.begin(), part.out.end(), att.data() + static_cast<size_t>(i) * QD);
      }
      for (int t = 0; t < len; ++t) macs_ += AttentionMacs(slots[i] + t + 1);
    });
    if (!status.ok()) return status;
    Linear(att.data(), n, QD, w.wo, D, x->data(), /*accumulate=*/true);
    std::vector<float> hn(static_cast<size_t>(n) * D), f1(static_cast<size_t>(n) * F),
        f3(f1.size());
    RmsNorm(x->data(), n, D, w.ffn_norm, c_.norm_eps, hn.data());
    Linear(hn.data(), n, D, w.w1, F, f1.data(), false);
    Linear(hn.data(), n, D, w.w3, F, f3.data(), false);
    for (size_t i = 0; i < f1.size(); ++i) {
      const float a = f1[i];
      f1[i] = a / (1.0f + std::exp(-a)) * f3[i];
    }
    Linear(f1.data(), n, F, w.w2, D, x->data(), /*accumulate=*/true);
    macs_ += int64_t{n} * (int64_t{QD} * D + 3 * int64_t{D} * F);
    return absl::OkStatus();
  }

  // One whole layer for `slots`.
  absl::Status Layer(int layer, const std::vector<int>& slots, std::vector<float>* x) {
    std::vector<float> h, k, v;
    ProjectKv(layer, slots, *x, &h, &k, &v);
    return Finish(layer, slots, h, k, v, x);
  }

  // Score and value products of one query over `keys` keys.
  int64_t AttentionMacs(int keys) const {
    return 2 * int64_t{c_.n_heads} * c_.head_dim * keys;
  }
  void CountAttention(int keys) { macs_ += AttentionMacs(keys); }

 private:
  // fn(index into slots, run length, absolute position of the run's first
  // token) per run of consecutive slots.
  template <typename Fn>
  void ForEachRun(const std::vector<int>& slots, Fn fn) {
    for (const auto& [i, len] : Runs(slots)) {
      fn(i, len, static_cast<int64_t>(cache_->first_position()) + slots[i]);
    }
  }

  const Model& model_;
  const ModelConfig& c_;
  KvCache* cache_;
  int64_t macs_ = 0;
  std::vector<double> cos_, sin_;
};

// The `count` highest-scoring candidates (ties: the earlier slot), as
// ascending slots.
std::vector<int> TopSlots(const std::vector<double>& scores, int first_slot, int count) {
  std::vector<int> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return scores[a] > scores[b]; });
  order.resize(std::min<size_t>(order.size(), static_cast<size_t>(std::max(0, count))));
  for (int& i : order) i += first_slot;
  std::sort(order.begin(), order.end());
  return order;
}

}  // namespace

int64_t FullPrefillMacs(const ModelConfig& c, int n_tokens) {
  const int64_t D = c.dim, QD = int64_t{c.n_heads} * c.head_dim,
                KVD = int64_t{c.n_kv_heads} * c.head_dim, F = c.ffn_dim;
  const int64_t per_token = D * (QD + 2 * KVD) + QD * D + 3 * D * F;
  // Query t sees t + 1 keys: sum over t of (t + 1).
  const int64_t keys = int64_t{n_tokens} * (n_tokens + 1) / 2;
  return c.n_layers * (n_tokens * per_token + 2 * int64_t{c.n_heads} * c.head_dim * keys);
}

absl::StatusOr<BlendStats> BlendContext(const Model& model, absl::Span<const int32_t> tokens,
                                        absl::Span<const int> chunk_lengths,
                                        const BlendOptions& options, KvCache* cache) {
  const ModelConfig& c = model.config();
  if (!(options.recompute_fraction >= 0.0 && options.recompute_fraction <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("recompute fraction must be in [0, 1], got ",
                                                   options.recompute_fraction));
  }
  if (options.selector == BlendSelector::kKvDeviation &&
      (options.selection_layer < 1 || options.selection_layer >= c.n_layers)) {
    return absl::InvalidArgumentError(absl::StrCat("selection layer must be in [1, ",
                                                   c.n_layers, "), got ",
                                                   options.selection_layer));
  }
  if (options.selector == BlendSelector::kQueryAttention) {
    if (options.query.empty()) return absl::InvalidArgumentError("the query selector needs a query");
    for (int32_t id : options.query) {
      if (id < 0 || id >= c.vocab_size) {
        return absl::InvalidArgumentError(
            absl::StrCat("query token id ", id, " is outside the vocabulary of ", c.vocab_size));
      }
    }
  }
  if (chunk_lengths.empty()) return absl::InvalidArgumentError("no chunks to blend");
  int64_t total = 0;
  for (int len : chunk_lengths) {
    if (len <= 0) return absl::InvalidArgumentError(absl::StrCat("empty chunk (", len, ")"));
    total += len;
  }
  if (total != cache->length() || total != static_cast<int64_t>(tokens.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("chunks of ", total, " tokens, ", tokens.size(), " tokens given, the cache holds ",
                     cache->length()));
  }
  for (int32_t id : tokens) {
    if (id < 0 || id >= c.vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("token id ", id, " is outside the vocabulary of ", c.vocab_size));
    }
  }
  const int n = static_cast<int>(total);
  const int first = chunk_lengths[0];
  BlendStats stats;
  stats.context_tokens = n;
  stats.candidates = n - first;
  stats.full_prefill_macs = FullPrefillMacs(c, n);
  const int keep = std::min(stats.candidates,
                            static_cast<int>(std::lround(options.recompute_fraction * n)));
  std::vector<int> candidates(stats.candidates);
  std::iota(candidates.begin(), candidates.end(), first);
  Recompute run(model, cache);
  const int KVD = c.n_kv_heads * c.head_dim;
  int resume_layer = 0;
  std::vector<float> x;
  if (options.selector == BlendSelector::kKvDeviation) {
    x = run.Embed(tokens, candidates);
    for (int l = 0; l < options.selection_layer; ++l) {
      if (absl::Status s = run.Layer(l, candidates, &x); !s.ok()) return s;
    }
    const int l = options.selection_layer;
    std::vector<float> h, k, v;
    run.ProjectKv(l, candidates, x, &h, &k, &v);
    // Squared L2 distance of the recomputed K and V to the stored ones,
    // over every KV head.
    const float* ck = cache->keys(l);
    const float* cv = cache->values(l);
    stats.scores.assign(candidates.size(), 0.0);
    for (size_t i = 0; i < candidates.size(); ++i) {
      double d = 0;
      for (int g = 0; g < c.n_kv_heads; ++g) {
        const size_t at = (static_cast<size_t>(g) * cache->capacity() + candidates[i]) * c.head_dim;
        const size_t row = i * KVD + static_cast<size_t>(g) * c.head_dim;
        for (int e = 0; e < c.head_dim; ++e) {
          const double dk = k[row + e] - ck[at + e], dv = v[row + e] - cv[at + e];
          d += dk * dk + dv * dv;
        }
      }
      stats.scores[i] = d;
    }
    stats.selected = TopSlots(stats.scores, first, keep);
    // Carry the selected rows into the remaining layers.
    std::vector<float> xs, hs, ks, vs;
    const int D = c.dim;
    for (int slot : stats.selected) {
      const size_t i = static_cast<size_t>(slot - first);
      xs.insert(xs.end(), x.begin() + i * D, x.begin() + (i + 1) * D);
      hs.insert(hs.end(), h.begin() + i * D, h.begin() + (i + 1) * D);
      ks.insert(ks.end(), k.begin() + i * KVD, k.begin() + (i + 1) * KVD);
      vs.insert(vs.end(), v.begin() + i * KVD, v.begin() + (i + 1) * KVD);
    }
    x = std::move(xs);
    if (absl::Status s = run.Finish(l, stats.selected, hs, ks, vs, &x); !s.ok()) return s;
    resume_layer = l + 1;
  } else if (options.selector == BlendSelector::kRecent) {
    stats.scores.resize(candidates.size());
    std::iota(stats.scores.begin(), stats.scores.end(), 0.0);
    stats.selected = TopSlots(stats.scores, first, keep);
    x = run.Embed(tokens, stats.selected);
  } else if (options.selector == BlendSelector::kQueryAttention) {
    // The query's layer-0 attention over the context (exact there): the
    // mass each context token receives, summed over query tokens and heads.
    const int nq = static_cast<int>(options.query.size());
    std::vector<int> qslots(nq), qindex(nq);
    std::iota(qslots.begin(), qslots.end(), n);
    std::iota(qindex.begin(), qindex.end(), 0);
    std::vector<float> xq = run.Embed(options.query, qindex), h(xq.size()), q;
    RmsNorm(xq.data(), nq, c.dim, model.layer(0).attn_norm, c.norm_eps, h.data());
    run.ProjectQ(0, qslots, h, &q);
    std::vector<float> probs;
    if (absl::Status s = attention::AttentionProbabilities(
            model.attention_shape(), {q.data(), nq, cache->first_position() + n},
            cache->View(0, 0, n), false, &probs);
        !s.ok()) {
      return s;
    }
    stats.scores.assign(candidates.size(), 0.0);
    for (int r = 0; r < c.n_heads * nq; ++r) {
      const float* row = probs.data() + static_cast<size_t>(r) * n;
      for (int j = first; j < n; ++j) stats.scores[j - first] += row[j];
    }
    for (int i = 0; i < nq; ++i) run.CountAttention(n);
    stats.selected = TopSlots(stats.scores, first, keep);
    x = run.Embed(tokens, stats.selected);
  } else {
    // Layer 0's K/V are exact: the candidates' queries there see the true
    // context. Mass on the tokens before a candidate's chunk, mean over
    // heads, from the two partials' log-sum-exps.
    std::vector<float> x0 = run.Embed(tokens, candidates), h, q;
    h.resize(x0.size());
    RmsNorm(x0.data(), stats.candidates, c.dim, model.layer(0).attn_norm, c.norm_eps, h.data());
    run.ProjectQ(0, candidates, h, &q);
    const attention::AttentionShape shape = model.attention_shape();
    const int QD = c.n_heads * c.head_dim;
    stats.scores.assign(candidates.size(), 0.0);
    int begin = first;
    for (size_t ci = 1; ci < chunk_lengths.size(); ++ci) {
      const int len = chunk_lengths[ci];
      const attention::QueryBlock qb{q.data() + static_cast<size_t>(begin - first) * QD, len,
                                     cache->first_position() + begin};
      attention::PartialResult own, before;
      absl::Status s = attention::AttendPartial(shape, qb, cache->View(0, begin, begin + len),
                                                /*causal=*/true, &own);
      if (s.ok()) s = attention::AttendPartial(shape, qb, cache->View(0, 0, begin), false, &before);
      if (!s.ok()) return s;
      for (int t = 0; t < len; ++t) {
        double mass = 0;
        for (int hh = 0; hh < c.n_heads; ++hh) {
          const size_t at = static_cast<size_t>(t) * c.n_heads + hh;
          const double a = before.lse[at], b = own.lse[at];
          const double m = std::max(a, b);
          mass += std::exp(a - m) / (std::exp(a - m) + std::exp(b - m));
        }
        stats.scores[begin - first + t] = mass / c.n_heads;
        run.CountAttention(begin + t + 1);
      }
      begin += len;
    }
    stats.selected = TopSlots(stats.scores, first, keep);
    x = run.Embed(tokens, stats.selected);
  }
  for (int l = resume_layer; l < c.n_layers; ++l) {
    if (absl::Status s = run.Layer(l, stats.selected, &x); !s.ok()) return s;
  }
  stats.macs = run.macs();
  return stats;
}

}  // namespace mnemo::decoder
