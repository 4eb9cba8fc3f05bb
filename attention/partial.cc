#include "attention/partial.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"

namespace mnemo::attention {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

absl::Status ValidateBlocks(const AttentionShape& shape, const QueryBlock& q,
                            const KeyValueBlock& kv) {
  if (absl::Status s = ValidateShape(shape); !s.ok()) return s;
  if (q.n_queries < 0 || kv.n_keys < 0) {
    return absl::InvalidArgumentError("negative query or key count");
  }
  if (q.n_queries > 0 && q.queries == nullptr) {
    return absl::InvalidArgumentError("null queries");
  }
  if (kv.n_keys > 0 && (kv.keys == nullptr || kv.values == nullptr)) {
    return absl::InvalidArgumentError("null keys or values");
  }
  if (kv.n_keys > 0 && kv.head_stride < kv.n_keys) {
    return absl::InvalidArgumentError(
        absl::StrCat("head_stride ", kv.head_stride, " < n_keys ", kv.n_keys));
  }
  return absl::OkStatus();
}

int32_t KeyPosition(const KeyValueBlock& kv, int j) {
  return kv.positions != nullptr ? kv.positions[j] : kv.first_position + j;
}

// Scaled scores of query head `h` against its KV head, masked to -inf:
// scores[i * n_keys + j].
void HeadScores(const AttentionShape& shape, const QueryBlock& q, const KeyValueBlock& kv,
                bool causal, int h, std::vector<float>* scores) {
  const int hd = shape.head_dim;
  const int group = shape.n_heads / shape.n_kv_heads;
  const float* k = kv.keys + static_cast<int64_t>(h / group) * kv.head_stride * hd;
  scores->resize(static_cast<size_t>(q.n_queries) * kv.n_keys);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, q.n_queries, kv.n_keys, hd, shape.scale,
              q.queries + static_cast<int64_t>(h) * hd, shape.n_heads * hd, k, hd, 0.0f,
              scores->data(), kv.n_keys);
  if (!causal) return;
  for (int i = 0; i < q.n_queries; ++i) {
    const int32_t qpos = q.first_position + i;
    float* row = scores->data() + static_cast<size_t>(i) * kv.n_keys;
    for (int j = 0; j < kv.n_keys; ++j) {
      if (KeyPosition(kv, j) > qpos) row[j] = kNegInf;
    }
  }
}

// In place: row <- softmax(row); returns (max, lse). A fully masked row
// becomes zeros with max = lse = -inf.
std::pair<float, float> SoftmaxRow(float* row, int n) {
  float m = kNegInf;
  for (int j = 0; j < n; ++j) m = std::max(m, row[j]);
  if (m == kNegInf) {
    std::fill(row, row + n, 0.0f);
    return {kNegInf, kNegInf};
  }
  double sum = 0.0;
  for (int j = 0; j < n; ++j) {
    const float e = row[j] == kNegInf ? 0.0f : std::exp(row[j] - m);
    row[j] = e;
    sum += e;
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int j = 0; j < n; ++j) row[j] *= inv;
  return {m, m + static_cast<float>(std::log(sum))};
}

}  // namespace

absl::Status ValidateShape(const AttentionShape& shape) {
  if (shape.n_heads <= 0 || shape.n_kv_heads <= 0 || shape.head_dim <= 0) {
    return absl::InvalidArgumentError("attention sizes must be positive");
  }
  if (shape.n_heads % shape.n_kv_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat("n_kv_heads ", shape.n_kv_heads,
                                                   " does not divide n_heads ", shape.n_heads));
  }
  if (!(shape.scale > 0.0f) || !std::isfinite(shape.scale)) {
    return absl::InvalidArgumentError("attention scale must be finite and positive");
  }
  return absl::OkStatus();
}

PartialResult PartialResult::Empty(int n_queries, int n_heads, int head_dim) {
  PartialResult r;
  r.n_queries = n_queries;
  r.n_heads = n_heads;
  r.head_dim = head_dim;
  r.out.assign(static_cast<size_t>(n_queries) * n_heads * head_dim, 0.0f);
  r.lse.assign(static_cast<size_t>(n_queries) * n_heads, kNegInf);
  r.max.assign(static_cast<size_t>(n_queries) * n_heads, kNegInf);
  return r;
}

absl::Status AttendPartial(const AttentionShape& shape, const QueryBlock& q,
                           const KeyValueBlock& kv, bool causal, PartialResult* result) {
  if (absl::Status s = ValidateBlocks(shape, q, kv); !s.ok()) return s;
  *result = PartialResult::Empty(q.n_queries, shape.n_heads, shape.head_dim);
  if (q.n_queries == 0 || kv.n_keys == 0) return absl::OkStatus();
  const int hd = shape.head_dim;
  const int group = shape.n_heads / shape.n_kv_heads;
  std::vector<float> p;
  for (int h = 0; h < shape.n_heads; ++h) {
    HeadScores(shape, q, kv, causal, h, &p);
    for (int i = 0; i < q.n_queries; ++i) {
      const auto [m, lse] = SoftmaxRow(p.data() + static_cast<size_t>(i) * kv.n_keys, kv.n_keys);
      result->max[static_cast<size_t>(i) * shape.n_heads + h] = m;
      result->lse[static_cast<size_t>(i) * shape.n_heads + h] = lse;
    }
    const float* v = kv.values + static_cast<int64_t>(h / group) * kv.head_stride * hd;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, q.n_queries, hd, kv.n_keys, 1.0f,
                p.data(), kv.n_keys, v, hd, 0.0f, result->out.data() + static_cast<int64_t>(h) * hd,
                shape.n_heads * hd);
  }
  return absl::OkStatus();
}

absl::Status MergePartial(const PartialResult& other, PartialResult* acc) {
  if (other.n_queries != acc->n_queries || other.n_heads != acc->n_heads ||
      other.head_dim != acc->head_dim) {
    return absl::InvalidArgumentError(
        absl::StrCat("partial results differ in shape: [", other.n_queries, ", ", other.n_heads,
                     ", ", other.head_dim, "] vs [", acc->n_queries, ", ", acc->n_heads, ", ",
                     acc->head_dim, "]"));
  }
  const int hd = acc->head_dim;
  const size_t rows = static_cast<size_t>(acc->n_queries) * acc->n_heads;
  for (size_t r = 0; r < rows; ++r) {
    const float la = acc->lse[r], lb = other.lse[r];
    acc->max[r] = std::max(acc->max[r], other.max[r]);
    if (lb == kNegInf) continue;  // nothing to add
    float* oa = acc->out.data() + r * hd;
    const float* ob = other.out.data() + r * hd;
    if (la == kNegInf) {
      std::copy(ob, ob + hd, oa);
      acc->lse[r] = lb;
      continue;
    }
    const float m = std::max(la, lb);
    const float wa = std::exp(la - m), wb = std::exp(lb - m);
    const float inv = 1.0f / (wa + wb);
    for (int d = 0; d < hd; ++d) oa[d] = (wa * oa[d] + wb * ob[d]) * inv;
    acc->lse[r] = m + std::log(wa + wb);
  }
  return absl::OkStatus();
}

absl::Status AttentionProbabilities(const AttentionShape& shape, const QueryBlock& q,
                                    const KeyValueBlock& kv, bool causal,
                                    std::vector<float>* probs) {
  if (absl::Status s = ValidateBlocks(shape, q, kv); !s.ok()) return s;
  const size_t per_head = static_cast<size_t>(q.n_queries) * kv.n_keys;
  probs->assign(per_head * shape.n_heads, 0.0f);
  if (per_head == 0) return absl::OkStatus();
  std::vector<float> p;
  for (int h = 0; h < shape.n_heads; ++h) {
    HeadScores(shape, q, kv, causal, h, &p);
    for (int i = 0; i < q.n_queries; ++i) {
      SoftmaxRow(p.data() + static_cast<size_t>(i) * kv.n_keys, kv.n_keys);
    }
    std::copy(p.begin(), p.end(), probs->begin() + per_head * h);
  }
  return absl::OkStatus();
}

}  // namespace mnemo::attention
