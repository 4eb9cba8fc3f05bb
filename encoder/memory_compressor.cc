// CompressChunk: the memory encoder's forward pass (memory_compressor.h).
#include "encoder/memory_compressor.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "encoder/injection_ops.h"

namespace mnemo::encoder {

absl::Status CompressChunk(const InjectionConfig& config, const InjectionWeights& w,
                           absl::Span<const int> ids, absl::Span<float> out) {
  const int D = config.decoder_dim, F = config.compressor_ffn, H = config.compressor_heads;
  const int S = config.memory_tokens;
  const float eps = config.norm_eps;
  const int n = static_cast<int>(ids.size());
  if (n < 1 || n > config.compressor_max_tokens) {
    return absl::InvalidArgumentError(absl::StrCat("a chunk has ", n, " token ids; the compressor takes 1 to ",
                                                   config.compressor_max_tokens));
  }
  if (out.size() != static_cast<size_t>(S) * D) {
    return absl::InvalidArgumentError(
        absl::StrCat("memory output holds ", out.size(), " floats, expected ", S * D));
  }
  for (int i = 0; i < n; ++i) {
    if (ids[i] < 0 || ids[i] >= w.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat("token id ", ids[i], " at position ", i,
                                                     " is outside the vocabulary of ",
                                                     w.vocab_size));
    }
  }
  const size_t nd = static_cast<size_t>(n) * D;
  std::vector<float> x(nd), y(nd), qkv(static_cast<size_t>(n) * 3 * D), att(nd),
      ffn(static_cast<size_t>(n) * F), scores(static_cast<size_t>(std::max(n, S)) * n);
  for (int i = 0; i < n; ++i) {
    const float* tok = w.tok_emb.data() + static_cast<size_t>(ids[i]) * D;
    const float* pos = w.pos_emb.data() + static_cast<size_t>(i) * D;
    float* row = x.data() + static_cast<size_t>(i) * D;
    for (int j = 0; j < D; ++j) row[j] = tok[j] + pos[j];
  }
  for (const CompressorLayerWeights& L : w.layers) {
    ops::RmsNorm(x.data(), n, D, L.norm1.data(), eps, y.data());
    ops::Linear(y.data(), n, D, L.wqkv.data(), L.bqkv.data(), 3 * D, qkv.data());
    ops::Attention(qkv.data(), 3 * D, n, qkv.data() + D, 3 * D, qkv.data() + 2 * D, 3 * D, n, D,
                   H, scores.data(), att.data());
    ops::Linear(att.data(), n, D, L.wo.data(), L.bo.data(), D, y.data());
    for (size_t i = 0; i < nd; ++i) x[i] += y[i];  // h
    ops::RmsNorm(x.data(), n, D, L.norm2.data(), eps, y.data());
    ops::Linear(y.data(), n, D, L.w1.data(), L.b1.data(), F, ffn.data());
    ops::Gelu(ffn.data(), ffn.size());
    ops::Linear(ffn.data(), n, F, L.w2.data(), L.b2.data(), D, y.data());
    for (size_t i = 0; i < nd; ++i) x[i] += y[i];
  }
  // Slots cross-attend to the chunk.
  const size_t sd = static_cast<size_t>(S) * D;
  std::vector<float> kv_in(nd), k(nd), v(nd), s_norm(sd), q(sd), s_att(sd), s(sd);
  ops::RmsNorm(x.data(), n, D, w.xnorm_kv.data(), eps, kv_in.data());
  ops::Linear(kv_in.data(), n, D, w.xattn_wk.data(), w.xattn_bk.data(), D, k.data());
  ops::Linear(kv_in.data(), n, D, w.xattn_wv.data(), w.xattn_bv.data(), D, v.data());
  ops::RmsNorm(w.slots.data(), S, D, w.xnorm_q.data(), eps, s_norm.data());
  ops::Linear(s_norm.data(), S, D, w.xattn_wq.data(), w.xattn_bq.data(), D, q.data());
  ops::Attention(q.data(), D, S, k.data(), D, v.data(), D, n, D, H, scores.data(), s_att.data());
  ops::Linear(s_att.data(), S, D, w.xattn_wo.data(), w.xattn_bo.data(), D, s.data());
  for (size_t i = 0; i < sd; ++i) s[i] += w.slots[i];
  ops::RmsNorm(s.data(), S, D, w.out_norm.data(), eps, s_norm.data());
  ops::Linear(s_norm.data(), S, D, w.out_w.data(), w.out_b.data(), D, out.data());
  return absl::OkStatus();
}

}  // namespace mnemo::encoder
