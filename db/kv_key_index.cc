// The key index of one (chunk, layer) (see kv_key_index.h).
#include "db/kv_key_index.h"

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "attention/rope.h"
#include "common/checksum_frame.h"
#include "common/half.h"
#include "common/status_macros.h"
#include "db/le_bytes.h"

namespace mnemo::db::kvindex {
namespace {

constexpr uint8_t kFormat = 0x01;

absl::Status Corrupt(absl::string_view why) {
  return absl::DataLossError(absl::StrCat("corrupt KV key index: ", why));
}

}  // namespace

absl::StatusOr<std::vector<attention::KeyClusters>> BuildLayerKeyIndex(
    absl::Span<const float> pre_rope_keys, absl::Span<const float> values, const LayerShape& shape,
    double rope_theta, int keys_per_cluster) {
  const size_t per_head = size_t(shape.n_tokens) * shape.head_dim;
  if (pre_rope_keys.size() != per_head * shape.n_kv_heads || values.size() != pre_rope_keys.size()) {
    return absl::InvalidArgumentError("key index: keys and values do not match the layer shape");
  }
  std::vector<float> local(pre_rope_keys.begin(), pre_rope_keys.end());
  RETURN_IF_ERROR(attention::RotateKeys(local.data(), shape.n_kv_heads, shape.n_tokens,
                                        shape.head_dim, rope_theta, 0));
  attention::KeyClusterOptions options;
  options.keys_per_cluster = keys_per_cluster;
  // KV heads in parallel on the OpenMP team.
  std::vector<absl::StatusOr<attention::KeyClusters>> built(shape.n_kv_heads);
#pragma omp parallel for schedule(dynamic, 1)
  for (int h = 0; h < shape.n_kv_heads; ++h) {
    built[h] = attention::BuildKeyClusters(&local[h * per_head], &values[h * per_head],
                                           shape.n_tokens, shape.head_dim, options);
  }
  std::vector<attention::KeyClusters> heads;
  heads.reserve(shape.n_kv_heads);
  for (auto& b : built) {
    if (!b.ok()) return b.status();
    heads.push_back(*std::move(b));
  }
  return heads;
}

std::string EncodeLayerKeyIndex(uint64_t fingerprint_hash,
                                absl::Span<const attention::KeyClusters> heads) {
  std::string out;
  PutLe(&out, kFormat);
  PutLe(&out, fingerprint_hash);
  const int n_tokens = heads.empty() ? 0 : heads[0].n_keys;
  const int d = heads.empty() ? 0 : heads[0].head_dim;
  PutLe(&out, static_cast<uint32_t>(heads.size()));
  PutLe(&out, static_cast<uint32_t>(n_tokens));
  PutLe(&out, static_cast<uint32_t>(d));
  for (const attention::KeyClusters& c : heads) {
    PutLe(&out, static_cast<uint32_t>(c.n_clusters));
    for (int32_t o : c.offsets) PutLe(&out, static_cast<uint32_t>(o));
    for (int32_t m : c.members) PutLe(&out, static_cast<uint16_t>(m));
    for (float x : c.centroids) PutLe(&out, FloatToHalf(x));
    for (int k = 0; k < c.n_clusters; ++k) {
      const float inv = c.size(k) > 0 ? 1.0f / static_cast<float>(c.size(k)) : 0.0f;
      for (int j = 0; j < d; ++j) PutLe(&out, FloatToHalf(c.value_sums[size_t(k) * d + j] * inv));
    }
  }
  AppendChecksumTrailer(&out);
  return out;
}

absl::StatusOr<std::vector<attention::KeyClusters>> DecodeLayerKeyIndex(
    absl::string_view value, uint64_t fingerprint_hash, const LayerShape& shape) {
  std::optional<absl::string_view> body = StripChecksumTrailer(value);
  if (!body.has_value()) return Corrupt("checksum mismatch");
  LeReader in(*body);
  uint8_t format = 0;
  uint64_t hash = 0;
  uint32_t heads = 0, n = 0, d = 0;
  if (!in.Get(&format) || format != kFormat) return Corrupt("unknown format");
  if (!in.Get(&hash) || !in.Get(&heads) || !in.Get(&n) || !in.Get(&d)) return Corrupt("truncated");
  if (hash != fingerprint_hash) {
    return absl::FailedPreconditionError(absl::StrCat(
        "KV key index was built for another model (fingerprint hash ", hash, ")"));
  }
  if (heads != uint32_t(shape.n_kv_heads) || n != uint32_t(shape.n_tokens) ||
      d != uint32_t(shape.head_dim)) {
    return Corrupt(absl::StrCat("shape [", heads, ", ", n, ", ", d, "] differs from the blocks' [",
                                shape.n_kv_heads, ", ", shape.n_tokens, ", ", shape.head_dim,
                                "]"));
  }
  std::vector<attention::KeyClusters> out(heads);
  std::vector<char> seen(n);
  for (attention::KeyClusters& c : out) {
    uint32_t k = 0;
    if (!in.Get(&k) || k > n || (n > 0 && k == 0)) return Corrupt("bad cluster count");
    const size_t need = (size_t(k) + 1) * 4 + size_t(n) * 2 + size_t(k) * d * 4;
    if (in.left() < need) return Corrupt("truncated");
    c.head_dim = static_cast<int>(d);
    c.n_keys = static_cast<int>(n);
    c.n_clusters = static_cast<int>(k);
    c.offsets.resize(k + 1);
    for (uint32_t i = 0; i <= k; ++i) {
      uint32_t o = 0;
      in.Get(&o);
      if (o > n || (i == 0 && o != 0) || (i > 0 && o < uint32_t(c.offsets[i - 1]))) {
        return Corrupt("cluster offsets do not partition the keys");
      }
      c.offsets[i] = static_cast<int32_t>(o);
    }
    if (uint32_t(c.offsets[k]) != n) return Corrupt("cluster offsets do not cover the keys");
    c.members.resize(n);
    std::fill(seen.begin(), seen.end(), 0);
    for (uint32_t i = 0; i < n; ++i) {
      uint16_t m = 0;
      in.Get(&m);
      if (m >= n || seen[m]) return Corrupt("cluster members are not a permutation of the keys");
      seen[m] = 1;
      c.members[i] = m;
    }
    c.centroids.resize(size_t(k) * d);
    for (float& x : c.centroids) {
      uint16_t h = 0;
      in.Get(&h);
      x = HalfToFloat(h);
    }
    c.value_sums.resize(size_t(k) * d);
    for (uint32_t j = 0; j < k; ++j) {
      const auto size = static_cast<float>(c.size(static_cast<int>(j)));
      for (uint32_t i = 0; i < d; ++i) {
        uint16_t h = 0;
        in.Get(&h);
        c.value_sums[size_t(j) * d + i] = HalfToFloat(h) * size;
      }
    }
  }
  if (in.left() != 0) return Corrupt("trailing bytes");
  return out;
}

}  // namespace mnemo::db::kvindex
